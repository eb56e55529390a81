/* Unit tests for auth: SASL PLAIN/LOGIN/CRAM-MD5 (base64 is net/smtp's,
 * in test_smtp), stored passwords, Dovecot's {CRAM-MD5} form. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

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

/* RFC 2195 2: "user SP 32 hex digits" in base64; the user is what comes
 * before the last space. */
static void test_cram_decode(void **state)
{
	(void)state;
	static const struct { const char *text; bool ok; const char *user; } rows[] = {
		{ "tim b913a602c7eda7a495b4e6e7334d3890", true, "tim" },   /* RFC 2195's example */
		{ "tim B913A602C7EDA7A495B4E6E7334D3890", true, "tim" },   /* upper case taken */
		{ "kate@example.com b913a602c7eda7a495b4e6e7334d3890", true, "kate@example.com" },
		{ "a user b913a602c7eda7a495b4e6e7334d3890", true, "a user" },
		{ "timb913a602c7eda7a495b4e6e7334d3890", false, NULL },     /* no space */
		{ " b913a602c7eda7a495b4e6e7334d3890", false, NULL },       /* empty user */
		{ "tim b913a602c7eda7a495b4e6e7334d389", false, NULL },     /* 31 digits */
		{ "tim b913a602c7eda7a495b4e6e7334d38900", false, NULL },   /* 33 digits */
		{ "tim b913a602c7eda7a495b4e6e7334d389g", false, NULL },    /* not hex */
		{ "tim b913a602c7eda7a495b4e6e7334d3890 ", false, NULL },   /* trailing space */
		{ "t\tm b913a602c7eda7a495b4e6e7334d3890", false, NULL },  /* control character */
		{ "tim", false, NULL }, { "", false, NULL },
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		struct buf b = BUF_INIT;
		smtp_b64_encode(rows[i].text, strlen(rows[i].text), &b);
		char user[AUTH_FIELD_MAX + 1];
		unsigned char d[AUTH_CRAM_DIGEST_LEN];
		bool ok = auth_cram_decode(buf_cstr(&b), user, d);
		if (ok != rows[i].ok)
			fail_msg("cram row %zu '%s': %d", i, rows[i].text, ok);
		if (ok) {
			assert_string_equal(user, rows[i].user);
			assert_int_equal(d[0], 0xb9);
			assert_int_equal(d[15], 0x90);
		}
		buf_free(&b);
	}
	char user[AUTH_FIELD_MAX + 1];
	unsigned char d[AUTH_CRAM_DIGEST_LEN];
	assert_true(auth_cram_decode("dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw", user, d));
	assert_false(auth_cram_decode("not base64", user, d));
	assert_false(auth_cram_decode("dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw=", user, d));
	/* a user name over AUTH_FIELD_MAX octets */
	char big[AUTH_FIELD_MAX + 40];
	memset(big, 'u', AUTH_FIELD_MAX + 1);
	snprintf(big + AUTH_FIELD_MAX + 1, 34, " %032d", 0);
	struct buf b = BUF_INIT;
	smtp_b64_encode(big, strlen(big), &b);
	assert_false(auth_cram_decode(buf_cstr(&b), user, d));
	buf_free(&b);
}

static void test_cram_challenge(void **state)
{
	(void)state;
	char c[AUTH_CRAM_CHALLENGE_MAX];
	assert_true(auth_cram_challenge(c, sizeof c, 1896, 697170952, "postoffice.reston.mci.net"));
	assert_string_equal(c, "<1896.697170952@postoffice.reston.mci.net>");
	char host[256];
	memset(host, 'h', 255);
	host[255] = '\0';
	assert_true(auth_cram_challenge(c, sizeof c, UINT64_MAX, 99999999999LL, host));
	assert_false(auth_cram_challenge(c, 10, 1, 2, "example.com"));
}

static void test_hex(const unsigned char *p, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", p[i]);
}

/* The contexts `doveadm pw -s CRAM-MD5 -p SECRET` printed (Dovecot 2.3),
 * and HMAC-MD5 from them against OpenSSL's own HMAC. */
static void test_cram_context(void **state)
{
	(void)state;
	char k64[65], k80[81];
	memset(k64, 'k', 64);
	k64[64] = '\0';
	memset(k80, 'k', 80);
	k80[80] = '\0';
	static const char *const msgs[] = { "<1.2@h>", "", "<1896.697170952@postoffice.reston.mci.net>" };
	const struct { const char *secret, *dovecot; } rows[] = {
		{ "secret", "cd3ba7deaad6e5ca23448ba42e379747a9e0f7f1fbc00c8a81bbaac395731b56" },
		{ "", "00747cf2ffaf11c5ea4a64979c3901fc1d20dee13f480bb598f7d8575b23e61b" },
		{ "s3cret pass", "fa85791b68c7cce23ff7b9e3ede4ca06ac2d1eff94e0aec3c8dc81b73dc8e7e6" },
		{ "tanstaaftanstaaf", "d06d4e1b26fccaa4b0b61801132340a354b21152711fb604ca3e035e7015116b" },
		{ k64, "a37fc5ccd7282dcfcc0db6932f86e2ba9aaa6aae7644eed9ee08da64bb1c1ab2" },
		{ k80, "f03b654611c4dcb3e1fae0358b135066396b5b7346334f3e39c4566106684363" },
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		unsigned char ctx[AUTH_CRAM_CONTEXT_LEN];
		char hex[2 * AUTH_CRAM_CONTEXT_LEN + 1];
		auth_cram_context(rows[i].secret, strlen(rows[i].secret), ctx);
		test_hex(ctx, sizeof ctx, hex);
		assert_string_equal(hex, rows[i].dovecot);
		for (size_t m = 0; m < sizeof msgs / sizeof msgs[0]; m++) {
			unsigned char got[AUTH_CRAM_DIGEST_LEN], want[EVP_MAX_MD_SIZE];
			unsigned wlen = 0;
			auth_cram_hmac(ctx, msgs[m], strlen(msgs[m]), got);
			HMAC(EVP_md5(), rows[i].secret, (int)strlen(rows[i].secret),
			     (const unsigned char *)msgs[m], strlen(msgs[m]), want, &wlen);
			assert_int_equal(wlen, AUTH_CRAM_DIGEST_LEN);
			assert_memory_equal(got, want, AUTH_CRAM_DIGEST_LEN);
		}
	}
}

/* A CRAM-MD5 answer against each kind of stored password. */
static void test_cram_match(void **state)
{
	(void)state;
	static const char ch[] = "<1896.697170952@postoffice.reston.mci.net>";
	static const unsigned char rfc[AUTH_CRAM_DIGEST_LEN] = {   /* RFC 2195's "tim" answer */
		0xb9, 0x13, 0xa6, 0x02, 0xc7, 0xed, 0xa7, 0xa4,
		0x95, 0xb4, 0xe6, 0xe7, 0x33, 0x4d, 0x38, 0x90 };
	static const struct { const char *stored; bool usable, ok; } rows[] = {
		{ "{PLAIN}tanstaaftanstaaf", true, true },
		{ "{plain}tanstaaftanstaaf", true, true },
		{ "{PLAIN}tanstaaftanstaaF", true, false },
		{ "{CRAM-MD5}d06d4e1b26fccaa4b0b61801132340a354b21152711fb604ca3e035e7015116b", true, true },
		{ "{cram-md5}D06D4E1B26FCCAA4B0B61801132340A354B21152711FB604CA3E035E7015116B", true, true },
		{ "{HMAC-MD5}d06d4e1b26fccaa4b0b61801132340a354b21152711fb604ca3e035e7015116b", true, true },
		{ "{CRAM-MD5}cd3ba7deaad6e5ca23448ba42e379747a9e0f7f1fbc00c8a81bbaac395731b56", true, false },
		{ "{CRAM-MD5}d06d4e1b26fccaa4b0b61801132340a354b21152711fb604ca3e035e7015116", false, false },
		{ "{CRAM-MD5}", false, false },
		{ "{SHA512-CRYPT}$6$aLtAUMJG4/RzEO9f$h7fUhmYx3llFQI5X.UKtHXhy1DmKi8qn2WKtkpn6FDbMP0IYLsgL9E8WJYCyoh5d6USLKq0JBoyf5UMQWqSNE0", false, false },
		{ "$y$j9T$LEnH3yVUakTm75m/OZZwu.$02zb85WrFw5jRcw4PV73pFT73XdJUmh3U7gDA04HRk1", false, false },
		{ "", false, false },
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		if (auth_cram_usable(rows[i].stored) != rows[i].usable)
			fail_msg("usable row %zu: %s", i, rows[i].stored);
		if (auth_cram_match(rows[i].stored, ch, rfc) != rows[i].ok)
			fail_msg("match row %zu: %s", i, rows[i].stored);
	}
	unsigned char other[AUTH_CRAM_DIGEST_LEN];
	memcpy(other, rfc, sizeof other);
	other[15] ^= 1;
	assert_false(auth_cram_match("{PLAIN}tanstaaftanstaaf", ch, other));
	assert_false(auth_cram_match("{PLAIN}tanstaaftanstaaf", "<1896.697170953@postoffice.reston.mci.net>", rfc));
	/* PLAIN and LOGIN against a {CRAM-MD5} entry */
	assert_true(auth_password_match("{CRAM-MD5}cd3ba7deaad6e5ca23448ba42e379747a9e0f7f1fbc00c8a81bbaac395731b56", "secret"));
	assert_false(auth_password_match("{CRAM-MD5}cd3ba7deaad6e5ca23448ba42e379747a9e0f7f1fbc00c8a81bbaac395731b56", "Secret"));
	assert_true(auth_scheme_known("{CRAM-MD5}cd3ba7deaad6e5ca23448ba42e379747a9e0f7f1fbc00c8a81bbaac395731b56"));
	assert_false(auth_scheme_known("{CRAM-MD5}cd3ba7"));
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
	assert_true(auth_users_cram(u));   /* kate's {PLAIN} */
	auth_users_free(u);
	unlink(path);
	bad = 0;
	u = auth_users_load("/nonexistent/users", &bad);
	assert_int_equal(bad, 1);
	auth_users_free(u);
}

static void test_users_cram(void **state)
{
	(void)state;
	char path[] = "/tmp/tern-users-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	const char *text =
		"tim:{PLAIN}tanstaaftanstaaf\n"
		"kate@example.com:{CRAM-MD5}d06d4e1b26fccaa4b0b61801132340a354b21152711fb604ca3e035e7015116b::::::\n"
		"chris@example.com:$6$tern.salt$bwQk5JDQbJRrqLhf7O4pxknVhYxyHKGmxfg/6rNSVrMPunsa1wj3CJ9o2DBv3W.nqrOkSm8cf4JQS7dOmFKaZ/\n"
		"bad@example.com:{CRAM-MD5}d06d\n";
	assert_true(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
	close(fd);
	int bad = 0;
	struct auth_users *u = auth_users_load(path, &bad);
	assert_int_equal(bad, 1);
	assert_true(auth_users_cram(u));
	static const char ch[] = "<1896.697170952@postoffice.reston.mci.net>";
	unsigned char d[AUTH_CRAM_DIGEST_LEN];
	char user[AUTH_FIELD_MAX + 1];
	assert_true(auth_cram_decode("dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw", user, d));
	assert_true(auth_users_cram_check(u, "tim", ch, d));
	assert_true(auth_users_cram_check(u, "TIM", ch, d));
	assert_true(auth_users_cram_check(u, "kate@example.com", ch, d));
	assert_false(auth_users_cram_check(u, "kate@example.com", "<1.2@h>", d));
	assert_false(auth_users_cram_check(u, "chris@example.com", ch, d));  /* a crypt hash */
	assert_false(auth_users_cram_check(u, "nobody", ch, d));
	assert_true(auth_users_check(u, "kate@example.com", "tanstaaftanstaaf"));
	auth_users_free(u);
	unlink(path);
	assert_false(auth_users_cram(NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain),
		cmocka_unit_test(test_login), cmocka_unit_test(test_passwords),
		cmocka_unit_test(test_users_file), cmocka_unit_test(test_cram_decode),
		cmocka_unit_test(test_cram_challenge), cmocka_unit_test(test_cram_context),
		cmocka_unit_test(test_cram_match), cmocka_unit_test(test_users_cram),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
