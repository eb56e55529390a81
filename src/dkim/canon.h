/* canon: the canonicalizations of RFC 6376 3.4, pure.
 *
 * Header fields one at a time (3.4.1 simple, 3.4.2 relaxed). The body
 * incrementally (3.4.3 simple, 3.4.4 relaxed): fed chunk by chunk as the
 * message streams in, it keeps only the state that a chunk boundary can
 * cut (a CR waiting for its LF, white space waiting for what follows,
 * empty lines waiting to be known as the body's last ones), never the
 * body. The output goes to a sink in runs.
 *
 * Lines end in CRLF. A CR not followed by LF and an LF not after a CR are
 * ordinary octets (tern's own data parser refuses them before this is
 * reached; a verifier must still not be confused by them).
 */
#ifndef TERN_DKIM_CANON_H
#define TERN_DKIM_CANON_H

#include <stdbool.h>
#include <stddef.h>

#include "dkim/dkim.h"
#include "lib/buf.h"

/* One header field f (n octets: its name, ":", its value with any folded
 * lines, and the CRLF that ends it, which may be left off), canonicalized
 * and appended to out. crlf: the result ends with CRLF (every field but
 * the DKIM-Signature being made or checked, RFC 6376 3.7). */
void dkim_canon_header(enum dkim_canon c, const char *f, size_t n, bool crlf, struct buf *out);

typedef void (*dkim_sink_fn)(void *ctx, const char *p, size_t n);

#define DKIM_CANON_OUT 512

struct dkim_body {
	enum dkim_canon canon;
	dkim_sink_fn sink;
	void *ctx;
	unsigned long long empty;  /* empty lines held back: emitted only when
	                              something follows them (3.4.3, 3.4.4 b) */
	bool cr;                   /* a CR held back: its LF may come next */
	bool wsp;                  /* relaxed: white space held back (3.4.4 a) */
	bool line;                 /* the current line has content */
	bool any;                  /* something was emitted */
	size_t olen;               /* out holds this much not yet sunk */
	char out[DKIM_CANON_OUT];
};

void dkim_body_init(struct dkim_body *b, enum dkim_canon c, dkim_sink_fn sink, void *ctx);
void dkim_body_feed(struct dkim_body *b, const char *p, size_t n);
/* The end of the body: a last line without CRLF gets one; simple makes
 * an empty body CRLF, relaxed leaves it empty. */
void dkim_body_end(struct dkim_body *b);

#endif
