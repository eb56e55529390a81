/* lint: a transaction's warnings (see lint.h). Pure. */
#include "smtpd/lint.h"

#include <stdio.h>
#include <string.h>

#define LINT_LINE_MAX 998   /* RFC 5322 2.1.1, CRLF excluded */

static const struct lint_info lint_table[LINT__COUNT] = {
	[LINT_BARE_LF] = { "bare-lf", "a bare LF (not after CR) in the message data",
	                   "RFC 5321 2.3.8" },
	[LINT_BARE_CR] = { "bare-cr", "a bare CR (not before LF) in the message data",
	                   "RFC 5321 2.3.8" },
	[LINT_NUL] = { "nul", "a NUL octet in the message data", "RFC 5322 3.5" },
	[LINT_SMUGGLE] = { "smuggling-shape",
	                   "a dot alone between bare line ends (<LF>.<LF> or kin): an end of "
	                   "data to some servers (SMTP smuggling)", "RFC 5321 4.1.1.4" },
	[LINT_NO_FINAL_CRLF] = { "no-final-crlf", "the last line of the message had no CRLF",
	                         "RFC 5322 2.1" },
	[LINT_BARE_NL_COMMAND] = { "bare-newline-command",
	                           "a command line with a bare CR or LF, or a NUL (refused)",
	                           "RFC 5321 2.3.8" },
	[LINT_MAIL_IN_TX] = { "mail-in-transaction",
	                      "MAIL inside a transaction (503): RSET or finish it first",
	                      "RFC 5321 4.1.4" },
	[LINT_RCPT_BEFORE_MAIL] = { "rcpt-before-mail", "RCPT before MAIL (503)",
	                            "RFC 5321 4.1.4" },
	[LINT_BAD_SEQUENCE] = { "bad-sequence", "a command out of order (503)",
	                        "RFC 5321 4.1.4" },
	[LINT_8BIT_UNDECLARED] = { "8bit-undeclared",
	                           "8-bit octets in the message without BODY=8BITMIME or SMTPUTF8",
	                           "RFC 6152 3" },
	[LINT_LINE_TOO_LONG] = { "line-too-long", "a line of the message over 998 octets",
	                         "RFC 5322 2.1.1" },
	[LINT_NO_MESSAGE_ID] = { "no-message-id", "no Message-ID field", "RFC 5322 3.6.4" },
	[LINT_NO_DATE] = { "no-date", "no Date field", "RFC 5322 3.6" },
	[LINT_NO_FROM] = { "no-from", "no From field", "RFC 5322 3.6" },
	[LINT_DUPLICATE_FIELD] = { "duplicate-field", "a field that may occur once, repeated",
	                           "RFC 5322 3.6" },
	[LINT_NOT_FIELD] = { "header-not-field",
	                     "a header line that is not a field (no colon): the header ends "
	                     "there and the rest is body", "RFC 5322 2.2" },
	[LINT_HEADER_8BIT] = { "header-8bit", "8-bit octets in a header field without SMTPUTF8",
	                       "RFC 6532 3" },
	[LINT_SPACE_BEFORE_COLON] = { "space-before-colon",
	                              "white space between a field's name and its colon (obsolete)",
	                              "RFC 5322 4.5.8" },
};

const struct lint_info *lint_info(enum lint_code c)
{
	return &lint_table[c < LINT__COUNT ? c : 0];
}

void lint_add(struct lint *l, enum lint_code c, const char *detail)
{
	if (!detail)
		detail = "";
	for (size_t i = 0; i < l->n; i++)
		if (l->item[i].code == c && !strcmp(l->item[i].detail, detail))
			return;
	if (l->n == LINT_MAX)
		return;
	l->item[l->n].code = c;
	snprintf(l->item[l->n].detail, sizeof l->item[l->n].detail, "%s", detail);
	l->n++;
}

bool lint_has(const struct lint *l, enum lint_code c)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->item[i].code == c)
			return true;
	return false;
}

/* RFC 5322 3.6's table: the fields whose max is 1. */
static const char *const lint_once[] = { "Date", "From", "Sender", "Reply-To", "To", "Cc",
                                         "Bcc", "Message-ID", "In-Reply-To", "References",
                                         "Subject" };

/* A field's own octets: the name (as written) and white space before its
 * colon, 8-bit octets anywhere in it. */
static void lint_field(const struct msghead *h, size_t k, bool smtputf8, struct lint *out)
{
	const struct msghead_field *f = &h->f[k];
	const unsigned char *p = (const unsigned char *)h->raw.data + f->off;
	char name[LINT_DETAIL_MAX];
	snprintf(name, sizeof name, "%.*s", (int)f->nlen, (const char *)p);
	if (f->nlen < f->len && p[f->nlen] != ':')
		lint_add(out, LINT_SPACE_BEFORE_COLON, name);
	if (smtputf8)
		return;
	for (size_t i = 0; i < f->len; i++)
		if (p[i] >= 0x80)
			return lint_add(out, LINT_HEADER_8BIT, name);
}

void lint_head(const struct msghead *h, bool body_followed, bool smtputf8, struct lint *out)
{
	for (size_t k = 0; k < h->nf; k++)
		lint_field(h, k, smtputf8, out);
	if (h->done && !h->blank && body_followed)
		lint_add(out, LINT_NOT_FIELD, NULL);
	if (msghead_count(h, "Message-ID") == 0)
		lint_add(out, LINT_NO_MESSAGE_ID, NULL);
	if (msghead_count(h, "Date") == 0)
		lint_add(out, LINT_NO_DATE, NULL);
	if (msghead_count(h, "From") == 0)
		lint_add(out, LINT_NO_FROM, NULL);
	for (size_t i = 0; i < sizeof lint_once / sizeof lint_once[0]; i++)
		if (msghead_count(h, lint_once[i]) > 1)
			lint_add(out, LINT_DUPLICATE_FIELD, lint_once[i]);
}

void lint_scan_init(struct lint_scan *sc)
{
	memset(sc, 0, sizeof *sc);
	sc->tail[1] = '\r';   /* the data begins after DATA's own CRLF */
	sc->tail[2] = '\n';
}

/* A dot alone between line ends of which one is bare: "\n.\n", "\n.\r\n",
 * "\r.\r\n", ... (the parser passes such a dot on as data; a CRLF before
 * it would have made it an end or a stuffed dot). c is the octet after
 * the dot. */
static bool lint_smuggle(const unsigned char t[3], unsigned char c)
{
	if (t[2] != '.' || (c != '\r' && c != '\n'))
		return false;
	return (t[1] == '\n' && t[0] != '\r') || t[1] == '\r';
}

static void lint_scan_octet(struct lint_scan *sc, unsigned char c)
{
	if (c >= 0x80)
		sc->eight_bit = true;
	if (lint_smuggle(sc->tail, c))
		sc->smuggle = true;
	if (c == '\n') {
		size_t len = sc->line_len - (sc->tail[2] == '\r' && sc->line_len > 0);
		sc->long_line |= len > LINT_LINE_MAX;
		sc->lines++;
		sc->line_len = 0;
	} else {
		sc->line_len++;
	}
	sc->tail[0] = sc->tail[1];
	sc->tail[1] = sc->tail[2];
	sc->tail[2] = c;
}

void lint_scan_feed(struct lint_scan *sc, const char *p, size_t n)
{
	sc->octets += n;
	for (size_t i = 0; i < n; i++)
		lint_scan_octet(sc, (unsigned char)p[i]);
}

void lint_scan_end(const struct lint_scan *sc, bool eight_bit_ok, struct lint *out)
{
	if (sc->smuggle)
		lint_add(out, LINT_SMUGGLE, NULL);
	if (sc->long_line || sc->line_len > LINT_LINE_MAX)
		lint_add(out, LINT_LINE_TOO_LONG, NULL);
	if (sc->eight_bit && !eight_bit_ok)
		lint_add(out, LINT_8BIT_UNDECLARED, NULL);
}
