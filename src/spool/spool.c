/* spool: opening and closing the spool, and the message API of spool.h on
 * the caller's thread: a message streamed in chunks and committed
 * (sessions), delivery results and reports (the delivery side), and the
 * completions that tell the callers. Every change becomes an operation
 * for the writer thread (writer.c). */
#include "spool/spool_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/msghead.h"
#include "lib/log.h"
#include "lib/util.h"

/* ---- open and close ---- */

/* The spool's state, locks and lists; no thread runs yet. */
static struct spool *spool_new(const char *dir, sqlite3 *db, int body_dir)
{
	struct spool *sp = util_xcalloc(1, sizeof *sp);
	sp->db = db;
	sp->body_dir = body_dir;
	sp->dir = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	pthread_mutex_init(&sp->reserve_mu, NULL);
	sp->tail = &sp->head;
	sp->done_tail = &sp->done_head;
	sp->fresh_tail = &sp->fresh_head;
	pthread_mutex_init(&sp->scan_mu, NULL);
	pthread_mutex_init(&sp->mu, NULL);
	pthread_condattr_t ca;   /* the lazy wait measures monotonic time */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&sp->cv, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&sp->sync_cv, NULL);
	pthread_mutex_init(&sp->reap_mu, NULL);
	pthread_cond_init(&sp->reap_cv, NULL);
	return sp;
}

static void spool_free(struct spool *sp)
{
	buf_free(&sp->reap);
	pthread_mutex_destroy(&sp->reap_mu);
	pthread_cond_destroy(&sp->reap_cv);
	pthread_mutex_destroy(&sp->scan_mu);
	pthread_mutex_destroy(&sp->reserve_mu);
	pthread_mutex_destroy(&sp->mu);
	pthread_cond_destroy(&sp->cv);
	pthread_cond_destroy(&sp->sync_cv);
	free(sp);
}

struct spool *spool_open(const char *dir, void (*notify)(void *), void *notify_ctx)
{
	if (!util_mkdir_p(dir, 0700)) {
		log_error("spool: cannot create %s: %s", dir, strerror(errno));
		return NULL;
	}
	int body_dir = body_dir_open(dir);
	sqlite3 *db = body_dir >= 0 ? rows_open(dir, body_dir) : NULL;
	if (!db) {
		if (body_dir >= 0)
			close(body_dir);
		return NULL;
	}
	struct spool *sp = spool_new(dir, db, body_dir);
	if (sp->dir < 0 || spool_journal_replay(db, sp->dir, body_dir) != 0) {
		log_error("spool: cannot open %s or apply its delivery journal", dir);
		rows_stmts_free(db);
		sqlite3_close(db);
		close(body_dir);
		if (sp->dir >= 0)
			close(sp->dir);
		spool_free(sp);
		return NULL;
	}
	sp->notify = notify;
	sp->notify_ctx = notify_ctx;
	if (pthread_create(&sp->reaper, NULL, body_reaper, sp) != 0 ||
	    pthread_create(&sp->thread, NULL, writer_main, sp) != 0)
		log_fatal("spool: cannot start the writer threads");
	return sp;
}

/* The writer first (it runs what is queued, and may hand the reaper more
 * files), then the reaper. */
static void spool_stop_threads(struct spool *sp)
{
	pthread_mutex_lock(&sp->mu);
	sp->stop = true;
	pthread_cond_signal(&sp->cv);
	pthread_mutex_unlock(&sp->mu);
	pthread_join(sp->thread, NULL);
	pthread_mutex_lock(&sp->reap_mu);
	sp->reap_stop = true;
	pthread_cond_signal(&sp->reap_cv);
	pthread_mutex_unlock(&sp->reap_mu);
	pthread_join(sp->reaper, NULL);
}

void spool_close(struct spool *sp)
{
	if (!sp)
		return;
	spool_stop_threads(sp);
	spool_run_completions(sp);
	bool rescan;
	writer_fresh_free_list(spool_take_fresh(sp, &rescan));
	sqlite3_close(sp->db);
	close(sp->body_dir);
	if (sp->dir >= 0)
		close(sp->dir);
	spool_free(sp);
}

/* ---- messages (the caller's thread) ---- */

static void spool_msg_free(struct spool_msg *m)
{
	if (m->fd >= 0)
		close(m->fd);
	buf_free(&m->buf);
	free(m);
}

/* Only a message that outgrows one chunk before its end sends chunks: from
 * the first one on, its body goes to a file (see "body files"). */
static void spool_send_chunk(struct spool_msg *m)
{
	struct spool_op *op = writer_op_new(OP_CHUNK, m);
	m->file = true;
	op->data = m->buf;  /* hand the buffer over */
	buf_init(&m->buf);
	/* room for what comes while the writer writes: grown by doubling
	 * from nothing, the big steps were copies (realloc could not grow in
	 * place: 14% of ternd's instructions receiving 1 MiB messages) */
	buf_reserve(&m->buf, 2 * SPOOL_CHUNK);
	op->seq = m->seq++;
	op->off = m->sent;
	m->sent += op->data.len;
	writer_enqueue(m->sp, op);
}

static void spool_complete(struct spool_op *op)
{
	struct spool_msg *m = op->m;
	m->ops_pending--;
	if (op->err && !m->err) {
		m->err = op->err;
		buf_free(&m->buf);   /* it will never be written: drop it now */
	}
	if (op->type == OP_CHUNK && !m->aborted) {
		if (!m->finished && !m->err && m->buf.len >= SPOOL_CHUNK)
			spool_send_chunk(m);
		if (m->on_chunk)
			m->on_chunk(m->ctx, op->err);
	} else if (op->type == OP_COMMIT && op->done) {
		op->done(op->ctx, op->err);
	}
	if (m->finished && m->ops_pending == 0)
		spool_msg_free(m);
	writer_op_free(op);
}

void spool_run_completions(struct spool *sp)
{
	pthread_mutex_lock(&sp->mu);
	struct spool_op *ops = sp->done_head;
	sp->done_head = NULL;
	sp->done_tail = &sp->done_head;
	pthread_mutex_unlock(&sp->mu);
	while (ops) {
		struct spool_op *next = ops->next;
		spool_complete(ops);
		ops = next;
	}
}

struct spool_msg *spool_msg_begin(struct spool *sp, const char *qid,
                                  spool_done_fn on_chunk, void *ctx)
{
	struct spool_msg *m = util_xcalloc(1, sizeof *m);
	m->sp = sp;
	m->fd = -1;
	snprintf(m->qid, sizeof m->qid, "%s", qid);
	m->on_chunk = on_chunk;
	m->ctx = ctx;
	return m;
}

bool spool_msg_write(struct spool_msg *m, const void *p, size_t n)
{
	if (m->err)
		return true;  /* the message will fail at commit; swallow */
	buf_append(&m->buf, p, n);
	if (m->buf.len >= SPOOL_CHUNK && m->ops_pending == 0)
		spool_send_chunk(m);
	return spool_msg_writable(m);
}

/* A failed message swallows the rest of its data (spool_msg_write), so
 * the session must read on to the end of DATA and answer 452/451. */
bool spool_msg_writable(const struct spool_msg *m)
{
	return m->err || m->buf.len < 8 * SPOOL_CHUNK;
}

int spool_msg_error(const struct spool_msg *m)
{
	return m->err;
}

static struct spool_capture *spool_capture_copy(const struct spool_capture *c)
{
	if (!c)
		return NULL;
	struct spool_capture *n = util_xcalloc(1, sizeof *n);
	n->subject = util_xstrdup(c->subject);
	n->from = util_xstrdup(c->from);
	n->to = util_xstrdup(c->to);
	n->cc = util_xstrdup(c->cc);
	n->msgid = util_xstrdup(c->msgid);
	n->date = util_xstrdup(c->date);
	return n;
}

struct spool_capture *spool_capture_of(const struct msghead *h)
{
	struct spool_capture *c = util_xcalloc(1, sizeof *c);
	c->subject = msghead_text(h, "Subject");
	c->from = msghead_text(h, "From");
	c->to = msghead_text(h, "To");
	c->cc = msghead_text(h, "Cc");
	c->msgid = msghead_text(h, "Message-ID");
	c->date = msghead_text(h, "Date");
	return c;
}

void spool_capture_clear(struct spool_capture *c)
{
	free(c->subject);
	free(c->from);
	free(c->to);
	free(c->cc);
	free(c->msgid);
	free(c->date);
	memset(c, 0, sizeof *c);
}

void spool_capture_free(struct spool_capture *c)
{
	if (!c)
		return;
	spool_capture_clear(c);
	free(c);
}

static struct spool_env *spool_env_copy(const struct spool_env *e)
{
	struct spool_env *c = util_xcalloc(1, sizeof *c);
	*c = *e;
	c->mem = NULL;
	c->mem_len = c->mem_cap = 0;
	c->sender = util_xstrdup(e->sender);
	c->envid = util_xstrdup(e->envid);
	c->client = util_xstrdup(e->client);
	c->helo = util_xstrdup(e->helo);
	c->prefix = e->prefix ? util_xstrdup(e->prefix) : NULL;
	c->rcpt = util_xcalloc(e->nrcpt, sizeof *c->rcpt);
	for (size_t i = 0; i < e->nrcpt; i++) {
		c->rcpt[i] = e->rcpt[i];
		c->rcpt[i].orig = util_xstrdup(e->rcpt[i].orig);
		c->rcpt[i].addr = util_xstrdup(e->rcpt[i].addr);
		c->rcpt[i].orcpt = util_xstrdup(e->rcpt[i].orcpt);
		c->rcpt[i].last_reply = util_xstrdup(e->rcpt[i].last_reply);
		c->rcpt[i].remote_mta = util_xstrdup(e->rcpt[i].remote_mta);
		c->rcpt[i].inbox = e->rcpt[i].inbox ? util_xstrdup(e->rcpt[i].inbox) : NULL;
	}
	c->capture = spool_capture_copy(e->capture);
	return c;
}

void spool_msg_commit(struct spool_msg *m, const struct spool_env *env,
                      spool_done_fn done, void *ctx)
{
	struct spool_op *op = writer_op_new(OP_COMMIT, m);
	op->data = m->buf;
	buf_init(&m->buf);
	op->seq = m->seq++;
	op->off = m->sent;
	m->sent += op->data.len;
	op->env = spool_env_copy(env);
	op->done = done;
	op->ctx = ctx;
	m->finished = true;
	writer_enqueue(m->sp, op);
}

void spool_msg_abort(struct spool_msg *m)
{
	m->finished = m->aborted = true;
	if (m->seq == 0 && m->ops_pending == 0) {
		spool_msg_free(m);
		return;
	}
	writer_enqueue(m->sp, writer_op_new(OP_ABORT, m));
}

/* Queue a synchronous op and wait until the writer has committed it. */
static int spool_sync(struct spool *sp, struct spool_op *op)
{
	writer_enqueue(sp, op);
	pthread_mutex_lock(&sp->mu);
	while (!op->sync_done)
		pthread_cond_wait(&sp->sync_cv, &sp->mu);
	pthread_mutex_unlock(&sp->mu);
	int err = op->err;
	writer_op_free(op);
	return err;
}

void spool_update_many_async(struct spool *sp, const struct spool_env *const *envs, size_t n,
                             const struct spool_report *reps, size_t nrep,
                             void (*done)(void *ctx, int err), void *ctx)
{
	struct spool_op *op = writer_op_new(OP_UPDATE, NULL);
	op->envs = envs;
	op->n = n;
	op->reps = reps;
	op->nrep = nrep;
	op->on_writer = done;
	op->ctx = ctx;
	writer_enqueue(sp, op);
}

static struct spool_op *spool_admin_op(enum spool_admin what, const char *qid,
                                       const char *domain, int64_t now, void *ctx)
{
	struct spool_op *op = writer_op_new(OP_ADMIN, NULL);
	op->admin = what;
	op->qid = qid ? util_xstrdup(qid) : NULL;
	op->domain = domain ? util_xstrdup(domain) : NULL;
	op->now = now;
	op->ctx = ctx;
	return op;
}

void spool_admin_async(struct spool *sp, enum spool_admin what, const char *qid,
                       const char *domain, int64_t now,
                       void (*done)(void *ctx, int err, long count), void *ctx)
{
	struct spool_op *op = spool_admin_op(what, qid, domain, now, ctx);
	op->on_admin = done;
	writer_enqueue(sp, op);
}

void spool_release_async(struct spool *sp, const char *qid, const char *domain, bool subdomains,
                         bool all, int64_t now,
                         void (*done)(void *ctx, int err, const struct spool_released *v,
                                      size_t n),
                         void *ctx)
{
	struct spool_op *op = spool_admin_op(SPOOL_RELEASE, qid, domain, now, ctx);
	op->subdomains = subdomains;
	op->all = all;
	op->on_release = done;
	writer_enqueue(sp, op);
}

static void spool_sts_done(void *ctx, int err)
{
	(void)ctx;
	if (err)
		log_error("spool: cannot cache an MTA-STS policy: %s", strerror(err));
}

void spool_sts_put(struct spool *sp, const char *domain, const char *id, const char *policy,
                   int64_t fetched, int64_t expires)
{
	struct spool_op *op = writer_op_new(OP_STS, NULL);
	op->domain = util_xstrdup(domain);
	op->qid = util_xstrdup(id);
	buf_append(&op->data, policy, strlen(policy));
	op->now = fetched;
	op->expires = expires;
	op->on_writer = spool_sts_done;   /* told on the writer's thread, not lazy */
	writer_enqueue(sp, op);
}

void spool_capture_async(struct spool *sp, enum spool_capture_op what, const char *id,
                         const char *inbox, unsigned keep, int64_t before,
                         void (*done)(void *ctx, int err, long count), void *ctx)
{
	struct spool_op *op = spool_admin_op(SPOOL_DELETE, id, inbox, before, ctx);
	op->capture = true;
	op->cop = what;
	op->keep = keep;
	op->on_admin = done;
	writer_enqueue(sp, op);
}

int spool_inject(struct spool *sp, const struct spool_env *env, const void *body, size_t len)
{
	struct spool_op *op = writer_op_new(OP_INJECT, NULL);
	op->env = (struct spool_env *)env;
	op->body = body;
	op->len = len;
	return spool_sync(sp, op);
}

void spool_rcpt_add(struct spool_rcpt **v, size_t *n, size_t *cap, const char *orig,
                    const char *addr, int transport, unsigned notify, const char *orcpt)
{
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 4;
		*v = util_xrealloc(*v, *cap, sizeof **v);
	}
	struct spool_rcpt *r = &(*v)[*n];
	memset(r, 0, sizeof *r);
	r->idx = (unsigned)(*n)++;
	r->orig = util_xstrdup(orig);
	r->addr = util_xstrdup(addr);
	r->transport = transport;
	r->notify = notify;
	r->orcpt = util_xstrdup(orcpt);
	r->status = SPOOL_PENDING;
}

void spool_rcpt_clear(struct spool_rcpt *r)
{
	free(r->orig);
	free(r->addr);
	free(r->orcpt);
	free(r->last_reply);
	free(r->remote_mta);
	free(r->inbox);
	memset(r, 0, sizeof *r);
}

void spool_rcpts_free(struct spool_rcpt *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		spool_rcpt_clear(&v[i]);
	free(v);
}

void spool_env_free(struct spool_env *e)
{
	free(e->sender);
	free(e->envid);
	free(e->client);
	free(e->helo);
	free(e->prefix);
	spool_capture_free(e->capture);
	spool_rcpts_free(e->rcpt, e->nrcpt);
	if (e->mem) {
		free(e->mem);
		atomic_fetch_sub(&spool_mem_held, e->mem_cap);
	}
	memset(e, 0, sizeof *e);
}
