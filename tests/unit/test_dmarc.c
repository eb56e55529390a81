/* Unit tests for dmarc: records (RFC 7489 6.3, 6.6.3), organizational
 * domains from the public suffix list (3.2), alignment (3.1) and the
 * policy that applies, pct= included (6.6.4). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "policy/dmarc.h"

static void test_parse(void **state)
{
	(void)state;
	static const struct {
		const char *txt;
		enum dmarc_parse want;
		enum dmarc_policy p, sp;
		unsigned pct;
		bool adkim_s, aspf_s;
	} rows[] = {
		{ "v=DMARC1; p=reject", DMARC_REC_OK, DMARC_P_REJECT, DMARC_P_REJECT, 100, false, false },
		{ "v=DMARC1;p=quarantine;sp=none;pct=20;adkim=s;aspf=r", DMARC_REC_OK,
		  DMARC_P_QUARANTINE, DMARC_P_NONE, 20, true, false },
		{ " v = DMARC1 ; p = Reject ; ", DMARC_REC_OK, DMARC_P_REJECT, DMARC_P_REJECT, 100,
		  false, false },
		{ "v=DMARC1; p=none; rua=mailto:d@example.com; ruf=x; fo=1; unknown=tag",
		  DMARC_REC_OK, DMARC_P_NONE, DMARC_P_NONE, 100, false, false },
		{ "v=DMARC1; p=bogus; rua=mailto:d@example.com", DMARC_REC_OK, DMARC_P_NONE,
		  DMARC_P_NONE, 100, false, false },                      /* 6.6.3 */
		{ "v=DMARC1; rua=mailto:d@example.com", DMARC_REC_OK, DMARC_P_NONE, DMARC_P_NONE,
		  100, false, false },
		{ "v=DMARC1; p=bogus", DMARC_REC_BAD, 0, 0, 100, false, false },
		{ "v=DMARC1", DMARC_REC_BAD, 0, 0, 100, false, false },
		{ "v=DMARC1; p=reject; pct=101", DMARC_REC_BAD, 0, 0, 100, false, false },
		{ "v=DMARC1; p=reject; adkim=x", DMARC_REC_BAD, 0, 0, 100, false, false },
		{ "v=DMARC1; p=reject; garbage", DMARC_REC_BAD, 0, 0, 100, false, false },
		{ "p=reject; v=DMARC1", DMARC_REC_NOT, 0, 0, 100, false, false },  /* v= first */
		{ "v=spf1 -all", DMARC_REC_NOT, 0, 0, 100, false, false },
		{ "v=DMARC10; p=reject", DMARC_REC_NOT, 0, 0, 100, false, false },
		{ "", DMARC_REC_NOT, 0, 0, 100, false, false },
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		struct dmarc_record r;
		enum dmarc_parse got = dmarc_parse(rows[i].txt, &r);
		assert_int_equal(got, rows[i].want);
		if (got != DMARC_REC_OK)
			continue;
		assert_int_equal(r.p, rows[i].p);
		assert_int_equal(r.sp, rows[i].sp);
		assert_int_equal(r.pct, rows[i].pct);
		assert_int_equal(r.adkim_strict, rows[i].adkim_s);
		assert_int_equal(r.aspf_strict, rows[i].aspf_s);
	}
}

static void test_org_domain(void **state)
{
	(void)state;
	static const struct { const char *in, *want; } rows[] = {
		{ "example.com", "example.com" },
		{ "mail.Example.COM", "example.com" },
		{ "a.b.example.co.uk", "example.co.uk" },
		{ "example.co.uk.", "example.co.uk" },
		{ "foo.blogspot.com", "foo.blogspot.com" },   /* a private suffix */
		{ "com", "com" },
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		char out[256];
		dmarc_org_domain(rows[i].in, out, sizeof out);
		assert_string_equal(out, rows[i].want);
	}
}

static void test_aligned(void **state)
{
	(void)state;
	assert_true(dmarc_aligned("example.com", "EXAMPLE.com", true));
	assert_false(dmarc_aligned("mail.example.com", "example.com", true));
	assert_true(dmarc_aligned("mail.example.com", "example.com", false));
	assert_true(dmarc_aligned("bounce.example.co.uk", "news.example.co.uk", false));
	assert_false(dmarc_aligned("example.co.uk", "other.co.uk", false));
	assert_false(dmarc_aligned("a.blogspot.com", "b.blogspot.com", false));
	assert_false(dmarc_aligned("", "example.com", false));
}

static void test_evaluate(void **state)
{
	(void)state;
	struct dmarc_record r;
	struct dmarc_verdict v;
	assert_int_equal(dmarc_parse("v=DMARC1; p=reject; sp=quarantine; pct=50", &r), DMARC_REC_OK);
	struct dmarc_input in = { "example.com", true, "bounces.example.com", 0, { NULL } };
	dmarc_evaluate(&r, false, &in, 99, &v);           /* SPF aligned, relaxed */
	assert_int_equal(v.result, DMARC_PASS);
	assert_true(v.spf_aligned);
	assert_int_equal(v.act, DMARC_P_NONE);

	in.spf_domain = "other.example";                   /* neither aligned */
	in.ndkim = 1;
	in.dkim[0] = "mailer.example";
	dmarc_evaluate(&r, false, &in, 10, &v);
	assert_int_equal(v.result, DMARC_FAIL);
	assert_int_equal(v.policy, DMARC_P_REJECT);
	assert_int_equal(v.act, DMARC_P_REJECT);          /* sampled: 10 < 50 */
	dmarc_evaluate(&r, false, &in, 70, &v);
	assert_int_equal(v.act, DMARC_P_QUARANTINE);      /* not sampled: one down */
	dmarc_evaluate(&r, true, &in, 10, &v);             /* a subdomain: sp= */
	assert_int_equal(v.policy, DMARC_P_QUARANTINE);

	in.dkim[0] = "example.com";                        /* DKIM aligned */
	dmarc_evaluate(&r, false, &in, 10, &v);
	assert_int_equal(v.result, DMARC_PASS);
	assert_true(v.dkim_aligned);

	assert_int_equal(dmarc_parse("v=DMARC1; p=reject; aspf=s", &r), DMARC_REC_OK);
	struct dmarc_input strict = { "example.com", true, "bounces.example.com", 0, { NULL } };
	dmarc_evaluate(&r, false, &strict, 0, &v);
	assert_int_equal(v.result, DMARC_FAIL);
	strict.spf_pass = false;
	strict.spf_domain = "example.com";
	dmarc_evaluate(&r, false, &strict, 0, &v);         /* aligned but not a pass */
	assert_int_equal(v.result, DMARC_FAIL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_org_domain),
		cmocka_unit_test(test_aligned),
		cmocka_unit_test(test_evaluate),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
