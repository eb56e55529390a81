/* conn: tern-probe's blocking view of the client engine.
 *
 * The engine (net/smtpc_conn.h) is asynchronous; the probe is a sequence
 * of steps. Each call here queues what it sends and runs the probe's own
 * event loop until what it waits for has come, or until the time limit:
 * connect (the engine goes through the addresses, each within the limit),
 * one whole reply, the TLS handshake. Replies the server sends unasked
 * (a 421 before it hangs up) wait in a queue until they are read. Every
 * line sent and received goes through the trace callback (the report's
 * -v transcript, the console's .log), credentials hidden.
 */
#ifndef TERN_PROBE_CONN_H
#define TERN_PROBE_CONN_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/buf.h"
#include "net/smtp.h"
#include "net/smtpc_conn.h"
#include "tools/probe/mx.h"

/* dir: '>' sent, '<' received, '*' a note (TLS). */
typedef void probe_trace_fn(void *arg, char dir, const char *line);

/* The returns of the calls that wait: 0, or one of these with err set. */
enum { PROBE_CONN_ERR = -1, PROBE_CONN_TIMEOUT = -2 };

struct probe_reply;
struct event_base;
struct event;
struct closer;

struct probe_conn {
	struct event_base *base;
	struct closer *closer;
	struct event *timer;
	struct smtpc_conn *c;          /* the engine's connection; NULL once it is down */
	int timeout_ms;
	probe_trace_fn *trace;
	void *trace_arg;
	bool open;                     /* connected, not yet closed here */
	bool up, tls_done, timed_out;
	size_t live;                   /* engine connections not yet freed */
	struct probe_reply *head, **tail;   /* replies read, not yet taken */
	const char *ips[SMTPC_ADDRS_MAX];   /* of the addresses tried (probe_conn_open) */
	int port;
	struct buf *log;               /* connect failures, one line each */
	char ended[256];               /* why the engine's connection went down */
	char err[320];                 /* the last error, in words */
	void *ssl_ctx;                 /* SSL_CTX * of the STARTTLS */
};

/* The name for EHLO/HELO: given (--helo), else this host's name, else
 * "tern-probe.invalid"; into out (n octets). */
void probe_helo(const char *given, char *out, size_t n);

void probe_conn_init(struct probe_conn *c, int timeout_ms);
/* Close (no QUIT) and free everything. */
void probe_conn_free(struct probe_conn *c);
/* Close without a word; the struct can connect again. */
void probe_conn_close(struct probe_conn *c);

/* Connect to the first host and address of l that answers (each within
 * the time limit). name and ip receive what was reached; every failure is
 * appended to log as a line. 0, or -1 when nothing answered. */
int probe_conn_open(struct probe_conn *c, const struct mx_list *l, int port,
                    char name[MX_NAME_MAX], char ip[46], struct buf *log);

int probe_conn_send(struct probe_conn *c, const char *line);   /* adds CRLF */
/* Bytes as they are, in one write (on a plain connection), not traced. */
int probe_conn_write(struct probe_conn *c, const void *p, size_t n);
/* One whole reply into r: 0, or PROBE_CONN_ERR / PROBE_CONN_TIMEOUT. */
int probe_conn_reply(struct probe_conn *c, struct smtp_reply *r);
int probe_conn_cmd(struct probe_conn *c, const char *line, struct smtp_reply *r);
/* True when the server sent something not yet read, or hung up (no wait). */
bool probe_conn_pending(struct probe_conn *c);
/* The TLS handshake after "220" to STARTTLS; name is checked against the
 * certificate (a host name or an IP address), the chain against the
 * system's CAs and cafile. Recorded, not enforced. 0, or -1 with err. */
int probe_conn_tls(struct probe_conn *c, const char *name, const char *cafile,
                   struct smtpc_tls_facts *f);
/* STARTTLS (after its 220) with OpenSSL's DANE and h's usable TLSA
 * records (RFC 7672 3): 1 when the chain matched one (described into
 * out), 0 when none did (OpenSSL's error in out), or PROBE_CONN_ERR. */
struct tlsa_host;
int probe_conn_tls_dane(struct probe_conn *c, const struct tlsa_host *h, char *out, size_t n);
/* AUTH PLAIN or LOGIN (RFC 4954 4); r holds the final reply. */
int probe_conn_auth(struct probe_conn *c, const char *mech, const char *user,
                    const char *pass, struct smtp_reply *r);
/* DATA's content: dot-stuffed (RFC 5321 4.5.2), bare LF made CRLF, then
 * the final "."; r holds the reply to the dot. */
int probe_conn_data(struct probe_conn *c, const char *msg, size_t n, struct smtp_reply *r);

#endif
