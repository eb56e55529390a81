/* policy: the policy phase, recipient resolution and relay decisions
 * (see policy.h). */
#include "policy/policy.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "lib/log.h"
#include "lib/mailbox.h"
#include "lib/util.h"
#include "policy/auth.h"
#include "policy/hold.h"
#include "policy/limits.h"
#include "policy/dnsbl.h"
#include "policy/spf_check.h"
#include "net/dns.h"
#include "spool/spool.h"

bool policy_may_relay(const struct settings *st, const struct sockaddr *client, bool authed)
{
	return authed || cidr_list_match(&st->conf.relay_networks, client);
}

bool policy_may_dequeue(const struct settings *st, const char *user, const char *domain)
{
	return odmr_map_allows(st->odmr, user, domain);
}

size_t policy_dequeue_domains(const struct settings *st, const char *user, const char **out,
                              size_t max)
{
	return odmr_map_domains(st->odmr, user, out, max);
}

static bool policy_add(struct policy_targets *out, const char *local, const char *domain,
                       int transport)
{
	for (size_t i = 0; i < out->n; i++) {   /* one copy per mailbox */
		const char *at = strrchr(out->v[i].addr, '@');
		if (at && !strcasecmp(at + 1, domain) && (size_t)(at - out->v[i].addr) == strlen(local) &&
		    !strncasecmp(out->v[i].addr, local, strlen(local)))
			return true;
	}
	if (out->n >= POLICY_TARGETS_MAX)
		return false;
	if (out->n == out->cap) {
		out->cap = out->cap ? out->cap * 2 : 4;
		out->v = util_xrealloc(out->v, out->cap, sizeof *out->v);
	}
	struct policy_target *t = &out->v[out->n++];
	t->inbox = NULL;
	snprintf(t->addr, sizeof t->addr, "%s@%s", local, domain);
	if (transport == SPOOL_LOCAL)
		util_lower(t->addr);
	t->transport = transport;
	return true;
}

static bool policy_mailbox_exists(const struct settings *st, const char *local, const char *domain)
{
	char dir[4096];
	struct stat sb;
	return mailbox_path(st->conf.mail_dir, local, domain, dir, sizeof dir) &&
	       stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static enum policy_verdict policy_resolve(const struct settings *st, const char *local,
                                          const char *domain, bool may_relay,
                                          struct policy_targets *out, int depth);

/* Expand one alias target: "user@domain" or a bare "user" (same domain). */
static enum policy_verdict policy_target(const struct settings *st, const char *target,
                                         const char *domain, struct policy_targets *out,
                                         int depth)
{
	struct addr a;
	char full[POLICY_ADDR_MAX];
	if (!strchr(target, '@'))
		snprintf(full, sizeof full, "%s@%s", target, domain);
	else
		snprintf(full, sizeof full, "%s", target);
	if (addr_parse_mailbox(full, &a) != ADDR_OK)
		return POLICY_UNKNOWN;
	/* An alias owner may point anywhere: relaying is allowed for targets. */
	return policy_resolve(st, a.local, a.domain, true, out, depth + 1);
}

static enum policy_verdict policy_local(const struct settings *st, const char *local,
                                        const char *domain, struct policy_targets *out,
                                        int depth)
{
	if (!strcasecmp(local, "postmaster")) {
		struct addr pm;
		if (addr_parse_mailbox(st->conf.postmaster_address, &pm) != ADDR_OK)
			return POLICY_UNKNOWN;
		if (conf_is_local_domain(&st->conf, pm.domain) && !strcasecmp(pm.local, "postmaster"))
			return policy_add(out, pm.local, pm.domain, SPOOL_LOCAL) ? POLICY_ACCEPT : POLICY_LOOP;
		return policy_resolve(st, pm.local, pm.domain, true, out, depth + 1);
	}
	char *const *targets;
	size_t n = aliases_lookup(st->aliases, local, domain, &targets);
	for (size_t i = 0; i < n; i++) {
		enum policy_verdict v = policy_target(st, targets[i], domain, out, depth);
		if (v != POLICY_ACCEPT)
			return v;
	}
	if (n)
		return POLICY_ACCEPT;
	if (!policy_mailbox_exists(st, local, domain))
		return POLICY_UNKNOWN;
	return policy_add(out, local, domain, SPOOL_LOCAL) ? POLICY_ACCEPT : POLICY_LOOP;
}

static bool policy_is_lmtp(const struct settings *st, const char *domain)
{
	for (size_t i = 0; i < st->conf.lmtp_domains.n; i++)
		if (!strcasecmp(st->conf.lmtp_domains.v[i], domain))
			return true;
	return false;
}

static enum policy_verdict policy_resolve(const struct settings *st, const char *local,
                                          const char *domain, bool may_relay,
                                          struct policy_targets *out, int depth)
{
	if (depth > POLICY_DEPTH_MAX)
		return POLICY_LOOP;
	if (!*domain || conf_is_local_domain(&st->conf, domain))
		return policy_local(st, local, domain, out, depth);
	if (policy_is_lmtp(st, domain))
		return policy_add(out, local, domain, SPOOL_LMTP) ? POLICY_ACCEPT : POLICY_LOOP;
	if (hold_domain(&st->conf, domain)) {   /* a backup MX relays for them */
		if (!hold_rcpts_allow(st->hold_rcpts, local, domain))
			return POLICY_UNKNOWN;
	} else if (!may_relay) {
		return POLICY_RELAY_DENIED;
	}
	return policy_add(out, local, domain, SPOOL_REMOTE) ? POLICY_ACCEPT : POLICY_LOOP;
}

/* Old routing syntaxes hidden in a local part: the "percent hack"
 * (user%other@here), UUCP bang paths (other!user@here) and quoted local
 * parts holding '@' or '%' ("user@other"@here). A server that forwards
 * these for a local domain is an open relay (RFC 5321 3.6.1, 7.1). */
static bool policy_routing_trick(const struct addr *a, bool local_domain)
{
	if (a->local[0] == '"' && strpbrk(a->local, "@%"))
		return true;
	return local_domain && strpbrk(a->local, "%!@");
}

enum policy_verdict policy_rcpt(const struct settings *st, const struct addr *a,
                                bool may_relay, struct policy_targets *out)
{
	/* No address literal names a local domain here, and tern does not
	 * route to literals: refusing them closes a relay trick. */
	if (a->literal)
		return POLICY_RELAY_DENIED;
	bool local = !*a->domain || conf_is_local_domain(&st->conf, a->domain);
	if (policy_routing_trick(a, local))
		return POLICY_RELAY_DENIED;
	return policy_resolve(st, a->local, a->domain, may_relay, out, 0);
}

/* Does one alias target of local@domain name user? */
static bool policy_target_is(const char *target, const char *domain, const char *user)
{
	char full[POLICY_ADDR_MAX];
	if (strchr(target, '@'))
		snprintf(full, sizeof full, "%s", target);
	else
		snprintf(full, sizeof full, "%s@%s", target, domain);
	return !strcasecmp(full, user);
}

bool policy_sender_owned(const struct settings *st, const char *user, const struct addr *sender)
{
	char from[POLICY_ADDR_MAX];
	if (sender->null)
		return true;
	if (!addr_format(sender, from, sizeof from))
		return false;
	if (!strcasecmp(from, user))
		return true;
	char *const *targets;
	size_t n = aliases_lookup(st->aliases, sender->local, sender->domain, &targets);
	for (size_t i = 0; i < n; i++)
		if (policy_target_is(targets[i], sender->domain, user))
			return true;
	return false;
}

void policy_targets_free(struct policy_targets *t)
{
	free(t->v);
	memset(t, 0, sizeof *t);
}

bool policy_ensure_postmaster(const struct settings *st)
{
	struct addr pm;
	char dir[4096];
	if (addr_parse_mailbox(st->conf.postmaster_address, &pm) != ADDR_OK ||
	    !conf_is_local_domain(&st->conf, pm.domain))
		return true;
	char *const *targets;
	if (aliases_lookup(st->aliases, pm.local, pm.domain, &targets))
		return true;
	if (!mailbox_path(st->conf.mail_dir, pm.local, pm.domain, dir, sizeof dir))
		return false;
	if (policy_mailbox_exists(st, pm.local, pm.domain))
		return true;
	log_info("creating the postmaster mailbox %s", dir);
	return mailbox_create(dir);
}

/* ---- the policy phase ---- */

/* An answer held back until its time (reject_delay). */
struct policy_later {
	struct policy_later *next, *prev;
	struct policy *p;
	struct event *ev;
	policy_answer_fn *fn;
	void *ctx;
	struct policy_answer a;
};

static void policy_refuse(struct policy_answer *a, enum esc_id reply, const char *why)
{
	a->ok = false;
	a->reply = reply;
	a->why = why;
}

static void policy_arg(struct policy_answer *a, int i, const char *s)
{
	snprintf(a->arg[i], sizeof a->arg[i], "%s", s);
}

/* RFC 5321 4.5.3: the server's resources are its own to protect. */
static void policy_connect(struct policy *p, struct policy_client *c, struct policy_answer *a)
{
	const struct conf *cf = &c->set->conf;
	a->close = true;
	policy_arg(a, 0, cf->hostname);
	if (p->paused)
		return policy_refuse(a, R_PAUSED, "paused by the operator");
	if (c->sessions > cf->max_connections)
		return policy_refuse(a, R_TOO_MANY_CONNS, "too many connections");  /* RFC 5321 3.8 */
	enum limits_verdict v = limits_connect(p->limits, c->ip, (int64_t)time(NULL),
	                                       cf->max_connections_per_ip, cf->max_connection_rate);
	if (v == LIMITS_TOO_FAST)
		return policy_refuse(a, R_TOO_FAST, "connection rate limit");
	if (v != LIMITS_OK)
		return policy_refuse(a, R_TOO_MANY_CONNS_IP, "too many connections from the address");
	c->counted = true;
	a->close = false;
	/* RFC 5782: looked up now, the verdict at MAIL (policy_dnsbl) */
	if (!(c->modes & (CONF_LISTEN_SUBMISSION | CONF_LISTEN_ODMR)) && !policy_catcher(c) &&
	    !cidr_list_match(&cf->relay_networks, c->addr))
		c->dnsbl = dnsbl_start(p->dns, p->base, cf, c->ip, c->session);
}

/* An authenticated client sends as itself (RFC 6409 6.1). */
static void policy_mail(const struct policy_query *q, struct policy_answer *a)
{
	const struct policy_client *c = q->client;
	if (!c->authed || policy_sender_owned(c->set, c->user, q->addr))
		return;
	addr_format(q->addr, a->arg[0], sizeof a->arg[0]);
	policy_arg(a, 1, c->user);
	policy_refuse(a, R_SENDER_NOT_OWNED, "sender not owned by the user");
}

void policy_capture_target(struct policy_targets *out, const char *rcpt, const char *inbox)
{
	out->cap = out->n = 1;
	out->v = util_xcalloc(1, sizeof *out->v);
	snprintf(out->v[0].addr, sizeof out->v[0].addr, "%s", rcpt);
	out->v[0].transport = SPOOL_CAPTURE;
	out->v[0].inbox = inbox;
}

bool policy_catcher(const struct policy_client *c)
{
	return c->set->conf.capture || (c->modes & CONF_LISTEN_CAPTURE);
}

/* The test mode (capture.h): a captured recipient is taken as it is, to
 * be kept in its inbox, never delivered, so no relay check applies. */
static bool policy_capture(const struct policy_query *q, struct policy_answer *a)
{
	const struct policy_client *c = q->client;
	char rcpt[POLICY_ADDR_MAX];
	if (!addr_format(q->addr, rcpt, sizeof rcpt))
		return false;
	struct capture_facts f = { .rcpt = rcpt, .from = q->sender ? q->sender : "",
	                           .user = c->authed ? c->user : NULL, .listener = c->listener };
	const char *inbox = capture_inbox(c->set->capture, &f, policy_catcher(c));
	if (!inbox)
		return false;
	policy_capture_target(&a->targets, rcpt, inbox);
	a->verdict = POLICY_ACCEPT;
	return true;
}

static void policy_recipient(const struct policy_query *q, struct policy_answer *a)
{
	static const enum esc_id ids[] = { [POLICY_UNKNOWN] = R_USER_UNKNOWN,
	                                   [POLICY_RELAY_DENIED] = R_RELAY_DENIED,
	                                   [POLICY_LOOP] = R_USER_UNKNOWN };
	static const char *const why[] = { [POLICY_UNKNOWN] = "no such mailbox",
	                                   [POLICY_RELAY_DENIED] = "relaying denied",
	                                   [POLICY_LOOP] = "alias loop or too many targets" };
	if (q->rcpts >= q->client->set->conf.max_recipients)
		return policy_refuse(a, R_TOO_MANY_RCPTS, "max_recipients");  /* RFC 5321 4.5.3.1.10 */
	if (policy_capture(q, a))
		return;
	const struct policy_client *c = q->client;
	bool relay = policy_may_relay(c->set, c->addr, c->authed);
	a->verdict = policy_rcpt(c->set, q->addr, relay, &a->targets);
	if (a->verdict != POLICY_ACCEPT)
		policy_refuse(a, ids[a->verdict], why[a->verdict]);
}

/* RFC 4954 4: credentials (RFC 2195: a CRAM-MD5 answer); after
 * max_auth_failures the session ends. */
static void policy_auth(const struct policy_query *q, struct policy_answer *a)
{
	const struct auth_users *u = q->client->set->users;
	if (q->digest ? auth_users_cram_check(u, q->user, q->challenge, q->digest)
	              : auth_users_check(u, q->user, q->pass))
		return;
	policy_refuse(a, R_AUTH_FAILED, "authentication failed");
	a->close = ++q->client->auth_failures >= q->client->set->conf.max_auth_failures;
}

static void policy_decide(struct policy *p, const struct policy_query *q, struct policy_answer *a)
{
	switch (q->stage) {
	case POLICY_CONNECT: policy_connect(p, q->client, a); break;
	case POLICY_MAIL: policy_mail(q, a); break;
	case POLICY_RCPT: policy_recipient(q, a); break;
	case POLICY_AUTH: policy_auth(q, a); break;
	case POLICY_HELO: case POLICY_DATA: case POLICY_EOM: break;
	}
}

static void policy_later_unlink(struct policy_later *l)
{
	struct policy *p = l->p;
	if (l->prev)
		l->prev->next = l->next;
	else
		p->later = l->next;
	if (l->next)
		l->next->prev = l->prev;
}

static void policy_later_run(struct policy_later *l)
{
	policy_later_unlink(l);
	event_free(l->ev);
	l->fn(l->ctx, &l->a);
	policy_targets_free(&l->a.targets);
	free(l);
}

static void policy_later_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	policy_later_run(arg);
}

/* reject_delay: from the reject_delay_after-th refusal of a session on,
 * each one is answered only after the delay. A client harvesting
 * addresses or guessing passwords gets slower answers, and its pipelined
 * commands wait behind them; other sessions go on. */
static bool policy_tarpit(struct policy *p, const struct policy_client *cl,
                          const struct policy_answer *a, policy_answer_fn *fn, void *ctx)
{
	const struct conf *c = &cl->set->conf;
	if (a->ok || a->close || !c->reject_delay || cl->errors + 1 < c->reject_delay_after)
		return false;
	struct policy_later *l = util_xcalloc(1, sizeof *l);
	l->p = p;
	l->fn = fn;
	l->ctx = ctx;
	l->a = *a;
	l->ev = evtimer_new(p->base, policy_later_cb, l);
	if (!l->ev)
		log_panic("policy: cannot create a timer");
	struct timeval tv = { (time_t)c->reject_delay, 0 };
	evtimer_add(l->ev, &tv);
	l->next = p->later;
	if (l->next)
		l->next->prev = l;
	p->later = l;
	return true;
}

/* Every answer leaves here: now, or after the tarpit's delay. */
static void policy_reply(struct policy *p, const struct policy_client *c, struct policy_answer *a,
                         policy_answer_fn *fn, void *ctx)
{
	if (policy_tarpit(p, c, a, fn, ctx))
		return;
	fn(ctx, a);
	policy_targets_free(&a->targets);
}

/* ---- SPF at MAIL (RFC 7208) ---- */

/* An answer waiting for its SPF check. */
struct policy_spf_wait {
	struct policy *p;
	struct policy_client *c;   /* its session waits too: valid to the end */
	policy_answer_fn *fn;
	void *ctx;
	struct policy_answer a;
};

/* MAIL FROM, or the HELO identity for the null sender (2.4); not for a
 * client whose mail is this server's own to send: an authenticated one
 * or one of relay_networks (local submissions come through the maildrop,
 * which has no MAIL stage). */
static bool policy_spf_wanted(const struct policy *p, const struct policy_query *q)
{
	const struct policy_client *c = q->client;
	return p->spf && q->stage == POLICY_MAIL && c->set->conf.spf_policy != CONF_SPF_OFF &&
	       !c->authed && !policy_catcher(c) &&
	       !cidr_list_match(&c->set->conf.relay_networks, c->addr);
}

/* spf_policy = reject: fail is 550 5.7.23 with the domain's explanation
 * or ours (8.4), temperror 451 4.4.3 (8.6). softfail (8.5), permerror
 * (8.7) and the rest go on, as with record. */
static void policy_spf_verdict(const struct policy_client *c, struct policy_answer *a)
{
	const struct spf_outcome *o = &a->spf.o;
	if (c->set->conf.spf_policy != CONF_SPF_REJECT)
		return;
	if (o->result == SPF_FAIL && o->explanation[0]) {   /* as much as a reply carries */
		snprintf(a->arg[0], sizeof a->arg[0], "%.*s", (int)sizeof a->arg[0] - 1, o->explanation);
		policy_refuse(a, R_SPF_FAIL_EXP, "SPF fail");
	} else if (o->result == SPF_FAIL) {
		policy_arg(a, 0, o->domain);
		policy_arg(a, 1, c->ip);
		policy_refuse(a, R_SPF_FAIL, "SPF fail");
	} else if (o->result == SPF_TEMPERROR) {
		policy_arg(a, 0, o->domain);
		policy_refuse(a, R_SPF_TEMP, "SPF temperror");
	}
}

static void policy_spf_done(void *ctx, const struct spf_outcome *o)
{
	struct policy_spf_wait *w = ctx;
	w->a.spf.checked = true;
	w->a.spf.o = *o;
	policy_spf_verdict(w->c, &w->a);
	policy_reply(w->p, w->c, &w->a, w->fn, w->ctx);
	free(w);
}

static void policy_spf(struct policy *p, const struct policy_query *q, const struct policy_answer *a,
                       policy_answer_fn *fn, void *ctx)
{
	struct policy_spf_wait *w = util_xcalloc(1, sizeof *w);
	*w = (struct policy_spf_wait){ p, q->client, fn, ctx, *a };
	const struct policy_client *c = q->client;
	char sender[POLICY_ADDR_MAX] = "";
	if (!q->addr->null)
		addr_format(q->addr, sender, sizeof sender);
	struct spf_request req = { c->ip, sender, c->helo ? c->helo : "", c->set->conf.hostname,
	                           (int64_t)time(NULL) };
	spf_check_start(p->spf, &req, c->set->conf.spf_timeout, policy_spf_done, w);
}

/* ---- DNSBL at MAIL (RFC 5782) ---- */

/* A MAIL waiting for the lookups begun at connect. Its session waits for
 * the answer even when it closes meanwhile (gone): the lookups end within
 * dnsbl_timeout, or at policy_stop. */
struct policy_dnsbl_wait {
	struct policy_dnsbl_wait *next, *prev;
	struct policy *p;
	struct policy_query q;
	policy_answer_fn *fn;
	void *ctx;
	bool gone;
};

static void policy_dnsbl_ready(void *arg)
{
	struct policy_dnsbl_wait *w = arg;
	struct policy *p = w->p;
	struct policy_client *c = w->q.client;
	if (w->prev)
		w->prev->next = w->next;
	else
		p->dnsbl_waits = w->next;
	if (w->next)
		w->next->prev = w->prev;
	c->dnsbl_wait = NULL;
	struct policy_dnsbl_wait copy = *w;
	free(w);
	if (!copy.gone)
		return policy_ask(p, &copy.q, copy.fn, copy.ctx);
	dnsbl_free(c->dnsbl);
	c->dnsbl = NULL;
	struct policy_answer a;
	memset(&a, 0, sizeof a);
	policy_refuse(&a, R_SUCCESS, "the client has gone");
	copy.fn(copy.ctx, &a);
}

/* Wait for the lookups when they are still out; true if so. */
static bool policy_dnsbl_wait(struct policy *p, const struct policy_query *q, policy_answer_fn *fn,
                              void *ctx)
{
	struct policy_client *c = q->client;
	if (q->stage != POLICY_MAIL || !c->dnsbl || c->authed || dnsbl_ready(c->dnsbl))
		return false;
	struct policy_dnsbl_wait *w = util_xcalloc(1, sizeof *w);
	*w = (struct policy_dnsbl_wait){ p->dnsbl_waits, NULL, p, *q, fn, ctx, false };
	if (w->next)
		w->next->prev = w;
	p->dnsbl_waits = w;
	c->dnsbl_wait = w;
	dnsbl_wait(c->dnsbl, policy_dnsbl_ready, w);
	return true;
}

/* A client a dnsbl zone lists (and no dnswl zone allows): 554 5.7.1 with
 * the list's reason, as Postfix's reject_rbl_client words it. */
static void policy_dnsbl(const struct policy_query *q, struct policy_answer *a)
{
	const struct policy_client *c = q->client;
	const char *reason = "";
	const char *zone = q->stage == POLICY_MAIL && c->dnsbl && !c->authed ?
	                   dnsbl_listed(c->dnsbl, &reason) : NULL;
	if (!zone)
		return;
	policy_arg(a, 0, c->ip);
	snprintf(a->arg[1], sizeof a->arg[1], "%s%s%s", zone, reason[0] ? "; " : "", reason);
	policy_refuse(a, R_DNSBL, "listed on a DNSBL");
}

void policy_ask(struct policy *p, const struct policy_query *q, policy_answer_fn *fn, void *ctx)
{
	if (policy_dnsbl_wait(p, q, fn, ctx))
		return;
	struct policy_answer a;
	memset(&a, 0, sizeof a);
	a.ok = true;
	a.reply = R_SUCCESS;
	a.verdict = POLICY_ACCEPT;
	policy_decide(p, q, &a);
	if (a.ok)
		policy_dnsbl(q, &a);
	if (a.ok && policy_spf_wanted(p, q))
		return policy_spf(p, q, &a, fn, ctx);
	policy_reply(p, q->client, &a, fn, ctx);
}

void policy_disconnect(struct policy *p, struct policy_client *c)
{
	if (c->counted)
		limits_disconnect(p->limits, c->ip);
	c->counted = false;
	if (c->dnsbl_wait) {   /* its session waits for the answer: it comes */
		c->dnsbl_wait->gone = true;
		return;
	}
	dnsbl_free(c->dnsbl);
	c->dnsbl = NULL;
}

enum esc_id policy_gate(const struct policy *p, const struct policy_client *c, unsigned flags)
{
	if ((c->modes & CONF_LISTEN_STARTTLS) && !c->tls && !(flags & POLICY_PRE_TLS))
		return R_TLS_REQUIRED;   /* RFC 3207 4 */
	if ((c->modes & CONF_LISTEN_SUBMISSION) && !c->authed && !(flags & POLICY_PRE_AUTH))
		return R_AUTH_REQUIRED;  /* RFC 6409 4.2, RFC 4954 6 */
	if ((c->modes & CONF_LISTEN_ODMR) && !c->authed && !(flags & POLICY_ODMR_PRE_AUTH))
		return R_AUTH_REQUIRED;  /* RFC 2645 4: the client authenticates first */
	if ((c->modes & CONF_LISTEN_ODMR) && (flags & POLICY_NOT_ODMR))
		return R_ODMR_ONLY;      /* RFC 2645 4: the client never sends mail here */
	(void)p;
	return R_SUCCESS;
}

void policy_init(struct policy *p, struct event_base *base, const char *resolver)
{
	memset(p, 0, sizeof *p);
	p->base = base;
	p->limits = limits_new();
	p->dns = dns_new(base, resolver);   /* libunbound starts at the first lookup */
	p->spf = spf_check_new(base, p->dns);
}

void policy_stop(struct policy *p)
{
	spf_check_free(p->spf);   /* their answers may join the tarpit's */
	p->spf = NULL;
	while (p->dnsbl_waits)
		dnsbl_stop(p->dnsbl_waits->q.client->dnsbl);   /* answers them */
	while (p->later)
		policy_later_run(p->later);
	dns_free(p->dns);         /* after every lookup on it was cancelled */
	p->dns = NULL;
}

void policy_free(struct policy *p)
{
	policy_stop(p);
	limits_free(p->limits);
	p->limits = NULL;
}
