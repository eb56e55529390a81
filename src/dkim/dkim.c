/* dkim: the status table and the algorithm names (see dkim.h). */
#include "dkim/dkim.h"

#include <string.h>

/* RFC 8601 2.7.1: "fail" when the signature or the body hash is wrong,
 * "policy" when the signature is sound but not acceptable here (expired,
 * from the future, a short key, a header block too big to check),
 * "temperror" when the key could not be fetched now, "permerror" for
 * anything that cannot be processed (RFC 6376 6.1's PERMFAIL cases). */
static const struct {
	const char *text, *result;
} dkim_statuses[DKIM_STATUS_COUNT] = {
	[DKIM_OK] = { "ok", "pass" },
	[DKIM_SIG_SYNTAX] = { "signature is not a valid tag-list", "permerror" },
	[DKIM_SIG_VERSION] = { "incompatible version (v= is not 1)", "permerror" },
	[DKIM_SIG_MISSING_TAG] = { "signature missing a required tag", "permerror" },
	[DKIM_SIG_BASE64] = { "b= or bh= is not base64", "permerror" },
	[DKIM_SIG_ALGORITHM] = { "unknown or refused algorithm", "permerror" },
	[DKIM_SIG_CANON] = { "unknown canonicalization", "permerror" },
	[DKIM_SIG_QUERY] = { "no known query method", "permerror" },
	[DKIM_SIG_DOMAIN] = { "bad d=, s= or i= (i= not within d=)", "permerror" },
	[DKIM_SIG_FROM] = { "From field not signed", "permerror" },
	[DKIM_SIG_LENGTH] = { "bad l= or longer than the body", "permerror" },
	[DKIM_SIG_TIMES] = { "bad t= or x=", "permerror" },
	[DKIM_SIG_EXPIRED] = { "signature expired", "policy" },
	[DKIM_SIG_FUTURE] = { "signature timestamp in the future", "policy" },
	[DKIM_KEY_SYNTAX] = { "key record syntax error", "permerror" },
	[DKIM_KEY_BASE64] = { "key record p= is not a key", "permerror" },
	[DKIM_KEY_REVOKED] = { "key revoked", "permerror" },
	[DKIM_KEY_TYPE] = { "inappropriate key type", "permerror" },
	[DKIM_KEY_HASH] = { "inappropriate hash algorithm", "permerror" },
	[DKIM_KEY_SERVICE] = { "key not for email", "permerror" },
	[DKIM_KEY_STRICT] = { "key requires i= to be d= (t=s)", "permerror" },
	[DKIM_KEY_SHORT] = { "RSA key under 1024 bits", "policy" },
	[DKIM_KEY_NONE] = { "no key for signature", "permerror" },
	[DKIM_KEY_TEMP] = { "key unavailable", "temperror" },
	[DKIM_BODY_HASH] = { "body hash did not verify", "fail" },
	[DKIM_SIGNATURE] = { "signature did not verify", "fail" },
	[DKIM_HEADER_TOO_BIG] = { "header block larger than 64 KiB", "policy" },
	[DKIM_NO_FROM] = { "no single From field", "permerror" },
	[DKIM_FROM_SYNTAX] = { "From holds no single mailbox with a domain", "permerror" },
	[DKIM_SIGN_FAILED] = { "the key did not sign", "permerror" },
};

const char *dkim_status_text(enum dkim_status st)
{
	return (unsigned)st < DKIM_STATUS_COUNT ? dkim_statuses[st].text : "?";
}

const char *dkim_status_result(enum dkim_status st)
{
	return (unsigned)st < DKIM_STATUS_COUNT ? dkim_statuses[st].result : "permerror";
}

static const char *const dkim_algs[] = {
	[DKIM_RSA_SHA256] = "rsa-sha256",
	[DKIM_ED25519_SHA256] = "ed25519-sha256",
};

const char *dkim_alg_name(enum dkim_alg a)
{
	return dkim_algs[a];
}

/* Algorithm names compare case-insensitively? RFC 6376 3.5 gives them in
 * lower case and tag values are case-sensitive unless said otherwise:
 * exact. */
bool dkim_alg_parse(const char *s, size_t n, enum dkim_alg *out)
{
	for (size_t i = 0; i < sizeof dkim_algs / sizeof dkim_algs[0]; i++)
		if (strlen(dkim_algs[i]) == n && !memcmp(s, dkim_algs[i], n)) {
			*out = (enum dkim_alg)i;
			return true;
		}
	return false;
}
