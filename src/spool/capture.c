/* spool/capture: the test mode's inboxes in the spool (spool.h, reader.h).
 *
 * A captured recipient is an ordinary pending recipient, held
 * SPOOL_CAPTURED with transport SPOOL_CAPTURE, so the scheduler never
 * picks it and nothing but this file lets it go; the message's body stays
 * where the spool keeps every body. The capture table lists what the
 * inboxes show, one row per (message, inbox), written in the same
 * transaction as the message: a 250 means the message is in its inbox.
 */
#include "spool/spool_priv.h"
#include "spool/reader.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/util.h"

bool capture_deliverable_only(const struct spool_env *e)
{
	for (size_t i = 0; i < e->nrcpt; i++)
		if (e->rcpt[i].transport == SPOOL_CAPTURE)
			return false;
	return true;
}

bool capture_deliverable(const struct spool_env *e)
{
	for (size_t i = 0; i < e->nrcpt; i++)
		if (e->rcpt[i].transport != SPOOL_CAPTURE)
			return true;
	return false;
}

/* The recipients of one inbox, comma-separated, into b. */
static void capture_rcpts_of(const struct spool_env *e, const char *inbox, struct buf *b)
{
	for (size_t i = 0; i < e->nrcpt; i++)
		if (e->rcpt[i].inbox && !strcmp(e->rcpt[i].inbox, inbox))
			buf_printf(b, "%s%s", b->len ? ", " : "", e->rcpt[i].addr);
}

static int capture_put_row(sqlite3 *db, const struct spool_env *e, const char *id,
                           const char *inbox)
{
	sqlite3_stmt *st;
	int err = rows_exec_stmt(db, "INSERT INTO capture(id, qid, inbox, created, size, sender, rcpts,"
	                         " subject, hfrom, hto, hcc, msgid, hdate, session)"
	                         " VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14)", id, &st);
	if (err)
		return err;
	struct buf rcpts = BUF_INIT;
	capture_rcpts_of(e, inbox, &rcpts);
	const struct spool_capture *c = e->capture;
	const char *text[] = { e->qid, inbox, NULL, NULL, e->sender, buf_cstr(&rcpts), c->subject,
	                       c->from, c->to, c->cc, c->msgid, c->date };
	for (int i = 0; i < 12; i++)
		if (text[i])
			sqlite3_bind_text(st, i + 2, text[i], -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, e->arrival);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)(e->size + (e->prefix ? strlen(e->prefix) : 0)));
	sqlite3_bind_int64(st, 14, (sqlite3_int64)e->session);
	err = rows_step_done(db, st);
	buf_free(&rcpts);
	return err;
}

int capture_put(sqlite3 *db, const struct spool_env *e)
{
	if (!e->capture)
		return 0;
	int err = 0;
	unsigned k = 0;
	for (size_t i = 0; !err && i < e->nrcpt; i++) {
		const char *inbox = e->rcpt[i].inbox;
		bool first = inbox != NULL;
		for (size_t j = 0; first && j < i; j++)
			first = !e->rcpt[j].inbox || strcmp(e->rcpt[j].inbox, inbox);
		if (!first)
			continue;
		char id[UTIL_QID_LEN + 16];
		if (k++ == 0)
			snprintf(id, sizeof id, "%s", e->qid);
		else
			snprintf(id, sizeof id, "%s.%u", e->qid, k);
		err = capture_put_row(db, e, id, inbox);
	}
	return err;
}

/* A message whose capture rows went: its captured recipients go when no
 * inbox shows it any more, and the message when nothing else is pending. */
static int capture_gc(sqlite3 *db, struct buf *gone, const char *qid)
{
	static const char *const sql[] = {
		"SELECT COUNT(*) FROM capture WHERE qid=?1",
		"DELETE FROM rcpt WHERE qid=?1 AND transport=4 AND status=0",
		"SELECT COUNT(*) FROM rcpt WHERE qid=?1 AND status=0",
	};
	_Static_assert(SPOOL_CAPTURE == 4 && SPOOL_PENDING == 0, "capture_gc's SQL");
	for (size_t i = 0; i < 3; i++) {
		sqlite3_stmt *st;
		int err = rows_exec_stmt(db, sql[i], qid, &st);
		if (err)
			return err;
		if (i == 1) {
			if ((err = rows_step_done(db, st)) != 0)
				return err;
			continue;
		}
		int rc = sqlite3_step(st);
		long n = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
		rows_stmt_release(st);
		if (n < 0)
			return rows_errno(db) ? rows_errno(db) : EIO;
		if (n > 0)
			return 0;   /* still in an inbox, or still to be delivered */
	}
	long count = 0;
	return rows_delete_qid(db, gone, qid, &count);
}

/* Run a DELETE ... RETURNING qid, then collect what it left. */
static int capture_delete(sqlite3 *db, struct buf *gone, sqlite3_stmt *st, long *count)
{
	struct buf qids = BUF_INIT;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const unsigned char *q = sqlite3_column_text(st, 0);
		buf_append(&qids, q ? (const char *)q : "", strlen(q ? (const char *)q : "") + 1);
		++*count;
	}
	int err = rc == SQLITE_DONE ? 0 : rows_errno(db) ? rows_errno(db) : EIO;
	rows_stmt_release(st);
	for (size_t off = 0; !err && off < qids.len; off += strlen(qids.data + off) + 1)
		err = capture_gc(db, gone, qids.data + off);
	buf_free(&qids);
	return err;
}

int capture_admin(sqlite3 *db, struct buf *gone, struct spool_op *op)
{
	static const char *const sql[] = {
		[SPOOL_CAPTURE_DELETE] = "DELETE FROM capture WHERE id=?1 RETURNING qid",
		[SPOOL_CAPTURE_CLEAR] = "DELETE FROM capture WHERE ?1 IS NULL OR inbox=?1 RETURNING qid",
		[SPOOL_CAPTURE_TRIM] = "DELETE FROM capture WHERE inbox=?1 AND (created<?2 OR seq<="
		                       " (SELECT seq FROM capture WHERE inbox=?1 ORDER BY seq DESC"
		                       " LIMIT 1 OFFSET ?3)) RETURNING qid",
		[SPOOL_CAPTURE_SEEN] = "UPDATE capture SET seen=1 WHERE id=?1 AND seen=0",
	};
	op->count = 0;
	const char *key = op->cop == SPOOL_CAPTURE_DELETE || op->cop == SPOOL_CAPTURE_SEEN
	                  ? op->qid : op->domain;
	sqlite3_stmt *st;
	int err = rows_exec_stmt(db, sql[op->cop], key, &st);
	if (err)
		return err;
	if (op->cop == SPOOL_CAPTURE_TRIM) {
		sqlite3_bind_int64(st, 2, op->now);
		sqlite3_bind_int64(st, 3, op->keep ? (sqlite3_int64)op->keep : INT64_MAX);
	}
	if (op->cop != SPOOL_CAPTURE_SEEN)
		return capture_delete(db, gone, st, &op->count);
	err = rows_step_done(db, st);
	op->count = err ? 0 : sqlite3_changes(db);
	return err;
}

/* ---- reading (any thread, on a reader's connection) ---- */

#define CAPTURE_COLS "seq, id, qid, inbox, created, size, sender, rcpts, subject, hfrom, hto," \
	" hcc, msgid, hdate, session, seen"

static void capture_row(sqlite3_stmt *st, struct spool_captured *c)
{
	memset(c, 0, sizeof *c);
	c->seq = sqlite3_column_int64(st, 0);
	const unsigned char *t = sqlite3_column_text(st, 1);
	snprintf(c->id, sizeof c->id, "%s", t ? (const char *)t : "");
	t = sqlite3_column_text(st, 2);
	snprintf(c->qid, sizeof c->qid, "%s", t ? (const char *)t : "");
	t = sqlite3_column_text(st, 3);
	snprintf(c->inbox, sizeof c->inbox, "%s", t ? (const char *)t : "");
	c->created = sqlite3_column_int64(st, 4);
	c->size = (uint64_t)sqlite3_column_int64(st, 5);
	c->sender = spool_reader_col(st, 6);
	c->rcpts = spool_reader_col(st, 7);
	c->h.subject = spool_reader_col(st, 8);
	c->h.from = spool_reader_col(st, 9);
	c->h.to = spool_reader_col(st, 10);
	c->h.cc = spool_reader_col(st, 11);
	c->h.msgid = spool_reader_col(st, 12);
	c->h.date = spool_reader_col(st, 13);
	c->session = (uint64_t)sqlite3_column_int64(st, 14);
	c->seen = sqlite3_column_int(st, 15) != 0;
}

void spool_captured_clear(struct spool_captured *c)
{
	free(c->sender);
	free(c->rcpts);
	spool_capture_clear(&c->h);
	memset(c, 0, sizeof *c);
}

void spool_captured_list_free(struct spool_captured_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		spool_captured_clear(&l->v[i]);
	free(l->v);
	memset(l, 0, sizeof *l);
}

/* The WHERE clause of a filter, its values bound from ?1 on by
 * capture_bind in the same order. */
static void capture_where(const struct spool_capture_filter *f, struct buf *sql)
{
	buf_printf(sql, " WHERE 1");
	if (f->inbox)
		buf_printf(sql, " AND inbox=?");
	if (f->id)
		buf_printf(sql, " AND id=?");
	if (f->after)
		buf_printf(sql, " AND seq>?");
	if (f->match)
		buf_printf(sql, " AND seq IN (SELECT rowid FROM idx.fts WHERE fts MATCH ?)");
	if (f->seqs) {
		buf_printf(sql, " AND seq IN (");
		for (size_t i = 0; i < f->nseq; i++)
			buf_printf(sql, "%s?", i ? "," : "");
		buf_printf(sql, ")");
	}
}

static int capture_bind(sqlite3_stmt *st, const struct spool_capture_filter *f)
{
	int i = 1;
	if (f->inbox)
		sqlite3_bind_text(st, i++, f->inbox, -1, SQLITE_STATIC);
	if (f->id)
		sqlite3_bind_text(st, i++, f->id, -1, SQLITE_STATIC);
	if (f->after)
		sqlite3_bind_int64(st, i++, f->after);
	if (f->match)
		sqlite3_bind_text(st, i++, f->match, -1, SQLITE_STATIC);
	for (size_t k = 0; f->seqs && k < f->nseq; k++)
		sqlite3_bind_int64(st, i++, f->seqs[k]);
	return i;
}

static long capture_count(sqlite3 *db, const struct spool_capture_filter *f)
{
	struct buf sql = BUF_INIT;
	buf_printf(&sql, "SELECT COUNT(*) FROM capture");
	capture_where(f, &sql);
	sqlite3_stmt *st = NULL;
	long n = -1;
	if (sqlite3_prepare_v2(db, buf_cstr(&sql), -1, &st, NULL) == SQLITE_OK) {
		capture_bind(st, f);
		if (sqlite3_step(st) == SQLITE_ROW)
			n = sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	buf_free(&sql);
	return n;
}

int spool_reader_captured(struct spool_reader *r, const struct spool_capture_filter *f,
                          struct spool_captured_list *out)
{
	memset(out, 0, sizeof *out);
	sqlite3 *db = spool_reader_sqlite(r);
	if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)   /* one snapshot */
		return EIO;
	out->total = f->count ? capture_count(db, f) : -1;
	struct buf sql = BUF_INIT;
	buf_printf(&sql, "SELECT " CAPTURE_COLS " FROM capture");
	capture_where(f, &sql);
	buf_printf(&sql, " ORDER BY seq %s LIMIT ? OFFSET ?", f->oldest_first ? "ASC" : "DESC");
	sqlite3_stmt *st = NULL;
	int err = 0, rc = SQLITE_DONE;
	if ((f->count && out->total < 0) || sqlite3_prepare_v2(db, buf_cstr(&sql), -1, &st, NULL) != SQLITE_OK) {
		err = EIO;
	} else {
		int i = capture_bind(st, f);
		sqlite3_bind_int64(st, i, f->limit ? (sqlite3_int64)f->limit : -1);
		sqlite3_bind_int64(st, i + 1, (sqlite3_int64)f->offset);
		size_t cap = 0;
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			if (out->n == cap) {
				cap = cap ? 2 * cap : 16;
				out->v = util_xrealloc(out->v, cap, sizeof *out->v);
			}
			capture_row(st, &out->v[out->n++]);
		}
		err = rc == SQLITE_DONE ? 0 : EIO;
	}
	sqlite3_finalize(st);
	sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	buf_free(&sql);
	if (err)
		spool_captured_list_free(out);
	return err;
}

int spool_reader_attach(struct spool_reader *r, const char *path, const char *name)
{
	sqlite3 *db = spool_reader_sqlite(r);
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(db, "ATTACH DATABASE ?1 AS ?2", -1, &st, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_text(st, 1, path, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : EIO;
}

int spool_reader_inboxes(struct spool_reader *r,
                         void (*fn)(void *ctx, const char *inbox, long total, long unseen),
                         void *ctx)
{
	sqlite3 *db = spool_reader_sqlite(r);
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(db, "SELECT inbox, COUNT(*), SUM(seen=0) FROM capture"
	                           " GROUP BY inbox ORDER BY inbox", -1, &st, NULL) != SQLITE_OK)
		return EIO;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		fn(ctx, (const char *)sqlite3_column_text(st, 0), sqlite3_column_int64(st, 1),
		   sqlite3_column_int64(st, 2));
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : EIO;
}
