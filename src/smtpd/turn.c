/* turn: the commands that ask for the mail held here (hold_domains; the
 * seeds' "Autoturn"): ETRN (RFC 1985) from a client in etrn_networks or a
 * user odmr_map allows, and ATRN (RFC 2645) on an odmr listener after
 * AUTH. The delivery engine does the release (policy/hold.h's port); its
 * answer comes back to the loop (net/post.h) and the session, which
 * waited with its input stopped, replies and reads on. After ATRN's 250
 * the roles reverse on the same connection: once the 250 has left, the
 * session hands its socket and TLS session to the engine (a conduit),
 * which delivers the held mail over it as an SMTP client and QUITs.
 */
#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/addr.h"
#include "lib/cidr.h"
#include "lib/util.h"
#include "net/closer.h"
#include "net/post.h"
#include "policy/hold.h"
#include "policy/settings.h"
#include "smtpd/session_priv.h"

#define TURN_DRAIN_TRIES 1000   /* 5 ms each: the 250 to ATRN has 5 s to leave */

/* One request with the engine. */
struct turn {
	struct session *s;
	char node[ADDR_DOMAIN_MAX + 2];   /* ETRN: as the client named it, "domain" or "@domain" */
	int err;
	long count;                       /* recipients released */
	struct hold_conduit *conduit;     /* ATRN: the next hop the connection becomes */
	struct event *drain;              /* ATRN: waits for the 250 to leave */
	unsigned tries;
};

/* RFC 1985 7: ETRN where it may be used, to whom it may be used: clients
 * of etrn_networks, and a user odmr_map lets dequeue the domain. */
static bool turn_etrn_allowed(const struct session *s, const char *domain)
{
	return cidr_list_match(&s->conf->etrn_networks, s->client.addr) ||
	       (s->client.authed && domain && policy_may_dequeue(s->set, s->user, domain));
}

bool turn_etrn_offered(const struct session *s)
{
	return s->conf->hold_domains.n && !session_odmr(s) &&
	       (turn_etrn_allowed(s, NULL) ||
	        (s->client.authed && policy_dequeue_domains(s->set, s->user, NULL, 0) > 0));
}

/* On the loop: the engine's answer (RFC 1985 5.2's codes). */
static void turn_etrn_answered(void *arg)
{
	struct turn *t = arg;
	struct session *s = t->s;
	if (session_wait_over(s)) {
		if (t->err == EBUSY)
			session_reply(s, R_NODE_BUSY, t->node, "a release of it is under way");
		else if (t->err)
			session_reply(s, R_NODE_BUSY, t->node, strerror(t->err));
		else if (t->count == 0)
			session_reply(s, R_NODE_NONE, t->node);
		else   /* RFC 1985 5.2's "pending messages": the recipients released */
			session_reply(s, R_NODE_STARTED, t->count, t->node);
		session_go_on(s);
	}
	free(t);
}

/* The delivery thread. */
static void turn_etrn_started(void *ctx, int err, long count, long messages)
{
	(void)messages;
	struct turn *t = ctx;
	t->err = err;
	t->count = count;
	post_call(t->s->srv->post, turn_etrn_answered, t);
}

/* RFC 1985 5: "ETRN domain", "ETRN @domain" (it and the domains under
 * it); "#queue" names no queue here. */
bool turn_etrn(struct session *s, const char *args)
{
	if (!s->conf->hold_domains.n)
		return session_no(s, R_ETRN);
	if (s->tx)
		return session_no(s, R_ETRN_IN_TX);
	if (!*args || strpbrk(args, " \t"))
		return session_no(s, R_ETRN_SYNTAX);
	char node[ADDR_DOMAIN_MAX + 2];
	snprintf(node, sizeof node, "%s", args);
	if (node[0] == '#')
		return session_no(s, R_NODE_DENIED, node, "no queue of that name here");
	bool sub = node[0] == '@';
	const char *domain = node + sub;
	if (strlen(args) >= sizeof node || !addr_domain_valid(domain))
		return session_no(s, R_ETRN_SYNTAX);
	if (!turn_etrn_allowed(s, domain))
		return session_no(s, R_NODE_DENIED, node,
		                  "this client may not use ETRN (etrn_networks, odmr_map)");
	if (!hold_domain(s->conf, domain))
		return session_no(s, R_NODE_DENIED, node, "no mail is held here for it");
	if (!s->srv->hold.release)
		return session_no(s, R_NODE_BUSY, node, "delivery is off here (queue_only)");
	struct turn *t = util_xcalloc(1, sizeof *t);
	t->s = s;
	snprintf(t->node, sizeof t->node, "%s", node);
	struct hold_release rel = { .n = 1, .subdomains = sub, .started = turn_etrn_started,
	                            .ctx = t };
	snprintf(rel.domain[0], sizeof rel.domain[0], "%s", domain);
	session_wait(s);
	s->srv->hold.release(s->srv->hold.engine, &rel);
	return false;
}

/* ---- ATRN (RFC 2645) ---- */

static void turn_free(struct turn *t)
{
	if (t->drain)
		event_free(t->drain);
	free(t);
}

/* The conduit goes to the engine: with the connection, or without one
 * (nothing to deliver, or the client left) so that it can be freed. */
static void turn_attach(struct turn *t, struct server *srv, struct closer_taken *taken)
{
	srv->hold.conduit_attach(srv->hold.engine, t->conduit, taken);
	t->conduit = NULL;
}

/* From the loop, outside the session's callbacks: once the 250 has left,
 * the connection goes; the session ends. */
static void turn_atrn_drain(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct turn *t = arg;
	struct session *s = t->s;
	struct server *srv = s->srv;
	if (!s->dead && session_output_pending(s) && ++t->tries < TURN_DRAIN_TRIES) {
		struct timeval tv = { 0, 5000 };
		evtimer_add(t->drain, &tv);
		return;
	}
	if (s->dead || session_output_pending(s)) {
		turn_attach(t, srv, NULL);   /* the client left, or never read our 250 */
	} else {
		struct closer_taken taken;
		session_hand_over(s, &taken);
		turn_attach(t, srv, &taken);
	}
	session_wait_over(s);   /* dead by now: the session is freed */
	turn_free(t);
}

static void turn_atrn_answered(void *arg)
{
	struct turn *t = arg;
	struct session *s = t->s;
	struct server *srv = s->srv;
	if (!session_wait_over(s) || post_stopped(srv->post)) {
		turn_attach(t, srv, NULL);   /* the client left, or ternd stops */
		return turn_free(t);
	}
	if (t->err || t->count == 0) {
		turn_attach(t, srv, NULL);
		if (t->err == EBUSY)
			session_reply(s, R_ATRN_LATER, "a release of one of them is under way");
		else if (t->err)
			session_reply(s, R_ATRN_LATER, strerror(t->err));
		else
			session_reply(s, R_ATRN_NONE);
		turn_free(t);
		return session_go_on(s);
	}
	session_reply(s, R_ATRN_OK);
	struct ev e;
	session_event(s, &e, EK_RELEASE, LOG_INFO, NULL);
	ev_add(&e, "atrn", "%s", s->user);
	ev_add(&e, "released", "%ld", t->count);
	ev_add(&e, "roles", "reversed: this connection delivers them");
	ev_emit(&e);
	session_wait(s);   /* no more commands: the connection changes hands */
	t->drain = evtimer_new(s->srv->base, turn_atrn_drain, t);
	event_active(t->drain, EV_TIMEOUT, 0);
	session_go_on(s);
}

/* The delivery thread. */
static void turn_atrn_started(void *ctx, int err, long count, long messages)
{
	(void)messages;
	struct turn *t = ctx;
	t->err = err;
	t->count = count;
	post_call(t->s->srv->post, turn_atrn_answered, t);
}

/* The domains asked for ("a,b"; none: every one the user may have) that
 * the user may dequeue, into rel; false (and a reply) when none. */
static bool turn_atrn_domains(struct session *s, const char *args, struct hold_release *rel)
{
	const char *mine[HOLD_RELEASE_DOMAINS];
	char list[1024];
	if (!*args) {
		size_t n = policy_dequeue_domains(s->set, s->user, mine, HOLD_RELEASE_DOMAINS);
		for (size_t i = 0; i < n && i < HOLD_RELEASE_DOMAINS; i++)
			snprintf(rel->domain[rel->n++], sizeof rel->domain[0], "%s", mine[i]);
		if (!rel->n)
			return session_no(s, R_ATRN_REFUSED, s->user, "any domain");
		return true;
	}
	if (strlen(args) >= sizeof list || strpbrk(args, " \t"))
		return session_no(s, R_ATRN_SYNTAX);
	snprintf(list, sizeof list, "%s", args);
	char refused[ADDR_DOMAIN_MAX + 1] = "";
	for (char *save = NULL, *d = strtok_r(list, ",", &save); d; d = strtok_r(NULL, ",", &save)) {
		if (!addr_domain_valid(d) || rel->n == HOLD_RELEASE_DOMAINS)
			return session_no(s, R_ATRN_SYNTAX);
		if (policy_may_dequeue(s->set, s->user, d))
			snprintf(rel->domain[rel->n++], sizeof rel->domain[0], "%s", d);
		else if (!refused[0])
			snprintf(refused, sizeof refused, "%s", d);
	}
	if (!rel->n)
		return session_no(s, R_ATRN_REFUSED, s->user, refused);
	return true;
}

/* RFC 2645 4: ATRN [domain[,domain...]] after AUTH, on an odmr listener:
 * 250 and the roles reverse, 453 no mail, 450 refused, 451 try later. */
bool turn_atrn(struct session *s, const char *args)
{
	if (!session_odmr(s))
		return session_no(s, R_NOT_OFFERED, "ATRN");
	if (s->tx)
		return session_no(s, R_ETRN_IN_TX);
	struct hold_release rel = { .started = turn_atrn_started };
	if (!turn_atrn_domains(s, args, &rel))
		return false;
	struct hold_port *p = &s->srv->hold;
	if (!p->release)
		return session_no(s, R_ATRN_LATER, "delivery is off here (queue_only)");
	struct turn *t = util_xcalloc(1, sizeof *t);
	t->s = s;
	char name[200];
	snprintf(name, sizeof name, "atrn:%.120s", s->user);
	t->conduit = p->conduit_new(p->engine, name);
	rel.via = t->conduit;
	rel.ctx = t;
	session_wait(s);
	p->release(p->engine, &rel);
	return false;
}
