/* jsonw: JSON text written straight into a buf (see jsonw.h). */
#include "lib/jsonw.h"

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "lib/util.h"

/* Bytes written as they are: printable ASCII but the two to escape. */
static bool jsonw_plain(unsigned char c)
{
	return c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
}

void jsonw_str(struct buf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	if (!s) {
		buf_append(b, "null", 4);
		return;
	}
	const unsigned char *p = (const unsigned char *)s, *end = p + strlen(s);
	buf_putc(b, '"');
	while (*p) {
		const unsigned char *run = p;
		while (jsonw_plain(*p))
			p++;
		if (p > run)
			buf_append(b, run, (size_t)(p - run));
		if (!*p)
			break;
		size_t n;
		if (*p == '"' || *p == '\\') {
			char e[2] = { '\\', (char)*p };
			buf_append(b, e, 2);
			p++;
		} else if (*p == '\n' || *p == '\r' || *p == '\t') {
			char e[2] = { '\\', *p == '\n' ? 'n' : *p == '\r' ? 'r' : 't' };
			buf_append(b, e, 2);
			p++;
		} else if (*p < 0x20 || *p == 0x7f) {
			char e[6] = { '\\', 'u', '0', '0', hex[*p >> 4], hex[*p & 15] };
			buf_append(b, e, 6);
			p++;
		} else if ((n = util_utf8_seq(p, end)) > 0) {
			buf_append(b, p, n);
			p += n;
		} else {
			buf_append(b, "\\ufffd", 6);
			p++;
		}
	}
	buf_putc(b, '"');
}

void jsonw_int(struct buf *b, int64_t n)
{
	char t[24], *e = t + sizeof t, *q = e;
	uint64_t u = n < 0 ? 0 - (uint64_t)n : (uint64_t)n;
	do
		*--q = (char)('0' + u % 10);
	while ((u /= 10) != 0);
	if (n < 0)
		*--q = '-';
	buf_append(b, q, (size_t)(e - q));
}
