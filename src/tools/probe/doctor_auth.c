/* doctor: SPF (tern's parser and evaluator), DKIM keys and DMARC. */
#include "tools/probe/doctor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/event.h>
#include <openssl/x509.h>

#include "dkim/key.h"
#include "dkim/tags.h"
#include "policy/dmarc.h"
#include "policy/spf.h"
#include "policy/spf_check.h"

/* An address no SPF record names: the evaluation walks every term. */
#define DOCTOR_SPF_NOWHERE "192.0.2.1"

/* ------------------------------------------------------------ SPF */

struct doctor_spf_wait {
	struct spf_outcome o;
	bool done;
};

static void doctor_spf_done(void *ctx, const struct spf_outcome *o)
{
	struct doctor_spf_wait *w = ctx;
	w->o = *o;
	w->done = true;
}

/* check_host() for ip, the sender postmaster@domain, through spf_check. */
static void doctor_spf_eval(struct doctor *d, const char *ip, const char *helo,
			    struct spf_outcome *out)
{
	char sender[300];
	snprintf(sender, sizeof sender, "postmaster@%s", d->o->domain);
	struct spf_request req = { .ip = ip, .sender = sender, .helo = helo,
				   .receiver = d->helo, .now = (int64_t)time(NULL) };
	struct doctor_spf_wait w = { .done = false };
	struct spf_checker *k = spf_check_new(d->base, d->dns);
	unsigned limit = (unsigned)(d->o->timeout_ms + 999) / 1000 * 4;
	spf_check_start(k, &req, limit, doctor_spf_done, &w);
	while (!w.done)
		if (event_base_loop(d->base, EVLOOP_ONCE) < 0)
			break;
	spf_check_free(k);
	*out = w.o;
}

/* The one SPF record of the domain into rec; the step ends on failure. */
static int doctor_spf_record(struct doctor *d, struct report_step *s, char **rec)
{
	const char *dom = d->o->domain;
	struct doctor_rrs rr;
	int n = 0;
	doctor_lookup(d, dom, DNS_T_TXT, &rr);
	for (size_t i = 0; i < rr.n; i++)
		if (spf_record_is(rr.rr[i])) {
			report_detail(s, "%s  TXT \"%s\"", dom, rr.rr[i]);
			if (n++ == 0)
				*rec = strdup(rr.rr[i]);
		}
	doctor_rrs_free(&rr);
	if (n == 1)
		return 0;
	if (n == 0) {
		report_advice(s, "publish: %s. 3600 IN TXT \"v=spf1 mx -all\"", dom);
		report_end(d->rep, s, rr.status == DNS_TEMP ? REPORT_WARN : REPORT_FAIL,
			   "no SPF record%s%s", rr.status == DNS_TEMP ? ": " : "",
			   rr.status == DNS_TEMP ? rr.why : "");
	} else {
		report_advice(s, "merge them into one record (RFC 7208 3.2)");
		report_end(d->rep, s, REPORT_FAIL, "%d SPF records: a permerror for every "
			   "receiver", n);
	}
	free(*rec);
	*rec = NULL;
	return -1;
}

/* The "all" of the record: +all and ?all say nothing. */
static void doctor_spf_all(struct doctor *d, const struct spf_record *r)
{
	struct report_step *s = report_begin(d->rep, "spf all");
	const struct spf_term *all = NULL;
	for (size_t i = 0; i < r->n; i++)
		if (r->term[i].mech == SPF_M_ALL)
			all = &r->term[i];
	if (!all && r->redirect) {
		report_end(d->rep, s, REPORT_PASS, "redirect=%s decides", r->redirect);
	} else if (!all) {
		report_advice(s, "end the record with -all (or ~all while testing)");
		report_end(d->rep, s, REPORT_WARN, "no all: mail from anywhere else is neutral");
	} else if (all->qualifier == SPF_PASS) {
		report_advice(s, "replace %s with -all (or ~all): +all lets anyone send as %s",
			      all->text, d->o->domain);
		report_end(d->rep, s, REPORT_FAIL, "%s: every address in the world passes",
			   all->text);
	} else if (all->qualifier == SPF_NEUTRAL) {
		report_advice(s, "replace ?all with -all (or ~all)");
		report_end(d->rep, s, REPORT_WARN, "?all: other senders are neutral, "
			   "the record protects nothing");
	} else {
		report_end(d->rep, s, REPORT_PASS, "%s", all->text);
	}
}

/* The limits of RFC 7208 4.6.4, on the worst case: an address no term names. */
static void doctor_spf_limits(struct doctor *d)
{
	struct report_step *s = report_begin(d->rep, "spf lookups");
	struct spf_outcome o;
	doctor_spf_eval(d, DOCTOR_SPF_NOWHERE, d->o->domain, &o);
	report_detail(s, "an address not in the record: %s%s%s", spf_result_name(o.result),
		      o.problem[0] ? ": " : "", o.problem);
	if (o.result == SPF_PERMERROR && (o.lookups > SPF_LOOKUPS_MAX ||
					  o.voids > SPF_VOIDS_MAX)) {
		report_advice(s, "at most %d terms that query DNS (include, a, mx, ptr, exists, "
			      "redirect) and %d void lookups: replace includes by ip4:/ip6: "
			      "ranges, drop the ones not used", SPF_LOOKUPS_MAX, SPF_VOIDS_MAX);
		report_end(d->rep, s, REPORT_FAIL, "too many DNS lookups: %u lookups, %u void "
			   "(limits %d and %d): a permerror", o.lookups, o.voids, SPF_LOOKUPS_MAX,
			   SPF_VOIDS_MAX);
		return;
	}
	if (o.result == SPF_PERMERROR || o.result == SPF_TEMPERROR) {
		report_advice(s, "fix the record or the records it includes: %s", o.problem);
		report_end(d->rep, s, o.result == SPF_PERMERROR ? REPORT_FAIL : REPORT_WARN,
			   "%s: %s", spf_result_name(o.result), o.problem);
		return;
	}
	report_end(d->rep, s, REPORT_PASS, "%u DNS lookups of %d, %u void of %d", o.lookups,
		   SPF_LOOKUPS_MAX, o.voids, SPF_VOIDS_MAX);
}

/* Does each MX address pass (the MX sends the domain's mail too, often)? */
static void doctor_spf_mx(struct doctor *d, const struct mx_host *h, const char *ip)
{
	char step[64];
	snprintf(step, sizeof step, "spf %s", ip);
	struct report_step *s = report_begin(d->rep, step);
	struct spf_outcome o;
	doctor_spf_eval(d, ip, h->name, &o);
	report_detail(s, "%u DNS lookups, %u void", o.lookups, o.voids);
	if (o.result == SPF_PASS) {
		report_end(d->rep, s, REPORT_PASS, "pass (%s)", o.mechanism);
		return;
	}
	report_advice(s, "if %s sends mail for %s, add %s%s (or mx) to the SPF record", h->name,
		      d->o->domain, strchr(ip, ':') ? "ip6:" : "ip4:", ip);
	report_end(d->rep, s, REPORT_WARN, "%s, not pass, for the MX %s%s%s",
		   spf_result_name(o.result), h->name, o.problem[0] ? ": " : "", o.problem);
}

/* Does each sending host the user named pass? It must: its mail is the
 * domain's (a failure otherwise, where an MX not passing is a warning). */
static void doctor_spf_sender(struct doctor *d, const char *ip)
{
	char step[80];
	snprintf(step, sizeof step, "spf sender %s", ip);
	struct report_step *s = report_begin(d->rep, step);
	struct spf_outcome o;
	doctor_spf_eval(d, ip, d->o->domain, &o);
	report_detail(s, "%u DNS lookups, %u void", o.lookups, o.voids);
	if (o.result == SPF_PASS) {
		report_end(d->rep, s, REPORT_PASS, "pass (%s)", o.mechanism);
		return;
	}
	report_advice(s, "add %s%s to the SPF record of %s, before its all", strchr(ip, ':') ?
		      "ip6:" : "ip4:", ip, d->o->domain);
	report_end(d->rep, s, REPORT_FAIL, "%s: receivers that check SPF %s its mail",
		   spf_result_name(o.result), o.result == SPF_FAIL ? "refuse" : "distrust");
}

void doctor_spf(struct doctor *d)
{
	struct report_step *s = report_begin(d->rep, "spf");
	char *text = NULL, why[200] = "";
	struct spf_record r;
	if (doctor_spf_record(d, s, &text) < 0)
		return;
	if (!spf_record_parse(text, &r, why, sizeof why)) {
		report_advice(s, "correct the record's syntax (RFC 7208 12): %s", why);
		report_end(d->rep, s, REPORT_FAIL, "syntax error: %s", why);
		free(text);
		return;
	}
	report_end(d->rep, s, REPORT_PASS, "one record, valid syntax");
	doctor_spf_all(d, &r);
	spf_record_free(&r);
	free(text);
	doctor_spf_limits(d);
	for (int i = 0; i < d->mxl.n; i++)
		for (int j = 0; j < d->mxl.hosts[i].naddrs; j++)
			if (!doctor_seen(d, i, j))
				doctor_spf_mx(d, &d->mxl.hosts[i], d->mxl.hosts[i].addrs[j]);
	for (int i = 0; i < d->o->nsender; i++)
		doctor_spf_sender(d, d->o->sender[i]);
}

/* ------------------------------------------------------------ DKIM */

static const char *const doctor_selectors[] = {
	"default", "selector1", "selector2", "google", "k1", "dkim", "mail",
};

/* The size of p='s RSA key, parsed here (dkim_key_parse refuses short ones). */
static int doctor_dkim_bits(const char *rec)
{
	struct dkim_tags t;
	static char b64[DKIM_B64_MAX + 1];
	static unsigned char der[DKIM_B64_MAX];
	if (!dkim_tags_parse(rec, strlen(rec), &t))
		return -1;
	const struct dkim_tag *p = dkim_tags_get(&t, "p");
	if (!p || !dkim_tags_copy(p, b64, sizeof b64))
		return -1;
	long n = dkim_key_b64(b64, strlen(b64), der, sizeof der);
	const unsigned char *q = der;
	EVP_PKEY *pk = n > 0 ? d2i_PUBKEY(NULL, &q, n) : NULL;
	int bits = pk ? EVP_PKEY_get_bits(pk) : -1;
	EVP_PKEY_free(pk);
	return bits;
}

static void doctor_dkim_ok(struct doctor *d, struct report_step *s, const struct dkim_key *k)
{
	enum report_status st = REPORT_PASS;
	int bits = EVP_PKEY_get_bits(k->pkey);
	report_detail(s, "key: %s, %d bits", dkim_alg_name(k->alg), bits);
	if (k->alg == DKIM_RSA_SHA256 && bits < 2048) {
		report_advice(s, "a %d-bit RSA key is weak: make a 2048-bit one "
			      "(ternctl dkim-keygen) and publish it under a new selector", bits);
		st = REPORT_WARN;
	}
	if (k->testing) {
		report_advice(s, "remove t=y when the tests are over: receivers treat "
			      "signatures as unsigned mail while it is there");
		st = REPORT_WARN;
	}
	report_end(d->rep, s, st, "%s %d bits%s", dkim_alg_name(k->alg), bits,
		   k->testing ? ", t=y (testing)" : "");
}

static void doctor_dkim_key(struct doctor *d, const char *sel, const char *rec)
{
	char step[64];
	snprintf(step, sizeof step, "dkim %.58s", sel);
	struct report_step *s = report_begin(d->rep, step);
	struct dkim_key k;
	memset(&k, 0, sizeof k);
	report_detail(s, "%s._domainkey.%s  TXT \"%.200s%s\"", sel, d->o->domain, rec,
		      strlen(rec) > 200 ? "..." : "");
	enum dkim_status st = dkim_key_parse(rec, strlen(rec), &k);
	if (st == DKIM_OK)
		doctor_dkim_ok(d, s, &k);
	else if (st == DKIM_KEY_SHORT) {
		report_advice(s, "make a 2048-bit RSA key (ternctl dkim-keygen) and publish it");
		report_end(d->rep, s, REPORT_FAIL, "RSA key of %d bits: under 1024, receivers "
			   "ignore the signatures (RFC 8301 3.2)", doctor_dkim_bits(rec));
	} else if (st == DKIM_KEY_REVOKED) {
		report_advice(s, "if this selector still signs, publish its key again");
		report_end(d->rep, s, REPORT_WARN, "revoked (empty p=)");
	} else {
		report_advice(s, "publish the record ternctl dkim-keygen prints");
		report_end(d->rep, s, REPORT_FAIL, "broken key record: %s", dkim_status_text(st));
	}
	dkim_key_free(&k);
}

/* 1: a key record found (and reported), 0: none. */
static int doctor_dkim_one(struct doctor *d, const char *sel, bool asked)
{
	char name[400];
	struct doctor_rrs rr;
	snprintf(name, sizeof name, "%s._domainkey.%s", sel, d->o->domain);
	doctor_lookup(d, name, DNS_T_TXT, &rr);
	int found = 0;
	for (size_t i = 0; i < rr.n && !found; i++)
		if (strstr(rr.rr[i], "p=")) {
			doctor_dkim_key(d, sel, rr.rr[i]);
			found = 1;
		}
	doctor_rrs_free(&rr);
	if (!found && asked && rr.status == DNS_TEMP) {
		report_end(d->rep, report_begin(d->rep, "dkim"), REPORT_WARN,
			   "%s: the lookup failed: %s", name, rr.why);
	} else if (!found && asked) {
		struct report_step *s = report_begin(d->rep, "dkim");
		report_advice(s, "publish the key: %s TXT \"v=DKIM1; k=rsa; p=...\" "
			      "(ternctl dkim-keygen prints it)", name);
		report_end(d->rep, s, REPORT_FAIL, "no key record at %s", name);
	}
	return found;
}

static bool doctor_selector_given(const struct doctor *d, const char *sel)
{
	for (int i = 0; i < d->o->nselector; i++)
		if (strcasecmp(d->o->selector[i], sel) == 0)
			return true;
	return false;
}

void doctor_dkim(struct doctor *d)
{
	int found = 0;
	for (int i = 0; i < d->o->nselector; i++)
		found += doctor_dkim_one(d, d->o->selector[i], true);
	for (size_t i = 0; i < sizeof doctor_selectors / sizeof doctor_selectors[0]; i++)
		if (!doctor_selector_given(d, doctor_selectors[i]))
			found += doctor_dkim_one(d, doctor_selectors[i], false);
	if (found || d->o->nselector)
		return;
	struct report_step *s = report_begin(d->rep, "dkim");
	report_advice(s, "give the selector your signer uses with --selector NAME, or sign: "
		      "publish NAME._domainkey.%s TXT \"v=DKIM1; k=rsa; p=...\"", d->o->domain);
	report_end(d->rep, s, REPORT_WARN, "no DKIM key at the common selectors (default, "
		   "selector1, selector2, google, k1, dkim, mail)");
}

/* ------------------------------------------------------------ DMARC */

/* The DMARC record of _dmarc.name into r; 1 found, 0 none, -1 a broken one
 * (the step ended). */
static int doctor_dmarc_at(struct doctor *d, struct report_step *s, const char *name,
			   struct dmarc_record *r, char *txt, size_t n)
{
	char q[300];
	struct doctor_rrs rr;
	int found = 0;
	snprintf(q, sizeof q, "_dmarc.%s", name);
	doctor_lookup(d, q, DNS_T_TXT, &rr);
	for (size_t i = 0; i < rr.n && found == 0; i++) {
		enum dmarc_parse p = dmarc_parse(rr.rr[i], r);
		report_detail(s, "%s  TXT \"%s\"", q, rr.rr[i]);
		if (p == DMARC_REC_OK) {
			found = 1;
			snprintf(txt, n, "%s", rr.rr[i]);
		}
		else if (p == DMARC_REC_BAD || strcasestr(rr.rr[i], "v=DMARC1")) {
			report_advice(s, "the record must begin with v=DMARC1 and hold valid tags "
				      "(RFC 7489 6.3), e.g.: %s. 3600 IN TXT \"v=DMARC1; "
				      "p=quarantine; rua=mailto:dmarc-reports@%s\"", q, d->o->domain);
			report_end(d->rep, s, REPORT_FAIL, "%s: not a valid DMARC record%s", q,
				   p == DMARC_REC_NOT ? " (v=DMARC1 is not first)" : "");
			found = -1;
		}
	}
	if (found == 0 && rr.status == DNS_TEMP) {
		report_end(d->rep, s, REPORT_WARN, "%s: the lookup failed: %s", q, rr.why);
		found = -1;
	}
	doctor_rrs_free(&rr);
	return found;
}

/* The rua= tag's value of a DMARC record (tags "k=v" between ';'), into
 * out; false when there is none. */
static bool doctor_rua_tag(const char *txt, char *out, size_t n)
{
	for (const char *p = txt; *p;) {
		p += strspn(p, " \t;");
		size_t len = strcspn(p, ";");
		if (!strncasecmp(p, "rua", 3) && p[3 + strspn(p + 3, " \t")] == '=') {
			const char *v = p + 3 + strspn(p + 3, " \t") + 1;
			v += strspn(v, " \t");
			size_t vl = len - (size_t)(v - p);
			while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
				vl--;
			snprintf(out, n, "%.*s", (int)vl, v);
			return true;
		}
		p += len;
	}
	return false;
}

/* RFC 7489 7.1: reports to a domain outside the policy's organizational
 * domain go only where that domain says it takes them: a TXT record
 * "v=DMARC1" at POLICYDOMAIN._report._dmarc.RUADOMAIN. Each mailto:
 * address of rua= judged; the worst status. */
static enum report_status doctor_rua(struct doctor *d, struct report_step *s, const char *at,
				     const char *txt, int *count)
{
	char rua[1024], org[DMARC_NAME_MAX + 1], rorg[DMARC_NAME_MAX + 1];
	enum report_status st = REPORT_PASS;
	*count = 0;
	if (!doctor_rua_tag(txt, rua, sizeof rua))
		return st;
	dmarc_org_domain(at, org, sizeof org);
	char *save = NULL;
	for (char *u = strtok_r(rua, ",", &save); u; u = strtok_r(NULL, ",", &save)) {
		u += strspn(u, " \t");
		const char *atsign = strrchr(u, '@');
		if (strncasecmp(u, "mailto:", 7) || !atsign)
			continue;
		char dom[256];
		snprintf(dom, sizeof dom, "%.*s", (int)strcspn(atsign + 1, "! \t"), atsign + 1);
		(*count)++;
		report_detail(s, "rua: %s", u);
		dmarc_org_domain(dom, rorg, sizeof rorg);
		if (!strcasecmp(rorg, org))
			continue;
		char q[600];
		snprintf(q, sizeof q, "%s._report._dmarc.%s", at, dom);
		struct doctor_rrs rr;
		doctor_lookup(d, q, DNS_T_TXT, &rr);
		bool ok = false;
		for (size_t i = 0; i < rr.n; i++)
			ok |= !strncasecmp(rr.rr[i], "v=DMARC1", 8);
		doctor_rrs_free(&rr);
		if (!ok) {
			report_advice(s, "%s must take reports for %s (RFC 7489 7.1): it publishes "
				      "\"%s. IN TXT \\\"v=DMARC1\\\"\"", dom, at, q);
			st = REPORT_WARN;
		}
	}
	return st;
}

static void doctor_dmarc_policy(struct doctor *d, const struct dmarc_record *r,
				const char *at, const char *txt)
{
	struct report_step *s = report_begin(d->rep, "dmarc policy");
	if (r->p == DMARC_P_NONE) {
		report_advice(s, "once the reports show your mail passes, publish p=quarantine, "
			      "then p=reject: _dmarc.%s. TXT \"v=DMARC1; p=quarantine; "
			      "rua=mailto:dmarc-reports@%s\"", at, d->o->domain);
		report_end(d->rep, s, REPORT_WARN, "p=none: receivers only watch, forged mail "
			   "still arrives");
	} else if (r->pct < 100) {
		report_advice(s, "raise pct= to 100 when you are ready");
		report_end(d->rep, s, REPORT_WARN, "p=%s on %u%% of the mail",
			   dmarc_policy_name(r->p), r->pct);
	} else
		report_end(d->rep, s, REPORT_PASS, "p=%s", dmarc_policy_name(r->p));
	s = report_begin(d->rep, "dmarc rua");
	if (r->has_rua) {
		int n;
		enum report_status st = doctor_rua(d, s, at, txt, &n);
		report_end(d->rep, s, st, st == REPORT_PASS ? "aggregate reports requested (rua=)"
			   : "reports go to a domain that has not agreed to take them: none arrive");
		return;
	}
	report_advice(s, "add rua=mailto:dmarc-reports@%s to learn who sends as %s",
		      d->o->domain, d->o->domain);
	report_end(d->rep, s, REPORT_WARN, "no rua=: you receive no aggregate reports");
}

void doctor_dmarc(struct doctor *d)
{
	struct report_step *s = report_begin(d->rep, "dmarc");
	struct dmarc_record r;
	char org[DMARC_NAME_MAX + 1];
	const char *at = d->o->domain;
	char txt[1024] = "";
	int rc = doctor_dmarc_at(d, s, at, &r, txt, sizeof txt);
	dmarc_org_domain(d->o->domain, org, sizeof org);
	if (rc == 0 && strcasecmp(org, d->o->domain) != 0) {
		at = org;
		rc = doctor_dmarc_at(d, s, org, &r, txt, sizeof txt);
	}
	if (rc < 0)
		return;
	if (rc == 0) {
		report_advice(s, "publish: _dmarc.%s. 3600 IN TXT \"v=DMARC1; p=none; "
			      "rua=mailto:dmarc-reports@%s\" and tighten p= later", d->o->domain,
			      d->o->domain);
		report_end(d->rep, s, REPORT_FAIL, "no DMARC record");
		return;
	}
	report_detail(s, "alignment: DKIM %s, SPF %s: sign with d=%s and send with MAIL FROM "
		      "in %s%s", r.adkim_strict ? "strict" : "relaxed",
		      r.aspf_strict ? "strict" : "relaxed", d->o->domain, d->o->domain,
		      r.adkim_strict || r.aspf_strict ? " itself" : " or a subdomain");
	report_end(d->rep, s, REPORT_PASS, "found at _dmarc.%s", at);
	doctor_dmarc_policy(d, &r, at, txt);
}
