/* Unit tests for proxy: PROXY protocol v1 and v2 headers, whole and split. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "smtpd/proxy.h"

static const char *src_ip(const struct proxy_hdr *h, char *buf, size_t n)
{
	if (h->src.ss_family == AF_INET)
		return inet_ntop(AF_INET, &((const struct sockaddr_in *)&h->src)->sin_addr, buf, (socklen_t)n);
	return inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)&h->src)->sin6_addr, buf, (socklen_t)n);
}

static unsigned src_port(const struct proxy_hdr *h)
{
	if (h->src.ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)&h->src)->sin_port);
	return ntohs(((const struct sockaddr_in6 *)&h->src)->sin6_port);
}

static void test_v1(void **state)
{
	(void)state;
	static const struct {
		const char *in; enum proxy_status st; size_t used; const char *ip; unsigned port;
	} rows[] = {
		{ "PROXY TCP4 192.0.2.1 198.51.100.2 56324 25\r\nEHLO x\r\n", PROXY_DONE, 44, "192.0.2.1", 56324 },
		{ "PROXY TCP6 2001:db8::1 2001:db8::2 1 25\r\n", PROXY_DONE, 41, "2001:db8::1", 1 },
		{ "PROXY UNKNOWN\r\n", PROXY_DONE, 15, NULL, 0 },
		{ "PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n", PROXY_DONE, 59, NULL, 0 },
		{ "PROXY TCP4 192.0.2.1 198.51.100.2 56324", PROXY_MORE, 0, NULL, 0 },
		{ "PROX", PROXY_MORE, 0, NULL, 0 },
		{ "", PROXY_MORE, 0, NULL, 0 },
		{ "EHLO x\r\n", PROXY_BAD, 0, NULL, 0 },
		{ "PROXY TCP4 192.0.2.1 198.51.100.2 56324 25\n", PROXY_BAD, 0, NULL, 0 },   /* bare LF */
		{ "PROXY TCP4 192.0.2.1  198.51.100.2 56324 25\r\n", PROXY_BAD, 0, NULL, 0 }, /* two spaces */
		{ "PROXY TCP4 2001:db8::1 198.51.100.2 1 25\r\n", PROXY_BAD, 0, NULL, 0 },    /* family */
		{ "PROXY TCP4 192.0.2.1 198.51.100.2 65536 25\r\n", PROXY_BAD, 0, NULL, 0 },
		{ "PROXY TCP4 192.0.2.1 198.51.100.2 025 25\r\n", PROXY_BAD, 0, NULL, 0 },
		{ "PROXY TCP4 192.0.2.1 198.51.100.2 -1 25\r\n", PROXY_BAD, 0, NULL, 0 },
		{ "PROXY UDP4 192.0.2.1 198.51.100.2 1 25\r\n", PROXY_BAD, 0, NULL, 0 },
		{ "PROXY TCP4 192.0.2.1 198.51.100.2 1 25 x\r\n", PROXY_BAD, 0, NULL, 0 },
		{ "PROXY TCP4 192.0.2.1 198.51.100.2 1\r\n", PROXY_BAD, 0, NULL, 0 },
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		struct proxy_hdr h;
		size_t used = 99;
		enum proxy_status st = proxy_parse((const unsigned char *)rows[i].in, strlen(rows[i].in), &h, &used);
		if (st != rows[i].st)
			fail_msg("v1 row %zu '%s': status %d, want %d", i, rows[i].in, st, rows[i].st);
		if (st != PROXY_DONE)
			continue;
		assert_int_equal(used, rows[i].used);
		assert_int_equal(h.version, 1);
		assert_int_equal(h.has_addr, rows[i].ip != NULL);
		if (rows[i].ip) {
			char buf[64];
			assert_string_equal(src_ip(&h, buf, sizeof buf), rows[i].ip);
			assert_int_equal(src_port(&h), rows[i].port);
		}
	}
	/* no CRLF within 107 octets */
	char longline[200];
	memset(longline, 'a', sizeof longline);
	memcpy(longline, "PROXY ", 6);
	struct proxy_hdr h;
	size_t used;
	assert_int_equal(proxy_parse((unsigned char *)longline, sizeof longline, &h, &used), PROXY_BAD);
	assert_int_equal(proxy_parse((unsigned char *)longline, 100, &h, &used), PROXY_MORE);
}

static size_t v2(unsigned char *out, unsigned char ver_cmd, unsigned char fam,
                 const unsigned char *body, size_t len)
{
	static const unsigned char sig[12] = { 0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A,
	                                       0x51, 0x55, 0x49, 0x54, 0x0A };
	memcpy(out, sig, 12);
	out[12] = ver_cmd;
	out[13] = fam;
	out[14] = (unsigned char)(len >> 8);
	out[15] = (unsigned char)len;
	memcpy(out + 16, body, len);
	return 16 + len;
}

static void test_v2(void **state)
{
	(void)state;
	unsigned char buf[2200], body[2100];
	struct proxy_hdr h;
	size_t used, n;
	/* TCP4 192.0.2.9:4242 -> 198.51.100.1:25, plus a 7-octet TLV */
	const unsigned char a4[] = { 192, 0, 2, 9, 198, 51, 100, 1, 0x10, 0x92, 0, 25,
	                             0x04, 0x00, 0x04, 1, 2, 3, 4 };
	n = v2(buf, 0x21, 0x11, a4, sizeof a4);
	memcpy(buf + n, "EHLO", 4);
	assert_int_equal(proxy_parse(buf, n + 4, &h, &used), PROXY_DONE);
	assert_int_equal(used, n);
	assert_int_equal(h.version, 2);
	assert_true(h.has_addr);
	char ip[64];
	assert_string_equal(src_ip(&h, ip, sizeof ip), "192.0.2.9");
	assert_int_equal(src_port(&h), 4242);
	/* every shorter prefix needs more */
	for (size_t k = 0; k < n; k++)
		if (proxy_parse(buf, k, &h, &used) != PROXY_MORE)
			fail_msg("v2 prefix of %zu octets not PROXY_MORE", k);
	/* TCP6 */
	memset(body, 0, 36);
	body[0] = 0x20; body[1] = 0x01; body[2] = 0x0d; body[3] = 0xb8; body[15] = 7;
	body[32] = 0; body[33] = 99;
	n = v2(buf, 0x21, 0x21, body, 36);
	assert_int_equal(proxy_parse(buf, n, &h, &used), PROXY_DONE);
	assert_string_equal(src_ip(&h, ip, sizeof ip), "2001:db8::7");
	assert_int_equal(src_port(&h), 99);
	/* LOCAL: no address, whatever the family says */
	n = v2(buf, 0x20, 0x11, a4, 12);
	assert_int_equal(proxy_parse(buf, n, &h, &used), PROXY_DONE);
	assert_false(h.has_addr);
	/* UNSPEC */
	n = v2(buf, 0x21, 0x00, a4, 0);
	assert_int_equal(proxy_parse(buf, n, &h, &used), PROXY_DONE);
	assert_false(h.has_addr);
	/* refused: version 1 in a v2 header, command 2, UDP, unix, short
	 * address block, over-long header */
	static const struct { unsigned char vc, fam; size_t len; } bad[] = {
		{ 0x11, 0x11, 12 }, { 0x22, 0x11, 12 }, { 0x21, 0x12, 12 }, { 0x21, 0x31, 216 },
		{ 0x21, 0x11, 11 }, { 0x21, 0x21, 35 }, { 0x21, 0x11, 2049 },
	};
	memset(body, 0, sizeof body);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		n = v2(buf, bad[i].vc, bad[i].fam, body, bad[i].len);
		if (proxy_parse(buf, n, &h, &used) != PROXY_BAD)
			fail_msg("v2 bad row %zu accepted", i);
	}
	/* a broken signature */
	n = v2(buf, 0x21, 0x11, a4, 12);
	buf[5] = 'X';
	assert_int_equal(proxy_parse(buf, n, &h, &used), PROXY_BAD);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_v1), cmocka_unit_test(test_v2),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
