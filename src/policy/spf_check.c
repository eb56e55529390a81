/* spf_check: the evaluator (spf.c) driven by libunbound on a loop (see
 * spf_check.h). One question of a check is open at a time; its answer
 * comes back from net/dns.c on the loop and goes to spf_answer. */
#include "policy/spf_check.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/util.h"
#include "net/dns.h"

struct spf_check {
	struct spf_check *next, *prev;
	struct spf_checker *k;
	struct spf *spf;
	struct dns_lookup *lookup;   /* the question open */
	struct event *timer;         /* the time limit */
	spf_check_fn *fn;
	void *ctx;
};

struct spf_checker {
	struct event_base *base;
	struct dns *dns;
	struct spf_check *live;
	unsigned running;
};

struct spf_checker *spf_check_new(struct event_base *base, struct dns *dns)
{
	struct spf_checker *k = util_xcalloc(1, sizeof *k);
	k->base = base;
	k->dns = dns;
	return k;
}

unsigned spf_check_running(const struct spf_checker *k)
{
	return k ? k->running : 0;
}

static void spf_check_unlink(struct spf_check *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		c->k->live = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->k->running--;
}

/* The evaluation's end: the outcome to its asker, then the check goes. */
static void spf_check_done(void *ctx, const struct spf_outcome *o)
{
	struct spf_check *c = ctx;
	spf_check_unlink(c);
	if (c->lookup)
		dns_cancel(c->k->dns, c->lookup);
	if (c->timer)
		event_free(c->timer);
	c->fn(c->ctx, o);
	spf_free(c->spf);   /* done is the evaluation's last act: allowed here */
	free(c);
}

/* net/dns.c's answer as the evaluator takes it. A TXT record's NUL octet
 * becomes DEL, which no record or explanation may hold (RFC 7208 12). */
static void spf_check_answer(void *ctx, const struct dns_rrset *r)
{
	struct spf_check *c = ctx;
	c->lookup = NULL;
	static const enum spf_rcode rcodes[] = { [DNS_OK] = SPF_DNS_OK,
	                                         [DNS_PERM] = SPF_DNS_NXDOMAIN,
	                                         [DNS_TEMP] = SPF_DNS_ERROR };
	const char **rr = util_xcalloc(r->n ? r->n : 1, sizeof *rr);
	for (size_t i = 0; i < r->n; i++) {
		for (size_t j = 0; j < r->rr[i].len; j++)
			if (r->rr[i].data[j] == '\0')
				r->rr[i].data[j] = 0x7f;
		rr[i] = r->rr[i].data;
	}
	struct spf_answer a = { rcodes[r->status], r->n, rr };
	spf_answer(c->spf, &a);   /* may end the check: c is not touched after */
	free(rr);
}

static void spf_check_ask(void *ctx, struct spf *s, const struct spf_query *q)
{
	(void)s;
	static const enum dns_type types[] = { [SPF_Q_TXT] = DNS_T_TXT, [SPF_Q_A] = DNS_T_A,
	                                       [SPF_Q_AAAA] = DNS_T_AAAA, [SPF_Q_MX] = DNS_T_MX,
	                                       [SPF_Q_PTR] = DNS_T_PTR };
	struct spf_check *c = ctx;
	c->lookup = dns_lookup(c->k->dns, q->name, types[q->type], spf_check_answer, c);
}

static void spf_check_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct spf_check *c = arg;
	event_free(c->timer);
	c->timer = NULL;
	if (c->lookup)
		dns_cancel(c->k->dns, c->lookup);
	c->lookup = NULL;
	spf_stop(c->spf, "no answer within the time limit");
}

void spf_check_start(struct spf_checker *k, const struct spf_request *req, unsigned timeout,
                     spf_check_fn *fn, void *ctx)
{
	struct spf_check *c = util_xcalloc(1, sizeof *c);
	c->k = k;
	c->fn = fn;
	c->ctx = ctx;
	c->next = k->live;
	if (k->live)
		k->live->prev = c;
	k->live = c;
	k->running++;
	c->timer = evtimer_new(k->base, spf_check_timeout, c);
	if (!c->timer)
		log_panic("spf: cannot create a timer");
	struct timeval tv = { (time_t)timeout, 0 };
	evtimer_add(c->timer, &tv);
	struct spf_dns dns = { spf_check_ask, c };
	c->spf = spf_new(req, &dns, spf_check_done, c);
	spf_start(c->spf);   /* may end at once (no DNS needed): c is gone then */
}

void spf_check_free(struct spf_checker *k)
{
	if (!k)
		return;
	while (k->live) {
		struct spf_check *c = k->live;
		if (c->lookup)
			dns_cancel(k->dns, c->lookup);
		c->lookup = NULL;
		spf_stop(c->spf, "the server is stopping");
	}
	free(k);
}
