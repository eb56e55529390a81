/* Unit tests for hold: which domains hold_domains covers, ETRN's
 * "@domain" matching, and the recipient lists of hold_recipients_file. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "lib/conf.h"
#include "policy/hold.h"

static void test_under(void **state)
{
	(void)state;
	static const struct { const char *domain, *pattern; bool sub, want; } rows[] = {
		{ "example.org", "example.org", false, true },
		{ "Example.ORG", "example.org", false, true },
		{ "mail.example.org", "example.org", false, false },
		{ "mail.example.org", "example.org", true, true },
		{ "a.b.example.org", "example.org", true, true },
		{ "badexample.org", "example.org", true, false },   /* not a label boundary */
		{ "example.org", "mail.example.org", true, false },
		{ "org", "example.org", true, false },
		{ ".example.org", "example.org", true, false },     /* an empty label */
		{ "", "", false, true },
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
		assert_int_equal(hold_domain_under(rows[i].domain, rows[i].pattern, rows[i].sub),
		                 rows[i].want);
}

static void test_hold_domains(void **state)
{
	(void)state;
	struct conf c;
	conf_defaults(&c);
	assert_int_equal(conf_set(&c, "hold_domains", "held.test, Other.Test", "t"), 0);
	assert_true(hold_domain(&c, "held.test"));
	assert_true(hold_domain(&c, "sub.HELD.test"));   /* subdomains too */
	assert_true(hold_domain(&c, "other.test"));
	assert_false(hold_domain(&c, "test"));
	assert_false(hold_domain(&c, "notheld.test"));
	conf_free(&c);
}

static void test_rcpts(void **state)
{
	(void)state;
	static const struct { const char *line; int bad; } lines[] = {
		{ "kate@held.test", 0 }, { "Bob@HELD.test", 0 }, { "@open.test", 0 },
		{ "not an address", 1 }, { "@", 1 }, { "@bad..domain", 1 }, { "x@", 1 },
		{ "two@a.test three@b.test", 1 },
	};
	struct hold_rcpts *h = hold_rcpts_new();
	for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
		char *copy = strdup(lines[i].line);
		assert_int_equal(hold_rcpts_line(h, copy, "t:1"), lines[i].bad);
		free(copy);
	}
	static const struct { const char *local, *domain; bool want; } rows[] = {
		{ "kate", "held.test", true },
		{ "KATE", "Held.Test", true },     /* in any case */
		{ "bob", "held.test", true },
		{ "nobody", "held.test", false },  /* held.test has a list */
		{ "anyone", "open.test", true },   /* "@open.test": every user */
		{ "anyone", "free.test", true },   /* no list: every user */
		{ "two", "a.test", true },         /* the refused line added nothing */
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
		assert_int_equal(hold_rcpts_allow(h, rows[i].local, rows[i].domain), rows[i].want);
	hold_rcpts_free(h);
	assert_true(hold_rcpts_allow(NULL, "x", "y.test"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_under),
		cmocka_unit_test(test_hold_domains),
		cmocka_unit_test(test_rcpts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
