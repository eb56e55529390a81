/* queue: the delivery engine. One thread with its own event loop takes due
 * recipients from the spool and delivers them: Maildir at once, LMTP and
 * SMTP through destinations (per-destination connection limits, connection
 * reuse, MX fallback); records every result (delivered, failed, or retry
 * later with exponential backoff, expiring after max_queue_lifetime) and
 * queues the delivery reports (RFC 3464) that the senders asked for. */
#ifndef TERN_QUEUE_H
#define TERN_QUEUE_H

#include <jansson.h>

#include "lib/conf.h"
#include "net/closer.h"
#include "policy/hold.h"
#include "policy/policy.h"
#include "policy/settings.h"
#include "spool/spool.h"

struct queue;

/* Read what the engine needs from files (transport map, CA bundle), before
 * ternd drops its privileges; the engine holds a reference to st. NULL
 * (with a log line) when one is bad. */
struct queue *queue_new(struct settings *st);
/* Start delivering from the spool (after the privilege drop). false when
 * the spool cannot be read; the queue must still be given to queue_stop. */
bool queue_start(struct queue *q, struct spool *sp);
/* Wake the scheduler (any thread): new mail was committed. */
void queue_kick(void *q);

/* What an operator asks of the engine: hold (never try until released),
 * release (and try now), flush (try now) or delete (no report), for one
 * message (qid), the recipients of one domain, or (flush only) all; bounce
 * (return one message to its sender with an RFC 3464 report, as Postfix's
 * postsuper -e); pause and resume delivery (nothing new is started while
 * paused; what is under way finishes). A domain held stays held for mail
 * that comes later, until released. */
enum queue_op { QUEUE_HOLD, QUEUE_RELEASE, QUEUE_FLUSH, QUEUE_DELETE, QUEUE_BOUNCE,
                QUEUE_PAUSE, QUEUE_RESUME };
struct queue_cmd {
	enum queue_op op;
	char qid[UTIL_QID_LEN + 1];   /* "": not one message */
	char domain[256];             /* "": not one domain */
};
typedef void queue_done_fn(void *ctx, int err, long count);

/* From any thread, through the engine's inbox. done(ctx, err, count) runs
 * on the spool writer's thread once the change is on disk (so it must only
 * hand the news over): err EINVAL for a command that names nothing it can
 * act on, ENOENT for a message not in the queue, ECANCELED when the engine
 * stopped first; count the recipients changed (messages, for delete). A
 * bounce of a message whose results are being written waits for them. */
void queue_command(struct queue *q, const struct queue_cmd *cmd, queue_done_fn *done, void *ctx);
/* A release of held domains followed to its end (policy/hold.h), from
 * any thread; rel is copied. ATRN's conduit: made before the release
 * (queue_conduit_new), attached once the 250 to ATRN has left
 * (queue_conduit_attach: the connection, taken from the session's loop;
 * NULL when the client went away), owned by the engine from then on;
 * with q NULL (the engine has stopped) it is just freed. */
void queue_release(struct queue *q, const struct hold_release *rel);
struct hold_conduit *queue_conduit_new(struct queue *q, const char *name);
void queue_conduit_attach(struct queue *q, struct hold_conduit *c, struct closer_taken *t);

/* A reload (the caller's thread): read what the engine needs of st (its
 * problems through log_problem); false when something is bad, and nothing
 * changes. Else the engine takes st on its thread between two steps (work
 * under way finishes with the settings it began with) and done(ctx, 0, 0)
 * runs there. */
bool queue_reload(struct queue *q, struct settings *st, queue_done_fn *done, void *ctx);
void queue_stop(struct queue *q);

/* The next hops and their connections, for ternctl destinations (from any
 * thread): see(ctx, o) runs on the engine's thread with an array it hands
 * over (dest.c's dest_json), or with NULL when the engine stopped first. */
typedef void queue_dests_fn(void *ctx, json_t *o);
void queue_destinations(struct queue *q, queue_dests_fn *see, void *ctx);

#endif
