/* sched: what is delivered when (see engine.h). Scanning the spool and
 * taking fresh messages from the handoff, timers and exponential backoff,
 * the in-flight table, planning a message's due recipients into jobs for
 * the transports, applying results, and recording them.
 *
 * New mail arrives as fresh envelopes from the spool's handoff (after each
 * commit, spool_take_fresh): nothing is read back from the database for
 * it. The database is scanned at start, when a retry falls due, and when
 * the handoff could not keep up (a backlog), for at most QUEUE_INFLIGHT_MAX
 * messages in flight: a deep queue is read as it drains.
 *
 * A message stays in flight until its results are on disk. Results the
 * spool cannot take (a full disk) are held in memory and offered again
 * after a backoff; meanwhile no scan or handoff starts the message again,
 * so a delivery the next hop accepted is not made twice.
 */
#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "deliver/engine.h"
#include "lib/addr.h"
#include "lib/event.h"
#include "lib/log.h"
#include "lib/util.h"
#include "policy/hold.h"

static void sched_wake_at(struct queue *q, int64_t t);
static void sched_arm(struct queue *q, int64_t now);
static int64_t sched_age_period(const struct conf *c)
{
	unsigned shortest = c->hold_lifetime < c->delay_warning ? c->hold_lifetime : c->delay_warning;
	unsigned p = shortest / 4;
	return p < 1 ? 1 : p > QUEUE_IDLE_WAIT ? QUEUE_IDLE_WAIT : p;
}
static void sched_cmd_done(void *arg, int err, long count);

/* ---- results ---- */

/* Exponential backoff: retry_min, doubling, capped at retry_max. */
static int64_t sched_backoff(const struct conf *c, unsigned attempts)
{
	uint64_t d = c->retry_min;
	for (unsigned i = 1; i < attempts && d < c->retry_max; i++)
		d *= 2;
	return (int64_t)(d < c->retry_max ? d : c->retry_max);
}

static const char *sched_relay_name(const struct spool_rcpt *r)
{
	return r->transport == SPOOL_LOCAL ? "maildir" : r->remote_mta[0] ? r->remote_mta : "none";
}

static void sched_log_tls(const struct qmsg *m, const struct spool_rcpt *r, const char *status,
                          const char *tls)
{
	struct ev e;
	ev_init(&e, EK_DELIVERY, LOG_INFO, m->env.session, m->env.qid);
	ev_add(&e, "to", "<%s>", r->addr);
	if (strcmp(r->orig, r->addr) != 0)
		ev_add(&e, "orig_to", "<%s>", r->orig);
	ev_add(&e, "relay", "%s", sched_relay_name(r));
	ev_add(&e, "delay", "%llds", (long long)(m->now - m->env.arrival));
	ev_add(&e, "attempts", "%u", r->attempts);
	if (tls && *tls)   /* RFC 7672: the TLSA record that authenticated the MX */
		ev_add(&e, "tls", "%s", tls);
	ev_add(&e, "status", "%s", status);
	ev_add(&e, "reply", "%s", r->last_reply);
	ev_emit(&e);
}

static void sched_log(const struct qmsg *m, const struct spool_rcpt *r, const char *status)
{
	sched_log_tls(m, r, status, NULL);
}

/* A temporary failure: retry later, or give up when the message is too
 * old. Mail for a held domain waits for the next release instead (the
 * customer's server asks again when it is up), and lives hold_lifetime. */
static void sched_defer(struct queue *q, struct qmsg *m, struct spool_rcpt *r)
{
	const struct conf *c = q->conf;
	int64_t age = m->now - m->env.arrival;
	bool hold = hold_domain(c, addr_domain_of(r->addr));
	if (age >= (int64_t)(hold ? c->hold_lifetime : c->max_queue_lifetime)) {
		char why[600];
		snprintf(why, sizeof why, "4.4.7 message expired after %llds in the queue; last error: %s",
		         (long long)age, r->last_reply);
		free(r->last_reply);
		r->last_reply = util_xstrdup(why);
		r->status = SPOOL_FAILED;
		sched_log(m, r, "expired");
		report_note(m, DSN_FAILED, r, "failed");
		return;
	}
	if (hold) {
		r->held = true;
		sched_log(m, r, "deferred, held again");
	} else {
		r->next_try = m->now + sched_backoff(c, r->attempts);
		sched_wake_at(q, r->next_try);
		sched_log(m, r, "deferred");
	}
	if (!(r->dsn_flags & SPOOL_DSN_DELAY) && age >= (int64_t)c->delay_warning) {
		r->dsn_flags |= SPOOL_DSN_DELAY;   /* one delay report per recipient */
		report_note(m, DSN_DELAYED, r, "delayed");
	}
}

static void sched_apply(struct queue *q, struct qmsg *m, unsigned i,
                        const struct deliver_result *res, const char *remote, bool dsn_passed,
                        const char *tls)
{
	struct spool_rcpt *r = &m->env.rcpt[i];
	r->attempts++;
	r->tried_at = m->now;
	free(r->last_reply);
	r->last_reply = util_xstrdup(res->reply);
	free(r->remote_mta);
	r->remote_mta = util_xstrdup(remote);
	if (res->status == DELIVER_OK) {
		r->status = SPOOL_DELIVERED;
		if (q->journal)   /* a crash before the record must not deliver it again */
			m->journaled[spool_journal_add(q->journal, m->env.qid, r->idx)]++;
		sched_log_tls(m, r, "sent", tls);
		/* RFC 3461 4.1: a next hop that took NOTIFY reports success itself */
		if (r->transport != SPOOL_REMOTE)
			report_note(m, DSN_SUCCESS, r, "delivered");
		else if (!dsn_passed)
			report_note(m, DSN_SUCCESS, r, "relayed");
	} else if (res->status == DELIVER_PERM) {
		r->status = SPOOL_FAILED;
		sched_log(m, r, "bounced");
		report_note(m, DSN_FAILED, r, "failed");
	} else {
		sched_defer(q, m, r);
	}
	release_result(q, m, r);
}

/* ---- messages ---- */

/* Every step per message is O(1): a message is found by qid in a table
 * that grows with the queue, and leaves msgs through its pprev link. (A
 * walk of msgs from its head to unlink each finished message, the oldest
 * near its tail, made draining a deep queue quadratic.) */
static void sched_msg_free(struct queue *q, struct qmsg *m)
{
	hmap_del(&q->inflight, &m->node);
	for (size_t i = 0; i < m->njobs; i++) {
		free(m->jobs[i]->idx);
		free(m->jobs[i]->res);
		free(m->jobs[i]);
	}
	free(m->jobs);
	report_free(m);
	if (m->told)
		sched_cmd_done(m->told, ECANCELED, 0);   /* never recorded (shutdown) */
	spool_env_free(&m->env);
	free(m);
}

static void sched_msgs_add(struct queue *q, struct qmsg *m)
{
	m->next = q->msgs;
	if (m->next)
		m->next->pprev = &m->next;
	m->pprev = &q->msgs;
	q->msgs = m;
}

static void sched_msg_done(struct queue *q, struct qmsg *m)
{
	*m->pprev = m->next;
	if (m->next)
		m->next->pprev = m->pprev;
	m->pprev = NULL;
	m->next = q->done;
	q->done = m;
	event_active(q->flush_ev, EV_TIMEOUT, 0);
}

static bool sched_finished(const struct spool_env *e)
{
	for (size_t i = 0; i < e->nrcpt; i++)
		if (e->rcpt[i].status == SPOOL_PENDING)
			return false;
	return true;
}

/* When the first of a message's pending recipients falls due. */
static int64_t sched_next_try(const struct spool_env *e)
{
	int64_t t = INT64_MAX;
	for (size_t i = 0; i < e->nrcpt; i++)
		if (e->rcpt[i].status == SPOOL_PENDING && !e->rcpt[i].held && e->rcpt[i].next_try < t)
			t = e->rcpt[i].next_try;
	return t;
}

/* Results are recorded without blocking the loop: the batch goes to the
 * writer, whose thread tells us after the commit; connections go on
 * meanwhile, and what finishes in the meantime forms the next batch. */
void sched_rec_done(void *arg, int err)
{
	struct queue *q = arg;
	pthread_mutex_lock(&q->rec_mu);
	q->rec_err = err;
	/* before rec_pending is cleared: queue_stop may free the event after */
	event_active(q->recorded_ev, EV_TIMEOUT, 0);
	q->rec_pending = false;
	pthread_cond_signal(&q->rec_cv);
	pthread_mutex_unlock(&q->rec_mu);
}

/* A finished message whose results (or reports) the spool refused: kept,
 * still in flight (no scan or handoff starts it again), until a later
 * round writes them. */
static void sched_hold(struct queue *q, struct qmsg *m, int err)
{
	if (!m->held)
		ev_note(LOG_WARNING, m->env.session, m->env.qid,
		        "delivery results held until the spool takes them: %s", strerror(err));
	m->held = true;
	m->next = q->held;
	q->held = m;
	q->nheld++;
}

/* Offer the held results again after a backoff: 1 s, doubling up to
 * QUEUE_REC_RETRY_MAX. One line per round; a round already due stays. */
static void sched_hold_round(struct queue *q, int err)
{
	if (!err || !q->held || evtimer_pending(q->rec_retry_ev, NULL))
		return;
	q->rec_delay = q->rec_delay ? q->rec_delay * 2 : 1;
	if (q->rec_delay > QUEUE_REC_RETRY_MAX)
		q->rec_delay = QUEUE_REC_RETRY_MAX;
	q->rec_rounds++;
	log_error("queue: cannot record delivery results of %zu message%s (%s); retrying in %u s",
	          q->nheld, q->nheld == 1 ? "" : "s", strerror(err), q->rec_delay);
	struct timeval tv = { (time_t)q->rec_delay, 0 };
	evtimer_add(q->rec_retry_ev, &tv);
}

void sched_rec_retry(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct queue *q = arg;
	struct qmsg **tail = &q->done;
	while (*tail)
		tail = &(*tail)->next;
	*tail = q->held;
	q->held = NULL;
	q->nheld = 0;
	event_active(q->flush_ev, EV_TIMEOUT, 0);
}

/* The batch under way was committed (err 0) or not: free its messages,
 * or hold them. Returns whether any still has recipients pending. */
static bool sched_recorded_msgs(struct queue *q, int err)
{
	bool pending = false;
	size_t was_held = 0;
	while (q->recording) {
		struct qmsg *m = q->recording;
		q->recording = m->next;
		if (err) {
			sched_hold(q, m, err);
			continue;
		}
		was_held += m->held;
		for (int f = 0; q->journal && f < 2; f++)
			spool_journal_recorded(q->journal, f, m->journaled[f]);
		report_recorded(m);
		if (m->told) {
			sched_cmd_done(m->told, 0, m->told->count);
			m->told = NULL;
		}
		if (sched_finished(&m->env)) {
			struct ev e;
			ev_init(&e, EK_REMOVED, LOG_INFO, m->env.session, m->env.qid);
			ev_emit(&e);
		} else {
			pending = true;
			/* its retry may have fallen due while it was held, or a
			 * release made it due while it was in flight */
			int64_t next = sched_next_try(&m->env);
			if (next <= (int64_t)time(NULL) || (m->held && next < INT64_MAX))
				sched_wake_at(q, next);
		}
		sched_msg_free(q, m);
	}
	free(q->rec_envs);
	free(q->rec_reps);
	q->rec_envs = NULL;
	q->rec_reps = NULL;
	if (was_held)
		log_info("queue: delivery results of %zu held message%s recorded after %u failed round%s",
		         was_held, was_held == 1 ? "" : "s", q->rec_rounds, q->rec_rounds == 1 ? "" : "s");
	if (!err && !q->held && !evtimer_pending(q->rec_retry_ev, NULL))
		q->rec_delay = q->rec_rounds = 0;
	return pending;
}

static void sched_bounce(struct queue *q, struct inbox_item *it);

void sched_recorded(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct queue *q = arg;
	pthread_mutex_lock(&q->rec_mu);
	int err = q->rec_err;
	pthread_mutex_unlock(&q->rec_mu);
	bool pending = sched_recorded_msgs(q, err);
	sched_hold_round(q, err);
	if (q->done)
		event_active(q->flush_ev, EV_TIMEOUT, 0);
	if (!err && q->rescan_recorded) {
		q->rescan_recorded = false;   /* an operator's command waited for them */
		event_active(q->scan_ev, EV_TIMEOUT, 0);
	}
	if (q->backlog)
		sched_scan(q);  /* room again for what the last scan left out */
	else if (pending)
		sched_arm(q, (int64_t)time(NULL));  /* their retry, as now recorded */
	struct inbox_item *it = q->parked;
	q->parked = NULL;
	while (it) {   /* bounces that waited for a record: again (or parked again) */
		struct inbox_item *next = it->next;
		sched_bounce(q, it);
		it = next;
	}
}

/* Hand every finished message to the writer in one group commit, with
 * the reports its results call for (made here, once): nothing on the
 * loop waits for that commit. */
static void sched_flush_batch(struct queue *q)
{
	size_t n = 0, nrep = 0;
	for (struct qmsg *m = q->done; m; m = m->next) {
		report_make(q, m);
		n++;
	}
	q->rec_envs = util_xcalloc(n, sizeof *q->rec_envs);
	q->rec_reps = util_xcalloc(n * REPORT_MAX, sizeof *q->rec_reps);
	n = 0;
	for (struct qmsg *m = q->done; m; m = m->next) {
		q->rec_envs[n++] = &m->env;
		nrep += report_add(m, q->rec_reps + nrep);
	}
	q->recording = q->done;
	q->done = NULL;
	pthread_mutex_lock(&q->rec_mu);
	q->rec_pending = true;
	pthread_mutex_unlock(&q->rec_mu);
	spool_update_many_async(q->spool, q->rec_envs, n, q->rec_reps, nrep, sched_rec_done, q);
}

void sched_flush(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct queue *q = arg;
	if (q->recording || !q->done)
		return;  /* sched_recorded flushes again */
	sched_flush_batch(q);
}

void sched_job_done(struct queue *q, struct qjob *job)
{
	struct qmsg *m = job->m;
	for (size_t i = 0; i < job->n; i++)
		sched_apply(q, m, job->idx[i], &job->res[i], job->sj.remote_mta, job->sj.dsn_offered,
		            job->sj.tls);
	if (--m->jobs_pending == 0)
		sched_msg_done(q, m);
}

/* ---- scanning ---- */

static struct qjob *sched_job_for(struct qmsg *m, const struct route *r)
{
	for (size_t i = 0; i < m->njobs; i++)
		if (!strcmp(m->jobs[i]->route.key, r->key) && m->jobs[i]->n < QUEUE_JOB_RCPTS)
			return m->jobs[i];
	m->jobs = util_xrealloc(m->jobs, m->njobs + 1, sizeof *m->jobs);
	struct qjob *j = util_xcalloc(1, sizeof *j);
	j->m = m;
	j->route = *r;
	j->tr = r->kind == ROUTE_LOCAL ? &transport_maildir : r->lmtp ? &transport_lmtp
	                                                              : &transport_smtp;
	m->jobs[m->njobs++] = j;
	return j;
}

/* Sized to what the job holds: most have one recipient, and a job was a
 * 52 KB zeroed allocation with room for QUEUE_JOB_RCPTS of them. */
static void sched_job_add(struct qjob *j, unsigned i)
{
	if (j->n == j->cap) {
		j->cap = j->cap ? j->cap * 2 : 1;
		j->idx = util_xrealloc(j->idx, j->cap, sizeof *j->idx);
		j->res = util_xrealloc(j->res, j->cap, sizeof *j->res);
	}
	j->idx[j->n++] = i;
}

/* ---- holds ---- */

struct held_domain {
	struct hmap_node node;
	char name[256];
};

static struct held_domain *sched_held_find(const struct queue *q, const char *domain)
{
	char d[256];
	snprintf(d, sizeof d, "%s", domain);
	util_lower(d);
	size_t h = hmap_hash(d);
	for (struct hmap_node *n = hmap_first(&q->held_domains, h); n; n = hmap_next(n)) {
		struct held_domain *hd = HMAP_ENTRY(n, struct held_domain, node);
		if (!strcmp(hd->name, d))
			return hd;
	}
	return NULL;
}

static void sched_held_set(struct queue *q, const char *domain, bool hold)
{
	struct held_domain *hd = sched_held_find(q, domain);
	if (hold && !hd) {
		hd = util_xcalloc(1, sizeof *hd);
		snprintf(hd->name, sizeof hd->name, "%s", domain);
		util_lower(hd->name);
		hmap_add(&q->held_domains, &hd->node, hmap_hash(hd->name));
	} else if (!hold && hd) {
		hmap_del(&q->held_domains, &hd->node);
		free(hd);
	}
}

static void sched_held_free(struct hmap_node *n, void *ctx)
{
	(void)ctx;
	free(HMAP_ENTRY(n, struct held_domain, node));
}

/* A recipient that must wait: held already, or for a held domain (by
 * hold_domains or an operator: then it is marked, and recording the
 * message keeps it out of the due scans); unless a release under way
 * took it, which also says whether it goes over ATRN's connection. */
static bool sched_waits(struct queue *q, const struct qmsg *m, struct spool_rcpt *r,
                        const struct hold_release **rel)
{
	if (r->held == SPOOL_QUARANTINED || r->held == SPOOL_CAPTURED)
		return true;   /* only its queue id releases it; the test mode's, nothing */
	*rel = release_of(q, m, r);
	if (*rel) {
		r->held = false;
		return false;
	}
	const char *domain = addr_domain_of(r->addr);
	if (!r->held && (hold_domain(q->conf, domain) ||
	                 (q->held_domains.n && sched_held_find(q, domain))))
		r->held = true;
	return r->held;
}

/* Where a released recipient goes: its release's conduit (ATRN) or host
 * (a drain), else by route_for. */
static bool sched_route(struct queue *q, const struct hold_release *rel,
                        const struct spool_rcpt *r, struct route *rt)
{
	if (rel && rel->via) {
		dest_conduit_route(rel->via, rt);
		return true;
	}
	if (rel && rel->to[0])
		return route_to_host(rel->to, rt);
	return route_for(q->conf, q->cur->map, r->addr, r->transport, rt);
}

/* Held mail ages (hold_lifetime): a delay report once delay_warning has
 * passed (as NOTIFY allows), a bounce at the end. */
static void sched_held_age(struct queue *q, struct qmsg *m, struct spool_rcpt *r)
{
	const struct conf *c = q->conf;
	int64_t age = m->now - m->env.arrival;
	char why[600];
	if (age >= (int64_t)c->hold_lifetime) {
		snprintf(why, sizeof why, "4.4.7 held for %llds and never asked for (hold_lifetime)%s%s",
		         (long long)age, r->last_reply[0] ? "; last error: " : "", r->last_reply);
		free(r->last_reply);
		r->last_reply = util_xstrdup(why);
		r->status = SPOOL_FAILED;
		r->held = false;
		r->tried_at = m->now;
		sched_log(m, r, "expired");
		report_note(m, DSN_FAILED, r, "failed");
		return;
	}
	if ((r->dsn_flags & SPOOL_DSN_DELAY) || age < (int64_t)c->delay_warning)
		return;
	r->dsn_flags |= SPOOL_DSN_DELAY;
	if (!r->last_reply[0]) {
		snprintf(why, sizeof why, "4.4.0 held here for %s until its own server asks for it",
		         addr_domain_of(r->addr));
		free(r->last_reply);
		r->last_reply = util_xstrdup(why);
	}
	report_note(m, DSN_DELAYED, r, "delayed");
}

/* A recipient refused when it was queued fails with the reason kept
 * then, no attempt made. */
static void sched_refused(struct queue *q, struct qmsg *m, unsigned i)
{
	struct deliver_result res = { DELIVER_PERM, "" };
	const char *why = m->env.rcpt[i].last_reply;
	snprintf(res.reply, sizeof res.reply, "%s", why && *why ? why : "5.1.1 refused when queued");
	sched_apply(q, m, i, &res, "", false, NULL);
}

/* Sort a message's due recipients into jobs, by transport and next hop:
 * local mailboxes (one job), LMTP, and SMTP per destination. */
static void sched_plan(struct queue *q, struct qmsg *m)
{
	for (unsigned i = 0; i < m->env.nrcpt; i++) {
		struct spool_rcpt *r = &m->env.rcpt[i];
		const struct hold_release *rel;
		if (r->status != SPOOL_PENDING)
			continue;
		if (sched_waits(q, m, r, &rel)) {
			sched_held_age(q, m, r);
			continue;
		}
		if (r->next_try > m->now)
			continue;
		struct route rt;
		if (!sched_route(q, rel, r, &rt)) {
			struct deliver_result res = { DELIVER_PERM, "5.4.4 no route to the destination" };
			sched_apply(q, m, i, &res, "", false, NULL);
			continue;
		}
		if (rt.kind == ROUTE_ERROR) {
			sched_refused(q, m, i);
			continue;
		}
		sched_job_add(sched_job_for(m, &rt), i);
	}
}

/* Hashed: a scan looks up a whole batch of qids (two list walks per qid
 * were a tenth of the delivery thread's time with a backlog). */
static bool sched_inflight(struct queue *q, const char *qid)
{
	size_t h = hmap_hash(qid);
	for (struct hmap_node *n = hmap_first(&q->inflight, h); n; n = hmap_next(n))
		if (!strcmp(HMAP_ENTRY(n, struct qmsg, node)->env.qid, qid))
			return true;
	return false;
}

/* Work on a message: m->env is loaded (from the spool, or fresh). */
static void sched_start_msg(struct queue *q, struct qmsg *m, int64_t now)
{
	m->now = now;
	hmap_add(&q->inflight, &m->node, hmap_hash(m->env.qid));
	sched_plan(q, m);
	m->jobs_pending = m->njobs + 1;   /* +1: held while dispatching */
	sched_msgs_add(q, m);
	for (size_t i = 0; i < m->njobs; i++)
		m->jobs[i]->tr->submit(q, m->jobs[i]);
	if (--m->jobs_pending == 0)
		sched_msg_done(q, m);
}

static void sched_start_qid(struct queue *q, const char *qid, int64_t now)
{
	struct qmsg *m = util_xcalloc(1, sizeof *m);
	int err = spool_reader_env(q->reader, qid, &m->env);
	if (err) {
		if (err != ENOENT)
			ev_note(LOG_ERROR, 0, qid, "cannot read from the spool: %s", strerror(err));
		free(m);
		return;
	}
	sched_start_msg(q, m, now);
}

/* Start the fresh messages of a handoff list (the list is consumed). */
static void sched_start_fresh(struct queue *q, struct spool_fresh *f, int64_t now)
{
	while (f) {
		struct spool_fresh *next = f->next;
		if (sched_inflight(q, f->env.qid)) {
			spool_fresh_free(f);   /* cannot happen (spool_scan_lock); never twice */
		} else {
			struct qmsg *m = util_xcalloc(1, sizeof *m);
			m->env = f->env;       /* moved */
			free(f);
			sched_start_msg(q, m, now);
		}
		f = next;
	}
}

/* Fire timer_ev at t (unix seconds) unless it fires earlier already
 * (wake_at is cleared when it fires). */
static void sched_wake_at(struct queue *q, int64_t t)
{
	int64_t now = (int64_t)time(NULL);
	if (t < now + 1)
		t = now + 1;
	if (q->wake_at && q->wake_at <= t)
		return;
	q->wake_at = t;
	struct timeval tv = { (time_t)(t - now), 0 };
	evtimer_add(q->timer_ev, &tv);
}

/* Arm timer_ev: in a second while a scan has more to read, at the next
 * retry the spool holds, and after QUEUE_IDLE_WAIT at the latest. What is
 * due already is in flight or behind the scan's cursor; a retry decided
 * here arms the timer itself (sched_defer). */
static void sched_arm(struct queue *q, int64_t now)
{
	if (q->backlog)
		sched_wake_at(q, now + 1);
	if (q->conf->hold_domains.n)
		sched_wake_at(q, q->aged_at + sched_age_period(q->conf));
	int64_t next = spool_reader_next_due(q->reader, now);
	if (next > now)
		sched_wake_at(q, next);
	sched_wake_at(q, now + QUEUE_IDLE_WAIT);
}

/* How many messages a scan may start: past QUEUE_INFLIGHT_MAX in flight,
 * none until some finish (sched_recorded scans again), so memory and the
 * destinations' waiting lists stay bounded however deep the queue. */
static size_t sched_scan_room(const struct queue *q)
{
	size_t room = q->inflight.n < QUEUE_INFLIGHT_MAX ? QUEUE_INFLIGHT_MAX - q->inflight.n : 0;
	return room < QUEUE_BATCH ? room : QUEUE_BATCH;
}

/* One line when scans start waiting for room, again only after the
 * engine has been less than half full. */
static void sched_scan_full(struct queue *q, bool full)
{
	if (full && !q->full)
		log_info("queue: %zu messages in flight: more are read from the spool as these finish",
		         q->inflight.n);
	if (full)
		q->full = true;
	else if (q->inflight.n < QUEUE_INFLIGHT_MAX / 2)
		q->full = false;
}

/* Held mail is never due: a look, once a minute at most (more often for
 * short delay_warning or hold_lifetime), for what has waited long enough
 * to call for a delay report or a bounce (sched_plan does them,
 * sched_held_age). */
static void sched_age_held(struct queue *q, int64_t now)
{
	if (now - q->aged_at < sched_age_period(q->conf) || sched_scan_room(q) == 0)
		return;
	static char qids[QUEUE_BATCH][UTIL_QID_LEN + 1];
	q->aged_at = now;
	size_t n = spool_reader_held_aged(q->reader, now - (int64_t)q->conf->hold_lifetime,
	                                  now - (int64_t)q->conf->delay_warning, qids,
	                                  sched_scan_room(q));
	for (size_t i = 0; i < n; i++)
		if (!sched_inflight(q, qids[i]))
			sched_start_qid(q, qids[i], now);
}

/* Look into the spool for due messages (the fresh ones taken under the
 * same lock, so that none is started twice or missed). A batch that was
 * cut leaves the cursor where it stopped: the next scan goes on from
 * there, past messages already in flight, and starts over only once it
 * has read to the end; while there is room, it goes on at once. */
void sched_scan(struct queue *q)
{
	if (q->paused)
		return;
	static char qids[QUEUE_BATCH][UTIL_QID_LEN + 1];
	int64_t now = (int64_t)time(NULL);
	bool rescan, more = false;
	size_t room = sched_scan_room(q);
	spool_scan_lock(q->spool);
	struct spool_fresh *fresh = spool_take_fresh(q->spool, &rescan);
	size_t n = spool_reader_due(q->reader, now, &q->scan_at, qids, room, &more);
	spool_scan_unlock(q->spool);
	sched_start_fresh(q, fresh, now);
	for (size_t i = 0; i < n; i++)
		if (!sched_inflight(q, qids[i]))
			sched_start_qid(q, qids[i], now);
	sched_age_held(q, now);
	release_tick(q, now);
	q->backlog = more;
	if (!more)
		q->scan_at = SPOOL_CURSOR_START;
	sched_scan_full(q, room == 0);
	if (more && sched_scan_room(q) > 0)
		event_active(q->scan_ev, EV_TIMEOUT, 0);
	sched_arm(q, now);
}

void sched_scan_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	sched_scan(arg);
}

void sched_wake(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct queue *q = arg;
	q->wake_at = 0;
	sched_scan(q);
}

/* After a commit: the new messages, from the handoff. */
void sched_fresh(struct queue *q)
{
	if (q->paused)
		return;   /* the handoff keeps them; the scan at resume takes them */
	bool rescan;
	struct spool_fresh *fresh = spool_take_fresh(q->spool, &rescan);
	sched_start_fresh(q, fresh, (int64_t)time(NULL));
	if (rescan)
		sched_scan(q);
}

/* Wait until no command of an operator is with the writer (its callback
 * touches the queue). */
void sched_admin_wait(struct queue *q)
{
	pthread_mutex_lock(&q->rec_mu);
	while (q->admin_pending)
		pthread_cond_wait(&q->rec_cv, &q->rec_mu);
	pthread_mutex_unlock(&q->rec_mu);
}

/* Wait for the batch under way (if any); its error. */
static int sched_rec_wait(struct queue *q)
{
	pthread_mutex_lock(&q->rec_mu);
	while (q->rec_pending)
		pthread_cond_wait(&q->rec_cv, &q->rec_mu);
	int err = q->rec_err;
	pthread_mutex_unlock(&q->rec_mu);
	return err;
}

/* At shutdown (the loop has stopped, the writer still runs): one last try
 * at every result not yet on disk; what is still refused is lost, and each
 * message whose results are is named (it will be delivered again). */
void sched_record_last(struct queue *q)
{
	if (q->recording)
		sched_recorded_msgs(q, sched_rec_wait(q));
	struct qmsg **tail = &q->done;
	while (*tail)
		tail = &(*tail)->next;
	*tail = q->held;
	q->held = NULL;
	q->nheld = 0;
	int err = 0;
	if (q->done) {
		sched_flush_batch(q);
		err = sched_rec_wait(q);
		sched_recorded_msgs(q, err);
	}
	for (struct qmsg *m = q->held; m; m = m->next)
		ev_note(LOG_ERROR, m->env.session, m->env.qid, "delivery results lost at shutdown "
		        "(%s): what was delivered will be delivered again", strerror(err));
}

/* The loop has stopped: every message in flight goes (its recipients
 * stay pending in the spool). */
void sched_free_all(struct queue *q)
{
	struct qmsg *lists[] = { q->msgs, q->done, q->recording, q->held };
	for (int i = 0; i < 4; i++)
		while (lists[i]) {
			struct qmsg *m = lists[i];
			lists[i] = m->next;
			sched_msg_free(q, m);
		}
	q->msgs = q->done = q->recording = q->held = NULL;
	hmap_clear(&q->inflight, NULL, NULL);   /* empty by now: its buckets */
	hmap_clear(&q->held_domains, sched_held_free, NULL);
}

/* ---- an operator's commands ---- */

/* Does the command name this message (by qid, by a recipient's domain)? */
static bool sched_cmd_msg(const struct queue_cmd *c, const struct qmsg *m)
{
	return !c->qid[0] || !strcmp(c->qid, m->env.qid);
}

static bool sched_cmd_rcpt(const struct queue_cmd *c, const struct spool_rcpt *r)
{
	return !c->domain[0] || !strcasecmp(c->domain, addr_domain_of(r->addr));
}

/* Messages in flight hold their own copy of the recipients' state, which
 * recording will write: change it too, unless the writer has it already
 * (the spool's copy changes through the writer, after that batch; those
 * messages are looked at again once recorded). */
static void sched_cmd_inflight(struct queue *q, const struct queue_cmd *c, int64_t now)
{
	for (struct qmsg *m = q->recording; m; m = m->next)
		q->rescan_recorded |= sched_cmd_msg(c, m);
	struct qmsg *lists[] = { q->msgs, q->done, q->held };
	for (int l = 0; l < 3; l++)
		for (struct qmsg *m = lists[l]; m; m = m->next) {
			if (!sched_cmd_msg(c, m))
				continue;
			if (c->op == QUEUE_DELETE) {
				m->env.deleted = true;
				continue;
			}
			for (size_t i = 0; i < m->env.nrcpt; i++) {
				struct spool_rcpt *r = &m->env.rcpt[i];
				if (r->status != SPOOL_PENDING || !sched_cmd_rcpt(c, r))
					continue;
				if (c->op == QUEUE_HOLD) {
					r->held = true;
				} else if (c->op == QUEUE_RELEASE || !r->held) {
					r->held = false;   /* release; flush leaves holds alone */
					r->next_try = now;
				}
			}
		}
}

/* The writer has committed the change: release and flush look again. */
/* The command's answer (any thread): done is told, the item freed. */
static void sched_cmd_done(void *arg, int err, long count)
{
	struct inbox_item *it = arg;
	if (it->done)
		it->done(it->ctx, err, count);
	free(it);
}

/* The writer has carried out a command (its thread): release and flush
 * look again. */
static void sched_admin_done(void *arg, int err, long count)
{
	struct inbox_item *it = arg;
	struct queue *q = it->q;
	if (!err && (it->cmd.op == QUEUE_RELEASE || it->cmd.op == QUEUE_FLUSH))
		event_active(q->scan_ev, EV_TIMEOUT, 0);
	sched_cmd_done(it, err, count);
	pthread_mutex_lock(&q->rec_mu);   /* queue_stop waits for the last one */
	q->admin_pending--;
	pthread_cond_broadcast(&q->rec_cv);
	pthread_mutex_unlock(&q->rec_mu);
}

static bool sched_cmd_valid(const struct queue_cmd *c)
{
	bool qid = c->qid[0], domain = c->domain[0];
	if (qid && domain)
		return false;
	switch (c->op) {
	case QUEUE_FLUSH: return true;
	case QUEUE_DELETE: case QUEUE_BOUNCE: return qid;
	case QUEUE_PAUSE: case QUEUE_RESUME: return !qid && !domain;
	case QUEUE_HOLD: case QUEUE_RELEASE: return qid || domain;
	}
	return false;
}

/* ---- pause, resume, bounce ---- */

static void sched_pause(struct queue *q, struct inbox_item *it)
{
	bool pause = it->cmd.op == QUEUE_PAUSE;
	long changed = q->paused != pause;
	q->paused = pause;
	if (!pause && changed)
		sched_scan(q);
	sched_cmd_done(it, 0, changed);
}

/* Every pending recipient fails with the operator's reason; the report
 * and the record follow as for any finished message (sched_flush), and
 * the command is answered once it is recorded. */
static long sched_bounce_msg(struct qmsg *m)
{
	long n = 0;
	for (size_t i = 0; i < m->env.nrcpt; i++) {
		struct spool_rcpt *r = &m->env.rcpt[i];
		if (r->status != SPOOL_PENDING)
			continue;
		r->status = SPOOL_FAILED;
		r->held = false;
		free(r->last_reply);
		r->last_reply = util_xstrdup("5.0.0 returned to the sender by the operator");
		r->tried_at = m->now;
		sched_log(m, r, "bounced");
		report_note(m, DSN_FAILED, r, "failed");
		n++;
	}
	return n;
}

static bool sched_listed(const struct qmsg *list, const struct qmsg *m)
{
	for (; list; list = list->next)
		if (list == m)
			return true;
	return false;
}

static struct qmsg *sched_find(struct queue *q, const char *qid)
{
	size_t h = hmap_hash(qid);
	for (struct hmap_node *n = hmap_first(&q->inflight, h); n; n = hmap_next(n)) {
		struct qmsg *m = HMAP_ENTRY(n, struct qmsg, node);
		if (!strcmp(m->env.qid, qid))
			return m;
	}
	return NULL;
}

static void sched_bounce(struct queue *q, struct inbox_item *it)
{
	struct qmsg *m = sched_find(q, it->cmd.qid);
	if (m && (m->told || sched_listed(q->recording, m) || sched_listed(q->held, m))) {
		it->next = q->parked;   /* its record would undo ours: once it is written */
		q->parked = it;
		return;
	}
	if (m) {   /* in flight: its jobs finish, the rest is returned */
		it->count = sched_bounce_msg(m);
		m->told = it;
		return;
	}
	m = util_xcalloc(1, sizeof *m);
	int err = spool_reader_env(q->reader, it->cmd.qid, &m->env);
	if (err) {
		free(m);
		return sched_cmd_done(it, err, 0);
	}
	m->now = (int64_t)time(NULL);
	hmap_add(&q->inflight, &m->node, hmap_hash(m->env.qid));
	it->count = sched_bounce_msg(m);
	m->told = it;
	m->next = q->done;
	q->done = m;
	event_active(q->flush_ev, EV_TIMEOUT, 0);
}

static void sched_released(void *ctx, int err, long count, long messages)
{
	(void)messages;
	sched_cmd_done(ctx, err, count);
}

/* An operator's release is followed like any other (release.c): what it
 * releases goes although its domain is in hold_domains. */
static void sched_release(struct queue *q, struct inbox_item *it)
{
	struct hold_release req = { .started = sched_released, .ctx = it };
	if (it->cmd.domain[0]) {
		snprintf(req.domain[0], sizeof req.domain[0], "%s", it->cmd.domain);
		req.n = 1;
	}
	release_begin(q, &req, it->cmd.qid[0] ? it->cmd.qid : NULL);
}

void sched_command(struct queue *q, struct inbox_item *it)
{
	static const enum spool_admin admin[] = { [QUEUE_HOLD] = SPOOL_HOLD,
		[QUEUE_RELEASE] = SPOOL_RELEASE, [QUEUE_FLUSH] = SPOOL_FLUSH,
		[QUEUE_DELETE] = SPOOL_DELETE };
	static const char *const verb[] = { "hold", "release", "flush", "delete", "bounce", "pause",
	                                    "resume" };
	const struct queue_cmd *c = &it->cmd;
	if (!sched_cmd_valid(c))
		return sched_cmd_done(it, EINVAL, 0);
	int64_t now = (int64_t)time(NULL);
	log_info("queue: %s %s%s", verb[c->op], c->qid[0] ? c->qid : c->domain[0] ? c->domain : "all",
	         c->domain[0] ? " (domain)" : "");
	if (c->op == QUEUE_PAUSE || c->op == QUEUE_RESUME)
		return sched_pause(q, it);
	if (c->op == QUEUE_BOUNCE)
		return sched_bounce(q, it);
	if (c->domain[0] && (c->op == QUEUE_HOLD || c->op == QUEUE_RELEASE))
		sched_held_set(q, c->domain, c->op == QUEUE_HOLD);
	if (c->op == QUEUE_RELEASE)
		return sched_release(q, it);
	sched_cmd_inflight(q, c, now);
	pthread_mutex_lock(&q->rec_mu);
	q->admin_pending++;
	pthread_mutex_unlock(&q->rec_mu);
	spool_admin_async(q->spool, admin[c->op], c->qid[0] ? c->qid : NULL,
	                  c->domain[0] ? c->domain : NULL, now, sched_admin_done, it);
}
