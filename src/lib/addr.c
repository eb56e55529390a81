/* addr: RFC 5321 mailbox and path parsing, pure functions.
 *
 * Owns the Path / Mailbox / Local-part / Domain / address-literal grammar of
 * RFC 5321 4.1.2 and 4.1.3, the length limits of RFC 5321 4.5.3.1, and the
 * lenient bracket-less form ("MAIL FROM:Admin@test.com") that the Exchange
 * troubleshooting guides type by hand. No I/O, no allocation, no globals.
 *
 * Parsing works on spans [p, e) so that the same code serves the bracketed
 * path, the bare lenient mailbox and a whole configuration string.
 */
#include "lib/addr.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "lib/util.h"

#define ADDR_POSTMASTER "postmaster"

/* RFC 6531 3.3: UTF8-non-ascii is allowed in atext, qtextSMTP and the
 * sub-domains (U-labels). Octets >= 0x80 are accepted by the classes below
 * only because parse_mailbox_span has first checked that the whole mailbox
 * is well-formed UTF-8 (addr_utf8_valid); whether a U-label is a valid
 * IDNA name is the IDNA library's question (lib/idna.h). */
static bool is_8bit(unsigned char c)
{
	return c >= 0x80;
}

static bool is_alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static bool is_letdig(unsigned char c)
{
	return is_alpha(c) || is_digit(c);
}

/* A sub-domain's letter or digit: ASCII, or part of a U-label. */
static bool is_label_char(unsigned char c)
{
	return is_letdig(c) || is_8bit(c);
}

static char lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* RFC 5322 3.2.3 atext, as used by RFC 5321 4.1.2 Atom. */
static bool is_atext(unsigned char c)
{
	return is_letdig(c) || is_8bit(c) || (c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

/* RFC 5321 4.1.2 qtextSMTP = %d32-33 / %d35-91 / %d93-126 */
static bool is_qtext(unsigned char c)
{
	return (c >= 32 && c <= 126 && c != '"' && c != '\\') || is_8bit(c);
}

/* Skip a Quoted-string starting at p (on the DQUOTE). Returns the byte after
 * the closing DQUOTE, or NULL if it is not a well-formed Quoted-string
 * ending before e. quoted-pairSMTP = %d92 %d32-126 (RFC 5321 4.1.2). */
static const char *skip_quoted(const char *p, const char *e)
{
	for (p++; p < e; p++) {
		unsigned char c = (unsigned char)*p;
		if (c == '"')
			return p + 1;
		if (c == '\\') {
			if (p + 1 >= e || p[1] < 32 || p[1] > 126)
				return NULL;
			p++;
		} else if (!is_qtext(c)) {
			return NULL;
		}
	}
	return NULL;
}

/* Skip a Dot-string: Atom *("." Atom), RFC 5321 4.1.2. Returns the byte after
 * it, or NULL when it is empty or has a leading, trailing or double dot. */
static const char *skip_dotstring(const char *p, const char *e)
{
	bool need_atext = true;

	for (; p < e; p++) {
		if (*p == '.') {
			if (need_atext)
				return NULL;
			need_atext = true;
		} else if (is_atext((unsigned char)*p)) {
			need_atext = false;
		} else {
			break;
		}
	}
	return need_atext ? NULL : p;
}

/* Check one sub-domain: Let-dig [Ldh-str], at most 63 octets (RFC 1035
 * 2.3.4; the label limit is DNS's, hence EDOMAIN rather than ETOOLONG). */
static bool label_valid(const char *p, size_t n)
{
	if (n == 0 || n > 63)
		return false;
	if (!is_label_char((unsigned char)p[0]) || !is_label_char((unsigned char)p[n - 1]))
		return false;
	for (size_t i = 1; i + 1 < n; i++)
		if (!is_label_char((unsigned char)p[i]) && p[i] != '-')
			return false;
	return true;
}

/* RFC 5321 4.1.2 Domain = sub-domain *("." sub-domain) on [p, e). No
 * trailing dot. The total length is checked by the callers. */
static bool domain_span_valid(const char *p, const char *e)
{
	const char *dot;

	for (;;) {
		dot = memchr(p, '.', (size_t)(e - p));
		if (dot == NULL)
			return label_valid(p, (size_t)(e - p));
		if (!label_valid(p, (size_t)(dot - p)))
			return false;
		p = dot + 1;
	}
}

/* The length of the UTF-8 sequence of a non-ASCII character at p (before
 * e), 0 when malformed (util_utf8_seq) or a C1 control U+0080..U+009F
 * (RFC 6531 3.3 leaves controls out, as RFC 5198 2 does). */
static size_t utf8_seq(const unsigned char *p, const unsigned char *e)
{
	size_t n = util_utf8_seq(p, e);
	return n == 2 && p[0] == 0xc2 && p[1] < 0xa0 ? 0 : n;
}

bool addr_utf8_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s, *e = p + n;

	while (p < e) {
		if (*p < 0x80) {
			p++;
			continue;
		}
		size_t k = utf8_seq(p, e);
		if (k == 0)
			return false;
		p += k;
	}
	return true;
}

static bool span_8bit(const char *p, const char *e)
{
	for (; p < e; p++)
		if (is_8bit((unsigned char)*p))
			return true;
	return false;
}

const char *addr_domain_of(const char *mailbox)
{
	const char *at = strrchr(mailbox, '@');
	return at ? at + 1 : "";
}

bool addr_domain_valid(const char *s)
{
	size_t n;

	if (s == NULL)
		return false;
	n = strlen(s);
	return n <= ADDR_DOMAIN_MAX && !span_8bit(s, s + n) && domain_span_valid(s, s + n);
}

/* RFC 5321 4.1.3 address-literal, "[" ... "]" on [p, e): IPv4-address-literal
 * or "IPv6:" IPv6-addr. General-address-literal tags are refused since none
 * is registered that we could check. */
static bool literal_valid(const char *p, const char *e)
{
	char tmp[64];
	unsigned char bin[16];
	size_t n = (size_t)(e - p);
	int family = AF_INET;

	if (n < 2 || p[0] != '[' || e[-1] != ']' || n - 2 >= sizeof tmp)
		return false;
	memcpy(tmp, p + 1, n - 2);
	tmp[n - 2] = '\0';
	if (strncasecmp(tmp, "IPv6:", 5) == 0)
		family = AF_INET6;
	return inet_pton(family, family == AF_INET6 ? tmp + 5 : tmp, bin) == 1;
}

/* Parse the Domain (or address-literal) of a mailbox on [p, e) into a. */
static enum addr_err parse_domain(const char *p, const char *e, struct addr *a)
{
	size_t n = (size_t)(e - p);

	if (n > ADDR_DOMAIN_MAX)
		return ADDR_ETOOLONG;
	if (n > 0 && *p == '[') {
		if (!literal_valid(p, e))
			return ADDR_EDOMAIN;
		a->literal = true;
		memcpy(a->domain, p, n);
	} else {
		if (!domain_span_valid(p, e))
			return ADDR_EDOMAIN;
		for (size_t i = 0; i < n; i++)
			a->domain[i] = lower(p[i]);
	}
	a->domain[n] = '\0';
	return ADDR_OK;
}

/* The domain-less "postmaster" of RFC 5321 4.5.1, any case. */
static bool is_postmaster(const char *p, const char *e)
{
	size_t n = sizeof ADDR_POSTMASTER - 1;

	return (size_t)(e - p) == n && strncasecmp(p, ADDR_POSTMASTER, n) == 0;
}

/* RFC 5321 4.1.2 Mailbox = Local-part "@" ( Domain / address-literal ),
 * exactly covering [p, e). */
static enum addr_err parse_mailbox_span(const char *p, const char *e,
                                        struct addr *a, bool allow_postmaster)
{
	const char *at;
	size_t n;

	if (span_8bit(p, e)) {
		if (!addr_utf8_valid(p, (size_t)(e - p)))
			return ADDR_EUTF8;
		a->utf8 = true;
	}
	if (p < e && *p == '"')
		at = skip_quoted(p, e);
	else
		at = skip_dotstring(p, e);
	if (at == NULL || (at < e && *at != '@'))
		return ADDR_ELOCAL;
	n = (size_t)(at - p);
	if (n > ADDR_LOCAL_MAX)
		return ADDR_ETOOLONG;
	if (at == e) {
		if (!allow_postmaster || !is_postmaster(p, e))
			return ADDR_ENODOMAIN;
		memcpy(a->local, ADDR_POSTMASTER, sizeof ADDR_POSTMASTER);
		return ADDR_OK;
	}
	memcpy(a->local, p, n);
	a->local[n] = '\0';
	return parse_domain(at + 1, e, a);
}

/* Find the '>' that closes a path opened at p[-1], skipping well-formed
 * Quoted-strings (which may contain '>'). A malformed one is left for the
 * local-part parser to refuse. NULL when there is no '>'. */
static const char *find_close(const char *p)
{
	const char *q;

	for (; *p != '\0'; p++) {
		if (*p == '>')
			return p;
		if (*p == '"' && (q = skip_quoted(p, p + strlen(p))) != NULL)
			p = q - 1;
	}
	return NULL;
}

/* Skip an RFC 5321 4.1.2 A-d-l ("@a,@b:") at p, up to e. Returns the byte
 * after the ':', p itself when there is no source route, NULL when it is
 * malformed. The route is dropped (RFC 5321 C). */
static const char *skip_route(const char *p, const char *e)
{
	const char *q;

	if (p >= e || *p != '@')
		return p;
	while (p < e && *p == '@') {
		p++;
		for (q = p; q < e && *q != ',' && *q != ':'; q++)
			;
		if (q == e || !domain_span_valid(p, q))
			return NULL;
		p = q + 1;
		if (*q == ':')
			return p;
	}
	return NULL;
}

/* The bracketed form "<...>" with p on the '<'. */
static enum addr_err parse_bracketed(const char *p, const char **end,
                                     struct addr *a, bool allow_null,
                                     bool allow_postmaster)
{
	const char *close = find_close(p + 1);
	const char *m;
	enum addr_err err;

	if (close == NULL)
		return ADDR_ESYNTAX;
	if ((size_t)(close - p) + 1 > ADDR_PATH_MAX)
		return ADDR_ETOOLONG;
	if (close == p + 1) {
		if (!allow_null)
			return ADDR_ESYNTAX;
		a->null = true;
		*end = close + 1;
		return ADDR_OK;
	}
	m = skip_route(p + 1, close);
	if (m == NULL)
		return ADDR_ESYNTAX;
	err = parse_mailbox_span(m, close, a, allow_postmaster);
	if (err == ADDR_OK)
		*end = close + 1;
	return err;
}

/* The lenient bare form: a mailbox ending at the first space (outside a
 * Quoted-string) or at the end of the string. */
static enum addr_err parse_bare(const char *p, const char **end,
                                struct addr *a, bool allow_postmaster)
{
	const char *e = p;
	enum addr_err err;

	if (*e == '"') {
		e = skip_quoted(e, e + strlen(e));
		if (e == NULL)
			return ADDR_ELOCAL;
	}
	e += strcspn(e, " ");
	if (e == p)
		return ADDR_ESYNTAX;
	/* As long as the path it stands for: "<" mailbox ">". */
	if ((size_t)(e - p) + 2 > ADDR_PATH_MAX)
		return ADDR_ETOOLONG;
	err = parse_mailbox_span(p, e, a, allow_postmaster);
	if (err == ADDR_OK)
		*end = e;
	return err;
}

/* RFC 5321 4.1.2 Reverse-path / Forward-path, plus the lenient form. */
enum addr_err addr_parse_path(const char *s, const char **end, struct addr *a,
                              bool allow_null, bool allow_postmaster)
{
	const char *dummy;
	enum addr_err err;

	memset(a, 0, sizeof *a);
	if (end == NULL)
		end = &dummy;
	*end = s;
	if (s == NULL)
		return ADDR_ESYNTAX;
	while (*s == ' ')
		s++;
	if (*s == '<')
		err = parse_bracketed(s, end, a, allow_null, allow_postmaster);
	else
		err = parse_bare(s, end, a, allow_postmaster);
	if (err != ADDR_OK)
		memset(a, 0, sizeof *a);
	return err;
}

/* A whole string as "local@domain"; it must also fit in a path, "<" and ">"
 * included (RFC 5321 4.5.3.1.3), so that it can be used in an envelope. */
enum addr_err addr_parse_mailbox(const char *s, struct addr *a)
{
	size_t n;
	enum addr_err err;

	memset(a, 0, sizeof *a);
	if (s == NULL || *s == '\0')
		return ADDR_ESYNTAX;
	n = strlen(s);
	if (n + 2 > ADDR_PATH_MAX)
		return ADDR_ETOOLONG;
	err = parse_mailbox_span(s, s + n, a, false);
	if (err != ADDR_OK)
		memset(a, 0, sizeof *a);
	return err;
}

bool addr_format(const struct addr *a, char *out, size_t n)
{
	int r;

	if (out == NULL || n == 0)
		return false;
	if (a->null) {
		out[0] = '\0';
		return true;
	}
	if (a->domain[0] == '\0')
		r = snprintf(out, n, "%s", a->local);
	else
		r = snprintf(out, n, "%s@%s", a->local, a->domain);
	return r >= 0 && (size_t)r < n;
}

const char *addr_strerror(enum addr_err e)
{
	switch (e) {
	case ADDR_OK:
		return "OK";
	case ADDR_ESYNTAX:
		return "Syntax error in path";
	case ADDR_ELOCAL:
		return "Bad local part";
	case ADDR_EDOMAIN:
		return "Bad domain or address literal";
	case ADDR_ETOOLONG:
		return "Path, local part or domain too long";
	case ADDR_ENODOMAIN:
		return "Domain name required";
	case ADDR_EUTF8:
		return "Malformed UTF-8 in address";
	}
	return "Unknown address error";
}
