/* dropfile: the envelope of a maildrop file (net/maildrop.h), parsed by
 * the session's own parsers: parse_command, addr_parse_path and the ESMTP
 * parameters of MAIL and RCPT (RFC 5321 4.1.1.2-3). Pure. The message
 * after the DATA line is for the data parser (smtpd/data.h).
 */
#ifndef TERN_DROPFILE_H
#define TERN_DROPFILE_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/addr.h"
#include "net/maildrop.h"
#include "smtpd/parse.h"

struct dropfile_rcpt {
	struct addr addr;
	struct parse_rcpt_params rp;
};

struct dropfile_env {
	unsigned version;
	unsigned long uid;                     /* as the first line claims it */
	char user[MAILDROP_USER_MAX + 1];
	struct addr sender;                    /* null for MAIL FROM:<> */
	struct parse_mail_params mp;
	size_t nrcpt, cap;
	struct dropfile_rcpt *rcpt;
};

enum dropfile_res {
	DROPFILE_OK,     /* *used: octets up to and including the DATA line */
	DROPFILE_MORE,   /* nothing wrong so far; the DATA line is not in p yet */
	DROPFILE_BAD,    /* malformed: *why says how */
};

/* Parse the envelope at the start of p[0..n). Stateless: call it again
 * with more of the file after DROPFILE_MORE (e is reset each time). At
 * most max_rcpt RCPT lines. Free e with dropfile_free whatever the
 * result. */
enum dropfile_res dropfile_parse(const char *p, size_t n, unsigned max_rcpt,
                                 struct dropfile_env *e, size_t *used, const char **why);
void dropfile_free(struct dropfile_env *e);

#endif
