/* msg: a message streamed through DKIM (see msg.h). */
#include "dkim/msg.h"

#include <string.h>
#include <strings.h>

#include "lib/addr.h"
#include "lib/log.h"
#include "lib/util.h"

/* Where the header scanner is: at a line's beginning (BOL), after a CR
 * there (BOL_CR: an LF next ends the block), inside a line, after a CR
 * inside one. */
enum { H_BOL, H_BOL_CR, H_MID, H_CR };

void dkim_msg_init(struct dkim_msg *m, dkim_head_fn on_head, void *ctx)
{
	memset(m, 0, sizeof *m);
	m->state = H_BOL;
	m->on_head = on_head;
	m->ctx = ctx;
}

void dkim_msg_free(struct dkim_msg *m)
{
	for (size_t i = 0; i < m->nhash; i++)
		EVP_MD_CTX_free(m->hash[i].md);
	free(m->f);
	buf_free(&m->head);
	memset(m, 0, sizeof *m);
}

/* ---- the body ---- */

static void msg_hash_sink(void *ctx, const char *p, size_t n)
{
	struct dkim_hash *h = ctx;
	uint64_t k = n;
	h->len += n;
	if (h->limited)
		k = h->fed >= h->limit ? 0 : h->limit - h->fed < k ? h->limit - h->fed : k;
	if (k)
		EVP_DigestUpdate(h->md, p, (size_t)k);
	h->fed += k;
}

int dkim_msg_add_hash(struct dkim_msg *m, enum dkim_canon c, bool limited, uint64_t limit)
{
	if (m->nhash == DKIM_SIGS_MAX)
		return -1;
	struct dkim_hash *h = &m->hash[m->nhash];
	memset(h, 0, sizeof *h);
	h->md = EVP_MD_CTX_new();
	if (!h->md || EVP_DigestInit_ex(h->md, EVP_sha256(), NULL) != 1)
		log_panic("dkim: cannot start SHA-256");
	h->limited = limited;
	h->limit = limit;
	dkim_body_init(&h->canon, c, msg_hash_sink, h);
	return (int)m->nhash++;
}

static void msg_body(struct dkim_msg *m, const char *p, size_t n)
{
	for (size_t i = 0; i < m->nhash; i++)
		dkim_body_feed(&m->hash[i].canon, p, n);
}

/* ---- the header block ---- */

/* A field starts at each line that does not begin with WSP (RFC 5322
 * 2.2.3: those continue the field above). */
static void msg_add_field(struct dkim_msg *m, size_t off)
{
	if (m->nf == m->capf) {
		m->capf = m->capf ? m->capf * 2 : 32;
		m->f = util_xrealloc(m->f, m->capf, sizeof *m->f);
	}
	const char *s = m->head.data + off;
	size_t line = strcspn(s, "\r"), colon = strcspn(s, ":");
	size_t nlen = colon < line ? colon : 0;
	while (nlen > 0 && (s[nlen - 1] == ' ' || s[nlen - 1] == '\t'))
		nlen--;
	m->f[m->nf++] = (struct dkim_field){ off, 0, nlen };
}

static void msg_split(struct dkim_msg *m)
{
	const char *h = buf_cstr(&m->head);
	size_t n = m->head.len;
	for (size_t i = 0; i < n;) {
		if (i == 0 || (h[i] != ' ' && h[i] != '\t'))
			msg_add_field(m, i);
		const char *crlf = memmem(h + i, n - i, "\r\n", 2);
		i = crlf ? (size_t)(crlf - h) + 2 : n;
		m->f[m->nf - 1].len = i - m->f[m->nf - 1].off;
	}
}

static void msg_head_done(struct dkim_msg *m)
{
	m->body = true;
	if (m->too_big)
		return;
	msg_split(m);
	if (m->on_head)
		m->on_head(m->ctx, m);
}

/* Scan p for the empty line that ends the header block: the octets up to
 * and with it, or n; *end set when found. */
static size_t msg_scan(struct dkim_msg *m, const char *p, size_t n, bool *end)
{
	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		switch (m->state) {
		case H_BOL:
			m->state = c == '\r' ? H_BOL_CR : H_MID;
			break;
		case H_BOL_CR:
			if (c == '\n') {
				*end = true;
				return i + 1;
			}
			m->state = c == '\r' ? H_CR : H_MID;
			break;
		case H_MID:
			m->state = c == '\r' ? H_CR : H_MID;
			break;
		case H_CR:
			m->state = c == '\n' ? H_BOL : c == '\r' ? H_CR : H_MID;
			break;
		}
	}
	return n;
}

/* Header octets: kept while they fit; the empty line's CRLF is not. */
static void msg_keep(struct dkim_msg *m, const char *p, size_t n, bool end)
{
	if (m->too_big)
		return;
	if (m->head.len + n > DKIM_HEADER_MAX + 2) {
		m->too_big = true;
		buf_free(&m->head);
		return;
	}
	buf_append(&m->head, p, n);
	if (end) {
		m->head.len -= 2;   /* the last field keeps its own CRLF */
		m->head.data[m->head.len] = '\0';
	}
	if (m->head.len > DKIM_HEADER_MAX)
		m->too_big = true;
}

void dkim_msg_feed(struct dkim_msg *m, const char *p, size_t n)
{
	if (m->body) {
		if (!m->too_big)
			msg_body(m, p, n);
		return;
	}
	bool end = false;
	size_t k = msg_scan(m, p, n, &end);
	msg_keep(m, p, k, end);
	if (!end)
		return;
	msg_head_done(m);
	if (!m->too_big && k < n)
		msg_body(m, p + k, n - k);
}

void dkim_msg_set_head(struct dkim_msg *m, const char *p, size_t n)
{
	buf_reset(&m->head);
	m->nf = 0;
	m->too_big = n > DKIM_HEADER_MAX;
	if (m->too_big)
		return;
	buf_append(&m->head, p, n);
	msg_split(m);
}

void dkim_msg_end(struct dkim_msg *m)
{
	if (!m->body)
		msg_head_done(m);
	if (m->too_big)
		return;
	for (size_t i = 0; i < m->nhash; i++) {
		struct dkim_hash *h = &m->hash[i];
		dkim_body_end(&h->canon);
		unsigned len = 0;
		if (EVP_DigestFinal_ex(h->md, h->sum, &len) != 1 || len != sizeof h->sum)
			log_panic("dkim: SHA-256 failed");
	}
}

/* ---- fields ---- */

bool dkim_msg_is(const struct dkim_msg *m, size_t k, const char *name)
{
	size_t len = strlen(name);
	return m->f[k].nlen == len && !strncasecmp(m->head.data + m->f[k].off, name, len);
}

size_t dkim_msg_count(const struct dkim_msg *m, const char *name)
{
	size_t n = 0;
	for (size_t k = 0; k < m->nf; k++)
		n += dkim_msg_is(m, k, name);
	return n;
}

void dkim_msg_select(const struct dkim_msg *m, enum dkim_canon c, const char *const *names,
                     size_t n, struct buf *out)
{
	bool *used = util_xcalloc(m->nf ? m->nf : 1, sizeof *used);
	for (size_t i = 0; i < n; i++) {
		for (size_t k = m->nf; k-- > 0;) {
			if (used[k] || !dkim_msg_is(m, k, names[i]))
				continue;
			used[k] = true;
			dkim_canon_header(c, m->head.data + m->f[k].off, m->f[k].len, true, out);
			break;
		}
	}
	free(used);
}

/* ---- the author's domain ---- */

/* A comment (RFC 5322 3.2.2), nested, with quoted pairs: the index after
 * it, or n when it does not end. */
static size_t msg_comment(const char *v, size_t n, size_t i)
{
	int depth = 0;
	for (; i < n; i++) {
		if (v[i] == '\\')
			i++;
		else if (v[i] == '(')
			depth++;
		else if (v[i] == ')' && --depth == 0)
			return i + 1;
	}
	return n + 1;
}

/* A quoted string: the index after it (n + 1: it does not end). Its
 * contents never count as an address's "@". */
static size_t msg_quoted(const char *v, size_t n, size_t i)
{
	for (i++; i < n; i++) {
		if (v[i] == '\\')
			i++;
		else if (v[i] == '"')
			return i + 1;
	}
	return n + 1;
}

struct msg_from {
	char spec[512];            /* the addr-spec's octets, comments and quotes out */
	size_t len;
	bool angle, closed;        /* inside <...>; after it */
};

/* One octet of a mailbox outside comments and quoted strings; false when
 * it makes no single mailbox (a list, a group, text after "<...>"). */
static bool msg_from_octet(struct msg_from *f, char c)
{
	if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
		return true;
	if (c == ',' || c == ';' || (c == ':' && !f->angle) || f->closed)
		return false;
	if (c == '<' || c == '>') {
		if ((c == '<') == f->angle)
			return false;
		f->len = c == '<' ? 0 : f->len;   /* the display name is not the address */
		f->closed = c == '>';
		f->angle = c == '<';
		return true;
	}
	if (f->len + 1 >= sizeof f->spec)
		return false;
	f->spec[f->len++] = c;
	return true;
}

/* RFC 5322 3.4 mailbox: name-addr ("Name <addr>") or addr-spec, with
 * comments anywhere; the domain after the last "@". */
enum dkim_status dkim_from_domain(const char *v, size_t n, char *out, size_t size)
{
	struct msg_from f = { .len = 0 };
	for (size_t i = 0; i < n;) {
		if (v[i] == '(' || v[i] == '"') {
			if (v[i] == '"' && !f.closed && f.len + 1 < sizeof f.spec)
				f.spec[f.len++] = 'q';   /* a quoted local part stands for itself */
			i = v[i] == '(' ? msg_comment(v, n, i) : msg_quoted(v, n, i);
			if (i > n)
				return DKIM_FROM_SYNTAX;
		} else if (!msg_from_octet(&f, v[i++])) {
			return DKIM_FROM_SYNTAX;
		}
	}
	f.spec[f.len] = '\0';
	const char *at = strrchr(f.spec, '@');
	if (f.angle || !at || at == f.spec || strlen(at + 1) >= size || !addr_domain_valid(at + 1) ||
	    at[1] == '[')
		return DKIM_FROM_SYNTAX;
	memcpy(out, at + 1, strlen(at + 1) + 1);
	util_lower(out);
	return DKIM_OK;
}

enum dkim_status dkim_msg_from_domain(const struct dkim_msg *m, char *out, size_t size)
{
	size_t k = m->nf;
	for (size_t i = 0; i < m->nf; i++) {
		if (!dkim_msg_is(m, i, "from"))
			continue;
		if (k != m->nf)
			return DKIM_NO_FROM;   /* several */
		k = i;
	}
	if (k == m->nf)
		return DKIM_NO_FROM;
	const char *f = m->head.data + m->f[k].off;
	const char *colon = memchr(f, ':', m->f[k].len);
	return dkim_from_domain(colon + 1, m->f[k].len - (size_t)(colon + 1 - f), out, size);
}
