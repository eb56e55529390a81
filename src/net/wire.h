/* wire: direct writes on a plain socket bufferevent, shared by the
 * server's sessions and the outbound client.
 *
 * libevent's bufferevent writes from a write event: each reply costs an
 * epoll_ctl to watch for writability, a trip round the loop, the write,
 * and another epoll_ctl to stop watching. For request-reply traffic the
 * socket almost always has room, so a bufferevent in direct mode keeps
 * EV_WRITE disabled and its owner calls wire_flush() at the end of each
 * piece of work: one writev, no epoll_ctl. What the socket does not take
 * is left to libevent (EV_WRITE enabled again), whose write callback then
 * runs as usual, and which reports a write error through the event
 * callback. Not for TLS bufferevents (OpenSSL owns their writing).
 */
#ifndef TERN_WIRE_H
#define TERN_WIRE_H

#include <stdbool.h>
#include <stddef.h>

struct bufferevent;

/* Enter direct mode (a connected plain socket bufferevent). */
void wire_direct(struct bufferevent *bev);
/* Write what is buffered now; true when nothing is left (else libevent
 * has been asked to write the rest). */
bool wire_flush(struct bufferevent *bev);
/* Leave direct mode: the rest goes through write events again. */
void wire_indirect(struct bufferevent *bev);

/* TCP_NODELAY on a connected socket (a no-op on a unix socket). Every
 * write tern makes is already a whole batch (wire_flush's one writev, the
 * TLS cork), so Nagle's algorithm only delays: OpenSSL writes a handshake
 * flight in several writes, and each after the first waited for the
 * peer's delayed ACK (up to 40 ms on Linux) before it left. */
void wire_nodelay(int fd);

/* libevent 2.1 reads a socket at most 4096 octets a call, whatever
 * bufferevent_set_max_single_read says (evbuffer_read's EVBUFFER_MAX_READ;
 * settable from 2.2 on, which Debian 12 does not have): a 1 MiB message
 * took 256 reads and 256 turns of the loop. The octets libevent's own read
 * reaches for before tern fills up from the socket. */
#define WIRE_EVENT_READ 4096
/* One readv of what the socket of a plain bufferevent holds now, up to
 * max octets, onto its input: the number read, 0 at the end of the
 * stream, -1 with errno (EAGAIN: nothing more yet). libevent sees the end
 * of the stream or an error at its next read, as it would have. */
long wire_fill(struct bufferevent *bev, size_t max);

#endif
