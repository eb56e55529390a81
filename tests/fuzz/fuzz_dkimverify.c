/* libFuzzer: a whole message through the DKIM verifier (src/dkim/msg.c,
 * sig.c, verify.c): the header scanner, field splitting, the signature
 * fields, the body hashes with l=, header selection, and a check against
 * a fixed Ed25519 key record. The first byte cuts the message into feeds:
 * the verdicts must not depend on the cut. Nothing crashes, whatever the
 * input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dkim/verify.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char rec[] = "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";

static size_t run(const char *p, size_t n, size_t step, enum dkim_status *st)
{
	struct dkim_verify *v = dkim_verify_new();
	for (size_t i = 0; i < n; i += step)
		dkim_verify_feed(v, p + i, n - i < step ? n - i : step);
	dkim_verify_end(v);
	size_t count = dkim_verify_count(v);
	for (size_t k = 0; k < count; k++) {
		const struct dkim_sig *sig;
		st[k] = dkim_verify_sig(v, k, &sig);
		if (st[k] == DKIM_OK)
			st[k] = dkim_verify_check(v, k, rec, sizeof rec - 1, 1700000000);
	}
	dkim_verify_free(v);
	return count;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 16384)
		return 0;
	enum dkim_status a[DKIM_SIGS_MAX], b[DKIM_SIGS_MAX];
	size_t step = (size_t)data[0] % 13 + 1;
	size_t na = run((const char *)data + 1, size - 1, size, a);
	size_t nb = run((const char *)data + 1, size - 1, step, b);
	if (na != nb || memcmp(a, b, na * sizeof a[0]))
		abort();
	return 0;
}
