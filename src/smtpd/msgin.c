/* msgin: a message coming in (see msgin.h). */
#include "smtpd/msgin.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/buf.h"

/* The body, past the header block: signed, and to the spool. */
static void msgin_body(void *ctx, const char *p, size_t n)
{
	struct msgin *m = ctx;
	if (m->signer)
		signer_feed(m->signer, p, n);
	m->stored += n;
	if (!spool_msg_write(m->msg, p, n))
		m->wait = true;
}

void msgin_begin(struct msgin *m, struct spool_msg *msg, struct signer *signer, size_t max_head)
{
	memset(m, 0, sizeof *m);
	m->msg = msg;
	m->signer = signer;
	msghead_init(&m->head, max_head, msgin_body, m);
}

bool msgin_feed(struct msgin *m, const char *p, size_t n)
{
	m->wait = false;
	msghead_feed(&m->head, p, n);
	return !m->wait;
}

bool msgin_end(struct msgin *m)
{
	msghead_end(&m->head);
	return !m->head.too_big;
}

/* RFC 8601 2.2: CFWS before the authserv-id; comments nest (RFC 5322 3.2.2). */
static size_t msgin_skip_cfws(const char *v, size_t len, size_t i)
{
	int depth = 0;
	for (; i < len; i++) {
		char c = v[i];
		if (depth > 0 && c == '\\' && i + 1 < len)
			i++;
		else if (c == '(')
			depth++;
		else if (c == ')' && depth > 0)
			depth--;
		else if (depth == 0 && !isspace((unsigned char)c))
			break;
	}
	return i;
}

bool msgin_claims(const char *v, size_t len, const char *authserv_id)
{
	size_t i = msgin_skip_cfws(v, len, 0), j = i;
	while (j < len && v[j] != ';' && v[j] != '(' && !isspace((unsigned char)v[j]))
		j++;
	size_t n = strlen(authserv_id);
	return n > 0 && j - i == n && !strncasecmp(v + i, authserv_id, n);
}

size_t msgin_strip_verdicts(struct msgin *m, const char *authserv_id)
{
	size_t removed = 0;
	for (size_t k = m->head.nf; k-- > 0;) {
		size_t len;
		if (!msghead_is(&m->head, k, "Authentication-Results"))
			continue;
		const char *v = msghead_value(&m->head, k, &len);
		if (msgin_claims(v, len, authserv_id)) {
			msghead_remove(&m->head, k);
			removed++;
		}
	}
	return removed;
}

char *msgin_prefix(struct msgin *m, const char *fields, uint64_t session, const char *qid)
{
	struct buf out = BUF_INIT;
	if (fields)
		buf_puts(&out, fields);
	if (m->signer) {   /* RFC 6376 5: over the header block as it now is */
		char *sig = signer_end(m->signer, &m->head, session, qid);
		if (sig)
			buf_puts(&out, sig);
		free(sig);
		m->signer = NULL;
	}
	msghead_render(&m->head, &out);
	if (!out.data)
		buf_puts(&out, "");
	return out.data;
}

/* RFC 8689 5: requiretls-field = "TLS-Required:" [FWS] "No" CRLF; ABNF
 * strings are case-insensitive (RFC 5234 2.3). */
bool msgin_tls_optional(const struct msgin *m)
{
	char *v = msghead_text(&m->head, "TLS-Required");
	bool no = strcasecmp(v, "No") == 0;
	free(v);
	return no;
}

void msgin_free(struct msgin *m)
{
	signer_free(m->signer);
	msghead_free(&m->head);
	memset(m, 0, sizeof *m);
}
