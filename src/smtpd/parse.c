/* parse: SMTP command lines and ESMTP parameters, pure functions.
 *
 * Owns the tokenizing of a framed command line into verb and arguments
 * (RFC 5321 4.1.1), the "FROM:" / "TO:" keyword of MAIL and RCPT (leniently:
 * spaces around the colon are tolerated), the esmtp-param grammar of
 * RFC 5321 4.1.2, the values of SIZE (RFC 1870), BODY (RFC 6152), RET,
 * ENVID, NOTIFY and ORCPT (RFC 3461), SMTPUTF8 (RFC 6531), REQUIRETLS
 * (RFC 8689 4.1) and xtext (RFC 3461 4).
 */
#include "smtpd/parse.h"

#include <string.h>
#include <strings.h>

static bool is_alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static char upper(char c)
{
	return (c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') : c;
}

static const char *skip_spaces(const char *p)
{
	while (*p == ' ')
		p++;
	return p;
}

/* RFC 5321 4.1.1: a verb of letters, then SP or the end of the line. */
bool parse_command(const char *line, struct parse_cmd *out)
{
	const char *p;
	size_t n = 0;

	memset(out, 0, sizeof *out);
	out->args = "";
	if (line == NULL)
		return false;
	p = skip_spaces(line);
	for (; is_alpha((unsigned char)p[n]); n++)
		if (n == PARSE_VERB_MAX)
			return false;
	if (p[n] != '\0' && p[n] != ' ')
		return false;
	for (size_t i = 0; i < n; i++)
		out->verb[i] = upper(p[i]);
	out->verb[n] = '\0';
	out->args = skip_spaces(p + n);
	return true;
}

/* "FROM" / "TO", any case, then [SP...] ":" [SP...]. */
const char *parse_keyword_colon(const char *args, const char *keyword)
{
	size_t n;
	const char *p;

	if (args == NULL || keyword == NULL)
		return NULL;
	n = strlen(keyword);
	if (strncasecmp(args, keyword, n) != 0)
		return NULL;
	p = skip_spaces(args + n);
	if (*p != ':')
		return NULL;
	return skip_spaces(p + 1);
}


/* ---- esmtp-param, RFC 5321 4.1.2 ---- */

/* One esmtp-param: keyword [ "=" value ], pointers into the input. */
struct param {
	const char *kw;
	size_t kwlen;
	const char *val;     /* NULL when there was no "=" */
	size_t vallen;
};

/* esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-") */
static bool is_kwchar(unsigned char c)
{
	return is_alpha(c) || is_digit(c) || c == '-';
}

/* esmtp-value = 1*(%d33-60 / %d62-126); emptiness is left to the keyword. */
static bool is_valchar(unsigned char c)
{
	return c >= 33 && c <= 126 && c != '=';
}

/* Split the next param at p (not a space, not the end). Returns the byte
 * after it, or NULL on a syntax error. */
static const char *next_param(const char *p, struct param *pm)
{
	const char *q = p;

	if (*q == '-')
		return NULL;
	while (is_kwchar((unsigned char)*q))
		q++;
	pm->kw = p;
	pm->kwlen = (size_t)(q - p);
	pm->val = NULL;
	pm->vallen = 0;
	if (pm->kwlen == 0)
		return NULL;
	if (*q == '=') {
		pm->val = ++q;
		while (is_valchar((unsigned char)*q))
			q++;
		pm->vallen = (size_t)(q - pm->val);
	}
	return (*q == '\0' || *q == ' ') ? q : NULL;
}

static bool kw_is(const struct param *pm, const char *name)
{
	return pm->kwlen == strlen(name) &&
	       strncasecmp(pm->kw, name, pm->kwlen) == 0;
}

static bool val_is(const struct param *pm, const char *name)
{
	return pm->vallen == strlen(name) &&
	       strncasecmp(pm->val, name, pm->vallen) == 0;
}

/* Look a keyword up in a NULL-terminated table; its index or -1. */
static int kw_index(const struct param *pm, const char *const *names)
{
	for (int i = 0; names[i] != NULL; i++)
		if (kw_is(pm, names[i]))
			return i;
	return -1;
}

/* The keyword handler of one parameter: false for a bad value. */
typedef bool (*param_fn)(const struct param *pm, void *out);

/* The loop shared by MAIL and RCPT: tokenize, find the keyword, refuse
 * duplicates, hand the value to fns[i]. The keywords of the bits of
 * bare take no value (SMTPUTF8); the others need one. */
static enum parse_perr parse_params(const char *s, const char *const *names,
                                    const param_fn *fns, unsigned bare, void *out,
                                    const char **bad)
{
	struct param pm;
	unsigned seen = 0;
	const char *dummy;
	int i;

	if (bad == NULL)
		bad = &dummy;
	*bad = NULL;
	for (const char *p = skip_spaces(s); *p != '\0'; p = skip_spaces(p)) {
		*bad = p;
		if ((p = next_param(p, &pm)) == NULL)
			return PARSE_ESYNTAX;
		if ((i = kw_index(&pm, names)) < 0)
			return PARSE_EUNKNOWN;
		if (seen & (1u << i))
			return PARSE_EDUP;
		seen |= 1u << i;
		bool valued = pm.val != NULL && pm.vallen != 0;
		if ((bare & (1u << i) ? pm.val != NULL : !valued) || !fns[i](&pm, out))
			return PARSE_EVALUE;
	}
	*bad = NULL;
	return PARSE_OK;
}

/* RFC 1870 6: size-value ::= 1*20DIGIT, and it must fit our uint64_t. */
static bool mail_size(const struct param *pm, void *out)
{
	struct parse_mail_params *mp = out;
	uint64_t v = 0;

	if (pm->vallen > 20)
		return false;
	for (size_t i = 0; i < pm->vallen; i++) {
		unsigned d = (unsigned)(pm->val[i] - '0');
		if (!is_digit((unsigned char)pm->val[i]) ||
		    v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	mp->has_size = true;
	mp->size = v;
	return true;
}

/* A keyword's value that must be one of two words: the first gives 1,
 * the second 2 (the enums' values), anything else 0. */
static int val_word(const struct param *pm, const char *one, const char *two)
{
	return val_is(pm, one) ? 1 : val_is(pm, two) ? 2 : 0;
}

/* RFC 6152 2: BODY=7BIT / 8BITMIME; RFC 3030 3: BINARYMIME (whether the
 * message then comes by BDAT is the session's to check). */
static bool mail_body(const struct param *pm, void *out)
{
	struct parse_mail_params *mp = out;
	_Static_assert(BODY_7BIT == 1 && BODY_8BITMIME == 2, "val_word's order");
	mp->body = val_is(pm, "BINARYMIME") ? BODY_BINARYMIME
	                                    : (enum smtp_body)val_word(pm, "7BIT", "8BITMIME");
	return mp->body != BODY_UNSET;
}

/* RFC 3461 4.3: RET=FULL / HDRS. */
static bool mail_ret(const struct param *pm, void *out)
{
	struct parse_mail_params *mp = out;
	_Static_assert(RET_FULL == 1 && RET_HDRS == 2, "val_word's order");
	mp->ret = (enum smtp_ret)val_word(pm, "FULL", "HDRS");
	return mp->ret != RET_UNSET;
}

/* RFC 3461 4.4: ENVID=xtext, at most 100 octets once decoded, which must be
 * printable US-ASCII. */
static bool mail_envid(const struct param *pm, void *out)
{
	struct parse_mail_params *mp = out;

	if (!smtp_xtext_decode(pm->val, pm->vallen, mp->envid, sizeof mp->envid))
		return false;
	for (const char *c = mp->envid; *c != '\0'; c++)
		if ((unsigned char)*c < 32 || (unsigned char)*c > 126)
			return false;
	return true;
}

/* RFC 6531 3.4: SMTPUTF8, no value. */
static bool mail_smtputf8(const struct param *pm, void *out)
{
	(void)pm;
	((struct parse_mail_params *)out)->smtputf8 = true;
	return true;
}

/* RFC 8689 4.1: REQUIRETLS, no value (whether the session may use it is
 * the caller's to say: only under TLS). */
static bool mail_requiretls(const struct param *pm, void *out)
{
	(void)pm;
	((struct parse_mail_params *)out)->requiretls = true;
	return true;
}

enum parse_perr parse_mail_params(const char *s, struct parse_mail_params *p,
                                  const char **bad)
{
	static const char *const names[] = { "SIZE", "BODY", "RET", "ENVID", "SMTPUTF8",
	                                     "REQUIRETLS", NULL };
	static const param_fn fns[] = { mail_size, mail_body, mail_ret, mail_envid,
	                                mail_smtputf8, mail_requiretls };
	enum parse_perr err;

	memset(p, 0, sizeof *p);
	err = parse_params(s == NULL ? "" : s, names, fns, 1u << 4 | 1u << 5, p, bad);
	if (err != PARSE_OK)
		memset(p, 0, sizeof *p);
	return err;
}

/* One NOTIFY item of [p, e); its NOTIFY_* bit or 0. */
static unsigned notify_item(const char *p, const char *e)
{
	static const struct { const char *name; unsigned bit; } items[] = {
		{ "NEVER", NOTIFY_NEVER }, { "SUCCESS", NOTIFY_SUCCESS },
		{ "FAILURE", NOTIFY_FAILURE }, { "DELAY", NOTIFY_DELAY },
	};
	size_t n = (size_t)(e - p);

	for (size_t i = 0; i < sizeof items / sizeof items[0]; i++)
		if (n == strlen(items[i].name) &&
		    strncasecmp(p, items[i].name, n) == 0)
			return items[i].bit;
	return 0;
}

/* RFC 3461 4.1: NOTIFY="NEVER" / 1#( "SUCCESS" / "FAILURE" / "DELAY" ). */
static bool rcpt_notify(const struct param *pm, void *out)
{
	struct parse_rcpt_params *rp = out;
	const char *p = pm->val, *e = pm->val + pm->vallen, *comma;
	unsigned bits = 0, bit;

	for (;;) {
		comma = memchr(p, ',', (size_t)(e - p));
		bit = notify_item(p, comma != NULL ? comma : e);
		if (bit == 0)
			return false;
		bits |= bit;
		if (comma == NULL)
			break;
		p = comma + 1;
	}
	if ((bits & NOTIFY_NEVER) && bits != NOTIFY_NEVER)
		return false;
	rp->notify = bits;
	return true;
}

/* RFC 822 3.3 atom character (no specials, SPACE or CTLs), for addr-type. */
static bool is_atomchar(unsigned char c)
{
	return c >= 33 && c <= 126 && strchr("()<>@,;:\\\".[]", c) == NULL;
}

/* RFC 3461 4.2: ORCPT=addr-type ";" xtext, stored as "addr-type;decoded". */
static bool rcpt_orcpt(const struct param *pm, void *out)
{
	struct parse_rcpt_params *rp = out;
	const char *semi = memchr(pm->val, ';', pm->vallen);
	size_t tlen, rest;

	if (semi == NULL || semi == pm->val)
		return false;
	tlen = (size_t)(semi - pm->val);
	rest = pm->vallen - tlen - 1;
	for (size_t i = 0; i < tlen; i++)
		if (!is_atomchar((unsigned char)pm->val[i]))
			return false;
	if (rest == 0 || tlen + 1 >= sizeof rp->orcpt)
		return false;
	memcpy(rp->orcpt, pm->val, tlen + 1);
	return smtp_xtext_decode(semi + 1, rest, rp->orcpt + tlen + 1,
	                          sizeof rp->orcpt - tlen - 1);
}

enum parse_perr parse_rcpt_params(const char *s, struct parse_rcpt_params *p,
                                  const char **bad)
{
	static const char *const names[] = { "NOTIFY", "ORCPT", NULL };
	static const param_fn fns[] = { rcpt_notify, rcpt_orcpt };
	enum parse_perr err;

	memset(p, 0, sizeof *p);
	err = parse_params(s == NULL ? "" : s, names, fns, 0, p, bad);
	if (err != PARSE_OK)
		memset(p, 0, sizeof *p);
	return err;
}

/* RFC 3030 2: bdat-cmd = "BDAT" SP chunk-size [ SP end-marker ] CRLF,
 * chunk-size = 1*DIGIT, end-marker = "LAST" (any case, as verbs are).
 * A size past PARSE_BDAT_MAX (no message is that large) is refused
 * rather than wrapped. */
bool parse_bdat(const char *args, uint64_t *size, bool *last)
{
	uint64_t n = 0;
	size_t i = 0;
	if (args == NULL)
		return false;
	for (; is_digit((unsigned char)args[i]); i++) {
		n = n * 10 + (uint64_t)(args[i] - '0');
		if (n > PARSE_BDAT_MAX)
			return false;
	}
	if (i == 0)
		return false;
	const char *p = args + i;
	*last = false;
	if (*p == ' ' && !strcasecmp(p + 1, "LAST"))
		*last = true;
	else if (*p != '\0')
		return false;
	*size = n;
	return true;
}
