/* auth: SASL PLAIN and LOGIN (RFC 4954, RFC 4616) decoding, pure, and the
 * users table: a Dovecot passwd-file checked with libcrypt.
 *
 * Base64 is net/smtp.c's strict decoder: only the alphabet, length a
 * multiple of 4, padding at the end alone, and the canonical encoding.
 */
#ifndef TERN_AUTH_H
#define TERN_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#define AUTH_FIELD_MAX 255   /* a user name or password, octets */

/* RFC 4616: base64 of [authzid] NUL authcid NUL passwd. authzid must be
 * empty or equal authcid (no proxy authorization). False when malformed. */
bool auth_plain_decode(const char *b64, char *user, char *pass);

/* One LOGIN step: base64 of a user name or a password, no NUL inside. */
bool auth_login_decode(const char *b64, char *out);

struct auth_users;

/* Load a passwd-file; problems printed as FILE:LINE and counted in *bad.
 * Returns an empty table for path "". */
struct auth_users *auth_users_load(const char *path, int *bad);
void auth_users_free(struct auth_users *u);
size_t auth_users_count(const struct auth_users *u);

/* True when user (case-insensitive) exists and pass matches its hash. Runs
 * one hash even for an unknown user, so timing does not tell users apart. */
bool auth_users_check(const struct auth_users *u, const char *user, const char *pass);

/* Check pass against one stored password: "{SCHEME}hash" or a crypt hash. */
bool auth_password_match(const char *stored, const char *pass);

/* Does a stored password use a scheme this build can check? */
bool auth_scheme_known(const char *stored);

#endif
