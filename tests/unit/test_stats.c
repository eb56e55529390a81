/* test_stats: the counters that ternctl stats, monitor and the metrics
 * page show, from the event records the daemon emits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "control/stats.h"

static void emit(enum ev_kind k, const char *key, const char *value, const char *key2,
                 const char *value2)
{
	struct ev e;
	ev_init(&e, k, LOG_INFO, 1, NULL);
	if (key)
		ev_add(&e, key, "%s", value);
	if (key2)
		ev_add(&e, key2, "%s", value2);
	stats_event(NULL, &e);
}

static void test_counters(void **state)
{
	(void)state;
	emit(EK_CONNECT, "client", "[127.0.0.1]", NULL, NULL);
	emit(EK_CONNECT, "client", "[127.0.0.1]", NULL, NULL);
	emit(EK_QUEUED, "from", "<a@b>", NULL, NULL);
	emit(EK_DELIVERY, "delay", "0s", "status", "sent");
	emit(EK_DELIVERY, "delay", "400s", "status", "sent");
	emit(EK_DELIVERY, "delay", "1s", "status", "deferred");
	emit(EK_DELIVERY, "delay", "9s", "status", "bounced");
	emit(EK_DELIVERY, "delay", "9s", "status", "expired");
	emit(EK_DELIVERY, "delay", "9s", "status", "sentx");   /* not a status: nothing */
	emit(EK_AUTH, "result", "failed", NULL, NULL);
	emit(EK_AUTH, "result", "succeeded", NULL, NULL);
	emit(EK_TLS, "version", "TLSv1.3", NULL, NULL);
	emit(EK_TLS, "version", "TLSv1.2", NULL, NULL);
	emit(EK_TLS, "version", "TLSv1.3", NULL, NULL);
	emit(EK_REJECT, "reason", "no such mailbox", NULL, NULL);
	emit(EK_REJECT, "reason", "no such mailbox", NULL, NULL);
	emit(EK_REFUSED, "reason", "too many connections", NULL, NULL);
	assert_int_equal(stats_get(STATS_CONNECTIONS), 2);
	assert_int_equal(stats_get(STATS_ACCEPTED), 1);
	assert_int_equal(stats_get(STATS_DELIVERED), 2);
	assert_int_equal(stats_get(STATS_DEFERRED), 1);
	assert_int_equal(stats_get(STATS_BOUNCED), 1);
	assert_int_equal(stats_get(STATS_EXPIRED), 1);
	assert_int_equal(stats_get(STATS_AUTH_FAILED), 1);
	assert_int_equal(stats_get(STATS_TLS), 3);
	assert_int_equal(stats_get(STATS_REJECTED), 2);
	assert_int_equal(stats_get(STATS_REFUSED), 1);

	json_t *o = stats_json();
	assert_int_equal(json_integer_value(json_object_get(o, "delivered")), 2);
	json_t *by = json_object_get(o, "rejected_by_reason");
	assert_int_equal(json_integer_value(json_object_get(by, "no such mailbox")), 2);
	assert_int_equal(json_integer_value(json_object_get(by, "too many connections")), 1);
	json_t *tls = json_object_get(o, "tls_by_version");
	assert_int_equal(json_integer_value(json_object_get(tls, "TLSv1.3")), 2);
	assert_int_equal(json_integer_value(json_object_get(tls, "TLSv1.2")), 1);
	json_decref(o);

	/* 0 s in the first bucket (le 1), 400 s in le 1800 */
	struct stats_latency l;
	stats_latency(&l);
	assert_int_equal(l.n, 2);
	assert_int_equal(l.count[0], 1);
	assert_int_equal(l.count[5], 1);
	assert_true(l.sum > 399.9 && l.sum < 400.1);
}

/* A flood of distinct labels keeps a bounded table: the rest are "other". */
static void test_labels_bounded(void **state)
{
	(void)state;
	char why[32];
	for (int i = 0; i < 100; i++) {
		snprintf(why, sizeof why, "reason %d", i);
		emit(EK_REJECT, "reason", why, NULL, NULL);
	}
	json_t *o = stats_json();
	json_t *by = json_object_get(o, "rejected_by_reason");
	assert_true(json_object_size(by) <= 32);
	json_int_t total = 0;
	const char *k;
	json_t *v;
	json_object_foreach(by, k, v)
		total += json_integer_value(v);
	assert_int_equal(total, 102 + 1);   /* these, and test_counters' three */
	assert_true(json_integer_value(json_object_get(by, "other")) > 0);
	json_decref(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counters),
		cmocka_unit_test(test_labels_bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
