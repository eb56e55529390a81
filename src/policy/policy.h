/* policy: the one place where the session asks what it may accept.
 *
 * Recipients are resolved here: local domains through postmaster, the
 * aliases file and Maildir existence; other domains only for clients
 * allowed to relay. Later checks (AUTH, limits, milters) join here too,
 * so the state machine never decides policy itself.
 */
#ifndef TERN_POLICY_H
#define TERN_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "lib/addr.h"
#include "lib/aliases.h"
#include "lib/conf.h"

#define POLICY_ADDR_MAX (ADDR_LOCAL_MAX + ADDR_DOMAIN_MAX + 2)
#define POLICY_DEPTH_MAX 8       /* alias nesting */
#define POLICY_TARGETS_MAX 1000  /* deliveries one RCPT may expand into */

struct policy {
	const struct conf *conf;
	const struct aliases *aliases;
};

struct policy_target {
	char addr[POLICY_ADDR_MAX];  /* the mailbox to deliver to */
	int transport;               /* enum spool_transport */
};

struct policy_targets {
	size_t n, cap;
	struct policy_target *v;
};

enum policy_verdict {
	POLICY_ACCEPT,
	POLICY_UNKNOWN,       /* 550 5.1.1 */
	POLICY_RELAY_DENIED,  /* 550 5.7.1 */
	POLICY_LOOP,          /* alias loop or too many targets: 550 5.4.6 */
};

/* May this client send mail to other domains? (RFC 5321 3.6: relaying is
 * the server's choice; tern's default is no.) */
bool policy_may_relay(const struct policy *p, const struct sockaddr *client, bool authed);

/* May an authenticated user send as sender? Its own address (the user
 * name, case-insensitive), an address that aliases_file maps to it
 * directly, or the null sender. */
bool policy_sender_owned(const struct policy *p, const char *user, const struct addr *sender);

/* Resolve a recipient into the mailboxes to deliver to; appends to out.
 * Relay tricks are refused with POLICY_RELAY_DENIED: address literals,
 * '%' and '!' routing in a local part of a local domain, quoted local
 * parts hiding '@' or '%' (the domain is already canonical: lower case,
 * no trailing dot, source route dropped, by addr.c). Local domains need a
 * Maildir or an alias; lmtp_domains are accepted as they are (the LMTP
 * server judges them at delivery). */
enum policy_verdict policy_rcpt(const struct policy *p, const struct addr *a,
                                bool may_relay, struct policy_targets *out);

void policy_targets_free(struct policy_targets *t);

/* Create the Maildir of postmaster_address when it is local and missing
 * (RFC 5321 4.5.1: postmaster must always be deliverable). */
bool policy_ensure_postmaster(const struct policy *p);

#endif
