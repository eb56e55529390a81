/* libFuzzer: the CRAM-MD5 answer parser (policy/auth.c, RFC 2195 2),
 * fed the input as it is (mostly refused by the base64 decoder) and in
 * base64 (the parser proper). What it accepts says the same thing when
 * written back in the canonical form; the check against a stored secret
 * runs on every input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/buf.h"
#include "net/smtp.h"
#include "policy/auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What was accepted, written again ("user SP lower-case hex"), decodes to
 * the same; and text (the decoded answer) is that, but for the case. */
static void fuzz_cram_again(const char *user, const unsigned char d[AUTH_CRAM_DIGEST_LEN],
                            const char *text, size_t n)
{
	struct buf plain = BUF_INIT, b64 = BUF_INIT;
	buf_printf(&plain, "%s ", user);
	for (size_t i = 0; i < AUTH_CRAM_DIGEST_LEN; i++)
		buf_printf(&plain, "%02x", d[i]);
	if (text && (plain.len != n || strncasecmp(buf_cstr(&plain), text, n)))
		abort();
	smtp_b64_encode(plain.data, plain.len, &b64);
	char user2[AUTH_FIELD_MAX + 1];
	unsigned char d2[AUTH_CRAM_DIGEST_LEN];
	if (!auth_cram_decode(buf_cstr(&b64), user2, d2) || strcmp(user, user2) ||
	    memcmp(d, d2, sizeof d2))
		abort();
	buf_free(&plain);
	buf_free(&b64);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 4096)
		return 0;
	char *s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	char user[AUTH_FIELD_MAX + 1];
	unsigned char d[AUTH_CRAM_DIGEST_LEN];
	if (auth_cram_decode(s, user, d))
		fuzz_cram_again(user, d, NULL, 0);
	struct buf b64 = BUF_INIT;
	smtp_b64_encode(data, size, &b64);
	if (auth_cram_decode(buf_cstr(&b64), user, d))
		fuzz_cram_again(user, d, s, size);
	buf_free(&b64);
	struct buf stored = BUF_INIT;
	buf_printf(&stored, "{PLAIN}%s", s);
	(void)auth_cram_match(buf_cstr(&stored), s, d);
	(void)auth_cram_match(s, "<1.2@h>", d);
	buf_free(&stored);
	free(s);
	return 0;
}
