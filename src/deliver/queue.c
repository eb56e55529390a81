/* queue: the delivery engine's thread, its loop, start and stop (see
 * queue.h and, for its parts, engine.h). */
#include "deliver/queue.h"

#include <errno.h>
#include <event2/event.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "deliver/engine.h"
#include "lib/log.h"
#include "lib/util.h"
#include "net/closer.h"
#include "net/dns.h"
#include "spool/reader.h"

/* ---- the inbox: commands from other threads ---- */

static void queue_inbox_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct queue *q = arg;
	pthread_mutex_lock(&q->inbox_mu);
	struct inbox_item *it = q->inbox;
	q->inbox = NULL;
	pthread_mutex_unlock(&q->inbox_mu);
	while (it) {
		struct inbox_item *next = it->next;
		sched_command(q, it);
		it = next;
	}
}

void queue_command(struct queue *q, const struct queue_cmd *cmd, queue_done_fn *done, void *ctx)
{
	struct inbox_item *it = util_xcalloc(1, sizeof *it);
	it->q = q;
	it->cmd = *cmd;
	it->done = done;
	it->ctx = ctx;
	pthread_mutex_lock(&q->inbox_mu);
	struct inbox_item **tail = &q->inbox;
	while (*tail)
		tail = &(*tail)->next;
	*tail = it;
	pthread_mutex_unlock(&q->inbox_mu);
	event_active(q->inbox_ev, EV_TIMEOUT, 0);
}

static void queue_fresh_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	sched_fresh(arg);
}

/* Stop: every connection says QUIT when idle and goes to the closer; the
 * loop ends once the closer has closed them all. */
static void queue_stop_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct queue *q = arg;
	dest_hangup_all(q);
	closer_drain(q->closer, CLOSER_LINGER);
}

static void *queue_run(void *arg)
{
	struct queue *q = arg;
	sched_scan(q);
	event_base_dispatch(q->base);
	return NULL;
}

/* ---- start and stop ---- */

static bool queue_setup(struct queue *q)
{
	const struct conf *c = q->conf;
	int bad = 0;
	q->map = route_map_load(c->transport_map, &bad);
	if (bad)
		return false;
	q->tls = c->smtp_tls;
	q->ssl = smtpc_ssl_ctx(q->tls, c->smtp_tls_ca_file);
	if (q->tls != SMTPC_TLS_NONE && !q->ssl)
		return false;
	const char *colon = strchr(c->relayhost_auth, ':');
	if (colon) {
		q->auth_user = strndup(c->relayhost_auth, (size_t)(colon - c->relayhost_auth));
		q->auth_pass = util_xstrdup(colon + 1);
	}
	return true;
}

struct queue *queue_new(const struct conf *c, const struct policy *p)
{
	struct queue *q = util_xcalloc(1, sizeof *q);
	q->conf = c;
	q->policy = p;
	pthread_mutex_init(&q->rec_mu, NULL);
	pthread_cond_init(&q->rec_cv, NULL);
	pthread_mutex_init(&q->inbox_mu, NULL);
	if (!queue_setup(q)) {
		queue_stop(q);
		return NULL;
	}
	return q;
}

static struct event *queue_event(struct queue *q, event_callback_fn fn, bool timer)
{
	struct event *ev = timer ? evtimer_new(q->base, fn, q) : event_new(q->base, -1, 0, fn, q);
	if (!ev)
		log_panic("queue: cannot create an event");
	return ev;
}

bool queue_start(struct queue *q, struct spool *sp)
{
	q->spool = sp;
	q->scan_at = SPOOL_CURSOR_START;
	q->started = (int64_t)time(NULL);
	q->reader = spool_reader_open(q->conf->spool_dir);
	if (!q->reader)
		return false;
	spool_set_reserve(sp, q->conf->spool_reserve);
	q->base = event_base_new();
	if (!q->base)
		log_panic("queue: cannot create an event loop");
	q->dns = dns_new(q->base, q->conf->dns_resolver);
	q->closer = closer_new(q->base);
	q->kick_ev = queue_event(q, queue_fresh_cb, false);
	q->timer_ev = queue_event(q, sched_wake, true);
	q->flush_ev = queue_event(q, sched_flush, false);
	q->recorded_ev = queue_event(q, sched_recorded, false);
	q->rec_retry_ev = queue_event(q, sched_rec_retry, true);
	q->scan_ev = queue_event(q, sched_scan_cb, false);
	q->stop_ev = queue_event(q, queue_stop_cb, false);
	q->inbox_ev = queue_event(q, queue_inbox_cb, false);
	if (!local_start(q))
		return false;
	if (pthread_create(&q->thread, NULL, queue_run, q) != 0)
		log_fatal("queue: cannot start the delivery thread");
	return true;
}

void queue_kick(void *arg)
{
	struct queue *q = arg;
	event_active(q->kick_ev, EV_TIMEOUT, 0);
}

/* Commands still in the inbox, or parked, when the loop stopped: not
 * carried out. */
static void queue_inbox_cancel(struct queue *q)
{
	struct inbox_item *lists[] = { q->parked, q->inbox };
	q->parked = q->inbox = NULL;
	for (int l = 0; l < 2; l++) {
		for (struct inbox_item *it = lists[l], *next; it; it = next) {
			next = it->next;
			if (it->done)
				it->done(it->ctx, ECANCELED, 0);
			free(it);
		}
	}
}

static void queue_free_all(struct queue *q)
{
	local_stop(q);          /* what it finished is applied, */
	sched_record_last(q);   /* and recorded */
	sched_admin_wait(q);
	queue_inbox_cancel(q);
	dns_free(q->dns);
	dest_free_all(q);
	closer_free(q->closer);
	sched_free_all(q);
	struct event *evs[] = { q->kick_ev, q->timer_ev, q->flush_ev, q->stop_ev, q->recorded_ev,
	                        q->rec_retry_ev, q->scan_ev, q->inbox_ev };
	for (size_t i = 0; i < sizeof evs / sizeof evs[0]; i++)
		if (evs[i])
			event_free(evs[i]);
	event_base_free(q->base);
}

void queue_stop(struct queue *q)
{
	if (!q)
		return;
	if (q->base) {
		if (q->thread) {
			event_active(q->stop_ev, EV_TIMEOUT, 0);
			pthread_join(q->thread, NULL);
		}
		queue_free_all(q);
	}
	spool_reader_close(q->reader);
	route_map_free(q->map);
	if (q->ssl)
		SSL_CTX_free(q->ssl);
	free(q->auth_user);
	free(q->auth_pass);
	pthread_mutex_destroy(&q->rec_mu);
	pthread_cond_destroy(&q->rec_cv);
	pthread_mutex_destroy(&q->inbox_mu);
	free(q);
}
