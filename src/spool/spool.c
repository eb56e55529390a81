/* spool: SQLite queue with a group-committing writer thread (see spool.h). */
#include "spool.h"

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/buf.h"
#include "../lib/log.h"

enum spool_op_type { OP_CHUNK, OP_COMMIT, OP_ABORT, OP_UPDATE, OP_INJECT };

struct spool_op {
	struct spool_op *next;
	enum spool_op_type type;
	struct spool_msg *m;          /* CHUNK, COMMIT, ABORT */
	struct buf data;              /* CHUNK, COMMIT: bytes to write */
	unsigned seq;
	struct spool_env *env;        /* COMMIT: owned copy; UPDATE, INJECT: the caller's */
	const struct spool_env *const *envs;  /* UPDATE: n of them */
	size_t n;
	const char *body;             /* INJECT: the whole message */
	size_t len;
	spool_done_fn done;
	void *ctx;
	int err;
	bool sync_done;               /* UPDATE, INJECT: the caller waits for this */
	void (*on_writer)(void *ctx, int err);  /* asynchronous UPDATE: told on the writer thread */
};

struct spool_msg {
	struct spool *sp;
	char qid[UTIL_QID_LEN + 1];
	struct buf buf;
	unsigned seq;
	unsigned ops_pending;
	bool finished;                /* committed or aborted: no more writes */
	bool aborted;
	int err;
	spool_done_fn on_chunk;
	void *ctx;
};

struct spool {
	sqlite3 *db;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;            /* work for the writer */
	pthread_cond_t sync_cv;       /* a synchronous op finished */
	struct spool_op *head, **tail;
	struct spool_op *done_head, **done_tail;
	bool stop;
	void (*notify)(void *);
	void *notify_ctx;
	void (*commit_hook)(void *);
	void *hook_ctx;
};

static const char spool_schema[] =
	"PRAGMA journal_mode=WAL;"
	"PRAGMA synchronous=FULL;"
	"CREATE TABLE IF NOT EXISTS msg(qid TEXT PRIMARY KEY, sender TEXT NOT NULL,"
	" envid TEXT NOT NULL, ret INT, body INT, size INT, arrival INT,"
	" client TEXT, helo TEXT);"
	"CREATE TABLE IF NOT EXISTS rcpt(qid TEXT NOT NULL, idx INT NOT NULL,"
	" orig TEXT NOT NULL, addr TEXT NOT NULL, transport INT, notify INT,"
	" orcpt TEXT NOT NULL, status INT NOT NULL, attempts INT NOT NULL,"
	" next_try INT NOT NULL, last_reply TEXT NOT NULL, remote_mta TEXT NOT NULL,"
	" dsn_flags INT NOT NULL, PRIMARY KEY(qid, idx));"
	"CREATE INDEX IF NOT EXISTS rcpt_due ON rcpt(status, next_try);"
	"CREATE TABLE IF NOT EXISTS chunk(id INTEGER PRIMARY KEY, qid TEXT NOT NULL,"
	" seq INT NOT NULL, data BLOB NOT NULL);"
	"CREATE UNIQUE INDEX IF NOT EXISTS chunk_qid ON chunk(qid, seq);";

/* Chunks and recipients whose message row never committed (RFC 5321 6.1:
 * only a 250 makes us responsible; those messages were never acknowledged). */
static const char spool_orphans[] =
	"DELETE FROM chunk WHERE qid NOT IN (SELECT qid FROM msg);"
	"DELETE FROM rcpt WHERE qid NOT IN (SELECT qid FROM msg);";

static int spool_errno(sqlite3 *db)
{
	switch (sqlite3_errcode(db) & 0xff) {
	case SQLITE_FULL: return ENOSPC;
	case SQLITE_OK: case SQLITE_DONE: case SQLITE_ROW: return 0;
	default: return EIO;
	}
}

static sqlite3 *spool_connect(const char *dir)
{
	struct buf path = BUF_INIT;
	buf_printf(&path, "%s/queue.db", dir);
	sqlite3 *db = NULL;
	int rc = sqlite3_open_v2(buf_cstr(&path), &db,
	                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
	                         SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		log_error("spool: cannot open %s: %s", buf_cstr(&path),
		          db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
		sqlite3_close(db);
		db = NULL;
	} else {
		sqlite3_busy_timeout(db, 10000);
	}
	buf_free(&path);
	return db;
}

/* ---- statements run by the writer ---- */

/* The writer's statements are prepared once and kept (only the writer
 * thread uses them): preparing each statement per row cost about a fifth of
 * the writer's time under load. Keyed by the SQL text's address, as every
 * caller passes a string literal. */
#define SPOOL_STMTS 16
static _Thread_local struct { sqlite3 *db; const char *sql; sqlite3_stmt *st; } spool_stmts[SPOOL_STMTS];

static sqlite3_stmt *spool_stmt(sqlite3 *db, const char *sql)
{
	for (size_t i = 0; i < SPOOL_STMTS; i++) {
		if (spool_stmts[i].sql == sql && spool_stmts[i].db == db)
			return spool_stmts[i].st;
		if (!spool_stmts[i].sql) {
			sqlite3_stmt *st = NULL;
			if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK)
				return NULL;
			spool_stmts[i].db = db;
			spool_stmts[i].sql = sql;
			spool_stmts[i].st = st;
			return st;
		}
	}
	sqlite3_stmt *st = NULL;  /* cache full (a bug): prepare, finalized on reset */
	return sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK ? st : NULL;
}

/* Done with a statement from spool_stmt(): reset it for its next use. */
static void spool_stmt_release(sqlite3_stmt *st)
{
	for (size_t i = 0; i < SPOOL_STMTS; i++)
		if (spool_stmts[i].st == st) {
			sqlite3_reset(st);
			sqlite3_clear_bindings(st);
			return;
		}
	sqlite3_finalize(st);
}

/* Finalize the cached statements of db (before closing it). */
static void spool_stmts_free(sqlite3 *db)
{
	for (size_t i = 0; i < SPOOL_STMTS; i++)
		if (spool_stmts[i].db == db) {
			sqlite3_finalize(spool_stmts[i].st);
			spool_stmts[i].db = NULL;
			spool_stmts[i].sql = NULL;
			spool_stmts[i].st = NULL;
		}
}

static int spool_exec_stmt(sqlite3 *db, const char *sql, const char *qid, sqlite3_stmt **out)
{
	*out = spool_stmt(db, sql);
	if (!*out)
		return spool_errno(db) ? spool_errno(db) : EIO;
	if (qid)
		sqlite3_bind_text(*out, 1, qid, -1, SQLITE_STATIC);
	return 0;
}

static int spool_step_done(sqlite3 *db, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	int err = (rc == SQLITE_DONE || rc == SQLITE_ROW) ? 0 : spool_errno(db);
	spool_stmt_release(st);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : (err ? err : EIO);
}

static int spool_put_chunk(sqlite3 *db, const char *qid, unsigned seq, const struct buf *b)
{
	sqlite3_stmt *st;
	int err = spool_exec_stmt(db, "INSERT INTO chunk(qid, seq, data) VALUES(?,?,?)", qid, &st);
	if (err)
		return err;
	sqlite3_bind_int(st, 2, (int)seq);
	sqlite3_bind_blob64(st, 3, b->len ? b->data : "", b->len, SQLITE_STATIC);
	return spool_step_done(db, st);
}

static int spool_put_rcpt(sqlite3 *db, const char *qid, const struct spool_rcpt *r)
{
	sqlite3_stmt *st;
	int err = spool_exec_stmt(db, "INSERT INTO rcpt(qid, idx, orig, addr, transport,"
	                          " notify, orcpt, status, attempts, next_try, last_reply,"
	                          " remote_mta, dsn_flags) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?)",
	                          qid, &st);
	if (err)
		return err;
	sqlite3_bind_int(st, 2, (int)r->idx);
	sqlite3_bind_text(st, 3, r->orig, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, r->addr, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 5, r->transport);
	sqlite3_bind_int(st, 6, (int)r->notify);
	sqlite3_bind_text(st, 7, r->orcpt ? r->orcpt : "", -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 8, r->status);
	sqlite3_bind_int(st, 9, (int)r->attempts);
	sqlite3_bind_int64(st, 10, r->next_try);
	sqlite3_bind_text(st, 11, r->last_reply ? r->last_reply : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 12, r->remote_mta ? r->remote_mta : "", -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 13, (int)r->dsn_flags);
	return spool_step_done(db, st);
}

static int spool_put_msg(sqlite3 *db, const struct spool_env *e)
{
	sqlite3_stmt *st;
	int err = spool_exec_stmt(db, "INSERT INTO msg(qid, sender, envid, ret, body, size,"
	                          " arrival, client, helo) VALUES(?,?,?,?,?,?,?,?,?)", e->qid, &st);
	if (err)
		return err;
	sqlite3_bind_text(st, 2, e->sender, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, e->envid, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 4, e->ret);
	sqlite3_bind_int(st, 5, e->body);
	sqlite3_bind_int64(st, 6, (sqlite3_int64)e->size);
	sqlite3_bind_int64(st, 7, e->arrival);
	sqlite3_bind_text(st, 8, e->client, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 9, e->helo, -1, SQLITE_STATIC);
	err = spool_step_done(db, st);
	for (size_t i = 0; !err && i < e->nrcpt; i++)
		err = spool_put_rcpt(db, e->qid, &e->rcpt[i]);
	return err;
}

static int spool_delete_msg(sqlite3 *db, const char *qid)
{
	static const char *const sql[] = { "DELETE FROM chunk WHERE qid=?",
	                                   "DELETE FROM rcpt WHERE qid=?",
	                                   "DELETE FROM msg WHERE qid=?" };
	int err = 0;
	for (size_t i = 0; !err && i < 3; i++) {
		sqlite3_stmt *st;
		err = spool_exec_stmt(db, sql[i], qid, &st);
		if (!err)
			err = spool_step_done(db, st);
	}
	return err;
}

static int spool_set_rcpt(sqlite3 *db, const char *qid, const struct spool_rcpt *r)
{
	sqlite3_stmt *st;
	int err = spool_exec_stmt(db, "UPDATE rcpt SET status=?2, attempts=?3, next_try=?4,"
	                          " last_reply=?5, remote_mta=?7, dsn_flags=?8"
	                          " WHERE qid=?1 AND idx=?6", qid, &st);
	if (err)
		return err;
	sqlite3_bind_int(st, 2, r->status);
	sqlite3_bind_int(st, 3, (int)r->attempts);
	sqlite3_bind_int64(st, 4, r->next_try);
	sqlite3_bind_text(st, 5, r->last_reply ? r->last_reply : "", -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 6, (int)r->idx);
	sqlite3_bind_text(st, 7, r->remote_mta ? r->remote_mta : "", -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 8, (int)r->dsn_flags);
	return spool_step_done(db, st);
}

static int spool_pending_count(sqlite3 *db, const char *qid, long *n)
{
	sqlite3_stmt *st;
	/* "+status": look the message up by its primary key; without the "+",
	 * SQLite picks rcpt_due(status) and counts through every pending
	 * recipient of the spool for each message delivered. */
	int err = spool_exec_stmt(db, "SELECT COUNT(*) FROM rcpt WHERE qid=? AND +status=0", qid, &st);
	if (err)
		return err;
	if (sqlite3_step(st) != SQLITE_ROW) {
		err = spool_errno(db) ? spool_errno(db) : EIO;
	} else {
		*n = (long)sqlite3_column_int64(st, 0);
	}
	spool_stmt_release(st);
	return err;
}

static int spool_do_update(sqlite3 *db, const struct spool_env *e)
{
	int err = 0;
	for (size_t i = 0; !err && i < e->nrcpt; i++)
		err = spool_set_rcpt(db, e->qid, &e->rcpt[i]);
	long pending = 1;
	if (!err)
		err = spool_pending_count(db, e->qid, &pending);
	if (!err && pending == 0)
		err = spool_delete_msg(db, e->qid);
	return err;
}

/* A message made here: its body in SPOOL_CHUNK pieces, then the envelope. */
static int spool_do_inject(sqlite3 *db, const struct spool_op *op)
{
	int err = 0;
	unsigned seq = 0;
	for (size_t off = 0; !err && (off < op->len || seq == 0); off += SPOOL_CHUNK) {
		size_t n = op->len - off < SPOOL_CHUNK ? op->len - off : SPOOL_CHUNK;
		struct buf b = { (char *)op->body + off, n, n };
		err = spool_put_chunk(db, op->env->qid, seq++, &b);
	}
	return err ? err : spool_put_msg(db, op->env);
}

static int spool_do_op(sqlite3 *db, struct spool_op *op)
{
	switch (op->type) {
	case OP_CHUNK:
		return spool_put_chunk(db, op->m->qid, op->seq, &op->data);
	case OP_COMMIT: {
		int err = op->data.len ? spool_put_chunk(db, op->m->qid, op->seq, &op->data) : 0;
		return err ? err : spool_put_msg(db, op->env);
	}
	case OP_ABORT:
		return spool_delete_msg(db, op->m->qid);
	case OP_UPDATE: {
		int err = 0;
		for (size_t i = 0; !err && i < op->n; i++)
			err = spool_do_update(db, op->envs[i]);
		return err;
	}
	case OP_INJECT:
		return spool_do_inject(db, op);
	}
	return EINVAL;
}

static int spool_sql(sqlite3 *db, const char *sql)
{
	return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 :
	       (spool_errno(db) ? spool_errno(db) : EIO);
}

static void spool_rollback(sqlite3 *db)
{
	if (!sqlite3_get_autocommit(db))
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
}

/* One transaction for the whole batch; if anything fails, each operation is
 * retried in a transaction of its own so that one bad message (or a full
 * disk during one large chunk) fails alone. */
static void spool_batch(struct spool *sp, struct spool_op *ops)
{
	int err = spool_sql(sp->db, "BEGIN IMMEDIATE");
	for (struct spool_op *op = ops; op && !err; op = op->next)
		err = spool_do_op(sp->db, op);
	if (!err)
		err = spool_sql(sp->db, "COMMIT");
	if (!err)
		return;
	spool_rollback(sp->db);
	log_warn("spool: batch commit failed (%s); retrying one by one", strerror(err));
	for (struct spool_op *op = ops; op; op = op->next) {
		op->err = spool_sql(sp->db, "BEGIN IMMEDIATE");
		if (!op->err)
			op->err = spool_do_op(sp->db, op);
		if (!op->err)
			op->err = spool_sql(sp->db, "COMMIT");
		if (op->err)
			spool_rollback(sp->db);
	}
}

/* Hand finished operations back: synchronous ones wake their waiter, the
 * others go to the completion list for spool_run_completions(). */
static void spool_dispatch(struct spool *sp, struct spool_op *ops)
{
	bool committed = false, async = false;
	struct spool_op *told = NULL;
	pthread_mutex_lock(&sp->mu);
	while (ops) {
		struct spool_op *op = ops;
		ops = op->next;
		op->next = NULL;
		committed |= (op->type == OP_COMMIT || op->type == OP_INJECT) && !op->err;
		if (op->on_writer) {
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
		op->on_writer(op->ctx, op->err);
		free(op);
	}
	if (async && sp->notify)
		sp->notify(sp->notify_ctx);
	if (committed && sp->commit_hook)
		sp->commit_hook(sp->hook_ctx);
}

static void *spool_writer(void *arg)
{
	struct spool *sp = arg;
	for (;;) {
		pthread_mutex_lock(&sp->mu);
		while (!sp->head && !sp->stop)
			pthread_cond_wait(&sp->cv, &sp->mu);
		struct spool_op *ops = sp->head;
		sp->head = NULL;
		sp->tail = &sp->head;
		pthread_mutex_unlock(&sp->mu);
		if (!ops)
			break;  /* stop requested and nothing left */
		spool_batch(sp, ops);
		spool_dispatch(sp, ops);
	}
	spool_stmts_free(sp->db);
	return NULL;
}

static void spool_enqueue(struct spool *sp, struct spool_op *op)
{
	pthread_mutex_lock(&sp->mu);
	*sp->tail = op;
	sp->tail = &op->next;
	pthread_cond_signal(&sp->cv);
	pthread_mutex_unlock(&sp->mu);
}

static struct spool_op *spool_op_new(enum spool_op_type type, struct spool_msg *m)
{
	struct spool_op *op = calloc(1, sizeof *op);
	if (!op)
		abort();
	op->type = type;
	op->m = m;
	if (m)
		m->ops_pending++;
	return op;
}

/* ---- open and close ---- */

struct spool *spool_open(const char *dir, void (*notify)(void *), void *notify_ctx)
{
	if (!util_mkdir_p(dir, 0700)) {
		log_error("spool: cannot create %s: %s", dir, strerror(errno));
		return NULL;
	}
	sqlite3 *db = spool_connect(dir);
	if (!db)
		return NULL;
	char *msg = NULL;
	if (sqlite3_exec(db, spool_schema, NULL, NULL, &msg) != SQLITE_OK ||
	    sqlite3_exec(db, spool_orphans, NULL, NULL, &msg) != SQLITE_OK) {
		log_error("spool: cannot set up %s/queue.db: %s", dir, msg ? msg : "?");
		sqlite3_free(msg);
		sqlite3_close(db);
		return NULL;
	}
	struct spool *sp = calloc(1, sizeof *sp);
	if (!sp)
		abort();
	sp->db = db;
	sp->tail = &sp->head;
	sp->done_tail = &sp->done_head;
	sp->notify = notify;
	sp->notify_ctx = notify_ctx;
	pthread_mutex_init(&sp->mu, NULL);
	pthread_cond_init(&sp->cv, NULL);
	pthread_cond_init(&sp->sync_cv, NULL);
	if (pthread_create(&sp->thread, NULL, spool_writer, sp) != 0)
		log_fatal("spool: cannot start the writer thread");
	return sp;
}

void spool_set_commit_hook(struct spool *sp, void (*hook)(void *), void *ctx)
{
	sp->commit_hook = hook;
	sp->hook_ctx = ctx;
}

void spool_close(struct spool *sp)
{
	if (!sp)
		return;
	pthread_mutex_lock(&sp->mu);
	sp->stop = true;
	pthread_cond_signal(&sp->cv);
	pthread_mutex_unlock(&sp->mu);
	pthread_join(sp->thread, NULL);
	spool_run_completions(sp);
	sqlite3_close(sp->db);
	pthread_mutex_destroy(&sp->mu);
	pthread_cond_destroy(&sp->cv);
	pthread_cond_destroy(&sp->sync_cv);
	free(sp);
}

/* ---- messages (the caller's thread) ---- */

static void spool_msg_free(struct spool_msg *m)
{
	buf_free(&m->buf);
	free(m);
}

static void spool_op_free(struct spool_op *op)
{
	buf_free(&op->data);
	if (op->type == OP_COMMIT && op->env) {
		spool_env_free(op->env);
		free(op->env);
	}
	free(op);
}

static void spool_send_chunk(struct spool_msg *m)
{
	struct spool_op *op = spool_op_new(OP_CHUNK, m);
	op->data = m->buf;  /* hand the buffer over */
	buf_init(&m->buf);
	op->seq = m->seq++;
	spool_enqueue(m->sp, op);
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
	spool_op_free(op);
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
	struct spool_msg *m = calloc(1, sizeof *m);
	if (!m)
		abort();
	m->sp = sp;
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
	return m->err || m->buf.len < 2 * SPOOL_CHUNK;
}

int spool_msg_error(const struct spool_msg *m)
{
	return m->err;
}

static struct spool_env *spool_env_copy(const struct spool_env *e)
{
	struct spool_env *c = calloc(1, sizeof *c);
	if (!c)
		abort();
	*c = *e;
	c->sender = util_xstrdup(e->sender);
	c->envid = util_xstrdup(e->envid);
	c->client = util_xstrdup(e->client);
	c->helo = util_xstrdup(e->helo);
	c->rcpt = calloc(e->nrcpt ? e->nrcpt : 1, sizeof *c->rcpt);
	if (!c->rcpt)
		abort();
	for (size_t i = 0; i < e->nrcpt; i++) {
		c->rcpt[i] = e->rcpt[i];
		c->rcpt[i].orig = util_xstrdup(e->rcpt[i].orig);
		c->rcpt[i].addr = util_xstrdup(e->rcpt[i].addr);
		c->rcpt[i].orcpt = util_xstrdup(e->rcpt[i].orcpt);
		c->rcpt[i].last_reply = util_xstrdup(e->rcpt[i].last_reply);
		c->rcpt[i].remote_mta = util_xstrdup(e->rcpt[i].remote_mta);
	}
	return c;
}

void spool_msg_commit(struct spool_msg *m, const struct spool_env *env,
                      spool_done_fn done, void *ctx)
{
	struct spool_op *op = spool_op_new(OP_COMMIT, m);
	op->data = m->buf;
	buf_init(&m->buf);
	op->seq = m->seq++;
	op->env = spool_env_copy(env);
	op->done = done;
	op->ctx = ctx;
	m->finished = true;
	spool_enqueue(m->sp, op);
}

void spool_msg_abort(struct spool_msg *m)
{
	m->finished = m->aborted = true;
	if (m->seq == 0 && m->ops_pending == 0) {
		spool_msg_free(m);
		return;
	}
	spool_enqueue(m->sp, spool_op_new(OP_ABORT, m));
}

/* Queue a synchronous op and wait until the writer has committed it. */
static int spool_sync(struct spool *sp, struct spool_op *op)
{
	spool_enqueue(sp, op);
	pthread_mutex_lock(&sp->mu);
	while (!op->sync_done)
		pthread_cond_wait(&sp->sync_cv, &sp->mu);
	pthread_mutex_unlock(&sp->mu);
	int err = op->err;
	free(op);
	return err;
}

void spool_update_many_async(struct spool *sp, const struct spool_env *const *envs, size_t n,
                             void (*done)(void *ctx, int err), void *ctx)
{
	struct spool_op *op = spool_op_new(OP_UPDATE, NULL);
	op->envs = envs;
	op->n = n;
	op->on_writer = done;
	op->ctx = ctx;
	spool_enqueue(sp, op);
}

int spool_inject(struct spool *sp, const struct spool_env *env, const void *body, size_t len)
{
	struct spool_op *op = spool_op_new(OP_INJECT, NULL);
	op->env = (struct spool_env *)env;
	op->body = body;
	op->len = len;
	return spool_sync(sp, op);
}

void spool_env_free(struct spool_env *e)
{
	free(e->sender);
	free(e->envid);
	free(e->client);
	free(e->helo);
	for (size_t i = 0; i < e->nrcpt; i++) {
		free(e->rcpt[i].orig);
		free(e->rcpt[i].addr);
		free(e->rcpt[i].orcpt);
		free(e->rcpt[i].last_reply);
		free(e->rcpt[i].remote_mta);
	}
	free(e->rcpt);
	memset(e, 0, sizeof *e);
}
