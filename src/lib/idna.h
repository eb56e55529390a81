/* idna: domains as IDNA A-labels (RFC 5890), for comparing and looking up.
 *
 * An internationalized domain ("bücher.test") is compared with
 * local_domains, matched against transport_map and hold lists, looked up
 * in the DNS and named on disk as its A-label ("xn--bcher-kva.test");
 * the address as the client gave it stays in the envelope.
 */
#ifndef TERN_IDNA_H
#define TERN_IDNA_H

#include <stdbool.h>
#include <stddef.h>

/* The A-label form of domain, lower-cased, into out (room for n bytes).
 * An all-ASCII domain is copied lower-cased, unchecked; a UTF-8 one goes
 * through libidn2 (IDNA2008, non-transitional, NFC input). False when it
 * is not a valid IDNA name or does not fit. */
bool idna_alabel(const char *domain, char *out, size_t n);

/* Does s hold an octet >= 0x80? */
bool idna_has_8bit(const char *s);

#endif
