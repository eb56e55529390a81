/* libFuzzer: SMTP replies as the client engine reads them (net/smtp.c).
 * The input is cut into lines at LF (a CR before it dropped, as the
 * engine's line reader does); each goes to smtp_reply_add. A whole reply
 * must hold every line it took, in order, with one code of 2xx to 5xx,
 * and give the same lines back through smtp_reply_nth; its EHLO keywords
 * are parsed, and each line alone as an ehlo-line. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/smtp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A whole reply against the lines it was made of (text, '\n' between). */
static void check_whole(const struct smtp_reply *r, const struct buf *lines, size_t nlines)
{
	if (r->code < 200 || r->code > 599 || r->nlines != nlines || r->text.len != lines->len ||
	    memcmp(buf_cstr(&r->text), buf_cstr(lines), lines->len))
		abort();
	const char *p;
	size_t n, i = 0;
	while (smtp_reply_nth(r, i, &p, &n))
		i++;
	if (i != nlines || !smtp_reply_nth(r, nlines - 1, &p, &n) ||
	    strcmp(smtp_reply_last(r), n ? p : ""))
		abort();
	struct smtp_ext e;
	smtp_ehlo_parse(r, &e);
	if ((e.auth_mechs && !e.auth) || (e.size_max && !e.size))
		abort();
	struct buf j = BUF_INIT;
	smtp_reply_join(r, &j, 512);
	buf_free(&j);
}

static void one_line(struct smtp_reply *r, struct buf *lines, size_t *nlines,
                     const char *p, size_t n)
{
	struct smtp_ext e;
	memset(&e, 0, sizeof e);
	smtp_ehlo_line(&e, p, n);
	int code;
	bool more;
	int ok = smtp_reply_line(p, n, &code, &more);
	int rc = smtp_reply_add(r, p, n);
	if (ok < 0 && rc != SMTP_REPLY_MALFORMED)
		abort();
	if (rc < 0) {
		smtp_reply_reset(r);
		buf_reset(lines);
		*nlines = 0;
		return;
	}
	if (ok < 0 || code != r->code || more != (rc == 0))
		abort();
	if ((*nlines)++)
		buf_putc(lines, '\n');
	buf_append(lines, p, n);
	if (rc == 1) {
		check_whole(r, lines, *nlines);
		smtp_reply_reset(r);
		buf_reset(lines);
		*nlines = 0;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	struct smtp_reply r;
	struct buf lines = BUF_INIT;
	size_t nlines = 0;
	smtp_reply_init(&r);
	for (size_t at = 0; at < size;) {
		const char *lf = memchr(s + at, '\n', size - at);
		size_t end = lf ? (size_t)(lf - s) : size;
		size_t n = end - at;
		if (n > 0 && s[at + n - 1] == '\r')
			n--;
		if (!memchr(s + at, '\0', n))   /* the engine's lines are C strings */
			one_line(&r, &lines, &nlines, s + at, n);
		at = end + 1;
	}
	smtp_reply_free(&r);
	buf_free(&lines);
	return 0;
}
