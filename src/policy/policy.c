/* policy: recipient resolution and relay decisions (see policy.h). */
#include "policy/policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "lib/mailbox.h"
#include "lib/log.h"
#include "lib/util.h"
#include "spool/spool.h"

bool policy_may_relay(const struct policy *p, const struct sockaddr *client, bool authed)
{
	return authed || cidr_list_match(&p->conf->relay_networks, client);
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
		out->v = realloc(out->v, out->cap * sizeof *out->v);
		if (!out->v)
			abort();
	}
	struct policy_target *t = &out->v[out->n++];
	snprintf(t->addr, sizeof t->addr, "%s@%s", local, domain);
	if (transport == SPOOL_LOCAL)
		util_lower(t->addr);
	t->transport = transport;
	return true;
}

static bool policy_mailbox_exists(const struct policy *p, const char *local, const char *domain)
{
	char dir[4096];
	struct stat st;
	return mailbox_path(p->conf->mail_dir, local, domain, dir, sizeof dir) &&
	       stat(dir, &st) == 0 && S_ISDIR(st.st_mode);
}

static enum policy_verdict policy_resolve(const struct policy *p, const char *local,
                                          const char *domain, bool may_relay,
                                          struct policy_targets *out, int depth);

/* Expand one alias target: "user@domain" or a bare "user" (same domain). */
static enum policy_verdict policy_target(const struct policy *p, const char *target,
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
	return policy_resolve(p, a.local, a.domain, true, out, depth + 1);
}

static enum policy_verdict policy_local(const struct policy *p, const char *local,
                                        const char *domain, struct policy_targets *out,
                                        int depth)
{
	if (!strcasecmp(local, "postmaster")) {
		struct addr pm;
		if (addr_parse_mailbox(p->conf->postmaster_address, &pm) != ADDR_OK)
			return POLICY_UNKNOWN;
		if (conf_is_local_domain(p->conf, pm.domain) && !strcasecmp(pm.local, "postmaster"))
			return policy_add(out, pm.local, pm.domain, SPOOL_LOCAL) ? POLICY_ACCEPT : POLICY_LOOP;
		return policy_resolve(p, pm.local, pm.domain, true, out, depth + 1);
	}
	char *const *targets;
	size_t n = aliases_lookup(p->aliases, local, domain, &targets);
	for (size_t i = 0; i < n; i++) {
		enum policy_verdict v = policy_target(p, targets[i], domain, out, depth);
		if (v != POLICY_ACCEPT)
			return v;
	}
	if (n)
		return POLICY_ACCEPT;
	if (!policy_mailbox_exists(p, local, domain))
		return POLICY_UNKNOWN;
	return policy_add(out, local, domain, SPOOL_LOCAL) ? POLICY_ACCEPT : POLICY_LOOP;
}

static bool policy_is_lmtp(const struct policy *p, const char *domain)
{
	for (size_t i = 0; i < p->conf->lmtp_domains.n; i++)
		if (!strcasecmp(p->conf->lmtp_domains.v[i], domain))
			return true;
	return false;
}

static enum policy_verdict policy_resolve(const struct policy *p, const char *local,
                                          const char *domain, bool may_relay,
                                          struct policy_targets *out, int depth)
{
	if (depth > POLICY_DEPTH_MAX)
		return POLICY_LOOP;
	if (!*domain || conf_is_local_domain(p->conf, domain))
		return policy_local(p, local, domain, out, depth);
	if (policy_is_lmtp(p, domain))
		return policy_add(out, local, domain, SPOOL_LMTP) ? POLICY_ACCEPT : POLICY_LOOP;
	if (!may_relay)
		return POLICY_RELAY_DENIED;
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

enum policy_verdict policy_rcpt(const struct policy *p, const struct addr *a,
                                bool may_relay, struct policy_targets *out)
{
	/* No address literal names a local domain here, and tern does not
	 * route to literals: refusing them closes a relay trick. */
	if (a->literal)
		return POLICY_RELAY_DENIED;
	bool local = !*a->domain || conf_is_local_domain(p->conf, a->domain);
	if (policy_routing_trick(a, local))
		return POLICY_RELAY_DENIED;
	return policy_resolve(p, a->local, a->domain, may_relay, out, 0);
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

bool policy_sender_owned(const struct policy *p, const char *user, const struct addr *sender)
{
	char from[POLICY_ADDR_MAX];
	if (sender->null)
		return true;
	if (!addr_format(sender, from, sizeof from))
		return false;
	if (!strcasecmp(from, user))
		return true;
	char *const *targets;
	size_t n = aliases_lookup(p->aliases, sender->local, sender->domain, &targets);
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

bool policy_ensure_postmaster(const struct policy *p)
{
	struct addr pm;
	char dir[4096];
	if (addr_parse_mailbox(p->conf->postmaster_address, &pm) != ADDR_OK ||
	    !conf_is_local_domain(p->conf, pm.domain))
		return true;
	char *const *targets;
	if (aliases_lookup(p->aliases, pm.local, pm.domain, &targets))
		return true;
	if (!mailbox_path(p->conf->mail_dir, pm.local, pm.domain, dir, sizeof dir))
		return false;
	if (policy_mailbox_exists(p, pm.local, pm.domain))
		return true;
	log_info("creating the postmaster mailbox %s", dir);
	return mailbox_create(dir);
}
