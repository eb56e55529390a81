/* queue: the delivery engine. One thread with its own event loop takes due
 * recipients from the spool and delivers them: Maildir at once, LMTP and
 * SMTP through destinations (per-destination connection limits, connection
 * reuse, MX fallback); records every result (delivered, failed, or retry
 * later with exponential backoff, expiring after max_queue_lifetime) and
 * queues the delivery reports (RFC 3464) that the senders asked for. */
#ifndef TERN_QUEUE_H
#define TERN_QUEUE_H

#include "lib/conf.h"
#include "policy/policy.h"
#include "spool/spool.h"

struct queue;

/* Read what the engine needs from files (transport map, CA bundle), before
 * ternd drops its privileges. NULL (with a log line) when one is bad. */
struct queue *queue_new(const struct conf *c, const struct policy *p);
/* Start delivering from the spool (after the privilege drop). false when
 * the spool cannot be read; the queue must still be given to queue_stop. */
bool queue_start(struct queue *q, struct spool *sp);
/* Wake the scheduler (any thread): new mail was committed. */
void queue_kick(void *q);
void queue_stop(struct queue *q);

#endif
