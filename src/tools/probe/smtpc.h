/* smtpc: a small blocking SMTP client for tern-probe.
 *
 * Connects with a timeout, sends lines (CRLF added), reads whole replies
 * (RFC 5321 section 4.2: "ddd-" continuation lines up to "ddd "),
 * upgrades to TLS (RFC 3207 STARTTLS, OpenSSL) and logs in (RFC 4954 AUTH
 * PLAIN and LOGIN; base64 by OpenSSL's EVP coder). Every line sent and
 * received goes through a trace callback (the report's -v transcript, the
 * console's .log). The line, base64 and dot-stuffing helpers are pure.
 */
#ifndef TERN_PROBE_SMTPC_H
#define TERN_PROBE_SMTPC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "lib/buf.h"

#define SMTPC_REPLY_MAX 65536   /* octets in one reply, all lines */

/* dir: '>' sent, '<' received, '*' a note (TLS, connection events). */
typedef void smtpc_trace_fn(void *arg, char dir, const char *line);

struct smtpc_reply {
	int code;          /* 0 when no reply came */
	size_t nlines;
	struct buf text;   /* every line with its code, '\n' between lines */
	struct buf last;   /* the last line's text after "ddd " */
};

struct smtpc_tls {
	char version[32], cipher[96];
	char subject[512], issuer[512], not_after[64];
	long days_left;        /* until the certificate expires; negative: expired */
	bool name_ok, chain_ok;
	char verify_error[160];
};

struct smtpc {
	int fd;
	void *ssl_ctx, *ssl;   /* SSL_CTX *, SSL * once STARTTLS succeeded */
	struct buf in;         /* received, not yet parsed */
	int timeout_ms;
	smtpc_trace_fn *trace;
	void *trace_arg;
	bool hide_next;        /* trace the next sent line as hidden */
	char err[256];         /* the last error, in words */
};

void smtpc_init(struct smtpc *c, int timeout_ms);
void smtpc_close(struct smtpc *c);
/* 0 connected; -1 with c->err. */
int smtpc_connect(struct smtpc *c, const char *ip, int port);
int smtpc_send(struct smtpc *c, const char *line);           /* adds CRLF */
int smtpc_send_raw(struct smtpc *c, const void *p, size_t n); /* not traced */
/* Reads one whole reply: 0, or -1 (timeout, closed, malformed) with err. */
int smtpc_reply(struct smtpc *c, struct smtpc_reply *r);
int smtpc_cmd(struct smtpc *c, const char *line, struct smtpc_reply *r);
/* true when the server sent something not yet read (within wait_ms). */
bool smtpc_readable(struct smtpc *c, int wait_ms);
/* The TLS handshake after "220" to STARTTLS; name is checked against the
 * certificate (a host name or an IP address). 0, or -1 with err. */
int smtpc_tls(struct smtpc *c, const char *name, const char *cafile, struct smtpc_tls *ti);
/* AUTH PLAIN or LOGIN (RFC 4954 section 4); r holds the final reply. */
int smtpc_auth(struct smtpc *c, const char *mech, const char *user,
	       const char *pass, struct smtpc_reply *r);
/* DATA's content: dot-stuffed (RFC 5321 section 4.5.2), bare LF made
 * CRLF, then the final ".". r holds the reply to the dot. */
int smtpc_data(struct smtpc *c, const char *msg, size_t n, struct smtpc_reply *r);

void smtpc_reply_init(struct smtpc_reply *r);
void smtpc_reply_free(struct smtpc_reply *r);

/* Pure helpers. */
/* One reply line: its code and whether more lines follow. -1: malformed. */
int smtpc_parse_line(const char *line, int *code, bool *more);
void smtpc_b64(const void *p, size_t n, struct buf *out);
int smtpc_unb64(const char *s, struct buf *out);   /* -1: not base64 */
void smtpc_dotstuff(const char *p, size_t n, struct buf *out);

#endif
