/* metrics: Prometheus's text exposition format on metrics_listen
 * (GET /metrics): stats.c's counters, the delivery latency histogram, TLS
 * sessions by version, the queue's messages by state and by domain. */
#ifndef TERN_METRICS_H
#define TERN_METRICS_H

struct control;
struct metrics;

/* Listen on listen ("host:port"); NULL, with why logged, on failure. */
struct metrics *metrics_open(struct control *c, const char *listen);
void metrics_free(struct metrics *m);

#endif
