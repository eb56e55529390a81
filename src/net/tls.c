/* tls: contexts and bufferevents (see tls.h). */
#include "net/tls.h"

#include <arpa/inet.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <stdio.h>

#include "lib/log.h"
#include "net/tlsa.h"

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
	/* With SSL_OP_NO_TICKET a TLS 1.3 ticket (RFC 8446 4.6.1) is a key
	 * into OpenSSL's session cache, and every ticket sent is a cached
	 * session: OpenSSL's default of two per handshake filled the cache
	 * with sessions no client would use (a client resumes with one). */
	SSL_CTX_set_num_tickets(ctx, 1);
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

bool tls_ctx_dane(SSL_CTX *ctx)
{
	if (SSL_CTX_dane_enable(ctx) <= 0) {
		tls_log_errors("cannot enable DANE");
		return false;
	}
	return true;
}

/* RFC 7672 3: the TLSA base domain (the MX host's name) is the SNI name
 * and, for DANE-TA(2), the name the certificate must carry (3.2.2);
 * DANE-EE(3) checks no name (3.1.1). Each usable record goes to OpenSSL,
 * which matches the chain against them during the handshake. */
static bool tls_dane_peer(SSL *ssl, const struct tlsa_host *h)
{
	if (SSL_dane_enable(ssl, h->name) <= 0)
		return false;
	SSL_dane_set_flags(ssl, DANE_FLAG_NO_DANE_EE_NAMECHECKS);
	int added = 0;
	for (size_t i = 0; i < h->n; i++) {
		const struct tlsa_rr *r = &h->rr[i];
		int rc = SSL_dane_tlsa_add(ssl, r->usage, r->selector, r->mtype, r->data, r->len);
		if (rc < 0)
			return false;
		added += rc > 0;
	}
	ERR_clear_error();   /* records OpenSSL found unusable leave errors behind */
	return added > 0;
}

bool tls_dane_match(struct bufferevent *bev, char *out, size_t n)
{
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	uint8_t usage, selector, mtype;
	const unsigned char *data;
	size_t len;
	long v = ssl ? SSL_get_verify_result(ssl) : X509_V_ERR_UNSPECIFIED;
	if (v == X509_V_OK && SSL_get0_dane_tlsa(ssl, &usage, &selector, &mtype, &data, &len) >= 0) {
		tlsa_describe(usage, selector, mtype, data, len, out, n);
		return true;
	}
	snprintf(out, n, "%s", v == X509_V_OK ? "no TLSA record matched"
	                                       : X509_verify_cert_error_string(v));
	return false;
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
	if ((peer->dane && !tls_dane_peer(ssl, peer->dane)) ||
	    (!literal && SSL_set_tlsext_host_name(ssl, peer->name) != 1) ||
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
