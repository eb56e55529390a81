/* Unit tests for dns_parse_mx, dns_parse_txt, dns_parse_name and
 * dns_name_text: MX rdata (RFC 1035 3.3.9) and TXT rdata (3.3.14) as
 * libunbound hands them over, PTR rdata, and a name as libunbound's text
 * (or refused). */
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

static void test_parse_name(void **state)
{
	(void)state;
	char name[256];
	assert_true(dns_parse_name((const unsigned char *)"\x04mail\x07""Example\x03""com\x00", 18,
	                           name, sizeof name));
	assert_string_equal(name, "mail.Example.com");
	assert_true(dns_parse_name((const unsigned char *)"\x00", 1, name, sizeof name));
	assert_string_equal(name, ".");
	assert_false(dns_parse_name((const unsigned char *)"\x04mail\xc0\x0c", 7, name, sizeof name));
	assert_false(dns_parse_name((const unsigned char *)"", 0, name, sizeof name));
}

static void test_name_text(void **state)
{
	(void)state;
	static const struct { const char *name, *text; } names[] = {
		{ "example.com", "example.com" },
		{ "example.com.", "example.com" },
		{ "foo:bar/baz.example.com", "foo:bar/baz.example.com" },
		{ "macro%percent  space%20url-space.example.com",
		  "macro%percent\\032\\032space%20url-space.example.com" },
		{ "back\\slash.example", "back\\092slash.example" },
		{ "caf\xc3\xa9.example", "caf\\195\\169.example" },
		{ "a..b", NULL },            /* an empty label */
		{ ".", NULL },
		{ "", NULL },
		{ "a123456789012345678901234567890123456789012345678901234567890123.example", NULL },
	};
	char out[DNS_NAME_TEXT_MAX];
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		bool ok = dns_name_text(names[i].name, out, sizeof out);
		if (ok != (names[i].text != NULL))
			fail_msg("%s: ok=%d", names[i].name, ok);
		if (ok && strcmp(out, names[i].text))
			fail_msg("%s: %s, want %s", names[i].name, out, names[i].text);
	}
	char long_name[300];   /* 254 octets: one too many */
	memset(long_name, 'a', 254);
	for (int i = 50; i < 254; i += 51)
		long_name[i] = '.';
	long_name[254] = '\0';
	assert_false(dns_name_text(long_name, out, sizeof out));
	long_name[253] = '\0';
	assert_true(dns_name_text(long_name, out, sizeof out));
	assert_false(dns_name_text("example.com", out, 100));   /* too small to promise */
}

/* A TXT record is one or more <character-string>s: their octets joined,
 * as a DKIM key record split at 255 octets is read back (RFC 6376
 * 3.6.2.2). */
static void test_parse_txt(void **state)
{
	(void)state;
	static const struct row txt[] = {
		R("\x07v=DKIM1", true, 0, "v=DKIM1"),
		R("\x08v=DKIM1;\x05 p=AB", true, 0, "v=DKIM1; p=AB"),
		R("\x00", true, 0, ""),                                         /* one empty string */
		R("\x03" "abc\x00\x01" "d", true, 0, "abcd"),
		R("", false, 0, NULL),                                          /* no string at all */
		R("\x05" "abc", false, 0, NULL),                                    /* overruns */
		R("\x03" "abc\x02" "d", false, 0, NULL),
	};
	for (size_t i = 0; i < sizeof txt / sizeof txt[0]; i++) {
		struct buf out = BUF_INIT;
		bool ok = dns_parse_txt((const unsigned char *)txt[i].rdata, txt[i].len, &out);
		if (ok != txt[i].ok || (ok && strcmp(buf_cstr(&out), txt[i].name)))
			fail_msg("row %zu: ok=%d '%s'", i, ok, buf_cstr(&out));
		buf_free(&out);
	}
	/* 300 octets in two strings, as keygen cuts them */
	unsigned char big[302];
	big[0] = 255;
	memset(big + 1, 'a', 255);
	big[256] = 45;
	memset(big + 257, 'b', 45);
	struct buf out = BUF_INIT;
	assert_true(dns_parse_txt(big, sizeof big, &out));
	assert_int_equal(out.len, 300);
	assert_true(out.data[254] == 'a' && out.data[255] == 'b');
	buf_free(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_mx),
		cmocka_unit_test(test_parse_mx_small_buffer),
		cmocka_unit_test(test_parse_txt),
		cmocka_unit_test(test_parse_name),
		cmocka_unit_test(test_name_text),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
