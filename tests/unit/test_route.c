/* Unit tests for route: next-hop selection and host:port parsing. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "deliver/route.h"
#include "lib/util.h"
#include "spool/spool.h"

static void test_hostport(void **state)
{
	(void)state;
	static const struct { const char *in; bool ok; const char *host; unsigned port; } rows[] = {
		{ "smtp.example.net:587", true, "smtp.example.net", 587 },
		{ "192.0.2.1:25", true, "192.0.2.1", 25 },
		{ "[2001:db8::1]:25", true, "2001:db8::1", 25 },
		{ "host", false, NULL, 0 }, { "host:", false, NULL, 0 }, { ":25", false, NULL, 0 },
		{ "host:0", false, NULL, 0 }, { "host:65536", false, NULL, 0 },
		{ "host:2x", false, NULL, 0 }, { "[]:25", false, NULL, 0 },
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		char host[256];
		unsigned port = 0;
		bool ok = util_hostport(rows[i].in, host, sizeof host, &port);
		if (ok != rows[i].ok)
			fail_msg("'%s': ok=%d, want %d", rows[i].in, ok, rows[i].ok);
		if (ok) {
			assert_string_equal(host, rows[i].host);
			assert_int_equal(port, rows[i].port);
		}
	}
}

static struct route_map *map_of(const char *text, int *bad)
{
	char path[] = "/tmp/tern-map-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_true(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
	close(fd);
	struct route_map *m = route_map_load(path, bad);
	unlink(path);
	return m;
}

static void test_routes(void **state)
{
	(void)state;
	struct conf c;
	conf_defaults(&c);
	conf_set(&c, "lmtp_domains", "lmtp.example", "t");
	conf_set(&c, "lmtp_host", "unix:/run/dovecot/lmtp", "t");
	conf_set(&c, "smtp_port", "2525", "t");
	int bad = 0;
	struct route_map *m = map_of("# comment\nMapped.Example  10.0.0.1:26\n", &bad);
	assert_int_equal(bad, 0);
	struct route r;

	assert_true(route_for(&c, m, "u@Other.Example", SPOOL_REMOTE, &r));
	assert_int_equal(r.kind, ROUTE_MX);
	assert_string_equal(r.name, "other.example");
	assert_int_equal(r.port, 2525);
	assert_false(r.lmtp);

	assert_true(route_for(&c, m, "u@mapped.example", SPOOL_REMOTE, &r));
	assert_int_equal(r.kind, ROUTE_HOST);
	assert_string_equal(r.name, "10.0.0.1");
	assert_int_equal(r.port, 26);

	assert_true(route_for(&c, m, "u@lmtp.example", SPOOL_LMTP, &r));
	assert_int_equal(r.kind, ROUTE_UNIX);
	assert_true(r.lmtp);
	assert_string_equal(r.name, "/run/dovecot/lmtp");

	conf_set(&c, "relayhost", "smart.example:587", "t");
	conf_set(&c, "relayhost_auth", "u:p", "t");
	assert_true(route_for(&c, m, "u@other.example", SPOOL_REMOTE, &r));
	assert_int_equal(r.kind, ROUTE_HOST);
	assert_string_equal(r.name, "smart.example");
	assert_true(r.auth);
	assert_true(route_for(&c, m, "u@mapped.example", SPOOL_REMOTE, &r));
	assert_string_equal(r.name, "10.0.0.1");     /* the map wins over relayhost */
	assert_false(r.auth);

	assert_false(route_for(&c, m, "nodomain", SPOOL_REMOTE, &r) && r.kind == ROUTE_MX);

	/* refused when queued: nowhere, whatever the maps say */
	assert_true(route_for(&c, m, "u@mapped.example", SPOOL_ERROR, &r));
	assert_int_equal(r.kind, ROUTE_ERROR);
	assert_string_equal(r.key, "error");
	route_map_free(m);
	conf_free(&c);
}

static void test_map_errors(void **state)
{
	(void)state;
	int bad = 0;
	struct route_map *m = map_of("ok.example 1.2.3.4:25\nbad.example\nbad2.example host\n", &bad);
	assert_int_equal(bad, 2);
	route_map_free(m);
}

static void each_line(void *ctx, const char *domain, const char *target)
{
	char *out = ctx;
	snprintf(out + strlen(out), 256 - strlen(out), "%s=%s;", domain, target);
}

/* route_map_each: every line in order, the domain lower-cased, the target
 * as written (the dequeue trigger compares its host with a client). */
static void test_map_each(void **state)
{
	(void)state;
	int bad = 0;
	struct route_map *m = map_of("Held.Example [2001:db8::7]:25\n# c\nb.example host.example:26\n",
	                             &bad);
	assert_int_equal(bad, 0);
	char out[256] = "";
	route_map_each(m, each_line, out);
	assert_string_equal(out, "held.example=[2001:db8::7]:25;b.example=host.example:26;");
	route_map_free(m);
	out[0] = '\0';
	route_map_each(NULL, each_line, out);
	assert_string_equal(out, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hostport), cmocka_unit_test(test_routes),
		cmocka_unit_test(test_map_errors), cmocka_unit_test(test_map_each),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
