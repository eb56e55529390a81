/* search: the test mode's full-text index, SQLite FTS5 in
 * spool_dir/capture-index.db, beside the spool and never part of it: a
 * cache, rebuilt from the capture rows when lost (synchronous=OFF). Rows
 * are indexed in order of their seq, on the main loop within a time
 * budget: 10 ms of every 100, and up to 2 s before a search (under a flood
 * of new mail a search may miss the newest); the spool reader attaches the file as idx, so a search is one
 * query over both (spool_capture_filter.match). Rows deleted from the
 * spool leave their index rows behind, harmless (the join drops them),
 * until the index is cleared with their inbox. */
#include "http/http_priv.h"

#include <ctype.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/conf.h"
#include "lib/log.h"
#include "lib/util.h"
#include "policy/settings.h"

#define SEARCH_TEXT_MAX (64 * 1024)   /* body text indexed per message */
#define SEARCH_SNIPPET 250
#define SEARCH_BATCH 100
#define TERN_STR_(x) #x
#define TERN_STR(x) TERN_STR_(x)

/* Contentless (content=''): the index keeps only its terms, not a second
 * copy of every message's text (half the file's size with a copy);
 * rows are only ever added, and all cleared at once ('delete-all'). An
 * index of another version is dropped and made again: it is a cache. */
#define SEARCH_VERSION 2
static const char search_schema[] =
	"PRAGMA journal_mode=WAL;"
	"PRAGMA synchronous=OFF;"
	"CREATE VIRTUAL TABLE IF NOT EXISTS fts USING fts5(subject, addrs, body, content='',"
	" tokenize='unicode61 remove_diacritics 2');"
	"CREATE TABLE IF NOT EXISTS meta(seq INTEGER PRIMARY KEY, attachments INT NOT NULL,"
	" snippet TEXT NOT NULL);";

static int search_version(sqlite3 *db)
{
	sqlite3_stmt *st = NULL;
	int v = -1;
	if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return v;
}

static bool search_schema_ok(sqlite3 *db)
{
	if (search_version(db) != SEARCH_VERSION &&
	    (sqlite3_exec(db, "DROP TABLE IF EXISTS fts; DROP TABLE IF EXISTS meta;", NULL, NULL,
	                  NULL) != SQLITE_OK ||
	     sqlite3_exec(db, "PRAGMA user_version=" TERN_STR(SEARCH_VERSION), NULL, NULL, NULL) !=
	         SQLITE_OK))
		return false;
	return sqlite3_exec(db, search_schema, NULL, NULL, NULL) == SQLITE_OK;
}

bool search_open(struct http *h, const char *spool_dir)
{
	struct buf path = BUF_INIT;
	buf_printf(&path, "%s/capture-index.db", spool_dir);
	sqlite3 *db = NULL;
	bool ok = sqlite3_open_v2(buf_cstr(&path), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
	                          SQLITE_OPEN_NOMUTEX, NULL) == SQLITE_OK &&
	          search_schema_ok(db) &&
	          spool_reader_attach(h->reader, buf_cstr(&path), "idx") == 0;
	if (!ok) {
		log_error("http: cannot open the search index %s: %s", buf_cstr(&path),
		          db ? sqlite3_errmsg(db) : "out of memory");
		sqlite3_close(db);
		buf_free(&path);
		return false;
	}
	sqlite3_busy_timeout(db, 2000);
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(db, "SELECT COALESCE(MAX(seq), 0) FROM meta", -1, &st, NULL) ==
	        SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		h->index_seq = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	h->idx = db;
	buf_free(&path);
	return true;
}

void search_close(struct http *h)
{
	sqlite3_close(h->idx);
	h->idx = NULL;
}

/* Whitespace runs made one space, for the snippet. */
static void search_snippet(const struct buf *text, struct buf *out)
{
	bool space = true;
	for (size_t i = 0; i < text->len && out->len < SEARCH_SNIPPET; i++) {
		unsigned char c = (unsigned char)text->data[i];
		if (isspace(c)) {
			if (!space)
				buf_append(out, " ", 1);
			space = true;
		} else {
			buf_append(out, (const char *)&c, 1);
			space = false;
		}
	}
	while (out->len && ((unsigned char)out->data[out->len - 1] & 0xc0) == 0x80)
		out->len--;   /* never a UTF-8 sequence cut in two */
	if (out->len && (unsigned char)out->data[out->len - 1] >= 0xc0)
		out->len--;
}

static void search_put(struct http *h, sqlite3_stmt *fts, sqlite3_stmt *meta,
                       const struct spool_captured *c)
{
	struct buf text = BUF_INIT, addrs = BUF_INIT, snip = BUF_INIT;
	int attachments = 0;
	struct mime_src src;
	if (mime_open(h, c->qid, false, &src) == 0) {
		attachments = mime_text(&src, &text, SEARCH_TEXT_MAX);
		mime_close(&src);
	}
	char *subject = mime_decode(c->h.subject);
	const char *parts[] = { c->sender, c->rcpts, c->h.from, c->h.to, c->h.cc };
	for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
		char *d = mime_decode(parts[i]);
		buf_printf(&addrs, "%s ", d);
		free(d);
	}
	search_snippet(&text, &snip);
	sqlite3_bind_int64(fts, 1, c->seq);
	sqlite3_bind_text(fts, 2, subject, -1, SQLITE_STATIC);
	sqlite3_bind_text(fts, 3, buf_cstr(&addrs), -1, SQLITE_STATIC);
	sqlite3_bind_text(fts, 4, buf_cstr(&text), -1, SQLITE_STATIC);
	sqlite3_step(fts);
	sqlite3_reset(fts);
	sqlite3_bind_int64(meta, 1, c->seq);
	sqlite3_bind_int(meta, 2, attachments);
	sqlite3_bind_text(meta, 3, buf_cstr(&snip), -1, SQLITE_STATIC);
	sqlite3_step(meta);
	sqlite3_reset(meta);
	free(subject);
	buf_free(&text);
	buf_free(&addrs);
	buf_free(&snip);
}

static bool search_batch(struct http *h, int64_t until);

bool search_index(struct http *h, unsigned budget_ms)
{
	if (!h->idx)
		return true;
	int64_t until = (int64_t)util_now_ms() + budget_ms;
	bool done = false;
	while (!done && (int64_t)util_now_ms() < until)
		done = search_batch(h, until);
	return done;
}

/* One batch of rows; true when none is left. */
static bool search_batch(struct http *h, int64_t until)
{
	struct spool_capture_filter f = { .after = h->index_seq, .limit = SEARCH_BATCH,
	                                  .oldest_first = true };
	struct spool_captured_list l;
	if (spool_reader_captured(h->reader, &f, &l))
		return true;
	if (l.n == 0) {
		spool_captured_list_free(&l);
		return true;
	}
	sqlite3_stmt *fts = NULL, *meta = NULL;
	sqlite3_exec(h->idx, "BEGIN", NULL, NULL, NULL);
	if (sqlite3_prepare_v2(h->idx, "INSERT INTO fts(rowid, subject, addrs, body)"
	                       " VALUES(?,?,?,?)", -1, &fts, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(h->idx, "INSERT OR REPLACE INTO meta(seq, attachments, snippet)"
	                       " VALUES(?,?,?)", -1, &meta, NULL) == SQLITE_OK)
		for (size_t i = 0; i < l.n && (i == 0 || (int64_t)util_now_ms() < until); i++) {
			search_put(h, fts, meta, &l.v[i]);
			h->index_seq = l.v[i].seq;
		}
	sqlite3_finalize(fts);
	sqlite3_finalize(meta);
	if (sqlite3_exec(h->idx, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		log_warn("http: search index: %s", sqlite3_errmsg(h->idx));
	bool last = l.n < SEARCH_BATCH && h->index_seq == l.v[l.n - 1].seq;
	spool_captured_list_free(&l);
	return last;
}

void search_meta(struct http *h, int64_t seq, int *attachments, struct buf *snippet)
{
	*attachments = 0;
	sqlite3_stmt *st = NULL;
	if (h->idx && sqlite3_prepare_v2(h->idx, "SELECT attachments, snippet FROM meta WHERE seq=?",
	                                 -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, seq);
		if (sqlite3_step(st) == SQLITE_ROW) {
			*attachments = sqlite3_column_int(st, 0);
			const unsigned char *t = sqlite3_column_text(st, 1);
			buf_printf(snippet, "%s", t ? (const char *)t : "");
		}
	}
	sqlite3_finalize(st);
}

void search_clear(struct http *h)
{
	if (h->idx)
		sqlite3_exec(h->idx, "INSERT INTO fts(fts) VALUES('delete-all'); DELETE FROM meta;",
		             NULL, NULL, NULL);
}
