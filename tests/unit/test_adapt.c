/* Unit tests for adapt: a destination's connection limit follows the rate
 * its connections get through. A simulated next hop completes
 * transactions at a rate that depends on the connections allowed; the
 * limit must settle where more connections bring no more mail. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>

#include "deliver/adapt.h"

typedef double (*hop_fn)(unsigned limit, int64_t now);

/* Time (ms) the limit spent at each level over [from, to), for a hop
 * driven saturated from 0 to `to`, with +-jitter% pseudo-random spacing. */
struct run {
	int64_t at[65];
	unsigned changes;
};

static void simulate(struct adapt *a, hop_fn hop, int jitter, int64_t from, int64_t to,
                     struct run *r)
{
	uint32_t seed = 12345;
	double t = 0;
	while (t < (double)to) {
		unsigned l = a->limit;
		seed = seed * 1103515245u + 12345u;
		double j = 1 + jitter / 100.0 * (((seed >> 16) % 2001) / 1000.0 - 1);
		double dt = 1000.0 / hop(l, (int64_t)t) * j;
		if (t >= (double)from)
			r->at[l] += (int64_t)dt;
		t += dt;
		r->changes += adapt_done(a, true, (int64_t)t);
	}
}

/* The level held longest, and the share of time at levels lo..hi. */
static unsigned mode(const struct run *r)
{
	if (getenv("ADAPT_DEBUG") && *getenv("ADAPT_DEBUG"))
		for (unsigned l = 1; l < 65; l++)
			if (r->at[l])
				fprintf(stderr, "  level %u: %lld ms\n", l, (long long)r->at[l]);
	unsigned m = 1;
	for (unsigned l = 1; l < 65; l++)
		if (r->at[l] > r->at[m])
			m = l;
	return m;
}

static double share(const struct run *r, unsigned lo, unsigned hi)
{
	int64_t in = 0, all = 0;
	for (unsigned l = 1; l < 65; l++) {
		all += r->at[l];
		if (l >= lo && l <= hi)
			in += r->at[l];
	}
	return (double)in / (double)all;
}

/* The next hop takes 30 a second, whatever the connections (from 3 on). */
static double hop_capped(unsigned limit, int64_t now)
{
	(void)now;
	return limit * 10.0 < 30 ? limit * 10.0 : 30;
}

/* Latency-bound: every connection adds its share (a remote MX). */
static double hop_linear(unsigned limit, int64_t now)
{
	(void)now;
	return 8.0 * limit;
}

/* One connection does as well as many (a single-threaded sink). */
static double hop_flat(unsigned limit, int64_t now)
{
	(void)limit;
	(void)now;
	return 80;
}

/* More connections make it slower (contention at the next hop). */
static double hop_contended(unsigned limit, int64_t now)
{
	(void)now;
	return 120.0 - 8.0 * limit;
}

/* Capped at 30 a second for a minute, then at 60. */
static double hop_grows(unsigned limit, int64_t now)
{
	double cap = now < 60000 ? 30 : 60;
	return limit * 10.0 < cap ? limit * 10.0 : cap;
}

/* 40 a second on one connection, 80 on two or more (kill9-load's sink). */
static double hop_two(unsigned limit, int64_t now)
{
	(void)now;
	return limit > 1 ? 80 : 40;
}

/* One transaction in 2 s per connection. */
static double hop_slow(unsigned limit, int64_t now)
{
	(void)now;
	return 0.5 * limit;
}

/* Each row: a next hop, destination_concurrency, the limit it starts at,
 * the jitter (%), the window timed (ms, after the settling), the level
 * held longest there, and the share of the window spent in lo..hi (the
 * rest: probes of one more or one fewer). A row is run from time 0, the
 * same seed each time. */
static const struct settle_row {
	const char *name;
	hop_fn hop;
	unsigned max, start;
	int jitter;
	int64_t from, to;
	unsigned mode_lo, mode_hi, lo, hi;
	double share;
} settle_rows[] = {
	/* from the top, as always at first, down to the knee */
	{ "capped at 3", hop_capped, 10, 10, 10, 20000, 120000, 3, 3, 2, 4, 0.9 },
	/* every connection its share: back up to the maximum and stays */
	{ "latency-bound", hop_linear, 10, 2, 10, 20000, 120000, 10, 10, 9, 10, 0.95 },
	{ "one does as well as twenty", hop_flat, 20, 20, 10, 10000, 120000, 1, 1, 1, 2, 0.95 },
	/* falling with more: it must not climb */
	{ "contended", hop_contended, 10, 10, 5, 20000, 120000, 1, 2, 1, 2, 0.9 },
	/* epochs that end on time, with few completions, still climb */
	{ "2 s a message", hop_slow, 4, 2, 10, 60000, 600000, 4, 4, 3, 4, 0.9 },
	/* the hop speeds up at 60 s: followed within a probe period and a climb */
	{ "before it speeds up", hop_grows, 10, 10, 10, 20000, 60000, 3, 3, 2, 4, 0.8 },
	{ "after it sped up", hop_grows, 10, 10, 10, 60000 + ADAPT_STALE_MS + 10000, 180000,
	  6, 6, 5, 7, 0.9 },
};

static void test_settles(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof settle_rows / sizeof settle_rows[0]; i++) {
		const struct settle_row *w = &settle_rows[i];
		struct adapt a;
		adapt_init(&a, w->max, true, 0);
		assert_int_equal(a.limit, w->max);   /* from the top: never slower at first */
		a.limit = w->start;
		struct run r = { 0 };
		simulate(&a, w->hop, w->jitter, w->from, w->to, &r);
		unsigned m = mode(&r);
		double sh = share(&r, w->lo, w->hi);
		if (m < w->mode_lo || m > w->mode_hi || sh <= w->share)
			fail_msg("%s: held %u longest, %.2f of the time in %u..%u", w->name, m, sh,
			         w->lo, w->hi);
		adapt_free(&a);
	}
}

static void test_descends_within_seconds(void **state)
{
	(void)state;
	/* a level an epoch: from 10 to the knee in about two seconds, so
	 * that a restarted ternd soon stops holding ten messages there */
	struct adapt a;
	adapt_init(&a, 10, true, 0);
	struct run r = { 0 };
	simulate(&a, hop_two, 10, 0, 3000, &r);
	assert_true(a.limit <= 3);
	adapt_free(&a);
}

static void test_unsaturated_never_moves(void **state)
{
	(void)state;
	struct adapt a;
	adapt_init(&a, 10, true, 0);
	for (int64_t t = 1; t < 100000; t += 10)
		assert_false(adapt_done(&a, false, t));
	assert_int_equal(a.limit, 10);
	/* a saturated completion now and then, each after an unsaturated one,
	 * never makes an epoch */
	for (int64_t t = 100000; t < 200000; t += 10)
		assert_false(adapt_done(&a, t % 20 == 0, t));
	assert_int_equal(a.limit, 10);
	adapt_free(&a);
}

static void test_off_is_the_maximum(void **state)
{
	(void)state;
	struct adapt a;
	adapt_init(&a, 10, false, 0);
	assert_int_equal(a.limit, 10);
	struct run r = { 0 };
	simulate(&a, hop_flat, 0, 0, 60000, &r);
	assert_int_equal(r.changes, 0);
	assert_int_equal(a.limit, 10);
	adapt_free(&a);
	/* a maximum at or below the start: no room to adapt from below */
	adapt_init(&a, 1, true, 0);
	assert_int_equal(a.limit, 1);
	simulate(&a, hop_linear, 0, 0, 60000, &r);
	assert_int_equal(a.limit, 1);
	adapt_free(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_settles),
		cmocka_unit_test(test_descends_within_seconds),
		cmocka_unit_test(test_unsaturated_never_moves),
		cmocka_unit_test(test_off_is_the_maximum),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
