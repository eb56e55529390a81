/* tlsrpt: SMTP TLS Reporting (RFC 8460) on the delivery loop. Every TLS
 * outcome of a connection to an MX host (net/smtpc.h's tls_result) and
 * every MTA-STS policy fetch that failed (sts.c), MX host an enforce or
 * testing policy does not match and bogus TLSA answer (dest.c) is counted per policy
 * domain and policy type, in memory; every tls_rpt_interval the counts
 * become one aggregate report per domain (4.4: JSON, gzip), sent to the
 * mailto: addresses of the domain's _smtp._tls TXT record (3) as a
 * message queued here (multipart/report; report-type="tlsrpt", 5.3), the
 * application/tlsrpt+gzip part in base64, or POSTed to its https: ones
 * (5.4, net/httpc.c, the host resolved by net/dns.c). Periods are
 * aligned to multiples of the interval (the default day: UTC midnight,
 * 4.1); each failure row names our own address (sending-mta-ip). The
 * counts live in spool_dir/tlsrpt.json across restarts: written every
 * 30 s when they changed, at each period's end and at shutdown; a start
 * after the saved period ended reports it at once.
 */
#ifndef TERN_DELIVER_TLSRPT_H
#define TERN_DELIVER_TLSRPT_H

#include "deliver/sts.h"
#include "net/smtpc.h"

struct queue;
struct tlsrpt;

/* NULL when tls_rpt is off. */
struct tlsrpt *tlsrpt_new(struct queue *q);
void tlsrpt_free(struct tlsrpt *t);

/* An outcome for mail to domain, under policy sts (NULL: none) when the
 * outcome's type is sts. t may be NULL (tls_rpt off). */
void tlsrpt_note(struct tlsrpt *t, const char *domain, const struct sts_policy *sts,
                 const struct smtpc_tls_result *r);
/* A policy fetch for domain that failed (sts-policy-fetch-error, ...). */
void tlsrpt_note_fetch(struct tlsrpt *t, const char *domain, enum tlsrpt_result r,
                       const char *detail);

#endif
