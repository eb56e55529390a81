/* test_cidr: src/lib/cidr.c, CIDR parsing and list membership.
 *
 * One table for cidr_parse (expected family, masked bytes as text, prefix),
 * one for cidr_list_match (network list, peer address, expected answer),
 * the peer given as text and turned into a sockaddr_in or sockaddr_in6.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "lib/cidr.h"

#define ARRAY_LEN(a) (sizeof (a) / sizeof (a)[0])

struct parse_row {
	const char *in;
	bool ok;
	int family;
	const char *net;     /* expected masked address, as text */
	unsigned prefix;
};

static const struct parse_row parse_rows[] = {
	{ "10.0.0.0/8", true, AF_INET, "10.0.0.0", 8 },
	{ "192.0.2.1", true, AF_INET, "192.0.2.1", 32 },
	{ "192.0.2.1/32", true, AF_INET, "192.0.2.1", 32 },
	{ "0.0.0.0/0", true, AF_INET, "0.0.0.0", 0 },
	{ "10.1.2.3/8", true, AF_INET, "10.0.0.0", 8 },
	{ "192.168.255.255/17", true, AF_INET, "192.168.128.0", 17 },
	{ "172.31.255.255/12", true, AF_INET, "172.16.0.0", 12 },
	{ "255.255.255.255/1", true, AF_INET, "128.0.0.0", 1 },
	{ "::1", true, AF_INET6, "::1", 128 },
	{ "::/0", true, AF_INET6, "::", 0 },
	{ "2001:db8::/32", true, AF_INET6, "2001:db8::", 32 },
	{ "2001:db8:ffff::1/33", true, AF_INET6, "2001:db8:8000::", 33 },
	{ "fe80::1:2:3:4/64", true, AF_INET6, "fe80::", 64 },
	{ "2001:db8::ff/127", true, AF_INET6, "2001:db8::fe", 127 },
	{ "::ffff:10.1.2.3/104", true, AF_INET6, "::ffff:10.0.0.0", 104 },
	{ "10.0.0.0/33", false, 0, NULL, 0 },
	{ "10.0.0.0/-1", false, 0, NULL, 0 },
	{ "10.0.0.0/", false, 0, NULL, 0 },
	{ "10.0.0.0/8x", false, 0, NULL, 0 },
	{ "10.0.0.0/ 8", false, 0, NULL, 0 },
	{ "10.0.0.0/0008", false, 0, NULL, 0 },
	{ "10.0.0.0/8/8", false, 0, NULL, 0 },
	{ "::1/129", false, 0, NULL, 0 },
	{ "10.0.0/8", false, 0, NULL, 0 },
	{ "10.0.0.256", false, 0, NULL, 0 },
	{ "10.0.0.0:25", false, 0, NULL, 0 },
	{ "/8", false, 0, NULL, 0 },
	{ "", false, 0, NULL, 0 },
	{ " 10.0.0.0/8", false, 0, NULL, 0 },
	{ "localhost", false, 0, NULL, 0 },
	{ "fe80::1%eth0", false, 0, NULL, 0 },
	{ "1:2:3:4:5:6:7:8:9", false, 0, NULL, 0 },
	{ "0000:0000:0000:0000:0000:0000:0000:0000:0000/8", false, 0, NULL, 0 },
};

static void test_parse_table(void **state)
{
	struct cidr c;
	unsigned char want[16];

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(parse_rows); i++) {
		const struct parse_row *r = &parse_rows[i];
		memset(&c, 0x55, sizeof c);
		bool ok = cidr_parse(r->in, &c);
		if (ok != r->ok)
			fail_msg("row %zu \"%s\": ok %d", i, r->in, ok);
		if (!ok)
			continue;
		memset(want, 0, sizeof want);
		assert_int_equal(inet_pton(r->family, r->net, want), 1);
		if (c.family != r->family || c.prefix != r->prefix ||
		    memcmp(c.addr, want, sizeof want) != 0)
			fail_msg("row %zu \"%s\": family %d prefix %u", i, r->in,
			         c.family, c.prefix);
	}
}

/* Turn text into the sockaddr the listener would hand over. */
static const struct sockaddr *make_sa(const char *text,
                                      struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof *ss);
	if (strchr(text, ':') != NULL) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(25);
		assert_int_equal(inet_pton(AF_INET6, text, &s6->sin6_addr), 1);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons(25);
		assert_int_equal(inet_pton(AF_INET, text, &s4->sin_addr), 1);
	}
	return (const struct sockaddr *)ss;
}

/* Build a list from a comma-separated string of networks. */
static void make_list(const char *nets, struct cidr_list *l)
{
	char tmp[512], *save = NULL;

	memset(l, 0, sizeof *l);
	assert_true(strlen(nets) < sizeof tmp);
	memcpy(tmp, nets, strlen(nets) + 1);
	for (char *t = strtok_r(tmp, ",", &save); t != NULL;
	     t = strtok_r(NULL, ",", &save)) {
		assert_true(l->n < CIDR_MAX);
		assert_true(cidr_parse(t, &l->v[l->n]));
		l->n++;
	}
}

struct match_row {
	const char *nets;
	const char *peer;
	bool match;
};

static const struct match_row match_rows[] = {
	{ "127.0.0.0/8", "127.0.0.1", true },
	{ "127.0.0.0/8", "127.255.255.255", true },
	{ "127.0.0.0/8", "128.0.0.1", false },
	{ "127.0.0.0/8", "126.255.255.255", false },
	{ "192.0.2.1", "192.0.2.1", true },
	{ "192.0.2.1", "192.0.2.2", false },
	{ "192.168.128.0/17", "192.168.200.1", true },
	{ "192.168.128.0/17", "192.168.127.255", false },
	{ "0.0.0.0/0", "203.0.113.9", true },
	{ "0.0.0.0/0", "::1", false },
	{ "::/0", "203.0.113.9", false },
	{ "::/0", "2001:db8::1", true },
	{ "::1", "::1", true },
	{ "::1", "::2", false },
	{ "2001:db8::/32", "2001:db8:ffff::1", true },
	{ "2001:db8::/32", "2001:db9::1", false },
	{ "2001:db8:8000::/33", "2001:db8:7fff::1", false },
	{ "2001:db8:8000::/33", "2001:db8:8000::1", true },
	/* IPv4-mapped IPv6 peers match IPv4 networks (RFC 4291 2.5.5.2) */
	{ "127.0.0.0/8", "::ffff:127.0.0.1", true },
	{ "10.0.0.0/8", "::ffff:11.0.0.1", false },
	{ "192.0.2.1", "::ffff:192.0.2.1", true },
	{ "::ffff:0.0.0.0/96", "::ffff:192.0.2.1", true },
	/* but IPv4-compatible or NAT64 addresses do not */
	{ "192.0.2.1", "::192.0.2.1", false },
	{ "192.0.2.1", "64:ff9b::192.0.2.1", false },
	{ "127.0.0.1", "::1", false },
	/* several networks, either family */
	{ "10.0.0.0/8,172.16.0.0/12,::1,2001:db8::/32", "172.20.1.1", true },
	{ "10.0.0.0/8,172.16.0.0/12,::1,2001:db8::/32", "2001:db8::25", true },
	{ "10.0.0.0/8,172.16.0.0/12,::1,2001:db8::/32", "192.168.1.1", false },
	{ "10.0.0.0/8,172.16.0.0/12,::1,2001:db8::/32", "::ffff:10.9.9.9", true },
	{ "", "127.0.0.1", false },
	{ "", "::1", false },
};

static void test_match_table(void **state)
{
	struct cidr_list l;
	struct sockaddr_storage ss;

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(match_rows); i++) {
		const struct match_row *r = &match_rows[i];
		make_list(r->nets, &l);
		bool m = cidr_list_match(&l, make_sa(r->peer, &ss));
		if (m != r->match)
			fail_msg("row %zu [%s] %s: match %d", i, r->nets, r->peer, m);
	}
}

/* Host bits in the text are masked off, so matching works on the network. */
static void test_host_bits_masked(void **state)
{
	struct cidr_list l;
	struct sockaddr_storage ss;

	(void)state;
	make_list("10.1.2.3/8", &l);
	assert_true(cidr_list_match(&l, make_sa("10.200.0.1", &ss)));
	assert_int_equal(l.v[0].addr[1], 0);
	assert_int_equal(l.v[0].addr[3], 0);
}

/* Neither AF_UNIX peers nor NULLs match anything. */
static void test_other_family(void **state)
{
	struct cidr_list l;
	struct sockaddr_un un;
	struct sockaddr_storage ss;

	(void)state;
	make_list("0.0.0.0/0,::/0", &l);
	memset(&un, 0, sizeof un);
	un.sun_family = AF_UNIX;
	assert_false(cidr_list_match(&l, (const struct sockaddr *)&un));
	assert_false(cidr_list_match(NULL, make_sa("127.0.0.1", &ss)));
	assert_false(cidr_list_match(&l, NULL));
	assert_false(cidr_parse(NULL, &l.v[0]));
}

/* cidr_same_host: one address against another, ports aside. */
static const struct {
	const char *a, *b;
	bool same;
} same_rows[] = {
	{ "127.0.0.1", "127.0.0.1", true },
	{ "127.0.0.1", "127.0.0.2", false },
	{ "192.0.2.1", "::ffff:192.0.2.1", true },
	{ "::ffff:192.0.2.1", "::ffff:192.0.2.1", true },
	{ "::ffff:192.0.2.1", "192.0.2.2", false },
	{ "2001:db8::1", "2001:db8:0:0::1", true },
	{ "2001:db8::1", "2001:db8::2", false },
	{ "::1", "127.0.0.1", false },
	{ "::", "0.0.0.0", false },
};

static void test_same_host(void **state)
{
	struct sockaddr_storage x, y;
	struct sockaddr_un un;

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(same_rows); i++) {
		bool s = cidr_same_host(make_sa(same_rows[i].a, &x), make_sa(same_rows[i].b, &y));
		bool t = cidr_same_host(make_sa(same_rows[i].b, &y), make_sa(same_rows[i].a, &x));
		if (s != same_rows[i].same || t != s)
			fail_msg("row %zu %s %s: %d %d", i, same_rows[i].a, same_rows[i].b, s, t);
	}
	make_sa("127.0.0.1", &y);
	((struct sockaddr_in *)&y)->sin_port = htons(79);   /* ports aside */
	assert_true(cidr_same_host(make_sa("127.0.0.1", &x), (const struct sockaddr *)&y));
	memset(&un, 0, sizeof un);
	un.sun_family = AF_UNIX;
	assert_false(cidr_same_host((const struct sockaddr *)&un, (const struct sockaddr *)&un));
	assert_false(cidr_same_host(NULL, make_sa("127.0.0.1", &x)));
}

/* A full list: the last entry is found. */
static void test_full_list(void **state)
{
	struct cidr_list l;
	struct sockaddr_storage ss;
	char net[32];

	(void)state;
	memset(&l, 0, sizeof l);
	for (size_t i = 0; i < CIDR_MAX; i++) {
		snprintf(net, sizeof net, "10.%zu.0.0/16", i);
		assert_true(cidr_parse(net, &l.v[i]));
	}
	l.n = CIDR_MAX;
	snprintf(net, sizeof net, "10.%d.1.2", CIDR_MAX - 1);
	assert_true(cidr_list_match(&l, make_sa(net, &ss)));
	snprintf(net, sizeof net, "10.%d.1.2", CIDR_MAX);
	assert_false(cidr_list_match(&l, make_sa(net, &ss)));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_table),
		cmocka_unit_test(test_match_table),
		cmocka_unit_test(test_host_bits_masked),
		cmocka_unit_test(test_other_family),
		cmocka_unit_test(test_full_list),
		cmocka_unit_test(test_same_host),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
