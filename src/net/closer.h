/* closer: the one place where a connection's bufferevents, its SSL and
 * its socket are freed (server sessions and the outbound client alike).
 *
 * An owner hands its bufferevent over with closer_close(), from anywhere,
 * including inside one of that bufferevent's own callbacks: the owner's
 * callbacks are cleared at once and it must not touch the bufferevent
 * again. Everything else happens from the event loop, outside any
 * callback that libevent may still be running for it (freeing an SSL
 * under libevent_openssl's read loop was a remote crash):
 *
 *   1. a TLS layer sends its close_notify (RFC 8446 6.1) when the
 *      handshake had finished, and is freed with its SSL; an alert that a
 *      failed handshake left behind (RFC 8446 4.2.1 protocol_version, say)
 *      is in the socket's output like any other bytes;
 *   2. what the socket's output still holds is sent, for at most
 *      CLOSER_LINGER;
 *   3. if the peer had sent bytes that nobody read, the write side is shut
 *      and its input drained until EOF (at most CLOSER_LINGER), so that
 *      closing does not answer with a reset that could destroy the last
 *      reply before the peer reads it;
 *   4. the socket is closed.
 *
 * One closer per event loop (the main loop's sessions, the delivery
 * thread's connections). At shutdown closer_drain() ends the loop once
 * they are all closed; closer_free() closes what is left at once (one
 * last write each) after the loop has ended.
 */
#ifndef TERN_CLOSER_H
#define TERN_CLOSER_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

#include "lib/buf.h"

struct bufferevent;
struct event_base;
struct closer;

#define CLOSER_LINGER 5

struct closer *closer_new(struct event_base *base);

/* Take bev (a socket bufferevent, or a TLS filter over one, made with
 * tls_wrap) and close it as above. NULL is ignored. */
void closer_close(struct closer *l, struct bufferevent *bev);

/* A connection that goes on in another loop (ATRN's role reversal, RFC
 * 2645 4): its socket, its TLS session (NULL: none), and the bytes read
 * from it and not used yet, raw (TLS records still) and plain. */
struct closer_taken {
	int fd;
	SSL *ssl;
	struct buf raw, plain;
};

/* Free bev's bufferevents but keep the socket and the SSL in out. Only
 * from the loop, outside bev's callbacks, its output all sent. */
void closer_take(struct bufferevent *bev, struct closer_taken *out);
/* Its bufferevents again, on base (the top one: TLS when t has an SSL),
 * with the bytes read put back; t is emptied. NULL when they cannot be
 * made (t is then closed). The caller sets its callbacks and runs its
 * read callback once if the input holds something. */
struct bufferevent *closer_adopt(struct event_base *base, struct closer_taken *t);
/* Close what was taken and never adopted. */
void closer_taken_free(struct closer_taken *t);

/* The loop is ending (shutdown): call event_base_loopbreak() once every
 * connection handed over has been closed, or after seconds at the most. */
void closer_drain(struct closer *l, unsigned seconds);

/* Connections handed over and not yet closed. */
size_t closer_count(const struct closer *l);

/* Close every connection now (one last write attempt each), free l. */
void closer_free(struct closer *l);

#endif
