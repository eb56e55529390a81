/* libFuzzer: the address parser; a parsed address formats and parses again
 * to the same mailbox. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/addr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	struct addr a, b;
	const char *end;
	for (int mode = 0; mode < 4; mode++) {
		if (addr_parse_path(s, &end, &a, mode & 1, mode & 2) != ADDR_OK)
			continue;
		if (end < s || end > s + strlen(s))
			abort();
		char out[ADDR_PATH_MAX + 8];
		if (!a.null && a.domain[0] && addr_format(&a, out, sizeof out)) {
			if (addr_parse_mailbox(out, &b) != ADDR_OK || strcmp(a.domain, b.domain) ||
			    strcmp(a.local, b.local))
				abort();  /* formatting must round-trip */
		}
	}
	(void)addr_parse_mailbox(s, &a);
	(void)addr_domain_valid(s);
	free(s);
	return 0;
}
