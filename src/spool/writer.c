/* spool/writer: the writer thread, the only one that writes the database
 * and body files. Operations (spool.c makes them) wait on a queue; the
 * thread takes all that are queued, runs them in one transaction and
 * commits once: a group commit, one fsync for many messages. Recorded
 * delivery results are lazy and wait briefly for a commit that new mail
 * needs. After the commit come the handoff of new messages to the
 * delivery side and the completions: synchronous callers are woken,
 * asynchronous results told on this thread, the rest put on the list that
 * spool_run_completions runs on the caller's thread. */
#include "spool/spool_priv.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/buf.h"
#include "lib/log.h"
#include "lib/util.h"

atomic_size_t spool_mem_held;

/* ---- the queue of operations ---- */

struct spool_op *writer_op_new(enum spool_op_type type, struct spool_msg *m)
{
	struct spool_op *op = util_xcalloc(1, sizeof *op);
	op->type = type;
	op->m = m;
	if (m)
		m->ops_pending++;
	return op;
}

void writer_op_free(struct spool_op *op)
{
	buf_free(&op->data);
	buf_free(&op->gone);
	buf_free(&op->released);
	if (op->type == OP_COMMIT && op->env) {
		spool_env_free(op->env);
		free(op->env);
	}
	free(op->qid);
	free(op->domain);
	free(op);
}

/* Lazy operations (recorded delivery results) do not need a commit of
 * their own: they wait up to SPOOL_LAZY_MS for one that a message needs, and
 * share its fsync. A crash in that window repeats a delivery, as any crash
 * between a delivery and its record does; it never loses a message. */
#define SPOOL_LAZY_MS 25

static bool writer_op_lazy(const struct spool_op *op)
{
	return op->type == OP_UPDATE && op->on_writer;
}

void writer_enqueue(struct spool *sp, struct spool_op *op)
{
	pthread_mutex_lock(&sp->mu);
	bool was_empty = !sp->head;
	*sp->tail = op;
	sp->tail = &op->next;
	if (!writer_op_lazy(op))
		sp->eager++;
	else if (was_empty)
		clock_gettime(CLOCK_MONOTONIC, &sp->lazy_since);
	if (was_empty || !writer_op_lazy(op))
		pthread_cond_signal(&sp->cv);
	pthread_mutex_unlock(&sp->mu);
}

/* ---- one batch, one transaction ---- */

static int writer_do_commit(struct spool *sp, struct spool_op *op)
{
	struct spool_msg *m = op->m;
	if (m->werr)
		return m->werr;  /* part of the body is missing: never commit it */
	int err = 0;
	if (m->file)
		err = body_commit(sp, m, op->off, &op->data);
	else if (op->data.len)
		err = rows_put_chunk(sp->db, m->qid, op->seq, &op->data);
	op->env->body_file = m->file;
	return err ? err : rows_put_msg(sp->db, op->env);
}

static int writer_do_op(struct spool *sp, struct spool_op *op)
{
	sqlite3 *db = sp->db;
	buf_reset(&op->gone);
	/* the space the reserve freed is for results: new mail waits (452
	 * 4.3.1) until the reserve is made again */
	if ((op->type == OP_CHUNK || op->type == OP_COMMIT) && body_reserve_spent(sp))
		return ENOSPC;
	switch (op->type) {
	case OP_CHUNK:
		return op->m->file ? body_put(sp, op->m, op->off, &op->data)
		                   : rows_put_chunk(db, op->m->qid, op->seq, &op->data);
	case OP_COMMIT:
		return writer_do_commit(sp, op);
	case OP_ABORT:   /* only a message with a body file has ops to give up */
		body_discard(sp, op->m);
		return 0;
	case OP_UPDATE: {
		int err = 0;
		for (size_t i = 0; !err && i < op->nrep; i++)
			err = rows_inject(db, op->reps[i].env, op->reps[i].body, op->reps[i].len);
		for (size_t i = 0; !err && i < op->n; i++)
			err = rows_update(db, &op->gone, op->envs[i]);
		return err;
	}
	case OP_INJECT:
		return rows_inject(db, op->env, op->body, op->len);
	case OP_ADMIN:
		op->released.len = 0;   /* a batch that failed runs it again alone */
		if (op->capture)
			return capture_admin(db, &op->gone, op);
		if (op->on_release)
			return rows_release(db, op->qid, op->domain, op->subdomains, op->all, op->now,
			                    &op->released);
		return rows_admin(db, &op->gone, op->admin, op->qid, op->domain, op->now, &op->count);
	case OP_STS:
		return rows_sts_put(db, op->domain, op->qid, &op->data, op->now, op->expires);
	}
	return EINVAL;
}

static void writer_rollback(struct spool *sp)
{
	sp->dir_needed = false;
	if (!sqlite3_get_autocommit(sp->db))
		sqlite3_exec(sp->db, "ROLLBACK", NULL, NULL, NULL);
}

/* Commit, after making the names of new body files durable if the
 * transaction adds a message that has one. */
static int writer_commit(struct spool *sp)
{
	int err = body_dir_sync(sp);
	if (err)
		return err;
	sp->dir_needed = false;
	return rows_sql(sp->db, "COMMIT");
}

/* One operation in a transaction of its own. */
static int writer_op_alone(struct spool *sp, struct spool_op *op)
{
	int err = rows_sql(sp->db, "BEGIN IMMEDIATE");
	if (!err)
		err = writer_do_op(sp, op);
	if (!err)
		err = writer_commit(sp);
	if (err)
		writer_rollback(sp);
	return err;
}

/* One transaction for the whole batch; if anything fails, each operation is
 * retried in a transaction of its own so that one bad message (or a full
 * disk during one large chunk) fails alone. */
static void writer_batch(struct spool *sp, struct spool_op *ops)
{
	int err = rows_sql(sp->db, "BEGIN IMMEDIATE");
	for (struct spool_op *op = ops; op && !err; op = op->next)
		err = writer_do_op(sp, op);
	if (!err)
		err = writer_commit(sp);
	if (!err) {
		body_unlink(sp, ops);
		return;
	}
	writer_rollback(sp);
	log_warn("spool: batch commit failed (%s); retrying one by one", strerror(err));
	for (struct spool_op *op = ops; op; op = op->next) {
		op->err = writer_op_alone(sp, op);
		if (op->err == ENOSPC && op->type == OP_UPDATE && body_reserve_release(sp))
			op->err = writer_op_alone(sp, op);
		if (op->err && op->m && !op->m->werr)
			op->m->werr = op->err;
		if (op->err && op->type == OP_COMMIT)
			body_discard(sp, op->m);   /* the message is refused */
	}
	body_unlink(sp, ops);
}

/* ---- handoff to the delivery side ---- */

/* A committed message's envelope (moved out of the operation, which needs
 * it no more) and, room permitting, its body: a message not in a body file
 * is whole in the last operation's data. */
static struct spool_fresh *writer_fresh_from(struct spool_op *op)
{
	struct spool_fresh *f = util_xcalloc(1, sizeof *f);
	f->env = *op->env;
	free(op->env);
	op->env = NULL;
	size_t cap = op->data.cap;
	if (f->env.body_file || op->data.len == 0)
		return f;
	if (atomic_fetch_add(&spool_mem_held, cap) + cap > SPOOL_MEM_MAX) {
		atomic_fetch_sub(&spool_mem_held, cap);   /* no room: read from the spool */
		return f;
	}
	f->env.mem = op->data.data;
	f->env.mem_len = op->data.len;
	f->env.mem_cap = cap;
	buf_init(&op->data);
	return f;
}

void writer_fresh_free_list(struct spool_fresh *f)
{
	while (f) {
		struct spool_fresh *next = f->next;
		spool_fresh_free(f);
		f = next;
	}
}

/* Append n fresh messages (head to *tail) to the list, unless the
 * delivery side is that far behind: then it must look for itself. */
static void writer_keep_fresh(struct spool *sp, struct spool_fresh *head,
                             struct spool_fresh **tail, size_t n, bool rescan)
{
	pthread_mutex_lock(&sp->mu);
	if (sp->nfresh + n > SPOOL_FRESH_MAX) {
		sp->rescan = true;
		pthread_mutex_unlock(&sp->mu);
		writer_fresh_free_list(head);
		return;
	}
	*sp->fresh_tail = head;
	if (head)
		sp->fresh_tail = tail;
	sp->nfresh += n;
	sp->rescan |= rescan;
	pthread_mutex_unlock(&sp->mu);
}

/* After a commit (the writer holds scan_mu): keep the messages it added,
 * and tell the hook. A report queued by spool_inject is not kept: the
 * delivery side finds it in the spool. */
static void writer_handoff(struct spool *sp, struct spool_op *ops)
{
	if (!sp->commit_hook)
		return;
	struct spool_fresh *head = NULL, **tail = &head;
	size_t n = 0;
	bool rescan = false;
	for (struct spool_op *op = ops; op; op = op->next) {
		if (op->err)
			continue;
		if (op->type == OP_COMMIT && capture_deliverable(op->env)) {
			*tail = writer_fresh_from(op);
			tail = &(*tail)->next;
			n++;
		}
		rescan |= op->type == OP_INJECT || (op->type == OP_UPDATE && op->nrep);
	}
	if (!n && !rescan)
		return;
	writer_keep_fresh(sp, head, tail, n, rescan);
	sp->commit_hook(sp->hook_ctx);
}

struct spool_fresh *spool_take_fresh(struct spool *sp, bool *rescan)
{
	pthread_mutex_lock(&sp->mu);
	struct spool_fresh *f = sp->fresh_head;
	sp->fresh_head = NULL;
	sp->fresh_tail = &sp->fresh_head;
	sp->nfresh = 0;
	*rescan = sp->rescan;
	sp->rescan = false;
	pthread_mutex_unlock(&sp->mu);
	return f;
}

void spool_fresh_free(struct spool_fresh *f)
{
	spool_env_free(&f->env);
	free(f);
}

void spool_scan_lock(struct spool *sp)
{
	pthread_mutex_lock(&sp->scan_mu);
}

void spool_scan_unlock(struct spool *sp)
{
	pthread_mutex_unlock(&sp->scan_mu);
}

/* The writer calls the hook holding scan_mu: once this returns, the old
 * hook is not running and will not run again (its owner may be freed). */
void spool_set_commit_hook(struct spool *sp, void (*hook)(void *), void *ctx)
{
	pthread_mutex_lock(&sp->scan_mu);
	sp->commit_hook = hook;
	sp->hook_ctx = ctx;
	pthread_mutex_unlock(&sp->scan_mu);
}

/* ---- completions ---- */

/* Hand finished operations back: synchronous ones wake their waiter, the
 * others go to the completion list for spool_run_completions(). */
static void writer_dispatch(struct spool *sp, struct spool_op *ops)
{
	bool async = false;
	struct spool_op *told = NULL;
	pthread_mutex_lock(&sp->mu);
	while (ops) {
		struct spool_op *op = ops;
		ops = op->next;
		op->next = NULL;
		if (op->on_writer || op->on_admin || op->on_release) {
			op->next = told;
			told = op;
			continue;
		}
		if (op->type == OP_UPDATE || op->type == OP_INJECT) {
			op->sync_done = true;
			continue;
		}
		*sp->done_tail = op;
		sp->done_tail = &op->next;
		async = true;
	}
	pthread_cond_broadcast(&sp->sync_cv);
	pthread_mutex_unlock(&sp->mu);
	while (told) {
		struct spool_op *op = told;
		told = op->next;
		if (op->on_release)
			op->on_release(op->ctx, op->err, (const struct spool_released *)op->released.data,
			               op->err ? 0 : op->released.len / sizeof(struct spool_released));
		else if (op->on_admin)
			op->on_admin(op->ctx, op->err, op->count);
		else
			op->on_writer(op->ctx, op->err);
		writer_op_free(op);
	}
	if (async && sp->notify)
		sp->notify(sp->notify_ctx);
}

/* ---- the thread ---- */

/* Wait (holding sp->mu) until there is a batch to run. */
static void writer_wait_batch(struct spool *sp)
{
	while (!sp->eager && !sp->stop) {
		if (!sp->head) {
			pthread_cond_wait(&sp->cv, &sp->mu);
			continue;
		}
		struct timespec until = sp->lazy_since;
		until.tv_nsec += SPOOL_LAZY_MS * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		if (pthread_cond_timedwait(&sp->cv, &sp->mu, &until) == ETIMEDOUT)
			return;
	}
}

void *writer_main(void *arg)
{
	struct spool *sp = arg;
	for (;;) {
		pthread_mutex_lock(&sp->mu);
		writer_wait_batch(sp);
		struct spool_op *ops = sp->head;
		sp->head = NULL;
		sp->tail = &sp->head;
		sp->eager = 0;
		pthread_mutex_unlock(&sp->mu);
		if (!ops)
			break;  /* stop requested and nothing left */
		body_reserve_keep(sp);
		pthread_mutex_lock(&sp->scan_mu);
		writer_batch(sp, ops);
		writer_handoff(sp, ops);
		pthread_mutex_unlock(&sp->scan_mu);
		writer_dispatch(sp, ops);
	}
	rows_stmts_free(sp->db);
	return NULL;
}
