/* spf_check: SPF checks (policy/spf.h) run on an event loop, their DNS
 * through net/dns.c (libunbound, asynchronous): the policy's MAIL stage
 * asks here and its answer waits for the outcome, while the loop serves
 * every other session. Each check has a time limit (RFC 7208 4.6.4: at
 * least 20 seconds recommended), after which it is a temperror.
 */
#ifndef TERN_SPF_CHECK_H
#define TERN_SPF_CHECK_H

#include "policy/spf.h"

struct event_base;
struct spf_checker;

/* The checks of one loop, on its resolver dns (which outlives them). */
struct dns;
struct spf_checker *spf_check_new(struct event_base *base, struct dns *dns);

typedef void spf_check_fn(void *ctx, const struct spf_outcome *o);

/* Check req (its strings are copied); fn gets the outcome once: at once
 * when no DNS is needed, else later from the loop, at the latest after
 * timeout seconds (a temperror then). */
void spf_check_start(struct spf_checker *k, const struct spf_request *req, unsigned timeout,
                     spf_check_fn *fn, void *ctx);

/* Checks under way now. */
unsigned spf_check_running(const struct spf_checker *k);

/* The loop is ending: every check still running ends as a temperror (its
 * fn is called), its lookups dropped. */
void spf_check_free(struct spf_checker *k);

#endif
