/* tern-probe: command line. "check", "doctor", "console", "conform" and
 * "explain". */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/buf.h"
#include "tools/probe/check.h"
#include "tools/probe/conform.h"
#include "tools/probe/console.h"
#include "tools/probe/doctor.h"
#include "tools/probe/explain.h"

#define PROBE_USAGE \
"usage: tern-probe check TARGET [options]   test a mail server step by step\n" \
"       tern-probe doctor DOMAIN [options] a mail domain's DNS, MX servers and records\n" \
"       tern-probe console TARGET [options] an interactive SMTP session\n" \
"       tern-probe conform TARGET [options] run the RFC dialogues (conform/*.dlg)\n" \
"       tern-probe explain CODE [ENHANCED]  what a reply code means\n" \
"TARGET: host, host:port, IP address, or a mail domain (its MX hosts).\n" \
"check options:\n" \
"  -v, --verbose            show every line sent and received\n" \
"      --json               the report as JSON\n" \
"      --mx-only            only list the MX records and their addresses\n" \
"      --resolver IP[@PORT] ask this DNS server (default /etc/resolv.conf)\n" \
"  -p, --port N             port when TARGET has none (default 25)\n" \
"      --helo NAME          name for EHLO/HELO (default this host's name)\n" \
"      --from ADDR          sender for MAIL FROM (default postmaster@HELO)\n" \
"      --to ADDR            recipient for RCPT TO (repeatable)\n" \
"      --send               send a test message (\"Test from HELO\")\n" \
"      --notify LIST        DSN NOTIFY on RCPT, e.g. success,failure\n" \
"      --relay-test         try to relay from outside to outside (stops at RCPT)\n" \
"      --outside-domain D   outside domain for --relay-test (example.net)\n" \
"      --user U             log in (AUTH) as U\n" \
"      --password P         password (or --password-file FILE, first line)\n" \
"      --auth-mech M        PLAIN or LOGIN (default: PLAIN when offered)\n" \
"      --no-tls             do not use STARTTLS\n" \
"      --require-tls        fail when STARTTLS is not available\n" \
"      --cafile FILE        trust these CA certificates too\n" \
"      --tls-name NAME      name to check the certificate against\n" \
"      --timeout SEC        per reply and per connection (default 30)\n" \
"      --trust-anchor FILE  DNSSEC trust anchors for a domain's DANE step (as doctor)\n" \
"console options: --resolver, --port, --cafile, --tls-name, --timeout,\n" \
"  --log FILE (like telnet's \"set logfile\").\n" \
"conform options: -v, --json, --port, --resolver, --helo, --from, --to ADDR (the\n" \
"  recipient, default postmaster@ the greeting's name), --cafile, --tls-name,\n" \
"  --timeout (default 10), and:\n" \
"      --tls                STARTTLS first, where the dialogue allows\n" \
"      --only NAME[,NAME]   only these dialogues (repeatable)\n" \
"      --dir DIR            the dialogue files (default: next to the binary)\n" \
"doctor options: -v, --json, --port, --resolver, --cafile, --helo, --timeout\n" \
"  (default 10), and:\n" \
"      --selector NAME      a DKIM selector to check (repeatable)\n" \
"      --dnsbl ZONE         a DNS blocklist to look the MX addresses up in (repeatable)\n" \
"      --sending-ip IP      an address that sends the domain's mail: SPF must pass it\n" \
"                           (repeatable)\n" \
"      --trust-anchor FILE  DNSSEC trust anchors for DANE's TLSA lookups (default:\n" \
"                           /usr/share/dns/root.key, when --resolver is not given)\n" \
"exit status: 0 all passed, 1 a test failed, 2 could not connect (conform:\n" \
"  2 bad usage or dialogue files, 3 could not connect; doctor: 0 all passed,\n" \
"  1 warnings, 2 failures, 3 could not run).\n"

enum { O_JSON = 256, O_MXONLY, O_RESOLVER, O_HELO, O_FROM, O_TO, O_SEND, O_NOTIFY,
       O_RELAY, O_OUTSIDE, O_USER, O_PASS, O_PASSFILE, O_MECH, O_NOTLS, O_REQTLS,
       O_CAFILE, O_TLSNAME, O_TIMEOUT, O_LOG, O_TLS, O_ONLY, O_DIR, O_SELECTOR, O_DNSBL,
       O_ANCHOR, O_SENDER_IP };

static const struct option probe_options[] = {
	{ "verbose", no_argument, NULL, 'v' }, { "json", no_argument, NULL, O_JSON },
	{ "mx-only", no_argument, NULL, O_MXONLY },
	{ "resolver", required_argument, NULL, O_RESOLVER },
	{ "port", required_argument, NULL, 'p' }, { "helo", required_argument, NULL, O_HELO },
	{ "from", required_argument, NULL, O_FROM }, { "to", required_argument, NULL, O_TO },
	{ "send", no_argument, NULL, O_SEND }, { "notify", required_argument, NULL, O_NOTIFY },
	{ "relay-test", no_argument, NULL, O_RELAY },
	{ "outside-domain", required_argument, NULL, O_OUTSIDE },
	{ "user", required_argument, NULL, O_USER },
	{ "password", required_argument, NULL, O_PASS },
	{ "password-file", required_argument, NULL, O_PASSFILE },
	{ "auth-mech", required_argument, NULL, O_MECH },
	{ "no-tls", no_argument, NULL, O_NOTLS }, { "require-tls", no_argument, NULL, O_REQTLS },
	{ "cafile", required_argument, NULL, O_CAFILE },
	{ "tls-name", required_argument, NULL, O_TLSNAME },
	{ "timeout", required_argument, NULL, O_TIMEOUT }, { "log", required_argument, NULL, O_LOG },
	{ "tls", no_argument, NULL, O_TLS }, { "only", required_argument, NULL, O_ONLY },
	{ "dir", required_argument, NULL, O_DIR },
	{ "selector", required_argument, NULL, O_SELECTOR },
	{ "dnsbl", required_argument, NULL, O_DNSBL },
	{ "trust-anchor", required_argument, NULL, O_ANCHOR },
	{ "sending-ip", required_argument, NULL, O_SENDER_IP },
	{ "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 },
};

struct probe_args {
	struct check_opts check;
	struct console_opts console;
	struct conform_opts conform;
	struct doctor_opts doctor;
	bool timeout_set;
	char password[1024];
	char only[4096];    /* --only's lists, split at commas */
	size_t only_len;
};

static int probe_usage(const char *msg)
{
	if (msg)
		fprintf(stderr, "tern-probe: %s\n", msg);
	fputs(PROBE_USAGE, msg ? stderr : stdout);
	return 2;
}

static int probe_number(const char *s, int lo, int hi, int *out)
{
	char *e;
	long v = strtol(s, &e, 10);
	if (*s == '\0' || *e != '\0' || v < lo || v > hi)
		return -1;
	*out = (int)v;
	return 0;
}

static int probe_password_file(struct probe_args *a, const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		perror(path);
		return -1;
	}
	if (!fgets(a->password, sizeof a->password, f))
		a->password[0] = '\0';
	fclose(f);
	a->password[strcspn(a->password, "\r\n")] = '\0';
	a->check.password = a->password;
	return 0;
}

/* --only a,b --only c: each name into conform.only. */
static int probe_only(struct probe_args *a, const char *arg)
{
	size_t n = strlen(arg) + 1;
	if (n > sizeof a->only - a->only_len)
		return -1;
	char *p = memcpy(a->only + a->only_len, arg, n);
	a->only_len += n;
	for (char *save = NULL, *w = strtok_r(p, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
		if (a->conform.nonly == CONFORM_MAX_ONLY)
			return -1;
		a->conform.only[a->conform.nonly++] = w;
	}
	return 0;
}

static int probe_option_tls(struct probe_args *a, int ch, const char *arg)
{
	struct check_opts *c = &a->check;
	switch (ch) {
	case O_NOTLS: c->no_tls = true; return 0;
	case O_REQTLS: c->require_tls = true; return 0;
	case O_CAFILE: c->cafile = a->console.cafile = arg; return 0;
	case O_TLSNAME: c->tls_name = a->console.tls_name = arg; return 0;
	case O_LOG: a->console.log = arg; return 0;
	case O_TIMEOUT:
		if (probe_number(arg, 1, 3600, &c->timeout_ms) < 0)
			return -1;
		a->console.timeout_ms = c->timeout_ms *= 1000;
		a->timeout_set = true;
		return 0;
	case O_TLS: a->conform.tls = true; return 0;
	case O_DIR: a->conform.dir = arg; return 0;
	case O_ONLY: return probe_only(a, arg);
	case O_SELECTOR:
		if (a->doctor.nselector == DOCTOR_MAX_SELECTORS)
			return -1;
		a->doctor.selector[a->doctor.nselector++] = arg;
		return 0;
	case O_DNSBL:
		if (a->doctor.ndnsbl == DOCTOR_MAX_DNSBL)
			return -1;
		a->doctor.dnsbl[a->doctor.ndnsbl++] = arg;
		return 0;
	case O_SENDER_IP: {
		unsigned char ip[16];
		if (a->doctor.nsender == DOCTOR_MAX_SENDERS ||
		    (inet_pton(AF_INET, arg, ip) != 1 && inet_pton(AF_INET6, arg, ip) != 1))
			return -1;
		a->doctor.sender[a->doctor.nsender++] = arg;
		return 0;
	}
	case O_ANCHOR:
		if (access(arg, R_OK) != 0) {
			fprintf(stderr, "tern-probe: --trust-anchor %s: %s\n", arg, strerror(errno));
			return -1;
		}
		a->doctor.trust_anchor = a->check.trust_anchor = arg;
		return 0;
	default: return -1;
	}
}

static int probe_option(struct probe_args *a, int ch, const char *arg)
{
	struct check_opts *c = &a->check;
	switch (ch) {
	case 'v': c->verbose = true; return 0;
	case O_JSON: c->json = true; return 0;
	case O_MXONLY: c->mx_only = true; return 0;
	case O_RESOLVER: c->resolver = a->console.resolver = arg; return 0;
	case 'p':
		if (probe_number(arg, 1, 65535, &c->port) < 0)
			return -1;
		a->console.port = c->port;
		return 0;
	case O_HELO: c->helo = arg; return 0;
	case O_FROM: c->from = arg; return 0;
	case O_TO:
		if (c->nto == CHECK_MAX_RCPT)
			return -1;
		c->to[c->nto++] = arg;
		return 0;
	case O_SEND: c->send = true; return 0;
	case O_NOTIFY: c->notify = arg; return 0;
	case O_RELAY: c->relay_test = true; return 0;
	case O_OUTSIDE: c->outside = arg; return 0;
	case O_USER: c->user = arg; return 0;
	case O_PASS: c->password = arg; return 0;
	case O_PASSFILE: return probe_password_file(a, arg);
	case O_MECH: c->auth_mech = arg; return 0;
	default: return probe_option_tls(a, ch, arg);
	}
}

static int probe_parse(struct probe_args *a, int argc, char **argv)
{
	memset(a, 0, sizeof *a);
	a->check.port = a->console.port = 25;
	a->check.timeout_ms = a->console.timeout_ms = 30000;
	int ch;
	optind = 2;
	while ((ch = getopt_long(argc, argv, "vp:h", probe_options, NULL)) != -1) {
		if (ch == 'h')
			return probe_usage(NULL), 1;
		if (ch == '?' || probe_option(a, ch, optarg) < 0) {
			if (ch != '?')
				fprintf(stderr, "tern-probe: bad value for an option: %s\n",
					argv[optind - 1]);
			return -1;
		}
	}
	if (optind != argc - 1)
		return -1;
	a->check.target = a->console.target = argv[optind];
	return 0;
}

/* conform takes check's common options. */
static int probe_conform(struct probe_args *a)
{
	struct conform_opts *f = &a->conform;
	const struct check_opts *c = &a->check;
	f->target = c->target;
	f->resolver = c->resolver;
	f->helo = c->helo;
	f->from = c->from;
	f->to = c->nto ? c->to[0] : NULL;
	f->cafile = c->cafile;
	f->tls_name = c->tls_name;
	f->port = c->port;
	f->timeout_ms = a->timeout_set ? c->timeout_ms : 10000;
	f->json = c->json;
	f->verbose = c->verbose;
	return conform_run(f);
}

/* doctor takes check's common options; --selector and --dnsbl are its own. */
static int probe_doctor(struct probe_args *a)
{
	struct doctor_opts *o = &a->doctor;
	const struct check_opts *c = &a->check;
	o->domain = c->target;
	o->resolver = c->resolver;
	o->cafile = c->cafile;
	o->helo = c->helo;
	o->port = c->port;
	o->timeout_ms = a->timeout_set ? c->timeout_ms : 10000;
	o->json = c->json;
	o->verbose = c->verbose;
	return doctor_run(o);
}

/* "tern-probe explain 550 5.7.1", also "550 5.7.1" as one argument. */
static int probe_explain(int argc, char **argv)
{
	struct buf in = BUF_INIT, out = BUF_INIT;
	for (int i = 2; i < argc; i++)
		buf_printf(&in, "%s%s", i > 2 ? " " : "", argv[i]);
	struct explain_codes ec;
	int rc = 0;
	if (argc < 3 || !explain_parse(buf_cstr(&in), &ec)) {
		fprintf(stderr, "tern-probe: not a reply code: %s\n"
			"usage: tern-probe explain CODE [ENHANCED], e.g. 550 5.7.1\n",
			buf_cstr(&in));
		rc = 2;
	} else {
		explain_long(&ec, &out);
		fputs(buf_cstr(&out), stdout);
	}
	buf_free(&in);
	buf_free(&out);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return probe_usage("a command is needed");
	if (strcmp(argv[1], "explain") == 0)
		return probe_explain(argc, argv);
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "help") == 0)
		return probe_usage(NULL), 0;
	bool check = strcmp(argv[1], "check") == 0, conform = strcmp(argv[1], "conform") == 0;
	bool doctor = strcmp(argv[1], "doctor") == 0;
	if (!check && !conform && !doctor && strcmp(argv[1], "console") != 0)
		return probe_usage("unknown command");
	static struct probe_args a;
	int rc = probe_parse(&a, argc, argv);
	if (rc != 0)
		return rc > 0 ? 0 : doctor ? (probe_usage("DOMAIN missing or bad options"), 3) :
		       probe_usage("TARGET missing or bad options");
	if (conform)
		return probe_conform(&a);
	if (doctor)
		return probe_doctor(&a);
	return check ? check_run(&a.check) : console_run(&a.console);
}
