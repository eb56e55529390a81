/* data: the DATA stream of RFC 5321 4.1.1.4 as an incremental, pure parser.
 *
 * Feeds on raw bytes as they arrive, writes the unstuffed message (CRLF line
 * ends kept) through a callback, and finds the end of data. The only end is
 * CRLF "." CRLF (the CRLF that ends DATA's own command line counts as the
 * first one): a bare LF or bare CR never ends data and is flagged, which
 * closes SMTP smuggling (CVE-2023-51764 and kin). Lines longer than the
 * limit and messages over the size limit are flagged but still consumed, so
 * the session stays in step with the client and can answer at the end.
 * A NUL octet is flagged the same way: without BINARYMIME (not offered) it
 * is never valid, and some receivers drop it, which smuggling relies on.
 *
 * BDAT (RFC 3030) sends the message as counted chunks: the same parser in
 * raw mode (data_raw) passes every octet through (no dot-unstuffing, no
 * end of data: the session counts), with the same flags; data_finish
 * ends it.
 */
#ifndef TERN_DATA_H
#define TERN_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum data_flag {
	DATA_BARE_LF = 1 << 0,
	DATA_BARE_CR = 1 << 1,
	DATA_LONG_LINE = 1 << 2,
	DATA_TOO_BIG = 1 << 3,
	DATA_NUL = 1 << 4,      /* RFC 5322 3.5, RFC 2045 2.7: never without BINARYMIME */
	DATA_HEAD_TOO_BIG = 1 << 5,  /* the header block is over max_header_size (set
	                           by the receiver, smtpd/msgin.h) */
};

typedef void (*data_sink_fn)(void *ctx, const char *p, size_t n);

struct data_parser {
	int state;              /* private */
	size_t line_len;        /* octets in the current line, CRLF excluded */
	size_t max_line;        /* e.g. 998 (RFC 5322 2.1.1) */
	uint64_t max_size;      /* 0 = unlimited */
	uint64_t size;          /* unstuffed octets so far, CRLFs included */
	unsigned flags;         /* DATA_* */
	uint64_t dot_lines;     /* lines of the message that begin with a dot */
	bool done;              /* the end CRLF.CRLF has been consumed */
	bool raw;               /* BDAT: no unstuffing, no end (data_raw) */
	bool unterminated;      /* BDAT: the last line had no CRLF (data_finish
	                           added it) */
	data_sink_fn sink;      /* receives message bytes; not called once flags
	                           has DATA_TOO_BIG */
	void *ctx;
};

void data_init(struct data_parser *d, size_t max_line, uint64_t max_size,
               data_sink_fn sink, void *ctx);

/* Consume up to n bytes. Returns how many were consumed: n, or fewer when
 * the end of data was reached (d->done), the rest belonging to the next
 * command (pipelining). */
size_t data_feed(struct data_parser *d, const char *p, size_t n);

/* After data_init: raw mode, for BDAT chunks (data_feed consumes all). */
void data_raw(struct data_parser *d);
/* Raw mode, the last chunk is in: a CR at the very end is a bare CR; a
 * last line without its CRLF gets one (the spool holds CRLF lines). */
void data_finish(struct data_parser *d);

#endif
