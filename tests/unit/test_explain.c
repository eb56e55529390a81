/* test_explain: src/tools/probe/explain.c, the reply-code tables.
 *
 * Tables of inputs and expected outputs: code parsing, the one-line
 * explanation (every basic code of the seeds' tables and every RFC 3463
 * code must be known), the long explanation of unknown codes (by class and
 * subject), and the EHLO keywords.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "tools/probe/explain.h"

#define ARRAY_LEN(a) (sizeof (a) / sizeof (a)[0])

struct parse_case {
	const char *in;
	bool ok;
	int code;
	const char *esc;
};

static const struct parse_case parse_cases[] = {
	{ "550", true, 550, "" },
	{ "550 5.7.1", true, 550, "5.7.1" },
	{ "550 5.7.1 Unable to relay", true, 550, "5.7.1" },
	{ "550-5.7.1 Unable to relay", true, 550, "5.7.1" },
	{ "  250 2.1.5 Recipient OK", true, 250, "2.1.5" },
	{ "5.7.1", true, 0, "5.7.1" },
	{ "4.4.7", true, 0, "4.4.7" },
	{ "5.7.26", true, 0, "5.7.26" },
	{ "5.100.100", true, 0, "5.100.100" },
	{ "250 OK", true, 250, "" },
	{ "220 mx.example ESMTP", true, 220, "" },
	{ "250 2.1.0x Sender", true, 250, "" },      /* not an enhanced code */
	{ "250 2.1000.0 x", true, 250, "" },        /* detail too long */
	{ "550 6.1.1", true, 550, "" },             /* class 6 does not exist */
	{ "5501", false, 0, "" },
	{ "", false, 0, "" },
	{ "hello", false, 0, "" },
	{ "55", false, 0, "" },
	{ "5.7", false, 0, "" },
};

static void test_parse(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(parse_cases); i++) {
		const struct parse_case *c = &parse_cases[i];
		struct explain_codes ec;
		bool ok = explain_parse(c->in, &ec);
		if (ok != c->ok || ec.code != c->code || strcmp(ec.esc, c->esc) != 0)
			fail_msg("explain_parse(%s): got %d %d '%s', want %d %d '%s'", c->in,
				 ok, ec.code, ec.esc, c->ok, c->code, c->esc);
	}
}

struct short_case {
	const char *in;
	const char *want;    /* a substring of explain_short */
};

static const struct short_case short_cases[] = {
	{ "550 5.7.1", "relaying denied: the server does not accept mail for that domain from you" },
	{ "550 5.1.1", "user unknown" },
	{ "535 5.7.8", "wrong user name or password" },
	{ "530 5.7.0", "authentication required" },
	{ "250 2.1.5", "recipient is accepted" },
	{ "250 2.6.0", "queued" },
	{ "221 2.0.0", "goodbye" },
	{ "421", "shutting the connection" },
	{ "452 4.5.3", "more recipients" },
	{ "552 5.3.4", "size limit" },
	{ "451 4.3.0", "internal problem" },
	{ "554 5.7.1", "refused by policy" },
	{ "500 5.5.2", "syntax is wrong" },
	{ "521", "never accepts mail" },
	{ "530", "log in" },
	{ "5.2.2", "over quota" },
	{ "4.7.1", "not authorized" },
	{ "299", "success" },                   /* unknown: by class */
	{ "499", "temporary failure" },
	{ "599 5.9.9", "permanent failure" },
	{ "5.9.9", "permanent failure" },
};

static void test_short(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(short_cases); i++) {
		struct explain_codes ec;
		assert_true(explain_parse(short_cases[i].in, &ec));
		const char *got = explain_short(&ec);
		if (!strstr(got, short_cases[i].want))
			fail_msg("explain_short(%s) = '%s', want '%s' in it", short_cases[i].in,
				 got, short_cases[i].want);
	}
}

/* Every basic code of seed 004's and seed 000's tables is in the table:
 * its long explanation names its standard wording, not "not in the table". */
static void test_seed_codes_known(void **state)
{
	(void)state;
	static const int codes[] = { 200, 211, 214, 220, 221, 250, 251, 354, 421, 450,
		451, 452, 500, 501, 502, 503, 504, 521, 530, 550, 551, 552, 553, 554 };
	for (size_t i = 0; i < ARRAY_LEN(codes); i++) {
		struct explain_codes ec = { codes[i], "" };
		struct buf out = BUF_INIT;
		explain_long(&ec, &out);
		if (strstr(buf_cstr(&out), "not in the table"))
			fail_msg("code %d unknown: %s", codes[i], buf_cstr(&out));
		buf_free(&out);
	}
}

/* RFC 3463's codes, all of them, for class 4 and 5. */
static void test_rfc3463_known(void **state)
{
	(void)state;
	static const int last_detail[] = { 0, 8, 4, 5, 7, 5, 5, 8 };
	for (int cls = 4; cls <= 5; cls++)
		for (int s = 0; s <= 7; s++)
			for (int d = 0; d <= last_detail[s]; d++) {
				struct explain_codes ec = { 0, "" };
				snprintf(ec.esc, sizeof ec.esc, "%d.%d.%d", cls, s, d);
				struct buf out = BUF_INIT;
				explain_long(&ec, &out);
				if (strstr(buf_cstr(&out), "not in the table"))
					fail_msg("%s unknown", ec.esc);
				buf_free(&out);
			}
}

struct long_case {
	const char *in;
	const char *want[3];  /* substrings of explain_long */
};

static const struct long_case long_cases[] = {
	{ "550 5.7.1", { "550: Requested action not taken: mailbox unavailable",
	  "5.7.1: Delivery not authorized", "relaying denied" } },
	{ "597", { "597: not in the table", "Class 5, permanent failure",
	  "category 9" } },
	{ "593", { "category 9, unknown", NULL, NULL } },
	{ "421 4.9.9", { "4.9.9: not in the table", "subject 9, unknown subject",
	  "temporary failure" } },
	{ "450 4.2.9", { "subject 2, mailbox status", NULL, NULL } },
	{ "250 5.1.1", { "disagree on the class", NULL, NULL } },
	{ "535 5.7.8", { "Try: check the credentials", NULL, NULL } },
	{ "552", { "Try: send a smaller message", NULL, NULL } },
};

static void test_long(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(long_cases); i++) {
		struct explain_codes ec;
		assert_true(explain_parse(long_cases[i].in, &ec));
		struct buf out = BUF_INIT;
		explain_long(&ec, &out);
		for (int j = 0; j < 3 && long_cases[i].want[j]; j++)
			if (!strstr(buf_cstr(&out), long_cases[i].want[j]))
				fail_msg("explain_long(%s) lacks '%s':\n%s", long_cases[i].in,
					 long_cases[i].want[j], buf_cstr(&out));
		buf_free(&out);
	}
}

static void test_ext(void **state)
{
	(void)state;
	static const struct { const char *kw, *want; } cases[] = {
		{ "PIPELINING", "RFC 2920" }, { "SIZE 26214400", "RFC 1870" },
		{ "size", "RFC 1870" }, { "AUTH PLAIN LOGIN", "RFC 4954" },
		{ "AUTH=LOGIN", "RFC 4954" }, { "STARTTLS", "RFC 3207" },
		{ "DSN", "RFC 3461" }, { "ENHANCEDSTATUSCODES", "RFC 2034" },
		{ "8BITMIME", "RFC 6152" }, { "X-EXPS GSSAPI NTLM", "Exchange" },
		{ "ETRN", "RFC 1985" },
	};
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		const char *m = explain_ext(cases[i].kw);
		if (!m || !strstr(m, cases[i].want))
			fail_msg("explain_ext(%s) = %s", cases[i].kw, m ? m : "NULL");
	}
	assert_null(explain_ext("XYZZY"));
	assert_null(explain_ext("SIZEX"));
	assert_null(explain_ext(""));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_short),
		cmocka_unit_test(test_seed_codes_known),
		cmocka_unit_test(test_rfc3463_known),
		cmocka_unit_test(test_long),
		cmocka_unit_test(test_ext),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
