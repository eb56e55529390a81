/* test_wire: wire_fill, the read past libevent 2.1's 4 KiB a call
 * (net/wire.h), on a socket pair: what it reads, where it leaves the
 * input, and what it says when nothing is there or the peer has gone. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/wire.h"

#define SENT (200 * 1024)

static unsigned char sent[SENT];   /* what the peer wrote */

struct pair {
	struct event_base *base;
	struct bufferevent *bev;   /* over fd[0] */
	int peer;                  /* fd[1] */
};

/* A socket bufferevent with the SENT octets of sent waiting on its socket. */
static void pair_open(struct pair *p)
{
	int fd[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fd), 0);
	int size = 1024 * 1024;
	setsockopt(fd[0], SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
	setsockopt(fd[1], SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
	assert_int_equal(fcntl(fd[0], F_SETFL, O_NONBLOCK), 0);
	for (size_t i = 0; i < SENT; i++)
		sent[i] = (unsigned char)(i * 7 + i / 251);
	assert_int_equal(write(fd[1], sent, SENT), SENT);
	p->base = event_base_new();
	p->bev = bufferevent_socket_new(p->base, fd[0], BEV_OPT_CLOSE_ON_FREE);
	p->peer = fd[1];
}

static void pair_close(struct pair *p)
{
	bufferevent_free(p->bev);
	event_base_free(p->base);
	if (p->peer >= 0)
		close(p->peer);
}

/* The premise: libevent's own read stops at WIRE_EVENT_READ octets with
 * far more waiting. If this fails, libevent reads more by itself and
 * wire_fill has become unnecessary. */
static void test_libevent_reads_4k(void **state)
{
	(void)state;
	struct pair p;
	pair_open(&p);
	struct evbuffer *in = evbuffer_new();
	assert_int_equal(evbuffer_read(in, bufferevent_getfd(p.bev), 128 * 1024), WIRE_EVENT_READ);
	evbuffer_free(in);
	pair_close(&p);
}

static void test_fill_reads_up_to_max(void **state)
{
	(void)state;
	struct pair p;
	pair_open(&p);
	struct evbuffer *in = bufferevent_get_input(p.bev);
	assert_int_equal(wire_fill(p.bev, 128 * 1024), 128 * 1024);
	assert_int_equal(evbuffer_get_length(in), 128 * 1024);
	/* what is left, then nothing: EAGAIN */
	assert_int_equal(wire_fill(p.bev, 128 * 1024), SENT - 128 * 1024);
	assert_int_equal(evbuffer_get_length(in), SENT);
	errno = 0;
	assert_int_equal(wire_fill(p.bev, 128 * 1024), -1);
	assert_int_equal(errno, EAGAIN);
	assert_int_equal(evbuffer_get_length(in), SENT);
	/* in order, whole */
	assert_memory_equal(evbuffer_pullup(in, -1), sent, SENT);
	/* the input's end is frozen again, as the bufferevent keeps it */
	assert_int_equal(evbuffer_add(in, "x", 1), -1);
	pair_close(&p);
}

/* Appends after what libevent read, in the input's chains (two of them
 * when the last has room for part). */
static void test_fill_after_libevent(void **state)
{
	(void)state;
	struct pair p;
	pair_open(&p);
	struct evbuffer *in = bufferevent_get_input(p.bev);
	evbuffer_unfreeze(in, 0);
	assert_int_equal(evbuffer_read(in, bufferevent_getfd(p.bev), -1), WIRE_EVENT_READ);
	evbuffer_freeze(in, 0);
	assert_int_equal(wire_fill(p.bev, 1000), 1000);
	assert_int_equal(wire_fill(p.bev, SENT), SENT - WIRE_EVENT_READ - 1000);
	assert_int_equal(evbuffer_get_length(in), SENT);
	assert_memory_equal(evbuffer_pullup(in, -1), sent, SENT);
	pair_close(&p);
}

static void test_fill_at_the_end(void **state)
{
	(void)state;
	struct pair p;
	pair_open(&p);
	close(p.peer);
	p.peer = -1;
	assert_int_equal(wire_fill(p.bev, SENT), SENT);
	assert_int_equal(wire_fill(p.bev, SENT), 0);   /* the end of the stream */
	assert_int_equal(evbuffer_get_length(bufferevent_get_input(p.bev)), SENT);
	pair_close(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_libevent_reads_4k),
		cmocka_unit_test(test_fill_reads_up_to_max),
		cmocka_unit_test(test_fill_after_libevent),
		cmocka_unit_test(test_fill_at_the_end),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
