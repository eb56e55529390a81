/* smtp_client: the outbound side, SMTP (RFC 5321) and LMTP (RFC 2033), as
 * an asynchronous state machine on libevent bufferevents.
 *
 * A connection tries its addresses in order (MX preference order) until
 * one greets, answers EHLO (or HELO, or LHLO), and, when offered and the
 * policy allows, completes STARTTLS (RFC 3207) and AUTH (RFC 4954). Then
 * it runs transactions, one job at a time: MAIL, RCPTs and DATA pipelined
 * when PIPELINING (RFC 2920) is offered, and then the next job's commands
 * right after the final dot; the body streamed from the spool with
 * dot-stuffing, DSN parameters passed on when DSN (RFC 3461) is.
 */
#ifndef TERN_SMTP_CLIENT_H
#define TERN_SMTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <openssl/ssl.h>

#include "deliver/deliver.h"
#include "lib/conf.h"
#include "spool/spool.h"

#define SMTPC_ADDRS_MAX 64

/* Where and how to connect. */
struct smtpc_target {
	size_t naddr;
	struct sockaddr_storage addr[SMTPC_ADDRS_MAX];  /* ports set */
	char name[SMTPC_ADDRS_MAX][256];                /* host name of each address */
	bool lmtp;
	enum smtpc_tls tls;
	SSL_CTX *ssl_ctx;          /* client context; NULL: never STARTTLS */
	const char *helo;          /* our name for EHLO/LHLO */
	const char *auth_user;     /* NULL: no AUTH */
	const char *auth_pass;
	unsigned connect_timeout;  /* seconds */
	unsigned timeout;          /* seconds per reply */
	struct closer *closer;     /* where the connection goes to be closed */
};

/* One transaction: a message to some of its recipients. */
struct smtpc_job {
	const struct spool_env *env;
	struct spool_reader *reader;    /* the body comes from here */
	size_t n;
	const unsigned *idx;            /* env->rcpt[idx[i]] */
	struct deliver_result *res;     /* n results, filled in */
	bool dsn_offered;               /* the next hop took our NOTIFY */
	char remote_mta[300];           /* "mx.example[192.0.2.1]" */
};

struct smtpc;
struct event_base;
struct closer;

/* ready: the connection can take a job. fail: it could not get there; every
 * address was tried; why holds the reason ("4.4.1 ..."). done: a job ended,
 * its results are in; the connection is ready again (smtpc_usable) unless
 * it broke, in which case fail follows, or unless a job pipelined after it
 * is now under way. more (may be NULL): a job has been sent whole and the
 * connection could pipeline another after it; return one, or NULL. ready,
 * fail and done may call smtpc_send or smtpc_close; more may not. */
struct smtpc_cbs {
	void (*ready)(struct smtpc *c, void *ctx);
	void (*fail)(struct smtpc *c, const struct deliver_result *why, void *ctx);
	void (*done)(struct smtpc *c, struct smtpc_job *job, void *ctx);
	struct smtpc_job *(*more)(struct smtpc *c, void *ctx);
	void *ctx;
};

struct smtpc *smtpc_open(struct event_base *base, const struct smtpc_target *t,
                         const struct smtpc_cbs *cbs);
/* Run a job on a ready connection. */
void smtpc_send(struct smtpc *c, struct smtpc_job *job);
/* QUIT (when idle) and free; no more callbacks. */
void smtpc_close(struct smtpc *c);
/* QUIT (when idle) and close the connection, but keep the struct for
 * smtpc_destroy (the loop is stopping); no more callbacks. */
void smtpc_hangup(struct smtpc *c);
/* Free at once, without a word (the loop has stopped). */
void smtpc_destroy(struct smtpc *c);
/* Ready for another job (not broken, not closing)? */
bool smtpc_usable(const struct smtpc *c);

/* A client SSL_CTX for the policy (NULL for none); prints why on failure. */
SSL_CTX *smtpc_ssl_ctx(enum smtpc_tls tls, const char *ca_file);

#endif
