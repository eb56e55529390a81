/* libFuzzer: the address parser; a parsed address formats and parses again
 * to the same mailbox; an address flagged utf8 is well-formed UTF-8 and
 * one not flagged is ASCII (RFC 6531 3.3); IDNA never fails badly. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/addr.h"
#include "lib/idna.h"

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
		bool ascii = !idna_has_8bit(a.local) && !idna_has_8bit(a.domain);
		if (a.utf8 == ascii || !addr_utf8_valid(a.local, strlen(a.local)) ||
		    !addr_utf8_valid(a.domain, strlen(a.domain)))
			abort();   /* the flag and the check agree */
		char alabel[ADDR_DOMAIN_MAX + 1];
		if (a.domain[0] && !a.literal && idna_alabel(a.domain, alabel, sizeof alabel) &&
		    idna_has_8bit(alabel))
			abort();   /* an A-label is ASCII */
		char out[ADDR_PATH_MAX + 8];
		if (!a.null && a.domain[0] && addr_format(&a, out, sizeof out)) {
			if (addr_parse_mailbox(out, &b) != ADDR_OK || strcmp(a.domain, b.domain) ||
			    strcmp(a.local, b.local))
				abort();  /* formatting must round-trip */
		}
	}
	(void)addr_parse_mailbox(s, &a);
	(void)addr_domain_valid(s);
	(void)addr_utf8_valid(s, size);
	free(s);
	return 0;
}
