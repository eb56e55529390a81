/* spool: SQLite queue with a group-committing writer thread (see spool.h). */
#include "spool/spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/log.h"

enum spool_op_type { OP_CHUNK, OP_COMMIT, OP_ABORT, OP_UPDATE, OP_INJECT };

struct spool_op {
	struct spool_op *next;
	enum spool_op_type type;
	struct spool_msg *m;          /* CHUNK, COMMIT, ABORT */
	struct buf data;              /* CHUNK, COMMIT: bytes to write */
	unsigned seq;
	uint64_t off;                 /* CHUNK, COMMIT of a body file: where data goes */
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
	struct buf gone;              /* body files to unlink once this op is committed */
};

struct spool_msg {
	struct spool *sp;
	char qid[UTIL_QID_LEN + 1];
	struct buf buf;
	unsigned seq;
	uint64_t sent;                /* bytes handed to the writer so far */
	bool file;                    /* the body goes to body/<qid>, not to chunk rows */
	int fd;                       /* that file: the writer's until the message is freed */
	int werr;                     /* writer only: an op of this message failed alone */
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
	size_t eager;                 /* ops queued that are not lazy */
	struct timespec lazy_since;   /* when the oldest queued lazy op came */
	struct spool_op *done_head, **done_tail;
	int dir;                      /* spool_dir */
	int body_dir;                 /* spool_dir/body */
	bool dir_dirty;               /* a body file was created since the last fsync of body_dir */
	bool dir_needed;              /* the transaction commits a body file */
	pthread_t reaper;             /* unlinks body files of removed messages */
	pthread_mutex_t reap_mu;
	pthread_cond_t reap_cv;
	struct buf reap;              /* names to unlink, NUL-separated */
	bool reap_stop;
	bool stop;
	void (*notify)(void *);
	void *notify_ctx;
	void (*commit_hook)(void *);
	void *hook_ctx;
	pthread_mutex_t scan_mu;      /* the writer's, from BEGIN to the handoff */
	struct spool_fresh *fresh_head, **fresh_tail;  /* under mu */
	size_t nfresh;
	bool rescan;                  /* a committed message was not kept */
	pthread_mutex_t reserve_mu;   /* the reserve (spool_set_reserve and the writer) */
	uint64_t reserve;             /* bytes to keep in spool_dir/reserve, 0: none */
	bool reserve_made;            /* the file holds them */
	bool reserve_used;            /* released since it was last made */
};

/* Bytes of bodies held by fresh envelopes (spool_env.mem), process-wide. */
static atomic_size_t spool_mem_held;

static const char spool_schema[] =
	"PRAGMA journal_mode=WAL;"
	"PRAGMA synchronous=FULL;"
	"CREATE TABLE IF NOT EXISTS msg(qid TEXT PRIMARY KEY, sender TEXT NOT NULL,"
	" envid TEXT NOT NULL, ret INT, body INT, size INT, arrival INT,"
	" client TEXT, helo TEXT, bodyfile INT NOT NULL DEFAULT 0,"
	" dotless INT NOT NULL DEFAULT 0);"
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
	                          " arrival, client, helo, bodyfile, dotless)"
	                          " VALUES(?,?,?,?,?,?,?,?,?,?,?)",
	                          e->qid, &st);
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
	sqlite3_bind_int(st, 10, e->body_file);
	sqlite3_bind_int(st, 11, e->dotless);
	err = spool_step_done(db, st);
	for (size_t i = 0; !err && i < e->nrcpt; i++)
		err = spool_put_rcpt(db, e->qid, &e->rcpt[i]);
	return err;
}

/* Delete a message's rows; its body file (if any) goes after the commit. */
static int spool_delete_msg(sqlite3 *db, struct spool_op *op, const char *qid, bool file)
{
	static const char *const sql[] = { "DELETE FROM chunk WHERE qid=?",
	                                   "DELETE FROM rcpt WHERE qid=?",
	                                   "DELETE FROM msg WHERE qid=?" };
	int err = 0;
	for (size_t i = file ? 1 : 0; !err && i < 3; i++) {
		sqlite3_stmt *st;
		err = spool_exec_stmt(db, sql[i], qid, &st);
		if (!err)
			err = spool_step_done(db, st);
	}
	if (!err && file)
		buf_append(&op->gone, qid, strlen(qid) + 1);
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

/* e holds every recipient of its message (as spool_reader_env loads it), so
 * it alone tells whether the message is done: then its rows go at once,
 * without updating them first or counting what is left. */
static int spool_do_update(sqlite3 *db, struct spool_op *op, const struct spool_env *e)
{
	bool pending = false;
	for (size_t i = 0; i < e->nrcpt; i++)
		pending |= e->rcpt[i].status == SPOOL_PENDING;
	if (!pending)
		return spool_delete_msg(db, op, e->qid, e->body_file);
	int err = 0;
	for (size_t i = 0; !err && i < e->nrcpt; i++)
		err = spool_set_rcpt(db, e->qid, &e->rcpt[i]);
	return err;
}

/* ---- body files ----
 *
 * A message longer than one chunk keeps its body in body/<qid> instead of
 * chunk rows: one large write per chunk, where SQLite would write each 4 KiB
 * page to the WAL and copy it again at the checkpoint. Writes go to fixed
 * offsets, so an operation retried after a failed batch rewrites the same
 * bytes. Before the transaction that adds the envelope row commits, the
 * file is fdatasync'd and body/ itself fsync'd (once per transaction): a
 * committed row always has its whole body on disk. */

static int spool_file_err(int e)
{
	return e == ENOSPC || e == EDQUOT ? ENOSPC : EIO;
}

static int spool_file_put(struct spool *sp, struct spool_msg *m, uint64_t off, const struct buf *b)
{
	if (m->fd < 0) {
		m->fd = openat(sp->body_dir, m->qid, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (m->fd < 0) {
			log_error("spool: cannot create body/%s: %s", m->qid, strerror(errno));
			return spool_file_err(errno);
		}
		sp->dir_dirty = true;
	}
	for (size_t done = 0; done < b->len;) {
		ssize_t w = pwrite(m->fd, b->data + done, b->len - done, (off_t)(off + done));
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			int e = w < 0 ? errno : ENOSPC;
			log_error("spool: cannot write body/%s: %s", m->qid, strerror(e));
			return spool_file_err(e);
		}
		done += (size_t)w;
	}
	/* Start the write-back now: the fdatasync at the commit finds less to do. */
	if (b->len)
		sync_file_range(m->fd, (off_t)off, (off_t)b->len, SYNC_FILE_RANGE_WRITE);
	return 0;
}

static int spool_file_commit(struct spool *sp, struct spool_msg *m, uint64_t off, const struct buf *b)
{
	int err = spool_file_put(sp, m, off, b);
	if (!err && fdatasync(m->fd) != 0) {
		log_error("spool: cannot sync body/%s: %s", m->qid, strerror(errno));
		err = spool_file_err(errno);
	}
	if (!err)
		sp->dir_needed = true;
	return err;
}

/* The body file of a message that will never be committed (given up, or
 * its commit failed: a 452 or 451): no row refers to it, so it goes at
 * once rather than at the next start. */
static void spool_file_discard(struct spool *sp, struct spool_msg *m)
{
	if (m->file && unlinkat(sp->body_dir, m->qid, 0) != 0 && errno != ENOENT)
		log_warn("spool: cannot remove body/%s: %s", m->qid, strerror(errno));
}

/* Hand the body files of messages deleted by committed operations to the
 * reaper thread: unlinking a large file frees its blocks (and with a
 * "discard" mount, trims them), which took 1.4 ms per 1 MiB body here, time
 * the writer would otherwise not spend committing. A crash before the
 * unlink leaves an orphan for the next start. */
static void spool_file_unlink(struct spool *sp, struct spool_op *ops)
{
	pthread_mutex_lock(&sp->reap_mu);
	for (struct spool_op *op = ops; op; op = op->next) {
		if (!op->err && op->gone.len)
			buf_append(&sp->reap, op->gone.data, op->gone.len);
		buf_reset(&op->gone);
	}
	if (sp->reap.len)
		pthread_cond_signal(&sp->reap_cv);
	pthread_mutex_unlock(&sp->reap_mu);
}

static void *spool_reaper(void *arg)
{
	struct spool *sp = arg;
	struct buf names = BUF_INIT;
	pthread_mutex_lock(&sp->reap_mu);
	for (;;) {
		while (!sp->reap.len && !sp->reap_stop)
			pthread_cond_wait(&sp->reap_cv, &sp->reap_mu);
		if (!sp->reap.len)
			break;
		struct buf t = names;
		names = sp->reap;
		sp->reap = t;
		pthread_mutex_unlock(&sp->reap_mu);
		for (size_t i = 0; i < names.len; i += strlen(names.data + i) + 1)
			if (unlinkat(sp->body_dir, names.data + i, 0) != 0 && errno != ENOENT)
				log_warn("spool: cannot remove body/%s: %s", names.data + i, strerror(errno));
		buf_reset(&names);
		pthread_mutex_lock(&sp->reap_mu);
	}
	pthread_mutex_unlock(&sp->reap_mu);
	buf_free(&names);
	return NULL;
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

static int spool_do_commit(struct spool *sp, struct spool_op *op)
{
	struct spool_msg *m = op->m;
	if (m->werr)
		return m->werr;  /* part of the body is missing: never commit it */
	int err = 0;
	if (m->file)
		err = spool_file_commit(sp, m, op->off, &op->data);
	else if (op->data.len)
		err = spool_put_chunk(sp->db, m->qid, op->seq, &op->data);
	op->env->body_file = m->file;
	return err ? err : spool_put_msg(sp->db, op->env);
}

static int spool_do_op(struct spool *sp, struct spool_op *op)
{
	sqlite3 *db = sp->db;
	buf_reset(&op->gone);
	switch (op->type) {
	case OP_CHUNK:
		return op->m->file ? spool_file_put(sp, op->m, op->off, &op->data)
		                   : spool_put_chunk(db, op->m->qid, op->seq, &op->data);
	case OP_COMMIT:
		return spool_do_commit(sp, op);
	case OP_ABORT:   /* only a message with a body file has ops to give up */
		spool_file_discard(sp, op->m);
		return 0;
	case OP_UPDATE: {
		int err = 0;
		for (size_t i = 0; !err && i < op->n; i++)
			err = spool_do_update(db, op, op->envs[i]);
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

static void spool_rollback(struct spool *sp)
{
	sp->dir_needed = false;
	if (!sqlite3_get_autocommit(sp->db))
		sqlite3_exec(sp->db, "ROLLBACK", NULL, NULL, NULL);
}

/* Commit, after making the names of new body files durable if the
 * transaction adds a message that has one. */
static int spool_commit(struct spool *sp)
{
	if (sp->dir_needed && sp->dir_dirty) {
		if (fsync(sp->body_dir) != 0) {
			log_error("spool: cannot sync the body directory: %s", strerror(errno));
			return EIO;
		}
		sp->dir_dirty = false;
	}
	sp->dir_needed = false;
	return spool_sql(sp->db, "COMMIT");
}

/* ---- the reserve ----
 *
 * spool_dir/reserve holds disk space that only delivery results may use:
 * when a batch of results fails for want of space, the writer deletes the
 * file and tries the batch again, so that deliveries already made are
 * recorded (and not made again) while new mail is refused with 452. The
 * file is made again before a batch once the disk has twice its size free.
 * Its blocks are allocated (posix_fallocate), not a sparse file. */

static bool spool_reserve_room(struct spool *sp)
{
	struct statvfs v;
	return fstatvfs(sp->dir, &v) == 0 && (uint64_t)v.f_bavail * v.f_frsize >= 2 * sp->reserve;
}

/* Make the file (reserve_mu held): kept from an earlier run, or new when
 * there is room. */
static void spool_reserve_make(struct spool *sp)
{
	struct stat st;
	bool there = fstatat(sp->dir, "reserve", &st, 0) == 0 &&
	             (uint64_t)st.st_blocks * 512 >= sp->reserve;
	if (!there && !spool_reserve_room(sp))
		return;
	int fd = openat(sp->dir, "reserve", O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	int err = fd < 0 ? errno : posix_fallocate(fd, 0, (off_t)sp->reserve);
	if (!err && ftruncate(fd, (off_t)sp->reserve) != 0)
		err = errno;
	if (fd >= 0)
		close(fd);
	if (err) {
		unlinkat(sp->dir, "reserve", 0);
		return;
	}
	sp->reserve_made = true;
	if (sp->reserve_used)
		log_info("spool: the reserve for delivery results is back (%llu KiB)",
		         (unsigned long long)(sp->reserve >> 10));
	sp->reserve_used = false;
}

/* Before a batch: make the reserve if it is missing and there is room. */
static void spool_reserve_keep(struct spool *sp)
{
	pthread_mutex_lock(&sp->reserve_mu);
	if (sp->reserve && !sp->reserve_made && sp->dir >= 0)
		spool_reserve_make(sp);
	pthread_mutex_unlock(&sp->reserve_mu);
}

/* A batch of results failed for want of space: give it the reserve.
 * false when there is none to give. */
static bool spool_reserve_release(struct spool *sp)
{
	pthread_mutex_lock(&sp->reserve_mu);
	bool freed = sp->reserve_made && unlinkat(sp->dir, "reserve", 0) == 0;
	if (freed) {
		sp->reserve_made = false;
		sp->reserve_used = true;
		log_warn("spool: disk full: released the reserve (%llu KiB) for delivery results",
		         (unsigned long long)(sp->reserve >> 10));
	}
	pthread_mutex_unlock(&sp->reserve_mu);
	return freed;
}

void spool_set_reserve(struct spool *sp, uint64_t bytes)
{
	pthread_mutex_lock(&sp->reserve_mu);
	sp->reserve = bytes;
	sp->reserve_made = false;
	if (sp->dir >= 0 && !bytes)
		unlinkat(sp->dir, "reserve", 0);   /* one from an earlier run */
	else if (sp->dir >= 0)
		spool_reserve_make(sp);
	if (bytes && !sp->reserve_made)
		log_warn("spool: no room for the reserve (%llu KiB) yet",
		         (unsigned long long)(bytes >> 10));
	pthread_mutex_unlock(&sp->reserve_mu);
}

/* One operation in a transaction of its own. */
static int spool_op_alone(struct spool *sp, struct spool_op *op)
{
	int err = spool_sql(sp->db, "BEGIN IMMEDIATE");
	if (!err)
		err = spool_do_op(sp, op);
	if (!err)
		err = spool_commit(sp);
	if (err)
		spool_rollback(sp);
	return err;
}

/* One transaction for the whole batch; if anything fails, each operation is
 * retried in a transaction of its own so that one bad message (or a full
 * disk during one large chunk) fails alone. */
static void spool_batch(struct spool *sp, struct spool_op *ops)
{
	int err = spool_sql(sp->db, "BEGIN IMMEDIATE");
	for (struct spool_op *op = ops; op && !err; op = op->next)
		err = spool_do_op(sp, op);
	if (!err)
		err = spool_commit(sp);
	if (!err) {
		spool_file_unlink(sp, ops);
		return;
	}
	spool_rollback(sp);
	log_warn("spool: batch commit failed (%s); retrying one by one", strerror(err));
	for (struct spool_op *op = ops; op; op = op->next) {
		op->err = spool_op_alone(sp, op);
		if (op->err == ENOSPC && op->type == OP_UPDATE && spool_reserve_release(sp))
			op->err = spool_op_alone(sp, op);
		if (op->err && op->m && !op->m->werr)
			op->m->werr = op->err;
		if (op->err && op->type == OP_COMMIT)
			spool_file_discard(sp, op->m);   /* the message is refused */
	}
	spool_file_unlink(sp, ops);
}

static void spool_op_free(struct spool_op *op);

/* ---- handoff to the delivery side ---- */

/* A committed message's envelope (moved out of the operation, which needs
 * it no more) and, room permitting, its body: a message not in a body file
 * is whole in the last operation's data. */
static struct spool_fresh *spool_fresh_from(struct spool_op *op)
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

static void spool_fresh_free_list(struct spool_fresh *f)
{
	while (f) {
		struct spool_fresh *next = f->next;
		spool_fresh_free(f);
		f = next;
	}
}

/* Append n fresh messages (head to *tail) to the list, unless the
 * delivery side is that far behind: then it must look for itself. */
static void spool_keep_fresh(struct spool *sp, struct spool_fresh *head,
                             struct spool_fresh **tail, size_t n, bool rescan)
{
	pthread_mutex_lock(&sp->mu);
	if (sp->nfresh + n > SPOOL_FRESH_MAX) {
		sp->rescan = true;
		pthread_mutex_unlock(&sp->mu);
		spool_fresh_free_list(head);
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
static void spool_handoff(struct spool *sp, struct spool_op *ops)
{
	if (!sp->commit_hook)
		return;
	struct spool_fresh *head = NULL, **tail = &head;
	size_t n = 0;
	bool rescan = false;
	for (struct spool_op *op = ops; op; op = op->next) {
		if (op->err)
			continue;
		if (op->type == OP_COMMIT) {
			*tail = spool_fresh_from(op);
			tail = &(*tail)->next;
			n++;
		}
		rescan |= op->type == OP_INJECT;
	}
	if (!n && !rescan)
		return;
	spool_keep_fresh(sp, head, tail, n, rescan);
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

/* Hand finished operations back: synchronous ones wake their waiter, the
 * others go to the completion list for spool_run_completions(). */
static void spool_dispatch(struct spool *sp, struct spool_op *ops)
{
	bool async = false;
	struct spool_op *told = NULL;
	pthread_mutex_lock(&sp->mu);
	while (ops) {
		struct spool_op *op = ops;
		ops = op->next;
		op->next = NULL;
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
		spool_op_free(op);
	}
	if (async && sp->notify)
		sp->notify(sp->notify_ctx);
}

/* Lazy operations (recorded delivery results) do not need a commit of
 * their own: they wait up to SPOOL_LAZY_MS for one that a message needs, and
 * share its fsync. A crash in that window repeats a delivery, as any crash
 * between a delivery and its record does; it never loses a message. */
#define SPOOL_LAZY_MS 25

static bool spool_op_lazy(const struct spool_op *op)
{
	return op->type == OP_UPDATE && op->on_writer;
}

/* Wait (holding sp->mu) until there is a batch to run. */
static void spool_wait_batch(struct spool *sp)
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

static void *spool_writer(void *arg)
{
	struct spool *sp = arg;
	for (;;) {
		pthread_mutex_lock(&sp->mu);
		spool_wait_batch(sp);
		struct spool_op *ops = sp->head;
		sp->head = NULL;
		sp->tail = &sp->head;
		sp->eager = 0;
		pthread_mutex_unlock(&sp->mu);
		if (!ops)
			break;  /* stop requested and nothing left */
		spool_reserve_keep(sp);
		pthread_mutex_lock(&sp->scan_mu);
		spool_batch(sp, ops);
		spool_handoff(sp, ops);
		pthread_mutex_unlock(&sp->scan_mu);
		spool_dispatch(sp, ops);
	}
	spool_stmts_free(sp->db);
	return NULL;
}

static void spool_enqueue(struct spool *sp, struct spool_op *op)
{
	pthread_mutex_lock(&sp->mu);
	bool was_empty = !sp->head;
	*sp->tail = op;
	sp->tail = &op->next;
	if (!spool_op_lazy(op))
		sp->eager++;
	else if (was_empty)
		clock_gettime(CLOCK_MONOTONIC, &sp->lazy_since);
	if (was_empty || !spool_op_lazy(op))
		pthread_cond_signal(&sp->cv);
	pthread_mutex_unlock(&sp->mu);
}

static struct spool_op *spool_op_new(enum spool_op_type type, struct spool_msg *m)
{
	struct spool_op *op = util_xcalloc(1, sizeof *op);
	op->type = type;
	op->m = m;
	if (m)
		m->ops_pending++;
	return op;
}

/* ---- open and close ---- */

/* A spool made before body files gets the columns (every message inline,
 * every one stuffed when it goes out). */
static int spool_migrate(sqlite3 *db, char **msg)
{
	static const char *const col[] = { "bodyfile", "dotless" };
	int rc = SQLITE_OK;
	for (size_t i = 0; rc == SQLITE_OK && i < 2; i++) {
		char sql[128];
		snprintf(sql, sizeof sql, "SELECT %s FROM msg LIMIT 0", col[i]);
		sqlite3_stmt *st = NULL;
		if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
			sqlite3_finalize(st);
			continue;
		}
		snprintf(sql, sizeof sql, "ALTER TABLE msg ADD COLUMN %s INT NOT NULL DEFAULT 0;", col[i]);
		rc = sqlite3_exec(db, sql, NULL, NULL, msg);
	}
	return rc;
}

/* Body files without a committed message (a crash mid-DATA, or after a
 * deletion committed but before the unlink): never acknowledged, or done. */
static void spool_file_orphans(sqlite3 *db, int body_dir)
{
	int fd = dup(body_dir);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return;
	}
	sqlite3_stmt *st = NULL;
	sqlite3_prepare_v2(db, "SELECT 1 FROM msg WHERE qid=? AND bodyfile=1", -1, &st, NULL);
	for (struct dirent *de; st && (de = readdir(d));) {
		if (de->d_name[0] == '.')
			continue;
		sqlite3_bind_text(st, 1, de->d_name, -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_DONE) {
			log_info("spool: removing body/%s (no message of its own)", de->d_name);
			unlinkat(body_dir, de->d_name, 0);
		}
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	closedir(d);
}

/* spool_dir/body, created if needed; -1 (and why, printed) on failure. */
static int spool_body_dir(const char *dir)
{
	struct buf path = BUF_INIT;
	buf_printf(&path, "%s/body", dir);
	int fd = -1;
	if (!util_mkdir_p(buf_cstr(&path), 0700) ||
	    (fd = open(buf_cstr(&path), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		log_error("spool: cannot open %s: %s", buf_cstr(&path), strerror(errno));
	buf_free(&path);
	return fd;
}

static sqlite3 *spool_setup(const char *dir, int body_dir)
{
	sqlite3 *db = spool_connect(dir);
	if (!db)
		return NULL;
	char *msg = NULL;
	if (sqlite3_exec(db, spool_schema, NULL, NULL, &msg) != SQLITE_OK ||
	    spool_migrate(db, &msg) != SQLITE_OK ||
	    sqlite3_exec(db, spool_orphans, NULL, NULL, &msg) != SQLITE_OK) {
		log_error("spool: cannot set up %s/queue.db: %s", dir, msg ? msg : "?");
		sqlite3_free(msg);
		sqlite3_close(db);
		return NULL;
	}
	spool_file_orphans(db, body_dir);
	return db;
}

struct spool *spool_open(const char *dir, void (*notify)(void *), void *notify_ctx)
{
	if (!util_mkdir_p(dir, 0700)) {
		log_error("spool: cannot create %s: %s", dir, strerror(errno));
		return NULL;
	}
	int body_dir = spool_body_dir(dir);
	sqlite3 *db = body_dir >= 0 ? spool_setup(dir, body_dir) : NULL;
	if (!db) {
		if (body_dir >= 0)
			close(body_dir);
		return NULL;
	}
	struct spool *sp = util_xcalloc(1, sizeof *sp);
	sp->db = db;
	sp->body_dir = body_dir;
	sp->dir = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	pthread_mutex_init(&sp->reserve_mu, NULL);
	sp->tail = &sp->head;
	sp->done_tail = &sp->done_head;
	sp->fresh_tail = &sp->fresh_head;
	pthread_mutex_init(&sp->scan_mu, NULL);
	sp->notify = notify;
	sp->notify_ctx = notify_ctx;
	pthread_mutex_init(&sp->mu, NULL);
	pthread_condattr_t ca;   /* the lazy wait measures monotonic time */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&sp->cv, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&sp->sync_cv, NULL);
	pthread_mutex_init(&sp->reap_mu, NULL);
	pthread_cond_init(&sp->reap_cv, NULL);
	if (pthread_create(&sp->reaper, NULL, spool_reaper, sp) != 0 ||
	    pthread_create(&sp->thread, NULL, spool_writer, sp) != 0)
		log_fatal("spool: cannot start the writer threads");
	return sp;
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

void spool_close(struct spool *sp)
{
	if (!sp)
		return;
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
	buf_free(&sp->reap);
	pthread_mutex_destroy(&sp->reap_mu);
	pthread_cond_destroy(&sp->reap_cv);
	spool_run_completions(sp);
	bool rescan;
	spool_fresh_free_list(spool_take_fresh(sp, &rescan));
	pthread_mutex_destroy(&sp->scan_mu);
	sqlite3_close(sp->db);
	close(sp->body_dir);
	if (sp->dir >= 0)
		close(sp->dir);
	pthread_mutex_destroy(&sp->reserve_mu);
	pthread_mutex_destroy(&sp->mu);
	pthread_cond_destroy(&sp->cv);
	pthread_cond_destroy(&sp->sync_cv);
	free(sp);
}

/* ---- messages (the caller's thread) ---- */

static void spool_msg_free(struct spool_msg *m)
{
	if (m->fd >= 0)
		close(m->fd);
	buf_free(&m->buf);
	free(m);
}

static void spool_op_free(struct spool_op *op)
{
	buf_free(&op->data);
	buf_free(&op->gone);
	if (op->type == OP_COMMIT && op->env) {
		spool_env_free(op->env);
		free(op->env);
	}
	free(op);
}

/* Only a message that outgrows one chunk before its end sends chunks: from
 * the first one on, its body goes to a file (see "body files"). */
static void spool_send_chunk(struct spool_msg *m)
{
	struct spool_op *op = spool_op_new(OP_CHUNK, m);
	m->file = true;
	op->data = m->buf;  /* hand the buffer over */
	buf_init(&m->buf);
	op->seq = m->seq++;
	op->off = m->sent;
	m->sent += op->data.len;
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
	c->rcpt = util_xcalloc(e->nrcpt, sizeof *c->rcpt);
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
	op->off = m->sent;
	m->sent += op->data.len;
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
	spool_op_free(op);
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
	if (e->mem) {
		free(e->mem);
		atomic_fetch_sub(&spool_mem_held, e->mem_cap);
	}
	memset(e, 0, sizeof *e);
}
