/* sink: a small counting SMTP sink for the benchmark (the final destination
 * every server under test relays to).
 *
 *   sink ADDR:PORT
 *
 *   sink ADDR:PORT CAPTURE-FILE
 *
 *   sink -C ADDR:PORT [CAPTURE-FILE]
 *
 * Single-threaded epoll, any number of connections, PIPELINING. It accepts
 * every MAIL/RCPT, reads DATA up to CRLF.CRLF and answers 250; with -C it
 * also offers CHUNKING (RFC 3030) and takes BDAT chunks (250 each, the
 * message counted at the LAST one; without -C, figures stay comparable
 * with those of DATA alone). It keeps
 * nothing. It counts completed transactions (messages), recipients,
 * octets, and messages whose header block has a DKIM-Signature field (the
 * proof that a server under test signed what it relayed). Two extra
 * commands serve the benchmark driver on any connection:
 *   XCOUNT  -> "250 <messages> <recipients> <octets> <connections> <signed>"
 *   XRESET  -> zeroes the counters, "250 reset"
 * With CAPTURE-FILE, the first message after the start and after each
 * XRESET is written there as it came (still dot-stuffed, ending with the
 * CRLF.CRLF), for the driver to check its signature.
 * Loopback only: it refuses to bind anything outside 127.0.0.0/8.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define LINE_MAX_ 4096
#define OUT_MAX 65536

struct conn {
	int fd;
	int in_data;           /* reading message data */
	int in_bdat;           /* a message by BDAT has begun */
	unsigned long long bdat_left;  /* octets of the current chunk still to come */
	int bdat_last;         /* the current chunk is the LAST */
	int in_chunk;          /* reading a chunk's octets */
	int data;              /* matching state of CRLF.CRLF */
	int in_head;           /* in the header block of the message */
	int hpos;              /* matched of "dkim-signature:" on this line, -1 none */
	int is_signed;         /* the message has a DKIM-Signature field */
	int capture;           /* this message goes to the capture file */
	size_t llen;
	size_t olen;
	char line[LINE_MAX_];
	char out[OUT_MAX];
};

static unsigned long long n_msgs, n_rcpts, n_octets, n_conns, n_signed;
static const char *capture_path;   /* NULL: no capture */
static int chunking;               /* -C: CHUNKING offered */
static int capture_armed;          /* the next message is captured */
static int capture_fd = -1;

static const char dkim_field[] = "dkim-signature:";

static void reply(struct conn *c, const char *s)
{
	size_t n = strlen(s);
	if (c->olen + n <= OUT_MAX) {
		memcpy(c->out + c->olen, s, n);
		c->olen += n;
	}
}

static void chunk_end(struct conn *c);

/* A message begins (DATA's 354, the first BDAT): the header scan and the
 * capture. */
static void msg_begin(struct conn *c)
{
	c->in_head = 1;
	c->hpos = 0;
	c->is_signed = 0;
	if (capture_path && capture_armed && capture_fd < 0) {
		capture_fd = open(capture_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		c->capture = capture_fd >= 0;
		capture_armed = 0;
	}
}

/* BDAT n [LAST] (RFC 3030 2): its octets follow at once. */
static void bdat(struct conn *c, const char *args)
{
	char *end;
	c->bdat_left = strtoull(args, &end, 10);
	c->bdat_last = !strncasecmp(end, " LAST", 5);
	if (!c->in_bdat) {
		c->in_bdat = 1;
		c->data = 2;
		msg_begin(c);
	}
	c->in_chunk = 1;
	if (c->bdat_left == 0)
		chunk_end(c);
}

static void command(struct conn *c, char *l)
{
	char buf[160];
	if (!strncasecmp(l, "EHLO", 4))
		reply(c, chunking ? "250-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-CHUNKING\r\n"
		                    "250 SIZE 0\r\n"
		                  : "250-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 0\r\n");
	else if (!strncasecmp(l, "HELO", 4) || !strncasecmp(l, "LHLO", 4))
		reply(c, "250 sink\r\n");
	else if (!strncasecmp(l, "MAIL", 4))
		reply(c, "250 2.1.0 Ok\r\n");
	else if (!strncasecmp(l, "RCPT", 4)) {
		n_rcpts++;
		reply(c, "250 2.1.5 Ok\r\n");
	} else if (chunking && !strncasecmp(l, "BDAT ", 5)) {
		bdat(c, l + 5);
	} else if (!strncasecmp(l, "DATA", 4)) {
		c->in_data = 1;
		c->data = 2;  /* as if CRLF had just been seen */
		msg_begin(c);
		reply(c, "354 go ahead\r\n");
	} else if (!strncasecmp(l, "RSET", 4) || !strncasecmp(l, "NOOP", 4))
		reply(c, "250 2.0.0 Ok\r\n");
	else if (!strncasecmp(l, "QUIT", 4))
		reply(c, "221 2.0.0 Bye\r\n");
	else if (!strncasecmp(l, "XCOUNT", 6)) {
		snprintf(buf, sizeof buf, "250 %llu %llu %llu %llu %llu\r\n", n_msgs, n_rcpts,
		         n_octets, n_conns, n_signed);
		reply(c, buf);
	} else if (!strncasecmp(l, "XRESET", 6)) {
		n_msgs = n_rcpts = n_octets = n_conns = n_signed = 0;
		capture_armed = 1;
		reply(c, "250 reset\r\n");
	} else
		reply(c, "502 5.5.2 unknown\r\n");
}

static void capture_write(struct conn *c, const char *p, size_t n, int last)
{
	if (!c->capture)
		return;
	while (n) {
		ssize_t w = write(capture_fd, p, n);
		if (w <= 0)
			break;
		p += w;
		n -= (size_t)w;
	}
	if (last) {
		close(capture_fd);
		capture_fd = -1;
		c->capture = 0;
	}
}

/* The header block, a character at a time: a line that begins with
 * "DKIM-Signature:" (any case) marks the message; an empty line ends it. */
static void head_feed(struct conn *c, char ch)
{
	if (c->data == 2 || c->data == 3) {     /* ch begins a line */
		if (ch == '\r') {
			c->in_head = 0;
			return;
		}
		c->hpos = 0;
	}
	if (c->hpos < 0 || c->hpos >= (int)sizeof dkim_field - 1)
		return;
	char lc = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
	if (lc == dkim_field[c->hpos]) {
		if (++c->hpos == (int)sizeof dkim_field - 1)
			c->is_signed = 1;
	} else
		c->hpos = -1;
}

/* DATA states: 0 in a line, 1 saw CR, 2 at line start, 3 saw ".", 4 saw ".CR" */
static size_t data_feed(struct conn *c, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char ch = p[i];
		if (c->in_head && c->data != 3)
			head_feed(c, ch);
		switch (c->data) {
		case 1: c->data = ch == '\n' ? 2 : ch == '\r' ? 1 : 0; break;
		case 2: c->data = ch == '.' ? 3 : ch == '\r' ? 1 : 0; break;
		case 3: c->data = ch == '\r' ? 4 : 0; break;
		case 4:
			if (ch == '\n') {
				c->in_data = 0;
				c->data = 0;
				n_msgs++;
				n_signed += (unsigned long long)c->is_signed;
				n_octets += i + 1;
				capture_write(c, p, i + 1, 1);
				reply(c, "250 2.0.0 Ok: queued\r\n");
				return i + 1;
			}
			c->data = ch == '\r' ? 1 : 0;
			break;
		default: c->data = ch == '\r' ? 1 : 0; break;
		}
	}
	n_octets += n;
	capture_write(c, p, n, 0);
	return n;
}

/* A chunk's octets: counted, scanned for the header field, captured. */
static size_t chunk_feed(struct conn *c, const char *p, size_t n)
{
	size_t take = n < c->bdat_left ? n : (size_t)c->bdat_left;
	for (size_t i = 0; c->in_head && i < take; i++) {
		head_feed(c, p[i]);
		c->data = p[i] == '\n' ? 2 : p[i] == '\r' ? 1 : 0;
	}
	n_octets += take;
	capture_write(c, p, take, 0);
	c->bdat_left -= take;
	if (c->bdat_left == 0)
		chunk_end(c);
	return take;
}

static void chunk_end(struct conn *c)
{
	c->in_chunk = 0;
	if (!c->bdat_last) {
		reply(c, "250 2.0.0 chunk received\r\n");
		return;
	}
	c->in_bdat = 0;
	n_msgs++;
	n_signed += (unsigned long long)c->is_signed;
	capture_write(c, "", 0, 1);
	reply(c, "250 2.0.0 Ok: queued\r\n");
}

static int input(struct conn *c, const char *p, size_t n)
{
	int quit = 0;
	while (n) {
		if (c->in_chunk) {
			size_t used = chunk_feed(c, p, n);
			p += used;
			n -= used;
			continue;
		}
		if (c->in_data) {
			size_t used = data_feed(c, p, n);
			p += used;
			n -= used;
			continue;
		}
		const char *lf = memchr(p, '\n', n);
		size_t take = lf ? (size_t)(lf - p) + 1 : n;
		if (c->llen + take < LINE_MAX_) {
			memcpy(c->line + c->llen, p, take);
			c->llen += take;
		} else {
			c->llen = 0;  /* overlong: dropped */
		}
		p += take;
		n -= take;
		if (lf && c->llen) {
			c->line[c->llen] = '\0';
			quit |= !strncasecmp(c->line, "QUIT", 4);
			command(c, c->line);
			c->llen = 0;
		}
	}
	return quit;
}

static int flush_out(struct conn *c)
{
	size_t off = 0;
	while (off < c->olen) {
		ssize_t w = write(c->fd, c->out + off, c->olen - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return errno == EAGAIN ? 0 : -1;
		off += (size_t)w;
	}
	memmove(c->out, c->out + off, c->olen - off);
	c->olen -= off;
	return 0;
}

static void drop(int ep, struct conn *c)
{
	if (c->capture) {      /* gone mid-message: the next one is captured */
		close(capture_fd);
		capture_fd = -1;
		capture_armed = 1;
	}
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c);
}

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "-C")) {
		chunking = 1;
		argv++;
		argc--;
	}
	if (argc < 2 || argc > 3 || !strchr(argv[1], ':')) {
		fprintf(stderr, "usage: sink [-C] 127.0.0.1:PORT [CAPTURE-FILE]\n");
		return 2;
	}
	if (argc == 3) {
		capture_path = argv[2];
		capture_armed = 1;
	}
	signal(SIGPIPE, SIG_IGN);
	char host[64];
	snprintf(host, sizeof host, "%.*s", (int)(strchr(argv[1], ':') - argv[1]), argv[1]);
	struct sockaddr_in sa = { .sin_family = AF_INET,
	                          .sin_port = htons((unsigned short)atoi(strchr(argv[1], ':') + 1)) };
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1 || (ntohl(sa.sin_addr.s_addr) >> 24) != 127) {
		fprintf(stderr, "sink: loopback (127.0.0.0/8) addresses only\n");
		return 2;
	}
	int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(ls, (struct sockaddr *)&sa, sizeof sa) || listen(ls, 4096)) {
		perror("sink: bind");
		return 2;
	}
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
	epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
	static struct epoll_event evs[256];
	static char rbuf[256 * 1024];
	for (;;) {
		int k = epoll_wait(ep, evs, 256, -1);
		for (int i = 0; i < k; i++) {
			struct conn *c = evs[i].data.ptr;
			if (!c) {
				int fd;
				while ((fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
					setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
					struct conn *nc = calloc(1, sizeof *nc);
					if (!nc) {
						close(fd);
						continue;
					}
					nc->fd = fd;
					n_conns++;
					struct epoll_event e = { .events = EPOLLIN | EPOLLRDHUP, .data.ptr = nc };
					epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
					reply(nc, "220 sink ESMTP\r\n");
					flush_out(nc);
				}
				continue;
			}
			int quit = 0, gone = 0;
			for (;;) {
				ssize_t r = read(c->fd, rbuf, sizeof rbuf);
				if (r > 0) {
					quit |= input(c, rbuf, (size_t)r);
					if ((size_t)r < sizeof rbuf)
						break;
					continue;
				}
				if (r < 0 && errno == EINTR)
					continue;
				gone = r == 0 || errno != EAGAIN;
				break;
			}
			if (flush_out(c) < 0 || quit || gone)
				drop(ep, c);
		}
	}
}
