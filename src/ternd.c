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
#include <malloc.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "deliver/queue.h"
#include "lib/aliases.h"
#include "lib/buf.h"
#include "lib/conf.h"
#include "lib/log.h"
#include "lib/util.h"
#include "net/closer.h"
#include "net/tls.h"
#include "policy/auth.h"
#include "policy/policy.h"
#include "smtpd/listener.h"
#include "smtpd/session.h"
#include "spool/spool.h"

struct ternd {
	struct conf conf;
	struct aliases *aliases;
	struct auth_users *users;
	struct policy policy;
	struct server srv;
	struct listeners *listeners;
	struct queue *queue;
	struct event *spool_ev, *sigterm, *sigint, *grace, *trim;
};

#define TERND_TRIM_EVERY 5   /* seconds between looks at memory after a burst */
#define TERND_TRIM_DROP 32   /* sessions fewer than the peak that count as one */

static void ternd_usage(void)
{
	fprintf(stderr, "usage: ternd [-c FILE] [-o key=value]... [-n]\n"
	                "  -c FILE       read the configuration from FILE (else the embedded defaults)\n"
	                "  -o key=value  override one setting (repeatable)\n"
	                "  -n            check the configuration and exit (0 good, 2 bad)\n"
	                "  -V            print the version\n");
}

static int ternd_override(struct conf *c, const char *kv)
{
	char key[128];
	const char *eq = strchr(kv, '=');
	if (!eq || eq == kv || (size_t)(eq - kv) >= sizeof key) {
		fprintf(stderr, "-o %s: expected key=value\n", kv);
		return 1;
	}
	snprintf(key, sizeof key, "%.*s", (int)(eq - kv), kv);
	char origin[160];
	snprintf(origin, sizeof origin, "-o %s", key);
	return conf_set(c, key, eq + 1, origin);
}

/* Returns the number of problems; -n and -V are reported through *check. */
static int ternd_args(int argc, char **argv, struct ternd *t, bool *check)
{
	const char *file = NULL;
	int bad = 0, opt;
	conf_defaults(&t->conf);
	char **overrides = util_xcalloc((size_t)argc + 1, sizeof *overrides);
	size_t no = 0;
	while ((opt = getopt(argc, argv, "c:o:nVh")) != -1) {
		switch (opt) {
		case 'c': file = optarg; break;
		case 'o': overrides[no++] = optarg; break;
		case 'n': *check = true; break;
		case 'V': printf("ternd %s\n", TERN_VERSION); free(overrides); exit(0);
		default: ternd_usage(); free(overrides); conf_free(&t->conf); exit(2);
		}
	}
	if (optind < argc) {
		ternd_usage();
		bad++;
	}
	if (file)
		bad += conf_load_file(&t->conf, file);
	for (size_t i = 0; i < no; i++)  /* -o wins over the file, whatever the order */
		bad += ternd_override(&t->conf, overrides[i]);
	free(overrides);
	bad += conf_finish(&t->conf);  /* report every problem at once */
	t->aliases = aliases_load(t->conf.aliases_file, &bad);
	t->users = auth_users_load(t->conf.users_file, &bad);
	return bad;
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

static void ternd_grace_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct ternd *t = arg;
	log_warn("sessions still open after the grace period; closing them");
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

static void ternd_signal_cb(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	struct ternd *t = arg;
	if (t->srv.shutting_down)
		return;
	log_info("signal %d: shutting down", (int)sig);
	sd_notifyf(0, "STOPPING=1\nSTATUS=shutting down (signal %d)", (int)sig);
	listener_close(t->listeners);
	t->listeners = NULL;
	struct timeval grace = { 5, 0 };
	evtimer_add(t->grace, &grace);
	session_close_all(&t->srv);
}

static void ternd_events(struct ternd *t)
{
	struct event_base *b = t->srv.base;
	t->spool_ev = event_new(b, -1, 0, ternd_spool_cb, t);
	t->sigterm = evsignal_new(b, SIGTERM, ternd_signal_cb, t);
	t->sigint = evsignal_new(b, SIGINT, ternd_signal_cb, t);
	t->grace = evtimer_new(b, ternd_grace_cb, t);
	t->trim = event_new(b, -1, EV_PERSIST, ternd_trim_cb, t);
	if (!t->spool_ev || !t->sigterm || !t->sigint || !t->grace || !t->trim)
		log_fatal("cannot create events");
	evsignal_add(t->sigterm, NULL);
	evsignal_add(t->sigint, NULL);
	struct timeval every = { TERND_TRIM_EVERY, 0 };
	event_add(t->trim, &every);
}

/* Give spool_dir and its files (queue.db, -wal, -shm) and the top of
 * mail_dir to run_user, as Postfix's set-permissions does, so that a
 * spool written by an earlier root run stays usable. */
static bool ternd_chown_dirs(const struct conf *c, uid_t uid, gid_t gid)
{
	if (chown(c->spool_dir, uid, gid) != 0 || chown(c->mail_dir, uid, gid) != 0)
		return false;
	DIR *d = opendir(c->spool_dir);
	if (!d)
		return false;
	bool ok = true;
	for (struct dirent *e; (e = readdir(d));) {
		if (e->d_name[0] == '.')
			continue;
		ok &= fchownat(dirfd(d), e->d_name, uid, gid, AT_SYMLINK_NOFOLLOW) == 0;
	}
	closedir(d);
	return ok;
}

/* Started as root: look run_user up, hand it the directories. The drop
 * itself waits until the ports are bound (ternd_drop). */
static int ternd_privileges(struct ternd *t, struct passwd *pw, char *buf, size_t n)
{
	struct passwd *res = NULL;
	const struct conf *c = &t->conf;
	if (geteuid() != 0)
		return 0;
	if (getpwnam_r(c->run_user, pw, buf, n, &res) != 0 || !res) {
		log_error("run_user: no such user '%s' (scripts/install-deps creates 'tern')", c->run_user);
		return 2;
	}
	if (pw->pw_uid == 0 || pw->pw_gid == 0) {
		log_error("run_user: '%s' is root; ternd does not run as root", c->run_user);
		return 2;
	}
	if (!ternd_chown_dirs(c, pw->pw_uid, pw->pw_gid)) {
		log_error("cannot give %s and %s to %s: %s", c->spool_dir, c->mail_dir, c->run_user,
		          strerror(errno));
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

static int ternd_start(struct ternd *t)
{
	const struct conf *c = &t->conf;
	if (evthread_use_pthreads() != 0 || !(t->srv.base = event_base_new()))
		log_fatal("cannot initialise libevent");
	t->srv.conf = c;
	policy_init(&t->policy, c, t->aliases, t->users, t->srv.base);
	t->srv.policy = &t->policy;
	t->srv.closer = closer_new(t->srv.base);
	ternd_events(t);
	if (*c->tls_cert && !(t->srv.tls = tls_server_ctx(c->tls_cert, c->tls_key)))
		return 2;  /* read as root: the key may be root's alone */
	if (!c->queue_only && !(t->queue = queue_new(c, &t->policy)))
		return 2;  /* the transport map and CA bundle, likewise */
	if (!util_mkdir_p(c->mail_dir, 0700) || !util_mkdir_p(c->spool_dir, 0700)) {
		log_error("cannot create %s or %s: %s", c->mail_dir, c->spool_dir, strerror(errno));
		return 2;
	}
	struct passwd pw;
	char pwbuf[4096];
	int rc = ternd_privileges(t, &pw, pwbuf, sizeof pwbuf);
	if (rc)
		return rc;
	t->listeners = listener_open(&t->srv);
	if (!t->listeners)
		return 2;
	if ((rc = ternd_drop(c, &pw)) != 0)
		return rc;
	if (!policy_ensure_postmaster(&t->policy))
		log_warn("postmaster_address %s: cannot create its mailbox", c->postmaster_address);
	t->srv.spool = spool_open(c->spool_dir, ternd_spool_notify, t);
	if (!t->srv.spool)
		return 2;
	if (c->queue_only) {
		log_info("queue_only = yes: accepting and spooling, not delivering");
	} else {
		if (!queue_start(t->queue, t->srv.spool))
			return 2;
		spool_set_commit_hook(t->srv.spool, queue_kick, t->queue);
	}
	log_info("ternd %s ready: hostname=%s, spool=%s, mail=%s", TERN_VERSION, c->hostname,
	         c->spool_dir, c->mail_dir);
	ternd_notify_ready(c);
	return 0;
}

static void ternd_stop(struct ternd *t)
{
	session_free_all(&t->srv);
	policy_stop(&t->policy);    /* sessions closed while asking are freed */
	closer_free(t->srv.closer);
	listener_close(t->listeners);
	if (t->srv.spool)
		spool_set_commit_hook(t->srv.spool, NULL, NULL);  /* the queue goes */
	queue_stop(t->queue);
	spool_close(t->srv.spool);  /* runs the last completions */
	struct event *evs[] = { t->spool_ev, t->sigterm, t->sigint, t->grace, t->trim };
	for (size_t i = 0; i < sizeof evs / sizeof evs[0]; i++)
		if (evs[i])
			event_free(evs[i]);
	if (t->srv.base)
		event_base_free(t->srv.base);
	aliases_free(t->aliases);
	auth_users_free(t->users);
	tls_ctx_free(t->srv.tls);
	policy_free(&t->policy);
	conf_free(&t->conf);
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
	mallopt(M_TRIM_THRESHOLD, 16 << 20);
	int bad = ternd_args(argc, argv, &t, &check);
	if (bad || check) {
		if (bad)
			fprintf(stderr, "ternd: %d configuration problem%s\n", bad, bad == 1 ? "" : "s");
		else
			printf("ternd: configuration OK\n");
		aliases_free(t.aliases);
		auth_users_free(t.users);
		conf_free(&t.conf);
		return bad ? 2 : 0;
	}
	signal(SIGPIPE, SIG_IGN);
	log_open(t.conf.log_target);
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
