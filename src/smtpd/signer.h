/* signer: DKIM signing at receipt (RFC 6376 5), as OpenDKIM behind a
 * milter would do it, before the 250: for a session that authenticated
 * and for a local submission (maildrop pickup), when dkim_sign says so.
 *
 * The body goes through once as it streams to the spool, after
 * dot-unstuffing (dkim/sign.h: hashed, never held); the header block is
 * held by the message (smtpd/msgin.h) and given at the end, as it then
 * is. The RFC 5322.From domain picks the keys of dkim_keys
 * (policy/signkeys.h); each makes a DKIM-Signature field, at the top of
 * the message's prefix (spool_env.prefix), which every transport sends
 * before the body. The Received field tern adds is not signed.
 */
#ifndef TERN_SIGNER_H
#define TERN_SIGNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sys/socket.h>

#include "lib/msghead.h"
#include "policy/settings.h"

struct signer;

/* Whether a session's mail is tern's own to sign (and so not to verify):
 * it authenticated, or dkim_sign = trusted and client is one of
 * relay_networks (as OpenDKIM's InternalHosts). */
bool signer_owns(const struct settings *set, bool authed, const struct sockaddr *client);
/* A signer for a message, or NULL when it is not to be signed (dkim_sign
 * = no, no keys, or submitted false: neither AUTH nor a local user, nor
 * with dkim_sign = trusted a client of relay_networks: see signer_owns).
 * set must outlive it. */
struct signer *signer_begin(const struct settings *set, bool submitted);
/* Body octets, as they go to the spool (unstuffed, CRLF line ends). */
void signer_feed(struct signer *g, const char *p, size_t n);
/* The end of the message, with its header block as it now is: its
 * DKIM-Signature fields (allocated, CRLF ended), or NULL when it is not
 * signed; an event (EK_DKIM, of session and qid) says which keys signed,
 * or why none did. Frees g. */
char *signer_end(struct signer *g, const struct msghead *head, uint64_t session,
                 const char *qid);
/* Give the message up (a refused or abandoned transaction). */
void signer_free(struct signer *g);

#endif
