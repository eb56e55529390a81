/* httpc: HTTPS GET on a libevent loop through libcurl's multi interface
 * (curl's hiperfifo.c pattern); see httpc.h. */
#include "net/httpc.h"

#include <curl/curl.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/log.h"
#include "lib/util.h"

struct httpc {
	struct event_base *base;
	CURLM *multi;
	struct event *timer;          /* CURLMOPT_TIMERFUNCTION's */
	struct httpc_get *reqs;       /* under way */
};

struct httpc_get {
	struct httpc_get *next, **pprev;
	struct httpc *h;
	CURL *easy;
	struct curl_slist *resolve, *headers;
	bool post;
	struct event *fail_ev;        /* a request that never started: told from the loop */
	struct httpc_resp resp;
	size_t max_body;
	char content_type[64];
	bool too_big;
	httpc_cb cb;
	void *ctx;
	char err[CURL_ERROR_SIZE];
};

/* A socket curl watches: its event on the loop. */
struct httpc_sock {
	struct event *ev;
};

static void httpc_unlink(struct httpc_get *g)
{
	*g->pprev = g->next;
	if (g->next)
		g->next->pprev = g->pprev;
}

static void httpc_get_free(struct httpc_get *g)
{
	if (g->easy) {
		curl_multi_remove_handle(g->h->multi, g->easy);
		curl_easy_cleanup(g->easy);
	}
	curl_slist_free_all(g->resolve);
	curl_slist_free_all(g->headers);
	if (g->fail_ev)
		event_free(g->fail_ev);
	buf_free(&g->resp.body);
	free(g);
}

static void httpc_tell(struct httpc_get *g)
{
	httpc_unlink(g);
	g->cb(g->ctx, &g->resp);
	httpc_get_free(g);
}

/* The media type before any parameter, against the one required. */
static bool httpc_type_ok(const char *got, const char *want)
{
	if (!got)
		return false;
	size_t n = strcspn(got, "; \t");
	return strlen(want) == n && strncasecmp(got, want, n) == 0;
}

/* A transfer has ended with rc: judge the response. */
static void httpc_judge(struct httpc_get *g, CURLcode rc)
{
	struct httpc_resp *r = &g->resp;
	char *type = NULL;
	curl_easy_getinfo(g->easy, CURLINFO_RESPONSE_CODE, &r->status);
	curl_easy_getinfo(g->easy, CURLINFO_CONTENT_TYPE, &type);
	r->webpki = rc == CURLE_PEER_FAILED_VERIFICATION;
	if (g->too_big || rc == CURLE_FILESIZE_EXCEEDED)
		snprintf(r->why, sizeof r->why, "the body is over %zu octets", g->max_body);
	else if (rc != CURLE_OK)
		snprintf(r->why, sizeof r->why, "%s", *g->err ? g->err : curl_easy_strerror(rc));
	else if (r->status >= 300 && r->status < 400)
		snprintf(r->why, sizeof r->why, "HTTP %ld (redirects are not followed)", r->status);
	else if (g->post ? r->status / 100 != 2 : r->status != 200)
		snprintf(r->why, sizeof r->why, "HTTP %ld", r->status);
	else if (*g->content_type && !httpc_type_ok(type, g->content_type))
		snprintf(r->why, sizeof r->why, "Content-Type %.100s, not %s", type ? type : "missing",
		         g->content_type);
	else
		r->ok = true;
}

static void httpc_check(struct httpc *h)
{
	CURLMsg *msg;
	int left;
	while ((msg = curl_multi_info_read(h->multi, &left))) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		struct httpc_get *g = NULL;
		CURLcode rc = msg->data.result;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&g);
		httpc_judge(g, rc);
		httpc_tell(g);
	}
}

static void httpc_event_cb(evutil_socket_t fd, short what, void *arg)
{
	struct httpc *h = arg;
	int action = (what & EV_READ ? CURL_CSELECT_IN : 0) | (what & EV_WRITE ? CURL_CSELECT_OUT : 0);
	int running = 0;
	curl_multi_socket_action(h->multi, fd, action, &running);
	httpc_check(h);
	if (running <= 0)
		evtimer_del(h->timer);
}

static void httpc_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct httpc *h = arg;
	int running = 0;
	curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	httpc_check(h);
}

/* CURLMOPT_TIMERFUNCTION: -1 stops the timer, else it fires in ms. */
static int httpc_timer_fn(CURLM *multi, long ms, void *arg)
{
	(void)multi;
	struct httpc *h = arg;
	if (ms < 0) {
		evtimer_del(h->timer);
		return 0;
	}
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	evtimer_add(h->timer, &tv);
	return 0;
}

/* CURLMOPT_SOCKETFUNCTION: watch s as curl says (or no more). */
static int httpc_sock_fn(CURL *e, curl_socket_t s, int what, void *arg, void *sockp)
{
	(void)e;
	struct httpc *h = arg;
	struct httpc_sock *hs = sockp;
	if (what == CURL_POLL_REMOVE) {
		if (hs) {
			event_free(hs->ev);
			free(hs);
			curl_multi_assign(h->multi, s, NULL);
		}
		return 0;
	}
	if (!hs) {
		hs = util_xcalloc(1, sizeof *hs);
		curl_multi_assign(h->multi, s, hs);
	} else {
		event_free(hs->ev);
	}
	short kind = (short)((what & CURL_POLL_IN ? EV_READ : 0) | (what & CURL_POLL_OUT ? EV_WRITE : 0));
	hs->ev = event_new(h->base, s, kind | EV_PERSIST, httpc_event_cb, h);
	event_add(hs->ev, NULL);
	return 0;
}

static size_t httpc_write_fn(char *p, size_t size, size_t nmemb, void *arg)
{
	struct httpc_get *g = arg;
	size_t n = size * nmemb;
	if (g->resp.body.len + n > g->max_body) {
		g->too_big = true;
		return 0;   /* CURLE_WRITE_ERROR: the transfer stops */
	}
	buf_append(&g->resp.body, p, n);
	return n;
}

struct httpc *httpc_new(struct event_base *base)
{
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return NULL;
	struct httpc *h = util_xcalloc(1, sizeof *h);
	h->base = base;
	h->multi = curl_multi_init();
	h->timer = evtimer_new(base, httpc_timer_cb, h);
	if (!h->multi || !h->timer)
		log_panic("httpc: cannot make curl's multi handle or its timer");
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, httpc_sock_fn);
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, httpc_timer_fn);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
	return h;
}

void httpc_free(struct httpc *h)
{
	if (!h)
		return;
	while (h->reqs) {
		struct httpc_get *g = h->reqs;
		httpc_unlink(g);
		httpc_get_free(g);
	}
	curl_multi_cleanup(h->multi);   /* removes the sockets' events (CURL_POLL_REMOVE) */
	event_free(h->timer);
	free(h);
	curl_global_cleanup();
}

static void httpc_fail_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	httpc_tell(arg);
}

static bool httpc_setup_post(struct httpc_get *g, const struct httpc_req *req)
{
	struct buf type = BUF_INIT;
	buf_printf(&type, "Content-Type: %s", req->post_type);
	g->headers = curl_slist_append(NULL, buf_cstr(&type));
	buf_free(&type);
	g->post = true;
	return g->headers &&
	       curl_easy_setopt(g->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->post_len) == CURLE_OK &&
	       curl_easy_setopt(g->easy, CURLOPT_COPYPOSTFIELDS, req->post) == CURLE_OK &&
	       curl_easy_setopt(g->easy, CURLOPT_HTTPHEADER, g->headers) == CURLE_OK;
}

/* The easy handle's options; false when curl refuses one. */
static bool httpc_setup(struct httpc_get *g, const struct httpc_req *req)
{
	struct buf url = BUF_INIT, res = BUF_INIT;
	bool v6 = strchr(req->addr, ':') != NULL;
	buf_printf(&url, "https://%s:%u%s", req->host, req->port, req->path);
	buf_printf(&res, v6 ? "%s:%u:[%s]" : "%s:%u:%s", req->host, req->port, req->addr);
	g->resolve = curl_slist_append(NULL, buf_cstr(&res));
	struct curl_blob ca = { (void *)req->ca_pem, req->ca_len, CURL_BLOB_COPY };
	CURL *e = g->easy;
	bool ok = g->resolve &&
		curl_easy_setopt(e, CURLOPT_URL, buf_cstr(&url)) == CURLE_OK &&
		curl_easy_setopt(e, CURLOPT_RESOLVE, g->resolve) == CURLE_OK &&
		curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https") == CURLE_OK &&
		curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L) == CURLE_OK &&
		curl_easy_setopt(e, CURLOPT_NOPROXY, "*") == CURLE_OK &&
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L) == CURLE_OK &&
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L) == CURLE_OK &&
		curl_easy_setopt(e, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2) == CURLE_OK &&
		(!req->ca_pem || curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &ca) == CURLE_OK) &&
		curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, (long)req->connect_timeout) == CURLE_OK &&
		curl_easy_setopt(e, CURLOPT_TIMEOUT, (long)req->timeout) == CURLE_OK &&
		curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)req->max_body) == CURLE_OK &&
		curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
		curl_easy_setopt(e, CURLOPT_USERAGENT, "tern") == CURLE_OK &&
		curl_easy_setopt(e, CURLOPT_ERRORBUFFER, g->err) == CURLE_OK &&
		curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, httpc_write_fn) == CURLE_OK &&
		curl_easy_setopt(e, CURLOPT_WRITEDATA, g) == CURLE_OK &&
		curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)g) == CURLE_OK;
	buf_free(&url);
	buf_free(&res);
	return ok && (!req->post || httpc_setup_post(g, req));
}

struct httpc_get *httpc_get(struct httpc *h, const struct httpc_req *req, httpc_cb cb, void *ctx)
{
	struct httpc_get *g = util_xcalloc(1, sizeof *g);
	g->h = h;
	g->cb = cb;
	g->ctx = ctx;
	g->max_body = req->max_body;
	snprintf(g->content_type, sizeof g->content_type, "%s", req->content_type ? req->content_type : "");
	g->next = h->reqs;
	if (g->next)
		g->next->pprev = &g->next;
	g->pprev = &h->reqs;
	h->reqs = g;
	g->easy = curl_easy_init();
	if (g->easy && httpc_setup(g, req) && curl_multi_add_handle(h->multi, g->easy) == CURLM_OK)
		return g;
	if (g->easy)
		curl_easy_cleanup(g->easy);
	g->easy = NULL;
	snprintf(g->resp.why, sizeof g->resp.why, "cannot set up the request (libcurl)");
	g->fail_ev = evtimer_new(h->base, httpc_fail_cb, g);
	event_active(g->fail_ev, EV_TIMEOUT, 0);
	return g;
}

void httpc_cancel(struct httpc *h, struct httpc_get *g)
{
	(void)h;
	httpc_unlink(g);
	httpc_get_free(g);
}
