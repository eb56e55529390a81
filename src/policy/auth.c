/* auth: SASL decoding and the passwd-file users table (see auth.h). */
#include "policy/auth.h"

#include <crypt.h>
#include <openssl/crypto.h>
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

/* ---- stored passwords ---- */

static const char *const auth_crypt_schemes[] = {
	"{CRYPT}", "{SHA512-CRYPT}", "{SHA256-CRYPT}", "{BLF-CRYPT}",
};

/* The crypt hash inside stored, or NULL for {PLAIN} and unknown schemes. */
static const char *auth_crypt_part(const char *stored)
{
	if (stored[0] != '{')
		return stored;
	for (size_t i = 0; i < sizeof auth_crypt_schemes / sizeof auth_crypt_schemes[0]; i++) {
		size_t k = strlen(auth_crypt_schemes[i]);
		if (!strncasecmp(stored, auth_crypt_schemes[i], k))
			return stored + k;
	}
	return NULL;
}

bool auth_scheme_known(const char *stored)
{
	return !strncasecmp(stored, "{PLAIN}", 7) || auth_crypt_part(stored) != NULL;
}

static bool auth_equal(const char *a, const char *b)
{
	size_t n = strlen(a);
	return n == strlen(b) && CRYPTO_memcmp(a, b, n) == 0;
}

bool auth_password_match(const char *stored, const char *pass)
{
	if (!strncasecmp(stored, "{PLAIN}", 7))
		return auth_equal(stored + 7, pass);
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

bool auth_users_check(const struct auth_users *u, const char *user, const char *pass)
{
	/* sha512-crypt of "x": the work an unknown user costs too. */
	static const char dummy[] = "$6$tern.salt$bwQk5JDQbJRrqLhf7O4pxknVhYxyHKGmxfg/6rNSVrMPunsa1"
	                            "wj3CJ9o2DBv3W.nqrOkSm8cf4JQS7dOmFKaZ/";
	for (size_t i = 0; u && i < u->n; i++)
		if (!strcasecmp(u->v[i].name, user))
			return auth_password_match(u->v[i].stored, pass);
	auth_password_match(dummy, pass);
	return false;
}
