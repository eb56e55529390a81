/* http: the test mode's JSON API and web page on http_listen, served by
 * libevent's HTTP server (evhttp) from the main loop, beside the sessions.
 *
 * The API reads the spool through a reader of its own (the capture rows,
 * spool/capture.c), parses messages with GMime (mime.c), searches an FTS5
 * index kept beside the spool (search.c), and changes the spool only
 * through the writer's operations (spool_capture_async, spool_inject).
 * Routes, login (HTTP Basic against users_file when http_login is on)
 * and the CSRF rule for every change are here; the endpoints are in
 * api.c, the page's files in page.c. docs/API.md and /api/v1/openapi.json
 * describe them.
 */
#ifndef TERN_HTTP_H
#define TERN_HTTP_H

#include <stdbool.h>
#include <stdint.h>

struct server;
struct control;
struct http;

/* What the API stands on: the server (its spool, settings, loop). */
struct http_env {
	struct server *srv;
	struct control *control;   /* queue endpoints of the normal mode, or NULL */
	int64_t started;
};

/* Bind http_listen (as root, before privileges are dropped); NULL with
 * the reason logged when it cannot. Nothing listens when http_listen is "":
 * then a struct is still made, and every call below is a no-op. */
struct http *http_open(const struct http_env *env);
/* Once the spool is open: the reader, the search index, retention. */
bool http_start(struct http *h);
/* Stop answering (before the spool closes); pending waits get 503. */
void http_stop(struct http *h);
void http_free(struct http *h);

#endif
