/* spf: check_host() (RFC 7208 4) as a state machine (see spf.h). Pure.
 *
 * A stack of frames, one per check_host() under way: the top record's,
 * then one per include (5.2); redirect= (6.1) replaces its frame's
 * record. A phase says what the next step does; a step asks one question
 * (spf_ask, the only caller of the DNS callback), or ends the evaluation,
 * or moves on. Answers only change the state and the drive loop takes the
 * next step, so an answer given inside the callback (a table, in tests)
 * nests no deeper than one call.
 */
#include "policy/spf.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/util.h"

enum spf_phase {
	SPF_P_FETCH,      /* the frame's record: TXT (4.4) */
	SPF_P_EVAL,       /* the frame's directives, then redirect= (4.6.2, 6.1) */
	SPF_P_MX_ADDR,    /* mx: the next exchanger's addresses (5.4) */
	SPF_P_PTR,        /* %{p}: the client's names (7.3) */
	SPF_P_PTR_ADDR,   /* ptr, %{p}: the next name's addresses (5.5) */
	SPF_P_EXP_FETCH,  /* exp=: its TXT (6.2) */
	SPF_P_EXP_TEXT,   /* exp=: its text, expanded */
};

enum spf_wait {
	SPF_W_RECORD, SPF_W_A, SPF_W_MX, SPF_W_MX_ADDR, SPF_W_PTR, SPF_W_PTR_ADDR, SPF_W_EXISTS,
	SPF_W_EXP,
};

struct spf_frame {
	char domain[SPF_NAME_MAX + 1];   /* <domain> of this check_host() */
	struct spf_record rec;
	size_t next;                     /* the directive under evaluation */
	bool redirected;                 /* rec is a redirect= target's (6.1) */
};

struct spf {
	struct spf_dns dns;
	spf_done_fn *done;
	void *ctx;
	/* the client (4.1, 7.2) */
	int family;                      /* AF_INET, AF_INET6; 0: not an address */
	unsigned char ip[16];
	char c[INET6_ADDRSTRLEN], i[72], v[8], t[24];
	/* the identity (2.3, 2.4, 4.3) */
	char *sender, *local, *helo, *receiver;
	const char *odomain;             /* in sender */
	char p[SPF_NAME_MAX + 1];        /* %{p}, once known */
	bool p_known;
	enum spf_phase p_return;         /* where the %{p} walk goes back to */
	/* check_host()s under way */
	struct spf_frame frame[SPF_DEPTH_MAX];
	size_t depth;
	unsigned lookups, voids;
	/* the step under way */
	enum spf_phase phase;
	enum spf_wait wait;
	bool waiting, running, finished;
	bool for_p;                      /* the PTR walk is %{p}'s, not ptr's */
	char target[SPF_NAME_MAX + 1];
	char names[SPF_NAMES_MAX][SPF_NAME_MAX + 1];
	size_t nnames, at;
	char *exp_text;
	struct spf_outcome out;
};

const char *spf_result_name(enum spf_result r)
{
	static const char *const names[] = { "none", "neutral", "pass", "fail", "softfail",
	                                     "temperror", "permerror" };
	return (unsigned)r < sizeof names / sizeof names[0] ? names[r] : "?";
}

/* ---- small things ---- */

static struct spf_frame *spf_top(struct spf *s)
{
	return &s->frame[s->depth - 1];
}

static void spf_finish(struct spf *s, enum spf_result r, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void spf_finish(struct spf *s, enum spf_result r, const char *fmt, ...)
{
	if (s->finished)
		return;
	s->finished = true;
	s->out.result = r;
	if (fmt) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(s->out.problem, sizeof s->out.problem, fmt, ap);
		va_end(ap);
	}
}

/* A name DNS can carry (RFC 1035 2.3.4): labels of 1 to 63 octets, 253
 * in all; a trailing dot is dropped. */
static bool spf_name_ok(char *name)
{
	size_t len = strlen(name), label = 0;
	if (len > 1 && name[len - 1] == '.')
		name[--len] = '\0';
	if (len == 0 || len > SPF_NAME_MAX)
		return false;
	for (size_t k = 0; k < len; k++) {
		if (name[k] != '.')
			label++;
		else if (label == 0 || label > 63)
			return false;
		else
			label = 0;
	}
	return label > 0 && label <= 63;
}

/* Is name the target or under it (5.5)? */
static bool spf_name_under(const char *name, const char *target)
{
	size_t n = strlen(name), t = strlen(target);
	if (n == t)
		return !strcasecmp(name, target);
	return n > t && name[n - t - 1] == '.' && !strcasecmp(name + n - t, target);
}

/* 4.6.4: at most 10 terms that query DNS. */
static bool spf_count(struct spf *s, const char *term)
{
	if (++s->lookups <= SPF_LOOKUPS_MAX)
		return true;
	spf_finish(s, SPF_PERMERROR, "%s: more than %d DNS lookups", term, SPF_LOOKUPS_MAX);
	return false;
}

/* 4.6.4: at most 2 void lookups. */
static bool spf_void(struct spf *s, const char *name)
{
	if (++s->voids <= SPF_VOIDS_MAX)
		return true;
	spf_finish(s, SPF_PERMERROR, "%s: more than %d void lookups", name, SPF_VOIDS_MAX);
	return false;
}

static bool spf_void_answer(const struct spf_answer *a)
{
	return a->rcode == SPF_DNS_NXDOMAIN || a->n == 0;
}

/* Is one of the answer's addresses within cidr bits of the client's? */
static bool spf_addr_match(const struct spf *s, const struct spf_answer *a, unsigned cidr)
{
	for (size_t k = 0; k < a->n; k++) {
		unsigned char ad[16];
		if (inet_pton(s->family, a->rr[k], ad) != 1)
			continue;
		unsigned bits = cidr, j = 0;
		while (bits >= 8 && ad[j] == s->ip[j])
			bits -= 8, j++;
		if (bits < 8 && (bits == 0 || !((ad[j] ^ s->ip[j]) & (0xff00 >> bits & 0xff))))
			return true;
	}
	return false;
}

/* The macros' values now (7.2). */
static void spf_vars(struct spf *s, struct spf_vars *v)
{
	*v = (struct spf_vars){ .s = s->sender, .l = s->local, .o = s->odomain,
	                        .d = s->depth ? spf_top(s)->domain : s->odomain, .i = s->i,
	                        .p = s->p_known ? s->p : "unknown", .v = s->v, .h = s->helo,
	                        .c = s->c, .r = *s->receiver ? s->receiver : "unknown",
	                        .t = s->t };
}

/* A target: spec expanded (4.8), or the current domain. */
static bool spf_target(struct spf *s, const char *spec, const char *term)
{
	struct spf_vars v;
	spf_vars(s, &v);
	if (!spec) {
		snprintf(s->target, sizeof s->target, "%s", spf_top(s)->domain);
		return true;
	}
	if (spf_macro_domain(spec, &v, s->target))
		return true;
	spf_finish(s, SPF_PERMERROR, "%s: the expansion is too long", term);
	return false;
}

static void spf_ask(struct spf *s, enum spf_wait w, enum spf_qtype type, const char *name)
{
	struct spf_query q = { type, name };
	s->wait = w;
	s->waiting = true;
	s->dns.ask(s->dns.ctx, s, &q);
}

static enum spf_qtype spf_addr_type(const struct spf *s)
{
	return s->family == AF_INET6 ? SPF_Q_AAAA : SPF_Q_A;
}

/* ---- frames ---- */

static void spf_push(struct spf *s, const char *domain)
{
	struct spf_frame *f = &s->frame[s->depth++];
	memset(f, 0, sizeof *f);
	snprintf(f->domain, sizeof f->domain, "%s", domain);
	s->phase = SPF_P_FETCH;
}

static void spf_match(struct spf *s);

/* A check_host() ended with r (not an error, which ends everything). */
static void spf_frame_done(struct spf *s, enum spf_result r, const char *term)
{
	if (s->depth > 1) {   /* an include's (5.2): its parent's term matches or not */
		struct spf_frame *f = spf_top(s);
		spf_record_free(&f->rec);
		s->depth--;
		f = spf_top(s);
		s->phase = SPF_P_EVAL;
		if (r == SPF_PASS)
			return spf_match(s);
		if (r == SPF_NONE)
			return spf_finish(s, SPF_PERMERROR, "%s: no SPF record there",
			                  f->rec.term[f->next].text);
		f->next++;
		return;
	}
	snprintf(s->out.mechanism, sizeof s->out.mechanism, "%s", term);
	if (r == SPF_FAIL && spf_top(s)->rec.exp) {
		s->phase = SPF_P_EXP_FETCH;   /* 6.2: only a fail is explained */
		return;
	}
	spf_finish(s, r, NULL);
}

/* The directive under evaluation matched (4.6.2). */
static void spf_match(struct spf *s)
{
	const struct spf_term *t = &spf_top(s)->rec.term[spf_top(s)->next];
	spf_frame_done(s, t->qualifier, t->text);
}

static void spf_no_match(struct spf *s)
{
	spf_top(s)->next++;
	s->phase = SPF_P_EVAL;
}

/* No record for the frame's domain (4.4, 4.5). */
static void spf_frame_none(struct spf *s, const char *why)
{
	struct spf_frame *f = spf_top(s);
	if (f->redirected)   /* 6.1 */
		return spf_finish(s, SPF_PERMERROR, "redirect=%s: no SPF record there (%s)", f->domain,
		                  why);
	if (s->depth == 1)
		return spf_finish(s, SPF_NONE, "%s: %s", f->domain, why);
	spf_frame_done(s, SPF_NONE, "");
}

/* ---- %{p} (7.3) ---- */

static void spf_p_start(struct spf *s)
{
	s->p_return = s->phase;
	s->phase = SPF_P_PTR;
}

static void spf_p_found(struct spf *s, const char *name)
{
	snprintf(s->p, sizeof s->p, "%s", name);
	s->p_known = true;
	s->phase = s->p_return;
}

/* 7.3: the name equal to <domain> first, then one under it, then any. */
static void spf_p_names(struct spf *s, const struct spf_answer *a)
{
	const char *d = spf_top(s)->domain;
	size_t n = a->n < SPF_NAMES_MAX ? a->n : SPF_NAMES_MAX;
	s->nnames = 0;
	for (int pass = 0; pass < 3; pass++)
		for (size_t k = 0; k < n; k++) {
			char name[SPF_NAME_MAX + 1];
			snprintf(name, sizeof name, "%s", a->rr[k]);
			if (!spf_name_ok(name))
				continue;
			bool same = !strcasecmp(name, d), under = !same && spf_name_under(name, d);
			if ((pass == 0 && same) || (pass == 1 && under) || (pass == 2 && !same && !under))
				snprintf(s->names[s->nnames++], sizeof s->names[0], "%s", name);
		}
}

/* ---- the mechanisms (5) ---- */

/* The reverse name of the client's address (5.5: in-addr.arpa, ip6.arpa). */
static void spf_reverse(const struct spf *s, char *out, size_t n)
{
	if (s->family == AF_INET) {
		snprintf(out, n, "%u.%u.%u.%u.in-addr.arpa", s->ip[3], s->ip[2], s->ip[1], s->ip[0]);
		return;
	}
	size_t o = 0;
	for (int k = 15; k >= 0; k--)
		o += (size_t)snprintf(out + o, n - o, "%x.%x.", s->ip[k] & 15, s->ip[k] >> 4);
	snprintf(out + o, n - o, "ip6.arpa");
}

static void spf_ptr_begin(struct spf *s, bool for_p)
{
	char rev[80];
	spf_reverse(s, rev, sizeof rev);
	s->for_p = for_p;
	spf_ask(s, SPF_W_PTR, SPF_Q_PTR, rev);
}

/* a, mx, ptr, exists, include: one DNS term (4.6.4). */
static void spf_eval_dns(struct spf *s, const struct spf_term *t)
{
	if (t->spec && !s->p_known && spf_macro_uses_p(t->spec))
		return spf_p_start(s);
	if (!spf_count(s, t->text) || !spf_target(s, t->spec, t->text))
		return;
	if (!spf_name_ok(s->target)) {   /* no DNS name: nothing there (4.3, 5) */
		if (t->mech == SPF_M_INCLUDE)
			return spf_finish(s, SPF_PERMERROR, "%s: not a domain name", t->text);
		return spf_no_match(s);
	}
	switch (t->mech) {
	case SPF_M_A: return spf_ask(s, SPF_W_A, spf_addr_type(s), s->target);
	case SPF_M_MX: return spf_ask(s, SPF_W_MX, SPF_Q_MX, s->target);
	case SPF_M_PTR: return spf_ptr_begin(s, false);
	case SPF_M_EXISTS: return spf_ask(s, SPF_W_EXISTS, SPF_Q_A, s->target);  /* 5.7: A always */
	case SPF_M_INCLUDE: return spf_push(s, s->target);
	case SPF_M_ALL: case SPF_M_IP4: case SPF_M_IP6: break;
	}
}

/* ip4, ip6 (5.6): the client's own family only. */
static bool spf_ip_match(const struct spf *s, const struct spf_term *t)
{
	int fam = t->mech == SPF_M_IP4 ? AF_INET : AF_INET6;
	unsigned bits = fam == AF_INET ? t->cidr4 : t->cidr6, j = 0;
	if (fam != s->family)
		return false;
	while (bits >= 8 && t->net[j] == s->ip[j])
		bits -= 8, j++;
	return bits < 8 && (bits == 0 || !((t->net[j] ^ s->ip[j]) & (0xff00 >> bits & 0xff)));
}

/* 6.1: no directive matched; redirect= names the record that decides. */
static void spf_redirect(struct spf *s)
{
	struct spf_frame *f = spf_top(s);
	const char *spec = f->rec.redirect;
	if (!s->p_known && spf_macro_uses_p(spec))
		return spf_p_start(s);
	if (!spf_count(s, "redirect=") || !spf_target(s, spec, "redirect="))
		return;
	if (!spf_name_ok(s->target))
		return spf_finish(s, SPF_PERMERROR, "redirect=%s: not a domain name", s->target);
	spf_record_free(&f->rec);
	snprintf(f->domain, sizeof f->domain, "%s", s->target);
	f->next = 0;
	f->redirected = true;
	s->phase = SPF_P_FETCH;
}

static void spf_eval(struct spf *s)
{
	struct spf_frame *f = spf_top(s);
	while (f->next < f->rec.n) {
		const struct spf_term *t = &f->rec.term[f->next];
		if (t->mech == SPF_M_ALL || ((t->mech == SPF_M_IP4 || t->mech == SPF_M_IP6) &&
		                            spf_ip_match(s, t)))
			return spf_match(s);
		if (t->mech != SPF_M_IP4 && t->mech != SPF_M_IP6)
			return spf_eval_dns(s, t);
		f->next++;
	}
	if (f->rec.redirect)
		return spf_redirect(s);
	spf_frame_done(s, SPF_NEUTRAL, "default");   /* 4.7 */
}

/* The next name whose addresses are wanted (mx, ptr, %{p}); the end of
 * the list ends the walk. */
static void spf_walk(struct spf *s, enum spf_wait w)
{
	for (; s->at < s->nnames; s->at++)
		if (spf_name_ok(s->names[s->at]))
			return spf_ask(s, w, spf_addr_type(s), s->names[s->at]);
	if (w == SPF_W_PTR_ADDR && s->for_p)
		return spf_p_found(s, "unknown");
	spf_no_match(s);
}

/* ---- exp= (6.2) ---- */

static void spf_exp_fetch(struct spf *s)
{
	const char *spec = spf_top(s)->rec.exp;
	if (!s->p_known && spf_macro_uses_p(spec))
		return spf_p_start(s);
	if (!spf_target(s, spec, "exp="))
		return;
	if (!spf_name_ok(s->target))
		return spf_finish(s, SPF_FAIL, NULL);
	spf_ask(s, SPF_W_EXP, SPF_Q_TXT, s->target);
}

/* The explanation, expanded (made printable with the rest at the end). */
static void spf_exp_text(struct spf *s)
{
	if (!s->p_known && spf_macro_uses_p(s->exp_text))
		return spf_p_start(s);
	struct spf_vars v;
	struct buf b = BUF_INIT;
	spf_vars(s, &v);
	if (spf_macro_expand(s->exp_text, &v, &b))
		snprintf(s->out.explanation, sizeof s->out.explanation, "%s", buf_cstr(&b));
	buf_free(&b);
	spf_finish(s, SPF_FAIL, NULL);
}

/* ---- answers ---- */

/* 4.4, 4.5: exactly one record that starts "v=spf1". */
static void spf_on_record(struct spf *s, const struct spf_answer *a)
{
	struct spf_frame *f = spf_top(s);
	if (a->rcode == SPF_DNS_ERROR)
		return spf_finish(s, SPF_TEMPERROR, "%s: DNS error looking up its SPF record", f->domain);
	if (a->rcode == SPF_DNS_NXDOMAIN)
		return spf_frame_none(s, "no such domain");
	const char *text = NULL;
	size_t n = 0;
	for (size_t k = 0; k < a->n; k++)
		if (spf_record_is(a->rr[k]))
			text = a->rr[k], n++;
	if (n == 0)
		return spf_frame_none(s, "no SPF record");
	if (n > 1)
		return spf_finish(s, SPF_PERMERROR, "%s: %zu SPF records", f->domain, n);
	char why[SPF_PROBLEM_MAX];
	if (!spf_record_parse(text, &f->rec, why, sizeof why))
		return spf_finish(s, SPF_PERMERROR, "%s: %s", f->domain, why);
	f->next = 0;
	s->phase = SPF_P_EVAL;
}

/* a (5.3), exists (5.7): the target's addresses. */
static void spf_on_addr(struct spf *s, const struct spf_answer *a, bool exists)
{
	const struct spf_term *t = &spf_top(s)->rec.term[spf_top(s)->next];
	if (a->rcode == SPF_DNS_ERROR)
		return spf_finish(s, SPF_TEMPERROR, "%s: DNS error for %s", t->text, s->target);
	if (spf_void_answer(a))
		return spf_void(s, s->target) ? spf_no_match(s) : (void)0;
	if (exists || spf_addr_match(s, a, s->family == AF_INET ? t->cidr4 : t->cidr6))
		return spf_match(s);
	spf_no_match(s);
}

/* mx (5.4): the exchangers, at most 10 (4.6.4: more is a permerror). */
static void spf_on_mx(struct spf *s, const struct spf_answer *a)
{
	const char *term = spf_top(s)->rec.term[spf_top(s)->next].text;
	if (a->rcode == SPF_DNS_ERROR)
		return spf_finish(s, SPF_TEMPERROR, "%s: DNS error for %s", term, s->target);
	if (spf_void_answer(a))
		return spf_void(s, s->target) ? spf_no_match(s) : (void)0;
	if (a->n > SPF_NAMES_MAX)
		return spf_finish(s, SPF_PERMERROR, "%s: more than %d MX records", term,
		                  SPF_NAMES_MAX);
	for (size_t k = 0; k < a->n; k++)
		snprintf(s->names[k], sizeof s->names[0], "%s", a->rr[k]);
	s->nnames = a->n;
	s->at = 0;
	s->phase = SPF_P_MX_ADDR;
}

static void spf_on_mx_addr(struct spf *s, const struct spf_answer *a)
{
	const struct spf_term *t = &spf_top(s)->rec.term[spf_top(s)->next];
	const char *name = s->names[s->at];
	if (a->rcode == SPF_DNS_ERROR)
		return spf_finish(s, SPF_TEMPERROR, "%s: DNS error for %s", t->text, name);
	if (spf_void_answer(a) && !spf_void(s, name))
		return;
	if (spf_addr_match(s, a, s->family == AF_INET ? t->cidr4 : t->cidr6))
		return spf_match(s);
	s->at++;
}

/* ptr (5.5) and %{p} (7.3): the client's names, the first 10 (4.6.4);
 * ptr keeps those at or under its target. A DNS error: no match, or
 * "unknown". */
static void spf_on_ptr(struct spf *s, const struct spf_answer *a)
{
	s->nnames = 0;
	s->at = 0;
	if (s->for_p) {
		if (a->rcode == SPF_DNS_OK)
			spf_p_names(s, a);
		s->phase = SPF_P_PTR_ADDR;
		return;
	}
	s->phase = SPF_P_PTR_ADDR;
	if (a->rcode == SPF_DNS_ERROR)
		return;
	if (spf_void_answer(a) && !spf_void(s, "the client's PTR"))
		return;
	size_t n = a->n < SPF_NAMES_MAX ? a->n : SPF_NAMES_MAX;
	for (size_t k = 0; k < n; k++) {
		char *name = s->names[s->nnames];
		snprintf(name, sizeof s->names[0], "%s", a->rr[k]);
		if (spf_name_ok(name) && spf_name_under(name, s->target))
			s->nnames++;
	}
}

/* One name validated, or not (5.5: a DNS error skips the name). */
static void spf_on_ptr_addr(struct spf *s, const struct spf_answer *a)
{
	if (a->rcode != SPF_DNS_ERROR && spf_addr_match(s, a, s->family == AF_INET ? 32 : 128)) {
		if (s->for_p)
			return spf_p_found(s, s->names[s->at]);
		return spf_match(s);
	}
	if (!s->for_p && a->rcode != SPF_DNS_ERROR && spf_void_answer(a) &&
	    !spf_void(s, s->names[s->at]))
		return;
	s->at++;
}

/* 6.2: exactly one TXT record, a valid explain-string; anything else and
 * the fail goes unexplained. */
static void spf_on_exp(struct spf *s, const struct spf_answer *a)
{
	if (a->rcode != SPF_DNS_OK || a->n != 1 || !spf_macro_valid(a->rr[0], true))
		return spf_finish(s, SPF_FAIL, NULL);
	free(s->exp_text);
	s->exp_text = util_xstrdup(a->rr[0]);
	s->phase = SPF_P_EXP_TEXT;
}

/* ---- the drive loop ---- */

static void spf_step(struct spf *s)
{
	switch (s->phase) {
	case SPF_P_FETCH: return spf_ask(s, SPF_W_RECORD, SPF_Q_TXT, spf_top(s)->domain);
	case SPF_P_EVAL: return spf_eval(s);
	case SPF_P_MX_ADDR: return spf_walk(s, SPF_W_MX_ADDR);
	case SPF_P_PTR: return spf_ptr_begin(s, true);
	case SPF_P_PTR_ADDR: return spf_walk(s, SPF_W_PTR_ADDR);
	case SPF_P_EXP_FETCH: return spf_exp_fetch(s);
	case SPF_P_EXP_TEXT: return spf_exp_text(s);
	}
}

/* What the outcome says goes into log lines and SMTP replies: printable
 * ASCII only (a record's term may hold anything). */
static void spf_printable(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			*s = '?';
}

/* Steps until a question is open or the end; done is the last act. */
static void spf_drive(struct spf *s)
{
	if (s->running)
		return;   /* an answer inside ask: the loop below goes on */
	s->running = true;
	while (!s->waiting && !s->finished)
		spf_step(s);
	s->running = false;
	if (!s->finished)
		return;
	s->out.lookups = s->lookups;
	s->out.voids = s->voids;
	spf_printable(s->out.domain);
	spf_printable(s->out.mechanism);
	spf_printable(s->out.explanation);
	spf_printable(s->out.problem);
	spf_done_fn *done = s->done;
	s->done = NULL;
	if (done)
		done(s->ctx, &s->out);
}

void spf_answer(struct spf *s, const struct spf_answer *a)
{
	if (!s->waiting || s->finished)
		return;
	s->waiting = false;
	switch (s->wait) {
	case SPF_W_RECORD: spf_on_record(s, a); break;
	case SPF_W_A: spf_on_addr(s, a, false); break;
	case SPF_W_EXISTS: spf_on_addr(s, a, true); break;
	case SPF_W_MX: spf_on_mx(s, a); break;
	case SPF_W_MX_ADDR: spf_on_mx_addr(s, a); break;
	case SPF_W_PTR: spf_on_ptr(s, a); break;
	case SPF_W_PTR_ADDR: spf_on_ptr_addr(s, a); break;
	case SPF_W_EXP: spf_on_exp(s, a); break;
	}
	spf_drive(s);
}

/* ---- start ---- */

/* The client's address (5: an IPv4-mapped IPv6 address is IPv4) and the
 * macros made of it: c, i (7.3: IPv6 as dotted nibbles), v. */
static void spf_client(struct spf *s, const char *ip)
{
	unsigned char a6[16];
	if (inet_pton(AF_INET, ip, s->ip) == 1) {
		s->family = AF_INET;
	} else if (inet_pton(AF_INET6, ip, a6) == 1) {
		static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
		bool v4 = !memcmp(a6, mapped, 12);
		s->family = v4 ? AF_INET : AF_INET6;
		memcpy(s->ip, v4 ? a6 + 12 : a6, v4 ? 4 : 16);
	} else {
		return;
	}
	inet_ntop(s->family, s->ip, s->c, sizeof s->c);
	snprintf(s->v, sizeof s->v, "%s", s->family == AF_INET ? "in-addr" : "ip6");
	if (s->family == AF_INET) {
		snprintf(s->i, sizeof s->i, "%s", s->c);
		return;
	}
	size_t o = 0;
	for (int k = 0; k < 16; k++)
		o += (size_t)snprintf(s->i + o, sizeof s->i - o, "%s%x.%x", k ? "." : "", s->ip[k] >> 4,
		                      s->ip[k] & 15);
}

/* 2.4: the null sender is checked as postmaster@helo; 4.3: no local part
 * is "postmaster". */
static void spf_identity(struct spf *s, const char *sender, const char *helo)
{
	s->out.identity = *sender ? SPF_MAILFROM : SPF_HELO;
	struct buf b = BUF_INIT;
	const char *at = strrchr(sender, '@');
	if (!*sender)
		buf_printf(&b, "postmaster@%s", helo);
	else if (!at)
		buf_printf(&b, "postmaster@%s", sender);
	else if (at == sender)
		buf_printf(&b, "postmaster%s", sender);
	else
		buf_puts(&b, sender);
	s->sender = util_xstrdup(buf_cstr(&b));
	buf_free(&b);
	at = strrchr(s->sender, '@');
	s->local = util_xcalloc((size_t)(at - s->sender) + 1, 1);
	memcpy(s->local, s->sender, (size_t)(at - s->sender));
	s->odomain = at + 1;
}

struct spf *spf_new(const struct spf_request *req, const struct spf_dns *dns, spf_done_fn *done,
                    void *ctx)
{
	struct spf *s = util_xcalloc(1, sizeof *s);
	s->dns = *dns;
	s->done = done;
	s->ctx = ctx;
	spf_client(s, req->ip);
	spf_identity(s, req->sender ? req->sender : "", req->helo ? req->helo : "");
	s->helo = util_xstrdup(req->helo ? req->helo : "");
	s->receiver = util_xstrdup(req->receiver ? req->receiver : "");
	snprintf(s->t, sizeof s->t, "%lld", (long long)req->now);
	return s;
}

/* 4.3: a domain that is no multi-label domain name (or an address
 * literal) has no SPF record: "none". */
static bool spf_domain_ok(const char *domain)
{
	char d[SPF_NAME_MAX + 2];
	if (strlen(domain) > SPF_NAME_MAX + 1 || domain[0] == '[')
		return false;
	snprintf(d, sizeof d, "%s", domain);
	return spf_name_ok(d) && strchr(d, '.');
}

void spf_start(struct spf *s)
{
	snprintf(s->out.domain, sizeof s->out.domain, "%.*s", SPF_NAME_MAX, s->odomain);
	if (!s->family)
		spf_finish(s, SPF_PERMERROR, "the client's address is not an IP address");
	else if (!spf_domain_ok(s->odomain))
		spf_finish(s, SPF_NONE, "%.*s: not a domain name", SPF_NAME_MAX, s->odomain);
	else
		spf_push(s, s->odomain);
	spf_drive(s);
}

void spf_stop(struct spf *s, const char *why)
{
	if (s->finished || s->running)
		return;
	s->waiting = false;
	spf_finish(s, SPF_TEMPERROR, "%s", why);
	spf_drive(s);
}

void spf_free(struct spf *s)
{
	if (!s)
		return;
	for (size_t k = 0; k < s->depth; k++)
		spf_record_free(&s->frame[k].rec);
	free(s->sender);
	free(s->local);
	free(s->helo);
	free(s->receiver);
	free(s->exp_text);
	free(s);
}
