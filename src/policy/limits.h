/* limits: per-client-address connection counters (pure: the caller passes
 * the clock), for max_connections_per_ip and max_connection_rate.
 *
 * A hash table keyed by the address text. The rate is counted in fixed
 * one-minute windows; an entry disappears when it has no open connection
 * and its window has passed.
 */
#ifndef TERN_LIMITS_H
#define TERN_LIMITS_H

#include <stdint.h>

enum limits_verdict {
	LIMITS_OK,
	LIMITS_TOO_MANY,   /* max_connections_per_ip open already: 421 4.7.0 */
	LIMITS_TOO_FAST,   /* max_connection_rate this minute: 421 4.7.0 */
};

struct limits;

struct limits *limits_new(void);
void limits_free(struct limits *l);

/* A connection from ip at time now (seconds). On LIMITS_OK it is counted
 * as open until limits_disconnect; otherwise nothing is held (but the
 * attempt counts toward the rate). rate 0: no rate limit. */
enum limits_verdict limits_connect(struct limits *l, const char *ip, int64_t now,
                                   unsigned max_open, unsigned rate);
void limits_disconnect(struct limits *l, const char *ip);

/* Open connections from ip (tests). */
unsigned limits_open(const struct limits *l, const char *ip);

#endif
