/* dns: MX, address and TXT lookups through libunbound, asynchronous, on
 * an event loop (the delivery thread's; the main loop's for DKIM keys).
 * RFC 5321 5.1 (MX, then the implicit MX of a domain without one), RFC
 * 7505 (null MX), RFC 1035 3.3.14 (TXT). */
#ifndef TERN_DNS_H
#define TERN_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "lib/buf.h"

#define DNS_HOSTS_MAX 16
#define DNS_ADDRS_MAX 8

enum dns_status { DNS_OK, DNS_TEMP, DNS_PERM };

struct dns_host {
	char name[256];
	unsigned pref;
	size_t naddr;
	struct sockaddr_storage addr[DNS_ADDRS_MAX];  /* port not set */
};

struct dns_result {
	enum dns_status status;
	char why[256];       /* "4.4.3 ...", "5.1.2 ...", "5.1.10 ..." when not OK */
	size_t nhost;        /* in preference order; a host whose name has no
	                        address stays, naddr 0 (RFC 5321 5.1: a backup
	                        MX must know whether a better one exists) */
	struct dns_host host[DNS_HOSTS_MAX];
};

typedef void (*dns_cb)(void *ctx, const struct dns_result *r);

struct event_base;
struct dns;

/* resolver: "IP[@port]" to forward to, or "" for /etc/resolv.conf. */
struct dns *dns_new(struct event_base *base, const char *resolver);
void dns_free(struct dns *d);

/* The mail exchangers of domain with their addresses; DNS_TEMP (4.4.3)
 * when not one of them has an address. */
void dns_mx(struct dns *d, const char *domain, dns_cb cb, void *ctx);
/* One host (a name or an IP literal), no MX lookup: relayhost and kin. */
void dns_host(struct dns *d, const char *host, dns_cb cb, void *ctx);

/* ---- TXT ---- */

#define DNS_TXT_RECORDS 4     /* records of one name kept, at most */

/* status DNS_OK: n records (each one's strings joined, RFC 6376 3.6.2.2);
 * DNS_PERM: the name does not exist or has no TXT record (NXDOMAIN or
 * NODATA); DNS_TEMP: anything else (SERVFAIL, a timeout, DNSSEC bogus). */
struct dns_txt {
	enum dns_status status;
	size_t n;
	struct buf rec[DNS_TXT_RECORDS];
};

typedef void (*dns_txt_cb)(void *ctx, const struct dns_txt *r);
struct dns_txt_query;

/* The TXT records of name: cb from the loop later (never inside this
 * call), once, unless the query is cancelled first. */
struct dns_txt_query *dns_txt(struct dns *d, const char *name, dns_txt_cb cb, void *ctx);
/* No callback any more; q is freed. */
void dns_txt_cancel(struct dns_txt_query *q);

/* TXT rdata (RFC 1035 3.3.14: one or more <character-string>s, a length
 * octet and that many octets each), the strings joined, appended to out;
 * false when malformed. Pure, for tests. */
bool dns_parse_txt(const unsigned char *rdata, size_t len, struct buf *out);

/* Parse MX rdata (RFC 1035 3.3.9) into pref and a dotted name ("." for the
 * root); false when malformed. Pure, for tests. */
bool dns_parse_mx(const unsigned char *rdata, size_t len, unsigned *pref, char *name, size_t n);

#endif
