/* libFuzzer: SASL PLAIN/LOGIN decoding and strict base64 (net/smtp.c):
 * what decodes encodes back to the same text. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "net/smtp.h"
#include "policy/auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	char user[AUTH_FIELD_MAX + 1], pass[AUTH_FIELD_MAX + 1];
	(void)auth_plain_decode(s, user, pass);
	(void)auth_login_decode(s, user);
	unsigned char out[4096];
	long n = smtp_b64_decode(s, size, out, sizeof out);
	if (n >= 0) {
		struct buf enc = BUF_INIT;
		smtp_b64_encode(out, (size_t)n, &enc);
		if (enc.len != size || memcmp(buf_cstr(&enc), s, size))
			abort();
		buf_free(&enc);
	}
	free(s);
	return 0;
}
