/* libFuzzer: RFC 6376 3.4 canonicalization (src/dkim/canon.c). The first
 * byte picks the body's canonicalization and how the rest is cut into
 * feeds; whatever the cut, the output is the one of a single feed, and
 * it has the algorithm's shape: ends in CRLF (or, relaxed, is empty), no
 * empty line at its end, relaxed has no tab, no run of spaces, no space
 * before a CRLF. The input is also canonicalized as a header field (see
 * check_header). */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dkim/canon.h"
#include "lib/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void sink(void *ctx, const char *p, size_t n)
{
	buf_append(ctx, p, n);
}

static void body(enum dkim_canon c, const char *p, size_t n, size_t step, struct buf *out)
{
	struct dkim_body b;
	dkim_body_init(&b, c, sink, out);
	for (size_t i = 0; i < n; i += step)
		dkim_body_feed(&b, p + i, n - i < step ? n - i : step);
	dkim_body_end(&b);
}

static void check_body(enum dkim_canon c, const struct buf *o)
{
	if (o->len == 0 ? c == DKIM_SIMPLE : memcmp(o->data + o->len - 2, "\r\n", 2) != 0)
		abort();
	if (o->len >= 4 && !memcmp(o->data + o->len - 4, "\r\n\r\n", 4))
		abort();
	if (c == DKIM_SIMPLE && o->len == 2)
		return;
	if (o->len == 2)
		abort();   /* relaxed: an empty line alone is an empty body */
	if (o->len == 0)
		return;
	if (c == DKIM_RELAXED && (memchr(o->data, '\t', o->len) || memmem(o->data, o->len, "  ", 2) ||
	                          memmem(o->data, o->len, " \r\n", 3)))
		abort();
}

/* CR and LF only as CRLF? */
static bool crlf_only(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((p[i] == '\r' && (i + 1 == n || p[i + 1] != '\n')) ||
		    (p[i] == '\n' && (i == 0 || p[i - 1] != '\r')))
			return false;
	return true;
}

/* A field (a name without CR or LF, a colon, a value where CR and LF come
 * only as CRLF): relaxed makes the name lower-case and leaves in the
 * value no tab, no CRLF but the final one, no space at either end. */
static void check_header(const char *p, size_t n)
{
	const char *colon = memchr(p, ':', n);
	if (!colon || memchr(p, '\r', (size_t)(colon - p)) || memchr(p, '\n', (size_t)(colon - p)) ||
	    !crlf_only(p, n))
		return;
	struct buf h = BUF_INIT;
	dkim_canon_header(DKIM_RELAXED, p, n, true, &h);
	const char *c = memchr(h.data, ':', h.len), *v = c + 1, *end = h.data + h.len - 2;
	if (memcmp(end, "\r\n", 2) || memchr(v, '\t', (size_t)(end - v)) ||
	    memmem(v, (size_t)(end - v), "\r\n", 2) ||
	    (end > v && (v[0] == ' ' || end[-1] == ' ')))
		abort();
	for (const char *q = h.data; q < c; q++)
		if (*q >= 'A' && *q <= 'Z')
			abort();
	buf_free(&h);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 16384)
		return 0;
	enum dkim_canon c = data[0] & 1 ? DKIM_RELAXED : DKIM_SIMPLE;
	size_t step = (size_t)(data[0] >> 1) % 9 + 1;
	const char *p = (const char *)data + 1;
	size_t n = size - 1;
	struct buf whole = BUF_INIT, parts = BUF_INIT;
	body(c, p, n, n ? n : 1, &whole);
	body(c, p, n, step, &parts);
	if (whole.len != parts.len || (whole.len && memcmp(whole.data, parts.data, whole.len)))
		abort();
	check_body(c, &whole);
	check_header(p, n);
	buf_free(&whole);
	buf_free(&parts);
	return 0;
}
