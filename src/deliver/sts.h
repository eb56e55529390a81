/* sts: MTA-STS policies (RFC 8461) of destination domains, on the
 * delivery loop. Discovery asks for the _mta-sts TXT record (net/dns.c);
 * a new id (or a policy near its expiry) fetches the policy over HTTPS
 * (net/httpc.c) from mta-sts.<domain>, resolved by the same resolver;
 * a valid one is kept in memory and in the spool (spool_sts_put), where
 * a restart finds it. A domain is asked again STS_RECHECK seconds after
 * its last discovery, answer or not. A known, unexpired policy answers
 * at once (a refresh goes on behind it, and one that fails leaves it in
 * force, RFC 8461 5.1); a domain without one waits for its discovery,
 * which the DNS and HTTP timeouts bound; a failed discovery without a
 * cached policy is no policy.
 */
#ifndef TERN_STS_H
#define TERN_STS_H

#include <stdbool.h>

#include "net/mtasts.h"

#define STS_RECHECK 300           /* seconds between discoveries of a domain */
#define STS_CONNECT_TIMEOUT 10    /* seconds, the policy's HTTPS connection */
#define STS_TIMEOUT 30            /* seconds, its whole fetch */

struct queue;
struct sts;
struct sts_wait;

/* The policy that applies to a domain: mode MTASTS_NONE without one. */
struct sts_policy {
	char domain[256];
	char id[MTASTS_ID_MAX + 1];
	struct mtasts_policy pol;
};

typedef void (*sts_cb)(void *ctx, const struct sts_policy *p);

struct sts *sts_new(struct queue *q);
/* Lookups, fetches and waiters dropped, no callback. */
void sts_free(struct sts *s);

/* domain's policy: true with *out filled now, or false and cb(ctx) once
 * discovery ends (from the loop), unless sts_cancel(*w) comes first. */
bool sts_find(struct sts *s, const char *domain, struct sts_policy *out, sts_cb cb, void *ctx,
              struct sts_wait **w);
void sts_cancel(struct sts *s, struct sts_wait *w);

/* "example.com id=2024a mode=enforce", for the log. */
void sts_describe(const struct sts_policy *p, char *out, size_t n);

#endif
