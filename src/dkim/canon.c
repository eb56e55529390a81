/* canon: RFC 6376 3.4 canonicalization (see canon.h). */
#include "dkim/canon.h"

#include <string.h>

static bool canon_wsp(char c)
{
	return c == ' ' || c == '\t';
}

static bool canon_crlf_at(const char *f, size_t n, size_t i)
{
	return i + 1 < n && f[i] == '\r' && f[i + 1] == '\n';
}

/* 3.4.1: nothing changes; the field's own CRLF is kept or left off. */
static void canon_header_simple(const char *f, size_t n, bool crlf, struct buf *out)
{
	bool has = n >= 2 && f[n - 2] == '\r' && f[n - 1] == '\n';
	buf_append(out, f, has ? n - 2 : n);
	if (crlf)
		buf_append(out, "\r\n", 2);
}

/* 3.4.2: the name in lower case without white space after it; the value
 * unfolded (every CRLF out), each run of WSP one SP, none at either end;
 * "name:value". */
static void canon_header_relaxed(const char *f, size_t n, bool crlf, struct buf *out)
{
	const char *colon = memchr(f, ':', n);
	size_t nlen = colon ? (size_t)(colon - f) : n, end = nlen;
	while (end > 0 && canon_wsp(f[end - 1]))
		end--;
	for (size_t i = 0; i < end; i++)
		buf_putc(out, (f[i] >= 'A' && f[i] <= 'Z') ? (char)(f[i] + 32) : f[i]);
	buf_putc(out, ':');
	bool space = false, started = false;
	for (size_t i = nlen + 1; i < n; i++) {
		if (canon_crlf_at(f, n, i)) {
			i++;
			continue;
		}
		if (canon_wsp(f[i])) {
			space = started;
			continue;
		}
		if (space)
			buf_putc(out, ' ');
		space = false;
		started = true;
		buf_putc(out, f[i]);
	}
	if (crlf)
		buf_append(out, "\r\n", 2);
}

void dkim_canon_header(enum dkim_canon c, const char *f, size_t n, bool crlf, struct buf *out)
{
	if (c == DKIM_SIMPLE)
		canon_header_simple(f, n, crlf, out);
	else
		canon_header_relaxed(f, n, crlf, out);
}

/* ---- the body, incrementally ---- */

void dkim_body_init(struct dkim_body *b, enum dkim_canon c, dkim_sink_fn sink, void *ctx)
{
	memset(b, 0, sizeof *b);
	b->canon = c;
	b->sink = sink;
	b->ctx = ctx;
}

static void canon_flush(struct dkim_body *b)
{
	if (b->olen)
		b->sink(b->ctx, b->out, b->olen);
	b->olen = 0;
}

static void canon_put(struct dkim_body *b, const char *p, size_t n)
{
	while (n > 0) {
		size_t k = sizeof b->out - b->olen < n ? sizeof b->out - b->olen : n;
		memcpy(b->out + b->olen, p, k);
		b->olen += k;
		p += k;
		n -= k;
		if (b->olen == sizeof b->out)
			canon_flush(b);
	}
}

/* An octet of a line's content: the empty lines held back were not the
 * body's last, nor was the white space the line's last. */
static void canon_content(struct dkim_body *b, char c)
{
	for (; b->empty > 0; b->empty--)
		canon_put(b, "\r\n", 2);
	if (b->wsp)
		canon_put(b, " ", 1);
	b->wsp = false;
	canon_put(b, &c, 1);
	b->line = b->any = true;
}

/* CRLF: a line with content ends at once; an empty one (relaxed: one of
 * white space only) is held back, as it may be among the last. */
static void canon_eol(struct dkim_body *b)
{
	b->wsp = false;
	if (b->line)
		canon_put(b, "\r\n", 2);
	else
		b->empty++;
	b->line = false;
}

/* A run of ordinary octets (no CR, LF, or, for relaxed, WSP) at once. */
static size_t canon_run(struct dkim_body *b, const char *p, size_t n)
{
	size_t k = 0;
	while (k < n && p[k] != '\r' && !(b->canon == DKIM_RELAXED && canon_wsp(p[k])))
		k++;
	if (k == 0)
		return 0;
	canon_content(b, p[0]);
	canon_put(b, p + 1, k - 1);
	return k;
}

void dkim_body_feed(struct dkim_body *b, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		if (b->cr) {
			b->cr = false;
			if (c == '\n') {
				canon_eol(b);
				continue;
			}
			canon_content(b, '\r');   /* a bare CR is content */
		}
		size_t run = canon_run(b, p + i, n - i);
		if (run) {
			i += run - 1;
		} else if (c == '\r') {
			b->cr = true;
		} else {
			b->wsp = true;            /* relaxed: 3.4.4 a */
		}
	}
	canon_flush(b);
}

/* The last line without CRLF gets one (its trailing white space, for
 * relaxed, is white space at the end of a line: gone). Empty lines held
 * back were the last: gone. Simple makes nothing CRLF (3.4.3: "a
 * completely empty or missing body is canonicalized as a single CRLF");
 * relaxed leaves it empty (3.4.4 adds a CRLF to a non-empty body only). */
void dkim_body_end(struct dkim_body *b)
{
	if (b->cr) {
		b->cr = false;
		canon_content(b, '\r');
	}
	if (b->line)
		canon_put(b, "\r\n", 2);
	b->line = b->wsp = false;
	b->empty = 0;
	if (!b->any && b->canon == DKIM_SIMPLE)
		canon_put(b, "\r\n", 2);
	b->any = true;
	canon_flush(b);
}
