/* Unit tests for the test mode's pure parts: capture_rules (which inbox
 * a recipient goes into, retention lines, bad lines refused with their
 * origin) and the search syntax turned into FTS5 (http/query.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "http/query.h"
#include "lib/buf.h"
#include "policy/capture.h"

static struct capture_rules *rules(const char *const *lines, size_t n)
{
	struct capture_rules *r = capture_rules_new();
	for (size_t i = 0; i < n; i++)
		assert_int_equal(capture_rules_line(r, lines[i], "t"), 0);
	return r;
}

static void test_inbox(void **state)
{
	(void)state;
	static const char *const lines[] = {
		"# a comment", "", "signup rcpt=*@signup.test", "billing from=billing@* user=shop",
		"ops listener=127.0.0.1:2526 rcpt=ops@*", "signup keep=100 age=1h",
	};
	struct capture_rules *r = rules(lines, sizeof lines / sizeof lines[0]);
	static const struct {
		const char *rcpt, *from, *user, *listener;
		bool all;
		const char *want;
	} rows[] = {
		{ "u@signup.test", "", NULL, "127.0.0.1:2525", false, "signup" },
		{ "U@SIGNUP.TEST", "", NULL, "127.0.0.1:2525", false, "signup" },   /* any case */
		{ "u@other.test", "", NULL, "127.0.0.1:2525", false, NULL },        /* delivered */
		{ "u@other.test", "", NULL, "127.0.0.1:2525", true, "default" },    /* capture = yes */
		{ "x@y.test", "billing@shop.test", "shop", "127.0.0.1:2525", false, "billing" },
		{ "x@y.test", "billing@shop.test", NULL, "127.0.0.1:2525", false, NULL },  /* no AUTH */
		{ "ops@y.test", "", NULL, "127.0.0.1:2526", false, "ops" },
		{ "ops@y.test", "", NULL, "127.0.0.1:2525", false, NULL },
		{ "u@signup.test", "billing@shop.test", "shop", "127.0.0.1:2525", false, "signup" },
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		struct capture_facts f = { rows[i].rcpt, rows[i].from, rows[i].user, rows[i].listener };
		const char *got = capture_inbox(r, &f, rows[i].all);
		if (rows[i].want)
			assert_string_equal(got, rows[i].want);
		else
			assert_null(got);
	}
	unsigned keep, age;
	capture_retention(r, "signup", 10000, 0, &keep, &age);
	assert_int_equal(keep, 100);
	assert_int_equal(age, 3600);
	capture_retention(r, "billing", 10000, 0, &keep, &age);
	assert_int_equal(keep, 10000);
	assert_int_equal(age, 0);
	assert_true(capture_rules_any(r));
	const char *names[8];
	assert_int_equal(capture_rules_inboxes(r, names, 8), 3);
	assert_string_equal(names[2], "ops");
	capture_rules_free(r);
	assert_string_equal(capture_inbox(NULL, &(struct capture_facts){ .rcpt = "a@b" }, true), "default");
}

static void test_bad_lines(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"bad/name rcpt=*", "x colour=blue", "x rcpt", "x rcpt=", "x keep=-1", "x keep=ten",
		"x age=forever", "x rcpt=*@a rcpt=*@b", "onlyname",
		"this-inbox-name-is-far-too-long-for-an-inbox-of-tern-capture-rules-x rcpt=*",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct capture_rules *r = capture_rules_new();
		assert_int_equal(capture_rules_line(r, bad[i], "t"), 1);
		assert_false(capture_rules_any(r));
		capture_rules_free(r);
	}
	assert_true(capture_inbox_valid("a.b_c-1"));
	assert_false(capture_inbox_valid(""));
	assert_false(capture_inbox_valid("a b"));
}

static void test_query(void **state)
{
	(void)state;
	static const struct { const char *q, *want; } rows[] = {
		{ "invoice", "\"invoice\"*" },
		{ "  two   words ", "\"two\"* AND \"words\"*" },
		{ "subject:march", "subject : \"march\"*" },
		{ "from:a@b.test to:c@d", "addrs : \"a@b.test\"* AND addrs : \"c@d\"*" },
		{ "\"exact phrase\" body:x", "\"exact phrase\"* AND body : \"x\"*" },
		{ "say\"hi", "\"say\"\"hi\"*" },                      /* quotes doubled */
		{ "OR NEAR( *", "\"OR\"* AND \"NEAR(\"* AND \"*\"*" },  /* syntax is only text */
		{ "\"unclosed", "\"unclosed\"*" },
	};
	struct buf b = BUF_INIT;
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		assert_true(query_fts(rows[i].q, &b));
		assert_string_equal(buf_cstr(&b), rows[i].want);
	}
	assert_false(query_fts("", &b));
	assert_false(query_fts("   ", &b));
	assert_false(query_fts("\"\"", &b));
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_inbox),
		cmocka_unit_test(test_bad_lines),
		cmocka_unit_test(test_query),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
