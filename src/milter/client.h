/* client: one connection to a milter on a libevent loop, non-blocking:
 * connecting, option negotiation (SMFIC_OPTNEG, protocol version 6),
 * packets out, replies in, and the time each reply may take.
 *
 * The owner (smtpd/milters.c) sends packets made with proto.h and says
 * whether a reply is awaited and for how long; each reply packet that
 * arrives goes to its callback, decoded. Whatever goes wrong (the
 * connection refused or lost, a reply late, malformed or larger than
 * MILTER_PACKET_MAX, a negotiation the filter refuses) is one failure
 * call with a reason, after which the client calls nothing any more: the
 * owner applies the milter's default action and closes it.
 */
#ifndef TERN_MILTER_CLIENT_H
#define TERN_MILTER_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "lib/conf.h"
#include "milter/proto.h"

struct event_base;
struct closer;
struct milter_client;

/* A reply (r), or the failure (r NULL, why set: the last call). */
typedef void milter_client_fn(void *ctx, const struct milter_reply *r, const char *why);

/* Connect to spec->target and offer version 6 with every action and
 * protocol step of proto.h; the filter's OPTNEG reply comes to fn like
 * any other (within connect_timeout). closer takes the connection at the
 * end. NULL never: a target that cannot even be tried fails from the
 * loop. */
struct milter_client *milter_client_open(struct event_base *base, struct closer *closer,
                                         const struct conf_milter *spec, milter_client_fn *fn,
                                         void *ctx);
/* Send packets (one or more, from proto.h). wait: seconds the next reply
 * may take from now (0: none is awaited; the timer is off). */
void milter_client_send(struct milter_client *c, const struct buf *packets, unsigned wait);
/* Await the next reply for wait seconds (0: stop waiting). */
void milter_client_wait(struct milter_client *c, unsigned wait);
/* SMFIC_QUIT (when quit), then close; no more calls. Safe inside fn. */
void milter_client_close(struct milter_client *c, bool quit);

#endif
