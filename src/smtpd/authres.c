/* authres: SPF, DKIM and DMARC verdicts of a received message (see
 * authres.h). */
#include "smtpd/authres.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "dkim/msg.h"
#include "lib/cidr.h"
#include "lib/event.h"
#include "lib/log.h"
#include "lib/util.h"
#include "net/dns.h"
#include "policy/dmarc.h"
#include "smtpd/session_priv.h"

struct authres {
	struct session *s;
	struct dns_lookup *q;
	struct event *timer;
	void (*done)(void *ctx);
	void *ctx;
	char from[DMARC_NAME_MAX + 1];      /* the RFC 5322.From domain */
	char org[DMARC_NAME_MAX + 1];       /* its organizational domain */
	bool at_org;                        /* the record being asked is the org's */
	bool looked_up;                     /* the lookups are over */
	enum dmarc_result result;           /* before evaluation: none, temperror,
	                                       permerror; then the verdict's */
	bool found;
	struct dmarc_record rec;
	struct dmarc_verdict v;
	enum authres_act act;               /* what was done */
	char why[128];                      /* none/temperror/permerror: why */
};

void authres_free(struct authres *a)
{
	if (!a)
		return;
	if (a->q)
		dns_cancel(a->s->srv->dns, a->q);
	if (a->timer)
		event_free(a->timer);
	free(a);
}

/* ---- the DMARC record (RFC 7489 6.6.3) ---- */

static void authres_ask(struct authres *a, const char *domain);

/* The lookups are over: the verdict waits for the DKIM keys (authres_decide). */
static void authres_over(struct authres *a)
{
	a->looked_up = true;
	if (a->timer)
		evtimer_del(a->timer);
	a->done(a->ctx);
}

static void authres_none(struct authres *a, enum dmarc_result r, const char *why)
{
	a->result = r;
	snprintf(a->why, sizeof a->why, "%s", why);
}

/* The records of _dmarc.<domain>: exactly one DMARC record counts; none
 * at the From domain sends us to the organizational domain. */
static void authres_answer(void *ctx, const struct dns_rrset *r)
{
	struct authres *a = ctx;
	a->q = NULL;
	if (r->status == DNS_TEMP) {
		authres_none(a, DMARC_TEMPERROR, "the policy lookup failed");
		return authres_over(a);
	}
	size_t found = 0;
	struct dmarc_record rec;
	enum dmarc_parse bad = DMARC_REC_NOT;
	for (size_t i = 0; r->status == DNS_OK && i < r->n; i++) {
		enum dmarc_parse p = dmarc_parse(r->rr[i].data, &rec);
		if (p == DMARC_REC_OK && found++ == 0)
			a->rec = rec;
		else if (p == DMARC_REC_BAD)
			bad = p;
	}
	if (found == 1) {
		a->found = true;
		return authres_over(a);
	}
	if (found > 1 || bad == DMARC_REC_BAD) {   /* 6.6.3: no policy applies */
		authres_none(a, DMARC_PERMERROR, found > 1 ? "several DMARC records" :
		                                 "a broken DMARC record");
		return authres_over(a);
	}
	if (!a->at_org && strcmp(a->org, a->from) != 0) {
		a->at_org = true;
		return authres_ask(a, a->org);
	}
	authres_none(a, DMARC_NONE, "no DMARC record");
	authres_over(a);
}

static void authres_ask(struct authres *a, const char *domain)
{
	char name[DMARC_NAME_MAX + 16];
	snprintf(name, sizeof name, "_dmarc.%s", domain);
	a->q = dns_lookup(a->s->srv->dns, name, DNS_T_TXT, authres_answer, a);
}

static void authres_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct authres *a = arg;
	if (a->q)
		dns_cancel(a->s->srv->dns, a->q);
	a->q = NULL;
	authres_none(a, DMARC_TEMPERROR, "the policy lookup timed out (dmarc_timeout)");
	authres_over(a);
}

/* RFC 7489 6.6.1: the domain of the one From field; else why not, and
 * the result: none without a From (out of DMARC's scope), permerror for
 * several or one without a single domain. */
static bool authres_from(struct session *s, char *out, size_t n, const char **why,
                         enum dmarc_result *r)
{
	const struct msghead *h = &s->tx->in.head;
	long k = msghead_find(h, "From", 1);
	*r = k < 0 ? DMARC_NONE : DMARC_PERMERROR;
	if (k < 0 || msghead_find(h, "From", 2) >= 0) {
		*why = k < 0 ? "no From field" : "several From fields";
		return false;
	}
	size_t len;
	const char *v = msghead_value(h, (size_t)k, &len);
	if (dkim_from_domain(v, len, out, n) != DKIM_OK) {
		*why = "a From field without one domain";
		return false;
	}
	return true;
}

bool authres_dmarc_start(struct session *s, void (*done)(void *ctx), void *ctx)
{
	/* as SPF: mail of authenticated and relay_networks clients is ours */
	if (s->conf->dmarc_policy == CONF_DMARC_OFF || s->client.authed ||
	    policy_catcher(&s->client) ||
	    cidr_list_match(&s->conf->relay_networks, s->client.addr))
		return false;
	struct authres *a = util_xcalloc(1, sizeof *a);
	a->s = s;
	a->done = done;
	a->ctx = ctx;
	s->tx->authres = a;
	const char *why;
	enum dmarc_result r;
	if (!authres_from(s, a->from, sizeof a->from, &why, &r)) {
		authres_none(a, r, why);   /* 6.6.1: nothing to evaluate */
		a->looked_up = true;
		return false;
	}
	dmarc_org_domain(a->from, a->org, sizeof a->org);
	a->timer = evtimer_new(s->srv->base, authres_timeout, a);
	struct timeval tv = { (time_t)s->conf->dmarc_timeout, 0 };
	if (!a->timer || evtimer_add(a->timer, &tv) != 0)
		log_panic("authres: cannot set a timer");
	authres_ask(a, a->from);
	return true;
}

/* ---- the verdict ---- */

/* What DMARC may count of the other checks (RFC 7489 4.2). */
static void authres_input(struct session *s, const struct authres *a, struct dmarc_input *in)
{
	const struct tx *tx = s->tx;
	memset(in, 0, sizeof *in);
	in->from = a->from;
	in->spf_pass = tx->spf.checked && tx->spf.o.result == SPF_PASS;
	in->spf_domain = tx->spf.o.domain;
	for (size_t k = 0; tx->verifier && k < verifier_count(tx->verifier); k++)
		if (verifier_result(tx->verifier, k) == DKIM_OK && in->ndkim < DMARC_DKIM_MAX)
			in->dkim[in->ndkim++] = verifier_sig(tx->verifier, k)->d;
}

static void authres_log(struct session *s, const struct authres *a, enum authres_act act)
{
	static const char *const did[] = { "accepted", "quarantined", "rejected" };
	struct ev e;
	session_event(s, &e, EK_DMARC, LOG_INFO, s->tx->qid);
	ev_add(&e, "result", "%s", dmarc_result_name(a->result));
	ev_add(&e, "from", "%s", a->from[0] ? a->from : "?");
	if (a->found) {
		ev_add(&e, "policy", "%s%s", dmarc_policy_name(a->v.policy), a->at_org ? " (sp)" : "");
		ev_add(&e, "spf", "%s", a->v.spf_aligned ? "aligned" : "not aligned");
		ev_add(&e, "dkim", "%s", a->v.dkim_aligned ? "aligned" : "not aligned");
	} else {
		ev_add(&e, "reason", "%s", a->why);
	}
	ev_add(&e, "action", "%s%s", did[act],
	       s->conf->dmarc_policy == CONF_DMARC_REPORT && a->result == DMARC_FAIL ?
	       " (dmarc_policy = report)" : "");
	ev_emit(&e);
}

enum authres_act authres_decide(struct session *s, const char **domain)
{
	struct authres *a = s->tx->authres;
	if (!a)
		return AUTHRES_ACCEPT;
	enum authres_act act = AUTHRES_ACCEPT;
	*domain = a->at_org ? a->org : a->from;
	if (a->found) {
		struct dmarc_input in;
		authres_input(s, a, &in);
		dmarc_evaluate(&a->rec, a->at_org, &in, arc4random_uniform(100), &a->v);
		a->result = a->v.result;
		if (a->result == DMARC_FAIL && s->conf->dmarc_policy == CONF_DMARC_ENFORCE)
			act = a->v.act == DMARC_P_REJECT ? AUTHRES_REJECT :
			      a->v.act == DMARC_P_QUARANTINE ? AUTHRES_QUARANTINE : AUTHRES_ACCEPT;
	}
	a->act = act;
	authres_log(s, a, act);
	return act;
}

/* ---- Authentication-Results (RFC 8601 2.2) ---- */

/* RFC 8601 2.7.2: smtp.mailfrom is the address when it is a plain one
 * (a dot-atom local part), else its domain. */
static void authres_spf(const struct tx *tx, const struct session *s, struct buf *out)
{
	const struct spf_outcome *o = &tx->spf.o;
	buf_printf(out, ";\r\n\tspf=%s", spf_result_name(o->result));
	if (o->identity == SPF_HELO) {
		buf_printf(out, " smtp.helo=%s", s->helo);
		return;
	}
	bool plain = tx->sender[0] && strspn(tx->sender, "abcdefghijklmnopqrstuvwxyz"
	             "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~.@") ==
	             strlen(tx->sender);
	buf_printf(out, " smtp.mailfrom=%s", plain ? tx->sender : o->domain);
}

/* RFC 8601 2.7.1 and RFC 6008: header.d, header.s and the signature's
 * first 8 base64 characters to tell two of one domain apart. */
static void authres_dkim(const struct verifier *v, struct buf *out)
{
	size_t n = verifier_count(v);
	if (n == 0) {
		buf_puts(out, ";\r\n\tdkim=none");
		return;
	}
	for (size_t k = 0; k < n; k++) {
		const struct dkim_sig *sig = verifier_sig(v, k);
		buf_printf(out, ";\r\n\tdkim=%s", dkim_status_result(verifier_result(v, k)));
		if (sig->d[0])
			buf_printf(out, " header.d=%s", sig->d);
		if (sig->s[0])
			buf_printf(out, " header.s=%s", sig->s);
		if (sig->blen >= 6) {
			unsigned char b64[16];
			EVP_EncodeBlock(b64, sig->b, 6);
			buf_printf(out, " header.b=%.8s", (const char *)b64);
		}
	}
}

static void authres_dmarc(const struct authres *a, struct buf *out)
{
	buf_printf(out, ";\r\n\tdmarc=%s", dmarc_result_name(a->result));
	if (a->found)
		buf_printf(out, " (p=%s dis=%s)", dmarc_policy_name(a->v.policy),
		           a->act == AUTHRES_QUARANTINE ? "quarantine" : "none");
	if (a->from[0])
		buf_printf(out, " header.from=%s", a->from);
}

void authres_field(struct session *s, struct buf *out)
{
	const struct tx *tx = s->tx;
	if (!tx->spf.checked && !tx->verifier && !tx->authres)
		return;
	buf_printf(out, "Authentication-Results: %s", s->conf->authserv_id);
	if (tx->spf.checked)
		authres_spf(tx, s, out);
	if (tx->verifier)
		authres_dkim(tx->verifier, out);
	if (tx->authres)
		authres_dmarc(tx->authres, out);
	buf_puts(out, "\r\n");
}
