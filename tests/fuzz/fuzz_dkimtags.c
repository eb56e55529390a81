/* libFuzzer: RFC 6376 3.2 tag-lists (src/dkim/tags.c), and the two
 * parsers built on them: key records (key.c) and DKIM-Signature fields
 * (sig.c). A list it takes has its tags inside the input, their values
 * made of VALCHAR and FWS, no name twice, and b='s span where it says;
 * whatever the input, the record and field parsers give a status. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dkim/key.h"
#include "dkim/sig.h"
#include "dkim/tags.h"
#include "lib/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_tags_check(const char *s, size_t n, const struct dkim_tags *t)
{
	for (size_t i = 0; i < t->n; i++) {
		const struct dkim_tag *g = &t->v[i];
		if (g->name < s || g->name + g->nlen > s + n || g->val < s || g->val + g->vlen > s + n ||
		    g->raw > g->raw_end || g->raw_end > n || g->nlen == 0)
			abort();
		for (size_t k = 0; k < g->vlen; k++)
			if (g->val[k] == ';' || (unsigned char)g->val[k] > 0x7e)
				abort();
		if (g->vlen && (g->val[0] == ' ' || g->val[g->vlen - 1] == ' '))
			abort();
		for (size_t j = 0; j < i; j++)
			if (t->v[j].nlen == g->nlen && !memcmp(t->v[j].name, g->name, g->nlen))
				abort();
		if (dkim_tags_get(t, "b") && dkim_tags_get(t, "b")->name[0] != 'b')
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 8192)
		return 0;
	const char *s = (const char *)data;
	struct dkim_tags t;
	if (dkim_tags_parse(s, size, &t))
		fuzz_tags_check(s, size, &t);
	struct dkim_key k;
	enum dkim_status st = dkim_key_parse(s, size, &k);
	if ((st == DKIM_OK) != (k.pkey != NULL))
		abort();
	dkim_key_free(&k);
	struct buf f = BUF_INIT;
	buf_puts(&f, "DKIM-Signature:");
	buf_append(&f, s, size);
	static struct dkim_sig sig;
	st = dkim_sig_parse(f.data, f.len, &sig);
	if (st == DKIM_OK && (sig.nh == 0 || sig.blen == 0 || !sig.d[0] || !sig.s[0] ||
	                      sig.b_from > sig.b_to || sig.b_to > f.len))
		abort();
	buf_free(&f);
	return 0;
}
