/* listener: bind `listen` addresses and hand accepted sockets to sessions. */
#include "listener.h"

#include <errno.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/log.h"

struct listeners {
	size_t n;
	struct evconnlistener *v[CONF_LIST_MAX];
};

static void listener_accept(struct evconnlistener *l, evutil_socket_t fd,
                            struct sockaddr *sa, int salen, void *arg)
{
	(void)l;
	session_start(arg, fd, sa, salen);
}

static void listener_error(struct evconnlistener *l, void *arg)
{
	(void)l;
	(void)arg;
	/* EMFILE and kin: keep serving the sessions we have. */
	log_warn("accept failed: %s", strerror(errno));
}

static struct evconnlistener *listener_bind(struct server *srv, const char *spec)
{
	struct sockaddr_storage ss;
	int len = (int)sizeof ss;
	if (evutil_parse_sockaddr_port(spec, (struct sockaddr *)&ss, &len) != 0 ||
	    !strchr(spec, ':')) {
		log_error("listen: '%s' is not address:port", spec);
		return NULL;
	}
	struct evconnlistener *l = evconnlistener_new_bind(srv->base, listener_accept, srv,
		LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_REUSEABLE, 512,
		(struct sockaddr *)&ss, len);
	if (!l) {
		log_error("listen: cannot listen on %s: %s", spec, strerror(errno));
		return NULL;
	}
	evconnlistener_set_error_cb(l, listener_error);
	log_info("listening on %s", spec);
	return l;
}

struct listeners *listener_open(struct server *srv)
{
	struct listeners *ls = calloc(1, sizeof *ls);
	if (!ls)
		abort();
	for (size_t i = 0; i < srv->conf->listen.n; i++) {
		ls->v[ls->n] = listener_bind(srv, srv->conf->listen.v[i]);
		if (!ls->v[ls->n]) {
			listener_close(ls);
			return NULL;
		}
		ls->n++;
	}
	return ls;
}

void listener_close(struct listeners *ls)
{
	if (!ls)
		return;
	for (size_t i = 0; i < ls->n; i++)
		evconnlistener_free(ls->v[i]);
	free(ls);
}
