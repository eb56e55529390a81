/* tlsa: TLSA records and a destination's DANE verdicts (see tlsa.h). */
#include "net/tlsa.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"

#define TLSA_HEX_SHOWN 8        /* octets of the data shown in the log */

bool tlsa_parse(const unsigned char *rdata, size_t len, struct tlsa_rr *out)
{
	memset(out, 0, sizeof *out);
	if (len < 4 || len - 3 > TLSA_DATA_MAX)
		return false;
	out->usage = rdata[0];
	out->selector = rdata[1];
	out->mtype = rdata[2];
	out->len = len - 3;
	out->data = util_xcalloc(out->len, 1);
	memcpy(out->data, rdata + 3, out->len);
	return true;
}

void tlsa_rr_free(struct tlsa_rr *rr)
{
	free(rr->data);
	rr->data = NULL;
	rr->len = 0;
}

bool tlsa_usable(const struct tlsa_rr *rr)
{
	if (rr->usage != TLSA_DANE_TA && rr->usage != TLSA_DANE_EE)
		return false;            /* RFC 7672 3.1.3 */
	if (rr->selector != TLSA_SEL_CERT && rr->selector != TLSA_SEL_SPKI)
		return false;
	switch (rr->mtype) {
	case TLSA_MT_FULL: return rr->len > 0;
	case TLSA_MT_SHA256: return rr->len == 32;
	case TLSA_MT_SHA512: return rr->len == 64;
	default: return false;
	}
}

void tlsa_describe(unsigned usage, unsigned selector, unsigned mtype, const unsigned char *data,
                   size_t len, char *out, size_t n)
{
	int o = snprintf(out, n, "%u %u %u ", usage, selector, mtype);
	for (size_t i = 0; i < len && i < TLSA_HEX_SHOWN && o > 0 && (size_t)o + 3 <= n; i++)
		o += snprintf(out + o, n - (size_t)o, "%02x", data[i]);
}

/* ---- a destination's hosts ---- */

struct tlsa_set *tlsa_set_new(size_t nhost)
{
	struct tlsa_set *s = util_xcalloc(1, sizeof *s + nhost * sizeof s->host[0]);
	s->refs = 1;
	s->nhost = nhost;
	return s;
}

struct tlsa_set *tlsa_set_ref(struct tlsa_set *s)
{
	if (s)
		s->refs++;
	return s;
}

void tlsa_set_unref(struct tlsa_set *s)
{
	if (!s || --s->refs > 0)
		return;
	for (size_t h = 0; h < s->nhost; h++)
		for (size_t i = 0; i < s->host[h].n; i++)
			tlsa_rr_free(&s->host[h].rr[i]);
	free(s);
}

const struct tlsa_host *tlsa_set_find(const struct tlsa_set *s, const char *name)
{
	for (size_t h = 0; s && h < s->nhost; h++)
		if (!strcmp(s->host[h].name, name))
			return &s->host[h];
	return NULL;
}

/* RFC 7672 2.2: records, but none usable, still mean the server has TLS:
 * mandatory (unauthenticated) TLS, never clear text. */
void tlsa_host_judge(struct tlsa_host *h, const char *const *rdata, const size_t *lens, size_t n)
{
	h->state = n ? TLSA_UNUSABLE : TLSA_NONE;
	for (size_t i = 0; i < n && h->n < TLSA_RECORDS_MAX; i++) {
		struct tlsa_rr rr;
		if (!tlsa_parse((const unsigned char *)rdata[i], lens[i], &rr))
			continue;
		if (tlsa_usable(&rr))
			h->rr[h->n++] = rr;
		else
			tlsa_rr_free(&rr);
	}
	if (h->n)
		h->state = TLSA_USABLE;
}
