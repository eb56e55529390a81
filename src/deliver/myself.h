/* myself: RFC 5321 5.1's rule for a host that is one of a domain's mail
 * exchangers (a backup MX, or one whose MX records point at it by
 * mistake): "The relay host MUST then inspect the list for any of the
 * names or addresses by which it might be known in mail transactions. If
 * a matching record is found, all records at that preference level and
 * higher-numbered ones MUST be discarded from consideration. If there are
 * no records left at that point, it is an error condition, and the
 * message MUST be returned as undeliverable."
 *
 * This host's names and addresses (struct myself, made once per settings
 * generation): its hostname; the address of each `listen` entry, or
 * every interface's address (getifaddrs) for a wildcard one (0.0.0.0,
 * [::]); and proxy_interfaces, the addresses of a proxy or NAT in front
 * of it (Postfix's key). myself_cut, which applies the rule to an MX list,
 * and the texts are pure (tests/unit/test_myself.c).
 */
#ifndef TERN_MYSELF_H
#define TERN_MYSELF_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "lib/buf.h"
#include "lib/conf.h"
#include "net/dns.h"
#include "net/smtp.h"

struct myself_addr {
	int family;                 /* AF_INET (IPv4-mapped IPv6 too) or AF_INET6 */
	unsigned char a[16];        /* 4 or 16 octets, network order */
};

struct myself {
	char hostname[256];         /* lower case, no trailing dot */
	size_t n;
	struct myself_addr *v;
};

/* From c's hostname, listen and proxy_interfaces (conf_finish'ed). */
struct myself *myself_new(const struct conf *c);
void myself_free(struct myself *s);
/* One more address of this host: an IPv4 or IPv6 literal (false when it
 * is not one), or a socket address (port ignored). */
bool myself_add_text(struct myself *s, const char *ip);
void myself_add(struct myself *s, const struct sockaddr *sa);
/* Is sa one of this host's addresses (port ignored)? */
bool myself_has(const struct myself *s, const struct sockaddr *sa);
/* Is h this host: its name is the hostname (case and a trailing dot
 * aside), or one of its addresses is ours? why (room for n) says which:
 * "hostname" or "address 192.0.2.1". */
bool myself_is(const struct myself *s, const struct dns_host *h, char *why, size_t n);

enum myself_verdict {
	MYSELF_ABSENT,      /* not among the hosts: every one stays */
	MYSELF_BACKUP,      /* a backup MX: the better hosts stay, some with addresses */
	MYSELF_BEST,        /* a best MX: nothing stays (5.4.6, permanent) */
	MYSELF_NO_BETTER,   /* a backup MX, no better host has an address (4.4.4) */
};

struct myself_cut {
	enum myself_verdict verdict;
	size_t keep;        /* the hosts that stay: the first keep of the list */
	size_t self;        /* not ABSENT: the best host that is this host */
	char why[64];       /* how it is this host (myself_is) */
};

/* The rule applied to r's hosts (in preference order, as dns_mx gives
 * them). */
struct myself_cut myself_cut(const struct myself *s, const struct dns_result *r);

/* The result of every recipient of domain when nothing is left to try
 * (BEST: permanent 5.4.6, NO_BETTER: temporary 4.4.4); false otherwise. */
bool myself_result(const struct myself_cut *c, const char *domain, struct deliver_result *out);

/* As a backup MX every better host failed with why before a session was
 * up. A network failure (temporary, X.4.x: refused, timed out, a 421
 * greeting) is the same as no better host: 4.4.4, naming why, in out;
 * false for anything else (a TLS policy's 4.7.x stays as it is). */
bool myself_unreachable(const char *domain, const struct deliver_result *why,
                        struct deliver_result *out);

/* For the log: which hosts are dropped, as this host or worse than it. */
void myself_describe(const struct myself_cut *c, const struct dns_result *r, const char *domain,
                     struct buf *out);

#endif
