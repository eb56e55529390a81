/* spool/rows: the spool's database as the writer sees it. The schema and
 * its migrations, the orphans removed at start, and the statements that
 * add, change and delete rows of msg (the envelope), rcpt (one per
 * recipient, with its delivery state) and chunk (bodies that fit in one
 * piece), prepared once and kept. SQLite in WAL mode with
 * synchronous=FULL: a COMMIT returns once the WAL is on disk
 * (https://sqlite.org/pragma.html#pragma_synchronous). */
#include "spool/spool_priv.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/log.h"
#include "lib/util.h"

static const char rows_schema[] =
	"PRAGMA journal_mode=WAL;"
	"PRAGMA synchronous=FULL;"
	"CREATE TABLE IF NOT EXISTS msg(qid TEXT PRIMARY KEY, sender TEXT NOT NULL,"
	" envid TEXT NOT NULL, ret INT, body INT, size INT, arrival INT,"
	" client TEXT, helo TEXT, bodyfile INT NOT NULL DEFAULT 0,"
	" dotless INT NOT NULL DEFAULT 0, prefix TEXT,"
	" smtputf8 INT NOT NULL DEFAULT 0, requiretls INT NOT NULL DEFAULT 0,"
	" tlsoptional INT NOT NULL DEFAULT 0);"
	"CREATE TABLE IF NOT EXISTS rcpt(qid TEXT NOT NULL, idx INT NOT NULL,"
	" orig TEXT NOT NULL, addr TEXT NOT NULL, transport INT, notify INT,"
	" orcpt TEXT NOT NULL, status INT NOT NULL, attempts INT NOT NULL,"
	" next_try INT NOT NULL, last_reply TEXT NOT NULL, remote_mta TEXT NOT NULL,"
	" dsn_flags INT NOT NULL, held INT NOT NULL DEFAULT 0, PRIMARY KEY(qid, idx));"
	"CREATE TABLE IF NOT EXISTS attempt(qid TEXT NOT NULL, idx INT NOT NULL, at INT NOT NULL,"
	" reply TEXT NOT NULL, mta TEXT NOT NULL);"
	"CREATE INDEX IF NOT EXISTS attempt_qid ON attempt(qid);"
	"CREATE TABLE IF NOT EXISTS chunk(id INTEGER PRIMARY KEY, qid TEXT NOT NULL,"
	" seq INT NOT NULL, data BLOB NOT NULL);"
	"CREATE UNIQUE INDEX IF NOT EXISTS chunk_qid ON chunk(qid, seq);"
	/* MTA-STS policies by domain (RFC 8461 5.1, deliver/sts.c) */
	"CREATE TABLE IF NOT EXISTS mtasts(domain TEXT PRIMARY KEY, id TEXT NOT NULL,"
	" policy TEXT NOT NULL, fetched_at INT NOT NULL, expires INT NOT NULL);"
	CAPTURE_SCHEMA;

/* Chunks and recipients whose message row never committed (RFC 5321 6.1:
 * only a 250 makes us responsible; those messages were never acknowledged).
 * The orphans are found through each table's qid index (a covering scan),
 * not the table: a chunk row holds a body piece and fills a page, so a
 * scan of chunk read the whole spool before the first 220 (15 s with
 * 500,000 queued). */
static const char rows_orphans[] =
	"DELETE FROM chunk WHERE id IN (SELECT id FROM chunk INDEXED BY chunk_qid"
	" WHERE qid NOT IN (SELECT qid FROM msg));"
	"DELETE FROM attempt WHERE rowid IN (SELECT rowid FROM attempt INDEXED BY attempt_qid"
	" WHERE qid NOT IN (SELECT qid FROM msg));"
	"DELETE FROM rcpt WHERE rowid IN (SELECT rowid FROM rcpt"
	" WHERE qid NOT IN (SELECT qid FROM msg));";

int rows_errno(sqlite3 *db)
{
	switch (sqlite3_errcode(db) & 0xff) {
	case SQLITE_FULL: return ENOSPC;
	case SQLITE_OK: case SQLITE_DONE: case SQLITE_ROW: return 0;
	default: return EIO;
	}
}

static sqlite3 *rows_connect(const char *dir)
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
#define ROWS_STMTS 48
static _Thread_local struct { sqlite3 *db; const char *sql; sqlite3_stmt *st; } rows_stmts[ROWS_STMTS];

static sqlite3_stmt *rows_stmt(sqlite3 *db, const char *sql)
{
	for (size_t i = 0; i < ROWS_STMTS; i++) {
		if (rows_stmts[i].sql == sql && rows_stmts[i].db == db)
			return rows_stmts[i].st;
		if (!rows_stmts[i].sql) {
			sqlite3_stmt *st = NULL;
			if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK)
				return NULL;
			rows_stmts[i].db = db;
			rows_stmts[i].sql = sql;
			rows_stmts[i].st = st;
			return st;
		}
	}
	sqlite3_stmt *st = NULL;  /* cache full (a bug): prepare, finalized on reset */
	return sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK ? st : NULL;
}

/* Done with a statement from rows_stmt(): reset it for its next use. */
void rows_stmt_release(sqlite3_stmt *st)
{
	for (size_t i = 0; i < ROWS_STMTS; i++)
		if (rows_stmts[i].st == st) {
			sqlite3_reset(st);
			sqlite3_clear_bindings(st);
			return;
		}
	sqlite3_finalize(st);
}

/* Finalize the cached statements of db (before closing it). */
void rows_stmts_free(sqlite3 *db)
{
	for (size_t i = 0; i < ROWS_STMTS; i++)
		if (rows_stmts[i].db == db) {
			sqlite3_finalize(rows_stmts[i].st);
			rows_stmts[i].db = NULL;
			rows_stmts[i].sql = NULL;
			rows_stmts[i].st = NULL;
		}
}

int rows_exec_stmt(sqlite3 *db, const char *sql, const char *qid, sqlite3_stmt **out)
{
	*out = rows_stmt(db, sql);
	if (!*out)
		return rows_errno(db) ? rows_errno(db) : EIO;
	if (qid)
		sqlite3_bind_text(*out, 1, qid, -1, SQLITE_STATIC);
	return 0;
}

int rows_step_done(sqlite3 *db, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	int err = (rc == SQLITE_DONE || rc == SQLITE_ROW) ? 0 : rows_errno(db);
	rows_stmt_release(st);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : (err ? err : EIO);
}

int rows_put_chunk(sqlite3 *db, const char *qid, unsigned seq, const struct buf *b)
{
	sqlite3_stmt *st;
	int err = rows_exec_stmt(db, "INSERT INTO chunk(qid, seq, data) VALUES(?,?,?)", qid, &st);
	if (err)
		return err;
	sqlite3_bind_int(st, 2, (int)seq);
	sqlite3_bind_blob64(st, 3, b->len ? b->data : "", b->len, SQLITE_STATIC);
	return rows_step_done(db, st);
}

static int rows_put_rcpt(sqlite3 *db, const char *qid, const struct spool_rcpt *r)
{
	sqlite3_stmt *st;
	int err = rows_exec_stmt(db, "INSERT INTO rcpt(qid, idx, orig, addr, transport,"
	                          " notify, orcpt, status, attempts, next_try, last_reply,"
	                          " remote_mta, dsn_flags, held) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
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
	sqlite3_bind_int(st, 14, r->held);
	return rows_step_done(db, st);
}

int rows_put_msg(sqlite3 *db, const struct spool_env *e)
{
	sqlite3_stmt *st;
	int err = rows_exec_stmt(db, "INSERT INTO msg(qid, sender, envid, ret, body, size,"
	                          " arrival, client, helo, bodyfile, dotless, prefix, smtputf8,"
	                          " requiretls, tlsoptional) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
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
	if (e->prefix)
		sqlite3_bind_text(st, 12, e->prefix, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 12);
	sqlite3_bind_int(st, 13, e->smtputf8);
	sqlite3_bind_int(st, 14, e->requiretls);
	sqlite3_bind_int(st, 15, e->tls_optional);
	err = rows_step_done(db, st);
	for (size_t i = 0; !err && i < e->nrcpt; i++)
		err = rows_put_rcpt(db, e->qid, &e->rcpt[i]);
	return err ? err : capture_put(db, e);
}

/* Delete a message's rows; its body file (if any) goes after the commit.
 * capture: it may have the test mode's capture rows (only a message with a
 * captured recipient has any): delivered mail skips that statement. */
static int rows_delete_msg(sqlite3 *db, struct buf *gone, const char *qid, bool file,
                           bool capture)
{
	static const char *const sql[] = { "DELETE FROM chunk WHERE qid=?",
	                                   "DELETE FROM attempt WHERE qid=?",
	                                   "DELETE FROM rcpt WHERE qid=?",
	                                   "DELETE FROM capture WHERE qid=?",
	                                   "DELETE FROM msg WHERE qid=?" };
	int err = 0;
	for (size_t i = file ? 1 : 0; !err && i < 5; i++) {
		if (i == 3 && !capture)
			continue;
		sqlite3_stmt *st;
		err = rows_exec_stmt(db, sql[i], qid, &st);
		if (!err)
			err = rows_step_done(db, st);
	}
	if (!err && file)
		buf_append(gone, qid, strlen(qid) + 1);
	return err;
}

/* A recipient's attempt, into its history (ternctl show). */
static int rows_put_attempt(sqlite3 *db, const char *qid, const struct spool_rcpt *r)
{
	sqlite3_stmt *st;
	int err = rows_exec_stmt(db, "INSERT INTO attempt(qid, idx, at, reply, mta)"
	                         " VALUES(?,?,?,?,?)", qid, &st);
	if (err)
		return err;
	sqlite3_bind_int(st, 2, (int)r->idx);
	sqlite3_bind_int64(st, 3, r->tried_at);
	sqlite3_bind_text(st, 4, r->last_reply ? r->last_reply : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, r->remote_mta ? r->remote_mta : "", -1, SQLITE_STATIC);
	return rows_step_done(db, st);
}

static int rows_set_rcpt(sqlite3 *db, const char *qid, const struct spool_rcpt *r)
{
	sqlite3_stmt *st;
	int err = rows_exec_stmt(db, "UPDATE rcpt SET status=?2, attempts=?3, next_try=?4,"
	                          " last_reply=?5, remote_mta=?7, dsn_flags=?8, held=?9"
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
	sqlite3_bind_int(st, 9, r->held);
	return rows_step_done(db, st);
}

/* e holds every recipient of its message (as spool_reader_env loads it), so
 * it alone tells whether the message is done: then its rows go at once,
 * without updating them first or counting what is left, and the name of
 * its body file (if any) is added to gone, to be unlinked after the commit. */
int rows_update(sqlite3 *db, struct buf *gone, const struct spool_env *e)
{
	bool pending = false;
	for (size_t i = 0; i < e->nrcpt; i++)
		pending |= e->rcpt[i].status == SPOOL_PENDING;
	if (!pending || e->deleted)
		return rows_delete_msg(db, gone, e->qid, e->body_file, !capture_deliverable_only(e));
	int err = 0;
	for (size_t i = 0; !err && i < e->nrcpt; i++) {
		err = rows_set_rcpt(db, e->qid, &e->rcpt[i]);
		if (!err && e->rcpt[i].tried_at)
			err = rows_put_attempt(db, e->qid, &e->rcpt[i]);
	}
	return err;
}

/* A message made here: its body in SPOOL_CHUNK pieces, then the envelope. */
int rows_inject(sqlite3 *db, const struct spool_env *env, const char *body, size_t len)
{
	int err = 0;
	unsigned seq = 0;
	for (size_t off = 0; !err && (off < len || seq == 0); off += SPOOL_CHUNK) {
		size_t n = len - off < SPOOL_CHUNK ? len - off : SPOOL_CHUNK;
		struct buf b = { (char *)body + off, n, n };
		err = rows_put_chunk(db, env->qid, seq++, &b);
	}
	return err ? err : rows_put_msg(db, env);
}

int rows_sql(sqlite3 *db, const char *sql)
{
	return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 :
	       (rows_errno(db) ? rows_errno(db) : EIO);
}

int rows_sts_put(sqlite3 *db, const char *domain, const char *id, const struct buf *policy,
                 int64_t fetched, int64_t expires)
{
	sqlite3_stmt *st;
	int err = rows_exec_stmt(db, "INSERT OR REPLACE INTO mtasts(domain, id, policy, fetched_at,"
	                         " expires) VALUES(?,?,?,?,?)", domain, &st);
	if (err)
		return err;
	sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, policy->len ? policy->data : "", (int)policy->len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, fetched);
	sqlite3_bind_int64(st, 5, expires);
	return rows_step_done(db, st);
}

/* ---- an operator's changes ---- */

/* One statement per (what, target) pair; ?1 the qid or the domain, ?2 now. */
static const char *rows_admin_sql(enum spool_admin what, bool by_qid, bool by_domain)
{
	static const char *const sql[3][3] = {
		[SPOOL_HOLD] = {
			NULL,
			"UPDATE rcpt SET held=1 WHERE status=0 AND held=0 AND qid=?1",
			"UPDATE rcpt SET held=1 WHERE status=0 AND held=0 AND rcpt_domain(addr)=lower(?1)" },
		[SPOOL_RELEASE] = {
			NULL,
			"UPDATE rcpt SET held=0, next_try=?2 WHERE status=0 AND held IN (1,2) AND qid=?1",
			"UPDATE rcpt SET held=0, next_try=?2"
			" WHERE status=0 AND held=1 AND rcpt_domain(addr)=lower(?1)" },
		[SPOOL_FLUSH] = {
			"UPDATE rcpt SET next_try=?2 WHERE status=0 AND held=0 AND next_try>?2",
			"UPDATE rcpt SET next_try=?2 WHERE status=0 AND held=0 AND next_try>?2 AND qid=?1",
			"UPDATE rcpt SET next_try=?2 WHERE status=0 AND held=0 AND next_try>?2"
			" AND rcpt_domain(addr)=lower(?1)" },
	};
	return sql[what][by_qid ? 1 : by_domain ? 2 : 0];
}

int rows_delete_qid(sqlite3 *db, struct buf *gone, const char *qid, long *count)
{
	sqlite3_stmt *st;
	int err = rows_exec_stmt(db, "SELECT bodyfile FROM msg WHERE qid=?", qid, &st);
	if (err)
		return err;
	int rc = sqlite3_step(st);
	bool file = rc == SQLITE_ROW && sqlite3_column_int(st, 0) != 0;
	rows_stmt_release(st);
	if (rc != SQLITE_ROW)
		return rc == SQLITE_DONE ? 0 : EIO;   /* none such: nothing to do */
	*count = 1;
	return rows_delete_msg(db, gone, qid, file, true);
}

int rows_journal_apply(sqlite3 *db, const char *qid, unsigned idx, int64_t now, bool *gone_file)
{
	sqlite3_stmt *st;
	int err = rows_exec_stmt(db, "UPDATE rcpt SET status=1, held=0, attempts=attempts+1,"
	                         " last_reply='2.0.0 delivered before a restart (the delivery journal)'"
	                         " WHERE qid=?1 AND idx=?2 AND status=0", qid, &st);
	if (err)
		return -err;
	sqlite3_bind_int(st, 2, (int)idx);
	if ((err = rows_step_done(db, st)) != 0)
		return -err;
	if (sqlite3_changes(db) == 0)
		return 0;   /* recorded already, or gone */
	if ((err = rows_exec_stmt(db, "INSERT INTO attempt(qid, idx, at, reply, mta) VALUES(?1,?2,?3,"
	                          "'2.0.0 delivered before a restart (the delivery journal)','')",
	                          qid, &st)) != 0)
		return -err;
	sqlite3_bind_int(st, 2, (int)idx);
	sqlite3_bind_int64(st, 3, now);
	if ((err = rows_step_done(db, st)) != 0)
		return -err;
	if ((err = rows_exec_stmt(db, "SELECT COUNT(*) FROM rcpt WHERE qid=? AND status=0", qid,
	                          &st)) != 0)
		return -err;
	int rc = sqlite3_step(st);
	long pending = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 1;
	rows_stmt_release(st);
	if (pending > 0)
		return 1;
	struct buf gone = BUF_INIT;   /* nothing of it is pending: the message goes */
	long count = 0;
	err = rows_delete_qid(db, &gone, qid, &count);
	*gone_file = gone.len > 0;
	buf_free(&gone);
	return err ? -err : 1;
}

int rows_admin(sqlite3 *db, struct buf *gone, enum spool_admin what, const char *qid,
               const char *domain, int64_t now, long *count)
{
	*count = 0;
	if (what == SPOOL_DELETE)
		return qid ? rows_delete_qid(db, gone, qid, count) : EINVAL;
	const char *sql = rows_admin_sql(what, qid != NULL, domain != NULL);
	if (!sql)
		return EINVAL;
	sqlite3_stmt *st;
	int err = rows_exec_stmt(db, sql, qid ? qid : domain, &st);
	if (err)
		return err;
	sqlite3_bind_int64(st, 2, now);
	err = rows_step_done(db, st);
	if (!err)
		*count = sqlite3_changes(db);
	return err;
}

/* RFC 1985 5.3: "@domain" is the domain and every one under it; no
 * domain: every one (a drain). ?4: not only held rows. A quarantined row
 * (held=2) goes only by its queue id; a captured one (held=3) never. */
int rows_release(sqlite3 *db, const char *qid, const char *domain, bool subdomains, bool all,
                 int64_t now, struct buf *out)
{
	sqlite3_stmt *st;
	int err = rows_exec_stmt(db, qid ? "UPDATE rcpt SET held=0, next_try=?2"
	                                   " WHERE status=0 AND (held IN (1,2) OR (?4 AND held=0)) AND qid=?1"
	                                   " RETURNING qid, idx"
	                                 : "UPDATE rcpt SET held=0, next_try=?2"
	                                   " WHERE status=0 AND (held=1 OR (?4 AND held=0)) AND (?1 IS NULL"
	                                   " OR rcpt_domain(addr)=lower(?1)"
	                                   " OR (?3 AND substr(rcpt_domain(addr), -length(?1)-1)"
	                                   " = '.' || lower(?1))) RETURNING qid, idx",
	                         qid ? qid : domain, &st);
	if (err)
		return err;
	sqlite3_bind_int64(st, 2, now);
	sqlite3_bind_int(st, 4, all);
	if (!qid)
		sqlite3_bind_int(st, 3, subdomains);
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct spool_released r = { .idx = (unsigned)sqlite3_column_int(st, 1) };
		const unsigned char *q = sqlite3_column_text(st, 0);
		snprintf(r.qid, sizeof r.qid, "%s", q ? (const char *)q : "");
		buf_append(out, (const char *)&r, sizeof r);
	}
	err = rc == SQLITE_DONE ? 0 : rows_errno(db) ? rows_errno(db) : EIO;
	rows_stmt_release(st);
	return err;
}

/* ---- open ---- */

/* Columns added since the first spools were made, each with the default
 * that keeps old rows as they were: msg.bodyfile and msg.dotless (before
 * body files: every message inline, every one stuffed when it goes out),
 * rcpt.held (before holds: nothing held), msg.prefix (before DKIM signing:
 * nothing goes before the body, NULL), msg.smtputf8 (before RFC 6531:
 * no message was received with SMTPUTF8), msg.requiretls and
 * msg.tlsoptional (before RFC 8689: none asked for either). Adding a column with a constant
 * default rewrites no row (https://sqlite.org/lang_altertable.html). */
static int rows_migrate(sqlite3 *db, char **msg)
{
	static const char *const col[][3] = {
		{ "msg", "bodyfile", "INT NOT NULL DEFAULT 0" },
		{ "msg", "dotless", "INT NOT NULL DEFAULT 0" },
		{ "rcpt", "held", "INT NOT NULL DEFAULT 0" },
		{ "msg", "prefix", "TEXT" },
		{ "msg", "smtputf8", "INT NOT NULL DEFAULT 0" },
		{ "msg", "requiretls", "INT NOT NULL DEFAULT 0" },
		{ "msg", "tlsoptional", "INT NOT NULL DEFAULT 0" },
	};
	int rc = SQLITE_OK;
	for (size_t i = 0; rc == SQLITE_OK && i < sizeof col / sizeof col[0]; i++) {
		char sql[128];
		snprintf(sql, sizeof sql, "SELECT %s FROM %s LIMIT 0", col[i][1], col[i][0]);
		sqlite3_stmt *st = NULL;
		if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
			sqlite3_finalize(st);
			continue;
		}
		snprintf(sql, sizeof sql, "ALTER TABLE %s ADD COLUMN %s %s;", col[i][0], col[i][1],
		         col[i][2]);
		rc = sqlite3_exec(db, sql, NULL, NULL, msg);
	}
	/* The scheduler's index: due recipients not held, in next_try order
	 * (it replaces rcpt_due, which did not know holds). */
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, "DROP INDEX IF EXISTS rcpt_due;"
		                      "CREATE INDEX IF NOT EXISTS rcpt_sched ON rcpt(status, held, next_try);",
		                  NULL, NULL, msg);
	return rc;
}

/* rcpt_domain(addr): the domain of an address in lower case (domains are
 * case-insensitive, RFC 5321 2.4), "" when it has none. */
static void rows_domain_fn(sqlite3_context *cx, int argc, sqlite3_value **argv)
{
	(void)argc;
	const char *a = (const char *)sqlite3_value_text(argv[0]);
	const char *at = a ? strrchr(a, '@') : NULL;
	char *d = sqlite3_mprintf("%s", at ? at + 1 : "");
	if (!d) {
		sqlite3_result_error_nomem(cx);
		return;
	}
	util_lower(d);
	sqlite3_result_text(cx, d, -1, sqlite3_free);
}

/* The SQL functions of every spool connection (the writer's, the readers'). */
int rows_functions(sqlite3 *db)
{
	return sqlite3_create_function(db, "rcpt_domain", 1,
	                               SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS,
	                               NULL, rows_domain_fn, NULL, NULL);
}

/* Body files without a committed message (a crash mid-DATA, or after a
 * deletion committed but before the unlink): never acknowledged, or done. */
static void rows_orphan_files(sqlite3 *db, int body_dir)
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

/* Open (creating if needed) spool_dir/queue.db, bring its schema up to
 * date and remove orphans, rows and body files; NULL, and why logged, on
 * failure. */
sqlite3 *rows_open(const char *dir, int body_dir)
{
	sqlite3 *db = rows_connect(dir);
	if (!db)
		return NULL;
	char *msg = NULL;
	if (rows_functions(db) != SQLITE_OK ||
	    sqlite3_exec(db, rows_schema, NULL, NULL, &msg) != SQLITE_OK ||
	    rows_migrate(db, &msg) != SQLITE_OK ||
	    sqlite3_exec(db, rows_orphans, NULL, NULL, &msg) != SQLITE_OK) {
		log_error("spool: cannot set up %s/queue.db: %s", dir, msg ? msg : "?");
		sqlite3_free(msg);
		sqlite3_close(db);
		return NULL;
	}
	rows_orphan_files(db, body_dir);
	return db;
}
