/* signer: DKIM signing at receipt (see signer.h). */
#include "smtpd/signer.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dkim/dkim.h"
#include "dkim/sign.h"
#include "lib/buf.h"
#include "lib/cidr.h"
#include "lib/event.h"
#include "lib/util.h"

/* Keys of one domain used, at most (RSA and Ed25519, a rotation's two). */
#define SIGNER_KEYS_MAX 4

struct signer {
	const struct signkeys *keys;
	struct dkim_sign *sign;
};

bool signer_owns(const struct settings *set, bool authed, const struct sockaddr *client)
{
	return authed || (set->conf.dkim_sign == CONF_DKIM_SIGN_TRUSTED && client &&
	                  cidr_list_match(&set->conf.relay_networks, client));
}

struct signer *signer_begin(const struct settings *set, bool submitted)
{
	if (!submitted || set->conf.dkim_sign == CONF_DKIM_SIGN_NO ||
	    signkeys_count(set->dkim_keys) == 0)
		return NULL;
	struct signer *g = util_xcalloc(1, sizeof *g);
	g->keys = set->dkim_keys;
	g->sign = dkim_sign_new();
	dkim_sign_feed(g->sign, "\r\n", 2);   /* the block comes at the end: body next */
	return g;
}

void signer_feed(struct signer *g, const char *p, size_t n)
{
	dkim_sign_feed(g->sign, p, n);
}

void signer_free(struct signer *g)
{
	if (!g)
		return;
	dkim_sign_free(g->sign);
	free(g);
}

/* Not signed: why, at info (debug when the domain simply has no key). */
static void signer_not(uint64_t session, const char *qid, enum log_level l, const char *why,
                       const char *domain)
{
	struct ev e;
	ev_init(&e, EK_DKIM, l, session, qid);
	ev_flag(&e, "not signed");
	ev_add(&e, "reason", "%s%s", why, domain ? domain : "");
	ev_emit(&e);
}

/* One field per key of the domain; the event names each selector. */
static void signer_sign(struct signer *g, const char *domain, uint64_t session, const char *qid,
                        struct buf *out)
{
	const struct signkey *k[SIGNER_KEYS_MAX];
	size_t n = signkeys_find(g->keys, domain, k, SIGNER_KEYS_MAX);
	if (n == 0)
		return signer_not(session, qid, LOG_DEBUG, "no key for ", domain);
	n = n < SIGNER_KEYS_MAX ? n : SIGNER_KEYS_MAX;
	int64_t now = (int64_t)time(NULL);
	for (size_t i = 0; i < n; i++) {
		enum dkim_status st = dkim_sign_field(g->sign, k[i]->domain, k[i]->selector, k[i]->key,
		                                      now, out);
		struct ev e;
		ev_init(&e, EK_DKIM, st == DKIM_OK ? LOG_INFO : LOG_ERROR, session, qid);
		ev_flag(&e, st == DKIM_OK ? "signed" : "not signed");
		ev_add(&e, "d", "%s", k[i]->domain);
		ev_add(&e, "s", "%s", k[i]->selector);
		ev_add(&e, "key", "%s", k[i]->path);
		if (st != DKIM_OK)
			ev_add(&e, "reason", "%s", dkim_status_text(st));
		ev_emit(&e);
	}
}

char *signer_end(struct signer *g, const struct msghead *head, uint64_t session,
                 const char *qid)
{
	char domain[256];
	struct buf out = BUF_INIT;
	struct msghead fields = *head;
	fields.blank = false;             /* the fields alone */
	msghead_render(&fields, &out);
	dkim_sign_head(g->sign, buf_cstr(&out), out.len);
	buf_reset(&out);
	enum dkim_status st = dkim_sign_end(g->sign, domain, sizeof domain);
	if (st == DKIM_OK)
		signer_sign(g, domain, session, qid, &out);
	else
		signer_not(session, qid, LOG_INFO, dkim_status_text(st), NULL);
	signer_free(g);
	return out.data;   /* NULL when nothing was signed */
}
