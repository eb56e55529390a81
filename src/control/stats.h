/* stats: counters since start, kept from the event records (any thread
 * emits; the counters are atomic): connections, messages accepted,
 * rejections by reason, deliveries by outcome and their latency, TLS
 * sessions by protocol version. `ternctl stats`, `monitor` and the
 * metrics page read them.
 */
#ifndef TERN_STATS_H
#define TERN_STATS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/event.h"

enum stats_counter {
	STATS_CONNECTIONS, STATS_REFUSED, STATS_ACCEPTED, STATS_NOT_QUEUED,
	STATS_REJECTED, STATS_DELIVERED, STATS_DEFERRED, STATS_BOUNCED, STATS_EXPIRED,
	STATS_REPORTS, STATS_AUTH_FAILED, STATS_TLS,
	STATS__COUNT
};

/* The counter names as JSON members ("delivered"), in enum order. */
extern const char *const stats_names[STATS__COUNT];

/* Counters by a label: rejections by reason, TLS sessions by version. */
enum stats_family { STATS_BY_REASON, STATS_BY_TLS_VERSION, STATS__FAMILIES };

/* Delivery latency (arrival to delivery, seconds): the upper bounds of
 * the histogram's buckets, the last one +Inf. */
#define STATS_LATENCY_BUCKETS 10
extern const double stats_latency_le[STATS_LATENCY_BUCKETS - 1];

struct stats_latency {
	uint64_t count[STATS_LATENCY_BUCKETS];   /* per bucket, not cumulative */
	uint64_t n;
	double sum;
};

/* The event subscriber that counts (any thread), and the kinds it counts
 * (its subscriber takes only these while nothing else asks for more). */
void stats_event(void *ctx, const struct ev *e);
#define STATS_KINDS (EV_KIND(EK_CONNECT) | EV_KIND(EK_QUEUED) | EV_KIND(EK_NOT_QUEUED) | \
                     EV_KIND(EK_REPORT) | EV_KIND(EK_DELIVERY) | EV_KIND(EK_TLS) |       \
                     EV_KIND(EK_AUTH) | EV_KIND(EK_REFUSED) | EV_KIND(EK_REJECT))

uint64_t stats_get(enum stats_counter c);

/* Each label of a family with its count, through fn (under the table's
 * lock: fn must not call back into stats). */
void stats_each_label(enum stats_family f, void (*fn)(void *ctx, const char *label, uint64_t n),
                      void *ctx);

void stats_latency(struct stats_latency *out);

/* Every counter, "rejected_by_reason" and "tls_by_version" objects. */
json_t *stats_json(void);

#endif
