/* libFuzzer: MTA-STS policies and TXT records (net/mtasts.c, RFC 8461
 * 3.1, 3.2) and the MX match (4.1). A policy accepted has a known mode,
 * max_age within the cap, mx patterns that are lower-case [*.]domains
 * (and at least one unless its mode is none), each matching the host
 * it names (a wildcard one with a label put in front); an id taken
 * from a TXT record is 1 to 32 letters and digits. */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/mtasts.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_check_mx(const struct mtasts_policy *p)
{
	for (size_t i = 0; i < p->nmx; i++) {
		const char *mx = p->mx[i];
		char host[300];
		size_t len = strnlen(mx, sizeof p->mx[i]);
		if (len == 0 || len == sizeof p->mx[i])
			abort();
		for (size_t k = 0; k < len; k++)
			if (isupper((unsigned char)mx[k]))
				abort();
		if (mx[0] == '*') {
			host[0] = 'a';
			memcpy(host + 1, mx + 1, len);   /* "a.example.com", its NUL too */
		} else {
			memcpy(host, mx, len + 1);
		}
		if (!mtasts_mx_match(p, host))
			abort();
	}
}

static void fuzz_policy(const char *text, size_t size)
{
	struct mtasts_policy p;
	char why[128];
	if (!mtasts_parse(text, size, &p, why, sizeof why)) {
		if (strnlen(why, sizeof why) == 0 || strnlen(why, sizeof why) == sizeof why)
			abort();
		return;
	}
	if (p.mode > MTASTS_ENFORCE || p.max_age > MTASTS_MAX_AGE_MAX || p.nmx > MTASTS_MX_MAX ||
	    (p.mode != MTASTS_NONE && p.nmx == 0))
		abort();
	fuzz_check_mx(&p);
}

static void fuzz_txt(const char *rec, size_t size)
{
	char id[MTASTS_ID_MAX + 1];
	if (!mtasts_txt(rec, size, id))
		return;
	size_t n = strlen(id);
	if (n == 0 || n > MTASTS_ID_MAX || !mtasts_txt_is_sts(rec, size))
		abort();
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)id[i]))
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > MTASTS_BODY_MAX + 16)
		return 0;
	char *copy = malloc(size + 1);   /* exactly size octets: overreads show */
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	copy[size] = '\0';
	fuzz_policy(copy, size);
	fuzz_txt(copy, size);
	free(copy);
	return 0;
}
