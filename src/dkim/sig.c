/* sig: RFC 6376 3.5 and 6.1.1, the DKIM-Signature field (see sig.h). */
#include "dkim/sig.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "dkim/key.h"
#include "dkim/tags.h"
#include "lib/addr.h"
#include "lib/util.h"

static bool sig_is(const struct dkim_tag *t, const char *word)
{
	return t->vlen == strlen(word) && !memcmp(t->val, word, t->vlen);
}

/* 6.1.1: "v=1", and every required tag there (3.5: v a b bh d h s). */
static enum dkim_status sig_required(const struct dkim_tags *tags)
{
	static const char *const req[] = { "v", "a", "b", "bh", "d", "h", "s" };
	for (size_t i = 0; i < sizeof req / sizeof req[0]; i++)
		if (!dkim_tags_get(tags, req[i]))
			return DKIM_SIG_MISSING_TAG;
	return sig_is(dkim_tags_get(tags, "v"), "1") ? DKIM_OK : DKIM_SIG_VERSION;
}

/* c=header[/body]; the body's is simple when not given. */
static enum dkim_status sig_canon(const struct dkim_tag *t, struct dkim_sig *out)
{
	out->hc = out->bc = DKIM_SIMPLE;
	if (!t)
		return DKIM_OK;
	char c[32];
	if (!dkim_tags_copy(t, c, sizeof c))
		return DKIM_SIG_CANON;
	char *slash = strchr(c, '/');
	if (slash)
		*slash++ = '\0';
	enum dkim_canon *to[2] = { &out->hc, &out->bc };
	const char *words[2] = { c, slash };
	for (int k = 0; k < 2 && words[k]; k++) {
		if (!strcmp(words[k], "relaxed"))
			*to[k] = DKIM_RELAXED;
		else if (strcmp(words[k], "simple"))
			return DKIM_SIG_CANON;
	}
	return DKIM_OK;
}

bool dkim_sig_selector_valid(const char *s)
{
	size_t label = 0, n = strlen(s);
	if (n == 0 || n > 253)
		return false;
	for (size_t i = 0; i <= n; i++) {
		char c = s[i];
		if (c == '.' || c == '\0') {
			if (label == 0 || label > 63 || s[i - 1] == '-' || s[i - label] == '-')
				return false;
			label = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		           (c >= '0' && c <= '9') || c == '-' || c == '_') {
			label++;
		} else {
			return false;
		}
	}
	return true;
}

/* A value of one word: no white space inside (d=, s=, i=). */
static bool sig_word(const struct dkim_tag *t, char *out, size_t size)
{
	return t && !memchr(t->val, ' ', t->vlen) && !memchr(t->val, '\t', t->vlen) &&
	       !memchr(t->val, '\r', t->vlen) && dkim_tags_copy(t, out, size);
}

/* d= a domain name (kept lower-case), s= a selector; i= within d=
 * (6.1.1: "the domain part of the i= tag [...] MUST be the same as, or a
 * subdomain of, the d= tag"). */
static enum dkim_status sig_domains(const struct dkim_tags *tags, struct dkim_sig *out)
{
	if (!sig_word(dkim_tags_get(tags, "d"), out->d, sizeof out->d) ||
	    !addr_domain_valid(out->d) || out->d[0] == '[' ||
	    !sig_word(dkim_tags_get(tags, "s"), out->s, sizeof out->s) ||
	    !dkim_sig_selector_valid(out->s))
		return DKIM_SIG_DOMAIN;
	util_lower(out->d);
	const struct dkim_tag *i = dkim_tags_get(tags, "i");
	if (!i) {
		snprintf(out->i, sizeof out->i, "@%s", out->d);
		return DKIM_OK;
	}
	if (!sig_word(i, out->i, sizeof out->i))
		return DKIM_SIG_DOMAIN;
	const char *at = strrchr(out->i, '@');
	size_t dl = strlen(out->d), il = at ? strlen(at + 1) : 0;
	if (!at || il < dl || strcasecmp(at + 1 + il - dl, out->d) ||
	    (il > dl && at[il - dl] != '.'))
		return DKIM_SIG_DOMAIN;
	return DKIM_OK;
}

/* h=: field names separated by ":" (FWS around them gone); From among
 * them (6.1.1: "If the "h=" tag does not include the From header field,
 * the Verifier MUST ignore the DKIM-Signature header field"). */
static enum dkim_status sig_names(const struct dkim_tag *t, struct dkim_sig *out)
{
	if (!dkim_tags_copy(t, out->hbuf, sizeof out->hbuf))
		return DKIM_SIG_SYNTAX;
	bool from = false;
	out->nh = 0;
	for (char *p = out->hbuf;;) {
		size_t n = strcspn(p, ":");
		if (n == 0 || out->nh == DKIM_NAMES_MAX)
			return DKIM_SIG_SYNTAX;
		out->h[out->nh++] = (uint16_t)(p - out->hbuf);
		from |= n == 4 && !strncasecmp(p, "from", 4);
		if (!p[n])
			break;
		p[n] = '\0';
		p += n + 1;
	}
	return from ? DKIM_OK : DKIM_SIG_FROM;
}

/* Digits only, at most max of them, into *out. */
static bool sig_number(const struct dkim_tag *t, size_t max, uint64_t *out)
{
	if (!t->vlen || t->vlen > max)
		return false;
	*out = 0;
	for (size_t i = 0; i < t->vlen; i++) {
		if (t->val[i] < '0' || t->val[i] > '9')
			return false;
		*out = *out * 10 + (uint64_t)(t->val[i] - '0');
	}
	return true;
}

/* l= (up to 76 digits in the RFC's grammar; 19 fit in 64 bits, and no
 * body is longer), t= and x= (12 digits), x= not before t= (3.5). */
static enum dkim_status sig_numbers(const struct dkim_tags *tags, struct dkim_sig *out)
{
	const struct dkim_tag *l = dkim_tags_get(tags, "l"), *t = dkim_tags_get(tags, "t"),
	                      *x = dkim_tags_get(tags, "x");
	uint64_t v;
	if ((out->has_l = l != NULL) && !sig_number(l, 19, &out->l))
		return DKIM_SIG_LENGTH;
	if ((out->has_t = t != NULL) && !sig_number(t, 12, &v))
		return DKIM_SIG_TIMES;
	out->t = out->has_t ? (int64_t)v : 0;
	if ((out->has_x = x != NULL) && !sig_number(x, 12, &v))
		return DKIM_SIG_TIMES;
	out->x = out->has_x ? (int64_t)v : 0;
	return out->has_t && out->has_x && out->x < out->t ? DKIM_SIG_TIMES : DKIM_OK;
}

/* a= (rsa-sha1 is refused: RFC 8301 3.1), q= with dns/txt (3.5). */
static enum dkim_status sig_methods(const struct dkim_tags *tags, struct dkim_sig *out)
{
	const struct dkim_tag *a = dkim_tags_get(tags, "a"), *q = dkim_tags_get(tags, "q");
	if (!dkim_alg_parse(a->val, a->vlen, &out->alg))
		return DKIM_SIG_ALGORITHM;
	if (!q)
		return DKIM_OK;
	char list[128];
	if (!dkim_tags_copy(q, list, sizeof list))
		return DKIM_SIG_QUERY;
	for (char *p = list; *p;) {
		size_t n = strcspn(p, ":");
		if (n == 7 && !memcmp(p, "dns/txt", 7))
			return DKIM_OK;
		p += n + (p[n] == ':');
	}
	return DKIM_SIG_QUERY;
}

/* b= and bh= in base64; b= not empty. */
static enum dkim_status sig_hashes(const struct dkim_tags *tags, struct dkim_sig *out)
{
	const struct dkim_tag *b = dkim_tags_get(tags, "b"), *bh = dkim_tags_get(tags, "bh");
	long n = dkim_key_b64(b->val, b->vlen, out->b, sizeof out->b);
	long m = dkim_key_b64(bh->val, bh->vlen, out->bh, sizeof out->bh);
	if (n <= 0 || m <= 0)
		return DKIM_SIG_BASE64;
	out->blen = (size_t)n;
	out->bhlen = (size_t)m;
	return DKIM_OK;
}

enum dkim_status dkim_sig_parse(const char *f, size_t n, struct dkim_sig *out)
{
	memset(out, 0, sizeof *out);
	const char *colon = memchr(f, ':', n);
	if (!colon)
		return DKIM_SIG_SYNTAX;
	size_t off = (size_t)(colon + 1 - f), len = n - off;
	if (len >= 2 && f[n - 2] == '\r' && f[n - 1] == '\n')
		len -= 2;
	struct dkim_tags tags;
	if (!dkim_tags_parse(f + off, len, &tags))
		return DKIM_SIG_SYNTAX;
	enum dkim_status st = sig_required(&tags);
	if (st == DKIM_OK)
		st = sig_methods(&tags, out);
	if (st == DKIM_OK)
		st = sig_hashes(&tags, out);
	if (st == DKIM_OK)
		st = sig_canon(dkim_tags_get(&tags, "c"), out);
	if (st == DKIM_OK)
		st = sig_domains(&tags, out);
	if (st == DKIM_OK)
		st = sig_names(dkim_tags_get(&tags, "h"), out);
	if (st == DKIM_OK)
		st = sig_numbers(&tags, out);
	const struct dkim_tag *b = dkim_tags_get(&tags, "b");
	out->b_from = b ? off + b->raw : 0;
	out->b_to = b ? off + b->raw_end : 0;
	return st;
}

enum dkim_status dkim_sig_times(const struct dkim_sig *sig, int64_t now)
{
	if (sig->has_x && now > sig->x)
		return DKIM_SIG_EXPIRED;       /* 3.5 x=: "MUST be considered invalid" */
	if (sig->has_t && sig->t > now + DKIM_CLOCK_SKEW)
		return DKIM_SIG_FUTURE;
	return DKIM_OK;
}

const char *dkim_sig_name(const struct dkim_sig *sig, size_t k)
{
	return sig->hbuf + sig->h[k];
}
