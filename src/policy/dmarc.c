/* dmarc: DMARC records, alignment and policy (see dmarc.h). */
#include "policy/dmarc.h"

#include <ctype.h>
#include <libpsl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/util.h"

const char *dmarc_result_name(enum dmarc_result r)
{
	static const char *const names[] = { "none", "pass", "fail", "temperror", "permerror" };
	return (unsigned)r < sizeof names / sizeof names[0] ? names[r] : "?";
}

const char *dmarc_policy_name(enum dmarc_policy p)
{
	static const char *const names[] = { "none", "quarantine", "reject" };
	return (unsigned)p < sizeof names / sizeof names[0] ? names[p] : "?";
}

/* ---- records (RFC 7489 6.3, 6.4) ---- */

static bool dmarc_policy_word(const char *v, size_t n, enum dmarc_policy *out)
{
	static const char *const words[] = { "none", "quarantine", "reject" };
	for (size_t i = 0; i < 3; i++)
		if (strlen(words[i]) == n && !strncasecmp(v, words[i], n)) {
			*out = (enum dmarc_policy)i;
			return true;
		}
	return false;
}

/* A tag's name and value, white space trimmed (6.4: tag-list as DKIM's). */
struct dmarc_tag {
	const char *name, *value;
	size_t nlen, vlen;
};

static bool dmarc_tag_next(const char **p, struct dmarc_tag *t)
{
	const char *s = *p;
	while (*s == ' ' || *s == '\t' || *s == ';')
		s++;
	if (!*s)
		return false;
	const char *end = strchr(s, ';');
	end = end ? end : s + strlen(s);
	*p = end;
	const char *eq = memchr(s, '=', (size_t)(end - s));
	if (!eq) {
		t->name = NULL;
		return true;
	}
	t->name = s;
	t->nlen = (size_t)(eq - s);
	while (t->nlen && isspace((unsigned char)s[t->nlen - 1]))
		t->nlen--;
	t->value = eq + 1;
	while (t->value < end && isspace((unsigned char)*t->value))
		t->value++;
	t->vlen = (size_t)(end - t->value);
	while (t->vlen && isspace((unsigned char)t->value[t->vlen - 1]))
		t->vlen--;
	return true;
}

static bool dmarc_is(const struct dmarc_tag *t, const char *name)
{
	return t->name && t->nlen == strlen(name) && !strncasecmp(t->name, name, t->nlen);
}

/* The tags after v=: false on one that is broken. */
static bool dmarc_tags(const char *p, struct dmarc_record *r, bool *has_p, bool *p_ok)
{
	struct dmarc_tag t;
	bool has_sp = false, ok = true;
	while (dmarc_tag_next(&p, &t)) {
		if (!t.name)
			return false;
		if (dmarc_is(&t, "p")) {
			*has_p = true;
			*p_ok = dmarc_policy_word(t.value, t.vlen, &r->p);
		} else if (dmarc_is(&t, "sp")) {
			has_sp = dmarc_policy_word(t.value, t.vlen, &r->sp);
			ok &= has_sp;
		} else if (dmarc_is(&t, "pct")) {
			char num[8];
			char *end;
			snprintf(num, sizeof num, "%.*s", (int)(t.vlen < 7 ? t.vlen : 7), t.value);
			unsigned long v = strtoul(num, &end, 10);
			ok &= t.vlen > 0 && t.vlen < 4 && *end == '\0' && isdigit((unsigned char)num[0]) &&
			      v <= 100;
			r->pct = v <= 100 ? (unsigned)v : 100;
		} else if (dmarc_is(&t, "adkim") || dmarc_is(&t, "aspf")) {
			bool strict = t.vlen == 1 && tolower((unsigned char)t.value[0]) == 's';
			ok &= t.vlen == 1 && (strict || tolower((unsigned char)t.value[0]) == 'r');
			*(dmarc_is(&t, "adkim") ? &r->adkim_strict : &r->aspf_strict) = strict;
		} else if (dmarc_is(&t, "rua")) {
			r->has_rua = t.vlen > 0;
		}   /* ruf, fo, rf, ri and unknown tags: ignored (6.3) */
	}
	if (!has_sp)
		r->sp = r->p;
	return ok;
}

enum dmarc_parse dmarc_parse(const char *txt, struct dmarc_record *r)
{
	memset(r, 0, sizeof *r);
	r->pct = 100;
	const char *p = txt;
	struct dmarc_tag t;
	/* 6.4: v=DMARC1 first, exactly */
	if (!dmarc_tag_next(&p, &t) || !dmarc_is(&t, "v") || t.vlen != 6 ||
	    strncmp(t.value, "DMARC1", 6) != 0)
		return DMARC_REC_NOT;
	bool has_p = false, p_ok = false;
	bool ok = dmarc_tags(p, r, &has_p, &p_ok);
	if (!has_p || !p_ok) {
		/* 6.6.3: without a valid p=, a record with rua= is p=none */
		if (!r->has_rua)
			return DMARC_REC_BAD;
		r->p = r->sp = DMARC_P_NONE;
		return DMARC_REC_OK;
	}
	return ok ? DMARC_REC_OK : DMARC_REC_BAD;
}

/* ---- domains ---- */

void dmarc_org_domain(const char *domain, char *out, size_t n)
{
	static const psl_ctx_t *psl;
	if (!psl)
		psl = psl_latest(NULL);   /* the newer of Debian's list and the built-in */
	char lower[DMARC_NAME_MAX + 1];
	snprintf(lower, sizeof lower, "%s", domain);
	util_lower(lower);
	size_t len = strlen(lower);
	if (len && lower[len - 1] == '.')
		lower[len - 1] = '\0';
	const char *reg = psl ? psl_registrable_domain(psl, lower) : NULL;
	snprintf(out, n, "%s", reg ? reg : lower);
}

bool dmarc_aligned(const char *a, const char *b, bool strict)
{
	if (!a || !b || !*a || !*b)
		return false;
	if (!strcasecmp(a, b))
		return true;
	if (strict)
		return false;
	char oa[DMARC_NAME_MAX + 1], ob[DMARC_NAME_MAX + 1];
	dmarc_org_domain(a, oa, sizeof oa);
	dmarc_org_domain(b, ob, sizeof ob);
	return !strcmp(oa, ob);
}

/* ---- the verdict ---- */

/* 6.6.4: a message not sampled by pct= gets the next policy down. */
static enum dmarc_policy dmarc_sampled(enum dmarc_policy p, unsigned pct, unsigned roll)
{
	if (roll < pct || p == DMARC_P_NONE)
		return p;
	return p == DMARC_P_REJECT ? DMARC_P_QUARANTINE : DMARC_P_NONE;
}

void dmarc_evaluate(const struct dmarc_record *r, bool at_org, const struct dmarc_input *in,
                    unsigned roll, struct dmarc_verdict *v)
{
	memset(v, 0, sizeof *v);
	v->spf_aligned = in->spf_pass && dmarc_aligned(in->spf_domain, in->from, r->aspf_strict);
	for (size_t i = 0; i < in->ndkim && !v->dkim_aligned; i++)
		v->dkim_aligned = dmarc_aligned(in->dkim[i], in->from, r->adkim_strict);
	/* 6.6.3: a record found at the organizational domain for a subdomain
	 * of it says sp= */
	v->policy = at_org ? r->sp : r->p;
	if (v->spf_aligned || v->dkim_aligned) {
		v->result = DMARC_PASS;
		v->act = DMARC_P_NONE;
		return;
	}
	v->result = DMARC_FAIL;
	v->act = dmarc_sampled(v->policy, r->pct, roll);
}
