/* proxy: the HAProxy PROXY protocol header, versions 1 (text) and 2
 * (binary), as a pure incremental parser (haproxy doc/proxy-protocol.txt).
 *
 * A load balancer in front of a `proxy` listener sends this header before
 * anything else; it names the real client. LOCAL (v2) and UNKNOWN (v1)
 * headers carry no address: the socket's peer stands.
 */
#ifndef TERN_PROXY_H
#define TERN_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#define PROXY_V1_MAX 107    /* the whole v1 line, CRLF included (spec 2.1) */
#define PROXY_V2_MAX 2064   /* 16 octets and at most 2048 of addresses/TLVs */

enum proxy_status {
	PROXY_MORE,   /* a valid beginning: need more bytes */
	PROXY_DONE,   /* *used octets form the header */
	PROXY_BAD,    /* not a PROXY header: close */
};

struct proxy_hdr {
	int version;                    /* 1 or 2 */
	bool has_addr;                  /* false for LOCAL / UNKNOWN */
	struct sockaddr_storage src;    /* the client */
	struct sockaddr_storage dst;    /* the address it connected to */
};

enum proxy_status proxy_parse(const unsigned char *p, size_t n, struct proxy_hdr *h,
                              size_t *used);

#endif
