/* Unit tests for SPF (RFC 7208): the record parser and the macro expander
 * as tables (RFC 7208 7.4's own examples among them), and check_host()
 * driven with DNS answers from a table of zone data. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "policy/spf.h"

/* ---- records ---- */

static void test_record_is(void **state)
{
	(void)state;
	static const struct { const char *text; bool want; } rows[] = {
		{ "v=spf1", true }, { "v=spf1 -all", true }, { "V=SpF1 ~all", true },
		{ "v=spf10", false }, { "v=spf1-all", false }, { "v=spf2", false },
		{ " v=spf1", false }, { "spf2.0/pra", false }, { "", false },
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
		if (spf_record_is(rows[i].text) != rows[i].want)
			fail_msg("%s: want %d", rows[i].text, rows[i].want);
}

/* Each record parsed; ok, and then the directives as "qual mech spec
 * cidr4 cidr6" joined by "|", and the modifiers. */
static void test_record_parse(void **state)
{
	(void)state;
	static const struct { const char *text; bool ok; const char *terms, *redirect, *exp; } rows[] = {
		{ "v=spf1", true, "", NULL, NULL },
		{ "v=spf1 -all", true, "- all", NULL, NULL },
		{ "v=spf1  a   -all  ", true, "+ a|- all", NULL, NULL },   /* 1*SP, trailing SP */
		{ "v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 ~all", true,
		  "+ ip4 /24|+ ip6 //32|~ all", NULL, NULL },
		{ "v=spf1 a/24 mx//64 a:mail.example.com/28//96 ?mx:%{d}", true,
		  "+ a /24|+ mx //64|+ a mail.example.com /28 //96|? mx %{d}", NULL, NULL },
		{ "v=spf1 include:_spf.example.com exists:%{ir}.%{v}._spf.%{d} ptr ptr:example.org", true,
		  "+ include _spf.example.com|+ exists %{ir}.%{v}._spf.%{d}|+ ptr|+ ptr example.org",
		  NULL, NULL },
		{ "v=spf1 redirect=_spf.example.com exp=explain.%{d}", true, "", "_spf.example.com",
		  "explain.%{d}" },
		{ "v=spf1 moo.cow-far_out=man:dog/cat ip4:1.2.3.4 -all", true, "+ ip4|- all", NULL, NULL },
		{ "v=spf1 default=pass", true, "", NULL, NULL },             /* unknown modifier */
		{ "v=spf1 A:Example.COM MX IP4:1.2.3.4 -ALL", true,
		  "+ a Example.COM|+ mx|+ ip4|- all", NULL, NULL },
		{ "v=spf1 a:foo.example.xn--zckzah", true, "+ a foo.example.xn--zckzah", NULL, NULL },
		{ "v=spf1 a:foo:bar/baz.example.com", true, "+ a foo:bar/baz.example.com", NULL, NULL },
		{ "v=spf1 mx:%%%_/.Clara.de/27", true, "+ mx %%%_/.Clara.de /27", NULL, NULL },
		/* errors anywhere (4.6) */
		{ "v=spf1 ip4:1.2.3.4 -all moo", false, NULL, NULL, NULL },
		{ "v=spf1 moo.cow/far_out=man:dog/cat -all", false, NULL, NULL, NULL },
		{ "v=spf1 1up=foo", false, NULL, NULL, NULL },
		{ "v=spf1 =all", false, NULL, NULL, NULL },
		{ "v=spf1 -all.", false, NULL, NULL, NULL },
		{ "v=spf1 -all:foobar", false, NULL, NULL, NULL },
		{ "v=spf1 -all/8", false, NULL, NULL, NULL },
		{ "v=spf1 redirect:t2.example.com", false, NULL, NULL, NULL },
		{ "v=spf1 redirect=a.example redirect=b.example", false, NULL, NULL, NULL },
		{ "v=spf1 exp=a.example exp=b.example", false, NULL, NULL, NULL },
		{ "v=spf1 exp= -all", false, NULL, NULL, NULL },
		{ "v=spf1 exp=-all", false, NULL, NULL, NULL },
		{ "v=spf1 redirect=", false, NULL, NULL, NULL },
		{ "v=spf1 -all foo=%abc", false, NULL, NULL, NULL },         /* 7.1: bad macro */
		{ "v=spf1 a:foo-bar -all", false, NULL, NULL, NULL },        /* no toplabel */
		{ "v=spf1 a:abc.123", false, NULL, NULL, NULL },             /* numeric toplabel */
		{ "v=spf1 a:example.-com", false, NULL, NULL, NULL },
		{ "v=spf1 a:museum", false, NULL, NULL, NULL },
		{ "v=spf1 a:museum.", false, NULL, NULL, NULL },
		{ "v=spf1 a:111.222.33.44", false, NULL, NULL, NULL },
		{ "v=spf1 a:example.com:8080", false, NULL, NULL, NULL },
		{ "v=spf1 a:", false, NULL, NULL, NULL },
		{ "v=spf1 a/33", false, NULL, NULL, NULL },
		{ "v=spf1 a//129", false, NULL, NULL, NULL },
		{ "v=spf1 a/24/64", false, NULL, NULL, NULL },
		{ "v=spf1 a/032", false, NULL, NULL, NULL },                 /* leading zero */
		{ "v=spf1 ptr/0", false, NULL, NULL, NULL },
		{ "v=spf1 include", false, NULL, NULL, NULL },
		{ "v=spf1 include:", false, NULL, NULL, NULL },
		{ "v=spf1 include:ip5.example.com/24", false, NULL, NULL, NULL },
		{ "v=spf1 exists", false, NULL, NULL, NULL },
		{ "v=spf1 exists:mail.example.com/24", false, NULL, NULL, NULL },
		{ "v=spf1 ip4", false, NULL, NULL, NULL },
		{ "v=spf1 ip4:1.2.3.4/33", false, NULL, NULL, NULL },
		{ "v=spf1 ip4:1.2.3.4/032", false, NULL, NULL, NULL },
		{ "v=spf1 ip4:1.2.3.4//32", false, NULL, NULL, NULL },
		{ "v=spf1 ip4:1.2.3", false, NULL, NULL, NULL },
		{ "v=spf1 ip4:1.2.03.4", false, NULL, NULL, NULL },
		{ "v=spf1 ip4:1.2.3.256", false, NULL, NULL, NULL },
		{ "v=spf1 ip4:1.2.3.4:8080", false, NULL, NULL, NULL },
		{ "v=spf1 ip6", false, NULL, NULL, NULL },
		{ "v=spf1 ip6:::1.1.1.1/129", false, NULL, NULL, NULL },
		{ "v=spf1 ip6:::1.1.1.1//33", false, NULL, NULL, NULL },
		{ "v=spf1 ip6::CAFE::BABE", false, NULL, NULL, NULL },
		{ "v=spf1 a:ctrl.example.com\rptr -all", false, NULL, NULL, NULL },  /* SP only */
		{ "v=spf1 ip4:192.0.2.5\n include:x.example ~all", false, NULL, NULL, NULL },
		{ "v=spf1 \x80" "a:example.net -all", false, NULL, NULL, NULL },       /* 3.1: ASCII */
		{ "v=spf1 a:example.net \x96" "all", false, NULL, NULL, NULL },
		{ "v=spf1 exists:%{r}.example.com", false, NULL, NULL, NULL },   /* r: exp only */
		{ "v=spf1 a:%{a}.example.com", false, NULL, NULL, NULL },        /* no such letter */
		{ "v=spf1 a:%{d0}.example.com", false, NULL, NULL, NULL },       /* DIGIT nonzero */
		{ "v=spf1 -exists:%(ir).sbl.example.com ?all", false, NULL, NULL, NULL },
		{ "v=spf1 exists:foo%.sbl.example.com", false, NULL, NULL, NULL },
		{ "v=spf10", false, NULL, NULL, NULL },
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		struct spf_record r;
		char why[256] = "";
		bool ok = spf_record_parse(rows[i].text, &r, why, sizeof why);
		if (ok != rows[i].ok)
			fail_msg("row %zu %s: ok=%d (%s)", i, rows[i].text, ok, why);
		if (!ok) {
			if (!why[0])
				fail_msg("row %zu: no reason given", i);
			continue;
		}
		char got[512] = "";
		for (size_t k = 0; k < r.n; k++) {
			static const char *const mech[] = { "all", "include", "a", "mx", "ptr", "ip4",
			                                     "ip6", "exists" };
			static const char qual[] = { [SPF_PASS] = '+', [SPF_FAIL] = '-',
			                             [SPF_SOFTFAIL] = '~', [SPF_NEUTRAL] = '?' };
			const struct spf_term *t = &r.term[k];
			size_t o = strlen(got);
			snprintf(got + o, sizeof got - o, "%s%c %s", k ? "|" : "", qual[t->qualifier],
			         mech[t->mech]);
			if (t->spec)
				snprintf(got + strlen(got), sizeof got - strlen(got), " %s", t->spec);
			if (t->cidr4 != 32 && t->mech != SPF_M_IP6)
				snprintf(got + strlen(got), sizeof got - strlen(got), " /%u", t->cidr4);
			if (t->cidr6 != 128)
				snprintf(got + strlen(got), sizeof got - strlen(got), " //%u", t->cidr6);
		}
		if (strcmp(got, rows[i].terms))
			fail_msg("row %zu %s:\n got %s\nwant %s", i, rows[i].text, got, rows[i].terms);
		if ((r.redirect || rows[i].redirect) &&
		    (!r.redirect || !rows[i].redirect || strcmp(r.redirect, rows[i].redirect)))
			fail_msg("row %zu: redirect %s", i, r.redirect ? r.redirect : "(none)");
		if ((r.exp || rows[i].exp) && (!r.exp || !rows[i].exp || strcmp(r.exp, rows[i].exp)))
			fail_msg("row %zu: exp %s", i, r.exp ? r.exp : "(none)");
		spf_record_free(&r);
	}
}

static void test_record_addresses(void **state)
{
	(void)state;
	struct spf_record r;
	char why[128];
	assert_true(spf_record_parse("v=spf1 ip4:192.0.2.1/24 ip6:2001:DB8::CB01/64", &r, why,
	                             sizeof why));
	assert_int_equal(r.n, 2);
	static const unsigned char v4[4] = { 192, 0, 2, 1 };
	static const unsigned char v6[16] = { 0x20, 0x01, 0x0d, 0xb8, [14] = 0xcb, [15] = 0x01 };
	assert_memory_equal(r.term[0].net, v4, 4);
	assert_int_equal(r.term[0].cidr4, 24);
	assert_memory_equal(r.term[1].net, v6, 16);
	assert_int_equal(r.term[1].cidr6, 64);
	assert_string_equal(r.term[1].text, "ip6:2001:DB8::CB01/64");
	spf_record_free(&r);
}

/* ---- macros ---- */

static const struct spf_vars rfc_v4 = {
	.s = "strong-bad@email.example.com", .l = "strong-bad", .o = "email.example.com",
	.d = "email.example.com", .i = "192.0.2.3", .p = "mx.example.org", .v = "in-addr",
	.h = "mx.example.org", .c = "192.0.2.3", .r = "mx.example.net", .t = "1700000000",
};

static void expand_is(const struct spf_vars *v, const char *spec, bool explain, const char *want)
{
	struct buf b = BUF_INIT;
	if (!spf_macro_valid(spec, explain))
		fail_msg("%s: not valid", spec);
	if (!spf_macro_expand(spec, v, &b))
		fail_msg("%s: not expanded", spec);
	if (strcmp(buf_cstr(&b), want))
		fail_msg("%s:\n got %s\nwant %s", spec, buf_cstr(&b), want);
	buf_free(&b);
}

/* RFC 7208 7.4, every example. */
static void test_macro_rfc_examples(void **state)
{
	(void)state;
	static const struct { const char *spec, *want; } v4[] = {
		{ "%{s}", "strong-bad@email.example.com" },
		{ "%{o}", "email.example.com" },
		{ "%{d}", "email.example.com" },
		{ "%{d4}", "email.example.com" },
		{ "%{d3}", "email.example.com" },
		{ "%{d2}", "example.com" },
		{ "%{d1}", "com" },
		{ "%{dr}", "com.example.email" },
		{ "%{d2r}", "example.email" },
		{ "%{l}", "strong-bad" },
		{ "%{l-}", "strong.bad" },
		{ "%{lr}", "strong-bad" },
		{ "%{lr-}", "bad.strong" },
		{ "%{l1r-}", "strong" },
		{ "%{ir}.%{v}._spf.%{d2}", "3.2.0.192.in-addr._spf.example.com" },
		{ "%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com" },
		{ "%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", "bad.strong.lp.3.2.0.192.in-addr._spf.example.com" },
		{ "%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", "3.2.0.192.in-addr.strong.lp._spf.example.com" },
		{ "%{d2}.trusted-domains.example.net", "example.com.trusted-domains.example.net" },
	};
	for (size_t i = 0; i < sizeof v4 / sizeof v4[0]; i++)
		expand_is(&rfc_v4, v4[i].spec, false, v4[i].want);
	struct spf_vars v6 = rfc_v4;
	v6.i = "2.0.0.1.0.d.b.8.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.c.b.0.1";
	v6.v = "ip6";
	v6.c = "2001:db8::cb01";
	expand_is(&v6, "%{ir}.%{v}._spf.%{d2}",
	          false, "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf."
	          "example.com");
}

static void test_macro_more(void **state)
{
	(void)state;
	static const struct { const char *spec; bool explain; const char *want; } rows[] = {
		{ "%%%_%-", false, "% %20" },
		{ "macro%%percent%_%_space%-url-space.example.com", false,
		  "macro%percent  space%20url-space.example.com" },
		{ "%{p}", false, "mx.example.org" },
		{ "%{p2}", false, "example.org" },
		{ "%{h}", false, "mx.example.org" },
		{ "%{D2}", false, "example.com" },
		{ "%{L}", false, "strong-bad" },
		{ "%{S}", false, "strong-bad%40email.example.com" },   /* 7.3: URL-escaped */
		{ "%{d200}", false, "email.example.com" },             /* more than there are */
		{ "%{dR}", false, "com.example.email" },
		{ "%{l+-}", false, "strong.bad" },
		{ "%{s-}", false, "strong.bad@email.example.com" },
		{ "%{c} at %{t} to %{r}", true, "192.0.2.3 at 1700000000 to mx.example.net" },
		{ "a.%{ir}.b", false, "a.3.2.0.192.b" },
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
		expand_is(&rfc_v4, rows[i].spec, rows[i].explain, rows[i].want);
	struct spf_vars v = rfc_v4;
	v.l = "~jack&jill=up-a_b3.c";
	expand_is(&v, "http://example.com/why.html?l=%{L}", true,
	          "http://example.com/why.html?l=~jack%26jill%3Dup-a_b3.c");
}

static void test_macro_syntax(void **state)
{
	(void)state;
	static const struct { const char *spec; bool macro, explain, domain; } rows[] = {
		{ "example.com", true, true, true },
		{ "%{d}", true, true, true },
		{ "_spf.%{d2}", true, true, true },
		{ "%{d}.", true, true, false },                 /* domain-end: "." toplabel */
		{ "foo.%{d}.com.", true, true, true },
		{ "foo-bar", true, true, false },
		{ "example.-com", true, true, false },
		{ "example.com-", true, true, false },
		{ "example.1-2", true, true, true },            /* 1*alphanum "-" ... alphanum */
		{ "example.123", true, true, false },
		{ "%%", true, true, true },                     /* ends in a macro-expand */
		{ "", true, true, false },
		{ "%", false, false, false },
		{ "%x", false, false, false },
		{ "%{x}", false, false, false },
		{ "%{d", false, false, false },
		{ "%{d0}", false, false, false },
		{ "%{d2r.-}", true, true, true },
		{ "%{dr2}", false, false, false },              /* digits before r */
		{ "%{c}", false, true, false },
		{ "%{r}.example.com", false, true, false },
		{ "%{T}", false, true, false },
		{ "two words", false, true, false },
		{ "caf\xc3\xa9.example", false, false, false },
		{ "a\tb.example", false, false, false },
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		if (spf_macro_valid(rows[i].spec, false) != rows[i].macro)
			fail_msg("%s: macro-string %d", rows[i].spec, !rows[i].macro);
		if (spf_macro_valid(rows[i].spec, true) != rows[i].explain)
			fail_msg("%s: explain-string %d", rows[i].spec, !rows[i].explain);
		if (spf_macro_domain_spec(rows[i].spec) != rows[i].domain)
			fail_msg("%s: domain-spec %d", rows[i].spec, !rows[i].domain);
	}
	assert_true(spf_macro_uses_p("%{p}.example.com"));
	assert_true(spf_macro_uses_p("x.%{P2}"));
	assert_false(spf_macro_uses_p("%{d}.p.example.com"));
}

/* 7.3: a name over 253 octets loses labels on the left; a trailing dot
 * goes. */
static void test_macro_domain(void **state)
{
	(void)state;
	char out[SPF_NAME_MAX + 1];
	struct spf_vars v = rfc_v4;
	v.o = "somewhat.long.exp.example.com";
	assert_true(spf_macro_domain("foobar.%{o}.%{o}.%{o}.%{o}.%{o}.%{o}.%{o}.%{o}.example.com.", &v,
	                             out));
	assert_string_equal(out, "somewhat.long.exp.example.com.somewhat.long.exp.example.com."
	                    "somewhat.long.exp.example.com.somewhat.long.exp.example.com."
	                    "somewhat.long.exp.example.com.somewhat.long.exp.example.com."
	                    "somewhat.long.exp.example.com.somewhat.long.exp.example.com.example.com");
	assert_true(strlen(out) <= SPF_NAME_MAX);
	assert_true(spf_macro_domain("%{d}.", &v, out));
	assert_string_equal(out, "email.example.com");
}

/* ---- check_host() on a table of zone data ---- */

struct rrs {
	const char *name;
	enum spf_qtype type;
	const char *rr[12];      /* NULL-terminated; "TIMEOUT" alone: a DNS error */
};

struct zone {
	const struct rrs *rrs;
	size_t n;
	unsigned asked;          /* questions */
	char log[4096];          /* "TYPE name;" per question */
	bool later;              /* hold the question for the test to answer */
	struct spf *held;
	struct spf_query q;
	char qname[SPF_NAME_MAX + 1];
};

static const char *const qtype_name[] = { "TXT", "A", "AAAA", "MX", "PTR" };

static void zone_answer(struct zone *z, struct spf *s, const struct spf_query *q)
{
	bool name_exists = false;
	for (size_t i = 0; i < z->n; i++) {
		if (strcasecmp(z->rrs[i].name, q->name))
			continue;
		name_exists = true;
		if (z->rrs[i].type != q->type)
			continue;
		const char *const *rr = z->rrs[i].rr;
		size_t n = 0;
		while (rr[n])
			n++;
		struct spf_answer a = { SPF_DNS_OK, n, rr };
		if (n == 1 && !strcmp(rr[0], "TIMEOUT"))
			a = (struct spf_answer){ SPF_DNS_ERROR, 0, NULL };
		return spf_answer(s, &a);
	}
	struct spf_answer a = { name_exists ? SPF_DNS_OK : SPF_DNS_NXDOMAIN, 0, NULL };
	spf_answer(s, &a);
}

static void zone_ask(void *ctx, struct spf *s, const struct spf_query *q)
{
	struct zone *z = ctx;
	z->asked++;
	size_t o = strlen(z->log);
	snprintf(z->log + o, sizeof z->log - o, "%s %s;", qtype_name[q->type], q->name);
	if (z->later) {
		z->held = s;
		z->q = *q;
		snprintf(z->qname, sizeof z->qname, "%s", q->name);
		z->q.name = z->qname;
		return;
	}
	zone_answer(z, s, q);
}

struct done {
	bool called;
	unsigned times;
	struct spf_outcome o;
};

static void on_done(void *ctx, const struct spf_outcome *o)
{
	struct done *d = ctx;
	d->called = true;
	d->times++;
	d->o = *o;
}

static struct spf_outcome check(struct zone *z, const char *ip, const char *sender,
                                const char *helo)
{
	struct spf_dns dns = { zone_ask, z };
	struct spf_request req = { ip, sender, helo, "mx.receiver.example", 1700000000 };
	struct done d = { 0 };
	struct spf *s = spf_new(&req, &dns, on_done, &d);
	spf_start(s);
	if (!d.called)
		fail_msg("no outcome for %s %s (asked: %s)", ip, sender, z->log);
	assert_int_equal(d.times, 1);
	spf_free(s);
	return d.o;
}

#define ZONE(rows) { rows, sizeof rows / sizeof rows[0], 0, "", false, NULL, { 0, NULL }, "" }

static const struct rrs zone1[] = {
	{ "example.com", SPF_Q_TXT, { "google-site-verification=xyz",
	                               "v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 a:mail.example.com "
	                               "mx/30 -all exp=why.example.com" } },
	{ "why.example.com", SPF_Q_TXT, { "%{i} is not one of %{d}'s designated mail servers." } },
	{ "mail.example.com", SPF_Q_A, { "198.51.100.10" } },
	{ "example.com", SPF_Q_MX, { "mx1.example.com", "mx2.example.com" } },
	{ "mx1.example.com", SPF_Q_A, { "203.0.113.1" } },
	{ "mx2.example.com", SPF_Q_A, { "203.0.113.64" } },
	{ "mx2.example.com", SPF_Q_AAAA, { "2001:db8:ff::1" } },
	{ "soft.example", SPF_Q_TXT, { "v=spf1 ip4:192.0.2.1 ~all" } },
	{ "neutral.example", SPF_Q_TXT, { "v=spf1 ?all" } },
	{ "empty.example", SPF_Q_TXT, { "v=spf1" } },
	{ "norecord.example", SPF_Q_TXT, { "just text" } },
	{ "norecord.example", SPF_Q_A, { "192.0.2.9" } },
	{ "two.example", SPF_Q_TXT, { "v=spf1 -all", "v=spf1 +all" } },
	{ "broken.example", SPF_Q_TXT, { "v=spf1 ip4:192.0.2.1 -all moo" } },
	{ "servfail.example", SPF_Q_TXT, { "TIMEOUT" } },
	{ "aerr.example", SPF_Q_TXT, { "v=spf1 a:err.example -all" } },
	{ "err.example", SPF_Q_A, { "TIMEOUT" } },
	{ "helo.example", SPF_Q_TXT, { "v=spf1 a -all" } },
	{ "helo.example", SPF_Q_A, { "192.0.2.77" } },
	{ "mapped.example", SPF_Q_TXT, { "v=spf1 -ip4:1.2.3.4 ip6:::FFFF:1.2.3.4" } },
};

static void test_eval_basics(void **state)
{
	(void)state;
	static const struct {
		const char *ip, *sender, *helo;
		enum spf_result want;
		const char *mech;
	} rows[] = {
		{ "192.0.2.55", "a@example.com", "h.example", SPF_PASS, "ip4:192.0.2.0/24" },
		{ "2001:db8:5::1", "a@example.com", "h.example", SPF_PASS, "ip6:2001:db8::/32" },
		{ "198.51.100.10", "a@example.com", "h.example", SPF_PASS, "a:mail.example.com" },
		{ "203.0.113.2", "a@example.com", "h.example", SPF_PASS, "mx/30" },  /* mx1's /30 */
		{ "203.0.113.66", "a@example.com", "h.example", SPF_PASS, "mx/30" },  /* mx2's */
		{ "203.0.113.5", "a@example.com", "h.example", SPF_FAIL, "-all" },
		{ "2001:db9::1", "a@example.com", "h.example", SPF_FAIL, "-all" },
		{ "192.0.2.2", "a@soft.example", "h.example", SPF_SOFTFAIL, "~all" },
		{ "192.0.2.2", "a@neutral.example", "h.example", SPF_NEUTRAL, "?all" },
		{ "192.0.2.2", "a@empty.example", "h.example", SPF_NEUTRAL, "default" },
		{ "192.0.2.2", "a@norecord.example", "h.example", SPF_NONE, "" },
		{ "192.0.2.2", "a@nowhere.example", "h.example", SPF_NONE, "" },
		{ "192.0.2.2", "a@two.example", "h.example", SPF_PERMERROR, "" },
		{ "192.0.2.1", "a@broken.example", "h.example", SPF_PERMERROR, "" },  /* 4.6 */
		{ "192.0.2.2", "a@servfail.example", "h.example", SPF_TEMPERROR, "" },
		{ "192.0.2.2", "a@aerr.example", "h.example", SPF_TEMPERROR, "" },
		{ "192.0.2.2", "a@singlelabel", "h.example", SPF_NONE, "" },          /* 4.3 */
		{ "192.0.2.2", "a@[192.0.2.2]", "h.example", SPF_NONE, "" },
		/* 2.4: the null sender, checked as postmaster@helo */
		{ "192.0.2.77", "", "helo.example", SPF_PASS, "a" },
		{ "192.0.2.78", "", "helo.example", SPF_FAIL, "-all" },
		{ "192.0.2.78", "", "[192.0.2.78]", SPF_NONE, "" },
		{ "192.0.2.78", "", "OEMCOMPUTER", SPF_NONE, "" },
		/* 5: an IPv4-mapped client is IPv4 */
		{ "::ffff:1.2.3.4", "a@mapped.example", "h.example", SPF_FAIL, "-ip4:1.2.3.4" },
		{ "not an address", "a@example.com", "h.example", SPF_PERMERROR, "" },
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		struct zone z = ZONE(zone1);
		struct spf_outcome o = check(&z, rows[i].ip, rows[i].sender, rows[i].helo);
		if (o.result != rows[i].want || strcmp(o.mechanism, rows[i].mech))
			fail_msg("row %zu (%s %s): %s by '%s' (%s), want %s by '%s'", i, rows[i].ip,
			         rows[i].sender, spf_result_name(o.result), o.mechanism, o.problem,
			         spf_result_name(rows[i].want), rows[i].mech);
	}
}

static void test_eval_explanation(void **state)
{
	(void)state;
	struct zone z = ZONE(zone1);
	struct spf_outcome o = check(&z, "203.0.113.5", "someone@example.com", "h.example");
	assert_int_equal(o.result, SPF_FAIL);
	assert_string_equal(o.explanation, "203.0.113.5 is not one of example.com's designated "
	                    "mail servers.");
	assert_string_equal(o.domain, "example.com");
	assert_int_equal(o.identity, SPF_MAILFROM);
	z = (struct zone)ZONE(zone1);
	o = check(&z, "192.0.2.78", "", "helo.example");
	assert_int_equal(o.identity, SPF_HELO);
	assert_string_equal(o.domain, "helo.example");
	assert_string_equal(o.explanation, "");
	/* a pass fetches no explanation (6.2) */
	z = (struct zone)ZONE(zone1);
	check(&z, "192.0.2.1", "someone@example.com", "h.example");
	assert_null(strstr(z.log, "why.example.com"));
}

static const struct rrs zone_limits[] = {
	{ "loop.example", SPF_Q_TXT, { "v=spf1 include:loop2.example -all" } },
	{ "loop2.example", SPF_Q_TXT, { "v=spf1 include:loop.example" } },
	{ "redir.example", SPF_Q_TXT, { "v=spf1 ip4:1.1.1.1 redirect=redir.example" } },
	{ "ten.example", SPF_Q_TXT, { "v=spf1 a mx a mx a mx a mx a ptr ip4:192.0.2.1 -all" } },
	{ "eleven.example", SPF_Q_TXT, { "v=spf1 a mx a mx a mx a mx a ptr a ip4:192.0.2.1 -all" } },
	{ "ten.example", SPF_Q_A, { "198.51.100.1" } },
	{ "ten.example", SPF_Q_MX, { "ten.example" } },
	{ "eleven.example", SPF_Q_A, { "198.51.100.1" } },
	{ "eleven.example", SPF_Q_MX, { "eleven.example" } },
	{ "incl8.example", SPF_Q_TXT, { "v=spf1 a include:eight.example ip4:192.0.2.1 mx -all" } },
	{ "incl8.example", SPF_Q_A, { "198.51.100.1" } },
	{ "eight.example", SPF_Q_TXT, { "v=spf1 a a a a a a a a" } },
	{ "eight.example", SPF_Q_A, { "198.51.100.2" } },
	{ "incl9.example", SPF_Q_TXT, { "v=spf1 a include:eight.example a ip4:192.0.2.1 -all" } },
	{ "incl9.example", SPF_Q_A, { "198.51.100.1" } },
	{ "void2.example", SPF_Q_TXT, { "v=spf1 a:nx1.example a:nx2.example ?all" } },
	{ "void3.example", SPF_Q_TXT, { "v=spf1 a:nx1.example a:nx2.example a:nodata.example ?all" } },
	{ "nodata.example", SPF_Q_MX, { "mx.example" } },
	{ "voidexp.example", SPF_Q_TXT, { "v=spf1 a:nx1.example a:nx2.example exp=nx3.example -all" } },
	{ "mx11.example", SPF_Q_TXT, { "v=spf1 mx" } },
	{ "mx11.example", SPF_Q_MX, { "m1.example", "m2.example", "m3.example", "m4.example",
	                              "m5.example", "m6.example", "m7.example", "m8.example",
	                              "m9.example", "m10.example", "m11.example" } },
	{ "mx10.example", SPF_Q_TXT, { "v=spf1 mx" } },
	{ "mx10.example", SPF_Q_MX, { "m1.example", "m2.example", "m3.example", "m4.example",
	                              "m5.example", "m6.example", "m7.example", "m8.example",
	                              "m9.example", "m10.example" } },
	{ "m1.example", SPF_Q_A, { "10.0.0.1" } }, { "m2.example", SPF_Q_A, { "10.0.0.2" } },
	{ "m3.example", SPF_Q_A, { "10.0.0.3" } }, { "m4.example", SPF_Q_A, { "10.0.0.4" } },
	{ "m5.example", SPF_Q_A, { "10.0.0.5" } }, { "m6.example", SPF_Q_A, { "10.0.0.6" } },
	{ "m7.example", SPF_Q_A, { "10.0.0.7" } }, { "m8.example", SPF_Q_A, { "10.0.0.8" } },
	{ "m9.example", SPF_Q_A, { "10.0.0.9" } }, { "m10.example", SPF_Q_A, { "10.0.0.10" } },
	{ "m11.example", SPF_Q_A, { "10.0.0.11" } },
	{ "ptr11.example", SPF_Q_TXT, { "v=spf1 ptr -all" } },
	{ "5.3.2.1.in-addr.arpa", SPF_Q_PTR, { "a1.example", "a2.example", "a3.example",
	                                       "a4.example", "a5.example", "a6.example",
	                                       "a7.example", "a8.example", "a9.example",
	                                       "a10.example", "ptr11.example" } },
	{ "ptr11.example", SPF_Q_A, { "1.2.3.5" } },
};

static void test_eval_limits(void **state)
{
	(void)state;
	static const struct {
		const char *ip, *sender;
		enum spf_result want;
		unsigned lookups;   /* 0: not checked */
	} rows[] = {
		{ "192.0.2.1", "x@loop.example", SPF_PERMERROR, 11 },        /* include loop */
		{ "192.0.2.1", "x@redir.example", SPF_PERMERROR, 11 },       /* redirect loop */
		{ "192.0.2.1", "x@ten.example", SPF_PASS, 10 },              /* at the limit */
		{ "192.0.2.1", "x@eleven.example", SPF_PERMERROR, 11 },      /* over it */
		{ "192.0.2.1", "x@incl8.example", SPF_PASS, 10 },
		{ "192.0.2.1", "x@incl9.example", SPF_PERMERROR, 11 },
		{ "192.0.2.1", "x@void2.example", SPF_NEUTRAL, 2 },          /* two void lookups */
		{ "192.0.2.1", "x@void3.example", SPF_PERMERROR, 3 },        /* a third */
		{ "192.0.2.1", "x@voidexp.example", SPF_FAIL, 2 },           /* exp= is not void */
		{ "10.0.0.11", "x@mx11.example", SPF_PERMERROR, 1 },         /* 11 MX: permerror */
		{ "10.0.0.10", "x@mx10.example", SPF_PASS, 1 },              /* 10: fine */
		{ "1.2.3.5", "x@ptr11.example", SPF_FAIL, 1 },               /* 11th PTR ignored */
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		struct zone z = ZONE(zone_limits);
		struct spf_outcome o = check(&z, rows[i].ip, rows[i].sender, "h.example");
		if (o.result != rows[i].want || (rows[i].lookups && o.lookups != rows[i].lookups))
			fail_msg("row %zu (%s): %s after %u lookups (%s), want %s after %u", i,
			         rows[i].sender, spf_result_name(o.result), o.lookups, o.problem,
			         spf_result_name(rows[i].want), rows[i].lookups);
	}
}

static const struct rrs zone_mech[] = {
	/* include (5.2): each result of the included record */
	{ "inc.example", SPF_Q_TXT, { "v=spf1 include:pass.example -include:fail.example "
	                              "include:soft.example include:neutral.example ?all" } },
	{ "pass.example", SPF_Q_TXT, { "v=spf1 ip4:192.0.2.1 -all" } },
	{ "fail.example", SPF_Q_TXT, { "v=spf1 -ip4:192.0.2.2 +all" } },
	{ "soft.example", SPF_Q_TXT, { "v=spf1 ~all" } },
	{ "neutral.example", SPF_Q_TXT, { "v=spf1 ?all" } },
	{ "incnone.example", SPF_Q_TXT, { "v=spf1 include:nothing.example -all" } },
	{ "incerr.example", SPF_Q_TXT, { "v=spf1 include:servfail.example -all" } },
	{ "servfail.example", SPF_Q_TXT, { "TIMEOUT" } },
	{ "incperm.example", SPF_Q_TXT, { "v=spf1 include:bad.example -all" } },
	{ "bad.example", SPF_Q_TXT, { "v=spf1 include" } },
	/* redirect (6.1) */
	{ "redirect.example", SPF_Q_TXT, { "v=spf1 exp=no.example redirect=target.example" } },
	{ "target.example", SPF_Q_TXT, { "v=spf1 ip4:192.0.2.1 -all exp=yes.example" } },
	{ "yes.example", SPF_Q_TXT, { "See %{o}, redirected to %{d}." } },
	{ "no.example", SPF_Q_TXT, { "No" } },
	{ "redirnone.example", SPF_Q_TXT, { "v=spf1 redirect=nothing.example" } },
	{ "redirafter.example", SPF_Q_TXT, { "v=spf1 redirect=redirafter.example ~all" } },
	/* ip6 CIDR */
	{ "v6.example", SPF_Q_TXT, { "v=spf1 ip6:2001:db8:1234::/48 ip6:2001:db8:ffff::1 -all" } },
	/* mx with CIDR, both families */
	{ "mxc.example", SPF_Q_TXT, { "v=spf1 mx/24//64 -all" } },
	{ "mxc.example", SPF_Q_MX, { "mx.mxc.example" } },
	{ "mx.mxc.example", SPF_Q_A, { "198.51.100.200" } },
	{ "mx.mxc.example", SPF_Q_AAAA, { "2001:db8:77:1::25" } },
	/* a with a dual CIDR on another name */
	{ "ac.example", SPF_Q_TXT, { "v=spf1 a:host.ac.example/28//120 -all" } },
	{ "host.ac.example", SPF_Q_A, { "203.0.113.17" } },
	{ "host.ac.example", SPF_Q_AAAA, { "2001:db8::1:0" } },
	/* exists with macros: a list keyed by address and local part */
	{ "ex.example", SPF_Q_TXT, { "v=spf1 exists:%{ir}.%{l1r+-}._allow.%{d} -all" } },
	{ "1.2.0.192.bob._allow.ex.example", SPF_Q_A, { "127.0.0.2" } },
	/* ptr: validated names at or under the target */
	{ "ptr.example", SPF_Q_TXT, { "v=spf1 ptr -all" } },
	{ "ptrt.example", SPF_Q_TXT, { "v=spf1 ptr:mail.example.org -all" } },
	{ "7.2.0.192.in-addr.arpa", SPF_Q_PTR, { "liar.example.org", "host.ptr.example" } },
	{ "host.ptr.example", SPF_Q_A, { "192.0.2.7" } },
	{ "liar.example.org", SPF_Q_A, { "192.0.2.99" } },
	{ "8.2.0.192.in-addr.arpa", SPF_Q_PTR, { "out.mail.example.org" } },
	{ "out.mail.example.org", SPF_Q_A, { "192.0.2.8" } },
	{ "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa", SPF_Q_PTR,
	  { "v6host.ptr.example." } },
	{ "v6host.ptr.example", SPF_Q_AAAA, { "2001:db8::1" } },
	/* %{p} in exp (7.3) */
	{ "pexp.example", SPF_Q_TXT, { "v=spf1 -all exp=pmsg.example" } },
	{ "pmsg.example", SPF_Q_TXT, { "%{c} is %{p}; rejected by %{r}" } },
	/* bad exp texts: ignored (6.2) */
	{ "badexp.example", SPF_Q_TXT, { "v=spf1 -all exp=badmsg.example" } },
	{ "badmsg.example", SPF_Q_TXT, { "The %{x}-files." } },
	{ "twoexp.example", SPF_Q_TXT, { "v=spf1 -all exp=twomsg.example" } },
	{ "twomsg.example", SPF_Q_TXT, { "one", "two" } },
	{ "crlfexp.example", SPF_Q_TXT, { "v=spf1 -all exp=crlf.example" } },
	{ "crlf.example", SPF_Q_TXT, { "bad\r\n250 injected" } },
};

static void test_eval_mechanisms(void **state)
{
	(void)state;
	static const struct {
		const char *ip, *sender;
		enum spf_result want;
		const char *mech, *exp;
	} rows[] = {
		{ "192.0.2.1", "x@inc.example", SPF_PASS, "include:pass.example", "" },
		{ "192.0.2.2", "x@inc.example", SPF_NEUTRAL, "?all", "" },   /* fail: no match */
		{ "192.0.2.3", "x@inc.example", SPF_FAIL, "-include:fail.example", "" },
		{ "192.0.2.1", "x@incnone.example", SPF_PERMERROR, "", "" }, /* none: permerror */
		{ "192.0.2.1", "x@incerr.example", SPF_TEMPERROR, "", "" },
		{ "192.0.2.1", "x@incperm.example", SPF_PERMERROR, "", "" },
		{ "192.0.2.1", "x@redirect.example", SPF_PASS, "ip4:192.0.2.1", "" },
		{ "192.0.2.9", "x@redirect.example", SPF_FAIL, "-all",
		  "See redirect.example, redirected to target.example." },
		{ "192.0.2.9", "x@redirnone.example", SPF_PERMERROR, "", "" },
		{ "192.0.2.9", "x@redirafter.example", SPF_SOFTFAIL, "~all", "" },
		{ "2001:db8:1234:ff::9", "x@v6.example", SPF_PASS, "ip6:2001:db8:1234::/48", "" },
		{ "2001:db8:1235::9", "x@v6.example", SPF_FAIL, "-all", "" },
		{ "2001:db8:ffff::1", "x@v6.example", SPF_PASS, "ip6:2001:db8:ffff::1", "" },
		{ "2001:db8:ffff::2", "x@v6.example", SPF_FAIL, "-all", "" },
		{ "192.0.2.1", "x@v6.example", SPF_FAIL, "-all", "" },
		{ "198.51.100.7", "x@mxc.example", SPF_PASS, "mx/24//64", "" },
		{ "198.51.101.7", "x@mxc.example", SPF_FAIL, "-all", "" },
		{ "2001:db8:77:1:ffff::", "x@mxc.example", SPF_PASS, "mx/24//64", "" },
		{ "2001:db8:77:2::25", "x@mxc.example", SPF_FAIL, "-all", "" },
		{ "203.0.113.30", "x@ac.example", SPF_PASS, "a:host.ac.example/28//120", "" },
		{ "203.0.113.32", "x@ac.example", SPF_FAIL, "-all", "" },
		{ "2001:db8::1:ff", "x@ac.example", SPF_PASS, "a:host.ac.example/28//120", "" },
		{ "192.0.2.1", "bob-smith@ex.example", SPF_PASS, "exists:%{ir}.%{l1r+-}._allow.%{d}", "" },
		{ "192.0.2.1", "alice@ex.example", SPF_FAIL, "-all", "" },
		{ "192.0.2.7", "x@ptr.example", SPF_PASS, "ptr", "" },
		{ "192.0.2.99", "x@ptr.example", SPF_FAIL, "-all", "" },      /* not validated */
		{ "192.0.2.8", "x@ptrt.example", SPF_PASS, "ptr:mail.example.org", "" },
		{ "2001:db8::1", "x@ptr.example", SPF_PASS, "ptr", "" },
		{ "192.0.2.7", "x@pexp.example", SPF_FAIL, "-all",
		  "192.0.2.7 is host.ptr.example; rejected by mx.receiver.example" },
		{ "192.0.2.5", "x@pexp.example", SPF_FAIL, "-all",
		  "192.0.2.5 is unknown; rejected by mx.receiver.example" },
		{ "192.0.2.5", "x@badexp.example", SPF_FAIL, "-all", "" },
		{ "192.0.2.5", "x@twoexp.example", SPF_FAIL, "-all", "" },
		{ "192.0.2.5", "x@crlfexp.example", SPF_FAIL, "-all", "" },
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		struct zone z = ZONE(zone_mech);
		struct spf_outcome o = check(&z, rows[i].ip, rows[i].sender, "h.example");
		if (o.result != rows[i].want || strcmp(o.mechanism, rows[i].mech) ||
		    strcmp(o.explanation, rows[i].exp))
			fail_msg("row %zu (%s %s): %s by '%s' exp '%s' (%s), want %s by '%s' exp '%s'", i,
			         rows[i].ip, rows[i].sender, spf_result_name(o.result), o.mechanism,
			         o.explanation, o.problem, spf_result_name(rows[i].want), rows[i].mech,
			         rows[i].exp);
	}
}

/* Answers that come later, one at a time, as from a resolver on a loop;
 * and an evaluation freed with a question open. */
static void test_eval_later(void **state)
{
	(void)state;
	struct zone z = ZONE(zone1);
	z.later = true;
	struct spf_dns dns = { zone_ask, &z };
	struct spf_request req = { "203.0.113.66", "a@example.com", "h.example", "", 0 };
	struct done d = { 0 };
	struct spf *s = spf_new(&req, &dns, on_done, &d);
	spf_start(s);
	unsigned steps = 0;
	while (!d.called) {
		assert_non_null(z.held);
		struct spf *held = z.held;
		z.held = NULL;
		z.later = false;    /* answer this one only, as if from the loop */
		zone_answer(&z, held, &z.q);
		z.later = true;
		assert_true(++steps < 20);
	}
	assert_int_equal(d.o.result, SPF_PASS);
	assert_string_equal(d.o.mechanism, "mx/30");
	assert_string_equal(z.log, "TXT example.com;A mail.example.com;MX example.com;"
	                    "A mx1.example.com;A mx2.example.com;");
	spf_free(s);

	z = (struct zone)ZONE(zone1);
	z.later = true;
	d = (struct done){ 0 };
	s = spf_new(&req, &dns, on_done, &d);
	spf_start(s);
	assert_false(d.called);
	spf_free(s);        /* nothing leaks, nothing is called */
	assert_false(d.called);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_record_is),
		cmocka_unit_test(test_record_parse),
		cmocka_unit_test(test_record_addresses),
		cmocka_unit_test(test_macro_rfc_examples),
		cmocka_unit_test(test_macro_more),
		cmocka_unit_test(test_macro_syntax),
		cmocka_unit_test(test_macro_domain),
		cmocka_unit_test(test_eval_basics),
		cmocka_unit_test(test_eval_explanation),
		cmocka_unit_test(test_eval_limits),
		cmocka_unit_test(test_eval_mechanisms),
		cmocka_unit_test(test_eval_later),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
