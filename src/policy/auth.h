/* auth: SASL PLAIN and LOGIN (RFC 4954, RFC 4616) and CRAM-MD5 (RFC 2195)
 * decoding, pure, and the users table: a Dovecot passwd-file checked with
 * libcrypt, or for CRAM-MD5 with HMAC-MD5 (RFC 2104) from the secret itself
 * ({PLAIN}) or from Dovecot's {CRAM-MD5} form of it.
 *
 * Base64 is net/smtp.c's strict decoder: only the alphabet, length a
 * multiple of 4, padding at the end alone, and the canonical encoding.
 */
#ifndef TERN_AUTH_H
#define TERN_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AUTH_FIELD_MAX 255   /* a user name or password, octets */
#define AUTH_CRAM_DIGEST_LEN 16      /* HMAC-MD5 */
#define AUTH_CRAM_CONTEXT_LEN 32     /* {CRAM-MD5}: two MD5 states (64 hex digits) */
#define AUTH_CRAM_CHALLENGE_MAX 320  /* "<random.time@host>", host at most 255 */

/* RFC 4616: base64 of [authzid] NUL authcid NUL passwd. authzid must be
 * empty or equal authcid (no proxy authorization). False when malformed. */
bool auth_plain_decode(const char *b64, char *user, char *pass);

/* One LOGIN step: base64 of a user name or a password, no NUL inside. */
bool auth_login_decode(const char *b64, char *out);

/* RFC 2195 2: the client's CRAM-MD5 answer, base64 of "user SP digest",
 * the digest 32 hex digits (lower case says the RFC; upper case is taken
 * too). The user is what comes before the last space (a name may hold
 * spaces), 1..AUTH_FIELD_MAX octets without NUL or control characters.
 * False when malformed. */
bool auth_cram_decode(const char *b64, char *user, unsigned char digest[AUTH_CRAM_DIGEST_LEN]);

/* RFC 2195 2: a challenge in msg-id form, "<random.time@host>", into out
 * (room for n). False when it does not fit. */
bool auth_cram_challenge(char *out, size_t n, uint64_t random, long long now, const char *host);

/* Dovecot's {CRAM-MD5} form of a secret (doveadm pw -s CRAM-MD5): the MD5
 * states after the HMAC outer pad block, then after the inner pad block
 * (RFC 2104 2), each as its words A, B, C, D, little-endian. */
void auth_cram_context(const char *secret, size_t len, unsigned char ctx[AUTH_CRAM_CONTEXT_LEN]);

/* HMAC-MD5(secret, msg) from the secret's context. */
void auth_cram_hmac(const unsigned char ctx[AUTH_CRAM_CONTEXT_LEN], const char *msg, size_t n,
                    unsigned char digest[AUTH_CRAM_DIGEST_LEN]);

/* Can stored serve CRAM-MD5? {PLAIN} and {CRAM-MD5} can, crypt hashes not. */
bool auth_cram_usable(const char *stored);

/* Is digest HMAC-MD5(secret, challenge) for the secret stored holds? False
 * for a scheme CRAM-MD5 cannot use, after the work a {PLAIN} secret costs.
 * Compared in constant time. */
bool auth_cram_match(const char *stored, const char *challenge,
                     const unsigned char digest[AUTH_CRAM_DIGEST_LEN]);

struct auth_users;

/* Load a passwd-file; problems printed as FILE:LINE and counted in *bad.
 * Returns an empty table for path "". */
struct auth_users *auth_users_load(const char *path, int *bad);
void auth_users_free(struct auth_users *u);
size_t auth_users_count(const struct auth_users *u);

/* True when user (case-insensitive) exists and pass matches its hash. Runs
 * one hash even for an unknown user, so timing does not tell users apart. */
bool auth_users_check(const struct auth_users *u, const char *user, const char *pass);

/* Does any user have a secret CRAM-MD5 can use (then it is offered)? */
bool auth_users_cram(const struct auth_users *u);

/* The CRAM-MD5 check of user (case-insensitive) against the challenge
 * sent: false for an unknown user and one stored as a crypt hash, after
 * the same work. */
bool auth_users_cram_check(const struct auth_users *u, const char *user, const char *challenge,
                           const unsigned char digest[AUTH_CRAM_DIGEST_LEN]);

/* Check pass against one stored password: "{SCHEME}hash" or a crypt hash
 * ({CRAM-MD5}: the context of pass compared). */
bool auth_password_match(const char *stored, const char *pass);

/* Does a stored password use a scheme this build can check? */
bool auth_scheme_known(const char *stored);

#endif
