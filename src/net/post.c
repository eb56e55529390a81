/* post: calls from other threads, run on a loop (see post.h). */
#include "net/post.h"

#include <event2/event.h>
#include <pthread.h>
#include <stdlib.h>

#include "lib/log.h"
#include "lib/util.h"

struct post_item {
	struct post_item *next;
	void (*fn)(void *arg);
	void *arg;
};

struct post {
	pthread_mutex_t mu;
	struct post_item *head, **tail;   /* under mu, oldest first */
	struct event *ev;
	bool stopped;
};

static struct post_item *post_take(struct post *p)
{
	pthread_mutex_lock(&p->mu);
	struct post_item *it = p->head;
	p->head = NULL;
	p->tail = &p->head;
	pthread_mutex_unlock(&p->mu);
	return it;
}

static void post_run(struct post_item *it)
{
	while (it) {
		struct post_item *next = it->next;
		it->fn(it->arg);
		free(it);
		it = next;
	}
}

static void post_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	post_run(post_take(arg));
}

struct post *post_new(struct event_base *base)
{
	struct post *p = util_xcalloc(1, sizeof *p);
	pthread_mutex_init(&p->mu, NULL);
	p->tail = &p->head;
	p->ev = event_new(base, -1, 0, post_cb, p);
	if (!p->ev)
		log_panic("post: cannot create an event");
	return p;
}

void post_call(struct post *p, void (*fn)(void *arg), void *arg)
{
	struct post_item *it = util_xcalloc(1, sizeof *it);
	it->fn = fn;
	it->arg = arg;
	pthread_mutex_lock(&p->mu);
	*p->tail = it;
	p->tail = &it->next;
	pthread_mutex_unlock(&p->mu);
	event_active(p->ev, EV_TIMEOUT, 0);
}

bool post_stopped(const struct post *p)
{
	return p->stopped;
}

void post_free(struct post *p)
{
	if (!p)
		return;
	p->stopped = true;
	post_run(post_take(p));
	event_free(p->ev);
	pthread_mutex_destroy(&p->mu);
	free(p);
}
