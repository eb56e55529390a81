/* doctor: each MX's SMTP session, through check's engine (conn.c):
 * greeting, EHLO, STARTTLS, an open-relay test, postmaster@ and abuse@.
 * Never DATA: every transaction ends with RSET, the session with QUIT. */
#include "tools/probe/doctor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tools/probe/check.h"

#define DOCTOR_RELAY_FROM "doctor@example.net"
#define DOCTOR_RELAY_TO "x@doctor-relay-test.invalid"

struct doctor_mx {
	struct doctor *d;
	const struct mx_host *h;
	int hi;
	char ip[46], name[MX_NAME_MAX], server[MX_NAME_MAX];
	struct smtp_ext ext;
};

static char *doctor_step_name(char *out, size_t n, const char *what, const struct doctor_mx *m)
{
	snprintf(out, n, "%s %.50s", what, m->h->name);
	return out;
}

/* Sends line, reads the reply into d->r; false when the connection is gone. */
static bool doctor_cmd(struct doctor *d, const char *line)
{
	if (probe_conn_cmd(&d->c, line, &d->r) < 0) {
		probe_conn_close(&d->c);
		return false;
	}
	return true;
}

static void doctor_end_said(struct doctor *d, struct report_step *s, enum report_status st,
			    const char *what)
{
	struct buf b = BUF_INIT;
	check_said(&d->r, &b);
	report_end(d->rep, s, st, "%s: %s", what, buf_cstr(&b));
	buf_free(&b);
}

static int doctor_lost(struct doctor *d, struct report_step *s)
{
	report_end(d->rep, s, REPORT_FAIL, "no reply: %s", d->c.err);
	return -1;
}

/* Only this host's reachable addresses. */
static int doctor_connect(struct doctor_mx *m)
{
	struct doctor *d = m->d;
	char step[64];
	struct mx_list one;
	memset(&one, 0, sizeof one);
	one.hosts[0] = *m->h;
	one.hosts[0].naddrs = 0;
	for (int i = 0; i < m->h->naddrs; i++)
		if (doctor_reachable(d, m->h->addrs[i]))
			memcpy(one.hosts[0].addrs[one.hosts[0].naddrs++], m->h->addrs[i], 46);
	one.n = 1;
	struct report_step *s = report_begin(d->rep, doctor_step_name(step, sizeof step,
								       "connect", m));
	struct buf log = BUF_INIT;
	int rc = one.hosts[0].naddrs ? probe_conn_open(&d->c, &one, d->o->port, m->name, m->ip,
							&log) : -1;
	buf_puts(&s->details, buf_cstr(&log));
	buf_free(&log);
	if (rc < 0) {
		report_advice(s, "let port %d through to the server, and start it", d->o->port);
		report_end(d->rep, s, REPORT_FAIL, "could not connect on port %d", d->o->port);
		return -1;
	}
	report_end(d->rep, s, REPORT_PASS, "connected to %s port %d", m->ip, d->o->port);
	return 0;
}

/* Does the greeting's name match the MX name or a PTR name of it? */
static bool doctor_banner_ok(const struct doctor_mx *m)
{
	if (strcasecmp(m->server, m->h->name) == 0)
		return true;
	for (int i = 0; i < m->h->naddrs; i++)
		if (strcasecmp(m->server, m->d->ptr[m->hi][i]) == 0)
			return true;
	return false;
}

static int doctor_greeting(struct doctor_mx *m)
{
	struct doctor *d = m->d;
	char step[64];
	struct report_step *s = report_begin(d->rep, doctor_step_name(step, sizeof step,
								       "greeting", m));
	if (probe_conn_reply(&d->c, &d->r) < 0)
		return doctor_lost(d, s);
	const char *t = smtp_reply_last(&d->r);
	snprintf(m->server, sizeof m->server, "%.*s", (int)strcspn(t, " "), t);
	if (d->r.code != 220) {
		doctor_end_said(d, s, REPORT_FAIL, "no service");
		return -1;
	}
	report_detail(s, "server name: %s", m->server);
	if (doctor_banner_ok(m)) {
		report_end(d->rep, s, REPORT_PASS, "220 %s: the MX or PTR name", m->server);
		return 0;
	}
	report_advice(s, "set the server's host name (tern: hostname = %s) or publish a PTR "
		      "record for its address that names %s", m->h->name, m->server);
	report_end(d->rep, s, REPORT_WARN, "the greeting names %s, neither the MX name nor "
		   "the PTR name", m->server);
	return 0;
}

static int doctor_ehlo(struct doctor_mx *m, const char *what)
{
	struct doctor *d = m->d;
	char step[64], line[MX_NAME_MAX + 8];
	struct report_step *s = report_begin(d->rep, doctor_step_name(step, sizeof step, what, m));
	snprintf(line, sizeof line, "EHLO %s", d->helo);
	if (!doctor_cmd(d, line))
		return doctor_lost(d, s);
	if (d->r.code != 250) {
		doctor_end_said(d, s, REPORT_FAIL, "EHLO refused");
		return -1;
	}
	smtp_ehlo_parse(&d->r, &m->ext);
	report_end(d->rep, s, REPORT_PASS, "250: %zu extension%s", d->r.nlines - 1,
		   d->r.nlines == 2 ? "" : "s");
	return 0;
}

static enum report_status doctor_tls_facts(struct doctor_mx *m, struct report_step *s,
					   const struct smtpc_tls_facts *f)
{
	enum report_status st = REPORT_PASS;
	report_detail(s, "protocol:    %s %s", f->version, f->cipher);
	report_detail(s, "subject:     %s", f->subject);
	report_detail(s, "issuer:      %s", f->issuer);
	report_detail(s, "expires:     %s (%ld days)", f->not_after, f->days_left);
	if (!f->name_ok) {
		report_advice(s, "get a certificate that names %s", m->h->name);
		st = REPORT_FAIL;
	}
	if (!f->chain_ok) {
		report_advice(s, "the chain does not verify (%s): install the intermediate "
			      "certificates, or use a CA senders trust", f->verify_error);
		st = st == REPORT_PASS ? REPORT_WARN : st;
	}
	if (f->days_left < 0) {
		report_advice(s, "the certificate has expired: renew it");
		st = REPORT_FAIL;
	} else if (f->days_left < 14) {
		report_advice(s, "the certificate expires in %ld days: renew it", f->days_left);
		st = st == REPORT_PASS ? REPORT_WARN : st;
	}
	if (strcmp(f->version, "TLSv1") == 0 || strcmp(f->version, "TLSv1.1") == 0) {
		report_advice(s, "%s is obsolete (RFC 8996): offer TLS 1.2 or 1.3", f->version);
		st = st == REPORT_PASS ? REPORT_WARN : st;
	}
	return st;
}

static int doctor_starttls(struct doctor_mx *m)
{
	struct doctor *d = m->d;
	char step[64];
	struct report_step *s = report_begin(d->rep, doctor_step_name(step, sizeof step,
								       "starttls", m));
	if (!m->ext.starttls) {
		report_advice(s, "configure a certificate (tern: tls_cert, tls_key)");
		report_end(d->rep, s, REPORT_FAIL, "STARTTLS not offered: mail arrives in clear");
		return 0;
	}
	if (!doctor_cmd(d, "STARTTLS"))
		return doctor_lost(d, s);
	if (d->r.code != 220) {
		doctor_end_said(d, s, REPORT_FAIL, "STARTTLS refused");
		return 0;
	}
	struct smtpc_tls_facts f;
	if (probe_conn_tls(&d->c, m->h->name, d->o->cafile, &f) < 0) {
		report_end(d->rep, s, REPORT_FAIL, "%s", d->c.err);
		return -1;
	}
	enum report_status st = doctor_tls_facts(m, s, &f);
	report_end(d->rep, s, st, "%s, certificate %s, %ld days to expiry", f.version,
		   st == REPORT_PASS ? "valid" : "has problems", f.days_left);
	return doctor_ehlo(m, "ehlo-tls");
}

/* MAIL from, then RCPT to; the RCPT reply in d->r. -1: connection lost. */
static int doctor_try(struct doctor *d, const char *from, const char *to, int *mail_code)
{
	char line[600];
	snprintf(line, sizeof line, "MAIL FROM:<%s>", from);
	if (!doctor_cmd(d, line))
		return -1;
	*mail_code = d->r.code;
	if (d->r.code == 250) {
		snprintf(line, sizeof line, "RCPT TO:<%s>", to);
		if (!doctor_cmd(d, line))
			return -1;
	}
	int rcpt = d->r.code;
	struct smtp_reply keep = d->r;
	smtp_reply_init(&d->r);
	bool ok = doctor_cmd(d, "RSET");
	smtp_reply_free(&d->r);
	d->r = keep;
	d->r.code = rcpt;
	return ok ? 0 : -1;
}

static int doctor_relay(struct doctor_mx *m)
{
	struct doctor *d = m->d;
	char step[64];
	int mc;
	struct report_step *s = report_begin(d->rep, doctor_step_name(step, sizeof step,
								       "relay", m));
	if (doctor_try(d, DOCTOR_RELAY_FROM, DOCTOR_RELAY_TO, &mc) < 0)
		return doctor_lost(d, s);
	if (mc != 250 || d->r.code / 100 != 2) {
		doctor_end_said(d, s, REPORT_PASS, "relaying refused");
		return 0;
	}
	report_advice(s, "accept mail for other domains only from your own users: "
		      "authenticated clients or trusted networks (tern: relay_networks)");
	doctor_end_said(d, s, REPORT_FAIL, "OPEN RELAY: a stranger's mail to a stranger "
			"was accepted");
	return 0;
}

/* RFC 5321 4.5.1 (postmaster, required), RFC 2142 (abuse, expected). */
static int doctor_role(struct doctor_mx *m, const char *role, enum report_status missing)
{
	struct doctor *d = m->d;
	char step[64], to[400];
	int mc;
	snprintf(to, sizeof to, "%s@%s", role, d->o->domain);
	struct report_step *s = report_begin(d->rep, doctor_step_name(step, sizeof step, role, m));
	if (doctor_try(d, "", to, &mc) < 0)
		return doctor_lost(d, s);
	if (mc == 250 && d->r.code / 100 == 2) {
		doctor_end_said(d, s, REPORT_PASS, to);
		return 0;
	}
	report_advice(s, "accept %s, even from the null sender: make it an alias of a "
		      "mailbox someone reads (%s)", to, strcmp(role, "postmaster") == 0 ?
		      "RFC 5321 4.5.1" : "RFC 2142");
	doctor_end_said(d, s, missing, mc == 250 ? "refused" : "MAIL FROM:<> refused");
	return 0;
}

static void doctor_quit(struct doctor *d)
{
	doctor_cmd(d, "QUIT");
	probe_conn_close(&d->c);
}

static void doctor_session(struct doctor_mx *m)
{
	if (doctor_connect(m) < 0)
		return;
	if (doctor_greeting(m) < 0 || doctor_ehlo(m, "ehlo") < 0 || doctor_starttls(m) < 0 ||
	    doctor_relay(m) < 0 || doctor_role(m, "postmaster", REPORT_FAIL) < 0 ||
	    doctor_role(m, "abuse", REPORT_WARN) < 0) {
		probe_conn_close(&m->d->c);
		return;
	}
	doctor_quit(m->d);
}

void doctor_smtp(struct doctor *d)
{
	for (int i = 0; i < d->mxl.n; i++) {
		struct doctor_mx m = { .d = d, .h = &d->mxl.hosts[i], .hi = i };
		bool any = false, fresh = false;
		for (int j = 0; j < m.h->naddrs; j++) {
			any |= doctor_reachable(d, m.h->addrs[j]);
			fresh |= doctor_reachable(d, m.h->addrs[j]) && !doctor_seen(d, i, j);
		}
		if (!any || !fresh) {
			char step[64];
			report_end(d->rep, report_begin(d->rep, doctor_step_name(step, sizeof step,
				   "connect", &m)), REPORT_SKIP, !any ? "no address reachable from "
				   "the Internet" : "its addresses were tested under an earlier MX");
			continue;
		}
		doctor_session(&m);
	}
}
