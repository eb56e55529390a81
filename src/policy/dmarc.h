/* dmarc: DMARC (RFC 7489), pure but for the public suffix list: a
 * record's tags (6.3), the organizational domain (3.2, from libpsl with
 * Debian's publicsuffix list), identifier alignment (3.1) and the policy
 * that applies (6.6). The lookups are the caller's (smtpd/authres.c):
 * _dmarc.<From domain>, and when that has no record,
 * _dmarc.<organizational domain> (6.6.3).
 */
#ifndef TERN_DMARC_H
#define TERN_DMARC_H

#include <stdbool.h>
#include <stddef.h>

#define DMARC_NAME_MAX 255
#define DMARC_DKIM_MAX 8

enum dmarc_policy { DMARC_P_NONE, DMARC_P_QUARANTINE, DMARC_P_REJECT };

struct dmarc_record {
	enum dmarc_policy p, sp;     /* sp: p when the record has none */
	unsigned pct;                /* 0..100, 100 when absent */
	bool adkim_strict, aspf_strict;
	bool has_rua;
};

enum dmarc_parse { DMARC_REC_OK, DMARC_REC_NOT, DMARC_REC_BAD };

/* One TXT record: DMARC_REC_NOT when it is not a DMARC record ("v=DMARC1"
 * first, 6.6.3: others are discarded), DMARC_REC_BAD when its tags are
 * broken (a bad p= with a good rua= is p=none, 6.6.3), else r is set. */
enum dmarc_parse dmarc_parse(const char *txt, struct dmarc_record *r);

/* RFC 7489 3.2: the organizational domain of domain (lower-case) into out;
 * the domain itself when the list knows nothing better. */
void dmarc_org_domain(const char *domain, char *out, size_t n);

/* RFC 7489 3.1: are a and b aligned, strictly (the same name) or relaxed
 * (the same organizational domain)? */
bool dmarc_aligned(const char *a, const char *b, bool strict);

enum dmarc_result { DMARC_NONE, DMARC_PASS, DMARC_FAIL, DMARC_TEMPERROR, DMARC_PERMERROR };

/* "none", "pass", "fail", "temperror", "permerror" (RFC 8601 / 7489 11.2). */
const char *dmarc_result_name(enum dmarc_result r);
const char *dmarc_policy_name(enum dmarc_policy p);

/* What the message's other checks established. */
struct dmarc_input {
	const char *from;            /* the RFC 5322.From domain */
	bool spf_pass;
	const char *spf_domain;      /* the identity SPF checked (MAIL FROM or HELO) */
	size_t ndkim;                /* DKIM signatures that passed: their d= */
	const char *dkim[DMARC_DKIM_MAX];
};

struct dmarc_verdict {
	enum dmarc_result result;
	enum dmarc_policy policy;    /* p or sp, as the record says for From */
	enum dmarc_policy act;       /* on fail, after pct= (6.6.4); none on pass */
	bool spf_aligned, dkim_aligned;
};

/* RFC 7489 6.6.2 and 6.6.4: the verdict for in under r, found at the From
 * domain itself (at_org false) or its organizational domain; roll: a
 * number in 0..99 for pct= sampling. */
void dmarc_evaluate(const struct dmarc_record *r, bool at_org, const struct dmarc_input *in,
                    unsigned roll, struct dmarc_verdict *v);

#endif
