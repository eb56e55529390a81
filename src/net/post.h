/* post: calls handed to an event loop from other threads (the delivery
 * engine's answers to a session, say). post_call() queues fn(arg) from
 * any thread; the loop runs the queued calls in order. post_free() runs
 * what is still queued, on the caller's thread, with the loop stopped: a
 * call must then only free what it owns (post_stopped() says so).
 */
#ifndef TERN_POST_H
#define TERN_POST_H

#include <stdbool.h>

struct event_base;
struct post;

struct post *post_new(struct event_base *base);
void post_call(struct post *p, void (*fn)(void *arg), void *arg);
/* Inside a call: is the loop gone (post_free)? */
bool post_stopped(const struct post *p);
void post_free(struct post *p);

#endif
