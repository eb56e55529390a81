/* libFuzzer: a maildrop file (net/maildrop.h) as pickup reads it: the
 * envelope by dropfile_parse, then the message by the data parser. The
 * envelope parser must agree with itself on every prefix (a prefix of a
 * file that parses asks for more or parses the same), never read past
 * the input, and keep to max_rcpt. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtpd/data.h"
#include "smtpd/dropfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_RCPT 5

static void sink(void *ctx, const char *p, size_t n)
{
	(void)ctx;
	(void)p;
	(void)n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 16384)
		return 0;
	const char *p = (const char *)data;
	struct dropfile_env e, f;
	memset(&e, 0, sizeof e);
	memset(&f, 0, sizeof f);
	const char *why;
	size_t used = 0, used2 = 0;
	enum dropfile_res r = dropfile_parse(p, size, MAX_RCPT, &e, &used, &why);
	if ((r == DROPFILE_BAD) != (why != NULL))
		abort();
	if (r == DROPFILE_OK) {
		if (used > size || e.nrcpt == 0 || e.nrcpt > MAX_RCPT)
			abort();
		/* every shorter prefix of the envelope asks for more */
		size_t cut = used - 1 - (size_t)data[0] % used;
		if (dropfile_parse(p, cut, MAX_RCPT, &f, &used2, &why) != DROPFILE_MORE)
			abort();
		struct data_parser d;
		data_init(&d, 998, 4096, sink, NULL);
		if (data_feed(&d, p + used, size - used) > size - used)
			abort();
	}
	dropfile_free(&e);
	dropfile_free(&f);
	return 0;
}
