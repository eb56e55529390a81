/* Unit tests for net/tlsa.c: TLSA rdata (RFC 6698 2.1) as libunbound hands
 * it over, the records RFC 7672 3.1.3 lets SMTP use, a host's verdict
 * from its records, and the log's description of a record. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "net/tlsa.h"

#define D32 "0123456789abcdef0123456789abcdef"
#define D64 D32 D32

struct row {
	const char *rdata;   /* bytes */
	size_t len;
	bool parsed, usable;
};

#define R(s, p, u) { s, sizeof(s) - 1, p, u }

static const struct row rows[] = {
	R("\x03\x01\x01" D32, true, true),          /* DANE-EE SPKI SHA-256 */
	R("\x02\x00\x01" D32, true, true),          /* DANE-TA cert SHA-256 */
	R("\x03\x00\x02" D64, true, true),          /* SHA-512 */
	R("\x02\x01\x00" "\x30\x59", true, true),   /* full SPKI: any length */
	R("\x01\x01\x01" D32, true, false),         /* PKIX-EE: unusable in SMTP */
	R("\x00\x00\x01" D32, true, false),         /* PKIX-TA: likewise */
	R("\x04\x01\x01" D32, true, false),         /* unknown usage */
	R("\x03\x02\x01" D32, true, false),         /* unknown selector */
	R("\x03\x01\x03" D32, true, false),         /* unknown matching type */
	R("\x03\x01\x01" "0123", true, false),      /* SHA-256 of the wrong size */
	R("\x03\x01\x02" D32, true, false),         /* SHA-512 of SHA-256's size */
	R("\x03\x01\x00", false, false),            /* no data */
	R("\x03\x01", false, false),
	R("", false, false),
};

static void test_parse_and_usable(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		struct tlsa_rr rr;
		bool ok = tlsa_parse((const unsigned char *)rows[i].rdata, rows[i].len, &rr);
		assert_int_equal(ok, rows[i].parsed);
		if (!ok)
			continue;
		assert_int_equal(rr.usage, (uint8_t)rows[i].rdata[0]);
		assert_int_equal(rr.len, rows[i].len - 3);
		assert_memory_equal(rr.data, rows[i].rdata + 3, rr.len);
		assert_int_equal(tlsa_usable(&rr), rows[i].usable);
		tlsa_rr_free(&rr);
	}
}

static void test_too_long(void **state)
{
	(void)state;
	static unsigned char big[TLSA_DATA_MAX + 4] = { 3, 1, 0 };
	struct tlsa_rr rr;
	assert_false(tlsa_parse(big, sizeof big, &rr));
	assert_true(tlsa_parse(big, sizeof big - 1, &rr));
	tlsa_rr_free(&rr);
}

static void test_describe(void **state)
{
	(void)state;
	char out[64];
	const unsigned char d[] = { 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7 };
	tlsa_describe(3, 1, 1, d, sizeof d, out, sizeof out);
	assert_string_equal(out, "3 1 1 deadbeef01020304");
	tlsa_describe(2, 0, 1, d, 2, out, sizeof out);
	assert_string_equal(out, "2 0 1 dead");
	tlsa_describe(3, 1, 1, d, sizeof d, out, 10);   /* cut, still a string */
	assert_true(strlen(out) < 10);
}

static void test_judge(void **state)
{
	(void)state;
	const char *data[] = { "\x01\x01\x01" D32, "\x03\x01\x01" D32, "\x03\x01" };
	size_t lens[] = { 35, 35, 2 };
	struct tlsa_set *s = tlsa_set_new(3);
	snprintf(s->host[0].name, sizeof s->host[0].name, "mx1.example");
	snprintf(s->host[1].name, sizeof s->host[1].name, "mx2.example");
	snprintf(s->host[2].name, sizeof s->host[2].name, "mx3.example");
	tlsa_host_judge(&s->host[0], data, lens, 3);        /* one usable of three */
	assert_int_equal(s->host[0].state, TLSA_USABLE);
	assert_int_equal(s->host[0].n, 1);
	assert_int_equal(s->host[0].rr[0].usage, TLSA_DANE_EE);
	tlsa_host_judge(&s->host[1], data, lens, 1);        /* PKIX-EE only */
	assert_int_equal(s->host[1].state, TLSA_UNUSABLE);
	tlsa_host_judge(&s->host[2], data, lens, 0);
	assert_int_equal(s->host[2].state, TLSA_NONE);
	assert_ptr_equal(tlsa_set_find(s, "mx2.example"), &s->host[1]);
	assert_null(tlsa_set_find(s, "mx4.example"));
	assert_null(tlsa_set_find(NULL, "mx1.example"));
	tlsa_set_ref(s);
	tlsa_set_unref(s);
	assert_int_equal(s->host[0].n, 1);                  /* still held */
	tlsa_set_unref(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_and_usable),
		cmocka_unit_test(test_too_long),
		cmocka_unit_test(test_describe),
		cmocka_unit_test(test_judge),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
