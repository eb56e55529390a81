/* authres: what tern established about a received message, and the one
 * Authentication-Results field (RFC 8601) that says it: SPF (checked at
 * MAIL, policy/spf_check.h), DKIM (the verifier, verifier.h) and DMARC
 * (RFC 7489, policy/dmarc.h), whose record is looked up here, at the end
 * of DATA, on the session's loop and at the same time as the DKIM keys.
 *
 * With dmarc_policy = enforce, a failing message whose domain says
 * p=reject is refused (550 5.7.1) and p=quarantine is queued held
 * (quarantined: ternctl release lets it go); report only logs and
 * records; off does nothing. Mail of authenticated clients, of
 * relay_networks and local submissions is not checked: it is ours.
 */
#ifndef TERN_AUTHRES_H
#define TERN_AUTHRES_H

#include <stdbool.h>

#include "lib/buf.h"

struct session;
struct authres;

/* Look up the DMARC record of the message's From domain when
 * dmarc_policy asks for it; true when done(ctx) will be called from the
 * loop once the answer is in (or dmarc_timeout passed). */
bool authres_dmarc_start(struct session *s, void (*done)(void *ctx), void *ctx);

enum authres_act { AUTHRES_ACCEPT, AUTHRES_QUARANTINE, AUTHRES_REJECT };

/* Every check in: the DMARC verdict (logged as an EK_DMARC event) and
 * what dmarc_policy makes of it; *domain names the policy's domain. */
enum authres_act authres_decide(struct session *s, const char **domain);

/* The Authentication-Results field (CRLF-ended), appended to out; nothing
 * when no check was made. */
void authres_field(struct session *s, struct buf *out);

void authres_free(struct authres *a);

#endif
