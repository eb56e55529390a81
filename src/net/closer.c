/* closer: closing connections outside their callbacks (see closer.h). */
#include "net/closer.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/util.h"
#include "net/wire.h"

struct closer_conn {
	struct closer_conn *next, *prev;
	struct closer *l;
	struct bufferevent *bev;    /* as handed over; the socket one after step 1 */
};

struct closer {
	struct event_base *base;
	struct event *start_ev;     /* runs the first step from the loop */
	struct event *drained_ev;   /* closer_drain: ends the loop */
	struct closer_conn *fresh;  /* handed over, waiting for start_ev */
	struct closer_conn *busy;   /* sending or draining */
	size_t n;
	bool draining;
};

static void closer_unlink(struct closer_conn **head, struct closer_conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		*head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->next = c->prev = NULL;
}

static void closer_push(struct closer_conn **head, struct closer_conn *c)
{
	c->prev = NULL;
	c->next = *head;
	if (*head)
		(*head)->prev = c;
	*head = c;
}

/* closer_drain: once nothing is left, end the loop from an event queued
 * behind whatever libevent has queued already (the deferred callbacks of
 * a TLS bufferevent hold a reference to it until they run). */
static void closer_check_drained(struct closer *l)
{
	if (l->draining && l->n == 0)
		event_active(l->drained_ev, EV_TIMEOUT, 0);
}

/* Step 4: the socket goes (BEV_OPT_CLOSE_ON_FREE), and the record. */
static void closer_done(struct closer_conn *c)
{
	struct closer *l = c->l;
	closer_unlink(&l->busy, c);
	l->n--;
	bufferevent_free(c->bev);
	free(c);
	closer_check_drained(l);
}

/* Step 1: close_notify, then the TLS bufferevent and its SSL go (tls_wrap
 * makes them without BEV_OPT_CLOSE_ON_FREE: the SSL is freed here, and the
 * socket bufferevent stays for the rest). OpenSSL: no SSL_shutdown after a
 * fatal error, which has set SSL_SENT_SHUTDOWN itself. */
static struct bufferevent *closer_tls_off(struct bufferevent *bev)
{
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	if (!ssl)
		return bev;
	if (SSL_is_init_finished(ssl) && !(SSL_get_shutdown(ssl) & SSL_SENT_SHUTDOWN))
		SSL_shutdown(ssl);
	ERR_clear_error();   /* nothing of this connection's may reach the next */
	struct bufferevent *plain = bufferevent_get_underlying(bev);
	bufferevent_free(bev);
	SSL_free(ssl);
	return plain;
}

/* ---- a connection taken to another loop ---- */

static void closer_input(struct bufferevent *bev, struct buf *out)
{
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t n = evbuffer_get_length(in);
	if (n) {
		buf_append(out, (const char *)evbuffer_pullup(in, (ev_ssize_t)n), n);
		evbuffer_drain(in, n);
	}
}

/* The TLS bufferevent is freed as closer_tls_off does, without the
 * close_notify; the socket one loses its descriptor first, so that
 * BEV_OPT_CLOSE_ON_FREE closes nothing. */
void closer_take(struct bufferevent *bev, struct closer_taken *out)
{
	memset(out, 0, sizeof *out);
	out->ssl = bufferevent_openssl_get_ssl(bev);
	struct bufferevent *plain = bev;
	if (out->ssl) {
		closer_input(bev, &out->plain);
		plain = bufferevent_get_underlying(bev);
		bufferevent_free(bev);
	}
	closer_input(plain, &out->raw);
	out->fd = bufferevent_getfd(plain);
	bufferevent_disable(plain, EV_READ | EV_WRITE);
	bufferevent_setfd(plain, -1);
	bufferevent_free(plain);
}

struct bufferevent *closer_adopt(struct event_base *base, struct closer_taken *t)
{
	struct bufferevent *plain = bufferevent_socket_new(base, t->fd, BEV_OPT_CLOSE_ON_FREE);
	struct bufferevent *top = plain;
	if (plain && t->raw.len)
		evbuffer_add(bufferevent_get_input(plain), t->raw.data, t->raw.len);
	if (plain && t->ssl) {
		top = bufferevent_openssl_filter_new(base, plain, t->ssl, BUFFEREVENT_SSL_OPEN, 0);
		if (top)
			bufferevent_openssl_set_allow_dirty_shutdown(top, 1);
	}
	if (!top) {
		if (plain)
			bufferevent_free(plain);
		else
			close(t->fd);
		if (t->ssl)
			SSL_free(t->ssl);
		t->ssl = NULL;
	} else if (t->plain.len) {
		evbuffer_add(bufferevent_get_input(top), t->plain.data, t->plain.len);
	}
	t->fd = -1;
	t->ssl = NULL;
	buf_free(&t->raw);
	buf_free(&t->plain);
	return top;
}

void closer_taken_free(struct closer_taken *t)
{
	if (!t)
		return;
	if (t->ssl)
		SSL_free(t->ssl);
	if (t->fd >= 0)
		close(t->fd);
	t->fd = -1;
	t->ssl = NULL;
	buf_free(&t->raw);
	buf_free(&t->plain);
}

/* Bytes the peer sent that nobody read: closing on them would reset. */
static bool closer_unread(struct bufferevent *bev)
{
	int pending = 0;
	if (evbuffer_get_length(bufferevent_get_input(bev)) > 0)
		return true;
	return ioctl(bufferevent_getfd(bev), FIONREAD, &pending) == 0 && pending > 0;
}

static void closer_drain_cb(struct bufferevent *bev, void *arg)
{
	(void)arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	evbuffer_drain(in, evbuffer_get_length(in));
}

static void closer_event_cb(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	(void)what;   /* EOF, an error or CLOSER_LINGER: the end either way */
	closer_done(arg);
}

/* Step 3, once the output has left. */
static void closer_sent(struct closer_conn *c)
{
	struct bufferevent *bev = c->bev;
	if (!closer_unread(bev))
		return closer_done(c);
	shutdown(bufferevent_getfd(bev), SHUT_WR);
	bufferevent_setcb(bev, closer_drain_cb, NULL, closer_event_cb, c);
	bufferevent_disable(bev, EV_WRITE);
	bufferevent_enable(bev, EV_READ);
	closer_drain_cb(bev, c);
}

static void closer_write_cb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	closer_sent(arg);
}

/* Steps 1 and 2 for one connection. */
static void closer_begin(struct closer_conn *c)
{
	c->bev = closer_tls_off(c->bev);
	closer_push(&c->l->busy, c);
	if (bufferevent_getfd(c->bev) < 0)
		return closer_done(c);
	struct timeval tv = { CLOSER_LINGER, 0 };
	bufferevent_set_timeouts(c->bev, &tv, &tv);
	bufferevent_setcb(c->bev, NULL, closer_write_cb, closer_event_cb, c);
	bufferevent_disable(c->bev, EV_READ);
	if (wire_flush(c->bev))
		closer_sent(c);
}

static void closer_start_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct closer *l = arg;
	struct closer_conn *c;
	while ((c = l->fresh)) {
		closer_unlink(&l->fresh, c);
		closer_begin(c);
	}
}

static void closer_drained_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;   /* all closed, or out of time */
	struct closer *l = arg;
	event_base_loopbreak(l->base);
}

struct closer *closer_new(struct event_base *base)
{
	struct closer *l = util_xcalloc(1, sizeof *l);
	l->base = base;
	l->start_ev = event_new(base, -1, 0, closer_start_cb, l);
	l->drained_ev = evtimer_new(base, closer_drained_cb, l);
	if (!l->start_ev || !l->drained_ev)
		log_panic("closer: cannot create an event");
	return l;
}

void closer_drain(struct closer *l, unsigned seconds)
{
	l->draining = true;
	struct timeval tv = { (time_t)seconds, 0 };
	evtimer_add(l->drained_ev, &tv);
	closer_check_drained(l);
}

void closer_close(struct closer *l, struct bufferevent *bev)
{
	if (!bev)
		return;
	bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
	bufferevent_disable(bev, EV_READ);
	struct closer_conn *c = util_xcalloc(1, sizeof *c);
	c->l = l;
	c->bev = bev;
	closer_push(&l->fresh, c);
	l->n++;
	event_active(l->start_ev, EV_TIMEOUT, 0);
}

size_t closer_count(const struct closer *l)
{
	return l ? l->n : 0;
}

/* The loop has ended: what the socket takes now is all that leaves. */
static void closer_now(struct closer_conn *c)
{
	c->bev = closer_tls_off(c->bev);
	if (bufferevent_getfd(c->bev) >= 0)
		wire_flush(c->bev);
	bufferevent_free(c->bev);
	free(c);
}

void closer_free(struct closer *l)
{
	if (!l)
		return;
	struct closer_conn *lists[] = { l->fresh, l->busy };
	for (int i = 0; i < 2; i++)
		for (struct closer_conn *c = lists[i], *next; c; c = next) {
			next = c->next;
			closer_now(c);
		}
	event_free(l->start_ev);
	event_free(l->drained_ev);
	free(l);
}
