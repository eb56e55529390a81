/* client: one milter connection on the loop (see client.h). */
#include "milter/client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "lib/log.h"
#include "lib/util.h"
#include "net/closer.h"
#include "net/wire.h"

struct milter_client {
	struct bufferevent *bev;
	struct event *timer;          /* the reply awaited, or the failure from the loop */
	struct closer *closer;
	milter_client_fn *fn;
	void *ctx;
	char why[256];                /* a failure waiting for the timer */
	bool closed;                  /* the owner let go: free when not busy */
	bool failed;                  /* told already: nothing more */
	unsigned busy;                /* inside our callbacks */
};

static void milter_client_free(struct milter_client *c)
{
	if (c->busy || !c->closed)
		return;
	if (c->timer)
		event_free(c->timer);
	free(c);
}

/* Tell the owner once; afterwards the client only waits to be closed. */
static void milter_client_fail(struct milter_client *c, const char *why)
{
	if (c->failed || c->closed)
		return;
	c->failed = true;
	evtimer_del(c->timer);
	if (c->bev)
		bufferevent_disable(c->bev, EV_READ);
	c->busy++;
	c->fn(c->ctx, NULL, why);
	c->busy--;
}

static void milter_client_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct milter_client *c = arg;
	c->busy++;
	milter_client_fail(c, c->why[0] ? c->why : "timed out waiting for a reply");
	c->busy--;
	milter_client_free(c);
}

/* One whole packet from the input, copied out (the owner may close the
 * connection from its callback): decoded to the owner, or a failure. */
static bool milter_client_packet(struct milter_client *c, struct evbuffer *in)
{
	size_t n = evbuffer_get_length(in), used, len;
	const unsigned char *data;
	char cmd;
	enum milter_frame f = milter_frame(evbuffer_pullup(in, -1), n, &cmd, &data, &len, &used);
	if (f == MILTER_FRAME_MORE)
		return false;
	struct buf pkt = BUF_INIT;
	struct milter_reply r;
	bool ok = f == MILTER_FRAME_OK;
	if (ok) {
		buf_append(&pkt, data, len);
		evbuffer_drain(in, used);
		ok = milter_decode(cmd, (const unsigned char *)buf_cstr(&pkt), len, &r);
	}
	if (!ok) {
		char why[96];
		snprintf(why, sizeof why, f == MILTER_FRAME_BAD ? "a reply of a bad length"
		         : "a malformed reply (command 0x%02x)", (unsigned char)cmd);
		milter_client_fail(c, why);
	} else {
		c->fn(c->ctx, &r, NULL);
	}
	buf_free(&pkt);
	return ok;
}

static void milter_client_read_cb(struct bufferevent *bev, void *arg)
{
	struct milter_client *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	c->busy++;
	while (!c->closed && !c->failed && milter_client_packet(c, in))
		;
	c->busy--;
	milter_client_free(c);
}

static void milter_client_event_cb(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	struct milter_client *c = arg;
	if (what & BEV_EVENT_CONNECTED)
		return;
	char why[160];
	if (what & BEV_EVENT_EOF)
		snprintf(why, sizeof why, "the milter closed the connection");
	else
		snprintf(why, sizeof why, "connection: %s",
		         strerror(EVUTIL_SOCKET_ERROR() ? EVUTIL_SOCKET_ERROR() : ECONNRESET));
	c->busy++;
	milter_client_fail(c, why);
	c->busy--;
	milter_client_free(c);
}

/* spec->target as a socket address; false when it is none. */
static bool milter_client_addr(const char *t, struct sockaddr_storage *ss, int *len)
{
	memset(ss, 0, sizeof *ss);
	if (!strncmp(t, "unix:", 5)) {
		struct sockaddr_un *un = (struct sockaddr_un *)ss;
		un->sun_family = AF_UNIX;
		if (strlen(t + 5) >= sizeof un->sun_path)
			return false;
		snprintf(un->sun_path, sizeof un->sun_path, "%s", t + 5);
		*len = (int)sizeof *un;
		return true;
	}
	char host[CONF_MILTER_TARGET_MAX];
	unsigned port;
	if (strncmp(t, "inet:", 5) || !util_hostport(t + 5, host, sizeof host, &port))
		return false;
	*len = (int)sizeof *ss;
	return evutil_parse_sockaddr_port(t + 5, (struct sockaddr *)ss, len) == 0;
}

/* The failure of an open that could not start: from the loop, so that
 * the owner is never called back inside milter_client_open. */
static void milter_client_fail_soon(struct milter_client *c, const char *why)
{
	snprintf(c->why, sizeof c->why, "%s", why);
	struct timeval now = { 0, 0 };
	evtimer_add(c->timer, &now);
}

struct milter_client *milter_client_open(struct event_base *base, struct closer *closer,
                                         const struct conf_milter *spec, milter_client_fn *fn,
                                         void *ctx)
{
	struct milter_client *c = util_xcalloc(1, sizeof *c);
	c->fn = fn;
	c->ctx = ctx;
	c->closer = closer;
	c->timer = evtimer_new(base, milter_client_timer_cb, c);
	if (!c->timer)
		log_panic("milter: cannot create a timer");
	struct sockaddr_storage ss;
	int len;
	if (!milter_client_addr(spec->target, &ss, &len)) {
		milter_client_fail_soon(c, "not an address");
		return c;
	}
	c->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (!c->bev)
		log_panic("milter: cannot create a bufferevent");
	bufferevent_setcb(c->bev, milter_client_read_cb, NULL, milter_client_event_cb, c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&ss, len) != 0) {
		char why[160];
		snprintf(why, sizeof why, "connect: %s", strerror(errno));
		milter_client_fail_soon(c, why);
		return c;
	}
	/* Packets a stage sends without awaiting a reply (SMFIP_NR_*) would
	 * otherwise hold the next stage's write for the milter's delayed ACK. */
	wire_nodelay(bufferevent_getfd(c->bev));
	struct buf b = BUF_INIT;
	milter_put_optneg(&b, MILTER_VERSION, MILTER_F_ALL, MILTER_P_OFFER);
	milter_client_send(c, &b, spec->connect_timeout);
	snprintf(c->why, sizeof c->why, "no answer to connecting and negotiating within %us",
	         spec->connect_timeout);
	buf_free(&b);
	return c;
}

void milter_client_wait(struct milter_client *c, unsigned wait)
{
	if (c->failed || c->closed)
		return;
	evtimer_del(c->timer);
	if (!wait)
		return;
	snprintf(c->why, sizeof c->why, "no reply within %us", wait);
	struct timeval tv = { (time_t)wait, 0 };
	evtimer_add(c->timer, &tv);
}

void milter_client_send(struct milter_client *c, const struct buf *packets, unsigned wait)
{
	if (c->failed || c->closed || !c->bev)
		return;
	bufferevent_write(c->bev, packets->data, packets->len);
	milter_client_wait(c, wait);
}

void milter_client_close(struct milter_client *c, bool quit)
{
	if (c->closed)
		return;
	if (c->bev && quit && !c->failed) {
		struct buf b = BUF_INIT;
		milter_put(&b, MILTER_C_QUIT, NULL, 0);
		bufferevent_write(c->bev, b.data, b.len);
		buf_free(&b);
	}
	evtimer_del(c->timer);
	if (c->bev)
		closer_close(c->closer, c->bev);
	c->bev = NULL;
	c->closed = true;
	milter_client_free(c);
}
