/* ternctl: the operator's command line to a running ternd, over its
 * control socket (control_socket in tern.conf; JSON lines, see
 * src/control/control.h). A human table by default; --json passes the
 * daemon's JSON lines through (queue: one message per line, with
 * Postfix's `postqueue -j` member names).
 *
 * Exit status (<sysexits.h>): 0 done; 1 the daemon refused the command
 * (its reason on stderr); 64 usage; 69 no daemon on the socket; 77 not
 * allowed to connect; 70 a reply that is not JSON; 75 a drain that left
 * mail here (deferred or failed at the other node).
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "lib/conf.h"
#include "lib/util.h"
#include "tools/ctl/keygen.h"

#define CTL_DEFAULT_CONF "/etc/tern/tern.conf"

struct ctl {
	FILE *in, *out;      /* the socket, read and written */
	bool json;
	const char *socket;
	char *line;          /* the last line received, as it came */
	size_t cap, len;
};

struct ctl_opts {
	const char *domain, *sender, *state;    /* queue (domain: drain too) */
	const char *to;                         /* drain */
	const char *client, *queue_id;          /* trace */
	long session;
	bool transcript;
	struct keygen_opts keygen;              /* dkim-keygen */
};

/* ---- the socket ---- */

static int ctl_connect(struct ctl *c)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	if (strlen(c->socket) >= sizeof sun.sun_path) {
		fprintf(stderr, "ternctl: %s: path too long for a unix socket\n", c->socket);
		return EX_USAGE;
	}
	memcpy(sun.sun_path, c->socket, strlen(c->socket) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof sun) != 0) {
		int e = errno;
		fprintf(stderr, "ternctl: cannot connect to %s: %s\n", c->socket, strerror(e));
		if (e == EACCES || e == EPERM) {
			fprintf(stderr, "ternctl: only root, run_user and control_group may use it\n");
			return EX_NOPERM;
		}
		fprintf(stderr, "ternctl: is ternd running? (control_socket in tern.conf, -c FILE)\n");
		return EX_UNAVAILABLE;
	}
	int fd2 = dup(fd);
	c->in = fd2 >= 0 ? fdopen(fd2, "r") : NULL;
	c->out = fdopen(fd, "w");
	if (!c->in || !c->out) {
		perror("ternctl");
		return EX_OSERR;
	}
	return 0;
}

static void ctl_send(struct ctl *c, json_t *req)
{
	char *s = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	fprintf(c->out, "%s\n", s ? s : "{}");
	fflush(c->out);
	free(s);
}

/* The next line from the daemon into c->line; false with *rc set at the
 * end. */
static bool ctl_read(struct ctl *c, int *rc)
{
	ssize_t n = getline(&c->line, &c->cap, c->in);
	if (n <= 0) {
		fprintf(stderr, "ternctl: the daemon closed the connection\n");
		*rc = EX_UNAVAILABLE;
		return false;
	}
	c->len = (size_t)n;
	return true;
}

/* The line read, as JSON; NULL with *rc set on garbage. */
static json_t *ctl_parse(struct ctl *c, int *rc)
{
	json_error_t err;
	json_t *o = json_loadb(c->line, c->len, 0, &err);
	if (!o || !json_is_object(o)) {
		fprintf(stderr, "ternctl: not a JSON reply: %s\n", o ? "not an object" : err.text);
		json_decref(o);
		*rc = EX_SOFTWARE;
		return NULL;
	}
	return o;
}

/* The next line from the daemon, as JSON; NULL with *rc set at the end
 * or on garbage. */
static json_t *ctl_recv(struct ctl *c, int *rc)
{
	return ctl_read(c, rc) ? ctl_parse(c, rc) : NULL;
}

/* --json: the line as the daemon sent it; flushed at once unless more
 * lines follow straight away (a listing's, flushed at exit: a write per
 * line cost a listing of a deep queue a system call per message). */
static void ctl_echo(const struct ctl *c, bool flush)
{
	if (c->json) {
		fwrite(c->line, 1, c->len, stdout);
		if (flush)
			fflush(stdout);
	}
}

/* A final reply: {"ok": true, ...} gives 0, {"ok": false, "error"} 1. */
static int ctl_result(json_t *o)
{
	if (json_is_true(json_object_get(o, "ok")))
		return 0;
	json_t *e = json_object_get(o, "error"), *line;
	size_t i;
	fprintf(stderr, "ternctl: %s\n", json_is_string(e) ? json_string_value(e) : "refused");
	json_array_foreach(json_object_get(o, "problems"), i, line)
		fprintf(stderr, "%s\n", json_string_value(line));
	return 1;
}

/* One request, one reply. The reply is returned for printing (NULL when it
 * failed, with *rc set). */
static json_t *ctl_call(struct ctl *c, json_t *req, int *rc)
{
	ctl_send(c, req);
	json_t *o = ctl_recv(c, rc);
	if (o)
		ctl_echo(c, true);
	if (o && (*rc = ctl_result(o)) != 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* ---- printing ---- */

static const char *ctl_s(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	return json_is_string(v) ? json_string_value(v) : "";
}

static json_int_t ctl_i(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	return json_is_integer(v) ? json_integer_value(v) : 0;
}

static void ctl_time(json_int_t t, char *out, size_t n)
{
	time_t tt = (time_t)t;
	struct tm tm;
	if (t <= 0 || !localtime_r(&tt, &tm) || !strftime(out, n, "%Y-%m-%d %H:%M:%S", &tm))
		snprintf(out, n, "-");
}

/* "45s", "12m", "3h", "2d" */
static void ctl_age(json_int_t secs, char *out, size_t n)
{
	if (secs < 0)
		secs = 0;
	if (secs < 120)
		snprintf(out, n, "%llds", (long long)secs);
	else if (secs < 7200)
		snprintf(out, n, "%lldm", (long long)secs / 60);
	else if (secs < 172800)
		snprintf(out, n, "%lldh", (long long)secs / 3600);
	else
		snprintf(out, n, "%lldd", (long long)secs / 86400);
}

/* One message per line: id, state, size, age, attempts, sender, the
 * recipients, and the last reply of the first one that has one. */
static void ctl_print_msg(json_t *m)
{
	json_t *rs = json_object_get(m, "recipients"), *r;
	size_t i;
	json_int_t attempts = 0;
	const char *why = "";
	char age[24];
	ctl_age((json_int_t)time(NULL) - ctl_i(m, "arrival_time"), age, sizeof age);
	printf("%-16s  %-8s  %8lld  %4s  ", ctl_s(m, "queue_id"), ctl_s(m, "queue_name"),
	       (long long)ctl_i(m, "message_size"), age);
	json_array_foreach(rs, i, r) {
		if (ctl_i(r, "attempts") > attempts)
			attempts = ctl_i(r, "attempts");
		if (!*why)
			why = ctl_s(r, "last_reply");
	}
	printf("%3lld  <%s>", (long long)attempts, ctl_s(m, "sender"));
	json_array_foreach(rs, i, r)
		printf("%s%s", i ? ", " : " -> ", ctl_s(r, "address"));
	if (*why)
		printf("  (%s)", why);
	putchar('\n');
}

/* A held domain as a line: "held.test: 3 recipients in 2 messages (hold_domains)". */
static void ctl_print_held_one(json_t *h, const char *lead)
{
	json_int_t r = ctl_i(h, "recipients"), m = ctl_i(h, "messages");
	bool conf = json_is_true(json_object_get(h, "configured"));
	bool op = json_is_true(json_object_get(h, "operator"));
	printf("%s%s: %lld recipient%s", lead, ctl_s(h, "domain"), (long long)r, r == 1 ? "" : "s");
	if (r)
		printf(" in %lld message%s", (long long)m, m == 1 ? "" : "s");
	if (conf || op)
		printf(" (%s%s%s)", conf ? "hold_domains" : "", conf && op ? ", " : "",
		       op ? "ternctl hold" : "");
	putchar('\n');
}

/* A listing's message lines begin so (control/ctl_cmd.c's ctl_queue_msg
 * puts queue_name first); the end line, {..., "ok": ...}, never does. */
#define CTL_MSG "{\"queue_name\":"
#define CTL_MSG_LEN (sizeof CTL_MSG - 1)

static int ctl_queue(struct ctl *c, const struct ctl_opts *o)
{
	json_t *req = json_pack("{s:s}", "cmd", "queue");
	if (o->domain)
		json_object_set_new(req, "domain", json_string(o->domain));
	if (o->sender)
		json_object_set_new(req, "sender", json_string(o->sender));
	if (o->state)
		json_object_set_new(req, "state", json_string(o->state));
	ctl_send(c, req);
	bool header = false;
	for (;;) {
		int rc = 0;
		if (!ctl_read(c, &rc))
			return rc;
		if (c->json && c->len > CTL_MSG_LEN && !memcmp(c->line, CTL_MSG, CTL_MSG_LEN)) {
			ctl_echo(c, false);   /* a message's line, passed on unparsed */
			continue;
		}
		json_t *m = ctl_parse(c, &rc);
		if (!m)
			return rc;
		if (json_object_get(m, "ok")) {   /* the end (not shown: postqueue -j has none) */
			rc = ctl_result(m);
			if (!rc && !c->json) {
				json_int_t n = ctl_i(m, "count");
				json_t *h;
				size_t i;
				json_array_foreach(json_object_get(m, "held_domains"), i, h)
					ctl_print_held_one(h, "-- held for ");
				if (n == 0)
					printf("Mail queue is empty\n");
				else
					printf("-- %lld message%s\n", (long long)n, n == 1 ? "" : "s");
			}
			json_decref(m);
			return rc;
		}
		ctl_echo(c, false);
		if (!c->json) {
			if (!header)
				printf("%-16s  %-8s  %8s  %4s  %3s  %s\n", "QUEUE ID", "STATE", "SIZE",
				       "AGE", "TRY", "SENDER -> RECIPIENTS  (LAST REPLY)");
			header = true;
			ctl_print_msg(m);
		}
		json_decref(m);
	}
}

static void ctl_print_show(json_t *o)
{
	char when[32];
	json_t *rs = json_object_get(o, "recipients"), *hs = json_object_get(o, "attempts"), *r;
	size_t i, j;
	ctl_time(ctl_i(o, "arrival_time"), when, sizeof when);
	printf("queue id:  %s\narrived:   %s\nsize:      %lld\nsender:    <%s>\n",
	       ctl_s(o, "queue_id"), when, (long long)ctl_i(o, "message_size"), ctl_s(o, "sender"));
	printf("client:    %s (HELO %s)\n", ctl_s(o, "client"), ctl_s(o, "helo"));
	if (*ctl_s(o, "envid"))
		printf("envid:     %s\n", ctl_s(o, "envid"));
	json_array_foreach(rs, i, r) {
		printf("recipient: <%s>", ctl_s(r, "address"));
		if (strcmp(ctl_s(r, "orig_address"), ctl_s(r, "address")))
			printf(" (for <%s>)", ctl_s(r, "orig_address"));
		printf(" %s, %lld attempt%s", ctl_s(r, "state"), (long long)ctl_i(r, "attempts"),
		       ctl_i(r, "attempts") == 1 ? "" : "s");
		if (!strcmp(ctl_s(r, "state"), "pending") && ctl_i(r, "next_try") > 0) {
			ctl_time(ctl_i(r, "next_try"), when, sizeof when);
			printf(", next %s", when);
		}
		putchar('\n');
		json_t *h;
		json_array_foreach(hs, j, h) {
			if (ctl_i(h, "recipient") != ctl_i(r, "index"))
				continue;
			ctl_time(ctl_i(h, "time"), when, sizeof when);
			printf("  %s  %s%s%s\n", when, ctl_s(h, "reply"), *ctl_s(h, "host") ? "  via " : "",
			       ctl_s(h, "host"));
		}
	}
	printf("\n%s", ctl_s(o, "headers"));
}

static void ctl_print_status(json_t *o)
{
	json_t *ls = json_object_get(o, "listeners"), *l, *cert = json_object_get(o, "tls_certificate");
	json_t *paused = json_object_get(o, "paused");
	size_t i;
	char up[24];
	ctl_age(ctl_i(o, "uptime"), up, sizeof up);
	printf("ternd %s, pid %lld, up %s, hostname %s\n", ctl_s(o, "version"),
	       (long long)ctl_i(o, "pid"), up, ctl_s(o, "hostname"));
	printf("listeners:");
	json_array_foreach(ls, i, l)
		printf("%s %s", i ? "," : "", json_string_value(l));
	printf("\nsessions: %lld, queued: %lld\n", (long long)ctl_i(o, "sessions"),
	       (long long)ctl_i(o, "queued"));
	printf("configuration generation %lld%s%s\n", (long long)ctl_i(o, "generation"),
	       *ctl_s(o, "restart_pending") ? ", waiting for a restart: " : "",
	       ctl_s(o, "restart_pending"));
	printf("smtp: %s, delivery: %s\n",
	       json_is_true(json_object_get(paused, "smtp")) ? "PAUSED" : "running",
	       json_is_true(json_object_get(paused, "delivery")) ? "PAUSED" : "running");
	if (json_is_object(cert))
		printf("tls certificate: %s, expires in %lld days\n", ctl_s(cert, "subject"),
		       (long long)ctl_i(cert, "days_left"));
	else
		printf("tls certificate: none\n");
	json_t *held = json_object_get(o, "held_domains"), *h;
	if (json_array_size(held))
		printf("held domains (waiting for a release):\n");
	json_array_foreach(held, i, h)
		ctl_print_held_one(h, "  ");
}

static void ctl_print_stats(json_t *o)
{
	const char *k;
	json_t *v;
	json_object_foreach(o, k, v) {
		if (json_is_integer(v))
			printf("%-22s %lld\n", k, (long long)json_integer_value(v));
	}
	json_object_foreach(json_object_get(o, "rejected_by_reason"), k, v)
		printf("  rejected: %-29s %lld\n", k, (long long)json_integer_value(v));
	json_object_foreach(json_object_get(o, "tls_by_version"), k, v)
		printf("  tls: %-34s %lld\n", k, (long long)json_integer_value(v));
	size_t i;
	json_array_foreach(json_object_get(o, "queued_by_domain"), i, v)
		printf("  queued for %-26s %lld messages, %lld recipients\n", ctl_s(v, "domain"),
		       (long long)ctl_i(v, "messages"), (long long)ctl_i(v, "recipients"));
}

/* A trace record as a log line: "time session qid kind: k=v, ...". */
static void ctl_print_trace(json_t *o)
{
	static const char *const skip[] = { "time", "kind", "level", "session", "queue_id" };
	if (json_object_get(o, "dropped")) {
		printf("-- %lld records dropped (the terminal did not keep up)\n",
		       (long long)ctl_i(o, "dropped"));
		return;
	}
	printf("%s", ctl_s(o, "time"));
	if (json_object_get(o, "session"))
		printf(" [%lld]", (long long)ctl_i(o, "session"));
	if (*ctl_s(o, "queue_id"))
		printf(" %s", ctl_s(o, "queue_id"));
	const char *kind = ctl_s(o, "kind");
	if (!strcmp(kind, "in") || !strcmp(kind, "out")) {
		printf(" %s %s\n", !strcmp(kind, "in") ? "<" : ">", ctl_s(o, "line"));
		return;
	}
	printf(" %s:", kind);
	const char *k;
	json_t *v;
	bool first = true;
	json_object_foreach(o, k, v) {
		bool skipped = false;
		for (size_t i = 0; i < sizeof skip / sizeof skip[0]; i++)
			skipped |= !strcmp(k, skip[i]);
		if (skipped)
			continue;
		if (json_is_true(v))
			printf("%s %s", first ? "" : ",", k);
		else
			printf("%s %s=%s", first ? "" : ",", k, json_string_value(v));
		first = false;
	}
	putchar('\n');
}

/* ---- transcripts ---- */

static void ctl_print_lint(json_t *lint, const char *indent)
{
	size_t i;
	json_t *w;
	json_array_foreach(lint, i, w) {
		printf("%swarning %s: %s (%s)", indent, ctl_s(w, "code"), ctl_s(w, "text"),
		       ctl_s(w, "rfc"));
		if (*ctl_s(w, "detail"))
			printf(": %s", ctl_s(w, "detail"));
		putchar('\n');
	}
}

/* "C: EHLO x" / "S: 250 ..." / "-- a note", each after its time. */
static void ctl_print_session(json_t *s)
{
	json_int_t n = ctl_i(s, "messages");
	printf("session %lld, %s, client [%s] to %s%s%s%s%s, %lld message%s, ended: %s\n",
	       (long long)ctl_i(s, "id"), ctl_s(s, "start"), ctl_s(s, "client"),
	       ctl_s(s, "listener"), *ctl_s(s, "tls") ? ", TLS " : "", ctl_s(s, "tls"),
	       *ctl_s(s, "user") ? ", user " : "", ctl_s(s, "user"), (long long)n,
	       n == 1 ? "" : "s", *ctl_s(s, "ended") ? ctl_s(s, "ended") : "(still open)");
	size_t i;
	json_t *l;
	json_array_foreach(json_object_get(s, "lines"), i, l) {
		const char *dir = ctl_s(l, "dir");
		json_int_t t = ctl_i(l, "t");
		printf("%4lld.%03lld [%lld] %s %s\n", (long long)(t / 1000), (long long)(t % 1000),
		       (long long)ctl_i(l, "batch"),
		       !strcmp(dir, "in") ? "C:" : !strcmp(dir, "out") ? "S:" : "--", ctl_s(l, "text"));
	}
	if (ctl_i(s, "dropped"))
		printf("(%lld more lines not recorded: transcript_max_size)\n",
		       (long long)ctl_i(s, "dropped"));
	json_array_foreach(json_object_get(s, "transactions"), i, l) {
		printf("message %s: %s (lines %lld-%lld)\n", ctl_s(l, "queue_id"), ctl_s(l, "status"),
		       (long long)ctl_i(l, "first"), (long long)ctl_i(l, "last"));
		ctl_print_lint(json_object_get(l, "lint"), "  ");
	}
}

static void ctl_print_transcript(json_t *o)
{
	json_t *sessions = json_object_get(o, "sessions");
	size_t i;
	json_t *s;
	if (sessions) {
		json_array_foreach(sessions, i, s)
			printf("%8lld  %s  %-15s %-20s %3lld msg  %s\n", (long long)ctl_i(s, "id"),
			       ctl_s(s, "start"), ctl_s(s, "client"), ctl_s(s, "helo"),
			       (long long)ctl_i(s, "messages"),
			       *ctl_s(s, "ended") ? ctl_s(s, "ended") : "(open)");
		printf("%lld session%s recorded\n", (long long)ctl_i(o, "total"),
		       ctl_i(o, "total") == 1 ? "" : "s");
		return;
	}
	if (*ctl_s(o, "queue_id")) {   /* a message: its lint, then its session */
		printf("message %s: %s\n", ctl_s(o, "queue_id"), ctl_s(o, "status"));
		ctl_print_lint(json_object_get(o, "lint"), "  ");
		if (json_array_size(json_object_get(o, "lint")) == 0)
			printf("  no warnings\n");
		s = json_object_get(o, "session");
		if (json_is_object(s))
			ctl_print_session(s);
		return;
	}
	ctl_print_session(o);
}

/* ---- commands ---- */

static int ctl_stream(struct ctl *c, json_t *req, void (*print)(json_t *))
{
	int rc = 0;
	json_t *o = ctl_call(c, req, &rc);
	if (o && !c->json) {   /* from here on nothing is missed */
		fprintf(stderr, "ternctl: %s; interrupt to stop\n",
		        json_object_get(o, "tracing") ? "tracing" : "monitoring");
		fflush(stderr);
	}
	json_decref(o);
	while (o && (o = ctl_recv(c, &rc))) {
		ctl_echo(c, true);
		if (!c->json)
			print(o);
		fflush(stdout);
		json_decref(o);
	}
	return rc;
}

static void ctl_print_monitor(json_t *o)
{
	static const char *const cols[] = { "connections", "accepted", "rejected", "delivered",
	                                    "deferred", "bounced", "sessions" };
	static unsigned lines;
	if (lines++ % 20 == 0) {
		for (size_t i = 0; i < sizeof cols / sizeof cols[0]; i++)
			printf("%12s", cols[i]);
		putchar('\n');
	}
	for (size_t i = 0; i < sizeof cols / sizeof cols[0]; i++)
		printf("%12lld", (long long)ctl_i(o, cols[i]));
	putchar('\n');
}

static int ctl_trace(struct ctl *c, const struct ctl_opts *o)
{
	json_t *req = json_pack("{s:s, s:b}", "cmd", "trace", "transcript", o->transcript);
	if (o->client)
		json_object_set_new(req, "client", json_string(o->client));
	if (o->queue_id)
		json_object_set_new(req, "queue_id", json_string(o->queue_id));
	if (o->session > 0)
		json_object_set_new(req, "session", json_integer(o->session));
	return ctl_stream(c, req, ctl_print_trace);
}

/* flush/hold/release/delete/bounce TARGET...; "-" reads targets from
 * standard input, one per line (`ternctl queue --json | jq ... | ternctl
 * delete -`). */
static int ctl_act_one(struct ctl *c, const char *cmd, const char *target)
{
	int rc = 0;
	json_t *o = ctl_call(c, json_pack("{s:s, s:s}", "cmd", cmd, "target", target), &rc);
	if (o && !c->json) {   /* the engine counts messages deleted, else recipients */
		json_int_t n = ctl_i(o, "count");
		const char *what = !strcmp(cmd, "delete") ? "message" : "recipient";
		printf("%s %s: %lld %s%s\n", cmd, target, (long long)n, what, n == 1 ? "" : "s");
	}
	json_decref(o);
	return rc;
}

static int ctl_act(struct ctl *c, const char *cmd, int argc, char **argv)
{
	int worst = 0;
	if (argc == 0 && !strcmp(cmd, "flush"))
		return ctl_act_one(c, cmd, "all");
	if (argc == 0) {
		fprintf(stderr, "ternctl %s: which message? (a queue id, a domain, or - for stdin)\n", cmd);
		return EX_USAGE;
	}
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "-")) {
			int rc = ctl_act_one(c, cmd, argv[i]);
			worst = rc > worst ? rc : worst;
			if (rc > 1)
				return rc;
			continue;
		}
		char line[512];
		while (fgets(line, sizeof line, stdin)) {
			line[strcspn(line, "\r\n")] = '\0';
			char *t = line + strspn(line, " \t\"");
			t[strcspn(t, " \t\"")] = '\0';
			if (!*t)
				continue;
			int rc = ctl_act_one(c, cmd, t);
			worst = rc > worst ? rc : worst;
			if (rc > 1)
				return rc;
		}
	}
	return worst;
}

static int ctl_simple(struct ctl *c, json_t *req, void (*print)(json_t *))
{
	int rc = 0;
	json_t *o = ctl_call(c, req, &rc);
	if (o && !c->json && print)
		print(o);
	json_decref(o);
	return rc;
}

static void ctl_print_done(json_t *o)
{
	(void)o;
	printf("done\n");
}

static void ctl_print_reload(json_t *o)
{
	printf("reloaded: configuration generation %lld in force\n", (long long)ctl_i(o, "generation"));
	if (*ctl_s(o, "restart_pending"))
		printf("changed, waiting for a restart: %s\n", ctl_s(o, "restart_pending"));
}

/* destinations: a line each, then the rates the limit was chosen from. */
static void ctl_print_dests(json_t *o)
{
	json_t *a = json_object_get(o, "destinations");
	size_t i;
	json_t *d;
	if (!json_array_size(a)) {
		printf("no destinations (no SMTP or LMTP delivery under way or idle)\n");
		return;
	}
	printf("%-32s %-5s %-10s %11s %9s %7s %s\n", "DESTINATION", "KIND", "TLS", "CONNECTIONS",
	       "LIMIT", "WAITING", "ADAPTIVE");
	json_array_foreach(a, i, d) {
		char lim[32];
		snprintf(lim, sizeof lim, "%lld/%lld", (long long)ctl_i(d, "limit"), (long long)ctl_i(d, "max"));
		printf("%-32s %-5s %-10s %11lld %9s %7lld %s\n", ctl_s(d, "destination"),
		       json_is_true(json_object_get(d, "lmtp")) ? "lmtp" : ctl_s(d, "kind"),
		       ctl_s(d, "tls"), (long long)ctl_i(d, "connections"), lim,
		       (long long)ctl_i(d, "waiting"),
		       json_is_true(json_object_get(d, "adaptive")) ? "yes" : "no");
		const char *k;
		json_t *v;
		if (json_object_size(json_object_get(d, "rates")) == 0)
			continue;
		printf("  msg/s by connections:");
		json_object_foreach(json_object_get(d, "rates"), k, v)
			printf(" %s:%.0f", k, json_real_value(v));
		printf("\n");
	}
}

#define CTL_USAGE \
"usage: ternctl [-c FILE] [--json] COMMAND [ARGS]\n" \
"  -c FILE   the configuration that names control_socket (default " CTL_DEFAULT_CONF ")\n" \
"  -s PATH   the control socket itself\n" \
"  --json    the daemon's JSON lines, as they come\n" \
"commands:\n" \
"  status                       version, uptime, listeners, TLS certificate expiry,\n" \
"                               held domains with their counts\n" \
"  stats                        counters since start, the queue by domain\n" \
"  queue [--domain D] [--sender S] [--state deferred|held|active]\n" \
"                               the queue, one message per line\n" \
"  show ID                      envelope, every attempt per recipient, headers\n" \
"  flush [ID|DOMAIN|all]        try now (default all)\n" \
"  hold ID|DOMAIN...            keep from delivery until released\n" \
"  release ID|DOMAIN...         deliver again\n" \
"  delete ID...                 remove, telling nobody\n" \
"  bounce ID...                 return to the sender with a delivery report\n" \
"                               (IDs from standard input with -)\n" \
"  pause smtp|delivery          new SMTP sessions get 421 4.3.2 / no delivery\n" \
"  resume [smtp|delivery]       undo pause (both when not named)\n" \
"  monitor                      a line a second of what changed\n" \
"  destinations                 next hops: connections, the adaptive limit, waiting\n" \
"                               jobs, recent msg/s by number of connections\n" \
"  trace [--client IP] [--session N] [--queue ID] [--transcript]\n" \
"                               live events (with the SMTP lines)\n" \
"  reload                       re-read the configuration, users, aliases, certificate\n" \
"  transcript [QID|SESSION-ID]  a message's SMTP session and client lint, a session's\n" \
"                               (transcripts = yes), or the sessions recorded\n" \
"  drain --to HOST:PORT [--domain D]\n" \
"                               hand every queued message to another node over SMTP\n" \
"                               (removed here after its 250; 75 if some stayed)\n" \
"  dkim-keygen DOMAIN SELECTOR [--type rsa|ed25519] [--bits N] [--out FILE]\n" \
"                               a DKIM key (no daemon needed): the key file, the DNS\n" \
"                               record to publish, the dkim_keys line\n" \
"exit status: 0 done, 1 refused by ternd, 64 usage, 69 ternd not running, 75 a drain\n" \
"left mail here, 77 not allowed.\n"

static int ctl_usage(const char *msg)
{
	if (msg)
		fprintf(stderr, "ternctl: %s\n", msg);
	fputs(CTL_USAGE, msg ? stderr : stdout);
	return msg ? EX_USAGE : 0;
}

enum { O_JSON = 256, O_DOMAIN, O_SENDER, O_STATE, O_CLIENT, O_SESSION, O_QUEUE, O_TRANSCRIPT,
       O_TO, O_TYPE, O_BITS, O_OUT };

static const struct option ctl_options[] = {
	{ "json", no_argument, NULL, O_JSON }, { "domain", required_argument, NULL, O_DOMAIN },
	{ "sender", required_argument, NULL, O_SENDER }, { "state", required_argument, NULL, O_STATE },
	{ "client", required_argument, NULL, O_CLIENT },
	{ "session", required_argument, NULL, O_SESSION },
	{ "queue", required_argument, NULL, O_QUEUE },
	{ "transcript", no_argument, NULL, O_TRANSCRIPT }, { "to", required_argument, NULL, O_TO },
	{ "help", no_argument, NULL, 'h' },
	{ "type", required_argument, NULL, O_TYPE }, { "bits", required_argument, NULL, O_BITS },
	{ "out", required_argument, NULL, O_OUT },
	{ NULL, 0, NULL, 0 },
};

/* The socket: -s, else control_socket of -c FILE (or the default file,
 * or the embedded defaults when there is none). */
static char *ctl_socket_path(const char *file, bool named)
{
	struct conf cf;
	conf_defaults(&cf);
	int bad = 0;
	if (named || access(file, F_OK) == 0)
		bad += conf_load_file(&cf, file);
	bad += conf_finish(&cf);
	if (bad)
		fprintf(stderr, "ternctl: %s has problems (above); trying control_socket %s\n",
		        named || access(file, F_OK) == 0 ? file : "the configuration", cf.control_socket);
	char *path = util_xstrdup(cf.control_socket);
	conf_free(&cf);
	return path;
}

static int ctl_queue_cmd(struct ctl *c, const struct ctl_opts *o, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return ctl_queue(c, o);
}

static int ctl_show_cmd(struct ctl *c, const struct ctl_opts *o, int argc, char **argv)
{
	(void)o;
	(void)argc;
	return ctl_simple(c, json_pack("{s:s, s:s}", "cmd", "show", "id", argv[1]), ctl_print_show);
}

/* status, stats, destinations, reload: the request is the command's name. */
static int ctl_plain_cmd(struct ctl *c, const struct ctl_opts *o, int argc, char **argv)
{
	(void)o;
	(void)argc;
	void (*print)(json_t *) = !strcmp(argv[0], "status") ? ctl_print_status :
	                          !strcmp(argv[0], "stats") ? ctl_print_stats :
	                          !strcmp(argv[0], "destinations") ? ctl_print_dests : ctl_print_reload;
	return ctl_simple(c, json_pack("{s:s}", "cmd", argv[0]), print);
}

static int ctl_pause_cmd(struct ctl *c, const struct ctl_opts *o, int argc, char **argv)
{
	(void)o;
	json_t *req = json_pack("{s:s}", "cmd", argv[0]);
	if (argc == 2)
		json_object_set_new(req, "what", json_string(argv[1]));
	return ctl_simple(c, req, ctl_print_done);
}

/* drain: the answer comes once every recipient has had its attempt. */
static int ctl_drain_cmd(struct ctl *c, const struct ctl_opts *o, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	if (!o->to)
		return ctl_usage("drain: --to HOST:PORT names the node to take the queue");
	json_t *req = json_pack("{s:s, s:s}", "cmd", "drain", "to", o->to);
	if (o->domain)
		json_object_set_new(req, "domain", json_string(o->domain));
	int rc = 0;
	json_t *a = ctl_call(c, req, &rc);
	if (a && !c->json)
		printf("drain --to %s: %lld recipients: %lld delivered, %lld deferred, %lld failed\n",
		       o->to, (long long)ctl_i(a, "count"), (long long)ctl_i(a, "delivered"),
		       (long long)ctl_i(a, "deferred"), (long long)ctl_i(a, "failed"));
	if (a && !rc && (ctl_i(a, "deferred") || ctl_i(a, "failed")))
		rc = EX_TEMPFAIL;   /* some mail is still here */
	json_decref(a);
	return rc;
}

static int ctl_act_cmd(struct ctl *c, const struct ctl_opts *o, int argc, char **argv)
{
	(void)o;
	return ctl_act(c, argv[0], argc - 1, argv + 1);
}

static int ctl_monitor_cmd(struct ctl *c, const struct ctl_opts *o, int argc, char **argv)
{
	(void)o;
	(void)argc;
	(void)argv;
	return ctl_stream(c, json_pack("{s:s}", "cmd", "monitor"), ctl_print_monitor);
}

static int ctl_trace_cmd(struct ctl *c, const struct ctl_opts *o, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return ctl_trace(c, o);
}

/* transcript [QID|SESSION-ID]: one message's or session's, or the list. */
static int ctl_transcript_cmd(struct ctl *c, const struct ctl_opts *o, int argc, char **argv)
{
	(void)o;
	json_t *req = json_pack("{s:s}", "cmd", "transcript");
	if (argc == 2)
		json_object_set_new(req, "id", json_string(argv[1]));
	return ctl_simple(c, req, ctl_print_transcript);
}

/* dkim-keygen DOMAIN SELECTOR: made here, no daemon asked. */
static int ctl_keygen_cmd(struct ctl *c, const struct ctl_opts *o, int argc, char **argv)
{
	(void)c;
	(void)argc;
	return keygen_run(argv[1], argv[2], &o->keygen);
}

/* The commands, with how many words they take (the name included);
 * local: run without connecting to the daemon. */
static const struct ctl_cmd {
	const char *name;
	int min, max;
	int (*fn)(struct ctl *c, const struct ctl_opts *o, int argc, char **argv);
	bool local;
} ctl_cmds[] = {
	{ "status", 1, 1, ctl_plain_cmd, false }, { "stats", 1, 1, ctl_plain_cmd, false },
	{ "destinations", 1, 1, ctl_plain_cmd, false },
	{ "reload", 1, 1, ctl_plain_cmd, false }, { "queue", 1, 1, ctl_queue_cmd, false },
	{ "show", 2, 2, ctl_show_cmd, false }, { "flush", 1, 1 << 20, ctl_act_cmd, false },
	{ "hold", 1, 1 << 20, ctl_act_cmd, false }, { "release", 1, 1 << 20, ctl_act_cmd, false },
	{ "delete", 1, 1 << 20, ctl_act_cmd, false }, { "bounce", 1, 1 << 20, ctl_act_cmd, false },
	{ "pause", 2, 2, ctl_pause_cmd, false }, { "resume", 1, 2, ctl_pause_cmd, false },
	{ "monitor", 1, 1, ctl_monitor_cmd, false }, { "trace", 1, 1, ctl_trace_cmd, false },
	{ "drain", 1, 1, ctl_drain_cmd, false }, { "dkim-keygen", 3, 3, ctl_keygen_cmd, true },
	{ "transcript", 1, 2, ctl_transcript_cmd, false },
};

static const struct ctl_cmd *ctl_find(int argc, char **argv)
{
	for (size_t i = 0; i < sizeof ctl_cmds / sizeof ctl_cmds[0]; i++)
		if (!strcmp(argv[0], ctl_cmds[i].name))
			return argc >= ctl_cmds[i].min && argc <= ctl_cmds[i].max ? &ctl_cmds[i] : NULL;
	return NULL;
}

struct ctl_args {
	struct ctl c;
	struct ctl_opts o;
	const char *file;
	bool named;
};

/* One option; false for a bad one. */
static bool ctl_option(struct ctl_args *a, int opt)
{
	char *end;
	switch (opt) {
	case 'c': a->file = optarg; a->named = true; return true;
	case 's': a->c.socket = optarg; return true;
	case O_JSON: a->c.json = true; return true;
	case O_DOMAIN: a->o.domain = optarg; return true;
	case O_SENDER: a->o.sender = optarg; return true;
	case O_TO: a->o.to = optarg; return true;
	case O_STATE: a->o.state = optarg; return true;
	case O_CLIENT: a->o.client = optarg; return true;
	case O_QUEUE: a->o.queue_id = optarg; return true;
	case O_TRANSCRIPT: a->o.transcript = true; return true;
	case O_TYPE: a->o.keygen.type = optarg; return true;
	case O_OUT: a->o.keygen.out = optarg; return true;
	case O_BITS:
		a->o.keygen.bits = (unsigned)strtoul(optarg, &end, 10);
		return !*end && a->o.keygen.bits > 0;
	case O_SESSION:
		a->o.session = strtol(optarg, &end, 10);
		return !*end && a->o.session > 0;
	default: return false;
	}
}

int main(int argc, char **argv)
{
	struct ctl_args a = { .file = CTL_DEFAULT_CONF };
	char **rest = util_xcalloc((size_t)argc + 1, sizeof *rest);
	int n = 0, opt, rc = 0;
	/* options before and after the command: ternctl queue --domain example.com */
	while (optind < argc) {
		while ((opt = getopt_long(argc, argv, "+c:s:h", ctl_options, NULL)) != -1) {
			if (opt == 'h' || !ctl_option(&a, opt)) {
				free(rest);
				return ctl_usage(opt == 'h' ? NULL : "unknown option or bad value");
			}
		}
		if (optind < argc)
			rest[n++] = argv[optind++];
	}
	const struct ctl_cmd *cmd = n ? ctl_find(n, rest) : NULL;
	if (!cmd) {
		free(rest);
		return ctl_usage(n ? "unknown command or wrong arguments" : "no command");
	}
	if (cmd->local) {
		rc = cmd->fn(&a.c, &a.o, n, rest);
		free(rest);
		return rc;
	}
	char *path = NULL;
	if (!a.c.socket)
		a.c.socket = path = ctl_socket_path(a.file, a.named);
	signal(SIGPIPE, SIG_IGN);
	rc = ctl_connect(&a.c);
	if (rc == 0)
		rc = cmd->fn(&a.c, &a.o, n, rest);
	if (a.c.in)
		fclose(a.c.in);
	if (a.c.out)
		fclose(a.c.out);
	free(path);
	free(rest);
	free(a.c.line);
	return rc;
}
