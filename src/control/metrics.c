/* metrics: the Prometheus page (text exposition format 0.0.4) on
 * metrics_listen, served by libevent's HTTP server from the main loop.
 * The counters are stats.c's; the queue's sizes come from the spool's
 * reader at each scrape. */
#include "control/metrics.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "control/control_priv.h"
#include "control/stats.h"
#include "lib/log.h"
#include "lib/util.h"
#include "policy/policy.h"

#define METRICS_DOMAINS 20   /* the domains with the most queued messages shown */

struct metrics {
	struct evhttp *http;
	struct control *c;
};

/* The plain counters: stats name, metric, help. */
static const struct {
	enum stats_counter c;
	const char *name, *help;
} metrics_counters[] = {
	{ STATS_CONNECTIONS, "tern_connections_total", "SMTP connections accepted." },
	{ STATS_REFUSED, "tern_connections_refused_total",
	  "Connections answered 421 at once (limits, pause)." },
	{ STATS_ACCEPTED, "tern_messages_accepted_total", "Messages queued (250 after DATA)." },
	{ STATS_NOT_QUEUED, "tern_messages_not_queued_total",
	  "Messages refused after DATA by a spool error." },
	{ STATS_REJECTED, "tern_commands_rejected_total", "Commands refused by the policy." },
	{ STATS_REPORTS, "tern_reports_total", "Delivery status reports sent (RFC 3464)." },
	{ STATS_AUTH_FAILED, "tern_auth_failures_total", "Failed AUTH exchanges." },
};

static const struct {
	enum stats_counter c;
	const char *status;
} metrics_deliveries[] = {
	{ STATS_DELIVERED, "sent" }, { STATS_DEFERRED, "deferred" },
	{ STATS_BOUNCED, "bounced" }, { STATS_EXPIRED, "expired" },
};

static void metrics_head(struct evbuffer *b, const char *name, const char *type, const char *help)
{
	evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value: backslash, double quote and newline escaped. */
static void metrics_label(struct evbuffer *b, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			evbuffer_add_printf(b, "\\%c", *v);
		else if (*v == '\n')
			evbuffer_add(b, "\\n", 2);
		else
			evbuffer_add(b, v, 1);
	}
}

struct metrics_family {
	struct evbuffer *b;
	const char *name, *label;
};

static void metrics_labelled(void *ctx, const char *label, uint64_t n)
{
	struct metrics_family *f = ctx;
	evbuffer_add_printf(f->b, "%s{%s=\"", f->name, f->label);
	metrics_label(f->b, label);
	evbuffer_add_printf(f->b, "\"} %llu\n", (unsigned long long)n);
}

static void metrics_stats(struct evbuffer *b)
{
	for (size_t i = 0; i < sizeof metrics_counters / sizeof metrics_counters[0]; i++) {
		metrics_head(b, metrics_counters[i].name, "counter", metrics_counters[i].help);
		evbuffer_add_printf(b, "%s %llu\n", metrics_counters[i].name,
		                    (unsigned long long)stats_get(metrics_counters[i].c));
	}
	metrics_head(b, "tern_deliveries_total", "counter",
	             "Delivery attempts of a recipient, by outcome.");
	for (size_t i = 0; i < sizeof metrics_deliveries / sizeof metrics_deliveries[0]; i++)
		evbuffer_add_printf(b, "tern_deliveries_total{status=\"%s\"} %llu\n",
		                    metrics_deliveries[i].status,
		                    (unsigned long long)stats_get(metrics_deliveries[i].c));
	struct metrics_family f = { b, "tern_rejections_total", "reason" };
	metrics_head(b, f.name, "counter", "Refused connections and commands, by reason.");
	stats_each_label(STATS_BY_REASON, metrics_labelled, &f);
	f = (struct metrics_family){ b, "tern_tls_sessions_total", "version" };
	metrics_head(b, f.name, "counter", "TLS sessions established, by protocol version.");
	stats_each_label(STATS_BY_TLS_VERSION, metrics_labelled, &f);
}

static void metrics_latency(struct evbuffer *b)
{
	struct stats_latency l;
	stats_latency(&l);
	const char *name = "tern_delivery_latency_seconds";
	metrics_head(b, name, "histogram", "From arrival to delivery, per recipient delivered.");
	uint64_t cum = 0;
	for (size_t i = 0; i < STATS_LATENCY_BUCKETS; i++) {
		cum += l.count[i];
		if (i < STATS_LATENCY_BUCKETS - 1)
			evbuffer_add_printf(b, "%s_bucket{le=\"%g\"} %llu\n", name, stats_latency_le[i],
			                    (unsigned long long)cum);
		else
			evbuffer_add_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n", name,
			                    (unsigned long long)cum);
	}
	evbuffer_add_printf(b, "%s_sum %.3f\n%s_count %llu\n", name, l.sum, name,
	                    (unsigned long long)l.n);
}

static void metrics_queue(struct evbuffer *b, struct spool_reader *r)
{
	static const char *const names[SPOOL_QUEUE__COUNT] = {
		[SPOOL_QUEUE_ACTIVE] = "active", [SPOOL_QUEUE_DEFERRED] = "deferred",
		[SPOOL_QUEUE_HOLD] = "hold",
	};
	long q[SPOOL_QUEUE__COUNT];
	uint64_t bytes;
	if (r && spool_reader_totals(r, &bytes) >= 0) {
		metrics_head(b, "tern_queue_bytes", "gauge", "Octets of the queued messages.");
		evbuffer_add_printf(b, "tern_queue_bytes %llu\n", (unsigned long long)bytes);
	}
	if (r && spool_reader_queues(r, q) == 0) {
		metrics_head(b, "tern_queue_messages", "gauge",
		             "Messages in the queue: active (not tried yet), deferred, hold.");
		for (int i = 0; i < SPOOL_QUEUE__COUNT; i++)
			evbuffer_add_printf(b, "tern_queue_messages{queue=\"%s\"} %ld\n", names[i], q[i]);
	}
	struct spool_domain_counts dc;
	if (!r || spool_reader_domains(r, SPOOL_STATE_BIT(SPOOL_STATE_PENDING) |
	                               SPOOL_STATE_BIT(SPOOL_STATE_HELD), METRICS_DOMAINS, &dc))
		return;
	metrics_head(b, "tern_queue_domain_messages", "gauge",
	             "Queued messages with a pending recipient at the domain (the 20 largest).");
	for (size_t i = 0; i < dc.n; i++) {
		evbuffer_add(b, "tern_queue_domain_messages{domain=\"", 35);
		metrics_label(b, dc.v[i].domain);
		evbuffer_add_printf(b, "\"} %zu\n", dc.v[i].msgs);
	}
	spool_domain_counts_free(&dc);
}

static void metrics_page(struct metrics *m, struct evbuffer *b)
{
	const struct control_env *env = &m->c->env;
	metrics_head(b, "tern_build_info", "gauge", "The version of ternd.");
	evbuffer_add_printf(b, "tern_build_info{version=\"%s\"} 1\n", TERN_VERSION);
	metrics_head(b, "tern_start_time_seconds", "gauge", "When ternd started (unix seconds).");
	evbuffer_add_printf(b, "tern_start_time_seconds %lld\n", (long long)env->started);
	metrics_head(b, "tern_sessions", "gauge", "SMTP sessions open.");
	evbuffer_add_printf(b, "tern_sessions %u\n", env->srv->nsessions);
	metrics_head(b, "tern_paused", "gauge", "1 while an operator has paused smtp or delivery.");
	evbuffer_add_printf(b, "tern_paused{what=\"smtp\"} %d\ntern_paused{what=\"delivery\"} %d\n",
	                    env->srv->policy->paused, m->c->delivery_paused);
	metrics_stats(b);
	metrics_latency(b);
	metrics_queue(b, m->c->reader);
}

static void metrics_cb(struct evhttp_request *req, void *arg)
{
	struct metrics *m = arg;
	const char *uri = evhttp_request_get_uri(req);
	if (strcmp(uri, "/metrics") && strncmp(uri, "/metrics?", 9)) {
		evhttp_send_error(req, HTTP_NOTFOUND, "tern serves /metrics only");
		return;
	}
	struct evbuffer *b = evbuffer_new();
	if (!b)
		log_panic("metrics: no memory for a page");
	metrics_page(m, b);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
	                  "text/plain; version=0.0.4; charset=utf-8");
	evhttp_send_reply(req, HTTP_OK, "OK", b);
	evbuffer_free(b);
}

struct metrics *metrics_open(struct control *c, const char *listen)
{
	char host[256];
	unsigned port;
	if (!util_hostport(listen, host, sizeof host, &port)) {
		log_error("metrics_listen: '%s' is not host:port", listen);
		return NULL;
	}
	struct metrics *m = util_xcalloc(1, sizeof *m);
	m->c = c;
	m->http = evhttp_new(c->env.srv->base);
	if (!m->http)
		log_panic("metrics: cannot create the HTTP server");
	evhttp_set_allowed_methods(m->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
	evhttp_set_timeout(m->http, 30);
	evhttp_set_max_headers_size(m->http, 16384);
	evhttp_set_max_body_size(m->http, 0);
	evhttp_set_gencb(m->http, metrics_cb, m);
	if (!evhttp_bind_socket_with_handle(m->http, host, (ev_uint16_t)port)) {
		log_error("metrics_listen: cannot listen on %s", listen);
		metrics_free(m);
		return NULL;
	}
	log_info("metrics on http://%s/metrics", listen);
	return m;
}

void metrics_free(struct metrics *m)
{
	if (!m)
		return;
	if (m->http)
		evhttp_free(m->http);
	free(m);
}
