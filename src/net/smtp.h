/* smtp: the SMTP protocol's shared vocabulary, pure functions for both
 * sides of a connection (the server's parser, the delivery client,
 * reports, tern-probe): the DSN parameters (RFC 3461) and their xtext
 * encoding.
 */
#ifndef TERN_SMTP_H
#define TERN_SMTP_H

#include <stdbool.h>
#include <stddef.h>

/* RFC 3461 4.1 NOTIFY flags */
enum {
	NOTIFY_NONE = 0,        /* not given: the default applies */
	NOTIFY_NEVER = 1 << 0,
	NOTIFY_SUCCESS = 1 << 1,
	NOTIFY_FAILURE = 1 << 2,
	NOTIFY_DELAY = 1 << 3,
};

enum smtp_ret { RET_UNSET = 0, RET_FULL, RET_HDRS };  /* RFC 3461 4.3 */
enum smtp_body { BODY_UNSET = 0, BODY_7BIT, BODY_8BITMIME }; /* RFC 6152 */

#define SMTP_ENVID_MAX 100  /* RFC 3461 4.4 */
#define SMTP_ORCPT_MAX 500  /* RFC 3461 4.2 */

/* RFC 3461 4 xtext: decode into out (room for n bytes, NUL included).
 * Returns false on bad syntax or overflow. */
bool smtp_xtext_decode(const char *s, size_t len, char *out, size_t n);

/* xtext-encode s into out (room for n). Returns false on overflow. */
bool smtp_xtext_encode(const char *s, char *out, size_t n);

#endif
