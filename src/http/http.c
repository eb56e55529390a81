/* http: the listener, the routes, login and the CSRF rule (http.h). */
#include "http/http_priv.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <time.h>
#include <unistd.h>

#include "lib/event.h"
#include "lib/log.h"
#include "lib/util.h"
#include "policy/auth.h"
#include "policy/settings.h"
#include "smtpd/session.h"
#include "spool/spool.h"

#define HTTP_BODY_MAX (1u << 20)       /* a request's body: JSON, small */
#define HTTP_LOGIN_TTL 600             /* seconds a checked login is remembered */
#define HTTP_LOGINS_MAX 32

/* crypt(3) with yescrypt takes tens of milliseconds: a login checked is
 * remembered, by a digest of the credentials, for HTTP_LOGIN_TTL. */
struct http_login {
	struct http_login *next;
	unsigned char digest[32];
	char user[128];
	int64_t until;
};

struct settings *http_settings(const struct http *h)
{
	return h->env.srv->set;
}

/* ---- replies ---- */

static void http_headers(struct evhttp_request *req, const char *type)
{
	struct evkeyvalq *o = evhttp_request_get_output_headers(req);
	evhttp_add_header(o, "Content-Type", type);
	evhttp_add_header(o, "X-Content-Type-Options", "nosniff");
	evhttp_add_header(o, "Referrer-Policy", "no-referrer");
	evhttp_add_header(o, "Cache-Control", "no-store");
	if (!evhttp_find_header(o, "Content-Security-Policy"))
		evhttp_add_header(o, "Content-Security-Policy",
		                  "default-src 'none'; frame-ancestors 'none'; sandbox");
}

void http_text(struct http_req *r, int code, const char *type, const char *text, size_t n)
{
	struct evbuffer *b = evbuffer_new();
	evbuffer_add(b, text, n);
	http_headers(r->req, type);
	evhttp_send_reply(r->req, code, NULL, b);
	evbuffer_free(b);
}

static void http_free_ref(const void *data, size_t len, void *arg)
{
	(void)data, (void)len;
	free(arg);
}

void http_send_buf(struct http_req *r, int code, const char *type, struct buf *b)
{
	struct evbuffer *out = evbuffer_new();
	if (b->len)
		evbuffer_add_reference(out, b->data, b->len, http_free_ref, b->data);
	else
		free(b->data);
	buf_init(b);
	http_headers(r->req, type);
	evhttp_send_reply(r->req, code, NULL, out);
	evbuffer_free(out);
}

/* A body file sent a piece at a time, each once the last has been
 * written: memory stays HTTP_PIECE whatever the message's size (an mmap'd
 * or sendfile'd segment cannot go through TLS without being read whole). */
#define HTTP_PIECE (256 * 1024)

struct http_file {
	struct evhttp_request *req;
	int fd;
	uint64_t off, size;
};

static void http_file_free(struct http_file *f)
{
	close(f->fd);
	free(f);
}

static void http_file_gone(struct evhttp_connection *cn, void *arg)
{
	(void)cn;
	struct http_file *f = arg;
	evhttp_send_reply_end(f->req);   /* detached by libevent: this frees it */
	http_file_free(f);
}

static void http_file_more(struct evhttp_connection *cn, void *arg)
{
	struct http_file *f = arg;
	char piece[HTTP_PIECE];
	size_t want = f->size - f->off < sizeof piece ? (size_t)(f->size - f->off) : sizeof piece;
	ssize_t n = want ? pread(f->fd, piece, want, (off_t)f->off) : 0;
	if (n <= 0) {   /* the end (or a short file: the client sees the length fall short) */
		evhttp_connection_set_closecb(cn, NULL, NULL);
		evhttp_send_reply_end(f->req);
		return http_file_free(f);
	}
	f->off += (uint64_t)n;
	struct evbuffer *b = evbuffer_new();
	evbuffer_add(b, piece, (size_t)n);
	evhttp_send_reply_chunk_with_cb(f->req, b, http_file_more, f);
	evbuffer_free(b);
}

void http_send_src(struct http_req *r, const char *type, struct mime_src *src)
{
	http_headers(r->req, type);
	struct evbuffer *out = evbuffer_new();
	evbuffer_add(out, src->mem.data ? src->mem.data : "", src->mem.len);
	if (src->fd < 0 || !src->fsize) {
		evhttp_send_reply(r->req, 200, NULL, out);
		return evbuffer_free(out);
	}
	struct http_file *f = util_xcalloc(1, sizeof *f);
	f->req = r->req;
	f->fd = src->fd;
	f->size = src->fsize;
	src->fd = -1;   /* the stream's now */
	struct evhttp_connection *cn = evhttp_request_get_connection(r->req);
	evhttp_send_reply_start(r->req, 200, "OK");
	evhttp_connection_set_closecb(cn, http_file_gone, f);
	evhttp_send_reply_chunk_with_cb(r->req, out, http_file_more, f);
	evbuffer_free(out);
}

void http_json(struct http_req *r, int code, json_t *o)
{
	char *text = o ? json_dumps(o, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
	json_decref(o);
	if (!text)
		return http_text(r, 500, "application/json", "{\"Error\":\"out of memory\"}", 26);
	http_text(r, code, "application/json", text, strlen(text));
	free(text);
}

void http_error(struct http_req *r, int code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	http_json(r, code, json_pack("{s:s}", "Error", msg));
}

/* ---- requests ---- */

const char *http_param(const struct http_req *r, const char *name)
{
	return r->query ? evhttp_find_header(r->query, name) : NULL;
}

long http_param_long(const struct http_req *r, const char *name, long def, long max)
{
	const char *v = http_param(r, name);
	char *end;
	long n = v && *v ? strtol(v, &end, 10) : def;
	if (!v || !*v || *end || n < 0)
		return def;
	return n > max ? max : n;
}

json_t *http_body_json(struct http_req *r, bool required)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
	size_t n = evbuffer_get_length(in);
	if (n == 0) {
		if (required)
			http_error(r, 400, "a JSON body is needed");
		return NULL;
	}
	json_error_t err;
	json_t *o = json_loadb((const char *)evbuffer_pullup(in, (ssize_t)n), n, 0, &err);
	if (!o && required)
		http_error(r, 400, "the body is not JSON: %s", err.text);
	return o;
}

/* ---- login (HTTP Basic, RFC 7617) against users_file ---- */

static void http_login_digest(const char *cred, size_t n, unsigned char out[32])
{
	unsigned int len = 32;
	EVP_Digest(cred, n, out, &len, EVP_sha256(), NULL);
}

static const char *http_login_known(struct http *h, const unsigned char d[32], int64_t now)
{
	for (struct http_login *l = h->logins; l; l = l->next)
		if (l->until > now && !memcmp(l->digest, d, 32))
			return l->user;
	return NULL;
}

static const char *http_login_remember(struct http *h, const unsigned char d[32],
                                       const char *user, int64_t now)
{
	struct http_login **p = &h->logins, *l;
	size_t n = 0;
	while ((l = *p) != NULL) {   /* drop the expired, and the oldest past the cap */
		if (l->until <= now || ++n >= HTTP_LOGINS_MAX) {
			*p = l->next;
			free(l);
		} else {
			p = &l->next;
		}
	}
	l = util_xcalloc(1, sizeof *l);
	memcpy(l->digest, d, 32);
	size_t un = strnlen(user, sizeof l->user - 1);
	memcpy(l->user, user, un);
	l->user[un] = 0;
	l->until = now + HTTP_LOGIN_TTL;
	l->next = h->logins;
	h->logins = l;
	return l->user;
}

/* The user the request logs in as, or NULL. */
static const char *http_login(struct http_req *r)
{
	struct evkeyvalq *in = evhttp_request_get_input_headers(r->req);
	const char *a = evhttp_find_header(in, "Authorization");
	if (!a || strncasecmp(a, "Basic ", 6))
		return NULL;
	unsigned char dec[600];
	size_t alen = strlen(a + 6);
	if (alen > 4 * (sizeof dec - 1) / 3)
		return NULL;
	int n = EVP_DecodeBlock(dec, (const unsigned char *)a + 6, (int)alen);
	if (n <= 0)
		return NULL;
	while (n > 0 && a[6 + alen - 1] == '=' && alen-- > 0)   /* EVP counts the padding */
		n--;
	dec[n] = 0;
	char *colon = memchr(dec, ':', (size_t)n);
	if (!colon)
		return NULL;
	unsigned char d[32];
	http_login_digest((const char *)dec, (size_t)n, d);
	int64_t now = (int64_t)time(NULL);
	const char *user = http_login_known(r->h, d, now);
	if (!user) {
		*colon = 0;
		if (auth_users_check(http_settings(r->h)->users, (const char *)dec, colon + 1))
			user = http_login_remember(r->h, d, (const char *)dec, now);
	}
	OPENSSL_cleanse(dec, sizeof dec);
	return user;
}

/* ---- CSRF: a change must come from our own page or a program ---- */

/* A browser sends a cross-site POST with a form's content types without
 * asking first (a "simple" request, Fetch standard 4.1); every other
 * content type, and PUT and DELETE, need a CORS preflight we never
 * answer. So: such content types are refused, as is any request whose
 * Origin or Sec-Fetch-Site says it came from another site. Programs
 * (curl, test code written for Mailpit) send neither header. */
static bool http_csrf_ok(struct http_req *r)
{
	struct evkeyvalq *in = evhttp_request_get_input_headers(r->req);
	const char *type = evhttp_find_header(in, "Content-Type");
	static const char *const simple[] = { "application/x-www-form-urlencoded",
	                                      "multipart/form-data", "text/plain" };
	for (size_t i = 0; type && i < sizeof simple / sizeof simple[0]; i++)
		if (!strncasecmp(type, simple[i], strlen(simple[i])))
			return false;
	const char *site = evhttp_find_header(in, "Sec-Fetch-Site");
	if (site && strcasecmp(site, "same-origin") && strcasecmp(site, "none"))
		return false;
	const char *origin = evhttp_find_header(in, "Origin");
	const char *host = evhttp_find_header(in, "Host");
	if (!origin)
		return true;
	const char *o = strstr(origin, "://");
	return host && o && !strcasecmp(o + 3, host);
}

/* ---- routes ---- */

/* Does path match pattern ("{}" one segment)? The segments into arg. */
static bool http_match(const char *pattern, const char *path, char *arg[2])
{
	size_t na = 0;
	bool ok = true;
	while (ok && *pattern && *path) {
		if (!strncmp(pattern, "{}", 2)) {
			size_t n = strcspn(path, "/");
			if (n == 0 || na == 2) {
				ok = false;
				break;
			}
			arg[na++] = util_xstrndup(path, n);
			path += n;
			pattern += 2;
		} else {
			ok = *pattern++ == *path++;
		}
	}
	if (ok && !*pattern && !*path)
		return true;
	while (na)
		free(arg[--na]);
	arg[0] = arg[1] = NULL;
	return false;
}

static const struct http_route *http_route(struct http_req *r, bool *other_method)
{
	*other_method = false;
	for (size_t i = 0; i < http_nroutes; i++) {
		char *arg[2] = { NULL, NULL };
		if (!http_match(http_routes[i].pattern, r->path, arg))
			continue;
		if (http_routes[i].methods & r->method) {
			memcpy(r->arg, arg, sizeof arg);
			return &http_routes[i];
		}
		free(arg[0]);
		free(arg[1]);
		*other_method = true;
	}
	return NULL;
}

static void http_log(const struct http_req *r, const char *what)
{
	log_info("http: %s %s: %s%s%s", evhttp_request_get_command(r->req) == EVHTTP_REQ_GET ? "GET"
	         : r->method == EVHTTP_REQ_POST ? "POST" : r->method == EVHTTP_REQ_PUT ? "PUT"
	         : r->method == EVHTTP_REQ_DELETE ? "DELETE" : "other", r->path, what,
	         r->user ? ", user=" : "", r->user ? r->user : "");
}

static void http_serve(struct http_req *r)
{
	const struct conf *c = &http_settings(r->h)->conf;
	if (c->http_login && !(r->user = http_login(r))) {
		evhttp_add_header(evhttp_request_get_output_headers(r->req), "WWW-Authenticate",
		                  "Basic realm=\"tern\", charset=\"UTF-8\"");
		http_log(r, "login needed");
		return http_error(r, 401, "log in with a user of users_file");
	}
	bool other;
	const struct http_route *rt = http_route(r, &other);
	if (!rt) {
		if (r->method == EVHTTP_REQ_GET && page_serve(r))
			return;
		return other ? http_error(r, 405, "method not allowed on %s", r->path)
		             : http_error(r, 404, "no such resource: %s", r->path);
	}
	if (rt->changes && !http_csrf_ok(r)) {
		http_log(r, "refused: cross-site request (CSRF)");
		return http_error(r, 403, "cross-site requests may not change anything");
	}
	if (rt->changes)
		http_log(r, "change");
	rt->fn(r);
}

static void http_cb(struct evhttp_request *req, void *arg)
{
	struct http *h = arg;
	struct http_req r = { .h = h, .req = req, .method = (int)evhttp_request_get_command(req) };
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *raw = uri ? evhttp_uri_get_path(uri) : NULL;
	char *path = raw ? evhttp_uridecode(raw, 0, NULL) : NULL;
	struct evkeyvalq query = { 0 };
	TAILQ_INIT(&query);
	const char *q = uri ? evhttp_uri_get_query(uri) : NULL;
	if (!path || (q && evhttp_parse_query_str(q, &query))) {
		r.path = "?";
		http_error(&r, 400, "malformed request target");
	} else if (h->stopping) {
		r.path = path;
		http_error(&r, 503, "ternd is stopping");
	} else {
		r.path = path;
		r.query = &query;
		http_serve(&r);
	}
	evhttp_clear_headers(&query);
	free(r.arg[0]);
	free(r.arg[1]);
	free(path);
}

/* ---- TLS (http_tls): the server context of the settings in force ---- */

static struct bufferevent *http_bev(struct event_base *base, void *arg)
{
	struct http *h = arg;
	SSL_CTX *ctx = http_settings(h)->tls;
	SSL *ssl = ctx ? SSL_new(ctx) : NULL;
	if (!ssl)
		return NULL;
	return bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
	                                      BEV_OPT_CLOSE_ON_FREE);
}

/* ---- new mail and the clock ---- */

/* Any thread: a message was queued (a session's, a pickup's, a report):
 * the loop looks for new rows. */
static void http_event(void *ctx, const struct ev *e)
{
	struct http *h = ctx;
	if (e->kind == EK_QUEUED || e->kind == EK_REPORT)
		event_active(h->news, 0, 0);
}

static void http_news(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	struct http *h = arg;
	if (!h->stopping)
		wait_news(h);
}

static void http_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	struct http *h = arg;
	if (h->stopping)
		return;
	++h->ticks;
	search_index(h, 10);   /* 10 ms of every 100 */
	if (h->ticks % 10 == 0)
		api_retention(h);
	if (h->ticks % 150 == 0)
		wait_keepalive(h);
}

bool http_start(struct http *h)
{
	if (!h || !h->http)
		return true;
	const struct conf *c = &http_settings(h)->conf;
	h->reader = spool_reader_open(c->spool_dir);
	if (!h->reader || !search_open(h, c->spool_dir))
		return false;
	mime_init();
	h->mime = true;
	struct event_base *base = h->env.srv->base;
	h->news = event_new(base, -1, 0, http_news, h);
	h->tick = event_new(base, -1, EV_PERSIST, http_tick, h);
	struct timeval tenth = { 0, 100000 };
	event_add(h->tick, &tenth);
	h->sub = ev_subscribe(http_event, h, LOG_INFO);
	ev_set_kinds(h->sub, EV_KIND(EK_QUEUED) | EV_KIND(EK_REPORT));   /* http_event's */
	return h->sub >= 0;
}

/* ---- lifetime ---- */

static bool http_bind(struct http *h, const char *spec)
{
	char host[256];
	unsigned port;
	if (!util_hostport(spec, host, sizeof host, &port)) {
		log_error("http_listen: '%s' is not host:port", spec);
		return false;
	}
	h->sock = evhttp_bind_socket_with_handle(h->http, host, (uint16_t)port);
	if (!h->sock) {
		log_error("http_listen: cannot listen on %s", spec);
		return false;
	}
	return true;
}

struct http *http_open(const struct http_env *env)
{
	struct http *h = util_xcalloc(1, sizeof *h);
	h->env = *env;
	h->sub = -1;
	const struct conf *c = &env->srv->set->conf;
	if (!*c->http_listen)
		return h;
	if (c->http_tls && !env->srv->set->tls) {
		log_error("http_tls = yes needs tls_cert and tls_key");
		free(h);
		return NULL;
	}
	if (c->http_login && !*c->users_file) {
		log_error("http_login = yes needs users_file");
		free(h);
		return NULL;
	}
	h->http = evhttp_new(env->srv->base);
	if (!h->http || !http_bind(h, c->http_listen)) {
		http_free(h);
		return NULL;
	}
	evhttp_set_allowed_methods(h->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
	                                    EVHTTP_REQ_DELETE | EVHTTP_REQ_HEAD);
	evhttp_set_max_body_size(h->http, HTTP_BODY_MAX);
	evhttp_set_max_headers_size(h->http, 64 * 1024);
	evhttp_set_timeout(h->http, 60);
	if (c->http_tls)
		evhttp_set_bevcb(h->http, http_bev, h);
	evhttp_set_gencb(h->http, http_cb, h);
	log_info("http: API and web page on %s://%s/", c->http_tls ? "https" : "http", c->http_listen);
	return h;
}

void http_stop(struct http *h)
{
	if (!h || !h->http || h->stopping)
		return;
	h->stopping = true;
	if (h->tick)
		event_del(h->tick);
	if (h->sub >= 0)
		ev_set_min(h->sub, LOG_ERROR + 1);   /* no more records */
	wait_stop(h);
	if (h->sock)
		evhttp_del_accept_socket(h->http, h->sock);
	h->sock = NULL;
}

void http_free(struct http *h)
{
	if (!h)
		return;
	while (h->logins) {
		struct http_login *l = h->logins;
		h->logins = l->next;
		OPENSSL_cleanse(l, sizeof *l);
		free(l);
	}
	if (h->http)
		evhttp_free(h->http);
	if (h->news)
		event_free(h->news);
	if (h->tick)
		event_free(h->tick);
	search_close(h);
	spool_reader_close(h->reader);
	if (h->mime)
		mime_shutdown();
	free(h);
}
