/* session: one SMTP connection, from greeting to QUIT (RFC 5321 4.1).
 *
 * The state machine reads framed command lines, looks the verb up in the
 * command table (cmd.c) and runs its check, asks the policy (policy.h)
 * and runs its proceed with the answer; AUTH is sasl.c's. DATA streams
 * through the data parser into the spool. Replies come from the esc.c
 * table. A session holds a transaction (struct tx) between MAIL and the
 * end of DATA; RSET, HELO/EHLO and the end of DATA free it.
 */
#ifndef TERN_SESSION_H
#define TERN_SESSION_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

#include "lib/conf.h"
#include "spool/spool.h"
#include "policy/hold.h"
#include "policy/policy.h"

struct closer;
struct dns;
struct post;
struct event_base;
struct event;
struct session;
struct sessions;

/* What all sessions share: the daemon's state as the sessions see it. */
struct server {
	struct event_base *base;
	struct settings *set;       /* the current generation: new sessions take it */
	struct policy *policy;      /* decides; the session asks (policy_ask) */
	struct spool *spool;
	struct closer *closer;      /* closes connections (closer.h) */
	struct session *sessions;   /* every open session, for shutdown */
	unsigned nsessions;
	unsigned peak_sessions;     /* most at once since ternd last gave memory back */
	uint64_t next_id;
	bool shutting_down;
	struct hold_port hold;      /* ETRN and ATRN ask the delivery engine (turn.c) */
	struct post *post;          /* its answers come back to the loop through it */
	struct dns *dns;            /* this loop's resolver: DKIM keys (verifier.h) */
	struct sessions *transcripts;  /* the transcripts' store (spool/sessions.h), or
	                               NULL: transcripts = no */
};

/* Take over an accepted socket of a listener with CONF_LISTEN_* modes and
 * send the greeting. */
void session_start(struct server *srv, int fd, const struct sockaddr *sa, int salen,
                   unsigned modes);

/* Stopping: 421 and close to every session between transactions (and
 * to each one as its transaction ends); with force, to those in a
 * transaction too. A message being committed gets its 250 first. */
void session_close_all(struct server *srv, bool force);

/* Free whatever is left without talking (after the event loop ended). */
void session_free_all(struct server *srv);

#endif
