/* cidr: IPv4/IPv6 networks in CIDR notation (RFC 4632 3.1, RFC 4291 2.3),
 * and the membership test used for relay_networks.
 *
 * Owns the parsing of "addr[/prefix]" and the prefix comparison. Host bits
 * set in the text ("10.1.2.3/8") are accepted and masked off. An
 * IPv4-mapped IPv6 address (RFC 4291 2.5.5.2) also matches IPv4 networks,
 * since a dual-stack listener reports IPv4 peers that way. Pure functions.
 */
#include "lib/cidr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

/* Parse the decimal prefix length after '/': 1 to 3 digits, <= max. */
static bool parse_prefix(const char *s, unsigned max, unsigned *out)
{
	unsigned v = 0;
	size_t i;

	for (i = 0; s[i] >= '0' && s[i] <= '9'; i++) {
		if (i == 3)
			return false;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (i == 0 || s[i] != '\0' || v > max)
		return false;
	*out = v;
	return true;
}

/* Clear every bit of addr beyond the first prefix bits. */
static void mask_host_bits(unsigned char *addr, size_t len, unsigned prefix)
{
	size_t full = prefix / 8;
	unsigned rest = prefix % 8;

	if (full >= len)
		return;
	if (rest != 0)
		addr[full++] &= (unsigned char)(0xff << (8 - rest));
	memset(addr + full, 0, len - full);
}

bool cidr_parse(const char *s, struct cidr *out)
{
	char host[INET6_ADDRSTRLEN];
	const char *slash;
	size_t n, len;
	unsigned max;

	memset(out, 0, sizeof *out);
	if (s == NULL)
		return false;
	slash = strchr(s, '/');
	n = slash != NULL ? (size_t)(slash - s) : strlen(s);
	if (n == 0 || n >= sizeof host)
		return false;
	memcpy(host, s, n);
	host[n] = '\0';
	out->family = memchr(host, ':', n) != NULL ? AF_INET6 : AF_INET;
	len = out->family == AF_INET6 ? 16 : 4;
	max = (unsigned)len * 8;
	if (inet_pton(out->family, host, out->addr) != 1)
		return false;
	out->prefix = max;
	if (slash != NULL && !parse_prefix(slash + 1, max, &out->prefix))
		return false;
	mask_host_bits(out->addr, len, out->prefix);
	return true;
}

/* Do the first prefix bits of a and b agree? */
static bool prefix_equal(const unsigned char *a, const unsigned char *b,
                         unsigned prefix)
{
	size_t full = prefix / 8;
	unsigned rest = prefix % 8;
	unsigned char m;

	if (memcmp(a, b, full) != 0)
		return false;
	if (rest == 0)
		return true;
	m = (unsigned char)(0xff << (8 - rest));
	return (a[full] & m) == (b[full] & m);
}

/* Is the address (family, bytes) inside any network of that family? */
static bool list_match_bytes(const struct cidr_list *l, int family,
                             const unsigned char *addr)
{
	for (size_t i = 0; i < l->n && i < CIDR_MAX; i++)
		if (l->v[i].family == family &&
		    prefix_equal(l->v[i].addr, addr, l->v[i].prefix))
			return true;
	return false;
}

bool cidr_list_match(const struct cidr_list *l, const struct sockaddr *sa)
{
	const struct sockaddr_in *sin;
	const struct sockaddr_in6 *sin6;
	const unsigned char *b;

	if (l == NULL || sa == NULL)
		return false;
	if (sa->sa_family == AF_INET) {
		sin = (const struct sockaddr_in *)(const void *)sa;
		return list_match_bytes(l, AF_INET,
		                        (const unsigned char *)&sin->sin_addr);
	}
	if (sa->sa_family != AF_INET6)
		return false;
	sin6 = (const struct sockaddr_in6 *)(const void *)sa;
	b = sin6->sin6_addr.s6_addr;
	if (list_match_bytes(l, AF_INET6, b))
		return true;
	return IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr) &&
	       list_match_bytes(l, AF_INET, b + 12);
}

/* The bytes of sa's address, an IPv4-mapped one as IPv4; 0 when sa is
 * neither family. */
static size_t host_bytes(const struct sockaddr *sa, const unsigned char **out)
{
	const struct sockaddr_in6 *sin6;

	if (sa->sa_family == AF_INET) {
		*out = (const unsigned char *)
		       &((const struct sockaddr_in *)(const void *)sa)->sin_addr;
		return 4;
	}
	if (sa->sa_family != AF_INET6)
		return 0;
	sin6 = (const struct sockaddr_in6 *)(const void *)sa;
	*out = sin6->sin6_addr.s6_addr;
	if (!IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr))
		return 16;
	*out += 12;
	return 4;
}

bool cidr_same_host(const struct sockaddr *a, const struct sockaddr *b)
{
	const unsigned char *x, *y;
	size_t n;

	if (a == NULL || b == NULL)
		return false;
	n = host_bytes(a, &x);
	return n != 0 && host_bytes(b, &y) == n && memcmp(x, y, n) == 0;
}
