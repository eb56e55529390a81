/* adapt: a destination's connection limit, from the rate its connections
 * get through (destination_concurrency_adaptive).
 *
 * Postfix raises a destination's concurrency on success and lowers it on
 * connection failures; neither sees a next hop that answers every
 * connection, only no faster with more of them. Such a next hop, the
 * bottleneck, holds a transaction past its final dot on every connection,
 * and each of those is delivered twice if the sender dies before reading
 * the reply (RFC 5321 6.1's window): more connections bring duplicates,
 * load on the next hop, and no mail.
 *
 * So while jobs wait for a connection (the destination is saturated: the
 * limit, not the demand, sets the pace), completions are counted in
 * epochs; an epoch's rate is kept for its level (the limit it ran at).
 * The limit goes down a level while the level below delivered within
 * ADAPT_SLACK of the best recent rate, and up a level while the current
 * one does not. A level's rate older than ADAPT_STALE_MS is measured
 * again (a probe of one epoch), so that a next hop that gets faster or
 * slower is followed. It starts at destination_concurrency, so that
 * nothing is slower than without it: against a remote next hop with
 * latency, where every connection adds its share, it stays there.
 *
 * Pure: the caller passes its clock, in milliseconds. */
#ifndef TERN_ADAPT_H
#define TERN_ADAPT_H

#include <stdbool.h>
#include <stdint.h>

#define ADAPT_SLACK 0.05          /* a level within 5% of the best is as good */
#define ADAPT_EPOCH_MS 250        /* an epoch lasts at least this long, */
#define ADAPT_EPOCH_DONE 16       /* and has at least this many completions */
#define ADAPT_EPOCH_MAX_MS 5000   /* or at least 2 in this long (a slow hop) */
#define ADAPT_STALE_MS 20000

struct adapt_level {
	double rate;                  /* completions per second */
	int64_t at;                   /* when measured (ms); 0: never */
};

struct adapt {
	unsigned max;                 /* destination_concurrency */
	unsigned limit;               /* the connections allowed now */
	int64_t start;                /* the epoch's start (ms) */
	unsigned done;                /* its completions */
	struct adapt_level *level;    /* [1..max] */
};

/* max >= 1; adaptive false: the limit is max, always. */
void adapt_init(struct adapt *a, unsigned max, bool adaptive, int64_t now);
void adapt_free(struct adapt *a);

/* A transaction has completed at now; saturated: jobs were waiting for a
 * connection. Returns true when the limit has changed. */
bool adapt_done(struct adapt *a, bool saturated, int64_t now);

/* The completions a second measured at level l in the last
 * ADAPT_STALE_MS, or -1. */
double adapt_rate(const struct adapt *a, unsigned l, int64_t now);

#endif
