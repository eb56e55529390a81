/* test_jsonw: src/lib/jsonw.c, JSON text written straight into a buffer.
 *
 * A table of strings and the JSON each must become (escapes, UTF-8 kept,
 * each byte that begins no well-formed sequence as U+FFFD), integers at
 * their limits, and a property over random bytes checked with jansson: the
 * text always parses, and gives back the input when that was UTF-8.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "lib/jsonw.h"

#define ARRAY_LEN(a) (sizeof (a) / sizeof (a)[0])

static void test_str(void **state)
{
	(void)state;
	static const struct { const char *in, *out; } cases[] = {
		{ "", "\"\"" },
		{ "250 OK", "\"250 OK\"" },
		{ "a\"b\\c/", "\"a\\\"b\\\\c/\"" },
		{ "l1\nl2\r\t", "\"l1\\nl2\\r\\t\"" },
		{ "\x01\x1f\x7f", "\"\\u0001\\u001f\\u007f\"" },
		{ "caf\xc3\xa9", "\"caf\xc3\xa9\"" },                        /* U+00E9 */
		{ "\xe2\x82\xac 5", "\"\xe2\x82\xac 5\"" },                  /* U+20AC */
		{ "\xf0\x9f\x93\xa7", "\"\xf0\x9f\x93\xa7\"" },              /* U+1F4E7 */
		{ "\xf4\x8f\xbf\xbf", "\"\xf4\x8f\xbf\xbf\"" },              /* U+10FFFF */
		{ "a\xff" "b", "\"a\\ufffdb\"" },                            /* never in UTF-8 */
		{ "\xc3", "\"\\ufffd\"" },                                   /* cut short */
		{ "\xc3(", "\"\\ufffd(\"" },                                 /* bad continuation */
		{ "\xc0\xaf", "\"\\ufffd\\ufffd\"" },                        /* overlong '/' */
		{ "\xe0\x80\xaf", "\"\\ufffd\\ufffd\\ufffd\"" },             /* overlong, 3 bytes */
		{ "\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\"" },             /* U+D800, a surrogate */
		{ "\xf4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\"" },  /* past U+10FFFF */
		{ "\x80 x", "\"\\ufffd x\"" },                               /* a lone continuation */
	};
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct buf b = BUF_INIT;
		buf_puts(&b, "[");
		jsonw_str(&b, cases[i].in);
		assert_string_equal(buf_cstr(&b) + 1, cases[i].out);
		buf_free(&b);
	}
	struct buf b = BUF_INIT;
	jsonw_str(&b, NULL);
	assert_string_equal(buf_cstr(&b), "null");
	buf_free(&b);
}

static void test_int(void **state)
{
	(void)state;
	static const struct { int64_t in; const char *out; } cases[] = {
		{ 0, "0" }, { 7, "7" }, { -1, "-1" }, { 4096, "4096" },
		{ INT64_MAX, "9223372036854775807" }, { INT64_MIN, "-9223372036854775808" },
	};
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct buf b = BUF_INIT;
		jsonw_int(&b, cases[i].in);
		assert_string_equal(buf_cstr(&b), cases[i].out);
		buf_free(&b);
	}
}

/* Random strings, most bytes drawn from the awkward ones: whatever they
 * are, a strict reader takes the text, and UTF-8 comes back unchanged. */
static void test_random_bytes_parse(void **state)
{
	(void)state;
	static const unsigned char pick[] = { 0x01, 0x0a, 0x1f, '"', '\\', 'a', 0x7f, 0x80, 0xbf,
	                                      0xc2, 0xc3, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5,
	                                      0xff, 0xa0, 0x9f, 0x90, 0x8f };
	srandom(20261202);
	for (int round = 0; round < 20000; round++) {
		unsigned char in[24];
		size_t n = (size_t)random() % (sizeof in - 1);
		for (size_t i = 0; i < n; i++)
			in[i] = random() % 4 ? pick[random() % sizeof pick] : (unsigned char)(1 + random() % 255);
		in[n] = 0;
		struct buf b = BUF_INIT;
		jsonw_str(&b, (const char *)in);
		json_error_t err;
		json_t *v = json_loads(buf_cstr(&b), JSON_DECODE_ANY, &err);
		if (!v)
			fail_msg("round %d: %s: not JSON: %s", round, buf_cstr(&b), err.text);
		assert_true(json_is_string(v));
		json_t *same = json_string((const char *)in);   /* NULL: not UTF-8 */
		if (same)
			assert_string_equal(json_string_value(v), (const char *)in);
		else
			assert_non_null(strstr(json_string_value(v), "\xef\xbf\xbd"));   /* U+FFFD */
		json_decref(same);
		json_decref(v);
		buf_free(&b);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_str),
		cmocka_unit_test(test_int),
		cmocka_unit_test(test_random_bytes_parse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
