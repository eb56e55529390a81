/* queue: the delivery engine. One thread with its own event loop takes due
 * recipients from the spool and delivers them: Maildir at once, LMTP and
 * SMTP through destinations (per-destination connection limits, connection
 * reuse, MX fallback); records every result (delivered, failed, or retry
 * later with exponential backoff, expiring after max_queue_lifetime) and
 * queues the delivery reports (RFC 3464) that the senders asked for. */
#ifndef TERN_QUEUE_H
#define TERN_QUEUE_H

#include "../lib/conf.h"
#include "../smtpd/policy.h"
#include "../spool/spool.h"

struct queue;

/* NULL (with a log line) when the transport map or TLS set-up is bad. */
struct queue *queue_start(const struct conf *c, const struct policy *p, struct spool *sp);
/* Wake the scheduler (any thread): new mail was committed. */
void queue_kick(void *q);
void queue_stop(struct queue *q);

#endif
