/* signkeys: the DKIM signing keys of dkim_keys (RFC 6376 3.6.2: a
 * domain's key is found under SELECTOR._domainkey.DOMAIN).
 *
 * An entry is "domain selector /path/to/key.pem": a PEM private key, RSA
 * of at least 1024 bits (RFC 8301 3.2; 2048 advised) or Ed25519 (RFC
 * 8463). dkim_keys names a file of such lines ('#' starts a comment), or,
 * when it holds white space, is itself the entries, separated by commas.
 * Several entries of one domain sign with each (RSA and Ed25519 side by
 * side, RFC 8463 6). A domain is compared case-insensitively; a
 * (domain, selector) pair is given once.
 *
 * The keys are part of a settings generation (settings.h): read with it
 * (at start as root, before the privilege drop; at a reload as run_user),
 * and a key that cannot be read or used refuses the whole generation, its
 * problem printed as "FILE:LINE: ...".
 */
#ifndef TERN_SIGNKEYS_H
#define TERN_SIGNKEYS_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/evp.h>

struct signkey {
	char *domain;     /* lower-case */
	char *selector;
	char *path;
	EVP_PKEY *key;
};

struct signkeys;

struct signkeys *signkeys_new(void);
/* dkim_keys's value (a file or entries; "": none). Problems printed and
 * counted in *bad; never NULL. */
struct signkeys *signkeys_load(const char *spec, int *bad);
void signkeys_free(struct signkeys *k);

/* One entry (comment removed, trimmed, not empty), its key file read:
 * the problems (0 or 1), printed as "origin: message". Public for the
 * tests and the fuzzer-minded. */
int signkeys_line(struct signkeys *k, char *line, const char *origin);

size_t signkeys_count(const struct signkeys *k);
/* Key i (< signkeys_count), in the order given. */
const struct signkey *signkeys_get(const struct signkeys *k, size_t i);
/* The keys of domain, in the order given: the first max into out;
 * returns how many there are. */
size_t signkeys_find(const struct signkeys *k, const char *domain, const struct signkey **out,
                     size_t max);

#endif
