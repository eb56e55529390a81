/* sign: RFC 6376 5 signing (see sign.h). */
#include "dkim/sign.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/rsa.h>

#include "dkim/key.h"
#include "dkim/sig.h"
#include "lib/log.h"
#include "lib/util.h"
#include "net/smtp.h"

struct dkim_sign {
	struct dkim_msg msg;       /* one body hash: relaxed, whole */
};

struct dkim_sign *dkim_sign_new(void)
{
	struct dkim_sign *s = util_xcalloc(1, sizeof *s);
	dkim_msg_init(&s->msg, NULL, NULL);
	dkim_msg_add_hash(&s->msg, DKIM_RELAXED, false, 0);
	return s;
}

void dkim_sign_feed(struct dkim_sign *s, const char *p, size_t n)
{
	dkim_msg_feed(&s->msg, p, n);
}

void dkim_sign_head(struct dkim_sign *s, const char *p, size_t n)
{
	dkim_msg_set_head(&s->msg, p, n);
}

enum dkim_status dkim_sign_end(struct dkim_sign *s, char *domain, size_t size)
{
	dkim_msg_end(&s->msg);
	if (s->msg.too_big)
		return DKIM_HEADER_TOO_BIG;
	return dkim_msg_from_domain(&s->msg, domain, size);
}

void dkim_sign_free(struct dkim_sign *s)
{
	if (!s)
		return;
	dkim_msg_free(&s->msg);
	free(s);
}

/* ---- h= ---- */

/* RFC 6376 5.4.1's recommended fields, and what the brief of tern adds
 * (Message-ID and the MIME fields); Resent-* and List-* by prefix. */
static const char *const sign_set[] = {
	"from", "reply-to", "subject", "date", "to", "cc", "in-reply-to", "references",
	"message-id", "mime-version", "content-type", "content-transfer-encoding",
};
static const char *const sign_prefixes[] = { "resent-", "list-" };
/* Instances of one name listed, at most (the bottom ones are signed). */
#define SIGN_SAME_MAX 8

/* RFC 6376 5.4.2, 8.15: listing a field once more than it occurs signs
 * its absence, so a copy added in transit breaks the signature. */
static bool sign_over(const char *name)
{
	return !strcmp(name, "from") || !strcmp(name, "subject") || !strcmp(name, "date");
}

/* Append name times (the bottom SIGN_SAME_MAX at most), while h= stays
 * within what a verifier takes (DKIM_NAMES_MAX names, 2 KiB). */
static void sign_name(struct buf *out, const char *name, size_t len, size_t times)
{
	size_t names = out->len ? 1 : 0;
	for (size_t i = 0; i < out->len; i++)
		names += out->data[i] == ':';
	for (size_t i = 0; i < times && i < SIGN_SAME_MAX; i++) {
		if (names++ >= DKIM_NAMES_MAX || out->len + len + 1 >= 2000)
			return;
		if (out->len)
			buf_putc(out, ':');
		for (size_t k = 0; k < len; k++)
			buf_putc(out, (name[k] >= 'A' && name[k] <= 'Z') ? (char)(name[k] + 32) : name[k]);
	}
}

/* Field k's name, if it starts with one of sign_prefixes, is made of
 * printable octets a tag value may hold, and is its first occurrence. */
static bool sign_prefixed(const struct dkim_msg *m, size_t k)
{
	const char *name = m->head.data + m->f[k].off;
	size_t len = m->f[k].nlen, i = 0;
	while (i < sizeof sign_prefixes / sizeof sign_prefixes[0] &&
	       (len <= strlen(sign_prefixes[i]) ||
	        strncasecmp(name, sign_prefixes[i], strlen(sign_prefixes[i]))))
		i++;
	if (i == sizeof sign_prefixes / sizeof sign_prefixes[0])
		return false;
	for (i = 0; i < len; i++)
		if (name[i] <= ' ' || name[i] > '~' || name[i] == ';' || name[i] == ':')
			return false;
	for (size_t j = 0; j < k; j++)
		if (m->f[j].nlen == len && !strncasecmp(m->head.data + m->f[j].off, name, len))
			return false;
	return true;
}

void dkim_sign_names(const struct dkim_msg *m, struct buf *out)
{
	for (size_t i = 0; i < sizeof sign_set / sizeof sign_set[0]; i++)
		sign_name(out, sign_set[i], strlen(sign_set[i]),
		          dkim_msg_count(m, sign_set[i]) + sign_over(sign_set[i]));
	for (size_t k = 0; k < m->nf; k++) {
		if (!sign_prefixed(m, k))
			continue;
		char name[256];
		snprintf(name, sizeof name, "%.*s", (int)m->f[k].nlen, m->head.data + m->f[k].off);
		sign_name(out, name, strlen(name), dkim_msg_count(m, name));
	}
}

/* ---- the field ---- */

/* A line of the field being written: its column (a tab counts 8). */
struct sign_fold {
	struct buf *out;
	size_t col;
};

/* A new line: CRLF TAB, FWS (RFC 6376 3.2). */
static void sign_fold_line(struct sign_fold *f)
{
	buf_puts(f->out, "\r\n\t");
	f->col = 8;
}

/* Append a piece, after sep on the same line when it fits before
 * DKIM_FOLD, else on a new line. */
static void sign_piece(struct sign_fold *f, const char *sep, const char *p, size_t n)
{
	if (f->col + strlen(sep) + n > DKIM_FOLD) {
		sign_fold_line(f);
	} else {
		buf_puts(f->out, sep);
		f->col += strlen(sep);
	}
	buf_append(f->out, p, n);
	f->col += n;
}

/* h=: one piece per name, so a fold may fall after any colon. */
static void sign_h(struct sign_fold *f, const char *h)
{
	char piece[300];
	for (const char *p = h; *p;) {
		size_t n = strcspn(p, ":");
		snprintf(piece, sizeof piece, "%s%.*s%s", p == h ? "h=" : "", (int)n, p,
		         p[n] ? ":" : ";");
		sign_piece(f, p == h ? " " : "", piece, strlen(piece));
		p += n + (p[n] == ':');
	}
}

/* Everything but b='s value: "DKIM-Signature: v=1; ... b=". */
static void sign_head(struct sign_fold *f, const char *d, const char *sel, enum dkim_alg alg,
                      int64_t t, const char *h, const char *bh)
{
	char piece[320];
	buf_puts(f->out, "DKIM-Signature:");
	f->col = 15;
	const char *fixed[] = { "v=1;", NULL, "c=relaxed/relaxed;" };
	snprintf(piece, sizeof piece, "a=%s;", dkim_alg_name(alg));
	for (size_t i = 0; i < 3; i++)
		sign_piece(f, " ", fixed[i] ? fixed[i] : piece, strlen(fixed[i] ? fixed[i] : piece));
	snprintf(piece, sizeof piece, "d=%s;", d);
	sign_piece(f, " ", piece, strlen(piece));
	snprintf(piece, sizeof piece, "s=%s;", sel);
	sign_piece(f, " ", piece, strlen(piece));
	snprintf(piece, sizeof piece, "t=%lld;", (long long)t);
	sign_piece(f, " ", piece, strlen(piece));
	sign_h(f, h);
	snprintf(piece, sizeof piece, "bh=%s;", bh);
	sign_piece(f, " ", piece, strlen(piece));
	sign_piece(f, " ", "b=", 2);
}

/* b='s value, as much on each line as fits. */
static void sign_b(struct sign_fold *f, const char *b)
{
	for (size_t n = strlen(b); n > 0;) {
		size_t room = f->col < DKIM_FOLD ? DKIM_FOLD - f->col : 0;
		if (room == 0) {
			sign_fold_line(f);
			continue;
		}
		size_t k = n < room ? n : room;
		buf_append(f->out, b, k);
		f->col += k;
		b += k;
		n -= k;
	}
	buf_puts(f->out, "\r\n");
}

bool dkim_sign_hash(EVP_PKEY *key, const unsigned char hash[32], unsigned char *sig,
                    size_t *len)
{
	enum dkim_alg alg;
	bool ok = false;
	if (!dkim_key_alg(key, &alg) || (size_t)EVP_PKEY_get_size(key) > *len)
		return false;
	if (alg == DKIM_ED25519_SHA256) {
		EVP_MD_CTX *mc = EVP_MD_CTX_new();
		ok = mc && EVP_DigestSignInit(mc, NULL, NULL, NULL, key) == 1 &&
		     EVP_DigestSign(mc, sig, len, hash, 32) == 1;
		EVP_MD_CTX_free(mc);
	} else {
		EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new(key, NULL);
		ok = pc && EVP_PKEY_sign_init(pc) == 1 &&
		     EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PADDING) == 1 &&
		     EVP_PKEY_CTX_set_signature_md(pc, EVP_sha256()) == 1 &&
		     EVP_PKEY_sign(pc, sig, len, hash, 32) == 1;
		EVP_PKEY_CTX_free(pc);
	}
	return ok;
}

/* RFC 6376 3.7: the selected fields, then this field with b= empty and
 * no CRLF, both relaxed; their SHA-256. */
static void sign_data_hash(struct dkim_sign *s, const char *h, const struct buf *field,
                           unsigned char out[32])
{
	char copy[sizeof ((struct dkim_sig *)0)->hbuf];
	const char *names[DKIM_NAMES_MAX];
	size_t n = 0;
	snprintf(copy, sizeof copy, "%s", h);
	for (char *save = NULL, *p = strtok_r(copy, ":", &save); p && n < DKIM_NAMES_MAX;
	     p = strtok_r(NULL, ":", &save))
		names[n++] = p;
	struct buf data = BUF_INIT;
	dkim_msg_select(&s->msg, DKIM_RELAXED, names, n, &data);
	dkim_canon_header(DKIM_RELAXED, field->data, field->len, false, &data);
	unsigned len = 0;
	if (EVP_Digest(data.data, data.len, out, &len, EVP_sha256(), NULL) != 1)
		log_panic("dkim: SHA-256 failed");
	buf_free(&data);
}

enum dkim_status dkim_sign_field(struct dkim_sign *s, const char *d, const char *sel,
                                 EVP_PKEY *key, int64_t t, struct buf *out)
{
	enum dkim_alg alg;
	if (!dkim_key_alg(key, &alg))
		return DKIM_SIGN_FAILED;
	struct buf h = BUF_INIT, bh = BUF_INIT, field = BUF_INIT, b = BUF_INIT;
	dkim_sign_names(&s->msg, &h);
	smtp_b64_encode(s->msg.hash[0].sum, sizeof s->msg.hash[0].sum, &bh);
	struct sign_fold f = { &field, 0 };
	sign_head(&f, d, sel, alg, t, buf_cstr(&h), buf_cstr(&bh));
	unsigned char hash[32], sig[DKIM_SIG_B_MAX];
	size_t len = sizeof sig;
	sign_data_hash(s, buf_cstr(&h), &field, hash);
	bool ok = dkim_sign_hash(key, hash, sig, &len);
	if (ok) {
		smtp_b64_encode(sig, len, &b);
		sign_b(&f, buf_cstr(&b));
		buf_append(out, field.data, field.len);
	}
	buf_free(&h);
	buf_free(&bh);
	buf_free(&field);
	buf_free(&b);
	return ok ? DKIM_OK : DKIM_SIGN_FAILED;
}
