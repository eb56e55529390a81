/* listener: the listening sockets of the `listen` setting. */
#ifndef TERN_LISTENER_H
#define TERN_LISTENER_H

#include "smtpd/session.h"

struct listeners;

/* Bind every address of conf->listen; on failure prints which address and
 * why, and returns NULL. */
struct listeners *listener_open(struct server *srv);
void listener_close(struct listeners *l);

#endif
