/* control: the control socket that ternctl talks to (a unix socket,
 * control_socket; mode 0660, group control_group), served by the main
 * loop. One JSON request per line, one JSON reply per line; `queue` sends
 * a message per line and then its reply; `trace` and `monitor` stream
 * until the client goes.
 *
 * Requests: {"cmd": "status"|"stats"|"queue"|"show"|"flush"|"hold"|
 * "release"|"delete"|"bounce"|"pause"|"resume"|"trace"|"monitor"|
 * "transcript", ...}.
 * Replies: {"ok": true, ...} or {"ok": false, "error": "..."}. Only root,
 * run_user and members of control_group may connect (the socket's mode
 * and SO_PEERCRED); commands that change state are logged with the
 * caller's uid.
 */
#ifndef TERN_CONTROL_H
#define TERN_CONTROL_H

#include <jansson.h>

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct buf;

#include "deliver/queue.h"
#include "smtpd/session.h"

struct control;

/* What the control socket reports on and acts on. */
struct control_env {
	struct server *srv;         /* the settings in force, sessions, the policy, the loop */
	struct queue *queue;        /* NULL with queue_only */
	/* reload: ternd's (problems gets "FILE:LINE: message" lines) */
	bool (*reload)(void *ctx, struct buf *problems);
	void *reload_ctx;
	int64_t started;            /* unix seconds */
};

/* As root, before the privilege drop: bind control_socket and give it to
 * uid and group gid, mode 0660. NULL, with why logged, on failure. */
struct control *control_open(const struct control_env *env, uid_t uid, gid_t gid);
/* After the drop, with the spool open: take connections. */
bool control_start(struct control *c);
/* The gid of control_group ("" : run_user's own group gid); false when
 * there is no such group. */
bool control_group_gid(const char *name, gid_t fallback, gid_t *out);
/* Shutdown, in two steps: control_close (while the loop's closer is
 * there) ends every client and stops listening; control_free, once the
 * engine and the spool have stopped (nothing answers or emits any more),
 * frees the rest. */
void control_close(struct control *c);

/* For the HTTP API (http/), on the main loop. The counters and the queue's
 * sizes (ternctl stats --json); the first max messages of the queue as
 * ternctl queue --json rows; an operator's act (hold, release, flush or
 * delete of a queue id or a domain), logged with who asked: NULL when it
 * went to the engine, else why not. */
json_t *control_stats(struct control *c);
json_t *control_queue(struct control *c, size_t max);
const char *control_act(struct control *c, const char *verb, const char *target,
                        const char *who);
void control_free(struct control *c);

#endif
