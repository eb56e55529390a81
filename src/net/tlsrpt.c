/* tlsrpt: RFC 8460's result types and its TXT record (3); pure. */
#include "net/tlsrpt.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *tlsrpt_policy_name(enum tlsrpt_policy p)
{
	return p == TLSRPT_POLICY_STS ? "sts" : p == TLSRPT_POLICY_TLSA ? "tlsa" : "no-policy-found";
}

const char *tlsrpt_result_name(enum tlsrpt_result r)
{
	static const char *const names[] = {
		"success", "starttls-not-supported", "certificate-host-mismatch",
		"certificate-expired", "certificate-not-trusted", "validation-failure",
		"tlsa-invalid", "dnssec-invalid", "dane-required", "sts-policy-fetch-error",
		"sts-policy-invalid", "sts-webpki-invalid",
	};
	return (size_t)r < sizeof names / sizeof names[0] ? names[r] : "validation-failure";
}

static void tlsrpt_trim(const char **p, size_t *len)
{
	while (*len && (**p == ' ' || **p == '\t'))
		(*p)++, (*len)--;
	while (*len && ((*p)[*len - 1] == ' ' || (*p)[*len - 1] == '\t'))
		(*len)--;
}

/* One URI of rua (RFC 8460 3: mailto: or https:, comma-separated). */
static void tlsrpt_uri(const char *u, size_t len, struct tlsrpt_rua *out)
{
	tlsrpt_trim(&u, &len);
	bool mailto = len > 7 && strncasecmp(u, "mailto:", 7) == 0;
	bool https = len > 8 && strncasecmp(u, "https://", 8) == 0;
	size_t skip = mailto ? 7 : 0;
	if ((!mailto && !https) || len - skip >= sizeof out->v[0].uri || out->n == TLSRPT_RUA_MAX)
		return;
	for (size_t i = skip; i < len; i++)
		if ((unsigned char)u[i] <= ' ' || u[i] == 0x7f || u[i] == ';')
			return;
	if (mailto && !memchr(u + skip, '@', len - skip))
		return;
	out->v[out->n].https = https;
	memcpy(out->v[out->n].uri, u + skip, len - skip);
	out->v[out->n].uri[len - skip] = '\0';
	out->n++;
}

static void tlsrpt_rua(const char *v, size_t len, struct tlsrpt_rua *out)
{
	while (len) {
		const char *comma = memchr(v, ',', len);
		size_t n = comma ? (size_t)(comma - v) : len;
		tlsrpt_uri(v, n, out);
		if (!comma)
			break;
		v += n + 1;
		len -= n + 1;
	}
}

bool tlsrpt_txt(const char *rec, size_t len, struct tlsrpt_rua *out)
{
	memset(out, 0, sizeof *out);
	if (memchr(rec, '\0', len))
		return false;
	bool first = true, seen_rua = false;
	while (len) {
		const char *semi = memchr(rec, ';', len);
		size_t n = semi ? (size_t)(semi - rec) : len;
		const char *f = rec;
		size_t flen = n;
		tlsrpt_trim(&f, &flen);
		const char *eq = memchr(f, '=', flen);
		if (first && (flen != 10 || memcmp(f, "v=TLSRPTv1", 10) != 0))
			return false;
		if (!first && eq && eq - f == 3 && !memcmp(f, "rua", 3) && !seen_rua) {
			seen_rua = true;
			tlsrpt_rua(eq + 1, flen - 4, out);
		}
		first = false;
		if (!semi)
			break;
		rec += n + 1;
		len -= n + 1;
	}
	return !first && out->n > 0;
}

bool tlsrpt_https_split(const char *uri, char *host, size_t n, unsigned *port, const char **path)
{
	if (strncasecmp(uri, "https://", 8) != 0)
		return false;
	const char *h = uri + 8;
	size_t hlen = strcspn(h, ":/?#");
	if (hlen == 0 || hlen >= n)
		return false;
	for (size_t i = 0; i < hlen; i++) {
		if (!isalnum((unsigned char)h[i]) && h[i] != '-' && h[i] != '.')
			return false;
		host[i] = (char)tolower((unsigned char)h[i]);
	}
	host[hlen] = '\0';
	const char *p = h + hlen;
	*port = 443;
	if (*p == ':') {
		char *end;
		unsigned long v = strtoul(p + 1, &end, 10);
		if (end == p + 1 || v == 0 || v > 65535 || (*end && *end != '/'))
			return false;
		*port = (unsigned)v;
		p = end;
	}
	if (*p && *p != '/')
		return false;
	*path = p;
	return true;
}
