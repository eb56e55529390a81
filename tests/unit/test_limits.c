/* Unit tests for limits: per-address open connections and rate windows. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>

#include "policy/limits.h"

static void test_per_ip(void **state)
{
	(void)state;
	struct limits *l = limits_new();
	assert_int_equal(limits_connect(l, "192.0.2.1", 100, 2, 0), LIMITS_OK);
	assert_int_equal(limits_connect(l, "192.0.2.1", 100, 2, 0), LIMITS_OK);
	assert_int_equal(limits_connect(l, "192.0.2.1", 100, 2, 0), LIMITS_TOO_MANY);
	assert_int_equal(limits_connect(l, "192.0.2.2", 100, 2, 0), LIMITS_OK);
	assert_int_equal(limits_open(l, "192.0.2.1"), 2);
	limits_disconnect(l, "192.0.2.1");
	assert_int_equal(limits_connect(l, "192.0.2.1", 100, 2, 0), LIMITS_OK);
	limits_disconnect(l, "198.51.100.7");  /* unknown: ignored */
	limits_free(l);
}

static void test_rate(void **state)
{
	(void)state;
	struct limits *l = limits_new();
	/* three per minute: the fourth in the same window is refused */
	for (int i = 0; i < 3; i++) {
		assert_int_equal(limits_connect(l, "2001:db8::1", 1000 + i, 100, 3), LIMITS_OK);
		limits_disconnect(l, "2001:db8::1");
	}
	assert_int_equal(limits_connect(l, "2001:db8::1", 1030, 100, 3), LIMITS_TOO_FAST);
	assert_int_equal(limits_connect(l, "2001:db8::2", 1030, 100, 3), LIMITS_OK);
	/* a new window starts 60 s after the first */
	assert_int_equal(limits_connect(l, "2001:db8::1", 1060, 100, 3), LIMITS_OK);
	/* the clock going back also starts a new window */
	assert_int_equal(limits_connect(l, "2001:db8::3", 5000, 100, 1), LIMITS_OK);
	assert_int_equal(limits_connect(l, "2001:db8::3", 4000, 100, 1), LIMITS_OK);
	limits_free(l);
}

static void test_many_addresses(void **state)
{
	(void)state;
	struct limits *l = limits_new();
	char ip[32];
	for (int i = 0; i < 5000; i++) {
		snprintf(ip, sizeof ip, "10.0.%d.%d", i / 256, i % 256);
		assert_int_equal(limits_connect(l, ip, 0, 1, 1), LIMITS_OK);
		limits_disconnect(l, ip);
	}
	/* idle entries past their window are swept as their bucket is used */
	for (int i = 0; i < 5000; i++) {
		snprintf(ip, sizeof ip, "10.0.%d.%d", i / 256, i % 256);
		assert_int_equal(limits_connect(l, ip, 120, 1, 1), LIMITS_OK);
		assert_int_equal(limits_open(l, ip), 1);
	}
	limits_free(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_per_ip), cmocka_unit_test(test_rate),
		cmocka_unit_test(test_many_addresses),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
