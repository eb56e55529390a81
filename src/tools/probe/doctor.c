/* doctor: the run, the MX records, reverse DNS and DNSBLs (see doctor.h). */
#include "tools/probe/doctor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>

#include "lib/util.h"

/* ------------------------------------------------------------ DNS */

static void doctor_rr_cb(void *ctx, const struct dns_rrset *r)
{
	struct doctor_rrs *out = ctx;
	out->answered = true;
	if (out->done)
		return;     /* the time limit came first, in the same loop turn */
	out->status = r->status;
	out->secure = r->secure;
	out->bogus = r->bogus;
	snprintf(out->why, sizeof out->why, "%s", r->why);
	for (size_t i = 0; i < r->n && out->n < DOCTOR_RR_MAX; i++) {
		out->rr[out->n] = util_xcalloc(1, r->rr[i].len + 1);   /* TLSA: binary */
		memcpy(out->rr[out->n], r->rr[i].data, r->rr[i].len);
		out->len[out->n++] = r->rr[i].len;
	}
	out->done = true;
}

static void doctor_lookup_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct doctor_rrs *out = arg;
	if (out->done)
		return;
	out->status = DNS_TEMP;
	snprintf(out->why, sizeof out->why, "no answer within %d s", out->limit_s);
	out->done = out->timed_out = true;
}

void doctor_lookup(struct doctor *d, const char *name, enum dns_type t, struct doctor_rrs *out)
{
	doctor_lookup_on(d, d->dns, name, t, out);
}

/* net/dns's lookups have no limit of their own: the timer here is it. */
void doctor_lookup_on(struct doctor *d, struct dns *dns, const char *name, enum dns_type t,
                      struct doctor_rrs *out)
{
	memset(out, 0, sizeof *out);
	out->limit_s = (d->o->timeout_ms + 999) / 1000;
	struct event *timer = evtimer_new(d->base, doctor_lookup_timeout, out);
	struct timeval tv = { d->o->timeout_ms / 1000, (d->o->timeout_ms % 1000) * 1000 };
	if (!timer || evtimer_add(timer, &tv) != 0) {
		out->status = DNS_TEMP;
		snprintf(out->why, sizeof out->why, "cannot set a timer");
		if (timer)
			event_free(timer);
		return;
	}
	struct dns_lookup *l = dns_lookup(dns, name, t, doctor_rr_cb, out);
	while (!out->done)
		if (event_base_loop(d->base, EVLOOP_ONCE) < 0)
			break;
	if (!out->answered)
		dns_cancel(dns, l);
	event_free(timer);
	if (!out->done) {
		out->status = DNS_TEMP;
		snprintf(out->why, sizeof out->why, "the DNS loop failed");
	}
}

void doctor_rrs_free(struct doctor_rrs *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->rr[i]);
	r->n = 0;
}

bool doctor_seen(const struct doctor *d, int hi, int ai)
{
	const char *ip = d->mxl.hosts[hi].addrs[ai];
	for (int i = 0; i <= hi; i++)
		for (int j = 0; j < (i == hi ? ai : d->mxl.hosts[i].naddrs); j++)
			if (strcmp(d->mxl.hosts[i].addrs[j], ip) == 0)
				return true;
	return false;
}

bool doctor_reachable(const struct doctor *d, const char *ip)
{
	enum mx_scope s = mx_addr_scope(ip);
	return s == MX_SCOPE_PUBLIC || (s == MX_SCOPE_LOOPBACK && d->o->resolver);
}

/* ------------------------------------------------------------ MX */

static void doctor_mx_list(struct doctor *d, struct report_step *s, const char *dom)
{
	for (int i = 0; i < d->mxl.n; i++)
		if (d->mxl.hosts[i].pref >= 0)
			report_detail(s, "%s  MX %d %s", dom, d->mxl.hosts[i].pref,
				      d->mxl.hosts[i].name);
}

/* The MX records as a whole; -1 when there is nothing to go on. */
static int doctor_mx(struct doctor *d)
{
	const char *dom = d->o->domain;
	char err[300] = "";
	struct report_step *s = report_begin(d->rep, "mx");
	int rc = mx_lookup(d->mx, dom, &d->mxl, err, sizeof err);
	if (rc == 1 && d->mxl.n == 0 && !strstr(err, "NXDOMAIN") && !strstr(err, "no A or AAAA"))
		rc = -1;   /* the address lookups of the implicit MX failed */
	doctor_mx_list(d, s, dom);
	if (rc < 0) {
		report_advice(s, "check that the resolver answers, and that %s's name servers "
			      "do (dig +trace %s MX)", dom, dom);
		report_end(d->rep, s, REPORT_FAIL, "the MX lookup failed: %s", err);
		d->rep->unreachable = true;
		return -1;
	}
	if (rc == 1 && d->mxl.n == 0) {
		report_advice(s, "publish an MX record: %s. 3600 IN MX 10 mail.%s.", dom, dom);
		report_end(d->rep, s, REPORT_FAIL, "cannot find where mail for %s goes: %s",
			   dom, err);
		return -1;
	}
	if (rc == 0 && strcmp(d->mxl.hosts[0].name, ".") == 0) {
		report_advice(s, "if %s should receive mail, replace the null MX with: "
			      "%s. 3600 IN MX 10 mail.%s.", dom, dom, dom);
		report_end(d->rep, s, REPORT_FAIL, "%s has a null MX (RFC 7505): it accepts "
			   "no mail", dom);
		return -1;
	}
	if (rc == 1) {
		report_advice(s, "publish an MX record: %s. 3600 IN MX 10 %s.", dom, dom);
		report_end(d->rep, s, REPORT_WARN, "no MX record: mail goes to the domain's "
			   "own address (implicit MX, RFC 5321 5.1)");
		return 0;
	}
	report_end(d->rep, s, REPORT_PASS, "%d MX record%s", d->mxl.n, d->mxl.n == 1 ? "" : "s");
	return 0;
}

static enum report_status doctor_scope(struct doctor *d, struct report_step *s, const char *ip)
{
	switch (mx_addr_scope(ip)) {
	case MX_SCOPE_PUBLIC:
		return REPORT_PASS;
	case MX_SCOPE_LOOPBACK:
		if (d->o->resolver) {
			report_detail(s, "%s is loopback: taken as a test lab's (--resolver)", ip);
			return REPORT_PASS;
		}
		report_advice(s, "publish the server's public address instead of %s", ip);
		return REPORT_FAIL;
	case MX_SCOPE_PRIVATE:
		report_advice(s, "%s is a private address: publish the server's public address "
			      "(not connected to)", ip);
		return REPORT_WARN;
	default:
		report_advice(s, "%s is not a usable address: publish the server's public one", ip);
		return REPORT_FAIL;
	}
}

static enum report_status doctor_worse(enum report_status a, enum report_status b)
{
	static const int rank[] = { [REPORT_PASS] = 0, [REPORT_INFO] = 0, [REPORT_SKIP] = 0,
				    [REPORT_WARN] = 1, [REPORT_FAIL] = 2 };
	return rank[b] > rank[a] ? b : a;
}

/* One exchanger: an alias? its addresses and their scope. */
static void doctor_host(struct doctor *d, struct mx_host *h)
{
	char step[64], canon[MX_NAME_MAX];
	snprintf(step, sizeof step, "host %.58s", h->name);
	struct report_step *s = report_begin(d->rep, step);
	enum report_status st = REPORT_PASS;
	if (h->pref >= 0 && mx_canonical(d->mx, h->name, canon, sizeof canon) == 1) {
		report_advice(s, "an MX must name a host, not an alias (RFC 2181 10.3, RFC 5321 "
			      "5.1): publish %s. 3600 IN MX %d %s.", d->o->domain, h->pref, canon);
		report_end(d->rep, s, REPORT_FAIL, "%s is a CNAME for %s", h->name, canon);
		return;
	}
	if (h->naddrs == 0) {
		report_advice(s, "publish an address for it: %s. 3600 IN A <the server's address>",
			      h->name);
		report_end(d->rep, s, REPORT_FAIL, "%s has no address: %s", h->name, h->err);
		return;
	}
	for (int i = 0; i < h->naddrs; i++) {
		report_detail(s, "%s  %s %s", h->name, strchr(h->addrs[i], ':') ? "AAAA" : "A",
			      h->addrs[i]);
		st = doctor_worse(st, doctor_scope(d, s, h->addrs[i]));
	}
	report_end(d->rep, s, st, st == REPORT_PASS ? "%d address%s" :
		   "%d address%s, not all reachable from the Internet", h->naddrs,
		   h->naddrs == 1 ? "" : "es");
}

/* ------------------------------------------------------------ reverse DNS */

/* Does name's A/AAAA set hold ip? */
static bool doctor_forward(struct doctor *d, const char *name, const char *ip)
{
	struct doctor_rrs rr;
	bool found = false;
	doctor_lookup(d, name, strchr(ip, ':') ? DNS_T_AAAA : DNS_T_A, &rr);
	for (size_t i = 0; i < rr.n; i++)
		found |= strcmp(rr.rr[i], ip) == 0;
	doctor_rrs_free(&rr);
	return found;
}

static void doctor_rdns_end(struct doctor *d, struct report_step *s, const struct mx_host *h,
			    const char *ptr)
{
	if (strcasecmp(ptr, h->name) == 0) {
		report_end(d->rep, s, REPORT_PASS, "PTR %s, forward-confirmed, the MX name", ptr);
		return;
	}
	report_detail(s, "the PTR name is not the MX name %s: fine when the greeting "
		      "names one of them", h->name);
	report_end(d->rep, s, REPORT_PASS, "PTR %s, forward-confirmed", ptr);
}

static void doctor_rdns(struct doctor *d, int hi, int ai)
{
	const struct mx_host *h = &d->mxl.hosts[hi];
	const char *ip = h->addrs[ai];
	char rev[100], step[64], err[200] = "", names[8][MX_NAME_MAX];
	int n = 0;
	snprintf(step, sizeof step, "rdns %s", ip);
	struct report_step *s = report_begin(d->rep, step);
	mx_reverse_name(ip, NULL, rev, sizeof rev);
	int rc = mx_ptr(d->mx, ip, names, 8, &n, err, sizeof err);
	if (n == 0) {
		report_advice(s, "ask the owner of %s (your provider) to publish: "
			      "%s. 3600 IN PTR %s.", ip, rev, h->name);
		report_end(d->rep, s, rc < 0 ? REPORT_WARN : REPORT_FAIL,
			   "no PTR record for %s%s%s: many receivers refuse such senders", ip,
			   rc < 0 ? ": " : "", err);
		return;
	}
	for (int i = 0; i < n; i++) {
		report_detail(s, "%s  PTR %s", rev, names[i]);
		if (doctor_forward(d, names[i], ip) && !d->ptr[hi][ai][0])
			snprintf(d->ptr[hi][ai], MX_NAME_MAX, "%s", names[i]);
	}
	if (d->ptr[hi][ai][0]) {
		doctor_rdns_end(d, s, h, d->ptr[hi][ai]);
		return;
	}
	report_advice(s, "make them agree: %s. 3600 IN PTR %s. and %s. 3600 IN %s %s", rev,
		      h->name, h->name, strchr(ip, ':') ? "AAAA" : "A", ip);
	report_end(d->rep, s, REPORT_FAIL, "PTR %s does not match: its addresses do not "
		   "include %s (no forward-confirmed reverse DNS)", names[0], ip);
}

/* ------------------------------------------------------------ DNSBL */

static void doctor_dnsbl_one(struct doctor *d, const char *ip, const char *zone)
{
	char q[400], step[64];
	snprintf(step, sizeof step, "dnsbl %s %.14s", ip, zone);
	struct report_step *s = report_begin(d->rep, step);
	struct doctor_rrs rr, why;
	if (mx_reverse_name(ip, zone, q, sizeof q) < 0) {
		report_end(d->rep, s, REPORT_SKIP, "not an address");
		return;
	}
	doctor_lookup(d, q, DNS_T_A, &rr);
	if (rr.n == 0) {
		report_end(d->rep, s, rr.status == DNS_TEMP ? REPORT_WARN : REPORT_PASS,
			   rr.status == DNS_TEMP ? "the list did not answer: %s" : "not listed%s",
			   rr.status == DNS_TEMP ? rr.why : "");
		doctor_rrs_free(&rr);
		return;
	}
	doctor_lookup(d, q, DNS_T_TXT, &why);
	for (size_t i = 0; i < why.n; i++)
		report_detail(s, "reason: %s", why.rr[i]);
	report_advice(s, "find why %s is listed (the reason above, the list's web site), fix "
		      "it, then ask %s to delist it", ip, zone);
	report_end(d->rep, s, REPORT_FAIL, "listed (%s)", rr.rr[0]);
	doctor_rrs_free(&rr);
	doctor_rrs_free(&why);
}

/* ------------------------------------------------------------ the run */

static void doctor_addresses(struct doctor *d)
{
	for (int i = 0; i < d->mxl.n; i++)
		for (int j = 0; j < d->mxl.hosts[i].naddrs; j++) {
			const char *ip = d->mxl.hosts[i].addrs[j];
			if (mx_addr_scope(ip) == MX_SCOPE_PRIVATE || doctor_seen(d, i, j))
				continue;
			doctor_rdns(d, i, j);
			for (int z = 0; z < d->o->ndnsbl; z++)
				doctor_dnsbl_one(d, ip, d->o->dnsbl[z]);
		}
}

/* Everything but the report, which is the caller's. */
static int doctor_setup(struct doctor *d, const struct doctor_opts *o, struct report *rep)
{
	char err[300] = "";
	memset(d, 0, sizeof *d);
	d->o = o;
	d->rep = rep;
	probe_conn_init(&d->c, o->timeout_ms);
	smtp_reply_init(&d->r);
	d->c.trace = report_trace;
	d->c.trace_arg = d->rep;
	probe_helo(o->helo, d->helo, sizeof d->helo);
	d->base = event_base_new();
	if (d->base && (d->dns = dns_new(d->base, o->resolver)))
		dns_set_timeout(d->dns, (unsigned)(o->timeout_ms + 999) / 1000);
	if (d->dns && (d->mx = mx_new(o->resolver, o->timeout_ms, err, sizeof err)))
		return 0;
	struct report_step *s = report_begin(d->rep, "resolver");
	report_end(d->rep, s, REPORT_FAIL, "cannot use the resolver: %s",
		   err[0] ? err : "net/dns refused it");
	d->rep->unreachable = true;
	return -1;
}

static void doctor_cleanup(struct doctor *d)
{
	probe_conn_free(&d->c);
	smtp_reply_free(&d->r);
	mx_free(d->mx);
	if (d->dns)
		dns_free(d->dns);
	if (d->base)
		event_base_free(d->base);
}

int doctor_run(const struct doctor_opts *o)
{
	static struct doctor d;
	static struct report rep;
	report_init_cmd(&rep, stdout, o->json, o->verbose, "doctor", o->domain);
	if (doctor_setup(&d, o, &rep) == 0 && doctor_mx(&d) == 0) {
		for (int i = 0; i < d.mxl.n; i++)
			doctor_host(&d, &d.mxl.hosts[i]);
		doctor_addresses(&d);
		doctor_smtp(&d);
	}
	if (d.mx && !rep.unreachable) {
		doctor_spf(&d);
		doctor_dkim(&d);
		doctor_dmarc(&d);
		doctor_sts(&d);
		doctor_dane(&d);
	}
	int rc = report_finish(&rep);
	doctor_cleanup(&d);
	report_free(&rep);
	return rc;
}

void doctor_transport(const struct doctor_opts *o, const struct mx_list *mxl, struct report *rep)
{
	struct doctor *d = util_xcalloc(1, sizeof *d);
	if (doctor_setup(d, o, rep) == 0) {
		d->mxl = *mxl;
		doctor_dane(d);
		doctor_sts(d);
	}
	doctor_cleanup(d);
	free(d);
}
