/* libFuzzer: ESMTP parameters of MAIL and RCPT, and xtext round trips. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtpd/parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	const char *bad = NULL;
	struct parse_mail_params mp;
	struct parse_rcpt_params rp;
	(void)parse_mail_params(s, &mp, &bad);
	(void)parse_rcpt_params(s, &rp, &bad);
	char dec[600], enc[1800], again[600];
	if (smtp_xtext_decode(s, strlen(s), dec, sizeof dec) &&
	    smtp_xtext_encode(dec, enc, sizeof enc)) {
		if (!smtp_xtext_decode(enc, strlen(enc), again, sizeof again) || strcmp(dec, again))
			abort();
	}
	free(s);
	return 0;
}
