/* mx: where mail for a domain goes, and what a TARGET names.
 *
 * MX records and host addresses through libunbound (synchronous calls: this
 * is a command-line tool), forwarding to --resolver when given, otherwise
 * to the resolvers of /etc/resolv.conf; /etc/hosts is honoured. RFC 5321
 * section 5.1: MX hosts in order of preference; with no MX record the
 * domain itself is the host (the "implicit MX"). MX rdata is parsed by
 * net/dns.c, as in the daemon; TARGET and address parsing are pure.
 */
#ifndef TERN_PROBE_MX_H
#define TERN_PROBE_MX_H

#include <stdbool.h>
#include <stddef.h>

#define MX_MAX_HOSTS 16
#define MX_MAX_ADDRS 8
#define MX_NAME_MAX 256

struct mx_host {
	char name[MX_NAME_MAX];
	int pref;                          /* -1: not from an MX record */
	char addrs[MX_MAX_ADDRS][46];      /* IPv4 then IPv6, as text */
	int naddrs;
	char err[128];                     /* why there is no address */
};

struct mx_list {
	struct mx_host hosts[MX_MAX_HOSTS];
	int n;
	bool implicit;                     /* no MX: the domain's own address */
};

/* A TARGET: "host", "host:port", "[v6]:port", "ip". */
struct mx_target {
	char host[MX_NAME_MAX];
	int port;                          /* 0 when none was given */
	bool literal;                      /* an IP address */
};

struct mx;

/* resolver: "IP" or "IP@PORT", or NULL for /etc/resolv.conf. NULL and a
 * message in err when libunbound refuses the setting. */
struct mx *mx_new(const char *resolver, char *err, size_t errlen);
void mx_free(struct mx *m);
/* MX records of domain with their addresses, by preference. 0: MX found;
 * 1: no MX (implicit MX filled in when the name has an address); -1: the
 * lookup failed (err). */
int mx_lookup(struct mx *m, const char *domain, struct mx_list *out, char *err, size_t errlen);
/* A and AAAA of host into h (h->name set). 0, or -1 with h->err. */
int mx_addrs(struct mx *m, const char *host, struct mx_host *h);

/* What a TARGET names: an IP address, a host (with a port, or a name
 * without MX records: RFC 5321 section 5.1's implicit MX), or a mail domain
 * (mx_found). 0 with out filled, -1 with err. */
int mx_route(struct mx *m, const struct mx_target *t, struct mx_list *out,
	     bool *mx_found, char *err, size_t errlen);

/* Pure. */
int mx_target_parse(const char *s, struct mx_target *t);      /* -1: bad */
/* A or AAAA rdata to text; -1 when the length is wrong. */
int mx_addr_text(int type, const unsigned char *p, size_t n, char *out, size_t len);

#endif
