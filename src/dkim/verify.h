/* verify: DKIM verification (RFC 6376 6, RFC 8463), pure.
 *
 * The message streams through once; at the end of its header block each
 * DKIM-Signature field (DKIM_SIGS_MAX at most) is parsed and checked
 * (6.1.1) and, when sound, gets a body hash of its own (its body
 * canonicalization, its l=). After the whole message each signature's d=
 * and s= name the key record to fetch (SELECTOR._domainkey.DOMAIN, 3.6.2:
 * the caller's DNS), and dkim_verify_check gives the verdict with it:
 * DKIM_OK (pass) or the status that says why not.
 */
#ifndef TERN_DKIM_VERIFY_H
#define TERN_DKIM_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "dkim/dkim.h"
#include "dkim/sig.h"

struct dkim_verify;

struct dkim_verify *dkim_verify_new(void);
void dkim_verify_feed(struct dkim_verify *v, const char *p, size_t n);
void dkim_verify_end(struct dkim_verify *v);
void dkim_verify_free(struct dkim_verify *v);

/* DKIM_OK, or DKIM_HEADER_TOO_BIG: no signature could be looked at. */
enum dkim_status dkim_verify_message(const struct dkim_verify *v);
/* DKIM-Signature fields found (DKIM_SIGS_MAX at most). */
size_t dkim_verify_count(const struct dkim_verify *v);
/* Signature k: DKIM_OK and *sig set (its d= and s= name the key to
 * fetch), or the status that already decides it (no key is needed). */
enum dkim_status dkim_verify_sig(const struct dkim_verify *v, size_t k,
                                 const struct dkim_sig **sig);
/* The verdict on signature k with its key record rec (n octets; the TXT
 * record's strings joined) at time now (unix seconds). */
enum dkim_status dkim_verify_check(struct dkim_verify *v, size_t k, const char *rec, size_t n,
                                   int64_t now);

/* Check sig (len octets) over the SHA-256 hash of the header data with a
 * public key of algorithm alg. */
bool dkim_verify_hash(EVP_PKEY *key, enum dkim_alg alg, const unsigned char hash[32],
                      const unsigned char *sig, size_t len);

#endif
