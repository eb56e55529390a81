/* signkeys: load and look up dkim_keys (see signkeys.h). A short list in
 * the order given: a server signs for a few domains. */
#include "policy/signkeys.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "lib/addr.h"
#include "lib/log.h"
#include "lib/util.h"

#define SIGNKEYS_MIN_RSA 1024   /* RFC 8301 3.2 */

struct signkeys {
	size_t n, cap;
	struct signkey *v;
};

struct signkeys *signkeys_new(void)
{
	return util_xcalloc(1, sizeof(struct signkeys));
}

void signkeys_free(struct signkeys *k)
{
	if (!k)
		return;
	for (size_t i = 0; i < k->n; i++) {
		free(k->v[i].domain);
		free(k->v[i].selector);
		free(k->v[i].path);
		EVP_PKEY_free(k->v[i].key);
	}
	free(k->v);
	free(k);
}

/* A key with a passphrase is refused: there is nobody to type it (and
 * OpenSSL's default would ask the terminal). */
static int signkeys_no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return 0;
}

/* The private key in path: RSA of SIGNKEYS_MIN_RSA bits or more, or
 * Ed25519; NULL with the problem printed. */
static EVP_PKEY *signkeys_read(const char *path, const char *origin)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		log_problem("%s: %s: cannot read it: %s%s\n", origin, path, strerror(errno),
		            geteuid() ? " (a reload reads it as run_user: let it read the file)" : "");
		return NULL;
	}
	EVP_PKEY *key = PEM_read_PrivateKey(f, NULL, signkeys_no_passphrase, NULL);
	fclose(f);
	ERR_clear_error();
	const char *why = !key ? "not a PEM private key (without a passphrase)" :
	                  EVP_PKEY_is_a(key, "ED25519") ? NULL :
	                  !EVP_PKEY_is_a(key, "RSA") ? "neither RSA nor Ed25519" :
	                  EVP_PKEY_get_bits(key) < SIGNKEYS_MIN_RSA ? "an RSA key under 1024 bits "
	                                                              "(RFC 8301)" : NULL;
	if (why) {
		log_problem("%s: %s: %s\n", origin, path, why);
		EVP_PKEY_free(key);
		return NULL;
	}
	return key;
}

static bool signkeys_known(const struct signkeys *k, const char *domain, const char *selector)
{
	for (size_t i = 0; i < k->n; i++)
		if (!strcmp(k->v[i].domain, domain) && !strcmp(k->v[i].selector, selector))
			return true;
	return false;
}

int signkeys_line(struct signkeys *k, char *line, const char *origin)
{
	char *save = NULL;
	char *domain = strtok_r(line, " \t", &save), *selector = strtok_r(NULL, " \t", &save);
	char *path = strtok_r(NULL, " \t", &save);
	if (!domain || !selector || !path || strtok_r(NULL, " \t", &save)) {
		log_problem("%s: expected 'domain selector /path/to/key.pem'\n", origin);
		return 1;
	}
	util_lower(domain);
	if (!addr_domain_valid(domain) || !addr_domain_valid(selector)) {
		log_problem("%s: '%s %s': not a domain and a selector\n", origin, domain, selector);
		return 1;
	}
	if (signkeys_known(k, domain, selector)) {
		log_problem("%s: %s and selector %s are given twice\n", origin, domain, selector);
		return 1;
	}
	EVP_PKEY *key = signkeys_read(path, origin);
	if (!key)
		return 1;
	if (k->n == k->cap) {
		k->cap = k->cap ? k->cap * 2 : 4;
		k->v = util_xrealloc(k->v, k->cap, sizeof *k->v);
	}
	k->v[k->n++] = (struct signkey){ util_xstrdup(domain), util_xstrdup(selector),
	                                 util_xstrdup(path), key };
	return 0;
}

static int signkeys_file_line(void *ctx, char *line, const char *origin)
{
	return signkeys_line(ctx, line, origin);
}

/* The entries written in the value itself: "dkim_keys:N" for the Nth. */
static int signkeys_inline(struct signkeys *k, const char *spec)
{
	char *copy = util_xstrdup(spec), *save = NULL;
	int bad = 0;
	unsigned n = 0;
	for (char *e = strtok_r(copy, ",", &save); e; e = strtok_r(NULL, ",", &save)) {
		char origin[32];
		snprintf(origin, sizeof origin, "dkim_keys:%u", ++n);
		char *t = util_trim(e);
		if (*t)
			bad += signkeys_line(k, t, origin);
	}
	free(copy);
	return bad;
}

struct signkeys *signkeys_load(const char *spec, int *bad)
{
	struct signkeys *k = signkeys_new();
	if (!spec || !*spec)
		return k;
	if (strpbrk(spec, " \t"))
		*bad += signkeys_inline(k, spec);
	else
		*bad += util_each_line(spec, "dkim_keys", UTIL_LINES_COMMENTS, signkeys_file_line, k);
	return k;
}

size_t signkeys_count(const struct signkeys *k)
{
	return k ? k->n : 0;
}

const struct signkey *signkeys_get(const struct signkeys *k, size_t i)
{
	return &k->v[i];
}

size_t signkeys_find(const struct signkeys *k, const char *domain, const struct signkey **out,
                     size_t max)
{
	size_t n = 0;
	for (size_t i = 0; k && i < k->n; i++) {
		if (strcasecmp(k->v[i].domain, domain))
			continue;
		if (n < max)
			out[n] = &k->v[i];
		n++;
	}
	return n;
}
