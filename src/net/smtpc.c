/* smtpc: the delivery driver (see smtpc.h): session set-up, transactions,
 * the body, per-recipient results; the connection is smtpc_conn.c's. */
#include "net/smtpc.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/util.h"
#include "net/tls.h"
#include "net/tlsa.h"

#define SMTPC_TEXT_MAX 512            /* of a reply, quoted in results */
#define SMTPC_BODY_LOW (64 * 1024)    /* refill the output below this */
#define SMTPC_BDAT_CHUNK (256 * 1024) /* a BDAT chunk read from the source, at least */
#define SMTPC_BDAT_MAX (1024 * 1024)  /* a BDAT chunk, at most (the prefix apart) */

enum smtpc_state {
	C_CONNECT, C_GREETING, C_EHLO, C_HELO, C_STARTTLS, C_HANDSHAKE, C_AUTH, C_READY, C_TX,
	C_BODY, C_DOT, C_RSET, C_QUIT, C_BROKEN,
};

struct smtpc {
	struct smtpc_conn *conn;
	const struct smtpc_target *t;   /* the connection's copy */
	struct smtpc_cbs cbs;
	enum smtpc_state state;
	struct smtp_ext ext;            /* what the server offered (EHLO) */
	bool need_rset, closing;
	const struct smtp_reply *reply; /* the reply being handled */
	struct buf text;                /* its lines' text joined (smtpc_text) */
	bool text_ok;
	struct buf last_err;            /* why the previous address failed */
	char tls_note[160];             /* this address's TLS, for the jobs' log lines */
	bool plain_again;               /* smtp_tls = may: this address again without
	                                   STARTTLS, after its TLS failed */
	bool verified;                  /* this address's TLS was authenticated by
	                                   policy (smtpc_tls_verified) */
	/* the current transaction */
	struct smtpc_job *job;
	struct smtpc_job *next;         /* sent after job's final dot, its replies not read */
	size_t sent, got;               /* commands sent / replies seen: MAIL, RCPT*n, DATA */
	size_t naccepted, dot_replies;
	bool mail_failed, *accepted;
	unsigned seq;                   /* next body chunk */
	bool prefix_sent;               /* the source's prefix went before the body */
	bool body_done;
	struct smtp_stuff stuff;
	struct buf chunk;
	/* BDAT (RFC 3030 2) */
	size_t bdat_sent, bdat_got;     /* chunks sent / their replies seen */
	bool bdat_failed;               /* a chunk was refused: no more go */
	bool bdat_rset;                 /* ... before the last one: RSET after */
	bool body_eof;                  /* the source has given its last piece */
	bool have_ahead;
	struct buf ahead;               /* the piece read ahead of the chunk */
	size_t chunk_off;               /* chunk's octets before this have gone */
	int file_fd;                    /* a body file sent by ranges, or -1 */
	uint64_t file_size, file_off;
};

static void smtpc_body(struct smtpc *c);
static void smtpc_bdat_close(struct smtpc *c);
static void smtpc_tx_end_early(struct smtpc *c);
static enum smtpc_tls smtpc_level(const struct smtpc *c);

/* ---- helpers ---- */

/* The reply's text, lines joined by spaces, codes stripped. */
static const char *smtpc_text(struct smtpc *c)
{
	if (!c->text_ok) {
		buf_reset(&c->text);
		smtp_reply_join(c->reply, &c->text, SMTPC_TEXT_MAX);
		c->text_ok = true;
	}
	return buf_cstr(&c->text);
}

/* A result from the reply just read: "x.y.z host said: 550 5.1.1 ...". */
static void smtpc_result(struct smtpc *c, struct deliver_result *r, const char *cmd)
{
	const char *t = smtpc_text(c);
	int code = c->reply->code;
	char esc[16] = "";
	if (isdigit((unsigned char)t[0]) && t[1] == '.' && (t[0] - '0') == code / 100)
		snprintf(esc, sizeof esc, "%.*s", (int)strcspn(t, " "), t);
	else
		snprintf(esc, sizeof esc, "%d.0.0", code / 100);
	r->status = code < 400 ? DELIVER_OK : code < 500 ? DELIVER_TEMP : DELIVER_PERM;
	snprintf(r->reply, sizeof r->reply, "%s %s said: %d %s (in reply to %s)", esc,
	         smtpc_conn_peer(c->conn), code, t, cmd);
}

static void smtpc_set_result(struct deliver_result *r, enum deliver_status st, const char *why)
{
	r->status = st;
	snprintf(r->reply, sizeof r->reply, "%s", why);
}

/* ---- ending ---- */

/* The connection's memory is gone: this goes with it. */
static void smtpc_free(void *arg)
{
	struct smtpc *c = arg;
	buf_free(&c->text);
	buf_free(&c->last_err);
	buf_free(&c->chunk);
	buf_free(&c->ahead);
	smtpc_bdat_close(c);
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
	smtpc_bdat_close(c);
	for (int k = 0; k < 2 && jobs[k]; k++) {
		for (size_t i = 0; i < jobs[k]->n; i++)
			if (jobs[k]->res[i].reply[0] == '\0')
				jobs[k]->res[i] = *r;
		c->cbs.done(c, jobs[k], c->cbs.ctx);
	}
}

/* Try the next address, or report that none worked. */
static void smtpc_next_address(struct smtpc *c)
{
	c->state = C_CONNECT;
	c->plain_again = false;
	memset(&c->ext, 0, sizeof c->ext);
	if (smtpc_conn_next(c->conn))
		return;
	struct deliver_result r;   /* 5.x.x: a REQUIRETLS host passed over (smtpc_requiretls) */
	bool perm = c->last_err.len && c->last_err.data[0] == '5';
	smtpc_set_result(&r, perm ? DELIVER_PERM : DELIVER_TEMP,
	                 c->last_err.len ? c->last_err.data : "4.4.1 no host answered");
	c->cbs.fail(c, &r, c->cbs.ctx);
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
	log_info("smtp %s: %s", smtpc_conn_peer(c->conn), buf_cstr(&c->last_err));
	smtpc_next_address(c);
}

/* smtp_tls = may and TLS broke after STARTTLS (a failed handshake, a
 * server that garbles it): as Postfix does, the same address once more
 * without STARTTLS, which may deliver in clear (RFC 7435 opportunistic
 * security: that is what the level allows); once only. true when that
 * attempt is under way. */
static bool smtpc_plain_again(struct smtpc *c, const char *why)
{
	if (c->plain_again || smtpc_level(c) != SMTPC_TLS_MAY ||
	    (c->state != C_STARTTLS && c->state != C_HANDSHAKE))
		return false;
	log_info("smtp %s: TLS failed (%s); trying again without STARTTLS (smtp_tls = may)",
	         smtpc_conn_peer(c->conn), why);
	c->plain_again = true;
	c->state = C_CONNECT;
	memset(&c->ext, 0, sizeof c->ext);
	if (!smtpc_conn_again(c->conn))
		smtpc_next_address(c);
	return true;
}

/* The connection broke: fail the job, then tell the owner; before the
 * session was ready, the next address instead. */
static void smtpc_broken(struct smtpc *c, const char *why)
{
	struct deliver_result r;
	smtpc_set_result(&r, DELIVER_TEMP, "");
	snprintf(r.reply, sizeof r.reply, "4.4.2 %s: %s", smtpc_conn_peer(c->conn), why);
	log_info("smtp %s: %s", smtpc_conn_peer(c->conn), why);
	if (c->state < C_READY && !c->job) {
		buf_reset(&c->last_err);
		buf_puts(&c->last_err, r.reply);
		return smtpc_next_address(c);
	}
	smtpc_job_fail(c, &r);
	c->state = C_BROKEN;
	c->cbs.fail(c, &r, c->cbs.ctx);
}

/* ---- the transaction ---- */

static void smtpc_mail_cmd(struct smtpc *c, const struct smtpc_job *job)
{
	struct smtp_mail m;
	struct buf b = BUF_INIT;
	job->src->mail(job, &m);
	smtp_mail_line(&m, &c->ext, &b);
	smtpc_conn_line(c->conn, b.data);
	buf_free(&b);
}

static void smtpc_rcpt_cmd(struct smtpc *c, const struct smtpc_job *job, size_t i)
{
	struct smtp_rcpt r;
	struct buf b = BUF_INIT;
	job->src->rcpt(job, i, &r);
	smtp_rcpt_line(&r, &c->ext, &b);
	smtpc_conn_line(c->conn, b.data);
	buf_free(&b);
}

bool smtpc_bdat(const struct smtpc *c)
{
	return c->ext.chunking && c->t->chunking && !c->t->lmtp;
}

/* The commands of a job before its body: MAIL, the RCPTs, and DATA unless
 * the body goes by BDAT. */
static size_t smtpc_tx_total(const struct smtpc *c, const struct smtpc_job *job)
{
	return job->n + (smtpc_bdat(c) ? 1 : 2);
}

/* Send what may go now: everything when pipelining, else one command. */
static void smtpc_tx_send(struct smtpc *c)
{
	size_t total = smtpc_tx_total(c, c->job);
	while (c->sent < total) {
		if (c->sent == 0)
			smtpc_mail_cmd(c, c->job);
		else if (c->sent <= c->job->n)
			smtpc_rcpt_cmd(c, c->job, c->sent - 1);
		else
			smtpc_conn_line(c->conn, "DATA");
		c->sent++;
		if (!c->ext.pipelining)
			break;
	}
}

/* A job's results start unknown; it will have been sent here. */
static void smtpc_job_init(struct smtpc *c, struct smtpc_job *job)
{
	for (size_t i = 0; i < job->n; i++)
		job->res[i].reply[0] = '\0';
	snprintf(job->remote_mta, sizeof job->remote_mta, "%s", smtpc_conn_peer(c->conn));
	snprintf(job->tls, sizeof job->tls, "%s", c->tls_note);
	job->dsn_offered = c->ext.dsn;
}

/* Make job the current transaction, sent commands: none, or (pipelined
 * after the previous one) all of them. */
static void smtpc_tx_begin(struct smtpc *c, struct smtpc_job *job, size_t sent)
{
	c->job = job;
	free(c->accepted);
	c->accepted = util_xcalloc(job->n, sizeof *c->accepted);
	c->sent = sent;
	c->got = c->naccepted = c->dot_replies = 0;
	c->mail_failed = false;
	c->seq = 0;
	c->stuff = (struct smtp_stuff)SMTP_STUFF_INIT;
	c->prefix_sent = c->body_done = false;
	c->bdat_sent = c->bdat_got = 0;
	c->bdat_failed = c->bdat_rset = c->body_eof = c->have_ahead = false;
	smtpc_bdat_close(c);
	c->state = C_TX;
}

/* After a job's final dot, the next transaction goes in the same write:
 * RFC 2920 3.1 lets message content open a group of commands, and DATA
 * ends it. Its replies follow the dot's, in order. One write and one read
 * per message instead of two each, here and at the other end. */
static void smtpc_pipeline_next(struct smtpc *c)
{
	if (!c->ext.pipelining || c->next || c->closing || !c->cbs.more)
		return;
	struct smtpc_job *job = c->cbs.more(c, c->cbs.ctx);
	if (!job)
		return;
	c->next = job;
	smtpc_job_init(c, job);
	smtpc_mail_cmd(c, job);
	for (size_t i = 0; i < job->n; i++)
		smtpc_rcpt_cmd(c, job, i);
	if (!smtpc_bdat(c))
		smtpc_conn_line(c->conn, "DATA");
}

const struct smtp_ext *smtpc_ext(const struct smtpc *c)
{
	return &c->ext;
}

void smtpc_send(struct smtpc *c, struct smtpc_job *job)
{
	smtpc_job_init(c, job);
	smtpc_tx_begin(c, job, 0);
	if (c->need_rset) {
		c->need_rset = false;
		c->state = C_RSET;
		smtpc_conn_line(c->conn, "RSET");
	} else {
		smtpc_tx_send(c);
	}
	smtpc_conn_flush(c->conn);
}

/* The current job is over; a job pipelined after it becomes current
 * (before the owner hears of the first: it must not hand over another). */
static void smtpc_job_done(struct smtpc *c)
{
	struct smtpc_job *job = c->job;
	c->job = NULL;
	c->state = C_READY;
	if (c->next) {
		smtpc_tx_begin(c, c->next, smtpc_tx_total(c, c->next));
		c->next = NULL;
	}
	c->cbs.done(c, job, c->cbs.ctx);
}

static void smtpc_sink(void *arg, const char *p, size_t n)
{
	smtpc_conn_write(arg, p, n);
}

/* A body file in which no line begins with a dot is already what goes on
 * the wire: the kernel sends it from the page cache (sendfile), with no
 * read, scan or copy here. Not under TLS, where it must pass through
 * OpenSSL. Returns false to take the chunk by chunk way instead. */
static bool smtpc_body_file(struct smtpc *c)
{
	struct smtpc_job *job = c->job;
	if (smtpc_conn_tls_on(c->conn) || !job->src->file || c->seq != 0)
		return false;
	uint64_t size = 0;
	int fd = job->src->file(job, false, &size);
	if (fd < 0)
		return false;
	char last = '\n';
	if (size && pread(fd, &last, 1, (off_t)size - 1) != 1) {
		close(fd);
		return false;
	}
	if (!smtpc_conn_sendfile(c->conn, fd, size))
		return false;
	c->stuff.mid = last != '\n';
	c->stuff.cr = last == '\r';
	return true;
}

/* The end of the data: CRLF "." CRLF (RFC 5321 4.1.1.4). */
static void smtpc_body_end(struct smtpc *c)
{
	smtp_stuff_end(&c->stuff, smtpc_sink, c->conn);
	c->body_done = true;
	c->state = C_DOT;
	smtpc_pipeline_next(c);
}

/* The source's prefix, before anything of the body: dot-stuffed like
 * any line of it, so a body file can follow as it is. */
static void smtpc_prefix(struct smtpc *c)
{
	const struct smtpc_job *job = c->job;
	const char *p = job->src->prefix ? job->src->prefix(job) : NULL;
	c->prefix_sent = true;
	if (p && *p)
		smtp_stuff(&c->stuff, p, strlen(p), smtpc_sink, c->conn);
}

/* The source could not be read: the job fails (temporarily), and so does
 * the connection, which is in the middle of a message. */
static void smtpc_source_failed(struct smtpc *c)
{
	struct deliver_result r;
	smtpc_set_result(&r, DELIVER_TEMP, "4.3.0 cannot read the message from the spool");
	smtpc_job_fail(c, &r);
	c->cbs.fail(c, &r, c->cbs.ctx);
}

/* ---- BDAT, RFC 3030 2 ---- */

static void smtpc_bdat_close(struct smtpc *c)
{
	if (c->file_fd >= 0)
		close(c->file_fd);
	c->file_fd = -1;
}

/* One chunk's command; its octets follow at once. */
static void smtpc_bdat_cmd(struct smtpc *c, uint64_t size, bool last)
{
	char line[64];
	smtp_bdat_line(size, last, line, sizeof line);
	smtpc_conn_line(c->conn, line);
	c->bdat_sent++;
}

/* The last chunk has gone (its octets too): its reply is the message's.
 * The next job may follow at once only when every earlier chunk was
 * taken (a refusal still to come would call for RSET). */
static void smtpc_bdat_last(struct smtpc *c)
{
	c->body_done = true;
	c->state = C_DOT;
	smtpc_bdat_close(c);
	if (c->bdat_got + 1 == c->bdat_sent)
		smtpc_pipeline_next(c);
}

/* Fill c->chunk from the source to SMTPC_BDAT_CHUNK, then read one piece
 * ahead: none left means the chunk is the last. 0 or an errno. */
static int smtpc_bdat_fill(struct smtpc *c)
{
	while (!c->body_eof &&
	       (c->chunk.len - c->chunk_off < SMTPC_BDAT_CHUNK || !c->have_ahead)) {
		if (c->have_ahead) {
			buf_append(&c->chunk, c->ahead.data, c->ahead.len);
			c->have_ahead = false;
			continue;
		}
		int err = c->job->src->chunk(c->job, c->seq++, &c->ahead);
		if (err && err != ENOENT)
			return err;
		c->body_eof = err == ENOENT;
		c->have_ahead = !err;
	}
	return 0;
}

/* A chunk read from the source (the prefix in the first), at most
 * SMTPC_BDAT_MAX of a larger piece (a body held in memory is one): false
 * when the source failed (the job with it). */
static bool smtpc_bdat_chunk(struct smtpc *c)
{
	if (c->chunk_off == c->chunk.len) {
		buf_reset(&c->chunk);
		c->chunk_off = 0;
	}
	if (smtpc_bdat_fill(c)) {
		smtpc_source_failed(c);
		return false;
	}
	bool last;
	size_t n = (size_t)smtp_bdat_next(c->chunk.len, c->chunk_off, SMTPC_BDAT_MAX, &last);
	last = last && c->body_eof;
	smtpc_bdat_cmd(c, n, last);
	smtpc_conn_write(c->conn, c->chunk.data + c->chunk_off, n);
	c->chunk_off += n;
	if (last)
		smtpc_bdat_last(c);
	return true;
}

/* A chunk of the body file, sent by the kernel (the prefix before the
 * first range, in the same chunk). */
static bool smtpc_bdat_file_chunk(struct smtpc *c)
{
	bool last;
	uint64_t n = smtp_bdat_next(c->file_size, c->file_off, SMTPC_BDAT_MAX, &last);
	int fd = n ? dup(c->file_fd) : -1;
	if (n && fd < 0) {
		smtpc_source_failed(c);
		return false;
	}
	uint64_t off = c->file_off;
	c->file_off += n;
	smtpc_bdat_cmd(c, c->chunk.len + n, last);
	smtpc_conn_write(c->conn, c->chunk.data, c->chunk.len);
	buf_reset(&c->chunk);
	if (n && !smtpc_conn_sendfile_at(c->conn, fd, off, n)) {
		smtpc_source_failed(c);
		return false;
	}
	if (last)
		smtpc_bdat_last(c);
	return true;
}

/* Chunks while the output has room; without PIPELINING one at a time,
 * each after the previous one's reply (RFC 3030 2). */
static void smtpc_bdat_body(struct smtpc *c)
{
	while (c->state == C_BODY && smtpc_conn_pending(c->conn) < SMTPC_BODY_LOW &&
	       (c->ext.pipelining || c->bdat_got == c->bdat_sent)) {
		if (!(c->file_fd >= 0 ? smtpc_bdat_file_chunk(c) : smtpc_bdat_chunk(c)))
			return;
	}
}

/* Every RCPT answered: the body, when someone is to get it; the prefix
 * opens the first chunk; a body file goes without a copy when the
 * connection is plain. */
static void smtpc_bdat_start(struct smtpc *c)
{
	struct smtpc_job *job = c->job;
	if (c->mail_failed || c->naccepted == 0)
		return smtpc_tx_end_early(c);
	c->state = C_BODY;
	buf_reset(&c->chunk);
	c->chunk_off = 0;
	const char *p = job->src->prefix ? job->src->prefix(job) : NULL;
	if (p)
		buf_puts(&c->chunk, p);
	c->prefix_sent = true;
	if (!smtpc_conn_tls_on(c->conn) && job->src->file) {
		c->file_fd = job->src->file(job, true, &c->file_size);
		c->file_off = 0;
	}
	smtpc_bdat_body(c);
}

/* A chunk's reply. The first refusal is every accepted recipient's result
 * and no chunk follows (RFC 3030 2: the transaction has failed; those in
 * the pipe are answered too); the last chunk's success is theirs. When
 * every chunk sent has its reply the job is done, with RSET first when it
 * failed before its last chunk. */
static void smtpc_bdat_reply(struct smtpc *c)
{
	struct smtpc_job *job = c->job;
	c->bdat_got++;
	bool final = c->body_done && c->bdat_got == c->bdat_sent;
	if (c->reply->code / 100 != 2 && !c->bdat_failed) {
		c->bdat_failed = true;
		c->bdat_rset = !final;
		for (size_t k = 0; k < job->n; k++)
			if (c->accepted[k])
				smtpc_result(c, &job->res[k], final ? "BDAT LAST" : "BDAT");
		smtpc_bdat_close(c);
		c->state = C_DOT;
	} else if (final && !c->bdat_failed) {
		for (size_t k = 0; k < job->n; k++)
			if (c->accepted[k])
				smtpc_result(c, &job->res[k], "BDAT LAST");
	}
	if (c->state == C_BODY)
		return smtpc_bdat_body(c);
	if (c->bdat_got < c->bdat_sent)
		return;
	if (c->bdat_rset)
		return smtpc_tx_end_early(c);
	smtpc_job_done(c);
}

/* Push body chunks until the output holds enough; then the final dot. */
static void smtpc_body(struct smtpc *c)
{
	if (smtpc_bdat(c))
		return smtpc_bdat_body(c);
	if (!c->prefix_sent)
		smtpc_prefix(c);
	if (!c->body_done && smtpc_body_file(c))
		return smtpc_body_end(c);
	while (!c->body_done && smtpc_conn_pending(c->conn) < SMTPC_BODY_LOW) {
		int err = c->job->src->chunk(c->job, c->seq++, &c->chunk);
		if (err == ENOENT) {
			smtpc_body_end(c);
		} else if (err) {
			return smtpc_source_failed(c);
		} else {
			smtp_stuff(&c->stuff, c->chunk.data, c->chunk.len, smtpc_sink, c->conn);
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
	int code = c->reply->code;
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
		smtpc_conn_write(c->conn, ".\r\n", 3);
	} else {
		for (size_t k = 0; k < job->n; k++)
			if (c->accepted[k])
				smtpc_result(c, &job->res[k], "DATA");
		smtpc_tx_end_early(c);
	}
}

static void smtpc_tx_step(struct smtpc *c)
{
	size_t total = smtpc_tx_total(c, c->job);
	smtpc_tx_reply(c, c->got++);
	if (c->state != C_TX)
		return;
	if (smtpc_bdat(c) && c->got == total)
		return smtpc_bdat_start(c);
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
		if (c->accepted[j] && (!c->t->lmtp || j == k))
			smtpc_result(c, &job->res[j], "end of DATA");
	if (!c->t->lmtp || c->dot_replies == c->naccepted)
		smtpc_job_done(c);
}

/* ---- session set-up ---- */

static void smtpc_ready(struct smtpc *c)
{
	c->state = C_READY;
	c->cbs.ready(c, c->cbs.ctx);
}

static void smtpc_hello(struct smtpc *c)
{
	c->state = C_EHLO;
	smtpc_conn_printf(c->conn, "%s %s", c->t->lmtp ? "LHLO" : "EHLO", c->t->helo);
}

/* RFC 4954: PLAIN when offered, else LOGIN; never in clear text. */
static void smtpc_auth(struct smtpc *c)
{
	if (!smtpc_conn_tls_on(c->conn))
		return smtpc_address_failed(c, "4.7.0 no TLS: not sending the password in clear");
	unsigned mech = c->ext.auth_mechs & SMTP_AUTH_PLAIN ? SMTP_AUTH_PLAIN :
	                c->ext.auth_mechs & SMTP_AUTH_LOGIN ? SMTP_AUTH_LOGIN : 0;
	if (!mech)
		return smtpc_address_failed(c, "4.7.0 the server offers no AUTH PLAIN or LOGIN");
	c->state = C_AUTH;
	smtpc_conn_auth(c->conn, mech, c->t->auth_user, c->t->auth_pass);
}

/* Under dane and dane-only: does the host have secure TLSA records? */
static bool smtpc_dane_governs(const struct smtpc *c)
{
	if (c->t->tls != SMTPC_TLS_DANE && c->t->tls != SMTPC_TLS_DANE_ONLY)
		return false;
	const struct tlsa_host *h = tlsa_set_find(c->t->dane, smtpc_conn_name(c->conn));
	return h && (h->state == TLSA_USABLE || h->state == TLSA_UNUSABLE);
}

/* The MTA-STS mode for the current address: the destination's, unless
 * DANE governs the host (RFC 8461 2: DANE takes precedence). */
static enum mtasts_mode smtpc_sts(const struct smtpc *c)
{
	return c->t->sts_ctx && !smtpc_dane_governs(c) ? c->t->sts : MTASTS_NONE;
}

/* The level for the current address: smtp_tls, or under dane and
 * dane-only what its host's TLSA records say (RFC 7672 2.2): DANE
 * authentication with usable records (SMTPC_TLS_DANE here), TLS without
 * authentication when none is usable, else may's fallback (dane-only
 * never gets here without usable records: dest.c leaves such hosts out);
 * and under an enforce MTA-STS policy at least verify. */
static enum smtpc_tls smtpc_level(const struct smtpc *c)
{
	enum smtpc_tls tls = c->t->tls;
	if (tls == SMTPC_TLS_DANE || tls == SMTPC_TLS_DANE_ONLY) {
		const struct tlsa_host *h = tlsa_set_find(c->t->dane, smtpc_conn_name(c->conn));
		if (h && h->state == TLSA_USABLE)
			return SMTPC_TLS_DANE;
		if (h && h->state == TLSA_UNUSABLE)
			return SMTPC_TLS_ENCRYPT;
		tls = tls == SMTPC_TLS_DANE ? SMTPC_TLS_MAY : SMTPC_TLS_DANE_ONLY;
	}
	/* RFC 8461 4.2: enforce requires TLS with a certificate valid for the host */
	if (smtpc_sts(c) == MTASTS_ENFORCE && tls != SMTPC_TLS_NONE && tls != SMTPC_TLS_DANE_ONLY)
		return SMTPC_TLS_VERIFY;
	return tls;
}

/* The context for the current address: the verifying one under MTA-STS. */
static SSL_CTX *smtpc_ctx(const struct smtpc *c)
{
	return smtpc_sts(c) != MTASTS_NONE ? c->t->sts_ctx : c->t->ssl_ctx;
}

/* TLS-RPT (RFC 8460): the current address's outcome to the owner. */
static void smtpc_tls_report(const struct smtpc *c, enum tlsrpt_result r, const char *detail)
{
	enum tlsrpt_policy p = smtpc_dane_governs(c) ? TLSRPT_POLICY_TLSA :
	                       smtpc_sts(c) != MTASTS_NONE ? TLSRPT_POLICY_STS : TLSRPT_POLICY_NONE;
	if (!c->cbs.tls_result || (p == TLSRPT_POLICY_NONE && r != TLSRPT_SUCCESS))
		return;   /* nothing was required: nothing failed */
	char ip[INET6_ADDRSTRLEN], local[INET6_ADDRSTRLEN];
	util_ip_text(&c->t->addr[smtpc_conn_index(c->conn)], ip, sizeof ip);
	smtpc_conn_local(c->conn, local, sizeof local);
	struct smtpc_tls_result res = { p, r, smtpc_conn_name(c->conn), ip, detail, local };
	c->cbs.tls_result((struct smtpc *)c, &res, c->cbs.ctx);
}

/* A certificate that did not verify, as RFC 8460 4.3.2 names it. */
static enum tlsrpt_result smtpc_cert_result(const struct smtpc_tls_facts *f)
{
	return !f->name_ok ? TLSRPT_CERT_HOST_MISMATCH :
	       f->days_left < 0 ? TLSRPT_CERT_EXPIRED : TLSRPT_CERT_NOT_TRUSTED;
}

/* RFC 8461 5: a testing policy's failure is logged (and delivery goes on). */
static void smtpc_sts_testing(const struct smtpc *c, const char *what)
{
	if (smtpc_sts(c) == MTASTS_TESTING)
		log_warn("mta-sts: %s: %s: would fail under enforce: %s", c->t->sts_policy,
		         smtpc_conn_peer(c->conn), what);
}

/* Levels whose handshake succeeds only with the peer authenticated: the
 * chain and name (verify), a TLSA record (DANE, RFC 7672 3). An MTA-STS
 * policy in enforce mode (RFC 8461 4.2) is here too: smtpc_level raises
 * it to verify. */
static bool smtpc_level_verifies(enum smtpc_tls level)
{
	return level == SMTPC_TLS_VERIFY || level == SMTPC_TLS_DANE;
}

bool smtpc_tls_verified(const struct smtpc *c)
{
	return c->verified && smtpc_conn_tls_on(c->conn);
}

const char *smtpc_requiretls_lacks(const struct smtpc *c)
{
	if (!smtpc_tls_verified(c))
		return "5.7.10 %s: REQUIRETLS: no verified TLS (RFC 8689 4.2.1)";
	if (!c->ext.requiretls)
		return "5.7.30 %s: REQUIRETLS support required (RFC 8689 4.2.1)";
	return NULL;
}

/* TLS is settled (on, or not to be): a host that a REQUIRETLS target
 * cannot use is passed over for the next MX (RFC 8689 4.2.1); else AUTH,
 * or ready. */
static void smtpc_secured(struct smtpc *c)
{
	const char *why = c->t->requiretls ? smtpc_requiretls_lacks(c) : NULL;
	if (why)
		return smtpc_address_failed(c, why, smtpc_conn_name(c->conn));
	c->t->auth_user ? smtpc_auth(c) : smtpc_ready(c);
}

static void smtpc_after_ehlo(struct smtpc *c)
{
	bool tls = smtpc_conn_tls_on(c->conn);
	enum smtpc_tls level = smtpc_level(c);
	bool want_tls = smtpc_ctx(c) && level != SMTPC_TLS_NONE && !tls && !c->plain_again;
	if (!tls && level == SMTPC_TLS_DANE_ONLY) {
		smtpc_address_failed(c, "4.7.5 no usable DANE TLSA records for %s (dane-only)",
		                     smtpc_conn_name(c->conn));
	} else if (want_tls && c->ext.starttls) {
		c->state = C_STARTTLS;
		smtpc_conn_line(c->conn, "STARTTLS");
	} else if (!tls && level != SMTPC_TLS_NONE && level != SMTPC_TLS_MAY) {
		smtpc_tls_report(c, TLSRPT_STARTTLS_NOT_SUPPORTED, "STARTTLS not offered");
		smtpc_address_failed(c, "4.7.5 STARTTLS required by policy%s%s%s but not offered",
		                     level == SMTPC_TLS_DANE ? " (DANE TLSA records)" : "",
		                     smtpc_sts(c) == MTASTS_ENFORCE ? " MTA-STS " : "",
		                     smtpc_sts(c) == MTASTS_ENFORCE ? c->t->sts_policy : "");
	} else {
		if (!tls && !c->plain_again)
			smtpc_tls_report(c, TLSRPT_STARTTLS_NOT_SUPPORTED, "STARTTLS not offered");
		if (!tls)
			smtpc_sts_testing(c, c->plain_again ? "TLS failed" : "no STARTTLS");
		smtpc_secured(c);
	}
}

static void smtpc_start_tls(struct smtpc *c)
{
	const char *why;
	enum smtpc_tls level = smtpc_level(c);
	struct tls_peer peer = { smtpc_conn_name(c->conn),
	                         level == SMTPC_TLS_VERIFY || smtpc_sts(c) != MTASTS_NONE, NULL };
	if (level == SMTPC_TLS_DANE)
		peer.dane = tlsa_set_find(c->t->dane, peer.name);
	if (smtpc_conn_starttls_peer(c->conn, smtpc_ctx(c), &peer, &why) < 0) {
		if (smtpc_plain_again(c, why))
			return;
		return smtpc_address_failed(c, "4.7.5 %s", why);
	}
	c->state = C_HANDSHAKE;
}

/* The handshake is done: under verify the chain and the name must hold,
 * under DANE a TLSA record must match (RFC 7672 3; else the host is
 * given up, never used in clear text); then RFC 3207 4.2: forget
 * everything, greet again. */
static void smtpc_tls_up(struct smtpc_conn *conn, void *arg)
{
	struct smtpc *c = arg;
	struct smtpc_tls_facts f;
	char dane[128] = "";
	smtpc_conn_tls_facts(conn, smtpc_conn_name(conn), &f);
	enum smtpc_tls level = smtpc_level(c);
	enum mtasts_mode sts = smtpc_sts(c);
	if (sts != MTASTS_NONE && !f.chain_ok)
		smtpc_tls_report(c, smtpc_cert_result(&f), f.verify_error);
	if (sts == MTASTS_ENFORCE && !f.chain_ok)   /* RFC 8461 4.2 */
		return smtpc_address_failed(c, "4.7.5 MTA-STS policy %s: certificate of %s not "
		                            "valid: %s", c->t->sts_policy, smtpc_conn_name(conn),
		                            f.verify_error);
	if (sts == MTASTS_TESTING && !f.chain_ok) {
		char what[200];
		snprintf(what, sizeof what, "certificate not valid: %s", f.verify_error);
		smtpc_sts_testing(c, what);
	}
	if (level == SMTPC_TLS_VERIFY && !f.chain_ok)
		return smtpc_address_failed(c, "4.7.5 certificate verification failed: %s",
		                            f.verify_error);
	bool dane_ok = level != SMTPC_TLS_DANE || smtpc_conn_dane_match(conn, dane, sizeof dane);
	if (!dane_ok) {
		smtpc_tls_report(c, TLSRPT_TLSA_INVALID, dane);
		return smtpc_address_failed(c, "4.7.5 DANE authentication failed for %s: %s",
		                            smtpc_conn_name(conn), dane);
	}
	if (f.chain_ok || sts == MTASTS_NONE)
		smtpc_tls_report(c, TLSRPT_SUCCESS, "");
	snprintf(c->tls_note, sizeof c->tls_note, "%s%s%s%s%s", f.version, *dane ? " dane=" : "", dane,
	         sts != MTASTS_NONE ? " mta-sts=" : "", sts != MTASTS_NONE ? mtasts_mode_name(sts) : "");
	log_info("smtp %s: TLS %s %s%s%s", smtpc_conn_peer(conn), f.version, f.cipher,
	         *dane ? " dane=" : "", dane);
	c->verified = smtpc_level_verifies(level);
	memset(&c->ext, 0, sizeof c->ext);
	smtpc_hello(c);
}

static void smtpc_greeting(struct smtpc *c)
{
	if (c->reply->code != 220)
		return smtpc_address_failed(c, "4.4.1 greeting %d %s", c->reply->code, smtpc_text(c));
	smtpc_hello(c);
}

static void smtpc_ehlo_reply(struct smtpc *c)
{
	if (c->reply->code == 250) {
		if (c->state == C_EHLO)
			smtp_ehlo_parse(c->reply, &c->ext);
		return smtpc_after_ehlo(c);
	}
	if (c->state == C_EHLO && !c->t->lmtp && c->reply->code >= 500 &&
	    !smtpc_conn_tls_on(c->conn)) {
		c->state = C_HELO;   /* RFC 5321 3.2: fall back to HELO */
		smtpc_conn_printf(c->conn, "HELO %s", c->t->helo);
		return;
	}
	smtpc_address_failed(c, "4.4.1 %s refused: %d %s", c->state == C_HELO ? "HELO" : "EHLO",
	                     c->reply->code, smtpc_text(c));
}

static void smtpc_starttls_reply(struct smtpc *c)
{
	if (c->reply->code == 220)
		smtpc_start_tls(c);
	else if (smtpc_level(c) == SMTPC_TLS_MAY) {
		smtpc_sts_testing(c, "STARTTLS refused");
		smtpc_secured(c);
	}
	else
		smtpc_address_failed(c, "4.7.5 STARTTLS refused: %d", c->reply->code);
}

static void smtpc_auth_reply(struct smtpc *c)
{
	if (c->reply->code == 235)
		return smtpc_ready(c);
	smtpc_address_failed(c, "4.7.0 authentication failed: %d %s", c->reply->code,
	                     smtpc_text(c));
}

/* ---- the connection's callbacks ---- */

static void smtpc_on_reply(struct smtpc_conn *conn, const struct smtp_reply *r, void *arg)
{
	(void)conn;
	struct smtpc *c = arg;
	c->reply = r;
	c->text_ok = false;
	switch (c->state) {
	case C_GREETING: smtpc_greeting(c); break;
	case C_EHLO: case C_HELO: smtpc_ehlo_reply(c); break;
	case C_STARTTLS: smtpc_starttls_reply(c); break;
	case C_AUTH: smtpc_auth_reply(c); break;
	case C_TX: smtpc_tx_step(c); break;
	case C_DOT: smtpc_bdat(c) ? smtpc_bdat_reply(c) : smtpc_dot_reply(c); break;
	case C_RSET:
		c->state = C_TX;
		smtpc_tx_send(c);
		break;
	case C_BODY:
		if (smtpc_bdat(c))   /* a chunk's, pipelined */
			smtpc_bdat_reply(c);
		break;
	case C_QUIT: case C_READY: case C_CONNECT: case C_HANDSHAKE: case C_BROKEN:
		break;  /* unsolicited: ignore (a 421 before close shows in the log) */
	}
	c->reply = NULL;
}

static void smtpc_on_connected(struct smtpc_conn *conn, void *arg)
{
	(void)conn;
	struct smtpc *c = arg;
	c->state = C_GREETING;
	c->tls_note[0] = '\0';
	c->verified = false;
}

/* Before the session is up (and with no job) the next address; after,
 * the connection broke. */
static void smtpc_on_down(struct smtpc_conn *conn, enum smtpc_down why, const char *text,
                          void *arg)
{
	(void)conn;
	struct smtpc *c = arg;
	if (why == SMTPC_DOWN_PROTOCOL)
		return smtpc_broken(c, "protocol error: a reply line that is not SMTP");
	if (c->state == C_HANDSHAKE)
		smtpc_tls_report(c, TLSRPT_VALIDATION_FAILURE, text);
	if (!c->job && smtpc_plain_again(c, text))
		return;
	if (c->state <= C_HANDSHAKE && !c->job)
		return smtpc_address_failed(c, "4.4.1 %s", text);
	smtpc_broken(c, text);
}

/* The output has left: more of the body; true when some was queued (a
 * BDAT chunk may have to wait for the previous one's reply). */
static bool smtpc_on_sent(struct smtpc_conn *conn, void *arg)
{
	(void)conn;
	struct smtpc *c = arg;
	if (c->state != C_BODY)
		return false;
	size_t before = smtpc_conn_pending(c->conn);
	smtpc_body(c);
	return smtpc_conn_pending(c->conn) > before;
}

static void smtpc_on_trace(void *arg, char dir, const char *line)
{
	struct smtpc *c = arg;
	log_debug("smtp %s: %c %s", smtpc_conn_name(c->conn), dir, line);
}

/* ---- the owner's calls ---- */

struct smtpc *smtpc_open(struct event_base *base, const struct smtpc_target *t,
                         const struct smtpc_cbs *cbs)
{
	static const struct smtpc_conn_cbs link = {
		smtpc_on_connected, smtpc_on_reply, smtpc_tls_up, smtpc_on_down, smtpc_on_sent,
		smtpc_on_trace, smtpc_free, NULL,
	};
	struct smtpc *c = util_xcalloc(1, sizeof *c);
	struct smtpc_conn_cbs l = link;
	l.ctx = c;
	c->cbs = *cbs;
	c->state = C_CONNECT;
	c->file_fd = -1;
	c->conn = smtpc_conn_open(base, t, &l);
	c->t = smtpc_conn_target(c->conn);
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
	if (c->state == C_READY) {
		c->state = C_QUIT;
		smtpc_conn_line(c->conn, "QUIT");
	}
	smtpc_conn_hangup(c->conn);
}

/* Never frees under the caller's feet: the struct goes from the loop,
 * with the connection. */
void smtpc_close(struct smtpc *c)
{
	if (!c)
		return;
	smtpc_hangup(c);
	smtpc_conn_close(c->conn);
}

void smtpc_destroy(struct smtpc *c)
{
	if (c)
		smtpc_conn_destroy(c->conn);
}

bool smtpc_usable(const struct smtpc *c)
{
	return c->state == C_READY && !c->closing;
}

/* The shared defaults of tls_ctx_new (TLS 1.2 minimum, no compression or
 * renegotiation). Opportunistic TLS (may, and dane, which falls back to
 * it) keeps OpenSSL's wider default cipher list: against an old MX, some
 * encryption beats none; encrypt and verify keep the strict
 * forward-secret list. dane and dane-only enable OpenSSL's DANE. */
SSL_CTX *smtpc_ssl_ctx(enum smtpc_tls tls, const char *ca_file)
{
	if (tls == SMTPC_TLS_NONE)
		return NULL;
	SSL_CTX *ctx = tls_ctx_new(TLS_CLIENT);
	if (!ctx)
		return NULL;
	if (tls == SMTPC_TLS_MAY || tls == SMTPC_TLS_DANE || tls == SMTPC_TLS_DANE_ONLY)
		SSL_CTX_set_cipher_list(ctx, "DEFAULT");
	if ((tls == SMTPC_TLS_DANE || tls == SMTPC_TLS_DANE_ONLY) && !tls_ctx_dane(ctx)) {
		tls_ctx_free(ctx);
		return NULL;
	}
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

/* MTA-STS (RFC 8461 4.2): the WebPKI's CAs (ca_file, else the system's)
 * and the host's name, checked after the handshake (SSL_VERIFY_NONE, so
 * that a testing policy can still deliver and log what failed; enforce
 * gives the host up). */
SSL_CTX *smtpc_sts_ctx(const char *ca_file)
{
	SSL_CTX *ctx = tls_ctx_new(TLS_CLIENT);
	if (!ctx)
		return NULL;
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	int ok = ca_file && *ca_file ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL)
	                             : SSL_CTX_set_default_verify_paths(ctx);
	if (!ok) {
		log_error("mta_sts: cannot load %s", ca_file && *ca_file ? ca_file : "the system CAs");
		tls_ctx_free(ctx);
		return NULL;
	}
	return ctx;
}
