/* buf: the one growable byte buffer (see buf.h). */
#include "lib/buf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"

static void buf_die(const char *why)
{
	log_panic("buf: %s", why);
}

void buf_init(struct buf *b)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

void buf_free(struct buf *b)
{
	free(b->data);
	buf_init(b);
}

void buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

void buf_reserve(struct buf *b, size_t more)
{
	if (more > SIZE_MAX - b->len - 1)
		buf_die("size overflow");
	size_t need = b->len + more + 1;
	if (need <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < need) {
		if (cap > SIZE_MAX / 2)
			cap = need;
		else
			cap *= 2;
	}
	char *p = realloc(b->data, cap);
	if (!p)
		buf_die("out of memory");
	b->data = p;
	b->cap = cap;
}

void buf_append(struct buf *b, const void *p, size_t n)
{
	buf_reserve(b, n);
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void buf_puts(struct buf *b, const char *s)
{
	buf_append(b, s, strlen(s));
}

void buf_putc(struct buf *b, char c)
{
	buf_append(b, &c, 1);
}

/* Formatted into the room the buffer has (at least BUF_PRINTF_ROOM made):
 * one vsnprintf() pass when it fits, a second only when it did not
 * (measuring first cost two passes on every call: replies and header
 * fields were 18% of ternd's instructions relaying small messages). */
#define BUF_PRINTF_ROOM 128

void buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
	if (b->cap - b->len < BUF_PRINTF_ROOM)
		buf_reserve(b, BUF_PRINTF_ROOM);
	size_t room = b->cap - b->len;   /* the NUL's place included */
	va_list ap2;
	va_copy(ap2, ap);
	int n = vsnprintf(b->data + b->len, room, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		buf_die("bad format");
	if ((size_t)n >= room) {
		buf_reserve(b, (size_t)n);
		vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	}
	b->len += (size_t)n;
}

void buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(b, fmt, ap);
	va_end(ap);
}

void buf_consume(struct buf *b, size_t n)
{
	if (n >= b->len) {
		buf_reset(b);
		return;
	}
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
	b->data[b->len] = '\0';
}

const char *buf_cstr(const struct buf *b)
{
	return b->data ? b->data : "";
}
