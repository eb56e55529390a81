/* idna: domains as IDNA A-labels (see idna.h), with libidn2. */
#include "lib/idna.h"

#include <idn2.h>
#include <stdio.h>
#include <stdlib.h>

#include "lib/util.h"

bool idna_has_8bit(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s >= 0x80)
			return true;
	return false;
}

bool idna_alabel(const char *domain, char *out, size_t n)
{
	char *a = NULL;
	int w;

	if (!idna_has_8bit(domain)) {
		w = snprintf(out, n, "%s", domain);
	} else {
		if (idn2_to_ascii_8z(domain, &a, IDN2_NONTRANSITIONAL | IDN2_NFC_INPUT) != IDN2_OK)
			return false;
		w = snprintf(out, n, "%s", a);
		idn2_free(a);
	}
	if (w < 0 || (size_t)w >= n)
		return false;
	util_lower(out);
	return true;
}
