/* parse: SMTP command lines and ESMTP parameters, pure functions.
 *
 * A command line arrives here already framed (CRLF stripped, length capped,
 * bare CR/LF refused by the session). These functions only tokenize.
 */
#ifndef TERN_PARSE_H
#define TERN_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/addr.h"
#include "net/smtp.h"

#define PARSE_VERB_MAX 15

struct parse_cmd {
	char verb[PARSE_VERB_MAX + 1];  /* upper-cased; "" for an empty line */
	const char *args;                /* points into the line, after the verb
	                                    and its separating spaces; "" if none */
};

/* Split a line into verb and arguments. Verbs longer than PARSE_VERB_MAX or
 * containing non-letters give verb "" and return false. */
bool parse_command(const char *line, struct parse_cmd *out);

/* For "MAIL FROM:..." and "RCPT TO:...": check that args begins with the
 * keyword ("FROM" or "TO", any case), optional spaces, ':', optional spaces
 * (the seeds type "RCPT TO: User@Domain.Com"), and return a pointer to what
 * follows; NULL when the keyword or colon is missing. */
const char *parse_keyword_colon(const char *args, const char *keyword);

/* ESMTP parameters of MAIL FROM (RFC 5321 4.1.2 Mail-parameters). Values
 * that are xtext in the RFC are kept decoded. */
struct parse_mail_params {
	bool has_size;
	uint64_t size;                        /* RFC 1870 */
	enum smtp_body body;
	enum smtp_ret ret;
	char envid[SMTP_ENVID_MAX + 1];      /* RFC 3461 4.4, xtext-decoded */
	bool smtputf8;                        /* RFC 6531 3.4, a keyword without value */
	bool requiretls;                      /* RFC 8689 4.1, a keyword without value */
};

/* ESMTP parameters of RCPT TO. */
struct parse_rcpt_params {
	unsigned notify;                      /* NOTIFY_* bits */
	char orcpt[SMTP_ORCPT_MAX + 1];      /* "rfc822;addr", xtext-decoded */
};

enum parse_perr {
	PARSE_OK = 0,
	PARSE_EUNKNOWN,   /* unknown keyword: 555 5.5.4 */
	PARSE_EVALUE,     /* bad value for a known keyword: 501 5.5.4 */
	PARSE_EDUP,       /* keyword given twice: 501 5.5.4 */
	PARSE_ESYNTAX,    /* not keyword[=value] separated by spaces: 501 5.5.4 */
};

/* Parse the space-separated parameters that follow the path. On error,
 * *bad points at the offending keyword (for the reply text). */
enum parse_perr parse_mail_params(const char *s, struct parse_mail_params *p,
                                  const char **bad);
enum parse_perr parse_rcpt_params(const char *s, struct parse_rcpt_params *p,
                                  const char **bad);

/* BDAT's arguments (RFC 3030 2): "chunk-size [LAST]"; false when
 * malformed (501 5.5.4). */
#define PARSE_BDAT_MAX ((uint64_t)1 << 50)
bool parse_bdat(const char *args, uint64_t *size, bool *last);

#endif
