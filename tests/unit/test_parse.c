/* test_parse: src/smtpd/parse.c, command lines, "FROM:"/"TO:", ESMTP
 * parameters (RFC 5321 4.1.2, RFC 1870, RFC 6152, RFC 3461) and xtext.
 *
 * Table-driven, plus the whole MAIL/RCPT lines the Exchange guides type,
 * run through parse_command, parse_keyword_colon, addr_parse_path and the
 * parameter parsers as the session does.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "smtpd/parse.h"

#define ARRAY_LEN(a) (sizeof (a) / sizeof (a)[0])

/* ---- parse_command ---- */

struct cmd_row {
	const char *line;
	bool ok;
	const char *verb;
	const char *args;
};

static const struct cmd_row cmd_rows[] = {
	{ "QUIT", true, "QUIT", "" },
	{ "quit", true, "QUIT", "" },
	{ "EhLo client.example", true, "EHLO", "client.example" },
	{ "MAIL FROM:<a@b>", true, "MAIL", "FROM:<a@b>" },
	{ "RCPT   TO:<a@b>  ", true, "RCPT", "TO:<a@b>  " },
	{ "  NOOP", true, "NOOP", "" },
	{ "NOOP   ", true, "NOOP", "" },
	{ "", true, "", "" },
	{ "     ", true, "", "" },
	{ "ABCDEFGHIJKLMNO", true, "ABCDEFGHIJKLMNO", "" },
	{ "ABCDEFGHIJKLMNOP", false, "", "" },
	{ "ABCDEFGHIJKLMNOPQRSTUVWXYZ x", false, "", "" },
	{ "MAIL1 FROM:<>", false, "", "" },
	{ "MAIL:FROM", false, "", "" },
	{ "\x01", false, "", "" },
	{ "HELO\tx", false, "", "" },
	{ "H\xc3\x89LO x", false, "", "" },
	{ "1234", false, "", "" },
};

static void test_command_table(void **state)
{
	struct parse_cmd c;

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(cmd_rows); i++) {
		const struct cmd_row *r = &cmd_rows[i];
		memset(&c, 0x55, sizeof c);
		bool ok = parse_command(r->line, &c);
		if (ok != r->ok || strcmp(c.verb, r->verb) != 0 ||
		    c.args == NULL || strcmp(c.args, r->args) != 0)
			fail_msg("row %zu \"%s\": ok %d verb \"%s\" args \"%s\"", i,
			         r->line, ok, c.verb, c.args ? c.args : "(null)");
	}
}

/* args points into the line, not into a copy. */
static void test_command_args_in_line(void **state)
{
	const char *line = "RCPT TO:<x@y>";
	struct parse_cmd c;

	(void)state;
	assert_true(parse_command(line, &c));
	assert_ptr_equal(c.args, line + 5);
}

/* ---- parse_keyword_colon ---- */

struct kw_row {
	const char *args;
	const char *kw;
	const char *rest;   /* NULL: expect NULL */
};

static const struct kw_row kw_rows[] = {
	{ "FROM:<a@b>", "FROM", "<a@b>" },
	{ "from: a@b", "FROM", "a@b" },
	{ "From :<a@b>", "FROM", "<a@b>" },
	{ "FROM   :   <a@b> SIZE=1", "FROM", "<a@b> SIZE=1" },
	{ "TO: User@Domain.Com", "TO", "User@Domain.Com" },
	{ "tO:<>", "TO", "<>" },
	{ "FROM:", "FROM", "" },
	{ "FROM <a@b>", "FROM", NULL },
	{ "FROM", "FROM", NULL },
	{ "FROMAGE:<x>", "FROM", NULL },
	{ "FRO:<x>", "FROM", NULL },
	{ "TO:<x>", "FROM", NULL },
	{ " FROM:<x>", "FROM", NULL },
	{ "", "TO", NULL },
};

static void test_keyword_colon_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(kw_rows); i++) {
		const struct kw_row *r = &kw_rows[i];
		const char *got = parse_keyword_colon(r->args, r->kw);
		if ((got == NULL) != (r->rest == NULL) ||
		    (got != NULL && strcmp(got, r->rest) != 0))
			fail_msg("row %zu \"%s\": got \"%s\"", i, r->args,
			         got ? got : "(null)");
	}
}

/* ---- parse_mail_params ---- */

struct mail_row {
	const char *in;
	enum parse_perr err;
	int bad;            /* offset of *bad in `in`, -1 for NULL */
	bool has_size;
	uint64_t size;
	enum smtp_body body;
	enum smtp_ret ret;
	const char *envid;
};

static const struct mail_row mail_rows[] = {
	{ "", PARSE_OK, -1, false, 0, BODY_UNSET, RET_UNSET, "" },
	{ "   ", PARSE_OK, -1, false, 0, BODY_UNSET, RET_UNSET, "" },
	{ " SIZE=1000", PARSE_OK, -1, true, 1000, BODY_UNSET, RET_UNSET, "" },
	{ "size=0", PARSE_OK, -1, true, 0, BODY_UNSET, RET_UNSET, "" },
	{ "SIZE=18446744073709551615", PARSE_OK, -1, true, UINT64_MAX, BODY_UNSET, RET_UNSET, "" },
	{ "SIZE=00000000000000000001", PARSE_OK, -1, true, 1, BODY_UNSET, RET_UNSET, "" },
	{ "SIZE=18446744073709551616", PARSE_EVALUE, 0, false, 0, BODY_UNSET, RET_UNSET, "" },
	{ "SIZE=000000000000000000001", PARSE_EVALUE, 0, false, 0, BODY_UNSET, RET_UNSET, "" },
	{ "SIZE=99999999999999999999", PARSE_EVALUE, 0, false, 0, BODY_UNSET, RET_UNSET, "" },
	{ "SIZE=-1", PARSE_EVALUE, 0, false, 0, BODY_UNSET, RET_UNSET, "" },
	{ "SIZE=1k", PARSE_EVALUE, 0, false, 0, BODY_UNSET, RET_UNSET, "" },
	{ "SIZE=", PARSE_EVALUE, 0, false, 0, BODY_UNSET, RET_UNSET, "" },
	{ "SIZE", PARSE_EVALUE, 0, false, 0, BODY_UNSET, RET_UNSET, "" },
	{ "BODY=8BITMIME", PARSE_OK, -1, false, 0, BODY_8BITMIME, RET_UNSET, "" },
	{ "body=8bitmime", PARSE_OK, -1, false, 0, BODY_8BITMIME, RET_UNSET, "" },
	{ "BODY=7bit", PARSE_OK, -1, false, 0, BODY_7BIT, RET_UNSET, "" },
	{ "BODY=BINARYMIME", PARSE_OK, -1, false, 0, BODY_BINARYMIME, RET_UNSET, "" },   /* RFC 3030 3 */
	{ "BODY=8BIT", PARSE_EVALUE, 0, false, 0, BODY_UNSET, RET_UNSET, "" },
	{ "RET=FULL", PARSE_OK, -1, false, 0, BODY_UNSET, RET_FULL, "" },
	{ "ret=hdrs", PARSE_OK, -1, false, 0, BODY_UNSET, RET_HDRS, "" },
	{ "RET=NONE", PARSE_EVALUE, 0, false, 0, BODY_UNSET, RET_UNSET, "" },
	{ "ENVID=QQ314159", PARSE_OK, -1, false, 0, BODY_UNSET, RET_UNSET, "QQ314159" },
	{ "ENVID=a+2Bb+3Dc", PARSE_OK, -1, false, 0, BODY_UNSET, RET_UNSET, "a+b=c" },
	{ "ENVID=a+2bb", PARSE_OK, -1, false, 0, BODY_UNSET, RET_UNSET, "a+b" },
	{ "ENVID=a+2", PARSE_EVALUE, 0, false, 0, BODY_UNSET, RET_UNSET, "" },
	{ "ENVID=a+ZZ", PARSE_EVALUE, 0, false, 0, BODY_UNSET, RET_UNSET, "" },
	{ "ENVID=a+01", PARSE_EVALUE, 0, false, 0, BODY_UNSET, RET_UNSET, "" },
	{ "ENVID=", PARSE_EVALUE, 0, false, 0, BODY_UNSET, RET_UNSET, "" },
	{ "SIZE=12 BODY=8BITMIME RET=HDRS ENVID=x", PARSE_OK, -1, true, 12, BODY_8BITMIME, RET_HDRS, "x" },
	{ "  SIZE=12    BODY=7BIT  ", PARSE_OK, -1, true, 12, BODY_7BIT, RET_UNSET, "" },
	/* errors and *bad */
	{ "SIZE=1 FOO=bar", PARSE_EUNKNOWN, 7, false, 0, BODY_UNSET, RET_UNSET, "" },
	/* RFC 6531 3.4: SMTPUTF8 takes no value */
	{ "SMTPUTF8", PARSE_OK, -1, false, 0, BODY_UNSET, RET_UNSET, "" },
	{ "SIZE=3 smtputf8", PARSE_OK, -1, true, 3, BODY_UNSET, RET_UNSET, "" },
	{ "SMTPUTF8=yes", PARSE_EVALUE, 0, false, 0, BODY_UNSET, RET_UNSET, "" },
	{ "SMTPUTF8=", PARSE_EVALUE, 0, false, 0, BODY_UNSET, RET_UNSET, "" },
	{ "SMTPUTF8 SMTPUTF8", PARSE_EDUP, 9, false, 0, BODY_UNSET, RET_UNSET, "" },
	{ "SMTPUTF", PARSE_EUNKNOWN, 0, false, 0, BODY_UNSET, RET_UNSET, "" },
	/* RFC 8689 4.1: REQUIRETLS takes no value either */
	{ "REQUIRETLS", PARSE_OK, -1, false, 0, BODY_UNSET, RET_UNSET, "" },
	{ "SIZE=3 requiretls SMTPUTF8", PARSE_OK, -1, true, 3, BODY_UNSET, RET_UNSET, "" },
	{ "REQUIRETLS=yes", PARSE_EVALUE, 0, false, 0, BODY_UNSET, RET_UNSET, "" },
	{ "REQUIRETLS=", PARSE_EVALUE, 0, false, 0, BODY_UNSET, RET_UNSET, "" },
	{ "REQUIRETLS REQUIRETLS", PARSE_EDUP, 11, false, 0, BODY_UNSET, RET_UNSET, "" },
	{ "REQUIRETLSX", PARSE_EUNKNOWN, 0, false, 0, BODY_UNSET, RET_UNSET, "" },
	{ " AUTH=<>", PARSE_EUNKNOWN, 1, false, 0, BODY_UNSET, RET_UNSET, "" },
	{ "X-FOO-1=v", PARSE_EUNKNOWN, 0, false, 0, BODY_UNSET, RET_UNSET, "" },
	{ "SIZE=1 size=2", PARSE_EDUP, 7, false, 0, BODY_UNSET, RET_UNSET, "" },
	{ "BODY=7BIT RET=FULL BODY=7BIT", PARSE_EDUP, 19, false, 0, BODY_UNSET, RET_UNSET, "" },
	{ "=x", PARSE_ESYNTAX, 0, false, 0, BODY_UNSET, RET_UNSET, "" },
	{ "SIZE=1 =x", PARSE_ESYNTAX, 7, false, 0, BODY_UNSET, RET_UNSET, "" },
	{ "-SIZE=1", PARSE_ESYNTAX, 0, false, 0, BODY_UNSET, RET_UNSET, "" },
	{ "SIZE=1=2", PARSE_ESYNTAX, 0, false, 0, BODY_UNSET, RET_UNSET, "" },
	{ "SIZE:1", PARSE_ESYNTAX, 0, false, 0, BODY_UNSET, RET_UNSET, "" },
	{ "SIZE=1\tBODY=7BIT", PARSE_ESYNTAX, 0, false, 0, BODY_UNSET, RET_UNSET, "" },
	{ "ENVID=\x01", PARSE_ESYNTAX, 0, false, 0, BODY_UNSET, RET_UNSET, "" },
	{ "ENVID=\xc3\xa9", PARSE_ESYNTAX, 0, false, 0, BODY_UNSET, RET_UNSET, "" },
	{ "S\xc3\xa9=1", PARSE_ESYNTAX, 0, false, 0, BODY_UNSET, RET_UNSET, "" },
};

static void check_mail_row(size_t i, const struct mail_row *r)
{
	struct parse_mail_params p;
	const char *bad = (const char *)1;
	enum parse_perr err;
	const char *want_bad = r->bad < 0 ? NULL : r->in + r->bad;

	memset(&p, 0x55, sizeof p);
	err = parse_mail_params(r->in, &p, &bad);
	if (err != r->err || bad != want_bad)
		fail_msg("row %zu \"%s\": err %d want %d, bad \"%s\"", i, r->in,
		         err, r->err, bad ? bad : "(null)");
	if (p.has_size != r->has_size || p.size != r->size ||
	    p.body != r->body || p.ret != r->ret || strcmp(p.envid, r->envid) != 0)
		fail_msg("row %zu \"%s\": size %d/%ju body %d ret %d envid \"%s\"",
		         i, r->in, p.has_size, (uintmax_t)p.size, p.body, p.ret,
		         p.envid);
}

/* The SMTPUTF8 flag itself: set by the keyword, clear without it. */
static void test_mail_smtputf8(void **state)
{
	struct parse_mail_params p;
	(void)state;
	assert_int_equal(parse_mail_params("BODY=8BITMIME SMTPUTF8", &p, NULL), PARSE_OK);
	assert_true(p.smtputf8);
	assert_int_equal(p.body, BODY_8BITMIME);
	assert_int_equal(parse_mail_params("BODY=8BITMIME", &p, NULL), PARSE_OK);
	assert_false(p.smtputf8);
	assert_int_equal(parse_mail_params("SMTPUTF8=1", &p, NULL), PARSE_EVALUE);
	assert_false(p.smtputf8);
}

/* The REQUIRETLS flag (RFC 8689 4.1): set by the keyword alone. */
static void test_mail_requiretls(void **state)
{
	struct parse_mail_params p;
	(void)state;
	assert_int_equal(parse_mail_params("REQUIRETLS SMTPUTF8", &p, NULL), PARSE_OK);
	assert_true(p.requiretls);
	assert_true(p.smtputf8);
	assert_int_equal(parse_mail_params("SMTPUTF8", &p, NULL), PARSE_OK);
	assert_false(p.requiretls);
	assert_int_equal(parse_mail_params("REQUIRETLS=NO", &p, NULL), PARSE_EVALUE);
	assert_false(p.requiretls);
}

static void test_mail_params_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(mail_rows); i++)
		check_mail_row(i, &mail_rows[i]);
}

/* ENVID: 100 octets decoded fit (RFC 3461 4.4), 101 do not. */
static void test_envid_length(void **state)
{
	char in[400];
	struct parse_mail_params p;
	const char *bad;
	int n;

	(void)state;
	n = snprintf(in, sizeof in, "ENVID=");
	for (int i = 0; i < 99; i++)
		in[n++] = 'e';
	memcpy(in + n, "+2B", 4);   /* the 100th octet, encoded */
	assert_int_equal(parse_mail_params(in, &p, &bad), PARSE_OK);
	assert_int_equal(strlen(p.envid), 100);
	assert_int_equal(p.envid[99], '+');
	memcpy(in + n, "+2Bz", 5);
	assert_int_equal(parse_mail_params(in, &p, &bad), PARSE_EVALUE);
	assert_ptr_equal(bad, in);
	assert_string_equal(p.envid, "");
}

/* ---- parse_rcpt_params ---- */

struct rcpt_row {
	const char *in;
	enum parse_perr err;
	int bad;
	unsigned notify;
	const char *orcpt;
};

static const struct rcpt_row rcpt_rows[] = {
	{ "", PARSE_OK, -1, NOTIFY_NONE, "" },
	{ " NOTIFY=success,failure", PARSE_OK, -1, NOTIFY_SUCCESS | NOTIFY_FAILURE, "" },
	{ "NOTIFY=NEVER", PARSE_OK, -1, NOTIFY_NEVER, "" },
	{ "notify=Delay", PARSE_OK, -1, NOTIFY_DELAY, "" },
	{ "NOTIFY=DELAY,SUCCESS,FAILURE", PARSE_OK, -1, NOTIFY_DELAY | NOTIFY_SUCCESS | NOTIFY_FAILURE, "" },
	{ "NOTIFY=NEVER,SUCCESS", PARSE_EVALUE, 0, NOTIFY_NONE, "" },
	{ "NOTIFY=FAILURE,NEVER", PARSE_EVALUE, 0, NOTIFY_NONE, "" },
	{ "NOTIFY=SUCCESS,", PARSE_EVALUE, 0, NOTIFY_NONE, "" },
	{ "NOTIFY=,SUCCESS", PARSE_EVALUE, 0, NOTIFY_NONE, "" },
	{ "NOTIFY=SUCCESS,,DELAY", PARSE_EVALUE, 0, NOTIFY_NONE, "" },
	{ "NOTIFY=SUCCES", PARSE_EVALUE, 0, NOTIFY_NONE, "" },
	{ "NOTIFY=SUCCESSFUL", PARSE_EVALUE, 0, NOTIFY_NONE, "" },
	{ "NOTIFY=", PARSE_EVALUE, 0, NOTIFY_NONE, "" },
	{ "NOTIFY", PARSE_EVALUE, 0, NOTIFY_NONE, "" },
	{ "ORCPT=rfc822;a@b.example", PARSE_OK, -1, NOTIFY_NONE, "rfc822;a@b.example" },
	{ "ORCPT=rfc822;a+2Bb@c", PARSE_OK, -1, NOTIFY_NONE, "rfc822;a+b@c" },
	{ "ORCPT=rfc822;+22a+20b+22@c", PARSE_OK, -1, NOTIFY_NONE, "rfc822;\"a b\"@c" },
	{ "NOTIFY=FAILURE ORCPT=RFC822;x@y", PARSE_OK, -1, NOTIFY_FAILURE, "RFC822;x@y" },
	{ "ORCPT=rfc822", PARSE_EVALUE, 0, NOTIFY_NONE, "" },
	{ "ORCPT=;a@b", PARSE_EVALUE, 0, NOTIFY_NONE, "" },
	{ "ORCPT=rfc822;", PARSE_EVALUE, 0, NOTIFY_NONE, "" },
	{ "ORCPT=rfc.822;a@b", PARSE_EVALUE, 0, NOTIFY_NONE, "" },
	{ "ORCPT=rfc822;a+2", PARSE_EVALUE, 0, NOTIFY_NONE, "" },
	{ "NOTIFY=NEVER NOTIFY=NEVER", PARSE_EDUP, 13, NOTIFY_NONE, "" },
	{ "ORCPT=a;b ORCPT=a;b", PARSE_EDUP, 10, NOTIFY_NONE, "" },
	{ "NOTIFY=NEVER SIZE=10", PARSE_EUNKNOWN, 13, NOTIFY_NONE, "" },
	{ "RRVS=2014-04-03T23:01:00Z", PARSE_EUNKNOWN, 0, NOTIFY_NONE, "" },
	{ "NOTIFY=NEVER =", PARSE_ESYNTAX, 13, NOTIFY_NONE, "" },
	{ "NOTIFY==NEVER", PARSE_ESYNTAX, 0, NOTIFY_NONE, "" },
};

static void test_rcpt_params_table(void **state)
{
	struct parse_rcpt_params p;
	const char *bad;

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(rcpt_rows); i++) {
		const struct rcpt_row *r = &rcpt_rows[i];
		const char *want_bad = r->bad < 0 ? NULL : r->in + r->bad;
		memset(&p, 0x55, sizeof p);
		bad = (const char *)1;
		enum parse_perr err = parse_rcpt_params(r->in, &p, &bad);
		if (err != r->err || bad != want_bad)
			fail_msg("row %zu \"%s\": err %d want %d, bad \"%s\"", i,
			         r->in, err, r->err, bad ? bad : "(null)");
		if (p.notify != r->notify || strcmp(p.orcpt, r->orcpt) != 0)
			fail_msg("row %zu \"%s\": notify %#x orcpt \"%s\"", i, r->in,
			         p.notify, p.orcpt);
	}
}

/* ORCPT: "addr-type;decoded" of SMTP_ORCPT_MAX octets fits, one more not. */
static void test_orcpt_length(void **state)
{
	char in[SMTP_ORCPT_MAX + 64];
	struct parse_rcpt_params p;
	const char *bad;
	size_t n, want = SMTP_ORCPT_MAX - strlen("rfc822;");

	(void)state;
	n = (size_t)snprintf(in, sizeof in, "ORCPT=rfc822;");
	memset(in + n, 'o', want);
	in[n + want] = '\0';
	assert_int_equal(parse_rcpt_params(in, &p, &bad), PARSE_OK);
	assert_int_equal(strlen(p.orcpt), SMTP_ORCPT_MAX);
	in[n + want] = 'o';
	in[n + want + 1] = '\0';
	assert_int_equal(parse_rcpt_params(in, &p, &bad), PARSE_EVALUE);
	assert_string_equal(p.orcpt, "");
}

/* A NULL bad pointer is allowed. */
static void test_params_null_bad(void **state)
{
	struct parse_mail_params mp;
	struct parse_rcpt_params rp;

	(void)state;
	assert_int_equal(parse_mail_params("FOO", &mp, NULL), PARSE_EUNKNOWN);
	assert_int_equal(parse_rcpt_params("NOTIFY=NEVER", &rp, NULL), PARSE_OK);
	assert_int_equal(rp.notify, NOTIFY_NEVER);
}

/* ---- xtext, RFC 3461 4 ---- */

struct xdec_row {
	const char *in;
	size_t room;
	bool ok;
	const char *out;
};

static const struct xdec_row xdec_rows[] = {
	{ "", 1, true, "" },
	{ "abc", 4, true, "abc" },
	{ "abc", 3, false, NULL },
	{ "a+2Bb", 4, true, "a+b" },
	{ "a+2bb", 4, true, "a+b" },
	{ "+3D", 2, true, "=" },
	{ "+41+42", 3, true, "AB" },
	{ "+C3+A9", 3, true, "\xc3\xa9" },
	{ "!\"#$%&'()*,-./:;<>?@[\\]^_`{|}~", 64, true, "!\"#$%&'()*,-./:;<>?@[\\]^_`{|}~" },
	{ "+", 8, false, NULL },
	{ "+4", 8, false, NULL },
	{ "+4G", 8, false, NULL },
	{ "+G4", 8, false, NULL },
	{ "+00", 8, false, NULL },
	{ "a=b", 8, false, NULL },
	{ "a b", 8, false, NULL },
	{ "a\x7f", 8, false, NULL },
	{ "a\xc3\xa9", 8, false, NULL },
	{ "a\tb", 8, false, NULL },
	{ "a", 0, false, NULL },
};

static void test_xtext_decode_table(void **state)
{
	char out[64];

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(xdec_rows); i++) {
		const struct xdec_row *r = &xdec_rows[i];
		memset(out, 'Z', sizeof out);
		bool ok = smtp_xtext_decode(r->in, strlen(r->in), out, r->room);
		if (ok != r->ok || (ok && strcmp(out, r->out) != 0))
			fail_msg("row %zu \"%s\": ok %d out \"%.*s\"", i, r->in, ok,
			         (int)sizeof out, out);
		/* nothing is ever written beyond the room given */
		for (size_t j = r->room; j < sizeof out; j++)
			if (out[j] != 'Z')
				fail_msg("row %zu \"%s\": wrote at %zu", i, r->in, j);
	}
}

/* len bounds the input: bytes after it are never looked at. */
static void test_xtext_decode_len(void **state)
{
	char out[8];

	(void)state;
	assert_true(smtp_xtext_decode("ab=cd", 2, out, sizeof out));
	assert_string_equal(out, "ab");
	assert_false(smtp_xtext_decode("ab+41", 3, out, sizeof out));
	assert_false(smtp_xtext_decode("ab+41", 4, out, sizeof out));
	assert_true(smtp_xtext_decode("ab+41", 5, out, sizeof out));
	assert_string_equal(out, "abA");
}

struct xenc_row {
	const char *in;
	size_t room;
	bool ok;
	const char *out;
};

static const struct xenc_row xenc_rows[] = {
	{ "", 1, true, "" },
	{ "abc", 4, true, "abc" },
	{ "abc", 3, false, "" },
	{ "a+b=c", 16, true, "a+2Bb+3Dc" },
	{ "a b", 16, true, "a+20b" },
	{ "\"a b\"@c", 16, true, "\"a+20b\"@c" },
	{ "\x01\x7f\xff", 16, true, "+01+7F+FF" },
	{ "+", 4, true, "+2B" },
	{ "+", 3, false, "" },
	{ "~!", 3, true, "~!" },
};

static void test_xtext_encode_table(void **state)
{
	char out[32];

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(xenc_rows); i++) {
		const struct xenc_row *r = &xenc_rows[i];
		memset(out, 'Z', sizeof out);
		bool ok = smtp_xtext_encode(r->in, out, r->room);
		if (ok != r->ok || strcmp(out, r->out) != 0)
			fail_msg("row %zu \"%s\": ok %d out \"%s\"", i, r->in, ok, out);
		for (size_t j = r->room; j < sizeof out; j++)
			if (out[j] != 'Z')
				fail_msg("row %zu \"%s\": wrote at %zu", i, r->in, j);
	}
}

/* encode then decode gives back every non-NUL byte. */
static void test_xtext_round_trip(void **state)
{
	char raw[256], enc[256 * 3 + 1], dec[256];

	(void)state;
	for (int i = 1; i < 256; i++)
		raw[i - 1] = (char)i;
	raw[255] = '\0';
	assert_true(smtp_xtext_encode(raw, enc, sizeof enc));
	for (const char *c = enc; *c != '\0'; c++)
		assert_true(*c > 32 && *c < 127 && *c != '=');
	assert_true(smtp_xtext_decode(enc, strlen(enc), dec, sizeof dec));
	assert_memory_equal(dec, raw, 256);
}

/* ---- whole lines, as the session chains them ---- */

/* "RCPT TO: User@Domain.Com NOTIFY=success,failure" from the guides. */
static void test_guide_rcpt_line(void **state)
{
	struct parse_cmd c;
	struct addr a;
	struct parse_rcpt_params rp;
	const char *p, *end, *bad;

	(void)state;
	assert_true(parse_command("RCPT TO: User@Domain.Com NOTIFY=success,failure", &c));
	assert_string_equal(c.verb, "RCPT");
	p = parse_keyword_colon(c.args, "TO");
	assert_non_null(p);
	assert_int_equal(addr_parse_path(p, &end, &a, false, true), ADDR_OK);
	assert_string_equal(a.local, "User");
	assert_string_equal(a.domain, "domain.com");
	assert_int_equal(parse_rcpt_params(end, &rp, &bad), PARSE_OK);
	assert_int_equal(rp.notify, NOTIFY_SUCCESS | NOTIFY_FAILURE);
}

/* "MAIL FROM:Admin@test.com" from the guides, and the RFC form. */
static void test_guide_mail_lines(void **state)
{
	static const char *const lines[] = {
		"MAIL FROM:Admin@test.com",
		"mail from: Admin@Test.com",
		"MAIL FROM:<Admin@test.com>",
		"MAIL From : <Admin@TEST.COM>   ",
	};
	struct parse_cmd c;
	struct addr a;
	struct parse_mail_params mp;
	const char *p, *end, *bad;

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(lines); i++) {
		assert_true(parse_command(lines[i], &c));
		assert_string_equal(c.verb, "MAIL");
		p = parse_keyword_colon(c.args, "FROM");
		assert_non_null(p);
		assert_int_equal(addr_parse_path(p, &end, &a, true, false), ADDR_OK);
		assert_string_equal(a.local, "Admin");
		assert_string_equal(a.domain, "test.com");
		assert_int_equal(parse_mail_params(end, &mp, &bad), PARSE_OK);
		assert_false(mp.has_size);
	}
}

/* "MAIL FROM:<> SIZE=..." and an unknown parameter's *bad. */
static void test_mail_line_params(void **state)
{
	const char *line = "MAIL FROM:<> SIZE=2048 BODY=8BITMIME XYZZY";
	struct parse_cmd c;
	struct addr a;
	struct parse_mail_params mp;
	const char *p, *end, *bad;

	(void)state;
	assert_true(parse_command(line, &c));
	p = parse_keyword_colon(c.args, "FROM");
	assert_non_null(p);
	assert_int_equal(addr_parse_path(p, &end, &a, true, false), ADDR_OK);
	assert_true(a.null);
	assert_int_equal(parse_mail_params(end, &mp, &bad), PARSE_EUNKNOWN);
	assert_ptr_equal(bad, strstr(line, "XYZZY"));
	assert_false(mp.has_size);
}

/* ---- parse_bdat (RFC 3030 2) ---- */

struct bdat_row {
	const char *args;
	bool ok;
	uint64_t size;
	bool last;
};

static const struct bdat_row bdat_rows[] = {
	{ "0", true, 0, false },
	{ "20", true, 20, false },
	{ "6 LAST", true, 6, true },
	{ "6 last", true, 6, true },
	{ "0 LAST", true, 0, true },
	{ "007 LaSt", true, 7, true },
	{ "1125899906842624", true, (uint64_t)1 << 50, false },
	{ "1125899906842625", false, 0, false },
	{ "99999999999999999999999", false, 0, false },
	{ "", false, 0, false },
	{ "LAST", false, 0, false },
	{ "-1", false, 0, false },
	{ "+1", false, 0, false },
	{ "1x", false, 0, false },
	{ "1 ", false, 0, false },
	{ "1  LAST", false, 0, false },
	{ "1 LASTX", false, 0, false },
	{ "1 LAST x", false, 0, false },
	{ "1 FIRST", false, 0, false },
	{ "0x10", false, 0, false },
	{ "1\tLAST", false, 0, false },
};

static void test_bdat_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(bdat_rows); i++) {
		const struct bdat_row *r = &bdat_rows[i];
		uint64_t size = 12345;
		bool last = false;
		bool ok = parse_bdat(r->args, &size, &last);
		if (ok != r->ok || (ok && (size != r->size || last != r->last)))
			fail_msg("row %zu \"%s\": ok %d size %llu last %d", i, r->args, ok,
			         (unsigned long long)size, last);
	}
	uint64_t size;
	bool last;
	assert_false(parse_bdat(NULL, &size, &last));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_command_table),
		cmocka_unit_test(test_command_args_in_line),
		cmocka_unit_test(test_keyword_colon_table),
		cmocka_unit_test(test_mail_params_table),
		cmocka_unit_test(test_mail_smtputf8),
		cmocka_unit_test(test_mail_requiretls),
		cmocka_unit_test(test_envid_length),
		cmocka_unit_test(test_rcpt_params_table),
		cmocka_unit_test(test_orcpt_length),
		cmocka_unit_test(test_params_null_bad),
		cmocka_unit_test(test_xtext_decode_table),
		cmocka_unit_test(test_xtext_decode_len),
		cmocka_unit_test(test_xtext_encode_table),
		cmocka_unit_test(test_xtext_round_trip),
		cmocka_unit_test(test_guide_rcpt_line),
		cmocka_unit_test(test_guide_mail_lines),
		cmocka_unit_test(test_mail_line_params),
		cmocka_unit_test(test_bdat_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
