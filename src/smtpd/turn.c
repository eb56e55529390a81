/* turn: the commands that ask for the mail held here (hold_domains; the
 * seeds' "Autoturn"): ETRN (RFC 1985) from a client in etrn_networks.
 * The delivery engine does the release (policy/hold.h's port); its
 * answer comes back to the loop (net/post.h) and the session, which
 * waited with its input stopped, replies and reads on.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/addr.h"
#include "lib/cidr.h"
#include "lib/util.h"
#include "net/post.h"
#include "policy/hold.h"
#include "policy/settings.h"
#include "smtpd/session_priv.h"

/* One request with the engine. */
struct turn {
	struct session *s;
	char node[ADDR_DOMAIN_MAX + 2];   /* as the client named it: "domain" or "@domain" */
	int err;
	long messages;   /* RFC 1985 5.2's "pending messages" */
};

/* RFC 1985 7: ETRN where it may be used, to whom it may be used. */
static bool turn_etrn_allowed(const struct session *s)
{
	return cidr_list_match(&s->conf->etrn_networks, s->client.addr);
}

bool turn_etrn_offered(const struct session *s)
{
	return s->conf->hold_domains.n && turn_etrn_allowed(s);
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
		else if (t->messages == 0)
			session_reply(s, R_NODE_NONE, t->node);
		else
			session_reply(s, R_NODE_STARTED, t->messages, t->node);
		session_go_on(s);
	}
	free(t);
}

/* The delivery thread. */
static void turn_etrn_started(void *ctx, int err, long count, long messages)
{
	(void)count;
	struct turn *t = ctx;
	t->err = err;
	t->messages = messages;
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
	if (!turn_etrn_allowed(s))
		return session_no(s, R_NODE_DENIED, node, "this client may not use ETRN (etrn_networks)");
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
