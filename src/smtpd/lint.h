/* lint: what a client did wrong in a transaction, told as warnings,
 * never refusals (the test mode's client lint, issue 18). Pure.
 *
 * Three sources: the header block held at the end of DATA (lint_head,
 * RFC 5322 2.2, 3.6), the message octets as they pass (struct lint_scan:
 * 8-bit octets, lines over 998 octets, the "\n.\n" smuggling shape), and
 * what the session saw (the DATA parser's flags, replies 503 the client
 * provoked, bare CR/LF in commands), added with lint_add. Each warning
 * has a stable code, a text and the RFC section it breaks.
 */
#ifndef TERN_LINT_H
#define TERN_LINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/msghead.h"

enum lint_code {
	LINT_BARE_LF,            /* in the data */
	LINT_BARE_CR,
	LINT_NUL,
	LINT_SMUGGLE,            /* <LF>.<LF> and kin: an end of data other servers see */
	LINT_NO_FINAL_CRLF,      /* BDAT: the last line had no CRLF */
	LINT_BARE_NL_COMMAND,    /* a command line with a bare CR or LF, or a NUL */
	LINT_MAIL_IN_TX,         /* MAIL inside a transaction (503) */
	LINT_RCPT_BEFORE_MAIL,   /* RCPT without MAIL (503) */
	LINT_BAD_SEQUENCE,       /* another 503: DATA before RCPT, MAIL before EHLO, ... */
	LINT_8BIT_UNDECLARED,    /* 8-bit octets without BODY=8BITMIME or SMTPUTF8 */
	LINT_LINE_TOO_LONG,      /* over 998 octets */
	LINT_NO_MESSAGE_ID,
	LINT_NO_DATE,
	LINT_NO_FROM,
	LINT_DUPLICATE_FIELD,    /* a field that must occur once, twice */
	LINT_NOT_FIELD,          /* a header line that is not a field */
	LINT_HEADER_8BIT,        /* 8-bit octets in the header without SMTPUTF8 */
	LINT_SPACE_BEFORE_COLON, /* "Subject : x", the obsolete form */
	LINT__COUNT
};

struct lint_info {
	const char *code;   /* stable: "bare-lf", "no-message-id", ... */
	const char *text;
	const char *rfc;    /* "RFC 5322 3.6" */
};

const struct lint_info *lint_info(enum lint_code c);

#define LINT_MAX 32
#define LINT_DETAIL_MAX 64

/* The warnings of a transaction, each (code, detail) once, in order. */
struct lint {
	size_t n;
	struct lint_item {
		enum lint_code code;
		char detail[LINT_DETAIL_MAX];   /* "" or e.g. the field's name */
	} item[LINT_MAX];
};

void lint_add(struct lint *l, enum lint_code c, const char *detail);
bool lint_has(const struct lint *l, enum lint_code c);

/* The header block (msghead_end done): required fields (3.6: Date and
 * From; Message-ID, which 3.6.4 says SHOULD be there), fields that must
 * occur once, 8-bit octets without smtputf8, white space before a colon;
 * body_followed: the block ended at a line that was not a field (msghead
 * then gives that line and the rest to the body). */
void lint_head(const struct msghead *h, bool body_followed, bool smtputf8, struct lint *out);

/* The message octets after unstuffing, fed as they pass. */
struct lint_scan {
	uint64_t octets, lines;
	size_t line_len;         /* octets in the current line so far, LF excluded */
	bool eight_bit;
	bool long_line;
	bool smuggle;
	unsigned char tail[3];   /* the last octets seen, newest last */
};

void lint_scan_init(struct lint_scan *sc);
void lint_scan_feed(struct lint_scan *sc, const char *p, size_t n);
/* The scan's warnings: 8-bit octets count when neither 8bitmime nor
 * smtputf8 was declared at MAIL. */
void lint_scan_end(const struct lint_scan *sc, bool eight_bit_ok, struct lint *out);

#endif
