/* dnsbl: DNS block and allow lists (RFC 5782) for a connecting client.
 *
 * At connect the client's address is looked up in every zone of dnsbl
 * and dnswl at once (A records of its reversed address under the zone,
 * on the policy's resolver, asynchronous); the verdict is given at MAIL,
 * as Postfix does with smtpd_delay_reject, so that a client that
 * authenticates first is never refused for its address. A client on a
 * dnswl zone is not refused whatever the dnsbl zones say; one on a dnsbl
 * zone gets 554 5.7.1 with the list's reason (its TXT record). Lookups
 * that fail or take over dnsbl_timeout count as "not listed": a list
 * that is down must not stop mail.
 *
 * An entry "zone=127.0.0.N" counts only that answer; a bare zone counts
 * any answer in 127.0.0.0/8 but 127.255.255.0/24, which lists such as
 * Spamhaus use for errors (a query through a public resolver).
 */
#ifndef TERN_DNSBL_H
#define TERN_DNSBL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "lib/conf.h"

struct dns;
struct event_base;
struct dnsbl;

/* The name to ask for addr (text, IPv4 or IPv6) under zone: the octets
 * (IPv4) or nibbles (IPv6) in reverse, then the zone (RFC 5782 2.1,
 * 2.4), into out; false for an address that is neither. Pure. */
bool dnsbl_name(const char *ip, const char *zone, char *out, size_t n);

/* Does answer a (an A record's address, host order) count as a listing
 * for want (host order, 0: any)? Pure. */
bool dnsbl_counts(uint32_t a, uint32_t want);

/* Start the lookups for the client at ip under c's zones; NULL when
 * there is none to make. */
struct dnsbl *dnsbl_start(struct dns *dns, struct event_base *base, const struct conf *c,
                          const char *ip, uint64_t session);
/* Every lookup is over (or timed out). */
bool dnsbl_ready(const struct dnsbl *b);
/* fn(ctx) once ready, from the loop (never inside this call). */
void dnsbl_wait(struct dnsbl *b, void (*fn)(void *ctx), void *ctx);
/* The zone that lists the client (and its reason, "" when none), or NULL
 * when it is not listed or a dnswl zone allows it. */
const char *dnsbl_listed(const struct dnsbl *b, const char **reason);
/* Every lookup still out given up now: the waiting fn is called. */
void dnsbl_stop(struct dnsbl *b);
/* Lookups cancelled, no callback. */
void dnsbl_free(struct dnsbl *b);

#endif
