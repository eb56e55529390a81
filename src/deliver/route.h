/* route: where a recipient's mail goes next: a local mailbox (one route,
 * the Maildir transport); nowhere, for a recipient refused when queued
 * (SPOOL_ERROR); otherwise, in order: lmtp_domains to lmtp_host,
 * the transport_map (domain -> host:port), relayhost, else the domain's
 * MX hosts on smtp_port (RFC 5321 5.1). */
#ifndef TERN_ROUTE_H
#define TERN_ROUTE_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/conf.h"

/* ROUTE_CONDUIT: ATRN's reversed connection (deliver/dest.c), never a
 * result of route_for. */
enum route_kind { ROUTE_MX, ROUTE_HOST, ROUTE_UNIX, ROUTE_LOCAL, ROUTE_ERROR, ROUTE_CONDUIT };

struct hold_conduit;

struct route {
	enum route_kind kind;
	char name[256];       /* MX: the domain; HOST: host or IP; UNIX: socket path */
	unsigned port;
	bool lmtp;
	bool auth;            /* use relayhost_auth */
	char key[300];        /* destination identity, for connection sharing */
	struct hold_conduit *conduit;  /* ROUTE_CONDUIT */
};

struct route_map;

/* Load "domain  host:port" lines ('#' comments). Problems are printed as
 * FILE:LINE and counted in *bad. path "" gives an empty map. */
struct route_map *route_map_load(const char *path, int *bad);
void route_map_free(struct route_map *m);
/* Each line of the map, in order: fn(ctx, its domain in lower case, its
 * target "host:port" as written). */
void route_map_each(const struct route_map *m,
                    void (*fn)(void *ctx, const char *domain, const char *target), void *ctx);

/* A host given as "host:port" (a drain's target): false when it is not. */
bool route_to_host(const char *hostport, struct route *out);

/* The route of a recipient address "local@domain" with its transport
 * (enum spool_transport). */
bool route_for(const struct conf *c, const struct route_map *m, const char *addr, int transport,
               struct route *out);

#endif
