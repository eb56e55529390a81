/* addr: RFC 5321 mailbox and path parsing, pure functions.
 *
 * Accepts the RFC 5321 4.1.2 Path syntax (with RFC 6531 3.3's UTF-8 in the
 * local part and domain, flagged in struct addr's utf8) and the lenient forms that the
 * Exchange troubleshooting guides type by hand: no angle brackets
 * ("MAIL FROM:Admin@test.com") and spaces after the colon.
 */
#ifndef TERN_ADDR_H
#define TERN_ADDR_H

#include <stdbool.h>
#include <stddef.h>

#define ADDR_LOCAL_MAX 64    /* RFC 5321 4.5.3.1.1 */
#define ADDR_DOMAIN_MAX 255  /* RFC 5321 4.5.3.1.2 */
#define ADDR_PATH_MAX 256    /* RFC 5321 4.5.3.1.3, brackets included */

struct addr {
	char local[ADDR_LOCAL_MAX + 1];    /* as sent, quotes kept if quoted */
	char domain[ADDR_DOMAIN_MAX + 1];  /* lower-cased; "" for <> and <postmaster> */
	bool null;                         /* the null path <> */
	bool literal;                      /* domain is an address literal [..] */
	bool utf8;                         /* non-ASCII (well-formed UTF-8) in the
	                                      local part or domain: RFC 6531, only
	                                      in an SMTPUTF8 transaction */
};

enum addr_err {
	ADDR_OK = 0,
	ADDR_ESYNTAX,    /* not a path at all */
	ADDR_ELOCAL,     /* bad local part */
	ADDR_EDOMAIN,    /* bad domain or address literal */
	ADDR_ETOOLONG,   /* a length limit of RFC 5321 4.5.3.1 */
	ADDR_ENODOMAIN,  /* a mailbox without "@domain" (other than postmaster) */
	ADDR_EUTF8,      /* octets >= 0x80 that are not well-formed UTF-8 */
};

/* Parse a reverse-path or forward-path at the start of s. On success fills
 * *a and sets *end to the first byte after the path (angle brackets
 * included), so that ESMTP parameters can follow. A source route
 * ("<@a,@b:user@c>", RFC 5321 4.1.2 A-d-l) is accepted and dropped, as
 * RFC 5321 C says. allow_null: "<>" is valid (reverse-path only).
 * allow_postmaster: "<postmaster>" without a domain is valid (RFC 5321 4.5.1). */
enum addr_err addr_parse_path(const char *s, const char **end, struct addr *a,
                              bool allow_null, bool allow_postmaster);

/* Parse a whole string as a mailbox "local@domain" (no brackets, nothing
 * after). Used for configuration values and alias targets. */
enum addr_err addr_parse_mailbox(const char *s, struct addr *a);

/* Write "local@domain" (or "" for the null path, or "postmaster") into out,
 * which has room for n bytes. Returns false when it did not fit. */
bool addr_format(const struct addr *a, char *out, size_t n);

/* A short human description of an error, for 501 replies. */
const char *addr_strerror(enum addr_err e);

/* Domain label syntax check (RFC 5321 4.1.2 Domain), ASCII only (an IDN
 * goes through idna_alabel first); s need not be lower case. */
bool addr_domain_valid(const char *s);

/* Is s[0..n) well-formed UTF-8 (RFC 3629: no overlongs, surrogates or
 * values above U+10FFFF), without C1 controls? ASCII is. */
bool addr_utf8_valid(const char *s, size_t n);

/* The domain of a formatted "local@domain" (after its last '@'), or "". */
const char *addr_domain_of(const char *mailbox);

#endif
