/* test_addr: src/lib/addr.c, RFC 5321 paths and mailboxes.
 *
 * Table-driven: each row is an input, the flags, the expected error and, on
 * success, the expected fields and what *end points at. Length limits are
 * built at run time and checked at the boundary.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "lib/addr.h"

#define ARRAY_LEN(a) (sizeof (a) / sizeof (a)[0])

struct path_row {
	const char *in;
	bool allow_null;
	bool allow_pm;
	enum addr_err err;
	const char *local;   /* expected on success */
	const char *domain;
	bool null;
	bool literal;
	const char *rest;    /* expected *end on success */
};

/* N: reverse-path flags (null allowed), F: forward-path (postmaster). */
#define N true, false
#define F false, true
#define X false, false

static const struct path_row path_rows[] = {
	/* RFC 5321 4.1.2 forms */
	{ "<a@b.example>", X, ADDR_OK, "a", "b.example", false, false, "" },
	{ "<user@example.com> SIZE=10", X, ADDR_OK, "user", "example.com", false, false, " SIZE=10" },
	{ "<first.last@sub.example.org>", X, ADDR_OK, "first.last", "sub.example.org", false, false, "" },
	{ "<!#$%&'*+-/=?^_`{|}~@x.y>", X, ADDR_OK, "!#$%&'*+-/=?^_`{|}~", "x.y", false, false, "" },
	{ "<a@localhost>", X, ADDR_OK, "a", "localhost", false, false, "" },
	{ "<a@a-b.c0.123>", X, ADDR_OK, "a", "a-b.c0.123", false, false, "" },
	{ "  <a@b.c>", X, ADDR_OK, "a", "b.c", false, false, "" },
	/* uppercase domain lower-cased, local part kept as sent */
	{ "<User@Domain.COM>", X, ADDR_OK, "User", "domain.com", false, false, "" },
	/* lenient forms of the Exchange guides */
	{ "Admin@test.com", X, ADDR_OK, "Admin", "test.com", false, false, "" },
	{ "User@Domain.Com NOTIFY=success,failure", X, ADDR_OK, "User", "domain.com", false, false, " NOTIFY=success,failure" },
	{ "   a@b.c", X, ADDR_OK, "a", "b.c", false, false, "" },
	{ "\"a b\"@x.y z", X, ADDR_OK, "\"a b\"", "x.y", false, false, " z" },
	/* null path */
	{ "<>", N, ADDR_OK, "", "", true, false, "" },
	{ "<> BODY=8BITMIME", N, ADDR_OK, "", "", true, false, " BODY=8BITMIME" },
	{ "<>", F, ADDR_ESYNTAX, NULL, NULL, false, false, NULL },
	{ "<>", X, ADDR_ESYNTAX, NULL, NULL, false, false, NULL },
	/* postmaster, RFC 5321 4.5.1 */
	{ "<postmaster>", F, ADDR_OK, "postmaster", "", false, false, "" },
	{ "<PostMaster>", F, ADDR_OK, "postmaster", "", false, false, "" },
	{ "postmaster", F, ADDR_OK, "postmaster", "", false, false, "" },
	{ "POSTMASTER NOTIFY=NEVER", F, ADDR_OK, "postmaster", "", false, false, " NOTIFY=NEVER" },
	{ "<postmaster>", N, ADDR_ENODOMAIN, NULL, NULL, false, false, NULL },
	{ "postmaster", X, ADDR_ENODOMAIN, NULL, NULL, false, false, NULL },
	{ "<postmaster@Example.Org>", X, ADDR_OK, "postmaster", "example.org", false, false, "" },
	{ "<postmasters>", F, ADDR_ENODOMAIN, NULL, NULL, false, false, NULL },
	{ "<\"postmaster\">", F, ADDR_ENODOMAIN, NULL, NULL, false, false, NULL },
	/* source routes are accepted and dropped (RFC 5321 C) */
	{ "<@a.example:u@c.example>", X, ADDR_OK, "u", "c.example", false, false, "" },
	{ "<@a,@b.c,@d:u@e.f> X", X, ADDR_OK, "u", "e.f", false, false, " X" },
	{ "<@a,@b:postmaster>", F, ADDR_OK, "postmaster", "", false, false, "" },
	{ "<@a:>", X, ADDR_ELOCAL, NULL, NULL, false, false, NULL },
	{ "<@a u@c>", X, ADDR_ESYNTAX, NULL, NULL, false, false, NULL },
	{ "<@a,b:u@c>", X, ADDR_ESYNTAX, NULL, NULL, false, false, NULL },
	{ "<@-a:u@c>", X, ADDR_ESYNTAX, NULL, NULL, false, false, NULL },
	{ "@a:u@c", X, ADDR_ELOCAL, NULL, NULL, false, false, NULL },
	/* quoted local parts, RFC 5321 4.1.2 Quoted-string */
	{ "<\"a b\"@x.y>", X, ADDR_OK, "\"a b\"", "x.y", false, false, "" },
	{ "<\"a\\\"b\"@x.y>", X, ADDR_OK, "\"a\\\"b\"", "x.y", false, false, "" },
	{ "<\"a>b\"@x.y>", X, ADDR_OK, "\"a>b\"", "x.y", false, false, "" },
	{ "<\"a\\\\b\"@x.y>", X, ADDR_OK, "\"a\\\\b\"", "x.y", false, false, "" },
	{ "<\"\"@x.y>", X, ADDR_OK, "\"\"", "x.y", false, false, "" },
	{ "<\"a@b\"@x.y>", X, ADDR_OK, "\"a@b\"", "x.y", false, false, "" },
	{ "<\"ab@x.y>", X, ADDR_ELOCAL, NULL, NULL, false, false, NULL },
	{ "<\"a\tb\"@x.y>", X, ADDR_ELOCAL, NULL, NULL, false, false, NULL },
	{ "<\"a\\\tb\"@x.y>", X, ADDR_ELOCAL, NULL, NULL, false, false, NULL },
	{ "<\"a\"b@x.y>", X, ADDR_ELOCAL, NULL, NULL, false, false, NULL },
	{ "<a\"b\"@x.y>", X, ADDR_ELOCAL, NULL, NULL, false, false, NULL },
	/* Dot-string errors */
	{ "<.a@b.c>", X, ADDR_ELOCAL, NULL, NULL, false, false, NULL },
	{ "<a.@b.c>", X, ADDR_ELOCAL, NULL, NULL, false, false, NULL },
	{ "<a..b@b.c>", X, ADDR_ELOCAL, NULL, NULL, false, false, NULL },
	{ "<@b.c>", X, ADDR_ESYNTAX, NULL, NULL, false, false, NULL },
	{ "<a b@c.d>", X, ADDR_ELOCAL, NULL, NULL, false, false, NULL },
	{ "<a(b)@c.d>", X, ADDR_ELOCAL, NULL, NULL, false, false, NULL },
	{ "<a,b@c.d>", X, ADDR_ELOCAL, NULL, NULL, false, false, NULL },
	/* RFC 6531 3.3: UTF-8 in the local part (the SMTPUTF8 check is the
	 * session's) */
	{ "<j\xc3\xb6rg@c.d>", X, ADDR_OK, "j\xc3\xb6rg", "c.d", false, false, "" },
	{ "<\"j\xc3\xb6rg\"@c.d>", X, ADDR_OK, "\"j\xc3\xb6rg\"", "c.d", false, false, "" },
	{ "<j\xc3\xb6rg.@c.d>", X, ADDR_ELOCAL, NULL, NULL, false, false, NULL },
	{ "@b.c", X, ADDR_ELOCAL, NULL, NULL, false, false, NULL },
	/* domain errors */
	{ "<a@b.c.>", X, ADDR_EDOMAIN, NULL, NULL, false, false, NULL },
	{ "a@b.c.", X, ADDR_EDOMAIN, NULL, NULL, false, false, NULL },
	{ "<a@>", X, ADDR_EDOMAIN, NULL, NULL, false, false, NULL },
	{ "<a@.b>", X, ADDR_EDOMAIN, NULL, NULL, false, false, NULL },
	{ "<a@b..c>", X, ADDR_EDOMAIN, NULL, NULL, false, false, NULL },
	{ "<a@-b.c>", X, ADDR_EDOMAIN, NULL, NULL, false, false, NULL },
	{ "<a@b-.c>", X, ADDR_EDOMAIN, NULL, NULL, false, false, NULL },
	{ "<a@b_c.d>", X, ADDR_EDOMAIN, NULL, NULL, false, false, NULL },
	{ "<a@b@c>", X, ADDR_EDOMAIN, NULL, NULL, false, false, NULL },
	{ "<a@b c>", X, ADDR_EDOMAIN, NULL, NULL, false, false, NULL },
	/* a U-label (RFC 6531 3.3, RFC 5890): kept, ASCII lower-cased */
	{ "<a@B\xc3\xa4.DE>", X, ADDR_OK, "a", "b\xc3\xa4.de", false, false, "" },
	{ "<a@b\xc3\xa4-.de>", X, ADDR_EDOMAIN, NULL, NULL, false, false, NULL },
	{ "a@b.c>", X, ADDR_EDOMAIN, NULL, NULL, false, false, NULL },
	/* address literals, RFC 5321 4.1.3 */
	{ "<a@[127.0.0.1]>", X, ADDR_OK, "a", "[127.0.0.1]", false, true, "" },
	{ "<a@[IPv6:::1]>", X, ADDR_OK, "a", "[IPv6:::1]", false, true, "" },
	{ "<a@[ipv6:2001:DB8::1]>", X, ADDR_OK, "a", "[ipv6:2001:DB8::1]", false, true, "" },
	{ "a@[192.0.2.1] SIZE=1", X, ADDR_OK, "a", "[192.0.2.1]", false, true, " SIZE=1" },
	{ "<a@[1.2.3]>", X, ADDR_EDOMAIN, NULL, NULL, false, false, NULL },
	{ "<a@[1.2.3.256]>", X, ADDR_EDOMAIN, NULL, NULL, false, false, NULL },
	{ "<a@[::1]>", X, ADDR_EDOMAIN, NULL, NULL, false, false, NULL },
	{ "<a@[IPv6:1.2.3.4]>", X, ADDR_EDOMAIN, NULL, NULL, false, false, NULL },
	{ "<a@[IPv6:::g]>", X, ADDR_EDOMAIN, NULL, NULL, false, false, NULL },
	{ "<a@[x-tag:foo]>", X, ADDR_EDOMAIN, NULL, NULL, false, false, NULL },
	{ "<a@[127.0.0.1>", X, ADDR_EDOMAIN, NULL, NULL, false, false, NULL },
	{ "<a@[]>", X, ADDR_EDOMAIN, NULL, NULL, false, false, NULL },
	{ "<a@[127.0.0.1].com>", X, ADDR_EDOMAIN, NULL, NULL, false, false, NULL },
	/* no domain */
	{ "<admin>", X, ADDR_ENODOMAIN, NULL, NULL, false, false, NULL },
	{ "admin", F, ADDR_ENODOMAIN, NULL, NULL, false, false, NULL },
	{ "<\"a b\">", F, ADDR_ENODOMAIN, NULL, NULL, false, false, NULL },
	/* not a path */
	{ "", N, ADDR_ESYNTAX, NULL, NULL, false, false, NULL },
	{ "   ", N, ADDR_ESYNTAX, NULL, NULL, false, false, NULL },
	{ "<", N, ADDR_ESYNTAX, NULL, NULL, false, false, NULL },
	{ "<a@b.c", X, ADDR_ESYNTAX, NULL, NULL, false, false, NULL },
	{ "<<a@b.c>>", X, ADDR_ELOCAL, NULL, NULL, false, false, NULL },
};

static void check_path_row(size_t i, const struct path_row *r)
{
	struct addr a;
	const char *end = NULL;
	enum addr_err err;

	memset(&a, 0x55, sizeof a);
	err = addr_parse_path(r->in, &end, &a, r->allow_null, r->allow_pm);
	if (err != r->err)
		fail_msg("row %zu \"%s\": err %d, want %d", i, r->in, err, r->err);
	if (err != ADDR_OK)
		return;
	if (strcmp(a.local, r->local) != 0 || strcmp(a.domain, r->domain) != 0)
		fail_msg("row %zu \"%s\": got \"%s\" @ \"%s\"", i, r->in,
		         a.local, a.domain);
	if (a.null != r->null || a.literal != r->literal)
		fail_msg("row %zu \"%s\": null %d literal %d", i, r->in,
		         a.null, a.literal);
	if (end == NULL || strcmp(end, r->rest) != 0)
		fail_msg("row %zu \"%s\": rest \"%s\", want \"%s\"", i, r->in,
		         end ? end : "(null)", r->rest);
}

static void test_path_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(path_rows); i++)
		check_path_row(i, &path_rows[i]);
}

struct mailbox_row {
	const char *in;
	enum addr_err err;
	const char *formatted;   /* addr_format of the result on success */
};

static const struct mailbox_row mailbox_rows[] = {
	{ "a@b.c", ADDR_OK, "a@b.c" },
	{ "Admin@Test.COM", ADDR_OK, "Admin@test.com" },
	{ "\"a b\"@x", ADDR_OK, "\"a b\"@x" },
	{ "\"a\\\"b\"@x", ADDR_OK, "\"a\\\"b\"@x" },
	{ "a@[127.0.0.1]", ADDR_OK, "a@[127.0.0.1]" },
	{ "postmaster", ADDR_ENODOMAIN, NULL },
	{ "a", ADDR_ENODOMAIN, NULL },
	{ "", ADDR_ESYNTAX, NULL },
	{ " a@b.c", ADDR_ELOCAL, NULL },
	{ "a@b.c ", ADDR_EDOMAIN, NULL },
	{ "<a@b.c>", ADDR_ELOCAL, NULL },
	{ "a@b.c.", ADDR_EDOMAIN, NULL },
	{ "a@b.c x", ADDR_EDOMAIN, NULL },
	{ "a..b@c", ADDR_ELOCAL, NULL },
	{ "@a:b@c", ADDR_ELOCAL, NULL },
};

static void test_mailbox_table(void **state)
{
	char out[ADDR_PATH_MAX];
	struct addr a;
	enum addr_err err;

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(mailbox_rows); i++) {
		const struct mailbox_row *r = &mailbox_rows[i];
		err = addr_parse_mailbox(r->in, &a);
		if (err != r->err)
			fail_msg("row %zu \"%s\": err %d, want %d", i, r->in, err, r->err);
		if (err != ADDR_OK)
			continue;
		assert_true(addr_format(&a, out, sizeof out));
		if (strcmp(out, r->formatted) != 0)
			fail_msg("row %zu \"%s\": formatted \"%s\"", i, r->in, out);
	}
}

struct domain_row {
	const char *in;
	bool valid;
};

static const struct domain_row domain_rows[] = {
	{ "example.com", true }, { "EXAMPLE.Com", true }, { "a", true },
	{ "a-b.c", true }, { "1.2.3.4", true }, { "xn--bcher-kva.example", true },
	{ "", false }, { ".", false }, { "a.", false }, { ".a", false },
	{ "a..b", false }, { "-a", false }, { "a-", false }, { "a_b", false },
	{ "a b", false }, { "[127.0.0.1]", false }, { "b\xc3\xa4r.de", false },
	{ "a.b-.c", false },
};

static void test_domain_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(domain_rows); i++)
		if (addr_domain_valid(domain_rows[i].in) != domain_rows[i].valid)
			fail_msg("row %zu \"%s\": want %d", i, domain_rows[i].in,
			         domain_rows[i].valid);
}

/* Fill buf with n copies of c, NUL-terminated. */
static char *repeat(char *buf, char c, size_t n)
{
	memset(buf, c, n);
	buf[n] = '\0';
	return buf;
}

/* RFC 5321 4.5.3.1.1: 64 octets of local part, not 65. */
static void test_local_length(void **state)
{
	char local[80], path[128];
	struct addr a;
	const char *end;

	(void)state;
	repeat(local, 'x', 64);
	assert_true(snprintf(path, sizeof path, "<%s@b.c>", local) < (int)sizeof path);
	assert_int_equal(addr_parse_path(path, &end, &a, false, false), ADDR_OK);
	assert_string_equal(a.local, local);
	repeat(local, 'x', 65);
	assert_true(snprintf(path, sizeof path, "<%s@b.c>", local) < (int)sizeof path);
	assert_int_equal(addr_parse_path(path, &end, &a, false, false), ADDR_ETOOLONG);
	assert_true(snprintf(path, sizeof path, "%s@b.c", local) < (int)sizeof path);
	assert_int_equal(addr_parse_path(path, &end, &a, false, false), ADDR_ETOOLONG);
	assert_int_equal(addr_parse_mailbox(path, &a), ADDR_ETOOLONG);
	/* quoted: the quotes count */
	local[0] = '"';
	local[63] = '"';
	local[64] = '\0';
	assert_true(snprintf(path, sizeof path, "<%s@b.c>", local) < (int)sizeof path);
	assert_int_equal(addr_parse_path(path, &end, &a, false, false), ADDR_OK);
	local[63] = 'x';
	local[64] = '"';
	local[65] = '\0';
	assert_true(snprintf(path, sizeof path, "<%s@b.c>", local) < (int)sizeof path);
	assert_int_equal(addr_parse_path(path, &end, &a, false, false), ADDR_ETOOLONG);
}

/* RFC 1035 2.3.4: a label is at most 63 octets. */
static void test_label_length(void **state)
{
	char label[80], path[128];
	struct addr a;
	const char *end;

	(void)state;
	repeat(label, 'l', 63);
	assert_true(addr_domain_valid(label));
	assert_true(snprintf(path, sizeof path, "<a@%s.com>", label) < (int)sizeof path);
	assert_int_equal(addr_parse_path(path, &end, &a, false, false), ADDR_OK);
	repeat(label, 'l', 64);
	assert_false(addr_domain_valid(label));
	assert_true(snprintf(path, sizeof path, "<a@%s.com>", label) < (int)sizeof path);
	assert_int_equal(addr_parse_path(path, &end, &a, false, false), ADDR_EDOMAIN);
}

/* Build a valid domain of exactly n octets from 50-octet labels. */
static char *make_domain(char *buf, size_t n)
{
	for (size_t i = 0; i < n; i++)
		buf[i] = (i % 51 == 50) ? '.' : 'd';
	buf[n - 1] = 'z';
	buf[n] = '\0';
	return buf;
}

/* RFC 5321 4.5.3.1.2: 255 octets of domain, not 256. */
static void test_domain_length(void **state)
{
	char dom[300];

	(void)state;
	assert_true(addr_domain_valid(make_domain(dom, 255)));
	assert_false(addr_domain_valid(make_domain(dom, 256)));
}

/* RFC 5321 4.5.3.1.3: the path, brackets included, is at most 256 octets.
 * A 255-octet domain can therefore never appear in a path. */
static void test_path_length(void **state)
{
	char dom[300], path[400];
	struct addr a;
	const char *end;
	size_t dlen;

	(void)state;
	/* "<" + "a@" + domain + ">" = 256 -> domain of 252 */
	dlen = 252;
	make_domain(dom, dlen);
	assert_true(snprintf(path, sizeof path, "<a@%s>", dom) < (int)sizeof path);
	assert_int_equal(strlen(path), 256);
	assert_int_equal(addr_parse_path(path, &end, &a, false, false), ADDR_OK);
	assert_int_equal(strlen(a.domain), dlen);
	assert_ptr_equal(end, path + 256);
	/* the bare form counts as if bracketed */
	path[255] = '\0';
	assert_int_equal(addr_parse_path(path + 1, &end, &a, false, false), ADDR_OK);
	assert_int_equal(addr_parse_mailbox(path + 1, &a), ADDR_OK);
	/* 257 */
	make_domain(dom, dlen + 1);
	assert_true(snprintf(path, sizeof path, "<a@%s>", dom) < (int)sizeof path);
	assert_int_equal(strlen(path), 257);
	assert_int_equal(addr_parse_path(path, &end, &a, false, false), ADDR_ETOOLONG);
	path[256] = '\0';
	assert_int_equal(addr_parse_path(path + 1, &end, &a, false, false), ADDR_ETOOLONG);
	assert_int_equal(addr_parse_mailbox(path + 1, &a), ADDR_ETOOLONG);
	/* a 255-octet domain fits in struct addr but not in a path */
	make_domain(dom, 255);
	assert_true(snprintf(path, sizeof path, "<a@%s>", dom) < (int)sizeof path);
	assert_int_equal(addr_parse_path(path, &end, &a, false, false), ADDR_ETOOLONG);
}

/* On error the struct is zeroed and *end is left at the input. */
static void test_error_leaves_clean(void **state)
{
	const char *in = "<a@b..c> SIZE=1";
	struct addr a;
	const char *end = NULL;

	(void)state;
	memset(&a, 0x55, sizeof a);
	assert_int_equal(addr_parse_path(in, &end, &a, false, false), ADDR_EDOMAIN);
	assert_ptr_equal(end, in);
	assert_string_equal(a.local, "");
	assert_string_equal(a.domain, "");
	assert_false(a.null);
	/* end may be NULL */
	assert_int_equal(addr_parse_path("<a@b.c>", NULL, &a, false, false), ADDR_OK);
	assert_string_equal(a.domain, "b.c");
}

static void test_format(void **state)
{
	struct addr a;
	char out[16];
	const char *end;

	(void)state;
	assert_int_equal(addr_parse_path("<>", &end, &a, true, false), ADDR_OK);
	memset(out, 'x', sizeof out);
	assert_true(addr_format(&a, out, sizeof out));
	assert_string_equal(out, "");
	assert_int_equal(addr_parse_path("<Postmaster>", &end, &a, false, true), ADDR_OK);
	assert_true(addr_format(&a, out, sizeof out));
	assert_string_equal(out, "postmaster");
	assert_int_equal(addr_parse_path("<abc@D.E>", &end, &a, false, false), ADDR_OK);
	assert_true(addr_format(&a, out, 8));
	assert_string_equal(out, "abc@d.e");
	assert_false(addr_format(&a, out, 7));
	assert_false(addr_format(&a, out, 0));
	assert_true(addr_format(&a, out, sizeof out));
	assert_string_equal(out, "abc@d.e");
}

static void test_strerror(void **state)
{
	(void)state;
	for (int e = ADDR_OK; e <= ADDR_EUTF8; e++) {
		const char *s = addr_strerror((enum addr_err)e);
		assert_non_null(s);
		assert_true(strlen(s) > 0);
		for (int f = ADDR_OK; f < e; f++)
			assert_string_not_equal(s, addr_strerror((enum addr_err)f));
	}
}

/* RFC 3629 well-formedness, RFC 6531 3.3: what is UTF-8 in an address. */
static const struct { const char *in; bool ok; } utf8_rows[] = {
	{ "", true }, { "plain", true },
	{ "\xc3\xa9", true },                   /* U+00E9 */
	{ "\xce\xb4\xce\xbf\xce\xba", true },     /* Greek */
	{ "\xe2\x82\xac", true },               /* U+20AC */
	{ "\xef\xbf\xbd", true },               /* U+FFFD */
	{ "\xf0\x9f\x98\x80", true },           /* U+1F600 */
	{ "\xf4\x8f\xbf\xbf", true },           /* U+10FFFF */
	{ "\xc2\xa0", true },                   /* U+00A0, past the C1 block */
	{ "\x80", false },                      /* a lone continuation */
	{ "\xbf", false },
	{ "\xc3", false },                      /* truncated */
	{ "\xe2\x82", false },
	{ "\xf0\x9f\x98", false },
	{ "\xc3\x28", false },                  /* a bad continuation */
	{ "\xc0\xaf", false },                  /* overlong '/' */
	{ "\xc1\xbf", false },
	{ "\xe0\x80\xaf", false },              /* overlong, 3 octets */
	{ "\xe0\x9f\xbf", false },
	{ "\xf0\x80\x80\xaf", false },          /* overlong, 4 octets */
	{ "\xf0\x8f\xbf\xbf", false },
	{ "\xed\xa0\x80", false },              /* U+D800, a surrogate */
	{ "\xed\xbf\xbf", false },              /* U+DFFF */
	{ "\xf4\x90\x80\x80", false },          /* U+110000 */
	{ "\xf5\x80\x80\x80", false },
	{ "\xff", false }, { "\xfe", false },
	{ "\xc2\x80", false },                  /* U+0080, C1 control */
	{ "\xc2\x9f", false },                  /* U+009F, C1 control */
	{ "a\xc3\xa9" "b\xc3", false },
};

static void test_utf8_valid(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(utf8_rows); i++)
		if (addr_utf8_valid(utf8_rows[i].in, strlen(utf8_rows[i].in)) != utf8_rows[i].ok)
			fail_msg("utf8 row %zu: want %d", i, utf8_rows[i].ok);
}

/* The parser flags UTF-8 addresses and refuses malformed ones (ADDR_EUTF8)
 * in the local part, a quoted local part and the domain, in every form. */
static void test_utf8_addresses(void **state)
{
	static const char *const bad[] = {
		"<a\xc0\xaf\x62@c.d>", "<\"a\xed\xa0\x80\"@c.d>", "<a@b\xc3.de>", "<a\x80@c.d>",
		"a\xc2\x85@c.d", "<\xf4\x90\x80\x80@c.d>", "<a@\xe0\x80\xaf.de>",
	};
	struct addr a;
	const char *end;
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		if (addr_parse_path(bad[i], &end, &a, false, false) != ADDR_EUTF8)
			fail_msg("bad %zu not ADDR_EUTF8", i);
		assert_false(a.utf8);
	}
	assert_int_equal(addr_parse_path("<\xce\xb4\xce\xbf\xce\xba\xce\xb9\xce\xbc\xce\xae@example.com> SMTPUTF8",
	                                 &end, &a, false, false), ADDR_OK);
	assert_true(a.utf8);
	assert_string_equal(end, " SMTPUTF8");
	assert_string_equal(a.local, "\xce\xb4\xce\xbf\xce\xba\xce\xb9\xce\xbc\xce\xae");
	assert_int_equal(addr_parse_path("<user@b\xc3\xbc" "cher.test>", &end, &a, false, false), ADDR_OK);
	assert_true(a.utf8);
	assert_int_equal(addr_parse_path("<user@example.com>", &end, &a, false, false), ADDR_OK);
	assert_false(a.utf8);
	assert_int_equal(addr_parse_mailbox("\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.test", &a), ADDR_OK);
	assert_true(a.utf8);
	assert_int_equal(addr_parse_mailbox("a\xff@b.c", &a), ADDR_EUTF8);
	/* a configured domain stays ASCII (an IDN goes through idna_alabel) */
	assert_false(addr_domain_valid("b\xc3\xbc" "cher.test"));
	/* 64 octets of UTF-8 fit a local part; 66 do not (octets, not characters) */
	char big[128] = "<";
	for (int i = 0; i < 32; i++)
		strcat(big, "\xc3\xa9");
	strcat(big, "@c.d>");
	assert_int_equal(addr_parse_path(big, &end, &a, false, false), ADDR_OK);
	big[strlen(big) - 5] = '\0';
	strcat(big, "\xc3\xa9@c.d>");
	assert_int_equal(addr_parse_path(big, &end, &a, false, false), ADDR_ETOOLONG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_path_table),
		cmocka_unit_test(test_mailbox_table),
		cmocka_unit_test(test_domain_table),
		cmocka_unit_test(test_local_length),
		cmocka_unit_test(test_label_length),
		cmocka_unit_test(test_domain_length),
		cmocka_unit_test(test_path_length),
		cmocka_unit_test(test_error_leaves_clean),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_strerror),
		cmocka_unit_test(test_utf8_valid),
		cmocka_unit_test(test_utf8_addresses),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
