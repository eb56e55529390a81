/* limits: per-address counters (see limits.h). */
#include "policy/limits.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"

#define LIMITS_BUCKETS 1024
#define LIMITS_IP_MAX 46      /* INET6_ADDRSTRLEN */
#define LIMITS_WINDOW 60      /* seconds: "per minute" */

struct limits_entry {
	struct limits_entry *next;
	char ip[LIMITS_IP_MAX];
	unsigned open;
	unsigned recent;        /* connections in the current window */
	int64_t window;         /* start of the current window */
};

struct limits {
	struct limits_entry *bucket[LIMITS_BUCKETS];
};

static unsigned limits_hash(const char *ip)
{
	unsigned h = 2166136261u;  /* FNV-1a */
	for (; *ip; ip++)
		h = (h ^ (unsigned char)*ip) * 16777619u;
	return h % LIMITS_BUCKETS;
}

struct limits *limits_new(void)
{
	struct limits *l = util_xcalloc(1, sizeof *l);
	return l;
}

void limits_free(struct limits *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < LIMITS_BUCKETS; i++)
		for (struct limits_entry *e = l->bucket[i], *next; e; e = next) {
			next = e->next;
			free(e);
		}
	free(l);
}

/* Drop idle entries of one bucket whose window is over. */
static void limits_sweep(struct limits *l, unsigned b, int64_t now)
{
	for (struct limits_entry **pp = &l->bucket[b], *e; (e = *pp);) {
		if (e->open == 0 && now - e->window >= LIMITS_WINDOW) {
			*pp = e->next;
			free(e);
		} else {
			pp = &e->next;
		}
	}
}

static struct limits_entry *limits_find(const struct limits *l, const char *ip)
{
	for (struct limits_entry *e = l->bucket[limits_hash(ip)]; e; e = e->next)
		if (!strcmp(e->ip, ip))
			return e;
	return NULL;
}

static struct limits_entry *limits_get(struct limits *l, const char *ip, int64_t now)
{
	unsigned b = limits_hash(ip);
	limits_sweep(l, b, now);
	struct limits_entry *e = limits_find(l, ip);
	if (e)
		return e;
	e = util_xcalloc(1, sizeof *e);
	snprintf(e->ip, sizeof e->ip, "%s", ip);
	e->window = now;
	e->next = l->bucket[b];
	l->bucket[b] = e;
	return e;
}

enum limits_verdict limits_connect(struct limits *l, const char *ip, int64_t now,
                                   unsigned max_open, unsigned rate)
{
	struct limits_entry *e = limits_get(l, ip, now);
	if (now - e->window >= LIMITS_WINDOW || now < e->window) {
		e->window = now;
		e->recent = 0;
	}
	e->recent++;
	if (rate && e->recent > rate)
		return LIMITS_TOO_FAST;
	if (e->open >= max_open)
		return LIMITS_TOO_MANY;
	e->open++;
	return LIMITS_OK;
}

void limits_disconnect(struct limits *l, const char *ip)
{
	struct limits_entry *e = limits_find(l, ip);
	if (e && e->open > 0)
		e->open--;
}

unsigned limits_open(const struct limits *l, const char *ip)
{
	const struct limits_entry *e = limits_find(l, ip);
	return e ? e->open : 0;
}
