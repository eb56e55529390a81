/* mtasts: MTA-STS's TXT record, policy file and MX patterns (RFC 8461
 * 3.1, 3.2, 4.1); pure. */
#include "net/mtasts.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

const char *mtasts_mode_name(enum mtasts_mode m)
{
	return m == MTASTS_ENFORCE ? "enforce" : m == MTASTS_TESTING ? "testing" : "none";
}

static bool mtasts_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* ---- the TXT record (RFC 8461 3.1) ---- */

bool mtasts_txt_is_sts(const char *rec, size_t len)
{
	if (len < 7 || memcmp(rec, "v=STSv1", 7) != 0)
		return false;
	size_t i = 7;
	while (i < len && mtasts_wsp(rec[i]))
		i++;
	return i == len || rec[i] == ';';
}

/* One "key=value" field of the record, spaces around it trimmed. */
static bool mtasts_txt_field(const char *f, size_t len, char *id, bool *have_id)
{
	while (len && mtasts_wsp(*f))
		f++, len--;
	while (len && mtasts_wsp(f[len - 1]))
		len--;
	if (len == 0)
		return true;   /* the optional ';' at the end */
	const char *eq = memchr(f, '=', len);
	if (!eq || eq == f)
		return false;
	if ((size_t)(eq - f) != 2 || memcmp(f, "id", 2) != 0 || *have_id)
		return true;   /* an extension, or a later id: ignored */
	size_t vlen = len - 3;
	if (vlen == 0 || vlen > MTASTS_ID_MAX)
		return false;
	for (size_t i = 0; i < vlen; i++)
		if (!isalnum((unsigned char)eq[1 + i]))
			return false;
	memcpy(id, eq + 1, vlen);
	id[vlen] = '\0';
	*have_id = true;
	return true;
}

bool mtasts_txt(const char *rec, size_t len, char *id)
{
	if (!mtasts_txt_is_sts(rec, len) || memchr(rec, '\0', len))
		return false;
	bool have_id = false;
	for (size_t i = 7; i < len;) {
		const char *f = rec + i + 1;   /* past the ';' */
		const char *semi = memchr(f, ';', len - i - 1);
		size_t flen = semi ? (size_t)(semi - f) : len - i - 1;
		if (!mtasts_txt_field(f, flen, id, &have_id))
			return false;
		i += 1 + flen;
		if (i < len && rec[i] != ';')
			return false;
	}
	return have_id;
}

/* ---- the policy (RFC 8461 3.2) ---- */

/* ["*."] Domain: labels of letters, digits and hyphens, lower-cased. */
static bool mtasts_mx_valid(const char *v, size_t len, char *out, size_t n)
{
	size_t start = len >= 2 && v[0] == '*' && v[1] == '.' ? 2 : 0;
	if (len - start == 0 || len >= n)
		return false;
	size_t label = 0;
	for (size_t i = start; i < len; i++) {
		char c = v[i];
		if (c == '.') {
			if (label == 0)
				return false;
			label = 0;
		} else if (isalnum((unsigned char)c) || c == '-' || c == '_') {
			if (++label > 63)
				return false;
		} else {
			return false;
		}
	}
	if (label == 0)
		return false;
	for (size_t i = 0; i < len; i++)
		out[i] = (char)tolower((unsigned char)v[i]);
	out[len] = '\0';
	return true;
}

struct mtasts_seen {
	bool version, mode, max_age;
};

static bool mtasts_fail(char *why, size_t n, const char *msg)
{
	snprintf(why, n, "%s", msg);
	return false;
}

static bool mtasts_max_age(const char *v, size_t len, unsigned *out)
{
	if (len == 0 || len > 10)
		return false;
	unsigned long long x = 0;
	for (size_t i = 0; i < len; i++) {
		if (!isdigit((unsigned char)v[i]))
			return false;
		x = x * 10 + (unsigned)(v[i] - '0');
	}
	*out = x > MTASTS_MAX_AGE_MAX ? MTASTS_MAX_AGE_MAX : (unsigned)x;
	return true;
}

/* One "key: value" pair; the first of each key but mx counts. */
static bool mtasts_pair(const char *k, size_t klen, const char *v, size_t vlen,
                        struct mtasts_policy *p, struct mtasts_seen *s, char *why, size_t n)
{
#define KEY(name) (klen == sizeof name - 1 && memcmp(k, name, klen) == 0)
	if (KEY("version") && !s->version) {
		s->version = true;
		if (vlen != 5 || memcmp(v, "STSv1", 5) != 0)
			return mtasts_fail(why, n, "version is not STSv1");
	} else if (KEY("mode") && !s->mode) {
		s->mode = true;
		if (vlen == 7 && !memcmp(v, "enforce", 7))
			p->mode = MTASTS_ENFORCE;
		else if (vlen == 7 && !memcmp(v, "testing", 7))
			p->mode = MTASTS_TESTING;
		else if (vlen == 4 && !memcmp(v, "none", 4))
			p->mode = MTASTS_NONE;
		else
			return mtasts_fail(why, n, "mode is not enforce, testing or none");
	} else if (KEY("max_age") && !s->max_age) {
		s->max_age = true;
		if (!mtasts_max_age(v, vlen, &p->max_age))
			return mtasts_fail(why, n, "max_age is not 1 to 10 digits");
	} else if (KEY("mx")) {
		char mx[256];
		if (!mtasts_mx_valid(v, vlen, mx, sizeof mx))
			return mtasts_fail(why, n, "an mx value is not a [*.]domain");
		if (p->nmx < MTASTS_MX_MAX)
			memcpy(p->mx[p->nmx++], mx, sizeof mx);
	}
#undef KEY
	return true;
}

static bool mtasts_key_char(char c)
{
	return isalnum((unsigned char)c) || c == '_' || c == '-' || c == '.';
}

/* One line, its CR (if any) already cut: key, ':', *WSP, value, *WSP. */
static bool mtasts_line(const char *l, size_t len, struct mtasts_policy *p, struct mtasts_seen *s,
                        char *why, size_t n)
{
	size_t k = 0;
	while (k < len && mtasts_key_char(l[k]))
		k++;
	if (k == 0 || k == len || l[k] != ':')
		return mtasts_fail(why, n, "a line is not \"key: value\"");
	size_t v = k + 1;
	while (v < len && mtasts_wsp(l[v]))
		v++;
	size_t end = len;
	while (end > v && mtasts_wsp(l[end - 1]))
		end--;
	for (size_t i = v; i < end; i++)
		if ((unsigned char)l[i] < 0x20 || l[i] == 0x7f)
			return mtasts_fail(why, n, "a value holds a control character");
	return mtasts_pair(l, k, l + v, end - v, p, s, why, n);
}

bool mtasts_parse(const char *text, size_t len, struct mtasts_policy *p, char *why, size_t n)
{
	memset(p, 0, sizeof *p);
	struct mtasts_seen s = { false, false, false };
	if (len > MTASTS_BODY_MAX)
		return mtasts_fail(why, n, "the policy is over 64 KiB");
	for (size_t i = 0; i < len;) {
		const char *nl = memchr(text + i, '\n', len - i);
		size_t end = nl ? (size_t)(nl - text) : len;
		size_t l = end - i;
		if (l && text[i + l - 1] == '\r')
			l--;
		if (l && !mtasts_line(text + i, l, p, &s, why, n))
			return false;
		i = end + 1;
	}
	if (!s.version)
		return mtasts_fail(why, n, "no version");
	if (!s.mode)
		return mtasts_fail(why, n, "no mode");
	if (!s.max_age)
		return mtasts_fail(why, n, "no max_age");
	if (p->mode != MTASTS_NONE && p->nmx == 0)
		return mtasts_fail(why, n, "no mx");
	return true;
}

/* ---- MX host matching (RFC 8461 4.1) ---- */

static bool mtasts_pattern_match(const char *pat, const char *host, size_t hlen)
{
	if (pat[0] != '*')
		return strlen(pat) == hlen && strncasecmp(pat, host, hlen) == 0;
	const char *dot = memchr(host, '.', hlen);   /* "*." is one label, not more */
	if (!dot || dot == host)
		return false;
	size_t rest = hlen - (size_t)(dot - host);
	return strlen(pat + 1) == rest && strncasecmp(pat + 1, dot, rest) == 0;
}

bool mtasts_mx_match(const struct mtasts_policy *p, const char *host)
{
	size_t hlen = strlen(host);
	if (hlen && host[hlen - 1] == '.')
		hlen--;
	for (size_t i = 0; i < p->nmx; i++)
		if (mtasts_pattern_match(p->mx[i], host, hlen))
			return true;
	return false;
}
