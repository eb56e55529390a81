/* message: the pure pieces of reading a message that a local program
 * hands to tern-sendmail: its lines (LF or CRLF ends, either, detected
 * line by line), a leading mbox "From " line, the header section (RFC
 * 5322 2.2: fields, folded lines), the recipients of -t in To, Cc and Bcc
 * (RFC 5322 3.4 address lists: display names, comments, quoted strings,
 * groups), and Bcc's removal (RFC 5322 3.6.3).
 */
#ifndef TERN_SENDMAIL_MESSAGE_H
#define TERN_SENDMAIL_MESSAGE_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/addr.h"

#define MESSAGE_ADDR_MAX (ADDR_LOCAL_MAX + ADDR_DOMAIN_MAX + 2)

enum message_line {
	MESSAGE_LINE_OK,
	MESSAGE_LINE_NUL,     /* a NUL octet: never text (RFC 5322 3.5) */
	MESSAGE_LINE_CR,      /* a CR not before the LF (RFC 5322 2.3) */
};

/* p[0..*n) is one input line with its LF, or the last line without one:
 * *n becomes the length of its text (LF and a CR before it dropped, so
 * CRLF and LF input come out the same). */
enum message_line message_line(const char *p, size_t *n);

/* Is this the "From " line of an mbox that some callers put first? */
bool message_mbox_from(const char *p, size_t n);

enum message_kind {
	MESSAGE_FIELD,        /* "Name:" (RFC 5322 2.2 field-name, printable, no ':') */
	MESSAGE_FOLD,         /* a continuation: starts with SP or HTAB */
	MESSAGE_OTHER,        /* neither: the header section has ended */
};
enum message_kind message_kind(const char *p, size_t n);

/* Is the header section h[0..n) (CRLF lines) holding a field name? */
bool message_has(const char *h, size_t n, const char *name);

/* Remove every field called name (with its folded lines) from the header
 * section h[0..n) in place; returns the new length. */
size_t message_drop(char *h, size_t n, const char *name);

typedef void message_addr_fn(void *ctx, const char *addr);

/* The addr-specs of an RFC 5322 3.4 address-list value v[0..n) (unfolded
 * or not): for each mailbox its angle-addr, or its addr-spec without
 * comments and folding white space; group names and empty members are
 * skipped. Returns the count, or -1 when the list is malformed (a quote,
 * comment, angle or literal not closed, an address too long). */
int message_addrs(const char *v, size_t n, message_addr_fn *fn, void *ctx);

/* The addresses of every To, Cc and Bcc field of h[0..n) (RFC 5322
 * 3.6.3). Returns the count, or -1 when one list is malformed. */
int message_rcpts(const char *h, size_t n, message_addr_fn *fn, void *ctx);

#endif
