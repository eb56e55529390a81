/* libFuzzer: DMARC records (policy/dmarc.c). A record parsed has a pct
 * in 0..100 and policies among the three; evaluation of any record
 * never acts more strictly than the policy it found. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/dmarc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char txt[1024];
	if (size >= sizeof txt)
		return 0;
	memcpy(txt, data, size);
	txt[size] = '\0';
	struct dmarc_record r;
	if (dmarc_parse(txt, &r) != DMARC_REC_OK)
		return 0;
	if (r.pct > 100 || r.p > DMARC_P_REJECT || r.sp > DMARC_P_REJECT)
		abort();
	struct dmarc_input in = { "example.com", false, "other.example", 0, { NULL } };
	struct dmarc_verdict v;
	dmarc_evaluate(&r, size & 1, &in, (unsigned)(size % 100), &v);
	if (v.result != DMARC_FAIL || v.act > v.policy)
		abort();
	return 0;
}
