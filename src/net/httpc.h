/* httpc: HTTPS requests on an event loop, through libcurl's multi
 * interface driven by libevent (curl's hiperfifo pattern:
 * CURLMOPT_SOCKETFUNCTION puts each socket curl wants watched on the
 * loop, CURLMOPT_TIMERFUNCTION one timer); nothing blocks. The host
 * name is never resolved by curl: the caller resolves it (net/dns.c)
 * and gives the address, which curl takes through CURLOPT_RESOLVE.
 * Redirects are not followed (a 3xx is a failure), the body is capped,
 * the certificate is verified against the WebPKI (the CA bundle given,
 * else the system's) and must name the host. Used for MTA-STS policies
 * (RFC 8461 3.3) and to POST TLS-RPT reports (RFC 8460 5.4).
 */
#ifndef TERN_HTTPC_H
#define TERN_HTTPC_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/buf.h"

struct event_base;
struct httpc;
struct httpc_get;

struct httpc_req {
	const char *host;          /* for the URL, SNI and the certificate's name */
	const char *addr;          /* its address, as text (IPv4 or IPv6) */
	unsigned port;
	const char *path;          /* "/.well-known/mta-sts.txt" */
	const void *ca_pem;        /* the CA bundle's PEM text (ca_len octets), or NULL:
	                              the system's bundle */
	size_t ca_len;
	const char *content_type;  /* the media type required (NULL: any) */
	size_t max_body;           /* octets; more is a failure */
	unsigned connect_timeout;  /* seconds */
	unsigned timeout;          /* seconds, the whole request */
	const void *post;          /* not NULL: POST these post_len octets (any 2xx
	                              is success) */
	size_t post_len;
	const char *post_type;     /* their Content-Type */
};

/* ok: a 200 (POST: a 2xx) with the right type and a body within max_body; else why
 * says what failed ("HTTP 301 (redirects are not followed)", curl's
 * error, "Content-Type ..."). */
struct httpc_resp {
	bool ok;
	bool webpki;               /* the certificate did not verify */
	long status;
	char why[256];
	struct buf body;
};

typedef void (*httpc_cb)(void *ctx, const struct httpc_resp *r);

struct httpc *httpc_new(struct event_base *base);
/* Every request under way is dropped without its callback. */
void httpc_free(struct httpc *h);

/* GET https://host:port/path: cb once, later from the loop (never inside
 * this call), unless httpc_cancel comes first. */
struct httpc_get *httpc_get(struct httpc *h, const struct httpc_req *req, httpc_cb cb, void *ctx);
void httpc_cancel(struct httpc *h, struct httpc_get *g);

#endif
