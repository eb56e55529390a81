/* smtpc_conn: the connection level of the SMTP client engine, on libevent
 * bufferevents. What a driver needs to talk SMTP itself: the delivery
 * driver (net/smtpc.h) and tern-probe, from its own event loop.
 *
 * A connection goes to the addresses of a target in order, each within
 * connect_timeout, as its owner asks (smtpc_conn_next). Once connected it
 * sends lines (CRLF added) and raw content, reads whole replies (RFC 5321
 * 4.2, net/smtp.c) and hands each to the owner, puts TLS on after a 220
 * to STARTTLS (RFC 3207; the certificate's facts on request) and runs the
 * AUTH PLAIN or LOGIN exchange (RFC 4954), handing over its final reply.
 * Every line in and out goes to a trace callback, AUTH secrets hidden.
 * Lines are buffered: they leave at the end of the engine's callback that
 * queued them, or at smtpc_conn_flush() for lines queued from outside one.
 * On a plain socket they are written directly (net/wire.h); over TLS what
 * was queued goes to OpenSSL in one write there, so one record where a
 * plain socket has one write. Every connection is closed by net/closer.c.
 */
#ifndef TERN_SMTPC_CONN_H
#define TERN_SMTPC_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <openssl/ssl.h>

#include "lib/conf.h"
#include "net/closer.h"
#include "net/mtasts.h"
#include "net/smtp.h"

#define SMTPC_ADDRS_MAX 64

struct event_base;
struct closer;
struct smtpc_conn;
struct tlsa_set;

/* Where and how to connect. The connection level uses the addresses, the
 * timeouts and the closer; the delivery driver the rest. */
struct smtpc_target {
	size_t naddr;
	struct sockaddr_storage addr[SMTPC_ADDRS_MAX];  /* ports set */
	char name[SMTPC_ADDRS_MAX][256];                /* host name of each address */
	bool lmtp;
	bool chunking;             /* send by BDAT to a server that offers CHUNKING
	                              (RFC 3030 2; never over LMTP); else DATA */
	enum smtpc_tls tls;
	SSL_CTX *ssl_ctx;          /* client context; NULL: never STARTTLS */
	const char *helo;          /* our name for EHLO/LHLO */
	const char *auth_user;     /* NULL: no AUTH */
	const char *auth_pass;
	unsigned connect_timeout;  /* seconds per address */
	unsigned timeout;          /* seconds per reply; 0: none (the owner keeps time) */
	struct closer *closer;     /* where the connection goes to be closed */
	struct tlsa_set *dane;     /* tls dane, dane-only: each host's TLSA verdict
	                              (net/tlsa.h), by name[]; the connection
	                              holds a reference. NULL: none */
	enum mtasts_mode sts;      /* the destination's MTA-STS policy (RFC 8461 4.2)
	                              for hosts DANE does not govern: enforce
	                              requires STARTTLS and a certificate valid for
	                              the host (WebPKI); testing logs what would
	                              have failed. Every host given matches it */
	SSL_CTX *sts_ctx;          /* the verifying context such hosts get */
	char sts_policy[300];      /* "example.com id=... mode=...", for the log */
	bool requiretls;           /* only hosts whose TLS verifies and that offer
	                              REQUIRETLS (RFC 8689 4.2.1); the others are
	                              passed over like a host that is down, and
	                              when none is left the reason is permanent */
	struct closer_taken *adopt;/* not NULL: no connecting, this connection is
	                              taken over (moved; ATRN's reversed session,
	                              RFC 2645 4), addr[0] and name[0] its peer */
};

/* How the connection to the current address ended. */
enum smtpc_down {
	SMTPC_DOWN_REFUSED,    /* connect() failed */
	SMTPC_DOWN_TIMEOUT,    /* no answer within connect_timeout, or no reply within timeout */
	SMTPC_DOWN_LOST,       /* the server closed the connection */
	SMTPC_DOWN_ERROR,      /* a socket or TLS error (a failed handshake too) */
	SMTPC_DOWN_PROTOCOL,   /* a reply that is not SMTP */
};

/* connected: the address smtpc_conn_index() answered; its greeting comes
 * as the first reply. reply: a whole reply. tls: the handshake after
 * smtpc_conn_starttls() succeeded. down: the connection to the current
 * address is over (why, and text in words); the owner calls
 * smtpc_conn_next() or smtpc_conn_close(). sent (may be NULL): what was
 * queued has left; return true after queueing more. trace (may be NULL):
 * dir '>' a line sent, '<' a line received. freed (may be NULL): the
 * connection's memory is gone, no callback follows. */
struct smtpc_conn_cbs {
	void (*connected)(struct smtpc_conn *c, void *ctx);
	void (*reply)(struct smtpc_conn *c, const struct smtp_reply *r, void *ctx);
	void (*tls)(struct smtpc_conn *c, void *ctx);
	void (*down)(struct smtpc_conn *c, enum smtpc_down why, const char *text, void *ctx);
	bool (*sent)(struct smtpc_conn *c, void *ctx);
	void (*trace)(void *ctx, char dir, const char *line);
	void (*freed)(void *ctx);
	void *ctx;
};

/* The certificate and session facts tern-probe reports. */
struct smtpc_tls_facts {
	char version[32], cipher[96];
	char subject[512], issuer[512], not_after[64];
	long days_left;        /* until the certificate expires; negative: expired */
	bool name_ok, chain_ok;
	char verify_error[160];
};

/* Connect to t's first address; t is copied. Connecting starts from the
 * loop: no callback runs before the caller has the handle. */
struct smtpc_conn *smtpc_conn_open(struct event_base *base, const struct smtpc_target *t,
                                   const struct smtpc_conn_cbs *cbs);
/* Give up the current address and connect to the next; false when there
 * is none (the connection then stays down). */
bool smtpc_conn_next(struct smtpc_conn *c);
/* The same address once more, on a new connection (the old one closed);
 * false when the connection is closing. */
bool smtpc_conn_again(struct smtpc_conn *c);

/* One command line, CRLF added, traced. */
void smtpc_conn_line(struct smtpc_conn *c, const char *line);
void smtpc_conn_printf(struct smtpc_conn *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Content as it is (DATA), not traced. */
void smtpc_conn_write(struct smtpc_conn *c, const void *p, size_t n);
/* size octets of the file fd, sent by the kernel (sendfile) when the
 * connection is plain. The engine owns fd from here on, even on failure
 * (false). */
bool smtpc_conn_sendfile(struct smtpc_conn *c, int fd, uint64_t size);
/* The same for size octets from offset off (BDAT's chunks of a file). */
bool smtpc_conn_sendfile_at(struct smtpc_conn *c, int fd, uint64_t off, uint64_t size);
/* Octets queued and not yet written. */
size_t smtpc_conn_pending(const struct smtpc_conn *c);
/* Write what is queued now (see the top of this file). */
void smtpc_conn_flush(struct smtpc_conn *c);
/* Bytes received and not yet part of a whole reply. */
bool smtpc_conn_unread(const struct smtpc_conn *c);

/* After a 220 to STARTTLS: the handshake with ctx, SNI name (not sent for
 * an address), the name checked when check_name. 0, then tls or down;
 * -1 with why when it cannot start (also when the server sent more after
 * its 220: a possible STARTTLS injection, CVE-2011-0411). */
int smtpc_conn_starttls(struct smtpc_conn *c, SSL_CTX *ctx, const char *name, bool check_name,
                        const char **why);
/* The same for a peer described whole (net/tls.h: its TLSA records for
 * DANE, RFC 7672). */
struct tls_peer;
int smtpc_conn_starttls_peer(struct smtpc_conn *c, SSL_CTX *ctx, const struct tls_peer *peer,
                             const char **why);
bool smtpc_conn_tls_on(const struct smtpc_conn *c);
/* After a handshake with TLSA records: did one match (described into
 * out, "3 1 1 a1b2..."), or why not. */
bool smtpc_conn_dane_match(struct smtpc_conn *c, char *out, size_t n);
/* The facts of the TLS session, name checked against the certificate
 * (RFC 6125: a host name, or an address against its IP entries). */
void smtpc_conn_tls_facts(struct smtpc_conn *c, const char *name, struct smtpc_tls_facts *f);

/* AUTH with mech (SMTP_AUTH_PLAIN or SMTP_AUTH_LOGIN); the 334 steps are
 * answered here, the final reply goes to reply. user and pass are copied. */
void smtpc_conn_auth(struct smtpc_conn *c, unsigned mech, const char *user, const char *pass);

/* The target, the current address's index, its name, and "name[ip]". */
const struct smtpc_target *smtpc_conn_target(const struct smtpc_conn *c);
size_t smtpc_conn_index(const struct smtpc_conn *c);
const char *smtpc_conn_name(const struct smtpc_conn *c);
const char *smtpc_conn_peer(const struct smtpc_conn *c);
/* Our own address on the connection, as text ("" when not connected). */
void smtpc_conn_local(const struct smtpc_conn *c, char *out, size_t n);

/* The socket to the closer; no callback but freed follows; the struct
 * stays for smtpc_conn_destroy (the loop is stopping). */
void smtpc_conn_hangup(struct smtpc_conn *c);
/* Hang up, and free from the loop (never under the caller's feet). */
void smtpc_conn_close(struct smtpc_conn *c);
/* Free at once (the loop has stopped). */
void smtpc_conn_destroy(struct smtpc_conn *c);

#endif
