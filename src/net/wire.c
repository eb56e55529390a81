/* wire: direct writes on a plain socket bufferevent (see wire.h). */
#include "net/wire.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

void wire_direct(struct bufferevent *bev)
{
	bufferevent_disable(bev, EV_WRITE);  /* enabled by default */
}

bool wire_flush(struct bufferevent *bev)
{
	struct evbuffer *out = bufferevent_get_output(bev);
	if (evbuffer_get_length(out) == 0)
		return true;
	/* A bufferevent freezes the start of its output so that only its own
	 * write callback drains it; do as that callback does. */
	evbuffer_unfreeze(out, 1);
	evbuffer_write(out, bufferevent_getfd(bev));
	evbuffer_freeze(out, 1);
	if (evbuffer_get_length(out) == 0)
		return true;
	bufferevent_enable(bev, EV_WRITE);
	return false;
}

void wire_indirect(struct bufferevent *bev)
{
	wire_flush(bev);
	bufferevent_enable(bev, EV_WRITE);
}

void wire_nodelay(int fd)
{
	int one = 1;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);   /* unix: EOPNOTSUPP */
}
