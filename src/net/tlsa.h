/* tlsa: TLSA records (RFC 6698 2.1) as DANE for SMTP uses them (RFC 7672),
 * and what one destination's MX hosts offer: each host's verdict (usable
 * records, none, or a lookup that failed), shared by reference between
 * the delivery engine (deliver/dest.c, which finds it) and the client
 * engine (net/smtpc.c, which acts on it; net/tls.c hands the records to
 * OpenSSL). The parser and the usability rules are pure, for tests and
 * the fuzzer.
 */
#ifndef TERN_TLSA_H
#define TERN_TLSA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TLSA_RECORDS_MAX 8      /* usable records kept per host */
#define TLSA_DATA_MAX 4096      /* association data, octets (a whole certificate fits) */

/* RFC 6698 2.1.1-2.1.3 */
enum { TLSA_PKIX_TA = 0, TLSA_PKIX_EE = 1, TLSA_DANE_TA = 2, TLSA_DANE_EE = 3 };
enum { TLSA_SEL_CERT = 0, TLSA_SEL_SPKI = 1 };
enum { TLSA_MT_FULL = 0, TLSA_MT_SHA256 = 1, TLSA_MT_SHA512 = 2 };

struct tlsa_rr {
	uint8_t usage, selector, mtype;
	size_t len;
	unsigned char *data;    /* len octets, owned */
};

/* TLSA rdata (RFC 6698 2.1: usage, selector, matching type, one octet
 * each, then the association data) into out, its data a copy (free it
 * with tlsa_rr_free); false when malformed (under 4 octets, or data over
 * TLSA_DATA_MAX). */
bool tlsa_parse(const unsigned char *rdata, size_t len, struct tlsa_rr *out);
void tlsa_rr_free(struct tlsa_rr *rr);

/* RFC 7672 3.1.3: only DANE-TA(2) and DANE-EE(3) are usable for SMTP
 * (PKIX-TA(0), PKIX-EE(1) are not); selectors 0 and 1; matching types 0
 * (some data), 1 (32 octets) and 2 (64 octets); anything else is
 * unusable (RFC 7671 4: ignored). */
bool tlsa_usable(const struct tlsa_rr *rr);

/* "3 1 1 a1b2c3d4e5f60718": the fields and the data's first hex digits,
 * for the log. */
void tlsa_describe(unsigned usage, unsigned selector, unsigned mtype, const unsigned char *data,
                   size_t len, char *out, size_t n);

/* ---- one destination's MX hosts (RFC 7672 2.2) ---- */

enum tlsa_state {
	TLSA_NONE,      /* no secure TLSA records (insecure MX, address or TLSA, or a
	                   secure denial): no DANE, the level's fallback */
	TLSA_USABLE,    /* secure records, some usable: DANE authentication required */
	TLSA_UNUSABLE,  /* secure records, none usable: TLS required, not authenticated */
	TLSA_FAILED,    /* the lookup failed (SERVFAIL, bogus) or dane-only found no
	                   usable records: the host is not tried (why says so) */
};

struct tlsa_host {
	char name[256];         /* the TLSA base domain: the MX host's name */
	enum tlsa_state state;
	char why[640];          /* TLSA_FAILED: "4.7.5 ..."; else a note */
	size_t n;
	struct tlsa_rr rr[TLSA_RECORDS_MAX];   /* the usable ones */
};

struct tlsa_set {
	unsigned refs;          /* one thread's: the delivery loop's */
	size_t nhost;
	struct tlsa_host host[];
};

struct tlsa_set *tlsa_set_new(size_t nhost);
struct tlsa_set *tlsa_set_ref(struct tlsa_set *s);
void tlsa_set_unref(struct tlsa_set *s);
/* The host named name, or NULL. */
const struct tlsa_host *tlsa_set_find(const struct tlsa_set *s, const char *name);
/* A secure TLSA RRset's records (rdata, lens) judged into h: the usable
 * ones kept (USABLE), or UNUSABLE when there are records but none is. */
void tlsa_host_judge(struct tlsa_host *h, const char *const *rdata, const size_t *lens, size_t n);

#endif
