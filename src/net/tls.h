/* tls: OpenSSL contexts and TLS bufferevents (RFC 3207 STARTTLS, RFC 8314
 * implicit TLS).
 *
 * tls_ctx_new() sets the defaults every context shares (TLS 1.2 minimum,
 * no compression or renegotiation, forward-secret AEAD suites), so the
 * outbound SMTP client can build its own context the same way.
 */
#ifndef TERN_TLS_H
#define TERN_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

struct bufferevent;
struct event_base;

enum tls_role { TLS_SERVER, TLS_CLIENT };

/* A context with the shared defaults; NULL (and the reason logged) on error. */
SSL_CTX *tls_ctx_new(enum tls_role role);

/* A server context with a PEM chain and key, checked to match. */
SSL_CTX *tls_server_ctx(const char *cert_file, const char *key_file);

void tls_ctx_free(SSL_CTX *ctx);

struct tlsa_host;

/* The server a client connects to: its name for SNI, and whether the
 * certificate must carry it (smtp_tls = verify); dane (may be NULL): its
 * usable TLSA records, which then authenticate it instead (RFC 7672 3,
 * OpenSSL's DANE: the context must come from tls_ctx_dane). */
struct tls_peer {
	const char *name;
	bool check_name;
	const struct tlsa_host *dane;
};

/* Let a client context take DANE's records (SSL_CTX_dane_enable); false
 * (and the reason logged) on error. */
bool tls_ctx_dane(SSL_CTX *ctx);

/* After the handshake with dane records: true when the peer's chain
 * matched one (RFC 7672 3.1), described into out ("3 1 1 a1b2..."); else
 * false, with OpenSSL's verification error in out. */
bool tls_dane_match(struct bufferevent *bev, char *out, size_t n);

/* Put TLS on top of a connected socket bufferevent: as a server when peer
 * is NULL, else as a client of peer. For STARTTLS the caller must first
 * discard what the plain one has buffered. The result does not own the
 * socket bufferevent nor the SSL: hand it to linger_close(), which frees
 * all three; nothing else may. */
struct bufferevent *tls_wrap(struct event_base *base, struct bufferevent *plain, SSL_CTX *ctx,
                             const struct tls_peer *peer);

/* The protocol ("TLSv1.3") and the cipher with its bits
 * ("TLS_AES_256_GCM_SHA384 256"), for the log and the counters. */
const char *tls_version(struct bufferevent *bev);
void tls_describe(struct bufferevent *bev, char *out, size_t n);

/* The last OpenSSL error of this bufferevent, as text. */
void tls_error(struct bufferevent *bev, char *out, size_t n);

#endif
