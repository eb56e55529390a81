/* sign: DKIM signing (RFC 6376 5, RFC 8463 3), pure.
 *
 * The message streams through once (dkim_sign_feed, as DATA arrives);
 * at its end the author's domain names the key (dkim_sign_end), and each
 * key makes one DKIM-Signature field (dkim_sign_field): c=relaxed/relaxed,
 * the header fields of RFC 6376 5.4.1's list that the message has, From,
 * Subject and Date listed once more than present (so a copy added later
 * breaks the signature, 8.15), folded at 78 columns. Several keys of one
 * domain (RSA and Ed25519) make several fields over the same hashes.
 */
#ifndef TERN_DKIM_SIGN_H
#define TERN_DKIM_SIGN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "dkim/dkim.h"
#include "dkim/msg.h"
#include "lib/buf.h"

/* A DKIM-Signature line is folded before this column. */
#define DKIM_FOLD 78

struct dkim_sign;

struct dkim_sign *dkim_sign_new(void);
void dkim_sign_feed(struct dkim_sign *s, const char *p, size_t n);
/* The header block as it finally is, in place of the streamed one
 * (dkim_msg_set_head). */
void dkim_sign_head(struct dkim_sign *s, const char *p, size_t n);
/* The message is whole: the From domain (lower-case) into domain (room
 * for size octets), DKIM_OK; or why it is not to be signed
 * (DKIM_HEADER_TOO_BIG, DKIM_NO_FROM, DKIM_FROM_SYNTAX). */
enum dkim_status dkim_sign_end(struct dkim_sign *s, char *domain, size_t size);
/* One "DKIM-Signature: ..." field with its CRLF for domain d, selector
 * sel, the private key (RSA or Ed25519), signed at t; appended to out.
 * DKIM_OK or DKIM_SIGN_FAILED (out unchanged). */
enum dkim_status dkim_sign_field(struct dkim_sign *s, const char *d, const char *sel,
                                 EVP_PKEY *key, int64_t t, struct buf *out);
void dkim_sign_free(struct dkim_sign *s);

/* The h= value for m's fields ("from:from:subject:subject:date:date:to"),
 * appended to out. Pure, for the tests. */
void dkim_sign_names(const struct dkim_msg *m, struct buf *out);

/* Sign the SHA-256 hash of the header data (RSA: RSASSA-PKCS1-v1_5 over
 * it, RFC 6376 3.3.1; Ed25519: PureEdDSA over its 32 octets, RFC 8463 3)
 * into sig (room for *len octets, set to the length). */
bool dkim_sign_hash(EVP_PKEY *key, const unsigned char hash[32], unsigned char *sig,
                    size_t *len);

#endif
