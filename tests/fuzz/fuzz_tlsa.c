/* libFuzzer: TLSA rdata (net/tlsa.c, RFC 6698 2.1) and a host's verdict
 * from a set of records. A record parsed keeps its fields and data; one
 * found usable is DANE-TA or DANE-EE (RFC 7672 3.1.3) with a digest of
 * its type's size; the description is always a string within its
 * buffer. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/tlsa.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_one(const uint8_t *data, size_t size)
{
	struct tlsa_rr rr;
	if (!tlsa_parse(data, size, &rr))
		return;
	if (rr.len != size - 3 || memcmp(rr.data, data + 3, rr.len) != 0)
		abort();
	if (tlsa_usable(&rr) && (rr.usage < 2 || rr.usage > 3 ||
	                         (rr.mtype == 1 && rr.len != 32) || (rr.mtype == 2 && rr.len != 64)))
		abort();
	char out[40];
	tlsa_describe(rr.usage, rr.selector, rr.mtype, rr.data, rr.len, out, sizeof out);
	if (strnlen(out, sizeof out) == sizeof out)
		abort();
	tlsa_rr_free(&rr);
}

/* The input split at each 0xff octet into records of one RRset. */
static void fuzz_set(const uint8_t *data, size_t size)
{
	const char *rec[12];
	size_t lens[12], n = 0, start = 0;
	for (size_t i = 0; i <= size && n < 12; i++)
		if (i == size || data[i] == 0xff) {
			rec[n] = (const char *)data + start;
			lens[n++] = i - start;
			start = i + 1;
		}
	struct tlsa_set *s = tlsa_set_new(1);
	tlsa_host_judge(&s->host[0], rec, lens, n);
	const struct tlsa_host *h = &s->host[0];
	if (h->n > TLSA_RECORDS_MAX || (h->state == TLSA_USABLE) != (h->n > 0))
		abort();
	for (size_t i = 0; i < h->n; i++)
		if (!tlsa_usable(&h->rr[i]))
			abort();
	tlsa_set_unref(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_one(data, size);
	fuzz_set(data, size);
	return 0;
}
