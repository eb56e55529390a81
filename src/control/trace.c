/* trace: the control socket's streams (see control.h). `trace` sends live
 * event records that match its filters (a client address, a session, a
 * queue id; with the transcript, the SMTP lines too); `monitor` sends the
 * counters once a second. Records come from any thread: the subscriber
 * copies them into a bounded list for the main loop; a client that does
 * not read loses records (it is told how many), never the daemon memory.
 */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "control/control_priv.h"
#include "control/stats.h"
#include "lib/util.h"

#define TRACE_RECS_MAX 10000     /* records waiting for the loop, at most */
#define TRACE_SESSIONS 16        /* sessions a --client trace follows */

/* A record copied off the emitting thread. */
struct ctl_rec {
	struct ctl_rec *next;
	struct timeval at;
	struct ev e;        /* cut after its text (last member) */
};

/* ---- the subscriber: any thread ---- */

void trace_event(void *ctx, const struct ev *e)
{
	struct control *c = ctx;
	stats_event(NULL, e);
	if (atomic_load_explicit(&c->ntrace, memory_order_relaxed) == 0)
		return;
	if ((e->kind == EK_IN || e->kind == EK_OUT) && atomic_load(&c->ntranscript) == 0)
		return;
	/* the record's text as long as it is (most are far below EK_TEXT) */
	size_t used = offsetof(struct ev, text) + e->used;
	struct ctl_rec *r = malloc(offsetof(struct ctl_rec, e) + used);
	if (!r)
		return;   /* a trace record is not worth a panic */
	memcpy(&r->e, e, used);
	r->next = NULL;
	gettimeofday(&r->at, NULL);
	pthread_mutex_lock(&c->mu);
	bool wake = !c->recs;
	if (c->nrecs < TRACE_RECS_MAX) {
		*c->recs_tail = r;
		c->recs_tail = &r->next;
		c->nrecs++;
	} else {
		free(r);
		wake = false;
	}
	pthread_mutex_unlock(&c->mu);
	if (wake)
		event_active(c->rec_ev, EV_TIMEOUT, 0);
}

/* ---- on the loop ---- */

/* Does the client want this record? A --client trace follows the
 * sessions it has seen from that address (their messages' lines carry
 * the session). */
static bool trace_match(struct ctl_client *cl, const struct ev *e)
{
	if ((e->kind == EK_IN || e->kind == EK_OUT) && !cl->t_transcript)
		return false;
	if (cl->t_qid[0] && strcmp(cl->t_qid, e->qid))
		return false;
	if (cl->t_session && cl->t_session != e->session)
		return false;
	if (!cl->t_client[0])
		return true;
	for (size_t i = 0; i < TRACE_SESSIONS && cl->last[i]; i++)
		if (e->session && cl->last[i] == e->session)
			return true;
	char want[80];
	snprintf(want, sizeof want, "[%s]", cl->t_client);
	if (!ev_is(e, "client", want))
		return false;
	if (e->session) {   /* remember it, oldest out */
		memmove(cl->last + 1, cl->last, (TRACE_SESSIONS - 1) * sizeof cl->last[0]);
		cl->last[0] = e->session;
	}
	return true;
}

static json_t *trace_json(const struct ctl_rec *r)
{
	static const char *const levels[] = { "debug", "info", "warning", "error" };
	const struct ev *e = &r->e;
	char when[UTIL_ISO_TIME_LEN + 1];
	util_iso_time(&r->at, when);
	json_t *o = json_pack("{s:s, s:s, s:s}", "time", when, "kind", ev_name(e->kind), "level",
	                      levels[e->level]);
	if (e->session)
		json_object_set_new(o, "session", json_integer((json_int_t)e->session));
	if (e->qid[0])
		json_object_set_new(o, "queue_id", json_string(e->qid));
	for (size_t i = 0; i < e->n; i++) {
		const struct ev_field *f = &e->f[i];
		json_t *v = f->flag ? json_true() : json_stringn(e->text + f->off, f->len);
		json_object_set_new(o, f->key, v ? v : json_string("(not UTF-8)"));
	}
	return o;
}

static void trace_deliver(struct control *c, const struct ctl_rec *r)
{
	json_t *o = NULL;
	for (struct ctl_client *cl = c->clients; cl; cl = cl->next) {
		if (cl->mode != CL_TRACE || !trace_match(cl, &r->e))
			continue;
		if (ctl_output_full(cl)) {
			cl->dropped++;
			continue;
		}
		if (cl->dropped) {
			ctl_send(cl, json_pack("{s:I}", "dropped", (json_int_t)cl->dropped));
			cl->dropped = 0;
		}
		if (!o)
			o = trace_json(r);
		ctl_send(cl, json_incref(o));
	}
	json_decref(o);
}

void trace_flush(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct control *c = arg;
	pthread_mutex_lock(&c->mu);
	struct ctl_rec *r = c->recs;
	c->recs = NULL;
	c->recs_tail = &c->recs;
	c->nrecs = 0;
	pthread_mutex_unlock(&c->mu);
	while (r) {
		struct ctl_rec *next = r->next;
		trace_deliver(c, r);
		free(r);
		r = next;
	}
}

void trace_free_records(struct control *c)
{
	while (c->recs) {
		struct ctl_rec *r = c->recs;
		c->recs = r->next;
		free(r);
	}
	c->recs_tail = &c->recs;
}

void trace_start(struct ctl_client *cl, json_t *req)
{
	struct control *c = cl->c;
	const char *client = ctl_str(req, "client"), *qid = ctl_str(req, "queue_id");
	json_t *session = json_object_get(req, "session");
	snprintf(cl->t_client, sizeof cl->t_client, "%s", client ? client : "");
	snprintf(cl->t_qid, sizeof cl->t_qid, "%s", qid ? qid : "");
	cl->t_session = json_is_integer(session) ? (uint64_t)json_integer_value(session) : 0;
	cl->t_transcript = json_is_true(json_object_get(req, "transcript"));
	memset(cl->last, 0, sizeof cl->last);
	ctl_send(cl, json_pack("{s:b, s:b}", "ok", 1, "tracing", 1));
	cl->mode = CL_TRACE;
	if (atomic_fetch_add(&c->ntrace, 1) == 0)
		ev_set_kinds(c->sub, EV_ALL_KINDS);
	if (cl->t_transcript && atomic_fetch_add(&c->ntranscript, 1) == 0)
		ev_set_min(c->sub, LOG_DEBUG);
}

/* ---- monitor ---- */

void monitor_start(struct ctl_client *cl)
{
	struct control *c = cl->c;
	for (int i = 0; i < STATS__COUNT; i++)
		cl->last[i] = stats_get(i);
	ctl_send(cl, json_pack("{s:b, s:b}", "ok", 1, "monitoring", 1));
	cl->mode = CL_MONITOR;
	if (c->nmonitor++ == 0) {
		struct timeval tv = { 1, 0 };
		event_add(c->tick_ev, &tv);
	}
}

/* Once a second: what changed since the last line, and the sessions open. */
void monitor_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct control *c = arg;
	for (struct ctl_client *cl = c->clients; cl; cl = cl->next) {
		if (cl->mode != CL_MONITOR || ctl_output_full(cl))
			continue;
		json_t *o = json_pack("{s:I, s:i}", "time", (json_int_t)time(NULL), "sessions",
		                      (int)c->env.srv->nsessions);
		for (int i = 0; i < STATS__COUNT; i++) {
			uint64_t now = stats_get(i);
			json_object_set_new(o, stats_names[i], json_integer((json_int_t)(now - cl->last[i])));
			cl->last[i] = now;
		}
		ctl_send(cl, o);
	}
}

void trace_stop(struct ctl_client *cl)
{
	struct control *c = cl->c;
	if (cl->mode == CL_TRACE) {
		if (atomic_fetch_sub(&c->ntrace, 1) == 1)
			ev_set_kinds(c->sub, STATS_KINDS);
		if (cl->t_transcript && atomic_fetch_sub(&c->ntranscript, 1) == 1)
			ev_set_min(c->sub, LOG_INFO);
	}
	if (cl->mode == CL_MONITOR && --c->nmonitor == 0)
		event_del(c->tick_ev);
	cl->mode = CL_REQ;
}
