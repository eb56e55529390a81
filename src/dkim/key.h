/* key: DKIM public keys: the key record a verifier fetches from
 * SELECTOR._domainkey.DOMAIN (RFC 6376 3.6.1, RFC 8463 4), and the record
 * a signer publishes for its private key. RSA keys travel as the DER
 * SubjectPublicKeyInfo (or RSAPublicKey) in base64; Ed25519 keys as their
 * 32 raw octets in base64 (RFC 8463 4). Pure, on OpenSSL's EVP.
 */
#ifndef TERN_DKIM_KEY_H
#define TERN_DKIM_KEY_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/evp.h>

#include "dkim/dkim.h"
#include "lib/buf.h"

/* Base64 text of a tag value (p=, b=), at most. */
#define DKIM_B64_MAX 4096

struct dkim_key {
	EVP_PKEY *pkey;        /* NULL unless parsed whole */
	enum dkim_alg alg;     /* what k= says (rsa: rsa-sha256) */
	bool testing;          /* t=y: the domain is testing DKIM */
	bool strict;           /* t=s: i= must be d= itself */
};

/* Parse a key record (a TXT record's strings joined). DKIM_OK, or one of
 * the DKIM_KEY_* statuses; out->pkey is set only with DKIM_OK (free it
 * with dkim_key_free in any case). */
enum dkim_status dkim_key_parse(const char *rec, size_t n, struct dkim_key *out);
void dkim_key_free(struct dkim_key *k);

/* The signing algorithm of a (private or public) key: false for a kind
 * DKIM has none for (EC, DSA, ...). */
bool dkim_key_alg(EVP_PKEY *pk, enum dkim_alg *out);

/* The key record to publish for pk's public half, "v=DKIM1; k=rsa;
 * p=MIIB...", appended to out; false when pk is of no DKIM kind. */
bool dkim_key_record(EVP_PKEY *pk, struct buf *out);

/* Strict base64 (RFC 4648) of a tag value, white space and FWS left out,
 * into out (room for size octets); the length, or -1. */
long dkim_key_b64(const char *val, size_t vlen, unsigned char *out, size_t size);

#endif
