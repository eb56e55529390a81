/* Unit tests for myself: RFC 5321 5.1's rule for this host among a
 * domain's MX hosts (which stay, and the verdict), the texts, and this
 * host's addresses from the configuration. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deliver/myself.h"

/* This host in the rows below: its name, two IPv4 addresses and one IPv6. */
static struct myself *me(void)
{
	struct myself *s = calloc(1, sizeof *s);
	assert_non_null(s);
	snprintf(s->hostname, sizeof s->hostname, "mx.test.example");
	assert_true(myself_add_text(s, "127.0.0.1"));
	assert_true(myself_add_text(s, "192.0.2.7"));
	assert_true(myself_add_text(s, "2001:db8::25"));
	assert_false(myself_add_text(s, "mx.test.example"));
	return s;
}

struct hrow {
	unsigned pref;
	const char *name;
	const char *addrs;   /* comma-separated literals, "" for none */
};

struct row {
	const char *what;
	struct hrow h[5];    /* in preference order, name NULL ends */
	enum myself_verdict verdict;
	size_t keep, self;
	const char *why;
};

#define P "primary.dest.example"
static const struct row rows[] = {
	{ "not among them", { { 10, P, "127.0.0.2" }, { 20, "mx2.dest.example", "127.0.0.3" } },
	  MYSELF_ABSENT, 2, 0, "" },
	{ "no hosts", { { 0, NULL, NULL } }, MYSELF_ABSENT, 0, 0, "" },
	{ "backup by name", { { 10, P, "127.0.0.2" }, { 20, "mx.test.example", "127.0.0.9" } },
	  MYSELF_BACKUP, 1, 1, "hostname" },
	{ "name: case and a trailing dot",
	  { { 10, P, "127.0.0.2" }, { 20, "MX.Test.Example.", "" } }, MYSELF_BACKUP, 1, 1, "hostname" },
	{ "backup by address", { { 10, P, "127.0.0.2" }, { 20, "alias.example", "192.0.2.7" } },
	  MYSELF_BACKUP, 1, 1, "address 192.0.2.7" },
	{ "one address of several",
	  { { 10, P, "127.0.0.2" }, { 20, "multi.example", "127.0.0.9,127.0.0.1" } },
	  MYSELF_BACKUP, 1, 1, "address 127.0.0.1" },
	{ "IPv6", { { 10, P, "127.0.0.2" }, { 20, "v6.example", "2001:db8::25" } },
	  MYSELF_BACKUP, 1, 1, "address 2001:db8::25" },
	{ "IPv4-mapped IPv6", { { 10, P, "127.0.0.2" }, { 20, "mapped.example", "::ffff:192.0.2.7" } },
	  MYSELF_BACKUP, 1, 1, "address ::ffff:192.0.2.7" },   /* as the record has it */
	{ "equal preference goes too, before or after",
	  { { 10, P, "127.0.0.2" }, { 20, "peer.example", "127.0.0.3" }, { 20, "mx.test.example", "" },
	    { 20, "peer2.example", "127.0.0.4" }, { 30, "worse.example", "127.0.0.5" } },
	  MYSELF_BACKUP, 1, 2, "hostname" },
	{ "the best of two that are this host",
	  { { 10, P, "127.0.0.2" }, { 20, "mx.test.example", "" }, { 30, "alias.example", "192.0.2.7" } },
	  MYSELF_BACKUP, 1, 1, "hostname" },
	{ "best MX",
	  { { 10, "mx.test.example", "127.0.0.1" }, { 20, "mx2.dest.example", "127.0.0.3" } },
	  MYSELF_BEST, 0, 0, "hostname" },
	{ "best MX shared with another",
	  { { 10, "other.example", "127.0.0.3" }, { 10, "alias.example", "192.0.2.7" } },
	  MYSELF_BEST, 0, 1, "address 192.0.2.7" },
	{ "implicit MX (the domain's own address)", { { 0, "dest.example", "127.0.0.1" } },
	  MYSELF_BEST, 0, 0, "address 127.0.0.1" },
	{ "no better host has an address",
	  { { 10, P, "" }, { 15, "mx15.dest.example", "" }, { 20, "mx.test.example", "127.0.0.1" } },
	  MYSELF_NO_BETTER, 2, 2, "hostname" },
	{ "one better host has an address",
	  { { 10, P, "" }, { 15, "mx15.dest.example", "127.0.0.3" },
	    { 20, "alias.example", "192.0.2.7" } },
	  MYSELF_BACKUP, 2, 2, "address 192.0.2.7" },
	{ "names that only look like it",
	  { { 10, "mx.test.example.org", "127.0.0.2" }, { 20, "x.mx.test.example", "127.0.0.3" },
	    { 30, "mx.test.exampl", "127.0.0.4" } },
	  MYSELF_ABSENT, 3, 0, "" },
	{ "a neighbour's address",
	  { { 10, P, "127.0.0.2" }, { 20, "n.example", "192.0.2.8,2001:db8::26" } },
	  MYSELF_ABSENT, 2, 0, "" },
};

static void host_addr(struct dns_host *h, const char *ip)
{
	struct sockaddr_storage *ss = &h->addr[h->naddr++];
	memset(ss, 0, sizeof *ss);
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	if (inet_pton(AF_INET, ip, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
	} else {
		assert_int_equal(inet_pton(AF_INET6, ip, &sin6->sin6_addr), 1);
		sin6->sin6_family = AF_INET6;
	}
}

static void result_of(const struct row *row, struct dns_result *r)
{
	memset(r, 0, sizeof *r);
	for (size_t i = 0; i < 5 && row->h[i].name; i++) {
		struct dns_host *h = &r->host[r->nhost++];
		snprintf(h->name, sizeof h->name, "%s", row->h[i].name);
		h->pref = row->h[i].pref;
		char list[128];
		snprintf(list, sizeof list, "%s", row->h[i].addrs);
		char *save = NULL;
		for (char *ip = strtok_r(list, ",", &save); ip; ip = strtok_r(NULL, ",", &save))
			host_addr(h, ip);
	}
}

static void test_cut(void **state)
{
	(void)state;
	struct myself *s = me();
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		struct dns_result r;
		result_of(&rows[i], &r);
		struct myself_cut c = myself_cut(s, &r);
		if (c.verdict != rows[i].verdict || c.keep != rows[i].keep ||
		    (c.verdict != MYSELF_ABSENT && c.self != rows[i].self) || strcmp(c.why, rows[i].why))
			fail_msg("%s: verdict %d keep %zu self %zu why '%s'; want %d %zu %zu '%s'",
			         rows[i].what, c.verdict, c.keep, c.self, c.why, rows[i].verdict,
			         rows[i].keep, rows[i].self, rows[i].why);
	}
	myself_free(s);
}

static void test_results(void **state)
{
	(void)state;
	struct myself_cut c = { MYSELF_BEST, 0, 0, "hostname" };
	struct deliver_result r;
	assert_true(myself_result(&c, "dest.example", &r));
	assert_int_equal(r.status, DELIVER_PERM);
	assert_string_equal(r.reply, "5.4.6 mail for dest.example loops back to myself: "
	                             "this host is its best MX");
	c.verdict = MYSELF_NO_BETTER;
	assert_true(myself_result(&c, "dest.example", &r));
	assert_int_equal(r.status, DELIVER_TEMP);
	assert_string_equal(r.reply, "4.4.4 no better mail exchanger than this host for "
	                             "dest.example is reachable (none has an address)");
	c.verdict = MYSELF_BACKUP;
	assert_false(myself_result(&c, "dest.example", &r));
	c.verdict = MYSELF_ABSENT;
	assert_false(myself_result(&c, "dest.example", &r));

	static const struct { struct deliver_result why; const char *out; } failures[] = {
		{ { DELIVER_TEMP, "4.4.1 Connection refused" }, "Connection refused" },
		{ { DELIVER_TEMP, "4.4.2 primary[127.0.0.2]: lost connection" },
		  "primary[127.0.0.2]: lost connection" },
		{ { DELIVER_TEMP, "4.4.1 greeting 421 busy" }, "greeting 421 busy" },
		{ { DELIVER_TEMP, "4.7.5 STARTTLS required by policy but not offered" }, NULL },
		{ { DELIVER_TEMP, "lost connection" }, NULL },
		{ { DELIVER_PERM, "4.4.1 odd" }, NULL },
	};
	for (size_t i = 0; i < sizeof failures / sizeof failures[0]; i++) {
		char want[512];
		memset(&r, 0, sizeof r);
		bool ok = myself_unreachable("dest.example", &failures[i].why, &r);
		if (ok != (failures[i].out != NULL))
			fail_msg("'%s': %d", failures[i].why.reply, ok);
		if (!ok)
			continue;
		snprintf(want, sizeof want, "4.4.4 no better mail exchanger than this host for "
		         "dest.example is reachable (%s)", failures[i].out);
		assert_int_equal(r.status, DELIVER_TEMP);
		assert_string_equal(r.reply, want);
	}
}

static void test_describe(void **state)
{
	(void)state;
	struct myself *s = me();
	struct dns_result r;
	result_of(&rows[8], &r);   /* equal preference goes too */
	struct myself_cut c = myself_cut(s, &r);
	struct buf b = BUF_INIT;
	myself_describe(&c, &r, "dest.example", &b);
	assert_string_equal(buf_cstr(&b),
	                    "mx dest.example: mx.test.example (preference 20) is this host (hostname): "
	                    "dropped with every MX of preference 20 or more (RFC 5321 5.1): "
	                    "peer.example mx.test.example peer2.example worse.example; "
	                    "left: primary.dest.example");
	buf_reset(&b);
	result_of(&rows[10], &r);  /* best MX */
	c = myself_cut(s, &r);
	myself_describe(&c, &r, "dest.example", &b);
	assert_string_equal(buf_cstr(&b),
	                    "mx dest.example: mx.test.example (preference 10) is this host (hostname): "
	                    "dropped with every MX of preference 10 or more (RFC 5321 5.1): "
	                    "mx.test.example mx2.dest.example; no better MX");
	buf_reset(&b);
	result_of(&rows[13], &r);  /* no better host has an address */
	c = myself_cut(s, &r);
	myself_describe(&c, &r, "dest.example", &b);
	assert_string_equal(buf_cstr(&b),
	                    "mx dest.example: mx.test.example (preference 20) is this host (hostname): "
	                    "dropped with every MX of preference 20 or more (RFC 5321 5.1): "
	                    "mx.test.example; left: primary.dest.example (no address), "
	                    "mx15.dest.example (no address)");
	buf_free(&b);
	myself_free(s);
}

static bool has(const struct myself *s, const char *ip)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof ss);
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, ip, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(25);   /* the port does not count */
	} else {
		assert_int_equal(inet_pton(AF_INET6, ip, &sin6->sin6_addr), 1);
		sin6->sin6_family = AF_INET6;
	}
	return myself_has(s, (const struct sockaddr *)&ss);
}

static struct myself *from_conf(const char *listen, const char *proxy)
{
	struct conf c;
	conf_defaults(&c);
	assert_int_equal(conf_set(&c, "hostname", "MX.Example.NET", "t"), 0);
	assert_int_equal(conf_set(&c, "listen", listen, "t"), 0);
	assert_int_equal(conf_set(&c, "proxy_interfaces", proxy, "t"), 0);
	assert_int_equal(conf_finish(&c), 0);
	struct myself *s = myself_new(&c);
	conf_free(&c);
	return s;
}

static void test_from_conf(void **state)
{
	(void)state;
	struct myself *s = from_conf("127.0.0.1:2525, [::1]:587 proxy, 192.0.2.1:25", "");
	assert_string_equal(s->hostname, "mx.example.net");
	assert_int_equal(s->n, 3);
	assert_true(has(s, "127.0.0.1"));
	assert_true(has(s, "::1"));
	assert_true(has(s, "192.0.2.1"));
	assert_true(has(s, "::ffff:127.0.0.1"));
	assert_false(has(s, "127.0.0.2"));
	assert_false(has(s, "198.51.100.2"));
	myself_free(s);

	s = from_conf("127.0.0.1:2525", "198.51.100.2, 2001:db8::1 203.0.113.9");
	assert_int_equal(s->n, 4);
	assert_true(has(s, "198.51.100.2"));
	assert_true(has(s, "2001:db8::1"));
	assert_true(has(s, "203.0.113.9"));
	assert_false(has(s, "203.0.113.10"));
	myself_free(s);
}

/* A wildcard listener answers on every interface's address: the loopback
 * one at least; a specific one only on its own. */
static void test_wildcard(void **state)
{
	(void)state;
	struct myself *s = from_conf("0.0.0.0:2525", "");
	assert_true(has(s, "127.0.0.1"));
	assert_false(has(s, "0.0.0.0"));
	assert_false(has(s, "127.0.0.2"));   /* in lo's network, not an address of it */
	myself_free(s);
	s = from_conf("[::]:2525", "");
	assert_true(has(s, "127.0.0.1"));
	myself_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cut),
		cmocka_unit_test(test_results),
		cmocka_unit_test(test_describe),
		cmocka_unit_test(test_from_conf),
		cmocka_unit_test(test_wildcard),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
