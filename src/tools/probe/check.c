/* check: the procedure of the seeds, step by step (see check.h). */
#include "tools/probe/check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "tools/probe/conn.h"
#include "tools/probe/doctor.h"
#include "tools/probe/explain.h"
#include "tools/probe/report.h"

struct check {
	const struct check_opts *o;
	struct report rep;
	struct probe_conn c;
	struct smtp_reply r;
	struct mx *mx;
	struct mx_list mxl;
	bool mx_found;
	char host[MX_NAME_MAX], ip[46], server[MX_NAME_MAX];
	char helo[MX_NAME_MAX], from[600];
	struct smtp_ext ext;   /* what the last EHLO reply offered */
	bool esmtp, tls;
};

/* ------------------------------------------------------------ helpers */

void check_said(const struct smtp_reply *r, struct buf *out)
{
	const char *last = buf_cstr(&r->text) + r->last;
	struct explain_codes ec;
	buf_puts(out, last);
	if (explain_parse(last, &ec))
		buf_printf(out, " (%s)", explain_short(&ec));
}

/* Sends line, reads the reply; false when the connection is gone (then
 * closed: the session stops there). */
static bool check_cmd(struct check *k, const char *line)
{
	if (probe_conn_cmd(&k->c, line, &k->r) < 0) {
		probe_conn_close(&k->c);
		return false;
	}
	return true;
}

static void check_end_reply(struct check *k, struct report_step *s, enum report_status st,
			    const char *what)
{
	struct buf b = BUF_INIT;
	check_said(&k->r, &b);
	report_end(&k->rep, s, st, "%s: %s", what, buf_cstr(&b));
	buf_free(&b);
}

static void check_end_lost(struct check *k, struct report_step *s)
{
	report_end(&k->rep, s, REPORT_FAIL, "no reply: %s", k->c.err);
}

static void check_default_names(struct check *k)
{
	const struct check_opts *o = k->o;
	probe_helo(o->helo, k->helo, sizeof k->helo);
	if (o->from)
		snprintf(k->from, sizeof k->from, "%s", o->from);
	else
		snprintf(k->from, sizeof k->from, "postmaster@%s", k->helo);
}

/* ------------------------------------------------------------ DNS */

/* nslookup's form: "example.test  MX preference = 10, mail exchanger = mx1". */
static void check_dns_details(struct check *k, struct report_step *s, const char *domain)
{
	for (int i = 0; i < k->mxl.n; i++) {
		const struct mx_host *h = &k->mxl.hosts[i];
		if (h->pref >= 0)
			report_detail(s, "%s  MX preference = %d, mail exchanger = %s",
				      domain, h->pref, h->name);
	}
	for (int i = 0; i < k->mxl.n; i++) {
		const struct mx_host *h = &k->mxl.hosts[i];
		for (int j = 0; j < h->naddrs; j++)
			report_detail(s, "%s  %s = %s", h->name, strchr(h->addrs[j], ':') ?
				      "AAAA IPv6 address" : "internet address", h->addrs[j]);
		if (h->naddrs == 0)
			report_detail(s, "%s  no address: %s", h->name,
				      strcmp(h->name, ".") == 0 ? "null MX (RFC 7505): "
				      "the domain accepts no mail" : h->err);
	}
}

static int check_dns(struct check *k, const struct mx_target *t)
{
	char err[300] = "";
	if (t->literal)
		return mx_route(k->mx, t, &k->mxl, &k->mx_found, err, sizeof err);
	struct report_step *s = report_begin(&k->rep, "dns");
	int rc = mx_route(k->mx, t, &k->mxl, &k->mx_found, err, sizeof err);
	check_dns_details(k, s, t->host);
	if (rc < 0)
		report_end(&k->rep, s, REPORT_FAIL, "cannot resolve %s: %s", t->host, err);
	else if (k->mx_found && strcmp(k->mxl.hosts[0].name, ".") == 0)
		report_end(&k->rep, s, REPORT_FAIL, "%s has a null MX (RFC 7505): it accepts "
			   "no mail", t->host);
	else if (k->mx_found)
		report_end(&k->rep, s, REPORT_PASS, "%s: %d MX record%s", t->host,
			   k->mxl.n, k->mxl.n == 1 ? "" : "s");
	else if (t->port)
		report_end(&k->rep, s, REPORT_PASS, "%s has %d address%s", t->host,
			   k->mxl.hosts[0].naddrs, k->mxl.hosts[0].naddrs == 1 ? "" : "es");
	else
		report_end(&k->rep, s, k->o->mx_only ? REPORT_FAIL : REPORT_WARN,
			   "%s has no MX record: mail goes to its own address "
			   "(implicit MX, RFC 5321 section 5.1)", t->host);
	return rc;
}

/* ------------------------------------------------------------ connection */

static int check_connect(struct check *k, int port)
{
	struct report_step *s = report_begin(&k->rep, "connect");
	struct buf log = BUF_INIT;
	int rc = probe_conn_open(&k->c, &k->mxl, port, k->host, k->ip, &log);
	buf_puts(&s->details, buf_cstr(&log));
	buf_free(&log);
	if (rc < 0) {
		k->rep.unreachable = true;
		report_end(&k->rep, s, REPORT_FAIL, "could not connect to any address on port %d",
			   port);
		return -1;
	}
	report_end(&k->rep, s, REPORT_PASS, "connected to %s [%s] port %d", k->host, k->ip, port);
	return 0;
}

/* Seed 003: "220 <FQDN> <software>": the name and the software. */
static int check_greeting(struct check *k)
{
	struct report_step *s = report_begin(&k->rep, "greeting");
	if (probe_conn_reply(&k->c, &k->r) < 0) {
		check_end_lost(k, s);
		return -1;
	}
	const char *t = smtp_reply_last(&k->r);
	size_t n = strcspn(t, " ");
	snprintf(k->server, sizeof k->server, "%.*s", (int)n, t);
	if (k->r.code != 220) {
		check_end_reply(k, s, REPORT_FAIL, "the server does not offer service");
		return -1;
	}
	report_detail(s, "server name: %s%s", k->server, strchr(k->server, '.') ?
		      "" : " (not a fully qualified domain name)");
	report_detail(s, "software:    %s", t[n] ? t + n + 1 : "(not shown)");
	report_end(&k->rep, s, REPORT_PASS, "220: the server is ready");
	return 0;
}

/* Every keyword line of the EHLO reply (the first line is the greeting). */
static void check_ext_details(struct check *k, struct report_step *s)
{
	const char *p;
	size_t n;
	for (size_t i = 1; smtp_reply_nth(&k->r, i, &p, &n); i++) {
		if (n == 0)
			continue;
		const char *m = explain_ext(p);
		report_detail(s, "%-28.*s %s", (int)n, p, m ? m : "(unknown extension)");
	}
}

static int check_helo(struct check *k, struct report_step *s)
{
	char line[MX_NAME_MAX + 8];
	snprintf(line, sizeof line, "HELO %s", k->helo);
	if (!check_cmd(k, line)) {
		check_end_lost(k, s);
		return -1;
	}
	if (k->r.code != 250) {
		check_end_reply(k, s, REPORT_FAIL, "EHLO and HELO refused");
		return -1;
	}
	k->esmtp = false;
	memset(&k->ext, 0, sizeof k->ext);
	report_end(&k->rep, s, REPORT_WARN, "EHLO refused, HELO accepted: plain SMTP "
		   "without extensions (no TLS, AUTH, DSN)");
	return 0;
}

/* RFC 5321 section 4.1.1.1; HELO when EHLO is refused. */
static int check_ehlo(struct check *k, const char *name)
{
	struct report_step *s = report_begin(&k->rep, name);
	char line[MX_NAME_MAX + 8];
	snprintf(line, sizeof line, "EHLO %s", k->helo);
	if (!check_cmd(k, line)) {
		check_end_lost(k, s);
		return -1;
	}
	if (k->r.code != 250)
		return check_helo(k, s);
	k->esmtp = true;
	smtp_ehlo_parse(&k->r, &k->ext);
	check_ext_details(k, s);
	report_end(&k->rep, s, REPORT_PASS, "250: %zu extension%s announced", k->r.nlines - 1,
		   k->r.nlines == 2 ? "" : "s");
	return 0;
}

/* ------------------------------------------------------------ STARTTLS */

static enum report_status check_tls_details(struct check *k, struct report_step *s,
					    const struct smtpc_tls_facts *ti, const char *name)
{
	report_detail(s, "protocol:    %s", ti->version);
	report_detail(s, "cipher:      %s", ti->cipher);
	report_detail(s, "subject:     %s", ti->subject);
	report_detail(s, "issuer:      %s", ti->issuer);
	report_detail(s, "expires:     %s (%s%ld days)", ti->not_after,
		      ti->days_left < 0 ? "EXPIRED " : "in ", labs(ti->days_left));
	report_detail(s, "name:        %s %s the certificate", name,
		      ti->name_ok ? "matches" : "does NOT match");
	report_detail(s, "chain:       %s", ti->chain_ok ? "verifies" : ti->verify_error);
	(void)k;
	return ti->name_ok && ti->chain_ok && ti->days_left >= 0 ? REPORT_PASS : REPORT_WARN;
}

static int check_starttls(struct check *k)
{
	const struct check_opts *o = k->o;
	if (o->no_tls || !k->esmtp)
		return 0;
	struct report_step *s = report_begin(&k->rep, "starttls");
	if (!k->ext.starttls) {
		report_end(&k->rep, s, o->require_tls ? REPORT_FAIL : REPORT_WARN,
			   "STARTTLS not offered: mail to this server travels unencrypted");
		return 0;
	}
	if (!check_cmd(k, "STARTTLS")) {
		check_end_lost(k, s);
		return -1;
	}
	if (k->r.code != 220) {
		check_end_reply(k, s, o->require_tls ? REPORT_FAIL : REPORT_WARN,
				"STARTTLS refused");
		return 0;
	}
	struct smtpc_tls_facts ti;
	const char *name = o->tls_name ? o->tls_name : k->host;
	if (probe_conn_tls(&k->c, name, o->cafile, &ti) < 0) {
		report_end(&k->rep, s, REPORT_FAIL, "%s", k->c.err);
		return -1;
	}
	k->tls = true;
	enum report_status st = check_tls_details(k, s, &ti, name);
	report_end(&k->rep, s, st, "%s %s; certificate %s", ti.version, ti.cipher,
		   st == REPORT_PASS ? "valid" : "has problems (see below)");
	return check_ehlo(k, "ehlo (tls)");
}

/* ------------------------------------------------------------ transport */

static const char *check_yes(bool b)
{
	return b ? "offered" : "not offered";
}

/* What the last EHLO offered for how mail travels: REQUIRETLS (RFC
 * 8689), SMTPUTF8 (RFC 6531), CHUNKING (RFC 3030), 8BITMIME (RFC 6152).
 * A combination an RFC forbids is a warning. */
static void check_transport(struct check *k)
{
	if (!k->esmtp)
		return;
	const struct smtp_ext *x = &k->ext;
	struct report_step *s = report_begin(&k->rep, "transport");
	enum report_status st = REPORT_PASS;
	report_detail(s, "REQUIRETLS  %s%s", check_yes(x->requiretls), x->requiretls ?
		      ": mail sent with REQUIRETLS can come here" : k->tls ?
		      ": mail sent with REQUIRETLS is returned, or goes to another MX" :
		      " (a server lists it only under TLS)");
	report_detail(s, "SMTPUTF8    %s%s", check_yes(x->smtputf8), x->smtputf8 ? "" :
		      ": mail to or from UTF-8 addresses is returned to its senders");
	report_detail(s, "CHUNKING    %s%s", check_yes(x->chunking), x->chunking ?
		      ": BDAT, no dot-stuffing" : "");
	report_detail(s, "8BITMIME    %s", check_yes(x->eightbitmime));
	if (x->requiretls && !k->tls) {
		report_advice(s, "list REQUIRETLS only after STARTTLS (RFC 8689 4.1)");
		st = REPORT_WARN;
	}
	if (x->smtputf8 && !x->eightbitmime) {
		report_advice(s, "list 8BITMIME too: SMTPUTF8 needs it (RFC 6531 3.1)");
		st = REPORT_WARN;
	}
	report_end(&k->rep, s, st, "REQUIRETLS %s, SMTPUTF8 %s, CHUNKING %s",
		   x->requiretls ? "yes" : "no", x->smtputf8 ? "yes" : "no",
		   x->chunking ? "yes" : "no");
}

/* ------------------------------------------------------------ relay test */

struct check_trick {
	const char *what;
	const char *mail;   /* format: %1$s outside domain, %2$s local domain, %3$s IP */
	const char *rcpt;
	bool route_trick;   /* accepted only means relaying if % or ! routing is on */
};

static const struct check_trick check_tricks[] = {
	{ "plain outside recipient", "relaytest@%1$s", "relaytest@%1$s", false },
	{ "null sender", "", "relaytest@%1$s", false },
	{ "local sender", "postmaster@%2$s", "relaytest@%1$s", false },
	{ "quoted local part", "relaytest@%1$s", "\"relaytest@%1$s\"@%2$s", true },
	{ "source route (RFC 5321 C)", "relaytest@%1$s", "@%2$s:relaytest@%1$s", false },
	{ "trailing dot", "relaytest@%1$s", "relaytest@%1$s.", false },
	{ "percent hack", "relaytest@%1$s", "relaytest%%%1$s@%2$s", true },
	{ "percent hack to the address", "relaytest@%1$s", "relaytest%%%1$s@[%3$s]", true },
	{ "bang path", "relaytest@%1$s", "%1$s!relaytest@%2$s", true },
	{ "double @", "relaytest@%1$s", "relaytest@%1$s@%2$s", true },
};

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
static void check_trick_addr(struct buf *b, const char *fmt, const struct check *k,
			     const char *local)
{
	const char *outside = k->o->outside ? k->o->outside : "example.net";
	buf_printf(b, fmt, outside, local, k->ip);
}
#pragma GCC diagnostic pop

/* One trick: 1 accepted, 0 refused, -1 connection lost. */
static int check_trick_run(struct check *k, struct report_step *s,
			   const struct check_trick *t, const char *local)
{
	struct buf mail = BUF_INIT, rcpt = BUF_INIT, said = BUF_INIT;
	buf_puts(&mail, "MAIL FROM:<");
	check_trick_addr(&mail, t->mail, k, local);
	buf_puts(&mail, ">");
	buf_puts(&rcpt, "RCPT TO:<");
	check_trick_addr(&rcpt, t->rcpt, k, local);
	buf_puts(&rcpt, ">");
	int rc = -1;
	if (check_cmd(k, buf_cstr(&mail))) {
		rc = 0;
		if (k->r.code / 100 == 2 && (rc = check_cmd(k, buf_cstr(&rcpt)) ? 0 : -1) == 0)
			rc = k->r.code / 100 == 2;
		check_said(&k->r, &said);
		report_detail(s, "%-28s %s -> %s%s", t->what, buf_cstr(&rcpt) + 8,
			      rc == 1 ? "ACCEPTED: " : "refused: ", buf_cstr(&said));
		if (rc >= 0 && !check_cmd(k, "RSET"))
			rc = -1;
	}
	buf_free(&mail);
	buf_free(&rcpt);
	buf_free(&said);
	return rc;
}

/* Seed 001: "550 5.7.1 Unable to relay" vs "250 2.1.5". Stops at RCPT. */
static int check_relay(struct check *k)
{
	if (!k->o->relay_test)
		return 0;
	struct report_step *s = report_begin(&k->rep, "relay");
	const char *local = k->mx_found ? k->o->target : k->server;
	int open = 0, maybe = 0, n = 0;
	for (size_t i = 0; i < sizeof check_tricks / sizeof check_tricks[0]; i++, n++) {
		int rc = check_trick_run(k, s, &check_tricks[i], local);
		if (rc < 0) {
			report_end(&k->rep, s, REPORT_FAIL, "the connection was lost after %d "
				   "attempts: %s", n, k->c.err);
			return -1;
		}
		if (rc == 1)
			*(check_tricks[i].route_trick ? &maybe : &open) += 1;
	}
	if (open)
		report_end(&k->rep, s, REPORT_FAIL, "OPEN RELAY: the server accepted mail from "
			   "an outside sender to an outside recipient (%d of %d attempts) from "
			   "this client [%s]", open, n, k->ip);
	else if (maybe)
		report_end(&k->rep, s, REPORT_WARN, "probably not an open relay, but %d routing "
			   "trick%s accepted at RCPT: check that they bounce instead of relaying",
			   maybe, maybe == 1 ? " was" : "s were");
	else
		report_end(&k->rep, s, REPORT_PASS, "not an open relay: all %d attempts to relay "
			   "were refused", n);
	return 0;
}

/* ------------------------------------------------------------ AUTH */

/* --auth-mech, else PLAIN when offered, else LOGIN. */
static const char *check_auth_mech(struct check *k)
{
	if (k->o->auth_mech)
		return k->o->auth_mech;
	return k->ext.auth_mechs & SMTP_AUTH_PLAIN ? "PLAIN" : "LOGIN";
}

static int check_auth(struct check *k)
{
	const struct check_opts *o = k->o;
	if (!o->user)
		return 0;
	struct report_step *s = report_begin(&k->rep, "auth");
	if (!k->ext.auth) {
		report_end(&k->rep, s, REPORT_FAIL, "the server does not offer AUTH%s", k->tls ?
			   "" : " (many servers offer it only after STARTTLS)");
		return 0;
	}
	const char *mech = check_auth_mech(k);
	int rc = probe_conn_auth(&k->c, mech, o->user, o->password ? o->password : "", &k->r);
	if (rc < 0 && !smtp_auth_mech(mech)) {
		report_end(&k->rep, s, REPORT_FAIL, "%s", k->c.err);
		return 0;
	}
	if (rc < 0) {
		check_end_lost(k, s);
		return -1;
	}
	char what[300];
	snprintf(what, sizeof what, "%s as %s with %s%s", k->r.code == 235 ? "logged in" :
		 "login failed", o->user, mech, k->tls ? " over TLS" : " without TLS");
	check_end_reply(k, s, k->r.code == 235 ? REPORT_PASS : REPORT_FAIL, what);
	return 0;
}

/* ------------------------------------------------------------ transaction */

static int check_mail(struct check *k)
{
	struct report_step *s = report_begin(&k->rep, "mail");
	char line[700];
	snprintf(line, sizeof line, "MAIL FROM:<%s>", k->from);
	if (!check_cmd(k, line)) {
		check_end_lost(k, s);
		return -1;
	}
	bool ok = k->r.code == 250;
	check_end_reply(k, s, ok ? REPORT_PASS : REPORT_FAIL,
			ok ? "sender accepted" : "sender refused");
	return ok ? 0 : 1;
}

static int check_rcpt_one(struct check *k, struct report_step *s, const char *to,
			  bool notify)
{
	char line[800];
	snprintf(line, sizeof line, "RCPT TO:<%s>%s%s", to, notify ? " NOTIFY=" : "",
		 notify ? k->o->notify : "");
	if (!check_cmd(k, line))
		return -1;
	struct buf b = BUF_INIT;
	check_said(&k->r, &b);
	report_detail(s, "%s: %s", to, buf_cstr(&b));
	buf_free(&b);
	return k->r.code / 100 == 2;
}

static int check_rcpt(struct check *k)
{
	struct report_step *s = report_begin(&k->rep, "rcpt");
	bool notify = k->o->notify && k->ext.dsn;
	if (k->o->notify && !notify)
		report_detail(s, "the server does not offer DSN: NOTIFY=%s not sent", k->o->notify);
	int ok = 0;
	for (int i = 0; i < k->o->nto; i++) {
		int rc = check_rcpt_one(k, s, k->o->to[i], notify);
		if (rc < 0) {
			check_end_lost(k, s);
			return -1;
		}
		ok += rc;
	}
	enum report_status st = ok == k->o->nto ? REPORT_PASS : REPORT_FAIL;
	if (st == REPORT_PASS && k->o->notify && !notify)
		st = REPORT_WARN;
	report_end(&k->rep, s, st, "%d of %d recipient%s accepted%s", ok, k->o->nto,
		   k->o->nto == 1 ? "" : "s", notify ? ", delivery receipts requested" : "");
	return ok;
}

/* Seed 002's test message: "Subject: Test from Contoso". */
static void check_message(struct check *k, struct buf *m)
{
	char date[64];
	time_t now = time(NULL);
	struct tm tm;
	strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S %z", localtime_r(&now, &tm));
	buf_printf(m, "From: <%s>\r\nTo: <%s>\r\nSubject: Test from %s\r\nDate: %s\r\n"
		   "Message-ID: <%lld.%d@%s>\r\n\r\n", k->from, k->o->to[0], k->helo, date,
		   (long long)now, (int)getpid(), k->helo);
	buf_printf(m, "This is a test message\r\n\r\nSent by tern-probe to %s [%s] at %s.\r\n",
		   k->host, k->ip, date);
}

static int check_data(struct check *k)
{
	struct report_step *s = report_begin(&k->rep, "data");
	if (!check_cmd(k, "DATA")) {
		check_end_lost(k, s);
		return -1;
	}
	if (k->r.code != 354) {
		check_end_reply(k, s, REPORT_FAIL, "DATA refused");
		return 0;
	}
	struct buf m = BUF_INIT;
	check_message(k, &m);
	int rc = probe_conn_data(&k->c, m.data, m.len, &k->r);
	buf_free(&m);
	if (rc < 0) {
		check_end_lost(k, s);
		return -1;
	}
	bool ok = k->r.code == 250;
	check_end_reply(k, s, ok ? REPORT_PASS : REPORT_FAIL,
			ok ? "test message accepted" : "test message refused");
	return 0;
}

static int check_transaction(struct check *k)
{
	const struct check_opts *o = k->o;
	if (!o->from && o->nto == 0 && !o->send)
		return 0;
	int rc = check_mail(k);
	if (rc != 0)
		return rc < 0 ? -1 : 0;
	if (o->nto == 0) {
		struct report_step *s = report_begin(&k->rep, "rcpt");
		report_end(&k->rep, s, REPORT_SKIP, "no recipient given (--to)");
		return check_cmd(k, "RSET") ? 0 : -1;
	}
	rc = check_rcpt(k);
	if (rc < 0)
		return -1;
	if (o->send && rc > 0)
		return check_data(k);
	return check_cmd(k, "RSET") ? 0 : -1;
}

static void check_quit(struct check *k)
{
	struct report_step *s = report_begin(&k->rep, "quit");
	if (!check_cmd(k, "QUIT")) {
		report_end(&k->rep, s, REPORT_WARN, "no reply to QUIT: %s", k->c.err);
		return;
	}
	check_end_reply(k, s, k->r.code == 221 ? REPORT_PASS : REPORT_WARN, "goodbye");
}

/* ------------------------------------------------------------ the run */

static void check_session(struct check *k, int port)
{
	if (check_connect(k, port) < 0 || check_greeting(k) < 0 ||
	    check_ehlo(k, "ehlo") < 0 || check_starttls(k) < 0)
		return;
	check_transport(k);
	if (check_relay(k) < 0 || check_auth(k) < 0 || check_transaction(k) < 0)
		return;
	check_quit(k);
}

static int check_setup(struct check *k, const struct check_opts *o, struct mx_target *t)
{
	char err[300] = "";
	memset(k, 0, sizeof *k);
	k->o = o;
	report_init(&k->rep, stdout, o->json, o->verbose, o->target);
	probe_conn_init(&k->c, o->timeout_ms);
	smtp_reply_init(&k->r);
	k->c.trace = report_trace;
	k->c.trace_arg = &k->rep;
	check_default_names(k);
	if (mx_target_parse(o->target, t) == 0 &&
	    (k->mx = mx_new(o->resolver, o->timeout_ms, err, sizeof err)))
		return 0;
	struct report_step *s = report_begin(&k->rep, "target");
	if (err[0])
		report_end(&k->rep, s, REPORT_FAIL, "%s", err);
	else
		report_end(&k->rep, s, REPORT_FAIL, "not a host[:port] or a mail domain: %s",
			   o->target);
	return -1;
}

/* A mail domain's transport security, as doctor sees it: DANE, MTA-STS
 * and TLS-RPT (doctor_transport); only for a domain given without a port
 * whose MX records were found (not a null MX). */
static void check_domain(struct check *k, const struct mx_target *t)
{
	const struct check_opts *o = k->o;
	if (!k->mx_found || t->literal || t->port || strcmp(k->mxl.hosts[0].name, ".") == 0)
		return;
	struct doctor_opts d = { .domain = t->host, .resolver = o->resolver, .cafile = o->cafile,
				 .helo = k->helo, .trust_anchor = o->trust_anchor,
				 .port = o->port, .timeout_ms = o->timeout_ms,
				 .json = o->json, .verbose = o->verbose };
	doctor_transport(&d, &k->mxl, &k->rep);
}

int check_run(const struct check_opts *o)
{
	struct check k;
	struct mx_target t;
	if (check_setup(&k, o, &t) < 0 || check_dns(&k, &t) < 0) {
		k.rep.unreachable = !o->mx_only;
	} else if (!o->mx_only) {
		check_session(&k, t.port ? t.port : o->port);
		check_domain(&k, &t);
	}
	int rc = report_finish(&k.rep);
	probe_conn_free(&k.c);
	smtp_reply_free(&k.r);
	mx_free(k.mx);
	report_free(&k.rep);
	return rc;
}
