/* smtpc_conn: the client engine's connection level (see smtpc_conn.h):
 * addresses and timeouts, lines and replies, STARTTLS and its facts, the
 * AUTH exchange, the trace. */
#include "net/smtpc_conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/log.h"
#include "lib/util.h"
#include "net/closer.h"
#include "net/tls.h"
#include "net/tlsa.h"
#include "net/wire.h"

#define SMTPC_HIDDEN "(credentials, hidden)"

enum smtpc_conn_state { K_CONNECT, K_UP, K_HANDSHAKE, K_DOWN };

/* Where an AUTH exchange stands: the next reply answers ... */
enum smtpc_conn_auth { A_NONE, A_USER, A_PASS, A_FINAL };

struct smtpc_conn {
	struct event_base *base;
	struct smtpc_target t;
	struct smtpc_conn_cbs cbs;
	struct bufferevent *bev;
	struct event *start_ev;         /* connect, and later free, from the loop */
	enum smtpc_conn_state state;
	size_t ai;                      /* the address being tried */
	bool tls, direct;               /* direct: plain and connected, wire.h writes */
	bool closing, release;          /* release: start_ev frees the struct */
	char peer[300];                 /* "name[ip]" */
	struct smtp_reply reply;        /* the reply being read */
	bool whole;                     /* reply is whole: its owner has it */
	enum smtpc_conn_auth auth;
	char *auth_user, *auth_pass;    /* copies, wiped at the end of the exchange */
	struct closer_taken taken;      /* t.adopt's connection, until started */
	bool adopt;
	/* Over TLS, what is sent gathers here and goes to OpenSSL at the flush
	 * points, where plain sockets are written: libevent's filter makes a
	 * record of every add, so a command and its CRLF were two. */
	struct buf cork;
	bool cork_secret;               /* AUTH is in it: wiped when it leaves */
	/* A TLS connection taken over (ATRN's reversed session): every add its
	 * own record, no cork. fetchmail, the ODMR client, relays it to the
	 * customer's server a line per select() wakeup: lines left in a
	 * record it has read, once the socket is drained, are never relayed
	 * (commands pipelined in one record stalled until the timeout). */
	bool uncorked;
};

static void smtpc_conn_read_cb(struct bufferevent *bev, void *arg);
static void smtpc_conn_write_cb(struct bufferevent *bev, void *arg);
static void smtpc_conn_event_cb(struct bufferevent *bev, short what, void *arg);

/* ---- lines out ---- */

static void smtpc_conn_trace(struct smtpc_conn *c, char dir, const char *line)
{
	if (c->cbs.trace)
		c->cbs.trace(c->cbs.ctx, dir, line);
}

static void smtpc_conn_out(struct smtpc_conn *c, const void *p, size_t n)
{
	if (c->tls && !c->uncorked)
		buf_append(&c->cork, p, n);
	else
		evbuffer_add(bufferevent_get_output(c->bev), p, n);
}

/* The cork to OpenSSL: one SSL_write, records of up to 16 KiB. */
static void smtpc_conn_uncork(struct smtpc_conn *c)
{
	if (c->cork.len && c->bev)
		evbuffer_add(bufferevent_get_output(c->bev), c->cork.data, c->cork.len);
	if (c->cork_secret && c->cork.len)
		explicit_bzero(c->cork.data, c->cork.len);
	c->cork_secret = false;
	buf_reset(&c->cork);
}

/* The current connection to the closer, with what was queued for it
 * (QUIT; over TLS, the cork). */
static void smtpc_conn_close_bev(struct smtpc_conn *c)
{
	smtpc_conn_uncork(c);
	closer_close(c->t.closer, c->bev);
	c->bev = NULL;
}

static void smtpc_conn_send(struct smtpc_conn *c, const char *line, bool secret)
{
	smtpc_conn_trace(c, '>', secret ? SMTPC_HIDDEN : line);
	if (!c->bev)
		return;
	smtpc_conn_out(c, line, strlen(line));
	smtpc_conn_out(c, "\r\n", 2);
	c->cork_secret |= secret;   /* only the cork is wiped: what it holds */
}

void smtpc_conn_line(struct smtpc_conn *c, const char *line)
{
	smtpc_conn_send(c, line, false);
}

void smtpc_conn_printf(struct smtpc_conn *c, const char *fmt, ...)
{
	struct buf b = BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	smtpc_conn_send(c, buf_cstr(&b), false);
	buf_free(&b);
}

void smtpc_conn_write(struct smtpc_conn *c, const void *p, size_t n)
{
	if (c->bev && n)
		smtpc_conn_out(c, p, n);
}

bool smtpc_conn_sendfile_at(struct smtpc_conn *c, int fd, uint64_t off, uint64_t size)
{
	if (!c->bev || c->tls || size > INT64_MAX || off > INT64_MAX - size) {
		close(fd);
		return false;
	}
	if (size == 0) {
		close(fd);
		return true;
	}
	/* on failure libevent has closed fd */
	return evbuffer_add_file(bufferevent_get_output(c->bev), fd, (ev_off_t)off,
	                         (ev_off_t)size) == 0;
}

bool smtpc_conn_sendfile(struct smtpc_conn *c, int fd, uint64_t size)
{
	return smtpc_conn_sendfile_at(c, fd, 0, size);
}

size_t smtpc_conn_pending(const struct smtpc_conn *c)
{
	return c->bev ? evbuffer_get_length(bufferevent_get_output(c->bev)) + c->cork.len : 0;
}

/* On a plain socket, write now (wire.h); output pushed on for as long as
 * the socket takes it and the owner has more: no write callback comes for
 * output that left at once. Over TLS, the cork to OpenSSL. */
void smtpc_conn_flush(struct smtpc_conn *c)
{
	smtpc_conn_uncork(c);
	while (c->direct && c->bev && wire_flush(c->bev) && c->cbs.sent &&
	       c->cbs.sent(c, c->cbs.ctx))
		;
}

bool smtpc_conn_unread(const struct smtpc_conn *c)
{
	return (c->reply.nlines > 0 && !c->whole) ||
	       (c->bev && evbuffer_get_length(bufferevent_get_input(c->bev)) > 0);
}

/* ---- AUTH, RFC 4954 4 ---- */

static void smtpc_conn_auth_end(struct smtpc_conn *c)
{
	for (char **s = &c->auth_user; s <= &c->auth_pass; s++)
		if (*s) {
			explicit_bzero(*s, strlen(*s));
			free(*s);
			*s = NULL;
		}
	c->auth = A_NONE;
}

void smtpc_conn_auth(struct smtpc_conn *c, unsigned mech, const char *user, const char *pass)
{
	smtpc_conn_auth_end(c);
	if (mech != SMTP_AUTH_PLAIN) {
		c->auth_user = util_xstrdup(user);
		c->auth_pass = util_xstrdup(pass);
		c->auth = A_USER;
		return smtpc_conn_line(c, "AUTH LOGIN");
	}
	struct buf b = BUF_INIT;
	buf_puts(&b, "AUTH PLAIN ");
	smtp_auth_plain(user, pass, &b);
	c->auth = A_FINAL;
	smtpc_conn_send(c, b.data, true);
	explicit_bzero(b.data, b.len);
	buf_free(&b);
}

/* LOGIN's 334 "Username:" and "Password:" are answered here; true when
 * the reply was one of them. */
static bool smtpc_conn_auth_step(struct smtpc_conn *c)
{
	if (c->reply.code != 334 || (c->auth != A_USER && c->auth != A_PASS))
		return false;
	struct buf b = BUF_INIT;
	smtp_auth_login(c->auth == A_USER ? c->auth_user : c->auth_pass, &b);
	c->auth = c->auth == A_USER ? A_PASS : A_FINAL;
	smtpc_conn_send(c, b.data, true);
	explicit_bzero(b.data, b.len);
	buf_free(&b);
	return true;
}

/* ---- replies in ---- */

/* The connection to this address is over; the owner decides what next. */
static void smtpc_conn_down(struct smtpc_conn *c, enum smtpc_down why, const char *text)
{
	smtpc_conn_close_bev(c);
	c->direct = c->tls = false;
	c->state = K_DOWN;
	smtpc_conn_auth_end(c);
	smtp_reply_reset(&c->reply);
	c->cbs.down(c, why, text, c->cbs.ctx);
}

static void smtpc_conn_got_reply(struct smtpc_conn *c)
{
	if (c->auth != A_NONE && smtpc_conn_auth_step(c))
		return;
	if (c->auth != A_NONE)
		smtpc_conn_auth_end(c);
	c->cbs.reply(c, &c->reply, c->cbs.ctx);
}

/* One line: 1 a reply was handed over, 0 none yet, -1 the connection is
 * down (a reply that is not SMTP). */
static int smtpc_conn_got_line(struct smtpc_conn *c, const char *line, size_t n)
{
	smtpc_conn_trace(c, '<', line);
	int rc = smtp_reply_add(&c->reply, line, n);
	if (rc < 0) {
		char why[300];
		snprintf(why, sizeof why, "%s: %.200s", smtp_reply_error(rc), line);
		smtpc_conn_down(c, SMTPC_DOWN_PROTOCOL, why);
		return -1;
	}
	if (rc == 0)
		return 0;
	c->whole = true;
	smtpc_conn_got_reply(c);
	c->whole = false;
	smtp_reply_reset(&c->reply);
	return 1;
}

/* Lines end in CRLF (a bare LF is taken too); the callbacks may start TLS,
 * move to another address or hang up: reading stops when the bufferevent
 * is no longer this one. */
static void smtpc_conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct smtpc_conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	while (!c->closing && c->bev == bev) {
		size_t n;
		char *line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF);
		if (!line) {
			if (evbuffer_get_length(in) > SMTP_REPLY_MAX)
				return smtpc_conn_down(c, SMTPC_DOWN_PROTOCOL, "reply line too long");
			break;
		}
		int rc = smtpc_conn_got_line(c, line, n);
		free(line);
		if (rc < 0)
			return;
	}
	smtpc_conn_flush(c);
}

static void smtpc_conn_write_cb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	struct smtpc_conn *c = arg;
	if (c->direct)
		wire_direct(c->bev);   /* libevent wrote the rest: direct again */
	if (c->cbs.sent)
		c->cbs.sent(c, c->cbs.ctx);
	smtpc_conn_flush(c);
}

/* ---- events ---- */

static void smtpc_conn_timeouts(struct smtpc_conn *c, unsigned seconds)
{
	struct timeval tv = { (time_t)seconds, 0 };
	bufferevent_set_timeouts(c->bev, seconds ? &tv : NULL, seconds ? &tv : NULL);
}

static void smtpc_conn_connected(struct smtpc_conn *c)
{
	if (c->state == K_HANDSHAKE) {
		c->state = K_UP;
		c->tls = true;
		c->cbs.tls(c, c->cbs.ctx);
	} else {
		c->state = K_UP;
		smtpc_conn_timeouts(c, c->t.timeout);
		wire_direct(c->bev);
		c->direct = true;
		c->cbs.connected(c, c->cbs.ctx);
	}
	if (c->bev)
		smtpc_conn_flush(c);
}

static void smtpc_conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct smtpc_conn *c = arg;
	if (what & BEV_EVENT_CONNECTED)
		return smtpc_conn_connected(c);
	/* over TLS the last reply (221, a 421) can come with the close in
	 * one read: take its lines before the connection goes down */
	if ((what & BEV_EVENT_EOF) && evbuffer_get_length(bufferevent_get_input(bev)) > 0) {
		smtpc_conn_read_cb(bev, c);
		if (c->closing || c->bev != bev)
			return;
	}
	int err = EVUTIL_SOCKET_ERROR();
	unsigned long e = bufferevent_get_openssl_error(bev);
	bool connecting = c->state == K_CONNECT;
	char why[256];
	enum smtpc_down kind = SMTPC_DOWN_ERROR;
	if (e) {
		snprintf(why, sizeof why, "TLS error: %s", ERR_reason_error_string(e));
		while (bufferevent_get_openssl_error(bev))
			;
	} else if (what & BEV_EVENT_TIMEOUT) {
		kind = SMTPC_DOWN_TIMEOUT;
		snprintf(why, sizeof why, "%s", connecting ? "connection timed out" :
		         "timeout waiting for a reply");
	} else if (what & BEV_EVENT_EOF) {
		kind = SMTPC_DOWN_LOST;
		snprintf(why, sizeof why, "lost connection");
	} else if (connecting) {
		kind = SMTPC_DOWN_REFUSED;
		snprintf(why, sizeof why, "%s", strerror(err ? err : ECONNREFUSED));
	} else {
		snprintf(why, sizeof why, "connection error");
	}
	smtpc_conn_down(c, kind, why);
}

/* ---- connecting ---- */

static socklen_t smtpc_conn_addrlen(const struct sockaddr_storage *ss)
{
	return ss->ss_family == AF_INET ? sizeof(struct sockaddr_in) :
	       ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_un);
}

/* "name[ip]" of the address being tried, made once per connection. */
static void smtpc_conn_set_peer(struct smtpc_conn *c)
{
	char ip[INET6_ADDRSTRLEN];
	util_ip_text(&c->t.addr[c->ai], ip, sizeof ip);
	snprintf(c->peer, sizeof c->peer, "%s[%s]", c->t.name[c->ai], *ip ? ip : "unix");
}

static void smtpc_conn_connect(struct smtpc_conn *c)
{
	smtpc_conn_close_bev(c);
	c->direct = c->tls = c->uncorked = false;
	smtp_reply_reset(&c->reply);
	c->state = K_CONNECT;
	smtpc_conn_set_peer(c);
	c->bev = bufferevent_socket_new(c->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (!c->bev)
		log_panic("smtpc: cannot create a bufferevent for %s", c->peer);
	bufferevent_setcb(c->bev, smtpc_conn_read_cb, smtpc_conn_write_cb, smtpc_conn_event_cb, c);
	smtpc_conn_timeouts(c, c->t.connect_timeout);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	const struct sockaddr_storage *ss = &c->t.addr[c->ai];
	if (bufferevent_socket_connect(c->bev, (const struct sockaddr *)ss,
	                               (int)smtpc_conn_addrlen(ss)) != 0)
		return smtpc_conn_down(c, SMTPC_DOWN_REFUSED, strerror(errno));
	wire_nodelay(bufferevent_getfd(c->bev));
}

/* A connection taken over is up at once: its TLS, if any, is the one the
 * session had (no STARTTLS again); what was read already is read first. */
static void smtpc_conn_take(struct smtpc_conn *c)
{
	c->adopt = false;
	smtp_reply_reset(&c->reply);
	smtpc_conn_set_peer(c);
	bool tls = c->taken.ssl != NULL;
	c->bev = closer_adopt(c->base, &c->taken);
	if (!c->bev)
		return smtpc_conn_down(c, SMTPC_DOWN_ERROR, "cannot take the connection over");
	bufferevent_setcb(c->bev, smtpc_conn_read_cb, smtpc_conn_write_cb, smtpc_conn_event_cb, c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	c->state = K_UP;
	c->tls = tls;
	c->uncorked = tls;
	smtpc_conn_timeouts(c, c->t.timeout);
	if (!tls) {
		wire_direct(c->bev);
		c->direct = true;
	}
	struct bufferevent *bev = c->bev;
	c->cbs.connected(c, c->cbs.ctx);
	if (c->bev == bev && evbuffer_get_length(bufferevent_get_input(bev)))
		smtpc_conn_read_cb(bev, c);
	if (c->bev == bev && tls)   /* records read already, or inside the SSL */
		bufferevent_trigger(bufferevent_get_underlying(bev), EV_READ,
		                    BEV_TRIG_IGNORE_WATERMARKS);
}

/* Close the current connection; then, unless closing, connect to address
 * ai + step. */
static bool smtpc_conn_reconnect(struct smtpc_conn *c, size_t step)
{
	smtpc_conn_close_bev(c);
	c->direct = c->tls = false;
	c->state = K_DOWN;
	if (c->closing || c->ai + step >= c->t.naddr)
		return false;
	c->ai += step;
	smtpc_conn_connect(c);
	return true;
}

bool smtpc_conn_next(struct smtpc_conn *c)
{
	return smtpc_conn_reconnect(c, 1);
}

bool smtpc_conn_again(struct smtpc_conn *c)
{
	return smtpc_conn_reconnect(c, 0);
}

static void smtpc_conn_free(struct smtpc_conn *c)
{
	void (*freed)(void *) = c->cbs.freed;
	void *ctx = c->cbs.ctx;
	if (c->start_ev)
		event_free(c->start_ev);
	smtpc_conn_close_bev(c);
	closer_taken_free(&c->taken);   /* never started */
	smtpc_conn_auth_end(c);
	smtp_reply_free(&c->reply);
	buf_free(&c->cork);
	tlsa_set_unref(c->t.dane);
	free(c);
	if (freed)
		freed(ctx);
}

static void smtpc_conn_start_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct smtpc_conn *c = arg;
	if (c->release)
		smtpc_conn_free(c);
	else if (!c->closing && c->adopt)
		smtpc_conn_take(c);
	else if (!c->closing)
		smtpc_conn_connect(c);
}

struct smtpc_conn *smtpc_conn_open(struct event_base *base, const struct smtpc_target *t,
                                   const struct smtpc_conn_cbs *cbs)
{
	if (t->naddr == 0)
		log_panic("smtpc: no address to connect to");  /* a bug: the caller resolves first */
	struct smtpc_conn *c = util_xcalloc(1, sizeof *c);
	c->base = base;
	c->t = *t;
	c->t.dane = tlsa_set_ref(t->dane);
	c->cbs = *cbs;
	c->state = K_CONNECT;
	c->taken.fd = -1;
	if (t->adopt) {
		c->taken = *t->adopt;   /* moved */
		memset(t->adopt, 0, sizeof *t->adopt);
		t->adopt->fd = -1;
		c->t.adopt = NULL;
		c->adopt = true;
	}
	smtp_reply_init(&c->reply);
	c->start_ev = evtimer_new(base, smtpc_conn_start_cb, c);
	if (!c->start_ev)
		log_panic("smtpc: cannot create an event");
	event_active(c->start_ev, EV_TIMEOUT, 0);
	return c;
}

/* ---- TLS, RFC 3207 ---- */

int smtpc_conn_starttls(struct smtpc_conn *c, SSL_CTX *ctx, const char *name, bool check_name,
                        const char **why)
{
	struct tls_peer peer = { name, check_name, NULL };
	return smtpc_conn_starttls_peer(c, ctx, &peer, why);
}

int smtpc_conn_starttls_peer(struct smtpc_conn *c, SSL_CTX *ctx, const struct tls_peer *peer,
                             const char **why)
{
	if (c->state != K_UP || c->tls || !c->bev) {
		*why = "not connected";
		return -1;
	}
	if (smtpc_conn_unread(c)) {   /* RFC 3207 4.2: nothing may follow the 220 */
		*why = "the server sent data after its 220 to STARTTLS (a possible STARTTLS "
		       "injection); not starting TLS";
		return -1;
	}
	if (c->direct)
		wire_indirect(c->bev);   /* OpenSSL writes from here on */
	c->direct = false;
	struct bufferevent *tb = tls_wrap(c->base, c->bev, ctx, peer);
	if (!tb) {
		*why = peer->dane ? "cannot start TLS with the TLSA records" : "cannot start TLS";
		return -1;
	}
	c->bev = tb;
	c->state = K_HANDSHAKE;
	bufferevent_setcb(tb, smtpc_conn_read_cb, smtpc_conn_write_cb, smtpc_conn_event_cb, c);
	smtpc_conn_timeouts(c, c->t.timeout);
	bufferevent_enable(tb, EV_READ | EV_WRITE);
	return 0;
}

bool smtpc_conn_tls_on(const struct smtpc_conn *c)
{
	return c->tls;
}

static void smtpc_conn_cert_names(X509 *cert, struct smtpc_tls_facts *f)
{
	X509_NAME_oneline(X509_get_subject_name(cert), f->subject, sizeof f->subject);
	X509_NAME_oneline(X509_get_issuer_name(cert), f->issuer, sizeof f->issuer);
	const ASN1_TIME *na = X509_get0_notAfter(cert);
	BIO *bio = BIO_new(BIO_s_mem());
	if (bio) {
		ASN1_TIME_print(bio, na);
		int n = BIO_read(bio, f->not_after, sizeof f->not_after - 1);
		f->not_after[n > 0 ? n : 0] = '\0';
		BIO_free(bio);
	}
	int days = 0, secs = 0;
	ASN1_TIME_diff(&days, &secs, NULL, na);
	f->days_left = days;
}

/* RFC 6125: the name the client wanted, against the certificate. */
static bool smtpc_conn_cert_name_ok(X509 *cert, const char *name)
{
	unsigned char tmp[16];
	if (inet_pton(AF_INET, name, tmp) == 1 || inet_pton(AF_INET6, name, tmp) == 1)
		return X509_check_ip_asc(cert, name, 0) == 1;
	return X509_check_host(cert, name, 0, 0, NULL) == 1;
}

void smtpc_conn_tls_facts(struct smtpc_conn *c, const char *name, struct smtpc_tls_facts *f)
{
	memset(f, 0, sizeof *f);
	SSL *ssl = c->tls && c->bev ? bufferevent_openssl_get_ssl(c->bev) : NULL;
	if (!ssl) {
		snprintf(f->verify_error, sizeof f->verify_error, "no TLS");
		return;
	}
	snprintf(f->version, sizeof f->version, "%s", SSL_get_version(ssl));
	snprintf(f->cipher, sizeof f->cipher, "%s", SSL_get_cipher_name(ssl));
	X509 *cert = SSL_get1_peer_certificate(ssl);
	if (!cert) {
		snprintf(f->verify_error, sizeof f->verify_error, "no certificate");
		return;
	}
	smtpc_conn_cert_names(cert, f);
	f->name_ok = smtpc_conn_cert_name_ok(cert, name);
	long v = SSL_get_verify_result(ssl);
	f->chain_ok = v == X509_V_OK;
	snprintf(f->verify_error, sizeof f->verify_error, "%s", X509_verify_cert_error_string(v));
	X509_free(cert);
}

bool smtpc_conn_dane_match(struct smtpc_conn *c, char *out, size_t n)
{
	if (!c->tls || !c->bev) {
		snprintf(out, n, "no TLS");
		return false;
	}
	return tls_dane_match(c->bev, out, n);
}

/* ---- about the connection ---- */

const struct smtpc_target *smtpc_conn_target(const struct smtpc_conn *c)
{
	return &c->t;
}

size_t smtpc_conn_index(const struct smtpc_conn *c)
{
	return c->ai;
}

const char *smtpc_conn_name(const struct smtpc_conn *c)
{
	return c->t.name[c->ai];
}

const char *smtpc_conn_peer(const struct smtpc_conn *c)
{
	return c->peer;
}

void smtpc_conn_local(const struct smtpc_conn *c, char *out, size_t n)
{
	util_local_ip(c->bev ? (int)bufferevent_getfd(c->bev) : -1, out, n);
}

/* ---- ending ---- */

void smtpc_conn_hangup(struct smtpc_conn *c)
{
	if (!c || c->closing)
		return;
	c->closing = true;
	smtpc_conn_close_bev(c);   /* QUIT leaves first */
	c->direct = false;
	smtpc_conn_auth_end(c);
}

void smtpc_conn_close(struct smtpc_conn *c)
{
	if (!c)
		return;
	smtpc_conn_hangup(c);
	c->release = true;
	event_active(c->start_ev, EV_TIMEOUT, 0);
}

void smtpc_conn_destroy(struct smtpc_conn *c)
{
	if (c)
		smtpc_conn_free(c);
}
