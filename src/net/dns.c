/* dns: libunbound's asynchronous API driven by libevent (see dns.h). One
 * MX query, then A and AAAA for every exchanger in parallel; or one
 * record set, as it comes (dns_lookup). */
#include "net/dns.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unbound.h>

#include "lib/log.h"
#include "lib/util.h"

#define T_A 1
#define T_MX 15
#define T_AAAA 28
#define RCODE_NXDOMAIN 3

struct dns_query;

struct dns {
	struct ub_ctx *ub;
	struct event *ev;
	struct event_base *base;
	struct dns_query *live;      /* outstanding, freed by dns_free */
	struct dns_lookup *lookups;  /* record sets outstanding, likewise */
	struct dns_txt_query *txts;  /* DKIM's TXT lookups, likewise */
	unsigned timeout;            /* seconds an MX/host lookup may take, 0: libunbound's */
};

struct dns_txt_query {
	struct dns_txt_query *next, *prev;
	struct dns *d;
	int id;                      /* libunbound's, for ub_cancel */
	struct event *now;           /* a failure to start, answered from the loop */
	dns_txt_cb cb;
	void *ctx;
};

struct dns_addr_q {
	struct dns_query *q;
	struct dns_host *h;
};

struct dns_query {
	struct dns_query *next, *prev;
	struct dns_addr_q aq[2 * DNS_HOSTS_MAX];
	struct dns *d;
	dns_cb cb;
	void *ctx;
	int pending;                 /* address lookups outstanding */
	unsigned nx;                 /* of them, NXDOMAIN answers */
	struct dns_result res;
	struct event *timer;         /* the dns_timeout, once something is asked */
	int asked;                   /* libunbound queries not yet answered */
	bool abandoned;              /* answered already (timed out): the rest is
	                                only waited for, then freed */
};

/* One record set asked for (dns_lookup). */
struct dns_lookup {
	struct dns_lookup *next, *prev;
	struct dns *d;
	enum dns_type type;
	dns_rr_cb cb;                /* NULL: cancelled while libunbound holds it */
	void *ctx;
	int id;                      /* libunbound's, while it holds the query */
	bool asked;
	struct event *ev;            /* an answer known without asking */
	enum dns_status status;      /* that answer */
	char why[256];
};

static void dns_readable(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct dns *d = arg;
	ub_process(d->ub);
}

/* libunbound answers some zones itself (NXDOMAIN): RFC 6761's test., and
 * RFC 6303's reverse zones of private, link-local and documentation
 * addresses. A resolver named in dns_resolver is trusted with every name:
 * a lab's or a site's own serves precisely such names (a client from
 * 10.0.0.0/8 has its PTR there, SPF's ptr and %{p} ask for it). */
static void dns_trust_forwarder(struct ub_ctx *ub)
{
	static const char *const zones[] = {
		"test.", "10.in-addr.arpa.", "168.192.in-addr.arpa.", "254.169.in-addr.arpa.",
		"2.0.192.in-addr.arpa.", "100.51.198.in-addr.arpa.", "113.0.203.in-addr.arpa.",
		"d.f.ip6.arpa.", "8.e.f.ip6.arpa.", "9.e.f.ip6.arpa.", "a.e.f.ip6.arpa.",
		"b.e.f.ip6.arpa.", "8.b.d.0.1.0.0.2.ip6.arpa.",
	};
	char name[32];
	for (size_t i = 0; i < sizeof zones / sizeof zones[0]; i++)
		ub_ctx_zone_remove(ub, zones[i]);
	for (int i = 16; i <= 31; i++) {    /* 172.16.0.0/12 */
		snprintf(name, sizeof name, "%d.172.in-addr.arpa.", i);
		ub_ctx_zone_remove(ub, name);
	}
	for (int i = 64; i <= 127; i++) {   /* 100.64.0.0/10 (RFC 6598) */
		snprintf(name, sizeof name, "%d.100.in-addr.arpa.", i);
		ub_ctx_zone_remove(ub, name);
	}
}

void dns_set_timeout(struct dns *d, unsigned seconds)
{
	d->timeout = seconds;
}

struct dns *dns_new(struct event_base *base, const char *resolver)
{
	return dns_new_validating(base, resolver, NULL);
}

/* The trust anchors go first: a zone change below finalizes the context. */
struct dns *dns_new_validating(struct event_base *base, const char *resolver,
                               const char *anchor_file)
{
	struct dns *d = util_xcalloc(1, sizeof *d);
	d->base = base;
	d->ub = ub_ctx_create();
	if (!d->ub)
		log_fatal("dns: cannot create a libunbound context");
	int err = ub_ctx_async(d->ub, 1);  /* a thread, not a fork */
	if (!err && anchor_file && (err = ub_ctx_add_ta_file(d->ub, anchor_file)) != 0)
		log_fatal("dns: dns_trust_anchor %s: %s", anchor_file, ub_strerror(err));
	if (!err && resolver && *resolver) {
		err = ub_ctx_set_fwd(d->ub, resolver);
		if (!err)  /* forwarding to 127.0.0.1 is what tests and local caches do */
			err = ub_ctx_set_option(d->ub, "do-not-query-localhost:", "no");
		if (!err)
			dns_trust_forwarder(d->ub);
	} else if (!err) {
		err = ub_ctx_resolvconf(d->ub, NULL);
		if (!err)
			err = ub_ctx_hosts(d->ub, NULL);
	}
	if (err)
		log_fatal("dns: resolver '%s': %s", resolver ? resolver : "", ub_strerror(err));
	d->ev = event_new(base, ub_fd(d->ub), EV_READ | EV_PERSIST, dns_readable, d);
	event_add(d->ev, NULL);
	return d;
}

void dns_free(struct dns *d)
{
	if (!d)
		return;
	event_free(d->ev);
	ub_ctx_delete(d->ub);  /* cancels what is outstanding */
	while (d->live) {
		struct dns_query *q = d->live;
		d->live = q->next;
		if (q->timer)
			event_free(q->timer);
		free(q);
	}
	while (d->lookups) {
		struct dns_lookup *l = d->lookups;
		d->lookups = l->next;
		if (l->ev)
			event_free(l->ev);
		free(l);
	}
	while (d->txts) {
		struct dns_txt_query *q = d->txts;
		d->txts = q->next;
		if (q->now)
			event_free(q->now);
		free(q);
	}
	free(d);
}

static void dns_unlink(struct dns_query *q)
{
	if (q->prev)
		q->prev->next = q->next;
	else
		q->d->live = q->next;
	if (q->next)
		q->next->prev = q->prev;
}

bool dns_parse_name(const unsigned char *rdata, size_t len, char *name, size_t n)
{
	if (len < 1 || n < 2)
		return false;
	size_t i = 0, o = 0;
	while (i < len && rdata[i]) {
		size_t l = rdata[i++];
		if (l > 63 || i + l > len || o + l + 2 > n)
			return false;  /* also refuses compression pointers (0xc0) */
		memcpy(name + o, rdata + i, l);
		o += l;
		name[o++] = '.';
		i += l;
	}
	if (i >= len || i + 1 != len)
		return false;
	if (o == 0)
		name[o++] = '.';
	else
		o--;  /* drop the trailing dot, except for the root */
	name[o] = '\0';
	return true;
}

bool dns_parse_mx(const unsigned char *rdata, size_t len, unsigned *pref, char *name, size_t n)
{
	if (len < 3)
		return false;
	*pref = (unsigned)rdata[0] << 8 | rdata[1];
	return dns_parse_name(rdata + 2, len - 2, name, n);
}

static void dns_finish(struct dns_query *q)
{
	struct dns_result *r = &q->res;
	bool all_nx = q->nx > 0 && q->nx == 2 * r->nhost;
	size_t k = 0;
	bool bogus = false;
	for (size_t i = 0; i < r->nhost; i++) {  /* hosts without one stay: see dns.h */
		if (r->host[i].bogus)
			r->host[i].naddr = 0;
		bogus |= r->host[i].bogus;
		k += r->host[i].naddr > 0;
	}
	if (r->status == DNS_OK && k == 0 && bogus) {
		r->status = DNS_TEMP;
		snprintf(r->why, sizeof r->why, "4.7.5 DNSSEC validation failed (bogus) for the "
		         "addresses of the mail exchangers");
	} else if (r->status == DNS_OK && k == 0) {
		r->status = DNS_TEMP;
		snprintf(r->why, sizeof r->why, "4.4.3 no address found for the mail exchangers%s",
		         all_nx ? " (names do not exist)" : "");
	}
	dns_unlink(q);
	if (q->timer)
		event_free(q->timer);
	q->cb(q->ctx, r);
	free(q);
}

/* dns_timeout: the caller gets a temporary failure now; libunbound's
 * answers still due are waited for and dropped (it has no cancel for
 * them here). */
static void dns_query_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct dns_query *q = arg;
	struct dns_result r;
	memset(&r, 0, sizeof r);
	r.status = DNS_TEMP;
	snprintf(r.why, sizeof r.why, "4.4.3 DNS lookup timed out after %u s (dns_timeout)",
	         q->d->timeout);
	q->abandoned = true;
	q->cb(q->ctx, &r);
}

/* Start the clock at the first question; false when the query was
 * abandoned and is over (freed). */
static void dns_query_asked(struct dns_query *q)
{
	q->asked++;
	if (q->timer || !q->d->timeout)
		return;
	q->timer = evtimer_new(q->d->base, dns_query_timeout, q);
	struct timeval tv = { (time_t)q->d->timeout, 0 };
	if (!q->timer || evtimer_add(q->timer, &tv) != 0)
		log_panic("dns: cannot set a timer");
}

/* An answer came: true when the query was abandoned (the answer is
 * dropped, and the query freed after the last one). */
static bool dns_query_answered(struct dns_query *q, struct ub_result *res)
{
	q->asked--;
	if (!q->abandoned)
		return false;
	if (res)
		ub_resolve_free(res);
	if (q->asked == 0) {
		dns_unlink(q);
		event_free(q->timer);
		free(q);
	}
	return true;
}

static void dns_add_addr(struct dns_host *h, int type, const char *data, int len)
{
	if (h->naddr >= DNS_ADDRS_MAX)
		return;
	struct sockaddr_storage *ss = &h->addr[h->naddr];
	memset(ss, 0, sizeof *ss);
	if (type == T_A && len == 4) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;
		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, data, 4);
		h->naddr++;
	} else if (type == T_AAAA && len == 16) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, data, 16);
		h->naddr++;
	}
}

static void dns_addr_cb(void *arg, int err, struct ub_result *res)
{
	struct dns_addr_q *aq = arg;
	struct dns_query *q = aq->q;
	if (dns_query_answered(q, res))
		return;
	if (!err && res && res->bogus)
		aq->h->bogus = true;
	if (err || !res || !res->secure)
		aq->h->secure = false;
	if (!err && res && !res->bogus) {
		if (res->rcode == RCODE_NXDOMAIN)
			q->nx++;
		for (int i = 0; res->havedata && res->data[i]; i++)
			dns_add_addr(aq->h, res->qtype, res->data[i], res->len[i]);
	}
	if (res)
		ub_resolve_free(res);
	if (--q->pending == 0)
		dns_finish(q);
}

static void dns_lookup_addrs(struct dns_query *q)
{
	static const int types[] = { T_A, T_AAAA };
	q->pending = (int)q->res.nhost * 2;
	if (q->pending == 0) {
		dns_finish(q);
		return;
	}
	for (size_t i = 0; i < q->res.nhost; i++) {
		q->res.host[i].secure = true;   /* until an answer is not */
		for (int t = 0; t < 2; t++) {
			struct dns_addr_q *aq = &q->aq[2 * i + (size_t)t];
			aq->q = q;
			aq->h = &q->res.host[i];
			if (ub_resolve_async(q->d->ub, aq->h->name, types[t], 1, aq, dns_addr_cb, NULL)) {
				if (--q->pending == 0) {
					dns_finish(q);
					return;
				}
			} else {
				dns_query_asked(q);
			}
		}
	}
}

static int dns_pref_cmp(const void *a, const void *b)
{
	const struct dns_host *x = a, *y = b;
	return (x->pref > y->pref) - (x->pref < y->pref);
}

/* RFC 5321 5.1: preference order, equal preferences in random order. */
static void dns_sort(struct dns_result *r)
{
	for (size_t i = r->nhost; i > 1; i--) {
		size_t j = (size_t)random() % i;
		struct dns_host t = r->host[i - 1];
		r->host[i - 1] = r->host[j];
		r->host[j] = t;
	}
	qsort(r->host, r->nhost, sizeof r->host[0], dns_pref_cmp);  /* not stable: fine */
}

static void dns_fail(struct dns_query *q, enum dns_status st, const char *why)
{
	q->res.status = st;
	snprintf(q->res.why, sizeof q->res.why, "%s", why);
	q->res.nhost = 0;
	dns_finish(q);
}

/* Fill the exchangers from an MX answer; false after a null MX. */
static bool dns_mx_hosts(struct dns_query *q, struct ub_result *res)
{
	for (int i = 0; res->data[i] && q->res.nhost < DNS_HOSTS_MAX; i++) {
		struct dns_host *h = &q->res.host[q->res.nhost];
		if (!dns_parse_mx((const unsigned char *)res->data[i], (size_t)res->len[i], &h->pref,
		                  h->name, sizeof h->name))
			continue;
		if (!strcmp(h->name, "."))  /* RFC 7505 null MX */
			return false;
		h->naddr = 0;
		q->res.nhost++;
	}
	dns_sort(&q->res);
	return true;
}

static void dns_mx_cb(void *arg, int err, struct ub_result *res)
{
	struct dns_query *q = arg;
	if (dns_query_answered(q, res))
		return;
	char why[256];
	if (err || !res) {
		snprintf(why, sizeof why, "4.4.3 DNS lookup failed: %s", ub_strerror(err));
		dns_fail(q, DNS_TEMP, why);
	} else if (res->bogus) {
		snprintf(why, sizeof why, "4.7.5 DNSSEC validation failed (bogus) for %s MX: %s",
		         res->qname, res->why_bogus ? res->why_bogus : "no reason given");
		dns_fail(q, DNS_TEMP, why);
	} else if (res->rcode == RCODE_NXDOMAIN) {
		snprintf(why, sizeof why, "5.1.2 domain %s does not exist", res->qname);
		dns_fail(q, DNS_PERM, why);
	} else if (res->rcode != 0) {
		snprintf(why, sizeof why, "4.4.3 DNS error (rcode %d) for %s MX", res->rcode, res->qname);
		dns_fail(q, DNS_TEMP, why);
	} else if (res->havedata && !dns_mx_hosts(q, res)) {
		snprintf(why, sizeof why, "5.1.10 %s does not accept mail (null MX, RFC 7505)", res->qname);
		dns_fail(q, DNS_PERM, why);
	} else {
		q->res.secure = res->secure;
		if (!res->havedata || q->res.nhost == 0) {  /* RFC 5321 5.1 implicit MX */
			snprintf(q->res.host[0].name, sizeof q->res.host[0].name, "%s", res->qname);
			q->res.host[0].pref = 0;
			q->res.nhost = 1;
		}
		dns_lookup_addrs(q);
	}
	if (res)
		ub_resolve_free(res);
}

static struct dns_query *dns_query_new(struct dns *d, dns_cb cb, void *ctx)
{
	struct dns_query *q = util_xcalloc(1, sizeof *q);
	q->d = d;
	q->cb = cb;
	q->ctx = ctx;
	q->next = d->live;
	if (d->live)
		d->live->prev = q;
	d->live = q;
	return q;
}

void dns_mx(struct dns *d, const char *domain, dns_cb cb, void *ctx)
{
	struct dns_query *q = dns_query_new(d, cb, ctx);
	int err = ub_resolve_async(d->ub, domain, T_MX, 1, q, dns_mx_cb, NULL);
	if (err) {
		q->asked++;   /* dns_mx_cb counts an answer */
		dns_mx_cb(q, err, NULL);
		return;
	}
	dns_query_asked(q);
}

/* An IP literal resolves at once (still through the loop, so callbacks
 * never run inside the caller). */
static void dns_literal_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	dns_finish(arg);
}

void dns_host(struct dns *d, const char *host, dns_cb cb, void *ctx)
{
	struct dns_query *q = dns_query_new(d, cb, ctx);
	struct dns_host *h = &q->res.host[0];
	snprintf(h->name, sizeof h->name, "%s", host);
	q->res.nhost = 1;
	q->res.secure = true;   /* no MX asked: the host is named here */
	struct in_addr a4;
	struct in6_addr a6;
	if (inet_pton(AF_INET, host, &a4) == 1) {
		dns_add_addr(h, T_A, (const char *)&a4, 4);
	} else if (inet_pton(AF_INET6, host, &a6) == 1) {
		dns_add_addr(h, T_AAAA, (const char *)&a6, 16);
	} else {
		dns_lookup_addrs(q);
		return;
	}
	event_base_once(d->base, -1, EV_TIMEOUT, dns_literal_cb, q, NULL);
}

/* ---- TXT (RFC 1035 3.3.14) ---- */

bool dns_parse_txt(const unsigned char *rdata, size_t len, struct buf *out)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len;) {
		size_t l = rdata[i++];
		if (i + l > len)
			return false;
		buf_append(out, rdata + i, l);
		i += l;
	}
	return true;
}

static void dns_txt_unlink(struct dns_txt_query *q)
{
	if (q->prev)
		q->prev->next = q->next;
	else
		q->d->txts = q->next;
	if (q->next)
		q->next->prev = q->prev;
}

/* The answer's records, or its status; then q goes before the callback
 * runs (which may cancel others, or free its owner). */
static void dns_txt_answer(struct dns_txt_query *q, int err, struct ub_result *res)
{
	struct dns_txt r = { .status = DNS_TEMP };
	if (!err && res && !res->bogus) {
		if (res->rcode == RCODE_NXDOMAIN || (res->rcode == 0 && !res->havedata))
			r.status = DNS_PERM;
		for (int i = 0; res->rcode == 0 && res->havedata && res->data[i] &&
		                r.n < DNS_TXT_RECORDS; i++)
			if (dns_parse_txt((const unsigned char *)res->data[i], (size_t)res->len[i],
			                  &r.rec[r.n]))
				r.n++;
		if (res->rcode == 0 && res->havedata)
			r.status = r.n ? DNS_OK : DNS_PERM;
	}
	dns_txt_cb cb = q->cb;
	void *ctx = q->ctx;
	dns_txt_unlink(q);
	if (q->now)
		event_free(q->now);
	free(q);
	cb(ctx, &r);
	for (size_t i = 0; i < DNS_TXT_RECORDS; i++)
		buf_free(&r.rec[i]);
}

static void dns_txt_done(void *arg, int err, struct ub_result *res)
{
	dns_txt_answer(arg, err, res);
	if (res)
		ub_resolve_free(res);
}

static void dns_txt_now(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	dns_txt_answer(arg, 1, NULL);
}

struct dns_txt_query *dns_txt(struct dns *d, const char *name, dns_txt_cb cb, void *ctx)
{
	struct dns_txt_query *q = util_xcalloc(1, sizeof *q);
	*q = (struct dns_txt_query){ .next = d->txts, .d = d, .cb = cb, .ctx = ctx };
	if (d->txts)
		d->txts->prev = q;
	d->txts = q;
	if (ub_resolve_async(d->ub, name, DNS_T_TXT, 1, q, dns_txt_done, &q->id) != 0) {
		q->now = evtimer_new(d->base, dns_txt_now, q);
		struct timeval zero = { 0, 0 };
		if (!q->now || evtimer_add(q->now, &zero) != 0)
			log_panic("dns: cannot schedule an answer");
	}
	return q;
}

void dns_txt_cancel(struct dns_txt_query *q)
{
	if (!q)
		return;
	if (q->now)
		event_free(q->now);
	else
		ub_cancel(q->d->ub, q->id);
	dns_txt_unlink(q);
	free(q);
}

/* ---- one record set ---- */


/* RFC 1035 2.3.4: labels of 1 to 63 octets, 253 in all (without the
 * trailing dot); 5.1: \DDD for an octet the text form cannot show. */
bool dns_name_text(const char *name, char *out, size_t n)
{
	size_t len = strlen(name), o = 0, label = 0;
	if (len > 1 && name[len - 1] == '.')
		len--;
	if (len == 0 || len > 253 || n < DNS_NAME_TEXT_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c == '.') {
			if (label == 0)
				return false;
			label = 0;
			out[o++] = '.';
			continue;
		}
		if (++label > 63)
			return false;
		if (c == '\\' || c < '!' || c > '~')
			o += (size_t)snprintf(out + o, n - o, "\\%03u", c);
		else
			out[o++] = (char)c;
	}
	out[o] = '\0';
	return label > 0;
}

static void dns_lookup_unlink(struct dns_lookup *l)
{
	if (l->prev)
		l->prev->next = l->next;
	else
		l->d->lookups = l->next;
	if (l->next)
		l->next->prev = l->prev;
}

static void dns_rr_add(struct dns_rrset *r, const char *data, size_t len)
{
	struct dns_rr *rr = &r->rr[r->n++];
	rr->data = util_xcalloc(len + 1, 1);
	memcpy(rr->data, data, len);
	rr->len = len;
}

/* TXT rdata: character-strings, each a length octet and its octets
 * (RFC 1035 3.3.14), joined (RFC 7208 3.3). */
static void dns_rr_txt(struct dns_rrset *r, const unsigned char *p, size_t len)
{
	char *joined = util_xcalloc(len + 1, 1);
	size_t o = 0;
	for (size_t i = 0; i < len;) {
		size_t l = p[i++];
		if (i + l > len)
			break;   /* malformed: keep what came whole */
		memcpy(joined + o, p + i, l);
		o += l;
		i += l;
	}
	dns_rr_add(r, joined, o);
	free(joined);
}

static void dns_rr_one(struct dns_rrset *r, enum dns_type type, const char *data, size_t len)
{
	const unsigned char *p = (const unsigned char *)data;
	char text[256];
	unsigned pref;
	if (type == DNS_T_TXT)
		dns_rr_txt(r, p, len);
	else if (((type == DNS_T_A && len == 4) || (type == DNS_T_AAAA && len == 16)) &&
	         inet_ntop(type == DNS_T_A ? AF_INET : AF_INET6, p, text, sizeof text))
		dns_rr_add(r, text, strlen(text));
	else if (type == DNS_T_PTR && dns_parse_name(p, len, text, sizeof text))
		dns_rr_add(r, text, strlen(text));
	else if (type == DNS_T_MX && dns_parse_mx(p, len, &pref, text, sizeof text))
		dns_rr_add(r, text, strlen(text));
	else if (type == DNS_T_TLSA)
		dns_rr_add(r, data, len);
}

/* An MX answer's exchangers by preference (RFC 5321 5.1), the rdata as
 * libunbound gives it: indexes into data, sorted. */
static void dns_rr_mx_order(char **data, int *lens, size_t n)
{
	for (size_t i = 1; i < n; i++) {   /* insertion sort: a few records */
		for (size_t j = i; j > 0; j--) {
			unsigned a = (unsigned)(unsigned char)data[j - 1][0] << 8 |
			             (unsigned char)data[j - 1][1];
			unsigned b = (unsigned)(unsigned char)data[j][0] << 8 | (unsigned char)data[j][1];
			if (lens[j - 1] < 2 || lens[j] < 2 || a <= b)
				break;
			char *t = data[j - 1];
			data[j - 1] = data[j];
			data[j] = t;
			int tl = lens[j - 1];
			lens[j - 1] = lens[j];
			lens[j] = tl;
		}
	}
}

static void dns_rrset_fill(struct dns_rrset *r, enum dns_type type, int err,
                           struct ub_result *res)
{
	if (err || !res) {
		r->status = DNS_TEMP;
		snprintf(r->why, sizeof r->why, "DNS lookup failed: %s", ub_strerror(err));
	} else if (res->bogus) {
		r->status = DNS_TEMP;
		r->bogus = true;
		snprintf(r->why, sizeof r->why, "DNSSEC validation failed (bogus) for %s: %s",
		         res->qname, res->why_bogus ? res->why_bogus : "no reason given");
	} else if (res->rcode == RCODE_NXDOMAIN) {
		r->status = DNS_PERM;
		r->secure = res->secure;
		snprintf(r->why, sizeof r->why, "%s does not exist", res->qname);
	} else if (res->rcode != 0) {
		r->status = DNS_TEMP;
		snprintf(r->why, sizeof r->why, "DNS error (an RCODE other than 0) for %s", res->qname);
	} else {
		r->secure = res->secure;
		size_t n = 0;
		while (res->havedata && res->data[n])
			n++;
		if (type == DNS_T_MX)
			dns_rr_mx_order(res->data, res->len, n);
		r->rr = util_xcalloc(n ? n : 1, sizeof *r->rr);
		for (size_t i = 0; i < n; i++)
			dns_rr_one(r, type, res->data[i], (size_t)res->len[i]);
	}
}

static void dns_lookup_answer(struct dns_lookup *l, int err, struct ub_result *res)
{
	dns_lookup_unlink(l);
	if (l->cb) {
		struct dns_rrset r = { .status = DNS_OK };
		if (l->ev) {
			r.status = l->status;
			snprintf(r.why, sizeof r.why, "%s", l->why);
		} else {
			dns_rrset_fill(&r, l->type, err, res);
		}
		l->cb(l->ctx, &r);
		for (size_t i = 0; i < r.n; i++)
			free(r.rr[i].data);
		free(r.rr);
	}
	if (l->ev)
		event_free(l->ev);
	free(l);
}

static void dns_lookup_cb(void *arg, int err, struct ub_result *res)
{
	dns_lookup_answer(arg, err, res);
	if (res)
		ub_resolve_free(res);
}

static void dns_lookup_now(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	dns_lookup_answer(arg, 0, NULL);
}

/* An answer known without asking, given from the loop all the same. */
static void dns_lookup_later(struct dns_lookup *l, enum dns_status st, const char *why)
{
	l->status = st;
	snprintf(l->why, sizeof l->why, "%s", why);
	l->ev = evtimer_new(l->d->base, dns_lookup_now, l);
	if (!l->ev)
		log_panic("dns: cannot create a timer");
	struct timeval now = { 0, 0 };
	evtimer_add(l->ev, &now);
}

struct dns_lookup *dns_lookup(struct dns *d, const char *name, enum dns_type type, dns_rr_cb cb,
                              void *ctx)
{
	struct dns_lookup *l = util_xcalloc(1, sizeof *l);
	l->d = d;
	l->type = type;
	l->cb = cb;
	l->ctx = ctx;
	l->next = d->lookups;
	if (d->lookups)
		d->lookups->prev = l;
	d->lookups = l;
	char text[DNS_NAME_TEXT_MAX];
	if (!dns_name_text(name, text, sizeof text)) {
		dns_lookup_later(l, DNS_PERM, "not a name DNS can carry");
		return l;
	}
	int err = ub_resolve_async(d->ub, text, (int)type, 1, l, dns_lookup_cb, &l->id);
	if (err)
		dns_lookup_later(l, DNS_TEMP, ub_strerror(err));
	else
		l->asked = true;
	return l;
}

void dns_cancel(struct dns *d, struct dns_lookup *l)
{
	if (l->asked && ub_cancel(d->ub, l->id) != 0) {
		l->cb = NULL;   /* libunbound answers anyway: dropped then */
		return;
	}
	dns_lookup_unlink(l);
	if (l->ev)
		event_free(l->ev);
	free(l);
}
