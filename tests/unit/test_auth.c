/* Unit tests for auth: SASL PLAIN/LOGIN (base64 is net/smtp's, in
 * test_smtp), stored passwords. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net/smtp.h"
#include "policy/auth.h"

static void test_plain(void **state)
{
	(void)state;
	static const struct { const char *in; bool ok; const char *user, *pass; } rows[] = {
		{ "AGthdGVAZXhhbXBsZS5jb20Ac2VjcmV0", true, "kate@example.com", "secret" },
		/* authzid equal to authcid */
		{ "a2F0ZUBleGFtcGxlLmNvbQBrYXRlQGV4YW1wbGUuY29tAHNlY3JldA==", true,
		  "kate@example.com", "secret" },
		/* authzid of someone else: proxy authorization refused */
		{ "Ym9zc0BleGFtcGxlLmNvbQBrYXRlQGV4YW1wbGUuY29tAHNlY3JldA==", false, NULL, NULL },
		{ "AGthdGUA", true, "kate", "" },              /* \0kate\0: empty password */
		{ "AGthdGUAAA==", false, NULL, NULL },        /* \0kate\0\0: NUL in the password */
		{ "AABzZWNyZXQ=", false, NULL, NULL },          /* empty user */
		{ "a2F0ZQBzZWNyZXQ=", false, NULL, NULL },      /* one NUL only */
		{ "AGthdGUAc2VjAHJldA==", false, NULL, NULL },  /* NUL in the password */
		{ "", false, NULL, NULL }, { "!!!!", false, NULL, NULL },
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		char user[AUTH_FIELD_MAX + 1], pass[AUTH_FIELD_MAX + 1];
		bool ok = auth_plain_decode(rows[i].in, user, pass);
		if (ok != rows[i].ok)
			fail_msg("plain row %zu '%s': %d", i, rows[i].in, ok);
		if (ok) {
			assert_string_equal(user, rows[i].user);
			assert_string_equal(pass, rows[i].pass);
		}
	}
	/* A field over AUTH_FIELD_MAX octets is refused. */
	unsigned char raw[600];
	memset(raw, 'a', sizeof raw);
	raw[0] = 0;
	raw[300] = 0;
	char user[AUTH_FIELD_MAX + 1], pass[AUTH_FIELD_MAX + 1];
	struct buf b64 = BUF_INIT;
	smtp_b64_encode(raw, sizeof raw, &b64);
	assert_false(auth_plain_decode(buf_cstr(&b64), user, pass));
	buf_free(&b64);
}

static void test_login(void **state)
{
	(void)state;
	char out[AUTH_FIELD_MAX + 1];
	assert_true(auth_login_decode("a2F0ZUBleGFtcGxlLmNvbQ==", out));
	assert_string_equal(out, "kate@example.com");
	assert_false(auth_login_decode("a2F0ZQBleA==", out));  /* NUL inside */
	assert_false(auth_login_decode("a2F0ZQ", out));
}

static void test_passwords(void **state)
{
	(void)state;
	static const struct { const char *stored, *pass; bool ok; } rows[] = {
		{ "{PLAIN}secret", "secret", true }, { "{PLAIN}secret", "Secret", false },
		{ "{plain}secret", "secret", true }, { "{PLAIN}secret", "secret2", false },
		{ "$6$tern.salt$bwQk5JDQbJRrqLhf7O4pxknVhYxyHKGmxfg/6rNSVrMPunsa1wj3CJ9o2DBv3W.nqrOkSm8cf4JQS7dOmFKaZ/", "secret", true },
		{ "$6$tern.salt$bwQk5JDQbJRrqLhf7O4pxknVhYxyHKGmxfg/6rNSVrMPunsa1wj3CJ9o2DBv3W.nqrOkSm8cf4JQS7dOmFKaZ/", "secreT", false },
		{ "{SHA512-CRYPT}$6$aLtAUMJG4/RzEO9f$h7fUhmYx3llFQI5X.UKtHXhy1DmKi8qn2WKtkpn6FDbMP0IYLsgL9E8WJYCyoh5d6USLKq0JBoyf5UMQWqSNE0", "secret", true },
		{ "{BLF-CRYPT}$2y$05$wlDVITtr8VsgGXWijVDdtOQOz/OhWhIWahSINjrNkoX97iH.M7GrW", "secret", true },
		{ "{BLF-CRYPT}$2y$05$wlDVITtr8VsgGXWijVDdtOQOz/OhWhIWahSINjrNkoX97iH.M7GrW", "wrong", false },
		{ "{CRYPT}$2y$05$BC9c4LTPrqRe..yd.yol8eIKo/dOLzb0xQYPqyyq2o1zyhcO35RDq", "secret", true },
		{ "$y$j9T$LEnH3yVUakTm75m/OZZwu.$02zb85WrFw5jRcw4PV73pFT73XdJUmh3U7gDA04HRk1", "secret", true },
		{ "$y$j9T$LEnH3yVUakTm75m/OZZwu.$02zb85WrFw5jRcw4PV73pFT73XdJUmh3U7gDA04HRk1", "", false },
		{ "{MD5}xyz", "secret", false }, { "", "", false }, { "*", "", false },
		{ "!locked", "secret", false },
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
		if (auth_password_match(rows[i].stored, rows[i].pass) != rows[i].ok)
			fail_msg("row %zu: %s vs '%s': want %d", i, rows[i].stored, rows[i].pass, rows[i].ok);
	assert_false(auth_scheme_known("{MD5}xyz"));
	assert_true(auth_scheme_known("{SHA256-CRYPT}$5$x$y"));
}

static void test_users_file(void **state)
{
	(void)state;
	char path[] = "/tmp/tern-users-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	const char *text =
		"# users\n"
		"kate@example.com:{PLAIN}secret::::::\n"
		"chris@example.com:$6$tern.salt$bwQk5JDQbJRrqLhf7O4pxknVhYxyHKGmxfg/6rNSVrMPunsa1wj3CJ9o2DBv3W.nqrOkSm8cf4JQS7dOmFKaZ/\n"
		"\n"
		"bad line\n"
		"odd@example.com:{MD5}abc\n";
	assert_true(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
	close(fd);
	int bad = 0;
	struct auth_users *u = auth_users_load(path, &bad);
	assert_int_equal(bad, 2);
	assert_int_equal(auth_users_count(u), 2);
	assert_true(auth_users_check(u, "kate@example.com", "secret"));
	assert_true(auth_users_check(u, "KATE@example.com", "secret"));
	assert_false(auth_users_check(u, "kate@example.com", "secret "));
	assert_true(auth_users_check(u, "chris@example.com", "secret"));
	assert_false(auth_users_check(u, "nobody@example.com", "secret"));
	assert_false(auth_users_check(u, "odd@example.com", "abc"));
	auth_users_free(u);
	unlink(path);
	bad = 0;
	u = auth_users_load("/nonexistent/users", &bad);
	assert_int_equal(bad, 1);
	auth_users_free(u);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain),
		cmocka_unit_test(test_login), cmocka_unit_test(test_passwords),
		cmocka_unit_test(test_users_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
