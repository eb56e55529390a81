/* Unit tests for dns_parse_mx: MX rdata (RFC 1035 3.3.9) as libunbound
 * hands it over, uncompressed. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "net/dns.h"

struct row {
	const char *rdata;  /* bytes */
	size_t len;
	bool ok;
	unsigned pref;
	const char *name;
};

#define R(s, ok, p, n) { s, sizeof(s) - 1, ok, p, n }

static const struct row rows[] = {
	R("\x00\x0a\x03mx1\x07""example\x03""com\x00", true, 10, "mx1.example.com"),
	R("\x00\x00\x00", true, 0, "."),                                    /* null MX */
	R("\xff\xff\x01""a\x00", true, 65535, "a"),
	R("\x00\x0a\x03mx1\xc0\x0c", false, 0, NULL),                      /* compression */
	R("\x00\x0a\x05mx1\x00", false, 0, NULL),                          /* label overruns */
	R("\x00\x0a\x03mx1", false, 0, NULL),                              /* no root label */
	R("\x00\x0a\x03mx1\x00\x00", false, 0, NULL),                      /* trailing bytes */
	R("\x00", false, 0, NULL),                                          /* too short */
	R("\x00\x0a\x40" "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\x00",
	  false, 0, NULL),                                                  /* 64-octet label */
};

static void test_parse_mx(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		unsigned pref = 99999;
		char name[256] = "";
		bool ok = dns_parse_mx((const unsigned char *)rows[i].rdata, rows[i].len, &pref, name,
		                       sizeof name);
		if (ok != rows[i].ok)
			fail_msg("row %zu: ok=%d, want %d", i, ok, rows[i].ok);
		if (ok) {
			assert_int_equal(pref, rows[i].pref);
			assert_string_equal(name, rows[i].name);
		}
	}
}

static void test_parse_mx_small_buffer(void **state)
{
	(void)state;
	unsigned pref;
	char name[8];
	const char rd[] = "\x00\x0a\x03mx1\x07""example\x00";
	assert_false(dns_parse_mx((const unsigned char *)rd, sizeof rd - 1, &pref, name, sizeof name));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_mx),
		cmocka_unit_test(test_parse_mx_small_buffer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
