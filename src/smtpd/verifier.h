/* verifier: DKIM verification of received mail at the end of DATA (RFC
 * 6376 6), before the EOM policy stage and the 250.
 *
 * The message goes through once as it streams to the spool (dkim/verify.h:
 * the header block kept, a body hash per signature, the body never held).
 * At its end each DKIM-Signature (8 at most) has its key record fetched,
 * SELECTOR._domainkey.DOMAIN TXT, through the loop's resolver (net/dns.h),
 * all at once; within dkim_verify_timeout every signature has a verdict
 * (a lookup still out then is a temperror) and each is logged as an
 * EK_DKIM event: d=, s=, a=, result= (RFC 8601's word), reason=. The
 * verdicts are kept for what comes later (DMARC, Authentication-Results);
 * today they only inform.
 *
 * Only mail tern does not sign is verified: a session that authenticated
 * submits its own, and a local submission is local.
 */
#ifndef TERN_VERIFIER_H
#define TERN_VERIFIER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dkim/dkim.h"
#include "dkim/sig.h"
#include "policy/settings.h"

struct dns;
struct event_base;
struct verifier;

/* A verifier, or NULL when dkim_verify = no or submitted (the message is
 * one tern signs, or would). */
struct verifier *verifier_begin(const struct settings *set, bool submitted);
void verifier_feed(struct verifier *v, const char *p, size_t n);
/* The message is whole. false: no signature to check, nothing to wait
 * for (done is not called). true: the keys are being fetched; done(ctx)
 * runs from the loop once every signature has its verdict, as the last
 * thing the verifier does (done may free it). */
bool verifier_end(struct verifier *v, struct dns *dns, struct event_base *base,
                  uint64_t session, const char *qid, void (*done)(void *ctx), void *ctx);
/* Signatures looked at, and the verdict on each (after done). */
size_t verifier_count(const struct verifier *v);
enum dkim_status verifier_result(const struct verifier *v, size_t k);
/* Signature k's tags as parsed (d= and s= empty when its field broke). */
const struct dkim_sig *verifier_sig(const struct verifier *v, size_t k);
/* Give up: lookups cancelled, no callback. */
void verifier_free(struct verifier *v);

#endif
