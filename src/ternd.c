/* ternd: the daemon's entry point. Reads the configuration, opens the spool,
 * starts the delivery thread and the listeners, and runs the event loop
 * until SIGTERM or SIGINT. Exit codes: 0 after a clean stop, 2 for a bad
 * configuration or environment (DESIGN.md's three error levels). Under
 * systemd (Type=notify) it says READY=1 once it listens as run_user and
 * STOPPING=1 when told to stop; without NOTIFY_SOCKET nothing is sent. */
#include <dirent.h>
#include <fcntl.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <grp.h>
#include <limits.h>
#include <malloc.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "control/control.h"
#include "http/http.h"
#include "deliver/queue.h"
#include "lib/aliases.h"
#include "lib/buf.h"
#include "lib/conf.h"
#include "lib/log.h"
#include "lib/util.h"
#include "net/closer.h"
#include "net/dns.h"
#include "net/maildrop.h"
#include "net/post.h"
#include "net/tls.h"
#include "policy/auth.h"
#include "policy/policy.h"
#include "policy/settings.h"
#include "smtpd/listener.h"
#include "smtpd/pickup.h"
#include "smtpd/session.h"
#include "spool/spool.h"
#include "spool/sessions.h"

struct ternd {
	const char *file;           /* -c, or NULL: the embedded defaults */
	char **overrides;           /* -o key=value, in order (a reload applies them again) */
	size_t noverrides;
	struct policy policy;
	struct server srv;          /* srv.set: the settings in force */
	struct listeners *listeners;
	struct queue *queue;
	struct control *control;
	struct http *http;          /* http_listen: the test mode's API and page */
	struct pickup *pickup;
	bool forced;                /* shutdown_grace is over */
	struct event *spool_ev, *sigterm, *sigint, *sighup, *grace, *trim;
};

#define TERND_TRIM_EVERY 5   /* seconds between looks at memory after a burst */
#define TERND_TRIM_DROP 32   /* sessions fewer than the peak that count as one */
#define TERND_FD_SPARE 128   /* descriptors beyond max_connections: listeners, files, milters */

static void ternd_usage(void)
{
	fprintf(stderr, "usage: ternd [-c FILE] [-o key=value]... [-n]\n"
	                "  -c FILE       read the configuration from FILE (else the embedded defaults)\n"
	                "  -o key=value  override one setting (repeatable)\n"
	                "  -n            check the configuration and exit (0 good, 2 bad)\n"
	                "  -V            print the version\n");
}

/* Returns the number of problems; -n and -V are reported through *check. */
static int ternd_args(int argc, char **argv, struct ternd *t, bool *check)
{
	int bad = 0, opt;
	t->overrides = util_xcalloc((size_t)argc + 1, sizeof *t->overrides);
	while ((opt = getopt(argc, argv, "c:o:nVh")) != -1) {
		switch (opt) {
		case 'c': t->file = optarg; break;
		case 'o': t->overrides[t->noverrides++] = optarg; break;
		case 'n': *check = true; break;
		case 'V': printf("ternd %s\n", TERN_VERSION); free(t->overrides); exit(0);
		default: ternd_usage(); free(t->overrides); exit(2);
		}
	}
	if (optind < argc) {
		ternd_usage();
		bad++;
	}
	t->srv.set = settings_load(t->file, t->overrides, t->noverrides, NULL, &bad);
	return bad;
}

/* READY=1 with the listeners in STATUS=, once ternd listens as run_user. */
static void ternd_notify_ready(const struct conf *c)
{
	struct buf b = BUF_INIT;
	for (size_t i = 0; i < c->listen.n; i++)
		buf_printf(&b, "%s%s", i ? ", " : "", c->listen.v[i]);
	sd_notifyf(0, "READY=1\nSTATUS=accepting mail on %s%s", buf_cstr(&b),
	           c->queue_only ? " (queue_only: not delivering)" : "");
	buf_free(&b);
}

/* What odmr_map grants, when there is one (RFC 2645): at start and after
 * each reload, so that an operator sees the file was read. */
static void ternd_say_odmr(const struct settings *st)
{
	if (*st->conf.odmr_map)
		log_info("odmr_map %s: %zu domain(s) may be dequeued with ATRN", st->conf.odmr_map,
		         odmr_map_count(st->odmr));
}

/* The DKIM keys ternd signs with (RFC 6376 5), when there are some: at
 * start and after each reload, "domain/selector (kind)" each. */
static void ternd_say_dkim(const struct settings *st)
{
	size_t n = signkeys_count(st->dkim_keys);
	if (n == 0)
		return;
	struct buf b = BUF_INIT;
	for (size_t i = 0; i < n; i++) {
		const struct signkey *k = signkeys_get(st->dkim_keys, i);
		buf_printf(&b, "%s%s/%s (", i ? ", " : "", k->domain, k->selector);
		if (EVP_PKEY_is_a(k->key, "RSA"))
			buf_printf(&b, "RSA-%d)", EVP_PKEY_get_bits(k->key));
		else
			buf_puts(&b, "Ed25519)");
	}
	log_info("dkim_keys: %s%s", buf_cstr(&b), st->conf.dkim_sign == CONF_DKIM_SIGN_NO ?
	         "; dkim_sign = no: nothing is signed" : "");
	buf_free(&b);
}

/* SIGHUP and ternctl reload: a new generation of the settings, taken by
 * new sessions and by the engine; sessions under way keep theirs. A
 * problem anywhere (problems, when not NULL, gets them) and nothing
 * changes. */
static bool ternd_reload(void *arg, struct buf *problems)
{
	struct ternd *t = arg;
	struct buf mine = BUF_INIT;
	struct buf *into = problems ? problems : &mine;
	int bad = 0;
	sd_notify(0, "RELOADING=1\nSTATUS=reloading the configuration");
	log_problems_collect(into);
	struct settings *st = settings_load(t->file, t->overrides, t->noverrides, t->srv.set, &bad);
	bool ok = st && (!t->queue || queue_reload(t->queue, st, NULL, NULL));
	log_problems_collect(NULL);
	if (!ok) {
		const char *p = buf_cstr(into);
		for (const char *nl; *p; p = nl ? nl + 1 : p + strlen(p)) {
			nl = strchr(p, '\n');
			log_error("reload: %.*s", (int)(nl ? nl - p : (ptrdiff_t)strlen(p)), p);
		}
		log_error("reload refused: the configuration in force stays (generation %u)",
		          t->srv.set->generation);
		settings_unref(st);
		buf_free(&mine);
		ternd_notify_ready(&t->srv.set->conf);
		return false;
	}
	buf_free(&mine);
	settings_unref(t->srv.set);   /* sessions under way hold their own */
	t->srv.set = st;
	log_set_level((enum log_level)log_level_parse(st->conf.log_level));
	if (!policy_ensure_postmaster(st))
		log_warn("postmaster_address %s: cannot create its mailbox", st->conf.postmaster_address);
	log_info("reload: configuration generation %u in force%s%s", st->generation,
	         *st->restart_pending ? "; waiting for a restart: " : "", st->restart_pending);
	ternd_say_odmr(st);
	ternd_say_dkim(st);
	ternd_notify_ready(&st->conf);
	return true;
}

static void ternd_spool_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct ternd *t = arg;
	spool_run_completions(t->srv.spool);
}

/* Called from the spool's writer thread. */
static void ternd_spool_notify(void *arg)
{
	struct ternd *t = arg;
	event_active(t->spool_ev, EV_READ, 0);
}

/* shutdown_grace is over: 421 to the transactions still under way; the
 * loop ends once they are closed, or TERND_LAST_WORD seconds later. */
#define TERND_LAST_WORD 5

static void ternd_grace_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct ternd *t = arg;
	if (!t->forced) {
		log_warn("shutdown_grace (%us) is over: 421 to %u session%s still open",
		         t->srv.set->conf.shutdown_grace, t->srv.nsessions, t->srv.nsessions == 1 ? "" : "s");
		t->forced = true;
		session_close_all(&t->srv, true);
		struct timeval last = { TERND_LAST_WORD, 0 };
		evtimer_add(t->grace, &last);
		return;
	}
	log_warn("sessions still open %ds after their 421; closing them", TERND_LAST_WORD);
	event_base_loopbreak(t->srv.base);
}

/* Give memory back once a burst is over. The mallopt() thresholds of
 * main() keep freed message buffers in the heap, which is what makes them
 * cheap to reuse under load; when the number of sessions has fallen well
 * below its peak, malloc_trim() returns the free pages of every arena
 * (the sessions', the spool writer's, the delivery thread's) to the
 * system. */
static void ternd_trim_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct ternd *t = arg;
	struct server *srv = &t->srv;
	if (srv->peak_sessions >= srv->nsessions + TERND_TRIM_DROP ||
	    (srv->nsessions == 0 && srv->peak_sessions > 0)) {
		malloc_trim(0);
		log_debug("memory: gave free pages back (sessions %u, peak %u)", srv->nsessions,
		          srv->peak_sessions);
		srv->peak_sessions = srv->nsessions;
	}
}

static void ternd_signal_cb(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	struct ternd *t = arg;
	if (sig == SIGHUP && !t->srv.shutting_down) {
		log_info("signal %d: reloading the configuration", (int)sig);
		ternd_reload(t, NULL);
		return;
	}
	if (t->srv.shutting_down)
		return;
	log_info("signal %d: shutting down; transactions under way have %us to finish", (int)sig,
	         t->srv.set->conf.shutdown_grace);
	sd_notifyf(0, "STOPPING=1\nSTATUS=shutting down (signal %d)", (int)sig);
	listener_close(t->listeners);
	t->listeners = NULL;
	http_stop(t->http);   /* waits and event streams answered while the loop runs */
	struct timeval grace = { (time_t)t->srv.set->conf.shutdown_grace, 0 };
	evtimer_add(t->grace, &grace);
	session_close_all(&t->srv, false);
}

static void ternd_events(struct ternd *t)
{
	struct event_base *b = t->srv.base;
	t->spool_ev = event_new(b, -1, 0, ternd_spool_cb, t);
	t->sigterm = evsignal_new(b, SIGTERM, ternd_signal_cb, t);
	t->sigint = evsignal_new(b, SIGINT, ternd_signal_cb, t);
	t->sighup = evsignal_new(b, SIGHUP, ternd_signal_cb, t);
	t->grace = evtimer_new(b, ternd_grace_cb, t);
	t->trim = event_new(b, -1, EV_PERSIST, ternd_trim_cb, t);
	if (!t->spool_ev || !t->sigterm || !t->sigint || !t->sighup || !t->grace || !t->trim)
		log_fatal("cannot create events");
	evsignal_add(t->sigterm, NULL);
	evsignal_add(t->sigint, NULL);
	evsignal_add(t->sighup, NULL);
	struct timeval every = { TERND_TRIM_EVERY, 0 };
	event_add(t->trim, &every);
}

/* Give spool_dir and its files (queue.db, -wal, -shm) and the top of
 * mail_dir to run_user, as Postfix's set-permissions does, so that a
 * spool written by an earlier root run stays usable. spool_dir is 0711:
 * the maildrop group and control_group pass through it to maildrop/
 * (1730) and the control socket (0660) and can list nothing; the files in
 * it are run_user's alone (0600, and umask 077 for new ones). */
static bool ternd_chown_dirs(const struct conf *c, uid_t uid, gid_t gid)
{
	/* each mode before the owner: once a file is run_user's, changing its
	 * mode would need CAP_FOWNER, which the unit's bounding set leaves out */
	if (chmod(c->spool_dir, 0711) != 0 || chown(c->spool_dir, uid, gid) != 0 ||
	    chown(c->mail_dir, uid, gid) != 0)
		return false;
	DIR *d = opendir(c->spool_dir);
	if (!d)
		return false;
	bool ok = true;
	for (struct dirent *e; (e = readdir(d));) {
		if (e->d_name[0] == '.')
			continue;
		if (e->d_type == DT_REG)   /* queue.db and its companions of an older run */
			ok &= fchmodat(dirfd(d), e->d_name, 0600, 0) == 0;
		ok &= fchownat(dirfd(d), e->d_name, uid, gid, AT_SYMLINK_NOFOLLOW) == 0;
	}
	closedir(d);
	return ok;
}

/* Started as root: look run_user up, hand it the directories. The drop
 * itself waits until the ports are bound (ternd_drop). */
static int ternd_privileges(struct ternd *t, struct passwd *pw, char *buf, size_t n,
                            gid_t *ctl_gid)
{
	struct passwd *res = NULL;
	const struct conf *c = &t->srv.set->conf;
	if (geteuid() != 0) {
		pw->pw_uid = geteuid();
		pw->pw_gid = getegid();
		return control_group_gid(c->control_group, pw->pw_gid, ctl_gid) ? 0 : 3;
	}
	if (getpwnam_r(c->run_user, pw, buf, n, &res) != 0 || !res) {
		log_error("run_user: no such user '%s' (scripts/install-deps creates 'tern')", c->run_user);
		return 2;
	}
	if (pw->pw_uid == 0 || pw->pw_gid == 0) {
		log_error("run_user: '%s' is root; ternd does not run as root", c->run_user);
		return 2;
	}
	if (!control_group_gid(c->control_group, pw->pw_gid, ctl_gid))
		return 3;
	if (!ternd_chown_dirs(c, pw->pw_uid, pw->pw_gid)) {
		log_error("cannot give %s and %s to %s: %s", c->spool_dir, c->mail_dir, c->run_user,
		          strerror(errno));
		return 2;
	}
	return 0;
}

/* spool_dir/maildrop and maildrop/bad (net/maildrop.h). As root (pw set):
 * maildrop run_user:maildrop_group mode 1730 (the group, a setgid
 * tern-sendmail, may add files and list nothing), bad/ run_user's alone;
 * spool_dir lets it pass (ternd_chown_dirs). */
static int ternd_maildrop(const struct conf *c, const struct passwd *pw)
{
	char drop[PATH_MAX], bad[PATH_MAX + sizeof MAILDROP_BAD + 1];
	snprintf(drop, sizeof drop, "%s/%s", c->spool_dir, MAILDROP_DIR);
	snprintf(bad, sizeof bad, "%s/%s", drop, MAILDROP_BAD);
	if (!util_mkdir_p(bad, 0700) || chmod(drop, MAILDROP_MODE) != 0) {
		log_error("cannot create %s: %s", bad, strerror(errno));
		return 2;
	}
	if (!pw)
		return 0;
	gid_t group = pw->pw_gid;
	struct group gr, *res = NULL;
	char buf[4096];
	if (getgrnam_r(c->maildrop_group, &gr, buf, sizeof buf, &res) == 0 && res)
		group = gr.gr_gid;
	else
		log_warn("maildrop_group: no group '%s' (scripts/add-user creates tern-drop); "
		         "only root and %s can leave mail in %s", c->maildrop_group, c->run_user, drop);
	if (chmod(drop, MAILDROP_MODE) != 0 || chown(drop, pw->pw_uid, group) != 0 ||
	    chmod(bad, 0700) != 0 || chown(bad, pw->pw_uid, pw->pw_gid) != 0) {
		log_error("cannot set the owners and modes of %s: %s", drop, strerror(errno));
		return 2;
	}
	return 0;
}

/* setgroups, setgid, setuid, then prove that root cannot come back. */
static int ternd_drop(const struct conf *c, const struct passwd *pw)
{
	if (geteuid() != 0)
		return 0;
	gid_t gid = pw->pw_gid;
	if (setgroups(1, &gid) != 0 || setgid(gid) != 0 || setuid(pw->pw_uid) != 0) {
		log_error("cannot become %s: %s", c->run_user, strerror(errno));
		return 2;
	}
	if (setuid(0) == 0 || seteuid(0) == 0 || getuid() == 0 || geteuid() == 0 ||
	    getgid() == 0 || getegid() == 0)
		log_fatal("still root after dropping to %s; refusing to run", c->run_user);
#if defined(__SANITIZE_ADDRESS__) || defined(__has_feature)
#if defined(__SANITIZE_ADDRESS__) || __has_feature(address_sanitizer)
	/* LeakSanitizer's exit check needs to ptrace its own threads, which a
	 * process that changed uid may not do: sanitizer builds only. */
	prctl(PR_SET_DUMPABLE, 1);
#endif
#endif
	log_info("running as %s (uid %d, gid %d)", c->run_user, (int)pw->pw_uid, (int)gid);
	return 0;
}

/* The port through which sessions ask the engine for held mail (smtpd
 * and deliver never include each other). */
static void ternd_release(void *q, const struct hold_release *rel)
{
	queue_release(q, rel);
}

static struct hold_conduit *ternd_conduit_new(void *q, const char *name)
{
	return queue_conduit_new(q, name);
}

static void ternd_conduit_attach(void *q, struct hold_conduit *c, struct closer_taken *t)
{
	queue_conduit_attach(q, c, t);
}

static void ternd_fd_map_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

/* libevent keeps a small entry for each descriptor number a loop has
 * watched, made the first time and kept for the loop's life. Made in a
 * burst of connections, each sits among the sessions' buffers and pins
 * its page once they are freed (malloc_trim cannot give it back: about
 * 4 KB per peak connection, docs/RELIABILITY.md). Made here, before any
 * other thread runs, for every free number up to max_connections and
 * some (a socket dup'ed there, watched, unwatched, closed), they sit
 * together at the start of the heap. */
static void ternd_fd_map(struct event_base *base, unsigned nconn)
{
	struct rlimit rl;
	int sv[2];
	long upto = (long)nconn + TERND_FD_SPARE;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    (long)rl.rlim_cur - 1 < upto)
		upto = (long)rl.rlim_cur - 1;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
		return;
	for (int fd = 0; fd <= upto; fd++) {
		if (fcntl(fd, F_GETFD) != -1 || dup3(sv[0], fd, O_CLOEXEC) < 0)
			continue;   /* in use, or none to be had */
		struct event *ev = event_new(base, fd, EV_READ, ternd_fd_map_cb, NULL);
		if (ev) {
			if (event_add(ev, NULL) == 0)
				event_del(ev);
			event_free(ev);
		}
		close(fd);
	}
	close(sv[0]);
	close(sv[1]);
}

static int ternd_start(struct ternd *t)
{
	const struct conf *c = &t->srv.set->conf;
	log_set_level((enum log_level)log_level_parse(c->log_level));
	if (evthread_use_pthreads() != 0 || !(t->srv.base = event_base_new()))
		log_fatal("cannot initialise libevent");
	ternd_fd_map(t->srv.base, c->max_connections);
	policy_init(&t->policy, t->srv.base, c->dns_resolver);
	t->srv.policy = &t->policy;
	t->srv.closer = closer_new(t->srv.base);
	t->srv.post = post_new(t->srv.base);
	ternd_events(t);
	/* the TLS key was read with the rest of the settings, as root: it may
	 * be root's alone (a reload reads it as run_user) */
	if (!c->queue_only && !(t->queue = queue_new(t->srv.set)))
		return 2;  /* the transport map and CA bundle, likewise */
	if (!util_mkdir_p(c->mail_dir, 0700) || !util_mkdir_p(c->spool_dir, 0700)) {
		log_error("cannot create %s or %s: %s", c->mail_dir, c->spool_dir, strerror(errno));
		return 2;
	}
	struct passwd pw;
	char pwbuf[4096];
	gid_t ctl_gid;
	int rc = ternd_privileges(t, &pw, pwbuf, sizeof pwbuf, &ctl_gid);
	if (rc == 3) {
		log_error("control_group: no such group '%s'", c->control_group);
		return 2;
	}
	if (rc || (rc = ternd_maildrop(c, geteuid() == 0 ? &pw : NULL)) != 0)
		return rc;
	t->listeners = listener_open(&t->srv);
	if (!t->listeners)
		return 2;
	struct control_env env = { .srv = &t->srv, .queue = t->queue, .reload = ternd_reload,
	                           .reload_ctx = t, .started = (int64_t)time(NULL) };
	if (!(t->control = control_open(&env, pw.pw_uid, ctl_gid)))
		return 2;
	struct http_env henv = { .srv = &t->srv, .control = t->control, .started = env.started };
	if (!(t->http = http_open(&henv)))
		return 2;
	if ((rc = ternd_drop(c, &pw)) != 0)
		return rc;
	if (!policy_ensure_postmaster(t->srv.set))
		log_warn("postmaster_address %s: cannot create its mailbox", c->postmaster_address);
	t->srv.spool = spool_open(c->spool_dir, ternd_spool_notify, t);
	if (!t->srv.spool)
		return 2;
	/* run_user's, like the spool: spool_dir/sessions.db; the test mode
	 * records every session */
	if ((c->transcripts || c->capture) && !(t->srv.transcripts = sessions_open(c->spool_dir, t->srv.base)))
		return 2;
	t->pickup = pickup_new(&t->srv);
	/* the sessions' DKIM keys and DMARC records: the policy's resolver */
	t->srv.dns = t->policy.dns;
	if (c->queue_only) {
		log_info("queue_only = yes: accepting and spooling, not delivering");
	} else {
		if (!queue_start(t->queue, t->srv.spool))
			return 2;
		spool_set_commit_hook(t->srv.spool, queue_kick, t->queue);
		t->srv.hold = (struct hold_port){ ternd_release, ternd_conduit_new, ternd_conduit_attach,
		                                  t->queue };
	}
	if (!control_start(t->control) || !http_start(t->http))
		return 2;
	ternd_say_odmr(t->srv.set);
	ternd_say_dkim(t->srv.set);
	log_info("ternd %s ready: hostname=%s, spool=%s, mail=%s", TERN_VERSION, c->hostname,
	         c->spool_dir, c->mail_dir);
	ternd_notify_ready(c);
	return 0;
}

static void ternd_stop(struct ternd *t)
{
	session_free_all(&t->srv);
	policy_stop(&t->policy);    /* sessions closed while asking are freed; the
	                               resolver goes, with srv.dns */
	t->srv.dns = NULL;
	control_close(t->control);  /* its clients' sockets go through the closer */
	http_stop(t->http);         /* waits and streams answered */
	sessions_close(t->srv.transcripts);   /* every session has recorded its end */
	t->srv.transcripts = NULL;
	closer_free(t->srv.closer);
	listener_close(t->listeners);
	if (t->srv.spool)
		spool_set_commit_hook(t->srv.spool, NULL, NULL);  /* the queue goes */
	queue_stop(t->queue);
	t->srv.hold.engine = NULL;  /* answers still posted free what they hold */
	pickup_stop(t->pickup);     /* a file half read stays for the next start */
	http_free(t->http);         /* its reader, before the spool */
	spool_close(t->srv.spool);  /* runs the last completions */
	control_free(t->control);   /* nothing answers or emits any more */
	pickup_free(t->pickup);     /* after its last commit's completion */
	post_free(t->srv.post);     /* the engine's last answers: sessions freed */
	struct event *evs[] = { t->spool_ev, t->sigterm, t->sigint, t->sighup, t->grace, t->trim };
	for (size_t i = 0; i < sizeof evs / sizeof evs[0]; i++)
		if (evs[i])
			event_free(evs[i]);
	if (t->srv.base)
		event_base_free(t->srv.base);
	policy_free(&t->policy);
	settings_unref(t->srv.set);
	free(t->overrides);
	libevent_global_shutdown();
}

int main(int argc, char **argv)
{
	static struct ternd t;
	bool check = false;
	/* Message buffers (up to 8 x 64 KiB per session, the writer's batches)
	 * come from the heap and go back to it: above glibc's default 128 KiB
	 * mmap threshold each one was a fresh mapping, page-faulted and zeroed
	 * again, then unmapped. */
	mallopt(M_MMAP_THRESHOLD, 4 << 20);
	umask(077);   /* the spool, its database and body files: run_user's alone */
	mallopt(M_TRIM_THRESHOLD, 16 << 20);
	int bad = ternd_args(argc, argv, &t, &check);
	if (bad || check) {
		if (bad)
			fprintf(stderr, "ternd: %d configuration problem%s\n", bad, bad == 1 ? "" : "s");
		else
			printf("ternd: configuration OK\n");
		settings_unref(t.srv.set);
		free(t.overrides);
		return bad ? 2 : 0;
	}
	signal(SIGPIPE, SIG_IGN);
	log_open(t.srv.set->conf.log_target);
	int rc = ternd_start(&t);
	if (rc == 0)
		event_base_dispatch(t.srv.base);
	else
		sd_notify(0, "STATUS=start-up failed (see the log)");
	ternd_stop(&t);
	if (rc == 0)
		log_info("stopped");
	log_close();
	return rc;
}
