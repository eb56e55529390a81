/* MTA-STS's pure part (net/mtasts.c): TXT records (RFC 8461 3.1),
 * policies (3.2) and MX patterns (4.1), as tables. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "net/mtasts.h"

static void test_txt(void **state)
{
	(void)state;
	static const struct { const char *rec, *id; } t[] = {
		{ "v=STSv1; id=20160831085700Z;", "20160831085700Z" },
		{ "v=STSv1; id=abc", "abc" },
		{ "v=STSv1;id=abc;", "abc" },
		{ "v=STSv1; ext=1; id=X1 ;", "X1" },
		{ "v=STSv1; id=first; id=second", "first" },
		{ "v=STSv1; id=0123456789012345678901234567890a", "0123456789012345678901234567890a" },
		{ "v=STSv1; id=0123456789012345678901234567890ab", NULL },   /* 33 */
		{ "v=STSv1; id=a-b", NULL },
		{ "v=STSv1; id=", NULL },
		{ "v=STSv1;", NULL },
		{ "v=STSv1", NULL },
		{ "v=STSv2; id=a", NULL },
		{ "id=a; v=STSv1", NULL },
		{ "v=STSv1x; id=a", NULL },
		{ "v=STSv1; =x; id=a", NULL },
		{ "v=spf1 -all", NULL },
		{ "", NULL },
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		char id[MTASTS_ID_MAX + 1] = "";
		bool ok = mtasts_txt(t[i].rec, strlen(t[i].rec), id);
		if (ok != (t[i].id != NULL))
			fail_msg("%s: %s", t[i].rec, ok ? "accepted" : "refused");
		if (ok)
			assert_string_equal(id, t[i].id);
	}
	assert_true(mtasts_txt_is_sts("v=STSv1;", 8));
	assert_true(mtasts_txt_is_sts("v=STSv1", 7));
	assert_false(mtasts_txt_is_sts("v=STSv10;", 9));
}

static void test_policy_good(void **state)
{
	(void)state;
	static const struct { const char *text; int mode; unsigned max_age; size_t nmx; const char *mx0; } t[] = {
		{ "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\n"
		  "max_age: 86400\r\n", MTASTS_ENFORCE, 86400, 2, "mail.example.com" },
		{ "version: STSv1\nmode: testing\nmx: MX.Example.COM\nmax_age: 600", MTASTS_TESTING, 600, 1,
		  "mx.example.com" },
		{ "version: STSv1\nmode: none\nmax_age: 1\n", MTASTS_NONE, 1, 0, NULL },
		{ "version:STSv1\nmode:\tenforce  \nmx:a.b\nmax_age:99999999999\n", -1, 0, 0, NULL },
		{ "version:STSv1\nmode:enforce\nmx:a.b\nmax_age:9999999999\n", MTASTS_ENFORCE,
		  MTASTS_MAX_AGE_MAX, 1, "a.b" },
		{ "version: STSv1\nmode: enforce\nmode: none\nmx: a.b\nmax_age: 5\nfoo: bar\n",
		  MTASTS_ENFORCE, 5, 1, "a.b" },
		{ "mx: a.b\nmax_age: 5\nmode: testing\nversion: STSv1\n", MTASTS_TESTING, 5, 1, "a.b" },
		{ "version: STSv1\r\n\r\nmode: enforce\r\nmx: a.b\r\nmax_age: 5\r\n", MTASTS_ENFORCE, 5, 1,
		  "a.b" },
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		struct mtasts_policy p;
		char why[128] = "";
		bool ok = mtasts_parse(t[i].text, strlen(t[i].text), &p, why, sizeof why);
		if (ok != (t[i].mode >= 0))
			fail_msg("%zu: %s (%s)", i, ok ? "accepted" : "refused", why);
		if (!ok)
			continue;
		assert_int_equal(p.mode, t[i].mode);
		assert_int_equal(p.max_age, t[i].max_age);
		assert_int_equal(p.nmx, t[i].nmx);
		if (t[i].mx0)
			assert_string_equal(p.mx[0], t[i].mx0);
	}
}

static void test_policy_bad(void **state)
{
	(void)state;
	static const struct { const char *text, *why; } t[] = {
		{ "", "no version" },
		{ "mode: enforce\nmx: a.b\nmax_age: 5\n", "no version" },
		{ "version: STSv2\nmode: enforce\nmx: a.b\nmax_age: 5\n", "version is not STSv1" },
		{ "version: STSv1\nmx: a.b\nmax_age: 5\n", "no mode" },
		{ "version: STSv1\nmode: strict\nmx: a.b\nmax_age: 5\n", "mode is not" },
		{ "version: STSv1\nmode: enforce\nmx: a.b\n", "no max_age" },
		{ "version: STSv1\nmode: enforce\nmx: a.b\nmax_age: -1\n", "max_age" },
		{ "version: STSv1\nmode: enforce\nmx: a.b\nmax_age: \n", "max_age" },
		{ "version: STSv1\nmode: enforce\nmax_age: 5\n", "no mx" },
		{ "version: STSv1\nmode: enforce\nmx: a..b\nmax_age: 5\n", "mx value" },
		{ "version: STSv1\nmode: enforce\nmx: *.\nmax_age: 5\n", "mx value" },
		{ "version: STSv1\nmode: enforce\nmx: a.*.b\nmax_age: 5\n", "mx value" },
		{ "version: STSv1\nmode: enforce\nmx: a b\nmax_age: 5\n", "mx value" },
		{ "version: STSv1\nmode enforce\nmx: a.b\nmax_age: 5\n", "key: value" },
		{ ": x\n", "key: value" },
		{ "<html><body>Not found</body></html>\n", "key: value" },
		{ "version: STSv1\nmode: enforce\x01\nmx: a.b\nmax_age: 5\n", "control" },
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		struct mtasts_policy p;
		char why[128] = "";
		if (mtasts_parse(t[i].text, strlen(t[i].text), &p, why, sizeof why))
			fail_msg("%zu: accepted", i);
		if (!strstr(why, t[i].why))
			fail_msg("%zu: %s, not %s", i, why, t[i].why);
	}
}

static void test_mx_match(void **state)
{
	(void)state;
	struct mtasts_policy p;
	char why[64];
	const char *text = "version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.example.net\n"
	                   "max_age: 5\n";
	assert_true(mtasts_parse(text, strlen(text), &p, why, sizeof why));
	static const struct { const char *host; bool match; } t[] = {
		{ "mail.example.com", true },
		{ "MAIL.Example.Com", true },
		{ "mail.example.com.", true },
		{ "mx.example.com", false },
		{ "example.com", false },
		{ "a.example.net", true },
		{ "A.EXAMPLE.NET.", true },
		{ "example.net", false },
		{ "a.b.example.net", false },
		{ ".example.net", false },
		{ "aexample.net", false },
		{ "", false },
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
		if (mtasts_mx_match(&p, t[i].host) != t[i].match)
			fail_msg("%s: %s", t[i].host, t[i].match ? "no match" : "matched");
}

static void test_oversized(void **state)
{
	(void)state;
	static char big[MTASTS_BODY_MAX + 2];
	const char *head = "version: STSv1\nmode: none\nmax_age: 5\n";
	memset(big, '\n', sizeof big);
	memcpy(big, head, strlen(head));
	struct mtasts_policy p;
	char why[64];
	assert_true(mtasts_parse(big, MTASTS_BODY_MAX, &p, why, sizeof why));
	assert_false(mtasts_parse(big, MTASTS_BODY_MAX + 1, &p, why, sizeof why));
	assert_non_null(strstr(why, "64 KiB"));
	assert_string_equal(mtasts_mode_name(MTASTS_ENFORCE), "enforce");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_txt),
		cmocka_unit_test(test_policy_good),
		cmocka_unit_test(test_policy_bad),
		cmocka_unit_test(test_mx_match),
		cmocka_unit_test(test_oversized),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
