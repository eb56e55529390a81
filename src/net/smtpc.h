/* smtpc: the delivery driver of the SMTP client engine, SMTP (RFC 5321)
 * and LMTP (RFC 2033), on the connection level (net/smtpc_conn.h).
 *
 * A connection tries its addresses in order (MX preference order) until
 * one greets, answers EHLO (or HELO, or LHLO), and, when offered and the
 * policy (smtp_tls) allows, completes STARTTLS (RFC 3207) and AUTH (RFC
 * 4954). Under dane and dane-only each host's TLSA verdict (the target's
 * tlsa_set, RFC 7672) sets what its STARTTLS must achieve: DANE
 * authentication, TLS without it, or the fallback of may. Under the
 * destination's MTA-STS policy (the target's sts, RFC 8461 4.2) a host
 * DANE does not govern gets the verifying context: enforce requires
 * STARTTLS and a certificate valid for its name, testing logs what would
 * have failed; each address's TLS outcome goes to the owner for TLS-RPT
 * (RFC 8460). Then it runs transactions, one job at a time: MAIL, RCPTs and
 * DATA pipelined when PIPELINING (RFC 2920) is offered, and then the next
 * job's commands right after the final dot; the body read through the
 * job's source and dot-stuffed (or a dotless file sent as it is), DSN
 * parameters passed on when DSN (RFC 3461) is offered. To a server that
 * offers CHUNKING (RFC 3030 2; SMTP only, when the target allows) the body
 * goes as BDAT chunks instead, as it is (no dot-stuffing, no final dot;
 * a body file by ranges through the kernel), each chunk's command and
 * octets in one go and, with PIPELINING, without waiting for the previous
 * chunk's reply; every reply is read, the first refusal ends the
 * transaction for every recipient (with RSET when chunks were left), and
 * the last chunk's reply is what DATA's final reply would have been.
 */
#ifndef TERN_SMTPC_H
#define TERN_SMTPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "net/smtp.h"
#include "net/smtpc_conn.h"
#include "net/tlsrpt.h"

struct smtpc_job;

/* Where a job's envelope and body come from (the spool, in deliver/).
 * mail and rcpt: the envelope in the protocol's terms, recipient i of the
 * job. chunk: piece seq of the body into out (replacing its contents): 0,
 * ENOENT after the last piece, or an errno. file (may be NULL): the body
 * as a file, opened (the engine closes it), its size in *size; -1 when
 * there is none; unless raw (BDAT: the octets go as they are), only a file
 * in which no line begins with a dot. prefix (may be NULL):
 * lines that go before the body, CRLF-ended (header fields made when the
 * message was received: DKIM-Signature), or NULL; dot-stuffed as the body
 * is, and the body file may follow it. */
struct smtpc_source {
	void (*mail)(const struct smtpc_job *job, struct smtp_mail *out);
	void (*rcpt)(const struct smtpc_job *job, size_t i, struct smtp_rcpt *out);
	int (*chunk)(const struct smtpc_job *job, unsigned seq, struct buf *out);
	int (*file)(const struct smtpc_job *job, bool raw, uint64_t *size);
	const char *(*prefix)(const struct smtpc_job *job);
};

/* One transaction: a message to some of its recipients. */
struct smtpc_job {
	const struct smtpc_source *src;
	const void *msg;                /* the source's message */
	void *store;                    /* the source's handle on where bodies are */
	size_t n;
	const unsigned *idx;            /* recipient i is the message's idx[i] */
	struct deliver_result *res;     /* n results, filled in */
	bool dsn_offered;               /* the next hop took our NOTIFY */
	char remote_mta[300];           /* "mx.example[192.0.2.1]" */
	char tls[160];                  /* "TLSv1.3", "TLSv1.3 dane=3 1 1 a1b2...", or "" */
};

struct smtpc;
struct event_base;

/* An address's TLS outcome for TLS-RPT (RFC 8460 4.3): under an MTA-STS
 * policy or DANE every outcome; without either, successes only. */
struct smtpc_tls_result {
	enum tlsrpt_policy policy;
	enum tlsrpt_result result;
	const char *mx;             /* the host's name */
	const char *ip;             /* its address, as text */
	const char *detail;         /* the reason in words ("" for success) */
	const char *local;          /* our address on the connection ("" when none):
	                               sending-mta-ip */
};

/* ready: the connection can take a job. fail: it could not get there; every
 * address was tried; why holds the last one's reason ("4.4.1 ...";
 * permanent, "5.7.30 ...", when that host was passed over for
 * REQUIRETLS, smtpc_target.requiretls). done: a job ended,
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
	/* (may be NULL) each address's TLS outcome, for TLS-RPT */
	void (*tls_result)(struct smtpc *c, const struct smtpc_tls_result *r, void *ctx);
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
/* The extensions the server listed in its EHLO (or LHLO) reply. */
const struct smtp_ext *smtpc_ext(const struct smtpc *c);
/* Does this connection send messages by BDAT (RFC 3030 2): the server
 * offers CHUNKING, the target allows it, and it is not LMTP? */
bool smtpc_bdat(const struct smtpc *c);
/* Is this connection's TLS verified by policy (DANE, verify, MTA-STS
 * enforce): the handshake authenticated the peer? What a REQUIRETLS
 * message needs (RFC 8689 4.2.1). */
bool smtpc_tls_verified(const struct smtpc *c);
/* Why this connection cannot carry a REQUIRETLS message (RFC 8689
 * 4.2.1), as a format whose %s is the next hop's name ("5.7.10 ...",
 * "5.7.30 ..."), or NULL when it can. */
const char *smtpc_requiretls_lacks(const struct smtpc *c);
/* Ready for another job (not broken, not closing)? */
bool smtpc_usable(const struct smtpc *c);

/* A client SSL_CTX for the policy (NULL for none); prints why on failure. */
SSL_CTX *smtpc_ssl_ctx(enum smtpc_tls tls, const char *ca_file);
/* The verifying context of hosts under an MTA-STS policy (RFC 8461 4.2). */
SSL_CTX *smtpc_sts_ctx(const char *ca_file);

#endif
