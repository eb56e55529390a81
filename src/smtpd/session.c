/* session: one SMTP connection's lifetime, framing, replies and policy
 * phase (see session.h; the commands are in cmd.c, AUTH in sasl.c).
 *
 * Input is framed before it is parsed (DESIGN.md, after Postfix smtpd.c and
 * qmail's straynewline): a command line is at most SESSION_LINE_MAX octets
 * and ends in CRLF; a bare CR or LF is refused. Replies are buffered and
 * leave in order, which is all PIPELINING (RFC 2920) asks of a server.
 * A command runs in three steps: its check, the policy phase (session_ask:
 * the answer may come later, and the input waits for it), its proceed.
 */
#include "smtpd/session.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "lib/buf.h"
#include "lib/esc.h"
#include "lib/event.h"
#include "lib/log.h"
#include "lib/util.h"
#include "net/closer.h"
#include "net/tls.h"
#include "net/wire.h"
#include "smtpd/data.h"
#include "smtpd/faults.h"
#include "smtpd/parse.h"
#include "smtpd/proxy.h"
#include "smtpd/session_priv.h"

#define SESSION_LINE_MAX 2048            /* octets before CRLF */
#define SESSION_INPUT_HIGH (256 * 1024)  /* stop reading above this */
#define SESSION_READ_MAX (128 * 1024)    /* per read() of a message (session_read_more) */
#define SESSION_OUTPUT_HIGH (64 * 1024)  /* stop reading while replies pile up */

static void session_process(struct session *s);
static void session_read_cb(struct bufferevent *bev, void *arg);
static void session_event_cb(struct bufferevent *bev, short what, void *arg);
static void session_flush(struct session *s);
static void session_unbusy(struct session *s);
static void session_shutdown(struct session *s);

/* ---- replies ---- */

/* One reply line, CRLF-ended in b (freed here): to the client, to the
 * trace, and out now unless a frame is running. */
static void session_put_line(struct session *s, struct buf *b)
{
	if (s->bev && s->direct)
		bufferevent_write(s->bev, b->data, b->len);
	else if (s->bev)
		buf_append(&s->cork, b->data, b->len);
	if (s->rec)
		transcript_out(s, b->data, b->len - 2);
	if (ev_wanted(EK_OUT, LOG_DEBUG)) {
		struct ev e;
		ev_init(&e, EK_OUT, LOG_DEBUG, s->id, NULL);
		ev_add(&e, "line", "%.*s", (int)b->len - 2, b->data);
		ev_emit(&e);
	}
	buf_free(b);
	if (!s->busy)
		session_flush(s);
}

/* Append one reply line from the table; more: a '-' continuation line. */
static void session_vreply(struct session *s, enum esc_id id, bool more, va_list ap)
{
	const struct esc_reply *r = esc_get(id);
	struct buf b = BUF_INIT;
	if (r->code >= 400 && r->code != 421 && !s->uncounted)
		s->client.errors++;
	char code[4] = { (char)('0' + r->code / 100), (char)('0' + r->code / 10 % 10),
	                 (char)('0' + r->code % 10), more ? '-' : ' ' };
	buf_reserve(&b, 128);
	buf_append(&b, code, sizeof code);
	if (r->esc && (s->esmtp || !s->greeted)) {
		buf_puts(&b, r->esc);
		buf_putc(&b, ' ');
	}
	buf_vprintf(&b, r->text, ap);
	buf_puts(&b, "\r\n");
	session_put_line(s, &b);
}

void session_reply(struct session *s, enum esc_id id, ...)
{
	va_list ap;
	va_start(ap, id);
	session_vreply(s, id, false, ap);
	va_end(ap);
}

void session_reply_more(struct session *s, enum esc_id id, ...)
{
	va_list ap;
	va_start(ap, id);
	session_vreply(s, id, true, ap);
	va_end(ap);
}

void session_reply_text(struct session *s, const char *text, size_t n, bool more)
{
	if (n >= 4 && text[0] >= '4' && !s->uncounted && strncmp(text, "421", 3))
		s->client.errors++;
	struct buf b = BUF_INIT;
	buf_append(&b, text, n);
	if (n >= 4)
		b.data[3] = more ? '-' : ' ';
	buf_puts(&b, "\r\n");
	session_put_line(s, &b);
}

bool session_no(struct session *s, enum esc_id id, ...)
{
	va_list ap;
	va_start(ap, id);
	session_vreply(s, id, false, ap);
	va_end(ap);
	return false;
}

/* ---- events ---- */

void session_event(struct session *s, struct ev *e, enum ev_kind k, enum log_level l,
                   const char *qid)
{
	ev_init(e, k, l, s->id, qid);
	ev_add(e, "client", "[%s]", s->ip);
}

/* A session's event with one more field: a reason or a problem. */
static void session_say(struct session *s, enum ev_kind k, const char *key, const char *val)
{
	struct ev e;
	session_event(s, &e, k, LOG_INFO, NULL);
	if (key)
		ev_add(&e, key, "%s", val);
	ev_emit(&e);
}

/* ---- lifetime ---- */

static void session_tx_free(struct session *s)
{
	struct tx *tx = s->tx;
	if (!tx)
		return;
	if (s->rec)
		transcript_tx_end(s);
	if (tx->msg)
		spool_msg_abort(tx->msg);
	milters_tx_end(s);
	msgin_free(&tx->in);
	verifier_free(tx->verifier);
	authres_free(tx->authres);
	spool_rcpts_free(tx->rcpt, tx->nrcpt);
	free(tx);
	s->tx = NULL;
}

static void session_unlink(struct session *s)
{
	struct server *srv = s->srv;
	if (s->prev)
		s->prev->next = s->next;
	else if (srv->sessions == s)
		srv->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	s->next = s->prev = NULL;
	srv->nsessions--;
	if (srv->shutting_down && srv->nsessions == 0)
		closer_drain(srv->closer, CLOSER_LINGER);
}

/* The one place a session's memory goes: once it is closed and nothing
 * (a spool or policy callback, a frame of its own) still holds it. */
static void session_release(struct session *s)
{
	if (s->dead && s->pending == 0 && s->busy == 0) {
		buf_free(&s->cork);
		settings_unref(s->set);
		free(s);
	}
}

/* Close now: the one place a session lets go of its connection. The
 * bufferevents, the SSL and the socket go to the server's closer (TLS
 * close_notify, the last bytes sent, then freed from the loop, never
 * under a libevent callback still running for them). */
static void session_close(struct session *s, const char *why)
{
	if (s->dead)
		return;
	session_say(s, EK_DISCONNECT, "reason", why);
	session_tx_free(s);
	if (s->rec)
		transcript_end(s, why);
	milters_free(s);
	if (s->faults)
		faults_close(s);
	closer_close(s->srv->closer, s->bev);
	s->bev = NULL;
	if (s->greet_timer)
		event_free(s->greet_timer);
	s->greet_timer = NULL;
	policy_disconnect(s->srv->policy, &s->client);
	explicit_bzero(s->login_user, sizeof s->login_user);
	explicit_bzero(&s->args, sizeof s->args);
	s->dead = true;
	session_unlink(s);
	session_release(s);
}

/* ATRN (RFC 2645 4): the connection goes on as the delivery engine's, TLS
 * and all; the session ends here without closing it. */
void session_hand_over(struct session *s, struct closer_taken *out)
{
	session_flush(s);   /* the last reply goes with the connection */
	closer_take(s->bev, out);
	s->bev = NULL;
	session_close(s, "handed over to delivery (ATRN: the roles reverse)");
}

/* Replies not yet in the kernel (the TLS layer's and the socket's). */
bool session_output_pending(struct session *s)
{
	if (!s->bev)
		return false;
	session_flush(s);
	struct bufferevent *under = bufferevent_get_underlying(s->bev);
	return evbuffer_get_length(bufferevent_get_output(s->bev)) > 0 ||
	       (under && evbuffer_get_length(bufferevent_get_output(under)) > 0);
}

/* All replies have left (for TLS: all were encrypted into the socket's
 * output): close if we were closing, or read on if we had stopped because
 * the client was not reading. */
static void session_write_cb(struct bufferevent *bev, void *arg)
{
	struct session *s = arg;
	(void)bev;
	if (s->direct)
		wire_direct(s->bev);  /* libevent wrote the rest: direct again */
	if (s->state == ST_CLOSING) {
		session_close(s, "closed by us");
	} else if (s->throttled) {
		s->throttled = false;
		if (!s->paused)
			bufferevent_enable(s->bev, EV_READ);
		session_process(s);
	}
}

/* Send the replies now: a plain session's to the socket (wire.h), a TLS
 * session's to OpenSSL. Replies made while input is processed go out
 * together at its end: a pipelined group of commands, or EHLO's lines,
 * gets one write (and under TLS one record: OpenSSL makes a record, with
 * its cost, of every write it is given). */
static void session_flush(struct session *s)
{
	if (!s->bev)
		return;
	if (s->direct) {
		wire_flush(s->bev);
	} else if (s->cork.len) {
		bufferevent_write(s->bev, s->cork.data, s->cork.len);
		s->cork.len = 0;
	}
}

void session_write_raw(struct session *s, const void *p, size_t n)
{
	session_flush(s);
	bufferevent_write(s->bev, p, n);
}

/* Before TLS goes on: what is buffered goes first, then libevent writes. */
static void session_direct_off(struct session *s)
{
	if (s->direct)
		wire_indirect(s->bev);
	s->direct = false;
}

static bool session_output_full(struct session *s)
{
	if (evbuffer_get_length(bufferevent_get_output(s->bev)) + s->cork.len <= SESSION_OUTPUT_HIGH)
		return false;
	session_flush(s);
	return evbuffer_get_length(bufferevent_get_output(s->bev)) > SESSION_OUTPUT_HIGH;
}

/* Close once the replies written so far have left. */
void session_close_after_flush(struct session *s)
{
	s->state = ST_CLOSING;
	bufferevent_disable(s->bev, EV_READ);
	session_flush(s);
	if (evbuffer_get_length(bufferevent_get_output(s->bev)) == 0)
		session_write_cb(s->bev, s);
}

void session_set_timeout(struct session *s, unsigned secs)
{
	struct timeval tv = { (time_t)secs, 0 };
	bufferevent_set_timeouts(s->bev, &tv, &tv);
}

/* Callbacks, read limits and timeouts of the session's bufferevent (the
 * socket one, then the TLS one over it). */
static void session_bev_setup(struct session *s)
{
	bufferevent_setcb(s->bev, session_read_cb, session_write_cb, session_event_cb, s);
	bufferevent_set_max_single_read(s->bev, SESSION_READ_MAX);
	bufferevent_setwatermark(s->bev, EV_READ, 0, SESSION_INPUT_HIGH);
	session_set_timeout(s, s->conf->command_timeout);
	bufferevent_enable(s->bev, EV_READ);
}

/* Put TLS on (smtps at once, or after STARTTLS's 220): what was buffered
 * for the socket leaves first, then OpenSSL writes. False when the
 * session was closed. */
bool session_tls_on(struct session *s)
{
	session_flush(s);   /* the 220 in clear, before OpenSSL writes */
	session_direct_off(s);
	struct bufferevent *tls = tls_wrap(s->srv->base, s->bev, s->set->tls, NULL);
	if (!tls) {
		session_close(s, "cannot start TLS");
		return false;
	}
	s->bev = tls;
	s->client.tls = true;
	session_bev_setup(s);
	bufferevent_enable(s->bev, EV_WRITE);
	return true;
}

static void session_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct session *s = arg;
	(void)bev;
	if (what & BEV_EVENT_TIMEOUT) {
		/* RFC 5321 4.5.3.2: the server may close after a timeout. */
		session_say(s, EK_TIMEOUT, NULL, NULL);
		session_reply(s, R_TIMEOUT, s->conf->hostname);
		bufferevent_enable(s->bev, EV_WRITE);
		session_close_after_flush(s);
		return;
	}
	if (what & BEV_EVENT_CONNECTED && s->client.tls) {
		char desc[128];
		tls_describe(s->bev, desc, sizeof desc);
		struct ev e;
		session_event(s, &e, EK_TLS, LOG_INFO, NULL);
		ev_flag(&e, "established");
		ev_add(&e, "version", "%s", tls_version(s->bev));
		ev_add(&e, "cipher", "%s", desc);
		ev_emit(&e);
		if (s->rec)
			transcript_tls(s);
		return;
	}
	if (what & BEV_EVENT_ERROR && s->client.tls) {
		char err[256];
		tls_error(s->bev, err, sizeof err);
		session_close(s, err);
	} else if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		session_close(s, what & BEV_EVENT_EOF ? "client closed" : strerror(errno));
	}
}

bool session_odmr(const struct session *s)
{
	return (s->client.modes & CONF_LISTEN_ODMR) != 0;
}

/* ---- the transaction ---- */

void session_tx_begin(struct session *s)
{
	s->tx = util_xcalloc(1, sizeof *s->tx);
	util_qid(s->tx->qid);
}

void session_reset(struct session *s)
{
	session_tx_free(s);
	if (s->bev && (s->state == ST_DATA || s->state == ST_BDAT))
		session_set_timeout(s, s->conf->command_timeout);
	if (s->bev && s->paused)
		bufferevent_enable(s->bev, EV_READ);
	s->paused = false;
	s->state = ST_CMD;
}

/* ---- the policy phase ---- */

static void session_answered(void *ctx, struct policy_answer *a)
{
	struct session *s = ctx;
	s->pending--;
	s->asking = false;
	if (s->dead)
		return session_release(s);
	s->busy++;
	s->proceed(s, a);
	s->uncounted = false;
	if (!s->in_ask && !s->dead)
		session_process(s);   /* came later: the input waited for it */
	session_unbusy(s);
}

void session_ask(struct session *s, const struct policy_query *q, session_proceed_fn *fn)
{
	if (s->faults && faults_ask(s, q, fn))
		return;
	session_ask_policy(s, q, fn);
}

void session_answer_now(struct session *s, session_proceed_fn *fn, const struct policy_answer *a)
{
	s->busy++;       /* the answer may close the session */
	fn(s, a);
	session_unbusy(s);
}

void session_ask_policy(struct session *s, const struct policy_query *q, session_proceed_fn *fn)
{
	s->asking = true;
	s->proceed = fn;
	s->pending++;
	s->busy++;       /* an answer at once may close the session */
	s->in_ask = true;
	policy_ask(s->srv->policy, q, session_answered, s);
	s->in_ask = false;
	session_unbusy(s);
}

void session_wait(struct session *s)
{
	s->asking = true;
	s->pending++;
}

bool session_wait_over(struct session *s)
{
	s->pending--;
	s->asking = false;
	if (s->dead) {
		session_release(s);
		return false;
	}
	s->busy++;
	return true;
}

void session_go_on(struct session *s)
{
	if (!s->dead)
		session_process(s);   /* the input waited for the answer */
	session_unbusy(s);
}

void session_query(struct session *s, struct policy_query *q, enum policy_stage stage)
{
	memset(q, 0, sizeof *q);
	q->stage = stage;
	q->client = &s->client;
	q->addr = &s->args.addr;
	q->rcpts = s->tx ? s->tx->rcpt_cmds : 0;
	q->sender = s->tx ? s->tx->sender : NULL;
	q->user = s->args.user;
	q->pass = s->args.pass;
}

void session_refusal(struct session *s, const struct policy_answer *a)
{
	if (a->text)
		session_reply_text(s, a->text, strlen(a->text), false);
	else
		session_reply(s, a->reply, a->arg[0], a->arg[1]);
	if (a->close)
		session_close_after_flush(s);
}

/* ---- dispatch ---- */

/* After max_errors error replies the client is broken or probing. */
static void session_check_errors(struct session *s)
{
	if (s->dead || s->state == ST_CLOSING || s->client.errors < s->conf->max_errors)
		return;
	struct ev e;
	session_event(s, &e, EK_PROTOCOL, LOG_INFO, NULL);
	ev_add(&e, "problem", "too many errors (%u): closing", s->client.errors);
	ev_emit(&e);
	session_reply(s, R_TOO_MANY_ERRORS, s->conf->hostname);
	session_close_after_flush(s);
}

/* The command table row's flags, its check, the policy phase, its
 * proceed. Errors of a command without CMD_ERRORS do not count. */
static void session_run(struct session *s, const struct cmd *c, const char *args)
{
	enum esc_id gate = policy_gate(s->srv->policy, &s->client, c->flags);
	s->cmd = c;
	s->uncounted = !(c->flags & CMD_ERRORS);
	if (gate != R_SUCCESS) {
		session_reply(s, gate, c->verb);
	} else if (c->check(s, args) && c->stage != CMD_NO_STAGE) {
		struct policy_query q;
		session_query(s, &q, (enum policy_stage)c->stage);
		session_ask(s, &q, c->proceed);
	}
	if (!s->asking)
		s->uncounted = false;
	if (c->flags & CMD_LAST)
		session_flush(s);
}

/* An unknown command, after the milters saw it (SMFIC_UNKNOWN): their
 * refusal, or ours. */
static void session_unknown(struct session *s, const struct milters_verdict *v)
{
	if (!v->ok)
		return milters_reply(s, v);
	session_reply(s, R_UNRECOGNIZED);
}

static void session_dispatch(struct session *s, const char *line)
{
	struct parse_cmd pc;
	const struct cmd *c = NULL;
	if (parse_command(line, &pc) && pc.verb[0])
		c = cmd_find(pc.verb);
	if (!c)
		return milters_stage(s, MS_UNKNOWN, line, session_unknown);
	/* Stopping: a transaction under way may finish (shutdown_grace); a
	 * session between transactions may only say goodbye. */
	if (s->srv->shutting_down && !s->tx && !(c->flags & CMD_AT_STOP))
		return session_shutdown(s);
	session_run(s, c, pc.args);
}

/* The debug log shows every command, but never credentials: an AUTH
 * line keeps its mechanism and loses its initial response (RFC 4954 4). */
static void session_log_command(struct session *s, const char *line)
{
	if (!ev_wanted(EK_IN, LOG_DEBUG))
		return;
	struct ev e;
	ev_init(&e, EK_IN, LOG_DEBUG, s->id, NULL);
	if (s->state == ST_AUTH) {
		ev_add(&e, "line", "(SASL response)");
	} else if (strncasecmp(line, "AUTH ", 5) != 0) {
		ev_add(&e, "line", "%s", line);
	} else {
		size_t mech = strcspn(line + 5, " ");
		ev_add(&e, "line", "%.*s%s", (int)(5 + mech), line,
		       line[5 + mech] ? " (initial response hidden)" : "");
	}
	ev_emit(&e);
}

static void session_command(struct session *s, const char *line)
{
	session_log_command(s, line);
	if (s->rec)
		transcript_in(s, line);
	if (s->state == ST_AUTH)
		sasl_response(s, line);
	else
		session_dispatch(s, line);
	session_check_errors(s);
}

/* ---- the end of DATA ---- */

void session_committed(void *ctx, int err)
{
	struct session *s = ctx;
	s->pending--;
	if (s->dead)   /* the client left; the message is queued all the same */
		return session_release(s);
	struct tx *tx = s->tx;
	struct ev e;
	ev_init(&e, err ? EK_NOT_QUEUED : EK_QUEUED, err ? LOG_ERROR : LOG_INFO, s->id, tx->qid);
	if (err) {
		ev_add(&e, "error", "%s", strerror(err));
	} else {
		ev_add(&e, "from", "<%s>", tx->sender);
		ev_add(&e, "size", "%llu", (unsigned long long)tx->dp.size);
		ev_add(&e, "nrcpt", "%zu", tx->nrcpt);
	}
	if (s->state == ST_CLOSING) {  /* a 421 went out meanwhile (timeout) */
		ev_flag(&e, "after the session ended");
		return ev_emit(&e);
	}
	ev_emit(&e);
	s->busy++;   /* the 250 leaves with the replies to what was pipelined after it */
	if (err)
		session_reply(s, err == ENOSPC ? R_SPOOL_FULL : R_SPOOL_ERROR);
	else
		session_reply(s, R_QUEUED, tx->qid, s->conf->hostname);
	session_reset(s);
	if (s->srv->shutting_down)
		session_shutdown(s);  /* the 250 first: the client must not retry */
	else
		session_process(s);  /* pipelined commands may be waiting */
	session_unbusy(s);
}

void session_data_sink(void *ctx, const char *p, size_t n)
{
	struct session *s = ctx;
	if (s->rec)
		transcript_data(s, p, n);
	if (s->tx->verifier)   /* the message as it came */
		verifier_feed(s->tx->verifier, p, n);
	milters_data(s, p, n);
	if (!msgin_feed(&s->tx->in, p, n))
		s->paused = true;
}

void session_chunk_done(void *ctx, int err)
{
	struct session *s = ctx;
	if (err) {
		struct ev e;
		ev_init(&e, EK_NOT_QUEUED, LOG_ERROR, s->id, s->tx ? s->tx->qid : NULL);
		ev_add(&e, "error", "spool write failed: %s", strerror(err));
		ev_emit(&e);
	}
	if (s->paused && s->tx && s->tx->msg && spool_msg_writable(s->tx->msg)) {
		s->paused = false;
		bufferevent_enable(s->bev, EV_READ);
		session_process(s);
	}
}

/* ---- input ---- */

/* Feed DATA bytes to the parser, chain by chain, until the end or a pause. */
static void session_feed_data(struct session *s, struct evbuffer *in)
{
	while (s->state == ST_DATA && !s->paused && evbuffer_get_length(in) > 0) {
		struct evbuffer_iovec v;
		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
			break;
		size_t used = data_feed(&s->tx->dp, v.iov_base, v.iov_len);
		evbuffer_drain(in, used);
		if (s->tx->dp.done)
			cmd_data_end(s);
	}
}

/* BDAT: exactly the chunk's octets, to the raw parser or dropped; the
 * next command follows them at once (RFC 3030 2). */
static void session_feed_chunk(struct session *s, struct evbuffer *in)
{
	while (s->state == ST_BDAT) {
		if (!s->tx && !s->chunk.discard) {   /* gone meanwhile: still answered */
			s->chunk.discard = s->chunk.has_err = true;
			s->chunk.err = R_NEED_MAIL;
		}
		if (s->chunk.left == 0) {
			cmd_bdat_chunk_end(s);
			break;
		}
		struct evbuffer_iovec v;
		if ((s->paused && !s->chunk.discard) || evbuffer_get_length(in) == 0 ||
		    evbuffer_peek(in, -1, NULL, &v, 1) < 1)
			break;
		size_t n = v.iov_len < s->chunk.left ? v.iov_len : (size_t)s->chunk.left;
		if (!s->chunk.discard)
			data_feed(&s->tx->dp, v.iov_base, n);   /* raw: takes all n */
		evbuffer_drain(in, n);
		s->chunk.left -= n;
	}
}

/* Discard input as s->skip says; true once the skipping is over. */
static bool session_skip(struct session *s, struct evbuffer *in)
{
	for (;;) {
		struct evbuffer_ptr lf = evbuffer_search(in, "\n", 1, NULL);
		if (lf.pos < 0) {
			evbuffer_drain(in, evbuffer_get_length(in));
			return false;
		}
		char cr = 0;
		if (lf.pos > 0) {
			struct evbuffer_ptr p;
			evbuffer_ptr_set(in, &p, (size_t)lf.pos - 1, EVBUFFER_PTR_SET);
			evbuffer_copyout_from(in, &p, &cr, 1);
		}
		evbuffer_drain(in, (size_t)lf.pos + 1);
		if (s->skip == SKIP_LONG) {
			s->state = s->state == ST_AUTH ? ST_CMD : s->state;
			session_reply(s, R_LINE_TOO_LONG);
			session_check_errors(s);
			break;
		}
		if (cr == '\r')
			break;
	}
	s->skip = SKIP_NONE;
	return true;
}

/* RFC 5321 2.3.8: CRLF only. A bare LF or CR is not a line end, so what
 * follows it up to the real CRLF belongs to the same (refused) command;
 * the refusal goes out at once, for clients that send LF alone. */
static void session_bare_newline(struct session *s, bool ends_in_crlf)
{
	session_say(s, EK_PROTOCOL, "problem", "bare CR/LF or NUL in a command");
	if (s->rec)
		transcript_bare(s);
	s->state = s->state == ST_AUTH ? ST_CMD : s->state;
	session_reply(s, R_BARE_NL_CMD);
	session_check_errors(s);
	if (!ends_in_crlf)
		s->skip = SKIP_BARE;
}

/* Take one framed command line out of the input; false when none is whole. */
static bool session_read_line(struct session *s, struct evbuffer *in)
{
	if (s->skip != SKIP_NONE && !session_skip(s, in))
		return false;
	if (s->state != ST_CMD && s->state != ST_AUTH)
		return false;
	struct evbuffer_ptr lf = evbuffer_search(in, "\n", 1, NULL);
	size_t avail = lf.pos < 0 ? evbuffer_get_length(in) : (size_t)lf.pos;
	if (avail > SESSION_LINE_MAX + 1) {
		s->skip = SKIP_LONG;
		return session_read_line(s, in);
	}
	if (lf.pos < 0)
		return false;
	char line[SESSION_LINE_MAX + 3];
	size_t n = (size_t)lf.pos + 1;
	evbuffer_remove(in, line, n);
	line[n] = '\0';
	bool crlf = n >= 2 && line[n - 2] == '\r';
	if (!crlf || memchr(line, '\r', n - 2) || strlen(line) != n) {
		session_bare_newline(s, crlf);
		return true;
	}
	line[n - 2] = '\0';
	session_command(s, line);
	return true;
}

static void session_proxy_header(struct session *s, struct evbuffer *in);
static void session_early_talker(struct session *s, struct evbuffer *in);

/* The end of a frame that held s->busy: send its replies, or free a
 * session closed meanwhile. */
static void session_unbusy(struct session *s)
{
	if (--s->busy > 0)
		return;
	if (!s->dead)
		session_flush(s);
	session_release(s);
}

/* One step of input; false when there is nothing more to do now. */
static bool session_step(struct session *s, struct evbuffer *in)
{
	switch (s->state) {
	case ST_PROXY:
		session_proxy_header(s, in);
		return s->state != ST_PROXY;
	case ST_GREET:
		session_early_talker(s, in);
		return false;
	case ST_DATA:
		session_feed_data(s, in);
		return s->state != ST_DATA;   /* else: need more bytes, or paused */
	case ST_BDAT:
		session_feed_chunk(s, in);
		return s->state != ST_BDAT;
	case ST_CMD: case ST_AUTH:
		return session_read_line(s, in);
	case ST_START: case ST_COMMIT: case ST_CLOSING:
		return false;
	}
	return false;
}

static void session_process(struct session *s)
{
	s->busy++;
	s->stepping = true;
	while (!s->dead && s->bev && !s->asking) {
		if (session_output_full(s)) {
			s->throttled = true;
			bufferevent_disable(s->bev, EV_READ);
			break;
		}
		s->arrived = false;
		if (!session_step(s, bufferevent_get_input(s->bev)) && !s->arrived)
			break;   /* a step that wanted more, and none came during it */
	}
	s->stepping = false;
	if (!s->dead && s->bev && s->paused)
		bufferevent_disable(s->bev, EV_READ);
	if (s->rec && !s->dead && s->bev)
		transcript_seen(s);
	session_unbusy(s);
}

/* A message's octets: libevent 2.1 reads the socket WIRE_EVENT_READ octets
 * a turn of the loop (wire.h), so a 1 MiB message took 256 reads and 256
 * turns. While a message comes, read what else the socket holds now, up
 * to SESSION_READ_MAX and the input's high-water mark, in one readv: on a
 * plain socket when libevent's read took all it takes; under TLS when a
 * record held more than two such reads (a client writing large records:
 * a small message's one record costs no read that finds nothing), into
 * the socket bufferevent below OpenSSL's, whose read callback (the TLS
 * layer's) then decrypts it among this turn's deferred callbacks. False
 * when the session was closed. */
static bool session_read_more(struct session *s)
{
	if (s->paused || (s->state != ST_DATA && s->state != ST_BDAT))
		return true;
	struct bufferevent *under = bufferevent_get_underlying(s->bev);   /* TLS: the socket's */
	size_t len = evbuffer_get_length(bufferevent_get_input(s->bev));
	if (len < (under ? 2 * WIRE_EVENT_READ : WIRE_EVENT_READ))
		return true;
	if (under)
		len += evbuffer_get_length(bufferevent_get_input(under));
	if (len >= SESSION_INPUT_HIGH)
		return true;
	size_t room = SESSION_INPUT_HIGH - len;
	long n = wire_fill(under ? under : s->bev, room < SESSION_READ_MAX ? room : SESSION_READ_MAX);
	if (n > 0 && under)
		bufferevent_trigger(under, EV_READ, BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
	if (n >= 0 || errno == EAGAIN || errno == EINTR)
		return true;
	session_close(s, strerror(errno));
	return false;
}

static void session_read_cb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	struct session *s = arg;
	if (s->rec)
		transcript_arrived(s);   /* a new batch (RFC 2920's groups, as they came) */
	/* libevent's TLS layer reads again, and calls here, from inside a
	 * step: draining the input below its high-water mark lets it read on
	 * at once. The running loop takes the input; a second loop would end
	 * the same message twice. */
	if (s->stepping) {
		s->arrived = true;
		return;
	}
	if (session_read_more(s))
		session_process(s);
}

/* ---- start and shutdown ---- */

static void session_set_ip(struct session *s, const struct sockaddr *sa, size_t salen)
{
	memset(&s->peer, 0, sizeof s->peer);
	memcpy(&s->peer, sa, salen < sizeof s->peer ? salen : sizeof s->peer);
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
			inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], s->ip, sizeof s->ip);
		else
			inet_ntop(AF_INET6, &s6->sin6_addr, s->ip, sizeof s->ip);
	} else {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, s->ip, sizeof s->ip);
	}
}

/* The listener's address as `listen` spells it: "127.0.0.1:2525", "[::1]:2525". */
static void session_set_local(struct session *s, int fd)
{
	struct sockaddr_storage ss = { .ss_family = AF_UNSPEC };
	socklen_t len = sizeof ss;
	char ip[INET6_ADDRSTRLEN];
	unsigned port = 0;
	if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
		ss.ss_family = AF_UNSPEC;
	util_ip_text(&ss, ip, sizeof ip);
	if (ss.ss_family == AF_INET6)
		port = ntohs(((const struct sockaddr_in6 *)&ss)->sin6_port);
	else if (ss.ss_family == AF_INET)
		port = ntohs(((const struct sockaddr_in *)&ss)->sin_port);
	snprintf(s->local, sizeof s->local, ss.ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u", ip, port);
}

void session_send_greeting(struct session *s)
{
	const char *banner = s->conf->banner;
	s->state = ST_CMD;
	session_reply(s, R_GREETING, s->conf->hostname, *banner ? " " : "", banner);
}

static void session_greet_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct session *s = arg;
	if (s->state != ST_GREET)
		return;
	session_send_greeting(s);
	session_process(s);
}

/* RFC 5321 3.1: the client waits for the greeting; one that does not is
 * not a mail client. */
static void session_early_talker(struct session *s, struct evbuffer *in)
{
	if (evbuffer_get_length(in) == 0)
		return;
	session_say(s, EK_PROTOCOL, "problem", "talked before the greeting");
	evbuffer_drain(in, evbuffer_get_length(in));
	session_reply(s, R_EARLY_TALKER);
	session_close_after_flush(s);
}

/* The milters' word on the connection: their refusal, or the greeting
 * (now, or after greeting_delay). */
static void session_milters_connected(struct session *s, const struct milters_verdict *v)
{
	if (!v->ok) {
		session_say(s, EK_REFUSED, "reason", "refused by a milter");
		return milters_reply(s, v);
	}
	unsigned delay = s->conf->greeting_delay;
	if (delay == 0)
		return session_send_greeting(s);
	s->state = ST_GREET;
	s->greet_timer = evtimer_new(s->srv->base, session_greet_cb, s);
	if (!s->greet_timer)
		log_panic("session: cannot create a timer");
	struct timeval tv = { (time_t)delay, 0 };
	evtimer_add(s->greet_timer, &tv);
}

/* CONNECT's answer: the refusal, or TLS for smtps, then the milters. */
static void session_connected(struct session *s, const struct policy_answer *a)
{
	if (!a->ok) {
		session_say(s, EK_REFUSED, "reason", a->why);
		return session_refusal(s, a);
	}
	if ((s->client.modes & CONF_LISTEN_SMTPS) && !session_tls_on(s))
		return;
	milters_open(s);
	milters_stage(s, MS_CONNECT, NULL, session_milters_connected);
}

/* After the socket (and any PROXY header) is settled: the CONNECT stage
 * (limits), then TLS for smtps and the greeting. */
static void session_begin(struct session *s)
{
	struct ev e;
	session_event(s, &e, EK_CONNECT, LOG_INFO, NULL);
	if (s->client.modes & CONF_LISTEN_SMTPS)
		ev_flag(&e, "smtps");
	if (session_odmr(s))
		ev_flag(&e, "odmr");
	ev_emit(&e);
	s->state = ST_START;
	s->client.sessions = s->srv->nsessions;
	struct policy_query q;
	session_query(s, &q, POLICY_CONNECT);
	session_ask(s, &q, session_connected);
}

/* The PROXY protocol header names the real client (proxy.c). */
static void session_proxy_header(struct session *s, struct evbuffer *in)
{
	size_t n = evbuffer_get_length(in), used = 0;
	if (n > PROXY_V2_MAX)
		n = PROXY_V2_MAX;
	const unsigned char *p = evbuffer_pullup(in, (ev_ssize_t)n);
	struct proxy_hdr h;
	enum proxy_status st = proxy_parse(p, n, &h, &used);
	if (st == PROXY_MORE)
		return;
	if (st == PROXY_BAD) {
		session_say(s, EK_PROTOCOL, "problem", "bad PROXY header");
		return session_close(s, "bad PROXY protocol header");
	}
	evbuffer_drain(in, used);
	char via[INET6_ADDRSTRLEN];
	snprintf(via, sizeof via, "%s", s->ip);
	if (h.has_addr)
		session_set_ip(s, (struct sockaddr *)&h.src, sizeof h.src);
	if (s->rec)
		transcript_proxy(s, h.version, via);
	struct ev e;
	session_event(s, &e, EK_PROXY, LOG_INFO, NULL);
	ev_add(&e, "version", "%d", h.version);
	ev_add(&e, "via", "[%s]", via);
	ev_emit(&e);
	session_begin(s);
}

static void session_link(struct server *srv, struct session *s)
{
	s->next = srv->sessions;
	if (s->next)
		s->next->prev = s;
	srv->sessions = s;
	if (++srv->nsessions > srv->peak_sessions)
		srv->peak_sessions = srv->nsessions;
}

void session_start(struct server *srv, int fd, const struct sockaddr *sa, int salen,
                   unsigned modes)
{
	struct session *s = util_xcalloc(1, sizeof *s);
	s->srv = srv;
	s->set = settings_ref(srv->set);   /* its settings to the end, whatever a reload does */
	s->conf = &s->set->conf;
	s->id = ++srv->next_id;
	session_set_ip(s, sa, (size_t)salen);
	session_set_local(s, fd);
	s->client = (struct policy_client){ .set = s->set, .session = s->id, .addr = (struct sockaddr *)&s->peer,
	                                    .ip = s->ip, .modes = modes, .user = s->user,
	                                    .helo = s->helo, .listener = s->local };
	wire_nodelay(fd);
	s->bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!s->bev) {
		evutil_closesocket(fd);
		settings_unref(s->set);
		free(s);
		return;
	}
	session_link(srv, s);
	session_bev_setup(s);
	wire_direct(s->bev);
	s->direct = true;
	if (srv->transcripts)   /* transcripts = yes, or the test mode's capture */
		s->rec = transcript_begin(s);
	faults_open(s);
	if (modes & CONF_LISTEN_PROXY) {
		s->state = ST_PROXY;
		return;
	}
	session_begin(s);
}

/* 421 and close (RFC 5321 3.8). */
static void session_shutdown(struct session *s)
{
	session_reply(s, R_SHUTDOWN, s->conf->hostname);
	session_close_after_flush(s);
}

void session_close_all(struct server *srv, bool force)
{
	srv->shutting_down = true;
	if (srv->nsessions == 0) {
		closer_drain(srv->closer, CLOSER_LINGER);
		return;
	}
	for (struct session *s = srv->sessions, *next; s; s = next) {
		next = s->next;
		/* a message being committed gets its 250 first (session_committed);
		 * until forced, a transaction under way goes on */
		if (s->state == ST_CLOSING || s->state == ST_COMMIT || (!force && s->tx))
			continue;
		session_shutdown(s);
	}
}

void session_free_all(struct server *srv)
{
	while (srv->sessions)
		session_close(srv->sessions, "shutdown");
	faults_free(srv);
}
