/* dequeue: the dequeue trigger (see dequeue.h).
 *
 * A connection's life. dq_accept takes it; dq_begin reads the settings in
 * force at that moment (a reload between two connections is seen by the
 * second) for the transport_map lines of held domains, and compares each
 * line's host with the client's address: an IP address at once, a host
 * name through the main loop's own resolver (net/dns.c, made the first
 * time a name needs it; libunbound answers through the loop). dq_matched
 * asks the engine for a release of the domains that matched
 * (queue_release); the engine's callbacks run on the delivery thread and
 * only post their news to the main loop (net/post.h), where dq_news
 * writes them. A client object lives until the engine's last word
 * (finished, or started with an error) and its last look-up, whether the
 * connection is still there or not: a client that hangs up changes
 * nothing of the release.
 *
 * The client sends nothing; what it sends is read and dropped, and its
 * end of the stream (a half-close) stops nothing. Output is bounded: while
 * DQ_OUT_MAX octets wait for a client that does not read, progress lines
 * are counted instead of written, and the count is told before the last
 * line. The lines end in CRLF (the seeds' telnet).
 */
#include "control/dequeue.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "control/control_priv.h"
#include "deliver/queue.h"
#include "deliver/route.h"
#include "lib/cidr.h"
#include "lib/event.h"
#include "lib/log.h"
#include "lib/util.h"
#include "net/closer.h"
#include "net/dns.h"
#include "net/post.h"
#include "policy/hold.h"
#include "policy/settings.h"

#define DQ_CLIENTS_MAX 256        /* at once; one more is told to come back later */
#define DQ_OUT_MAX (64 * 1024)    /* octets waiting for the client: past it, no progress lines */
#define DQ_TEXT_MAX 300           /* of an address or a reply quoted in a line */
#define DQ_HELD_LOOK 100000       /* held domains read to choose among too many matches */

struct dq_client;

/* A transport_map line of a held domain, and whether its host is the client. */
struct dq_cand {
	struct dq_client *cl;
	char domain[256];
	char host[256];
	bool match;
};

struct dequeue {
	struct control *c;
	struct evconnlistener *lev;
	struct dq_client *clients;    /* every one not freed yet */
	size_t n;
	struct dns *dns;              /* for hosts named by name; made when first needed */
};

struct dq_client {
	struct dq_client *next, *prev;
	struct dequeue *d;            /* NULL once the service has gone (shutdown) */
	struct post *post;            /* the main loop's: the engine's news come through it */
	struct bufferevent *bev;      /* NULL once closed */
	struct sockaddr_storage peer;
	char ip[INET6_ADDRSTRLEN];
	struct dq_cand *cand;
	size_t ncand;
	unsigned lookups;             /* host names being resolved */
	unsigned unresolved;          /* of them, those that gave no address */
	bool engine;                  /* the engine holds it: until finished, or started with an error */
	bool started;
	long count;                   /* recipients released */
	size_t more;                  /* domains matched beyond HOLD_RELEASE_DOMAINS */
	long dropped;                 /* progress lines left out */
	struct hold_release rel;
};

/* The engine's news, from the delivery thread to the loop. */
enum dq_kind { DQ_STARTED, DQ_RESULT, DQ_FINISHED };

struct dq_news {
	struct dq_client *cl;
	enum dq_kind kind;
	int err;
	long n[3];     /* started: recipients, messages; finished: delivered, deferred, failed */
	int status;    /* a result's enum spool_status */
	char qid[UTIL_QID_LEN + 1];
	char *rcpt, *reply;
};

/* ---- writing, closing, freeing ---- */

/* One line to the client; a progress line is left out (and counted)
 * while DQ_OUT_MAX octets wait. */
static void dq_say(struct dq_client *cl, bool progress, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void dq_say(struct dq_client *cl, bool progress, const char *fmt, ...)
{
	if (!cl->bev)
		return;
	struct evbuffer *out = bufferevent_get_output(cl->bev);
	if (progress && evbuffer_get_length(out) > DQ_OUT_MAX) {
		cl->dropped++;
		return;
	}
	va_list ap;
	va_start(ap, fmt);
	evbuffer_add_vprintf(out, fmt, ap);
	va_end(ap);
	evbuffer_add(out, "\r\n", 2);
}

/* A copy of text fit for a line: control characters become '?', at most
 * DQ_TEXT_MAX octets. */
static char *dq_clean(const char *text)
{
	size_t n = strnlen(text ? text : "", DQ_TEXT_MAX);
	char *s = util_xcalloc(n + 1, 1);
	for (size_t i = 0; i < n; i++)
		s[i] = (unsigned char)text[i] < 0x20 || text[i] == 0x7f ? '?' : text[i];
	return s;
}

static void dq_unlink(struct dq_client *cl)
{
	struct dequeue *d = cl->d;
	if (!d)
		return;
	if (cl->prev)
		cl->prev->next = cl->next;
	else
		d->clients = cl->next;
	if (cl->next)
		cl->next->prev = cl->prev;
	d->n--;
	cl->d = NULL;
}

/* Freed once nothing holds it: the connection, the engine, a look-up. */
static void dq_maybe_free(struct dq_client *cl)
{
	if (cl->bev || cl->engine || cl->lookups)
		return;
	dq_unlink(cl);
	free(cl->cand);
	free(cl);
}

/* The connection goes (what was written is still sent: the closer). */
static void dq_close(struct dq_client *cl)
{
	if (cl->bev)
		closer_close(cl->d->c->env.srv->closer, cl->bev);
	cl->bev = NULL;
	dq_maybe_free(cl);
}

/* ---- the engine's news ---- */

static void dq_log_end(const struct dq_client *cl, const struct dq_news *nw)
{
	struct ev e;
	ev_init(&e, EK_DEQUEUE, LOG_INFO, 0, NULL);
	ev_add(&e, "client", "%s", cl->ip);
	ev_add(&e, "delivered", "%ld", nw->n[0]);
	ev_add(&e, "deferred", "%ld", nw->n[1]);
	ev_add(&e, "failed", "%ld", nw->n[2]);
	if (cl->dropped)
		ev_add(&e, "lines_left_out", "%ld", cl->dropped);
	if (!cl->bev)
		ev_flag(&e, "client_gone");
	ev_emit(&e);
}

static void dq_domains(const struct dq_client *cl, char *out, size_t n)
{
	out[0] = '\0';
	for (size_t i = 0, used = 0; i < cl->rel.n && used < n; i++, used = strlen(out))
		snprintf(out + used, n - used, "%s%s", i ? ", " : "", cl->rel.domain[i]);
}

static void dq_tell_started(struct dq_client *cl, const struct dq_news *nw)
{
	char domains[512];
	dq_domains(cl, domains, sizeof domains);
	cl->started = true;
	cl->count = nw->n[0];
	if (nw->err == EBUSY)
		dq_say(cl, false, "a release of %s is under way: try again once it is done", domains);
	else if (nw->err == ECANCELED)
		dq_say(cl, false, "ternd is stopping: try again later");
	else if (nw->err)
		dq_say(cl, false, "cannot dequeue %s now: %s", domains, strerror(nw->err));
	else if (nw->n[0] == 0)
		dq_say(cl, false, "no messages waiting for %s", domains);
	else
		dq_say(cl, false, "dequeuing %ld message%s", nw->n[1], nw->n[1] == 1 ? "" : "s");
	if (!nw->err && cl->more)
		dq_say(cl, false, "(%zu more of your domains wait: connect again once this is done)",
		       cl->more);
}

static void dq_tell_result(struct dq_client *cl, const struct dq_news *nw)
{
	if (nw->status == SPOOL_DELIVERED)
		dq_say(cl, true, "delivered %s to %s", nw->qid, nw->rcpt);
	else
		dq_say(cl, true, "%s %s to %s: %s", nw->status == SPOOL_FAILED ? "failed" : "deferred",
		       nw->qid, nw->rcpt, nw->reply);
}

static void dq_tell_finished(struct dq_client *cl, const struct dq_news *nw)
{
	if (!cl->started) {   /* the engine stopped before it could say */
		dq_say(cl, false, "ternd is stopping: what was not delivered waits for the next connection");
		return;
	}
	if (cl->count == 0)
		return;   /* "no messages waiting" said it */
	if (cl->dropped)
		dq_say(cl, false, "(%ld progress line%s left out: they were not read)", cl->dropped,
		       cl->dropped == 1 ? "" : "s");
	dq_say(cl, false, "done: %ld delivered, %ld deferred, %ld failed%s", nw->n[0], nw->n[1],
	       nw->n[2], nw->n[1] ? " (the deferred wait for the next dequeue)" : "");
	dq_log_end(cl, nw);
}

/* On the loop (or from post_free, the loop gone: then only freeing). */
static void dq_news(void *arg)
{
	struct dq_news *nw = arg;
	struct dq_client *cl = nw->cl;
	bool last = nw->kind == DQ_FINISHED || (nw->kind == DQ_STARTED && nw->err);
	if (!post_stopped(cl->post)) {
		if (nw->kind == DQ_STARTED)
			dq_tell_started(cl, nw);
		else if (nw->kind == DQ_RESULT)
			dq_tell_result(cl, nw);
		else
			dq_tell_finished(cl, nw);
	}
	if (last) {
		cl->engine = false;
		dq_close(cl);
	}
	free(nw->rcpt);
	free(nw->reply);
	free(nw);
}

/* The delivery thread: hand over. */
static void dq_post(struct dq_client *cl, enum dq_kind kind, struct dq_news *nw)
{
	nw->cl = cl;
	nw->kind = kind;
	post_call(cl->post, dq_news, nw);
}

static void dq_started(void *ctx, int err, long count, long messages)
{
	struct dq_news *nw = util_xcalloc(1, sizeof *nw);
	nw->err = err;
	nw->n[0] = count;
	nw->n[1] = messages;
	dq_post(ctx, DQ_STARTED, nw);
}

static void dq_result(void *ctx, const char *qid, const char *rcpt, int status, const char *reply)
{
	struct dq_news *nw = util_xcalloc(1, sizeof *nw);
	snprintf(nw->qid, sizeof nw->qid, "%s", qid);
	nw->rcpt = dq_clean(rcpt);
	nw->reply = dq_clean(reply);
	nw->status = status;
	dq_post(ctx, DQ_RESULT, nw);
}

static void dq_finished(void *ctx, long delivered, long deferred, long failed)
{
	struct dq_news *nw = util_xcalloc(1, sizeof *nw);
	nw->n[0] = delivered;
	nw->n[1] = deferred;
	nw->n[2] = failed;
	dq_post(ctx, DQ_FINISHED, nw);
}

/* ---- which domains: the client's ---- */

static void dq_log_trigger(const struct dq_client *cl)
{
	struct ev e;
	ev_init(&e, EK_DEQUEUE, LOG_INFO, 0, NULL);
	ev_add(&e, "client", "%s", cl->ip);
	for (size_t i = 0; i < cl->rel.n; i++)
		ev_add(&e, "domain", "%s", cl->rel.domain[i]);
	if (cl->more)
		ev_add(&e, "more", "%zu", cl->more);
	if (!cl->rel.n)
		ev_add(&e, "held", "none");
	ev_emit(&e);
}

/* Nothing is held here for this client: say why, and close. */
static void dq_nothing(struct dq_client *cl)
{
	const struct conf *cf = &cl->d->c->env.srv->set->conf;
	dq_log_trigger(cl);
	char unresolved[96] = "";
	if (cl->unresolved)
		snprintf(unresolved, sizeof unresolved, " (%u transport_map host name%s gave no address)",
		         cl->unresolved, cl->unresolved == 1 ? "" : "s");
	dq_say(cl, false, "no mail is held here for [%s]: %s%s", cl->ip,
	       cf->hold_domains.n ? "no domain of hold_domains has this address as its "
	                            "transport_map host" : "this server holds mail for no domain",
	       unresolved);
	dq_close(cl);
}

static bool dq_has_held(const struct spool_domain_counts *h, const char *domain)
{
	for (size_t i = 0; i < h->n; i++)
		if (!strcmp(h->v[i].domain, domain))
			return true;
	return false;
}

/* The domains to release: every one that matched, or when there are more
 * than a release takes, first those with mail waiting (the spool's held
 * rows), so that the next connection gets the others. */
static void dq_choose(struct dq_client *cl)
{
	struct spool_domain_counts h = { 0 };
	size_t matched = 0;
	for (size_t i = 0; i < cl->ncand; i++)
		matched += cl->cand[i].match;
	if (matched > HOLD_RELEASE_DOMAINS)
		spool_reader_held_domains(cl->d->c->reader, DQ_HELD_LOOK, &h);
	for (int pass = matched > HOLD_RELEASE_DOMAINS ? 0 : 1; pass < 2; pass++)
		for (size_t i = 0; i < cl->ncand && cl->rel.n < HOLD_RELEASE_DOMAINS; i++) {
			struct dq_cand *k = &cl->cand[i];
			if (!k->match || (pass == 0) != dq_has_held(&h, k->domain))
				continue;
			snprintf(cl->rel.domain[cl->rel.n++], sizeof cl->rel.domain[0], "%s", k->domain);
			k->match = false;   /* taken */
		}
	cl->more = matched - cl->rel.n;
	spool_domain_counts_free(&h);
}

/* Every host compared: release what is the client's. */
static void dq_matched(struct dq_client *cl)
{
	dq_choose(cl);
	if (!cl->rel.n)
		return dq_nothing(cl);
	struct control *c = cl->d->c;
	dq_log_trigger(cl);
	if (!c->env.queue || c->delivery_paused) {
		char domains[512];
		dq_domains(cl, domains, sizeof domains);
		dq_say(cl, false, "mail is held here for %s, but delivery is %s: try again later",
		       domains, c->env.queue ? "paused (ternctl pause delivery)"
		                             : "off (queue_only = yes)");
		return dq_close(cl);
	}
	cl->rel.started = dq_started;
	cl->rel.result = dq_result;
	cl->rel.finished = dq_finished;
	cl->rel.ctx = cl;
	cl->engine = true;
	queue_release(c->env.queue, &cl->rel);
}

/* A host name's addresses (the loop, from net/dns.c). */
static void dq_resolved(void *ctx, const struct dns_result *r)
{
	struct dq_cand *k = ctx;
	struct dq_client *cl = k->cl;
	size_t naddr = 0;
	for (size_t h = 0; r->status == DNS_OK && h < r->nhost; h++)
		for (size_t a = 0; a < r->host[h].naddr; a++, naddr++)
			k->match |= cidr_same_host((const struct sockaddr *)&r->host[h].addr[a],
			                           (const struct sockaddr *)&cl->peer);
	if (!naddr) {
		cl->unresolved++;
		log_warn("dequeue: transport_map host %s (for %s) gave no address: %s", k->host,
		         k->domain, r->status == DNS_OK ? "none" : r->why);
	}
	if (--cl->lookups == 0)
		dq_matched(cl);
}

/* Compare a line's host with the client: at once for an address, later
 * for a name. */
static void dq_compare(struct dq_client *cl, struct dq_cand *k)
{
	struct sockaddr_storage ss;
	int len = (int)sizeof ss;
	memset(&ss, 0, sizeof ss);
	if (evutil_parse_sockaddr_port(k->host, (struct sockaddr *)&ss, &len) == 0) {
		k->match = cidr_same_host((const struct sockaddr *)&ss,
		                          (const struct sockaddr *)&cl->peer);
		return;
	}
	struct dequeue *d = cl->d;
	if (!d->dns)
		d->dns = dns_new(d->c->env.srv->base, d->c->env.srv->set->conf.dns_resolver);
	cl->lookups++;
	dns_host(d->dns, k->host, dq_resolved, k);
}

struct dq_collect {
	struct dq_client *cl;
	const struct conf *cf;
};

/* A transport_map line: kept when its domain is held (hold_domains, or
 * under one) and it is the first line of that domain (the one routes use). */
static void dq_collect(void *ctx, const char *domain, const char *target)
{
	struct dq_collect *k = ctx;
	struct dq_client *cl = k->cl;
	char host[256];
	unsigned port;
	if (!hold_domain(k->cf, domain) || !util_hostport(target, host, sizeof host, &port))
		return;
	for (size_t i = 0; i < cl->ncand; i++)
		if (!strcmp(cl->cand[i].domain, domain))
			return;
	cl->cand = util_xrealloc(cl->cand, cl->ncand + 1, sizeof *cl->cand);
	struct dq_cand *c = &cl->cand[cl->ncand++];
	memset(c, 0, sizeof *c);
	c->cl = cl;
	snprintf(c->domain, sizeof c->domain, "%s", domain);
	snprintf(c->host, sizeof c->host, "%s", host);
}

/* With the settings in force now: the held domains' lines, each host
 * compared (names through the resolver: dq_resolved goes on). */
static void dq_begin(struct dq_client *cl)
{
	struct control *c = cl->d->c;
	if (c->env.srv->shutting_down) {
		dq_say(cl, false, "ternd is stopping: try again later");
		return dq_close(cl);
	}
	struct dq_collect k = { cl, &c->env.srv->set->conf };
	route_map_each(ctl_routes(c), dq_collect, &k);
	cl->lookups++;   /* none answers before every one is asked */
	for (size_t i = 0; i < cl->ncand; i++)
		dq_compare(cl, &cl->cand[i]);
	if (--cl->lookups == 0)
		dq_matched(cl);
}

/* ---- connections ---- */

static void dq_read_cb(struct bufferevent *bev, void *arg)
{
	(void)arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	evbuffer_drain(in, evbuffer_get_length(in));   /* nothing is asked of the client */
}

static void dq_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct dq_client *cl = arg;
	if (what & BEV_EVENT_ERROR)
		return dq_close(cl);   /* gone: the release goes on without it */
	if (what & BEV_EVENT_EOF)
		bufferevent_disable(bev, EV_READ);   /* a half-close: it may still read */
}

static void dq_client_ip(struct dq_client *cl)
{
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&cl->peer;
	if (cl->peer.ss_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
		inet_ntop(AF_INET, s6->sin6_addr.s6_addr + 12, cl->ip, sizeof cl->ip);
	else if (cl->peer.ss_family == AF_INET6)
		inet_ntop(AF_INET6, &s6->sin6_addr, cl->ip, sizeof cl->ip);
	else
		inet_ntop(AF_INET, &((const struct sockaddr_in *)&cl->peer)->sin_addr, cl->ip,
		          sizeof cl->ip);
}

static struct dq_client *dq_client_new(struct dequeue *d, struct bufferevent *bev,
                                       const struct sockaddr *sa, int salen)
{
	struct dq_client *cl = util_xcalloc(1, sizeof *cl);
	cl->d = d;
	cl->post = d->c->env.srv->post;
	cl->bev = bev;
	memcpy(&cl->peer, sa, (size_t)salen < sizeof cl->peer ? (size_t)salen : sizeof cl->peer);
	dq_client_ip(cl);
	cl->next = d->clients;
	if (cl->next)
		cl->next->prev = cl;
	d->clients = cl;
	d->n++;
	return cl;
}

static void dq_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
	(void)l;
	struct dequeue *d = arg;
	struct server *srv = d->c->env.srv;
	struct bufferevent *bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!bev) {
		evutil_closesocket(fd);
		return;
	}
	if (d->n >= DQ_CLIENTS_MAX) {
		evbuffer_add_printf(bufferevent_get_output(bev),
		                    "too many dequeue connections at once: try again later\r\n");
		return closer_close(srv->closer, bev);
	}
	struct dq_client *cl = dq_client_new(d, bev, sa, salen);
	bufferevent_setcb(bev, dq_read_cb, NULL, dq_event_cb, cl);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	dq_begin(cl);
}

static void dq_accept_error(struct evconnlistener *l, void *arg)
{
	(void)l;
	(void)arg;
	log_warn("dequeue_listen: accept failed: %s", strerror(errno));   /* EMFILE: later */
}

/* ---- open and free ---- */

struct dequeue *dequeue_open(struct control *c, const char *listen)
{
	struct sockaddr_storage ss;
	int len = (int)sizeof ss;
	if (evutil_parse_sockaddr_port(listen, (struct sockaddr *)&ss, &len) != 0) {
		log_error("dequeue_listen: '%s' is not address:port (an IP address, as listen takes)",
		          listen);
		return NULL;
	}
	struct dequeue *d = util_xcalloc(1, sizeof *d);
	d->c = c;
	d->lev = evconnlistener_new_bind(c->env.srv->base, dq_accept, d,
		LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_REUSEABLE, 64,
		(struct sockaddr *)&ss, len);
	if (!d->lev) {
		log_error("dequeue_listen: cannot listen on %s: %s", listen, strerror(errno));
		free(d);
		return NULL;
	}
	evconnlistener_set_error_cb(d->lev, dq_accept_error);
	log_info("dequeue trigger on %s", listen);
	return d;
}

void dequeue_free(struct dequeue *d)
{
	if (!d)
		return;
	evconnlistener_free(d->lev);
	while (d->clients) {
		struct dq_client *cl = d->clients;
		dq_say(cl, false, "ternd is stopping: what was not delivered waits for the next "
		       "connection");
		if (cl->bev)
			closer_close(d->c->env.srv->closer, cl->bev);
		cl->bev = NULL;
		cl->lookups = 0;   /* dns_free drops them */
		dq_unlink(cl);
		dq_maybe_free(cl);   /* unless the engine holds it: its news free it */
	}
	dns_free(d->dns);
	free(d);
}
