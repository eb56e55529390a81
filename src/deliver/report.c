/* report: the delivery status reports a message's results call for
 * (RFC 3464: failure, delay and success, as the sender asked with
 * NOTIFY, RFC 3461 4.1), gathered per message while its results come in,
 * made once it is finished, and queued as new messages from <> in the
 * same group commit as those results (spool_update_many_async): no
 * delivery waits for a report's fsync, and a report exists exactly when
 * the results that call for it are recorded (see engine.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deliver/engine.h"
#include "lib/buf.h"
#include "lib/event.h"
#include "lib/log.h"
#include "lib/msghead.h"
#include "lib/util.h"
#include "policy/capture.h"

void report_note(struct qmsg *m, enum dsn_kind k, struct spool_rcpt *r, const char *action)
{
	if (!dsn_wanted(&m->env, r, k))
		return;
	if (!m->rep[k])
		m->rep[k] = util_xcalloc(m->env.nrcpt, sizeof *m->rep[k]);
	m->rep[k][m->nrep[k]++] = (struct dsn_item){ r, action };
}

/* The start of the message, for the report's third part (RFC 3462): its
 * prefix (spool_env.prefix) too, as every transport sends it. */
static bool report_read_body(struct queue *q, const struct spool_env *env, struct buf *out)
{
	struct buf chunk = BUF_INIT;
	int err = 0;
	if (env->prefix)
		buf_puts(out, env->prefix);
	for (unsigned seq = 0; out->len <= DSN_RETURN_MAX; seq++) {
		err = spool_reader_chunk(q->reader, env, seq, &chunk);
		if (err)
			break;
		buf_append(out, chunk.data, chunk.len);
	}
	buf_free(&chunk);
	return err == ENOENT || err == 0;
}

/* The report's envelope: from <>, to the original sender, routed as any
 * recipient would be (aliases, local, remote). */
static bool report_env(struct queue *q, const struct qmsg *m, struct spool_env *e,
                       struct policy_targets *t)
{
	struct addr a;
	const struct settings *st = q->cur->set;
	struct capture_facts f = { .rcpt = m->env.sender, .from = "" };
	const char *inbox = capture_inbox(st->capture, &f, st->conf.capture);
	bool parsed = addr_parse_mailbox(m->env.sender, &a) == ADDR_OK;
	if (parsed && inbox) {
		/* the test mode: the report is captured as the mail was */
		policy_capture_target(t, m->env.sender, inbox);
	} else if (!parsed || policy_rcpt(st, &a, true, t) != POLICY_ACCEPT || t->n == 0) {
		ev_note(LOG_WARNING, m->env.session, m->env.qid,
		        "cannot return a report to <%s>: no such mailbox or route", m->env.sender);
		return false;
	}
	memset(e, 0, sizeof *e);
	util_qid(e->qid);
	e->sender = e->envid = e->client = e->helo = (char *)"";
	e->arrival = m->now;
	e->nrcpt = t->n;
	e->rcpt = util_xcalloc(t->n, sizeof *e->rcpt);
	for (size_t i = 0; i < t->n; i++)
		e->rcpt[i] = (struct spool_rcpt){ .idx = (unsigned)i, .orig = m->env.sender,
		                                  .addr = t->v[i].addr, .transport = t->v[i].transport,
		                                  .orcpt = (char *)"", .last_reply = (char *)"",
		                                  .remote_mta = (char *)"", .next_try = m->now,
		                                  .inbox = (char *)t->v[i].inbox,
		                                  .held = t->v[i].inbox ? SPOOL_CAPTURED : 0 };
	return true;
}

/* One report, made once: its envelope (the targets hold its recipients'
 * addresses) and its RFC 3464 body. */
struct report_out {
	enum dsn_kind kind;
	struct spool_env env;
	struct policy_targets targets;
	struct buf body;
};

static void report_skip_body(void *ctx, const char *p, size_t n)
{
	(void)ctx, (void)p, (void)n;
}

static void report_build(struct queue *q, struct qmsg *m, enum dsn_kind k,
                         const struct buf *content)
{
	struct report_out *o = &m->out[m->nout];
	memset(o, 0, sizeof *o);
	if (!report_env(q, m, &o->env, &o->targets)) {
		policy_targets_free(&o->targets);
		return;   /* nowhere to send it: never will be */
	}
	o->kind = k;
	struct dsn_report r = { k, q->conf->hostname, o->env.qid, &m->env, m->rep[k], m->nrep[k],
	                        (time_t)m->now, (time_t)(m->env.arrival + q->conf->max_queue_lifetime),
	                        content->data, content->len, dsn_return_full(&m->env, k) };
	dsn_build(&o->body, &r);
	o->env.size = o->body.len;
	if (o->env.nrcpt && o->env.rcpt[0].inbox) {   /* what its inbox lists */
		struct msghead h;
		msghead_init(&h, 64 * 1024, report_skip_body, NULL);
		msghead_feed(&h, o->body.data, o->body.len);
		msghead_end(&h);
		o->env.capture = spool_capture_of(&h);
		msghead_free(&h);
	}
	m->nout++;
}

void report_make(struct queue *q, struct qmsg *m)
{
	if (m->out || (!m->nrep[0] && !m->nrep[1] && !m->nrep[2]))
		return;
	struct buf content = BUF_INIT;
	if (!report_read_body(q, &m->env, &content))
		ev_note(LOG_WARNING, m->env.session, m->env.qid, "cannot read the message for its report");
	m->out = util_xcalloc(3, sizeof *m->out);
	for (int k = 0; k < 3; k++)
		if (m->nrep[k])
			report_build(q, m, (enum dsn_kind)k, &content);
	buf_free(&content);
}

size_t report_add(const struct qmsg *m, struct spool_report *v)
{
	for (size_t i = 0; i < m->nout; i++)
		v[i] = (struct spool_report){ &m->out[i].env, m->out[i].body.data, m->out[i].body.len };
	return m->nout;
}

void report_recorded(const struct qmsg *m)
{
	static const char *const what[] = { "non-delivery", "delay", "success" };
	for (size_t i = 0; i < m->nout; i++) {
		struct ev e;
		ev_init(&e, EK_REPORT, LOG_INFO, m->env.session, m->env.qid);
		ev_add(&e, "kind", "%s", what[m->out[i].kind]);
		ev_add(&e, "report", "%s", m->out[i].env.qid);
		ev_emit(&e);
	}
}

void report_free(struct qmsg *m)
{
	for (int k = 0; k < 3; k++)
		free(m->rep[k]);
	for (size_t i = 0; i < m->nout; i++) {
		free(m->out[i].env.rcpt);
		spool_capture_free(m->out[i].env.capture);
		policy_targets_free(&m->out[i].targets);
		buf_free(&m->out[i].body);
	}
	free(m->out);
}
