/* wire: direct writes on a plain socket bufferevent (see wire.h). */
#include "net/wire.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>

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

long wire_fill(struct bufferevent *bev, size_t max)
{
	struct evbuffer *in = bufferevent_get_input(bev);
	struct evbuffer_iovec v[2];
	struct iovec iov[2];
	/* A socket bufferevent freezes the end of its input so that only its
	 * own read callback adds to it; do as that callback does. */
	evbuffer_unfreeze(in, 0);
	int nv = evbuffer_reserve_space(in, (ev_ssize_t)max, v, 2);
	ssize_t n = -1;
	int err = EAGAIN;
	if (nv > 0) {
		size_t want = max;   /* the space reserved may be larger */
		for (int i = 0; i < nv; i++) {
			v[i].iov_len = v[i].iov_len < want ? v[i].iov_len : want;
			want -= v[i].iov_len;
			iov[i] = (struct iovec){ v[i].iov_base, v[i].iov_len };
		}
		n = readv(bufferevent_getfd(bev), iov, nv);
		err = errno;
		size_t left = n > 0 ? (size_t)n : 0;
		int used = 0;
		for (; used < nv && left > 0; used++) {
			if (v[used].iov_len > left)
				v[used].iov_len = left;
			left -= v[used].iov_len;
		}
		evbuffer_commit_space(in, v, used);
	}
	evbuffer_freeze(in, 0);
	errno = err;
	return (long)n;
}
