/* smtp: the protocol's shared vocabulary (see smtp.h). */
#include "net/smtp.h"

#include <limits.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "lib/util.h"

static bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

/* ---- xtext, RFC 3461 4 ---- */

static int hexval(unsigned char c)
{
	if (is_digit(c))
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* xchar = %d33-42 / %d44-60 / %d62-126: printable except "+" and "=". */
static bool is_xchar(unsigned char c)
{
	return c >= 33 && c <= 126 && c != '+' && c != '=';
}

/* hexchar = "+" 2HEXDIG. Upper case per the RFC; lower case tolerated. A
 * decoded NUL is refused since the result is a C string. */
bool smtp_xtext_decode(const char *s, size_t len, char *out, size_t n)
{
	size_t o = 0;
	int hi, lo;

	if (out == NULL || n == 0)
		return false;
	out[0] = '\0';
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (c == '+') {
			if (len - i < 3 || (hi = hexval((unsigned char)s[i + 1])) < 0 ||
			    (lo = hexval((unsigned char)s[i + 2])) < 0 ||
			    (hi | lo) == 0)
				return false;
			c = (char)(hi << 4 | lo);
			i += 2;
		} else if (!is_xchar((unsigned char)c)) {
			return false;
		}
		if (o + 1 >= n)
			return false;
		out[o++] = c;
		out[o] = '\0';
	}
	return true;
}

bool smtp_xtext_encode(const char *s, char *out, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	if (out == NULL || n == 0)
		return false;
	out[0] = '\0';
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		size_t need = is_xchar(c) ? 1 : 3;
		if (o + need >= n) {
			out[0] = '\0';
			return false;
		}
		if (need == 1) {
			out[o++] = (char)c;
		} else {
			out[o++] = '+';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	out[o] = '\0';
	return true;
}

/* ---- replies, RFC 5321 4.2 ---- */

/* Reply-line = *( Reply-code "-" [ textstring ] CRLF )
 *              Reply-code [ SP textstring ] CRLF
 * The first digit is 2 to 5 (4.2.1: a client treats others as fatal); the
 * other two are taken as any digit, and the text as any octets. */
int smtp_reply_line(const char *p, size_t n, int *code, bool *more)
{
	if (n < 3 || p[0] < '2' || p[0] > '5' || !is_digit((unsigned char)p[1]) ||
	    !is_digit((unsigned char)p[2]))
		return SMTP_REPLY_MALFORMED;
	if (n > 3 && p[3] != ' ' && p[3] != '-')
		return SMTP_REPLY_MALFORMED;
	*code = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
	*more = n > 3 && p[3] == '-';
	return 0;
}

void smtp_reply_init(struct smtp_reply *r)
{
	r->code = 0;
	r->nlines = r->last = 0;
	buf_init(&r->text);
}

void smtp_reply_reset(struct smtp_reply *r)
{
	r->code = 0;
	r->nlines = r->last = 0;
	buf_reset(&r->text);
}

void smtp_reply_free(struct smtp_reply *r)
{
	buf_free(&r->text);
	smtp_reply_init(r);
}

/* Every line of a reply carries the same code (4.2.1). */
int smtp_reply_add(struct smtp_reply *r, const char *p, size_t n)
{
	int code;
	bool more;
	if (smtp_reply_line(p, n, &code, &more) < 0)
		return SMTP_REPLY_MALFORMED;
	if (r->nlines > 0 && code != r->code)
		return SMTP_REPLY_MIXED;
	if (r->text.len + n + 1 > SMTP_REPLY_MAX)
		return SMTP_REPLY_LONG;
	if (r->nlines++ > 0)
		buf_putc(&r->text, '\n');
	r->last = r->text.len;
	buf_append(&r->text, p, n);
	r->code = code;
	return more ? 0 : 1;
}

const char *smtp_reply_error(int rc)
{
	switch (rc) {
	case SMTP_REPLY_MIXED: return "reply code changed inside a reply";
	case SMTP_REPLY_LONG: return "reply too long";
	default: return "malformed reply line";
	}
}

const char *smtp_reply_last(const struct smtp_reply *r)
{
	const char *l = buf_cstr(&r->text) + r->last;
	return strlen(l) > 4 ? l + 4 : "";
}

/* The line at *s (in a reply's text): its text after "ddd " in p and n;
 * *s moves to the next line. False at the end. */
static bool smtp_reply_next(const char **s, const char **p, size_t *n)
{
	if (!**s)
		return false;
	size_t len = strcspn(*s, "\n");
	*p = len > 4 ? *s + 4 : *s + len;
	*n = len > 4 ? len - 4 : 0;
	*s += len + ((*s)[len] == '\n');
	return true;
}

bool smtp_reply_nth(const struct smtp_reply *r, size_t i, const char **p, size_t *n)
{
	const char *s = buf_cstr(&r->text);
	while (smtp_reply_next(&s, p, n))
		if (i-- == 0)
			return true;
	return false;
}

/* A reply line's text as it may be recorded: printable ASCII and
 * well-formed UTF-8 (an SMTPUTF8 server's, RFC 6531) kept, a tab as a
 * space, any other octet (a control, one that is not UTF-8) as '?'. The
 * text goes on into the spool, logs, JSON and bounces, each of which needs
 * it clean. */
static void smtp_reply_clean(struct buf *out, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s, *e = p + n;
	while (p < e) {
		const unsigned char *run = p;
		while (p < e && *p >= 0x20 && *p < 0x7f)
			p++;
		buf_append(out, run, (size_t)(p - run));
		if (p == e)
			break;
		size_t k = *p >= 0x80 ? util_utf8_seq(p, e) : 0;
		if (k) {
			buf_append(out, p, k);
			p += k;
		} else {
			buf_putc(out, *p == '\t' ? ' ' : '?');
			p++;
		}
	}
}

void smtp_reply_join(const struct smtp_reply *r, struct buf *out, size_t max)
{
	const char *s = buf_cstr(&r->text), *p;
	size_t n;
	for (bool first = true; out->len < max && smtp_reply_next(&s, &p, &n); first = false) {
		if (!first)
			buf_putc(out, ' ');
		smtp_reply_clean(out, p, n);
	}
}

/* ---- EHLO keywords, RFC 5321 4.1.1.1 ---- */

#define EXT(kw, field) { kw, offsetof(struct smtp_ext, field) }
static const struct { const char *kw; size_t off; } smtp_ext_flags[] = {
	EXT("PIPELINING", pipelining), EXT("SIZE", size), EXT("8BITMIME", eightbitmime),
	EXT("DSN", dsn), EXT("STARTTLS", starttls), EXT("AUTH", auth),
	EXT("ENHANCEDSTATUSCODES", enhancedstatuscodes), EXT("SMTPUTF8", smtputf8),
	EXT("CHUNKING", chunking), EXT("BINARYMIME", binarymime), EXT("REQUIRETLS", requiretls),
};
#undef EXT

unsigned smtp_auth_mech(const char *name)
{
	if (!strcasecmp(name, "PLAIN"))
		return SMTP_AUTH_PLAIN;
	if (!strcasecmp(name, "LOGIN"))
		return SMTP_AUTH_LOGIN;
	return 0;
}

/* RFC 4954 3: AUTH's parameters are the mechanisms, one per word. */
static void smtp_ehlo_auth(struct smtp_ext *e, const char *p, size_t n)
{
	while (n > 0) {
		size_t w = 0;
		while (w < n && p[w] != ' ')
			w++;
		char mech[32];
		if (w > 0 && w < sizeof mech) {
			memcpy(mech, p, w);
			mech[w] = '\0';
			e->auth_mechs |= smtp_auth_mech(mech);
		}
		p += w + (w < n);
		n -= w + (w < n);
	}
}

/* RFC 1870 3: "SIZE" [SP number]; a number too big for 64 bits is none. */
static void smtp_ehlo_size(struct smtp_ext *e, const char *p, size_t n)
{
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++) {
		if (!is_digit((unsigned char)p[i]) || v > (UINT64_MAX - 9) / 10)
			return;
		v = v * 10 + (uint64_t)(p[i] - '0');
	}
	e->size_max = v;
}

/* ehlo-line = ehlo-keyword *( SP ehlo-param ), keywords in any case. The
 * "AUTH=PLAIN LOGIN" form that servers still send for clients older than
 * RFC 2554 counts as AUTH. */
void smtp_ehlo_line(struct smtp_ext *e, const char *p, size_t n)
{
	size_t k = 0;
	while (k < n && p[k] != ' ' && p[k] != '=')
		k++;
	const char *params = p + k + (k < n);
	size_t np = n - k - (k < n);
	for (size_t i = 0; i < sizeof smtp_ext_flags / sizeof smtp_ext_flags[0]; i++) {
		const char *kw = smtp_ext_flags[i].kw;
		if (strlen(kw) != k || strncasecmp(p, kw, k))
			continue;
		*(bool *)((char *)e + smtp_ext_flags[i].off) = true;
		if (!strcmp(kw, "AUTH"))
			smtp_ehlo_auth(e, params, np);
		else if (!strcmp(kw, "SIZE"))
			smtp_ehlo_size(e, params, np);
	}
}

void smtp_ehlo_parse(const struct smtp_reply *r, struct smtp_ext *e)
{
	memset(e, 0, sizeof *e);
	const char *s = buf_cstr(&r->text), *p;
	size_t n;
	if (!smtp_reply_next(&s, &p, &n))
		return;
	while (smtp_reply_next(&s, &p, &n))
		smtp_ehlo_line(e, p, n);
}

/* ---- the envelope's commands ---- */

/* RFC 1870 SIZE, RFC 6152 and RFC 3030 3 BODY, RFC 3461 4.3-4.4 RET and ENVID, RFC 6531
 * SMTPUTF8, RFC 8689 REQUIRETLS. */
void smtp_mail_line(const struct smtp_mail *m, const struct smtp_ext *e, struct buf *out)
{
	buf_printf(out, "MAIL FROM:<%s>", m->sender);
	if (e->size)
		buf_printf(out, " SIZE=%llu", (unsigned long long)m->size);
	if (e->eightbitmime && m->body == BODY_8BITMIME)
		buf_puts(out, " BODY=8BITMIME");
	else if (e->binarymime && m->body == BODY_BINARYMIME)   /* RFC 3030 3 */
		buf_puts(out, " BODY=BINARYMIME");
	if (e->dsn && m->ret != RET_UNSET)
		buf_puts(out, m->ret == RET_FULL ? " RET=FULL" : " RET=HDRS");
	char x[SMTP_ENVID_MAX * 3 + 1];
	if (e->dsn && m->envid && m->envid[0] && smtp_xtext_encode(m->envid, x, sizeof x))
		buf_printf(out, " ENVID=%s", x);
	if (e->smtputf8 && m->smtputf8)
		buf_puts(out, " SMTPUTF8");
	if (e->requiretls && m->requiretls)
		buf_puts(out, " REQUIRETLS");
}

/* RFC 3461 4.1-4.2 NOTIFY and ORCPT. */
void smtp_rcpt_line(const struct smtp_rcpt *r, const struct smtp_ext *e, struct buf *out)
{
	static const char *const names[] = { "NEVER", "SUCCESS", "FAILURE", "DELAY" };
	buf_printf(out, "RCPT TO:<%s>", r->addr);
	const char *sep = " NOTIFY=";
	for (int i = 0; e->dsn && i < 4; i++)
		if (r->notify & (1u << i)) {
			buf_printf(out, "%s%s", sep, names[i]);
			sep = ",";
		}
	const char *semi = r->orcpt ? strchr(r->orcpt, ';') : NULL;
	char x[SMTP_ORCPT_MAX * 3 + 1];
	if (e->dsn && semi && smtp_xtext_encode(semi + 1, x, sizeof x))
		buf_printf(out, " ORCPT=%.*s;%s", (int)(semi - r->orcpt), r->orcpt, x);
}

/* ---- base64, RFC 4648 4 ---- */

#define SMTP_B64_STEP (48 * 1024)   /* octets per EVP call: a multiple of 3 */

void smtp_b64_encode(const void *p, size_t n, struct buf *out)
{
	const unsigned char *s = p;
	buf_reserve(out, (n + 2) / 3 * 4 + 1);
	do {
		size_t k = n < SMTP_B64_STEP ? n : SMTP_B64_STEP;
		int w = EVP_EncodeBlock((unsigned char *)out->data + out->len, s, (int)k);
		out->len += (size_t)w;
		s += k;
		n -= k;
	} while (n > 0);
	out->data[out->len] = '\0';
}

/* The value of a base64 digit, or -1. */
static int smtp_b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (is_digit(c))
		return c - '0' + 52;
	return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* The alphabet, a multiple of 4, padding only at the end, and the bits
 * that padding leaves over all zero (RFC 4648 3.5). */
static bool smtp_b64_strict(const char *s, size_t len, size_t *pad)
{
	if (len % 4 != 0)
		return false;
	*pad = 0;
	while (*pad < 2 && *pad < len && s[len - 1 - *pad] == '=')
		(*pad)++;
	for (size_t i = 0; i < len - *pad; i++)
		if (smtp_b64_value((unsigned char)s[i]) < 0)
			return false;
	if (*pad == 0)
		return true;
	int last = smtp_b64_value((unsigned char)s[len - *pad - 1]);
	return (last & (*pad == 2 ? 0x0f : 0x03)) == 0;
}

long smtp_b64_decode(const char *s, size_t len, unsigned char *out, size_t n)
{
	size_t pad;
	if (len > INT_MAX || !smtp_b64_strict(s, len, &pad) || len / 4 * 3 + 1 > n)
		return -1;
	int got = EVP_DecodeBlock(out, (const unsigned char *)s, (int)len);
	if (got < 0)
		return -1;
	size_t dlen = (size_t)got - pad;   /* EVP counts the padding as octets */
	out[dlen] = '\0';
	return (long)dlen;
}

/* ---- AUTH responses ---- */

void smtp_auth_plain(const char *user, const char *pass, struct buf *out)
{
	struct buf raw = BUF_INIT;
	buf_putc(&raw, '\0');
	buf_puts(&raw, user);
	buf_putc(&raw, '\0');
	buf_puts(&raw, pass);
	smtp_b64_encode(raw.data, raw.len, out);
	explicit_bzero(raw.data, raw.len);
	buf_free(&raw);
}

void smtp_auth_login(const char *secret, struct buf *out)
{
	smtp_b64_encode(secret, strlen(secret), out);
}

/* ---- dot-stuffing, RFC 5321 4.5.2 ---- */

/* Runs of p go out whole; they end only before an octet put in: a dot at
 * the beginning of a line, or the CR of a bare LF. */
void smtp_stuff(struct smtp_stuff *s, const char *p, size_t n, smtp_sink_fn *sink, void *arg)
{
	size_t run = 0, i = 0;
	while (i < n) {
		if (!s->mid && p[i] == '.') {
			sink(arg, p + run, i - run);
			sink(arg, ".", 1);
			run = i;
		}
		const char *lf = memchr(p + i, '\n', n - i);
		if (!lf) {
			s->mid = true;
			s->cr = p[n - 1] == '\r';
			break;
		}
		size_t e = (size_t)(lf - p);
		bool crlf = e > 0 ? p[e - 1] == '\r' : s->cr;   /* the octet before the LF */
		if (!crlf) {
			sink(arg, p + run, e - run);
			sink(arg, "\r", 1);
			run = e;
		}
		i = e + 1;
		s->mid = s->cr = false;
	}
	if (run < n)
		sink(arg, p + run, n - run);
}

void smtp_stuff_end(struct smtp_stuff *s, smtp_sink_fn *sink, void *arg)
{
	if (s->cr)
		sink(arg, "\n", 1);
	else if (s->mid)
		sink(arg, "\r\n", 2);
	sink(arg, ".\r\n", 3);
	s->mid = s->cr = false;
}

/* ---- BDAT, RFC 3030 2 ---- */

void smtp_bdat_line(uint64_t size, bool last, char *out, size_t n)
{
	snprintf(out, n, "BDAT %llu%s", (unsigned long long)size, last ? " LAST" : "");
}

uint64_t smtp_bdat_next(uint64_t total, uint64_t sent, uint64_t max, bool *last)
{
	uint64_t left = sent < total ? total - sent : 0;
	uint64_t n = left < max ? left : max;
	*last = n == left;
	return n;
}
