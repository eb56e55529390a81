/* tlsrpt: SMTP TLS Reporting (RFC 8460), the pure part: the result types
 * of 4.3 with their names, and the _smtp._tls TXT record (3) with its
 * rua addresses. Recording and reports live in deliver/tlsrpt.c.
 */
#ifndef TERN_TLSRPT_H
#define TERN_TLSRPT_H

#include <stdbool.h>
#include <stddef.h>

/* RFC 8460 4.4: policy-type */
enum tlsrpt_policy { TLSRPT_POLICY_NONE, TLSRPT_POLICY_STS, TLSRPT_POLICY_TLSA };

/* RFC 8460 4.3: success, or the failure's result-type */
enum tlsrpt_result {
	TLSRPT_SUCCESS,
	TLSRPT_STARTTLS_NOT_SUPPORTED,
	TLSRPT_CERT_HOST_MISMATCH,
	TLSRPT_CERT_EXPIRED,
	TLSRPT_CERT_NOT_TRUSTED,
	TLSRPT_VALIDATION_FAILURE,
	TLSRPT_TLSA_INVALID,
	TLSRPT_DNSSEC_INVALID,
	TLSRPT_DANE_REQUIRED,
	TLSRPT_STS_POLICY_FETCH_ERROR,
	TLSRPT_STS_POLICY_INVALID,
	TLSRPT_STS_WEBPKI_INVALID,
};

/* "sts", "tlsa", "no-policy-found" */
const char *tlsrpt_policy_name(enum tlsrpt_policy p);
/* "success", "starttls-not-supported", ... */
const char *tlsrpt_result_name(enum tlsrpt_result r);

#define TLSRPT_RUA_MAX 4

/* The record's rua URIs: mailto: (the address, in addr) and https: (the
 * URI whole); others are left out. */
struct tlsrpt_rua {
	size_t n;
	struct { bool https; char uri[256]; } v[TLSRPT_RUA_MAX];
};

/* RFC 8460 3: "v=TLSRPTv1; rua=mailto:a@example.com,https://...": true
 * when it is such a record (v first) with at least one usable rua URI. */
bool tlsrpt_txt(const char *rec, size_t len, struct tlsrpt_rua *out);

/* An https: rua URI, "https://host[:port][/path]", into host (n bytes,
 * lower case), port (443 when absent) and path (its place in uri, "" for
 * none: "/"); false for anything else (userinfo, an IP literal in
 * brackets, a bad port). */
bool tlsrpt_https_split(const char *uri, char *host, size_t n, unsigned *port, const char **path);

#endif
