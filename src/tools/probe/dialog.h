/* dialog: the dialogue files of "tern-probe conform", parsed. Pure.
 *
 * A file is a header (key: value lines) and, after it, the steps, one a
 * line; '#' starts a comment line. docs/CONFORM.md has the whole format:
 *
 *   about: RCPT before MAIL is out of sequence
 *   rfc: RFC 5321 4.1.4            the section a failure names
 *   requires: PIPELINING !SMTPUTF8 EHLO keywords needed (! : absent)
 *
 *   > EHLO ${helo}                 a line sent, CRLF added
 *   >raw \r\n.\n                   bytes sent as they are
 *   < 250|251 ~ 2\.1\.5            a reply expected: codes, classes (2xx),
 *                                  alternatives, a regex on its text
 *   < 250 !~ STARTTLS              ... or a regex its text must not match
 *   < 250|closed                   ... or the server may close instead
 *   rfc: RFC 3207 4.2              the section for the steps below
 *   starttls                       the TLS handshake (after a 220)
 *   closed                         the server closes the connection
 *
 * Consecutive sends leave in one write (an RFC 2920 group). Sent text
 * takes escapes (\r \n \t \0 \\ \xHH) and ${helo}, ${from}, ${to}, and
 * ${N*TEXT} (TEXT N times), expanded when it is sent (dialog_expand).
 */
#ifndef TERN_PROBE_DIALOG_H
#define TERN_PROBE_DIALOG_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>

#include "lib/buf.h"

#define DIALOG_MAX_STEPS 256
#define DIALOG_MAX_CODES 8
#define DIALOG_MAX_REQUIRES 8
#define DIALOG_RFC_MAX 64
#define DIALOG_EXPAND_MAX (1024 * 1024)   /* octets one send may expand to */

enum dialog_kind { DIALOG_SEND, DIALOG_RAW, DIALOG_EXPECT, DIALOG_STARTTLS, DIALOG_CLOSED };

struct dialog_expect {
	int ncodes;
	char codes[DIALOG_MAX_CODES][4];   /* "250", "2xx", "25x" */
	bool has_re, re_not;               /* "~ RE" or "!~ RE" */
	bool or_closed;                    /* "closed" among the alternatives */
	regex_t re;                        /* POSIX ERE, case-insensitive, ^ $ at each line */
};

struct dialog_step {
	enum dialog_kind kind;
	int line;                          /* in the file */
	char rfc[DIALOG_RFC_MAX];
	char *text;                        /* SEND, RAW: as written; EXPECT: the pattern */
	struct dialog_expect ex;
};

struct dialog_require {
	char keyword[32];                  /* upper case */
	bool absent;                       /* "!KEYWORD" */
};

struct dialog {
	char about[160];
	char rfc[DIALOG_RFC_MAX];
	struct dialog_require req[DIALOG_MAX_REQUIRES];
	int nreq;
	struct dialog_step *steps;
	int nsteps;
	bool starttls;                     /* has a starttls step: never run over --tls */
};

struct dialog_vars {
	const char *helo, *from, *to;
};

/* Parse a whole file (n octets; NULs refused). 0, or -1 with err naming
 * the line. d is freed by dialog_free either way. */
int dialog_parse(const char *src, size_t n, struct dialog *d, char *err, size_t errlen);
void dialog_free(struct dialog *d);

/* Sent text to bytes, appended to out. 0, or -1 with err. */
int dialog_expand(const char *text, const struct dialog_vars *v, struct buf *out,
                  char *err, size_t errlen);
/* Whether a reply (code, its lines joined by '\n') is what e expects;
 * code 0 and text NULL: the server closed the connection instead. */
bool dialog_match(const struct dialog_expect *e, int code, const char *text);
/* Bytes made printable: CR, LF, NUL, '\\' and the rest as escapes, cut
 * after max octets with "...". */
void dialog_show(const char *p, size_t n, size_t max, struct buf *out);

#endif
