/* spool_priv: what the spool's four files share, and nobody else:
 * rows.c (the schema, migrations, orphans and the writer's row
 * statements), body.c (body files, the reaper thread, the reserve),
 * writer.c (the writer thread: group commit, lazy operations, the handoff
 * of fresh messages, completions handed back) and spool.c (open, close
 * and the message API of spool.h). The reader (reader.c) shares nothing
 * here: it has a connection of its own.
 */
#ifndef TERN_SPOOL_PRIV_H
#define TERN_SPOOL_PRIV_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "lib/buf.h"
#include "spool/spool.h"

enum spool_op_type { OP_CHUNK, OP_COMMIT, OP_ABORT, OP_UPDATE, OP_INJECT, OP_ADMIN, OP_STS };

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
	const struct spool_report *reps;      /* UPDATE: nrep reports queued with them */
	size_t nrep;
	enum spool_admin admin;               /* ADMIN: what, to qid or domain (owned) */
	char *qid, *domain;
	int64_t now;
	long count;                           /* ADMIN: rows changed */
	bool capture;                         /* ADMIN: the test mode's (capture.c) */
	enum spool_capture_op cop;
	unsigned keep;                        /* ADMIN, SPOOL_CAPTURE_TRIM: messages kept */
	void (*on_admin)(void *ctx, int err, long count);
	bool subdomains;                      /* ADMIN, tracked RELEASE: domain's too */
	bool all;                             /* ADMIN, tracked RELEASE: not held ones too */
	struct buf released;                  /* ADMIN, tracked RELEASE: spool_released rows */
	void (*on_release)(void *ctx, int err, const struct spool_released *v, size_t n);
	int64_t expires;              /* STS: domain's policy (data) under id (qid), fetched at now */
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
	uint64_t room_free;           /* spool_has_room's last look at the disk (reserve_mu) */
	int64_t room_at_ms;           /* when (CLOCK_MONOTONIC_COARSE), 0: never */
};

/* Bytes of bodies held by fresh envelopes (spool_env.mem), process-wide:
 * added by the handoff (writer.c), given back by spool_env_free. */
extern atomic_size_t spool_mem_held;

/* rows.c: the database. Every function but rows_open runs on the writer's
 * thread; those that change rows return 0 or an errno (ENOSPC for a full
 * disk). */
sqlite3 *rows_open(const char *dir, int body_dir);
int rows_sql(sqlite3 *db, const char *sql);
int rows_put_chunk(sqlite3 *db, const char *qid, unsigned seq, const struct buf *b);
int rows_put_msg(sqlite3 *db, const struct spool_env *e);
int rows_update(sqlite3 *db, struct buf *gone, const struct spool_env *e);
int rows_inject(sqlite3 *db, const struct spool_env *env, const char *body, size_t len);
/* The tracked release (spool_release_async): each recipient released is
 * appended to out as a struct spool_released. */
int rows_release(sqlite3 *db, const char *qid, const char *domain, bool subdomains, bool all,
                 int64_t now, struct buf *out);
/* An MTA-STS policy row (spool_sts_put), replacing the domain's. */
int rows_sts_put(sqlite3 *db, const char *domain, const char *id, const struct buf *policy,
                 int64_t fetched, int64_t expires);
int rows_admin(sqlite3 *db, struct buf *gone, enum spool_admin what, const char *qid,
               const char *domain, int64_t now, long *count);
/* A recipient the delivery journal names (journal.c), at the start: made
 * delivered if it is still pending, and its message removed (*gone_file:
 * it had a body file) when nothing of it is pending any more. 1 applied,
 * 0 nothing to do, or -errno. */
int rows_journal_apply(sqlite3 *db, const char *qid, unsigned idx, int64_t now, bool *gone_file);
/* journal.c: the lines the last run left, applied in one transaction,
 * then the files emptied. */
int spool_journal_replay(sqlite3 *db, int dir, int body_dir);
int rows_functions(sqlite3 *db);
/* The writer's statement cache (rows_stmt): one prepared for sql with
 * qid bound as ?1 (NULL: none), run to its end, given back. */
int rows_exec_stmt(sqlite3 *db, const char *sql, const char *qid, sqlite3_stmt **out);
int rows_step_done(sqlite3 *db, sqlite3_stmt *st);
void rows_stmt_release(sqlite3_stmt *st);
int rows_errno(sqlite3 *db);
/* Remove a message's rows (*count 1, or 0 when there was none); its body
 * file's name into gone. */
int rows_delete_qid(sqlite3 *db, struct buf *gone, const char *qid, long *count);

/* A reader's connection, for queries made up at the call (capture.c). */
struct spool_reader;
sqlite3 *spool_reader_sqlite(struct spool_reader *r);
/* Column i as an allocated string ("" for NULL). */
char *spool_reader_col(sqlite3_stmt *st, int i);

/* capture.c: the test mode's rows (spool.h's spool_capture_*). */
#define CAPTURE_SCHEMA \
	"CREATE TABLE IF NOT EXISTS capture(seq INTEGER PRIMARY KEY AUTOINCREMENT," \
	" id TEXT NOT NULL UNIQUE, qid TEXT NOT NULL, inbox TEXT NOT NULL, created INT NOT NULL," \
	" size INT NOT NULL, sender TEXT NOT NULL, rcpts TEXT NOT NULL, subject TEXT NOT NULL," \
	" hfrom TEXT NOT NULL, hto TEXT NOT NULL, hcc TEXT NOT NULL, msgid TEXT NOT NULL," \
	" hdate TEXT NOT NULL, session INT NOT NULL, seen INT NOT NULL DEFAULT 0);" \
	"CREATE INDEX IF NOT EXISTS capture_inbox ON capture(inbox, seq);" \
	"CREATE INDEX IF NOT EXISTS capture_seen ON capture(inbox, seen);" \
	"CREATE INDEX IF NOT EXISTS capture_qid ON capture(qid);"
/* With the message's rows: one capture row per inbox its recipients went to. */
int capture_put(sqlite3 *db, const struct spool_env *e);
/* ADMIN ops of the test mode (capture.c). */
int capture_admin(sqlite3 *db, struct buf *gone, struct spool_op *op);
/* Has the message a recipient to deliver (one not captured)? Are all its
 * recipients such (so that it has no capture rows)? */
bool capture_deliverable(const struct spool_env *e);
bool capture_deliverable_only(const struct spool_env *e);
void rows_stmts_free(sqlite3 *db);

/* body.c: body files, the reaper thread, the reserve. */
int body_dir_open(const char *dir);
int body_put(struct spool *sp, struct spool_msg *m, uint64_t off, const struct buf *b);
int body_commit(struct spool *sp, struct spool_msg *m, uint64_t off, const struct buf *b);
void body_discard(struct spool *sp, struct spool_msg *m);
int body_dir_sync(struct spool *sp);
void body_unlink(struct spool *sp, struct spool_op *ops);
void *body_reaper(void *arg);
void body_reserve_keep(struct spool *sp);
bool body_reserve_release(struct spool *sp);
/* The reserve was given to delivery results and is not made again yet:
 * new mail must wait (452) so that the space goes to results. */
bool body_reserve_spent(struct spool *sp);

/* writer.c: the writer thread and its queue of operations. */
void *writer_main(void *arg);
struct spool_op *writer_op_new(enum spool_op_type type, struct spool_msg *m);
void writer_op_free(struct spool_op *op);
void writer_enqueue(struct spool *sp, struct spool_op *op);
void writer_fresh_free_list(struct spool_fresh *f);

#endif
