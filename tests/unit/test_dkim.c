/* test_dkim: src/dkim/, DKIM signing and verification (RFC 6376, RFC
 * 8463, RFC 8301) against tables, and RFC 8463 Appendix A's example
 * (keys, message, both signatures) as an outside test vector.
 *
 * Every parser row is data: tag-lists (3.2), header and body
 * canonicalization (3.4, each body fed whole, byte by byte and in threes),
 * the From domain, key records (3.6.1), and a table of broken signatures
 * and messages, each with the status RFC 6376 6.1 gives it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "dkim/canon.h"
#include "dkim/dkim.h"
#include "dkim/key.h"
#include "dkim/msg.h"
#include "dkim/sig.h"
#include "dkim/sign.h"
#include "dkim/tags.h"
#include "dkim/verify.h"
#include "net/smtp.h"

#define ARRAY_LEN(a) (sizeof (a) / sizeof (a)[0])
#define NOW 1700000000

/* ---- tag-lists (RFC 6376 3.2) ---- */

static void test_tags(void **state)
{
	(void)state;
	static const struct {
		const char *in;
		bool ok;
		size_t n;
		const char *name, *val;   /* the last tag */
	} rows[] = {
		{ "v=1; a=rsa-sha256", true, 2, "a", "rsa-sha256" },
		{ "v=1;a=x;", true, 2, "a", "x" },
		{ "v=1; a=x; ", true, 2, "a", "x" },
		{ "v = 1 ;\r\n\ta =\r\n x y ", true, 2, "a", "x y" },
		{ "b=abc\r\n def\r\n\tghi", true, 1, "b", "abc\r\n def\r\n\tghi" },
		{ "p=", true, 1, "p", "" },
		{ "p= ;", true, 1, "p", "" },
		{ "k_1=v", true, 1, "k_1", "v" },
		{ "", true, 0, NULL, NULL },
		{ "  ", true, 0, NULL, NULL },
		{ "v=1; v=2", false, 0, NULL, NULL },           /* a name twice */
		{ "v=1;; a=2", false, 0, NULL, NULL },          /* an empty tag-spec */
		{ "1v=1", false, 0, NULL, NULL },               /* a name starts with a letter */
		{ "v", false, 0, NULL, NULL },
		{ "v=1 a=2", true, 1, "v", "1 a=2" },           /* one value with a space */
		{ "=1", false, 0, NULL, NULL },
		{ "v-x=1", false, 0, NULL, NULL },
		{ "v=1\r\nx=2", false, 0, NULL, NULL },         /* CRLF not followed by WSP */
		{ "v=\x01", false, 0, NULL, NULL },
		{ "v=\xc3\xa9", false, 0, NULL, NULL },         /* VALCHAR is ASCII */
		{ "v=1\r\n", false, 0, NULL, NULL },
	};
	for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
		struct dkim_tags t;
		bool ok = dkim_tags_parse(rows[i].in, strlen(rows[i].in), &t);
		if (ok != rows[i].ok)
			fail_msg("row %zu '%s': ok %d", i, rows[i].in, ok);
		if (!ok)
			continue;
		assert_int_equal(t.n, rows[i].n);
		if (!t.n)
			continue;
		const struct dkim_tag *last = &t.v[t.n - 1];
		assert_true(last->nlen == strlen(rows[i].name) &&
		            !memcmp(last->name, rows[i].name, last->nlen));
		if (last->vlen != strlen(rows[i].val) || memcmp(last->val, rows[i].val, last->vlen))
			fail_msg("row %zu: value '%.*s'", i, (int)last->vlen, last->val);
	}
	char nul[] = "v=1\0; a=2";
	struct dkim_tags t;
	assert_false(dkim_tags_parse(nul, sizeof nul - 1, &t));
}

static void test_tags_copy_and_raw(void **state)
{
	(void)state;
	const char *s = "a=1; b= ab\r\n cd = ; c=3";
	struct dkim_tags t;
	assert_true(dkim_tags_parse(s, strlen(s), &t));
	const struct dkim_tag *b = dkim_tags_get(&t, "b");
	char out[16];
	assert_true(dkim_tags_copy(b, out, sizeof out));
	assert_string_equal(out, "abcd=");
	assert_false(dkim_tags_copy(b, out, 5));
	/* the span RFC 6376 3.7 empties: after "b=" up to ";" */
	assert_int_equal(b->raw, 7);
	assert_int_equal(s[b->raw_end], ';');
	assert_null(dkim_tags_get(&t, "d"));
	assert_null(dkim_tags_get(&t, "B"));      /* names are case-sensitive */
}

/* ---- canonicalization (RFC 6376 3.4) ---- */

static void test_canon_header(void **state)
{
	(void)state;
	static const struct {
		enum dkim_canon c;
		const char *in, *out;
	} rows[] = {
		{ DKIM_SIMPLE, "Subject:  Hi \r\n", "Subject:  Hi \r\n" },
		{ DKIM_SIMPLE, "Subject: Hi", "Subject: Hi\r\n" },
		{ DKIM_RELAXED, "SubJect:  Hi  there \r\n", "subject:Hi there\r\n" },
		{ DKIM_RELAXED, "Subject : Hi\r\n", "subject:Hi\r\n" },
		{ DKIM_RELAXED, "Subject:\tHi\r\n\tthere\r\n  you \r\n", "subject:Hi there you\r\n" },
		{ DKIM_RELAXED, "X:\r\n", "x:\r\n" },
		{ DKIM_RELAXED, "X: a\tb\r\n", "x:a b\r\n" },
		/* RFC 6376 3.4.6's example */
		{ DKIM_RELAXED, "A: X\r\n", "a:X\r\n" },
		{ DKIM_RELAXED, "B : Y\t\r\n\tZ  \r\n", "b:Y Z\r\n" },
	};
	for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
		struct buf out = BUF_INIT;
		dkim_canon_header(rows[i].c, rows[i].in, strlen(rows[i].in), true, &out);
		if (strcmp(buf_cstr(&out), rows[i].out))
			fail_msg("row %zu: got '%s'", i, buf_cstr(&out));
		buf_free(&out);
	}
	struct buf out = BUF_INIT;
	dkim_canon_header(DKIM_RELAXED, "A: b\r\n", 6, false, &out);
	assert_string_equal(buf_cstr(&out), "a:b");
	buf_reset(&out);
	dkim_canon_header(DKIM_SIMPLE, "A: b\r\n", 6, false, &out);
	assert_string_equal(buf_cstr(&out), "A: b");
	buf_free(&out);
}

static void sink_buf(void *ctx, const char *p, size_t n)
{
	buf_append(ctx, p, n);
}

/* in fed in pieces of step octets (0: whole). */
static void canon_body(enum dkim_canon c, const char *in, size_t step, struct buf *out)
{
	struct dkim_body b;
	dkim_body_init(&b, c, sink_buf, out);
	size_t n = strlen(in);
	for (size_t i = 0; i < n; i += step ? step : n)
		dkim_body_feed(&b, in + i, step && n - i > step ? step : n - i);
	dkim_body_end(&b);
}

static void test_canon_body(void **state)
{
	(void)state;
	static const struct {
		enum dkim_canon c;
		const char *in, *out;
	} rows[] = {
		{ DKIM_SIMPLE, "", "\r\n" },
		{ DKIM_SIMPLE, "\r\n", "\r\n" },
		{ DKIM_SIMPLE, "\r\n\r\n\r\n", "\r\n" },
		{ DKIM_SIMPLE, "a\r\n", "a\r\n" },
		{ DKIM_SIMPLE, "a", "a\r\n" },
		{ DKIM_SIMPLE, "a \r\n\r\nb \t\r\n\r\n\r\n", "a \r\n\r\nb \t\r\n" },
		{ DKIM_SIMPLE, " \r\n", " \r\n" },
		{ DKIM_SIMPLE, "a\rb\nc\r\n", "a\rb\nc\r\n" },
		{ DKIM_SIMPLE, "a\r", "a\r\r\n" },
		{ DKIM_RELAXED, "", "" },
		{ DKIM_RELAXED, "\r\n", "" },
		{ DKIM_RELAXED, " \t \r\n\r\n", "" },
		{ DKIM_RELAXED, "a\r\n", "a\r\n" },
		{ DKIM_RELAXED, "a", "a\r\n" },
		{ DKIM_RELAXED, "a \t b  \r\n", "a b\r\n" },
		{ DKIM_RELAXED, "  a\r\n", " a\r\n" },
		{ DKIM_RELAXED, " \r\nx\r\n \r\n", "\r\nx\r\n" },
		{ DKIM_RELAXED, "a  ", "a\r\n" },
		{ DKIM_RELAXED, "a \rb\r\n", "a \rb\r\n" },
		/* RFC 6376 3.4.6's example body */
		{ DKIM_RELAXED, " C \r\nD \t E\r\n\r\n\r\n", " C\r\nD E\r\n" },
		{ DKIM_SIMPLE, " C \r\nD \t E\r\n\r\n\r\n", " C \r\nD \t E\r\n" },
	};
	for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
		size_t steps[] = { 0, 1, 3 };
		for (size_t s = 0; s < ARRAY_LEN(steps); s++) {
			struct buf out = BUF_INIT;
			canon_body(rows[i].c, rows[i].in, steps[s], &out);
			if (out.len != strlen(rows[i].out) || memcmp(out.data, rows[i].out, out.len))
				fail_msg("row %zu step %zu: got '%s'", i, steps[s], buf_cstr(&out));
			buf_free(&out);
		}
	}
}

/* ---- the author's domain ---- */

static void test_from_domain(void **state)
{
	(void)state;
	static const struct {
		const char *in, *out;
		enum dkim_status st;
	} rows[] = {
		{ " joe@Example.COM", "example.com", DKIM_OK },
		{ " Joe <joe@example.com>", "example.com", DKIM_OK },
		{ " \"Joe @ home\" <joe@example.com>", "example.com", DKIM_OK },
		{ " \"a@b\"@example.org", "example.org", DKIM_OK },
		{ " joe@example.com (Joe <x@evil.example>)", "example.com", DKIM_OK },
		{ " (c) Joe\r\n <joe@sub.example.com>", "sub.example.com", DKIM_OK },
		{ " <@route.example:joe@example.com>", "example.com", DKIM_OK },
		{ " joe@example.com, ann@example.org", NULL, DKIM_FROM_SYNTAX },
		{ " group: joe@example.com;", NULL, DKIM_FROM_SYNTAX },
		{ " joe", NULL, DKIM_FROM_SYNTAX },
		{ " joe@", NULL, DKIM_FROM_SYNTAX },
		{ " @example.com", NULL, DKIM_FROM_SYNTAX },
		{ " joe@[192.0.2.1]", NULL, DKIM_FROM_SYNTAX },
		{ " <joe@example.com", NULL, DKIM_FROM_SYNTAX },
		{ " <joe@example.com> x", NULL, DKIM_FROM_SYNTAX },
		{ " \"unterminated <joe@example.com>", NULL, DKIM_FROM_SYNTAX },
		{ " (unterminated joe@example.com", NULL, DKIM_FROM_SYNTAX },
		{ " joe@bad..example", NULL, DKIM_FROM_SYNTAX },
		{ "", NULL, DKIM_FROM_SYNTAX },
	};
	for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
		char out[256] = "";
		enum dkim_status st = dkim_from_domain(rows[i].in, strlen(rows[i].in), out, sizeof out);
		if (st != rows[i].st || (st == DKIM_OK && strcmp(out, rows[i].out)))
			fail_msg("row %zu '%s': %s '%s'", i, rows[i].in, dkim_status_text(st), out);
	}
}

/* ---- keys ---- */

static EVP_PKEY *rsa2048, *rsa1024, *rsa512, *ed;

static int keys_setup(void **state)
{
	(void)state;
	rsa2048 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	rsa1024 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
	rsa512 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)512);
	ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	return rsa2048 && rsa1024 && rsa512 && ed ? 0 : -1;
}

static int keys_teardown(void **state)
{
	(void)state;
	EVP_PKEY_free(rsa2048);
	EVP_PKEY_free(rsa1024);
	EVP_PKEY_free(rsa512);
	EVP_PKEY_free(ed);
	return 0;
}

/* The key record of pk, with extra tags before ("pre") and after it. */
static char *record(EVP_PKEY *pk, const char *pre, const char *post)
{
	struct buf b = BUF_INIT, r = BUF_INIT;
	assert_true(dkim_key_record(pk, &r));
	buf_printf(&b, "%s%s%s", pre, buf_cstr(&r), post);
	buf_free(&r);
	return b.data;
}

static void test_key_records(void **state)
{
	(void)state;
	char *rsa = record(rsa2048, "", ""), *edr = record(ed, "", "");
	assert_true(!strncmp(rsa, "v=DKIM1; k=rsa; p=MII", 21));
	assert_true(!strncmp(edr, "v=DKIM1; k=ed25519; p=", 22));
	assert_int_equal(strlen(edr), 22 + 44);
	struct {
		char *rec;
		enum dkim_status st;
	} rows[] = {
		{ rsa, DKIM_OK },
		{ edr, DKIM_OK },
		{ strdup(rsa + 8), DKIM_OK },                                 /* no v=, k= */
		{ record(rsa2048, "", "; h=sha1:sha256; s=email; t=y:s; n=hi"), DKIM_OK },
		{ record(rsa2048, "", "; x=unknown tags are ignored"), DKIM_OK },
		{ strdup("v=DKIM1; k=rsa; p="), DKIM_KEY_REVOKED },
		{ strdup("v=DKIM1; p= ; n=gone"), DKIM_KEY_REVOKED },
		{ strdup("v=DKIM1; k=rsa"), DKIM_KEY_SYNTAX },
		{ strdup("v=DKIM2; p=AAAA"), DKIM_KEY_SYNTAX },
		{ strdup("k=rsa; v=DKIM1; p=AAAA"), DKIM_KEY_SYNTAX },       /* v= not first */
		{ strdup("v=DKIM1; p=AAAA; p=AAAA"), DKIM_KEY_SYNTAX },
		{ strdup("v=DKIM1;; p=AAAA"), DKIM_KEY_SYNTAX },
		{ strdup("v=DKIM1; k=rsa; p=!!!!"), DKIM_KEY_BASE64 },
		{ strdup("v=DKIM1; k=rsa; p=AAA"), DKIM_KEY_BASE64 },
		{ strdup("v=DKIM1; k=rsa; p=AAAAAAAA"), DKIM_KEY_BASE64 },    /* base64, not a key */
		{ strdup("v=DKIM1; k=ed25519; p=AAAA"), DKIM_KEY_BASE64 },   /* not 32 octets */
		{ strdup("v=DKIM1; k=dsa; p=AAAA"), DKIM_KEY_TYPE },
		{ record(rsa2048, "", "; h=sha1"), DKIM_KEY_HASH },
		{ record(rsa2048, "", "; s=web"), DKIM_KEY_SERVICE },
		{ record(rsa512, "", ""), DKIM_KEY_SHORT },
	};
	for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
		struct dkim_key k;
		enum dkim_status st = dkim_key_parse(rows[i].rec, strlen(rows[i].rec), &k);
		if (st != rows[i].st)
			fail_msg("row %zu '%.60s': %s", i, rows[i].rec, dkim_status_text(st));
		assert_true((st == DKIM_OK) == (k.pkey != NULL));
		dkim_key_free(&k);
		free(rows[i].rec);
	}
	struct dkim_key k;
	char *flags = record(ed, "", "; t=y:s");
	assert_int_equal(dkim_key_parse(flags, strlen(flags), &k), DKIM_OK);
	assert_true(k.testing && k.strict && k.alg == DKIM_ED25519_SHA256);
	dkim_key_free(&k);
	free(flags);
}

/* An RSA public key in the form some publish: the bare RSAPublicKey
 * (PKCS#1) rather than a SubjectPublicKeyInfo. */
static void test_key_pkcs1(void **state)
{
	(void)state;
	unsigned char *der = NULL;
	int n = i2d_PublicKey(rsa2048, &der);
	assert_true(n > 0);
	struct buf rec = BUF_INIT;
	buf_puts(&rec, "v=DKIM1; p=");
	smtp_b64_encode(der, (size_t)n, &rec);
	OPENSSL_free(der);
	struct dkim_key k;
	assert_int_equal(dkim_key_parse(rec.data, rec.len, &k), DKIM_OK);
	assert_int_equal(EVP_PKEY_get_bits(k.pkey), 2048);
	dkim_key_free(&k);
	buf_free(&rec);
}

/* ---- RFC 8463 Appendix A ---- */

/* A.1: the Ed25519 private key; A.2: both key records. */
static const char rfc_ed_seed[] = "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=";
static const char rfc_ed_rec[] = "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
static const char rfc_rsa_rec[] =
	"v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWRiGs5V6NpP3idY6Wk08"
	"a5qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutACDfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqM"
	"KrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3Ip3G+2kryOTIKT+l/K4w3QIDAQAB";
/* A.3: the signed message, byte for byte. */
static const char rfc_msg[] =
	"DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed;\r\n"
	" d=football.example.com; i=@football.example.com;\r\n"
	" q=dns/txt; s=brisbane; t=1528637909; h=from : to :\r\n"
	" subject : date : message-id : from : subject : date;\r\n"
	" bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\r\n"
	" b=/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11Bus\r\n"
	" Fa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw==\r\n"
	"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;\r\n"
	" d=football.example.com; i=@football.example.com;\r\n"
	" q=dns/txt; s=test; t=1528637909; h=from : to : subject :\r\n"
	" date : message-id : from : subject : date;\r\n"
	" bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\r\n"
	" b=F45dVWDfMbQDGHJFlXUNB2HKfbCeLRyhDXgFpEL8GwpsRe0IeIixNTe3\r\n"
	" DhCVlUrSjV4BwcVcOF6+FF3Zo9Rpo1tFOeS9mPYQTnGdaSGsgeefOsk2Jz\r\n"
	" dA+L10TeYt9BgDfQNZtKdN1WO//KgIqXP7OdEFE4LjFYNcUxZQ4FADY+8=\r\n"
	"From: Joe SixPack <joe@football.example.com>\r\n"
	"To: Suzie Q <suzie@shopping.example.net>\r\n"
	"Subject: Is dinner ready?\r\n"
	"Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)\r\n"
	"Message-ID: <20030712040037.46341.5F8J@football.example.com>\r\n"
	"\r\n"
	"Hi.\r\n"
	"\r\n"
	"We lost the game.  Are you hungry yet?\r\n"
	"\r\n"
	"Joe.\r\n"
	"\r\n";

static struct dkim_verify *verify_msg(const char *msg, size_t step)
{
	struct dkim_verify *v = dkim_verify_new();
	size_t n = strlen(msg);
	for (size_t i = 0; i < n; i += step)
		dkim_verify_feed(v, msg + i, n - i < step ? n - i : step);
	dkim_verify_end(v);
	return v;
}

static void test_rfc8463_verifies(void **state)
{
	(void)state;
	size_t steps[] = { 1, 7, sizeof rfc_msg };
	for (size_t s = 0; s < ARRAY_LEN(steps); s++) {
		struct dkim_verify *v = verify_msg(rfc_msg, steps[s]);
		assert_int_equal(dkim_verify_count(v), 2);
		const struct dkim_sig *sig;
		assert_int_equal(dkim_verify_sig(v, 0, &sig), DKIM_OK);
		assert_string_equal(sig->d, "football.example.com");
		assert_string_equal(sig->s, "brisbane");
		assert_int_equal(sig->alg, DKIM_ED25519_SHA256);
		assert_int_equal(dkim_verify_check(v, 0, rfc_ed_rec, strlen(rfc_ed_rec), NOW), DKIM_OK);
		assert_int_equal(dkim_verify_sig(v, 1, &sig), DKIM_OK);
		assert_string_equal(sig->s, "test");
		assert_int_equal(dkim_verify_check(v, 1, rfc_rsa_rec, strlen(rfc_rsa_rec), NOW),
		                 DKIM_OK);
		/* each key with the other signature: the wrong type */
		assert_int_equal(dkim_verify_check(v, 0, rfc_rsa_rec, strlen(rfc_rsa_rec), NOW),
		                 DKIM_KEY_TYPE);
		dkim_verify_free(v);
	}
}

/* Ed25519 signatures are deterministic (RFC 8032 5.1.6): the A.1 key
 * over the A.3 header data, canonicalized here by hand from the RFC's
 * text, makes exactly the b= of A.3. */
static void test_rfc8463_signs(void **state)
{
	(void)state;
	static const char data[] =
		"from:Joe SixPack <joe@football.example.com>\r\n"
		"to:Suzie Q <suzie@shopping.example.net>\r\n"
		"subject:Is dinner ready?\r\n"
		"date:Fri, 11 Jul 2003 21:00:37 -0700 (PDT)\r\n"
		"message-id:<20030712040037.46341.5F8J@football.example.com>\r\n"
		"dkim-signature:v=1; a=ed25519-sha256; c=relaxed/relaxed; d=football.example.com; "
		"i=@football.example.com; q=dns/txt; s=brisbane; t=1528637909; h=from : to : subject "
		": date : message-id : from : subject : date; "
		"bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=; b=";
	unsigned char seed[40], hash[32], sig[128];
	assert_int_equal(smtp_b64_decode(rfc_ed_seed, strlen(rfc_ed_seed), seed, sizeof seed), 32);
	EVP_PKEY *key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);
	assert_non_null(key);
	unsigned hl = 0;
	assert_int_equal(EVP_Digest(data, strlen(data), hash, &hl, EVP_sha256(), NULL), 1);
	size_t len = sizeof sig;
	assert_true(dkim_sign_hash(key, hash, sig, &len));
	struct buf b = BUF_INIT, r = BUF_INIT;
	smtp_b64_encode(sig, len, &b);
	assert_string_equal(buf_cstr(&b), "/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11Bus"
	                                  "Fa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw==");
	assert_true(dkim_key_record(key, &r));        /* A.2's record from A.1's key */
	assert_string_equal(buf_cstr(&r), rfc_ed_rec);
	buf_free(&b);
	buf_free(&r);
	EVP_PKEY_free(key);
}

/* ---- signing ---- */

static const char msg_plain[] =
	"From: Joe <joe@Example.COM>\r\n"
	"To: ann@example.org\r\n"
	"Subject: dinner\r\n"
	"Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
	"Message-ID: <1@example.com>\r\n"
	"List-Id: <l.example.com>\r\n"
	"X-Mailer: not signed\r\n"
	"\r\n"
	"Hi.\r\n"
	"\r\n"
	"  We lost  the game.\r\n"
	"\r\n";

/* msg signed with key (selector sel of example.com) at NOW, fed in
 * pieces of step octets: the field into out. */
static enum dkim_status sign_msg(const char *msg, size_t step, EVP_PKEY *key, const char *sel,
                                 struct buf *out)
{
	struct dkim_sign *s = dkim_sign_new();
	size_t n = strlen(msg);
	for (size_t i = 0; i < n; i += step)
		dkim_sign_feed(s, msg + i, n - i < step ? n - i : step);
	char d[256];
	enum dkim_status st = dkim_sign_end(s, d, sizeof d);
	if (st == DKIM_OK) {
		assert_string_equal(d, "example.com");
		st = dkim_sign_field(s, d, sel, key, NOW, out);
	}
	dkim_sign_free(s);
	return st;
}

/* A DKIM-Signature field's lines fit in 78 columns (a tab counts 8). */
static void assert_folded(const char *f)
{
	for (const char *line = f; *line;) {
		size_t len = strcspn(line, "\r");
		size_t cols = len + (line[0] == '\t' ? 7 : 0);
		if (cols > DKIM_FOLD)
			fail_msg("line of %zu columns: %.*s", cols, (int)len, line);
		assert_true(line[len] == '\r' && line[len + 1] == '\n');
		line += len + 2;
		assert_true(!*line || *line == '\t');
	}
}

/* The field with its folds (CRLF TAB) taken out. */
static char *unfold(const char *f)
{
	char *out = strdup(f), *w = out;
	for (const char *p = f; *p; p++)
		if (!(p[0] == '\r' && p[1] == '\n' && p[2] == '\t') && *p != '\t' && *p != '\n')
			*w++ = *p;
	*w = '\0';
	return out;
}

static void test_sign_and_verify(void **state)
{
	(void)state;
	EVP_PKEY *keys[] = { rsa2048, ed };
	for (size_t k = 0; k < ARRAY_LEN(keys); k++) {
		struct buf f = BUF_INIT, msg = BUF_INIT, again = BUF_INIT;
		assert_int_equal(sign_msg(msg_plain, 5, keys[k], "sel", &f), DKIM_OK);
		assert_folded(buf_cstr(&f));
		char *flat = unfold(f.data);
		assert_non_null(strstr(flat, "h=from:from:subject:subject:date:date:to:message-id:"
		                             "list-id;"));
		const char *tags[] = { " c=relaxed/relaxed;", "d=example.com;", "s=sel;", "t=1700000000;" };
		for (size_t i = 0; i < ARRAY_LEN(tags); i++)
			assert_non_null(strstr(flat, tags[i]));
		assert_non_null(strstr(flat, keys[k] == ed ? "a=ed25519-sha256;" : "a=rsa-sha256;"));
		free(flat);
		buf_printf(&msg, "%s%s", buf_cstr(&f), msg_plain);
		struct dkim_verify *v = verify_msg(msg.data, 3);
		char *rec = record(keys[k], "", "");
		assert_int_equal(dkim_verify_check(v, 0, rec, strlen(rec), NOW + 10), DKIM_OK);
		if (keys[k] == ed) {   /* deterministic: any chunking signs the same */
			assert_int_equal(sign_msg(msg_plain, sizeof msg_plain, ed, "sel", &again), DKIM_OK);
			assert_string_equal(buf_cstr(&again), buf_cstr(&f));
		}
		free(rec);
		dkim_verify_free(v);
		buf_free(&f);
		buf_free(&msg);
		buf_free(&again);
	}
}

static void test_sign_names(void **state)
{
	(void)state;
	static const struct {
		const char *head, *h;
	} rows[] = {
		{ "From: a@example.com\r\n", "from:from:subject:date" },
		{ "from: a@example.com\r\nSUBJECT: x\r\nDate: y\r\nCC: z\r\nCc: w\r\n",
		  "from:from:subject:subject:date:date:cc:cc" },
		{ "From: a@example.com\r\nResent-From: b@x\r\nList-Post: <mailto:l@x>\r\n"
		  "resent-from: c@x\r\nX-Spam: y\r\nList-Idx: 1\r\nListed: no\r\n",
		  "from:from:subject:date:resent-from:resent-from:list-post:list-idx" },
		{ "From: a@example.com\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n"
		  "Content-Transfer-Encoding: 8bit\r\nReply-To: r@x\r\nIn-Reply-To: <1@x>\r\n"
		  "References: <0@x>\r\n",
		  "from:from:reply-to:subject:date:in-reply-to:references:mime-version:content-type:"
		  "content-transfer-encoding" },
	};
	for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
		struct dkim_msg m;
		dkim_msg_init(&m, NULL, NULL);
		dkim_msg_feed(&m, rows[i].head, strlen(rows[i].head));
		dkim_msg_feed(&m, "\r\nbody\r\n", 8);
		dkim_msg_end(&m);
		struct buf h = BUF_INIT;
		dkim_sign_names(&m, &h);
		if (strcmp(buf_cstr(&h), rows[i].h))
			fail_msg("row %zu: h=%s", i, buf_cstr(&h));
		buf_free(&h);
		dkim_msg_free(&m);
	}
}

static void test_sign_refused(void **state)
{
	(void)state;
	static const struct {
		const char *msg;
		enum dkim_status st;
	} rows[] = {
		{ "To: a@example.com\r\n\r\nno From\r\n", DKIM_NO_FROM },
		{ "From: a@example.com\r\nFrom: b@example.com\r\n\r\ntwo\r\n", DKIM_NO_FROM },
		{ "From: a@example.com, b@example.com\r\n\r\ntwo authors\r\n", DKIM_FROM_SYNTAX },
		{ "From: nobody\r\n\r\n", DKIM_FROM_SYNTAX },
		{ "\r\nFrom: a@example.com\r\n", DKIM_NO_FROM },      /* that is the body */
		{ "From: a@example.com", DKIM_OK },                   /* no body at all */
	};
	for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
		struct buf f = BUF_INIT;
		enum dkim_status st = sign_msg(rows[i].msg, 4, ed, "s", &f);
		if (st != rows[i].st)
			fail_msg("row %zu: %s", i, dkim_status_text(st));
		buf_free(&f);
	}
	/* a header block over 64 KiB is not signed */
	struct buf big = BUF_INIT, f = BUF_INIT;
	buf_puts(&big, "From: a@example.com\r\n");
	while (big.len <= DKIM_HEADER_MAX)
		buf_puts(&big, "X-Filler: 0123456789012345678901234567890123456789012345678901234567\r\n");
	buf_puts(&big, "\r\nbody\r\n");
	assert_int_equal(sign_msg(big.data, 1000, ed, "s", &f), DKIM_HEADER_TOO_BIG);
	struct dkim_verify *v = verify_msg(big.data, 999);
	assert_int_equal(dkim_verify_message(v), DKIM_HEADER_TOO_BIG);
	assert_int_equal(dkim_verify_count(v), 0);
	dkim_verify_free(v);
	buf_free(&big);
	buf_free(&f);
}

/* ---- broken signatures ---- */

/* A message signed (by rsa2048, selector sel) and then changed: replace
 * the first occurrence of from with to in it, or prepend to when from is
 * NULL. */
struct mutation {
	const char *from, *to;
	enum dkim_status st;
};

static char *mutate(const char *msg, const struct mutation *m)
{
	struct buf b = BUF_INIT;
	const char *at = m->from ? strstr(msg, m->from) : msg;
	assert_non_null(at);
	buf_append(&b, msg, (size_t)(at - msg));
	buf_puts(&b, m->to);
	buf_puts(&b, at + (m->from ? strlen(m->from) : 0));
	return b.data;
}

static void test_broken_messages(void **state)
{
	(void)state;
	static const struct mutation rows[] = {
		{ "dinner", "dinner", DKIM_OK },
		{ "dinner\r\n", "dinner \r\n", DKIM_OK },                 /* relaxed */
		{ "Subject:", "SUBJECT :", DKIM_OK },
		{ "Hi.", "Hi!", DKIM_BODY_HASH },
		{ "game.\r\n\r\n", "game.\r\n\r\nPS\r\n", DKIM_BODY_HASH },
		{ "game.\r\n\r\n", "game.\r\n\r\n\r\n\r\n", DKIM_OK },     /* empty lines at the end */
		{ "dinner", "supper", DKIM_SIGNATURE },
		{ "Joe <joe", "Jo <joe", DKIM_SIGNATURE },
		{ "X-Mailer: not signed", "X-Mailer: changed", DKIM_OK },
		/* over-signing: a second Subject, From or Date breaks it */
		{ "X-Mailer:", "Subject: buy now\r\nX-Mailer:", DKIM_SIGNATURE },
		{ "X-Mailer:", "From: evil@example.net\r\nX-Mailer:", DKIM_SIGNATURE },
		{ "X-Mailer:", "Date: Tue, 2 Jan 2024 00:00:00 +0000\r\nX-Mailer:", DKIM_SIGNATURE },
		{ "X-Mailer:", "Cc: more@example.net\r\nX-Mailer:", DKIM_OK },   /* none was there:
		                                                        not signed, not over-signed */
		/* 5.4.2: the last instance is the signed one; one added above it is not */
		{ "X-Mailer:", "To: more@example.net\r\nX-Mailer:", DKIM_SIGNATURE },
		{ NULL, "To: more@example.net\r\n", DKIM_OK },
		{ "; b=", "; b=AAAA", DKIM_SIGNATURE },
		{ "; b=", "; b=!!", DKIM_SIG_BASE64 },
		{ "bh=", "bh=AAAA", DKIM_BODY_HASH },
		{ "v=1;", "v=1; x=1700000010;", DKIM_SIG_EXPIRED },
		{ "v=1;", "v=1; x=1600000000;", DKIM_SIG_TIMES },           /* before t= */
		{ "v=1;", "v=1; x=1700000060;", DKIM_SIGNATURE },          /* not yet expired */
		{ "t=1700000000", "t=1700009999", DKIM_SIG_FUTURE },
		{ "t=1700000000", "t=1700000100", DKIM_SIGNATURE },        /* within the skew */
		{ "v=1;", "v=1; l=99999;", DKIM_SIG_LENGTH },
		{ "v=1;", "v=1; i=@sub.example.com;", DKIM_SIGNATURE },
		{ "v=1;", "v=1; i=@example.net;", DKIM_SIG_DOMAIN },
	};
	struct buf f = BUF_INIT, signed_msg = BUF_INIT;
	assert_int_equal(sign_msg(msg_plain, 64, rsa2048, "sel", &f), DKIM_OK);
	buf_printf(&signed_msg, "%s%s", buf_cstr(&f), msg_plain);
	char *rec = record(rsa2048, "", "");
	for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
		char *msg = mutate(signed_msg.data, &rows[i]);
		struct dkim_verify *v = verify_msg(msg, 11);
		enum dkim_status st = dkim_verify_check(v, 0, rec, strlen(rec), NOW + 30);
		if (st != rows[i].st)
			fail_msg("row %zu (%s -> %s): %s", i, rows[i].from, rows[i].to,
			         dkim_status_text(st));
		dkim_verify_free(v);
		free(msg);
	}
	free(rec);
	buf_free(&f);
	buf_free(&signed_msg);
}

/* The same signed message against key records that are wrong for it. */
static void test_broken_keys(void **state)
{
	(void)state;
	struct buf f = BUF_INIT, msg = BUF_INIT;
	assert_int_equal(sign_msg(msg_plain, 64, rsa2048, "sel", &f), DKIM_OK);
	buf_printf(&msg, "%s%s", buf_cstr(&f), msg_plain);
	struct {
		char *rec;
		enum dkim_status st;
	} rows[] = {
		{ record(rsa2048, "", ""), DKIM_OK },
		{ record(rsa2048, "", "; t=s"), DKIM_OK },               /* i= is @d= */
		{ record(rsa2048, "", "; t=y"), DKIM_OK },
		{ strdup("v=DKIM1; k=rsa; p="), DKIM_KEY_REVOKED },
		{ record(ed, "", ""), DKIM_KEY_TYPE },
		{ record(rsa2048, "", "; h=sha1"), DKIM_KEY_HASH },
		{ record(rsa2048, "", "; s=tlsrpt"), DKIM_KEY_SERVICE },
		{ record(rsa512, "", ""), DKIM_KEY_SHORT },
		{ record(rsa1024, "", ""), DKIM_SIGNATURE },            /* another key */
		{ strdup("v=DKIM1; p=MIIBIjAN!!"), DKIM_KEY_BASE64 },
		{ strdup("garbage"), DKIM_KEY_SYNTAX },
	};
	for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
		struct dkim_verify *v = verify_msg(msg.data, 4096);
		enum dkim_status st = dkim_verify_check(v, 0, rows[i].rec, strlen(rows[i].rec), NOW);
		if (st != rows[i].st)
			fail_msg("row %zu: %s", i, dkim_status_text(st));
		dkim_verify_free(v);
		free(rows[i].rec);
	}
	/* t=s with an i= in a subdomain (the field changed, so only the key
	 * check matters: it comes first) */
	struct mutation sub = { "v=1;", "v=1; i=@sub.example.com;", DKIM_KEY_STRICT };
	char *m = mutate(msg.data, &sub), *strict = record(rsa2048, "", "; t=s");
	struct dkim_verify *v = verify_msg(m, 4096);
	assert_int_equal(dkim_verify_check(v, 0, strict, strlen(strict), NOW), DKIM_KEY_STRICT);
	dkim_verify_free(v);
	free(m);
	free(strict);
	buf_free(&f);
	buf_free(&msg);
}

/* Signature fields made by hand: what 6.1.1 refuses before any key. */
static void test_broken_fields(void **state)
{
	(void)state;
	static const struct {
		const char *tags;
		enum dkim_status st;
	} rows[] = {
		{ "v=1; a=rsa-sha256; d=example.com; s=s; h=from; bh=AAAA; b=AAAA", DKIM_OK },
		{ "v=1; a=rsa-sha256; d=example.com; s=s; h=from; bh=AAAA", DKIM_SIG_MISSING_TAG },
		{ "v=1; a=rsa-sha256; d=example.com; h=from; bh=AAAA; b=AAAA", DKIM_SIG_MISSING_TAG },
		{ "a=rsa-sha256; d=example.com; s=s; h=from; bh=AAAA; b=AAAA", DKIM_SIG_MISSING_TAG },
		{ "v=2; a=rsa-sha256; d=example.com; s=s; h=from; bh=AAAA; b=AAAA", DKIM_SIG_VERSION },
		{ "v=1; a=rsa-sha1; d=example.com; s=s; h=from; bh=AAAA; b=AAAA", DKIM_SIG_ALGORITHM },
		{ "v=1; a=hmac-md5; d=example.com; s=s; h=from; bh=AAAA; b=AAAA", DKIM_SIG_ALGORITHM },
		{ "v=1; a=RSA-SHA256; d=example.com; s=s; h=from; bh=AAAA; b=AAAA", DKIM_SIG_ALGORITHM },
		{ "v=1; a=rsa-sha256; d=example.com; s=s; h=from; bh=AAA; b=AAAA", DKIM_SIG_BASE64 },
		{ "v=1; a=rsa-sha256; d=example.com; s=s; h=from; bh=AAAA; b=", DKIM_SIG_BASE64 },
		{ "v=1; a=rsa-sha256; d=example.com; s=s; h=from; bh=AAAA; b=A\r\n AAA", DKIM_OK },
		{ "v=1; a=rsa-sha256; c=fancy; d=example.com; s=s; h=from; bh=AAAA; b=AAAA",
		  DKIM_SIG_CANON },
		{ "v=1; a=rsa-sha256; c=relaxed/odd; d=example.com; s=s; h=from; bh=AAAA; b=AAAA",
		  DKIM_SIG_CANON },
		{ "v=1; a=rsa-sha256; c=relaxed; d=example.com; s=s; h=from; bh=AAAA; b=AAAA", DKIM_OK },
		{ "v=1; a=rsa-sha256; q=dns/txt:http; d=example.com; s=s; h=from; bh=AAAA; b=AAAA",
		  DKIM_OK },
		{ "v=1; a=rsa-sha256; q=http; d=example.com; s=s; h=from; bh=AAAA; b=AAAA",
		  DKIM_SIG_QUERY },
		{ "v=1; a=rsa-sha256; d=exa mple.com; s=s; h=from; bh=AAAA; b=AAAA", DKIM_SIG_DOMAIN },
		{ "v=1; a=rsa-sha256; d=[192.0.2.1]; s=s; h=from; bh=AAAA; b=AAAA", DKIM_SIG_DOMAIN },
		{ "v=1; a=rsa-sha256; d=example.com; s=a/b; h=from; bh=AAAA; b=AAAA", DKIM_SIG_DOMAIN },
		{ "v=1; a=rsa-sha256; d=example.com; s=s; i=joe@example.org; h=from; bh=AAAA; b=AAAA",
		  DKIM_SIG_DOMAIN },
		{ "v=1; a=rsa-sha256; d=example.com; s=s; i=joe@badexample.com; h=from; bh=AAAA; "
		  "b=AAAA", DKIM_SIG_DOMAIN },
		{ "v=1; a=rsa-sha256; d=example.com; s=s; i=joe@a.Example.COM; h=from; bh=AAAA; b=AAAA",
		  DKIM_OK },
		{ "v=1; a=rsa-sha256; d=example.com; s=s; h=to:subject; bh=AAAA; b=AAAA", DKIM_SIG_FROM },
		{ "v=1; a=rsa-sha256; d=example.com; s=s; h=From : To; bh=AAAA; b=AAAA", DKIM_OK },
		{ "v=1; a=rsa-sha256; d=example.com; s=s; h=from::to; bh=AAAA; b=AAAA", DKIM_SIG_SYNTAX },
		{ "v=1; a=rsa-sha256; d=example.com; s=s; h=from; l=x; bh=AAAA; b=AAAA",
		  DKIM_SIG_LENGTH },
		{ "v=1; a=rsa-sha256; d=example.com; s=s; h=from; l=12345678901234567890; bh=AAAA; "
		  "b=AAAA", DKIM_SIG_LENGTH },
		{ "v=1; a=rsa-sha256; d=example.com; s=s; h=from; t=x; bh=AAAA; b=AAAA", DKIM_SIG_TIMES },
		{ "v=1; a=rsa-sha256; d=example.com; s=s; h=from; t=1700000000; x=1600000000; bh=AAAA; "
		  "b=AAAA", DKIM_SIG_TIMES },
		{ "v=1; a=rsa-sha256; d=example.com; s=s; h=from; x=-1; bh=AAAA; b=AAAA", DKIM_SIG_TIMES },
		{ "v=1; v=1; a=rsa-sha256; d=example.com; s=s; h=from; bh=AAAA; b=AAAA",
		  DKIM_SIG_SYNTAX },
		{ "v=1; a=rsa-sha256; d=example.com; s=s; h=from; bh=AAAA; b=AAAA;; ", DKIM_SIG_SYNTAX },
		{ "not a tag list", DKIM_SIG_SYNTAX },
	};
	for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
		struct buf f = BUF_INIT;
		buf_printf(&f, "DKIM-Signature: %s\r\n", rows[i].tags);
		struct dkim_sig sig;
		enum dkim_status st = dkim_sig_parse(f.data, f.len, &sig);
		if (st != rows[i].st)
			fail_msg("row %zu '%s': %s", i, rows[i].tags, dkim_status_text(st));
		/* the same through the verifier, with any key: the field decides */
		buf_puts(&f, "From: a@example.com\r\n\r\nbody\r\n");
		struct dkim_verify *v = verify_msg(f.data, 5);
		const struct dkim_sig *got;
		assert_int_equal(dkim_verify_count(v), 1);
		assert_int_equal(dkim_verify_sig(v, 0, &got), st);
		if (st != DKIM_OK)
			assert_int_equal(dkim_verify_check(v, 0, rfc_ed_rec, strlen(rfc_ed_rec), NOW), st);
		dkim_verify_free(v);
		buf_free(&f);
	}
	struct dkim_sig sig;
	assert_int_equal(dkim_sig_parse("no colon", 8, &sig), DKIM_SIG_SYNTAX);
}

/* Every status has a text and an RFC 8601 result. */
static void test_statuses(void **state)
{
	(void)state;
	for (int st = 0; st < DKIM_STATUS_COUNT; st++) {
		assert_non_null(dkim_status_text((enum dkim_status)st));
		const char *r = dkim_status_result((enum dkim_status)st);
		assert_true(!strcmp(r, "pass") == (st == DKIM_OK));
	}
	assert_string_equal(dkim_status_result(DKIM_BODY_HASH), "fail");
	assert_string_equal(dkim_status_result(DKIM_KEY_TEMP), "temperror");
	assert_string_equal(dkim_status_result(DKIM_SIG_SYNTAX), "permerror");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tags),
		cmocka_unit_test(test_tags_copy_and_raw),
		cmocka_unit_test(test_canon_header),
		cmocka_unit_test(test_canon_body),
		cmocka_unit_test(test_from_domain),
		cmocka_unit_test(test_key_records),
		cmocka_unit_test(test_key_pkcs1),
		cmocka_unit_test(test_rfc8463_verifies),
		cmocka_unit_test(test_rfc8463_signs),
		cmocka_unit_test(test_sign_and_verify),
		cmocka_unit_test(test_sign_names),
		cmocka_unit_test(test_sign_refused),
		cmocka_unit_test(test_broken_messages),
		cmocka_unit_test(test_broken_keys),
		cmocka_unit_test(test_broken_fields),
		cmocka_unit_test(test_statuses),
	};
	return cmocka_run_group_tests(tests, keys_setup, keys_teardown);
}
