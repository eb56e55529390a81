/* queue: scheduling, destinations, results and reports (see queue.h).
 *
 * Objects: a qmsg is a message being worked on (its envelope, loaded from
 * the spool); a qjob is one transaction for some of its recipients to one
 * destination; a dest is a next hop (an MX domain, a host, an LMTP socket)
 * with its waiting jobs and its connections (conn). Every line logged
 * about a message starts with its queue id.
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
#include "deliver/queue.h"

#include <errno.h>
#include <event2/event.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <time.h>

#include "deliver/deliver.h"
#include "deliver/job_source.h"
#include "deliver/maildir.h"
#include "deliver/route.h"
#include "dsn/dsn.h"
#include "lib/hmap.h"
#include "lib/log.h"
#include "net/closer.h"
#include "net/dns.h"
#include "net/smtpc.h"

#define QUEUE_BATCH 1024        /* messages looked at per scan */
#define QUEUE_INFLIGHT_MAX (16 * QUEUE_BATCH)  /* in flight, past which scans wait */
#define QUEUE_JOB_RCPTS 100     /* recipients per transaction */
#define QUEUE_IDLE_WAIT 60      /* seconds between looks at an idle spool */
#define QUEUE_CONN_IDLE 5       /* seconds an idle connection is kept */
#define QUEUE_REC_RETRY_MAX 30  /* seconds, the ceiling of held results' backoff */

struct qjob;

struct qmsg {
	struct qmsg *next;          /* in msgs, done, recording or held */
	struct qmsg **pprev;        /* in msgs: the link to it (removal in O(1)) */
	struct hmap_node node;      /* in the queue's in-flight table, by qid */
	struct spool_env env;
	int64_t now;
	size_t jobs_pending, njobs;
	struct qjob **jobs;
	size_t nrep[3];             /* per dsn_kind, not yet queued */
	struct dsn_item *rep[3];
	bool held;                  /* its results were refused once (logged) */
};

struct qjob {
	struct qjob *next;          /* in its dest's waiting list */
	struct qmsg *m;
	struct route route;
	size_t n, cap;
	unsigned *idx;              /* n recipients: env.rcpt[idx[i]] */
	struct deliver_result *res; /* and their results */
	struct smtpc_job sj;
};

struct dest;

struct conn {
	struct conn *next;          /* in its dest's idle list */
	size_t slot;                /* its index in the queue's conns */
	struct queue *q;
	struct dest *d;
	struct smtpc *c;
	struct event *idle_ev;
	struct qjob *job;           /* under way */
	struct qjob *pipelined;     /* sent after it (smtpc's more) */
	bool ready;
};

struct dest {
	struct hmap_node node;      /* in the queue's table, by route key */
	struct route route;
	unsigned active, starting;  /* connections, and of them not yet ready */
	struct qjob *wait_head, **wait_tail;
	size_t nwait;
	struct conn *idle;
};

struct queue {
	const struct conf *conf;
	const struct policy *policy;
	struct spool *spool;
	struct spool_reader *reader;
	struct route_map *map;
	struct dns *dns;
	struct closer *closer;      /* closes outbound connections (closer.h) */
	SSL_CTX *ssl;
	enum smtpc_tls tls;
	char *auth_user, *auth_pass;
	pthread_t thread;
	struct event_base *base;
	struct event *kick_ev, *timer_ev, *flush_ev, *stop_ev;
	struct qmsg *msgs, *done;
	struct qmsg *recording;     /* handed to the writer, not yet committed */
	const struct spool_env **rec_envs;
	struct event *recorded_ev;
	pthread_mutex_t rec_mu;     /* rec_pending, rec_err: set by the writer thread */
	pthread_cond_t rec_cv;
	bool rec_pending;
	int rec_err;
	struct qmsg *held;          /* finished, results not yet written (queue_hold) */
	size_t nheld;
	struct event *rec_retry_ev; /* offers the held results again */
	unsigned rec_delay;         /* seconds of the current backoff, 0: nothing held */
	unsigned rec_rounds;        /* failed rounds since results were first held */
	struct hmap inflight;       /* every qmsg of msgs, done, recording and held, by qid */
	struct hmap dests;          /* by route key */
	bool backlog;               /* the last scan was cut (QUEUE_BATCH, or no room) */
	bool full;                  /* scans found no room (logged once) */
	struct event *scan_ev;      /* a cut scan goes on at once while there is room */
	struct spool_cursor scan_at; /* where the next scan goes on from */
	int64_t wake_at;            /* when timer_ev fires (unix seconds), 0: not armed */
	int64_t started;
	size_t nconns;
	struct conn **conns;        /* every live conn, for shutdown */
};

static void queue_scan(struct queue *q);
static void queue_arm(struct queue *q, int64_t now);
static void queue_wake_at(struct queue *q, int64_t t);
static void queue_job_finish(struct queue *q, struct qjob *job);
static void dest_pump(struct queue *q, struct dest *d);

/* ---- results ---- */

/* Exponential backoff: retry_min, doubling, capped at retry_max. */
static int64_t queue_backoff(const struct conf *c, unsigned attempts)
{
	uint64_t d = c->retry_min;
	for (unsigned i = 1; i < attempts && d < c->retry_max; i++)
		d *= 2;
	return (int64_t)(d < c->retry_max ? d : c->retry_max);
}

static void queue_report(struct qmsg *m, enum dsn_kind k, struct spool_rcpt *r, const char *action)
{
	if (!dsn_wanted(&m->env, r, k))
		return;
	if (!m->rep[k]) {
		m->rep[k] = calloc(m->env.nrcpt, sizeof *m->rep[k]);
		if (!m->rep[k])
			abort();
	}
	m->rep[k][m->nrep[k]++] = (struct dsn_item){ r, action };
}

static const char *queue_relay_name(const struct spool_rcpt *r)
{
	return r->transport == SPOOL_LOCAL ? "maildir" : r->remote_mta[0] ? r->remote_mta : "none";
}

static void queue_log(const struct qmsg *m, const struct spool_rcpt *r, const char *status)
{
	bool alias = strcmp(r->orig, r->addr) != 0;
	log_info("%s: to=<%s>%s%s%s, relay=%s, delay=%llds, attempts=%u, status=%s (%s)",
	         m->env.qid, r->addr, alias ? ", orig_to=<" : "", alias ? r->orig : "",
	         alias ? ">" : "", queue_relay_name(r), (long long)(m->now - m->env.arrival),
	         r->attempts, status, r->last_reply);
}

/* A temporary failure: retry later, or give up when the message is too old. */
static void queue_defer(struct queue *q, struct qmsg *m, struct spool_rcpt *r)
{
	const struct conf *c = q->conf;
	int64_t age = m->now - m->env.arrival;
	if (age >= (int64_t)c->max_queue_lifetime) {
		char why[600];
		snprintf(why, sizeof why, "4.4.7 message expired after %llds in the queue; last error: %s",
		         (long long)age, r->last_reply);
		free(r->last_reply);
		r->last_reply = util_xstrdup(why);
		r->status = SPOOL_FAILED;
		queue_log(m, r, "expired");
		queue_report(m, DSN_FAILED, r, "failed");
		return;
	}
	r->next_try = m->now + queue_backoff(c, r->attempts);
	queue_wake_at(q, r->next_try);
	queue_log(m, r, "deferred");
	if (!(r->dsn_flags & SPOOL_DSN_DELAY) && age >= (int64_t)c->delay_warning) {
		r->dsn_flags |= SPOOL_DSN_DELAY;   /* one delay report per recipient */
		queue_report(m, DSN_DELAYED, r, "delayed");
	}
}

static void queue_apply(struct queue *q, struct qmsg *m, unsigned i,
                        const struct deliver_result *res, const char *remote, bool dsn_passed)
{
	struct spool_rcpt *r = &m->env.rcpt[i];
	r->attempts++;
	free(r->last_reply);
	r->last_reply = util_xstrdup(res->reply);
	free(r->remote_mta);
	r->remote_mta = util_xstrdup(remote);
	if (res->status == DELIVER_OK) {
		r->status = SPOOL_DELIVERED;
		queue_log(m, r, "sent");
		/* RFC 3461 4.1: a next hop that took NOTIFY reports success itself */
		if (r->transport != SPOOL_REMOTE)
			queue_report(m, DSN_SUCCESS, r, "delivered");
		else if (!dsn_passed)
			queue_report(m, DSN_SUCCESS, r, "relayed");
	} else if (res->status == DELIVER_PERM) {
		r->status = SPOOL_FAILED;
		queue_log(m, r, "bounced");
		queue_report(m, DSN_FAILED, r, "failed");
	} else {
		queue_defer(q, m, r);
	}
}

/* ---- reports ---- */

static bool queue_read_body(struct queue *q, const struct spool_env *env, struct buf *out)
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
static bool queue_dsn_env(struct queue *q, const struct qmsg *m, struct spool_env *e,
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
	e->rcpt = calloc(t->n, sizeof *e->rcpt);
	if (!e->rcpt)
		abort();
	for (size_t i = 0; i < t->n; i++)
		e->rcpt[i] = (struct spool_rcpt){ .idx = (unsigned)i, .orig = m->env.sender,
		                                  .addr = t->v[i].addr, .transport = t->v[i].transport,
		                                  .orcpt = (char *)"", .last_reply = (char *)"",
		                                  .remote_mta = (char *)"", .next_try = m->now };
	return true;
}

/* 0, or the spool's error: the report was not queued, and can be again. */
static int queue_send_report(struct queue *q, struct qmsg *m, enum dsn_kind k,
                             const struct buf *content)
{
	struct policy_targets t = { 0, 0, NULL };
	struct spool_env e;
	if (!queue_dsn_env(q, m, &e, &t)) {
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

/* Queue the reports a message's results call for. A report queued is not
 * queued again; 0, or the spool's error for one that must wait. */
static int queue_reports(struct queue *q, struct qmsg *m)
{
	if (!m->nrep[0] && !m->nrep[1] && !m->nrep[2])
		return 0;
	struct buf content = BUF_INIT;
	if (!queue_read_body(q, &m->env, &content))
		log_warn("%s: cannot read the message for its report", m->env.qid);
	int err = 0;
	for (int k = 0; k < 3; k++) {
		int e = m->nrep[k] ? queue_send_report(q, m, (enum dsn_kind)k, &content) : 0;
		if (e)
			err = e;
		else
			m->nrep[k] = 0;
	}
	buf_free(&content);
	return err;
}

/* ---- messages ---- */

/* Every step per message is O(1): a message is found by qid in a table
 * that grows with the queue, and leaves msgs through its pprev link. (A
 * walk of msgs from its head to unlink each finished message, the oldest
 * near its tail, made draining a deep queue quadratic.) */
static void queue_msg_free(struct queue *q, struct qmsg *m)
{
	hmap_del(&q->inflight, &m->node);
	for (size_t i = 0; i < m->njobs; i++) {
		free(m->jobs[i]->idx);
		free(m->jobs[i]->res);
		free(m->jobs[i]);
	}
	free(m->jobs);
	for (int k = 0; k < 3; k++)
		free(m->rep[k]);
	spool_env_free(&m->env);
	free(m);
}

static void queue_msgs_add(struct queue *q, struct qmsg *m)
{
	m->next = q->msgs;
	if (m->next)
		m->next->pprev = &m->next;
	m->pprev = &q->msgs;
	q->msgs = m;
}

static void queue_msg_done(struct queue *q, struct qmsg *m)
{
	*m->pprev = m->next;
	if (m->next)
		m->next->pprev = m->pprev;
	m->pprev = NULL;
	m->next = q->done;
	q->done = m;
	event_active(q->flush_ev, EV_TIMEOUT, 0);
}

static bool queue_finished(const struct spool_env *e)
{
	for (size_t i = 0; i < e->nrcpt; i++)
		if (e->rcpt[i].status == SPOOL_PENDING)
			return false;
	return true;
}

/* When the first of a message's pending recipients falls due. */
static int64_t queue_next_try(const struct spool_env *e)
{
	int64_t t = INT64_MAX;
	for (size_t i = 0; i < e->nrcpt; i++)
		if (e->rcpt[i].status == SPOOL_PENDING && e->rcpt[i].next_try < t)
			t = e->rcpt[i].next_try;
	return t;
}

/* Results are recorded without blocking the loop: the batch goes to the
 * writer, whose thread tells us after the commit; connections go on
 * meanwhile, and what finishes in the meantime forms the next batch. */
static void queue_recorded_writer(void *arg, int err)
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
static void queue_hold(struct queue *q, struct qmsg *m, int err)
{
	if (!m->held)
		log_warn("%s: delivery results held until the spool takes them: %s", m->env.qid,
		         strerror(err));
	m->held = true;
	m->next = q->held;
	q->held = m;
	q->nheld++;
}

/* Offer the held results again after a backoff: 1 s, doubling up to
 * QUEUE_REC_RETRY_MAX. One line per round; a round already due stays. */
static void queue_hold_round(struct queue *q, int err)
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

static void queue_rec_retry_cb(evutil_socket_t fd, short what, void *arg)
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
static bool queue_recorded_msgs(struct queue *q, int err)
{
	bool pending = false;
	size_t was_held = 0;
	while (q->recording) {
		struct qmsg *m = q->recording;
		q->recording = m->next;
		if (err) {
			queue_hold(q, m, err);
			continue;
		}
		was_held += m->held;
		if (queue_finished(&m->env)) {
			log_info("%s: removed", m->env.qid);
		} else {
			pending = true;
			if (m->held)   /* its retry may have fallen due while it was held */
				queue_wake_at(q, queue_next_try(&m->env));
		}
		queue_msg_free(q, m);
	}
	free(q->rec_envs);
	q->rec_envs = NULL;
	if (was_held)
		log_info("queue: delivery results of %zu held message%s recorded after %u failed round%s",
		         was_held, was_held == 1 ? "" : "s", q->rec_rounds, q->rec_rounds == 1 ? "" : "s");
	if (!err && !q->held && !evtimer_pending(q->rec_retry_ev, NULL))
		q->rec_delay = q->rec_rounds = 0;
	return pending;
}

static void queue_recorded(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct queue *q = arg;
	pthread_mutex_lock(&q->rec_mu);
	int err = q->rec_err;
	pthread_mutex_unlock(&q->rec_mu);
	bool pending = queue_recorded_msgs(q, err);
	queue_hold_round(q, err);
	if (q->done)
		event_active(q->flush_ev, EV_TIMEOUT, 0);
	if (q->backlog)
		queue_scan(q);  /* room again for what the last scan left out */
	else if (pending)
		queue_arm(q, (int64_t)time(NULL));  /* their retry, as now recorded */
}

/* Hand every finished message to the writer in one group commit, reports
 * first (a crash in between repeats a report rather than losing it); a
 * message whose report the spool refused is held instead. Returns the
 * error of a refused report, 0 if none. */
static int queue_flush_batch(struct queue *q)
{
	int err = 0;
	size_t n = 0;
	struct qmsg *batch = NULL, **tail = &batch;
	while (q->done) {
		struct qmsg *m = q->done;
		q->done = m->next;
		int e = queue_reports(q, m);
		if (e) {
			queue_hold(q, m, e);
			err = e;
			continue;
		}
		m->next = NULL;
		*tail = m;
		tail = &m->next;
		n++;
	}
	if (!n)
		return err;
	q->rec_envs = calloc(n, sizeof *q->rec_envs);
	if (!q->rec_envs)
		abort();
	n = 0;
	for (struct qmsg *m = batch; m; m = m->next)
		q->rec_envs[n++] = &m->env;
	q->recording = batch;
	pthread_mutex_lock(&q->rec_mu);
	q->rec_pending = true;
	pthread_mutex_unlock(&q->rec_mu);
	spool_update_many_async(q->spool, q->rec_envs, n, queue_recorded_writer, q);
	return err;
}

static void queue_flush(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct queue *q = arg;
	if (q->recording || !q->done)
		return;  /* queue_recorded flushes again */
	int err = queue_flush_batch(q);
	if (err)
		queue_hold_round(q, err);
}

/* ---- destinations and connections ---- */

static struct dest *dest_get(struct queue *q, const struct route *r)
{
	size_t h = hmap_hash(r->key);
	for (struct hmap_node *n = hmap_first(&q->dests, h); n; n = hmap_next(n)) {
		struct dest *d = HMAP_ENTRY(n, struct dest, node);
		if (!strcmp(d->route.key, r->key))
			return d;
	}
	struct dest *d = calloc(1, sizeof *d);
	if (!d)
		abort();
	d->route = *r;
	d->wait_tail = &d->wait_head;
	hmap_add(&q->dests, &d->node, h);
	return d;
}

static void dest_free_if_unused(struct queue *q, struct dest *d)
{
	if (d->active || d->nwait || d->idle)
		return;
	hmap_del(&q->dests, &d->node);
	free(d);
}

static void dest_free_node(struct hmap_node *n, void *ctx)
{
	(void)ctx;
	free(HMAP_ENTRY(n, struct dest, node));
}

static struct qjob *dest_pop(struct dest *d)
{
	struct qjob *j = d->wait_head;
	if (!j)
		return NULL;
	d->wait_head = j->next;
	if (!d->wait_head)
		d->wait_tail = &d->wait_head;
	d->nwait--;
	j->next = NULL;
	return j;
}

/* Every live conn in q->conns (for shutdown); each knows its slot, and
 * the last one moves into a slot freed. */
static void conn_track(struct queue *q, struct conn *cn, bool add)
{
	if (add) {
		struct conn **v = realloc(q->conns, (q->nconns + 1) * sizeof *v);
		if (!v)
			abort();
		q->conns = v;
		cn->slot = q->nconns;
		q->conns[q->nconns++] = cn;
		return;
	}
	struct conn *last = q->conns[--q->nconns];
	q->conns[cn->slot] = last;
	last->slot = cn->slot;
}

static void conn_free(struct conn *cn)
{
	struct queue *q = cn->q;
	conn_track(q, cn, false);
	if (cn->idle_ev)
		event_free(cn->idle_ev);
	free(cn);
}

static void conn_job_init(struct conn *cn, struct qjob *job)
{
	job->sj = (struct smtpc_job){ &job_source, &job->m->env, cn->q->reader, job->n, job->idx,
	                              job->res, false, "" };
}

static void conn_run(struct conn *cn, struct qjob *job)
{
	cn->job = job;
	conn_job_init(cn, job);
	smtpc_send(cn->c, &job->sj);
}

static void conn_unidle(struct conn *cn)
{
	for (struct conn **pp = &cn->d->idle; *pp; pp = &(*pp)->next)
		if (*pp == cn) {
			*pp = cn->next;
			return;
		}
}

static void conn_idle_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct conn *cn = arg;
	struct dest *d = cn->d;
	struct queue *q = cn->q;
	conn_unidle(cn);
	d->active--;
	smtpc_close(cn->c);
	conn_free(cn);
	dest_free_if_unused(q, d);
}

/* A ready connection with nothing to do: the next waiting job, or idle. */
static void conn_next(struct conn *cn)
{
	struct qjob *job = dest_pop(cn->d);
	if (job)
		return conn_run(cn, job);
	cn->next = cn->d->idle;
	cn->d->idle = cn;
	struct timeval tv = { QUEUE_CONN_IDLE, 0 };
	evtimer_add(cn->idle_ev, &tv);
}

static void conn_ready_cb(struct smtpc *c, void *arg)
{
	(void)c;
	struct conn *cn = arg;
	cn->ready = true;
	cn->d->starting--;
	conn_next(cn);
}

/* The connection has sent a job whole: the next waiting one may follow at
 * once, pipelined. */
static struct smtpc_job *conn_more_cb(struct smtpc *c, void *arg)
{
	(void)c;
	struct conn *cn = arg;
	struct qjob *job = dest_pop(cn->d);
	if (!job)
		return NULL;
	cn->pipelined = job;
	conn_job_init(cn, job);
	return &job->sj;
}

static void conn_done_cb(struct smtpc *c, struct smtpc_job *sj, void *arg)
{
	struct conn *cn = arg;
	struct qjob *job = cn->job;
	if (sj != &job->sj)
		abort();  /* a bug: smtpc ends jobs in the order they were given */
	cn->job = cn->pipelined;
	cn->pipelined = NULL;
	queue_job_finish(cn->q, job);
	if (!cn->job && smtpc_usable(c))
		conn_next(cn);
}

/* Every waiting job of d ends with r (nobody is left to carry them). */
static void dest_fail_waiting(struct queue *q, struct dest *d, const struct deliver_result *r)
{
	struct qjob *job;
	while ((job = dest_pop(d))) {
		for (size_t i = 0; i < job->n; i++)
			job->res[i] = *r;
		queue_job_finish(q, job);
	}
}

/* The connection is gone (it never came up, or an idle or busy one broke). */
static void conn_fail(struct conn *cn, const struct deliver_result *why)
{
	struct dest *d = cn->d;
	struct queue *q = cn->q;
	conn_unidle(cn);
	d->active--;
	if (!cn->ready)
		d->starting--;
	if (cn->c)
		smtpc_close(cn->c);
	conn_free(cn);
	if (d->active == 0)
		dest_fail_waiting(q, d, why);
	dest_free_if_unused(q, d);
}

static void conn_fail_cb(struct smtpc *c, const struct deliver_result *why, void *arg)
{
	(void)c;
	conn_fail(arg, why);
}

static void conn_target_base(struct queue *q, const struct route *r, struct smtpc_target *t)
{
	memset(t, 0, sizeof *t);
	t->lmtp = r->lmtp;
	t->tls = r->kind == ROUTE_UNIX ? SMTPC_TLS_NONE : q->tls;
	t->ssl_ctx = q->ssl;
	t->helo = q->conf->hostname;
	t->auth_user = r->auth ? q->auth_user : NULL;
	t->auth_pass = r->auth ? q->auth_pass : NULL;
	t->connect_timeout = q->conf->smtp_connect_timeout;
	t->timeout = q->conf->smtp_timeout;
	t->closer = q->closer;
}

static void conn_open(struct conn *cn, const struct smtpc_target *t)
{
	static const struct smtpc_cbs cbs0 = { conn_ready_cb, conn_fail_cb, conn_done_cb,
	                                       conn_more_cb, NULL };
	struct smtpc_cbs cbs = cbs0;
	cbs.ctx = cn;
	cn->c = smtpc_open(cn->q->base, t, &cbs);
}

static void conn_resolved(void *arg, const struct dns_result *res)
{
	struct conn *cn = arg;
	if (res->status != DNS_OK) {
		struct deliver_result r = { res->status == DNS_PERM ? DELIVER_PERM : DELIVER_TEMP, "" };
		snprintf(r.reply, sizeof r.reply, "%s", res->why);
		return conn_fail(cn, &r);
	}
	struct smtpc_target t;
	conn_target_base(cn->q, &cn->d->route, &t);
	for (size_t h = 0; h < res->nhost; h++)
		for (size_t a = 0; a < res->host[h].naddr && t.naddr < SMTPC_ADDRS_MAX; a++) {
			struct sockaddr_storage *ss = &t.addr[t.naddr];
			*ss = res->host[h].addr[a];
			if (ss->ss_family == AF_INET)
				((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)cn->d->route.port);
			else
				((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)cn->d->route.port);
			snprintf(t.name[t.naddr++], sizeof t.name[0], "%s", res->host[h].name);
		}
	conn_open(cn, &t);
}

static void conn_unix(struct conn *cn)
{
	struct smtpc_target t;
	conn_target_base(cn->q, &cn->d->route, &t);
	struct sockaddr_un *sun = (struct sockaddr_un *)&t.addr[0];
	sun->sun_family = AF_UNIX;
	if (strlen(cn->d->route.name) >= sizeof sun->sun_path) {
		struct deliver_result r = { DELIVER_TEMP, "4.3.5 lmtp_host: socket path too long" };
		return conn_fail(cn, &r);
	}
	memcpy(sun->sun_path, cn->d->route.name, strlen(cn->d->route.name) + 1);
	snprintf(t.name[0], sizeof t.name[0], "%s", cn->d->route.name);
	t.naddr = 1;
	conn_open(cn, &t);
}

static void conn_new(struct queue *q, struct dest *d)
{
	struct conn *cn = calloc(1, sizeof *cn);
	if (!cn)
		abort();
	cn->q = q;
	cn->d = d;
	cn->idle_ev = evtimer_new(q->base, conn_idle_cb, cn);
	conn_track(q, cn, true);
	d->active++;
	d->starting++;
	if (d->route.kind == ROUTE_MX)
		dns_mx(q->dns, d->route.name, conn_resolved, cn);
	else if (d->route.kind == ROUTE_HOST)
		dns_host(q->dns, d->route.name, conn_resolved, cn);
	else
		conn_unix(cn);
}

/* Give waiting jobs to idle connections; open more, up to the limit. */
static void dest_pump(struct queue *q, struct dest *d)
{
	while (d->wait_head && d->idle) {
		struct conn *cn = d->idle;
		d->idle = cn->next;
		evtimer_del(cn->idle_ev);
		conn_run(cn, dest_pop(d));
	}
	while (d->nwait > d->starting && d->active < q->conf->destination_concurrency)
		conn_new(q, d);
}

static void queue_job_finish(struct queue *q, struct qjob *job)
{
	struct qmsg *m = job->m;
	for (size_t i = 0; i < job->n; i++)
		queue_apply(q, m, job->idx[i], &job->res[i], job->sj.remote_mta, job->sj.dsn_offered);
	if (--m->jobs_pending == 0)
		queue_msg_done(q, m);
}

/* ---- scanning ---- */

static struct qjob *queue_job_for(struct qmsg *m, const struct route *r)
{
	for (size_t i = 0; i < m->njobs; i++)
		if (!strcmp(m->jobs[i]->route.key, r->key) && m->jobs[i]->n < QUEUE_JOB_RCPTS)
			return m->jobs[i];
	struct qjob **v = realloc(m->jobs, (m->njobs + 1) * sizeof *v);
	if (!v)
		abort();
	m->jobs = v;
	struct qjob *j = calloc(1, sizeof *j);
	if (!j)
		abort();
	j->m = m;
	j->route = *r;
	m->jobs[m->njobs++] = j;
	return j;
}

/* Sized to what the job holds: most have one recipient, and a job was a
 * 52 KB zeroed allocation with room for QUEUE_JOB_RCPTS of them. */
static void queue_job_add(struct qjob *j, unsigned i)
{
	if (j->n == j->cap) {
		j->cap = j->cap ? j->cap * 2 : 1;
		j->idx = realloc(j->idx, j->cap * sizeof *j->idx);
		j->res = realloc(j->res, j->cap * sizeof *j->res);
		if (!j->idx || !j->res)
			abort();
	}
	j->idx[j->n++] = i;
}

static void queue_local(struct queue *q, struct qmsg *m, unsigned i)
{
	struct deliver_result res = { DELIVER_TEMP, "" };
	maildir_deliver(q->conf->mail_dir, q->conf->hostname, q->reader, &m->env, &m->env.rcpt[i],
	                m->env.arrival <= q->started, &res);
	queue_apply(q, m, i, &res, "", false);
}

/* Sort a message's due recipients: Maildir now, the rest into jobs. */
static void queue_plan(struct queue *q, struct qmsg *m)
{
	for (unsigned i = 0; i < m->env.nrcpt; i++) {
		struct spool_rcpt *r = &m->env.rcpt[i];
		if (r->status != SPOOL_PENDING || r->next_try > m->now)
			continue;
		if (r->transport == SPOOL_LOCAL) {
			queue_local(q, m, i);
			continue;
		}
		struct route rt;
		if (!route_for(q->conf, q->map, r->addr, r->transport, &rt)) {
			struct deliver_result res = { DELIVER_PERM, "5.4.4 no route to the destination" };
			queue_apply(q, m, i, &res, "", false);
			continue;
		}
		queue_job_add(queue_job_for(m, &rt), i);
	}
}

/* Hashed: a scan looks up a whole batch of qids (two list walks per qid
 * were a tenth of the delivery thread's time with a backlog). */
static bool queue_inflight(struct queue *q, const char *qid)
{
	size_t h = hmap_hash(qid);
	for (struct hmap_node *n = hmap_first(&q->inflight, h); n; n = hmap_next(n))
		if (!strcmp(HMAP_ENTRY(n, struct qmsg, node)->env.qid, qid))
			return true;
	return false;
}

/* Work on a message: m->env is loaded (from the spool, or fresh). */
static void queue_start_msg(struct queue *q, struct qmsg *m, int64_t now)
{
	m->now = now;
	hmap_add(&q->inflight, &m->node, hmap_hash(m->env.qid));
	queue_plan(q, m);
	m->jobs_pending = m->njobs + 1;   /* +1: held while dispatching */
	queue_msgs_add(q, m);
	for (size_t i = 0; i < m->njobs; i++) {
		struct dest *d = dest_get(q, &m->jobs[i]->route);
		*d->wait_tail = m->jobs[i];
		d->wait_tail = &m->jobs[i]->next;
		d->nwait++;
		dest_pump(q, d);
	}
	if (--m->jobs_pending == 0)
		queue_msg_done(q, m);
}

static void queue_start_qid(struct queue *q, const char *qid, int64_t now)
{
	struct qmsg *m = calloc(1, sizeof *m);
	if (!m)
		abort();
	int err = spool_reader_env(q->reader, qid, &m->env);
	if (err) {
		if (err != ENOENT)
			log_error("%s: cannot read from the spool: %s", qid, strerror(err));
		free(m);
		return;
	}
	queue_start_msg(q, m, now);
}

/* Start the fresh messages of a handoff list (the list is consumed). */
static void queue_start_fresh(struct queue *q, struct spool_fresh *f, int64_t now)
{
	while (f) {
		struct spool_fresh *next = f->next;
		if (queue_inflight(q, f->env.qid)) {
			spool_fresh_free(f);   /* cannot happen (spool_scan_lock); never twice */
		} else {
			struct qmsg *m = calloc(1, sizeof *m);
			if (!m)
				abort();
			m->env = f->env;       /* moved */
			free(f);
			queue_start_msg(q, m, now);
		}
		f = next;
	}
}

/* Fire timer_ev at t (unix seconds) unless it fires earlier already
 * (wake_at is cleared when it fires). */
static void queue_wake_at(struct queue *q, int64_t t)
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
 * here arms the timer itself (queue_defer). */
static void queue_arm(struct queue *q, int64_t now)
{
	if (q->backlog)
		queue_wake_at(q, now + 1);
	int64_t next = spool_reader_next_due(q->reader, now);
	if (next > now)
		queue_wake_at(q, next);
	queue_wake_at(q, now + QUEUE_IDLE_WAIT);
}

/* How many messages a scan may start: past QUEUE_INFLIGHT_MAX in flight,
 * none until some finish (queue_recorded scans again), so memory and the
 * destinations' waiting lists stay bounded however deep the queue. */
static size_t queue_scan_room(const struct queue *q)
{
	size_t room = q->inflight.n < QUEUE_INFLIGHT_MAX ? QUEUE_INFLIGHT_MAX - q->inflight.n : 0;
	return room < QUEUE_BATCH ? room : QUEUE_BATCH;
}

/* One line when scans start waiting for room, again only after the
 * engine has been less than half full. */
static void queue_scan_full(struct queue *q, bool full)
{
	if (full && !q->full)
		log_info("queue: %zu messages in flight: more are read from the spool as these finish",
		         q->inflight.n);
	if (full)
		q->full = true;
	else if (q->inflight.n < QUEUE_INFLIGHT_MAX / 2)
		q->full = false;
}

/* Look into the spool for due messages (the fresh ones taken under the
 * same lock, so that none is started twice or missed). A batch that was
 * cut leaves the cursor where it stopped: the next scan goes on from
 * there, past messages already in flight, and starts over only once it
 * has read to the end; while there is room, it goes on at once. */
static void queue_scan(struct queue *q)
{
	static char qids[QUEUE_BATCH][UTIL_QID_LEN + 1];
	int64_t now = (int64_t)time(NULL);
	bool rescan, more = false;
	size_t room = queue_scan_room(q);
	spool_scan_lock(q->spool);
	struct spool_fresh *fresh = spool_take_fresh(q->spool, &rescan);
	size_t n = spool_reader_due(q->reader, now, &q->scan_at, qids, room, &more);
	spool_scan_unlock(q->spool);
	queue_start_fresh(q, fresh, now);
	for (size_t i = 0; i < n; i++)
		if (!queue_inflight(q, qids[i]))
			queue_start_qid(q, qids[i], now);
	q->backlog = more;
	if (!more)
		q->scan_at = SPOOL_CURSOR_START;
	queue_scan_full(q, room == 0);
	if (more && queue_scan_room(q) > 0)
		event_active(q->scan_ev, EV_TIMEOUT, 0);
	queue_arm(q, now);
}

static void queue_scan_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	queue_scan(arg);
}

static void queue_wake_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct queue *q = arg;
	q->wake_at = 0;
	queue_scan(q);
}

/* After a commit: the new messages, from the handoff. */
static void queue_fresh_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct queue *q = arg;
	bool rescan;
	struct spool_fresh *fresh = spool_take_fresh(q->spool, &rescan);
	queue_start_fresh(q, fresh, (int64_t)time(NULL));
	if (rescan)
		queue_scan(q);
}

static void queue_stop_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct queue *q = arg;
	for (size_t i = 0; i < q->nconns; i++)
		smtpc_hangup(q->conns[i]->c);
	closer_drain(q->closer, CLOSER_LINGER);   /* then the loop ends */
}

static void *queue_run(void *arg)
{
	struct queue *q = arg;
	queue_scan(q);
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
	struct queue *q = calloc(1, sizeof *q);
	if (!q)
		abort();
	q->conf = c;
	q->policy = p;
	pthread_mutex_init(&q->rec_mu, NULL);
	pthread_cond_init(&q->rec_cv, NULL);
	if (!queue_setup(q)) {
		queue_stop(q);
		return NULL;
	}
	return q;
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
	q->dns = dns_new(q->base, q->conf->dns_resolver);
	q->closer = closer_new(q->base);
	q->kick_ev = event_new(q->base, -1, 0, queue_fresh_cb, q);
	q->timer_ev = evtimer_new(q->base, queue_wake_cb, q);
	q->flush_ev = event_new(q->base, -1, 0, queue_flush, q);
	q->recorded_ev = event_new(q->base, -1, 0, queue_recorded, q);
	q->rec_retry_ev = evtimer_new(q->base, queue_rec_retry_cb, q);
	q->scan_ev = event_new(q->base, -1, 0, queue_scan_cb, q);
	q->stop_ev = event_new(q->base, -1, 0, queue_stop_cb, q);
	if (pthread_create(&q->thread, NULL, queue_run, q) != 0)
		log_fatal("queue: cannot start the delivery thread");
	return true;
}

void queue_kick(void *arg)
{
	struct queue *q = arg;
	event_active(q->kick_ev, EV_TIMEOUT, 0);
}

/* Wait for the batch under way (if any); its error. */
static int queue_rec_wait(struct queue *q)
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
static void queue_record_last(struct queue *q)
{
	if (q->recording)
		queue_recorded_msgs(q, queue_rec_wait(q));
	struct qmsg **tail = &q->done;
	while (*tail)
		tail = &(*tail)->next;
	*tail = q->held;
	q->held = NULL;
	q->nheld = 0;
	int err = queue_flush_batch(q);   /* a report refused */
	if (q->recording) {
		int rerr = queue_rec_wait(q);
		queue_recorded_msgs(q, rerr);
		err = rerr ? rerr : err;
	}
	for (struct qmsg *m = q->held; m; m = m->next)
		log_error("%s: delivery results lost at shutdown (%s): what was delivered will be "
		          "delivered again", m->env.qid, strerror(err));
}

static void queue_free_all(struct queue *q)
{
	queue_record_last(q);
	dns_free(q->dns);
	for (size_t i = 0; i < q->nconns; i++) {
		smtpc_destroy(q->conns[i]->c);
		if (q->conns[i]->idle_ev)
			event_free(q->conns[i]->idle_ev);
		free(q->conns[i]);
	}
	free(q->conns);
	closer_free(q->closer);
	hmap_clear(&q->dests, dest_free_node, NULL);
	struct qmsg *lists[] = { q->msgs, q->done, q->recording, q->held };
	for (int i = 0; i < 4; i++)
		while (lists[i]) {
			struct qmsg *m = lists[i];
			lists[i] = m->next;
			queue_msg_free(q, m);
		}
	hmap_clear(&q->inflight, NULL, NULL);   /* empty by now: its buckets */
	struct event *evs[] = { q->kick_ev, q->timer_ev, q->flush_ev, q->stop_ev, q->recorded_ev,
	                        q->rec_retry_ev, q->scan_ev };
	for (int i = 0; i < 7; i++)
		if (evs[i])
			event_free(evs[i]);
	event_base_free(q->base);
}

void queue_stop(struct queue *q)
{
	if (!q)
		return;
	if (q->base) {
		event_active(q->stop_ev, EV_TIMEOUT, 0);
		pthread_join(q->thread, NULL);
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
	free(q);
}
