/* hold: the domains this server keeps mail for until it is asked for (a
 * backup MX's spool, the seeds' "Autoturn"): hold_domains, which also
 * covers their subdomains, and the optional lists of the recipients each
 * one has (hold_recipients_file), so that RCPT refuses the others instead
 * of the bounce a backup MX would otherwise send later (backscatter).
 * Pure: a table test covers it.
 */
#ifndef TERN_HOLD_H
#define TERN_HOLD_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/conf.h"

/* Is domain in hold_domains, or a subdomain of one? */
bool hold_domain(const struct conf *c, const char *domain);

/* Does domain fall under pattern: the same name, or (subdomains) one
 * under it too (ETRN's "@domain", RFC 1985 5.3)? Case-insensitive. */
bool hold_domain_under(const char *domain, const char *pattern, bool subdomains);

struct hold_rcpts;

/* Load "local@domain" and "@domain" lines ('#' comments). Problems are
 * printed as FILE:LINE and counted in *bad. path "" gives an empty list. */
struct hold_rcpts *hold_rcpts_load(const char *path, int *bad);
void hold_rcpts_free(struct hold_rcpts *h);
/* One line of that file (trimmed, comments gone); 0, or 1 after printing
 * origin: the problem. For tests and the fuzzer. */
struct hold_rcpts *hold_rcpts_new(void);
int hold_rcpts_line(struct hold_rcpts *h, char *line, const char *origin);

/* May local@domain be accepted for a held domain? Yes when the list has
 * no line for the domain, or it has "@domain", or "local@domain". */
bool hold_rcpts_allow(const struct hold_rcpts *h, const char *local, const char *domain);

/* A release of held mail followed to its end: ETRN (RFC 1985), ATRN (RFC
 * 2645), the dequeue trigger, an operator. The held recipients of each
 * domain (and of the domains under it, with subdomains: ETRN's "@domain")
 * are made due and delivered, by their route, or over via (ATRN's
 * reversed connection, a conduit), or to the host `to` names (a drain,
 * with all: every pending recipient, not only the held ones). The callbacks run on the delivery
 * thread (hand the news over); ctx must live until finished, or until
 * started with an error (with result and finished NULL: until started).
 * started: err 0, the recipients released and the distinct messages they
 * are in (0: nothing waited; finished follows at once), EBUSY when a
 * release of one of these domains is under way (RFC 1985's 458),
 * ECANCELED when the engine stopped. result (may be NULL): a released
 * recipient's attempt is over (status: enum spool_status; SPOOL_PENDING:
 * deferred, held again). finished: every one has had its attempt, or the
 * release stopped waiting for the rest. */
#define HOLD_RELEASE_DOMAINS 16
struct hold_conduit;
struct hold_release {
	char domain[HOLD_RELEASE_DOMAINS][256];
	size_t n;
	bool subdomains;
	struct hold_conduit *via;
	/* a drain (ternctl drain --to): every pending recipient, held or not
	 * (of the domains, or all with none), to this host:port */
	bool all;
	char to[300];
	void (*started)(void *ctx, int err, long count, long messages);
	void (*result)(void *ctx, const char *qid, const char *rcpt, int status, const char *reply);
	void (*finished)(void *ctx, long delivered, long deferred, long failed);
	void *ctx;
};

/* How a session asks the delivery engine for held mail: smtpd and deliver
 * sit side by side and never include each other, so ternd wires these to
 * queue_release, queue_conduit_new and queue_conduit_attach (NULL release:
 * no delivery here, queue_only). */
struct closer_taken;
struct hold_port {
	void (*release)(void *engine, const struct hold_release *rel);
	struct hold_conduit *(*conduit_new)(void *engine, const char *name);
	void (*conduit_attach)(void *engine, struct hold_conduit *c, struct closer_taken *t);
	void *engine;
};

#endif
