/* doctor: a mail domain's health, step by step, each with a verdict and
 * the change that fixes it.
 *
 * The steps: the MX records and each exchanger's addresses (a null MX, an
 * alias, a private address), reverse DNS and forward-confirmed reverse
 * DNS of each address, DNSBL listings (--dnsbl zones only), then each MX's
 * SMTP session (greeting and its name, EHLO, STARTTLS, an open-relay test,
 * postmaster@ and abuse@ at RCPT, never DATA), SPF (tern's parser and
 * evaluator, policy/spf.h, with the domain's own MX addresses), DKIM keys
 * (dkim/key.h) of the selectors given and a few common ones, DMARC
 * (policy/dmarc.h), DANE (TLSA records through a validating resolver,
 * checked against each host's certificate), MTA-STS (the record, the
 * policy fetched over HTTPS, the MX hosts against it) and TLS-RPT.
 *
 * Files: doctor.c the run, MX, rDNS, DNSBL; doctor_smtp.c each MX's
 * session (through conn.c, check's engine); doctor_auth.c SPF, DKIM and
 * DMARC; doctor_dane.c DANE; doctor_sts.c MTA-STS and TLS-RPT. DNS: the MX list through mx.c (libunbound, synchronous), every
 * other record through net/dns.c on a loop of doctor's own, waited for.
 *
 * Addresses on loopback are how a test lab runs: with --resolver given
 * they are taken as reachable (a note), without it they are a failure;
 * private addresses (RFC 1918 and the like) are a warning and are not
 * connected to (senders on the Internet cannot reach them either).
 */
#ifndef TERN_PROBE_DOCTOR_H
#define TERN_PROBE_DOCTOR_H

#include <stdbool.h>

#include "net/dns.h"
#include "net/smtp.h"
#include "tools/probe/conn.h"
#include "tools/probe/mx.h"
#include "tools/probe/report.h"

#define DOCTOR_MAX_SELECTORS 16
#define DOCTOR_MAX_DNSBL 8
#define DOCTOR_MAX_SENDERS 8
#define DOCTOR_RR_MAX 32

struct doctor_opts {
	const char *domain, *resolver, *cafile, *helo;
	const char *trust_anchor;          /* DNSSEC, for DANE: a file, or NULL */
	const char *sender[DOCTOR_MAX_SENDERS];   /* --sending-ip: SPF must pass them */
	int nsender;
	const char *selector[DOCTOR_MAX_SELECTORS];
	int nselector;
	const char *dnsbl[DOCTOR_MAX_DNSBL];
	int ndnsbl;
	int port, timeout_ms;
	bool json, verbose;
};

/* Runs every step, prints the report; the exit status: 0 all passed, 1
 * warnings, 2 failures, 3 could not run. */
int doctor_run(const struct doctor_opts *o);

/* check's end for a mail domain: the DANE, MTA-STS and TLS-RPT steps of
 * o->domain, whose MX hosts are mxl, into check's report. */
void doctor_transport(const struct doctor_opts *o, const struct mx_list *mxl, struct report *rep);

/* ---- shared by doctor*.c ---- */

struct event_base;

struct doctor {
	const struct doctor_opts *o;
	struct report *rep;            /* doctor_run's, or check's */
	struct mx *mx;
	struct mx_list mxl;
	struct event_base *base;       /* net/dns's loop */
	struct dns *dns;
	struct probe_conn c;
	struct smtp_reply r;
	char helo[MX_NAME_MAX];
	char ptr[MX_MAX_HOSTS][MX_MAX_ADDRS][MX_NAME_MAX];   /* each address's PTR name */
};

/* One record set, copied out of net/dns's answer. */
struct doctor_rrs {
	enum dns_status status;
	bool secure, bogus;            /* DNSSEC, from a validating resolver */
	size_t n;
	char *rr[DOCTOR_RR_MAX];       /* NUL-terminated; len octets of rdata (TLSA) */
	size_t len[DOCTOR_RR_MAX];
	char why[256];
	int limit_s;
	bool done, answered, timed_out;
};

/* Looks name up and waits (the dns timeout bounds it); free with
 * doctor_rrs_free. */
void doctor_lookup(struct doctor *d, const char *name, enum dns_type t, struct doctor_rrs *out);
/* The same through another resolver (DANE's validating one). */
void doctor_lookup_on(struct doctor *d, struct dns *dns, const char *name, enum dns_type t,
                      struct doctor_rrs *out);
void doctor_rrs_free(struct doctor_rrs *r);
/* Was address ai of host hi listed by an earlier host (an alias, a
 * shared address)? Its steps are not run twice. */
bool doctor_seen(const struct doctor *d, int hi, int ai);
/* May the SMTP steps connect to ip (see above)? */
bool doctor_reachable(const struct doctor *d, const char *ip);

void doctor_smtp(struct doctor *d);   /* doctor_smtp.c */
void doctor_spf(struct doctor *d);    /* doctor_auth.c */
void doctor_dkim(struct doctor *d);
void doctor_dmarc(struct doctor *d);
void doctor_dane(struct doctor *d);   /* doctor_dane.c */
void doctor_sts(struct doctor *d);    /* doctor_sts.c: MTA-STS and TLS-RPT */

#endif
