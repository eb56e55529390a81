/* libFuzzer: the DATA stream. The first byte picks how the input is split
 * into feeds, and (its high bit) raw mode, BDAT's; whatever the split, the
 * result (output, flags, end) must be the same as feeding it whole. Raw
 * mode takes every octet and passes it unchanged. */
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

static size_t run(const uint8_t *p, size_t size, size_t step, struct out *o, struct data_parser *d,
                  bool raw)
{
	data_init(d, 78, 4096, sink, o);
	if (raw)
		data_raw(d);
	size_t off = 0;
	while (off < size && !d->done) {
		size_t n = size - off < step ? size - off : step;
		size_t used = data_feed(d, (const char *)p + off, n);
		if (used > n || (used < n && !d->done))
			abort();
		off += used;
	}
	if (raw && (d->done || off != size))
		abort();
	if (raw)
		data_finish(d);
	return off;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 8192)
		return 0;
	size_t step = (size_t)data[0] % 7 + 1;
	bool raw = data[0] & 0x80;
	static struct out whole, parts;
	struct data_parser a, b;
	whole.n = parts.n = 0;
	size_t ua = run(data + 1, size - 1, size, &whole, &a, raw);
	size_t ub = run(data + 1, size - 1, step, &parts, &b, raw);
	if (ua != ub || a.done != b.done || a.flags != b.flags || whole.n != parts.n ||
	    memcmp(whole.buf, parts.buf, whole.n))
		abort();
	/* raw: what came is what went, a CRLF perhaps added at the end */
	if (raw && !(a.flags & DATA_TOO_BIG) &&
	    (whole.n < ua || memcmp(whole.buf, data + 1, ua) || whole.n > ua + 2))
		abort();
	/* the end is CRLF.CRLF and nothing else */
	if (!raw && a.done && (ua < 3 || memcmp(data + 1 + ua - 3, ".\r\n", 3)))
		abort();
	return 0;
}
