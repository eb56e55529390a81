/* sts: MTA-STS discovery, fetch and cache per destination domain on the
 * delivery loop (RFC 8461 3, 5.1); see sts.h. */
#include "deliver/sts.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "deliver/engine.h"
#include "deliver/tlsrpt.h"
#include "lib/hmap.h"
#include "lib/log.h"
#include "lib/util.h"
#include "net/dns.h"
#include "net/httpc.h"
#include "spool/reader.h"
#include "spool/spool.h"

struct sts_wait {
	struct sts_wait *next;
	struct sts_dom *d;
	sts_cb cb;
	void *ctx;
};

/* One domain: what is known and the discovery under way. */
struct sts_dom {
	struct hmap_node node;      /* in sts.doms, by domain */
	struct sts_dom *next, **pprev;  /* in sts.all */
	struct sts *s;
	char domain[256];
	struct mtasts_policy *pol;  /* the policy known (with id, expires), or NULL */
	char id[MTASTS_ID_MAX + 1];
	int64_t expires;
	int64_t fresh_until;        /* no discovery before */
	bool busy;
	char new_id[MTASTS_ID_MAX + 1];
	bool tried_aaaa;
	struct dns_lookup *txt, *addr;
	struct event *dns_ev;       /* dns_timeout for the lookup under way */
	struct httpc_get *get;
	struct sts_wait *waiters;
};

struct sts {
	struct queue *q;
	struct httpc *http;         /* made at the first fetch */
	struct hmap doms;
	struct sts_dom *all;        /* the same, for the sweep */
	int64_t swept_at;
};

static void sts_discover(struct sts_dom *d);
static void sts_dns_arm(struct sts_dom *d);

struct sts *sts_new(struct queue *q)
{
	struct sts *s = util_xcalloc(1, sizeof *s);
	s->q = q;
	return s;
}

static void sts_dom_free(struct hmap_node *n, void *ctx)
{
	struct sts *s = ctx;
	struct sts_dom *d = HMAP_ENTRY(n, struct sts_dom, node);
	if (d->txt)
		dns_cancel(s->q->dns, d->txt);
	if (d->addr)
		dns_cancel(s->q->dns, d->addr);
	if (d->get)
		httpc_cancel(s->http, d->get);
	if (d->dns_ev)
		event_free(d->dns_ev);
	free(d->pol);
	for (struct sts_wait *w = d->waiters, *next; w; w = next) {
		next = w->next;
		free(w);
	}
	free(d);
}

void sts_free(struct sts *s)
{
	if (!s)
		return;
	hmap_clear(&s->doms, sts_dom_free, s);
	httpc_free(s->http);
	free(s);
}

void sts_describe(const struct sts_policy *p, char *out, size_t n)
{
	snprintf(out, n, "%s id=%s mode=%s", p->domain, *p->id ? p->id : "-",
	         mtasts_mode_name(p->pol.mode));
}

/* ---- what is known ---- */

static void sts_answer(const struct sts_dom *d, struct sts_policy *out)
{
	memset(out, 0, sizeof *out);
	snprintf(out->domain, sizeof out->domain, "%s", d->domain);
	if (!d->pol)
		return;   /* mode none */
	memcpy(out->id, d->id, sizeof out->id);
	out->pol = *d->pol;
}

static void sts_keep(struct sts_dom *d, const struct mtasts_policy *pol)
{
	if (!d->pol)
		d->pol = util_xcalloc(1, sizeof *d->pol);
	*d->pol = *pol;
}

static void sts_forget(struct sts_dom *d)
{
	free(d->pol);
	d->pol = NULL;
}

/* The policy a restart finds in the spool (unexpired). */
static void sts_load(struct sts_dom *d, int64_t now)
{
	struct spool_sts row;
	if (spool_reader_sts(d->s->q->reader, d->domain, &row) != 0)
		return;
	char why[128];
	struct mtasts_policy pol;
	if (row.expires > now && strlen(row.id) <= MTASTS_ID_MAX &&
	    mtasts_parse(row.policy, strlen(row.policy), &pol, why, sizeof why)) {
		sts_keep(d, &pol);
		snprintf(d->id, sizeof d->id, "%s", row.id);
		d->expires = row.expires;
	}
	spool_sts_free(&row);
}

/* Domains idle since their last discovery went stale are dropped (a
 * policy comes back from the spool when needed): memory stays that of
 * the domains mail goes to now. */
static void sts_sweep(struct sts *s, int64_t now)
{
	if (now < s->swept_at + STS_RECHECK)
		return;
	s->swept_at = now;
	for (struct sts_dom *d = s->all, *next; d; d = next) {
		next = d->next;
		if (d->busy || d->waiters || now < d->fresh_until)
			continue;
		*d->pprev = d->next;
		if (d->next)
			d->next->pprev = d->pprev;
		hmap_del(&s->doms, &d->node);
		sts_dom_free(&d->node, s);
	}
}

static struct sts_dom *sts_dom_get(struct sts *s, const char *domain, int64_t now)
{
	size_t h = hmap_hash(domain);
	for (struct hmap_node *n = hmap_first(&s->doms, h); n; n = hmap_next(n)) {
		struct sts_dom *d = HMAP_ENTRY(n, struct sts_dom, node);
		if (!strcmp(d->domain, domain))
			return d;
	}
	struct sts_dom *d = util_xcalloc(1, sizeof *d);
	d->s = s;
	snprintf(d->domain, sizeof d->domain, "%s", domain);
	hmap_add(&s->doms, &d->node, h);
	d->next = s->all;
	if (d->next)
		d->next->pprev = &d->next;
	d->pprev = &s->all;
	s->all = d;
	sts_load(d, now);
	return d;
}

bool sts_find(struct sts *s, const char *domain, struct sts_policy *out, sts_cb cb, void *ctx,
              struct sts_wait **w)
{
	int64_t now = (int64_t)time(NULL);
	sts_sweep(s, now);
	struct sts_dom *d = sts_dom_get(s, domain, now);
	if (d->pol && d->expires <= now) {
		log_info("mta-sts: %s: the policy id=%s has expired", d->domain, d->id);
		sts_forget(d);
	}
	if (!d->busy && now >= d->fresh_until)
		sts_discover(d);
	if (d->busy && !d->pol) {
		struct sts_wait *x = util_xcalloc(1, sizeof *x);
		*x = (struct sts_wait){ d->waiters, d, cb, ctx };
		d->waiters = x;
		*w = x;
		return false;
	}
	sts_answer(d, out);
	return true;
}

void sts_cancel(struct sts *s, struct sts_wait *w)
{
	(void)s;
	for (struct sts_wait **pp = &w->d->waiters; *pp; pp = &(*pp)->next)
		if (*pp == w) {
			*pp = w->next;
			break;
		}
	free(w);
}

/* ---- discovery (RFC 8461 3.1, 3.3) ---- */

/* Discovery is over: why says what failed (NULL: nothing); the waiters
 * hear the policy in force. */
static void sts_end(struct sts_dom *d, const char *why)
{
	d->busy = false;
	evtimer_del(d->dns_ev);
	d->fresh_until = (int64_t)time(NULL) + STS_RECHECK;
	if (why && d->pol)
		log_warn("mta-sts: %s: %s; the cached policy id=%s mode=%s stays in force", d->domain,
		         why, d->id, mtasts_mode_name(d->pol->mode));
	else if (why)
		log_warn("mta-sts: %s: %s; no policy applies", d->domain, why);
	struct sts_policy p;
	sts_answer(d, &p);
	struct sts_wait *w;
	while ((w = d->waiters)) {   /* one at a time: a callback may cancel another */
		d->waiters = w->next;
		w->cb(w->ctx, &p);
		free(w);
	}
}

static void sts_got(void *arg, const struct httpc_resp *r)
{
	struct sts_dom *d = arg;
	char why[300];
	struct mtasts_policy pol;
	d->get = NULL;
	if (!r->ok) {
		snprintf(why, sizeof why, "policy fetch failed: %s", r->why);
		tlsrpt_note_fetch(d->s->q->tlsrpt, d->domain, r->webpki ? TLSRPT_STS_WEBPKI_INVALID :
		                  TLSRPT_STS_POLICY_FETCH_ERROR, r->why);
		return sts_end(d, why);
	}
	char perr[128];
	const char *body = r->body.len ? r->body.data : "";
	bool nul = memchr(body, '\0', r->body.len) != NULL;
	if (nul || !mtasts_parse(body, r->body.len, &pol, perr, sizeof perr)) {
		snprintf(why, sizeof why, "invalid policy (id=%s): %s", d->new_id,
		         nul ? "a NUL octet" : perr);
		tlsrpt_note_fetch(d->s->q->tlsrpt, d->domain, TLSRPT_STS_POLICY_INVALID, why);
		return sts_end(d, why);
	}
	char *text = strndup(body, r->body.len);
	int64_t now = (int64_t)time(NULL);
	sts_keep(d, &pol);
	memcpy(d->id, d->new_id, sizeof d->id);
	d->expires = now + pol.max_age;
	spool_sts_put(d->s->q->spool, d->domain, d->id, text, now, d->expires);
	free(text);
	log_info("mta-sts: %s: policy id=%s mode=%s max_age=%u mx=%zu fetched", d->domain, d->id,
	         mtasts_mode_name(pol.mode), pol.max_age, pol.nmx);
	sts_end(d, NULL);
}

static void sts_fetch(struct sts_dom *d, const char *addr)
{
	struct sts *s = d->s;
	evtimer_del(d->dns_ev);   /* curl keeps its own time */
	if (!s->http)
		s->http = httpc_new(s->q->base);
	if (!s->http)
		return sts_end(d, "cannot start libcurl");
	char host[300];
	snprintf(host, sizeof host, "mta-sts.%s", d->domain);
	const struct buf *ca = &s->q->cur->sts_ca;
	struct httpc_req req = { host, addr, 443, "/.well-known/mta-sts.txt",
	                         ca->len ? ca->data : NULL, ca->len, "text/plain", MTASTS_BODY_MAX,
	                         STS_CONNECT_TIMEOUT, STS_TIMEOUT, NULL, 0, NULL };
	d->get = httpc_get(s->http, &req, sts_got, d);
}

static void sts_addr_cb(void *arg, const struct dns_rrset *r)
{
	struct sts_dom *d = arg;
	d->addr = NULL;
	if (r->status == DNS_OK && r->n)
		return sts_fetch(d, r->rr[0].data);
	char name[300], why[600];
	snprintf(name, sizeof name, "mta-sts.%s", d->domain);
	if (r->status != DNS_TEMP && !d->tried_aaaa) {
		d->tried_aaaa = true;
		d->addr = dns_lookup(d->s->q->dns, name, DNS_T_AAAA, sts_addr_cb, d);
		return;
	}
	snprintf(why, sizeof why, "policy fetch failed: %s: %s", name,
	         r->status == DNS_TEMP ? r->why : "no address");
	sts_end(d, why);
}

/* The policy is fetched again when the id changed, or when less than half
 * of its max_age is left. */
static bool sts_stale(const struct sts_dom *d, const char *id)
{
	int64_t left = d->expires - (int64_t)time(NULL);
	return !d->pol || strcmp(d->id, id) != 0 || left < (int64_t)d->pol->max_age / 2;
}

/* RFC 8461 3.1: of the records, those that begin with v=STSv1; exactly
 * one, valid, or there is no policy record (a cached policy stays). */
static void sts_txt_cb(void *arg, const struct dns_rrset *r)
{
	struct sts_dom *d = arg;
	d->txt = NULL;
	if (r->status == DNS_TEMP) {
		char why[300];
		snprintf(why, sizeof why, "_mta-sts TXT lookup failed: %s", r->why);
		return sts_end(d, why);
	}
	size_t nsts = 0, at = 0;
	for (size_t i = 0; r->status == DNS_OK && i < r->n; i++)
		if (mtasts_txt_is_sts(r->rr[i].data, r->rr[i].len))
			nsts++, at = i;
	char id[MTASTS_ID_MAX + 1];
	if (nsts == 0)
		return sts_end(d, d->pol ? "no _mta-sts TXT record" : NULL);
	if (nsts > 1 || !mtasts_txt(r->rr[at].data, r->rr[at].len, id))
		return sts_end(d, nsts > 1 ? "several STSv1 TXT records" : "invalid STSv1 TXT record");
	if (!sts_stale(d, id))
		return sts_end(d, NULL);
	memcpy(d->new_id, id, sizeof id);
	d->tried_aaaa = false;
	char name[300];
	snprintf(name, sizeof name, "mta-sts.%s", d->domain);
	sts_dns_arm(d);
	d->addr = dns_lookup(d->s->q->dns, name, DNS_T_A, sts_addr_cb, d);
}

/* A lookup that outlasts dns_timeout ends the discovery. */
static void sts_dns_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct sts_dom *d = arg;
	bool txt = d->txt != NULL;
	struct dns_lookup **l = txt ? &d->txt : &d->addr;
	if (*l)
		dns_cancel(d->s->q->dns, *l);
	*l = NULL;
	sts_end(d, txt ? "_mta-sts TXT lookup timed out" : "policy host lookup timed out");
}

static void sts_dns_arm(struct sts_dom *d)
{
	if (!d->dns_ev)
		d->dns_ev = evtimer_new(d->s->q->base, sts_dns_timeout, d);
	struct timeval tv = { d->s->q->conf->dns_timeout ? d->s->q->conf->dns_timeout : 20, 0 };
	evtimer_add(d->dns_ev, &tv);
}

static void sts_discover(struct sts_dom *d)
{
	char name[300];
	d->busy = true;
	snprintf(name, sizeof name, "_mta-sts.%s", d->domain);
	sts_dns_arm(d);
	d->txt = dns_lookup(d->s->q->dns, name, DNS_T_TXT, sts_txt_cb, d);
}
