/* test_probe: the pure parts of tern-probe's client side.
 *
 * mx (TARGET parsing, address rdata) and report (JSON strings), as tables
 * of input and output. Reply lines, base64 and dot-stuffing are net/smtp's
 * (test_smtp), MX rdata net/dns's (test_dns).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "tools/probe/mx.h"
#include "tools/probe/report.h"

#define ARRAY_LEN(a) (sizeof (a) / sizeof (a)[0])

static void test_target(void **state)
{
	(void)state;
	static const struct { const char *in; int rc; const char *host; int port; bool lit; } cases[] = {
		{ "example.com", 0, "example.com", 0, false },
		{ "mx.example.com:2525", 0, "mx.example.com", 2525, false },
		{ "127.0.0.1", 0, "127.0.0.1", 0, true },
		{ "127.0.0.1:25", 0, "127.0.0.1", 25, true },
		{ "::1", 0, "::1", 0, true },
		{ "[::1]:587", 0, "::1", 587, true },
		{ "[::1]", 0, "::1", 0, true },
		{ "host:0", -1, "", 0, false },
		{ "host:65536", -1, "", 0, false },
		{ "host:", -1, "", 0, false },
		{ "host:25x", -1, "", 0, false },
		{ ":25", -1, "", 0, false },
		{ "", -1, "", 0, false },
		{ "[::1", -1, "", 0, false },
		{ "[::1]x", -1, "", 0, false },
	};
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct mx_target t;
		int rc = mx_target_parse(cases[i].in, &t);
		if (rc != cases[i].rc || (rc == 0 && (strcmp(t.host, cases[i].host) != 0 ||
		    t.port != cases[i].port || t.literal != cases[i].lit)))
			fail_msg("mx_target_parse(%s): rc %d host %s port %d lit %d",
				 cases[i].in, rc, t.host, t.port, t.literal);
	}
}

static void test_addr_text(void **state)
{
	(void)state;
	static const unsigned char a[] = { 127, 0, 0, 1 };
	static const unsigned char aaaa[16] = { [15] = 1 };
	char txt[64];
	assert_int_equal(mx_addr_text(1, a, 4, txt, sizeof txt), 0);
	assert_string_equal(txt, "127.0.0.1");
	assert_int_equal(mx_addr_text(28, aaaa, 16, txt, sizeof txt), 0);
	assert_string_equal(txt, "::1");
	assert_int_equal(mx_addr_text(1, a, 3, txt, sizeof txt), -1);
	assert_int_equal(mx_addr_text(28, a, 4, txt, sizeof txt), -1);
}

static void test_json_string(void **state)
{
	(void)state;
	static const struct { const char *in, *out; } cases[] = {
		{ "", "\"\"" },
		{ "250 OK", "\"250 OK\"" },
		{ "a\"b\\c", "\"a\\\"b\\\\c\"" },
		{ "l1\nl2\r\t", "\"l1\\nl2\\r\\t\"" },
		{ "\x01\x1f\x7f", "\"\\u0001\\u001f\\u007f\"" },
		{ "caf\xc3\xa9", "\"caf\xc3\xa9\"" },
	};
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct buf b = BUF_INIT;
		report_json_string(&b, cases[i].in);
		assert_string_equal(buf_cstr(&b), cases[i].out);
		buf_free(&b);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_target),
		cmocka_unit_test(test_addr_text),
		cmocka_unit_test(test_json_string),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
