/* route: next-hop selection (see route.h). */
#include "deliver/route.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/addr.h"
#include "lib/idna.h"
#include "lib/log.h"
#include "lib/util.h"
#include "spool/spool.h"

struct route_entry {
	char domain[256];
	char target[300];
};

struct route_map {
	size_t n;
	struct route_entry *v;
};

static int route_map_line(void *ctx, char *t, const char *origin)
{
	struct route_map *m = ctx;
	size_t dl = strcspn(t, " \t");
	char *target = util_trim(t + dl);
	t[dl] = '\0';
	char host[256];
	unsigned port;
	if (!*target || dl >= sizeof m->v[0].domain || !util_hostport(target, host, sizeof host, &port)) {
		log_problem("%s: expected 'domain host:port'\n", origin);
		return 1;
	}
	struct route_entry *v = util_xrealloc(m->v, m->n + 1, sizeof *v);
	m->v = v;
	if (!idna_alabel(t, v[m->n].domain, sizeof v[m->n].domain)) {
		log_problem("%s: %s is not a valid IDNA domain\n", origin, t);
		return 1;
	}
	snprintf(v[m->n].target, sizeof v[m->n].target, "%s", target);
	m->n++;
	return 0;
}

struct route_map *route_map_load(const char *path, int *bad)
{
	struct route_map *m = util_xcalloc(1, sizeof *m);
	if (!path || !*path)
		return m;
	*bad += util_each_line(path, "transport map", UTIL_LINES_COMMENTS, route_map_line, m);
	return m;
}

void route_map_free(struct route_map *m)
{
	if (!m)
		return;
	free(m->v);
	free(m);
}

void route_map_each(const struct route_map *m,
                    void (*fn)(void *ctx, const char *domain, const char *target), void *ctx)
{
	for (size_t i = 0; m && i < m->n; i++)
		fn(ctx, m->v[i].domain, m->v[i].target);
}

static const char *route_map_find(const struct route_map *m, const char *domain)
{
	for (size_t i = 0; m && i < m->n; i++)
		if (!strcasecmp(m->v[i].domain, domain))
			return m->v[i].target;
	return NULL;
}

static bool route_host(struct route *r, const char *hostport, bool lmtp, bool auth)
{
	r->kind = ROUTE_HOST;
	r->lmtp = lmtp;
	r->auth = auth;
	if (!util_hostport(hostport, r->name, sizeof r->name, &r->port))
		return false;
	snprintf(r->key, sizeof r->key, "%s:%s:%u", lmtp ? "lmtp" : "smtp", r->name, r->port);
	return true;
}

bool route_to_host(const char *hostport, struct route *out)
{
	memset(out, 0, sizeof *out);
	return route_host(out, hostport, false, false);
}

bool route_for(const struct conf *c, const struct route_map *m, const char *addr, int transport,
               struct route *out)
{
	memset(out, 0, sizeof *out);
	const char *domain = addr_domain_of(addr);
	if (transport == SPOOL_LOCAL) {
		out->kind = ROUTE_LOCAL;
		snprintf(out->key, sizeof out->key, "local");
		return true;
	}
	if (transport == SPOOL_ERROR) {
		out->kind = ROUTE_ERROR;
		snprintf(out->key, sizeof out->key, "error");
		return true;
	}
	if (transport == SPOOL_LMTP) {
		if (!strncmp(c->lmtp_host, "unix:", 5)) {
			out->kind = ROUTE_UNIX;
			out->lmtp = true;
			snprintf(out->name, sizeof out->name, "%s", c->lmtp_host + 5);
			snprintf(out->key, sizeof out->key, "lmtp:%s", out->name);
			return true;
		}
		return route_host(out, c->lmtp_host, true, false);
	}
	char alabel[256];   /* looked up as its A-label; the address stays */
	if (!idna_alabel(domain, alabel, sizeof alabel)) {
		out->kind = ROUTE_ERROR;
		snprintf(out->key, sizeof out->key, "error");
		return false;
	}
	domain = alabel;
	const char *mapped = route_map_find(m, domain);
	if (mapped)
		return route_host(out, mapped, false, false);
	if (*c->relayhost)
		return route_host(out, c->relayhost, false, *c->relayhost_auth != '\0');
	out->kind = ROUTE_MX;
	snprintf(out->name, sizeof out->name, "%s", domain);
	util_lower(out->name);
	out->port = c->smtp_port;
	snprintf(out->key, sizeof out->key, "mx:%s", out->name);
	return *domain != '\0';
}
