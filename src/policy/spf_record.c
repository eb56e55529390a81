/* spf_record: one SPF record's syntax (RFC 7208 4.5, 4.6, 5, 6 and the
 * ABNF of 12), parsed whole before anything is evaluated (4.6: a syntax
 * error anywhere is a permerror). Pure; see spf.h.
 *
 *   record    = version terms *SP
 *   version   = "v=spf1"
 *   terms     = *( 1*SP ( directive / modifier ) )
 *   directive = [ qualifier ] mechanism
 *   modifier  = redirect / explanation / unknown-modifier
 *   unknown-modifier = name "=" macro-string
 *   name      = ALPHA *( ALPHA / DIGIT / "-" / "_" / "." )
 */
#include "policy/spf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/util.h"

#define SPF_VERSION "v=spf1"

bool spf_record_is(const char *text)
{
	size_t n = sizeof SPF_VERSION - 1;
	return !strncasecmp(text, SPF_VERSION, n) && (text[n] == ' ' || text[n] == '\0');
}

static bool spf_record_no(char *why, size_t n, const char *fmt, const char *what)
{
	snprintf(why, n, fmt, what);
	return false;
}

/* A CIDR length at the end of s[0..*len) after "/" (sep "/") or "//"
 * (sep "//"): "0" or a number without leading zeros (12: ip4-cidr-length,
 * ip6-cidr-length). 0: none there; -1: one there, over max; else 1 and
 * *len shortened past it. */
static int spf_record_cidr(const char *s, size_t *len, const char *sep, unsigned max,
                           unsigned *out)
{
	size_t end = *len, d = end, sl = strlen(sep);
	while (d > 0 && isdigit((unsigned char)s[d - 1]))
		d--;
	if (d == end || end - d > 3 || d < sl || strncmp(s + d - sl, sep, sl))
		return 0;
	if (sl == 1 && d >= 2 && s[d - 2] == '/')
		return 0;   /* "//n" is not "/n" */
	if (s[d] == '0' && end - d > 1)
		return 0;   /* a leading zero: not a length, so a syntax error later */
	unsigned v = (unsigned)strtoul(s + d, NULL, 10);
	if (v > max)
		return -1;
	*out = v;
	*len = d - sl;
	return 1;
}

/* ip4-network = qnum "." qnum "." qnum "." qnum, qnum 0-255 without
 * leading zeros. */
static bool spf_record_ip4(const char *s, size_t len, unsigned char out[4])
{
	size_t i = 0;
	for (int k = 0; k < 4; k++) {
		size_t d = i;
		unsigned v = 0;
		while (i < len && isdigit((unsigned char)s[i]) && i - d < 3)
			v = v * 10 + (unsigned)(s[i++] - '0');
		if (i == d || v > 255 || (s[d] == '0' && i - d > 1))
			return false;
		out[k] = (unsigned char)v;
		if (k < 3 && (i >= len || s[i++] != '.'))
			return false;
	}
	return i == len;
}

static bool spf_record_ip6(const char *s, size_t len, unsigned char out[16])
{
	char text[64];
	if (len == 0 || len >= sizeof text)
		return false;
	memcpy(text, s, len);
	text[len] = '\0';
	return inet_pton(AF_INET6, text, out) == 1;
}

/* A domain-spec out of s[0..len): copied after the record's text. */
static const char *spf_record_spec(char **tail, const char *s, size_t len)
{
	char *p = *tail;
	memcpy(p, s, len);
	p[len] = '\0';
	*tail = p + len + 1;
	return spf_macro_domain_spec(p) ? p : NULL;
}

/* ip4 ":" ip4-network [ ip4-cidr-length ], ip6 likewise (5.6). */
static bool spf_record_ip(struct spf_term *t, const char *arg, char *why, size_t n)
{
	size_t len = strlen(arg);
	unsigned dummy;
	bool v4 = t->mech == SPF_M_IP4;
	if (arg[0] != ':' || spf_record_cidr(arg, &len, "//", 128, &dummy))
		return spf_record_no(why, n, "%s: expected :address[/length]", t->text);
	int c = spf_record_cidr(arg, &len, "/", v4 ? 32 : 128, v4 ? &t->cidr4 : &t->cidr6);
	if (c < 0)
		return spf_record_no(why, n, "%s: CIDR length too long", t->text);
	if (v4 ? !spf_record_ip4(arg + 1, len - 1, t->net) : !spf_record_ip6(arg + 1, len - 1, t->net))
		return spf_record_no(why, n, "%s: not an address", t->text);
	return true;
}

/* a and mx: [ ":" domain-spec ] [ dual-cidr-length ] (5.3, 5.4). */
static bool spf_record_host(char **tail, struct spf_term *t, const char *arg, char *why,
                            size_t n)
{
	size_t len = strlen(arg);
	if (spf_record_cidr(arg, &len, "//", 128, &t->cidr6) < 0 ||
	    spf_record_cidr(arg, &len, "/", 32, &t->cidr4) < 0)
		return spf_record_no(why, n, "%s: CIDR length too long", t->text);
	if (len == 0)
		return true;
	if (arg[0] != ':' || !(t->spec = spf_record_spec(tail, arg + 1, len - 1)))
		return spf_record_no(why, n, "%s: not a domain-spec", t->text);
	return true;
}

/* include, exists: ":" domain-spec; ptr: [ ":" domain-spec ]. */
static bool spf_record_target(char **tail, struct spf_term *t, const char *arg, bool optional,
                              char *why, size_t n)
{
	if (optional && !*arg)
		return true;
	if (arg[0] != ':' || !(t->spec = spf_record_spec(tail, arg + 1, strlen(arg + 1))))
		return spf_record_no(why, n, "%s: not a domain-spec", t->text);
	return true;
}

static const struct {
	const char *name;
	enum spf_mech mech;
} spf_record_mechs[] = {
	{ "all", SPF_M_ALL }, { "include", SPF_M_INCLUDE }, { "a", SPF_M_A }, { "mx", SPF_M_MX },
	{ "ptr", SPF_M_PTR }, { "ip4", SPF_M_IP4 }, { "ip6", SPF_M_IP6 }, { "exists", SPF_M_EXISTS },
};

/* directive = [ qualifier ] mechanism (4.6.2, 5) */
static bool spf_record_directive(char **tail, struct spf_term *t, char *why, size_t n)
{
	static const char quals[] = "+-~?";
	static const enum spf_result qres[] = { SPF_PASS, SPF_FAIL, SPF_SOFTFAIL, SPF_NEUTRAL };
	const char *p = t->text, *q = strchr(quals, *p);
	t->qualifier = SPF_PASS;
	if (*p && q) {
		t->qualifier = qres[q - quals];
		p++;
	}
	size_t len = strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789");
	size_t i = 0, nm = sizeof spf_record_mechs / sizeof spf_record_mechs[0];
	while (i < nm && (strlen(spf_record_mechs[i].name) != len ||
	                  strncasecmp(p, spf_record_mechs[i].name, len)))
		i++;
	if (i == nm)
		return spf_record_no(why, n, "unknown mechanism '%s'", t->text);
	t->mech = spf_record_mechs[i].mech;
	t->cidr4 = 32;
	t->cidr6 = 128;
	const char *arg = p + len;
	switch (t->mech) {
	case SPF_M_ALL:
		return *arg ? spf_record_no(why, n, "%s: all takes nothing", t->text) : true;
	case SPF_M_IP4: case SPF_M_IP6:
		return spf_record_ip(t, arg, why, n);
	case SPF_M_A: case SPF_M_MX:
		return spf_record_host(tail, t, arg, why, n);
	case SPF_M_PTR:
		return spf_record_target(tail, t, arg, true, why, n);
	case SPF_M_INCLUDE: case SPF_M_EXISTS:
		return spf_record_target(tail, t, arg, false, why, n);
	}
	return false;
}

/* The length of a modifier's name before its "=", or 0: not a modifier. */
static size_t spf_record_modifier_name(const char *s)
{
	if (!isalpha((unsigned char)*s))
		return 0;
	size_t i = 1;
	while (isalnum((unsigned char)s[i]) || s[i] == '-' || s[i] == '_' || s[i] == '.')
		i++;
	return s[i] == '=' ? i : 0;
}

/* redirect= and exp= (6.1, 6.2): a domain-spec each, at most once (6);
 * any other name=macro-string is checked and ignored (6). */
static bool spf_record_modifier(struct spf_record *r, char **tail, const char *text,
                                size_t name, char *why, size_t n)
{
	const char *val = text + name + 1, **slot = NULL;
	if (name == 8 && !strncasecmp(text, "redirect", 8))
		slot = &r->redirect;
	else if (name == 3 && !strncasecmp(text, "exp", 3))
		slot = &r->exp;
	if (!slot)
		return spf_macro_valid(val, false) ? true
		                                   : spf_record_no(why, n, "%s: bad macro string", text);
	if (*slot)
		return spf_record_no(why, n, "%s: the modifier appears twice", text);
	if (!(*slot = spf_record_spec(tail, val, strlen(val))))
		return spf_record_no(why, n, "%s: not a domain-spec", text);
	return true;
}

static bool spf_record_term(struct spf_record *r, char **tail, char *text, size_t *cap,
                            char *why, size_t n)
{
	size_t name = spf_record_modifier_name(text);
	if (name)
		return spf_record_modifier(r, tail, text, name, why, n);
	if (r->n == *cap) {
		*cap = *cap ? *cap * 2 : 8;
		r->term = util_xrealloc(r->term, *cap, sizeof *r->term);
	}
	struct spf_term *t = &r->term[r->n++];
	memset(t, 0, sizeof *t);
	t->text = text;
	return spf_record_directive(tail, t, why, n);
}

bool spf_record_parse(const char *text, struct spf_record *r, char *why, size_t n)
{
	memset(r, 0, sizeof *r);
	if (!spf_record_is(text))
		return spf_record_no(why, n, "%s", "not an SPF record (v=spf1)");
	size_t len = strlen(text), cap = 0;
	r->buf = util_xcalloc(2 * len + 2, 1);   /* the terms, then their specs */
	memcpy(r->buf, text, len);
	char *tail = r->buf + len + 1;
	char *p = r->buf + sizeof SPF_VERSION - 1;
	while (*p) {
		while (*p == ' ')
			*p++ = '\0';
		if (!*p)
			break;
		char *term = p;
		p += strcspn(p, " ");
		if (*p)
			*p++ = '\0';
		if (!spf_record_term(r, &tail, term, &cap, why, n)) {
			spf_record_free(r);
			return false;
		}
	}
	return true;
}

void spf_record_free(struct spf_record *r)
{
	free(r->buf);
	free(r->term);
	memset(r, 0, sizeof *r);
}
