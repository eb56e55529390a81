/* libFuzzer: the client lint (smtpd/lint.c). The input is a message: its
 * header block through msghead (in two pieces where the first octet
 * says) and lint_head; all of it through the octet scan, whole and in
 * the same two pieces, which must agree. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/msghead.h"
#include "smtpd/lint.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void sink(void *ctx, const char *p, size_t n)
{
	buf_append(ctx, p, n);
}

static void check_scan(const char *in, size_t n, size_t cut)
{
	struct lint_scan a, b;
	lint_scan_init(&a);
	lint_scan_init(&b);
	lint_scan_feed(&a, in, n);
	lint_scan_feed(&b, in, cut);
	lint_scan_feed(&b, in + cut, n - cut);
	if (a.octets != n || a.lines != b.lines || a.eight_bit != b.eight_bit ||
	    a.long_line != b.long_line || a.smuggle != b.smuggle || a.line_len != b.line_len)
		abort();
	struct lint l = { 0 };
	lint_scan_end(&a, false, &l);
	if (l.n > LINT_MAX)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t cut = data[0] % size;
	const char *in = (const char *)data + 1;
	size--;
	cut = cut < size ? cut : size;
	struct msghead h;
	struct buf body = BUF_INIT;
	msghead_init(&h, 1 << 16, sink, &body);
	msghead_feed(&h, in, cut);
	msghead_feed(&h, in + cut, size - cut);
	msghead_end(&h);
	struct lint l = { 0 };
	lint_head(&h, body.len > 0, (data[0] & 1) != 0, &l);
	if (l.n > LINT_MAX)
		abort();
	for (size_t i = 0; i < l.n; i++)
		if (!lint_info(l.item[i].code)->code || l.item[i].detail[LINT_DETAIL_MAX - 1])
			abort();
	msghead_free(&h);
	buf_free(&body);
	check_scan(in, size, cut);
	return 0;
}
