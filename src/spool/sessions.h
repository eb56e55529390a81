/* sessions: the store of SMTP session transcripts and of each message's
 * client lint (the test mode, issue 18): spool_dir/sessions.db, a SQLite
 * file of its own beside queue.db.
 *
 * Transcripts are diagnostics, not acknowledged mail: the file is in WAL
 * mode with synchronous=NORMAL (no fsync at a commit, only at
 * checkpoints), and writes are batched: the first write opens a
 * transaction, which a timer commits SESSIONS_COMMIT_MS later (or at once
 * after SESSIONS_BATCH_MAX statements). A crash or power cut loses what
 * the last fraction of a second recorded; the mail itself never depends
 * on this file. Used on the main loop's thread only (the sessions record,
 * the control socket and the HTTP API read); a read runs on the same
 * connection, inside the open transaction, so it sees everything recorded
 * so far, a live session's lines included.
 *
 * A session's id is the table's AUTOINCREMENT rowid: unique across
 * restarts (and after a clear), unlike ternd's in-memory session number.
 * The newest `keep` sessions are kept (pruned at each commit), with their
 * lines and their messages' links.
 */
#ifndef TERN_SESSIONS_H
#define TERN_SESSIONS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct sessions;

#define SESSIONS_COMMIT_MS 150
#define SESSIONS_BATCH_MAX 2000

enum sessions_dir { SESSIONS_IN, SESSIONS_OUT, SESSIONS_NOTE };

/* Open (create) dir/sessions.db; NULL, logged, on failure. */
struct sessions *sessions_open(const char *dir, struct event_base *base);
/* Commit what is pending and close. NULL is fine. */
void sessions_close(struct sessions *st);
/* Commit now (a test, or before the file is read by someone else). */
void sessions_commit(struct sessions *st);

/* A new session: its durable id (0 on a database error); keep: how many
 * sessions to keep, this one included. */
int64_t sessions_begin(struct sessions *st, int64_t start_ms, const char *client,
                       const char *listener, unsigned keep);
/* Line seq (0, 1, ...) of session id: t milliseconds after its start. */
void sessions_line(struct sessions *st, int64_t id, unsigned seq, int64_t t, enum sessions_dir dir,
                   unsigned batch, const char *text, size_t len);

/* What the session list shows, as it is now ("" for unknown). */
struct sessions_meta {
	const char *client, *helo, *tls, *user, *ended;
	uint64_t dropped;          /* lines not recorded (over transcript_max_size) */
};
void sessions_update(struct sessions *st, int64_t id, const struct sessions_meta *m);

/* A message of session id: its queue id, status ("queued", "refused: ...",
 * "aborted"), its first and last lines (seq) and its lint as a JSON array
 * text. A queue id recorded again replaces the link. */
void sessions_message(struct sessions *st, int64_t id, const char *qid, const char *status,
                      unsigned first, unsigned last, const char *lint_json);

/* ---- reading (new references; NULL when there is no such thing) ---- */

/* {"sessions": [{id, start, client, listener, helo, tls, user, messages,
 * ended}...], "total": n}, newest first. */
json_t *sessions_list(struct sessions *st, unsigned offset, unsigned limit);
/* One session: its list entry with "lines": [{t, dir, batch, text}...]
 * and "transactions": [{queue_id, status, first, last, lint}...]. */
json_t *sessions_get(struct sessions *st, int64_t id);
/* A message: {queue_id, status, first, last, lint, session: (as
 * sessions_get)}. */
json_t *sessions_by_qid(struct sessions *st, const char *qid);

/* The message was deleted: its link and lint go (its session stays). */
void sessions_forget(struct sessions *st, const char *qid);
/* Everything goes ("delete all"); ids go on from where they were. */
void sessions_clear(struct sessions *st);

#endif
