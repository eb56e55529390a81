/* msghead: a message's header block held in memory (see msghead.h). */
#include "lib/msghead.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/util.h"

/* Where the scanner is in the current line: at its start; at a first CR
 * (the empty line, if LF follows); in a field name; in white space after
 * one (the obsolete form); in a field (or its continuation) decided; at
 * a CR in one. */
enum { L_START, L_EMPTY_CR, L_NAME, L_NAME_WSP, L_FIELD, L_FIELD_CR };

void msghead_init(struct msghead *h, size_t max, msghead_body_fn *body, void *ctx)
{
	memset(h, 0, sizeof *h);
	h->max = max;
	h->body = body;
	h->ctx = ctx;
	h->state = L_START;
}

void msghead_free(struct msghead *h)
{
	buf_free(&h->raw);
	free(h->f);
	memset(h, 0, sizeof *h);
}

/* RFC 5322 2.2: ftext, printable US-ASCII but the colon. */
static bool msghead_ftext(unsigned char c)
{
	return c >= 33 && c <= 126 && c != ':';
}

static bool msghead_wsp(char c)
{
	return c == ' ' || c == '\t';
}

static void msghead_push(struct msghead *h, size_t off, size_t len, size_t nlen)
{
	if (h->nf == h->capf) {
		h->capf = h->capf ? h->capf * 2 : 32;
		h->f = util_xrealloc(h->f, h->capf, sizeof *h->f);
	}
	h->f[h->nf++] = (struct msghead_field){ off, len, nlen };
}

/* The block is whole: each field reaches to the next one's start. */
static void msghead_close(struct msghead *h, bool blank)
{
	h->done = true;
	h->blank = blank;
	for (size_t k = 0; k < h->nf; k++)
		h->f[k].len = (k + 1 < h->nf ? h->f[k + 1].off : h->raw.len) - h->f[k].off;
}

/* Keep octets of the block, or drop them once it is too big. */
static void msghead_keep(struct msghead *h, const char *p, size_t n)
{
	if (h->too_big)
		return;
	if (h->raw.len + n > h->max) {
		h->too_big = true;
		return;
	}
	buf_append(&h->raw, p, n);
}

/* The current line is the body's: it and what follows go there. */
static void msghead_spill(struct msghead *h, const char *p, size_t n)
{
	if (!h->too_big && h->raw.len > h->line) {
		h->body(h->ctx, h->raw.data + h->line, h->raw.len - h->line);
		h->raw.len = h->line;
		h->raw.data[h->line] = '\0';
	}
	while (h->nf > 0 && h->f[h->nf - 1].off >= h->line)
		h->nf--;   /* a field the line began (the message ended inside it) */
	msghead_close(h, false);
	if (n)
		h->body(h->ctx, p, n);
}

/* A field begins on the current line: its name is what precedes the
 * colon at i, white space left out. */
static void msghead_field_at(struct msghead *h, const char *p, size_t from, size_t i)
{
	msghead_keep(h, p + from, i - from);
	if (h->too_big)
		return;
	size_t nlen = h->raw.len - h->line;
	while (nlen > 0 && msghead_wsp(h->raw.data[h->line + nlen - 1]))
		nlen--;
	msghead_push(h, h->line, 0, nlen);
	msghead_keep(h, p + i, 1);
}

/* One octet of the current line: the next state, or -1 when the line is
 * not the block's. */
static int msghead_step(const struct msghead *h, char c)
{
	switch (h->state) {
	case L_START:
		if (c == '\r')
			return L_EMPTY_CR;
		if (msghead_wsp(c))
			return h->nf > 0 ? L_FIELD : -1;   /* 2.2.3: a continuation */
		return msghead_ftext((unsigned char)c) ? L_NAME : -1;
	case L_NAME:
		if (c == ':')
			return L_FIELD;
		if (msghead_wsp(c))
			return L_NAME_WSP;
		return msghead_ftext((unsigned char)c) ? L_NAME : -1;
	case L_NAME_WSP:
		if (c == ':')
			return L_FIELD;
		return msghead_wsp(c) ? L_NAME_WSP : -1;
	case L_FIELD:
		return c == '\r' ? L_FIELD_CR : L_FIELD;
	case L_FIELD_CR:
		return c == '\n' ? L_START : c == '\r' ? L_FIELD_CR : L_FIELD;
	}
	return -1;   /* L_EMPTY_CR: handled by the caller */
}

void msghead_feed(struct msghead *h, const char *p, size_t n)
{
	if (h->done) {
		if (n)
			h->body(h->ctx, p, n);
		return;
	}
	size_t from = 0;   /* octets of p not yet kept */
	for (size_t i = 0; i < n; i++) {
		if (h->state == L_EMPTY_CR) {
			if (p[i] != '\n')
				return msghead_spill(h, p + from, n - from);
			msghead_keep(h, p + from, i + 1 - from);
			if (!h->too_big)
				h->raw.len = h->line;   /* the empty line is not a field */
			msghead_close(h, true);
			if (i + 1 < n)
				h->body(h->ctx, p + i + 1, n - i - 1);
			return;
		}
		int next = msghead_step(h, p[i]);
		if (next < 0) {
			msghead_keep(h, p + from, i - from);
			return msghead_spill(h, p + i, n - i);
		}
		if (next == L_FIELD && (h->state == L_NAME || h->state == L_NAME_WSP)) {
			msghead_field_at(h, p, from, i);
			from = i + 1;
		} else if (next == L_START) {
			msghead_keep(h, p + from, i + 1 - from);
			from = i + 1;
			h->line = h->raw.len;
		}
		h->state = next;
	}
	msghead_keep(h, p + from, n - from);
}

void msghead_end(struct msghead *h)
{
	if (h->done)
		return;
	if (h->state == L_START)
		return msghead_close(h, false);
	msghead_spill(h, NULL, 0);   /* a line left undecided is body */
}

/* ---- fields ---- */

bool msghead_is(const struct msghead *h, size_t k, const char *name)
{
	size_t len = strlen(name);
	return h->f[k].nlen == len && !strncasecmp(h->raw.data + h->f[k].off, name, len);
}

const char *msghead_value(const struct msghead *h, size_t k, size_t *len)
{
	const char *s = h->raw.data + h->f[k].off;
	const char *colon = memchr(s, ':', h->f[k].len);
	size_t start = (size_t)(colon - s) + 1, end = h->f[k].len;
	if (end >= start + 2 && s[end - 2] == '\r' && s[end - 1] == '\n')
		end -= 2;
	*len = end - start;
	return s + start;
}

long msghead_find(const struct msghead *h, const char *name, size_t nth)
{
	for (size_t k = 0; k < h->nf; k++)
		if (msghead_is(h, k, name) && --nth == 0)
			return (long)k;
	return -1;
}

size_t msghead_count(const struct msghead *h, const char *name)
{
	size_t n = 0;
	for (size_t k = 0; k < h->nf; k++)
		n += msghead_is(h, k, name);
	return n;
}

void msghead_remove(struct msghead *h, size_t k)
{
	memmove(h->f + k, h->f + k + 1, (h->nf - k - 1) * sizeof *h->f);
	h->nf--;
}

/* "name: value" with CRLF line ends, at the end of raw (which only grows,
 * so that the other fields' offsets hold). */
static struct msghead_field msghead_make(struct msghead *h, const char *name, const char *value)
{
	struct msghead_field f = { h->raw.len, 0, strlen(name) };
	buf_printf(&h->raw, "%s:%s", name, msghead_wsp(*value) ? "" : " ");
	for (const char *v = value; *v; v++) {
		if (*v == '\n' && (v == value || v[-1] != '\r'))
			buf_putc(&h->raw, '\r');
		buf_putc(&h->raw, *v);
	}
	if (h->raw.len < 2 || memcmp(h->raw.data + h->raw.len - 2, "\r\n", 2) != 0)
		buf_puts(&h->raw, "\r\n");
	f.len = h->raw.len - f.off;
	return f;
}

void msghead_insert(struct msghead *h, size_t k, const char *name, const char *value)
{
	struct msghead_field f = msghead_make(h, name, value);
	msghead_push(h, 0, 0, 0);
	k = k < h->nf - 1 ? k : h->nf - 1;
	memmove(h->f + k + 1, h->f + k, (h->nf - 1 - k) * sizeof *h->f);
	h->f[k] = f;
}

bool msghead_change(struct msghead *h, const char *name, size_t nth, const char *value)
{
	long k = msghead_find(h, name, nth);
	if (k < 0) {
		if (value)
			msghead_insert(h, h->nf, name, value);
		return false;
	}
	if (!value)
		msghead_remove(h, (size_t)k);
	else
		h->f[k] = msghead_make(h, name, value);
	return true;
}

void msghead_render(const struct msghead *h, struct buf *out)
{
	for (size_t k = 0; k < h->nf; k++)
		buf_append(out, h->raw.data + h->f[k].off, h->f[k].len);
	if (h->blank)
		buf_puts(out, "\r\n");
}

char *msghead_text(const struct msghead *h, const char *name)
{
	long k = msghead_find(h, name, 1);
	size_t n = 0;
	const char *v = k < 0 ? "" : msghead_value(h, (size_t)k, &n);
	struct buf b = BUF_INIT;
	for (size_t i = 0; i < n; i++)
		if (v[i] != '\r' && v[i] != '\n' && (b.len || (v[i] != ' ' && v[i] != '\t')))
			buf_append(&b, &v[i], 1);
	while (b.len && (b.data[b.len - 1] == ' ' || b.data[b.len - 1] == '\t'))
		b.len--;
	char *out = util_xstrndup(buf_cstr(&b), b.len);   /* not past the trimmed end */
	buf_free(&b);
	return out;
}
