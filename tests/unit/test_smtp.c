/* test_smtp: the pure protocol functions of net/smtp.c, as tables: reply
 * lines and whole replies, EHLO keywords, the MAIL and RCPT lines, base64,
 * the AUTH responses, and dot-stuffing whatever the cuts between chunks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "net/smtp.h"

#define ARRAY_LEN(a) (sizeof (a) / sizeof (a)[0])

static void test_reply_line(void **state)
{
	(void)state;
	static const struct { const char *in; int rc, code; bool more; } rows[] = {
		{ "220 mx.example ESMTP", 0, 220, false },
		{ "250-PIPELINING", 0, 250, true },
		{ "250 ", 0, 250, false },          /* smtp-sink's last EHLO line */
		{ "250-", 0, 250, true },
		{ "250", 0, 250, false },
		{ "354 Start mail input", 0, 354, false },
		{ "421 4.4.2 bye", 0, 421, false },
		{ "599 x", 0, 599, false },
		{ "199 x", -1, 0, false },          /* RFC 5321 4.2.1: 2 to 5 only */
		{ "600 x", -1, 0, false },
		{ "099 x", -1, 0, false },
		{ "25 x", -1, 0, false },
		{ "25", -1, 0, false },
		{ "2500 x", -1, 0, false },
		{ "250_x", -1, 0, false },
		{ "25a x", -1, 0, false },
		{ "2a0 x", -1, 0, false },
		{ " 250 x", -1, 0, false },
		{ "", -1, 0, false },
		{ "abc def", -1, 0, false },
	};
	for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
		int code = 0;
		bool more = false;
		int rc = smtp_reply_line(rows[i].in, strlen(rows[i].in), &code, &more);
		if (rc != rows[i].rc || (rc == 0 && (code != rows[i].code || more != rows[i].more)))
			fail_msg("smtp_reply_line(%s): rc %d code %d more %d", rows[i].in, rc, code, more);
	}
}

/* Lines fed one by one: the last rc, the code, the text of the last line,
 * and the lines' text joined. */
static void test_reply_whole(void **state)
{
	(void)state;
	static const struct {
		const char *lines[4];
		int rc, code;
		const char *last, *joined;
	} rows[] = {
		{ { "220 mx ready" }, 1, 220, "mx ready", "mx ready" },
		{ { "250-mx", "250-PIPELINING", "250 DSN" }, 1, 250, "DSN", "mx PIPELINING DSN" },
		{ { "250-mx", "250-SIZE 100" }, 0, 250, "SIZE 100", "mx SIZE 100" },
		{ { "250" }, 1, 250, "", "" },
		{ { "550-5.1.1 no", "550 5.1.1 such user" }, 1, 550, "5.1.1 such user",
		  "5.1.1 no 5.1.1 such user" },
		{ { "250-mx", "251 other" }, SMTP_REPLY_MIXED, 0, NULL, NULL },
		{ { "250-mx", "250+x" }, SMTP_REPLY_MALFORMED, 0, NULL, NULL },
		{ { "hello" }, SMTP_REPLY_MALFORMED, 0, NULL, NULL },
		/* joined text is clean: UTF-8 kept, a tab a space, other octets '?' */
		{ { "451-4.3.0 caf\xc3\xa9\tbusy", "451 \x01x\xff\xc0\xaf\x7f\xed\xa0\x80" }, 1, 451,
		  "\x01x\xff\xc0\xaf\x7f\xed\xa0\x80", "4.3.0 caf\xc3\xa9 busy ?x???????" },
	};
	for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
		struct smtp_reply r;
		smtp_reply_init(&r);
		int rc = 0;
		for (size_t k = 0; k < 4 && rows[i].lines[k] && rc >= 0; k++)
			rc = smtp_reply_add(&r, rows[i].lines[k], strlen(rows[i].lines[k]));
		if (rc != rows[i].rc)
			fail_msg("row %zu: rc %d, want %d", i, rc, rows[i].rc);
		if (rc >= 0) {
			assert_int_equal(r.code, rows[i].code);
			assert_string_equal(smtp_reply_last(&r), rows[i].last);
			struct buf j = BUF_INIT;
			smtp_reply_join(&r, &j, 512);
			assert_string_equal(buf_cstr(&j), rows[i].joined);
			buf_free(&j);
		}
		smtp_reply_free(&r);
	}
}

static void test_reply_limits(void **state)
{
	(void)state;
	struct smtp_reply r;
	smtp_reply_init(&r);
	char line[1000];
	memset(line, 'x', sizeof line);
	memcpy(line, "250-", 4);
	int rc = 0;
	size_t n = 0;
	while ((rc = smtp_reply_add(&r, line, sizeof line)) == 0)
		n++;
	assert_int_equal(rc, SMTP_REPLY_LONG);
	assert_true(n > 60 && n < 70);           /* SMTP_REPLY_MAX, 64 KiB */
	assert_string_equal(smtp_reply_error(rc), "reply too long");
	assert_string_equal(smtp_reply_error(SMTP_REPLY_MIXED), "reply code changed inside a reply");
	assert_string_equal(smtp_reply_error(SMTP_REPLY_MALFORMED), "malformed reply line");
	/* reset: a new reply, a new code */
	smtp_reply_reset(&r);
	assert_int_equal(smtp_reply_add(&r, "354 go", 6), 1);
	assert_int_equal(r.code, 354);
	assert_int_equal(r.nlines, 1);
	const char *p;
	assert_true(smtp_reply_nth(&r, 0, &p, &n));
	assert_int_equal(n, 2);
	assert_false(smtp_reply_nth(&r, 1, &p, &n));
	/* joining stops at max */
	smtp_reply_reset(&r);
	for (int i = 0; i < 3; i++)
		smtp_reply_add(&r, "250-abcdef", 10);
	struct buf j = BUF_INIT;
	smtp_reply_join(&r, &j, 4);
	assert_string_equal(buf_cstr(&j), "abcdef");
	buf_free(&j);
	smtp_reply_free(&r);
}

static void test_ehlo_line(void **state)
{
	(void)state;
	static const struct {
		const char *in;
		size_t off;           /* the flag that must be set */
		unsigned mechs;
		uint64_t size_max;
	} rows[] = {
		{ "PIPELINING", offsetof(struct smtp_ext, pipelining), 0, 0 },
		{ "pipelining", offsetof(struct smtp_ext, pipelining), 0, 0 },
		{ "SIZE", offsetof(struct smtp_ext, size), 0, 0 },
		{ "SIZE 10240000", offsetof(struct smtp_ext, size), 0, 10240000 },
		{ "SIZE 99999999999999999999", offsetof(struct smtp_ext, size), 0, 0 },
		{ "SIZE 12ab", offsetof(struct smtp_ext, size), 0, 0 },
		{ "8BITMIME", offsetof(struct smtp_ext, eightbitmime), 0, 0 },
		{ "DSN", offsetof(struct smtp_ext, dsn), 0, 0 },
		{ "STARTTLS", offsetof(struct smtp_ext, starttls), 0, 0 },
		{ "ENHANCEDSTATUSCODES", offsetof(struct smtp_ext, enhancedstatuscodes), 0, 0 },
		{ "SMTPUTF8", offsetof(struct smtp_ext, smtputf8), 0, 0 },
		{ "CHUNKING", offsetof(struct smtp_ext, chunking), 0, 0 },
		{ "BINARYMIME", offsetof(struct smtp_ext, binarymime), 0, 0 },
		{ "REQUIRETLS", offsetof(struct smtp_ext, requiretls), 0, 0 },
		{ "AUTH PLAIN LOGIN", offsetof(struct smtp_ext, auth), SMTP_AUTH_PLAIN | SMTP_AUTH_LOGIN, 0 },
		{ "AUTH LOGIN", offsetof(struct smtp_ext, auth), SMTP_AUTH_LOGIN, 0 },
		{ "AUTH CRAM-MD5 plain", offsetof(struct smtp_ext, auth), SMTP_AUTH_PLAIN, 0 },
		{ "AUTH=LOGIN PLAIN", offsetof(struct smtp_ext, auth), SMTP_AUTH_PLAIN | SMTP_AUTH_LOGIN, 0 },
		{ "AUTH  XPLAIN  LOGIN ", offsetof(struct smtp_ext, auth), SMTP_AUTH_LOGIN, 0 },
		{ "AUTH", offsetof(struct smtp_ext, auth), 0, 0 },
	};
	for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
		struct smtp_ext e, want;
		memset(&e, 0, sizeof e);
		memset(&want, 0, sizeof want);
		*(bool *)((char *)&want + rows[i].off) = true;
		want.auth_mechs = rows[i].mechs;
		want.size_max = rows[i].size_max;
		smtp_ehlo_line(&e, rows[i].in, strlen(rows[i].in));
		if (memcmp(&e, &want, sizeof e) != 0)
			fail_msg("smtp_ehlo_line(%s): mechs %u size %llu", rows[i].in, e.auth_mechs,
			         (unsigned long long)e.size_max);
	}
	/* unknown keywords and near misses set nothing */
	static const char *const none[] = { "XFORWARD NAME ADDR", "PIPELININGX", "DSNX", "SIZEX 10",
		"STARTTLSX", "", " PIPELINING", "VRFY", "ETRN", "AUTHX PLAIN" };
	for (size_t i = 0; i < ARRAY_LEN(none); i++) {
		struct smtp_ext e, zero;
		memset(&e, 0, sizeof e);
		memset(&zero, 0, sizeof zero);
		smtp_ehlo_line(&e, none[i], strlen(none[i]));
		if (memcmp(&e, &zero, sizeof e) != 0)
			fail_msg("smtp_ehlo_line(%s) set something", none[i]);
	}
}

static void test_ehlo_parse(void **state)
{
	(void)state;
	static const char *const lines[] = {
		"250-mx.example Hello DSN",       /* the greeting line is not a keyword */
		"250-PIPELINING", "250-SIZE 1000", "250-STARTTLS", "250-AUTH PLAIN", "250 8BITMIME",
	};
	struct smtp_reply r;
	smtp_reply_init(&r);
	for (size_t i = 0; i < ARRAY_LEN(lines); i++)
		smtp_reply_add(&r, lines[i], strlen(lines[i]));
	struct smtp_ext e;
	memset(&e, 0xff, sizeof e);
	smtp_ehlo_parse(&r, &e);
	assert_true(e.pipelining && e.size && e.starttls && e.auth && e.eightbitmime);
	assert_false(e.dsn || e.chunking || e.smtputf8 || e.enhancedstatuscodes);
	assert_int_equal(e.size_max, 1000);
	assert_int_equal(e.auth_mechs, SMTP_AUTH_PLAIN);
	smtp_reply_free(&r);
	assert_int_equal(smtp_auth_mech("plain"), SMTP_AUTH_PLAIN);
	assert_int_equal(smtp_auth_mech("LOGIN"), SMTP_AUTH_LOGIN);
	assert_int_equal(smtp_auth_mech("CRAM-MD5"), 0);
}

static void test_envelope_lines(void **state)
{
	(void)state;
	struct smtp_ext all = { .size = true, .eightbitmime = true, .dsn = true, .smtputf8 = true,
	                        .requiretls = true, .chunking = true, .binarymime = true };
	struct smtp_ext bare = { 0 };
	static const struct {
		struct smtp_mail m;
		const char *with, *without;
	} mails[] = {
		{ { "a@b.example", 1234, BODY_UNSET, RET_UNSET, "", false, false },
		  "MAIL FROM:<a@b.example> SIZE=1234", "MAIL FROM:<a@b.example>" },
		{ { "", 0, BODY_8BITMIME, RET_HDRS, "id+1 x", false, false },
		  "MAIL FROM:<> SIZE=0 BODY=8BITMIME RET=HDRS ENVID=id+2B1+20x", "MAIL FROM:<>" },
		{ { "a@b", 5, BODY_7BIT, RET_FULL, NULL, false, false },
		  "MAIL FROM:<a@b> SIZE=5 RET=FULL", "MAIL FROM:<a@b>" },
		/* RFC 6531 3.4: SMTPUTF8 only to a server that offers it */
		{ { "δ@b", 5, BODY_8BITMIME, RET_UNSET, NULL, true, false },
		  "MAIL FROM:<δ@b> SIZE=5 BODY=8BITMIME SMTPUTF8", "MAIL FROM:<δ@b>" },
		/* RFC 3030 3: BINARYMIME only to a server that offers it (the
		 * engine sends such a message nowhere else: deliver/dest.c) */
		{ { "a@b", 5, BODY_BINARYMIME, RET_UNSET, NULL, false, false },
		  "MAIL FROM:<a@b> SIZE=5 BODY=BINARYMIME", "MAIL FROM:<a@b>" },
		/* RFC 8689 4.2.2: REQUIRETLS only to a server that offers it (the
		 * engine sends such a message nowhere else: deliver/dest.c) */
		{ { "a@b", 5, BODY_UNSET, RET_HDRS, NULL, false, true },
		  "MAIL FROM:<a@b> SIZE=5 RET=HDRS REQUIRETLS", "MAIL FROM:<a@b>" },
	};
	for (size_t i = 0; i < ARRAY_LEN(mails); i++) {
		struct buf a = BUF_INIT, b = BUF_INIT;
		smtp_mail_line(&mails[i].m, &all, &a);
		smtp_mail_line(&mails[i].m, &bare, &b);
		assert_string_equal(buf_cstr(&a), mails[i].with);
		assert_string_equal(buf_cstr(&b), mails[i].without);
		buf_free(&a);
		buf_free(&b);
	}
	static const struct {
		struct smtp_rcpt r;
		const char *with;
	} rcpts[] = {
		{ { "k@e.example", 0, NULL }, "RCPT TO:<k@e.example>" },
		{ { "k@e", NOTIFY_SUCCESS | NOTIFY_FAILURE, "" }, "RCPT TO:<k@e> NOTIFY=SUCCESS,FAILURE" },
		{ { "k@e", NOTIFY_NEVER, "rfc822;k=x@e" }, "RCPT TO:<k@e> NOTIFY=NEVER ORCPT=rfc822;k+3Dx@e" },
		{ { "k@e", NOTIFY_DELAY, "no-semicolon" }, "RCPT TO:<k@e> NOTIFY=DELAY" },
	};
	for (size_t i = 0; i < ARRAY_LEN(rcpts); i++) {
		struct buf a = BUF_INIT, b = BUF_INIT;
		smtp_rcpt_line(&rcpts[i].r, &all, &a);
		smtp_rcpt_line(&rcpts[i].r, &bare, &b);
		assert_string_equal(buf_cstr(&a), rcpts[i].with);
		assert_int_equal(strncmp(buf_cstr(&b), "RCPT TO:<", 9), 0);
		assert_null(strchr(buf_cstr(&b) + 5, ' '));   /* no parameters without DSN */
		buf_free(&a);
		buf_free(&b);
	}
}

/* RFC 3030 2: the BDAT command, and a body's chunks of at most max. */
static void test_bdat(void **state)
{
	(void)state;
	char line[32];
	smtp_bdat_line(0, true, line, sizeof line);
	assert_string_equal(line, "BDAT 0 LAST");
	smtp_bdat_line(18446744073709551615ull, false, line, sizeof line);
	assert_string_equal(line, "BDAT 18446744073709551615");
	static const struct {
		uint64_t total, max;
		size_t n;
		uint64_t sizes[5];
	} rows[] = {
		{ 0, 10, 1, { 0 } },                  /* an empty body: one empty LAST */
		{ 5, 10, 1, { 5 } },
		{ 10, 10, 1, { 10 } },                /* exactly one: no empty LAST after it */
		{ 11, 10, 2, { 10, 1 } },
		{ 30, 10, 3, { 10, 10, 10 } },
		{ 31, 10, 4, { 10, 10, 10, 1 } },
		{ 3, 1, 3, { 1, 1, 1 } },
	};
	for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
		uint64_t sent = 0;
		bool last = false;
		size_t k = 0;
		while (!last) {
			assert_true(k < rows[i].n);
			uint64_t n = smtp_bdat_next(rows[i].total, sent, rows[i].max, &last);
			if (n != rows[i].sizes[k])
				fail_msg("row %zu chunk %zu: %llu", i, k, (unsigned long long)n);
			sent += n;
			k++;
		}
		assert_int_equal(k, rows[i].n);
		assert_int_equal(sent, rows[i].total);
	}
}

static void test_b64(void **state)
{
	(void)state;
	static const struct { const char *raw; size_t n; const char *b64; } good[] = {
		{ "", 0, "" }, { "f", 1, "Zg==" }, { "fo", 2, "Zm8=" }, { "foo", 3, "Zm9v" },
		{ "A", 1, "QQ==" }, { "AB", 2, "QUI=" }, { "ABCD", 4, "QUJDRA==" },
		{ "Username:", 9, "VXNlcm5hbWU6" }, { "Password:", 9, "UGFzc3dvcmQ6" },
		{ "\0kate\0secret", 12, "AGthdGUAc2VjcmV0" }, { "\xff\xfe\xfd", 3, "//79" },
		{ "\xfb\xef", 2, "++8=" },
	};
	for (size_t i = 0; i < ARRAY_LEN(good); i++) {
		struct buf e = BUF_INIT;
		smtp_b64_encode(good[i].raw, good[i].n, &e);
		assert_string_equal(buf_cstr(&e), good[i].b64);
		unsigned char out[64];
		long n = smtp_b64_decode(good[i].b64, strlen(good[i].b64), out, sizeof out);
		assert_int_equal(n, (long)good[i].n);
		assert_memory_equal(out, good[i].raw, good[i].n);
		assert_int_equal(out[n], 0);
		buf_free(&e);
	}
	static const char *const bad[] = {
		"QR==", "QUJ=", "Zh==", "Zm9=",          /* stray bits: not canonical */
		"QQ=", "QQ", "Q", "abc",                  /* not a multiple of 4 */
		"Q===", "=QQQ", "QQ==QQ==", "QUJDRA=A",   /* padding not at the end */
		"QUJD====", "QU JD", "QUJD\n", "QU-D", "ab!?", "*", "QUJD\r\n",
	};
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		unsigned char out[64];
		if (smtp_b64_decode(bad[i], strlen(bad[i]), out, sizeof out) != -1)
			fail_msg("smtp_b64_decode(%s) accepted", bad[i]);
	}
	unsigned char small[4];
	assert_int_equal(smtp_b64_decode("QUJDRA==", 8, small, sizeof small), -1);
	assert_int_equal(smtp_b64_decode("QUI=", 4, small, sizeof small), 2);
	/* a long input crosses the encoder's steps */
	static unsigned char big[100000];
	for (size_t i = 0; i < sizeof big; i++)
		big[i] = (unsigned char)(i * 7);
	struct buf e = BUF_INIT;
	smtp_b64_encode(big, sizeof big, &e);
	assert_int_equal(e.len, (sizeof big + 2) / 3 * 4);
	static unsigned char back[sizeof big + 4];
	assert_int_equal(smtp_b64_decode(e.data, e.len, back, sizeof back), (long)sizeof big);
	assert_memory_equal(back, big, sizeof big);
	buf_free(&e);
}

static void test_auth(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	smtp_auth_plain("kate", "s3cret", &b);
	assert_string_equal(buf_cstr(&b), "AGthdGUAczNjcmV0");
	buf_reset(&b);
	smtp_auth_plain("kate@example.com", "secret", &b);
	assert_string_equal(buf_cstr(&b), "AGthdGVAZXhhbXBsZS5jb20Ac2VjcmV0");
	buf_reset(&b);
	smtp_auth_plain("", "", &b);
	assert_string_equal(buf_cstr(&b), "AAA=");
	buf_reset(&b);
	buf_puts(&b, "AUTH PLAIN ");
	smtp_auth_plain("a", "b", &b);              /* appended */
	assert_string_equal(buf_cstr(&b), "AUTH PLAIN AGEAYg==");
	buf_reset(&b);
	smtp_auth_login("kate@example.com", &b);
	assert_string_equal(buf_cstr(&b), "a2F0ZUBleGFtcGxlLmNvbQ==");
	buf_reset(&b);
	smtp_auth_login("", &b);
	assert_string_equal(buf_cstr(&b), "");
	buf_free(&b);
}

static void stuff_sink(void *arg, const char *p, size_t n)
{
	buf_append(arg, p, n);
}

/* The whole input cut into pieces at the positions of cuts (a bit mask). */
static void stuff_cut(const char *in, size_t n, unsigned long cuts, struct buf *out)
{
	struct smtp_stuff s = SMTP_STUFF_INIT;
	size_t from = 0;
	for (size_t i = 1; i <= n; i++)
		if (i == n || (cuts >> i & 1)) {
			smtp_stuff(&s, in + from, i - from, stuff_sink, out);
			from = i;
		}
	smtp_stuff_end(&s, stuff_sink, out);
}

static void test_dotstuff(void **state)
{
	(void)state;
	static const struct { const char *in, *out; } rows[] = {
		{ "", ".\r\n" },
		{ "a", "a\r\n.\r\n" },
		{ "a\r\n", "a\r\n.\r\n" },
		{ "a\n", "a\r\n.\r\n" },
		{ ".", "..\r\n.\r\n" },
		{ ".\r\n", "..\r\n.\r\n" },
		{ ".hidden\n.\n..\n", "..hidden\r\n..\r\n...\r\n.\r\n" },
		{ "x.y\r\n.z", "x.y\r\n..z\r\n.\r\n" },
		{ "Subject: t\n\nbody\n", "Subject: t\r\n\r\nbody\r\n.\r\n" },
		{ "a\r", "a\r\n.\r\n" },
		{ "a\rb\r\n", "a\rb\r\n.\r\n" },            /* a bare CR stays as it is */
		{ "\n\n.\n", "\r\n\r\n..\r\n.\r\n" },
		{ "\r\n.\r\n.", "\r\n..\r\n..\r\n.\r\n" },
		{ "a.\r\n.b.\r\n..", "a.\r\n..b.\r\n...\r\n.\r\n" },
	};
	for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
		size_t n = strlen(rows[i].in);
		/* every way of cutting the input into pieces gives the same output */
		for (unsigned long cuts = 0; cuts < 1ul << n; cuts++) {
			struct buf b = BUF_INIT;
			stuff_cut(rows[i].in, n, cuts, &b);
			if (strcmp(buf_cstr(&b), rows[i].out) != 0)
				fail_msg("stuff(%s) cut %lx = %s", rows[i].in, cuts, buf_cstr(&b));
			buf_free(&b);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reply_line),
		cmocka_unit_test(test_reply_whole),
		cmocka_unit_test(test_reply_limits),
		cmocka_unit_test(test_ehlo_line),
		cmocka_unit_test(test_ehlo_parse),
		cmocka_unit_test(test_bdat),
		cmocka_unit_test(test_envelope_lines),
		cmocka_unit_test(test_b64),
		cmocka_unit_test(test_auth),
		cmocka_unit_test(test_dotstuff),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
