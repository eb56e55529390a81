/* mx: MX and address lookups with libunbound; TARGET parsing. */
#include "tools/probe/mx.h"

#include <arpa/inet.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <unbound.h>

#include "lib/util.h"
#include "net/dns.h"

#define RR_A 1
#define RR_PTR 12
#define RR_MX 15
#define RR_AAAA 28
#define RR_CLASS_IN 1

struct mx {
	struct ub_ctx *ctx;
	int timeout_ms;     /* each lookup's bound (mx_set_timeout) */
};

#define MX_TIMEOUT_MS 10000

static const char *const mx_lab_zones[] = {
	"test.", "invalid.", "home.arpa.",
};

/* Reverse zones libunbound answers itself; a lab's resolver serves them. */
static const char *const mx_lab_reverse[] = {
	"127.in-addr.arpa.", "10.in-addr.arpa.", "168.192.in-addr.arpa.",
	"254.169.in-addr.arpa.", "2.0.192.in-addr.arpa.",
	"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa.",
	"d.f.ip6.arpa.",
};

struct mx *mx_new(const char *resolver, int timeout_ms, char *err, size_t errlen)
{
	struct mx *m = util_xcalloc(1, sizeof *m);
	m->timeout_ms = timeout_ms > 0 ? timeout_ms : MX_TIMEOUT_MS;
	if (!(m->ctx = ub_ctx_create())) {
		snprintf(err, errlen, "cannot create a libunbound context");
		free(m);
		return NULL;
	}
	/* A resolver on loopback (a local cache, a test server) is allowed;
	 * lookups run in a thread of libunbound's, so that they can be bounded. */
	int rc = ub_ctx_async(m->ctx, 1);
	if (rc == 0)
		rc = ub_ctx_set_option(m->ctx, "do-not-query-localhost:", "no");
	if (rc == 0)
		rc = resolver ? ub_ctx_set_fwd(m->ctx, resolver)
			      : ub_ctx_resolvconf(m->ctx, NULL);
	if (rc == 0)
		rc = ub_ctx_hosts(m->ctx, NULL);
	/* libunbound answers the RFC 6761 names itself (NXDOMAIN); test
	 * networks use them, so they go to the resolver like any other. */
	for (size_t i = 0; rc == 0 && i < sizeof mx_lab_zones / sizeof mx_lab_zones[0]; i++)
		ub_ctx_zone_remove(m->ctx, mx_lab_zones[i]);
	for (size_t i = 0; rc == 0 && resolver && i < sizeof mx_lab_reverse /
	     sizeof mx_lab_reverse[0]; i++)
		ub_ctx_zone_remove(m->ctx, mx_lab_reverse[i]);
	if (rc != 0) {
		snprintf(err, errlen, "resolver %s: %s", resolver ? resolver : "/etc/resolv.conf",
			 ub_strerror(rc));
		mx_free(m);
		return NULL;
	}
	return m;
}

void mx_free(struct mx *m)
{
	if (!m)
		return;
	if (m->ctx)
		ub_ctx_delete(m->ctx);
	free(m);
}

/* ------------------------------------------------------------ pure parts */

int mx_target_parse(const char *s, struct mx_target *t)
{
	memset(t, 0, sizeof *t);
	const char *end = s + strlen(s), *colon = NULL;
	if (*s == '[') {
		const char *rb = strchr(s, ']');
		if (!rb || (rb[1] != '\0' && rb[1] != ':'))
			return -1;
		if ((size_t)(rb - s - 1) >= sizeof t->host)
			return -1;
		memcpy(t->host, s + 1, (size_t)(rb - s - 1));
		colon = rb[1] == ':' ? rb + 1 : NULL;
	} else {
		colon = strchr(s, ':');
		if (colon && strchr(colon + 1, ':'))
			colon = NULL;               /* a bare IPv6 address */
		size_t hl = colon ? (size_t)(colon - s) : (size_t)(end - s);
		if (hl >= sizeof t->host)
			return -1;
		memcpy(t->host, s, hl);
	}
	if (t->host[0] == '\0')
		return -1;
	if (colon) {
		char *e;
		long p = strtol(colon + 1, &e, 10);
		if (colon[1] == '\0' || *e != '\0' || p < 1 || p > 65535)
			return -1;
		t->port = (int)p;
	}
	unsigned char tmp[16];
	t->literal = inet_pton(AF_INET, t->host, tmp) == 1 ||
		     inet_pton(AF_INET6, t->host, tmp) == 1;
	return 0;
}

int mx_addr_text(int type, const unsigned char *p, size_t n, char *out, size_t len)
{
	if (type == RR_A && n == 4)
		return inet_ntop(AF_INET, p, out, (socklen_t)len) ? 0 : -1;
	if (type == RR_AAAA && n == 16)
		return inet_ntop(AF_INET6, p, out, (socklen_t)len) ? 0 : -1;
	return -1;
}

enum mx_scope mx_addr_scope(const char *ip)
{
	unsigned char a[16];
	if (inet_pton(AF_INET, ip, a) == 1) {
		if (a[0] == 127)
			return MX_SCOPE_LOOPBACK;
		if (a[0] == 10 || (a[0] == 172 && (a[1] & 0xf0) == 16) ||
		    (a[0] == 192 && a[1] == 168) || (a[0] == 100 && (a[1] & 0xc0) == 64) ||
		    (a[0] == 169 && a[1] == 254))
			return MX_SCOPE_PRIVATE;
		if (a[0] == 0 || a[0] >= 224 || (a[0] == 192 && a[1] == 0 && a[2] == 2) ||
		    (a[0] == 198 && a[1] == 51 && a[2] == 100) ||
		    (a[0] == 203 && a[1] == 0 && a[2] == 113))
			return MX_SCOPE_BAD;
		return MX_SCOPE_PUBLIC;
	}
	if (inet_pton(AF_INET6, ip, a) != 1)
		return MX_SCOPE_BAD;
	static const unsigned char loop[16] = { [15] = 1 };
	if (memcmp(a, loop, 16) == 0)
		return MX_SCOPE_LOOPBACK;
	if ((a[0] & 0xfe) == 0xfc || (a[0] == 0xfe && (a[1] & 0xc0) == 0x80))
		return MX_SCOPE_PRIVATE;
	if (a[0] == 0xff || (a[0] == 0x20 && a[1] == 0x01 && a[2] == 0x0d && a[3] == 0xb8))
		return MX_SCOPE_BAD;
	return MX_SCOPE_PUBLIC;
}

int mx_reverse_name(const char *ip, const char *zone, char *out, size_t n)
{
	unsigned char a[16];
	size_t used = 0;
	int w;
	if (inet_pton(AF_INET, ip, a) == 1) {
		w = snprintf(out, n, "%u.%u.%u.%u.%s", a[3], a[2], a[1], a[0],
			     zone ? zone : "in-addr.arpa");
		return w < 0 || (size_t)w >= n ? -1 : 0;
	}
	if (inet_pton(AF_INET6, ip, a) != 1)
		return -1;
	for (int i = 15; i >= 0; i--) {
		w = snprintf(out + used, n - used, "%x.%x.", a[i] & 0xf, a[i] >> 4);
		if (w < 0 || (size_t)w >= n - used)
			return -1;
		used += (size_t)w;
	}
	w = snprintf(out + used, n - used, "%s", zone ? zone : "ip6.arpa");
	return w < 0 || (size_t)w >= n - used ? -1 : 0;
}

/* ------------------------------------------------------------ lookups */

struct mx_wait {
	bool done;
	int rc;
	struct ub_result *res;
};

static void mx_answered(void *arg, int rc, struct ub_result *res)
{
	struct mx_wait *w = arg;
	w->done = true;
	w->rc = rc;
	w->res = res;
}

/* ub_resolve, bounded: a resolver that never answers (a firewall dropping
 * port 53) makes a lookup fail after timeout_ms, not after libunbound's
 * own retries, which take minutes. */
static int mx_query(struct mx *m, const char *name, int type, struct ub_result **res,
		    char *err, size_t errlen)
{
	struct mx_wait w = { 0 };
	int id = 0;
	int rc = ub_resolve_async(m->ctx, name, type, RR_CLASS_IN, &w, mx_answered, &id);
	int64_t deadline = (int64_t)util_now_ms() + m->timeout_ms;
	while (rc == 0 && !w.done) {
		int64_t left = deadline - (int64_t)util_now_ms();
		if (left <= 0) {
			ub_cancel(m->ctx, id);
			snprintf(err, errlen, "no answer for %.60s within %d s", name,
				 (m->timeout_ms + 999) / 1000);
			return -1;
		}
		struct pollfd p = { .fd = ub_fd(m->ctx), .events = POLLIN };
		if (poll(&p, 1, (int)(left > 100 ? 100 : left)) > 0)
			rc = ub_process(m->ctx);
	}
	if (rc == 0)
		rc = w.rc;
	if (rc != 0) {
		if (w.res)
			ub_resolve_free(w.res);
		snprintf(err, errlen, "%s", ub_strerror(rc));
		return -1;
	}
	*res = w.res;
	return 0;
}

static int mx_resolve(struct mx *m, const char *name, int type, struct ub_result **res,
		      char *err, size_t errlen)
{
	if (mx_query(m, name, type, res, err, errlen) < 0)
		return -1;
	if ((*res)->rcode != 0 && (*res)->rcode != 3) {   /* 3: NXDOMAIN */
		snprintf(err, errlen, "DNS error (rcode %d) for %.60s", (*res)->rcode, name);
		ub_resolve_free(*res);
		return -1;
	}
	return 0;
}

int mx_canonical(struct mx *m, const char *host, char *out, size_t n)
{
	struct ub_result *res;
	char err[128];
	if (mx_resolve(m, host, RR_A, &res, err, sizeof err) < 0)
		return -1;
	int alias = 0;
	if (res->canonname) {
		size_t cl = strlen(res->canonname), hl = strlen(host);
		if (cl && res->canonname[cl - 1] == '.')
			cl--;
		if (hl && host[hl - 1] == '.')
			hl--;
		alias = cl != hl || strncasecmp(res->canonname, host, cl) != 0;
		if (alias)
			snprintf(out, n, "%.*s", (int)cl, res->canonname);
	}
	ub_resolve_free(res);
	return alias;
}

int mx_ptr(struct mx *m, const char *ip, char names[][MX_NAME_MAX], int max, int *n, char *err,
	   size_t errlen)
{
	char rev[100];
	struct ub_result *res;
	*n = 0;
	if (mx_reverse_name(ip, NULL, rev, sizeof rev) < 0) {
		snprintf(err, errlen, "not an address: %s", ip);
		return -1;
	}
	if (mx_resolve(m, rev, RR_PTR, &res, err, errlen) < 0)
		return -1;
	for (int i = 0; res->havedata && res->data[i] && *n < max; i++)
		if (dns_parse_name((unsigned char *)res->data[i], (size_t)res->len[i], names[*n],
				   MX_NAME_MAX))
			(*n)++;
	ub_resolve_free(res);
	return 0;
}

static void mx_addrs_type(struct mx *m, struct mx_host *h, int type)
{
	struct ub_result *res;
	char err[128];
	if (mx_resolve(m, h->name, type, &res, err, sizeof err) < 0) {
		snprintf(h->err, sizeof h->err, "%s", err);
		return;
	}
	for (int i = 0; res->havedata && res->data[i] && h->naddrs < MX_MAX_ADDRS; i++)
		if (mx_addr_text(type, (unsigned char *)res->data[i], (size_t)res->len[i],
				 h->addrs[h->naddrs], sizeof h->addrs[0]) == 0)
			h->naddrs++;
	if (!res->havedata && !h->err[0] && type == RR_AAAA && h->naddrs == 0)
		snprintf(h->err, sizeof h->err, "%s", res->nxdomain ?
			 "no such host (NXDOMAIN)" : "the name has no A or AAAA record");
	ub_resolve_free(res);
}

int mx_addrs(struct mx *m, const char *host, struct mx_host *h)
{
	if (h->name != host)
		snprintf(h->name, sizeof h->name, "%s", host);
	h->naddrs = 0;
	h->err[0] = '\0';
	mx_addrs_type(m, h, RR_A);
	mx_addrs_type(m, h, RR_AAAA);
	if (h->naddrs > 0)
		h->err[0] = '\0';
	return h->naddrs > 0 ? 0 : -1;
}

static int mx_cmp(const void *a, const void *b)
{
	const struct mx_host *x = a, *y = b;
	if (x->pref != y->pref)
		return x->pref < y->pref ? -1 : 1;
	return strcasecmp(x->name, y->name);
}

/* RFC 1035 3.3.9 rdata, by net/dns.c's parser (the daemon's). */
static void mx_add(struct mx_list *out, const unsigned char *p, size_t n)
{
	struct mx_host *h = &out->hosts[out->n];
	unsigned pref;
	memset(h, 0, sizeof *h);
	if (!dns_parse_mx(p, n, &pref, h->name, sizeof h->name))
		return;
	h->pref = (int)pref;
	out->n++;
}

int mx_lookup(struct mx *m, const char *domain, struct mx_list *out, char *err, size_t errlen)
{
	struct ub_result *res;
	memset(out, 0, sizeof *out);
	if (mx_resolve(m, domain, RR_MX, &res, err, errlen) < 0)
		return -1;
	for (int i = 0; res->havedata && res->data[i] && out->n < MX_MAX_HOSTS; i++)
		mx_add(out, (unsigned char *)res->data[i], (size_t)res->len[i]);
	ub_resolve_free(res);
	if (out->n == 0) {   /* RFC 5321 section 5.1: the implicit MX */
		out->implicit = true;
		out->hosts[0].pref = -1;
		if (mx_addrs(m, domain, &out->hosts[0]) == 0)
			out->n = 1;
		else
			snprintf(err, errlen, "%s: no MX record, %s", domain, out->hosts[0].err);
		return 1;
	}
	qsort(out->hosts, (size_t)out->n, sizeof out->hosts[0], mx_cmp);
	for (int i = 0; i < out->n; i++)
		mx_addrs(m, out->hosts[i].name, &out->hosts[i]);
	return 0;
}

int mx_route(struct mx *m, const struct mx_target *t, struct mx_list *out,
	     bool *mx_found, char *err, size_t errlen)
{
	memset(out, 0, sizeof *out);
	*mx_found = false;
	struct mx_host *h = &out->hosts[0];
	h->pref = -1;
	snprintf(h->name, sizeof h->name, "%s", t->host);
	if (t->literal) {
		snprintf(h->addrs[0], sizeof h->addrs[0], "%.45s", t->host);
		h->naddrs = out->n = 1;
		return 0;
	}
	if (t->port) {
		if (mx_addrs(m, t->host, h) < 0) {
			snprintf(err, errlen, "%s: %s", t->host, h->err);
			return -1;
		}
		out->n = 1;
		return 0;
	}
	int rc = mx_lookup(m, t->host, out, err, errlen);
	*mx_found = rc == 0;
	return out->n > 0 ? 0 : -1;
}
