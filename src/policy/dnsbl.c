/* dnsbl: DNS block and allow lists for a client (see dnsbl.h). */
#include "policy/dnsbl.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/event.h"
#include "lib/log.h"
#include "lib/util.h"
#include "net/dns.h"

#define DNSBL_ZONES_MAX 16
#define DNSBL_REASON_MAX 200

struct dnsbl_zone {
	struct dnsbl *b;
	char zone[256];
	char name[DNS_NAME_TEXT_MAX];
	uint32_t want;              /* host order; 0: any */
	bool allow;                 /* a dnswl zone */
	bool listed, done;
	struct dns_lookup *q;       /* the A lookup, then the TXT one */
	char reason[DNSBL_REASON_MAX];
};

struct dnsbl {
	struct dns *dns;
	struct event *timer;
	uint64_t session;
	char ip[64];
	size_t n, open;
	struct dnsbl_zone z[DNSBL_ZONES_MAX];
	void (*fn)(void *ctx);
	void *ctx;
};

/* ---- names (RFC 5782 2.1, 2.4) ---- */

bool dnsbl_name(const char *ip, const char *zone, char *out, size_t n)
{
	unsigned char a[16];
	int len;
	if (inet_pton(AF_INET, ip, a) == 1) {
		len = snprintf(out, n, "%u.%u.%u.%u.%s", a[3], a[2], a[1], a[0], zone);
	} else if (inet_pton(AF_INET6, ip, a) == 1) {
		char nib[65];
		for (int i = 15, k = 0; i >= 0; i--) {
			static const char hex[] = "0123456789abcdef";
			nib[k++] = hex[a[i] & 15];
			nib[k++] = '.';
			nib[k++] = hex[a[i] >> 4];
			nib[k++] = '.';
		}
		nib[64] = '\0';
		len = snprintf(out, n, "%s%s", nib, zone);
	} else {
		return false;
	}
	return len > 0 && (size_t)len < n;
}

bool dnsbl_counts(uint32_t a, uint32_t want)
{
	if (want)
		return a == want;
	return (a >> 24) == 127 && (a >> 8) != 0x7fffff;   /* 127/8 but 127.255.255/24 */
}

/* ---- lookups ---- */

static void dnsbl_finish(struct dnsbl *b)
{
	if (b->timer)
		evtimer_del(b->timer);
	if (b->fn) {
		void (*fn)(void *) = b->fn;
		b->fn = NULL;
		fn(b->ctx);
	}
}

static void dnsbl_event(const struct dnsbl_zone *z)
{
	struct ev e;
	ev_init(&e, EK_DNSBL, LOG_INFO, z->b->session, NULL);
	ev_add(&e, "client", "[%s]", z->b->ip);
	ev_add(&e, z->allow ? "allowed by" : "listed by", "%s", z->zone);
	if (z->reason[0])
		ev_add(&e, "reason", "%s", z->reason);
	ev_emit(&e);
}

static void dnsbl_zone_done(struct dnsbl_zone *z)
{
	z->done = true;
	z->q = NULL;
	if (z->listed)
		dnsbl_event(z);
	if (--z->b->open == 0)
		dnsbl_finish(z->b);
}

/* The list's reason (RFC 5782 2.1: a TXT record at the same name), as
 * much as a reply line carries, printable ASCII only. */
static void dnsbl_txt(void *ctx, const struct dns_rrset *r)
{
	struct dnsbl_zone *z = ctx;
	if (r->status == DNS_OK && r->n > 0) {
		size_t k = 0;
		for (const char *p = r->rr[0].data; *p && k + 1 < sizeof z->reason; p++)
			z->reason[k++] = (*p >= 32 && *p < 127) ? *p : '?';
		z->reason[k] = '\0';
	}
	dnsbl_zone_done(z);
}

static void dnsbl_a(void *ctx, const struct dns_rrset *r)
{
	struct dnsbl_zone *z = ctx;
	z->q = NULL;
	for (size_t i = 0; r->status == DNS_OK && i < r->n && !z->listed; i++) {
		struct in_addr a;
		if (inet_pton(AF_INET, r->rr[i].data, &a) == 1)
			z->listed = dnsbl_counts(ntohl(a.s_addr), z->want);
	}
	if (r->status == DNS_TEMP)
		log_debug("dnsbl: %s: %s", z->name, r->why);
	if (z->listed && !z->allow) {
		z->q = dns_lookup(z->b->dns, z->name, DNS_T_TXT, dnsbl_txt, z);
		return;
	}
	dnsbl_zone_done(z);
}

/* dnsbl_timeout: what is still out is not a listing. */
static void dnsbl_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	dnsbl_stop(arg);
}

void dnsbl_stop(struct dnsbl *b)
{
	for (size_t i = 0; i < b->n; i++)
		if (b->z[i].q) {
			dns_cancel(b->dns, b->z[i].q);
			b->z[i].q = NULL;
			b->z[i].done = true;
			if (b->z[i].listed)   /* its reason never came */
				dnsbl_event(&b->z[i]);
		}
	b->open = 0;
	dnsbl_finish(b);
}

static void dnsbl_add(struct dnsbl *b, const char *entry, bool allow)
{
	if (b->n == DNSBL_ZONES_MAX)
		return;
	struct dnsbl_zone *z = &b->z[b->n];
	struct in_addr want;
	if (!conf_dnsbl_entry(entry, z->zone, sizeof z->zone, &want) ||
	    !dnsbl_name(b->ip, z->zone, z->name, sizeof z->name))
		return;
	z->b = b;
	z->want = ntohl(want.s_addr);
	z->allow = allow;
	b->n++;
}

struct dnsbl *dnsbl_start(struct dns *dns, struct event_base *base, const struct conf *c,
                          const char *ip, uint64_t session)
{
	if (c->dnsbl.n == 0)
		return NULL;   /* an allow list alone refuses nobody */
	struct dnsbl *b = util_xcalloc(1, sizeof *b);
	b->dns = dns;
	b->session = session;
	snprintf(b->ip, sizeof b->ip, "%s", ip);
	for (size_t i = 0; i < c->dnswl.n; i++)
		dnsbl_add(b, c->dnswl.v[i], true);
	for (size_t i = 0; i < c->dnsbl.n; i++)
		dnsbl_add(b, c->dnsbl.v[i], false);
	if (b->n == 0) {
		free(b);
		return NULL;
	}
	b->timer = evtimer_new(base, dnsbl_timeout, b);
	struct timeval tv = { (time_t)c->dnsbl_timeout, 0 };
	if (!b->timer || evtimer_add(b->timer, &tv) != 0)
		log_panic("dnsbl: cannot set a timer");
	b->open = b->n;
	for (size_t i = 0; i < b->n; i++)
		b->z[i].q = dns_lookup(dns, b->z[i].name, DNS_T_A, dnsbl_a, &b->z[i]);
	return b;
}

bool dnsbl_ready(const struct dnsbl *b)
{
	return b->open == 0;
}

void dnsbl_wait(struct dnsbl *b, void (*fn)(void *ctx), void *ctx)
{
	b->fn = fn;
	b->ctx = ctx;
}

const char *dnsbl_listed(const struct dnsbl *b, const char **reason)
{
	for (size_t i = 0; i < b->n; i++)
		if (b->z[i].allow && b->z[i].listed)
			return NULL;
	for (size_t i = 0; i < b->n; i++)
		if (!b->z[i].allow && b->z[i].listed) {
			*reason = b->z[i].reason;
			return b->z[i].zone;
		}
	return NULL;
}

void dnsbl_free(struct dnsbl *b)
{
	if (!b)
		return;
	for (size_t i = 0; i < b->n; i++)
		if (b->z[i].q)
			dns_cancel(b->dns, b->z[i].q);
	if (b->timer)
		event_free(b->timer);
	free(b);
}
