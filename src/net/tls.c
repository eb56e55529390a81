/* tls: contexts and bufferevents (see tls.h). */
#include "net/tls.h"

#include <arpa/inet.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <stdio.h>

#include "lib/log.h"

/* TLS 1.2 suites: ECDHE only (forward secrecy), AEAD only. TLS 1.3 keeps
 * OpenSSL's defaults, which are all AEAD. */
#define TLS_CIPHERS12 "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL:!SHA1:!SHA256:!SHA384"

static void tls_log_errors(const char *what)
{
	unsigned long e = ERR_get_error();
	char buf[256];
	ERR_error_string_n(e, buf, sizeof buf);
	log_problem("tls: %s: %s\n", what, e ? buf : "unknown error");
	ERR_clear_error();
}

SSL_CTX *tls_ctx_new(enum tls_role role)
{
	SSL_CTX *ctx = SSL_CTX_new(role == TLS_SERVER ? TLS_server_method() : TLS_client_method());
	if (!ctx) {
		tls_log_errors("cannot create a context");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
	                         SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_TICKET);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	if (!SSL_CTX_set_cipher_list(ctx, TLS_CIPHERS12)) {
		tls_log_errors("cipher list");
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

SSL_CTX *tls_server_ctx(const char *cert_file, const char *key_file)
{
	SSL_CTX *ctx = tls_ctx_new(TLS_SERVER);
	if (!ctx)
		return NULL;
	if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
		tls_log_errors(cert_file);
	} else if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
		tls_log_errors(key_file);
	} else if (SSL_CTX_check_private_key(ctx) != 1) {
		tls_log_errors("tls_key does not match tls_cert");
	} else {
		return ctx;
	}
	SSL_CTX_free(ctx);
	return NULL;
}

void tls_ctx_free(SSL_CTX *ctx)
{
	SSL_CTX_free(ctx);
}

/* Without BEV_OPT_CLOSE_ON_FREE: the socket bufferevent outlives the TLS
 * one, so that linger.c can send the close_notify and free the SSL itself,
 * from the loop. */
static struct bufferevent *tls_filter(struct event_base *base, struct bufferevent *plain,
                                      SSL *ssl, enum bufferevent_ssl_state st)
{
	struct bufferevent *bev = bufferevent_openssl_filter_new(base, plain, ssl, st, 0);
	if (!bev) {
		SSL_free(ssl);
		return NULL;
	}
	/* A peer that closes without close_notify ends the session like EOF. */
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	return bev;
}

struct bufferevent *tls_wrap(struct event_base *base, struct bufferevent *plain, SSL_CTX *ctx,
                             const struct tls_peer *peer)
{
	SSL *ssl = SSL_new(ctx);
	if (!ssl)
		return NULL;
	if (!peer)
		return tls_filter(base, plain, ssl, BUFFEREVENT_SSL_ACCEPTING);
	/* RFC 6066 3: SNI, a host name only (not an address literal); RFC
	 * 6125 through OpenSSL's host check */
	unsigned char a[16];
	bool literal = inet_pton(AF_INET, peer->name, a) == 1 || inet_pton(AF_INET6, peer->name, a) == 1;
	if ((!literal && SSL_set_tlsext_host_name(ssl, peer->name) != 1) ||
	    (peer->check_name && SSL_set1_host(ssl, peer->name) != 1)) {
		SSL_free(ssl);
		return NULL;
	}
	return tls_filter(base, plain, ssl, BUFFEREVENT_SSL_CONNECTING);
}

const char *tls_version(struct bufferevent *bev)
{
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	return ssl ? SSL_get_version(ssl) : "none";
}

void tls_describe(struct bufferevent *bev, char *out, size_t n)
{
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	const SSL_CIPHER *c = ssl ? SSL_get_current_cipher(ssl) : NULL;
	if (!c) {
		snprintf(out, n, "no TLS");
		return;
	}
	snprintf(out, n, "%s %d", SSL_CIPHER_get_name(c), SSL_CIPHER_get_bits(c, NULL));
}

void tls_error(struct bufferevent *bev, char *out, size_t n)
{
	unsigned long e = bufferevent_get_openssl_error(bev);
	if (!e) {
		snprintf(out, n, "TLS handshake or connection failed");
		return;
	}
	ERR_error_string_n(e, out, n);
	while (bufferevent_get_openssl_error(bev))
		;
}
