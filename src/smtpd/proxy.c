/* proxy: PROXY protocol v1/v2 parsing (see proxy.h). */
#include "smtpd/proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const unsigned char proxy_v2_sig[12] = { 0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                                0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A };
static const char proxy_v1_sig[] = "PROXY ";

/* A decimal port, 0..65535, no sign, no leading zero (spec 2.1). */
static bool proxy_port(const char *s, uint16_t *out)
{
	size_t n = strlen(s);
	if (n == 0 || n > 5 || strspn(s, "0123456789") != n || (n > 1 && s[0] == '0'))
		return false;
	long v = strtol(s, NULL, 10);
	if (v > 65535)
		return false;
	*out = (uint16_t)v;
	return true;
}

static bool proxy_v1_addr(int family, const char *ip, const char *port,
                          struct sockaddr_storage *ss)
{
	uint16_t pn;
	memset(ss, 0, sizeof *ss);
	if (!proxy_port(port, &pn))
		return false;
	if (family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons(pn);
		return inet_pton(AF_INET, ip, &s4->sin_addr) == 1;
	}
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	s6->sin6_family = AF_INET6;
	s6->sin6_port = htons(pn);
	return inet_pton(AF_INET6, ip, &s6->sin6_addr) == 1;
}

/* "PROXY TCP4 src dst sport dport" with single spaces (CRLF removed). */
static enum proxy_status proxy_v1_line(char *line, struct proxy_hdr *h)
{
	char *f[7];
	size_t nf = 0;
	for (char *p = line; nf < 7;) {
		f[nf++] = p;
		p = strchr(p, ' ');
		if (!p)
			break;
		*p++ = '\0';
	}
	h->version = 1;
	if (nf >= 2 && !strcmp(f[1], "UNKNOWN"))
		return PROXY_DONE;  /* the rest of the line is to be ignored */
	if (nf != 6)
		return PROXY_BAD;
	int family = !strcmp(f[1], "TCP4") ? AF_INET : !strcmp(f[1], "TCP6") ? AF_INET6 : 0;
	if (!family || !proxy_v1_addr(family, f[2], f[4], &h->src) ||
	    !proxy_v1_addr(family, f[3], f[5], &h->dst))
		return PROXY_BAD;
	h->has_addr = true;
	return PROXY_DONE;
}

static enum proxy_status proxy_v1(const unsigned char *p, size_t n, struct proxy_hdr *h,
                                  size_t *used)
{
	size_t lim = n < PROXY_V1_MAX ? n : PROXY_V1_MAX;
	const unsigned char *lf = memchr(p, '\n', lim);
	if (!lf)
		return n >= PROXY_V1_MAX ? PROXY_BAD : PROXY_MORE;
	size_t len = (size_t)(lf - p);
	if (len < 1 || p[len - 1] != '\r')
		return PROXY_BAD;
	char line[PROXY_V1_MAX + 1];
	memcpy(line, p, len - 1);
	line[len - 1] = '\0';
	if (strlen(line) != len - 1)
		return PROXY_BAD;  /* a NUL inside */
	*used = len + 1;
	return proxy_v1_line(line, h);
}

static void proxy_v2_in4(struct sockaddr_storage *ss, const unsigned char *a,
                         const unsigned char *port)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	memset(ss, 0, sizeof *ss);
	s4->sin_family = AF_INET;
	memcpy(&s4->sin_addr, a, 4);
	memcpy(&s4->sin_port, port, 2);
}

static void proxy_v2_in6(struct sockaddr_storage *ss, const unsigned char *a,
                         const unsigned char *port)
{
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	memset(ss, 0, sizeof *ss);
	s6->sin6_family = AF_INET6;
	memcpy(&s6->sin6_addr, a, 16);
	memcpy(&s6->sin6_port, port, 2);
}

/* Spec 2.2: sig(12) ver_cmd fam len(2) addresses [TLVs]. */
static enum proxy_status proxy_v2(const unsigned char *p, size_t n, struct proxy_hdr *h,
                                  size_t *used)
{
	if (n < 16)
		return PROXY_MORE;
	unsigned ver = p[12] >> 4, cmd = p[12] & 0x0f, fam = p[13];
	size_t len = (size_t)p[14] << 8 | p[15];
	if (ver != 2 || cmd > 1 || 16 + len > PROXY_V2_MAX)
		return PROXY_BAD;
	if (n < 16 + len)
		return PROXY_MORE;
	h->version = 2;
	*used = 16 + len;
	if (cmd == 0)
		return PROXY_DONE;   /* LOCAL: health checks from the proxy itself */
	const unsigned char *a = p + 16;
	if (fam == 0x11 && len >= 12) {          /* TCP over IPv4 */
		proxy_v2_in4(&h->src, a, a + 8);
		proxy_v2_in4(&h->dst, a + 4, a + 10);
	} else if (fam == 0x21 && len >= 36) {   /* TCP over IPv6 */
		proxy_v2_in6(&h->src, a, a + 32);
		proxy_v2_in6(&h->dst, a + 16, a + 34);
	} else if (fam == 0x00) {
		return PROXY_DONE;   /* UNSPEC: keep the socket's peer */
	} else {
		return PROXY_BAD;    /* UDP, unix sockets, short blocks */
	}
	h->has_addr = true;
	return PROXY_DONE;
}

enum proxy_status proxy_parse(const unsigned char *p, size_t n, struct proxy_hdr *h,
                              size_t *used)
{
	memset(h, 0, sizeof *h);
	*used = 0;
	size_t k = n < 12 ? n : 12;
	if (k > 0 && !memcmp(p, proxy_v2_sig, k))
		return k < 12 ? PROXY_MORE : proxy_v2(p, n, h, used);
	k = n < 6 ? n : 6;
	if (k > 0 && !memcmp(p, proxy_v1_sig, k))
		return k < 6 ? PROXY_MORE : proxy_v1(p, n, h, used);
	return n == 0 ? PROXY_MORE : PROXY_BAD;
}
