/* conn: the engine driven from tern-probe's own loop, one step at a time
 * (see conn.h). */
#include "tools/probe/conn.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/util.h"
#include "net/closer.h"
#include "net/tls.h"
#include "net/tlsa.h"

struct probe_reply {
	struct probe_reply *next;
	struct smtp_reply r;
};

static void probe_conn_fail(struct probe_conn *c, const char *fmt, const char *arg)
{
	snprintf(c->err, sizeof c->err, fmt, arg);
}

static void probe_conn_trace(struct probe_conn *c, char dir, const char *line)
{
	if (c->trace)
		c->trace(c->trace_arg, dir, line);
}

/* ---- the engine's callbacks ---- */

static void probe_conn_on_trace(void *arg, char dir, const char *line)
{
	probe_conn_trace(arg, dir, line);
}

static void probe_conn_on_connected(struct smtpc_conn *sc, void *arg)
{
	(void)sc;
	struct probe_conn *c = arg;
	c->up = true;
}

/* A reply is kept until it is asked for. */
static void probe_conn_on_reply(struct smtpc_conn *sc, const struct smtp_reply *r, void *arg)
{
	(void)sc;
	struct probe_conn *c = arg;
	struct probe_reply *q = util_xcalloc(1, sizeof *q);
	smtp_reply_init(&q->r);
	buf_append(&q->r.text, r->text.data, r->text.len);
	q->r.code = r->code;
	q->r.nlines = r->nlines;
	q->r.last = r->last;
	*c->tail = q;
	c->tail = &q->next;
}

static void probe_conn_on_tls(struct smtpc_conn *sc, void *arg)
{
	(void)sc;
	struct probe_conn *c = arg;
	c->tls_done = true;
}

/* While connecting: note the address that failed, go on to the next one.
 * Once connected: the connection is over; the next read says why. */
static void probe_conn_on_down(struct smtpc_conn *sc, enum smtpc_down why, const char *text,
                               void *arg)
{
	struct probe_conn *c = arg;
	if (!c->up) {
		const struct smtpc_target *t = smtpc_conn_target(sc);
		size_t i = smtpc_conn_index(sc);
		buf_printf(c->log, "%s [%s]:%d: %s\n", t->name[i], c->ips[i], c->port,
		           why == SMTPC_DOWN_TIMEOUT ? "no answer (connection timed out)" : text);
		if (smtpc_conn_next(sc))
			return;
	} else {
		snprintf(c->ended, sizeof c->ended, "%s", why == SMTPC_DOWN_LOST ?
		         "the server closed the connection" : text);
	}
	smtpc_conn_close(sc);
	c->c = NULL;
}

static void probe_conn_on_freed(void *arg)
{
	struct probe_conn *c = arg;
	c->live--;
}

/* ---- waiting ---- */

static void probe_conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct probe_conn *c = arg;
	c->timed_out = true;
}

static bool probe_conn_has_reply(const struct probe_conn *c)
{
	return c->head != NULL;
}

static bool probe_conn_is_up(const struct probe_conn *c)
{
	return c->up;
}

static bool probe_conn_is_tls(const struct probe_conn *c)
{
	return c->tls_done;
}

/* Run the loop until done holds, the connection is down, or (timed) the
 * time limit has passed. */
static void probe_conn_wait(struct probe_conn *c, bool (*done)(const struct probe_conn *),
                            bool timed)
{
	c->timed_out = false;
	struct timeval tv = { c->timeout_ms / 1000, c->timeout_ms % 1000 * 1000 };
	if (timed)
		evtimer_add(c->timer, &tv);
	while (!done(c) && c->c && !c->timed_out)
		if (event_base_loop(c->base, EVLOOP_ONCE) != 0)
			break;
	evtimer_del(c->timer);
}

/* Why nothing more can come. */
static int probe_conn_gone(struct probe_conn *c)
{
	probe_conn_fail(c, "%s", !c->open ? "not connected" : c->ended[0] ? c->ended :
	                "the server closed the connection");
	return PROBE_CONN_ERR;
}

/* ---- the calls ---- */

void probe_helo(const char *given, char *out, size_t n)
{
	char hn[MX_NAME_MAX] = "tern-probe.invalid";
	if (!given && gethostname(hn, sizeof hn - 1) == 0)
		hn[sizeof hn - 1] = '\0';
	snprintf(out, n, "%s", given ? given : hn);
}

void probe_conn_init(struct probe_conn *c, int timeout_ms)
{
	memset(c, 0, sizeof *c);
	c->timeout_ms = timeout_ms;
	c->tail = &c->head;
	/* a write to a server that has gone must fail, not kill the probe */
	signal(SIGPIPE, SIG_IGN);
	c->base = event_base_new();
	if (!c->base)
		log_panic("tern-probe: cannot create an event loop");
	c->closer = closer_new(c->base);
	c->timer = evtimer_new(c->base, probe_conn_timer_cb, c);
	if (!c->timer)
		log_panic("tern-probe: cannot create a timer");
}

void probe_conn_close(struct probe_conn *c)
{
	if (c->c)
		smtpc_conn_close(c->c);
	c->c = NULL;
	c->open = c->up = c->tls_done = false;
	c->ended[0] = '\0';
	while (c->head) {
		struct probe_reply *q = c->head;
		c->head = q->next;
		smtp_reply_free(&q->r);
		free(q);
	}
	c->tail = &c->head;
}

/* The engine frees its connections from the loop: run it until they are
 * gone, then close what the closer still holds at once. */
void probe_conn_free(struct probe_conn *c)
{
	probe_conn_close(c);
	while (c->live > 0 && event_base_loop(c->base, EVLOOP_NONBLOCK) == 0)
		;
	closer_free(c->closer);
	event_free(c->timer);
	SSL_CTX_free(c->ssl_ctx);
	event_base_free(c->base);
	c->base = NULL;
}

/* The addresses of l, in order, as the engine's target. */
static void probe_conn_target(struct probe_conn *c, const struct mx_list *l, int port,
                              struct smtpc_target *t)
{
	memset(t, 0, sizeof *t);
	for (int i = 0; i < l->n; i++)
		for (int j = 0; j < l->hosts[i].naddrs && t->naddr < SMTPC_ADDRS_MAX; j++) {
			const char *ip = l->hosts[i].addrs[j];
			struct sockaddr_in *s4 = (struct sockaddr_in *)&t->addr[t->naddr];
			struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&t->addr[t->naddr];
			if (inet_pton(AF_INET, ip, &s4->sin_addr) == 1) {
				s4->sin_family = AF_INET;
				s4->sin_port = htons((unsigned short)port);
			} else if (inet_pton(AF_INET6, ip, &s6->sin6_addr) == 1) {
				s6->sin6_family = AF_INET6;
				s6->sin6_port = htons((unsigned short)port);
			} else {
				continue;
			}
			snprintf(t->name[t->naddr], sizeof t->name[0], "%s", l->hosts[i].name);
			c->ips[t->naddr++] = ip;
		}
	t->connect_timeout = (unsigned)(c->timeout_ms + 999) / 1000;
	t->timeout = 0;   /* the probe keeps time itself, only while it waits */
	t->closer = c->closer;
}

int probe_conn_open(struct probe_conn *c, const struct mx_list *l, int port,
                    char name[MX_NAME_MAX], char ip[46], struct buf *log)
{
	static const struct smtpc_conn_cbs cbs0 = {
		probe_conn_on_connected, probe_conn_on_reply, probe_conn_on_tls, probe_conn_on_down,
		NULL, probe_conn_on_trace, probe_conn_on_freed, NULL,
	};
	struct smtpc_target t;
	probe_conn_close(c);
	probe_conn_target(c, l, port, &t);
	if (t.naddr == 0)
		return -1;
	struct smtpc_conn_cbs cbs = cbs0;
	cbs.ctx = c;
	c->port = port;
	c->log = log;
	c->c = smtpc_conn_open(c->base, &t, &cbs);
	c->live++;
	probe_conn_wait(c, probe_conn_is_up, false);
	c->log = NULL;
	if (!c->up)
		return -1;
	size_t i = smtpc_conn_index(c->c);
	snprintf(name, MX_NAME_MAX, "%s", t.name[i]);
	snprintf(ip, 46, "%s", c->ips[i]);
	c->open = true;
	return 0;
}

/* What was queued goes now: written at once on a plain connection; the
 * loop turns once for TLS, whose writes libevent makes. */
static void probe_conn_push(struct probe_conn *c)
{
	smtpc_conn_flush(c->c);
	event_base_loop(c->base, EVLOOP_NONBLOCK);
}

int probe_conn_send(struct probe_conn *c, const char *line)
{
	if (!c->c)
		return probe_conn_gone(c);
	smtpc_conn_line(c->c, line);
	probe_conn_push(c);
	return 0;
}

int probe_conn_write(struct probe_conn *c, const void *p, size_t n)
{
	if (!c->c)
		return probe_conn_gone(c);
	smtpc_conn_write(c->c, p, n);
	probe_conn_push(c);
	return 0;
}

int probe_conn_reply(struct probe_conn *c, struct smtp_reply *r)
{
	smtp_reply_reset(r);
	if (!c->head && c->open)
		probe_conn_wait(c, probe_conn_has_reply, true);
	struct probe_reply *q = c->head;
	if (!q) {
		if (!c->timed_out || !c->c)
			return probe_conn_gone(c);
		probe_conn_fail(c, "%s", "no reply within the time limit");
		return PROBE_CONN_TIMEOUT;
	}
	if (!(c->head = q->next))
		c->tail = &c->head;
	smtp_reply_free(r);
	*r = q->r;
	free(q);
	return 0;
}

int probe_conn_cmd(struct probe_conn *c, const char *line, struct smtp_reply *r)
{
	int rc = probe_conn_send(c, line);
	return rc < 0 ? rc : probe_conn_reply(c, r);
}

bool probe_conn_pending(struct probe_conn *c)
{
	if (c->c)
		event_base_loop(c->base, EVLOOP_NONBLOCK);
	return c->head != NULL || (c->open && !c->c);
}

/* ---- TLS ---- */

/* OpenSSL's defaults, the system's CAs and cafile; verification is
 * recorded (smtpc_tls_facts), never enforced: the report says what failed. */
static SSL_CTX *probe_conn_ssl_ctx(struct probe_conn *c, const char *cafile)
{
	SSL_CTX_free(c->ssl_ctx);
	SSL_CTX *ctx = c->ssl_ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx) {
		probe_conn_fail(c, "%s", "cannot create a TLS context");
		return NULL;
	}
	SSL_CTX_set_default_verify_paths(ctx);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	if (cafile && SSL_CTX_load_verify_locations(ctx, cafile, NULL) != 1) {
		char e[160];
		ERR_error_string_n(ERR_get_error(), e, sizeof e);
		probe_conn_fail(c, "cannot load the CA file: %s", e);
		return NULL;
	}
	return ctx;
}

/* STARTTLS's handshake (after its 220) with ctx for peer; 0 or PROBE_CONN_ERR. */
static int probe_conn_handshake(struct probe_conn *c, SSL_CTX *ctx, const struct tls_peer *peer)
{
	const char *why;
	if (c->head) {   /* more after the 220: the engine refuses the same */
		probe_conn_fail(c, "%s", "the server sent data after its 220 to STARTTLS "
		                "(a possible STARTTLS injection); not starting TLS");
		return PROBE_CONN_ERR;
	}
	if (smtpc_conn_starttls_peer(c->c, ctx, peer, &why) < 0) {
		probe_conn_fail(c, "%s", why);
		return PROBE_CONN_ERR;
	}
	c->tls_done = false;
	probe_conn_wait(c, probe_conn_is_tls, true);
	if (!c->tls_done) {
		const char *t = c->c ? "no answer within the time limit" : c->ended;
		if (!strncmp(t, "TLS error: ", 11))
			t += 11;
		probe_conn_fail(c, "TLS handshake failed: %s", t);
		return PROBE_CONN_ERR;
	}
	probe_conn_trace(c, '*', peer->dane ? "TLS started (DANE)" : "TLS started");
	return 0;
}

int probe_conn_tls(struct probe_conn *c, const char *name, const char *cafile,
                   struct smtpc_tls_facts *f)
{
	if (!c->c)
		return probe_conn_gone(c);
	SSL_CTX *ctx = probe_conn_ssl_ctx(c, cafile);
	struct tls_peer peer = { name, false, NULL };
	if (!ctx || probe_conn_handshake(c, ctx, &peer) < 0)
		return PROBE_CONN_ERR;
	smtpc_conn_tls_facts(c->c, name, f);
	return 0;
}

int probe_conn_tls_dane(struct probe_conn *c, const struct tlsa_host *h, char *out, size_t n)
{
	if (!c->c)
		return probe_conn_gone(c);
	SSL_CTX *ctx = probe_conn_ssl_ctx(c, NULL);
	if (!ctx || !tls_ctx_dane(ctx)) {
		probe_conn_fail(c, "%s", "cannot enable DANE in the TLS context");
		return PROBE_CONN_ERR;
	}
	struct tls_peer peer = { h->name, false, h };
	if (probe_conn_handshake(c, ctx, &peer) < 0)
		return PROBE_CONN_ERR;
	return smtpc_conn_dane_match(c->c, out, n) ? 1 : 0;
}

/* ---- AUTH and DATA ---- */

int probe_conn_auth(struct probe_conn *c, const char *mech, const char *user,
                    const char *pass, struct smtp_reply *r)
{
	unsigned m = smtp_auth_mech(mech);
	smtp_reply_reset(r);
	if (!m) {
		probe_conn_fail(c, "unsupported AUTH mechanism %s (PLAIN and LOGIN are)", mech);
		return PROBE_CONN_ERR;
	}
	if (!c->c)
		return probe_conn_gone(c);
	smtpc_conn_auth(c->c, m, user, pass);
	probe_conn_push(c);
	return probe_conn_reply(c, r);
}

static void probe_conn_sink(void *arg, const char *p, size_t n)
{
	buf_append(arg, p, n);
}

int probe_conn_data(struct probe_conn *c, const char *msg, size_t n, struct smtp_reply *r)
{
	if (!c->c) {
		smtp_reply_reset(r);
		return probe_conn_gone(c);
	}
	struct buf b = BUF_INIT;
	struct smtp_stuff s = SMTP_STUFF_INIT;
	smtp_stuff(&s, msg, n, probe_conn_sink, &b);
	smtp_stuff_end(&s, probe_conn_sink, &b);
	char note[64];
	snprintf(note, sizeof note, "(message: %zu octets, then \".\")", b.len);
	probe_conn_trace(c, '>', note);
	smtpc_conn_write(c->c, b.data, b.len);
	buf_free(&b);
	probe_conn_push(c);
	return probe_conn_reply(c, r);
}
