/* myself: this host among a domain's MX hosts (see myself.h). */
#include "deliver/myself.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/log.h"
#include "lib/util.h"

/* ---- this host's addresses ---- */

/* sa as a myself_addr; false for a family other than IPv4 and IPv6. An
 * IPv4-mapped IPv6 address is its IPv4 address. */
static bool myself_addr_of(const struct sockaddr *sa, struct myself_addr *out)
{
	memset(out, 0, sizeof *out);
	if (sa->sa_family == AF_INET) {
		out->family = AF_INET;
		memcpy(out->a, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		return true;
	}
	if (sa->sa_family != AF_INET6)
		return false;
	const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
	if (IN6_IS_ADDR_V4MAPPED(a6)) {
		out->family = AF_INET;
		memcpy(out->a, a6->s6_addr + 12, 4);
	} else {
		out->family = AF_INET6;
		memcpy(out->a, a6->s6_addr, 16);
	}
	return true;
}

static bool myself_find(const struct myself *s, const struct myself_addr *a)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->v[i].family == a->family && !memcmp(s->v[i].a, a->a, sizeof a->a))
			return true;
	return false;
}

bool myself_has(const struct myself *s, const struct sockaddr *sa)
{
	struct myself_addr a;
	return myself_addr_of(sa, &a) && myself_find(s, &a);
}

void myself_add(struct myself *s, const struct sockaddr *sa)
{
	struct myself_addr a;
	if (!myself_addr_of(sa, &a) || myself_find(s, &a))
		return;
	s->v = util_xrealloc(s->v, s->n + 1, sizeof *s->v);
	s->v[s->n++] = a;
}

/* An IP literal as a socket address (port 0); false when it is none. */
static bool myself_parse(const char *ip, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof *ss);
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	if (inet_pton(AF_INET, ip, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		return true;
	}
	if (inet_pton(AF_INET6, ip, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		return true;
	}
	return false;
}

bool myself_add_text(struct myself *s, const char *ip)
{
	struct sockaddr_storage ss;
	if (!myself_parse(ip, &ss))
		return false;
	myself_add(s, (const struct sockaddr *)&ss);
	return true;
}

/* Every address of every interface: what a wildcard listener answers on. */
static void myself_add_interfaces(struct myself *s)
{
	struct ifaddrs *all;
	if (getifaddrs(&all) != 0) {
		log_warn("myself: cannot list the interfaces' addresses (%s): a wildcard listen "
		         "address will not be recognised in MX records", strerror(errno));
		return;
	}
	for (struct ifaddrs *i = all; i; i = i->ifa_next)
		if (i->ifa_addr)
			myself_add(s, i->ifa_addr);
	freeifaddrs(all);
}

static bool myself_wildcard(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ((const struct sockaddr_in *)ss)->sin_addr.s_addr == htonl(INADDR_ANY);
	return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)ss)->sin6_addr);
}

/* The addresses of the listen entries; a wildcard stands for every
 * interface's. */
static void myself_add_listen(struct myself *s, const struct conf_list *listen)
{
	bool wildcard = false;
	for (size_t i = 0; i < listen->n; i++) {
		char addr[INET6_ADDRSTRLEN + 16], host[INET6_ADDRSTRLEN + 2];
		unsigned modes, port;
		struct sockaddr_storage ss;
		if (!conf_listen_parse(listen->v[i], addr, sizeof addr, &modes) ||
		    !util_hostport(addr, host, sizeof host, &port) || !myself_parse(host, &ss))
			continue;   /* conf_finish refused it already */
		if (myself_wildcard(&ss))
			wildcard = true;
		else
			myself_add(s, (const struct sockaddr *)&ss);
	}
	if (wildcard)
		myself_add_interfaces(s);
}

struct myself *myself_new(const struct conf *c)
{
	struct myself *s = util_xcalloc(1, sizeof *s);
	snprintf(s->hostname, sizeof s->hostname, "%s", c->hostname ? c->hostname : "");
	size_t len = strlen(s->hostname);
	if (len > 1 && s->hostname[len - 1] == '.')
		s->hostname[len - 1] = '\0';
	util_lower(s->hostname);
	myself_add_listen(s, &c->listen);
	for (size_t i = 0; i < c->proxy_interfaces.n; i++)
		myself_add_text(s, c->proxy_interfaces.v[i]);
	return s;
}

void myself_free(struct myself *s)
{
	if (!s)
		return;
	free(s->v);
	free(s);
}

/* ---- the rule ---- */

/* Names equal but for case and a trailing dot. */
static bool myself_same_name(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 1 && a[la - 1] == '.')
		la--;
	if (lb > 1 && b[lb - 1] == '.')
		lb--;
	return la == lb && la > 0 && !strncasecmp(a, b, la);
}

static void myself_ip(const struct sockaddr_storage *ss, char *out, size_t n)
{
	const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
	const void *a = ss->ss_family == AF_INET ? (const void *)&sin->sin_addr
	                                         : (const void *)&sin6->sin6_addr;
	if (!inet_ntop(ss->ss_family, a, out, (socklen_t)n))
		snprintf(out, n, "?");
}

bool myself_is(const struct myself *s, const struct dns_host *h, char *why, size_t n)
{
	if (myself_same_name(h->name, s->hostname)) {
		snprintf(why, n, "hostname");
		return true;
	}
	for (size_t i = 0; i < h->naddr; i++)
		if (myself_has(s, (const struct sockaddr *)&h->addr[i])) {
			char ip[INET6_ADDRSTRLEN];
			myself_ip(&h->addr[i], ip, sizeof ip);
			snprintf(why, n, "address %s", ip);
			return true;
		}
	return false;
}

/* RFC 5321 5.1: the best host that is this host; every host of its
 * preference or worse goes, the better ones stay. */
struct myself_cut myself_cut(const struct myself *s, const struct dns_result *r)
{
	struct myself_cut c = { MYSELF_ABSENT, r->nhost, 0, "" };
	size_t i = 0;
	while (i < r->nhost && !myself_is(s, &r->host[i], c.why, sizeof c.why))
		i++;
	if (i == r->nhost)
		return c;
	c.self = i;
	c.keep = 0;
	while (c.keep < r->nhost && r->host[c.keep].pref < r->host[i].pref)
		c.keep++;
	size_t naddr = 0;
	for (size_t k = 0; k < c.keep; k++)
		naddr += r->host[k].naddr;
	c.verdict = c.keep == 0 ? MYSELF_BEST : naddr == 0 ? MYSELF_NO_BETTER : MYSELF_BACKUP;
	return c;
}

bool myself_result(const struct myself_cut *c, const char *domain, struct deliver_result *out)
{
	if (c->verdict == MYSELF_BEST) {
		out->status = DELIVER_PERM;
		snprintf(out->reply, sizeof out->reply,
		         "5.4.6 mail for %s loops back to myself: this host is its best MX", domain);
		return true;
	}
	if (c->verdict == MYSELF_NO_BETTER) {
		out->status = DELIVER_TEMP;
		snprintf(out->reply, sizeof out->reply,
		         "4.4.4 no better mail exchanger than this host for %s is reachable "
		         "(none has an address)", domain);
		return true;
	}
	return false;
}

bool myself_unreachable(const char *domain, const struct deliver_result *why,
                        struct deliver_result *out)
{
	const char *text = why->reply;
	if (why->status != DELIVER_TEMP || strncmp(text, "4.4.", 4))
		return false;
	text += strspn(text, "0123456789.");   /* its own enhanced code goes */
	text += *text == ' ';
	out->status = DELIVER_TEMP;
	snprintf(out->reply, sizeof out->reply,
	         "4.4.4 no better mail exchanger than this host for %s is reachable (%.400s)",
	         domain, text);
	return true;
}

void myself_describe(const struct myself_cut *c, const struct dns_result *r, const char *domain,
                     struct buf *out)
{
	const struct dns_host *self = &r->host[c->self];
	buf_printf(out, "mx %s: %s (preference %u) is this host (%s): dropped with every MX of "
	           "preference %u or more (RFC 5321 5.1):", domain, self->name, self->pref, c->why,
	           self->pref);
	for (size_t i = c->keep; i < r->nhost; i++)
		buf_printf(out, " %s", r->host[i].name);
	if (c->keep == 0)
		buf_puts(out, "; no better MX");
	for (size_t i = 0; i < c->keep; i++)
		buf_printf(out, "%s %s%s", i ? "," : "; left:", r->host[i].name,
		           r->host[i].naddr ? "" : " (no address)");
}
