/* spool: the durable queue, SQLite in WAL mode with synchronous=FULL.
 *
 * One writer thread owns the only writing connection. Everything that
 * changes the spool is an operation put on its queue; the thread takes every
 * operation queued since its last commit, runs them in one transaction and
 * commits once (group commit: one fsync for many messages). Only then are the
 * callers told, so a 250 is sent only for a message that is on disk.
 *
 * Messages stream in: spool_msg_write() buffers up to SPOOL_CHUNK bytes,
 * then hands a chunk to the writer; the envelope row is written with the
 * last chunk in spool_msg_commit(). A message that fits in one chunk is
 * stored in the database (one row); a longer one in its own file,
 * spool_dir/body/<qid>, synced before its envelope row commits. The file of
 * a message given up (spool_msg_abort) or whose commit failed (the session
 * answers 452 or 451) is removed at once; chunks and files left without an
 * envelope row by a crash are orphans, removed on the next start.
 *
 * Recorded delivery results (spool_update_many_async) are lazy: they wait
 * briefly for a commit that a new message needs and share its fsync. A
 * reserve file (spool_set_reserve) keeps some disk for them alone.
 *
 * Handoff: with a commit hook set, every message committed from a session
 * is also kept, in memory, for the delivery side (spool_take_fresh): its
 * envelope and, while the bytes held stay under SPOOL_MEM_MAX, its body.
 * Delivering new mail then reads nothing back from the database; only
 * retries and a restart do.
 *
 * Completions of asynchronous operations run on the caller's thread, in
 * spool_run_completions(), which the caller runs when the notify callback
 * (called from the writer thread) tells it to.
 *
 * Reading the spool back (the delivery thread, operators) is spool/reader.h.
 */
#ifndef TERN_SPOOL_H
#define TERN_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "lib/buf.h"
#include "lib/util.h"

#define SPOOL_CHUNK (64 * 1024)

/* SPOOL_ERROR: refused when the message was queued (a maildrop file's
 * unknown user); last_reply says why, and the scheduler fails it at once
 * with a report to the sender, as Postfix's error(8) transport does. */
/* SPOOL_CAPTURE: the test mode keeps it in an inbox (held SPOOL_CAPTURED),
 * never delivered; it goes when the inbox lets it go (spool_capture_*). */
enum spool_transport { SPOOL_LOCAL = 0, SPOOL_REMOTE = 1, SPOOL_LMTP = 2, SPOOL_ERROR = 3,
                       SPOOL_CAPTURE = 4 };
enum spool_status { SPOOL_PENDING = 0, SPOOL_DELIVERED = 1, SPOOL_FAILED = 2 };

struct spool_rcpt {
	unsigned idx;
	char *orig;          /* the address as the client gave it */
	char *addr;          /* the mailbox to deliver to (after aliases) */
	int transport;       /* enum spool_transport */
	unsigned notify;     /* NOTIFY_* of parse.h */
	char *orcpt;         /* RFC 3461 ORCPT, "" when none */
	int status;          /* enum spool_status */
	unsigned attempts;
	int64_t next_try;    /* unix seconds */
	char *last_reply;    /* last delivery result, for the log and reports */
	char *remote_mta;    /* the host that gave last_reply, "" if none */
	unsigned dsn_flags;  /* SPOOL_DSN_*: reports already generated */
	unsigned char held;  /* pending, and not to be tried until released:
	                        SPOOL_HELD (an operator, a hold domain) or
	                        SPOOL_QUARANTINED (a filter's verdict: released
	                        only by its queue id), SPOOL_CAPTURED (the test
	                        mode's: never released); 0 when not */
	char *inbox;         /* SPOOL_CAPTURE: its inbox at receipt, else NULL
	                        (not read back: the capture rows keep it) */
	int64_t tried_at;    /* an attempt made since it was loaded (unix seconds,
	                        0: none): recording adds it to the history */
};

enum { SPOOL_DSN_DELAY = 1 << 0 };
enum { SPOOL_HELD = 1, SPOOL_QUARANTINED = 2, SPOOL_CAPTURED = 3 };

struct spool_env {
	char qid[UTIL_QID_LEN + 1];
	char *sender;        /* "" for the null sender */
	char *envid;         /* RFC 3461 ENVID, "" when none */
	int ret;             /* enum smtp_ret */
	int body;            /* enum smtp_body */
	uint64_t size;
	int64_t arrival;     /* unix seconds */
	char *client;        /* "[ip]" */
	char *helo;
	char *prefix;        /* header fields made at receipt that go before the
	                        body (the DKIM-Signature fields, smtpd/signer.h),
	                        CRLF-ended, or NULL: every transport sends it
	                        first (msg.prefix) */
	bool body_file;      /* the body is in spool_dir/body/<qid> (set by the spool) */
	bool dotless;        /* known: no line of the body begins with a dot, so it
	                        goes out as it is, unstuffed (RFC 5321 4.5.2) */
	bool smtputf8;       /* received with MAIL ... SMTPUTF8 (RFC 6531 3.4): goes
	                        on only to a next hop that offers SMTPUTF8 */
	bool requiretls;     /* received with MAIL ... REQUIRETLS (RFC 8689 4.1): goes
	                        on only over verified TLS to a next hop that offers
	                        REQUIRETLS; bounced with headers only (5) */
	bool tls_optional;   /* its header says TLS-Required: No (RFC 8689 5), and it
	                        is not requiretls: TLS policy failures fall back to
	                        opportunistic TLS (smtp_tls = may) */
	char *mem;           /* the whole body, held in memory (a fresh message
	                        under SPOOL_MEM_MAX), or NULL: read it from the spool */
	size_t mem_len, mem_cap;
	size_t nrcpt;
	struct spool_rcpt *rcpt;
	bool deleted;        /* an operator deleted it: recording removes it */
	uint64_t session;    /* the session that queued it, 0 when unknown (a
	                        message read back from the spool): for events only */
	struct spool_capture *capture;  /* a recipient is captured (SPOOL_CAPTURE):
	                        what its inbox lists of it; else NULL */
};

/* The test mode: a captured message's header fields as they came
 * (unfolded, undecoded; "" when absent), for the inbox's rows. */
struct spool_capture {
	char *subject, *from, *to, *cc, *msgid, *date;
};
struct msghead;
/* From a message's header block (lib/msghead); freed by spool_capture_free. */
struct spool_capture *spool_capture_of(const struct msghead *h);
void spool_capture_free(struct spool_capture *c);
/* Free its fields only (one held inside another struct). */
void spool_capture_clear(struct spool_capture *c);

void spool_env_free(struct spool_env *e);

/* The recipients of a message being gathered (a session's RCPT commands,
 * a maildrop file's): append one, pending, to v (n used, cap allocated);
 * free the strings of n of them and v. */
void spool_rcpt_add(struct spool_rcpt **v, size_t *n, size_t *cap, const char *orig,
                    const char *addr, int transport, unsigned notify, const char *orcpt);
void spool_rcpts_free(struct spool_rcpt *v, size_t n);
/* Free one recipient's strings (taking it out of such a list). */
void spool_rcpt_clear(struct spool_rcpt *r);

typedef void (*spool_done_fn)(void *ctx, int err);  /* err: 0 or an errno */

struct spool;
struct spool_msg;

/* Open (creating if needed) spool_dir/queue.db, remove orphans, start the
 * writer thread. notify is called from the writer thread whenever completions
 * are waiting. On failure returns NULL and prints why. */
struct spool *spool_open(const char *dir, void (*notify)(void *), void *notify_ctx);
/* Drain the queue, stop the writer, close. Pending completions are run. */
void spool_close(struct spool *sp);

/* Called from the writer thread after a commit that added messages. Once
 * set, committed messages are kept for spool_take_fresh(). Set it to NULL
 * before its owner goes: no call is under way or to come after that. */
void spool_set_commit_hook(struct spool *sp, void (*hook)(void *), void *ctx);

/* Bytes of bodies held in memory by fresh messages, at most. */
#define SPOOL_MEM_MAX (64u << 20)
/* Fresh messages not yet taken, at most; past that they are not kept. */
#define SPOOL_FRESH_MAX 50000

struct spool_fresh {
	struct spool_fresh *next;
	struct spool_env env;   /* as spool_reader_env loads it, mem perhaps set */
};

/* Take the messages committed since the last call, oldest first (the
 * caller frees each with spool_fresh_free). *rescan is set when some were
 * not kept (too many waiting, or queued by spool_inject): the caller must
 * look in the spool itself. */
struct spool_fresh *spool_take_fresh(struct spool *sp, bool *rescan);
void spool_fresh_free(struct spool_fresh *f);
/* Around a look into the spool (spool_reader_due) that must neither miss
 * nor repeat a fresh message: no commit happens in between, and every
 * message committed before the lock is in the fresh list or taken. */
void spool_scan_lock(struct spool *sp);
void spool_scan_unlock(struct spool *sp);

/* Keep bytes of disk in spool_dir/reserve for delivery results (0: none,
 * and a reserve left by an earlier run is removed). When a batch of
 * spool_update_many_async fails for want of space, the writer deletes the
 * file and tries the batch again; it makes the file again once the disk
 * has twice its size free. */
void spool_set_reserve(struct spool *sp, uint64_t bytes);
/* May a message of size octets (0: not declared) be taken now? false when
 * the spool's disk has less than that free above four times the reserve
 * (the room delivery results need): new mail
 * then gets 452 4.3.1 at MAIL (as Postfix's smtpd checks free space
 * against message_size_limit), before accepted mail fills the last of
 * the disk and no result can be recorded. Any thread. */
bool spool_has_room(struct spool *sp, uint64_t size);

/* The delivery journal (journal.c): the delivery thread writes each
 * recipient delivered the moment its next hop (or mailbox) took it, one
 * line without fsync, so that a crash of the process before the group
 * commit that records it does not deliver it again: spool_open applies
 * what the last run left. spool_journal_add returns the file written (0
 * or 1), to be given back to spool_journal_recorded once the message's
 * results are committed. Delivery thread only. */
struct spool_journal;
struct spool_journal *spool_journal_open(struct spool *sp);
int spool_journal_add(struct spool_journal *j, const char *qid, unsigned idx);
void spool_journal_recorded(struct spool_journal *j, int f, unsigned n);
void spool_journal_close(struct spool_journal *j);

/* Run the completions that are waiting (on the caller's thread). */
void spool_run_completions(struct spool *sp);

/* Start a message. on_chunk(ctx, err) runs after each chunk is written. */
struct spool_msg *spool_msg_begin(struct spool *sp, const char *qid,
                                  spool_done_fn on_chunk, void *ctx);
/* Append message bytes. Returns false when the caller should stop reading
 * until on_chunk runs and spool_msg_writable() is true again. */
bool spool_msg_write(struct spool_msg *m, const void *p, size_t n);
bool spool_msg_writable(const struct spool_msg *m);
/* Error of the first failed chunk, 0 if none so far. */
int spool_msg_error(const struct spool_msg *m);
/* Write the rest and the envelope (env is copied), commit, then done(). The
 * message handle is gone afterwards. */
void spool_msg_commit(struct spool_msg *m, const struct spool_env *env,
                      spool_done_fn done, void *ctx);
/* Give the message up: no more callbacks, its body file is removed. */
void spool_msg_abort(struct spool_msg *m);

/* A whole message made here (a delivery report), queued with the results
 * that call for it. */
struct spool_report {
	const struct spool_env *env;
	const void *body;
	size_t len;
};

/* Record recipients' delivery results (any thread but the writer); each
 * envelope holds every recipient of its message (as spool_reader_env loads
 * it), and a message with none pending any more is removed. The nrep
 * reports those results call for are queued in the same transaction: all
 * go in one group commit, so a report exists exactly when the results
 * that made it are recorded, and nobody waits for an fsync. done(ctx, err)
 * runs on the writer thread after the commit (so it must only hand the
 * news over, e.g. event_active); envs and reps must stay valid until then.
 * On an error nothing of the batch was written: the caller keeps the
 * results and reports and tries again. */
void spool_update_many_async(struct spool *sp, const struct spool_env *const *envs, size_t n,
                             const struct spool_report *reps, size_t nrep,
                             void (*done)(void *ctx, int err), void *ctx);

/* What an operator may do to queued recipients (the delivery engine's
 * command inbox asks): HOLD marks pending ones held (never tried until
 * released), RELEASE unmarks them and makes them due, FLUSH makes pending
 * ones not held due now, DELETE removes a message without any report. */
enum spool_admin { SPOOL_HOLD, SPOOL_RELEASE, SPOOL_FLUSH, SPOOL_DELETE };

/* Apply it to one message (qid), or to the recipients of one domain
 * (domain, case-insensitive), or (neither: FLUSH only) to all; now is the
 * due time given. done(ctx, err, count) runs on the writer thread after
 * the commit: count is the recipients (messages for DELETE) changed. */
void spool_admin_async(struct spool *sp, enum spool_admin what, const char *qid,
                       const char *domain, int64_t now,
                       void (*done)(void *ctx, int err, long count), void *ctx);

/* A release that is followed (ETRN, ATRN, the dequeue trigger): the held
 * recipients of one message (qid), or of domain and, when subdomains, of
 * the domains under it (neither: of every domain), made due at now; with
 * all, every pending recipient, held or not (a drain); done(ctx, err, v, n) gets each one released (qid, idx; valid
 * during the call), on the writer thread after the commit. */
struct spool_released {
	char qid[UTIL_QID_LEN + 1];
	unsigned idx;
};
void spool_release_async(struct spool *sp, const char *qid, const char *domain, bool subdomains,
                         bool all, int64_t now,
                         void (*done)(void *ctx, int err, const struct spool_released *v,
                                      size_t n),
                         void *ctx);

/* An MTA-STS policy (RFC 8461 5.1) the delivery engine fetched for domain
 * (deliver/sts.c): its text as served, the TXT id it was fetched under,
 * when, and when it expires (fetched + max_age); it replaces the domain's
 * row. Asynchronous, nobody waits: a failure is logged. */
void spool_sts_put(struct spool *sp, const char *domain, const char *id, const char *policy,
                   int64_t fetched, int64_t expires);

/* ---- the test mode's inboxes (capture.c) ----
 * A message with captured recipients has one capture row per inbox they
 * went to, made in the commit that queues it; its id is the queue id for
 * the first inbox, "QID.2", "QID.3" for the others. When an inbox lets
 * a row go (an API delete, its retention), the captured recipients of a
 * message left in no inbox go, and with them the message when nothing of
 * it is pending any more. */
enum spool_capture_op {
	SPOOL_CAPTURE_DELETE,   /* the row id */
	SPOOL_CAPTURE_CLEAR,    /* every row of inbox (NULL: of every inbox) */
	SPOOL_CAPTURE_TRIM,     /* inbox's rows beyond the newest keep (0: no
	                           limit) or created before `before` */
	SPOOL_CAPTURE_SEEN,     /* mark the row id read */
};
void spool_capture_async(struct spool *sp, enum spool_capture_op what, const char *id,
                         const char *inbox, unsigned keep, int64_t before,
                         void (*done)(void *ctx, int err, long count), void *ctx);

/* Synchronous: queue a whole message made here (a delivery report). */
int spool_inject(struct spool *sp, const struct spool_env *env, const void *body, size_t len);

#endif
