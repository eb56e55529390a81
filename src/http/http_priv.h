/* http_priv: what the HTTP layer's files share: http.c (the listener,
 * routes, login, CSRF, replies), api.c (the capture endpoints), wait.c
 * (the long-poll wait and server-sent events), queue.c (the normal
 * mode's queue and counters), mime.c (GMime views),
 * search.c (the FTS5 index) and page.c (the web page's files). */
#ifndef TERN_HTTP_PRIV_H
#define TERN_HTTP_PRIV_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http/http.h"
#include "http/query.h"
#include "lib/buf.h"
#include "spool/reader.h"

struct evhttp;
struct evhttp_request;
struct evhttp_bound_socket;
struct event;
struct evbuffer;
struct http_waiter;
struct http_stream;
struct http_login;
struct mime_src;

struct http {
	struct http_env env;
	struct evhttp *http;
	struct evhttp_bound_socket *sock;
	struct spool_reader *reader;    /* the API's own connection (the index attached) */
	struct sqlite3 *idx;            /* the search index (capture-index.db), or NULL */
	int64_t index_seq;              /* rows up to this seq are in the index */
	struct event *tick;             /* every second: retention, indexing */
	struct event *news;             /* new mail: waiters and streams look */
	int sub;                        /* the event subscription (new mail) */
	struct http_waiter *waiters;    /* GET /api/v1/wait */
	struct http_stream *streams;    /* GET /api/v1/events */
	int64_t stream_seq;             /* the newest row the streams were told of */
	struct http_login *logins;      /* logins checked lately (crypt is slow) */
	bool stopping;
	bool mime;                      /* GMime initialised */
	unsigned ticks;
};

/* A request being answered. */
struct http_req {
	struct http *h;
	struct evhttp_request *req;
	int method;                     /* EVHTTP_REQ_* */
	const char *path;               /* decoded path, without the query */
	char *arg[2];                   /* the route's {..} parts (decoded) */
	struct evkeyvalq *query;        /* the query's parameters */
	const char *user;               /* logged in as, or NULL */
};

/* ---- http.c ---- */
/* Reply: JSON (takes o), text with a content type, an error as JSON. */
void http_json(struct http_req *r, int code, json_t *o);
void http_text(struct http_req *r, int code, const char *type, const char *text, size_t n);
/* The same, taking b's bytes (no copy; b is left empty). */
void http_send_buf(struct http_req *r, int code, const char *type, struct buf *b);
/* A message whole: its prefix, then its body file's bytes as they are. */
void http_send_src(struct http_req *r, const char *type, struct mime_src *src);
void http_error(struct http_req *r, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* A query parameter, or NULL; a number one (def when absent or bad). */
const char *http_param(const struct http_req *r, const char *name);
long http_param_long(const struct http_req *r, const char *name, long def, long max);
/* The request's body as JSON (NULL: none or not JSON, an error sent when
 * required). */
json_t *http_body_json(struct http_req *r, bool required);
struct settings *http_settings(const struct http *h);

/* ---- api.c: the routes (http.c dispatches) ---- */
typedef void http_handler(struct http_req *r);
struct http_route {
	int methods;                    /* EVHTTP_REQ_* or'ed */
	const char *pattern;            /* "/api/v1/message/{}/raw" */
	http_handler *fn;
	bool changes;                   /* the CSRF rule applies */
};
extern const struct http_route http_routes[];
extern const size_t http_nroutes;
/* A capture row as Mailpit's message summary (takes nothing). */
json_t *api_summary(struct http *h, const struct spool_captured *c);
/* Rows of a filter (and a search query, "" none) as Mailpit's list. */
json_t *api_list(struct http *h, const struct spool_capture_filter *f, const char *query,
                 int *status);
/* Keep each inbox within its retention (every second). */
void api_retention(struct http *h);

/* ---- wait.c ---- */
void wait_get(struct http_req *r);       /* GET /api/v1/wait */
void wait_events(struct http_req *r);    /* GET /api/v1/events */
void wait_news(struct http *h);          /* new rows: answer whom they satisfy */
void wait_stop(struct http *h);
void wait_keepalive(struct http *h);   /* every 15 s */

/* ---- mime.c ---- */
/* A captured message to read: its prefix (and a small body) in memory, a
 * large body in its file (never read whole, unless whole asks for every
 * octet in mem: a release queues the message anew). */
struct mime_src {
	struct buf mem;
	int fd;                         /* the body file, or -1 */
	uint64_t fsize;
};
int mime_open(struct http *h, const char *qid, bool whole, struct mime_src *src);   /* 0 or an errno */
void mime_close(struct mime_src *src);
uint64_t mime_size(const struct mime_src *src);
/* Mailpit's message object (Text, HTML, Attachments, Inline, ...); NULL
 * when it does not parse as a message. */
json_t *mime_message(const struct mime_src *src);
/* The MIME tree (tern's /parts): each part's id, type, size, name. */
json_t *mime_tree(const struct mime_src *src);
/* Every header field: {"Name": ["value", ...]}, decoded. */
json_t *mime_headers(const struct mime_src *src);
/* One part's content, decoded, into out; its type and file name. */
bool mime_part(const struct mime_src *src, const char *part_id, struct buf *out, char *type,
               size_t tn, char *name, size_t nn);
/* The text a search finds a message by (its text parts, capped into
 * out); returns how many attachments it has. */
int mime_text(const struct mime_src *src, struct buf *out, size_t max);
/* An RFC 2047-encoded header value, decoded to UTF-8 (allocated). */
char *mime_decode(const char *value);
/* Address list fields into [{"Name","Address"}] (takes nothing). */
json_t *mime_addresses(const char *value);
void mime_init(void);
void mime_shutdown(void);

/* ---- search.c ---- */
bool search_open(struct http *h, const char *spool_dir);
/* Index the rows added since the last call, for at most budget_ms of
 * the loop's time; true when every row is indexed. */
bool search_index(struct http *h, unsigned budget_ms);
/* Forget the index (every row deleted). */
void search_clear(struct http *h);
void search_close(struct http *h);
/* What the index knows of a row: attachments and a snippet ("" and 0
 * when not indexed yet). */
void search_meta(struct http *h, int64_t seq, int *attachments, struct buf *snippet);

/* ---- queue.c: the normal mode's queue and counters ---- */
void queue_list(struct http_req *r);     /* GET /api/v1/queue */
void queue_stats(struct http_req *r);    /* GET /api/v1/stats */
void queue_act(struct http_req *r);      /* POST /api/v1/queue/{}/{} */
void queue_delete(struct http_req *r);   /* DELETE /api/v1/queue/{} */

/* ---- page.c ---- */
/* Serve a file of the page, or false when path is none of them. */
bool page_serve(struct http_req *r);

#endif
