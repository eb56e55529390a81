/* report: the delivery status reports a message's results call for
 * (RFC 3464: failure, delay and success, as the sender asked with
 * NOTIFY, RFC 3461 4.1), gathered per message while its results come in
 * and queued as new messages from <> once it is finished (see engine.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deliver/engine.h"
#include "lib/buf.h"
#include "lib/log.h"
#include "lib/util.h"

void report_note(struct qmsg *m, enum dsn_kind k, struct spool_rcpt *r, const char *action)
{
	if (!dsn_wanted(&m->env, r, k))
		return;
	if (!m->rep[k])
		m->rep[k] = util_xcalloc(m->env.nrcpt, sizeof *m->rep[k]);
	m->rep[k][m->nrep[k]++] = (struct dsn_item){ r, action };
}

void report_free(struct qmsg *m)
{
	for (int k = 0; k < 3; k++)
		free(m->rep[k]);
}

/* The start of the message, for the report's third part (RFC 3462). */
static bool report_read_body(struct queue *q, const struct spool_env *env, struct buf *out)
{
	struct buf chunk = BUF_INIT;
	int err = 0;
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
	if (addr_parse_mailbox(m->env.sender, &a) != ADDR_OK ||
	    policy_rcpt(q->policy, &a, true, t) != POLICY_ACCEPT || t->n == 0) {
		log_warn("%s: cannot return a report to <%s>: no such mailbox or route",
		         m->env.qid, m->env.sender);
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
		                                  .remote_mta = (char *)"", .next_try = m->now };
	return true;
}

/* 0, or the spool's error: the report was not queued, and can be again. */
static int report_queue(struct queue *q, struct qmsg *m, enum dsn_kind k,
                        const struct buf *content)
{
	struct policy_targets t = { 0, 0, NULL };
	struct spool_env e;
	if (!report_env(q, m, &e, &t)) {
		policy_targets_free(&t);
		return 0;   /* nowhere to send it: never will be */
	}
	struct dsn_report r = { k, q->conf->hostname, e.qid, &m->env, m->rep[k], m->nrep[k],
	                        (time_t)m->now, (time_t)(m->env.arrival + q->conf->max_queue_lifetime),
	                        content->data, content->len, dsn_return_full(&m->env, k) };
	struct buf body = BUF_INIT;
	dsn_build(&body, &r);
	e.size = body.len;
	int err = spool_inject(q->spool, &e, body.data, body.len);
	static const char *const what[] = { "non-delivery", "delay", "success" };
	if (err)
		log_error("%s: cannot queue the %s report: %s", m->env.qid, what[k], strerror(err));
	else
		log_info("%s: sender %s notification: %s", m->env.qid, what[k], e.qid);
	buf_free(&body);
	free(e.rcpt);
	policy_targets_free(&t);
	return err;
}

int report_send(struct queue *q, struct qmsg *m)
{
	if (!m->nrep[0] && !m->nrep[1] && !m->nrep[2])
		return 0;
	struct buf content = BUF_INIT;
	if (!report_read_body(q, &m->env, &content))
		log_warn("%s: cannot read the message for its report", m->env.qid);
	int err = 0;
	for (int k = 0; k < 3; k++) {
		int e = m->nrep[k] ? report_queue(q, m, (enum dsn_kind)k, &content) : 0;
		if (e)
			err = e;
		else
			m->nrep[k] = 0;
	}
	buf_free(&content);
	return err;
}
