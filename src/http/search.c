/* search: the test mode's full-text index, SQLite FTS5 in
 * spool_dir/capture-index.db, beside the spool and never part of it: a
 * cache, rebuilt from the capture rows when lost (synchronous=OFF). Rows
 * are indexed in order of their seq, a batch each second and before each
 * search; the spool reader attaches the file as idx, so a search is one
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

static const char search_schema[] =
	"PRAGMA journal_mode=WAL;"
	"PRAGMA synchronous=OFF;"
	"CREATE VIRTUAL TABLE IF NOT EXISTS fts USING fts5(subject, addrs, body,"
	" tokenize='unicode61 remove_diacritics 2');"
	"CREATE TABLE IF NOT EXISTS meta(seq INTEGER PRIMARY KEY, attachments INT NOT NULL,"
	" snippet TEXT NOT NULL);";

bool search_open(struct http *h, const char *spool_dir)
{
	struct buf path = BUF_INIT;
	buf_printf(&path, "%s/capture-index.db", spool_dir);
	sqlite3 *db = NULL;
	bool ok = sqlite3_open_v2(buf_cstr(&path), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
	                          SQLITE_OPEN_NOMUTEX, NULL) == SQLITE_OK &&
	          sqlite3_exec(db, search_schema, NULL, NULL, NULL) == SQLITE_OK &&
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
	struct buf raw = BUF_INIT, text = BUF_INIT, addrs = BUF_INIT, snip = BUF_INIT;
	int attachments = 0;
	if (mime_raw(h, c->qid, &raw) == 0)
		attachments = mime_text(raw.data ? raw.data : "", raw.len, &text, SEARCH_TEXT_MAX);
	char *subject = mime_decode(c->subject);
	const char *parts[] = { c->sender, c->rcpts, c->from, c->to, c->cc };
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
	buf_free(&raw);
	buf_free(&text);
	buf_free(&addrs);
	buf_free(&snip);
}

void search_index(struct http *h, size_t max)
{
	if (!h->idx)
		return;
	struct spool_capture_filter f = { .after = h->index_seq, .limit = max, .oldest_first = true };
	struct spool_captured_list l;
	if (spool_reader_captured(h->reader, &f, &l))
		return;
	if (l.n == 0)
		return spool_captured_list_free(&l);
	sqlite3_stmt *fts = NULL, *meta = NULL;
	sqlite3_exec(h->idx, "BEGIN", NULL, NULL, NULL);
	if (sqlite3_prepare_v2(h->idx, "INSERT OR REPLACE INTO fts(rowid, subject, addrs, body)"
	                       " VALUES(?,?,?,?)", -1, &fts, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(h->idx, "INSERT OR REPLACE INTO meta(seq, attachments, snippet)"
	                       " VALUES(?,?,?)", -1, &meta, NULL) == SQLITE_OK)
		for (size_t i = 0; i < l.n; i++) {
			search_put(h, fts, meta, &l.v[i]);
			h->index_seq = l.v[i].seq;
		}
	sqlite3_finalize(fts);
	sqlite3_finalize(meta);
	if (sqlite3_exec(h->idx, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		log_warn("http: search index: %s", sqlite3_errmsg(h->idx));
	spool_captured_list_free(&l);
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
		sqlite3_exec(h->idx, "DELETE FROM fts; DELETE FROM meta;", NULL, NULL, NULL);
}

/* ---- the query language (Mailpit's, in part) ---- */

/* One term as an FTS5 string, prefix-matched, in column col (NULL: any). */
static void search_term(struct buf *out, const char *col, const char *t, size_t n)
{
	if (out->len)
		buf_printf(out, " AND ");
	if (col)
		buf_printf(out, "%s : ", col);
	buf_append(out, "\"", 1);
	for (size_t i = 0; i < n; i++)
		buf_append(out, t[i] == '"' ? "\"\"" : &t[i], t[i] == '"' ? 2 : 1);
	buf_append(out, "\"*", 2);
}

bool search_match(const char *q, struct buf *out)
{
	static const struct { const char *prefix, *col; } cols[] = {
		{ "subject:", "subject" }, { "from:", "addrs" }, { "to:", "addrs" },
		{ "addr:", "addrs" }, { "body:", "body" },
	};
	buf_reset(out);
	while (q && *q) {
		while (*q == ' ' || *q == '\t')
			q++;
		if (!*q)
			break;
		const char *col = NULL;
		for (size_t i = 0; i < sizeof cols / sizeof cols[0]; i++)
			if (!strncasecmp(q, cols[i].prefix, strlen(cols[i].prefix))) {
				col = cols[i].col;
				q += strlen(cols[i].prefix);
				break;
			}
		const char *t = q;
		size_t n;
		if (*q == '"') {
			t = ++q;
			n = strcspn(q, "\"");
			q += n + (q[n] == '"');
		} else {
			n = strcspn(q, " \t");
			q += n;
		}
		if (n)
			search_term(out, col, t, n);
	}
	return out->len > 0;
}
