/* libFuzzer: an SPF record (policy/spf_record.c), parsed, and evaluated
 * (policy/spf.c) against a zone where every name publishes that same
 * record and has an address, an exchanger and a name for the client: a
 * record that parses is taken through check_host() to its end, within
 * the limits of RFC 7208 4.6.4, with exactly one outcome. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "policy/spf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fuzz_zone {
	const char *record;
	unsigned asked, outcomes;
	struct spf_outcome o;
};

static void fuzz_spf_ask(void *ctx, struct spf *s, const struct spf_query *q)
{
	struct fuzz_zone *z = ctx;
	static const char *const a[] = { "192.0.2.1", "192.0.2.2" };
	static const char *const aaaa[] = { "2001:db8::1" };
	static const char *const mx[] = { "mx.example.com", "." };
	static const char *const ptr[] = { "host.example.com" };
	const char *const txt[] = { z->record, "v=spf1 -all" };
	struct spf_answer ans = { SPF_DNS_OK, 0, NULL };
	z->asked++;
	if (strlen(q->name) > SPF_NAME_MAX)
		abort();   /* only names DNS can carry are asked */
	switch (q->type) {
	case SPF_Q_TXT: ans = (struct spf_answer){ SPF_DNS_OK, z->asked % 7 ? 1 : 2, txt }; break;
	case SPF_Q_A: ans = (struct spf_answer){ SPF_DNS_OK, 2, a }; break;
	case SPF_Q_AAAA: ans = (struct spf_answer){ SPF_DNS_OK, 1, aaaa }; break;
	case SPF_Q_MX: ans = (struct spf_answer){ SPF_DNS_OK, 2, mx }; break;
	case SPF_Q_PTR: ans = (struct spf_answer){ SPF_DNS_OK, 1, ptr }; break;
	}
	if (z->asked % 11 == 0)
		ans.rcode = SPF_DNS_NXDOMAIN, ans.n = 0;
	spf_answer(s, &ans);
}

static void fuzz_spf_done(void *ctx, const struct spf_outcome *o)
{
	struct fuzz_zone *z = ctx;
	z->outcomes++;
	z->o = *o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int quiet;
	if (!quiet++)
		log_set_level(LOG_ERROR);
	char text[4096];
	if (size >= sizeof text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	struct spf_record r;
	char why[256];
	if (spf_record_parse(text, &r, why, sizeof why)) {
		for (size_t i = 0; i < r.n; i++)
			if (!r.term[i].text || (r.term[i].spec && !spf_macro_domain_spec(r.term[i].spec)))
				abort();
		spf_record_free(&r);
	} else if (!why[0]) {
		abort();
	}
	struct fuzz_zone z = { text, 0, 0, { 0 } };
	struct spf_dns dns = { fuzz_spf_ask, &z };
	static const char *const ips[] = { "192.0.2.1", "2001:db8::1", "::ffff:198.51.100.3" };
	struct spf_request req = { ips[size % 3], "user@example.com", "helo.example.com",
	                           "mx.example.net", 1700000000 };
	struct spf *s = spf_new(&req, &dns, fuzz_spf_done, &z);
	spf_start(s);
	if (z.outcomes != 1 || z.o.lookups > SPF_LOOKUPS_MAX + 1 ||
	    z.o.voids > SPF_VOIDS_MAX + 1 || strlen(z.o.explanation) >= SPF_EXP_MAX)
		abort();
	for (const char *e = z.o.explanation; *e; e++)
		if ((unsigned char)*e < 0x20 || (unsigned char)*e > 0x7e)
			abort();   /* an SMTP reply carries it */
	spf_free(s);
	return 0;
}
