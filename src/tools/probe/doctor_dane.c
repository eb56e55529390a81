/* doctor_dane: DANE for the domain's MX hosts (RFC 7672). Each host's
 * TLSA records at _PORT._tcp.HOST, looked up through a validating
 * resolver (the trust anchor of --trust-anchor; without --resolver,
 * Debian's root key): secure and usable records are checked against the
 * certificate the host presents, in a session of their own with
 * OpenSSL's DANE (the same code ternd delivers with: net/tls.c); records
 * in an unsigned zone are ignored by every sender (a warning), a bogus
 * answer makes DANE senders defer all mail (a failure). DANE is
 * optional: no records at all is a skip, with the record to publish.
 */
#include "tools/probe/doctor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/util.h"
#include "net/tlsa.h"

#define DOCTOR_ROOT_KEY "/usr/share/dns/root.key"

/* The validating resolver, or NULL when there is no trust anchor. */
static struct dns *doctor_dnssec(struct doctor *d, const char **anchor)
{
	*anchor = d->o->trust_anchor;
	if (!*anchor && !d->o->resolver && access(DOCTOR_ROOT_KEY, R_OK) == 0)
		*anchor = DOCTOR_ROOT_KEY;
	if (!*anchor)
		return NULL;
	struct dns *v = dns_new_validating(d->base, d->o->resolver, *anchor);
	if (v)
		dns_set_timeout(v, (unsigned)(d->o->timeout_ms + 999) / 1000);
	return v;
}

/* The host's TLSA records through the validating resolver. */
static void doctor_tlsa_lookup(struct doctor *d, struct dns *v, const char *host,
                               struct doctor_rrs *t)
{
	char name[MX_NAME_MAX + 32];
	snprintf(name, sizeof name, "_%d._tcp.%s", d->o->port, host);
	doctor_lookup_on(d, v, name, DNS_T_TLSA, t);
}

/* A session with DANE: connect, EHLO, STARTTLS, the match. */
static void doctor_dane_session(struct doctor *d, const struct mx_host *h,
                                const struct tlsa_host *th)
{
	char step[MX_NAME_MAX + 8], name[MX_NAME_MAX], ip[46], match[160];
	snprintf(step, sizeof step, "dane %s", h->name);
	struct report_step *s = report_begin(d->rep, step);
	struct mx_list one = { .n = 1 };
	one.hosts[0] = *h;
	one.hosts[0].naddrs = 0;
	for (int i = 0; i < h->naddrs; i++)   /* as the SMTP steps: reachable ones only */
		if (doctor_reachable(d, h->addrs[i]))
			memcpy(one.hosts[0].addrs[one.hosts[0].naddrs++], h->addrs[i], 46);
	struct buf log = BUF_INIT;
	char line[MX_NAME_MAX + 8];
	snprintf(line, sizeof line, "EHLO %s", d->helo);
	int rc = one.hosts[0].naddrs ? probe_conn_open(&d->c, &one, d->o->port, name, ip, &log)
	                             : -1;
	buf_free(&log);
	if (rc < 0 || probe_conn_reply(&d->c, &d->r) < 0 || d->r.code != 220 ||
	    probe_conn_cmd(&d->c, line, &d->r) < 0 || d->r.code != 250 ||
	    probe_conn_cmd(&d->c, "STARTTLS", &d->r) < 0 || d->r.code != 220) {
		report_end(d->rep, s, REPORT_FAIL, "no TLS session to check the records against: %s",
		           d->c.err[0] ? d->c.err : smtp_reply_last(&d->r));
		return probe_conn_close(&d->c);
	}
	rc = probe_conn_tls_dane(&d->c, th, match, sizeof match);
	if (rc == 1) {
		report_end(d->rep, s, REPORT_PASS, "TLSA %s matches the certificate", match);
	} else {
		report_advice(s, "publish a TLSA record of the certificate the server presents (for "
		              "its key: \"3 1 1\" and the SHA-256 of its public key), keep the old one "
		              "until the new certificate is in use");
		report_end(d->rep, s, REPORT_FAIL, "%s: DANE senders defer every message",
		           rc == 0 ? match : d->c.err);
	}
	probe_conn_cmd(&d->c, "QUIT", &d->r);
	probe_conn_close(&d->c);
}

/* One host's records judged; usable ones into th, to be checked in a
 * session once the summary is out. */
static enum report_status doctor_dane_host(struct doctor *d, struct dns *v,
                                           const struct mx_host *h, struct report_step *s,
                                           bool *any, struct tlsa_host *th)
{
	struct doctor_rrs t;
	doctor_tlsa_lookup(d, v, h->name, &t);
	enum report_status st = REPORT_PASS;
	if (t.bogus || (t.status == DNS_TEMP && t.secure)) {
		report_detail(s, "%s: the TLSA answer is bogus (DNSSEC): %s", h->name, t.why);
		report_advice(s, "re-sign the zone of %s: DANE senders defer its mail", h->name);
		st = REPORT_FAIL;
		*any = true;
	} else if (t.status == DNS_TEMP) {
		report_detail(s, "%s: the TLSA lookup failed: %s", h->name, t.why);
		st = REPORT_WARN;
	} else if (t.n && !t.secure) {
		report_detail(s, "%s: %zu TLSA record%s, but the zone is not DNSSEC-signed: every "
		              "sender ignores them", h->name, t.n, t.n == 1 ? "" : "s");
		report_advice(s, "sign the zone of %s (DNSSEC), or remove its TLSA records", h->name);
		st = REPORT_WARN;
		*any = true;
	} else if (t.n) {
		snprintf(th->name, sizeof th->name, "%s", h->name);
		tlsa_host_judge(th, (const char *const *)t.rr, t.len, t.n);
		report_detail(s, "%s: %zu TLSA record%s, DNSSEC-secure, %zu usable", h->name, t.n,
		              t.n == 1 ? "" : "s", th->n);
		if (th->state == TLSA_UNUSABLE) {
			report_advice(s, "use DANE-EE(3) or DANE-TA(2) records for SMTP (RFC 7672 3.1.3)");
			st = REPORT_WARN;
		}
		*any = true;
	} else {
		report_detail(s, "%s: no TLSA records%s", h->name, t.secure ? " (secure denial)" : "");
	}
	doctor_rrs_free(&t);
	return st;
}

static void doctor_dane_end(struct doctor *d, struct report_step *s, enum report_status st,
                            bool any);

void doctor_dane(struct doctor *d)
{
	struct report_step *s = report_begin(d->rep, "dane");
	const char *anchor;
	struct dns *v = doctor_dnssec(d, &anchor);
	if (!v) {
		report_end(d->rep, s, REPORT_SKIP, "no DNSSEC trust anchor to validate with "
		           "(--trust-anchor FILE)");
		return;
	}
	report_detail(s, "trust anchor: %s", anchor);
	enum report_status st = REPORT_PASS;
	bool any = false;
	struct tlsa_host *th = util_xcalloc((size_t)d->mxl.n + 1, sizeof *th);
	for (int i = 0; i < d->mxl.n; i++) {
		enum report_status h = doctor_dane_host(d, v, &d->mxl.hosts[i], s, &any, &th[i]);
		if (h == REPORT_FAIL || (h == REPORT_WARN && st == REPORT_PASS))
			st = h;
	}
	dns_free(v);
	doctor_dane_end(d, s, st, any);
	for (int i = 0; i < d->mxl.n; i++) {
		if (th[i].state == TLSA_USABLE && th[i].n)
			doctor_dane_session(d, &d->mxl.hosts[i], &th[i]);
		for (size_t k = 0; k < th[i].n; k++)
			tlsa_rr_free(&th[i].rr[k]);
	}
	free(th);
}

static void doctor_dane_end(struct doctor *d, struct report_step *s, enum report_status st,
                            bool any)
{
	if (!any) {
		report_detail(s, "to let senders insist on TLS with your certificate (optional): sign "
		              "the zone of the MX hosts (DNSSEC) and publish \"_%d._tcp.MXHOST. IN "
		              "TLSA 3 1 1 <SHA-256 of the server's public key>\"", d->o->port);
		report_end(d->rep, s, REPORT_SKIP, "no MX host publishes TLSA records (DANE, "
		           "optional)");
		return;
	}
	report_end(d->rep, s, st, st == REPORT_PASS ? "TLSA records DNSSEC-secure (each host's "
	           "match below)" : "problems with the TLSA records");
}
