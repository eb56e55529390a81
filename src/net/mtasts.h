/* mtasts: MTA-STS (RFC 8461), the pure part: the _mta-sts TXT record
 * (3.1), the policy file (3.2) and the match of an MX host against the
 * policy's mx patterns (4.1). Fetching, caching and enforcing live in
 * deliver/sts.c; the HTTPS client in net/httpc.c. Pure, for the unit
 * tests and the fuzzer.
 */
#ifndef TERN_MTASTS_H
#define TERN_MTASTS_H

#include <stdbool.h>
#include <stddef.h>

#define MTASTS_BODY_MAX (64 * 1024)      /* RFC 8461 3.3: a policy is at most 64 KiB */
#define MTASTS_MAX_AGE_MAX 31557600u     /* RFC 8461 3.2: about a year */
#define MTASTS_ID_MAX 32                 /* RFC 8461 3.1: 1*32(ALPHA / DIGIT) */
#define MTASTS_MX_MAX 32                 /* mx patterns kept */

enum mtasts_mode { MTASTS_NONE, MTASTS_TESTING, MTASTS_ENFORCE };

struct mtasts_policy {
	enum mtasts_mode mode;
	unsigned max_age;                     /* seconds, at most MTASTS_MAX_AGE_MAX */
	size_t nmx;
	char mx[MTASTS_MX_MAX][256];          /* "mail.example.com", "*.example.net", lower case */
};

/* RFC 8461 3.1: one TXT record; true when it is an STSv1 record ("v=STSv1"
 * first) with a valid id, copied into id (MTASTS_ID_MAX + 1 bytes). */
bool mtasts_txt(const char *rec, size_t len, char *id);
/* Does the record begin as an STSv1 record (the others are discarded)? */
bool mtasts_txt_is_sts(const char *rec, size_t len);

/* RFC 8461 3.2: the policy text (CRLF or LF lines, key: value) into p;
 * false with the reason in why (n bytes) when it is not a valid STSv1
 * policy. Unknown keys are ignored; of a repeated key other than mx the
 * first counts; max_age over MTASTS_MAX_AGE_MAX is cut to it. */
bool mtasts_parse(const char *text, size_t len, struct mtasts_policy *p, char *why, size_t n);

/* RFC 8461 4.1: does the MX host (a trailing dot ignored) match one of
 * the policy's mx patterns, case-insensitively, "*." standing for
 * exactly one leftmost label? */
bool mtasts_mx_match(const struct mtasts_policy *p, const char *host);

/* "none", "testing", "enforce" */
const char *mtasts_mode_name(enum mtasts_mode m);

#endif
