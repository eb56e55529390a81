/* control_priv: what the control socket's files share (control.c: the
 * socket, clients and requests; ctl_cmd.c: the commands; trace.c: the
 * streams). */
#ifndef TERN_CONTROL_PRIV_H
#define TERN_CONTROL_PRIV_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "control/control.h"
#include "lib/buf.h"
#include "lib/event.h"
#include "spool/reader.h"

struct ctl_rec;
struct route_map;
struct ctl_answer;

struct control {
	struct control_env env;
	char path[108];
	int fd;                         /* the listening socket, until started */
	gid_t gid;                      /* control_group's */
	struct evconnlistener *lev;
	struct spool_reader *reader;    /* the main thread's */
	struct route_map *routes;       /* transport_map, for the recipients' routes */
	unsigned routes_gen;            /* the settings generation routes was read from */
	struct ctl_client *clients;
	int sub;                        /* the event subscription */
	pthread_mutex_t mu;             /* answers and records from other threads */
	struct ctl_answer *answers;
	struct event *answer_ev;
	struct ctl_rec *recs, **recs_tail;
	size_t nrecs;
	struct event *rec_ev;
	atomic_int ntrace, ntranscript; /* trace clients, and of them with --transcript */
	struct event *tick_ev;          /* monitor: every second */
	int nmonitor;
	bool delivery_paused;            /* as the engine was last told */
	struct metrics *metrics;         /* metrics_listen, or NULL */
	struct dequeue *dequeue;         /* dequeue_listen, or NULL */
	struct ctl_held *held;           /* domains an operator held here (ternctl hold DOMAIN) */
	struct buf line;                 /* ctl_send's encoding of a reply, reused */
};

enum ctl_mode { CL_REQ, CL_WAIT, CL_LIST, CL_TRACE, CL_MONITOR };

struct ctl_client {
	struct ctl_client *next, *prev;
	struct control *c;
	struct bufferevent *bev;
	uid_t uid;
	pid_t pid;
	enum ctl_mode mode;
	unsigned pending;               /* answers on their way from the engine */
	bool gone;
	/* queue */
	char f_domain[256], f_sender[512];
	struct spool_filter filter;
	const char *f_queue;            /* deferred, held, active, or NULL */
	struct spool_list_cursor cur;
	size_t listed;
	/* trace */
	char t_client[64], t_qid[24];
	uint64_t t_session;
	bool t_transcript;
	uint64_t dropped;
	/* monitor */
	uint64_t last[32];
};

/* control.c */
const char *ctl_str(json_t *req, const char *key);   /* a string member, or NULL */
void ctl_send(struct ctl_client *cl, json_t *o);   /* takes o */
struct buf *ctl_line(struct ctl_client *cl);       /* the line buffer, emptied */
void ctl_send_line(struct ctl_client *cl);         /* what it holds, as one line */
void ctl_ok(struct ctl_client *cl, json_t *o);     /* o (may be NULL) + "ok": true */
void ctl_fail(struct ctl_client *cl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
bool ctl_output_full(const struct ctl_client *cl);
/* A state-changing command, logged with who asked. */
void ctl_audit(const struct ctl_client *cl, const char *what, const char *target);

/* control.c: queue_command's done (the writer's thread); a drain's end
 * (the delivery thread). */
void ctl_engine_done(void *ctx, int err, long count);
void ctl_engine_drained(void *ctx, long count, long delivered, long deferred, long failed);
void ctl_engine_dests(void *ctx, json_t *o);

/* ctl_cmd.c: the transport map of the settings in force (read again after
 * a reload). */
const struct route_map *ctl_routes(struct control *c);
/* The held domains with their counts (held_domains of status), every one
 * or only (not NULL) that one; NULL when the spool cannot be read. */
json_t *ctl_held_domains(struct control *c, const char *only);
void ctl_held_free(struct control *c);
/* ctl_cmd.c: run one request (cmd is its "cmd"). */
void ctl_dispatch(struct ctl_client *cl, const char *cmd, json_t *req);
/* The engine's answer to an act, back on the loop; a drain's outcome. */
void ctl_answered(struct ctl_client *cl, int err, long count);
void ctl_drained(struct ctl_client *cl, long count, long delivered, long deferred, long failed);
/* A queue listing goes on (its output drained). */
void ctl_list_more(struct ctl_client *cl);

/* trace.c */
void trace_start(struct ctl_client *cl, json_t *req);
void monitor_start(struct ctl_client *cl);
void trace_stop(struct ctl_client *cl);
void trace_event(void *ctx, const struct ev *e);   /* the subscriber (any thread) */
void trace_flush(evutil_socket_t fd, short what, void *arg);
void monitor_tick(evutil_socket_t fd, short what, void *arg);
void trace_free_records(struct control *c);

#endif
