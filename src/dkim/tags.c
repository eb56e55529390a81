/* tags: RFC 6376 3.2 tag-lists (see tags.h). */
#include "dkim/tags.h"

#include <string.h>

static bool tags_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* RFC 6376 2.8 FWS (RFC 5322 3.2.2 without the obsolete forms): WSP, or
 * CRLF followed by WSP. Returns the index after it. */
static size_t tags_fws(const char *s, size_t n, size_t i)
{
	for (;;) {
		if (i < n && tags_wsp(s[i]))
			i++;
		else if (i + 2 < n && s[i] == '\r' && s[i + 1] == '\n' && tags_wsp(s[i + 2]))
			i += 3;
		else
			return i;
	}
}

static bool tags_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool tags_namechar(char c)
{
	return tags_alpha(c) || (c >= '0' && c <= '9') || c == '_';
}

/* VALCHAR: %x21-3A / %x3C-7E, printable ASCII but ";". */
static bool tags_valchar(char c)
{
	return c >= 0x21 && c <= 0x7e && c != ';';
}

/* tag-value from i: tvals separated by FWS. Sets the value's span (the
 * white space after it left out) and returns the index after that white
 * space. */
static size_t tags_value(const char *s, size_t n, size_t i, struct dkim_tag *t)
{
	t->val = s + i;
	for (;;) {
		while (i < n && tags_valchar(s[i]))
			i++;
		t->vlen = (size_t)(s + i - t->val);
		size_t j = tags_fws(s, n, i);
		if (j == i || j == n || !tags_valchar(s[j]))
			return j;
		i = j;
	}
}

static bool tags_known(const struct dkim_tags *out, const char *name, size_t nlen)
{
	for (size_t k = 0; k < out->n; k++)
		if (out->v[k].nlen == nlen && !memcmp(out->v[k].name, name, nlen))
			return true;
	return false;
}

/* One tag-spec at i (white space before it skipped); returns the index of
 * the ";" or the end after it, or n + 1 when it is malformed. */
static size_t tags_spec(const char *s, size_t n, size_t i, struct dkim_tags *out)
{
	if (i >= n || !tags_alpha(s[i]) || out->n == DKIM_TAGS_MAX)
		return n + 1;
	struct dkim_tag *t = &out->v[out->n];
	t->name = s + i;
	while (i < n && tags_namechar(s[i]))
		i++;
	t->nlen = (size_t)(s + i - t->name);
	i = tags_fws(s, n, i);
	if (i >= n || s[i] != '=' || tags_known(out, t->name, t->nlen))
		return n + 1;
	t->raw = ++i;
	i = tags_value(s, n, tags_fws(s, n, i), t);
	t->raw_end = i;
	if (i < n && s[i] != ';')
		return n + 1;
	out->n++;
	return i;
}

bool dkim_tags_parse(const char *s, size_t n, struct dkim_tags *out)
{
	out->n = 0;
	if (memchr(s, '\0', n))
		return false;
	size_t i = tags_fws(s, n, 0);
	while (i < n) {
		i = tags_spec(s, n, i, out);
		if (i > n)
			return false;
		if (i < n)
			i = tags_fws(s, n, i + 1);   /* past ";" */
	}
	return true;
}

const struct dkim_tag *dkim_tags_get(const struct dkim_tags *t, const char *name)
{
	size_t len = strlen(name);
	for (size_t i = 0; i < t->n; i++)
		if (t->v[i].nlen == len && !memcmp(t->v[i].name, name, len))
			return &t->v[i];
	return NULL;
}

bool dkim_tags_copy(const struct dkim_tag *t, char *out, size_t size)
{
	size_t k = 0;
	for (size_t i = 0; i < t->vlen; i++) {
		char c = t->val[i];
		if (tags_wsp(c) || c == '\r' || c == '\n')
			continue;
		if (k + 1 >= size)
			return false;
		out[k++] = c;
	}
	if (size == 0)
		return false;
	out[k] = '\0';
	return true;
}
