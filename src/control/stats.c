/* stats: counters from event records (see stats.h). */
#include "control/stats.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STATS_LABELS 32   /* labels a family keeps; more share "other" */

const char *const stats_names[STATS__COUNT] = {
	[STATS_CONNECTIONS] = "connections", [STATS_REFUSED] = "connections_refused",
	[STATS_ACCEPTED] = "accepted", [STATS_NOT_QUEUED] = "not_queued",
	[STATS_REJECTED] = "rejected", [STATS_DELIVERED] = "delivered",
	[STATS_DEFERRED] = "deferred", [STATS_BOUNCED] = "bounced", [STATS_EXPIRED] = "expired",
	[STATS_REPORTS] = "reports", [STATS_AUTH_FAILED] = "auth_failed",
	[STATS_TLS] = "tls_sessions",
};

const double stats_latency_le[STATS_LATENCY_BUCKETS - 1] = {
	1, 5, 30, 60, 300, 1800, 3600, 21600, 86400,
};

static atomic_uint_least64_t stats_v[STATS__COUNT];

/* Labelled counters and the histogram: few updates a message, under one
 * mutex. The labels are the policy's static reasons and OpenSSL's
 * version names: a small table. */
static pthread_mutex_t stats_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
	char label[64];
	uint64_t n;
} stats_labels[STATS__FAMILIES][STATS_LABELS];
static struct stats_latency stats_lat;

static void stats_label(enum stats_family f, const char *p, size_t len)
{
	char l[64];
	snprintf(l, sizeof l, "%.*s", (int)len, p);
	pthread_mutex_lock(&stats_mu);
	for (size_t i = 0; i < STATS_LABELS; i++) {
		if (i == STATS_LABELS - 1)
			snprintf(stats_labels[f][i].label, sizeof stats_labels[f][i].label, "other");
		else if (!stats_labels[f][i].label[0])
			snprintf(stats_labels[f][i].label, sizeof stats_labels[f][i].label, "%s", l);
		else if (strcmp(stats_labels[f][i].label, l))
			continue;
		stats_labels[f][i].n++;
		break;
	}
	pthread_mutex_unlock(&stats_mu);
}

static void stats_add(enum stats_counter c)
{
	atomic_fetch_add_explicit(&stats_v[c], 1, memory_order_relaxed);
}

/* "delay=12s": the seconds from arrival to this delivery. */
static void stats_delivered(const struct ev *e)
{
	size_t len;
	const char *d = ev_get(e, "delay", &len);
	char buf[32];
	snprintf(buf, sizeof buf, "%.*s", d ? (int)len : 0, d ? d : "");
	double secs = strtod(buf, NULL);
	size_t b = 0;
	while (b < STATS_LATENCY_BUCKETS - 1 && secs > stats_latency_le[b])
		b++;
	pthread_mutex_lock(&stats_mu);
	stats_lat.count[b]++;
	stats_lat.n++;
	stats_lat.sum += secs;
	pthread_mutex_unlock(&stats_mu);
}

static void stats_delivery(const struct ev *e)
{
	static const struct { const char *status; enum stats_counter c; } map[] = {
		{ "sent", STATS_DELIVERED }, { "deferred", STATS_DEFERRED },
		{ "bounced", STATS_BOUNCED }, { "expired", STATS_EXPIRED },
	};
	for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
		if (!ev_is(e, "status", map[i].status))
			continue;
		stats_add(map[i].c);
		if (map[i].c == STATS_DELIVERED)
			stats_delivered(e);
		return;
	}
}

void stats_event(void *ctx, const struct ev *e)
{
	(void)ctx;
	size_t len;
	const char *v;
	switch (e->kind) {
	case EK_CONNECT: stats_add(STATS_CONNECTIONS); break;
	case EK_QUEUED: stats_add(STATS_ACCEPTED); break;
	case EK_NOT_QUEUED: stats_add(STATS_NOT_QUEUED); break;
	case EK_REPORT: stats_add(STATS_REPORTS); break;
	case EK_DELIVERY: stats_delivery(e); break;
	case EK_TLS:
		if ((v = ev_get(e, "version", &len))) {
			stats_add(STATS_TLS);
			stats_label(STATS_BY_TLS_VERSION, v, len);
		}
		break;
	case EK_AUTH:
		if (ev_is(e, "result", "failed"))
			stats_add(STATS_AUTH_FAILED);
		break;
	case EK_REFUSED: case EK_REJECT:
		stats_add(e->kind == EK_REFUSED ? STATS_REFUSED : STATS_REJECTED);
		if ((v = ev_get(e, "reason", &len)))
			stats_label(STATS_BY_REASON, v, len);
		break;
	default:
		break;
	}
}

uint64_t stats_get(enum stats_counter c)
{
	return atomic_load_explicit(&stats_v[c], memory_order_relaxed);
}

void stats_each_label(enum stats_family f, void (*fn)(void *ctx, const char *label, uint64_t n),
                      void *ctx)
{
	pthread_mutex_lock(&stats_mu);
	for (size_t i = 0; i < STATS_LABELS && stats_labels[f][i].label[0]; i++)
		fn(ctx, stats_labels[f][i].label, stats_labels[f][i].n);
	pthread_mutex_unlock(&stats_mu);
}

void stats_latency(struct stats_latency *out)
{
	pthread_mutex_lock(&stats_mu);
	*out = stats_lat;
	pthread_mutex_unlock(&stats_mu);
}

static void stats_json_label(void *ctx, const char *label, uint64_t n)
{
	json_object_set_new(ctx, label, json_integer((json_int_t)n));
}

json_t *stats_json(void)
{
	json_t *o = json_object();
	for (int i = 0; i < STATS__COUNT; i++)
		json_object_set_new(o, stats_names[i], json_integer((json_int_t)stats_get(i)));
	json_t *by = json_object(), *tls = json_object();
	stats_each_label(STATS_BY_REASON, stats_json_label, by);
	stats_each_label(STATS_BY_TLS_VERSION, stats_json_label, tls);
	json_object_set_new(o, "rejected_by_reason", by);
	json_object_set_new(o, "tls_by_version", tls);
	return o;
}
