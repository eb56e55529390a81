/* spf: the Sender Policy Framework (RFC 7208), evaluated without I/O.
 *
 * Three files, all pure (no sockets, no clock, no loop):
 *   spf_record.c  a record's syntax (4.5, 4.6, 5, 6, 12): directives with
 *                 their qualifiers, targets and CIDR lengths; redirect=,
 *                 exp= and unknown modifiers;
 *   spf_macro.c   macro strings (7): their syntax, the domain-spec rule,
 *                 expansion with transformers and delimiters;
 *   spf.c         check_host() (4) as a state machine. It asks for each DNS
 *                 answer through a callback (struct spf_dns) and is handed
 *                 the answer with spf_answer, at once or later: tests feed
 *                 tables, the daemon libunbound on its loop
 *                 (policy/spf_check.c). One question is open at a time.
 *
 * The limits of 4.6.4: 10 terms that query DNS (include, a, mx, ptr,
 * exists, redirect), 2 void lookups (an answer with no records, or a name
 * that does not exist), 10 exchangers per mx (more is a permerror), the
 * first 10 names of a PTR answer (the rest ignored). What tern chose where
 * the RFC leaves it open: a lookup of a mechanism's own (the a, mx, ptr,
 * exists query and the address queries behind mx and ptr) counts as void;
 * the record lookups of include and redirect, exp='s TXT and the lookups
 * of %{p} do not (they cannot make a different result); a target that is
 * no DNS name (an empty label, a label over 63 octets) matches nothing
 * without a query; %{p} and exp= are fetched only when used.
 */
#ifndef TERN_SPF_H
#define TERN_SPF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"

#define SPF_NAME_MAX 253       /* a domain name's text (RFC 1035 2.3.4) */
#define SPF_LOOKUPS_MAX 10     /* terms that query DNS (4.6.4) */
#define SPF_VOIDS_MAX 2        /* void lookups (4.6.4) */
#define SPF_NAMES_MAX 10       /* MX and PTR names looked at (4.6.4) */
#define SPF_DEPTH_MAX (SPF_LOOKUPS_MAX + 2)   /* include nesting, top record included */
#define SPF_EXPAND_MAX 65536   /* octets a macro expansion may grow to */
#define SPF_EXP_MAX 400        /* an explanation, as the SMTP reply carries it */
#define SPF_TERM_MAX 256       /* the deciding term, as logged */
#define SPF_PROBLEM_MAX 256

/* The results of 2.6, in that order. */
enum spf_result {
	SPF_NONE, SPF_NEUTRAL, SPF_PASS, SPF_FAIL, SPF_SOFTFAIL, SPF_TEMPERROR, SPF_PERMERROR,
};

/* "none", "neutral", "pass", "fail", "softfail", "temperror", "permerror"
 * (the words of RFC 8601's Authentication-Results, 2.7.2). */
const char *spf_result_name(enum spf_result r);

/* ---- records (spf_record.c) ---- */

enum spf_mech {
	SPF_M_ALL, SPF_M_INCLUDE, SPF_M_A, SPF_M_MX, SPF_M_PTR, SPF_M_IP4, SPF_M_IP6, SPF_M_EXISTS,
};

struct spf_term {
	enum spf_mech mech;
	enum spf_result qualifier;  /* what a match gives (4.6.2): '+' PASS (the
	                               default), '-' FAIL, '~' SOFTFAIL, '?' NEUTRAL */
	const char *spec;           /* the target's domain-spec, unexpanded; NULL:
	                               the current domain (a, mx, ptr without one) */
	unsigned cidr4, cidr6;      /* a, mx: 32 and 128 unless given; ip4, ip6 */
	unsigned char net[16];      /* ip4 (4 octets), ip6 */
	const char *text;           /* the term as written */
};

struct spf_record {
	char *buf;                  /* every string of the record points into it */
	size_t n;
	struct spf_term *term;      /* the directives, in order */
	const char *redirect;       /* redirect= (6.1), or NULL */
	const char *exp;            /* exp= (6.2), or NULL */
};

/* Is text an SPF record, version 1 (4.5): "v=spf1" in any case, then a
 * space or its end? */
bool spf_record_is(const char *text);

/* Parse one record (4.6, 12): false on a syntax error anywhere in it
 * (4.6: permerror, whatever comes first), with the reason in why (n
 * bytes). Unknown modifiers are checked and dropped (6); redirect= and
 * exp= may each appear once (6). r is spf_record_free's afterwards. */
bool spf_record_parse(const char *text, struct spf_record *r, char *why, size_t n);
void spf_record_free(struct spf_record *r);

/* ---- macros (spf_macro.c) ---- */

/* The macro letters' values (7.2), as text: s the sender, l its local
 * part, o its domain, d the current domain, i the client address (IPv6:
 * dotted nibbles), p its validated name, v "in-addr" or "ip6", h the HELO
 * name; c (the address as usually written), r (this host) and t (the
 * time) in explanations only. */
struct spf_vars {
	const char *s, *l, *o, *d, *i, *p, *v, *h, *c, *r, *t;
};

/* Is spec a macro-string (7.1)? explain: an explain-string (6.2), where
 * spaces and the c, r and t letters may appear. */
bool spf_macro_valid(const char *spec, bool explain);
/* Is spec a domain-spec (7.1): a macro-string ending in a macro or in
 * "." toplabel ["."]? */
bool spf_macro_domain_spec(const char *spec);
/* Does a valid spec use %{p} (which needs DNS before it expands)? */
bool spf_macro_uses_p(const char *spec);
/* Expand a valid spec (7.3) onto out; false past SPF_EXPAND_MAX. */
bool spf_macro_expand(const char *spec, const struct spf_vars *v, struct buf *out);
/* A domain-spec's expansion as a name to look up (7.3): a trailing dot
 * dropped, labels dropped from the left until it fits in 253 octets.
 * false past SPF_EXPAND_MAX. */
bool spf_macro_domain(const char *spec, const struct spf_vars *v, char out[SPF_NAME_MAX + 1]);

/* ---- check_host() (spf.c) ---- */

enum spf_identity { SPF_MAILFROM, SPF_HELO };

struct spf_request {
	const char *ip;         /* the client's address, as text; an IPv4-mapped
	                           IPv6 address is its IPv4 address (5) */
	const char *sender;     /* MAIL FROM's address; "" (the null sender):
	                           the HELO identity, postmaster@helo (2.4) */
	const char *helo;       /* the HELO or EHLO argument */
	const char *receiver;   /* %{r}: this host's name (7.2) */
	int64_t now;            /* %{t}: seconds since the epoch */
};

enum spf_qtype { SPF_Q_TXT, SPF_Q_A, SPF_Q_AAAA, SPF_Q_MX, SPF_Q_PTR };

struct spf_query {
	enum spf_qtype type;
	const char *name;       /* no trailing dot */
};

enum spf_rcode {
	SPF_DNS_OK,             /* the answer: n records, maybe none */
	SPF_DNS_NXDOMAIN,       /* RCODE 3: the name does not exist */
	SPF_DNS_ERROR,          /* any other RCODE, a timeout */
};

/* rr: TXT a record's text (its strings joined); A, AAAA an address as
 * text; MX an exchanger's name; PTR a name. The evaluator copies what it
 * keeps: the answer is the caller's again when spf_answer returns. */
struct spf_answer {
	enum spf_rcode rcode;
	size_t n;
	const char *const *rr;
};

struct spf;

/* The one way to DNS: ask sends q (valid during the call); its answer
 * comes back through spf_answer, inside ask or later. */
struct spf_dns {
	void (*ask)(void *ctx, struct spf *s, const struct spf_query *q);
	void *ctx;
};

struct spf_outcome {
	enum spf_result result;
	enum spf_identity identity;
	char domain[SPF_NAME_MAX + 1];        /* the identity's domain */
	char mechanism[SPF_TERM_MAX];         /* the top record's term that decided
	                                         ("-all", "include:x.example"),
	                                         "default" when none matched, ""
	                                         for none and errors */
	char explanation[SPF_EXP_MAX];        /* fail: exp='s text (6.2), or "" */
	char problem[SPF_PROBLEM_MAX];        /* none, temperror, permerror: why */
	unsigned lookups, voids;              /* counted against the limits */
};

typedef void spf_done_fn(void *ctx, const struct spf_outcome *o);

/* An evaluation of req (its strings are copied). done is called once, with
 * the outcome (valid during the call): from spf_start or spf_answer, as
 * their last act; the caller may spf_free inside it. */
struct spf *spf_new(const struct spf_request *req, const struct spf_dns *dns, spf_done_fn *done,
                    void *ctx);
/* Run until the first question or the end. */
void spf_start(struct spf *s);
/* The answer to the question asked; runs on to the next or the end. */
void spf_answer(struct spf *s, const struct spf_answer *a);
/* End an unfinished evaluation now as a temperror with why (4.6.4: a
 * time limit), done called; the open question's answer is not wanted. */
void spf_stop(struct spf *s, const char *why);
/* Any time: an unfinished evaluation ends without calling done. */
void spf_free(struct spf *s);

#endif
