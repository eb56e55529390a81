/* policy: the one place where the session asks what it may accept.
 *
 * The policy phase (policy_ask): between a command's syntax check and its
 * execution the session asks, at each stage (connect, HELO, MAIL, RCPT,
 * DATA, end of data, AUTH), and gets back by callback an answer: go on,
 * or a refusal as a reply of the esc table. The answer may come at once or
 * later from the event loop (the reject tarpit; SPF at MAIL, whose DNS
 * runs on the loop through spf_check.c; DNS lists and milters later), and
 * the session waits for it, pipelined commands included. Every decision
 * lives here: connection limits, submission's AUTH requirement, sender
 * ownership, SPF (spf_policy), max_recipients, relaying and recipient
 * resolution, credentials. The session maps answers to replies and
 * decides nothing itself.
 *
 * Recipients are resolved here too (policy_rcpt, also used synchronously by
 * the delivery side for reports, and by VRFY/EXPN): local domains through
 * postmaster, the aliases file and Maildir existence; other domains only
 * for clients allowed to relay.
 */
#ifndef TERN_POLICY_H
#define TERN_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "lib/addr.h"
#include "lib/aliases.h"
#include "lib/conf.h"
#include "lib/esc.h"
#include "policy/settings.h"
#include "policy/spf.h"

#define POLICY_ADDR_MAX (ADDR_LOCAL_MAX + ADDR_DOMAIN_MAX + 2)
#define POLICY_DEPTH_MAX 8       /* alias nesting */
#define POLICY_TARGETS_MAX 1000  /* deliveries one RCPT may expand into */

struct event_base;
struct limits;
struct auth_users;
struct policy_later;
struct spf_checker;

struct policy {
	/* the policy phase (main thread only); the settings are each
	 * client's (policy_client.set) */
	struct event_base *base;
	struct limits *limits;             /* per-address counters */
	struct policy_later *later;        /* answers waiting for their time */
	struct dns *dns;                   /* the main loop's resolver: SPF, DNSBL, and
	                                      the sessions' DKIM and DMARC lookups */
	struct spf_checker *spf;           /* SPF checks, on dns */
	struct policy_dnsbl_wait *dnsbl_waits;  /* MAILs waiting for DNSBL answers */
	bool paused;                       /* ternctl pause smtp: new sessions get 421 */
};

struct policy_target {
	char addr[POLICY_ADDR_MAX];  /* the mailbox to deliver to */
	int transport;               /* enum spool_transport */
	const char *inbox;           /* SPOOL_CAPTURE: the test mode's inbox (owned
	                                by the settings), else NULL */
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
bool policy_may_relay(const struct settings *st, const struct sockaddr *client, bool authed);

/* May an authenticated user send as sender? Its own address (the user
 * name, case-insensitive), an address that aliases_file maps to it
 * directly, or the null sender. */
bool policy_sender_owned(const struct settings *st, const char *user, const struct addr *sender);

/* May an authenticated user dequeue a domain's held mail (RFC 2645 ATRN)?
 * odmr_map says; both in any case (AUTH matches users so). */
bool policy_may_dequeue(const struct settings *st, const char *user, const char *domain);

/* The domains user may dequeue (ATRN without arguments, RFC 2645 4): the
 * first max into out (owned by st), in odmr_map's order; returns how many
 * there are in all. */
size_t policy_dequeue_domains(const struct settings *st, const char *user, const char **out,
                              size_t max);

/* Resolve a recipient into the mailboxes to deliver to; appends to out.
 * Relay tricks are refused with POLICY_RELAY_DENIED: address literals,
 * '%' and '!' routing in a local part of a local domain, quoted local
 * parts hiding '@' or '%' (the domain is already canonical: lower case,
 * no trailing dot, source route dropped, by addr.c). Local domains need a
 * Maildir or an alias; lmtp_domains are accepted as they are (the LMTP
 * server judges them at delivery). */
enum policy_verdict policy_rcpt(const struct settings *st, const struct addr *a,
                                bool may_relay, struct policy_targets *out);

void policy_targets_free(struct policy_targets *t);

/* The test mode: rcpt kept in inbox (owned by the settings), out's one
 * target (out empty before). */
void policy_capture_target(struct policy_targets *out, const char *rcpt, const char *inbox);

/* ---- the policy phase ---- */

enum policy_stage {
	POLICY_CONNECT, POLICY_HELO, POLICY_MAIL, POLICY_RCPT, POLICY_DATA, POLICY_EOM,
	POLICY_AUTH,
};

/* What the policy knows of a client: kept up to date by its session. */
struct policy_client {
	const struct settings *set;  /* the session's (it keeps them to its end) */
	uint64_t session;
	const struct sockaddr *addr;
	const char *ip;
	unsigned modes;            /* CONF_LISTEN_* of the listener */
	const char *listener;      /* its address, "127.0.0.1:2525" */
	unsigned sessions;         /* sessions open on the server, this one included */
	bool tls, authed;
	const char *user;          /* when authed */
	const char *helo;
	unsigned errors;           /* error replies so far */
	unsigned auth_failures;    /* failed AUTH exchanges so far */
	bool counted;              /* holds a slot of the per-address limits */
	struct dnsbl *dnsbl;       /* its DNSBL lookups from connect on, or NULL */
	struct policy_dnsbl_wait *dnsbl_wait;  /* MAIL waiting for them, or NULL */
};

struct policy_query {
	enum policy_stage stage;
	struct policy_client *client;
	const struct addr *addr;   /* MAIL: the sender; RCPT: the recipient */
	const char *sender;        /* RCPT: MAIL's address ("" the null sender) */
	unsigned rcpts;            /* RCPT: recipient commands accepted so far */
	const char *user, *pass;   /* AUTH: the credentials (never logged) */
	const char *challenge;     /* AUTH CRAM-MD5 (RFC 2195): the challenge sent, and */
	const unsigned char *digest;   /* the client's HMAC-MD5 of it; NULL: PLAIN, LOGIN */
};

/* MAIL's SPF check (RFC 7208), kept with the transaction for what reads
 * it later (an Authentication-Results header, RFC 8601 2.7.2). */
struct policy_spf {
	bool checked;              /* false: spf_policy off, or a client not
	                              checked (AUTH, relay_networks) */
	struct spf_outcome o;
};

struct policy_answer {
	bool ok;                   /* go on */
	enum esc_id reply;         /* else: the refusal */
	char arg[2][POLICY_ADDR_MAX];  /* the refusal's %s arguments, in order */
	const char *text;          /* or, not NULL: the whole refusal line made
	                              elsewhere ("ddd x.y.z text": a fault rule's) */
	bool close;                /* and the session ends after the refusal */
	const char *why;           /* a few words for the log (static) */
	enum policy_verdict verdict;   /* RCPT: the resolution */
	struct policy_targets targets; /* RCPT accepted: the mailboxes */
	struct policy_spf spf;     /* MAIL: the SPF check, refused or not */
};

/* fn gets the answer exactly once: before policy_ask returns, or later
 * from the loop (policy_stop answers what is still waiting). The answer is
 * fn's to read until it returns; fn must not keep its targets. */
typedef void policy_answer_fn(void *ctx, struct policy_answer *a);
void policy_ask(struct policy *p, const struct policy_query *q, policy_answer_fn *fn, void *ctx);

/* Is the client's mail all captured (capture = yes, a capture listener)?
 * Such a catcher asks no DNS about the sender (SPF, DMARC, DNSBL): the
 * mail is kept whatever they say, and a test machine may have no
 * resolver at all. */
bool policy_catcher(const struct policy_client *c);

/* The client is gone: release what the policy holds for it. */
void policy_disconnect(struct policy *p, struct policy_client *c);

/* May this command run now? Its CMD_* flags (smtpd/session_priv.h) as
 * plain bits: PRE_TLS allowed before STARTTLS where TLS is required,
 * PRE_AUTH allowed on submission before AUTH, ODMR_PRE_AUTH allowed on an
 * odmr listener before AUTH, NOT_ODMR never offered on an odmr listener
 * (bits 2-4 are the command table's own). R_SUCCESS, or the refusal (its
 * %s, where it has one, is the verb). */
enum {
	POLICY_PRE_TLS = 1 << 0, POLICY_PRE_AUTH = 1 << 1,
	POLICY_ODMR_PRE_AUTH = 1 << 5, POLICY_NOT_ODMR = 1 << 6,
};
enum esc_id policy_gate(const struct policy *p, const struct policy_client *c, unsigned flags);

/* The daemon's policy: the loop its answers come from, with a resolver of
 * its own on it for SPF (resolver as dns_resolver says); per-address
 * limits start empty. */
void policy_init(struct policy *p, struct event_base *base, const char *resolver);
/* The loop is ending: answer what still waits (as it would have been; an
 * SPF check not done is a temperror), and let the resolver go. */
void policy_stop(struct policy *p);
/* policy_stop, then free what policy_init made. */
void policy_free(struct policy *p);

/* Create the Maildir of postmaster_address when it is local and missing
 * (RFC 5321 4.5.1: postmaster must always be deliverable). */
bool policy_ensure_postmaster(const struct settings *st);

#endif
