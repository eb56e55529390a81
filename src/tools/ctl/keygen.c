/* keygen: DKIM keys for ternctl (see keygen.h). */
#include "tools/ctl/keygen.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "dkim/key.h"
#include "lib/addr.h"
#include "lib/util.h"

void keygen_txt(const char *name, const char *record, struct buf *out)
{
	buf_printf(out, "%s IN TXT (", name);
	size_t n = strlen(record), i = 0;
	do {
		size_t k = n - i < KEYGEN_TXT_STRING ? n - i : KEYGEN_TXT_STRING;
		buf_printf(out, " \"%.*s\"", (int)k, record + i);
		i += k;
	} while (i < n);
	buf_puts(out, " )");
}

/* The options make sense: a type we know, RSA bits within bounds (none
 * for Ed25519). */
static bool keygen_check(const char *domain, const char *selector, const struct keygen_opts *o)
{
	bool ed = o->type && !strcmp(o->type, "ed25519");
	const char *why = NULL;
	if (!addr_domain_valid(domain))
		why = "DOMAIN is not a domain name";
	else if (!addr_domain_valid(selector))
		why = "SELECTOR is not a DNS name (letters, digits, hyphens, dots)";
	else if (o->type && !ed && strcmp(o->type, "rsa"))
		why = "--type is rsa or ed25519";
	else if (ed && o->bits)
		why = "--bits is for RSA keys only";
	else if (o->bits && (o->bits < KEYGEN_RSA_MIN || o->bits > KEYGEN_RSA_MAX))
		why = "--bits is 1024 to 8192 (RFC 8301: at least 1024, 2048 advised)";
	if (why)
		fprintf(stderr, "ternctl: dkim-keygen: %s\n", why);
	return !why;
}

/* The private key as PEM (PKCS#8, no passphrase) in a new file of mode
 * 0600: an existing file is never overwritten. */
static int keygen_write(EVP_PKEY *key, const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (!f) {
		fprintf(stderr, "ternctl: dkim-keygen: %s: %s%s\n", path, strerror(errno),
		        errno == EEXIST ? " (not overwritten: name another with --out)" : "");
		if (fd >= 0)
			close(fd);
		return EX_CANTCREAT;
	}
	bool ok = PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) == 1;
	ok = fflush(f) == 0 && fsync(fd) == 0 && ok;
	ok = fclose(f) == 0 && ok;
	if (!ok) {
		fprintf(stderr, "ternctl: dkim-keygen: %s: cannot write the key\n", path);
		unlink(path);
		return EX_IOERR;
	}
	return 0;
}

/* What to publish and what to configure, on standard output. */
static int keygen_print(EVP_PKEY *key, const char *domain, const char *selector,
                        const char *path)
{
	struct buf rec = BUF_INIT, name = BUF_INIT, txt = BUF_INIT;
	char abs[PATH_MAX];
	if (!dkim_key_record(key, &rec) || !realpath(path, abs)) {
		fprintf(stderr, "ternctl: dkim-keygen: cannot make the key record\n");
		buf_free(&rec);
		return EX_SOFTWARE;
	}
	buf_printf(&name, "%s._domainkey.%s.", selector, domain);
	keygen_txt(buf_cstr(&name), buf_cstr(&rec), &txt);
	printf("; the DNS record to publish in the zone of %s:\n%s\n", domain, buf_cstr(&txt));
	printf("# the line for dkim_keys (tern.conf(5)); the key is %s, mode 0600:\n%s %s %s\n",
	       abs, domain, selector, abs);
	buf_free(&rec);
	buf_free(&name);
	buf_free(&txt);
	return 0;
}

int keygen_run(const char *domain, const char *selector, const struct keygen_opts *o)
{
	if (!keygen_check(domain, selector, o))
		return EX_USAGE;
	bool ed = o->type && !strcmp(o->type, "ed25519");
	struct buf path = BUF_INIT;
	if (o->out)
		buf_puts(&path, o->out);
	else
		buf_printf(&path, "./%s.%s.pem", selector, domain);
	EVP_PKEY *key = ed ? EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")
	                   : EVP_PKEY_Q_keygen(NULL, NULL, "RSA",
	                                       (size_t)(o->bits ? o->bits : KEYGEN_RSA_BITS));
	int rc = key ? keygen_write(key, buf_cstr(&path)) : EX_SOFTWARE;
	if (!key)
		fprintf(stderr, "ternctl: dkim-keygen: OpenSSL could not make the key\n");
	if (rc == 0)
		rc = keygen_print(key, domain, selector, buf_cstr(&path));
	EVP_PKEY_free(key);
	buf_free(&path);
	return rc;
}
