/* key: key records, RFC 6376 3.6.1 and RFC 8463 4 (see key.h). */
#include "dkim/key.h"

#include <string.h>

#include <openssl/x509.h>

#include "dkim/tags.h"
#include "net/smtp.h"

long dkim_key_b64(const char *val, size_t vlen, unsigned char *out, size_t size)
{
	struct dkim_tag t = { .val = val, .vlen = vlen };
	char text[DKIM_B64_MAX + 1];
	if (!dkim_tags_copy(&t, text, sizeof text))
		return -1;
	return smtp_b64_decode(text, strlen(text), out, size);
}

/* Is word one of the colon-separated items of the tag's value? */
static bool key_lists(const struct dkim_tag *t, const char *word)
{
	char list[256];
	if (!dkim_tags_copy(t, list, sizeof list))
		return false;
	size_t len = strlen(word);
	for (char *p = list; *p;) {
		size_t n = strcspn(p, ":");
		if (n == len && !memcmp(p, word, len))
			return true;
		p += n + (p[n] == ':');
	}
	return false;
}

/* k= (default rsa) names the algorithm's key type. */
static enum dkim_status key_type(const struct dkim_tags *tags, struct dkim_key *out)
{
	const struct dkim_tag *k = dkim_tags_get(tags, "k");
	if (!k || (k->vlen == 3 && !memcmp(k->val, "rsa", 3)))
		out->alg = DKIM_RSA_SHA256;
	else if (k->vlen == 7 && !memcmp(k->val, "ed25519", 7))
		out->alg = DKIM_ED25519_SHA256;
	else
		return DKIM_KEY_TYPE;
	return DKIM_OK;
}

/* v= first when present (3.6.1: "MUST be the first tag"), h=, s=, t=. */
static enum dkim_status key_tags(const struct dkim_tags *tags, struct dkim_key *out)
{
	const struct dkim_tag *v = dkim_tags_get(tags, "v"), *t;
	if (v && (v != &tags->v[0] || v->vlen != 5 || memcmp(v->val, "DKIM1", 5)))
		return DKIM_KEY_SYNTAX;
	if ((t = dkim_tags_get(tags, "h")) && !key_lists(t, "sha256"))
		return DKIM_KEY_HASH;
	if ((t = dkim_tags_get(tags, "s")) && !key_lists(t, "*") && !key_lists(t, "email"))
		return DKIM_KEY_SERVICE;
	if ((t = dkim_tags_get(tags, "t"))) {
		out->testing = key_lists(t, "y");
		out->strict = key_lists(t, "s");
	}
	return key_type(tags, out);
}

/* RSA: SubjectPublicKeyInfo (3.6.1), or the bare RSAPublicKey some
 * publish. */
static EVP_PKEY *key_rsa(const unsigned char *der, long len)
{
	const unsigned char *p = der;
	EVP_PKEY *pk = d2i_PUBKEY(NULL, &p, len);
	if (pk && (p != der + len || !EVP_PKEY_is_a(pk, "RSA"))) {
		EVP_PKEY_free(pk);
		return NULL;
	}
	if (pk)
		return pk;
	p = der;
	pk = d2i_PublicKey(EVP_PKEY_RSA, NULL, &p, len);
	if (pk && p != der + len) {
		EVP_PKEY_free(pk);
		pk = NULL;
	}
	return pk;
}

static enum dkim_status key_public(const struct dkim_tag *p, struct dkim_key *out)
{
	unsigned char der[DKIM_B64_MAX];
	long len = dkim_key_b64(p->val, p->vlen, der, sizeof der);
	if (len == 0)
		return DKIM_KEY_REVOKED;   /* 3.6.1: "An empty value means that this
		                              public key has been revoked" */
	if (len < 0)
		return DKIM_KEY_BASE64;
	if (out->alg == DKIM_ED25519_SHA256)
		out->pkey = len == 32 ? EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, der, 32)
		                      : NULL;
	else
		out->pkey = key_rsa(der, len);
	return out->pkey ? DKIM_OK : DKIM_KEY_BASE64;
}

enum dkim_status dkim_key_parse(const char *rec, size_t n, struct dkim_key *out)
{
	memset(out, 0, sizeof *out);
	struct dkim_tags tags;
	if (!dkim_tags_parse(rec, n, &tags))
		return DKIM_KEY_SYNTAX;
	enum dkim_status st = key_tags(&tags, out);
	const struct dkim_tag *p = dkim_tags_get(&tags, "p");
	if (st == DKIM_OK && !p)
		st = DKIM_KEY_SYNTAX;
	if (st == DKIM_OK)
		st = key_public(p, out);
	if (st == DKIM_OK && out->alg == DKIM_RSA_SHA256 &&
	    EVP_PKEY_get_bits(out->pkey) < DKIM_RSA_MIN_BITS)
		st = DKIM_KEY_SHORT;
	if (st != DKIM_OK)
		dkim_key_free(out);
	return st;
}

void dkim_key_free(struct dkim_key *k)
{
	EVP_PKEY_free(k->pkey);
	k->pkey = NULL;
}

bool dkim_key_alg(EVP_PKEY *pk, enum dkim_alg *out)
{
	if (EVP_PKEY_is_a(pk, "RSA"))
		*out = DKIM_RSA_SHA256;
	else if (EVP_PKEY_is_a(pk, "ED25519"))
		*out = DKIM_ED25519_SHA256;
	else
		return false;
	return true;
}

bool dkim_key_record(EVP_PKEY *pk, struct buf *out)
{
	enum dkim_alg alg;
	unsigned char raw[32], *der = NULL;
	size_t len = sizeof raw;
	if (!dkim_key_alg(pk, &alg))
		return false;
	if (alg == DKIM_ED25519_SHA256) {
		if (EVP_PKEY_get_raw_public_key(pk, raw, &len) != 1 || len != 32)
			return false;
		buf_puts(out, "v=DKIM1; k=ed25519; p=");
		smtp_b64_encode(raw, len, out);
		return true;
	}
	int n = i2d_PUBKEY(pk, &der);
	if (n <= 0)
		return false;
	buf_puts(out, "v=DKIM1; k=rsa; p=");
	smtp_b64_encode(der, (size_t)n, out);
	OPENSSL_free(der);
	return true;
}
