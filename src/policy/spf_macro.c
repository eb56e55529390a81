/* spf_macro: SPF macro strings (RFC 7208 7): syntax, the domain-spec
 * rule and expansion (see spf.h). Pure.
 *
 *   macro-string  = *( macro-expand / macro-literal )
 *   macro-expand  = ( "%{" macro-letter transformers *delimiter "}" )
 *                   / "%%" / "%_" / "%-"
 *   macro-literal = %x21-24 / %x26-7E
 *   transformers  = *DIGIT [ "r" ]
 *   delimiter     = "." / "-" / "+" / "," / "/" / "_" / "="
 */
#include "policy/spf.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"

/* One %{...} macro, parsed. */
struct spf_macro {
	char letter;                 /* as written: upper case means URL-escape */
	unsigned keep;               /* right-hand parts to keep; 0: all */
	bool reverse;
	char delims[8];              /* "" means "." */
};

static bool spf_macro_letter(char c, bool explain)
{
	c = (char)tolower((unsigned char)c);
	if (c && strchr("slodiphv", c))
		return true;
	return explain && c && strchr("crt", c);   /* 7.3: exp text only */
}

/* Parse "%{...}" at p (p[0] == '%', p[1] == '{'); returns the octets used,
 * 0 when malformed. */
static size_t spf_macro_parse(const char *p, bool explain, struct spf_macro *m)
{
	size_t i = 2;
	memset(m, 0, sizeof *m);
	if (!spf_macro_letter(p[i], explain))
		return 0;
	m->letter = p[i++];
	bool digits = false;
	unsigned long keep = 0;
	while (isdigit((unsigned char)p[i])) {
		digits = true;
		if (keep < 100000)
			keep = keep * 10 + (unsigned long)(p[i] - '0');
		i++;
	}
	if (digits && keep == 0)
		return 0;   /* 7.3: a DIGIT transformer must be nonzero */
	m->keep = (unsigned)keep;   /* past the parts there are: all of them (7.3) */
	if (p[i] == 'r' || p[i] == 'R') {
		m->reverse = true;
		i++;
	}
	size_t nd = 0;
	for (; p[i] && strchr(".-+,/_=", p[i]); i++)
		if (!memchr(m->delims, p[i], nd) && nd < sizeof m->delims - 1)
			m->delims[nd++] = p[i];
	return p[i] == '}' ? i + 1 : 0;
}

/* The length of the token at p: a macro-expand or one literal octet; 0
 * when p starts something malformed. *macro says which. */
static size_t spf_macro_token(const char *p, bool explain, bool *macro, struct spf_macro *m)
{
	unsigned char c = (unsigned char)*p;
	*macro = false;
	if (c == '%') {
		*macro = true;
		if (p[1] == '%' || p[1] == '_' || p[1] == '-')
			return 2;
		return p[1] == '{' ? spf_macro_parse(p, explain, m) : 0;
	}
	if ((c >= 0x21 && c <= 0x7e) || (explain && c == ' '))
		return 1;
	return 0;
}

bool spf_macro_valid(const char *spec, bool explain)
{
	struct spf_macro m;
	bool macro;
	for (const char *p = spec; *p;) {
		size_t n = spf_macro_token(p, explain, &macro, &m);
		if (!n)
			return false;
		p += n;
	}
	return true;
}

bool spf_macro_uses_p(const char *spec)
{
	struct spf_macro m;
	bool macro;
	for (const char *p = spec; *p;) {
		size_t n = spf_macro_token(p, true, &macro, &m);
		if (!n)
			return false;
		if (macro && n > 2 && (m.letter == 'p' || m.letter == 'P'))
			return true;
		p += n;
	}
	return false;
}

/* toplabel = ( *alphanum ALPHA *alphanum ) /
 *            ( 1*alphanum "-" *( alphanum / "-" ) alphanum ) */
static bool spf_macro_toplabel(const char *s, size_t n)
{
	bool alpha = false, dash = false;
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '-')
			dash = true;
		else if (isalpha(c))
			alpha = true;
		else if (!isdigit(c))
			return false;
	}
	if (dash)
		return s[0] != '-' && s[n - 1] != '-';
	return alpha;
}

/* domain-spec = macro-string domain-end
 * domain-end  = ( "." toplabel [ "." ] ) / macro-expand */
bool spf_macro_domain_spec(const char *spec)
{
	struct spf_macro m;
	bool macro;
	const char *tail = spec;   /* where the literal octets at the end begin */
	for (const char *p = spec; *p;) {
		size_t n = spf_macro_token(p, false, &macro, &m);
		if (!n)
			return false;
		p += n;
		if (macro)
			tail = p;
	}
	size_t len = strlen(tail);
	if (len == 0)
		return tail != spec;   /* ends in a macro-expand; empty is not a spec */
	if (tail[len - 1] == '.')
		len--;
	const char *dot = NULL;
	for (size_t i = 0; i < len; i++)
		if (tail[i] == '.')
			dot = tail + i;
	return dot && spf_macro_toplabel(dot + 1, (size_t)(tail + len - dot - 1));
}

/* 7.3: uppercase letters expand URL-escaped (RFC 3986 2.3: all but the
 * unreserved characters). */
static void spf_macro_escape(struct buf *out, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~')
			buf_putc(out, (char)c);
		else
			buf_printf(out, "%%%02X", c);
	}
}

static const char *spf_macro_value(const struct spf_vars *v, char letter)
{
	const char *val = NULL;
	switch (tolower((unsigned char)letter)) {
	case 's': val = v->s; break;
	case 'l': val = v->l; break;
	case 'o': val = v->o; break;
	case 'd': val = v->d; break;
	case 'i': val = v->i; break;
	case 'p': val = v->p; break;
	case 'v': val = v->v; break;
	case 'h': val = v->h; break;
	case 'c': val = v->c; break;
	case 'r': val = v->r; break;
	case 't': val = v->t; break;
	}
	return val ? val : "";
}

/* 7.3: split at the delimiters, reverse, keep the right-hand parts, join
 * with ".". */
static void spf_macro_transform(const struct spf_macro *m, const char *val, struct buf *t)
{
	const char *delims = m->delims[0] ? m->delims : ".";
	size_t cap = strlen(val) + 1, n = 0;
	const char **part = util_xcalloc(cap, sizeof *part);
	size_t *plen = util_xcalloc(cap, sizeof *plen);
	for (const char *p = val;; p += plen[n - 1] + 1) {
		part[n] = p;
		plen[n] = strcspn(p, delims);
		if (!p[plen[n++]])
			break;
	}
	for (size_t i = 0; m->reverse && i < n / 2; i++) {
		const char *tp = part[i];
		size_t tl = plen[i];
		part[i] = part[n - 1 - i];
		plen[i] = plen[n - 1 - i];
		part[n - 1 - i] = tp;
		plen[n - 1 - i] = tl;
	}
	size_t from = m->keep && m->keep < n ? n - m->keep : 0;
	for (size_t i = from; i < n; i++) {
		if (i > from)
			buf_putc(t, '.');
		buf_append(t, part[i], plen[i]);
	}
	free(part);
	free(plen);
}

static void spf_macro_one(const struct spf_macro *m, const struct spf_vars *v, struct buf *out)
{
	const char *val = spf_macro_value(v, m->letter);
	struct buf t = BUF_INIT;
	if (m->keep || m->reverse || m->delims[0])
		spf_macro_transform(m, val, &t);
	else
		buf_puts(&t, val);
	if (isupper((unsigned char)m->letter))
		spf_macro_escape(out, buf_cstr(&t), t.len);
	else
		buf_append(out, buf_cstr(&t), t.len);
	buf_free(&t);
}

bool spf_macro_expand(const char *spec, const struct spf_vars *v, struct buf *out)
{
	struct spf_macro m;
	bool macro;
	for (const char *p = spec; *p;) {
		size_t n = spf_macro_token(p, true, &macro, &m);
		if (!n || out->len > SPF_EXPAND_MAX)
			return false;
		if (!macro)
			buf_putc(out, *p);
		else if (n == 2)
			buf_puts(out, p[1] == '%' ? "%" : p[1] == '_' ? " " : "%20");
		else
			spf_macro_one(&m, v, out);
		p += n;
	}
	return out->len <= SPF_EXPAND_MAX;
}

bool spf_macro_domain(const char *spec, const struct spf_vars *v, char out[SPF_NAME_MAX + 1])
{
	struct buf b = BUF_INIT;
	bool ok = spf_macro_expand(spec, v, &b);
	const char *s = buf_cstr(&b);
	size_t len = b.len;
	if (len && s[len - 1] == '.')
		len--;
	while (ok && len > SPF_NAME_MAX) {   /* 7.3: drop labels from the left */
		const char *dot = memchr(s, '.', len);
		if (!dot) {
			s += len - SPF_NAME_MAX;   /* one label: no name anyway (over 63) */
			len = SPF_NAME_MAX;
			break;
		}
		len -= (size_t)(dot + 1 - s);
		s = dot + 1;
	}
	if (ok) {
		memcpy(out, s, len);
		out[len] = '\0';
	}
	buf_free(&b);
	return ok;
}
