/* Unit tests for conf: value parsers, keys, files with line numbers. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/conf.h"

static void test_duration(void **state)
{
	(void)state;
	static const struct { const char *in; bool ok; unsigned out; } rows[] = {
		{ "0", true, 0 }, { "30", true, 30 }, { "30s", true, 30 }, { "5m", true, 300 },
		{ "2h", true, 7200 }, { "1d", true, 86400 }, { "", false, 0 }, { "m", false, 0 },
		{ "5x", false, 0 }, { "5mm", false, 0 }, { "-1", false, 0 }, { "1.5h", false, 0 },
		{ "99999999999", false, 0 }, { "4294967295", true, 4294967295u },
		{ "49711d", false, 0 },
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		unsigned v = 12345;
		bool ok = conf_parse_duration(rows[i].in, &v);
		if (ok != rows[i].ok)
			fail_msg("duration '%s': ok=%d, want %d", rows[i].in, ok, rows[i].ok);
		if (ok)
			assert_int_equal(v, rows[i].out);
	}
}

static void test_size(void **state)
{
	(void)state;
	static const struct { const char *in; bool ok; uint64_t out; } rows[] = {
		{ "10240000", true, 10240000 }, { "10k", true, 10240 }, { "10K", true, 10240 },
		{ "25M", true, 26214400 }, { "1G", true, 1073741824 }, { "0", true, 0 },
		{ "", false, 0 }, { "M", false, 0 }, { "1T", false, 0 }, { "-5", false, 0 },
		{ "5MB", false, 0 }, { "18446744073709551615", true, UINT64_MAX },
		{ "18446744073709551616", false, 0 }, { "17179869184G", false, 0 },
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		uint64_t v = 0;
		bool ok = conf_parse_size(rows[i].in, &v);
		if (ok != rows[i].ok)
			fail_msg("size '%s': ok=%d, want %d", rows[i].in, ok, rows[i].ok);
		if (ok)
			assert_true(v == rows[i].out);
	}
}

static void test_listen(void **state)
{
	(void)state;
	static const struct { const char *in; bool ok; } rows[] = {
		{ "127.0.0.1:2525", true }, { "0.0.0.0:25", true }, { "[::1]:25", true },
		{ "[2001:db8::1]:587", true }, { "127.0.0.1", false }, { "127.0.0.1:", false },
		{ "127.0.0.1:0", false }, { "127.0.0.1:65536", false }, { "localhost:25", false },
		{ "::1:25", false }, { "[::1]25", false }, { "1.2.3.4:2x", false }, { ":25", false },
		{ "127.0.0.1:587 submission", true }, { "127.0.0.1:465 smtps", true },
		{ "127.0.0.1:25 proxy", true }, { "[::1]:465  smtps   proxy ", true },
		{ "127.0.0.1:465 submission smtps proxy", true },
		{ "127.0.0.1:25 smtp", false }, { "127.0.0.1:25 smtps smtps", false },
		{ "127.0.0.1:25 SMTPS", false }, { "127.0.0.1 smtps", false },
		{ "127.0.0.1:25 submissionx", false }, { "smtps 127.0.0.1:25", false },
		{ "127.0.0.1:366 odmr", true }, { "127.0.0.1:366 odmr starttls proxy", true },
		{ "127.0.0.1:366 odmr submission", false },   /* one takes mail, the other never */
		{ "127.0.0.1:366 submission odmr", false }, { "127.0.0.1:366 odmr odmr", false },
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
		if (conf_listen_valid(rows[i].in) != rows[i].ok)
			fail_msg("listen '%s': want %d", rows[i].in, rows[i].ok);
}

static void test_listen_modes(void **state)
{
	(void)state;
	static const struct { const char *in, *addr; unsigned modes; } rows[] = {
		{ "127.0.0.1:25", "127.0.0.1:25", 0 },
		{ "127.0.0.1:587 submission", "127.0.0.1:587", CONF_LISTEN_SUBMISSION },
		{ "[::1]:465 smtps submission", "[::1]:465", CONF_LISTEN_SMTPS | CONF_LISTEN_SUBMISSION },
		{ "10.0.0.1:25\tproxy", "10.0.0.1:25", CONF_LISTEN_PROXY },
		{ "[::1]:366 smtps odmr", "[::1]:366", CONF_LISTEN_SMTPS | CONF_LISTEN_ODMR },
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		char addr[64];
		unsigned modes = 99;
		assert_true(conf_listen_parse(rows[i].in, addr, sizeof addr, &modes));
		assert_string_equal(addr, rows[i].addr);
		assert_int_equal(modes, rows[i].modes);
	}
}

static void test_security_keys(void **state)
{
	(void)state;
	static const struct { const char *kv[6]; int bad; } rows[] = {
		{ { "listen", "127.0.0.1:465 smtps" }, 1 },
		{ { "listen", "127.0.0.1:465 smtps", "tls_cert", "/c.pem" }, 1 },
		{ { "tls_cert", "/c.pem", "tls_key", "/k.pem" }, 0 },
		{ { "listen", "127.0.0.1:587 submission" }, 1 },
		{ { "listen", "127.0.0.1:587 submission", "users_file", "/u" }, 0 },
		{ { "listen", "127.0.0.1:366 odmr", "users_file", "/u" }, 1 },
		{ { "listen", "127.0.0.1:366 odmr", "odmr_map", "/m" }, 1 },
		{ { "listen", "127.0.0.1:366 odmr", "users_file", "/u", "odmr_map", "/m" }, 0 },
		{ { "run_user", "" }, 1 },
		{ { "max_connections", "0" }, 1 },
		{ { "max_errors", "0", "max_auth_failures", "5" }, 1 },
		{ { "dequeue_listen", "0.0.0.0:79" }, 0 },
		{ { "dequeue_listen", "[::1]:79" }, 0 },
		{ { "dequeue_listen", "localhost:79" }, 1 },   /* bound at start: an address */
		{ { "dequeue_listen", "127.0.0.1" }, 1 },
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		struct conf c;
		conf_defaults(&c);
		for (size_t k = 0; k < 6 && rows[i].kv[k]; k += 2)
			assert_int_equal(conf_set(&c, rows[i].kv[k], rows[i].kv[k + 1], "t"), 0);
		int bad = conf_finish(&c);
		if (bad != rows[i].bad)
			fail_msg("row %zu: %d problems, want %d", i, bad, rows[i].bad);
		conf_free(&c);
	}
}

static void test_load_string(void **state)
{
	(void)state;
	static const char text[] = "hostname = a.example\nmax_errors = 7\nbad line\nx\0y = 1\n";
	struct conf c;
	conf_defaults(&c);
	assert_int_equal(conf_load_string(&c, text, sizeof text - 1, "mem"), 2);
	assert_string_equal(c.hostname, "a.example");
	assert_int_equal(c.max_errors, 7);
	conf_free(&c);
}

static void test_defaults(void **state)
{
	(void)state;
	struct conf c;
	conf_defaults(&c);
	assert_int_equal(conf_set(&c, "hostname", "MX.Example.COM", "t"), 0);
	assert_int_equal(conf_finish(&c), 0);
	assert_string_equal(c.hostname, "mx.example.com");
	assert_int_equal(c.listen.n, 1);
	assert_string_equal(c.listen.v[0], "127.0.0.1:2525");
	assert_true(c.max_message_size == 25u * 1024 * 1024);
	assert_true(c.spool_reserve == 256u * 1024);
	assert_int_equal(c.max_recipients, 100);
	assert_int_equal(c.max_line_length, 998);
	assert_string_equal(c.banner, "tern ready");
	assert_string_equal(c.postmaster_address, "postmaster@mx.example.com");
	assert_true(conf_is_local_domain(&c, "localhost"));
	assert_true(conf_is_local_domain(&c, "MX.example.com"));
	assert_false(conf_is_local_domain(&c, "example.com"));
	assert_int_equal(c.relay_networks.n, 0);
	assert_false(c.vrfy_disclose);
	assert_false(c.queue_only);
	assert_string_equal(c.run_user, "tern");
	assert_string_equal(c.tls_cert, "");
	assert_false(c.auth_allow_plaintext);
	assert_int_equal(c.max_connections_per_ip, 20);
	assert_int_equal(c.greeting_delay, 0);
	assert_int_equal(c.reject_delay, 0);
	assert_int_equal(c.reject_delay_after, 3);
	assert_string_equal(c.control_socket, "./var/spool/control");
	assert_string_equal(c.control_group, "");
	assert_int_equal(c.shutdown_grace, 30);
	assert_int_equal(c.proxy_interfaces.n, 0);
	assert_int_equal(conf_set(&c, "proxy_interfaces", "192.0.2.1,2001:db8::1  198.51.100.2", "t"), 0);
	assert_int_equal(c.proxy_interfaces.n, 3);
	assert_string_equal(c.proxy_interfaces.v[1], "2001:db8::1");
	assert_string_equal(c.proxy_interfaces.v[2], "198.51.100.2");
	assert_int_equal(c.smtp_tls, SMTPC_TLS_MAY);
	conf_set(&c, "smtp_tls", "encrypt", "test");
	assert_int_equal(c.smtp_tls, SMTPC_TLS_ENCRYPT);
	conf_set(&c, "smtp_tls", "verify", "test");
	assert_int_equal(c.smtp_tls, SMTPC_TLS_VERIFY);
	conf_set(&c, "smtp_tls", "none", "test");
	assert_int_equal(c.smtp_tls, SMTPC_TLS_NONE);
	assert_int_equal(c.log_target, LOG_TO_STDERR);
	conf_set(&c, "log_target", "journal", "test");
	assert_int_equal(c.log_target, LOG_TO_JOURNAL);
	conf_free(&c);
}

static void test_set(void **state)
{
	(void)state;
	static const struct { const char *key, *value; int bad; } rows[] = {
		{ "max_recipients", "50", 0 }, { "max_recipients", "abc", 1 },
		{ "max_recipients", "5m", 1 }, { "nosuchkey", "1", 1 },
		{ "vrfy_disclose", "yes", 0 }, { "vrfy_disclose", "maybe", 1 },
		{ "relay_networks", "10.0.0.0/8, ::1", 0 }, { "relay_networks", "10.0.0.0/33", 1 },
		{ "local_domains", "example.com,Example.ORG", 0 }, { "local_domains", "bad..domain", 1 },
		{ "local_domains", "b\xc3\xbc" "cher.test", 0 }, { "local_domains", "b\xc3" ".test", 1 },
		{ "local_domains", "\xcc\x81" "a.test", 1 },
		{ "log_level", "debug", 0 }, { "log_level", "loud", 1 },
		{ "log_target", "journal", 0 }, { "log_target", "syslog", 0 },
		{ "log_target", "stderr", 0 }, { "log_target", "file", 1 }, { "log_target", "", 1 },
		{ "command_timeout", "30s", 0 }, { "command_timeout", "soon", 1 },
		{ "reject_delay", "2s", 0 }, { "reject_delay", "-1", 1 },
		{ "max_message_size", "10M", 0 }, { "max_message_size", "big", 1 },
		{ "spool_reserve", "0", 0 }, { "spool_reserve", "1M", 0 }, { "spool_reserve", "-1", 1 },
		{ "smtp_tls", "verify", 0 }, { "smtp_tls", "none", 0 }, { "smtp_tls", "always", 1 },
		{ "smtp_tls", "Verify", 1 }, { "smtp_tls", "", 1 },
		{ "proxy_interfaces", "", 0 }, { "proxy_interfaces", "192.0.2.1", 0 },
		{ "proxy_interfaces", "192.0.2.1, 198.51.100.2 2001:db8::1", 0 },
		{ "proxy_interfaces", "192.0.2.0/24", 1 }, { "proxy_interfaces", "mx.example", 1 },
		{ "proxy_interfaces", "[2001:db8::1]", 1 }, { "proxy_interfaces", "192.0.2.1:25", 1 },
	};
	assert_true(conf_listen_valid("127.0.0.1:587 submission starttls"));
	assert_false(conf_listen_valid("127.0.0.1:587 startls"));
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		struct conf c;
		conf_defaults(&c);
		int bad = conf_set(&c, rows[i].key, rows[i].value, "test");
		if (bad != rows[i].bad)
			fail_msg("%s=%s: %d problems, want %d", rows[i].key, rows[i].value, bad,
			         rows[i].bad);
		conf_free(&c);
	}
}

static void test_file(void **state)
{
	(void)state;
	char path[] = "/tmp/tern-conf-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	const char *text =
		"# a comment\n"
		"hostname = mx.example.net   # trailing comment\n"
		"\n"
		"local_domains = example.net, Example.ORG\n"
		"relay_networks = 192.0.2.0/24\n"
		"banner =\n"
		"listen = 127.0.0.1:2525, [::1]:2525\n";
	assert_true(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
	close(fd);
	struct conf c;
	conf_defaults(&c);
	assert_int_equal(conf_load_file(&c, path), 0);
	assert_int_equal(conf_finish(&c), 0);
	assert_string_equal(c.hostname, "mx.example.net");
	assert_int_equal(c.local_domains.n, 2);
	assert_string_equal(c.local_domains.v[1], "example.org");
	assert_string_equal(c.banner, "");
	/* an IDN is kept as its A-label and matched either way (RFC 5891) */
	assert_int_equal(conf_set(&c, "local_domains", "B\xc3\xbc" "cher.test, example.net", "t"), 0);
	assert_string_equal(c.local_domains.v[0], "xn--bcher-kva.test");
	assert_true(conf_is_local_domain(&c, "b\xc3\xbc" "cher.test"));
	assert_true(conf_is_local_domain(&c, "XN--BCHER-KVA.test"));
	assert_false(conf_is_local_domain(&c, "bucher.test"));
	assert_false(conf_is_local_domain(&c, "b\xc3" ".test"));
	assert_int_equal(c.listen.n, 2);
	assert_int_equal(c.relay_networks.n, 1);
	conf_free(&c);
	unlink(path);
}

static void test_file_errors(void **state)
{
	(void)state;
	char path[] = "/tmp/tern-conf-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	const char *text = "hostname = ok.example\nno equals sign\nmax_recipients = x\nfoo = 1\n";
	assert_true(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
	close(fd);
	struct conf c;
	conf_defaults(&c);
	assert_int_equal(conf_load_file(&c, path), 3);
	conf_free(&c);
	conf_defaults(&c);
	assert_int_equal(conf_load_file(&c, "/nonexistent/tern.conf"), 1);
	conf_free(&c);
	unlink(path);
}

/* A reload keeps what is read at start only, and names it. */
static void test_keep_restart_keys(void **state)
{
	(void)state;
	struct conf running, next;
	conf_defaults(&running);
	conf_defaults(&next);
	assert_int_equal(conf_set(&running, "listen", "127.0.0.1:25", "t") +
	                 conf_set(&running, "max_errors", "20", "t") +
	                 conf_set(&next, "listen", "127.0.0.1:26, 127.0.0.1:587 submission", "t") +
	                 conf_set(&next, "queue_only", "yes", "t") +
	                 conf_set(&next, "max_errors", "5", "t"), 0);
	char changed[64];
	assert_int_equal(conf_keep_restart_keys(&next, &running, changed, sizeof changed), 2);
	assert_string_equal(changed, "listen queue_only");
	assert_int_equal(next.listen.n, 1);
	assert_string_equal(next.listen.v[0], "127.0.0.1:25");
	assert_false(next.queue_only);
	assert_int_equal(next.max_errors, 5);   /* live */
	assert_int_equal(conf_keep_restart_keys(&next, &running, changed, sizeof changed), 0);
	assert_string_equal(changed, "");
	conf_free(&running);
	conf_free(&next);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_duration), cmocka_unit_test(test_size),
		cmocka_unit_test(test_listen), cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_set), cmocka_unit_test(test_file),
		cmocka_unit_test(test_file_errors), cmocka_unit_test(test_listen_modes),
		cmocka_unit_test(test_security_keys), cmocka_unit_test(test_load_string),
		cmocka_unit_test(test_keep_restart_keys),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
