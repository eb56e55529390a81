/* control: the socket, its clients and their requests (see control.h). */
#include "control/control.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <grp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "control/control_priv.h"
#include "control/dequeue.h"
#include "control/metrics.h"
#include "control/stats.h"
#include "deliver/route.h"
#include "lib/log.h"
#include "lib/util.h"
#include "net/closer.h"

#define CTL_LINE_MAX (64 * 1024)    /* a request line, at most */
#define CTL_OUT_HIGH (1024 * 1024)  /* a stream's output: past this, records are dropped */

/* An answer from the engine's threads, on its way to a client. */
struct ctl_answer {
	struct ctl_answer *next;
	struct ctl_client *cl;
	int err;
	long count;
	bool drained;               /* a drain's end: its outcomes */
	long delivered, deferred, failed;
	bool dests;                 /* destinations: the engine's array, or NULL */
	json_t *obj;
};

/* ---- requests and replies ---- */

const char *ctl_str(json_t *req, const char *key)
{
	json_t *v = json_object_get(req, key);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

#define CTL_LINE_KEEP 65536   /* bytes of ctl_send's buffer kept between replies */

static int ctl_send_piece(const char *p, size_t n, void *arg)
{
	buf_append(arg, p, n);
	return 0;
}

/* The control's line buffer, emptied: a listing writes a line per message
 * there, with no allocation of each line's text. */
struct buf *ctl_line(struct ctl_client *cl)
{
	buf_reset(&cl->c->line);
	return &cl->c->line;
}

/* The line buffer's text as one line to the client. */
void ctl_send_line(struct ctl_client *cl)
{
	struct buf *b = &cl->c->line;
	buf_putc(b, '\n');
	if (cl->bev && !cl->gone)
		bufferevent_write(cl->bev, b->data, b->len);
	if (b->cap > CTL_LINE_KEEP)   /* a rare large reply: its memory goes back */
		buf_free(b);
}

/* o as one line, encoded into the line buffer. */
void ctl_send(struct ctl_client *cl, json_t *o)
{
	int rc = json_dump_callback(o, ctl_send_piece, ctl_line(cl), JSON_COMPACT);
	json_decref(o);
	if (rc != 0)
		log_panic("control: cannot encode a reply");
	ctl_send_line(cl);
}

void ctl_ok(struct ctl_client *cl, json_t *o)
{
	if (!o)
		o = json_object();
	json_object_set_new(o, "ok", json_true());
	ctl_send(cl, o);
	cl->mode = CL_REQ;
}

void ctl_fail(struct ctl_client *cl, const char *fmt, ...)
{
	char why[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	ctl_send(cl, json_pack("{s:b, s:s}", "ok", 0, "error", why));
	cl->mode = CL_REQ;
}

bool ctl_output_full(const struct ctl_client *cl)
{
	return !cl->bev || evbuffer_get_length(bufferevent_get_output(cl->bev)) > CTL_OUT_HIGH;
}

void ctl_audit(const struct ctl_client *cl, const char *what, const char *target)
{
	ev_note(LOG_INFO, 0, NULL, "control: uid %u (pid %d): %s %s", (unsigned)cl->uid,
	        (int)cl->pid, what, target);
}

/* ---- clients ---- */

static void ctl_release(struct ctl_client *cl)
{
	if (cl->gone && cl->pending == 0)
		free(cl);
}

static void ctl_client_close(struct ctl_client *cl)
{
	if (cl->gone)
		return;
	struct control *c = cl->c;
	trace_stop(cl);
	closer_close(c->env.srv->closer, cl->bev);
	cl->bev = NULL;
	cl->gone = true;
	if (cl->prev)
		cl->prev->next = cl->next;
	else
		c->clients = cl->next;
	if (cl->next)
		cl->next->prev = cl->prev;
	ctl_release(cl);
}

static void ctl_request(struct ctl_client *cl, const char *line)
{
	json_error_t jerr;
	json_t *req = json_loads(line, JSON_REJECT_DUPLICATES, &jerr);
	const char *cmd = NULL;
	if (!req || !json_is_object(req))
		ctl_fail(cl, "not a JSON object: %s", req ? "another type" : jerr.text);
	else if (json_unpack(req, "{s:s}", "cmd", &cmd) != 0)
		ctl_fail(cl, "no \"cmd\" string");
	else
		ctl_dispatch(cl, cmd, req);
	json_decref(req);
}

/* Requests, one per line, taken only while no other is under way (a
 * client that pipelines waits for the answers in order). */
static void ctl_read_cb(struct bufferevent *bev, void *arg)
{
	struct ctl_client *cl = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	while (!cl->gone && cl->mode == CL_REQ) {
		size_t n;
		char *line = evbuffer_readln(in, &n, EVBUFFER_EOL_LF);
		if (!line) {
			if (evbuffer_get_length(in) > CTL_LINE_MAX) {
				ctl_fail(cl, "request line longer than %d octets", CTL_LINE_MAX);
				return ctl_client_close(cl);
			}
			return;
		}
		if (n > 0)
			ctl_request(cl, line);
		free(line);
	}
}

static void ctl_write_cb(struct bufferevent *bev, void *arg)
{
	struct ctl_client *cl = arg;
	if (cl->mode == CL_LIST)
		ctl_list_more(cl);
	if (cl->mode == CL_REQ)
		ctl_read_cb(bev, cl);
}

static void ctl_event_cb(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	(void)what;   /* EOF or an error: the client is gone */
	ctl_client_close(arg);
}

/* SO_PEERCRED: root, run_user, and members of control_group (the socket's
 * mode lets only those connect; this says it again, and names them). */
static bool ctl_in_group(pid_t pid, gid_t gid)
{
	char path[64], line[512];
	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	bool in = false;
	while (f && !in && fgets(line, sizeof line, f)) {
		if (strncmp(line, "Groups:", 7))
			continue;
		for (char *p = line + 7, *end; *p && !in; p = end) {
			long g = strtol(p, &end, 10);
			in = end != p && (gid_t)g == gid;
			if (end == p)
				break;
		}
	}
	if (f)
		fclose(f);
	return in;
}

static bool ctl_peer(struct control *c, int fd, struct ctl_client *cl)
{
	struct ucred uc;
	socklen_t len = sizeof uc;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) != 0)
		return false;
	cl->uid = uc.uid;
	cl->pid = uc.pid;
	return uc.uid == 0 || uc.uid == geteuid() || uc.gid == c->gid || ctl_in_group(uc.pid, c->gid);
}

static void ctl_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                       int salen, void *arg)
{
	(void)l;
	(void)sa;
	(void)salen;
	struct control *c = arg;
	struct ctl_client *cl = util_xcalloc(1, sizeof *cl);
	cl->c = c;
	if (!ctl_peer(c, fd, cl)) {
		ev_note(LOG_WARNING, 0, NULL, "control: uid %u (pid %d) refused: not root, run_user "
		        "or control_group", (unsigned)cl->uid, (int)cl->pid);
		evutil_closesocket(fd);
		free(cl);
		return;
	}
	cl->bev = bufferevent_socket_new(c->env.srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!cl->bev) {
		evutil_closesocket(fd);
		free(cl);
		return;
	}
	bufferevent_setcb(cl->bev, ctl_read_cb, ctl_write_cb, ctl_event_cb, cl);
	bufferevent_setwatermark(cl->bev, EV_WRITE, 64 * 1024, 0);
	bufferevent_enable(cl->bev, EV_READ | EV_WRITE);
	cl->next = c->clients;
	if (cl->next)
		cl->next->prev = cl;
	c->clients = cl;
}

/* ---- answers from the engine ---- */

static void ctl_answers_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct control *c = arg;
	pthread_mutex_lock(&c->mu);
	struct ctl_answer *a = c->answers;
	c->answers = NULL;
	pthread_mutex_unlock(&c->mu);
	while (a) {
		struct ctl_answer *next = a->next;
		struct ctl_client *cl = a->cl;
		cl->pending--;
		if (cl->gone) {
			json_decref(a->obj);
		} else {
			if (a->dests && a->obj)
				ctl_ok(cl, json_pack("{s:o}", "destinations", a->obj));
			else if (a->dests)
				ctl_fail(cl, "delivery has stopped");
			else if (a->drained)
				ctl_drained(cl, a->count, a->delivered, a->deferred, a->failed);
			else
				ctl_answered(cl, a->err, a->count);
			ctl_read_cb(cl->bev, cl);   /* requests that waited behind it */
		}
		ctl_release(cl);
		free(a);
		a = next;
	}
}

static void ctl_answer_post(struct ctl_answer *a)
{
	struct control *c = a->cl->c;
	pthread_mutex_lock(&c->mu);
	struct ctl_answer **tail = &c->answers;
	while (*tail)
		tail = &(*tail)->next;
	*tail = a;
	pthread_mutex_unlock(&c->mu);
	event_active(c->answer_ev, EV_TIMEOUT, 0);
}

void ctl_engine_done(void *ctx, int err, long count)
{
	struct ctl_answer *a = util_xcalloc(1, sizeof *a);
	a->cl = ctx;
	a->err = err;
	a->count = count;
	ctl_answer_post(a);
}

void ctl_engine_drained(void *ctx, long count, long delivered, long deferred, long failed)
{
	struct ctl_answer *a = util_xcalloc(1, sizeof *a);
	a->cl = ctx;
	a->count = count;
	a->drained = true;
	a->delivered = delivered;
	a->deferred = deferred;
	a->failed = failed;
	ctl_answer_post(a);
}

void ctl_engine_dests(void *ctx, json_t *o)
{
	struct ctl_answer *a = util_xcalloc(1, sizeof *a);
	a->cl = ctx;
	a->dests = true;
	a->obj = o;
	ctl_answer_post(a);
}

/* ---- open, start, close ---- */

bool control_group_gid(const char *name, gid_t fallback, gid_t *out)
{
	if (!name || !*name) {
		*out = fallback;
		return true;
	}
	struct group gr, *res = NULL;
	char buf[4096];
	if (getgrnam_r(name, &gr, buf, sizeof buf, &res) != 0 || !res)
		return false;
	*out = gr.gr_gid;
	return true;
}

static int ctl_bind(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof sun.sun_path) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	struct stat st;
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(path);   /* a socket left by an earlier run */
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	mode_t old = umask(0177);
	int rc = bind(fd, (struct sockaddr *)&sun, sizeof sun);
	umask(old);
	if (rc != 0 || listen(fd, 16) != 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

struct control *control_open(const struct control_env *env, uid_t uid, gid_t gid)
{
	const struct conf *cf = &env->srv->set->conf;
	const char *path = cf->control_socket;
	int fd = ctl_bind(path);
	if (fd < 0 || chmod(path, 0660) != 0 || chown(path, uid, gid) != 0) {
		log_error("control_socket: cannot listen on %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	struct control *c = util_xcalloc(1, sizeof *c);
	c->env = *env;
	c->fd = fd;
	c->gid = gid;
	c->sub = -1;
	snprintf(c->path, sizeof c->path, "%s", path);
	pthread_mutex_init(&c->mu, NULL);
	c->recs_tail = &c->recs;
	if ((*cf->metrics_listen && !(c->metrics = metrics_open(c, cf->metrics_listen))) ||
	    (*cf->dequeue_listen && !(c->dequeue = dequeue_open(c, cf->dequeue_listen)))) {
		control_free(c);
		return NULL;
	}
	return c;
}

bool control_start(struct control *c)
{
	struct event_base *base = c->env.srv->base;
	c->reader = spool_reader_open(c->env.srv->set->conf.spool_dir);
	if (!c->reader)
		return false;
	c->lev = evconnlistener_new(base, ctl_accept, c, LEV_OPT_CLOSE_ON_FREE, -1, c->fd);
	c->answer_ev = event_new(base, -1, 0, ctl_answers_cb, c);
	c->rec_ev = event_new(base, -1, 0, trace_flush, c);
	c->tick_ev = event_new(base, -1, EV_PERSIST, monitor_tick, c);
	if (!c->lev || !c->answer_ev || !c->rec_ev || !c->tick_ev)
		log_panic("control: cannot create its events");
	c->fd = -1;
	c->sub = ev_subscribe(trace_event, c, LOG_INFO);
	if (c->sub < 0)
		log_panic("control: no room for an event subscriber");
	ev_set_kinds(c->sub, STATS_KINDS);   /* every kind while a trace runs */
	log_info("control socket on %s", c->path);
	return true;
}

void control_close(struct control *c)
{
	if (!c)
		return;
	while (c->clients)
		ctl_client_close(c->clients);
	metrics_free(c->metrics);
	c->metrics = NULL;
	dequeue_free(c->dequeue);   /* its clients' sockets go through the closer too */
	c->dequeue = NULL;
	if (c->lev)
		evconnlistener_free(c->lev);
	else if (c->fd >= 0)
		close(c->fd);
	c->lev = NULL;
	c->fd = -1;
	unlink(c->path);
}

void control_free(struct control *c)
{
	if (!c)
		return;
	control_close(c);
	ev_set_min(c->sub, LOG_ERROR + 1);   /* no more records */
	ctl_answers_cb(-1, 0, c);            /* answers that came, for clients now gone */
	trace_free_records(c);
	struct event *evs[] = { c->answer_ev, c->rec_ev, c->tick_ev };
	for (size_t i = 0; i < sizeof evs / sizeof evs[0]; i++)
		if (evs[i])
			event_free(evs[i]);
	spool_reader_close(c->reader);
	route_map_free(c->routes);
	ctl_held_free(c);
	buf_free(&c->line);
	pthread_mutex_destroy(&c->mu);
	free(c);
}
