/* smtpc: the blocking SMTP client (connection, replies, TLS, AUTH, DATA). */
#include "tools/probe/smtpc.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

static void smtpc_trace(struct smtpc *c, char dir, const char *line)
{
	if (c->trace)
		c->trace(c->trace_arg, dir, line);
}

static int smtpc_fail(struct smtpc *c, const char *fmt, const char *arg)
{
	snprintf(c->err, sizeof c->err, fmt, arg);
	return -1;
}

void smtpc_init(struct smtpc *c, int timeout_ms)
{
	memset(c, 0, sizeof *c);
	c->fd = -1;
	c->timeout_ms = timeout_ms;
	buf_init(&c->in);
}

void smtpc_close(struct smtpc *c)
{
	if (c->ssl) {
		SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
	}
	if (c->ssl_ctx)
		SSL_CTX_free(c->ssl_ctx);
	c->ssl = c->ssl_ctx = NULL;
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	buf_free(&c->in);
}

void smtpc_reply_init(struct smtpc_reply *r)
{
	memset(r, 0, sizeof *r);
	buf_init(&r->text);
	buf_init(&r->last);
}

void smtpc_reply_free(struct smtpc_reply *r)
{
	buf_free(&r->text);
	buf_free(&r->last);
}

/* ---------------------------------------------------------------- connect */

static int smtpc_sockaddr(const char *ip, int port, struct sockaddr_storage *ss,
			  socklen_t *len)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	memset(ss, 0, sizeof *ss);
	if (inet_pton(AF_INET, ip, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((unsigned short)port);
		*len = sizeof *s4;
		return 0;
	}
	if (inet_pton(AF_INET6, ip, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((unsigned short)port);
		*len = sizeof *s6;
		return 0;
	}
	return -1;
}

/* Non-blocking connect, poll for the timeout, then back to blocking. */
static int smtpc_connect_wait(struct smtpc *c, const struct sockaddr *sa, socklen_t len)
{
	int fl = fcntl(c->fd, F_GETFL);
	fcntl(c->fd, F_SETFL, fl | O_NONBLOCK);
	if (connect(c->fd, sa, len) < 0 && errno != EINPROGRESS)
		return smtpc_fail(c, "%s", strerror(errno));
	struct pollfd p = { .fd = c->fd, .events = POLLOUT };
	int n = poll(&p, 1, c->timeout_ms);
	if (n == 0)
		return smtpc_fail(c, "%s", "no answer (connection timed out)");
	int soerr = 0;
	socklen_t sl = sizeof soerr;
	getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
	if (n < 0 || soerr)
		return smtpc_fail(c, "%s", strerror(n < 0 ? errno : soerr));
	fcntl(c->fd, F_SETFL, fl);
	return 0;
}

int smtpc_connect(struct smtpc *c, const char *ip, int port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	if (smtpc_sockaddr(ip, port, &ss, &len) < 0)
		return smtpc_fail(c, "not an IP address: %s", ip);
	c->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return smtpc_fail(c, "socket: %s", strerror(errno));
	if (smtpc_connect_wait(c, (struct sockaddr *)&ss, len) < 0) {
		close(c->fd);
		c->fd = -1;
		return -1;
	}
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	return 0;
}

/* ---------------------------------------------------------------- I/O */

static int smtpc_write(struct smtpc *c, const void *p, size_t n)
{
	const char *s = p;
	while (n > 0) {
		ssize_t w;
		if (c->ssl)
			w = SSL_write(c->ssl, s, n > INT32_MAX ? INT32_MAX : (int)n);
		else
			w = send(c->fd, s, n, MSG_NOSIGNAL);
		if (w <= 0) {
			if (!c->ssl && w < 0 && errno == EINTR)
				continue;
			return smtpc_fail(c, "sending failed: %s",
					  c->ssl ? "TLS error" : strerror(errno));
		}
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

int smtpc_send_raw(struct smtpc *c, const void *p, size_t n)
{
	if (c->fd < 0)
		return smtpc_fail(c, "%s", "not connected");
	return smtpc_write(c, p, n);
}

int smtpc_send(struct smtpc *c, const char *line)
{
	struct buf b = BUF_INIT;
	buf_printf(&b, "%s\r\n", line);
	if (c->hide_next)
		smtpc_trace(c, '>', "(credentials, hidden)");
	else
		smtpc_trace(c, '>', line);
	c->hide_next = false;
	int rc = smtpc_send_raw(c, b.data, b.len);
	buf_free(&b);
	return rc;
}

/* After a TLS 1.3 handshake the socket turns readable for session tickets
 * alone: only application data counts, so peek without blocking. */
static bool smtpc_tls_peek(struct smtpc *c)
{
	int fl = fcntl(c->fd, F_GETFL);
	fcntl(c->fd, F_SETFL, fl | O_NONBLOCK);
	char b;
	int n = SSL_peek(c->ssl, &b, 1);
	int e = n > 0 ? SSL_ERROR_NONE : SSL_get_error(c->ssl, n);
	fcntl(c->fd, F_SETFL, fl);
	ERR_clear_error();
	return e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE;
}

bool smtpc_readable(struct smtpc *c, int wait_ms)
{
	if (c->fd < 0)
		return false;
	if (c->in.len > 0 || (c->ssl && SSL_pending(c->ssl) > 0))
		return true;
	struct pollfd p = { .fd = c->fd, .events = POLLIN };
	if (poll(&p, 1, wait_ms) <= 0)
		return false;
	return c->ssl ? smtpc_tls_peek(c) : true;
}

/* One read into c->in, waiting at most until deadline (CLOCK_MONOTONIC ms). */
static int smtpc_fill(struct smtpc *c, long long deadline)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	long long now = ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
	if (!(c->ssl && SSL_pending(c->ssl) > 0)) {
		struct pollfd p = { .fd = c->fd, .events = POLLIN };
		int left = deadline > now ? (int)(deadline - now) : 0;
		if (poll(&p, 1, left) <= 0)
			return smtpc_fail(c, "%s", "no reply within the time limit");
	}
	char tmp[4096];
	ssize_t n = c->ssl ? SSL_read(c->ssl, tmp, sizeof tmp)
			   : recv(c->fd, tmp, sizeof tmp, 0);
	if (n <= 0)
		return smtpc_fail(c, "%s", "the server closed the connection");
	buf_append(&c->in, tmp, (size_t)n);
	return 0;
}

static int smtpc_line(struct smtpc *c, long long deadline, struct buf *line)
{
	char *nl;
	while ((nl = c->in.data ? memchr(c->in.data, '\n', c->in.len) : NULL) == NULL) {
		if (c->in.len > SMTPC_REPLY_MAX)
			return smtpc_fail(c, "%s", "reply line too long");
		if (smtpc_fill(c, deadline) < 0)
			return -1;
	}
	size_t n = (size_t)(nl - c->in.data);
	buf_reset(line);
	buf_append(line, c->in.data, n > 0 && nl[-1] == '\r' ? n - 1 : n);
	buf_consume(&c->in, n + 1);
	return 0;
}

int smtpc_parse_line(const char *line, int *code, bool *more)
{
	for (int i = 0; i < 3; i++)
		if (!isdigit((unsigned char)line[i]))
			return -1;
	if (line[0] < '2' || line[0] > '5')
		return -1;
	if (line[3] != '\0' && line[3] != ' ' && line[3] != '-')
		return -1;
	*code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	*more = line[3] == '-';
	return 0;
}

static int smtpc_reply_line(struct smtpc *c, struct smtpc_reply *r, const char *s)
{
	int code;
	bool more;
	smtpc_trace(c, '<', s);
	if (smtpc_parse_line(s, &code, &more) < 0)
		return smtpc_fail(c, "malformed reply line: %.200s", s);
	if (r->nlines > 0 && code != r->code)
		return smtpc_fail(c, "reply code changed inside a reply: %.200s", s);
	if (r->nlines++ > 0)
		buf_putc(&r->text, '\n');
	buf_puts(&r->text, s);
	r->code = code;
	buf_reset(&r->last);
	buf_puts(&r->last, s[3] ? s + 4 : "");
	if (r->text.len > SMTPC_REPLY_MAX)
		return smtpc_fail(c, "%s", "reply too long");
	return more ? 1 : 0;
}

int smtpc_reply(struct smtpc *c, struct smtpc_reply *r)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	long long deadline = ts.tv_sec * 1000LL + ts.tv_nsec / 1000000 + c->timeout_ms;
	struct buf line = BUF_INIT;
	buf_reset(&r->text);
	buf_reset(&r->last);
	r->code = 0;
	r->nlines = 0;
	int rc;
	do {
		if (c->fd < 0)
			rc = smtpc_fail(c, "%s", "not connected");
		else if ((rc = smtpc_line(c, deadline, &line)) == 0)
			rc = smtpc_reply_line(c, r, buf_cstr(&line));
	} while (rc == 1);
	buf_free(&line);
	if (rc < 0 && r->nlines == 0)
		r->code = 0;
	return rc;
}

int smtpc_cmd(struct smtpc *c, const char *line, struct smtpc_reply *r)
{
	if (smtpc_send(c, line) < 0)
		return -1;
	return smtpc_reply(c, r);
}

/* ---------------------------------------------------------------- TLS */

static void smtpc_tls_names(X509 *cert, struct smtpc_tls *ti)
{
	X509_NAME_oneline(X509_get_subject_name(cert), ti->subject, sizeof ti->subject);
	X509_NAME_oneline(X509_get_issuer_name(cert), ti->issuer, sizeof ti->issuer);
	const ASN1_TIME *na = X509_get0_notAfter(cert);
	BIO *bio = BIO_new(BIO_s_mem());
	ASN1_TIME_print(bio, na);
	int n = BIO_read(bio, ti->not_after, sizeof ti->not_after - 1);
	ti->not_after[n > 0 ? n : 0] = '\0';
	BIO_free(bio);
	int days = 0, secs = 0;
	ASN1_TIME_diff(&days, &secs, NULL, na);
	ti->days_left = days;
}

/* RFC 6125: the name the client wanted, against the certificate. */
static bool smtpc_tls_name_ok(X509 *cert, const char *name)
{
	unsigned char tmp[16];
	if (inet_pton(AF_INET, name, tmp) == 1 || inet_pton(AF_INET6, name, tmp) == 1)
		return X509_check_ip_asc(cert, name, 0) == 1;
	return X509_check_host(cert, name, 0, 0, NULL) == 1;
}

static void smtpc_tls_info(struct smtpc *c, const char *name, struct smtpc_tls *ti)
{
	SSL *ssl = c->ssl;
	memset(ti, 0, sizeof *ti);
	snprintf(ti->version, sizeof ti->version, "%s", SSL_get_version(ssl));
	snprintf(ti->cipher, sizeof ti->cipher, "%s", SSL_get_cipher_name(ssl));
	X509 *cert = SSL_get1_peer_certificate(ssl);
	if (!cert) {
		snprintf(ti->verify_error, sizeof ti->verify_error, "no certificate");
		return;
	}
	smtpc_tls_names(cert, ti);
	ti->name_ok = smtpc_tls_name_ok(cert, name);
	long v = SSL_get_verify_result(ssl);
	ti->chain_ok = v == X509_V_OK;
	snprintf(ti->verify_error, sizeof ti->verify_error, "%s",
		 X509_verify_cert_error_string(v));
	X509_free(cert);
}

static int smtpc_tls_fail(struct smtpc *c, const char *what)
{
	char e[160];
	ERR_error_string_n(ERR_get_error(), e, sizeof e);
	snprintf(c->err, sizeof c->err, "%s: %s", what, e);
	return -1;
}

/* Verification is recorded, not enforced: the report says what failed. */
int smtpc_tls(struct smtpc *c, const char *name, const char *cafile, struct smtpc_tls *ti)
{
	if (c->in.len > 0)
		return smtpc_fail(c, "%s", "the server sent data after its 220 to STARTTLS "
				  "(a possible STARTTLS injection); not starting TLS");
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	c->ssl_ctx = ctx;
	SSL_CTX_set_default_verify_paths(ctx);
	if (cafile && SSL_CTX_load_verify_locations(ctx, cafile, NULL) != 1)
		return smtpc_tls_fail(c, "cannot load the CA file");
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	c->ssl = SSL_new(ctx);
	SSL_set_fd(c->ssl, c->fd);
	unsigned char tmp[16];
	if (inet_pton(AF_INET, name, tmp) != 1 && inet_pton(AF_INET6, name, tmp) != 1)
		SSL_set_tlsext_host_name(c->ssl, name);
	struct timeval tv = { c->timeout_ms / 1000, c->timeout_ms % 1000 * 1000 };
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	if (SSL_connect(c->ssl) != 1) {
		SSL_free(c->ssl);
		c->ssl = NULL;
		return smtpc_tls_fail(c, "TLS handshake failed");
	}
	smtpc_tls_info(c, name, ti);
	smtpc_trace(c, '*', "TLS started");
	return 0;
}

/* ---------------------------------------------------------------- AUTH */

void smtpc_b64(const void *p, size_t n, struct buf *out)
{
	buf_reserve(out, 4 * ((n + 2) / 3) + 1);
	int w = EVP_EncodeBlock((unsigned char *)out->data + out->len, p, (int)n);
	out->len += (size_t)w;
	out->data[out->len] = '\0';
}

int smtpc_unb64(const char *s, struct buf *out)
{
	size_t n = strlen(s);
	if (n % 4 != 0)
		return -1;
	size_t pad = (n > 0 && s[n - 1] == '=') + (n > 1 && s[n - 2] == '=');
	buf_reserve(out, n / 4 * 3 + 1);
	int w = EVP_DecodeBlock((unsigned char *)out->data + out->len,
				(const unsigned char *)s, (int)n);
	if (w < 0)
		return -1;
	out->len += (size_t)w - pad;
	out->data[out->len] = '\0';
	return 0;
}

static int smtpc_auth_step(struct smtpc *c, const char *secret, size_t n,
			   struct smtpc_reply *r)
{
	struct buf b = BUF_INIT;
	smtpc_b64(secret, n, &b);
	c->hide_next = true;
	int rc = smtpc_cmd(c, buf_cstr(&b), r);
	buf_free(&b);
	return rc;
}

/* RFC 4616: authzid NUL authcid NUL passwd, base64 on the AUTH line. */
static int smtpc_auth_plain(struct smtpc *c, const char *user, const char *pass,
			    struct smtpc_reply *r)
{
	struct buf raw = BUF_INIT, line = BUF_INIT;
	buf_putc(&raw, '\0');
	buf_puts(&raw, user);
	buf_putc(&raw, '\0');
	buf_puts(&raw, pass);
	buf_puts(&line, "AUTH PLAIN ");
	smtpc_b64(raw.data, raw.len, &line);
	c->hide_next = true;
	int rc = smtpc_cmd(c, buf_cstr(&line), r);
	buf_free(&raw);
	buf_free(&line);
	return rc;
}

/* The LOGIN mechanism: 334 "Username:", 334 "Password:". */
static int smtpc_auth_login(struct smtpc *c, const char *user, const char *pass,
			    struct smtpc_reply *r)
{
	if (smtpc_cmd(c, "AUTH LOGIN", r) < 0 || r->code != 334)
		return r->code ? 0 : -1;
	if (smtpc_auth_step(c, user, strlen(user), r) < 0 || r->code != 334)
		return r->code ? 0 : -1;
	return smtpc_auth_step(c, pass, strlen(pass), r);
}

int smtpc_auth(struct smtpc *c, const char *mech, const char *user,
	       const char *pass, struct smtpc_reply *r)
{
	if (strcasecmp(mech, "PLAIN") == 0)
		return smtpc_auth_plain(c, user, pass, r);
	if (strcasecmp(mech, "LOGIN") == 0)
		return smtpc_auth_login(c, user, pass, r);
	return smtpc_fail(c, "unsupported AUTH mechanism %s (PLAIN and LOGIN are)", mech);
}

/* ---------------------------------------------------------------- DATA */

/* RFC 5321 section 4.5.2: a line starting with "." gets one more; every
 * line ends in CRLF (a bare LF becomes CRLF); then ".". */
void smtpc_dotstuff(const char *p, size_t n, struct buf *out)
{
	bool bol = true;
	for (size_t i = 0; i < n; i++) {
		if (bol && p[i] == '.')
			buf_putc(out, '.');
		bol = false;
		if (p[i] == '\n') {
			if (i == 0 || p[i - 1] != '\r')
				buf_putc(out, '\r');
			bol = true;
		}
		buf_putc(out, p[i]);
	}
	if (!bol) {
		if (p[n - 1] == '\r')
			buf_putc(out, '\n');
		else
			buf_puts(out, "\r\n");
	}
	buf_puts(out, ".\r\n");
}

int smtpc_data(struct smtpc *c, const char *msg, size_t n, struct smtpc_reply *r)
{
	struct buf b = BUF_INIT;
	smtpc_dotstuff(msg, n, &b);
	char note[64];
	snprintf(note, sizeof note, "(message: %zu octets, then \".\")", b.len);
	smtpc_trace(c, '>', note);
	int rc = smtpc_send_raw(c, b.data, b.len);
	buf_free(&b);
	return rc < 0 ? -1 : smtpc_reply(c, r);
}
