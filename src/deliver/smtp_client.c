/* smtp_client: outbound SMTP/LMTP state machine (see smtp_client.h). */
#include "deliver/smtp_client.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/log.h"
#include "net/closer.h"
#include "net/smtp.h"
#include "net/tls.h"
#include "net/wire.h"

#define SMTPC_LINE_MAX 4096
#define SMTPC_REPLY_MAX 512
#define SMTPC_BODY_LOW (64 * 1024)   /* refill the output below this */

enum smtpc_state {
	C_CONNECT, C_GREETING, C_EHLO, C_HELO, C_STARTTLS, C_HANDSHAKE, C_AUTH,
	C_AUTH_USER, C_AUTH_PASS, C_READY, C_TX, C_BODY, C_DOT, C_RSET, C_QUIT,
	C_BROKEN,
};

struct smtpc_reply {
	int code;
	struct buf text;       /* lines joined by spaces, code stripped */
};

struct smtpc {
	struct event_base *base;
	struct smtpc_target t;
	struct smtpc_cbs cbs;
	struct bufferevent *bev;
	struct event *start_ev;         /* connect, and later free, from the loop */
	enum smtpc_state state;
	size_t ai;                      /* address being tried */
	bool tls, pipelining, dsn, size_ext, eightbit, starttls_offered;
	bool auth_plain, auth_login, need_rset, closing;
	bool release;                   /* smtpc_close: start_ev frees the struct */
	bool direct;                    /* plain and connected: wire.h writes */
	char peer[300];                 /* "name[ip]" (smtpc_set_peer) */
	struct smtpc_reply reply;
	struct buf last_err;            /* why the previous address failed */
	/* the current transaction */
	struct smtpc_job *job;
	struct smtpc_job *next;         /* sent after job's final dot, its replies not read */
	size_t sent, got;               /* commands sent / replies seen: MAIL, RCPT*n, DATA */
	size_t naccepted, dot_replies;
	bool mail_failed, *accepted;
	unsigned seq;                   /* next body chunk */
	bool bol, body_done;
	struct buf chunk;
};

static void smtpc_next_address(struct smtpc *c);
static void smtpc_connect(struct smtpc *c);
static void smtpc_body(struct smtpc *c);

/* ---- helpers ---- */

static void smtpc_send_line(struct smtpc *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void smtpc_send_line(struct smtpc *c, const char *fmt, ...)
{
	struct buf b = BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	bool secret = c->state == C_AUTH || c->state == C_AUTH_USER || c->state == C_AUTH_PASS;
	log_debug("smtp %s: > %s", c->t.name[c->ai], secret ? "(AUTH exchange hidden)" : b.data);
	buf_puts(&b, "\r\n");
	bufferevent_write(c->bev, b.data, b.len);
	buf_free(&b);
}

/* Send what is buffered now (wire.h), at the end of each piece of work. A
 * body is pushed on for as long as the socket takes it: no write callback
 * comes for output that left at once. */
static void smtpc_flush(struct smtpc *c)
{
	while (c->direct && c->bev && wire_flush(c->bev) && c->state == C_BODY)
		smtpc_body(c);
}

/* "name[ip]" of the address being tried, made once per connection
 * (smtpc_connect): results and remote_mta quote it for every message. */
static void smtpc_set_peer(struct smtpc *c)
{
	char ip[INET6_ADDRSTRLEN] = "";
	const struct sockaddr_storage *ss = &c->t.addr[c->ai];
	if (ss->ss_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, ip, sizeof ip);
	else if (ss->ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, ip, sizeof ip);
	else
		snprintf(ip, sizeof ip, "unix");
	snprintf(c->peer, sizeof c->peer, "%s[%s]", c->t.name[c->ai], ip);
}

/* A result from the reply just read: "x.y.z host said: 550 5.1.1 ...". */
static void smtpc_result(struct smtpc *c, struct deliver_result *r, const char *cmd)
{
	const char *t = buf_cstr(&c->reply.text);
	char esc[16] = "";
	if (isdigit((unsigned char)t[0]) && t[1] == '.' && (t[0] - '0') == c->reply.code / 100)
		snprintf(esc, sizeof esc, "%.*s", (int)strcspn(t, " "), t);
	else
		snprintf(esc, sizeof esc, "%d.0.0", c->reply.code / 100);
	r->status = c->reply.code < 400 ? DELIVER_OK : c->reply.code < 500 ? DELIVER_TEMP : DELIVER_PERM;
	snprintf(r->reply, sizeof r->reply, "%s %s said: %d %s (in reply to %s)", esc, c->peer,
	         c->reply.code, t, cmd);
}

static void smtpc_set_result(struct deliver_result *r, enum deliver_status st, const char *why)
{
	r->status = st;
	snprintf(r->reply, sizeof r->reply, "%s", why);
}

/* ---- ending ---- */

static void smtpc_free(struct smtpc *c)
{
	if (c->start_ev)
		event_free(c->start_ev);
	closer_close(c->t.closer, c->bev);
	buf_free(&c->reply.text);
	buf_free(&c->last_err);
	buf_free(&c->chunk);
	free(c->accepted);
	free(c);
}

/* The current job, and the one pipelined after it, end with every result
 * not yet known set to r. */
static void smtpc_job_fail(struct smtpc *c, const struct deliver_result *r)
{
	struct smtpc_job *jobs[2] = { c->job, c->next };
	if (!c->job)
		return;
	c->job = c->next = NULL;
	c->state = C_BROKEN;
	for (int k = 0; k < 2 && jobs[k]; k++) {
		for (size_t i = 0; i < jobs[k]->n; i++)
			if (jobs[k]->res[i].reply[0] == '\0')
				jobs[k]->res[i] = *r;
		c->cbs.done(c, jobs[k], c->cbs.ctx);
	}
}

/* The connection broke: fail the job, then tell the owner. */
static void smtpc_broken(struct smtpc *c, const char *why)
{
	struct deliver_result r;
	smtpc_set_result(&r, DELIVER_TEMP, "");
	snprintf(r.reply, sizeof r.reply, "4.4.2 %s: %s", c->peer, why);
	log_info("smtp %s: %s", c->peer, why);
	bool had_job = c->job != NULL;
	if (c->state < C_READY && !had_job) {
		buf_reset(&c->last_err);
		buf_puts(&c->last_err, r.reply);
		smtpc_next_address(c);
		return;
	}
	smtpc_job_fail(c, &r);
	c->state = C_BROKEN;
	c->cbs.fail(c, &r, c->cbs.ctx);
}

/* ---- the transaction ---- */

static void smtpc_mail_cmd(struct smtpc *c, const struct smtpc_job *job)
{
	const struct spool_env *e = job->env;
	struct buf b = BUF_INIT;
	buf_printf(&b, "MAIL FROM:<%s>", e->sender);
	if (c->size_ext)
		buf_printf(&b, " SIZE=%llu", (unsigned long long)e->size);
	if (c->eightbit && e->body == BODY_8BITMIME)
		buf_puts(&b, " BODY=8BITMIME");
	if (c->dsn && e->ret != RET_UNSET)
		buf_puts(&b, e->ret == RET_FULL ? " RET=FULL" : " RET=HDRS");
	char x[SMTP_ENVID_MAX * 3 + 1];
	if (c->dsn && e->envid[0] && smtp_xtext_encode(e->envid, x, sizeof x))
		buf_printf(&b, " ENVID=%s", x);
	smtpc_send_line(c, "%s", b.data);
	buf_free(&b);
}

static void smtpc_rcpt_cmd(struct smtpc *c, const struct spool_rcpt *r)
{
	struct buf b = BUF_INIT;
	buf_printf(&b, "RCPT TO:<%s>", r->addr);
	if (c->dsn && r->notify) {
		static const char *const names[] = { "NEVER", "SUCCESS", "FAILURE", "DELAY" };
		const char *sep = " NOTIFY=";
		for (int i = 0; i < 4; i++)
			if (r->notify & (1u << i)) {
				buf_printf(&b, "%s%s", sep, names[i]);
				sep = ",";
			}
	}
	const char *semi = r->orcpt ? strchr(r->orcpt, ';') : NULL;
	char x[SMTP_ORCPT_MAX * 3 + 1];
	if (c->dsn && semi && smtp_xtext_encode(semi + 1, x, sizeof x))
		buf_printf(&b, " ORCPT=%.*s;%s", (int)(semi - r->orcpt), r->orcpt, x);
	smtpc_send_line(c, "%s", b.data);
	buf_free(&b);
}

/* Send what may go now: everything when pipelining, else one command. */
static void smtpc_tx_send(struct smtpc *c)
{
	size_t total = c->job->n + 2;
	while (c->sent < total) {
		if (c->sent == 0)
			smtpc_mail_cmd(c, c->job);
		else if (c->sent <= c->job->n)
			smtpc_rcpt_cmd(c, &c->job->env->rcpt[c->job->idx[c->sent - 1]]);
		else
			smtpc_send_line(c, "DATA");
		c->sent++;
		if (!c->pipelining)
			break;
	}
}

/* A job's results start unknown; it will have been sent here. */
static void smtpc_job_init(struct smtpc *c, struct smtpc_job *job)
{
	for (size_t i = 0; i < job->n; i++)
		job->res[i].reply[0] = '\0';
	snprintf(job->remote_mta, sizeof job->remote_mta, "%s", c->peer);
	job->dsn_offered = c->dsn;
}

/* Make job the current transaction, sent commands: none, or (pipelined
 * after the previous one) all of them. */
static void smtpc_tx_begin(struct smtpc *c, struct smtpc_job *job, size_t sent)
{
	c->job = job;
	free(c->accepted);
	c->accepted = calloc(job->n ? job->n : 1, sizeof *c->accepted);
	if (!c->accepted)
		abort();
	c->sent = sent;
	c->got = c->naccepted = c->dot_replies = 0;
	c->mail_failed = false;
	c->seq = 0;
	c->bol = true;
	c->body_done = false;
	c->state = C_TX;
}

/* After a job's final dot, the next transaction goes in the same write:
 * RFC 2920 3.1 lets message content open a group of commands, and DATA
 * ends it. Its replies follow the dot's, in order. One write and one read
 * per message instead of two each, here and at the other end. */
static void smtpc_pipeline_next(struct smtpc *c)
{
	if (!c->pipelining || c->next || c->closing || !c->cbs.more)
		return;
	struct smtpc_job *job = c->cbs.more(c, c->cbs.ctx);
	if (!job)
		return;
	c->next = job;
	smtpc_job_init(c, job);
	smtpc_mail_cmd(c, job);
	for (size_t i = 0; i < job->n; i++)
		smtpc_rcpt_cmd(c, &job->env->rcpt[job->idx[i]]);
	smtpc_send_line(c, "DATA");
}

void smtpc_send(struct smtpc *c, struct smtpc_job *job)
{
	smtpc_job_init(c, job);
	smtpc_tx_begin(c, job, 0);
	if (c->need_rset) {
		c->need_rset = false;
		c->state = C_RSET;
		smtpc_send_line(c, "RSET");
		return smtpc_flush(c);
	}
	smtpc_tx_send(c);
	smtpc_flush(c);
}

/* The current job is over; a job pipelined after it becomes current
 * (before the owner hears of the first: it must not hand over another). */
static void smtpc_job_done(struct smtpc *c)
{
	struct smtpc_job *job = c->job;
	c->job = NULL;
	c->state = C_READY;
	if (c->next) {
		smtpc_tx_begin(c, c->next, c->next->n + 2);
		c->next = NULL;
	}
	c->cbs.done(c, job, c->cbs.ctx);
}

/* Dot-stuff one chunk into the output (RFC 5321 4.5.2): the bytes go out
 * in runs that end only before a line that starts with a dot (one
 * evbuffer_add per line before). */
static void smtpc_stuff(struct smtpc *c, const char *p, size_t n)
{
	if (n == 0)
		return;
	struct evbuffer *out = bufferevent_get_output(c->bev);
	if (c->bol && p[0] == '.')
		evbuffer_add(out, ".", 1);
	size_t run = 0, i = 0;
	for (const char *lf; (lf = memchr(p + i, '\n', n - i));) {
		i = (size_t)(lf - p) + 1;   /* the start of the next line */
		if (i < n && p[i] == '.') {
			evbuffer_add(out, p + run, i - run);
			evbuffer_add(out, ".", 1);
			run = i;
		}
	}
	evbuffer_add(out, p + run, n - run);
	c->bol = p[n - 1] == '\n';
}

/* A body file in which no line begins with a dot is already what goes on
 * the wire: the kernel sends it from the page cache (sendfile), with no
 * read, scan or copy here. Not under TLS, where it must pass through
 * OpenSSL. Returns false to take the chunk by chunk way instead. */
static bool smtpc_body_file(struct smtpc *c)
{
	const struct spool_env *e = c->job->env;
	if (c->tls || !e->body_file || !e->dotless || c->seq != 0)
		return false;
	uint64_t size = 0;
	int fd = spool_reader_body_fd(c->job->reader, e, &size);
	char last = '\n';
	if (fd < 0 || (size && pread(fd, &last, 1, (off_t)size - 1) != 1) || size > INT64_MAX) {
		if (fd >= 0)
			close(fd);
		return false;
	}
	struct evbuffer *out = bufferevent_get_output(c->bev);
	if (size && evbuffer_add_file(out, fd, 0, (ev_off_t)size) != 0)
		return false;  /* libevent closed fd */
	if (!size)
		close(fd);
	c->bol = last == '\n';
	return true;
}

/* The end of the data: CRLF "." CRLF (RFC 5321 4.1.1.4). */
static void smtpc_body_end(struct smtpc *c)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	c->body_done = true;
	if (!c->bol)
		evbuffer_add(out, "\r\n", 2);
	evbuffer_add(out, ".\r\n", 3);
	c->state = C_DOT;
	smtpc_pipeline_next(c);
}

/* Push body chunks until the output holds enough; then the final dot. */
static void smtpc_body(struct smtpc *c)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	if (!c->body_done && smtpc_body_file(c))
		return smtpc_body_end(c);
	while (!c->body_done && evbuffer_get_length(out) < SMTPC_BODY_LOW) {
		int err = spool_reader_chunk(c->job->reader, c->job->env, c->seq++, &c->chunk);
		if (err == ENOENT) {
			smtpc_body_end(c);
		} else if (err) {
			struct deliver_result r;
			smtpc_set_result(&r, DELIVER_TEMP, "4.3.0 cannot read the message from the spool");
			smtpc_job_fail(c, &r);
			c->cbs.fail(c, &r, c->cbs.ctx);
			return;
		} else {
			smtpc_stuff(c, c->chunk.data, c->chunk.len);
		}
	}
}

static void smtpc_tx_end_early(struct smtpc *c)
{
	c->need_rset = true;
	smtpc_job_done(c);
}

/* The reply to MAIL (i == 0), RCPT i, or DATA (i == n + 1). */
static void smtpc_tx_reply(struct smtpc *c, size_t i)
{
	struct smtpc_job *job = c->job;
	int code = c->reply.code;
	if (i == 0) {
		if (code / 100 != 2) {
			c->mail_failed = true;
			for (size_t k = 0; k < job->n; k++)
				smtpc_result(c, &job->res[k], "MAIL FROM");
		}
	} else if (i <= job->n) {
		if (c->mail_failed)
			return;
		if (code / 100 == 2) {
			c->accepted[i - 1] = true;
			c->naccepted++;
		} else {
			smtpc_result(c, &job->res[i - 1], "RCPT TO");
		}
	} else if (code == 354 && c->naccepted > 0 && !c->mail_failed) {
		c->state = C_BODY;
		smtpc_body(c);
	} else if (code == 354) {          /* RFC 2920 3.1: nobody to send to */
		c->state = C_DOT;
		c->naccepted = 0;
		bufferevent_write(c->bev, ".\r\n", 3);
	} else {
		for (size_t k = 0; k < job->n; k++)
			if (c->accepted[k])
				smtpc_result(c, &job->res[k], "DATA");
		smtpc_tx_end_early(c);
	}
}

static void smtpc_tx_step(struct smtpc *c)
{
	size_t total = c->job->n + 2;
	smtpc_tx_reply(c, c->got++);
	if (c->state != C_TX)
		return;
	if (c->got == c->sent && c->sent < total) {
		/* not pipelining: stop early when nothing can succeed */
		if (c->mail_failed || (c->sent == c->job->n + 1 && c->naccepted == 0))
			smtpc_tx_end_early(c);
		else
			smtpc_tx_send(c);
	}
}

/* After the final dot: one reply (SMTP), or one per accepted RCPT (LMTP,
 * RFC 2033 4.2). */
static void smtpc_dot_reply(struct smtpc *c)
{
	struct smtpc_job *job = c->job;
	if (c->naccepted == 0) {          /* the empty-transaction dot */
		smtpc_tx_end_early(c);
		return;
	}
	size_t k = 0, seen = 0;
	for (; k < job->n; k++)
		if (c->accepted[k] && seen++ == c->dot_replies)
			break;
	c->dot_replies++;
	for (size_t j = 0; j < job->n; j++)
		if (c->accepted[j] && (!c->t.lmtp || j == k))
			smtpc_result(c, &job->res[j], "end of DATA");
	if (!c->t.lmtp || c->dot_replies == c->naccepted)
		smtpc_job_done(c);
}

/* ---- session set-up ---- */

static void smtpc_ehlo_line(struct smtpc *c, const char *line)
{
	char kw[32];
	snprintf(kw, sizeof kw, "%.*s", (int)strcspn(line, " "), line);
	if (!strcasecmp(kw, "PIPELINING"))
		c->pipelining = true;
	else if (!strcasecmp(kw, "DSN"))
		c->dsn = true;
	else if (!strcasecmp(kw, "SIZE"))
		c->size_ext = true;
	else if (!strcasecmp(kw, "8BITMIME"))
		c->eightbit = true;
	else if (!strcasecmp(kw, "STARTTLS"))
		c->starttls_offered = true;
	else if (!strcasecmp(kw, "AUTH")) {
		c->auth_plain = strcasestr(line, " PLAIN") != NULL;
		c->auth_login = strcasestr(line, " LOGIN") != NULL;
	}
}

/* Give up on this address: note why, try the next one. */
static void smtpc_address_failed(struct smtpc *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void smtpc_address_failed(struct smtpc *c, const char *fmt, ...)
{
	buf_reset(&c->last_err);
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(&c->last_err, fmt, ap);
	va_end(ap);
	log_info("smtp %s: %s", c->peer, buf_cstr(&c->last_err));
	smtpc_next_address(c);
}

static void smtpc_ready(struct smtpc *c)
{
	c->state = C_READY;
	c->cbs.ready(c, c->cbs.ctx);
}

static void smtpc_auth(struct smtpc *c)
{
	const char *u = c->t.auth_user, *p = c->t.auth_pass;
	if (!c->tls)
		return smtpc_address_failed(c, "4.7.0 no TLS: not sending the password in clear");
	struct buf raw = BUF_INIT;
	unsigned char enc[1400];
	if (c->auth_plain) {   /* RFC 4616: authzid NUL authcid NUL passwd */
		buf_putc(&raw, '\0');
		buf_puts(&raw, u);
		buf_putc(&raw, '\0');
		buf_puts(&raw, p);
		if (raw.len > 1000)
			raw.len = 1000;
		EVP_EncodeBlock(enc, (const unsigned char *)raw.data, (int)raw.len);
		c->state = C_AUTH;
		smtpc_send_line(c, "AUTH PLAIN %s", enc);
	} else if (c->auth_login) {
		c->state = C_AUTH_USER;
		smtpc_send_line(c, "AUTH LOGIN");
	} else {
		smtpc_address_failed(c, "4.7.0 the server offers no AUTH PLAIN or LOGIN");
	}
	buf_free(&raw);
}

static void smtpc_auth_login_step(struct smtpc *c, const char *secret)
{
	unsigned char enc[1400];
	size_t n = strlen(secret);
	EVP_EncodeBlock(enc, (const unsigned char *)secret, (int)(n > 1000 ? 1000 : n));
	smtpc_send_line(c, "%s", enc);
}

static void smtpc_after_ehlo(struct smtpc *c)
{
	bool want_tls = c->t.ssl_ctx && c->t.tls != SMTPC_TLS_NONE && !c->tls;
	if (want_tls && c->starttls_offered) {
		c->state = C_STARTTLS;
		smtpc_send_line(c, "STARTTLS");
	} else if (!c->tls && (c->t.tls == SMTPC_TLS_ENCRYPT || c->t.tls == SMTPC_TLS_VERIFY)) {
		smtpc_address_failed(c, "4.7.5 STARTTLS required by policy but not offered");
	} else if (c->t.auth_user) {
		smtpc_auth(c);
	} else {
		smtpc_ready(c);
	}
}

static void smtpc_read_cb(struct bufferevent *bev, void *arg);
static void smtpc_event_cb(struct bufferevent *bev, short what, void *arg);

static void smtpc_start_tls(struct smtpc *c)
{
	struct tls_peer peer = { c->t.name[c->ai], c->t.tls == SMTPC_TLS_VERIFY };
	if (c->direct)
		wire_indirect(c->bev);   /* OpenSSL writes from here on */
	c->direct = false;
	struct bufferevent *tb = tls_wrap(c->base, c->bev, c->t.ssl_ctx, &peer);
	if (!tb)
		return smtpc_address_failed(c, "4.7.5 cannot start TLS");
	c->bev = tb;
	c->state = C_HANDSHAKE;
	bufferevent_setcb(tb, smtpc_read_cb, NULL, smtpc_event_cb, c);
	struct timeval tv = { (time_t)c->t.timeout, 0 };
	bufferevent_set_timeouts(tb, &tv, &tv);
	bufferevent_enable(tb, EV_READ | EV_WRITE);
}

static void smtpc_tls_up(struct smtpc *c)
{
	SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
	if (c->t.tls == SMTPC_TLS_VERIFY && SSL_get_verify_result(ssl) != X509_V_OK)
		return smtpc_address_failed(c, "4.7.5 certificate verification failed: %s",
		                            X509_verify_cert_error_string(SSL_get_verify_result(ssl)));
	log_info("smtp %s: TLS %s %s", c->peer, SSL_get_version(ssl), SSL_get_cipher_name(ssl));
	c->tls = true;
	c->pipelining = c->dsn = c->size_ext = c->eightbit = c->starttls_offered = false;
	c->auth_plain = c->auth_login = false;
	c->state = C_EHLO;   /* RFC 3207 4.2: forget everything, greet again */
	smtpc_send_line(c, "%s %s", c->t.lmtp ? "LHLO" : "EHLO", c->t.helo);
}

static void smtpc_greeting(struct smtpc *c)
{
	if (c->reply.code != 220)
		return smtpc_address_failed(c, "4.4.1 greeting %d %s", c->reply.code,
		                            buf_cstr(&c->reply.text));
	c->state = C_EHLO;
	smtpc_send_line(c, "%s %s", c->t.lmtp ? "LHLO" : "EHLO", c->t.helo);
}

static void smtpc_ehlo_reply(struct smtpc *c)
{
	if (c->reply.code == 250)
		return smtpc_after_ehlo(c);
	if (c->state == C_EHLO && !c->t.lmtp && c->reply.code >= 500 && !c->tls) {
		c->state = C_HELO;   /* RFC 5321 3.2: fall back to HELO */
		smtpc_send_line(c, "HELO %s", c->t.helo);
		return;
	}
	smtpc_address_failed(c, "4.4.1 %s refused: %d %s", c->state == C_HELO ? "HELO" : "EHLO",
	                     c->reply.code, buf_cstr(&c->reply.text));
}

/* ---- replies ---- */

static void smtpc_auth_reply(struct smtpc *c)
{
	int code = c->reply.code;
	if (c->state == C_AUTH_USER && code == 334) {
		c->state = C_AUTH_PASS;
		return smtpc_auth_login_step(c, c->t.auth_user);
	}
	if (c->state == C_AUTH_PASS && code == 334) {
		c->state = C_AUTH;
		return smtpc_auth_login_step(c, c->t.auth_pass);
	}
	if (code == 235)
		return smtpc_ready(c);
	smtpc_address_failed(c, "4.7.0 authentication failed: %d %s", code, buf_cstr(&c->reply.text));
}

static void smtpc_dispatch(struct smtpc *c)
{
	switch (c->state) {
	case C_GREETING: smtpc_greeting(c); break;
	case C_EHLO: case C_HELO: smtpc_ehlo_reply(c); break;
	case C_STARTTLS:
		if (c->reply.code == 220)
			smtpc_start_tls(c);
		else if (c->t.tls == SMTPC_TLS_MAY)
			c->t.auth_user ? smtpc_auth(c) : smtpc_ready(c);
		else
			smtpc_address_failed(c, "4.7.5 STARTTLS refused: %d", c->reply.code);
		break;
	case C_AUTH: case C_AUTH_USER: case C_AUTH_PASS: smtpc_auth_reply(c); break;
	case C_TX: smtpc_tx_step(c); break;
	case C_DOT: smtpc_dot_reply(c); break;
	case C_RSET:
		c->state = C_TX;
		smtpc_tx_send(c);
		break;
	case C_QUIT: case C_READY: case C_BODY: case C_CONNECT: case C_HANDSHAKE: case C_BROKEN:
		break;  /* unsolicited: ignore (a 421 before close shows in the log) */
	}
}

/* Read one reply line; returns 1 when a whole reply is in c->reply, 0 when
 * more input is needed, -1 on a protocol error. */
static int smtpc_read_reply(struct smtpc *c, struct evbuffer *in)
{
	for (;;) {
		size_t n;
		char *line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF);
		if (!line)
			return evbuffer_get_length(in) > SMTPC_LINE_MAX ? -1 : 0;
		log_debug("smtp %s: < %s", c->t.name[c->ai], line);
		bool ok = n >= 3 && isdigit((unsigned char)line[0]) && isdigit((unsigned char)line[1]) &&
		          isdigit((unsigned char)line[2]) && (n == 3 || line[3] == ' ' || line[3] == '-');
		if (!ok) {
			free(line);
			return -1;
		}
		int code = atoi(line);
		bool last = n == 3 || line[3] == ' ';
		if (c->reply.code && c->reply.code != code) {
			free(line);
			return -1;
		}
		if (c->state == C_EHLO && c->reply.code && n > 4)
			smtpc_ehlo_line(c, line + 4);
		c->reply.code = code;
		if (c->reply.text.len && c->reply.text.len < SMTPC_REPLY_MAX)
			buf_putc(&c->reply.text, ' ');
		if (c->reply.text.len < SMTPC_REPLY_MAX && n > 4)
			buf_append(&c->reply.text, line + 4, n - 4);
		free(line);
		if (last)
			return 1;
	}
}

static void smtpc_read_cb(struct bufferevent *bev, void *arg)
{
	struct smtpc *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	while (!c->closing && c->bev == bev) {
		int r = smtpc_read_reply(c, in);
		if (r == 0)
			break;
		if (r < 0)
			return smtpc_broken(c, "protocol error: a reply line that is not SMTP");
		smtpc_dispatch(c);
		c->reply.code = 0;
		buf_reset(&c->reply.text);
	}
	smtpc_flush(c);
}

static void smtpc_write_cb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	struct smtpc *c = arg;
	if (c->direct)
		wire_direct(c->bev);   /* libevent wrote the rest: direct again */
	if (c->state == C_BODY)
		smtpc_body(c);
	smtpc_flush(c);
}

static void smtpc_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct smtpc *c = arg;
	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		if (c->state == C_HANDSHAKE)
			return smtpc_tls_up(c);
		struct timeval tv = { (time_t)c->t.timeout, 0 };
		bufferevent_set_timeouts(c->bev, &tv, &tv);
		c->state = C_GREETING;
		wire_direct(c->bev);
		c->direct = true;
		return;
	}
	unsigned long e = bufferevent_get_openssl_error(bev);
	char why[256];
	if (e)
		snprintf(why, sizeof why, "TLS error: %s", ERR_reason_error_string(e));
	else if (what & BEV_EVENT_TIMEOUT)
		snprintf(why, sizeof why, "%s", c->state == C_CONNECT ? "connection timed out" : "timeout waiting for a reply");
	else if (what & BEV_EVENT_EOF)
		snprintf(why, sizeof why, "lost connection");
	else
		snprintf(why, sizeof why, "%s", c->state == C_CONNECT ? strerror(EVUTIL_SOCKET_ERROR()) : "connection error");
	if (c->state <= C_HANDSHAKE && !c->job)
		return smtpc_address_failed(c, "4.4.1 %s", why);
	smtpc_broken(c, why);
}

/* ---- connecting ---- */

static socklen_t smtpc_addrlen(const struct sockaddr_storage *ss)
{
	return ss->ss_family == AF_INET ? sizeof(struct sockaddr_in) :
	       ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_un);
}

static void smtpc_connect(struct smtpc *c)
{
	closer_close(c->t.closer, c->bev);
	c->direct = false;
	c->tls = c->pipelining = c->dsn = c->size_ext = c->eightbit = false;
	c->starttls_offered = c->auth_plain = c->auth_login = false;
	c->reply.code = 0;
	buf_reset(&c->reply.text);
	c->state = C_CONNECT;
	smtpc_set_peer(c);
	c->bev = bufferevent_socket_new(c->base, -1, BEV_OPT_CLOSE_ON_FREE);
	bufferevent_setcb(c->bev, smtpc_read_cb, smtpc_write_cb, smtpc_event_cb, c);
	struct timeval ct = { (time_t)c->t.connect_timeout, 0 };
	bufferevent_set_timeouts(c->bev, &ct, &ct);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	const struct sockaddr_storage *ss = &c->t.addr[c->ai];
	if (bufferevent_socket_connect(c->bev, (const struct sockaddr *)ss,
	                               (int)smtpc_addrlen(ss)) != 0)
		smtpc_address_failed(c, "4.4.1 cannot connect: %s", strerror(errno));
}

/* Try the next address, or report that none worked. */
static void smtpc_next_address(struct smtpc *c)
{
	closer_close(c->t.closer, c->bev);
	c->bev = NULL;
	c->direct = false;
	if (++c->ai < c->t.naddr)
		return smtpc_connect(c);
	c->ai = c->t.naddr - 1;
	struct deliver_result r;
	smtpc_set_result(&r, DELIVER_TEMP, c->last_err.len ? c->last_err.data : "4.4.1 no host answered");
	c->cbs.fail(c, &r, c->cbs.ctx);
}

static void smtpc_start_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct smtpc *c = arg;
	if (c->release)
		smtpc_free(c);
	else if (!c->closing)
		smtpc_connect(c);
}

/* Connecting starts from the loop, so no callback runs before the caller
 * has the handle. */
struct smtpc *smtpc_open(struct event_base *base, const struct smtpc_target *t,
                         const struct smtpc_cbs *cbs)
{
	if (t->naddr == 0)
		abort();  /* a bug: the caller resolves first */
	struct smtpc *c = calloc(1, sizeof *c);
	if (!c)
		abort();
	c->base = base;
	c->t = *t;
	c->cbs = *cbs;
	c->start_ev = evtimer_new(base, smtpc_start_cb, c);
	event_active(c->start_ev, EV_TIMEOUT, 0);
	return c;
}

/* QUIT when idle, and the connection to the closer (QUIT and a TLS
 * close_notify leave, then the socket closes; the 221 is not waited for).
 * No callback comes after this. */
void smtpc_hangup(struct smtpc *c)
{
	if (!c || c->closing)
		return;
	c->closing = true;
	if (c->bev && c->state == C_READY) {
		c->state = C_QUIT;
		smtpc_send_line(c, "QUIT");
	}
	closer_close(c->t.closer, c->bev);
	c->bev = NULL;
}

/* Never frees under the caller's feet: the struct goes from the loop. */
void smtpc_close(struct smtpc *c)
{
	if (!c)
		return;
	smtpc_hangup(c);
	c->release = true;
	event_active(c->start_ev, EV_TIMEOUT, 0);
}

void smtpc_destroy(struct smtpc *c)
{
	if (c)
		smtpc_free(c);
}

bool smtpc_usable(const struct smtpc *c)
{
	return c->state == C_READY && !c->closing;
}

/* The shared defaults of tls_ctx_new (TLS 1.2 minimum, no compression or
 * renegotiation). Opportunistic TLS (may) keeps OpenSSL's wider default
 * cipher list: against an old MX, some encryption beats none; encrypt and
 * verify keep the strict forward-secret list. */
SSL_CTX *smtpc_ssl_ctx(enum smtpc_tls tls, const char *ca_file)
{
	if (tls == SMTPC_TLS_NONE)
		return NULL;
	SSL_CTX *ctx = tls_ctx_new(TLS_CLIENT);
	if (!ctx)
		return NULL;
	if (tls == SMTPC_TLS_MAY)
		SSL_CTX_set_cipher_list(ctx, "DEFAULT");
	if (tls == SMTPC_TLS_VERIFY) {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
		int ok = ca_file && *ca_file ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL)
		                             : SSL_CTX_set_default_verify_paths(ctx);
		if (!ok) {
			log_error("smtp_tls_ca_file: cannot load %s", ca_file && *ca_file ? ca_file : "the system CAs");
			tls_ctx_free(ctx);
			return NULL;
		}
	}
	return ctx;
}
