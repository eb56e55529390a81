/* engine: what the delivery engine's files share, and nobody else.
 *
 *   queue.c   the thread and its loop, start and stop, the command inbox
 *   sched.c   scanning, timers, backoff, what is in flight, the held state,
 *             results and their recording
 *   dest.c    next hops, their connections and concurrency (SMTP, LMTP)
 *   report.c  delivery status reports (RFC 3464), gathered per message
 *   local.c   the Maildir transport: a worker thread (its fsyncs never
 *             stop the loop)
 *
 * Objects: a qmsg is a message being worked on (its envelope, loaded from
 * the spool or handed over fresh); a qjob is one delivery attempt for some
 * of its recipients through one transport to one next hop; a transport
 * takes jobs (struct transport) and hands each back, results filled in,
 * to sched_job_done() on the loop. Every line logged about a message
 * starts with its queue id.
 */
#ifndef TERN_ENGINE_H
#define TERN_ENGINE_H

#include <event2/util.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "deliver/deliver.h"
#include "deliver/myself.h"
#include "deliver/queue.h"
#include "deliver/route.h"
#include "dsn/dsn.h"
#include "lib/hmap.h"
#include "net/smtpc.h"
#include "spool/reader.h"

#define QUEUE_BATCH 1024        /* messages looked at per scan */
#define QUEUE_INFLIGHT_MAX (16 * QUEUE_BATCH)  /* in flight, past which scans wait */
#define QUEUE_JOB_RCPTS 100     /* recipients per transaction */
#define QUEUE_IDLE_WAIT 60      /* seconds between looks at an idle spool */
#define QUEUE_CONN_IDLE 5       /* seconds an idle connection is kept */
#define QUEUE_REC_RETRY_MAX 30  /* seconds, the ceiling of held results' backoff */

struct queue;
struct qjob;

/* A way to deliver: submit() takes a job (on the loop) and hands it back
 * to sched_job_done(), on the loop, once every result is in job->res. */
struct transport {
	const char *name;
	void (*submit)(struct queue *q, struct qjob *job);
};

extern const struct transport transport_maildir;  /* local.c */
extern const struct transport transport_smtp;     /* dest.c */
extern const struct transport transport_lmtp;     /* dest.c */

struct qmsg {
	struct qmsg *next;          /* in msgs, done, recording or held */
	struct qmsg **pprev;        /* in msgs: the link to it (removal in O(1)) */
	struct hmap_node node;      /* in the queue's in-flight table, by qid */
	struct spool_env env;
	int64_t now;
	size_t jobs_pending, njobs;
	struct qjob **jobs;
	size_t nrep[3];             /* per dsn_kind: the recipients a report names */
	struct dsn_item *rep[3];    /* (report.c) */
	struct report_out *out;     /* the reports, made when it finished */
	size_t nout;
	bool held;                  /* its results were refused once (logged) */
	struct inbox_item *told;    /* a command waiting for this message's record */
	unsigned journaled[2];      /* its lines in each delivery journal file */
};

struct qjob {
	struct qjob *next;          /* in a dest's waiting list, or the worker's */
	struct qmsg *m;
	const struct transport *tr;
	struct route route;
	size_t n, cap;
	unsigned *idx;              /* n recipients: env.rcpt[idx[i]] */
	struct deliver_result *res; /* and their results */
	struct smtpc_job sj;        /* SMTP and LMTP: the client's view of it */
};

struct local;                   /* local.c */

/* A command taken from the inbox (queue.c) to sched_command. */
struct inbox_item {
	struct inbox_item *next;
	struct queue *q;
	struct queue_cmd cmd;
	queue_done_fn *done;
	void *ctx;
	long count;                 /* bounce: recipients returned */
	struct engine_set *reload;  /* queue_reload: the settings to take */
	struct hold_release *rel;   /* queue_release: the release to begin */
	struct hold_conduit *conduit; /* queue_conduit_attach: it, and taken */
	queue_dests_fn *dests;      /* queue_destinations: to see them */
	struct closer_taken taken;
};
struct report_out;              /* report.c */

/* What the engine makes of one settings generation: the transport map,
 * the client TLS context, the smarthost's credentials, this host's names
 * and addresses for MX records that name it (myself.h). The queue holds the
 * current one; each connection holds the one it was opened with (its
 * target points into it), so a reload never pulls it from under them.
 * Delivery thread only, after queue_new. */
struct engine_set {
	unsigned refs;
	struct settings *set;
	struct route_map *map;
	enum smtpc_tls tls;
	SSL_CTX *ssl;
	SSL_CTX *sts_ssl;           /* mta_sts: verifying (WebPKI) context for MX hosts
	                               under an MTA-STS policy (RFC 8461 4.2), else NULL */
	struct buf sts_ca;          /* smtp_tls_ca_file's text for MTA-STS's and TLS-RPT's
	                               HTTPS (read here: libcurl would read it as run_user) */
	char *auth_user, *auth_pass;
	struct myself *myself;
	SSL_CTX *ssl_may;           /* smtp_tls above may: may's context, for the
	                               messages that say TLS-Required: No (RFC 8689 5) */
};
struct engine_set *engine_set_ref(struct engine_set *es);
void engine_set_unref(struct engine_set *es);

struct queue {
	struct engine_set *cur;     /* the current settings and what they made */
	const struct conf *conf;    /* &cur->set->conf */
	struct spool *spool;
	struct spool_reader *reader;
	struct dns *dns;
	struct sts *sts;            /* MTA-STS policies (sts.h) */
	struct tlsrpt *tlsrpt;      /* TLS-RPT counts and reports (tlsrpt.h), NULL: off */
	struct closer *closer;      /* closes outbound connections (closer.h) */
	pthread_t thread;
	struct event_base *base;
	struct event *kick_ev, *timer_ev, *flush_ev, *stop_ev;
	struct event *inbox_ev;     /* commands from other threads (queue_command) */
	pthread_mutex_t inbox_mu;
	struct inbox_item *inbox;   /* under inbox_mu, oldest first */
	struct inbox_item *parked;  /* bounces waiting for their message's record */
	struct local *local;        /* the Maildir worker */
	/* sched.c */
	struct qmsg *msgs, *done;
	struct qmsg *recording;     /* handed to the writer, not yet committed */
	struct spool_journal *journal;  /* recipients delivered, before their record */
	const struct spool_env **rec_envs;
	struct spool_report *rec_reps;
	struct event *recorded_ev;
	pthread_mutex_t rec_mu;     /* rec_pending, rec_err: set by the writer thread */
	pthread_cond_t rec_cv;
	bool rec_pending;
	int rec_err;
	unsigned admin_pending;     /* commands with the writer (under rec_mu) */
	bool rescan_recorded;       /* a command touched the batch being recorded */
	bool paused;                /* QUEUE_PAUSE: nothing new is started */
	struct qmsg *held;          /* finished, results not yet written (sched_hold) */
	size_t nheld;
	struct event *rec_retry_ev; /* offers the held results again */
	unsigned rec_delay;         /* seconds of the current backoff, 0: nothing held */
	unsigned rec_rounds;        /* failed rounds since results were first held */
	struct hmap inflight;       /* every qmsg of msgs, done, recording and held, by qid */
	struct hmap held_domains;   /* domains whose recipients wait for a release */
	bool backlog;               /* the last scan was cut (QUEUE_BATCH, or no room) */
	bool full;                  /* scans found no room (logged once) */
	struct event *scan_ev;      /* a cut scan goes on at once while there is room */
	struct spool_cursor scan_at; /* where the next scan goes on from */
	int64_t wake_at;            /* when timer_ev fires (unix seconds), 0: not armed */
	int64_t started;
	/* release.c */
	struct rel *releases;       /* under way */
	struct hmap rel_entries;    /* each recipient they released, by "qid/idx" */
	struct post *post;          /* calls from other threads (the writer's answers) */
	int64_t aged_at;            /* the last look at held mail's age */
	/* dest.c */
	struct hmap dests;          /* by route key */
	size_t nconns;
	struct conn **conns;        /* every live conn, for shutdown */
};

/* ---- sched.c ---- */

/* Look into the spool (and the handoff) for due messages and start them. */
void sched_scan(struct queue *q);
/* Fresh messages from the handoff, after a commit. */
void sched_fresh(struct queue *q);
/* A job's results are in: apply them; the message ends with its last job. */
void sched_job_done(struct queue *q, struct qjob *job);
/* Record what finished in one group commit (flush_ev), and its outcome
 * (recorded_ev, from the writer), and held results offered again. */
void sched_flush(evutil_socket_t fd, short what, void *arg);
void sched_recorded(evutil_socket_t fd, short what, void *arg);
void sched_rec_retry(evutil_socket_t fd, short what, void *arg);
void sched_rec_done(void *arg, int err);   /* the writer's thread */
void sched_wake(evutil_socket_t fd, short what, void *arg);
void sched_scan_cb(evutil_socket_t fd, short what, void *arg);
/* Carry out an operator's command (on the loop); frees it. */
void sched_command(struct queue *q, struct inbox_item *it);
void sched_admin_wait(struct queue *q);
/* At shutdown (the loop has stopped, the writer still runs). */
void sched_record_last(struct queue *q);
void sched_free_all(struct queue *q);

/* ---- release.c ---- */

/* Begin a release (on the loop): req's domains, or one message (qid). */
void release_begin(struct queue *q, const struct hold_release *req, const char *qid);
/* The release under way that released recipient rc of m (then it goes,
 * its domain held or not, by that release's conduit or host if it names
 * one), or NULL. */
const struct hold_release *release_of(const struct queue *q, const struct qmsg *m,
                                     const struct spool_rcpt *rc);
/* rc's attempt is over (its status set): its release hears of it. */
void release_result(struct queue *q, const struct qmsg *m, const struct spool_rcpt *rc);
/* Releases that heard nothing for long stop waiting (from the timer). */
void release_tick(struct queue *q, int64_t now);
void release_free_all(struct queue *q);

/* ---- dest.c ---- */

/* ATRN's reversed connection as a next hop (hold_conduit): its name for
 * the log; its route; attach: the connection has come (t NULL: never
 * will); done: its release ended: QUIT once idle. It is freed after both. */
const char *dest_conduit_name(const struct hold_conduit *c);
void dest_conduit_route(struct hold_conduit *c, struct route *out);
void dest_conduit_attach(struct queue *q, struct hold_conduit *c, struct closer_taken *t);
void dest_conduit_done(struct queue *q, struct hold_conduit *c);

void dest_hangup_all(struct queue *q);
json_t *dest_json(struct queue *q);   /* queue_destinations' array */
void dest_free_all(struct queue *q);

/* ---- report.c ---- */

/* Note that recipient r's result calls for a report of kind k (when the
 * sender asked for it, RFC 3461). */
void report_note(struct qmsg *m, enum dsn_kind k, struct spool_rcpt *r, const char *action);
/* Make the noted reports of a finished message (once: a batch refused and
 * offered again carries the same reports). */
void report_make(struct queue *q, struct qmsg *m);
/* Append its reports to v (room for REPORT_MAX); how many. */
#define REPORT_MAX 3
size_t report_add(const struct qmsg *m, struct spool_report *v);
/* Its results and reports are recorded: log the reports. */
void report_recorded(const struct qmsg *m);
void report_free(struct qmsg *m);

/* ---- local.c ---- */

bool local_start(struct queue *q);
/* Stop the worker; the jobs it finished are handed to sched_job_done. */
void local_stop(struct queue *q);

#endif
