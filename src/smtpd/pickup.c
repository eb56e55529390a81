/* pickup: queues the files of spool_dir/maildrop; see pickup.h. A job is
 * one file: open, the envelope read and parsed (dropfile.c), recipients
 * resolved, then the message fed, a chunk per loop turn, through the data
 * parser (RFC 5321 4.1.1.4, the file holds the DATA stream) into the
 * spool, and committed; the file is unlinked after the commit. */
#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/event.h"
#include "lib/util.h"
#include "smtpd/data.h"
#include "smtpd/dropfile.h"
#include "smtpd/pickup.h"
#include "smtpd/session.h"
#include "smtpd/msgin.h"
#include "smtpd/signer.h"

#define PICKUP_BATCH 256            /* names taken from one scan */
#define PICKUP_READ (64 * 1024)     /* octets read per loop turn */
#define PICKUP_ENV_MAX (1u << 20)   /* envelope octets at most */

struct pickup_job {
	struct pickup *p;
	struct settings *set;          /* taken at the start, kept to the end (as a session) */
	char name[NAME_MAX + 1];
	int fd;
	unsigned long uid;             /* the file's owner: who submitted it */
	char user[MAILDROP_USER_MAX + 1];
	char qid[UTIL_QID_LEN + 1];
	char sender[POLICY_ADDR_MAX];
	struct buf head;               /* the file's start, until the envelope parses */
	bool parsed;
	struct dropfile_env env;
	struct spool_rcpt *rcpt;
	size_t nrcpt, cap;
	struct spool_msg *msg;
	struct msgin in;               /* header block held, body to msg (msgin.h) */
	struct data_parser dp;
	bool paused;                   /* the spool asked to wait */
	bool committing;
	int64_t arrival;
};

struct pickup {
	struct server *srv;
	char *path;                    /* spool_dir/maildrop */
	int dir, bad, ino;             /* the directory, bad/, the inotify fd */
	struct event *ino_ev, *step_ev, *timer;
	char (*names)[NAME_MAX + 1];   /* the last scan's files, in name order */
	size_t nnames, next;
	bool rescan;                   /* the directory may hold files not in names */
	bool blocked;                  /* a file could not be taken: wait for the timer */
	bool stopping;
	struct pickup_job *job;
};

static void pickup_kick(struct pickup *p)
{
	if (!p->stopping)
		event_active(p->step_ev, EV_TIMEOUT, 0);
}

/* ---- the end of a job ---- */

static void pickup_job_free(struct pickup_job *j)
{
	if (j->msg)
		spool_msg_abort(j->msg);
	msgin_free(&j->in);
	if (j->fd >= 0)
		close(j->fd);
	spool_rcpts_free(j->rcpt, j->nrcpt);
	dropfile_free(&j->env);
	buf_free(&j->head);
	if (j->p->job == j)
		j->p->job = NULL;
	settings_unref(j->set);
	free(j);
}

static void pickup_event(const struct pickup_job *j, struct ev *e, enum ev_kind k,
                         enum log_level l)
{
	ev_init(e, k, l, 0, j->qid[0] ? j->qid : NULL);
	ev_add(e, "file", "%s", j->name);
	ev_add(e, "uid", "%lu", j->uid);
}

/* Malformed, or nothing in it can be queued: moved to bad/, never lost. */
static void pickup_aside(struct pickup_job *j, const char *why)
{
	struct pickup *p = j->p;
	struct ev e;
	pickup_event(j, &e, EK_PICKUP, LOG_WARNING);
	ev_add(&e, "problem", "%s", why);
	if (renameat(p->dir, j->name, p->bad, j->name) == 0) {
		ev_add(&e, "moved", "%s/%s/%s", p->path, MAILDROP_BAD, j->name);
	} else {
		ev_add(&e, "error", "cannot move it to %s/: %s", MAILDROP_BAD, strerror(errno));
		p->blocked = true;
	}
	ev_emit(&e);
	pickup_job_free(j);
	pickup_kick(p);
}

/* Not the file's fault (a read or spool error): it stays for later. */
static void pickup_later(struct pickup_job *j, const char *what, int err)
{
	struct ev e;
	pickup_event(j, &e, j->qid[0] ? EK_NOT_QUEUED : EK_PICKUP, LOG_ERROR);
	ev_add(&e, "error", "%s: %s", what, strerror(err));
	ev_add(&e, "retry", "in %d s", PICKUP_RESCAN);
	ev_emit(&e);
	j->p->blocked = true;
	pickup_job_free(j);
}

static void pickup_committed(void *ctx, int err)
{
	struct pickup_job *j = ctx;
	struct pickup *p = j->p;
	j->committing = false;
	if (err)
		return pickup_later(j, "spool commit", err);
	struct ev e;
	pickup_event(j, &e, EK_QUEUED, LOG_INFO);
	ev_add(&e, "from", "<%s>", j->sender);
	ev_add(&e, "size", "%llu", (unsigned long long)j->dp.size);
	ev_add(&e, "nrcpt", "%zu", j->nrcpt);
	ev_emit(&e);
	/* A crash before this unlink reaches the disk queues the file again
	 * at the next start: twice rather than never. */
	if (unlinkat(p->dir, j->name, 0) != 0 || !util_fsync_dir(p->path))
		ev_note(LOG_ERROR, 0, j->qid, "cannot remove %s/%s: %s", p->path, j->name,
		        strerror(errno));
	pickup_job_free(j);
	pickup_kick(p);
}

/* RFC 5321 4.4: the trace header; a local submission names its user
 * (as Postfix's "from userid"). */
static void pickup_received(struct pickup_job *j, struct buf *b)
{
	char date[64];
	util_rfc5322_date(time(NULL), date, sizeof date);
	buf_printf(b, "Received: by %s (tern, from local user %s, uid %lu)\r\n\tid %s",
	           j->set->conf.hostname, j->user, j->uid, j->qid);
	if (j->env.nrcpt == 1)
		buf_printf(b, "\r\n\tfor <%s>", j->rcpt[0].orig);
	buf_printf(b, ";\r\n\t%s\r\n", date);
}

/* End of file: the data must have ended with its dot and broken nothing. */
static void pickup_finish(struct pickup_job *j)
{
	unsigned f = j->dp.flags;
	if (!j->parsed)
		return pickup_aside(j, "the file ends inside the envelope");
	if (!j->dp.done)
		return pickup_aside(j, "the message does not end with a line holding a dot");
	if (f)
		return pickup_aside(j, f & DATA_TOO_BIG ? "larger than max_message_size" :
		                       f & DATA_LONG_LINE ? "a line longer than max_line_length" :
		                       f & DATA_NUL ? "a NUL octet in the message" :
		                       "a bare CR or LF in the message");
	if (!msgin_end(&j->in))
		return pickup_aside(j, "a header block larger than max_header_size");
	if (spool_msg_error(j->msg))
		return pickup_later(j, "spool write", spool_msg_error(j->msg));
	struct spool_env e;
	memset(&e, 0, sizeof e);
	snprintf(e.qid, sizeof e.qid, "%s", j->qid);
	e.sender = j->sender;
	e.envid = j->env.mp.envid;
	e.ret = j->env.mp.ret;
	e.body = j->env.mp.body;
	e.size = j->in.stored;
	e.dotless = j->dp.dot_lines == 0;
	e.tls_optional = msgin_tls_optional(&j->in);   /* RFC 8689 5 */
	e.arrival = j->arrival;
	e.client = (char *)"local";
	e.helo = j->user;
	e.nrcpt = j->nrcpt;
	e.rcpt = j->rcpt;
	struct buf fields = BUF_INIT;
	pickup_received(j, &fields);
	msgin_strip_verdicts(&j->in, j->set->conf.authserv_id);
	/* a local submission is signed as an AUTH'ed one is */
	e.prefix = msgin_prefix(&j->in, fields.data, 0, j->qid);
	buf_free(&fields);
	j->committing = true;
	spool_msg_commit(j->msg, &e, pickup_committed, j);
	j->msg = NULL;   /* the spool owns it now */
	free(e.prefix);  /* copied */
}

/* ---- the message ---- */

static void pickup_sink(void *ctx, const char *p, size_t n)
{
	struct pickup_job *j = ctx;
	if (!msgin_feed(&j->in, p, n))
		j->paused = true;
}

static void pickup_chunk_done(void *ctx, int err)
{
	struct pickup_job *j = ctx;
	(void)err;   /* spool_msg_error() has it for pickup_finish */
	if (j->paused && j->msg && spool_msg_writable(j->msg)) {
		j->paused = false;
		pickup_kick(j->p);
	}
}

/* Message bytes to the data parser; false when the job is over. */
static bool pickup_feed(struct pickup_job *j, const char *p, size_t n)
{
	if (n == 0)
		return true;
	if (j->dp.done || data_feed(&j->dp, p, n) < n) {
		pickup_aside(j, "octets after the final dot");
		return false;
	}
	return true;
}

/* Each recipient as a session's RCPT resolves it; a local user may relay.
 * A refused one is queued all the same, failed (SPOOL_ERROR): the program
 * that ran sendmail has exited, so the sender learns of it by a report,
 * as from Postfix's local(8) "unknown user". */
static void pickup_resolve(struct pickup_job *j)
{
	static const char *const why[] = {
		[POLICY_UNKNOWN] = "5.1.1 %s: user unknown",
		[POLICY_RELAY_DENIED] = "5.7.1 %s: refused, a source route or %%-hack address",
		[POLICY_LOOP] = "5.4.6 %s: alias loop or too many alias targets" };
	for (size_t i = 0; i < j->env.nrcpt; i++) {
		const struct dropfile_rcpt *r = &j->env.rcpt[i];
		char orig[POLICY_ADDR_MAX];
		addr_format(&r->addr, orig, sizeof orig);
		struct policy_targets t = { 0, 0, NULL };
		enum policy_verdict v = policy_rcpt(j->set, &r->addr, true, &t);
		for (size_t k = 0; v == POLICY_ACCEPT && k < t.n; k++)
			spool_rcpt_add(&j->rcpt, &j->nrcpt, &j->cap, orig, t.v[k].addr, t.v[k].transport,
			               r->rp.notify, r->rp.orcpt);
		policy_targets_free(&t);
		if (v == POLICY_ACCEPT)
			continue;
		spool_rcpt_add(&j->rcpt, &j->nrcpt, &j->cap, orig, orig, SPOOL_ERROR, r->rp.notify,
		               r->rp.orcpt);
		char reply[POLICY_ADDR_MAX + 80];
		snprintf(reply, sizeof reply, why[v], orig);
		j->rcpt[j->nrcpt - 1].last_reply = util_xstrdup(reply);
		struct ev e;
		pickup_event(j, &e, EK_REJECT, LOG_WARNING);
		ev_add(&e, "to", "<%s>", orig);
		ev_add(&e, "reason", "%s", reply);
		ev_add(&e, "report", "to the sender");
		ev_emit(&e);
	}
}

/* The envelope parsed: resolve, start the message, feed what was read. */
static void pickup_accept(struct pickup_job *j, size_t used)
{
	const struct conf *c = &j->set->conf;
	j->parsed = true;
	util_qid(j->qid);
	addr_format(&j->env.sender, j->sender, sizeof j->sender);
	struct ev e;
	pickup_event(j, &e, EK_RECEIVED, LOG_INFO);
	ev_add(&e, "from", "<%s>", j->sender);
	ev_add(&e, "user", "%s", j->user);
	ev_emit(&e);
	pickup_resolve(j);
	if (j->nrcpt == 0)
		return pickup_aside(j, "no recipient");
	j->arrival = (int64_t)time(NULL);
	j->msg = spool_msg_begin(j->p->srv->spool, j->qid, pickup_chunk_done, j);
	msgin_begin(&j->in, j->msg, signer_begin(j->set, true), j->set->conf.max_header_size);
	data_init(&j->dp, c->max_line_length, c->max_message_size, pickup_sink, j);
	if (!pickup_feed(j, j->head.data + used, j->head.len - used))
		return;   /* moved aside, j is gone */
	buf_free(&j->head);
	pickup_kick(j->p);
}

/* The envelope: read until it parses. */
static void pickup_envelope(struct pickup_job *j, const char *p, size_t n)
{
	buf_append(&j->head, p, n);
	const char *why;
	size_t used;
	unsigned max = j->set->conf.max_recipients;
	enum dropfile_res r = dropfile_parse(j->head.data, j->head.len, max, &j->env, &used, &why);
	if (r == DROPFILE_OK)
		return pickup_accept(j, used);
	if (r == DROPFILE_BAD)
		return pickup_aside(j, why);
	if (j->head.len > PICKUP_ENV_MAX)
		return pickup_aside(j, "an envelope larger than 1 MiB");
	pickup_kick(j->p);
}

/* One read of the current job. */
static void pickup_read(struct pickup_job *j)
{
	static char chunk[PICKUP_READ];
	if (j->paused || j->committing)
		return;
	ssize_t n = read(j->fd, chunk, sizeof chunk);
	if (n < 0 && errno == EINTR)
		return pickup_kick(j->p);
	if (n < 0)
		return pickup_later(j, "read", errno);
	if (n == 0)
		return pickup_finish(j);
	if (!j->parsed)
		return pickup_envelope(j, chunk, (size_t)n);
	if (pickup_feed(j, chunk, (size_t)n))
		pickup_kick(j->p);
}

/* ---- files ---- */

static void pickup_owner(struct pickup_job *j, uid_t uid)
{
	struct passwd pw, *res = NULL;
	char buf[1024];
	j->uid = (unsigned long)uid;
	if (getpwuid_r(uid, &pw, buf, sizeof buf, &res) == 0 && res)
		snprintf(j->user, sizeof j->user, "%s", pw.pw_name);
	else
		snprintf(j->user, sizeof j->user, "unknown");
}

static void pickup_open(struct pickup *p, const char *name)
{
	struct pickup_job *j = util_xcalloc(1, sizeof *j);
	j->p = p;
	j->set = settings_ref(p->srv->set);
	snprintf(j->name, sizeof j->name, "%s", name);
	j->fd = openat(p->dir, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	p->job = j;
	struct stat st;
	if (j->fd < 0 && errno == ENOENT) {   /* gone since the scan */
		pickup_job_free(j);
		return pickup_kick(p);
	}
	char why[128];
	snprintf(why, sizeof why, "cannot be opened: %s", strerror(errno));
	if (j->fd < 0)
		return pickup_aside(j, errno == ELOOP ? "a symbolic link" : why);
	if (fstat(j->fd, &st) != 0 || !S_ISREG(st.st_mode))
		return pickup_aside(j, "not a regular file");
	pickup_owner(j, st.st_uid);
	pickup_kick(p);
}

static int pickup_name_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* The directory's files (names not starting with a dot, bad/ excepted),
 * PICKUP_BATCH at most, oldest name first. */
static void pickup_scan(struct pickup *p)
{
	p->nnames = p->next = 0;
	p->rescan = false;
	DIR *d = opendir(p->path);
	if (!d) {
		ev_note(LOG_ERROR, 0, NULL, "pickup: cannot read %s: %s", p->path, strerror(errno));
		p->blocked = true;
		return;
	}
	for (struct dirent *e; (e = readdir(d));) {
		if (e->d_name[0] == '.' || (e->d_type == DT_DIR && !strcmp(e->d_name, MAILDROP_BAD)))
			continue;
		if (p->nnames == PICKUP_BATCH) {
			p->rescan = true;   /* the rest after this batch */
			break;
		}
		snprintf(p->names[p->nnames++], NAME_MAX + 1, "%s", e->d_name);
	}
	closedir(d);
	qsort(p->names, p->nnames, sizeof p->names[0], pickup_name_cmp);
}

static void pickup_step_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct pickup *p = arg;
	if (p->stopping || p->srv->shutting_down)
		return;
	if (p->job)
		return pickup_read(p->job);
	if (p->next == p->nnames && p->rescan && !p->blocked)
		pickup_scan(p);
	if (p->next < p->nnames)
		pickup_open(p, p->names[p->next++]);
}

/* Something was renamed into the directory, or written and closed. */
static void pickup_inotify_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)what;
	struct pickup *p = arg;
	char ev[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	while (read(fd, ev, sizeof ev) > 0)
		;
	p->rescan = true;
	if (!p->job)
		pickup_kick(p);
}

static void pickup_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct pickup *p = arg;
	p->rescan = true;
	p->blocked = false;
	if (!p->job)
		pickup_kick(p);
}

struct pickup *pickup_new(struct server *srv)
{
	struct pickup *p = util_xcalloc(1, sizeof *p);
	struct buf path = BUF_INIT;
	buf_printf(&path, "%s/%s", srv->set->conf.spool_dir, MAILDROP_DIR);
	p->srv = srv;
	p->path = path.data;
	p->bad = p->ino = -1;
	p->dir = open(p->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (p->dir >= 0)
		p->bad = openat(p->dir, MAILDROP_BAD, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (p->bad >= 0)
		p->ino = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (p->ino < 0 || inotify_add_watch(p->ino, p->path, IN_MOVED_TO | IN_CLOSE_WRITE) < 0) {
		ev_note(LOG_ERROR, 0, NULL, "pickup: cannot watch %s: %s", p->path, strerror(errno));
		pickup_free(p);
		return NULL;
	}
	p->names = util_xcalloc(PICKUP_BATCH, sizeof p->names[0]);
	p->ino_ev = event_new(srv->base, p->ino, EV_READ | EV_PERSIST, pickup_inotify_cb, p);
	p->step_ev = event_new(srv->base, -1, 0, pickup_step_cb, p);
	p->timer = event_new(srv->base, -1, EV_PERSIST, pickup_timer_cb, p);
	if (!p->ino_ev || !p->step_ev || !p->timer)
		log_fatal("cannot create events");
	struct timeval every = { PICKUP_RESCAN, 0 };
	event_add(p->ino_ev, NULL);
	event_add(p->timer, &every);
	p->rescan = true;
	pickup_kick(p);
	return p;
}

void pickup_stop(struct pickup *p)
{
	if (!p)
		return;
	p->stopping = true;
	if (p->job && !p->job->committing)
		pickup_job_free(p->job);
}

void pickup_free(struct pickup *p)
{
	if (!p)
		return;
	p->stopping = true;
	if (p->job)
		pickup_job_free(p->job);
	struct event *evs[] = { p->ino_ev, p->step_ev, p->timer };
	for (size_t i = 0; i < sizeof evs / sizeof evs[0]; i++)
		if (evs[i])
			event_free(evs[i]);
	int fds[] = { p->dir, p->bad, p->ino };
	for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(p->names);
	free(p->path);
	free(p);
}
