/* tern-sendmail: the sendmail(8) interface of tern, for the programs that
 * run /usr/sbin/sendmail (PHP's mail(), cron, git send-email, mailx,
 * Symfony and Laravel, busybox). Installed as /usr/sbin/sendmail, mailq
 * and newaliases (make install-sendmail), the mode follows the name.
 *
 *   sendmail [flags] [rcpt...]   the message on standard input goes to
 *                                spool_dir/maildrop (submit.c), where
 *                                ternd takes it (smtpd/pickup.c), now or
 *                                when it next starts
 *   sendmail -bs                 an SMTP session on standard input and
 *                                output: relayed to ternd's first plain
 *                                listener, so the session's own state
 *                                machine answers; EX_UNAVAILABLE when
 *                                ternd is not running
 *   mailq, -bp; -q, -qR site     run `ternctl queue` / `ternctl flush
 *                                [site]` from the directory of this
 *                                program: the spool is ternd's (tools/
 *                                may not read it); EX_UNAVAILABLE without
 *                                ternctl
 *   newaliases, -bi, -I          nothing to build: ternd reads
 *                                aliases_file itself
 *
 * The configuration: -C FILE (as sendmail's own flag), else
 * /etc/tern/tern.conf, else the embedded defaults; it gives spool_dir,
 * hostname, the limits and the listeners.
 *
 * Privileges: installed setgid maildrop_group (make install), it runs
 * with the caller's own group (the configuration, given by the caller,
 * is read as the caller may read it) and takes the maildrop's group back
 * only to make its file; the other modes give it up for good first.
 *
 * Exit codes are <sysexits.h>'s; every message on stderr starts
 * "tern-sendmail: ".
 */
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sysexits.h>
#include <unistd.h>

#include "lib/conf.h"
#include "lib/util.h"
#include "tools/sendmail/args.h"
#include "tools/sendmail/submit.h"

#define MAIN_CONF "/etc/tern/tern.conf"

#if defined(__SANITIZE_ADDRESS__) || defined(__has_feature)
#if defined(__SANITIZE_ADDRESS__) || __has_feature(address_sanitizer)
#include <sys/prctl.h>
/* LeakSanitizer cannot stop a process that may not be dumped (a setgid
 * one), nor read its options then: sanitizer builds only, and leaks are
 * still checked in every run that is not setgid. */
int __lsan_is_turned_off(void);
int __lsan_is_turned_off(void)
{
	return prctl(PR_GET_DUMPABLE) == 0;
}
#endif
#endif

static void main_usage(void)
{
	fprintf(stderr,
	        "usage: sendmail [-t] [-i] [-f sender] [-F name] [-C file] [-B 7BIT|8BITMIME]\n"
	        "                [-N never|success,failure,delay] [-R full|hdrs] [-V envid] [rcpt...]\n"
	        "       sendmail -bs | -bp | -bi | -q | -qR site   (mailq, newaliases)\n");
}

/* The configuration, read with the caller's own group. */
static int main_config(const struct args *a, struct conf *c)
{
	conf_defaults(c);
	const char *file = a->config ? a->config : MAIN_CONF;
	int bad = 0;
	if (a->config || access(file, F_OK) == 0)
		bad = conf_load_file(c, file);
	bad += conf_finish(c);
	if (bad)
		fprintf(stderr, "tern-sendmail: %s: %d configuration problem%s\n", file, bad,
		        bad == 1 ? "" : "s");
	return bad ? EX_CONFIG : 0;
}

/* The modes but sending keep no group of the maildrop's. */
static int main_drop_group(void)
{
	gid_t g = getgid();
	if (setresgid(g, g, g) != 0) {
		fprintf(stderr, "tern-sendmail: setresgid: %s\n", strerror(errno));
		return EX_OSERR;
	}
	return 0;
}

/* ---- -bs ---- */

/* The first listener without modes (not submission, smtps, starttls or
 * proxy), connected; -1 when there is none or nothing answers. */
static int main_connect(const struct conf *c, char *where, size_t n)
{
	snprintf(where, n, "no plain listen address in the configuration");
	for (size_t i = 0; i < c->listen.n; i++) {
		char addr[300], host[256];
		unsigned modes, port;
		if (!conf_listen_parse(c->listen.v[i], addr, sizeof addr, &modes) || modes ||
		    !util_hostport(addr, host, sizeof host, &port))
			continue;
		if (!strcmp(host, "0.0.0.0") || !strcmp(host, "::"))
			snprintf(host, sizeof host, "%s", host[0] == ':' ? "::1" : "127.0.0.1");
		char serv[8];
		snprintf(serv, sizeof serv, "%u", port);
		snprintf(where, n, "nothing answers on %s", addr);
		struct addrinfo hints = { .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV,
		                          .ai_socktype = SOCK_STREAM }, *ai;
		if (getaddrinfo(host, serv, &hints, &ai) != 0)
			return -1;
		int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
			close(fd);
			fd = -1;
		}
		freeaddrinfo(ai);
		return fd;
	}
	return -1;
}

/* Copy what one side has to the other; false at its end. */
static bool main_pass(int from, int to, bool *failed)
{
	char buf[16384];
	ssize_t r = read(from, buf, sizeof buf);
	if (r < 0 && errno == EINTR)
		return true;
	if (r <= 0) {
		*failed = r < 0;
		return false;
	}
	if (!util_write_all(to, buf, (size_t)r)) {
		*failed = true;
		return false;
	}
	return true;
}

/* Bytes both ways until ternd closes (after QUIT, or a timeout). */
static int main_smtp(const struct conf *c)
{
	char where[400];
	int fd = main_connect(c, where, sizeof where);
	if (fd < 0) {
		fprintf(stderr, "tern-sendmail: -bs: ternd is not running (%s)\n", where);
		return EX_UNAVAILABLE;
	}
	signal(SIGPIPE, SIG_IGN);
	struct pollfd p[2] = { { 0, POLLIN, 0 }, { fd, POLLIN, 0 } };
	bool failed = false;
	for (;;) {
		if (poll(p, 2, -1) < 0 && errno != EINTR)
			break;
		if (p[1].revents && !main_pass(fd, 1, &failed))
			break;   /* ternd closed: the session is over */
		if (p[0].revents && !main_pass(0, fd, &failed)) {
			if (failed)
				break;
			shutdown(fd, SHUT_WR);   /* the client is done; ternd answers the rest */
			p[0].fd = -1;
		}
	}
	close(fd);
	return failed ? EX_IOERR : 0;
}

/* ---- mailq, -q ---- */

/* Run ternctl from this program's directory with cmd (and its argument). */
static int main_ternctl(const struct args *a, const char *cmd, const char *arg)
{
	char self[PATH_MAX], path[PATH_MAX + 16];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	self[n > 0 ? n : 0] = '\0';
	char *slash = strrchr(self, '/');
	if (slash)
		*slash = '\0';
	snprintf(path, sizeof path, "%s/ternctl", self);
	if (n <= 0 || access(path, X_OK) != 0) {
		fprintf(stderr, "tern-sendmail: %s runs ternctl, which is not installed beside %s\n",
		        arg || strcmp(cmd, "queue") ? "-q" : "mailq", self);
		return EX_UNAVAILABLE;
	}
	char *argv[6];
	int i = 0;
	argv[i++] = (char *)"ternctl";
	if (a->config) {
		argv[i++] = (char *)"-c";
		argv[i++] = (char *)a->config;
	}
	argv[i++] = (char *)cmd;
	if (arg)
		argv[i++] = (char *)arg;
	argv[i] = NULL;
	execv(path, argv);
	fprintf(stderr, "tern-sendmail: %s: %s\n", path, strerror(errno));
	return EX_OSERR;
}

int main(int argc, char **argv)
{
	gid_t drop_gid = getegid();
	if (setegid(getgid()) != 0) {
		fprintf(stderr, "tern-sendmail: setegid: %s\n", strerror(errno));
		return EX_OSERR;
	}
	struct args a;
	char err[256];
	int rc = args_parse(argc, argv, &a, err, sizeof err);
	if (rc) {
		fprintf(stderr, "tern-sendmail: %s\n", err);
		main_usage();
		return rc;
	}
	if (a.mode != ARGS_SEND && (rc = main_drop_group()) != 0)
		return rc;
	struct conf c;
	if ((rc = main_config(&a, &c)) != 0) {
		conf_free(&c);
		return rc;
	}
	switch (a.mode) {
	case ARGS_SEND: rc = submit_run(&a, &c, drop_gid); break;
	case ARGS_SMTP: rc = main_smtp(&c); break;
	case ARGS_QUEUE: rc = main_ternctl(&a, "queue", NULL); break;
	case ARGS_FLUSH: rc = main_ternctl(&a, "flush", a.site); break;
	case ARGS_ALIASES:
		printf("tern-sendmail: newaliases: nothing to build: ternd reads %s itself when "
		       "it starts\n", *c.aliases_file ? c.aliases_file : "aliases_file (not set)");
		break;
	}
	conf_free(&c);
	return rc;
}
