/* keygen: `ternctl dkim-keygen DOMAIN SELECTOR`, a DKIM key pair made
 * without a running daemon: the private key written (0600) where told,
 * then the DNS TXT record to publish (RFC 6376 3.6.2.2: at
 * SELECTOR._domainkey.DOMAIN; RFC 8463 4 for Ed25519) and the dkim_keys
 * line that makes ternd sign with it.
 */
#ifndef TERN_KEYGEN_H
#define TERN_KEYGEN_H

#include <stdbool.h>

#include "lib/buf.h"

#define KEYGEN_RSA_BITS 2048         /* RFC 8301 3.2: "SHOULD use at least 2048" */
#define KEYGEN_RSA_MIN 1024          /* RFC 8301 3.2: "MUST use at least 1024" */
#define KEYGEN_RSA_MAX 8192
#define KEYGEN_TXT_STRING 255        /* RFC 1035 3.3: a <character-string>, at most */

struct keygen_opts {
	const char *type;                /* "rsa" (default) or "ed25519" */
	unsigned bits;                   /* RSA only; 0: KEYGEN_RSA_BITS */
	const char *out;                 /* NULL: ./SELECTOR.DOMAIN.pem */
};

/* Make, write and print; an exit status (<sysexits.h>), the problem on
 * stderr. */
int keygen_run(const char *domain, const char *selector, const struct keygen_opts *o);

/* The zone file line "NAME IN TXT ( "..." "..." )" for record, cut into
 * strings of at most KEYGEN_TXT_STRING octets (a resolver joins them:
 * RFC 6376 3.6.2.2), appended to out. Pure. */
void keygen_txt(const char *name, const char *record, struct buf *out);

#endif
