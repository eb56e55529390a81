/* spool/reader: read-only access to the spool, for the delivery thread
 * (and the operator's queries). Each reader has its own SQLite connection
 * and is used by one thread; WAL lets readers read while the writer
 * (spool.h) commits, and they see only committed messages.
 */
#ifndef TERN_SPOOL_READER_H
#define TERN_SPOOL_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "lib/util.h"
#include "spool/spool.h"

struct spool_reader;
/* A reader of spool_dir (its queue.db and body/, made by spool_open);
 * NULL, and why logged, on failure. */
struct spool_reader *spool_reader_open(const char *dir);
void spool_reader_close(struct spool_reader *r);
/* Where a paged look for due recipients stopped: the last row read, in
 * (next_try, rowid) order; SPOOL_CURSOR_START before the first. */
struct spool_cursor {
	int64_t next_try, rowid;
};
#define SPOOL_CURSOR_START ((struct spool_cursor){ -1, 0 })
/* Up to max queue ids with a recipient due at or before now, from the rows
 * after *cur on; *cur moves past the rows read. *more: max rows were read,
 * there may be more after *cur; false: the end was reached. With max 0
 * nothing is read and *more is set. */
size_t spool_reader_due(struct spool_reader *r, int64_t now, struct spool_cursor *cur,
                        char (*qids)[UTIL_QID_LEN + 1], size_t max, bool *more);
/* Messages with a held recipient that arrived at or before expire_at, or
 * at or before warn_at and had no delay report yet: held mail ages too. At
 * most max qids. */
size_t spool_reader_held_aged(struct spool_reader *r, int64_t expire_at, int64_t warn_at,
                              char (*qids)[UTIL_QID_LEN + 1], size_t max);
/* The earliest next_try after now of any pending recipient, or -1. */
int64_t spool_reader_next_due(struct spool_reader *r, int64_t now);
/* Load a message's envelope with all its recipients. 0 or an errno. */
int spool_reader_env(struct spool_reader *r, const char *qid, struct spool_env *env);
/* Stream the body of a message (env from spool_reader_env) in order to
 * fn; stops when fn returns false. Returns 0 or an errno. */
int spool_reader_body(struct spool_reader *r, const struct spool_env *env,
                      bool (*fn)(void *ctx, const void *p, size_t n), void *ctx);
/* Read piece number seq of a message's body into out (replacing its
 * contents). Returns 0, ENOENT after the last piece, or an errno. */
int spool_reader_chunk(struct spool_reader *r, const struct spool_env *env, unsigned seq,
                       struct buf *out);
/* A message's body file, opened for reading (the caller closes it); its
 * size in *size. -1 with errno set when the body is not in a file. */
int spool_reader_body_fd(struct spool_reader *r, const struct spool_env *env, uint64_t *size);
/* Number of messages in the queue. */
long spool_reader_count(struct spool_reader *r);
/* The same, and the octets of their messages in *bytes. */
long spool_reader_totals(struct spool_reader *r, uint64_t *bytes);

/* ---- what operators see (the control socket, ternctl queue) ----
 *
 * A listing of the queue in the manner of Postfix's postqueue -j: each
 * message with its recipients, their state, attempts, next try and last
 * reply; filtered by recipient domain, sender and state; paged with a
 * cursor, each page costing what it looks at, not the depth of the queue.
 */

/* A recipient's state: its status (enum spool_status), or held: pending
 * but not to be tried until released (rcpt.held, set by an operator's
 * hold or for a held domain). */
enum spool_state {
	SPOOL_STATE_PENDING = SPOOL_PENDING,
	SPOOL_STATE_DELIVERED = SPOOL_DELIVERED,
	SPOOL_STATE_FAILED = SPOOL_FAILED,
	SPOOL_STATE_HELD = 3,
};
#define SPOOL_STATE_BIT(s) (1u << (s))

/* Which messages: those with a recipient at domain and in one of states
 * (the same recipient), from sender. A NULL or 0 field does not filter. */
struct spool_filter {
	const char *domain;     /* a recipient's domain, in any case */
	const char *sender;     /* the sender, in any case; "" the null sender */
	unsigned states;        /* SPOOL_STATE_BIT()s or'ed */
};

struct spool_summary_rcpt {
	unsigned idx;           /* its place in the envelope, from 0 */
	char *addr;             /* the mailbox to deliver to (after aliases) */
	char *orig;             /* the address as the client gave it */
	int state;              /* enum spool_state */
	unsigned attempts;
	int64_t next_try;       /* unix seconds; 0: not tried yet */
	char *last_reply;       /* the last result (why deferred or failed), or "" */
	int transport;          /* enum spool_transport */
};

/* Where a message stands, as Postfix's queue names say: active (nothing
 * tried yet), deferred (a pending recipient was tried), hold (one is held). */
enum spool_queue { SPOOL_QUEUE_ACTIVE, SPOOL_QUEUE_DEFERRED, SPOOL_QUEUE_HOLD,
                   SPOOL_QUEUE__COUNT };

struct spool_summary {
	char qid[UTIL_QID_LEN + 1];
	int queue;              /* enum spool_queue */
	char *sender;           /* "" for the null sender */
	uint64_t size;
	int64_t arrival;        /* unix seconds */
	size_t nrcpt;
	struct spool_summary_rcpt *rcpt;   /* every recipient, in the order given */
};

/* One page: n messages in queue id order (arrival order, util_qid). */
struct spool_list {
	struct spool_summary *msg;
	size_t n;
	bool more;              /* stopped before the end: a message follows the cursor
	                         * (with max 0: nothing was read, so maybe) */
};

/* Where a listing stopped: the last queue id looked at. */
struct spool_list_cursor {
	char qid[UTIL_QID_LEN + 1];
};
#define SPOOL_LIST_START ((struct spool_list_cursor){ "" })
/* Messages looked at per page, at least: a page that filters out most of
 * the queue stops there, with fewer than max (perhaps none) and more set. */
#define SPOOL_LIST_LOOK 4096

/* Up to max messages after *cur that f lets through (f NULL: all), with
 * all their recipients, looking at no more than max or SPOOL_LIST_LOOK
 * messages, whichever is more; *cur moves past the last one looked at.
 * 0 or an errno (out is then empty); spool_list_free frees out either way. */
int spool_reader_list(struct spool_reader *r, const struct spool_filter *f,
                      struct spool_list_cursor *cur, size_t max, struct spool_list *out);
void spool_list_free(struct spool_list *l);

/* How many messages each enum spool_queue holds. 0 or an errno. */
int spool_reader_queues(struct spool_reader *r, long out[SPOOL_QUEUE__COUNT]);

/* Per recipient domain: how many messages, and recipients, have a
 * recipient there in one of states (SPOOL_STATE_BIT()s; 0: any). */
struct spool_domain_count {
	char *domain;           /* lower case; "" for an address without one */
	size_t msgs, rcpts;
};
struct spool_domain_counts {
	struct spool_domain_count *v;
	size_t n;
};
/* The max domains with the most messages, most first (then by name). Every
 * recipient in those states is counted: the cost is theirs, not a page's.
 * 0 or an errno (out is then empty); spool_domain_counts_free frees out. */
int spool_reader_domains(struct spool_reader *r, unsigned states, size_t max,
                         struct spool_domain_counts *out);
void spool_domain_counts_free(struct spool_domain_counts *c);
/* The held recipients (pending, rcpt.held) per domain, and the messages
 * they are in: the mail that waits for a release (hold_domains, an
 * operator's hold). At most max domains, by name; the cost is that of the
 * held rows alone (the scheduler's index), not the queue's. 0 or an errno
 * (out is then empty); spool_domain_counts_free frees out. */
int spool_reader_held_domains(struct spool_reader *r, size_t max,
                              struct spool_domain_counts *out);

/* The history of a message's attempts, oldest first: fn(ctx, recipient
 * index, when, the reply, the host that gave it). 0 or an errno. */
int spool_reader_attempts(struct spool_reader *r, const char *qid,
                          void (*fn)(void *ctx, unsigned idx, int64_t at, const char *reply,
                                     const char *mta),
                          void *ctx);

/* The MTA-STS policy cached for domain (spool_sts_put): 0 with *out
 * filled (free it with spool_sts_free), ENOENT when there is none, EIO. */
struct spool_sts {
	char *id, *policy;
	int64_t fetched, expires;
};
int spool_reader_sts(struct spool_reader *r, const char *domain, struct spool_sts *out);
void spool_sts_free(struct spool_sts *s);

/* ---- the test mode's inboxes (capture.c) ---- */

struct spool_captured {
	int64_t seq;                    /* increasing, never reused: the listing's order */
	char id[UTIL_QID_LEN + 16];     /* the row: the queue id, or "QID.N" */
	char qid[UTIL_QID_LEN + 1];
	char inbox[72];
	int64_t created;                /* arrival, unix seconds */
	uint64_t size;
	uint64_t session;               /* ternd's session number (since its start) */
	bool seen;
	char *sender, *rcpts;           /* the envelope: MAIL, and this inbox's RCPTs */
	struct spool_capture h;         /* header fields as they came */
};

struct spool_captured_list {
	struct spool_captured *v;
	size_t n;
	long total;                     /* rows matching the filter, ignoring offset/limit
	                                   (the filter's count), else -1 */
};

/* Which rows (every field optional): of an inbox, one id, those after a
 * seq, those with the given seqs; newest first unless oldest_first;
 * limit 0: no limit. */
struct spool_capture_filter {
	const char *inbox;
	const char *id;
	int64_t after;
	const int64_t *seqs;
	size_t nseq;
	const char *match;              /* an FTS5 query on the search index attached
	                                   as idx (table fts, rowid = seq), or NULL */
	size_t offset, limit;
	bool oldest_first;
	bool count;                     /* fill the list's total (one more query) */
};

int spool_reader_captured(struct spool_reader *r, const struct spool_capture_filter *f,
                          struct spool_captured_list *out);
void spool_captured_list_free(struct spool_captured_list *l);
void spool_captured_clear(struct spool_captured *c);
/* Attach another database file to the reader's connection as name (the
 * test mode's search index). 0 or EIO. */
int spool_reader_attach(struct spool_reader *r, const char *path, const char *name);
/* Each inbox that holds a message: its name, messages, unread ones. */
int spool_reader_inboxes(struct spool_reader *r,
                         void (*fn)(void *ctx, const char *inbox, long total, long unseen),
                         void *ctx);

#endif
