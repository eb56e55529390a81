/* dkim: what the DKIM files share (RFC 6376 DomainKeys Identified Mail,
 * RFC 8463 Ed25519, RFC 8301 algorithm and key size updates): the
 * algorithms, the canonicalizations, and every verdict as one status
 * code with its text and its RFC 8601 result word.
 *
 * The folder is pure: no event loop, no DNS, no files; OpenSSL's EVP for
 * the hashes and signatures. tags (3.2), canon (3.4), key (3.6.1 key
 * records), sig (3.5 the DKIM-Signature field), msg (a message streamed
 * in: its header block kept, its body hashed as it comes), sign (5) and
 * verify (6). A verdict is never a crash: every broken input is a status.
 */
#ifndef TERN_DKIM_H
#define TERN_DKIM_H

#include <stdbool.h>
#include <stddef.h>

/* The header block kept for signing or verifying; a larger one is not
 * signed, and its signatures are not verified (DKIM_HEADER_TOO_BIG). */
#define DKIM_HEADER_MAX (64 * 1024)
/* DKIM-Signature fields of a message looked at, at most. */
#define DKIM_SIGS_MAX 8
/* RFC 8301 3.2: RSA keys of fewer bits are not accepted. */
#define DKIM_RSA_MIN_BITS 1024
/* Clock skew allowed to a signature's t= (RFC 6376 3.5: "t= ... in the
 * future" MAY be refused; a few minutes of skew are normal). */
#define DKIM_CLOCK_SKEW 300

/* a= (RFC 6376 3.5, RFC 8463 3). rsa-sha1 is not accepted (RFC 8301 3.1). */
enum dkim_alg { DKIM_RSA_SHA256, DKIM_ED25519_SHA256 };
/* c= (RFC 6376 3.4). */
enum dkim_canon { DKIM_SIMPLE, DKIM_RELAXED };

enum dkim_status {
	DKIM_OK,                /* pass (a signature), or no problem (a step) */
	/* the signature field (RFC 6376 3.5, 6.1.1) */
	DKIM_SIG_SYNTAX,        /* not a tag-list (3.2) */
	DKIM_SIG_VERSION,       /* v= is not 1 */
	DKIM_SIG_MISSING_TAG,   /* one of v a b bh d h s is missing */
	DKIM_SIG_BASE64,        /* b= or bh= is not base64 */
	DKIM_SIG_ALGORITHM,     /* a= unknown, or rsa-sha1 (RFC 8301) */
	DKIM_SIG_CANON,         /* c= unknown */
	DKIM_SIG_QUERY,         /* q= without dns/txt */
	DKIM_SIG_DOMAIN,        /* d= or s= malformed, or i= not in d= */
	DKIM_SIG_FROM,          /* h= does not cover From */
	DKIM_SIG_LENGTH,        /* l= malformed, or longer than the body */
	DKIM_SIG_TIMES,         /* t= or x= malformed, or x= before t= */
	DKIM_SIG_EXPIRED,       /* x= has passed */
	DKIM_SIG_FUTURE,        /* t= is in the future */
	/* the key record (RFC 6376 3.6.1) */
	DKIM_KEY_SYNTAX,        /* not a tag-list, v= not DKIM1 first, p= missing */
	DKIM_KEY_BASE64,        /* p= is not base64, or not a key */
	DKIM_KEY_REVOKED,       /* p= is empty */
	DKIM_KEY_TYPE,          /* k= unknown, or not the signature's algorithm */
	DKIM_KEY_HASH,          /* h= does not allow sha256 */
	DKIM_KEY_SERVICE,       /* s= is neither * nor email */
	DKIM_KEY_STRICT,        /* t=s, and i= is a subdomain of d= */
	DKIM_KEY_SHORT,         /* RSA under DKIM_RSA_MIN_BITS (RFC 8301 3.2) */
	DKIM_KEY_NONE,          /* no key record (NXDOMAIN, no TXT) */
	DKIM_KEY_TEMP,          /* the key could not be fetched now */
	/* the message */
	DKIM_BODY_HASH,         /* the body hash did not verify */
	DKIM_SIGNATURE,         /* the signature did not verify */
	DKIM_HEADER_TOO_BIG,    /* the header block is over DKIM_HEADER_MAX */
	DKIM_NO_FROM,           /* signing: no From field, or several */
	DKIM_FROM_SYNTAX,       /* signing: From does not hold one mailbox with a domain */
	DKIM_SIGN_FAILED,       /* signing: the key did not sign (OpenSSL) */
	DKIM_STATUS_COUNT
};

/* "body hash did not verify" */
const char *dkim_status_text(enum dkim_status st);
/* The RFC 8601 2.7.1 result: pass, fail, policy, neutral, temperror or
 * permerror. */
const char *dkim_status_result(enum dkim_status st);

/* "rsa-sha256", "ed25519-sha256"; dkim_alg_parse: false when unknown. */
const char *dkim_alg_name(enum dkim_alg a);
bool dkim_alg_parse(const char *s, size_t n, enum dkim_alg *out);

#endif
