/* doctor_sts: MTA-STS (RFC 8461) and TLS-RPT (RFC 8460) of the domain,
 * judged with the parsers ternd delivers with (net/mtasts.c,
 * net/tlsrpt.c) and the policy fetched as ternd fetches it (net/httpc.c:
 * HTTPS on port 443 of mta-sts.DOMAIN, no redirects, text/plain, at most
 * 64 KiB, the certificate checked against the WebPKI and --cafile). The
 * steps: "mta-sts" the _mta-sts TXT record, "mta-sts policy" the policy
 * file, "mta-sts mx" the domain's MX hosts against its mx patterns,
 * "tls-rpt" the _smtp._tls record.
 */
#include "tools/probe/doctor.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/util.h"
#include "net/httpc.h"
#include "net/mtasts.h"
#include "net/tlsrpt.h"

struct doctor_fetch {
	bool done;
	bool ok;
	char why[256];
	struct buf body;
};

static void doctor_fetched(void *ctx, const struct httpc_resp *r)
{
	struct doctor_fetch *f = ctx;
	f->done = true;
	f->ok = r->ok;
	snprintf(f->why, sizeof f->why, "%s", r->why);
	if (r->ok)
		buf_append(&f->body, r->body.data ? r->body.data : "", r->body.len);
}

/* The --cafile's text, for curl (it reads no file of its own here). */
static bool doctor_ca(const struct doctor *d, struct buf *out)
{
	if (!d->o->cafile)
		return true;
	FILE *fp = fopen(d->o->cafile, "r");
	if (!fp)
		return false;
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof chunk, fp)) > 0)
		buf_append(out, chunk, n);
	fclose(fp);
	return true;
}

/* GET https://mta-sts.DOMAIN/.well-known/mta-sts.txt at addr. */
static void doctor_sts_get(struct doctor *d, const char *host, const char *addr,
                           struct doctor_fetch *f)
{
	struct buf ca = BUF_INIT;
	if (!doctor_ca(d, &ca)) {
		snprintf(f->why, sizeof f->why, "cannot read --cafile %s", d->o->cafile);
		f->done = true;
		return;
	}
	unsigned secs = (unsigned)(d->o->timeout_ms + 999) / 1000;
	struct httpc_req req = { .host = host, .addr = addr, .port = 443,
	                         .path = "/.well-known/mta-sts.txt",
	                         .ca_pem = ca.len ? ca.data : NULL, .ca_len = ca.len,
	                         .content_type = "text/plain", .max_body = MTASTS_BODY_MAX,
	                         .connect_timeout = secs, .timeout = secs };
	struct httpc *h = httpc_new(d->base);
	struct httpc_get *g = h ? httpc_get(h, &req, doctor_fetched, f) : NULL;
	while (g && !f->done)
		if (event_base_loop(d->base, EVLOOP_ONCE) < 0)
			break;
	if (!f->done)
		snprintf(f->why, sizeof f->why, "the HTTPS request could not be made");
	httpc_free(h);
	buf_free(&ca);
}

/* "mta-sts": the TXT record; its id into id, or false (the step ended). */
static bool doctor_sts_txt(struct doctor *d, char *id)
{
	char name[MX_NAME_MAX + 16];
	snprintf(name, sizeof name, "_mta-sts.%s", d->o->domain);
	struct report_step *s = report_begin(d->rep, "mta-sts");
	struct doctor_rrs rr;
	doctor_lookup(d, name, DNS_T_TXT, &rr);
	size_t sts = 0;
	bool valid = false;
	for (size_t i = 0; i < rr.n; i++)
		if (mtasts_txt_is_sts(rr.rr[i], strlen(rr.rr[i]))) {
			sts++;
			valid = mtasts_txt(rr.rr[i], strlen(rr.rr[i]), id);
			report_detail(s, "%s TXT \"%s\"", name, rr.rr[i]);
		}
	doctor_rrs_free(&rr);
	enum report_status st = REPORT_PASS;
	if (rr.status == DNS_TEMP) {
		report_end(d->rep, s, REPORT_WARN, "the lookup failed: %s", rr.why);
		return false;
	}
	if (sts == 0) {
		report_detail(s, "to insist on verified TLS from senders (optional): serve a policy at "
		              "https://mta-sts.%s/.well-known/mta-sts.txt and publish \"%s. IN TXT "
		              "\\\"v=STSv1; id=20260101\\\"\"", d->o->domain, name);
		report_end(d->rep, s, REPORT_SKIP, "no MTA-STS record (optional)");
		return false;
	}
	if (sts > 1 || !valid) {
		report_advice(s, "keep exactly one record \"v=STSv1; id=<1 to 32 letters and digits>\""
		              " (RFC 8461 3.1: with several, senders use none)");
		st = REPORT_FAIL;
	}
	report_end(d->rep, s, st, st == REPORT_PASS ? "STSv1, id=%s" : "%s", st == REPORT_PASS ?
	           id : sts > 1 ? "more than one STSv1 record: senders ignore them all"
	                        : "a malformed STSv1 record");
	return st == REPORT_PASS;
}

/* "mta-sts policy": fetched and parsed into p. */
static bool doctor_sts_policy(struct doctor *d, struct mtasts_policy *p)
{
	char host[MX_NAME_MAX + 16], why[256];
	snprintf(host, sizeof host, "mta-sts.%s", d->o->domain);
	struct report_step *s = report_begin(d->rep, "mta-sts policy");
	struct doctor_rrs rr;
	doctor_lookup(d, host, DNS_T_A, &rr);
	if (rr.n == 0) {
		report_advice(s, "give %s an address, and serve the policy there over HTTPS", host);
		report_end(d->rep, s, REPORT_FAIL, "%s has no address: %s", host,
		           rr.status == DNS_OK ? "no A record" : rr.why);
		doctor_rrs_free(&rr);
		return false;
	}
	struct doctor_fetch f = { .body = BUF_INIT };
	doctor_sts_get(d, host, rr.rr[0], &f);
	report_detail(s, "GET https://%s/.well-known/mta-sts.txt (%s)", host, rr.rr[0]);
	doctor_rrs_free(&rr);
	bool ok = f.ok && mtasts_parse(f.body.data ? f.body.data : "", f.body.len, p, why,
	                               sizeof why);
	if (!f.ok) {
		report_advice(s, "serve the policy as text/plain with status 200, no redirect, with a "
		              "certificate for %s from a CA senders trust", host);
		report_end(d->rep, s, REPORT_FAIL, "the policy could not be fetched: %s", f.why);
	} else if (!ok) {
		report_advice(s, "lines \"version: STSv1\", \"mode: enforce|testing|none\", \"mx: "
		              "<pattern>\" (one per MX), \"max_age: <seconds>\" (RFC 8461 3.2)");
		report_end(d->rep, s, REPORT_FAIL, "not a valid policy: %s", why);
	} else {
		for (size_t i = 0; i < p->nmx; i++)
			report_detail(s, "mx: %s", p->mx[i]);
		if (p->mode == MTASTS_NONE)
			report_advice(s, "mode none withdraws the policy; use testing, then enforce");
		report_end(d->rep, s, p->mode == MTASTS_ENFORCE ? REPORT_PASS : REPORT_WARN,
		           "mode %s, max_age %u s, %zu mx pattern%s", mtasts_mode_name(p->mode),
		           p->max_age, p->nmx, p->nmx == 1 ? "" : "s");
	}
	buf_free(&f.body);
	return ok;
}

/* "mta-sts mx": each MX host against the patterns (RFC 8461 4.1). */
static void doctor_sts_mx(struct doctor *d, const struct mtasts_policy *p)
{
	struct report_step *s = report_begin(d->rep, "mta-sts mx");
	int bad = 0;
	for (int i = 0; i < d->mxl.n; i++) {
		bool ok = mtasts_mx_match(p, d->mxl.hosts[i].name);
		report_detail(s, "%s: %s", d->mxl.hosts[i].name, ok ? "matches" : "matches no pattern");
		bad += !ok;
	}
	if (!bad) {
		report_end(d->rep, s, REPORT_PASS, "every MX host matches the policy");
		return;
	}
	report_advice(s, "add \"mx: <host>\" lines for every MX host to the policy, and change its "
	              "id in the TXT record so that senders fetch it again");
	report_end(d->rep, s, p->mode == MTASTS_ENFORCE ? REPORT_FAIL : REPORT_WARN,
	           "%d MX host%s outside the policy%s", bad, bad == 1 ? "" : "s",
	           p->mode == MTASTS_ENFORCE ? ": senders that enforce it defer that mail" : "");
}

/* "tls-rpt": the _smtp._tls record (RFC 8460 3). */
static void doctor_tlsrpt(struct doctor *d, bool wanted)
{
	char name[MX_NAME_MAX + 16];
	snprintf(name, sizeof name, "_smtp._tls.%s", d->o->domain);
	struct report_step *s = report_begin(d->rep, "tls-rpt");
	struct doctor_rrs rr;
	doctor_lookup(d, name, DNS_T_TXT, &rr);
	struct tlsrpt_rua rua = { 0 };
	size_t found = 0;
	bool ok = false;
	for (size_t i = 0; i < rr.n; i++)
		if (!strncmp(rr.rr[i], "v=TLSRPTv1", 10)) {
			found++;
			ok = tlsrpt_txt(rr.rr[i], strlen(rr.rr[i]), &rua);
			report_detail(s, "%s TXT \"%s\"", name, rr.rr[i]);
		}
	doctor_rrs_free(&rr);
	if (rr.status == DNS_TEMP) {
		report_end(d->rep, s, REPORT_WARN, "the lookup failed: %s", rr.why);
	} else if (!found) {
		const char *fmt = "publish \"%s. IN TXT \\\"v=TLSRPTv1; rua=mailto:tls-reports@%s\\\"\" "
		                  "to hear from senders when TLS to your MX hosts fails";
		if (wanted)
			report_advice(s, fmt, name, d->o->domain);
		else
			report_detail(s, fmt, name, d->o->domain);
		report_end(d->rep, s, wanted ? REPORT_WARN : REPORT_SKIP, "no TLS-RPT record%s",
		           wanted ? ": failures of your MTA-STS policy go unreported" : " (optional)");
	} else if (found > 1 || !ok) {
		report_advice(s, "keep one record \"v=TLSRPTv1; rua=mailto:...\" or rua=https://...");
		report_end(d->rep, s, REPORT_FAIL, "%s", found > 1 ? "more than one TLS-RPT record"
		           : "a malformed record, or no mailto: or https: rua");
	} else {
		for (size_t i = 0; i < rua.n; i++)
			report_detail(s, "rua: %s%s", rua.v[i].https ? "" : "mailto:", rua.v[i].uri);
		report_end(d->rep, s, REPORT_PASS, "reports go to %zu address%s", rua.n,
		           rua.n == 1 ? "" : "es");
	}
}

void doctor_sts(struct doctor *d)
{
	char id[MTASTS_ID_MAX + 1];
	struct mtasts_policy p;
	bool sts = doctor_sts_txt(d, id);
	if (sts && doctor_sts_policy(d, &p) && d->mxl.n)
		doctor_sts_mx(d, &p);
	doctor_tlsrpt(d, sts);
}
