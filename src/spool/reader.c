/* spool/reader: read-only access to the spool, each reader on its own
 * SQLite connection: the delivery thread's queries (due recipients, an
 * envelope, a body) and the operators' (a listing of the queue, counts per
 * domain). WAL lets them read while the writer commits; they see only
 * committed messages. */
#include "spool/reader.h"
#include "spool/spool_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/log.h"
#include "lib/util.h"

#define SPOOL_READER_STMTS 16

struct spool_reader {
	sqlite3 *db;
	int body_dir;                   /* spool_dir/body */
	/* Statements prepared once and reused (keyed by the SQL literal's
	 * address): the delivery thread runs the same few per message. */
	struct { const char *sql; sqlite3_stmt *st; } stmts[SPOOL_READER_STMTS];
};

static sqlite3 *spool_reader_connect(const char *dir)
{
	struct buf path = BUF_INIT;
	buf_printf(&path, "%s/queue.db", dir);
	sqlite3 *db = NULL;
	int rc = sqlite3_open_v2(buf_cstr(&path), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
	                         NULL);
	buf_free(&path);
	if (rc == SQLITE_OK)
		rc = rows_functions(db);
	if (rc != SQLITE_OK) {
		log_error("spool: reader cannot open %s/queue.db: %s", dir, sqlite3_errstr(rc));
		sqlite3_close(db);
		return NULL;
	}
	sqlite3_busy_timeout(db, 10000);
	return db;
}

struct spool_reader *spool_reader_open(const char *dir)
{
	sqlite3 *db = spool_reader_connect(dir);
	if (!db)
		return NULL;
	struct buf path = BUF_INIT;
	buf_printf(&path, "%s/body", dir);
	int body_dir = open(buf_cstr(&path), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (body_dir < 0) {
		log_error("spool: reader cannot open %s: %s", buf_cstr(&path), strerror(errno));
		buf_free(&path);
		sqlite3_close(db);
		return NULL;
	}
	buf_free(&path);
	struct spool_reader *r = util_xcalloc(1, sizeof *r);
	r->db = db;
	r->body_dir = body_dir;
	return r;
}

void spool_reader_close(struct spool_reader *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < SPOOL_READER_STMTS; i++)
		sqlite3_finalize(r->stmts[i].st);
	sqlite3_close(r->db);
	close(r->body_dir);
	free(r);
}

/* The cached statement for sql; a fresh one (finalized by
 * spool_reader_done) if the cached one is still in use or the cache is full. */
sqlite3 *spool_reader_sqlite(struct spool_reader *r)
{
	return r->db;
}

static sqlite3_stmt *spool_reader_prepare(struct spool_reader *r, const char *sql)
{
	size_t i = 0;
	while (i < SPOOL_READER_STMTS && r->stmts[i].sql && r->stmts[i].sql != sql)
		i++;
	if (i < SPOOL_READER_STMTS && r->stmts[i].sql && !sqlite3_stmt_busy(r->stmts[i].st))
		return r->stmts[i].st;
	sqlite3_stmt *st = NULL;
	bool keep = i < SPOOL_READER_STMTS && !r->stmts[i].sql;
	if (sqlite3_prepare_v3(r->db, sql, -1, keep ? SQLITE_PREPARE_PERSISTENT : 0, &st,
	                       NULL) != SQLITE_OK) {
		log_error("spool: %s: %s", sql, sqlite3_errmsg(r->db));
		sqlite3_finalize(st);
		return NULL;
	}
	if (keep) {
		r->stmts[i].sql = sql;
		r->stmts[i].st = st;
	}
	return st;
}

/* Done with a statement of spool_reader_prepare (NULL is fine). */
static void spool_reader_done(struct spool_reader *r, sqlite3_stmt *st)
{
	if (!st)
		return;
	for (size_t i = 0; i < SPOOL_READER_STMTS; i++)
		if (r->stmts[i].st == st) {
			sqlite3_reset(st);
			sqlite3_clear_bindings(st);
			return;
		}
	sqlite3_finalize(st);  /* a one-off statement (cache busy or full) */
}

/* Due rows of one statement (bound by the caller) after the cursor, up to
 * *left more rows; the cursor follows the rows read. */
static size_t spool_reader_due_rows(sqlite3_stmt *st, struct spool_cursor *cur,
                                    char (*qids)[UTIL_QID_LEN + 1], size_t n, size_t *left)
{
	while (*left > 0 && sqlite3_step(st) == SQLITE_ROW) {
		(*left)--;
		const char *q = (const char *)sqlite3_column_text(st, 0);
		cur->next_try = sqlite3_column_int64(st, 1);
		cur->rowid = sqlite3_column_int64(st, 2);
		if (!q || (n && !strcmp(qids[n - 1], q)))
			continue;   /* a message's recipients are adjacent rows */
		snprintf(qids[n++], UTIL_QID_LEN + 1, "%s", q);
	}
	return n;
}

/* Walks rcpt_sched (status, held, next_try, rowid) from the cursor and stops after
 * max rows: the cost is the batch, not the backlog, and a scan that pages
 * on reaches the due retries behind a thousand messages still in flight
 * (whose never-tried rows, next_try 0, sort first). Two statements, as
 * SQLite seeks the index by rowid only under an equality on next_try: the
 * rest of the cursor's next_try, then the later ones. */
size_t spool_reader_due(struct spool_reader *r, int64_t now, struct spool_cursor *cur,
                        char (*qids)[UTIL_QID_LEN + 1], size_t max, bool *more)
{
	static const char *const sql[] = {
		"SELECT qid, next_try, rowid FROM rcpt"
		" WHERE status=0 AND held=0 AND next_try=?1 AND rowid>?2 ORDER BY rowid LIMIT ?4",
		"SELECT qid, next_try, rowid FROM rcpt"
		" WHERE status=0 AND held=0 AND next_try>?1 AND next_try<=?3"
		" ORDER BY next_try, rowid LIMIT ?4",
	};
	size_t n = 0, left = max;
	for (int i = 0; i < 2 && left > 0; i++) {
		if (i == 0 && cur->next_try > now)
			continue;
		sqlite3_stmt *st = spool_reader_prepare(r, sql[i]);
		if (!st)
			break;
		sqlite3_bind_int64(st, 1, cur->next_try);
		sqlite3_bind_int64(st, 2, cur->rowid);
		sqlite3_bind_int64(st, 3, now);
		sqlite3_bind_int64(st, 4, (sqlite3_int64)left);
		n = spool_reader_due_rows(st, cur, qids, n, &left);
		spool_reader_done(r, st);
	}
	*more = left == 0;
	return n;
}

size_t spool_reader_held_aged(struct spool_reader *r, int64_t expire_at, int64_t warn_at,
                              char (*qids)[UTIL_QID_LEN + 1], size_t max)
{
	sqlite3_stmt *st = spool_reader_prepare(r,
		"SELECT DISTINCT rcpt.qid FROM rcpt JOIN msg ON msg.qid=rcpt.qid"
		" WHERE rcpt.status=0 AND rcpt.held=1 AND (msg.arrival<=?1"
		" OR (msg.arrival<=?2 AND (rcpt.dsn_flags & 1)=0)) LIMIT ?3");
	size_t n = 0;
	if (!st)
		return 0;
	sqlite3_bind_int64(st, 1, expire_at);
	sqlite3_bind_int64(st, 2, warn_at);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)max);
	while (n < max && sqlite3_step(st) == SQLITE_ROW) {
		const unsigned char *q = sqlite3_column_text(st, 0);
		if (q)
			snprintf(qids[n++], UTIL_QID_LEN + 1, "%s", (const char *)q);
	}
	spool_reader_done(r, st);
	return n;
}

int64_t spool_reader_next_due(struct spool_reader *r, int64_t now)
{
	sqlite3_stmt *st = spool_reader_prepare(r,
		"SELECT MIN(next_try) FROM rcpt WHERE status=0 AND held=0 AND next_try>?");
	int64_t t = -1;
	if (st)
		sqlite3_bind_int64(st, 1, now);
	if (st && sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
		t = sqlite3_column_int64(st, 0);
	spool_reader_done(r, st);
	return t;
}

long spool_reader_count(struct spool_reader *r)
{
	uint64_t bytes;
	return spool_reader_totals(r, &bytes);
}

long spool_reader_totals(struct spool_reader *r, uint64_t *bytes)
{
	sqlite3_stmt *st = spool_reader_prepare(r, "SELECT COUNT(*), TOTAL(size) FROM msg");
	long n = -1;
	*bytes = 0;
	if (st && sqlite3_step(st) == SQLITE_ROW) {
		n = (long)sqlite3_column_int64(st, 0);
		*bytes = (uint64_t)sqlite3_column_double(st, 1);
	}
	spool_reader_done(r, st);
	return n;
}

char *spool_reader_col(sqlite3_stmt *st, int i)
{
	return util_xstrdup((const char *)sqlite3_column_text(st, i));
}

/* v (n elements of size) with room for one more. The capacity is
 * implicit: 8 at first, doubled each time n reaches it (a power of two). */
static void *spool_reader_grow(void *v, size_t n, size_t size)
{
	if (n == 0 || (n >= 8 && (n & (n - 1)) == 0))
		return util_xrealloc(v, n ? 2 * n : 8, size);
	return v;
}

/* Step st (prepared and bound) to its end, handing each row to fn, then
 * release it. 0, or EIO when a step failed. */
static int spool_reader_each(struct spool_reader *r, sqlite3_stmt *st,
                             void (*fn)(sqlite3_stmt *st, void *ctx), void *ctx)
{
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		fn(st, ctx);
	spool_reader_done(r, st);
	return rc == SQLITE_DONE ? 0 : EIO;
}

/* Several statements that must see one state of the spool share a read
 * transaction (in WAL mode, one snapshot: https://sqlite.org/wal.html). */
static int spool_reader_begin(struct spool_reader *r)
{
	return sqlite3_exec(r->db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK ? 0 : EIO;
}

static void spool_reader_end(struct spool_reader *r)
{
	sqlite3_exec(r->db, "COMMIT", NULL, NULL, NULL);
}

static int spool_reader_msg(struct spool_reader *r, const char *qid, struct spool_env *e)
{
	sqlite3_stmt *st = spool_reader_prepare(r, "SELECT sender, envid, ret, body, size,"
	                                        " arrival, client, helo, bodyfile, dotless, prefix,"
	                                        " smtputf8, requiretls, tlsoptional FROM msg"
	                                        " WHERE qid=?");
	if (!st)
		return EIO;
	sqlite3_bind_text(st, 1, qid, -1, SQLITE_STATIC);
	int err = ENOENT;
	if (sqlite3_step(st) == SQLITE_ROW) {
		snprintf(e->qid, sizeof e->qid, "%s", qid);
		e->sender = spool_reader_col(st, 0);
		e->envid = spool_reader_col(st, 1);
		e->ret = sqlite3_column_int(st, 2);
		e->body = sqlite3_column_int(st, 3);
		e->size = (uint64_t)sqlite3_column_int64(st, 4);
		e->arrival = sqlite3_column_int64(st, 5);
		e->client = spool_reader_col(st, 6);
		e->helo = spool_reader_col(st, 7);
		e->body_file = sqlite3_column_int(st, 8) != 0;
		e->dotless = sqlite3_column_int(st, 9) != 0;
		e->prefix = sqlite3_column_type(st, 10) == SQLITE_NULL ? NULL : spool_reader_col(st, 10);
		e->smtputf8 = sqlite3_column_int(st, 11) != 0;
		e->requiretls = sqlite3_column_int(st, 12) != 0;
		e->tls_optional = sqlite3_column_int(st, 13) != 0;
		err = 0;
	}
	spool_reader_done(r, st);
	return err;
}

static void spool_reader_rcpt_row(sqlite3_stmt *st, void *ctx)
{
	struct spool_env *e = ctx;
	e->rcpt = spool_reader_grow(e->rcpt, e->nrcpt, sizeof *e->rcpt);
	struct spool_rcpt *rc = &e->rcpt[e->nrcpt++];
	*rc = (struct spool_rcpt){ 0 };
	rc->idx = (unsigned)sqlite3_column_int(st, 0);
	rc->orig = spool_reader_col(st, 1);
	rc->addr = spool_reader_col(st, 2);
	rc->transport = sqlite3_column_int(st, 3);
	rc->notify = (unsigned)sqlite3_column_int(st, 4);
	rc->orcpt = spool_reader_col(st, 5);
	rc->status = sqlite3_column_int(st, 6);
	rc->attempts = (unsigned)sqlite3_column_int(st, 7);
	rc->next_try = sqlite3_column_int64(st, 8);
	rc->last_reply = spool_reader_col(st, 9);
	rc->remote_mta = spool_reader_col(st, 10);
	rc->dsn_flags = (unsigned)sqlite3_column_int(st, 11);
	rc->held = (unsigned char)sqlite3_column_int(st, 12);
}

static int spool_reader_rcpts(struct spool_reader *r, const char *qid, struct spool_env *e)
{
	sqlite3_stmt *st = spool_reader_prepare(r, "SELECT idx, orig, addr, transport, notify,"
		" orcpt, status, attempts, next_try, last_reply, remote_mta, dsn_flags, held"
		" FROM rcpt WHERE qid=? ORDER BY idx");
	if (!st)
		return EIO;
	sqlite3_bind_text(st, 1, qid, -1, SQLITE_STATIC);
	/* All or nothing: an envelope missing recipients would be recorded as
	 * finished when those it has are, and the message removed. */
	return spool_reader_each(r, st, spool_reader_rcpt_row, e);
}

int spool_reader_env(struct spool_reader *r, const char *qid, struct spool_env *e)
{
	memset(e, 0, sizeof *e);
	if (spool_reader_begin(r))
		return EIO;
	int err = spool_reader_msg(r, qid, e);
	if (!err)
		err = spool_reader_rcpts(r, qid, e);
	spool_reader_end(r);
	if (err)
		spool_env_free(e);
	return err;
}

/* Piece seq of a body file: SPOOL_CHUNK bytes at seq * SPOOL_CHUNK. */
static int spool_reader_file(struct spool_reader *r, const char *qid, unsigned seq, struct buf *out)
{
	int fd = openat(r->body_dir, qid, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		log_error("spool: cannot open body/%s: %s", qid, strerror(errno));
		return EIO;
	}
	buf_reset(out);
	buf_reserve(out, SPOOL_CHUNK);
	off_t off = (off_t)seq * SPOOL_CHUNK;
	ssize_t n = 0;
	while (out->len < SPOOL_CHUNK &&
	       ((n = pread(fd, out->data + out->len, SPOOL_CHUNK - out->len,
	                   off + (off_t)out->len)) > 0 || (n < 0 && errno == EINTR)))
		out->len += n > 0 ? (size_t)n : 0;
	int err = n < 0 ? EIO : out->len == 0 ? ENOENT : 0;
	if (n < 0)
		log_error("spool: cannot read body/%s: %s", qid, strerror(errno));
	close(fd);
	return err;
}

static int spool_reader_row(struct spool_reader *r, const char *qid, unsigned seq, struct buf *out)
{
	sqlite3_stmt *st = spool_reader_prepare(r, "SELECT data FROM chunk WHERE qid=? AND seq=?");
	if (!st)
		return EIO;
	sqlite3_bind_text(st, 1, qid, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, (int)seq);
	int rc = sqlite3_step(st), err = 0;
	buf_reset(out);
	if (rc == SQLITE_ROW)
		buf_append(out, sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0));
	else
		err = rc == SQLITE_DONE ? ENOENT : EIO;
	spool_reader_done(r, st);
	return err;
}

int spool_reader_body_fd(struct spool_reader *r, const struct spool_env *env, uint64_t *size)
{
	if (!env->body_file) {
		errno = ENOENT;
		return -1;
	}
	int fd = openat(r->body_dir, env->qid, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd >= 0 && fstat(fd, &st) != 0) {
		close(fd);
		fd = -1;
	}
	if (fd < 0) {
		log_error("spool: cannot open body/%s: %s", env->qid, strerror(errno));
		return -1;
	}
	*size = (uint64_t)st.st_size;
	return fd;
}

/* A fresh message's body, held in memory (spool.h): one piece. */
static int spool_reader_mem(const struct spool_env *env, unsigned seq, struct buf *out)
{
	buf_reset(out);
	if (seq > 0)
		return ENOENT;
	buf_append(out, env->mem, env->mem_len);
	return 0;
}

int spool_reader_chunk(struct spool_reader *r, const struct spool_env *env, unsigned seq,
                       struct buf *out)
{
	if (env->mem)
		return spool_reader_mem(env, seq, out);
	return env->body_file ? spool_reader_file(r, env->qid, seq, out)
	                      : spool_reader_row(r, env->qid, seq, out);
}

int spool_reader_body(struct spool_reader *r, const struct spool_env *env,
                      bool (*fn)(void *ctx, const void *p, size_t n), void *ctx)
{
	struct buf b = BUF_INIT;
	int err = 0;
	for (unsigned seq = 0; !err; seq++) {
		err = spool_reader_chunk(r, env, seq, &b);
		if (!err && b.len && !fn(ctx, b.data, b.len))
			err = ECANCELED;
	}
	buf_free(&b);
	return err == ENOENT ? 0 : err;
}

/* ---- what operators see ---- */

/* A recipient's enum spool_state, from its status and held flag. */
#define SPOOL_READER_STATE "(CASE WHEN status=0 AND held<>0 THEN 3 ELSE status END)"
_Static_assert(SPOOL_STATE_HELD == 3 && SPOOL_STATE_PENDING == 0 && SPOOL_STATE_DELIVERED == 1 &&
               SPOOL_STATE_FAILED == 2, "SPOOL_READER_STATE maps status and held to these");
#define SPOOL_STATES_ALL (SPOOL_STATE_BIT(SPOOL_STATE_PENDING) | \
                          SPOOL_STATE_BIT(SPOOL_STATE_DELIVERED) | \
                          SPOOL_STATE_BIT(SPOOL_STATE_FAILED) | SPOOL_STATE_BIT(SPOOL_STATE_HELD))

/* A message's enum spool_queue, from its recipients' rows: held when one
 * is held, deferred when one pending was tried, else active. */
#define SPOOL_READER_QUEUE "(CASE WHEN MAX(status=0 AND held<>0) THEN 2" \
                           " WHEN MAX(status=0 AND attempts>0) THEN 1 ELSE 0 END)"
_Static_assert(SPOOL_QUEUE_ACTIVE == 0 && SPOOL_QUEUE_DEFERRED == 1 && SPOOL_QUEUE_HOLD == 2,
               "SPOOL_READER_QUEUE names these");

/* Messages after the cursor in queue id order (the primary key's index:
 * a page starts with a seek), each with whether the filter lets it through,
 * and its recipients joined in (a row each; one row of NULLs when it has
 * none): one statement for a whole page, not one per message. Not ordered
 * by r.idx too: that sorted each message's rows, 30% of a listing's CPU,
 * where the (qid, idx) index gives them in that order already
 * (spool_reader_summary_rcpt keeps the order given either way). Its queue
 * comes from the recipients read for its summary, as SPOOL_READER_QUEUE
 * has it. ?1 cursor, ?2 sender or NULL, ?3 domain or NULL, ?4 states, ?5
 * whether any recipient filter applies. The recipient filter is one EXISTS
 * on the rcpt rows of that message (qid, idx), evaluated only when ?5 says
 * one applies. */
static const char spool_reader_list_sql[] =
	"SELECT m.qid, m.sender, m.size, m.arrival,"
	" (?2 IS NULL OR m.sender = ?2 COLLATE NOCASE) AND"
	" (NOT ?5 OR EXISTS (SELECT 1 FROM rcpt x WHERE x.qid = m.qid"
	"  AND (?3 IS NULL OR rcpt_domain(x.addr) = lower(?3))"
	"  AND (?4 >> " SPOOL_READER_STATE ") & 1)),"   /* x's: the innermost names first */
	" r.addr, r.orig, " SPOOL_READER_STATE ", r.attempts, r.next_try, r.last_reply, r.transport,"
	" r.idx FROM msg m LEFT JOIN rcpt r ON r.qid = m.qid WHERE m.qid > ?1 ORDER BY m.qid";

static const char spool_reader_queues_sql[] =
	"SELECT q, COUNT(*) FROM (SELECT " SPOOL_READER_QUEUE " AS q FROM rcpt GROUP BY qid)"
	" GROUP BY q";

static const char spool_reader_domains_sql[] =
	"SELECT rcpt_domain(addr) AS d, COUNT(DISTINCT qid), COUNT(*) FROM rcpt"
	" WHERE (?1 >> " SPOOL_READER_STATE ") & 1"
	" GROUP BY d ORDER BY 2 DESC, d LIMIT ?2";

/* Held rows through rcpt_sched (status, held, next_try): a range of it. */
static const char spool_reader_held_sql[] =
	"SELECT rcpt_domain(addr) AS d, COUNT(DISTINCT qid), COUNT(*) FROM rcpt"
	" WHERE status=0 AND held=1 GROUP BY d ORDER BY d LIMIT ?1";
_Static_assert(SPOOL_PENDING == 0, "spool_reader_held_sql says status=0");

static sqlite3_int64 spool_reader_limit(size_t n)
{
	return n > INT64_MAX ? INT64_MAX : (sqlite3_int64)n;
}

/* A recipient from columns first.. of st (the last its idx), in its place
 * in the order given. */
static void spool_reader_summary_rcpt(sqlite3_stmt *st, int first, struct spool_summary *s)
{
	s->rcpt = spool_reader_grow(s->rcpt, s->nrcpt, sizeof *s->rcpt);
	unsigned idx = (unsigned)sqlite3_column_int(st, first + 7);
	size_t at = s->nrcpt++;
	while (at > 0 && s->rcpt[at - 1].idx > idx)
		at--;
	memmove(&s->rcpt[at + 1], &s->rcpt[at], (s->nrcpt - 1 - at) * sizeof *s->rcpt);
	struct spool_summary_rcpt *x = &s->rcpt[at];
	x->idx = idx;
	x->addr = spool_reader_col(st, first);
	x->orig = spool_reader_col(st, first + 1);
	x->state = sqlite3_column_int(st, first + 2);
	x->attempts = (unsigned)sqlite3_column_int(st, first + 3);
	x->next_try = sqlite3_column_int64(st, first + 4);
	x->last_reply = spool_reader_col(st, first + 5);
	x->transport = sqlite3_column_int(st, first + 6);
}

/* A message's enum spool_queue from its recipients, as SPOOL_READER_QUEUE. */
static int spool_reader_queue(const struct spool_summary *s)
{
	int q = SPOOL_QUEUE_ACTIVE;
	for (size_t i = 0; i < s->nrcpt; i++) {
		if (s->rcpt[i].state == SPOOL_STATE_HELD)
			return SPOOL_QUEUE_HOLD;
		if (s->rcpt[i].state == SPOOL_STATE_PENDING && s->rcpt[i].attempts > 0)
			q = SPOOL_QUEUE_DEFERRED;
	}
	return q;
}

/* The message of the listing's current row, its recipients to come. */
static struct spool_summary *spool_reader_summary(sqlite3_stmt *st, struct spool_list *out)
{
	out->msg = spool_reader_grow(out->msg, out->n, sizeof *out->msg);
	struct spool_summary *s = &out->msg[out->n++];
	memset(s, 0, sizeof *s);
	strcpy(s->qid, (const char *)sqlite3_column_text(st, 0));   /* checked by the caller */
	s->sender = spool_reader_col(st, 1);
	s->size = (uint64_t)sqlite3_column_int64(st, 2);
	s->arrival = sqlite3_column_int64(st, 3);
	return s;
}

static void spool_reader_list_bind(sqlite3_stmt *st, const struct spool_filter *f,
                                   const struct spool_list_cursor *cur)
{
	sqlite3_bind_text(st, 1, cur->qid, -1, SQLITE_TRANSIENT);  /* cur moves as rows come */
	if (f->sender)
		sqlite3_bind_text(st, 2, f->sender, -1, SQLITE_STATIC);
	if (f->domain)
		sqlite3_bind_text(st, 3, f->domain, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 4, (int)(f->states ? f->states : SPOOL_STATES_ALL));
	sqlite3_bind_int(st, 5, f->domain || f->states);
}

/* Step through up to look messages (a row per recipient), keeping those let
 * through until there are max, each with all its recipients; the cursor
 * follows every message read whole. */
static int spool_reader_list_rows(sqlite3_stmt *st, size_t max, size_t look,
                                  struct spool_list_cursor *cur, struct spool_list *out)
{
	size_t seen = 0;
	struct spool_summary *s = NULL;   /* the message of the rows, if let through */
	int rc;
	out->more = false;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *qid = (const char *)sqlite3_column_text(st, 0);
		if (!qid || strlen(qid) > UTIL_QID_LEN)
			return EIO;
		if (strcmp(qid, cur->qid)) {   /* the next message */
			if (s)
				s->queue = spool_reader_queue(s);
			if (out->n >= max || seen >= look) {
				out->more = true;   /* this one is the next page's */
				return 0;
			}
			seen++;
			strcpy(cur->qid, qid);   /* no longer than it: above */
			s = sqlite3_column_int(st, 4) ? spool_reader_summary(st, out) : NULL;
		}
		if (s && sqlite3_column_type(st, 5) != SQLITE_NULL)
			spool_reader_summary_rcpt(st, 5, s);
	}
	if (s)
		s->queue = spool_reader_queue(s);
	return rc == SQLITE_DONE ? 0 : EIO;
}

int spool_reader_list(struct spool_reader *r, const struct spool_filter *f,
                      struct spool_list_cursor *cur, size_t max, struct spool_list *out)
{
	static const struct spool_filter all;
	memset(out, 0, sizeof *out);
	out->more = true;
	if (max == 0)
		return 0;
	if (spool_reader_begin(r))
		return EIO;
	size_t look = max > SPOOL_LIST_LOOK ? max : SPOOL_LIST_LOOK;
	sqlite3_stmt *st = spool_reader_prepare(r, spool_reader_list_sql);
	int err = EIO;
	if (st) {
		spool_reader_list_bind(st, f ? f : &all, cur);
		err = spool_reader_list_rows(st, max, look, cur, out);
	}
	spool_reader_done(r, st);
	spool_reader_end(r);
	if (err)
		spool_list_free(out);
	return err;
}

void spool_list_free(struct spool_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		struct spool_summary *s = &l->msg[i];
		for (size_t j = 0; j < s->nrcpt; j++) {
			free(s->rcpt[j].addr);
			free(s->rcpt[j].orig);
			free(s->rcpt[j].last_reply);
		}
		free(s->rcpt);
		free(s->sender);
	}
	free(l->msg);
	memset(l, 0, sizeof *l);
}

static void spool_reader_queue_row(sqlite3_stmt *st, void *ctx)
{
	long *out = ctx;
	int q = sqlite3_column_int(st, 0);
	if (q >= 0 && q < SPOOL_QUEUE__COUNT)
		out[q] = (long)sqlite3_column_int64(st, 1);
}

int spool_reader_queues(struct spool_reader *r, long out[SPOOL_QUEUE__COUNT])
{
	memset(out, 0, SPOOL_QUEUE__COUNT * sizeof out[0]);
	sqlite3_stmt *st = spool_reader_prepare(r, spool_reader_queues_sql);
	return st ? spool_reader_each(r, st, spool_reader_queue_row, out) : EIO;
}

static void spool_reader_domain_row(sqlite3_stmt *st, void *ctx)
{
	struct spool_domain_counts *out = ctx;
	out->v = spool_reader_grow(out->v, out->n, sizeof *out->v);
	struct spool_domain_count *c = &out->v[out->n++];
	c->domain = spool_reader_col(st, 0);
	c->msgs = (size_t)sqlite3_column_int64(st, 1);
	c->rcpts = (size_t)sqlite3_column_int64(st, 2);
}

/* Rows of (domain, messages, recipients) from a prepared, bound st. */
static int spool_reader_counts(struct spool_reader *r, sqlite3_stmt *st,
                               struct spool_domain_counts *out)
{
	int err = spool_reader_each(r, st, spool_reader_domain_row, out);
	if (err)
		spool_domain_counts_free(out);
	return err;
}

int spool_reader_domains(struct spool_reader *r, unsigned states, size_t max,
                         struct spool_domain_counts *out)
{
	memset(out, 0, sizeof *out);
	sqlite3_stmt *st = spool_reader_prepare(r, spool_reader_domains_sql);
	if (!st)
		return EIO;
	sqlite3_bind_int(st, 1, (int)(states ? states : SPOOL_STATES_ALL));
	sqlite3_bind_int64(st, 2, spool_reader_limit(max));
	return spool_reader_counts(r, st, out);
}

int spool_reader_held_domains(struct spool_reader *r, size_t max,
                              struct spool_domain_counts *out)
{
	memset(out, 0, sizeof *out);
	sqlite3_stmt *st = spool_reader_prepare(r, spool_reader_held_sql);
	if (!st)
		return EIO;
	sqlite3_bind_int64(st, 1, spool_reader_limit(max));
	return spool_reader_counts(r, st, out);
}

void spool_domain_counts_free(struct spool_domain_counts *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->v[i].domain);
	free(c->v);
	memset(c, 0, sizeof *c);
}

struct spool_reader_attempt_cb {
	void (*fn)(void *ctx, unsigned idx, int64_t at, const char *reply, const char *mta);
	void *ctx;
};

static void spool_reader_attempt_row(sqlite3_stmt *st, void *ctx)
{
	struct spool_reader_attempt_cb *cb = ctx;
	cb->fn(cb->ctx, (unsigned)sqlite3_column_int(st, 0), sqlite3_column_int64(st, 1),
	       (const char *)sqlite3_column_text(st, 2), (const char *)sqlite3_column_text(st, 3));
}

int spool_reader_attempts(struct spool_reader *r, const char *qid,
                          void (*fn)(void *ctx, unsigned idx, int64_t at, const char *reply,
                                     const char *mta),
                          void *ctx)
{
	sqlite3_stmt *st = spool_reader_prepare(r, "SELECT idx, at, reply, mta FROM attempt"
	                                        " WHERE qid=? ORDER BY rowid");
	if (!st)
		return EIO;
	sqlite3_bind_text(st, 1, qid, -1, SQLITE_STATIC);
	struct spool_reader_attempt_cb cb = { fn, ctx };
	return spool_reader_each(r, st, spool_reader_attempt_row, &cb);
}

int spool_reader_sts(struct spool_reader *r, const char *domain, struct spool_sts *out)
{
	memset(out, 0, sizeof *out);
	sqlite3_stmt *st = spool_reader_prepare(r, "SELECT id, policy, fetched_at, expires"
	                                        " FROM mtasts WHERE domain=?");
	if (!st)
		return EIO;
	sqlite3_bind_text(st, 1, domain, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		out->id = util_xstrdup((const char *)sqlite3_column_text(st, 0));
		out->policy = util_xstrdup((const char *)sqlite3_column_text(st, 1));
		out->fetched = sqlite3_column_int64(st, 2);
		out->expires = sqlite3_column_int64(st, 3);
	}
	spool_reader_done(r, st);
	return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? ENOENT : EIO;
}

void spool_sts_free(struct spool_sts *s)
{
	free(s->id);
	free(s->policy);
	memset(s, 0, sizeof *s);
}
