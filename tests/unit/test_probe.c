/* test_probe: the pure parts of tern-probe's client side.
 *
 * mx (TARGET parsing, address rdata, address scopes and reverse names,
 * doctor's) and report (JSON strings), as tables
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

static void test_addr_scope(void **state)
{
	(void)state;
	static const struct { const char *ip; enum mx_scope want; } cases[] = {
		{ "8.8.8.8", MX_SCOPE_PUBLIC },
		{ "2001:4860::8888", MX_SCOPE_PUBLIC },
		{ "127.0.0.1", MX_SCOPE_LOOPBACK },
		{ "127.9.9.9", MX_SCOPE_LOOPBACK },
		{ "::1", MX_SCOPE_LOOPBACK },
		{ "10.0.0.1", MX_SCOPE_PRIVATE },
		{ "172.16.0.1", MX_SCOPE_PRIVATE },
		{ "172.31.255.255", MX_SCOPE_PRIVATE },
		{ "172.32.0.1", MX_SCOPE_PUBLIC },
		{ "192.168.1.1", MX_SCOPE_PRIVATE },
		{ "100.64.0.1", MX_SCOPE_PRIVATE },
		{ "100.128.0.1", MX_SCOPE_PUBLIC },
		{ "169.254.1.1", MX_SCOPE_PRIVATE },
		{ "fd00::1", MX_SCOPE_PRIVATE },
		{ "fe80::1", MX_SCOPE_PRIVATE },
		{ "0.1.2.3", MX_SCOPE_BAD },
		{ "192.0.2.1", MX_SCOPE_BAD },
		{ "198.51.100.7", MX_SCOPE_BAD },
		{ "203.0.113.7", MX_SCOPE_BAD },
		{ "224.0.0.1", MX_SCOPE_BAD },
		{ "2001:db8::1", MX_SCOPE_BAD },
		{ "ff02::1", MX_SCOPE_BAD },
		{ "mx.example", MX_SCOPE_BAD },
		{ "", MX_SCOPE_BAD },
	};
	for (size_t i = 0; i < ARRAY_LEN(cases); i++)
		if (mx_addr_scope(cases[i].ip) != cases[i].want)
			fail_msg("mx_addr_scope(%s) = %d, want %d", cases[i].ip,
				 mx_addr_scope(cases[i].ip), cases[i].want);
}

static void test_reverse_name(void **state)
{
	(void)state;
	static const struct { const char *ip, *zone; int rc; const char *out; } cases[] = {
		{ "192.0.2.10", NULL, 0, "10.2.0.192.in-addr.arpa" },
		{ "127.0.0.2", "bl.example", 0, "2.0.0.127.bl.example" },
		{ "2001:db8::1", NULL, 0,
		  "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa" },
		{ "::1", "bl.example", 0,
		  "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.bl.example" },
		{ "not-an-ip", NULL, -1, "" },
		{ "1.2.3", NULL, -1, "" },
	};
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		char out[200] = "";
		int rc = mx_reverse_name(cases[i].ip, cases[i].zone, out, sizeof out);
		assert_int_equal(rc, cases[i].rc);
		if (rc == 0)
			assert_string_equal(out, cases[i].out);
	}
	char small[10];
	assert_int_equal(mx_reverse_name("192.0.2.10", NULL, small, sizeof small), -1);
	assert_int_equal(mx_reverse_name("::1", NULL, small, sizeof small), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_target),
		cmocka_unit_test(test_addr_text),
		cmocka_unit_test(test_addr_scope),
		cmocka_unit_test(test_reverse_name),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
