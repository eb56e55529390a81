/* verify: RFC 6376 6 verification (see verify.h). */
#include "dkim/verify.h"

#include <string.h>
#include <strings.h>

#include <openssl/rsa.h>

#include "dkim/key.h"
#include "dkim/msg.h"
#include "lib/log.h"
#include "lib/util.h"

struct verify_one {
	struct dkim_sig sig;
	enum dkim_status st;       /* of the field alone (6.1.1) */
	size_t field;              /* its index in the header block */
	int hash;                  /* its body hash, -1 when none */
};

/* The signatures' state (4.5 KB each) is allocated when the header block
 * has any: most mail is verified for none, and zeroing DKIM_SIGS_MAX of
 * them for every message was the largest cost of an unsigned message. */
struct dkim_verify {
	struct dkim_msg msg;
	size_t n;
	struct verify_one *s;
};

/* The header block is whole: each signature parsed, and the sound ones
 * given their body hash before the body starts. */
static void verify_head(void *ctx, struct dkim_msg *m)
{
	struct dkim_verify *v = ctx;
	size_t want = dkim_msg_count(m, "dkim-signature");
	if (!want)
		return;
	v->s = util_xcalloc(want < DKIM_SIGS_MAX ? want : DKIM_SIGS_MAX, sizeof *v->s);
	for (size_t k = 0; k < m->nf && v->n < DKIM_SIGS_MAX; k++) {
		if (!dkim_msg_is(m, k, "dkim-signature"))
			continue;
		struct verify_one *o = &v->s[v->n++];
		o->field = k;
		o->hash = -1;
		o->st = dkim_sig_parse(m->head.data + m->f[k].off, m->f[k].len, &o->sig);
		if (o->st == DKIM_OK)
			o->hash = dkim_msg_add_hash(m, o->sig.bc, o->sig.has_l, o->sig.l);
	}
}

struct dkim_verify *dkim_verify_new(void)
{
	struct dkim_verify *v = util_xrealloc(NULL, 1, sizeof *v);   /* msg_init zeroes msg */
	dkim_msg_init(&v->msg, verify_head, v);
	v->n = 0;
	v->s = NULL;
	return v;
}

void dkim_verify_feed(struct dkim_verify *v, const char *p, size_t n)
{
	dkim_msg_feed(&v->msg, p, n);
}

void dkim_verify_end(struct dkim_verify *v)
{
	dkim_msg_end(&v->msg);
}

void dkim_verify_free(struct dkim_verify *v)
{
	if (!v)
		return;
	dkim_msg_free(&v->msg);
	free(v->s);
	free(v);
}

enum dkim_status dkim_verify_message(const struct dkim_verify *v)
{
	return v->msg.too_big ? DKIM_HEADER_TOO_BIG : DKIM_OK;
}

size_t dkim_verify_count(const struct dkim_verify *v)
{
	return v->n;
}

enum dkim_status dkim_verify_sig(const struct dkim_verify *v, size_t k,
                                 const struct dkim_sig **sig)
{
	*sig = &v->s[k].sig;
	return v->s[k].st;
}

bool dkim_verify_hash(EVP_PKEY *key, enum dkim_alg alg, const unsigned char hash[32],
                      const unsigned char *sig, size_t len)
{
	bool ok = false;
	if (alg == DKIM_ED25519_SHA256) {
		EVP_MD_CTX *mc = EVP_MD_CTX_new();
		ok = mc && EVP_DigestVerifyInit(mc, NULL, NULL, NULL, key) == 1 &&
		     EVP_DigestVerify(mc, sig, len, hash, 32) == 1;
		EVP_MD_CTX_free(mc);
	} else {
		EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new(key, NULL);
		ok = pc && EVP_PKEY_verify_init(pc) == 1 &&
		     EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PADDING) == 1 &&
		     EVP_PKEY_CTX_set_signature_md(pc, EVP_sha256()) == 1 &&
		     EVP_PKEY_verify(pc, sig, len, hash, 32) == 1;
		EVP_PKEY_CTX_free(pc);
	}
	return ok;
}

/* The key against the signature (RFC 6376 6.1.2): its type the
 * algorithm's (RFC 8463 4), and with t=s, i= in d= itself (3.6.1). */
static enum dkim_status verify_key(const struct dkim_sig *sig, const struct dkim_key *key)
{
	if (key->alg != sig->alg)
		return DKIM_KEY_TYPE;
	const char *at = strrchr(sig->i, '@');
	if (key->strict && strcasecmp(at ? at + 1 : "", sig->d))
		return DKIM_KEY_STRICT;
	return DKIM_OK;
}

/* 6.1.3: the body hash, for l= octets when given (which must exist). */
static enum dkim_status verify_body(const struct dkim_verify *v, const struct verify_one *o)
{
	const struct dkim_hash *h = &v->msg.hash[o->hash];
	if (o->sig.has_l && o->sig.l > h->len)
		return DKIM_SIG_LENGTH;
	if (o->sig.bhlen != sizeof h->sum || memcmp(o->sig.bh, h->sum, sizeof h->sum))
		return DKIM_BODY_HASH;
	return DKIM_OK;
}

/* 3.7: the fields h= names, then this field with b='s value emptied (its
 * white space too) and no CRLF, canonicalized; their SHA-256. */
static void verify_data_hash(const struct dkim_verify *v, const struct verify_one *o,
                             unsigned char out[32])
{
	const struct dkim_msg *m = &v->msg;
	const char *names[DKIM_NAMES_MAX];
	for (size_t i = 0; i < o->sig.nh; i++)
		names[i] = dkim_sig_name(&o->sig, i);
	struct buf data = BUF_INIT, self = BUF_INIT;
	dkim_msg_select(m, o->sig.hc, names, o->sig.nh, &data);
	const char *f = m->head.data + m->f[o->field].off;
	buf_append(&self, f, o->sig.b_from);
	buf_append(&self, f + o->sig.b_to, m->f[o->field].len - o->sig.b_to);
	dkim_canon_header(o->sig.hc, self.data, self.len, false, &data);
	unsigned len = 0;
	if (EVP_Digest(data.data ? data.data : "", data.len, out, &len, EVP_sha256(), NULL) != 1)
		log_panic("dkim: SHA-256 failed");
	buf_free(&data);
	buf_free(&self);
}

enum dkim_status dkim_verify_check(struct dkim_verify *v, size_t k, const char *rec, size_t n,
                                   int64_t now)
{
	struct verify_one *o = &v->s[k];
	if (o->st != DKIM_OK || v->msg.too_big)
		return v->msg.too_big ? DKIM_HEADER_TOO_BIG : o->st;
	enum dkim_status st = dkim_sig_times(&o->sig, now);
	if (st != DKIM_OK)
		return st;
	struct dkim_key key;
	st = dkim_key_parse(rec, n, &key);
	if (st == DKIM_OK)
		st = verify_key(&o->sig, &key);
	if (st == DKIM_OK && o->hash < 0)
		st = DKIM_HEADER_TOO_BIG;      /* not reached: a hash per signature */
	if (st == DKIM_OK)
		st = verify_body(v, o);
	if (st == DKIM_OK) {
		unsigned char hash[32];
		verify_data_hash(v, o, hash);
		if (!dkim_verify_hash(key.pkey, o->sig.alg, hash, o->sig.b, o->sig.blen))
			st = DKIM_SIGNATURE;
	}
	dkim_key_free(&key);
	return st;
}
