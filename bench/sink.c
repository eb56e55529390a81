/* sink: a small counting SMTP sink for the benchmark (the final destination
 * every server under test relays to).
 *
 *   sink ADDR:PORT
 *
 *   sink ADDR:PORT CAPTURE-FILE
 *
 *   sink -C ADDR:PORT [CAPTURE-FILE]
 *
 *   sink [-C] -T TLS-ADDR:TLS-PORT CERT KEY ADDR:PORT [CAPTURE-FILE]
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
 * With -T it listens on a second address too, where it offers STARTTLS
 * (RFC 3207; OpenSSL, the certificate and key given, TLS 1.2 and up,
 * tickets on) and answers as on the first; the counters are shared, and
 * XCOUNT gives two more: the TLS handshakes completed and the messages
 * that came over TLS (the proof that a server under test relayed in TLS).
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
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

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
	int tls_port;          /* came to the -T address: STARTTLS offered */
	int starttls;          /* STARTTLS answered: the handshake comes next */
	int handshaking;
	SSL *ssl;
	size_t llen;
	size_t olen;
	char line[LINE_MAX_];
	char out[OUT_MAX];
};

static unsigned long long n_msgs, n_rcpts, n_octets, n_conns, n_signed, n_tls, n_tls_msgs;
static SSL_CTX *tls_ctx;           /* -T */
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
	if (!strncasecmp(l, "EHLO", 4)) {
		reply(c, "250-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n");
		if (c->tls_port && !c->ssl)
			reply(c, "250-STARTTLS\r\n");
		reply(c, chunking ? "250-CHUNKING\r\n250 SIZE 0\r\n" : "250 SIZE 0\r\n");
	} else if (c->tls_port && !c->ssl && !strncasecmp(l, "STARTTLS", 8)) {
		c->starttls = 1;
		reply(c, "220 2.0.0 ready to start TLS\r\n");
	} else if (!strncasecmp(l, "HELO", 4) || !strncasecmp(l, "LHLO", 4))
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
		snprintf(buf, sizeof buf, "250 %llu %llu %llu %llu %llu %llu %llu\r\n", n_msgs,
		         n_rcpts, n_octets, n_conns, n_signed, n_tls, n_tls_msgs);
		reply(c, buf);
	} else if (!strncasecmp(l, "XRESET", 6)) {
		n_msgs = n_rcpts = n_octets = n_conns = n_signed = n_tls = n_tls_msgs = 0;
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
				n_tls_msgs += c->ssl != NULL;
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
	n_tls_msgs += c->ssl != NULL;
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
			if (c->starttls)
				break;   /* what followed STARTTLS in clear is dropped */
		}
	}
	return quit;
}

/* A TLS write or handshake step the socket could not take at once:
 * replies are small, so this is rare and short; false after 5 s. */
static int wait_fd(int fd, int e)
{
	struct pollfd p = { fd, e == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN, 0 };
	return poll(&p, 1, 5000) == 1;
}

static int flush_out(struct conn *c)
{
	size_t off = 0;
	while (off < c->olen) {
		if (c->ssl) {
			int w = SSL_write(c->ssl, c->out + off, (int)(c->olen - off));
			int e = w > 0 ? SSL_ERROR_NONE : SSL_get_error(c->ssl, w);
			if (w > 0)
				off += (size_t)w;
			else if ((e != SSL_ERROR_WANT_WRITE && e != SSL_ERROR_WANT_READ) ||
			         !wait_fd(c->fd, e))
				return -1;
			continue;
		}
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
	SSL_free(c->ssl);
	close(c->fd);
	free(c);
}

/* The handshake after STARTTLS, as its records come: 1 done, 0 more to
 * come, -1 failed. */
static int handshake(struct conn *c)
{
	for (;;) {
		int r = SSL_accept(c->ssl);
		if (r == 1) {
			c->handshaking = 0;
			n_tls++;
			return 1;
		}
		int e = SSL_get_error(c->ssl, r);
		if (e == SSL_ERROR_WANT_READ)
			return 0;
		if (e != SSL_ERROR_WANT_WRITE || !wait_fd(c->fd, e))
			return -1;
	}
}

/* What the connection has to read: 1 when it is over (closed, QUIT, an
 * error). Over TLS, records until OpenSSL wants more from the socket. */
static int readable(struct conn *c, char *rbuf, size_t size)
{
	int quit = 0;
	for (;;) {
		ssize_t r;
		if (c->ssl) {
			int k = SSL_read(c->ssl, rbuf, (int)size);
			int e = k > 0 ? SSL_ERROR_NONE : SSL_get_error(c->ssl, k);
			if (k <= 0 && e == SSL_ERROR_WANT_READ)
				break;
			if (k <= 0 && e == SSL_ERROR_WANT_WRITE && wait_fd(c->fd, e))
				continue;
			if (k <= 0)
				return 1;
			r = k;
		} else {
			r = read(c->fd, rbuf, size);
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0 && errno == EAGAIN)
				break;
			if (r <= 0)
				return 1;
		}
		quit |= input(c, rbuf, (size_t)r);
		if (c->starttls || quit || (!c->ssl && (size_t)r < size))
			break;
	}
	return quit;
}

/* 220 to STARTTLS sent: TLS from the next octet on (RFC 3207 4). */
static int tls_begin(struct conn *c)
{
	c->starttls = 0;
	c->llen = 0;
	c->ssl = SSL_new(tls_ctx);
	if (!c->ssl || !SSL_set_fd(c->ssl, c->fd))
		return -1;
	c->handshaking = 1;
	return 0;
}

static int listen_on(const char *addr)
{
	char host[64];
	const char *colon = strchr(addr, ':');
	if (!colon)
		return -1;
	snprintf(host, sizeof host, "%.*s", (int)(colon - addr), addr);
	struct sockaddr_in sa = { .sin_family = AF_INET,
	                          .sin_port = htons((unsigned short)atoi(colon + 1)) };
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1 || (ntohl(sa.sin_addr.s_addr) >> 24) != 127) {
		fprintf(stderr, "sink: loopback (127.0.0.0/8) addresses only\n");
		return -1;
	}
	int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(ls, (struct sockaddr *)&sa, sizeof sa) || listen(ls, 4096)) {
		perror("sink: bind");
		return -1;
	}
	return ls;
}

static SSL_CTX *tls_setup(const char *cert, const char *key)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx || !SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) ||
	    SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
		ERR_print_errors_fp(stderr);
		return NULL;
	}
	return ctx;
}

static void accept_all(int ep, int ls, int tls)
{
	int fd, one = 1;
	while ((fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		struct conn *nc = calloc(1, sizeof *nc);
		if (!nc) {
			close(fd);
			continue;
		}
		nc->fd = fd;
		nc->tls_port = tls;
		n_conns++;
		struct epoll_event e = { .events = EPOLLIN | EPOLLRDHUP, .data.ptr = nc };
		epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
		reply(nc, "220 sink ESMTP\r\n");
		flush_out(nc);
	}
}

int main(int argc, char **argv)
{
	const char *tls_addr = NULL;
	for (;;) {
		if (argc > 1 && !strcmp(argv[1], "-C")) {
			chunking = 1;
			argv++;
			argc--;
		} else if (argc > 4 && !strcmp(argv[1], "-T")) {
			tls_addr = argv[2];
			if (!(tls_ctx = tls_setup(argv[3], argv[4])))
				return 2;
			argv += 4;
			argc -= 4;
		} else {
			break;
		}
	}
	if (argc < 2 || argc > 3 || !strchr(argv[1], ':')) {
		fprintf(stderr, "usage: sink [-C] [-T TLS-ADDR:PORT CERT KEY] 127.0.0.1:PORT "
		        "[CAPTURE-FILE]\n");
		return 2;
	}
	if (argc == 3) {
		capture_path = argv[2];
		capture_armed = 1;
	}
	signal(SIGPIPE, SIG_IGN);
	int ls = listen_on(argv[1]), tls_ls = tls_addr ? listen_on(tls_addr) : -2;
	if (ls < 0 || tls_ls == -1)
		return 2;
	int ep = epoll_create1(EPOLL_CLOEXEC);
	/* the listeners: these two addresses stand for them in the events */
	static struct conn plain_l, tls_l;
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &plain_l };
	epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
	if (tls_ls >= 0) {
		ev.data.ptr = &tls_l;
		epoll_ctl(ep, EPOLL_CTL_ADD, tls_ls, &ev);
	}
	static struct epoll_event evs[256];
	static char rbuf[256 * 1024];
	for (;;) {
		int k = epoll_wait(ep, evs, 256, -1);
		for (int i = 0; i < k; i++) {
			struct conn *c = evs[i].data.ptr;
			if (c == &plain_l || c == &tls_l) {
				accept_all(ep, c == &tls_l ? tls_ls : ls, c == &tls_l);
				continue;
			}
			int hs = c->handshaking ? handshake(c) : 1;
			if (hs < 0) {
				drop(ep, c);
				continue;
			}
			int over = hs > 0 ? readable(c, rbuf, sizeof rbuf) : 0;
			if (flush_out(c) < 0 || over || (c->starttls && tls_begin(c) < 0))
				drop(ep, c);
		}
	}
}
