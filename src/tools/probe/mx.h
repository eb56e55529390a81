/* mx: where mail for a domain goes, and what a TARGET names.
 *
 * MX records and host addresses through libunbound (one lookup at a time,
 * each bounded by a timeout: this is a command-line tool), forwarding to --resolver when given, otherwise
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

/* resolver: "IP" or "IP@PORT", or NULL for /etc/resolv.conf; each lookup
 * bounded by timeout_ms (0: 10 s), then it fails with "no answer". NULL
 * and a message in err when libunbound refuses the setting. */
struct mx *mx_new(const char *resolver, int timeout_ms, char *err, size_t errlen);
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

/* Is host an alias (a CNAME)? 1 with its canonical name in out, 0 not,
 * -1 the lookup failed. RFC 2181 10.3: an MX must not name an alias. */
int mx_canonical(struct mx *m, const char *host, char *out, size_t n);

/* The PTR names of ip (at most max): 0 with *n set (maybe 0: none, or
 * NXDOMAIN), -1 the lookup failed (err). With a resolver given, the
 * reverse zones libunbound answers itself (127.in-addr.arpa, RFC 6303's)
 * go to it: a lab serves them. */
int mx_ptr(struct mx *m, const char *ip, char names[][MX_NAME_MAX], int max, int *n, char *err,
	   size_t errlen);

/* Where an address can be reached from (doctor's MX address rule). */
enum mx_scope { MX_SCOPE_PUBLIC, MX_SCOPE_LOOPBACK, MX_SCOPE_PRIVATE, MX_SCOPE_BAD };

/* Pure. */
/* The scope of ip (text): loopback (127/8, ::1), private (RFC 1918,
 * 100.64/10, 169.254/16, fc00::/7, fe80::/10), bad (not an address, 0/8,
 * 192.0.2/24 and the other documentation nets, multicast and above);
 * otherwise public. */
enum mx_scope mx_addr_scope(const char *ip);
/* The reverse name of ip: "4.3.2.1.in-addr.arpa", nibbles under ip6.arpa
 * (RFC 1035 3.5, RFC 3596 2.5); with zone given, that zone in place of
 * in-addr.arpa (a DNSBL query, RFC 5782 2.1). -1 when ip is no address. */
int mx_reverse_name(const char *ip, const char *zone, char *out, size_t n);
int mx_target_parse(const char *s, struct mx_target *t);      /* -1: bad */
/* A or AAAA rdata to text; -1 when the length is wrong. */
int mx_addr_text(int type, const unsigned char *p, size_t n, char *out, size_t len);

#endif
