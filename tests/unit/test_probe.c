/* test_probe: the pure parts of tern-probe's client side.
 *
 * smtpc (reply lines, base64, dot-stuffing), mx (TARGET parsing, MX and
 * address rdata) and report (JSON strings), as tables of input and output.
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
#include "tools/probe/smtpc.h"

#define ARRAY_LEN(a) (sizeof (a) / sizeof (a)[0])

static void test_parse_line(void **state)
{
	(void)state;
	static const struct { const char *in; int rc, code; bool more; } cases[] = {
		{ "220 mx.example ESMTP", 0, 220, false },
		{ "250-PIPELINING", 0, 250, true },
		{ "250 ", 0, 250, false },          /* smtp-sink's last EHLO line */
		{ "250", 0, 250, false },
		{ "354 Start mail input", 0, 354, false },
		{ "599 x", 0, 599, false },
		{ "199 x", -1, 0, false },
		{ "600 x", -1, 0, false },
		{ "25 x", -1, 0, false },
		{ "2500 x", -1, 0, false },
		{ "250_x", -1, 0, false },
		{ "", -1, 0, false },
		{ "abc def", -1, 0, false },
	};
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		int code = 0;
		bool more = false;
		int rc = smtpc_parse_line(cases[i].in, &code, &more);
		if (rc != cases[i].rc || (rc == 0 && (code != cases[i].code ||
						      more != cases[i].more)))
			fail_msg("smtpc_parse_line(%s): rc %d code %d more %d", cases[i].in,
				 rc, code, more);
	}
}

static void test_b64(void **state)
{
	(void)state;
	static const struct { const char *raw; size_t n; const char *b64; } cases[] = {
		{ "", 0, "" },
		{ "f", 1, "Zg==" },
		{ "fo", 2, "Zm8=" },
		{ "foo", 3, "Zm9v" },
		{ "Username:", 9, "VXNlcm5hbWU6" },
		{ "Password:", 9, "UGFzc3dvcmQ6" },
		{ "\0kate\0secret", 12, "AGthdGUAc2VjcmV0" },
	};
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct buf e = BUF_INIT, d = BUF_INIT;
		smtpc_b64(cases[i].raw, cases[i].n, &e);
		assert_string_equal(buf_cstr(&e), cases[i].b64);
		assert_int_equal(smtpc_unb64(cases[i].b64, &d), 0);
		assert_int_equal(d.len, cases[i].n);
		assert_memory_equal(d.data ? d.data : "", cases[i].raw, cases[i].n);
		buf_free(&e);
		buf_free(&d);
	}
	struct buf d = BUF_INIT;
	assert_int_equal(smtpc_unb64("abc", &d), -1);
	assert_int_equal(smtpc_unb64("ab!?", &d), -1);
	buf_free(&d);
}

static void test_dotstuff(void **state)
{
	(void)state;
	static const struct { const char *in, *out; } cases[] = {
		{ "", ".\r\n" },
		{ "a", "a\r\n.\r\n" },
		{ "a\r\n", "a\r\n.\r\n" },
		{ "a\n", "a\r\n.\r\n" },
		{ ".", "..\r\n.\r\n" },
		{ ".hidden\n.\n..\n", "..hidden\r\n..\r\n...\r\n.\r\n" },
		{ "x.y\r\n.z", "x.y\r\n..z\r\n.\r\n" },
		{ "Subject: t\n\nbody\n", "Subject: t\r\n\r\nbody\r\n.\r\n" },
		{ "a\r", "a\r\n.\r\n" },
	};
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct buf b = BUF_INIT;
		smtpc_dotstuff(cases[i].in, strlen(cases[i].in), &b);
		if (strcmp(buf_cstr(&b), cases[i].out) != 0)
			fail_msg("dotstuff(%s) = %s", cases[i].in, buf_cstr(&b));
		buf_free(&b);
	}
}

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

static void test_rdata(void **state)
{
	(void)state;
	static const unsigned char mx1[] = { 0, 10, 3, 'm', 'x', '1', 7, 'e', 'x', 'a',
		'm', 'p', 'l', 'e', 4, 't', 'e', 's', 't', 0 };
	static const unsigned char null_mx[] = { 0, 0, 0 };
	static const unsigned char bad_len[] = { 0, 5, 9, 'a', 0 };
	static const unsigned char no_end[] = { 1, 0, 2, 'a', 'b' };
	int pref;
	char name[256];
	assert_int_equal(mx_parse_rdata(mx1, sizeof mx1, &pref, name, sizeof name), 0);
	assert_int_equal(pref, 10);
	assert_string_equal(name, "mx1.example.test.");
	assert_int_equal(mx_parse_rdata(null_mx, sizeof null_mx, &pref, name, sizeof name), 0);
	assert_int_equal(pref, 0);
	assert_string_equal(name, ".");
	assert_int_equal(mx_parse_rdata(bad_len, sizeof bad_len, &pref, name, sizeof name), -1);
	assert_int_equal(mx_parse_rdata(no_end, sizeof no_end, &pref, name, sizeof name), -1);
	assert_int_equal(mx_parse_rdata(mx1, 2, &pref, name, sizeof name), -1);
	assert_int_equal(mx_parse_rdata(mx1, sizeof mx1, &pref, name, 8), -1);

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
		cmocka_unit_test(test_parse_line),
		cmocka_unit_test(test_b64),
		cmocka_unit_test(test_dotstuff),
		cmocka_unit_test(test_target),
		cmocka_unit_test(test_rdata),
		cmocka_unit_test(test_json_string),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
