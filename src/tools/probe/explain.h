/* explain: what an SMTP reply code means, in plain words (pure).
 *
 * Owns the built-in tables: the basic reply codes of RFC 5321 section 4.2
 * and the seeds' tables (211 to 554, 521, 530), the enhanced status codes
 * of RFC 3463 (and the later ones of RFC 3207, 4954, 6531, 7372), and the
 * meanings of EHLO extension keywords. No I/O: every function maps text to
 * text, so the whole file is table-tested (tests/unit/test_explain.c).
 */
#ifndef TERN_PROBE_EXPLAIN_H
#define TERN_PROBE_EXPLAIN_H

#include <stdbool.h>

#include "lib/buf.h"

/* A parsed code pair: basic code (0 when absent) and enhanced code
 * (esc[0] == '\0' when absent), e.g. 550 and "5.7.1". */
struct explain_codes {
	int code;
	char esc[16];
};

/* Parses "550", "5.7.1", "550 5.7.1" or a whole reply line
 * "550 5.7.1 Unable to relay" (also "550-5.7.1 ..."). Returns false when
 * neither a basic nor an enhanced code is found. */
bool explain_parse(const char *s, struct explain_codes *out);

/* One line, for beside a reply in the console and the report:
 * "relaying denied: the server does not accept mail for that domain from
 * you". Never NULL. */
const char *explain_short(const struct explain_codes *c);

/* The full explanation: the basic code, the enhanced code, what it means
 * for the admin and what to try; unknown codes are explained by their class
 * and subject. Appends to out. */
void explain_long(const struct explain_codes *c, struct buf *out);

/* What an EHLO keyword means ("PIPELINING", "AUTH", ...); NULL when unknown. */
const char *explain_ext(const char *keyword);

#endif
