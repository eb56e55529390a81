/* msghead: a message's header block held in memory while its body
 * streams on (RFC 5322 2.2, 3.6), so that fields can be removed, changed
 * and added before the message is committed. Pure.
 *
 * The block is the lines from the first up to the empty line that ends
 * it; a line that is neither a field ("name:" with the name of printable
 * US-ASCII but the colon, RFC 5322 2.2; white space before the colon is
 * the obsolete form, 4.5.8) nor the continuation of one (a line starting
 * with white space, 2.2.3) ends it too, and is the body's first line.
 * Octets past the block go to the body function as they come, the
 * decision about a line made as soon as its first octets allow it.
 *
 * The block keeps its octets as they came (CRLF line ends: the DATA
 * parser refuses bare CR and LF); msghead_render gives them back with the
 * edits made, and with the empty line when the message had one.
 */
#ifndef TERN_MSGHEAD_H
#define TERN_MSGHEAD_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/buf.h"

/* A field: its octets in the block (with its CRLF, continuation lines
 * included) and the length of its name (white space before the colon
 * left out). */
struct msghead_field {
	size_t off, len, nlen;
};

typedef void msghead_body_fn(void *ctx, const char *p, size_t n);

struct msghead {
	struct buf raw;              /* the block, its fields in order */
	struct msghead_field *f;
	size_t nf, capf;
	size_t max;                  /* octets the block may hold */
	int state;                   /* private: the scanner */
	size_t line;                 /* private: where the current line began */
	bool done;                   /* the block has ended: the rest is body */
	bool blank;                  /* it ended with an empty line */
	bool too_big;                /* it grew over max: what came since is dropped */
	msghead_body_fn *body;
	void *ctx;
};

void msghead_init(struct msghead *h, size_t max, msghead_body_fn *body, void *ctx);
void msghead_free(struct msghead *h);
/* Message octets, in order. */
void msghead_feed(struct msghead *h, const char *p, size_t n);
/* The message has ended: a line still undecided is a field or the body's. */
void msghead_end(struct msghead *h);

/* Does field k have this name (case-insensitive)? */
bool msghead_is(const struct msghead *h, size_t k, const char *name);
/* Field k's value: what follows the colon, up to and without the last
 * CRLF (continuation lines kept). */
const char *msghead_value(const struct msghead *h, size_t k, size_t *len);
/* The index of the nth (1-based) field of this name, or -1. */
long msghead_find(const struct msghead *h, const char *name, size_t nth);
size_t msghead_count(const struct msghead *h, const char *name);
/* The first field of this name's value, unfolded (RFC 5322 2.2.3) and
 * trimmed, allocated; "" when there is none. */
char *msghead_text(const struct msghead *h, const char *name);

/* Remove field k. */
void msghead_remove(struct msghead *h, size_t k);
/* A field "name: value" (value as given, its lines CRLF-ended if it has
 * several) made the kth (0: the first; nf or more: the last). */
void msghead_insert(struct msghead *h, size_t k, const char *name, const char *value);
/* The nth (1-based) field of this name gets value, or is removed when
 * value is NULL (the milter protocol's SMFIR_CHGHEADER); false when there
 * is no such field (a change then adds it at the end, as Sendmail does). */
bool msghead_change(struct msghead *h, const char *name, size_t nth, const char *value);

/* The block as it now is, with the empty line when it had one, appended
 * to out. */
void msghead_render(const struct msghead *h, struct buf *out);

#endif
