/* tlsload: the benchmark's STARTTLS load client (bench/run's scenarios s1t
 * and s1tr), the same for every server under test.
 *
 *   tlsload [-s sessions] [-m messages] [-l size] [-d] [-r] [-j procs]
 *           [-S sni] [-f from] [-t to] HOST:PORT
 *
 * Keeps <sessions> SMTP sessions busy until <messages> have been accepted.
 * Each session: connect, 220, EHLO, STARTTLS (RFC 3207), a TLS 1.3
 * handshake with ECDHE on P-256 only, EHLO again, then MAIL, RCPT, DATA,
 * the message (<size> octets, no line starting with a dot), QUIT, close: a
 * new connection per message, or with -d as many messages per connection
 * as there are (like smtp-source -d). With -r each session slot keeps the
 * last TLS 1.3 ticket the server sent it and offers it on its next
 * connection (RFC 8446 2.2); SSL_session_reused() counts the handshakes
 * that resumed. With -j the sessions and messages are shared among that
 * many processes (the client's own handshakes cost it as much CPU as the
 * server's: one process on one core can be the limit).
 *
 * No certificate is verified (a benchmark on 127.0.0.1: the same
 * self-signed certificate for every server). Any reply that is not 2xx or
 * 3xx, an unexpected close or a TLS failure ends the run at once with exit
 * status 1: a run that failed must not look fast. On success it prints one
 * line, "tlsload: sent=N elapsed=S msg_s=R handshakes=H handshakes_s=R
 * resumed=N client_cpu=S" (the client's own CPU seconds), and exits 0.
 *
 * Single-threaded epoll; OpenSSL 3. Built by bench/run into bench/work; no
 * part of the product build.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum step { S_CONNECT, S_BANNER, S_EHLO1, S_STARTTLS, S_HANDSHAKE, S_EHLO2, S_MAIL, S_RCPT,
	    S_DATA, S_BODY, S_QUIT };

static const char *step_name[] = { "connect", "banner", "EHLO", "STARTTLS", "handshake",
				   "EHLO after STARTTLS", "MAIL", "RCPT", "DATA", "end of data",
				   "QUIT" };

struct slot {
	int fd;                 /* -1: no connection */
	SSL *ssl;               /* after the 220 to STARTTLS */
	enum step step;
	unsigned want;          /* the epoll events registered */
	char in[8192];
	size_t inlen;
	const char *out;        /* pending output: out[outoff..outlen) */
	size_t outlen, outoff;
	char cmd[512];
	SSL_SESSION *ticket;    /* -r: the last session the server gave this slot */
};

struct load {
	struct sockaddr_in addr;
	int sessions, reuse, resume;
	long msgs, started, sent, handshakes, resumed;
	size_t size;
	const char *from, *to, *sni;
	char *body;             /* the message with its CRLF.CRLF */
	size_t body_len;
	SSL_CTX *ctx;
	int ep;
	struct slot *slots;
};

static int ex_slot;   /* SSL ex_data index of the slot, for the ticket callback */

static void die(struct slot *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "tlsload: ");
	if (s)
		fprintf(stderr, "at %s: ", step_name[s->step]);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	ERR_print_errors_fp(stderr);
	exit(1);
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* A header block and lines of 76 letters up to size octets in all. */
static void body_build(struct load *L)
{
	L->body = malloc(L->size + 512);
	if (!L->body)
		die(NULL, "out of memory");
	int n = snprintf(L->body, 512, "From: <%s>\r\nTo: <%s>\r\nSubject: tlsload\r\n\r\n",
			 L->from, L->to);
	size_t len = (size_t)n;
	while (len + 78 <= L->size) {
		memset(L->body + len, 'a' + (char)(len % 26), 76);
		memcpy(L->body + len + 76, "\r\n", 2);
		len += 78;
	}
	memcpy(L->body + len, ".\r\n", 3);
	L->body_len = len + 3;
}

static void slot_want(struct load *L, struct slot *s, unsigned ev)
{
	if (s->want == ev)
		return;
	struct epoll_event e = { .events = ev, .data.ptr = s };
	if (epoll_ctl(L->ep, EPOLL_CTL_MOD, s->fd, &e) < 0)
		die(s, "epoll_ctl: %s", strerror(errno));
	s->want = ev;
}

static void slot_send(struct slot *s, const char *data, size_t len)
{
	s->out = data;
	s->outlen = len;
	s->outoff = 0;
}

static void slot_cmd(struct slot *s, enum step next, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(s->cmd, sizeof s->cmd, fmt, ap);
	va_end(ap);
	slot_send(s, s->cmd, (size_t)n);
	s->step = next;
}

/* A new connection for the slot, when messages remain to be started. */
static void slot_open(struct load *L, struct slot *s)
{
	if (L->started >= L->msgs)
		return;
	L->started++;
	s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd < 0)
		die(s, "socket: %s", strerror(errno));
	int one = 1;
	setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (connect(s->fd, (struct sockaddr *)&L->addr, sizeof L->addr) < 0 && errno != EINPROGRESS)
		die(s, "connect: %s", strerror(errno));
	s->step = S_CONNECT;
	s->inlen = 0;
	s->outlen = s->outoff = 0;
	s->want = EPOLLOUT;
	struct epoll_event e = { .events = EPOLLOUT, .data.ptr = s };
	if (epoll_ctl(L->ep, EPOLL_CTL_ADD, s->fd, &e) < 0)
		die(s, "epoll_ctl: %s", strerror(errno));
}

static void slot_close(struct load *L, struct slot *s)
{
	if (s->ssl) {
		SSL_shutdown(s->ssl);   /* our close_notify; the server's is not awaited */
		SSL_free(s->ssl);
		s->ssl = NULL;
	}
	epoll_ctl(L->ep, EPOLL_CTL_DEL, s->fd, NULL);
	close(s->fd);
	s->fd = -1;
	ERR_clear_error();
}

/* -r: OpenSSL hands over each session (TLS 1.3 ticket) the server sends;
 * the slot keeps the newest, a reference of its own (return 1). */
static int ticket_new(SSL *ssl, SSL_SESSION *sess)
{
	struct slot *s = SSL_get_ex_data(ssl, ex_slot);
	if (!s)
		return 0;
	SSL_SESSION_free(s->ticket);
	s->ticket = sess;
	return 1;
}

static void tls_start(struct load *L, struct slot *s)
{
	s->ssl = SSL_new(L->ctx);
	if (!s->ssl || SSL_set_fd(s->ssl, s->fd) != 1)
		die(s, "SSL_new");
	SSL_set_ex_data(s->ssl, ex_slot, s);
	if (L->sni && SSL_set_tlsext_host_name(s->ssl, L->sni) != 1)
		die(s, "SNI");
	if (L->resume && s->ticket && SSL_set_session(s->ssl, s->ticket) != 1)
		die(s, "SSL_set_session");
	s->step = S_HANDSHAKE;
}

/* A complete reply arrived: check it and say what comes next. */
static void slot_reply(struct load *L, struct slot *s, int code)
{
	if (code < 200 || code >= 400 || (s->step == S_DATA && code != 354))
		die(s, "reply %d: %.*s", code, (int)s->inlen, s->in);
	switch (s->step) {
	case S_BANNER:
		slot_cmd(s, S_EHLO1, "EHLO tlsload.bench.local\r\n");
		break;
	case S_EHLO1:
		if (!memmem(s->in, s->inlen, "STARTTLS", 8))
			die(s, "no STARTTLS in the EHLO reply");
		slot_cmd(s, S_STARTTLS, "STARTTLS\r\n");
		break;
	case S_STARTTLS:
		tls_start(L, s);
		break;
	case S_EHLO2:
		slot_cmd(s, S_MAIL, "MAIL FROM:<%s>\r\n", L->from);
		break;
	case S_MAIL:
		slot_cmd(s, S_RCPT, "RCPT TO:<%s>\r\n", L->to);
		break;
	case S_RCPT:
		slot_cmd(s, S_DATA, "DATA\r\n");
		break;
	case S_DATA:
		slot_send(s, L->body, L->body_len);
		s->step = S_BODY;
		break;
	case S_BODY:
		L->sent++;
		if (L->reuse && L->started < L->msgs) {
			L->started++;
			slot_cmd(s, S_MAIL, "MAIL FROM:<%s>\r\n", L->from);
		} else {
			slot_cmd(s, S_QUIT, "QUIT\r\n");
		}
		break;
	case S_QUIT:
		slot_close(L, s);
		slot_open(L, s);
		break;
	default:
		die(s, "reply in the wrong state");
	}
}

/* The reply code once the buffer holds a whole reply (its last line "ddd "
 * and CRLF), else 0. */
static int reply_code(const struct slot *s)
{
	size_t start = 0;
	for (size_t i = 0; i + 1 < s->inlen; i++) {
		if (s->in[i] != '\r' || s->in[i + 1] != '\n')
			continue;
		if (i - start >= 4 && s->in[start + 3] == ' ')
			return atoi(s->in + start);
		if (i - start < 3 || (s->in[start + 3] != '-' && s->in[start + 3] != ' '))
			return -1;
		start = i + 2;
	}
	return 0;
}

static long slot_io(struct slot *s, int wr, void *buf, size_t len)
{
	if (!s->ssl) {
		ssize_t n = wr ? send(s->fd, buf, len, MSG_NOSIGNAL) : recv(s->fd, buf, len, 0);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return -1;
		if (n < 0)
			die(s, "%s: %s", wr ? "send" : "recv", strerror(errno));
		if (n == 0 && !wr)
			die(s, "the server closed the connection");
		return n;
	}
	int n = wr ? SSL_write(s->ssl, buf, (int)len) : SSL_read(s->ssl, buf, (int)len);
	if (n > 0)
		return n;
	int e = SSL_get_error(s->ssl, n);
	if (e == SSL_ERROR_WANT_READ)
		return -1;
	if (e == SSL_ERROR_WANT_WRITE)
		return -2;
	die(s, "TLS %s failed (SSL error %d)", wr ? "write" : "read", e);
	return 0;
}

/* Advance the slot as far as its socket allows. */
static void slot_drive(struct load *L, struct slot *s)
{
	for (;;) {
		if (s->fd < 0)
			return;
		if (s->step == S_CONNECT) {
			int err = 0;
			socklen_t sl = sizeof err;
			getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &sl);
			if (err)
				die(s, "connect: %s", strerror(err));
			s->step = S_BANNER;
			continue;
		}
		if (s->step == S_HANDSHAKE) {
			int r = SSL_connect(s->ssl);
			if (r == 1) {
				L->handshakes++;
				L->resumed += SSL_session_reused(s->ssl);
				slot_cmd(s, S_EHLO2, "EHLO tlsload.bench.local\r\n");
				continue;
			}
			int e = SSL_get_error(s->ssl, r);
			if (e == SSL_ERROR_WANT_READ)
				slot_want(L, s, EPOLLIN);
			else if (e == SSL_ERROR_WANT_WRITE)
				slot_want(L, s, EPOLLOUT);
			else
				die(s, "TLS handshake failed (SSL error %d)", e);
			return;
		}
		if (s->outoff < s->outlen) {
			long n = slot_io(s, 1, (char *)s->out + s->outoff, s->outlen - s->outoff);
			if (n < 0) {
				slot_want(L, s, n == -1 && s->ssl ? EPOLLIN : EPOLLOUT);
				return;
			}
			s->outoff += (size_t)n;
			continue;
		}
		if (s->inlen == sizeof s->in)
			die(s, "a reply longer than %zu octets", sizeof s->in);
		long n = slot_io(s, 0, s->in + s->inlen, sizeof s->in - s->inlen);
		if (n < 0) {
			slot_want(L, s, n == -2 ? EPOLLOUT : EPOLLIN);
			return;
		}
		s->inlen += (size_t)n;
		int code = reply_code(s);
		if (code < 0)
			die(s, "not an SMTP reply: %.*s", (int)s->inlen, s->in);
		if (code > 0) {
			slot_reply(L, s, code);
			s->inlen = 0;
			if (s->step == S_CONNECT)
				return;   /* a new connection: wait for EPOLLOUT */
		}
	}
}

/* Sessions still open (their QUIT not yet answered). */
static int load_open(const struct load *L)
{
	int n = 0;
	for (int i = 0; i < L->sessions; i++)
		n += L->slots[i].fd >= 0;
	return n;
}

static void ctx_make(struct load *L)
{
	L->ctx = SSL_CTX_new(TLS_client_method());
	if (!L->ctx)
		die(NULL, "SSL_CTX_new");
	SSL_CTX_set_min_proto_version(L->ctx, TLS1_3_VERSION);
	if (SSL_CTX_set1_groups_list(L->ctx, "P-256") != 1)
		die(NULL, "groups P-256");
	SSL_CTX_set_verify(L->ctx, SSL_VERIFY_NONE, NULL);   /* a bench: see above */
	if (L->resume) {
		SSL_CTX_set_session_cache_mode(L->ctx, SSL_SESS_CACHE_CLIENT |
						       SSL_SESS_CACHE_NO_INTERNAL_STORE);
		SSL_CTX_sess_set_new_cb(L->ctx, ticket_new);
	} else {
		SSL_CTX_set_session_cache_mode(L->ctx, SSL_SESS_CACHE_OFF);
	}
	ex_slot = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

static void usage(void)
{
	fprintf(stderr, "usage: tlsload [-s sessions] [-m messages] [-l size] [-d] [-r] "
			"[-j procs] [-S sni] [-f from] [-t to] HOST:PORT\n");
	exit(2);
}

/* One process's share: its sessions until its messages are sent. */
static void load_run(struct load *L)
{
	body_build(L);
	ctx_make(L);
	L->ep = epoll_create1(EPOLL_CLOEXEC);
	L->slots = calloc((size_t)L->sessions, sizeof *L->slots);
	if (L->ep < 0 || !L->slots)
		die(NULL, "setup");
	for (int i = 0; i < L->sessions; i++) {
		L->slots[i].fd = -1;
		slot_open(L, &L->slots[i]);
	}
	struct epoll_event ev[64];
	while (L->sent < L->msgs || load_open(L)) {
		int n = epoll_wait(L->ep, ev, 64, 60000);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			die(NULL, "no progress for 60 s (%ld of %ld sent)", L->sent, L->msgs);
		for (int i = 0; i < n; i++)
			slot_drive(L, ev[i].data.ptr);
	}
	for (int i = 0; i < L->sessions; i++)
		SSL_SESSION_free(L->slots[i].ticket);
	SSL_CTX_free(L->ctx);
	free(L->slots);
	free(L->body);
}

/* -j: each child runs its share and writes its counts to the pipe; any
 * child that fails fails the run. */
static void load_fork(struct load *L, int procs)
{
	int fd[2];
	if (pipe(fd) < 0)
		die(NULL, "pipe: %s", strerror(errno));
	long msgs = L->msgs, sessions = L->sessions;
	for (int p = 0; p < procs; p++) {
		struct load share = *L;
		share.msgs = msgs / procs + (p < msgs % procs);
		share.sessions = (int)(sessions / procs + (p < sessions % procs));
		pid_t pid = fork();
		if (pid < 0)
			die(NULL, "fork: %s", strerror(errno));
		if (pid == 0) {
			close(fd[0]);
			load_run(&share);
			long out[3] = { share.sent, share.handshakes, share.resumed };
			if (write(fd[1], out, sizeof out) != sizeof out)
				_exit(1);
			_exit(0);
		}
	}
	close(fd[1]);
	long in[3];
	while (read(fd[0], in, sizeof in) == sizeof in) {
		L->sent += in[0];
		L->handshakes += in[1];
		L->resumed += in[2];
	}
	int st, bad = 0;
	while (wait(&st) > 0)
		bad |= !WIFEXITED(st) || WEXITSTATUS(st) != 0;
	if (bad || L->sent != msgs)
		die(NULL, "a client process failed (%ld of %ld sent)", L->sent, msgs);
}

int main(int argc, char **argv)
{
	struct load L = { .sessions = 1, .msgs = 1, .size = 4096, .from = "bench@source.example",
			  .to = "user@sink.example" };
	int c, procs = 1;
	while ((c = getopt(argc, argv, "s:m:l:drj:S:f:t:")) != -1) {
		switch (c) {
		case 's': L.sessions = atoi(optarg); break;
		case 'm': L.msgs = atol(optarg); break;
		case 'l': L.size = (size_t)atol(optarg); break;
		case 'd': L.reuse = 1; break;
		case 'r': L.resume = 1; break;
		case 'j': procs = atoi(optarg); break;
		case 'S': L.sni = optarg; break;
		case 'f': L.from = optarg; break;
		case 't': L.to = optarg; break;
		default: usage();
		}
	}
	if (optind != argc - 1 || L.sessions < 1 || L.msgs < 1 || procs < 1 ||
	    procs > L.sessions || procs > L.msgs)
		usage();
	char *colon = strrchr(argv[optind], ':');
	if (!colon)
		usage();
	*colon = '\0';
	L.addr.sin_family = AF_INET;
	L.addr.sin_port = htons((uint16_t)atoi(colon + 1));
	if (inet_pton(AF_INET, argv[optind], &L.addr.sin_addr) != 1)
		usage();
	signal(SIGPIPE, SIG_IGN);
	double t0 = now();
	if (procs == 1)
		load_run(&L);
	else
		load_fork(&L, procs);
	double el = now() - t0;
	struct rusage self, kids;
	getrusage(RUSAGE_SELF, &self);
	getrusage(RUSAGE_CHILDREN, &kids);
	double cpu = self.ru_utime.tv_sec + self.ru_stime.tv_sec + kids.ru_utime.tv_sec +
		     kids.ru_stime.tv_sec + (self.ru_utime.tv_usec + self.ru_stime.tv_usec +
		     kids.ru_utime.tv_usec + kids.ru_stime.tv_usec) / 1e6;
	printf("tlsload: sent=%ld elapsed=%.3f msg_s=%.1f handshakes=%ld handshakes_s=%.1f "
	       "resumed=%ld client_cpu=%.2f\n", L.sent, el, L.sent / el, L.handshakes,
	       L.handshakes / el, L.resumed, cpu);
	return 0;
}
