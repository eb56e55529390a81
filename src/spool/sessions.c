/* sessions: transcripts and lint in spool_dir/sessions.db (see sessions.h).
 * One connection, the main loop's; statements prepared once; a write
 * transaction open from the first write to the timer's commit. */
#include "spool/sessions.h"

#include <event2/event.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/buf.h"
#include "lib/log.h"
#include "lib/util.h"

static const char sessions_schema[] =
	"PRAGMA journal_mode=WAL;"
	"PRAGMA synchronous=NORMAL;"
	"CREATE TABLE IF NOT EXISTS session(id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" start_ms INT NOT NULL, client TEXT NOT NULL, listener TEXT NOT NULL,"
	" helo TEXT NOT NULL DEFAULT '', tls TEXT NOT NULL DEFAULT '',"
	" user TEXT NOT NULL DEFAULT '', ended TEXT NOT NULL DEFAULT '',"
	" dropped INT NOT NULL DEFAULT 0);"
	"CREATE TABLE IF NOT EXISTS line(session INT NOT NULL, seq INT NOT NULL,"
	" t INT NOT NULL, dir INT NOT NULL, batch INT NOT NULL, text TEXT NOT NULL,"
	" PRIMARY KEY(session, seq)) WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS message(qid TEXT PRIMARY KEY, session INT NOT NULL,"
	" status TEXT NOT NULL, first INT NOT NULL, last INT NOT NULL, lint TEXT NOT NULL);"
	"CREATE INDEX IF NOT EXISTS message_session ON message(session);";

enum {
	Q_BEGIN, Q_COMMIT, Q_NEW, Q_LINE, Q_UPDATE, Q_MESSAGE, Q_PRUNE, Q_PRUNE_LINES,
	Q_PRUNE_MSGS, Q_LIST, Q_COUNT, Q_ONE, Q_LINES, Q_MSGS, Q_BY_QID, Q_FORGET,
	Q_CLEAR_S, Q_CLEAR_L, Q_CLEAR_M, Q__COUNT
};

#define SESSIONS_COLS "id, start_ms, client, listener, helo, tls, user, ended, dropped," \
	" (SELECT count(*) FROM message WHERE message.session = session.id)"

static const char *const sessions_sql[Q__COUNT] = {
	[Q_BEGIN] = "BEGIN",
	[Q_COMMIT] = "COMMIT",
	[Q_NEW] = "INSERT INTO session(start_ms, client, listener) VALUES (?, ?, ?)",
	[Q_LINE] = "INSERT OR REPLACE INTO line(session, seq, t, dir, batch, text)"
	           " VALUES (?, ?, ?, ?, ?, ?)",
	[Q_UPDATE] = "UPDATE session SET client = ?, helo = ?, tls = ?, user = ?, ended = ?,"
	             " dropped = ? WHERE id = ?",
	[Q_MESSAGE] = "INSERT OR REPLACE INTO message(qid, session, status, first, last, lint)"
	              " VALUES (?, ?, ?, ?, ?, ?)",
	[Q_PRUNE] = "DELETE FROM session WHERE id <= (SELECT id FROM session ORDER BY id DESC"
	            " LIMIT 1 OFFSET ?)",
	[Q_PRUNE_LINES] = "DELETE FROM line WHERE session < (SELECT min(id) FROM session)",
	[Q_PRUNE_MSGS] = "DELETE FROM message WHERE session < (SELECT min(id) FROM session)",
	[Q_LIST] = "SELECT " SESSIONS_COLS " FROM session ORDER BY id DESC LIMIT ? OFFSET ?",
	[Q_COUNT] = "SELECT count(*) FROM session",
	[Q_ONE] = "SELECT " SESSIONS_COLS " FROM session WHERE id = ?",
	[Q_LINES] = "SELECT t, dir, batch, text FROM line WHERE session = ? ORDER BY seq",
	[Q_MSGS] = "SELECT qid, status, first, last, lint FROM message WHERE session = ?"
	           " ORDER BY first",
	[Q_BY_QID] = "SELECT qid, status, first, last, lint, session FROM message WHERE qid = ?",
	[Q_FORGET] = "DELETE FROM message WHERE qid = ?",
	[Q_CLEAR_S] = "DELETE FROM session",
	[Q_CLEAR_L] = "DELETE FROM line",
	[Q_CLEAR_M] = "DELETE FROM message",
};

struct sessions {
	sqlite3 *db;
	sqlite3_stmt *q[Q__COUNT];
	struct event *timer;        /* commits the open transaction */
	bool in_tx;
	unsigned writes;            /* statements since BEGIN */
	unsigned keep;              /* the newest keep sessions stay (prune) */
	bool prune;                 /* sessions began since the last prune */
	unsigned errors;            /* logged: the first few */
};

static void sessions_error(struct sessions *st, const char *what)
{
	if (st->errors++ < 5)
		log_warn("sessions.db: %s: %s", what, sqlite3_errmsg(st->db));
}

/* Run a statement to its end, bound already; false on an error. */
static bool sessions_run(struct sessions *st, int k)
{
	sqlite3_stmt *q = st->q[k];
	int rc;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW)
		;
	sqlite3_reset(q);
	sqlite3_clear_bindings(q);
	if (rc != SQLITE_DONE) {
		sessions_error(st, sessions_sql[k]);
		return false;
	}
	return true;
}

static void sessions_prune(struct sessions *st)
{
	if (!st->prune || st->keep == 0)
		return;
	st->prune = false;
	sqlite3_bind_int64(st->q[Q_PRUNE], 1, (sqlite3_int64)st->keep);
	if (sessions_run(st, Q_PRUNE) && sqlite3_changes(st->db) > 0) {
		sessions_run(st, Q_PRUNE_LINES);
		sessions_run(st, Q_PRUNE_MSGS);
	}
}

void sessions_commit(struct sessions *st)
{
	if (!st || !st->in_tx)
		return;
	sessions_prune(st);
	if (!sessions_run(st, Q_COMMIT))
		sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
	st->in_tx = false;
	st->writes = 0;
	evtimer_del(st->timer);
}

static void sessions_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	sessions_commit(arg);
}

/* Before a write: the transaction is open, and its commit is due. */
static void sessions_write(struct sessions *st)
{
	if (st->writes++ >= SESSIONS_BATCH_MAX)
		sessions_commit(st);
	if (st->in_tx)
		return;
	if (!sessions_run(st, Q_BEGIN))
		return;
	st->in_tx = true;
	st->writes = 1;
	struct timeval tv = { 0, SESSIONS_COMMIT_MS * 1000 };
	evtimer_add(st->timer, &tv);
}

static bool sessions_prepare(struct sessions *st)
{
	for (int k = 0; k < Q__COUNT; k++) {
		if (sqlite3_prepare_v3(st->db, sessions_sql[k], -1, SQLITE_PREPARE_PERSISTENT,
		                       &st->q[k], NULL) != SQLITE_OK) {
			log_error("sessions.db: %s: %s", sessions_sql[k], sqlite3_errmsg(st->db));
			return false;
		}
	}
	return true;
}

struct sessions *sessions_open(const char *dir, struct event_base *base)
{
	struct sessions *st = util_xcalloc(1, sizeof *st);
	struct buf path = BUF_INIT;
	buf_printf(&path, "%s/sessions.db", dir);
	int rc = sqlite3_open_v2(buf_cstr(&path), &st->db,
	                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
	                         NULL);
	char *err = NULL;
	if (rc == SQLITE_OK)
		sqlite3_busy_timeout(st->db, 5000);
	if (rc != SQLITE_OK ||
	    sqlite3_exec(st->db, sessions_schema, NULL, NULL, &err) != SQLITE_OK ||
	    !sessions_prepare(st) || !(st->timer = evtimer_new(base, sessions_timer_cb, st))) {
		log_error("cannot open %s: %s", buf_cstr(&path),
		          err ? err : st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc));
		sqlite3_free(err);
		buf_free(&path);
		sessions_close(st);
		return NULL;
	}
	buf_free(&path);
	return st;
}

void sessions_close(struct sessions *st)
{
	if (!st)
		return;
	if (st->timer)
		sessions_commit(st);
	for (int k = 0; k < Q__COUNT; k++)
		sqlite3_finalize(st->q[k]);
	sqlite3_close(st->db);
	if (st->timer)
		event_free(st->timer);
	free(st);
}

/* ---- writing ---- */

static void sessions_text(sqlite3_stmt *q, int i, const char *s)
{
	sqlite3_bind_text(q, i, s ? s : "", -1, SQLITE_TRANSIENT);
}

int64_t sessions_begin(struct sessions *st, int64_t start_ms, const char *client,
                       const char *listener, unsigned keep)
{
	sessions_write(st);
	sqlite3_stmt *q = st->q[Q_NEW];
	sqlite3_bind_int64(q, 1, start_ms);
	sessions_text(q, 2, client);
	sessions_text(q, 3, listener);
	if (!sessions_run(st, Q_NEW))
		return 0;
	st->keep = keep;
	st->prune = true;
	return (int64_t)sqlite3_last_insert_rowid(st->db);
}

void sessions_line(struct sessions *st, int64_t id, unsigned seq, int64_t t, enum sessions_dir dir,
                   unsigned batch, const char *text, size_t len)
{
	sessions_write(st);
	sqlite3_stmt *q = st->q[Q_LINE];
	sqlite3_bind_int64(q, 1, id);
	sqlite3_bind_int64(q, 2, seq);
	sqlite3_bind_int64(q, 3, t);
	sqlite3_bind_int(q, 4, (int)dir);
	sqlite3_bind_int64(q, 5, batch);
	sqlite3_bind_text(q, 6, text, (int)len, SQLITE_TRANSIENT);
	sessions_run(st, Q_LINE);
}

void sessions_update(struct sessions *st, int64_t id, const struct sessions_meta *m)
{
	sessions_write(st);
	sqlite3_stmt *q = st->q[Q_UPDATE];
	sessions_text(q, 1, m->client);
	sessions_text(q, 2, m->helo);
	sessions_text(q, 3, m->tls);
	sessions_text(q, 4, m->user);
	sessions_text(q, 5, m->ended);
	sqlite3_bind_int64(q, 6, (sqlite3_int64)m->dropped);
	sqlite3_bind_int64(q, 7, id);
	sessions_run(st, Q_UPDATE);
}

void sessions_message(struct sessions *st, int64_t id, const char *qid, const char *status,
                      unsigned first, unsigned last, const char *lint_json)
{
	sessions_write(st);
	sqlite3_stmt *q = st->q[Q_MESSAGE];
	sessions_text(q, 1, qid);
	sqlite3_bind_int64(q, 2, id);
	sessions_text(q, 3, status);
	sqlite3_bind_int64(q, 4, first);
	sqlite3_bind_int64(q, 5, last);
	sessions_text(q, 6, lint_json);
	sessions_run(st, Q_MESSAGE);
}

void sessions_forget(struct sessions *st, const char *qid)
{
	sessions_write(st);
	sessions_text(st->q[Q_FORGET], 1, qid);
	sessions_run(st, Q_FORGET);
}

void sessions_clear(struct sessions *st)
{
	sessions_write(st);
	sessions_run(st, Q_CLEAR_S);
	sessions_run(st, Q_CLEAR_L);
	sessions_run(st, Q_CLEAR_M);
}

/* ---- reading ---- */

static const char *sessions_col(sqlite3_stmt *q, int i)
{
	const unsigned char *s = sqlite3_column_text(q, i);
	return s ? (const char *)s : "";
}

/* RFC 3339, UTC, with milliseconds. */
static json_t *sessions_time(int64_t ms)
{
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };
	char out[UTIL_ISO_TIME_LEN + 1];
	util_iso_time(&tv, out);
	return json_string(out);
}

/* A row of SESSIONS_COLS. */
static json_t *sessions_row(sqlite3_stmt *q)
{
	json_t *o = json_object();
	json_object_set_new(o, "id", json_integer(sqlite3_column_int64(q, 0)));
	json_object_set_new(o, "start", sessions_time(sqlite3_column_int64(q, 1)));
	json_object_set_new(o, "start_ms", json_integer(sqlite3_column_int64(q, 1)));
	static const char *const names[] = { "client", "listener", "helo", "tls", "user", "ended" };
	for (int i = 0; i < 6; i++)
		json_object_set_new(o, names[i], json_string(sessions_col(q, 2 + i)));
	json_object_set_new(o, "dropped", json_integer(sqlite3_column_int64(q, 8)));
	json_object_set_new(o, "messages", json_integer(sqlite3_column_int64(q, 9)));
	return o;
}

static void sessions_done(sqlite3_stmt *q)
{
	sqlite3_reset(q);
	sqlite3_clear_bindings(q);
}

json_t *sessions_list(struct sessions *st, unsigned offset, unsigned limit)
{
	if (st->in_tx)
		sessions_prune(st);   /* what a reader sees is what the commit keeps */
	json_t *a = json_array();
	sqlite3_stmt *q = st->q[Q_LIST];
	sqlite3_bind_int64(q, 1, limit);
	sqlite3_bind_int64(q, 2, offset);
	while (sqlite3_step(q) == SQLITE_ROW)
		json_array_append_new(a, sessions_row(q));
	sessions_done(q);
	json_int_t total = 0;
	if (sqlite3_step(st->q[Q_COUNT]) == SQLITE_ROW)
		total = sqlite3_column_int64(st->q[Q_COUNT], 0);
	sessions_done(st->q[Q_COUNT]);
	return json_pack("{s:o, s:I}", "sessions", a, "total", total);
}

static json_t *sessions_lint(const char *text)
{
	json_t *l = json_loads(text, 0, NULL);
	if (!json_is_array(l)) {
		json_decref(l);
		return json_array();
	}
	return l;
}

/* A message row (qid, status, first, last, lint). */
static json_t *sessions_msg_row(sqlite3_stmt *q)
{
	return json_pack("{s:s, s:s, s:I, s:I, s:o}", "queue_id", sessions_col(q, 0), "status",
	                 sessions_col(q, 1), "first", (json_int_t)sqlite3_column_int64(q, 2),
	                 "last", (json_int_t)sqlite3_column_int64(q, 3), "lint",
	                 sessions_lint(sessions_col(q, 4)));
}

static json_t *sessions_lines(struct sessions *st, int64_t id)
{
	static const char *const dirs[] = { "in", "out", "note" };
	json_t *a = json_array();
	sqlite3_stmt *q = st->q[Q_LINES];
	sqlite3_bind_int64(q, 1, id);
	while (sqlite3_step(q) == SQLITE_ROW) {
		int dir = sqlite3_column_int(q, 1);
		json_array_append_new(a, json_pack("{s:I, s:s, s:I, s:s}", "t",
		                                   (json_int_t)sqlite3_column_int64(q, 0), "dir",
		                                   dirs[dir >= 0 && dir < 3 ? dir : 2], "batch",
		                                   (json_int_t)sqlite3_column_int64(q, 2), "text",
		                                   sessions_col(q, 3)));
	}
	sessions_done(q);
	return a;
}

json_t *sessions_get(struct sessions *st, int64_t id)
{
	if (st->in_tx)
		sessions_prune(st);
	sqlite3_stmt *q = st->q[Q_ONE];
	sqlite3_bind_int64(q, 1, id);
	json_t *o = sqlite3_step(q) == SQLITE_ROW ? sessions_row(q) : NULL;
	sessions_done(q);
	if (!o)
		return NULL;
	json_object_set_new(o, "lines", sessions_lines(st, id));
	json_t *msgs = json_array();
	q = st->q[Q_MSGS];
	sqlite3_bind_int64(q, 1, id);
	while (sqlite3_step(q) == SQLITE_ROW)
		json_array_append_new(msgs, sessions_msg_row(q));
	sessions_done(q);
	json_object_set_new(o, "transactions", msgs);
	return o;
}

json_t *sessions_by_qid(struct sessions *st, const char *qid)
{
	sqlite3_stmt *q = st->q[Q_BY_QID];
	sqlite3_bind_text(q, 1, qid, -1, SQLITE_TRANSIENT);
	json_t *o = NULL;
	int64_t id = 0;
	if (sqlite3_step(q) == SQLITE_ROW) {
		o = sessions_msg_row(q);
		id = sqlite3_column_int64(q, 5);
	}
	sessions_done(q);
	if (!o)
		return NULL;
	json_t *s = sessions_get(st, id);
	json_object_set_new(o, "session", s ? s : json_null());
	return o;
}
