/* adapt: the connection limit of a destination (see adapt.h). */
#include "deliver/adapt.h"

#include <stdlib.h>

#include "lib/util.h"

void adapt_init(struct adapt *a, unsigned max, bool adaptive, int64_t now)
{
	a->max = max ? max : 1;
	a->limit = a->max;
	a->start = now;
	a->done = 0;
	a->level = adaptive ? util_xcalloc(a->max + 1, sizeof *a->level) : NULL;
}

void adapt_free(struct adapt *a)
{
	free(a->level);
	a->level = NULL;
}

static bool adapt_fresh(const struct adapt *a, unsigned l, int64_t now)
{
	return l >= 1 && l <= a->max && a->level[l].at && now - a->level[l].at < ADAPT_STALE_MS;
}

/* The level of the best rate measured recently (0: none). */
static unsigned adapt_best(const struct adapt *a, int64_t now)
{
	unsigned best = 0;
	for (unsigned l = 1; l <= a->max; l++)
		if (adapt_fresh(a, l, now) && (!best || a->level[l].rate > a->level[best].rate))
			best = l;
	return best;
}

/* A level as good as the best: within ADAPT_SLACK of it. */
static bool adapt_good(const struct adapt *a, unsigned l, unsigned best, int64_t now)
{
	return adapt_fresh(a, l, now) && a->level[l].rate >= (1 - ADAPT_SLACK) * a->level[best].rate;
}

/* The epoch at the current level ended with rate: keep it (averaged
 * with the last one, when recent), and choose the next level: toward the
 * best when this one falls short; else one fewer when that may do as
 * well (not measured lately: a probe), or one more when that has not
 * been measured lately. */
static unsigned adapt_step(struct adapt *a, double rate, int64_t now)
{
	unsigned l = a->limit;
	struct adapt_level *lv = &a->level[l];
	lv->rate = adapt_fresh(a, l, now) ? (lv->rate + rate) / 2 : rate;
	lv->at = now;
	unsigned best = adapt_best(a, now);
	if (!adapt_good(a, l, best, now))
		return best > l ? l + 1 : l - 1;
	if (l > 1 && (!adapt_fresh(a, l - 1, now) || adapt_good(a, l - 1, best, now)))
		return l - 1;
	if (l < a->max && !adapt_fresh(a, l + 1, now))
		return l + 1;
	return l;
}

double adapt_rate(const struct adapt *a, unsigned l, int64_t now)
{
	return a->level && adapt_fresh(a, l, now) ? a->level[l].rate : -1;
}

bool adapt_done(struct adapt *a, bool saturated, int64_t now)
{
	if (!a->level)
		return false;
	if (!saturated || now < a->start) {   /* the demand set the pace: no measure */
		a->start = now;
		a->done = 0;
		return false;
	}
	a->done++;
	int64_t span = now - a->start;
	bool full = a->done >= ADAPT_EPOCH_DONE && a->done >= 2 * a->limit && span >= ADAPT_EPOCH_MS;
	if (!full && !(span >= ADAPT_EPOCH_MAX_MS && a->done >= 2))
		return false;
	unsigned was = a->limit;
	a->limit = adapt_step(a, a->done * 1000.0 / (double)span, now);
	a->start = now;
	a->done = 0;
	return a->limit != was;
}
