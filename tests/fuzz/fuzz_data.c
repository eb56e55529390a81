/* libFuzzer: the DATA stream. The first byte picks how the input is split
 * into feeds; whatever the split, the result (output, flags, end) must be
 * the same as feeding it whole. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtpd/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct out {
	char buf[1 << 16];
	size_t n;
};

static void sink(void *ctx, const char *p, size_t n)
{
	struct out *o = ctx;
	if (n > sizeof o->buf - o->n)
		n = sizeof o->buf - o->n;
	memcpy(o->buf + o->n, p, n);
	o->n += n;
}

static size_t run(const uint8_t *p, size_t size, size_t step, struct out *o, struct data_parser *d)
{
	data_init(d, 78, 4096, sink, o);
	size_t off = 0;
	while (off < size && !d->done) {
		size_t n = size - off < step ? size - off : step;
		size_t used = data_feed(d, (const char *)p + off, n);
		if (used > n || (used < n && !d->done))
			abort();
		off += used;
	}
	return off;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 8192)
		return 0;
	size_t step = (size_t)data[0] % 7 + 1;
	static struct out whole, parts;
	struct data_parser a, b;
	whole.n = parts.n = 0;
	size_t ua = run(data + 1, size - 1, size, &whole, &a);
	size_t ub = run(data + 1, size - 1, step, &parts, &b);
	if (ua != ub || a.done != b.done || a.flags != b.flags || whole.n != parts.n ||
	    memcmp(whole.buf, parts.buf, whole.n))
		abort();
	/* the end is CRLF.CRLF and nothing else */
	if (a.done && (ua < 3 || memcmp(data + 1 + ua - 3, ".\r\n", 3)))
		abort();
	return 0;
}
