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
#include <unistd.h>

#include "deliver/engine.h"
#include "deliver/sts.h"
#include "deliver/tlsrpt.h"
#include "lib/log.h"
#include "lib/util.h"
#include "net/closer.h"
#include "net/dns.h"
#include "net/post.h"
#include "spool/reader.h"

static void queue_reloaded(struct queue *q, struct inbox_item *it);

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
		if (it->reload) {
			queue_reloaded(q, it);
		} else if (it->conduit) {
			dest_conduit_attach(q, it->conduit, it->taken.fd >= 0 ? &it->taken : NULL);
			free(it);
		} else if (it->dests) {
			it->dests(it->ctx, dest_json(q));
			free(it);
		} else if (it->rel) {
			release_begin(q, it->rel, NULL);
			free(it->rel);
			free(it);
		} else {
			sched_command(q, it);
		}
		it = next;
	}
}

static void queue_post(struct queue *q, struct inbox_item *it)
{
	pthread_mutex_lock(&q->inbox_mu);
	struct inbox_item **tail = &q->inbox;
	while (*tail)
		tail = &(*tail)->next;
	*tail = it;
	pthread_mutex_unlock(&q->inbox_mu);
	event_active(q->inbox_ev, EV_TIMEOUT, 0);
}

void queue_command(struct queue *q, const struct queue_cmd *cmd, queue_done_fn *done, void *ctx)
{
	struct inbox_item *it = util_xcalloc(1, sizeof *it);
	it->q = q;
	it->cmd = *cmd;
	it->done = done;
	it->ctx = ctx;
	queue_post(q, it);
}

void queue_destinations(struct queue *q, queue_dests_fn *see, void *ctx)
{
	struct inbox_item *it = util_xcalloc(1, sizeof *it);
	it->q = q;
	it->dests = see;
	it->ctx = ctx;
	queue_post(q, it);
}

void queue_release(struct queue *q, const struct hold_release *rel)
{
	struct inbox_item *it = util_xcalloc(1, sizeof *it);
	it->q = q;
	it->rel = util_xcalloc(1, sizeof *it->rel);
	*it->rel = *rel;
	queue_post(q, it);
}

void queue_conduit_attach(struct queue *q, struct hold_conduit *c, struct closer_taken *t)
{
	if (!q)   /* ternd stops: the engine has gone */
		return dest_conduit_attach(NULL, c, t);
	struct inbox_item *it = util_xcalloc(1, sizeof *it);
	it->q = q;
	it->conduit = c;
	it->taken.fd = -1;
	if (t) {
		it->taken = *t;   /* moved */
		memset(t, 0, sizeof *t);
		t->fd = -1;
	}
	queue_post(q, it);
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

/* ---- settings ---- */

/* The CA bundle's text, for MTA-STS's HTTPS (httpc.h); "": the system's. */
static bool engine_set_ca(const char *path, struct buf *out)
{
	if (!*path)
		return true;
	FILE *f = fopen(path, "r");
	char chunk[4096];
	size_t n;
	while (f && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
		buf_append(out, chunk, n);
	if (!f || ferror(f))
		log_error("smtp_tls_ca_file: cannot read %s: %s", path, strerror(errno));
	bool ok = f && !ferror(f);
	if (f)
		fclose(f);
	return ok;
}

static struct engine_set *engine_set_new(struct settings *st)
{
	const struct conf *c = &st->conf;
	struct engine_set *es = util_xcalloc(1, sizeof *es);
	int bad = 0;
	es->refs = 1;
	es->set = settings_ref(st);
	es->map = route_map_load(c->transport_map, &bad);
	es->tls = c->smtp_tls;
	es->ssl = smtpc_ssl_ctx(es->tls, c->smtp_tls_ca_file);
	if (c->mta_sts && !(es->sts_ssl = smtpc_sts_ctx(c->smtp_tls_ca_file)))
		bad++;
	if ((c->mta_sts || c->tls_rpt) && !engine_set_ca(c->smtp_tls_ca_file, &es->sts_ca))
		bad++;
	es->myself = myself_new(c);
	if (es->tls > SMTPC_TLS_MAY)   /* for TLS-Required: No (RFC 8689 5) */
		es->ssl_may = smtpc_ssl_ctx(SMTPC_TLS_MAY, NULL);
	const char *colon = strchr(c->relayhost_auth, ':');
	if (colon) {
		es->auth_user = strndup(c->relayhost_auth, (size_t)(colon - c->relayhost_auth));
		es->auth_pass = util_xstrdup(colon + 1);
	}
	if (bad || (es->tls != SMTPC_TLS_NONE && !es->ssl) || (es->tls > SMTPC_TLS_MAY && !es->ssl_may)) {
		engine_set_unref(es);
		return NULL;
	}
	return es;
}

struct engine_set *engine_set_ref(struct engine_set *es)
{
	es->refs++;
	return es;
}

void engine_set_unref(struct engine_set *es)
{
	if (!es || --es->refs > 0)
		return;
	if (es->ssl_may)
		SSL_CTX_free(es->ssl_may);
	route_map_free(es->map);
	if (es->ssl)
		SSL_CTX_free(es->ssl);
	if (es->sts_ssl)
		SSL_CTX_free(es->sts_ssl);
	buf_free(&es->sts_ca);
	free(es->auth_user);
	free(es->auth_pass);
	myself_free(es->myself);
	settings_unref(es->set);
	free(es);
}

static void queue_take(struct queue *q, struct engine_set *es)
{
	struct engine_set *old = q->cur;
	q->cur = es;
	q->conf = &es->set->conf;
	if (q->dns)
		dns_set_timeout(q->dns, q->conf->dns_timeout);
	engine_set_unref(old);
}

/* On the loop: a reload's settings replace the current ones. */
static void queue_reloaded(struct queue *q, struct inbox_item *it)
{
	queue_take(q, it->reload);
	it->reload = NULL;
	if (q->spool)
		spool_set_reserve(q->spool, q->conf->spool_reserve);
	log_info("queue: settings of generation %u taken", q->cur->set->generation);
	if (it->done)
		it->done(it->ctx, 0, 0);
	free(it);
	event_active(q->scan_ev, EV_TIMEOUT, 0);   /* new routes, new limits: look again */
}

bool queue_reload(struct queue *q, struct settings *st, queue_done_fn *done, void *ctx)
{
	struct engine_set *es = engine_set_new(st);
	if (!es)
		return false;
	struct inbox_item *it = util_xcalloc(1, sizeof *it);
	it->q = q;
	it->done = done;
	it->ctx = ctx;
	it->reload = es;
	queue_post(q, it);
	return true;
}

/* ---- start and stop ---- */

struct queue *queue_new(struct settings *st)
{
	struct engine_set *es = engine_set_new(st);
	if (!es)
		return NULL;
	struct queue *q = util_xcalloc(1, sizeof *q);
	queue_take(q, es);
	pthread_mutex_init(&q->rec_mu, NULL);
	pthread_cond_init(&q->rec_cv, NULL);
	pthread_mutex_init(&q->inbox_mu, NULL);
	return q;
}

static struct event *queue_event(struct queue *q, event_callback_fn fn, bool timer)
{
	struct event *ev = timer ? evtimer_new(q->base, fn, q) : event_new(q->base, -1, 0, fn, q);
	if (!ev)
		log_panic("queue: cannot create an event");
	return ev;
}

/* DANE (smtp_tls dane or dane-only at start) needs answers DNSSEC
 * validated (RFC 7672 2.1): the delivery resolver validates with
 * dns_trust_anchor, the file returned; NULL: it does not, as before (a
 * forwarder that serves unsigned zones below a signed root would be
 * bogus everywhere). */
static const char *queue_dnssec(const struct conf *c)
{
	if (c->smtp_tls != SMTPC_TLS_DANE && c->smtp_tls != SMTPC_TLS_DANE_ONLY)
		return NULL;
	if (!*c->dns_trust_anchor || access(c->dns_trust_anchor, R_OK) != 0) {
		log_warn("dns_trust_anchor %s: %s: no DNSSEC validation, DANE finds no secure "
		         "TLSA records (smtp_tls %s)", *c->dns_trust_anchor ? c->dns_trust_anchor : "\"\"",
		         *c->dns_trust_anchor ? strerror(errno) : "not set",
		         c->smtp_tls == SMTPC_TLS_DANE ? "dane acts as may" : "dane-only defers all mail");
		return NULL;
	}
	log_info("dns: DNSSEC validation with the trust anchors of %s (DANE)", c->dns_trust_anchor);
	return c->dns_trust_anchor;
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
	q->journal = spool_journal_open(sp);
	q->base = event_base_new();
	if (!q->base)
		log_panic("queue: cannot create an event loop");
	q->dns = dns_new_validating(q->base, q->conf->dns_resolver, queue_dnssec(q->conf));
	dns_set_timeout(q->dns, q->conf->dns_timeout);
	q->sts = sts_new(q);
	q->tlsrpt = tlsrpt_new(q);
	q->closer = closer_new(q->base);
	q->kick_ev = queue_event(q, queue_fresh_cb, false);
	q->timer_ev = queue_event(q, sched_wake, true);
	q->flush_ev = queue_event(q, sched_flush, false);
	q->recorded_ev = queue_event(q, sched_recorded, false);
	q->rec_retry_ev = queue_event(q, sched_rec_retry, true);
	q->scan_ev = queue_event(q, sched_scan_cb, false);
	q->stop_ev = queue_event(q, queue_stop_cb, false);
	q->inbox_ev = queue_event(q, queue_inbox_cb, false);
	q->post = post_new(q->base);
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
			if (it->dests)
				it->dests(it->ctx, NULL);
			if (it->rel && it->rel->started)
				it->rel->started(it->rel->ctx, ECANCELED, 0, 0);
			if (it->rel && it->rel->via)
				dest_conduit_done(q, it->rel->via);
			if (it->conduit) {
				closer_taken_free(&it->taken);
				dest_conduit_attach(q, it->conduit, NULL);
			}
			free(it->rel);
			engine_set_unref(it->reload);
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
	sts_free(q->sts);       /* its lookups, before the resolver goes */
	tlsrpt_free(q->tlsrpt);
	dns_free(q->dns);
	release_free_all(q);    /* before its conduits go */
	post_free(q->post);     /* the writer's last answers: freed */
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
	spool_journal_close(q->journal);   /* after the last record */
	engine_set_unref(q->cur);
	pthread_mutex_destroy(&q->rec_mu);
	pthread_cond_destroy(&q->rec_cv);
	pthread_mutex_destroy(&q->inbox_mu);
	free(q);
}
