/* msgin: a message coming in, after DATA's dot-unstuffing (a session's,
 * or a maildrop file's): its header block held in memory (lib/msghead.h),
 * its body streamed to the spool as it comes, and signed (signer.h) on
 * the way. At the end the header block is final (forged verdicts removed,
 * the milters' edits made) and goes, with the fields made here, into the
 * message's prefix (spool_env.prefix), which every transport sends before
 * the body:
 *
 *     Received (ours: the trace comes first, RFC 5321 4.4),
 *     Authentication-Results (ours, RFC 8601 5), DKIM-Signature (ours),
 *     the header block as it now is, the empty line; then the stored body.
 *
 * RFC 8601 5: every Authentication-Results field that claims our
 * authserv-id was not written by us, and is removed before anyone reads
 * the message.
 */
#ifndef TERN_MSGIN_H
#define TERN_MSGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/msghead.h"
#include "spool/spool.h"
#include "smtpd/signer.h"

struct msgin {
	struct msghead head;
	struct spool_msg *msg;
	struct signer *signer;         /* or NULL */
	uint64_t stored;               /* body octets written to the spool */
	bool wait;                     /* the spool asked the writer to wait */
};

/* Begin: the body goes to msg, the header block may hold max_head octets. */
void msgin_begin(struct msgin *m, struct spool_msg *msg, struct signer *signer, size_t max_head);
/* Message octets; false when the caller should stop until the spool's
 * on_chunk says it is writable again. */
bool msgin_feed(struct msgin *m, const char *p, size_t n);
/* The message has ended: false when its header block was over max_head. */
bool msgin_end(struct msgin *m);
/* Remove the Authentication-Results fields that claim authserv_id (RFC
 * 8601 5); how many. */
size_t msgin_strip_verdicts(struct msgin *m, const char *authserv_id);
/* The prefix (allocated): fields (the Received and Authentication-Results
 * made here, CRLF-ended), the DKIM-Signature fields made now, then the
 * header block. The signer is used up. */
char *msgin_prefix(struct msgin *m, const char *fields, uint64_t session, const char *qid);
/* RFC 8689 5: does the header block hold "TLS-Required: No" (the sender
 * asks that TLS policy failures not stop delivery)? */
bool msgin_tls_optional(const struct msgin *m);
/* Free what is left (the spool message is the caller's). */
void msgin_free(struct msgin *m);

/* Does this Authentication-Results value claim authserv_id? Its first
 * token after comments and white space (RFC 8601 2.2), compared without
 * case. Pure, for the tests. */
bool msgin_claims(const char *value, size_t len, const char *authserv_id);

#endif
