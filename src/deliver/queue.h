/* queue: the delivery scheduler. A thread that takes due recipients from
 * the spool, hands each to its transport, records the result (delivered,
 * retry later with exponential backoff, or failed) and wakes when a new
 * message is committed or the next retry is due. */
#ifndef TERN_QUEUE_H
#define TERN_QUEUE_H

#include "../lib/conf.h"
#include "../spool/spool.h"

struct queue;

struct queue *queue_start(const struct conf *c, struct spool *sp);
/* Wake the scheduler (any thread): new mail was committed. */
void queue_kick(void *q);
void queue_stop(struct queue *q);

#endif
