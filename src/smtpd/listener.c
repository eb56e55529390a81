/* listener: bind `listen` addresses and hand accepted sockets to sessions. */
#include "smtpd/listener.h"

#include <errno.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/util.h"

/* One listening socket and the modes of its `listen` entry. */
struct listener {
	struct evconnlistener *ev;
	struct server *srv;
	unsigned modes;  /* CONF_LISTEN_* */
};

struct listeners {
	size_t n;
	struct listener v[CONF_LIST_MAX];
};

static void listener_accept(struct evconnlistener *l, evutil_socket_t fd,
                            struct sockaddr *sa, int salen, void *arg)
{
	(void)l;
	struct listener *li = arg;
	session_start(li->srv, fd, sa, salen, li->modes);
}

static void listener_error(struct evconnlistener *l, void *arg)
{
	(void)l;
	(void)arg;
	/* EMFILE and kin: keep serving the sessions we have. */
	log_warn("accept failed: %s", strerror(errno));
}

static bool listener_bind(struct listener *li, const char *spec)
{
	struct sockaddr_storage ss;
	int len = (int)sizeof ss;
	char addr[128];
	if (!conf_listen_parse(spec, addr, sizeof addr, &li->modes) ||
	    evutil_parse_sockaddr_port(addr, (struct sockaddr *)&ss, &len) != 0) {
		log_error("listen: '%s' is not address:port [modes]", spec);
		return false;
	}
	li->ev = evconnlistener_new_bind(li->srv->base, listener_accept, li,
		LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_REUSEABLE, 512,
		(struct sockaddr *)&ss, len);
	if (!li->ev) {
		log_error("listen: cannot listen on %s: %s", addr, strerror(errno));
		return false;
	}
	evconnlistener_set_error_cb(li->ev, listener_error);
	log_info("listening on %s", spec);
	return true;
}

struct listeners *listener_open(struct server *srv)
{
	struct listeners *ls = util_xcalloc(1, sizeof *ls);
	for (size_t i = 0; i < srv->set->conf.listen.n; i++) {
		ls->v[ls->n].srv = srv;
		if (!listener_bind(&ls->v[ls->n], srv->set->conf.listen.v[i])) {
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
		evconnlistener_free(ls->v[i].ev);
	free(ls);
}
