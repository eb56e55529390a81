/* cidr: IPv4/IPv6 networks in CIDR notation, and membership tests. */
#ifndef TERN_CIDR_H
#define TERN_CIDR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#define CIDR_MAX 64

struct cidr {
	int family;                 /* AF_INET or AF_INET6 */
	unsigned char addr[16];     /* network bytes, masked */
	unsigned prefix;            /* 0..32 or 0..128 */
};

struct cidr_list {
	size_t n;
	struct cidr v[CIDR_MAX];
};

/* "10.0.0.0/8", "192.0.2.1" (= /32), "::1", "2001:db8::/32". */
bool cidr_parse(const char *s, struct cidr *out);

/* Is sa inside any network of the list? IPv4-mapped IPv6 addresses match
 * IPv4 networks. */
bool cidr_list_match(const struct cidr_list *l, const struct sockaddr *sa);

/* Are a and b the same host address, ports aside? An IPv4-mapped IPv6
 * address (RFC 4291 2.5.5.2) is its IPv4 address. */
bool cidr_same_host(const struct sockaddr *a, const struct sockaddr *b);

#endif
