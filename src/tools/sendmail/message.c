/* message: the pure pieces of reading a message; see message.h. */
#include <string.h>
#include <strings.h>

#include "tools/sendmail/message.h"

enum message_line message_line(const char *p, size_t *n)
{
	size_t len = *n;
	if (len && p[len - 1] == '\n')
		len--;
	if (len && p[len - 1] == '\r')
		len--;
	*n = len;
	if (memchr(p, '\0', len))
		return MESSAGE_LINE_NUL;
	if (memchr(p, '\r', len))
		return MESSAGE_LINE_CR;
	return MESSAGE_LINE_OK;
}

bool message_mbox_from(const char *p, size_t n)
{
	return n >= 5 && !memcmp(p, "From ", 5);
}

enum message_kind message_kind(const char *p, size_t n)
{
	if (n && (p[0] == ' ' || p[0] == '\t'))
		return MESSAGE_FOLD;
	size_t i = 0;
	while (i < n && p[i] > 32 && p[i] < 127 && p[i] != ':')
		i++;
	while (i < n && (p[i] == ' ' || p[i] == '\t'))  /* RFC 5322 4.5.1 obs-optional */
		i++;
	return i > 0 && i < n && p[i] == ':' && p[0] != ' ' ? MESSAGE_FIELD : MESSAGE_OTHER;
}

/* The length of the field starting at h (its folded lines included). */
static size_t message_field_len(const char *h, size_t n)
{
	size_t i = 0;
	do {
		const char *lf = memchr(h + i, '\n', n - i);
		i = lf ? (size_t)(lf - h) + 1 : n;
	} while (i < n && (h[i] == ' ' || h[i] == '\t'));
	return i;
}

/* Does the field at h[0..n) have this name? */
static bool message_named(const char *h, size_t n, const char *name)
{
	size_t k = strlen(name), i = k;
	if (n <= k || strncasecmp(h, name, k))
		return false;
	while (i < n && (h[i] == ' ' || h[i] == '\t'))
		i++;
	return i < n && h[i] == ':';
}

bool message_has(const char *h, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i += message_field_len(h + i, n - i))
		if (message_named(h + i, n - i, name))
			return true;
	return false;
}

size_t message_drop(char *h, size_t n, const char *name)
{
	size_t i = 0;
	while (i < n) {
		size_t len = message_field_len(h + i, n - i);
		if (message_named(h + i, n - i, name)) {
			memmove(h + i, h + i + len, n - i - len);
			n -= len;
		} else {
			i += len;
		}
	}
	return n;
}

/* ---- RFC 5322 3.4 address lists ---- */

struct message_list {
	char text[MESSAGE_ADDR_MAX + 1];   /* the member outside <>, less CFWS */
	char angle[MESSAGE_ADDR_MAX + 1];  /* inside <> */
	size_t tlen, alen;
	bool in_angle, had_angle, over;
	message_addr_fn *fn;
	void *ctx;
	int count;
};

static void message_put(struct message_list *l, char c)
{
	char *to = l->in_angle ? l->angle : l->text;
	size_t *len = l->in_angle ? &l->alen : &l->tlen;
	if (*len == MESSAGE_ADDR_MAX)
		l->over = true;
	else
		to[(*len)++] = c;
}

/* The end of a member (',' or ';' or the end): report its address. */
static void message_member(struct message_list *l)
{
	const char *a = l->had_angle ? l->angle : l->text;
	size_t len = l->had_angle ? l->alen : l->tlen;
	if (len) {
		char out[MESSAGE_ADDR_MAX + 1];
		memcpy(out, a, len);
		out[len] = '\0';
		l->fn(l->ctx, out);
		l->count++;
	}
	l->tlen = l->alen = 0;
	l->had_angle = false;
}

/* A quoted string, comment or domain literal from v[start] (its opening
 * character; RFC 5322 3.2.2-3.2.4, 3.4.1): kept in the member, but for a
 * comment. Returns the index after it, or 0 when it is not closed. */
static size_t message_span(struct message_list *l, const char *v, size_t n, size_t start)
{
	char open = v[start], close = open == '(' ? ')' : open == '[' ? ']' : '"';
	bool keep = open != '(';
	int depth = 0;
	for (size_t i = start; i < n; i++) {
		char c = v[i];
		if (keep)
			message_put(l, c);
		if (c == '\\' && open != '[' && i + 1 < n) {   /* quoted-pair, 3.2.1 */
			if (keep)
				message_put(l, v[i + 1]);
			i++;
		} else if (open == '(' && c == '(') {
			depth++;
		} else if (c == close && (open == '(' ? --depth == 0 : i > start)) {
			return i + 1;
		}
	}
	return 0;
}

int message_addrs(const char *v, size_t n, message_addr_fn *fn, void *ctx)
{
	struct message_list l;
	memset(&l, 0, sizeof l);
	l.fn = fn;
	l.ctx = ctx;
	for (size_t i = 0; i < n;) {
		char c = v[i];
		if (c == '"' || c == '(' || c == '[') {
			size_t next = message_span(&l, v, n, i);
			if (!next)
				return -1;
			i = next;
			continue;
		}
		if (c == '<' && !l.in_angle) {
			l.in_angle = l.had_angle = true;
			l.alen = 0;
		} else if (c == '>' && l.in_angle) {
			l.in_angle = false;
		} else if (l.in_angle) {
			if (c != ' ' && c != '\t' && c != '\r' && c != '\n')
				message_put(&l, c);
		} else if (c == ':') {        /* a group's display name ends */
			l.tlen = 0;
		} else if (c == ',' || c == ';') {
			message_member(&l);
		} else if (c != ' ' && c != '\t' && c != '\r' && c != '\n') {
			message_put(&l, c);
		}
		i++;
	}
	if (l.in_angle || l.over)
		return -1;
	message_member(&l);
	return l.count;
}

int message_rcpts(const char *h, size_t n, message_addr_fn *fn, void *ctx)
{
	static const char *const names[] = { "To", "Cc", "Bcc" };
	int count = 0;
	for (size_t i = 0; i < n;) {
		size_t len = message_field_len(h + i, n - i);
		for (size_t k = 0; k < 3; k++) {
			if (!message_named(h + i, len, names[k]))
				continue;
			const char *colon = memchr(h + i, ':', len);
			int c = message_addrs(colon + 1, len - (size_t)(colon + 1 - (h + i)), fn, ctx);
			if (c < 0)
				return -1;
			count += c;
		}
		i += len;
	}
	return count;
}
