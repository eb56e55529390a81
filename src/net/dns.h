/* dns: MX and address lookups through libunbound, asynchronous, on an
 * event loop (the delivery thread's, and the main loop's for the policy's
 * checks and DKIM keys). RFC 5321 5.1 (MX, then the implicit MX of a
 * domain without one), RFC 7505 (null MX); TXT records for DKIM keys (RFC
 * 1035 3.3.14); and plain record sets (TXT, A, AAAA, MX names, PTR) for
 * checks such as SPF (RFC 7208), whose limits need to tell a name that
 * does not exist from one without such records. (DKIM's dns_txt could be
 * a dns_lookup too: two ways to ask for TXT, to fold into one.) */
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
	bool secure;         /* every address answer DNSSEC-secure (RFC 7672 2.2.2) */
	bool bogus;          /* an address answer failed validation: no addresses kept */
};

struct dns_result {
	enum dns_status status;
	char why[256];       /* "4.4.3 ...", "5.1.2 ...", "5.1.10 ..." when not OK */
	size_t nhost;        /* in preference order; a host whose name has no
	                        address stays, naddr 0 (RFC 5321 5.1: a backup
	                        MX must know whether a better one exists) */
	struct dns_host host[DNS_HOSTS_MAX];
	bool secure;         /* the MX answer (or its secure denial) DNSSEC-secure
	                        (RFC 7672 2.2.1); dns_host: true (no MX asked) */
};

typedef void (*dns_cb)(void *ctx, const struct dns_result *r);

struct event_base;
struct dns;

/* resolver: "IP[@port]" to forward to, or "" for /etc/resolv.conf. */
struct dns *dns_new(struct event_base *base, const char *resolver);
void dns_free(struct dns *d);
/* The same, validating answers (DNSSEC) with the trust anchors of
 * anchor_file (DS or DNSKEY records in zone file form: Debian's
 * /usr/share/dns/root.key, or a test zone's key); NULL: no validation,
 * every answer insecure. A file libunbound refuses stops the daemon. */
struct dns *dns_new_validating(struct event_base *base, const char *resolver,
                               const char *anchor_file);

/* A time limit for dns_mx and dns_host (seconds, 0: none but libunbound's
 * own): past it the caller gets DNS_TEMP, "4.4.3 DNS lookup timed out". */
void dns_set_timeout(struct dns *d, unsigned seconds);

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

/* ---- one record set ---- */

enum dns_type { DNS_T_A = 1, DNS_T_PTR = 12, DNS_T_MX = 15, DNS_T_TXT = 16, DNS_T_AAAA = 28,
                DNS_T_TLSA = 52 };

struct dns_rr {
	char *data;          /* NUL-terminated */
	size_t len;          /* TXT: may hold NUL octets of its own */
};

/* status: DNS_OK the name exists, with n records of the type (0: "no
 * data", RFC 2308 NODATA); DNS_PERM the name does not exist (RCODE 3,
 * NXDOMAIN); DNS_TEMP no answer (a timeout, SERVFAIL or another RCODE, a
 * DNSSEC failure). Records: TXT the record's strings joined (RFC 7208
 * 3.3); A, AAAA the address as text (inet_ntop); MX the exchangers'
 * names in preference order (a null MX is "."); PTR the names; TLSA the
 * rdata as it is (RFC 6698 2.1, net/tlsa.h parses it). Names without the
 * trailing dot. secure: the answer (records or denial) is DNSSEC-secure;
 * a bogus one is DNS_TEMP with bogus set. */
struct dns_rrset {
	enum dns_status status;
	bool secure, bogus;
	char why[256];       /* when not OK */
	size_t n;
	struct dns_rr *rr;
};

typedef void (*dns_rr_cb)(void *ctx, const struct dns_rrset *r);
struct dns_lookup;

/* Ask for name's records of type; cb gets them once, always later from
 * the loop (never inside this call), unless dns_cancel comes first. name
 * is text: every octet is taken as it is ('.' separates labels; a
 * backslash or a space is a label's own); a name DNS cannot carry (an
 * empty label, one over 63 octets, over 253 in all) is DNS_PERM. */
struct dns_lookup *dns_lookup(struct dns *d, const char *name, enum dns_type type, dns_rr_cb cb,
                              void *ctx);
/* The answer is no longer wanted: cb will not be called. */
void dns_cancel(struct dns *d, struct dns_lookup *l);

#define DNS_NAME_TEXT_MAX (253 * 4 + 2)   /* every octet as \DDD, and the NUL */

/* name in libunbound's text form (RFC 1035 5.1: '\' and octets outside
 * '!'..'~' escaped as \DDD), into out (n bytes); false when DNS cannot
 * carry it (an empty label, a label over 63 octets, over 253 in all)
 * or n is under DNS_NAME_TEXT_MAX. Pure, for tests. */
bool dns_name_text(const char *name, char *out, size_t n);

/* Parse MX rdata (RFC 1035 3.3.9) into pref and a dotted name ("." for the
 * root); false when malformed. Pure, for tests. */
bool dns_parse_mx(const unsigned char *rdata, size_t len, unsigned *pref, char *name, size_t n);
/* A name in wire form (PTR rdata, RFC 1035 3.3.12), uncompressed, into
 * dotted text ("." for the root); false when malformed. */
bool dns_parse_name(const unsigned char *rdata, size_t len, char *name, size_t n);

#endif
