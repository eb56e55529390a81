/* verifier: DKIM verification at the end of DATA (see verifier.h). */
#include "smtpd/verifier.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dkim/verify.h"
#include "lib/event.h"
#include "lib/log.h"
#include "lib/util.h"
#include "net/dns.h"

struct verifier_sig {
	struct verifier *v;
	struct dns_txt_query *q;   /* the key lookup out, or NULL */
	enum dkim_status st;
	bool decided;
};

struct verifier {
	struct dkim_verify *dv;
	unsigned timeout;          /* seconds */
	struct event *timer;
	uint64_t session;
	char qid[UTIL_QID_LEN + 1];
	size_t n, open;            /* signatures; of them, without a verdict */
	struct verifier_sig sig[DKIM_SIGS_MAX];
	void (*done)(void *ctx);
	void *ctx;
};

struct verifier *verifier_begin(const struct settings *set, bool submitted)
{
	if (submitted || !set->conf.dkim_verify)
		return NULL;
	struct verifier *v = util_xcalloc(1, sizeof *v);
	v->dv = dkim_verify_new();
	v->timeout = set->conf.dkim_verify_timeout;
	return v;
}

void verifier_feed(struct verifier *v, const char *p, size_t n)
{
	dkim_verify_feed(v->dv, p, n);
}

void verifier_free(struct verifier *v)
{
	if (!v)
		return;
	for (size_t k = 0; k < v->n; k++)
		dns_txt_cancel(v->sig[k].q);
	if (v->timer)
		event_free(v->timer);
	dkim_verify_free(v->dv);
	free(v);
}

size_t verifier_count(const struct verifier *v)
{
	return v->n;
}

enum dkim_status verifier_result(const struct verifier *v, size_t k)
{
	return v->sig[k].st;
}

const struct dkim_sig *verifier_sig(const struct verifier *v, size_t k)
{
	const struct dkim_sig *sig;
	dkim_verify_sig(v->dv, k, &sig);
	return sig;
}

/* One verdict, as the log and monitors see it (RFC 8601's result word). */
static void verifier_say(const struct verifier *v, size_t k)
{
	const struct dkim_sig *sig;
	dkim_verify_sig(v->dv, k, &sig);
	enum dkim_status st = v->sig[k].st;
	struct ev e;
	ev_init(&e, EK_DKIM, LOG_INFO, v->session, v->qid);
	ev_flag(&e, "verified");
	ev_add(&e, "d", "%s", sig->d[0] ? sig->d : "?");
	ev_add(&e, "s", "%s", sig->s[0] ? sig->s : "?");
	ev_add(&e, "a", "%s", dkim_alg_name(sig->alg));
	ev_add(&e, "result", "%s", dkim_status_result(st));
	if (st != DKIM_OK)
		ev_add(&e, "reason", "%s", dkim_status_text(st));
	ev_emit(&e);
}

/* Every signature decided: log them, and hand over (the last thing). */
static void verifier_finish(struct verifier *v)
{
	if (v->timer)
		evtimer_del(v->timer);
	for (size_t k = 0; k < v->n; k++)
		verifier_say(v, k);
	v->done(v->ctx);
}

static void verifier_decide(struct verifier_sig *s, enum dkim_status st)
{
	s->st = st;
	s->decided = true;
	if (--s->v->open == 0)
		verifier_finish(s->v);
}

/* RFC 6376 3.6.2.2: the key record is a TXT record; with several, the
 * first that gives a verdict other than a syntax error counts. */
static void verifier_key(void *ctx, const struct dns_txt *r)
{
	struct verifier_sig *s = ctx;
	struct verifier *v = s->v;
	size_t k = (size_t)(s - v->sig);
	s->q = NULL;   /* the lookup is over (dns freed it) */
	enum dkim_status st = r->status == DNS_PERM ? DKIM_KEY_NONE : DKIM_KEY_TEMP;
	int64_t now = (int64_t)time(NULL);
	for (size_t i = 0; r->status == DNS_OK && i < r->n; i++) {
		enum dkim_status one = dkim_verify_check(v->dv, k, buf_cstr(&r->rec[i]), r->rec[i].len,
		                                         now);
		if (i == 0 || one != DKIM_KEY_SYNTAX)
			st = one;
		if (one != DKIM_KEY_SYNTAX)
			break;
	}
	verifier_decide(s, st);
}

/* dkim_verify_timeout: what is still out is a temporary failure. */
static void verifier_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct verifier *v = arg;
	for (size_t k = 0; k < v->n; k++) {
		if (v->sig[k].decided)
			continue;
		dns_txt_cancel(v->sig[k].q);
		v->sig[k].q = NULL;
		v->sig[k].st = DKIM_KEY_TEMP;
		v->sig[k].decided = true;
	}
	v->open = 0;
	verifier_finish(v);
}

/* Each signature: decided by its field alone, or its key asked for. */
static void verifier_ask(struct verifier *v, struct dns *dns, size_t k)
{
	struct verifier_sig *s = &v->sig[k];
	const struct dkim_sig *sig;
	s->v = v;
	s->st = dkim_verify_sig(v->dv, k, &sig);
	if (s->st != DKIM_OK) {
		s->decided = true;
		return;
	}
	char name[600];
	snprintf(name, sizeof name, "%s._domainkey.%s", sig->s, sig->d);
	v->open++;
	s->q = dns_txt(dns, name, verifier_key, s);
}

bool verifier_end(struct verifier *v, struct dns *dns, struct event_base *base,
                  uint64_t session, const char *qid, void (*done)(void *ctx), void *ctx)
{
	dkim_verify_end(v->dv);
	v->session = session;
	snprintf(v->qid, sizeof v->qid, "%s", qid);
	v->n = dkim_verify_count(v->dv);
	if (dkim_verify_message(v->dv) != DKIM_OK) {
		ev_note(LOG_INFO, session, qid, "dkim: not verified: %s",
		        dkim_status_text(dkim_verify_message(v->dv)));
		return false;
	}
	if (v->n == 0)
		return false;
	v->done = done;
	v->ctx = ctx;
	for (size_t k = 0; k < v->n; k++)
		verifier_ask(v, dns, k);
	if (v->open == 0) {   /* every field decided it alone: say so at once */
		for (size_t k = 0; k < v->n; k++)
			verifier_say(v, k);
		return false;
	}
	v->timer = evtimer_new(base, verifier_timeout, v);
	struct timeval tv = { (time_t)v->timeout, 0 };
	if (!v->timer || evtimer_add(v->timer, &tv) != 0)
		log_panic("verifier: cannot set a timer");
	return true;
}
