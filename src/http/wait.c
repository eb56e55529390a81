/* wait: what a test or a page waits for. GET /api/v1/wait answers once
 * `count` messages match (a search query, an inbox), or at its timeout
 * with 408 and what matched, so tests never sleep; GET /api/v1/events
 * streams each new message as a server-sent event (HTML Living Standard
 * 9.2). Both look again when new mail is queued (http.c's subscription
 * wakes wait_news on the loop). */
#include "http/http_priv.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/util.h"
#include "smtpd/session.h"

#define WAIT_MAX 1000            /* waits at once */
#define WAIT_TIMEOUT_MAX 600     /* seconds */
#define STREAMS_MAX 100
#define API_LIMIT_WAIT 50        /* messages a wait's answer lists */

struct http_waiter {
	struct http_waiter *next;
	struct http *h;
	struct evhttp_request *req;
	struct event *timer;
	char *query, *inbox;
	long count;
};

struct http_stream {
	struct http_stream *next;
	struct http *h;
	struct evhttp_request *req;
	char *inbox;
};

/* ---- waits ---- */

static json_t *wait_list(struct http *h, const struct http_waiter *w, int *status)
{
	struct spool_capture_filter f = { .inbox = w->inbox, .limit = API_LIMIT_WAIT };
	return api_list(h, &f, w->query, status);
}

static void wait_unlink(struct http_waiter *w)
{
	for (struct http_waiter **p = &w->h->waiters; *p; p = &(*p)->next)
		if (*p == w) {
			*p = w->next;
			break;
		}
	event_free(w->timer);
	free(w->query);
	free(w->inbox);
	free(w);
}

static void wait_answer(struct http_waiter *w, int code, json_t *o)
{
	evhttp_connection_set_closecb(evhttp_request_get_connection(w->req), NULL, NULL);
	struct http_req r = { .h = w->h, .req = w->req, .path = "/api/v1/wait" };
	http_json(&r, code, o);
	wait_unlink(w);
}

/* Answer w if enough matches; true when answered. */
static bool wait_check(struct http_waiter *w, bool timed_out)
{
	int status;
	json_t *o = wait_list(w->h, w, &status);
	long n = (long)json_integer_value(json_object_get(o, "messages_count"));
	if (status != 200 || n >= w->count || timed_out) {
		wait_answer(w, status != 200 ? status : n >= w->count ? 200 : 408, o);
		return true;
	}
	json_decref(o);
	return false;
}

static void wait_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	wait_check(arg, true);
}

/* The client left. libevent has detached the unanswered request from
 * its connection (evhttp_connection_incoming_fail): it is ours to free. */
static void wait_gone(struct evhttp_connection *cn, void *arg)
{
	(void)cn;
	struct http_waiter *w = arg;
	evhttp_request_free(w->req);
	wait_unlink(w);
}

void wait_get(struct http_req *r)
{
	struct http *h = r->h;
	size_t n = 0;
	for (struct http_waiter *w = h->waiters; w; w = w->next)
		n++;
	if (n >= WAIT_MAX)
		return http_error(r, 503, "too many waits at once (%d)", WAIT_MAX);
	struct http_waiter *w = util_xcalloc(1, sizeof *w);
	const char *q = http_param(r, "query"), *inbox = http_param(r, "inbox");
	w->h = h;
	w->req = r->req;
	w->query = q && *q ? util_xstrdup(q) : NULL;
	w->inbox = inbox && *inbox ? util_xstrdup(inbox) : NULL;
	w->count = http_param_long(r, "count", 1, 1L << 30);
	long secs = http_param_long(r, "timeout", 30, WAIT_TIMEOUT_MAX);
	w->timer = evtimer_new(h->env.srv->base, wait_timeout, w);
	w->next = h->waiters;
	h->waiters = w;
	if (wait_check(w, false))
		return;
	struct timeval tv = { secs, 0 };
	evtimer_add(w->timer, &tv);
	evhttp_connection_set_closecb(evhttp_request_get_connection(r->req), wait_gone, w);
}

/* ---- server-sent events ---- */

static void stream_unlink(struct http_stream *s)
{
	for (struct http_stream **p = &s->h->streams; *p; p = &(*p)->next)
		if (*p == s) {
			*p = s->next;
			break;
		}
	free(s->inbox);
	free(s);
}

/* The client left mid-stream: the request, detached, is freed by ending it. */
static void stream_gone(struct evhttp_connection *cn, void *arg)
{
	(void)cn;
	struct http_stream *s = arg;
	evhttp_send_reply_end(s->req);
	stream_unlink(s);
}

static void stream_send(struct http_stream *s, const char *event, json_t *o)
{
	char *text = json_dumps(o, JSON_COMPACT);
	struct evbuffer *b = evbuffer_new();
	evbuffer_add_printf(b, "event: %s\ndata: %s\n\n", event, text ? text : "{}");
	evhttp_send_reply_chunk(s->req, b);
	evbuffer_free(b);
	free(text);
}

void wait_events(struct http_req *r)
{
	struct http *h = r->h;
	size_t n = 0;
	for (struct http_stream *s = h->streams; s; s = s->next)
		n++;
	if (n >= STREAMS_MAX)
		return http_error(r, 503, "too many event streams at once (%d)", STREAMS_MAX);
	if (!h->streams) {   /* nobody streamed: what is new starts now */
		struct spool_capture_filter f = { .limit = 1 };
		struct spool_captured_list l;
		if (spool_reader_captured(h->reader, &f, &l) == 0) {
			h->stream_seq = l.n ? l.v[0].seq : 0;
			spool_captured_list_free(&l);
		}
	}
	struct http_stream *s = util_xcalloc(1, sizeof *s);
	const char *inbox = http_param(r, "inbox");
	s->h = h;
	s->req = r->req;
	s->inbox = inbox && *inbox ? util_xstrdup(inbox) : NULL;
	s->next = h->streams;
	h->streams = s;
	struct evkeyvalq *o = evhttp_request_get_output_headers(r->req);
	evhttp_add_header(o, "Content-Type", "text/event-stream");
	evhttp_add_header(o, "Cache-Control", "no-store");
	evhttp_add_header(o, "X-Content-Type-Options", "nosniff");
	evhttp_send_reply_start(r->req, 200, "OK");
	evhttp_connection_set_closecb(evhttp_request_get_connection(r->req), stream_gone, s);
	json_t *hello = json_pack("{s:I}", "Seq", (json_int_t)h->stream_seq);
	stream_send(s, "hello", hello);
	json_decref(hello);
}

/* New rows: each stream gets those of its inbox. */
static void stream_news(struct http *h)
{
	struct spool_capture_filter f = { .after = h->stream_seq, .oldest_first = true,
	                                  .limit = 1000 };
	struct spool_captured_list l;
	if (spool_reader_captured(h->reader, &f, &l))
		return;
	for (size_t i = 0; i < l.n; i++) {
		json_t *o = NULL;
		for (struct http_stream *s = h->streams; s; s = s->next) {
			if (s->inbox && strcmp(s->inbox, l.v[i].inbox))
				continue;
			if (!o)
				o = api_summary(h, &l.v[i]);
			stream_send(s, "message", o);
		}
		json_decref(o);
		h->stream_seq = l.v[i].seq;
	}
	spool_captured_list_free(&l);
}

void wait_news(struct http *h)
{
	if (!h->streams && !h->waiters)
		return;   /* the common case: nobody waits, nothing to read */
	if (h->streams)
		search_index(h, 20);   /* the summaries' snippets, as far as time allows */
	stream_news(h);
	struct http_waiter *w = h->waiters;
	while (w) {
		struct http_waiter *next = w->next;
		wait_check(w, false);
		w = next;
	}
}

/* A comment line keeps proxies from closing an idle stream. */
void wait_keepalive(struct http *h)
{
	for (struct http_stream *s = h->streams; s; s = s->next) {
		struct evbuffer *b = evbuffer_new();
		evbuffer_add(b, ": keepalive\n\n", 13);
		evhttp_send_reply_chunk(s->req, b);
		evbuffer_free(b);
	}
}

void wait_stop(struct http *h)
{
	while (h->waiters) {
		struct http_waiter *w = h->waiters;
		wait_answer(w, 503, json_pack("{s:s}", "Error", "ternd is stopping"));
	}
	while (h->streams) {
		struct http_stream *s = h->streams;
		evhttp_connection_set_closecb(evhttp_request_get_connection(s->req), NULL, NULL);
		evhttp_send_reply_end(s->req);
		stream_unlink(s);
	}
}
