/* buf: the one growable byte buffer of tern.
 *
 * Every dynamic string goes through here: growth is overflow-checked, the
 * contents are always NUL-terminated (the NUL is not counted in len), and
 * allocation failure aborts (a bug-level condition for a daemon this size).
 */
#ifndef TERN_BUF_H
#define TERN_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
	char *data;   /* NUL-terminated; NULL until the first write */
	size_t len;   /* bytes used, not counting the NUL */
	size_t cap;   /* bytes allocated */
};

#define BUF_INIT { NULL, 0, 0 }

void buf_init(struct buf *b);
void buf_free(struct buf *b);
void buf_reset(struct buf *b);                     /* len = 0, keeps memory */
void buf_reserve(struct buf *b, size_t more);      /* room for more bytes */
void buf_append(struct buf *b, const void *p, size_t n);
void buf_puts(struct buf *b, const char *s);
void buf_putc(struct buf *b, char c);
void buf_printf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void buf_vprintf(struct buf *b, const char *fmt, va_list ap);
void buf_consume(struct buf *b, size_t n);         /* drop n bytes from front */
const char *buf_cstr(const struct buf *b);         /* "" when empty */

#endif
