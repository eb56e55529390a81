/* dns: MX and address lookups through libunbound, asynchronous, on an
 * event loop (the delivery thread's). RFC 5321 5.1 (MX, then the implicit
 * MX of a domain without one), RFC 7505 (null MX). */
#ifndef TERN_DNS_H
#define TERN_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

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

/* Parse MX rdata (RFC 1035 3.3.9) into pref and a dotted name ("." for the
 * root); false when malformed. Pure, for tests. */
bool dns_parse_mx(const unsigned char *rdata, size_t len, unsigned *pref, char *name, size_t n);

#endif
