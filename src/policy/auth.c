/* auth: SASL decoding and the passwd-file users table (see auth.h). */
#include "policy/auth.h"

#include <crypt.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/md5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/log.h"
#include "lib/util.h"
#include "net/smtp.h"

struct auth_user {
	char *name;
	char *stored;   /* "{SCHEME}hash" or a bare crypt hash */
};

struct auth_users {
	size_t n, cap;
	struct auth_user *v;
	bool cram;      /* some user's secret serves CRAM-MD5 */
};

/* Copy one NUL-free field of at most AUTH_FIELD_MAX octets. */
static bool auth_field(const unsigned char *p, size_t len, char *out)
{
	if (len > AUTH_FIELD_MAX || memchr(p, '\0', len))
		return false;
	memcpy(out, p, len);
	out[len] = '\0';
	return true;
}

bool auth_plain_decode(const char *b64, char *user, char *pass)
{
	unsigned char buf[3 * AUTH_FIELD_MAX + 8];
	long n = smtp_b64_decode(b64, strlen(b64), buf, sizeof buf);
	if (n < 0)
		return false;
	unsigned char *nul1 = memchr(buf, '\0', (size_t)n);
	if (!nul1)
		return false;
	unsigned char *cid = nul1 + 1, *end = buf + n;
	unsigned char *nul2 = memchr(cid, '\0', (size_t)(end - cid));
	if (!nul2 || nul2 == cid)
		return false;
	char authz[AUTH_FIELD_MAX + 1];
	if (!auth_field(buf, (size_t)(nul1 - buf), authz) ||
	    !auth_field(cid, (size_t)(nul2 - cid), user) ||
	    !auth_field(nul2 + 1, (size_t)(end - nul2 - 1), pass))
		return false;
	return !authz[0] || !strcasecmp(authz, user);
}

bool auth_login_decode(const char *b64, char *out)
{
	unsigned char buf[AUTH_FIELD_MAX + 4];
	long n = smtp_b64_decode(b64, strlen(b64), buf, sizeof buf);
	return n >= 0 && auth_field(buf, (size_t)n, out);
}

/* What follows one of the n "{SCHEME}" prefixes (any case), or NULL. */
static const char *auth_scheme_rest(const char *stored, const char *const *schemes, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		size_t k = strlen(schemes[i]);
		if (!strncasecmp(stored, schemes[i], k))
			return stored + k;
	}
	return NULL;
}

/* ---- CRAM-MD5 (RFC 2195) ---- */

/* Dovecot's names for the same form; HMAC-MD5 is the older one. */
static const char *const auth_cram_schemes[] = { "{CRAM-MD5}", "{HMAC-MD5}" };

static int auth_hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Exactly 2n hex digits s[0..len) into out[0..n). */
static bool auth_hex_decode(const char *s, size_t len, unsigned char *out, size_t n)
{
	if (len != 2 * n)
		return false;
	for (size_t i = 0; i < n; i++) {
		int hi = auth_hex_digit(s[2 * i]), lo = auth_hex_digit(s[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return false;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return true;
}

bool auth_cram_decode(const char *b64, char *user, unsigned char digest[AUTH_CRAM_DIGEST_LEN])
{
	unsigned char buf[AUTH_FIELD_MAX + 2 * AUTH_CRAM_DIGEST_LEN + 8];
	long n = smtp_b64_decode(b64, strlen(b64), buf, sizeof buf);
	if (n < 2)
		return false;
	const unsigned char *sp = memrchr(buf, ' ', (size_t)n);
	if (!sp || sp == buf)
		return false;
	size_t ulen = (size_t)(sp - buf);
	for (size_t i = 0; i < ulen; i++)
		if (buf[i] < 0x20 || buf[i] == 0x7f)
			return false;
	return auth_field(buf, ulen, user) &&
	       auth_hex_decode((const char *)sp + 1, (size_t)n - ulen - 1, digest, AUTH_CRAM_DIGEST_LEN);
}

bool auth_cram_challenge(char *out, size_t n, uint64_t random, long long now, const char *host)
{
	int w = snprintf(out, n, "<%llu.%lld@%s>", (unsigned long long)random, now, host);
	return w > 0 && (size_t)w < n;
}

/* Continuing MD5 from a stored state: {CRAM-MD5} holds two MD5 states
 * taken after the first 64-octet block, and a check must hash on from
 * them. OpenSSL 3's EVP interface can neither export nor import a
 * digest's chaining state (no provider parameter carries it), and an MD5
 * written here would be the hand-made cryptography DESIGN.md rules out.
 * The low-level MD5_CTX, deprecated since 3.0 but still built, has the
 * words A..D and the bit count Nl as public fields of <openssl/md5.h>:
 * these two functions, and only they, use it, with the deprecation
 * warning silenced around them. If OpenSSL ever drops the API, the build
 * fails here, loudly, rather than anything silently changing. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

/* The MD5 state after one 64-octet block: A, B, C, D little-endian, the
 * order Dovecot's hmac_md5_get_cram_context writes. */
static void auth_md5_block(const unsigned char block[64], unsigned char state[16])
{
	MD5_CTX c;
	MD5_Init(&c);
	MD5_Update(&c, block, 64);
	const MD5_LONG w[4] = { c.A, c.B, c.C, c.D };
	for (size_t i = 0; i < 16; i++)
		state[i] = (unsigned char)(w[i / 4] >> (8 * (i % 4)));
	explicit_bzero(&c, sizeof c);
}

/* MD5 of that block followed by msg, from the state alone. */
static void auth_md5_resume(const unsigned char state[16], const void *msg, size_t n,
                            unsigned char out[16])
{
	MD5_CTX c;
	MD5_Init(&c);
	MD5_LONG *w[4] = { &c.A, &c.B, &c.C, &c.D };
	for (size_t i = 0; i < 4; i++)
		*w[i] = (MD5_LONG)state[4 * i] | (MD5_LONG)state[4 * i + 1] << 8 |
		        (MD5_LONG)state[4 * i + 2] << 16 | (MD5_LONG)state[4 * i + 3] << 24;
	c.Nl = 64 * 8;   /* the block already hashed, counted in bits */
	MD5_Update(&c, msg, n);
	MD5_Final(out, &c);
	explicit_bzero(&c, sizeof c);
}

#pragma GCC diagnostic pop

void auth_cram_context(const char *secret, size_t len, unsigned char ctx[AUTH_CRAM_CONTEXT_LEN])
{
	unsigned char key[64] = { 0 }, pad[64];
	if (len > sizeof key)   /* RFC 2104 2: a longer key is hashed first */
		EVP_Digest(secret, len, key, NULL, EVP_md5(), NULL);
	else
		memcpy(key, secret, len);
	for (size_t i = 0; i < sizeof pad; i++)
		pad[i] = key[i] ^ 0x5c;
	auth_md5_block(pad, ctx);
	for (size_t i = 0; i < sizeof pad; i++)
		pad[i] = key[i] ^ 0x36;
	auth_md5_block(pad, ctx + 16);
	explicit_bzero(key, sizeof key);
	explicit_bzero(pad, sizeof pad);
}

/* RFC 2104 2: MD5(K ^ opad, MD5(K ^ ipad, msg)), the pads already hashed. */
void auth_cram_hmac(const unsigned char ctx[AUTH_CRAM_CONTEXT_LEN], const char *msg, size_t n,
                    unsigned char digest[AUTH_CRAM_DIGEST_LEN])
{
	unsigned char inner[16];
	auth_md5_resume(ctx + 16, msg, n, inner);
	auth_md5_resume(ctx, inner, sizeof inner, digest);
	explicit_bzero(inner, sizeof inner);
}

/* A {CRAM-MD5} entry: its context; false for other schemes and a malformed one. */
static bool auth_cram_form(const char *stored, unsigned char ctx[AUTH_CRAM_CONTEXT_LEN])
{
	const char *hex = auth_scheme_rest(stored, auth_cram_schemes,
	                                   sizeof auth_cram_schemes / sizeof auth_cram_schemes[0]);
	return hex && auth_hex_decode(hex, strlen(hex), ctx, AUTH_CRAM_CONTEXT_LEN);
}

/* The context stored gives CRAM-MD5: {PLAIN}'s secret's, or {CRAM-MD5}'s own. */
static bool auth_cram_stored(const char *stored, unsigned char ctx[AUTH_CRAM_CONTEXT_LEN])
{
	if (strncasecmp(stored, "{PLAIN}", 7))
		return auth_cram_form(stored, ctx);
	auth_cram_context(stored + 7, strlen(stored + 7), ctx);
	return true;
}

bool auth_cram_usable(const char *stored)
{
	unsigned char ctx[AUTH_CRAM_CONTEXT_LEN];
	bool ok = auth_cram_stored(stored, ctx);
	explicit_bzero(ctx, sizeof ctx);
	return ok;
}

bool auth_cram_match(const char *stored, const char *challenge,
                     const unsigned char digest[AUTH_CRAM_DIGEST_LEN])
{
	unsigned char ctx[AUTH_CRAM_CONTEXT_LEN], got[AUTH_CRAM_DIGEST_LEN];
	bool usable = auth_cram_stored(stored, ctx);
	if (!usable)   /* the work of a {PLAIN} secret all the same */
		auth_cram_context("", 0, ctx);
	auth_cram_hmac(ctx, challenge, strlen(challenge), got);
	bool same = CRYPTO_memcmp(got, digest, sizeof got) == 0;
	explicit_bzero(ctx, sizeof ctx);
	explicit_bzero(got, sizeof got);
	return usable && same;
}

/* ---- stored passwords ---- */

static const char *const auth_crypt_schemes[] = {
	"{CRYPT}", "{SHA512-CRYPT}", "{SHA256-CRYPT}", "{BLF-CRYPT}",
};

/* The crypt hash inside stored, or NULL for {PLAIN} and other schemes. */
static const char *auth_crypt_part(const char *stored)
{
	if (stored[0] != '{')
		return stored;
	return auth_scheme_rest(stored, auth_crypt_schemes,
	                        sizeof auth_crypt_schemes / sizeof auth_crypt_schemes[0]);
}

bool auth_scheme_known(const char *stored)
{
	unsigned char ctx[AUTH_CRAM_CONTEXT_LEN];
	bool cram = auth_cram_form(stored, ctx);
	explicit_bzero(ctx, sizeof ctx);
	return cram || !strncasecmp(stored, "{PLAIN}", 7) || auth_crypt_part(stored) != NULL;
}

static bool auth_equal(const char *a, const char *b)
{
	size_t n = strlen(a);
	return n == strlen(b) && CRYPTO_memcmp(a, b, n) == 0;
}

/* {CRAM-MD5} for PLAIN and LOGIN: the context of pass, compared. */
static bool auth_cram_password(const unsigned char want[AUTH_CRAM_CONTEXT_LEN], const char *pass)
{
	unsigned char got[AUTH_CRAM_CONTEXT_LEN];
	auth_cram_context(pass, strlen(pass), got);
	bool ok = CRYPTO_memcmp(got, want, sizeof got) == 0;
	explicit_bzero(got, sizeof got);
	return ok;
}

bool auth_password_match(const char *stored, const char *pass)
{
	if (!strncasecmp(stored, "{PLAIN}", 7))
		return auth_equal(stored + 7, pass);
	unsigned char ctx[AUTH_CRAM_CONTEXT_LEN];
	if (auth_cram_form(stored, ctx)) {
		bool ok = auth_cram_password(ctx, pass);
		explicit_bzero(ctx, sizeof ctx);
		return ok;
	}
	const char *hash = auth_crypt_part(stored);
	if (!hash || !*hash)
		return false;
	struct crypt_data *cd = util_xcalloc(1, sizeof *cd);
	const char *got = crypt_rn(pass, hash, cd, (int)sizeof *cd);
	bool ok = got && got[0] != '*' && auth_equal(got, hash);
	explicit_bzero(cd, sizeof *cd);
	free(cd);
	return ok;
}

/* ---- the users table ---- */

static void auth_users_add(struct auth_users *u, const char *name, const char *stored)
{
	if (u->n == u->cap) {
		u->cap = u->cap ? u->cap * 2 : 8;
		u->v = util_xrealloc(u->v, u->cap, sizeof *u->v);
	}
	u->v[u->n].name = util_xstrdup(name);
	u->v[u->n].stored = util_xstrdup(stored);
	u->n++;
	u->cram = u->cram || auth_cram_usable(stored);
}

/* "user:password[:uid:gid:gecos:home:shell:extra]"; returns problems. */
static int auth_users_line(void *ctx, char *t, const char *where)
{
	struct auth_users *u = ctx;
	char *colon = strchr(t, ':');
	if (!colon || colon == t) {
		log_problem("%s: expected user:{SCHEME}hash\n", where);
		return 1;
	}
	*colon = '\0';
	char *stored = colon + 1;
	stored[strcspn(stored, ":")] = '\0';
	if (!auth_scheme_known(stored) || strlen(t) > AUTH_FIELD_MAX) {
		log_problem("%s: user %s: unknown password scheme or bad name\n", where, t);
		return 1;
	}
	auth_users_add(u, t, stored);
	return 0;
}

struct auth_users *auth_users_load(const char *path, int *bad)
{
	struct auth_users *u = util_xcalloc(1, sizeof *u);
	if (!path || !*path)
		return u;
	/* '#' may be part of a {PLAIN} password: comments only at line start */
	*bad += util_each_line(path, "users_file", UTIL_LINES_SECRET, auth_users_line, u);
	return u;
}

void auth_users_free(struct auth_users *u)
{
	if (!u)
		return;
	for (size_t i = 0; i < u->n; i++) {
		free(u->v[i].name);
		explicit_bzero(u->v[i].stored, strlen(u->v[i].stored));
		free(u->v[i].stored);
	}
	free(u->v);
	free(u);
}

size_t auth_users_count(const struct auth_users *u)
{
	return u ? u->n : 0;
}

static const struct auth_user *auth_users_find(const struct auth_users *u, const char *user)
{
	for (size_t i = 0; u && i < u->n; i++)
		if (!strcasecmp(u->v[i].name, user))
			return &u->v[i];
	return NULL;
}

bool auth_users_check(const struct auth_users *u, const char *user, const char *pass)
{
	/* sha512-crypt of "x": the work an unknown user costs too. */
	static const char dummy[] = "$6$tern.salt$bwQk5JDQbJRrqLhf7O4pxknVhYxyHKGmxfg/6rNSVrMPunsa1"
	                            "wj3CJ9o2DBv3W.nqrOkSm8cf4JQS7dOmFKaZ/";
	const struct auth_user *e = auth_users_find(u, user);
	if (e)
		return auth_password_match(e->stored, pass);
	auth_password_match(dummy, pass);
	return false;
}

bool auth_users_cram(const struct auth_users *u)
{
	return u && u->cram;
}

bool auth_users_cram_check(const struct auth_users *u, const char *user, const char *challenge,
                           const unsigned char digest[AUTH_CRAM_DIGEST_LEN])
{
	const struct auth_user *e = auth_users_find(u, user);
	bool ok = auth_cram_match(e ? e->stored : "", challenge, digest);
	return e && ok;
}
