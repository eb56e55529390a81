/* sig: the DKIM-Signature header field (RFC 6376 3.5) parsed and checked
 * as a verifier must before fetching a key (6.1.1). Pure.
 */
#ifndef TERN_DKIM_SIG_H
#define TERN_DKIM_SIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dkim/dkim.h"

#define DKIM_NAMES_MAX 128      /* h= names */
#define DKIM_SIG_B_MAX 1040     /* b= octets: 8192-bit RSA, and the decoder's slack */

struct dkim_sig {
	enum dkim_alg alg;
	enum dkim_canon hc, bc;         /* c=header/body, default simple/simple */
	char d[256];                    /* the SDID, lower-case */
	char s[256];                    /* the selector */
	char i[512];                    /* the AUID; "@" d= when absent */
	unsigned char bh[64];
	size_t bhlen;
	unsigned char b[DKIM_SIG_B_MAX];
	size_t blen;
	size_t nh;                      /* h= names, in order, NUL-terminated in hbuf */
	uint16_t h[DKIM_NAMES_MAX];     /* offsets into hbuf */
	char hbuf[2048];
	bool has_l, has_t, has_x;
	uint64_t l;                     /* body octets hashed */
	int64_t t, x;                   /* signed, expires (unix seconds) */
	size_t b_from, b_to;            /* offsets in the field of what follows
	                                   "b=": emptied when hashing (3.7) */
};

/* Parse the field f (n octets: "DKIM-Signature:" and its value, its CRLF
 * left off or not). DKIM_OK, or a DKIM_SIG_* status. */
enum dkim_status dkim_sig_parse(const char *f, size_t n, struct dkim_sig *out);

/* x= passed, or t= in the future (beyond DKIM_CLOCK_SKEW) at now. */
enum dkim_status dkim_sig_times(const struct dkim_sig *sig, int64_t now);

/* Header name k of h=. */
const char *dkim_sig_name(const struct dkim_sig *sig, size_t k);

/* Is the selector (RFC 6376 3.1: sub-domain *("." sub-domain)) usable in
 * a DNS name? Underscores are taken, as deployed selectors have them. */
bool dkim_sig_selector_valid(const char *s);

#endif
