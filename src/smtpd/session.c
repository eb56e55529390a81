/* session: the SMTP state machine and its command table (see session.h).
 *
 * Input is framed before it is parsed (DESIGN.md, after Postfix smtpd.c and
 * qmail's straynewline): a command line is at most SESSION_LINE_MAX octets
 * and ends in CRLF; a bare CR or LF is refused. Replies are buffered and
 * leave in order, which is all PIPELINING (RFC 2920) asks of a server; only
 * the end of DATA waits, for the spool's commit, before reading on.
 */
#include "smtpd/session.h"

#include <arpa/inet.h>
#include <ctype.h>
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
#include "lib/log.h"
#include "lib/util.h"
#include "smtpd/data.h"
#include "net/closer.h"
#include "smtpd/parse.h"
#include "smtpd/proxy.h"
#include "net/tls.h"
#include "net/wire.h"

#define SESSION_LINE_MAX 2048            /* octets before CRLF */
#define SESSION_INPUT_HIGH (256 * 1024)  /* stop reading above this */
#define SESSION_READ_MAX (128 * 1024)    /* per read(); libevent reads 16 KiB by default */
#define SESSION_OUTPUT_HIGH (64 * 1024)  /* stop reading while replies pile up */
#define SESSION_HELO_MAX 255

enum session_state {
	ST_PROXY,    /* waiting for the PROXY protocol header */
	ST_GREET,    /* greeting_delay: the client must stay silent */
	ST_CMD,
	ST_AUTH,     /* the next line is a SASL response (RFC 4954 4) */
	ST_DATA,
	ST_COMMIT,
	ST_CLOSING,
};

enum session_auth_step { AUTH_STEP_PLAIN, AUTH_STEP_LOGIN_USER, AUTH_STEP_LOGIN_PASS };

/* The transaction: MAIL FROM to the end of DATA (OpenSMTPD's smtp_tx). */
struct tx {
	char qid[UTIL_QID_LEN + 1];
	char sender[POLICY_ADDR_MAX];
	struct parse_mail_params mp;
	struct spool_rcpt *rcpt;
	size_t nrcpt, cap;
	unsigned rcpt_cmds;             /* accepted RCPT commands */
	struct data_parser dp;
	struct spool_msg *msg;
	int64_t arrival;
};

struct session {
	struct session *next, *prev;
	struct server *srv;
	struct bufferevent *bev;
	struct sockaddr_storage peer;
	char ip[INET6_ADDRSTRLEN];
	uint64_t id;
	unsigned modes;                 /* CONF_LISTEN_* of the listener */
	enum session_state state;
	bool greeted;                   /* HELO or EHLO seen */
	bool tls;                       /* STARTTLS done or smtps */
	bool direct;                    /* plain socket: replies are written at once
	                                   (session_flush), libevent only writes a
	                                   remainder the socket would not take */
	bool authed;                    /* AUTH succeeded: user holds the name */
	bool counted;                   /* holds a slot in srv->limits */
	enum session_auth_step auth_step;
	unsigned errors;                /* 4xx/5xx replies sent */
	unsigned auth_failures;
	struct event *greet_timer;      /* greeting_delay */
	char user[AUTH_FIELD_MAX + 1];
	char login_user[AUTH_FIELD_MAX + 1];  /* AUTH LOGIN, between its steps */
	bool esmtp;                     /* EHLO: enhanced codes (RFC 2034) */
	enum { SKIP_NONE, SKIP_LONG, SKIP_BARE } skip;  /* discarding input up to:
	                                   LONG the next LF, then 500;
	                                   BARE the next CRLF, silently */
	bool paused;                    /* the spool asked us to wait */
	bool throttled;                 /* the client is not reading our replies */
	bool dead;                      /* closed, waiting for a spool callback */
	unsigned pending;               /* spool callbacks outstanding */
	unsigned busy;                  /* session_process frames running: a
	                                   close inside one frees at its end */
	char helo[SESSION_HELO_MAX + 1];
	struct tx *tx;
};

struct session_cmd {
	const char *verb;
	void (*fn)(struct session *s, const char *args);
};

static void session_process(struct session *s);
static void session_read_cb(struct bufferevent *bev, void *arg);
static void session_event_cb(struct bufferevent *bev, short what, void *arg);
static void session_flush(struct session *s);
static void session_unbusy(struct session *s);
static void session_shutdown(struct session *s);

/* ---- replies ---- */

/* Append one reply line from the table; more: a '-' continuation line. */
static void session_vreply(struct session *s, enum esc_id id, bool more, va_list ap)
{
	const struct esc_reply *r = esc_get(id);
	struct buf b = BUF_INIT;
	if (r->code >= 400 && r->code != 421)
		s->errors++;
	buf_printf(&b, "%d%c", r->code, more ? '-' : ' ');
	if (r->esc && (s->esmtp || !s->greeted))
		buf_printf(&b, "%s ", r->esc);
	buf_vprintf(&b, r->text, ap);
	buf_puts(&b, "\r\n");
	if (s->bev)
		bufferevent_write(s->bev, b.data, b.len);
	log_debug("session %llu: > %.*s", (unsigned long long)s->id, (int)b.len - 2, b.data);
	buf_free(&b);
	if (!s->busy)
		session_flush(s);
}

static void session_reply(struct session *s, enum esc_id id, ...)
{
	va_list ap;
	va_start(ap, id);
	session_vreply(s, id, false, ap);
	va_end(ap);
}

static void session_reply_more(struct session *s, enum esc_id id, ...)
{
	va_list ap;
	va_start(ap, id);
	session_vreply(s, id, true, ap);
	va_end(ap);
}

/* ---- lifetime ---- */

static void session_tx_free(struct session *s)
{
	struct tx *tx = s->tx;
	if (!tx)
		return;
	if (tx->msg)
		spool_msg_abort(tx->msg);
	for (size_t i = 0; i < tx->nrcpt; i++) {
		free(tx->rcpt[i].orig);
		free(tx->rcpt[i].addr);
		free(tx->rcpt[i].orcpt);
	}
	free(tx->rcpt);
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

/* Close now: the one place a session lets go of its connection. The
 * bufferevents, the SSL and the socket go to the server's closer (TLS
 * close_notify, the last bytes sent, then freed from the loop, never
 * under a libevent callback still running for them). The struct lives on
 * while a spool callback is outstanding or a frame of it is running. */
static void session_close(struct session *s, const char *why)
{
	if (s->dead)
		return;
	log_info("session %llu: disconnect from [%s] (%s)", (unsigned long long)s->id, s->ip, why);
	session_tx_free(s);
	closer_close(s->srv->closer, s->bev);
	s->bev = NULL;
	if (s->greet_timer)
		event_free(s->greet_timer);
	s->greet_timer = NULL;
	if (s->counted)
		limits_disconnect(s->srv->limits, s->ip);
	s->counted = false;
	explicit_bzero(s->login_user, sizeof s->login_user);
	s->dead = true;
	session_unlink(s);
	if (s->pending == 0 && s->busy == 0)
		free(s);
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

/* Send the replies of a plain session now (wire.h). Replies made while
 * input is processed go out together at its end: a pipelined group of
 * commands gets one write. */
static void session_flush(struct session *s)
{
	if (s->direct && s->bev)
		wire_flush(s->bev);
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
	if (evbuffer_get_length(bufferevent_get_output(s->bev)) <= SESSION_OUTPUT_HIGH)
		return false;
	session_flush(s);
	return evbuffer_get_length(bufferevent_get_output(s->bev)) > SESSION_OUTPUT_HIGH;
}

/* Close once the replies written so far have left. */
static void session_close_after_flush(struct session *s)
{
	s->state = ST_CLOSING;
	bufferevent_disable(s->bev, EV_READ);
	session_flush(s);
	if (evbuffer_get_length(bufferevent_get_output(s->bev)) == 0)
		session_write_cb(s->bev, s);
}

static void session_set_timeout(struct session *s, unsigned secs)
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
	session_set_timeout(s, s->srv->conf->command_timeout);
	bufferevent_enable(s->bev, EV_READ);
}

/* Put TLS on (smtps at once, or after STARTTLS's 220): what was buffered
 * for the socket leaves first, then OpenSSL writes. False when the
 * session was closed. */
static bool session_tls_on(struct session *s)
{
	session_direct_off(s);
	struct bufferevent *tls = tls_wrap(s->srv->base, s->bev, s->srv->tls, NULL);
	if (!tls) {
		session_close(s, "cannot start TLS");
		return false;
	}
	s->bev = tls;
	s->tls = true;
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
		log_info("session %llu: timeout from [%s]", (unsigned long long)s->id, s->ip);
		session_reply(s, R_TIMEOUT, s->srv->conf->hostname);
		bufferevent_enable(s->bev, EV_WRITE);
		session_close_after_flush(s);
		return;
	}
	if (what & BEV_EVENT_CONNECTED && s->tls) {
		char desc[128];
		tls_describe(s->bev, desc, sizeof desc);
		log_info("session %llu: TLS established from [%s]: %s", (unsigned long long)s->id,
		         s->ip, desc);
		return;
	}
	if (what & BEV_EVENT_ERROR && s->tls) {
		char err[256];
		tls_error(s->bev, err, sizeof err);
		session_close(s, err);
	} else if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		session_close(s, what & BEV_EVENT_EOF ? "client closed" : strerror(errno));
	}
}

/* ---- the transaction ---- */

static void session_tx_begin(struct session *s)
{
	s->tx = calloc(1, sizeof *s->tx);
	if (!s->tx)
		abort();
	util_qid(s->tx->qid);
}

static void session_reset(struct session *s)
{
	session_tx_free(s);
	if (s->bev && s->state == ST_DATA)
		session_set_timeout(s, s->srv->conf->command_timeout);
	if (s->bev && s->paused)
		bufferevent_enable(s->bev, EV_READ);
	s->paused = false;
	s->state = ST_CMD;
}

static void session_tx_add(struct tx *tx, const char *orig, const struct policy_target *t,
                           const struct parse_rcpt_params *rp)
{
	if (tx->nrcpt == tx->cap) {
		tx->cap = tx->cap ? tx->cap * 2 : 4;
		tx->rcpt = realloc(tx->rcpt, tx->cap * sizeof *tx->rcpt);
		if (!tx->rcpt)
			abort();
	}
	struct spool_rcpt *r = &tx->rcpt[tx->nrcpt];
	memset(r, 0, sizeof *r);
	r->idx = (unsigned)tx->nrcpt++;
	r->orig = util_xstrdup(orig);
	r->addr = util_xstrdup(t->addr);
	r->transport = t->transport;
	r->notify = rp->notify;
	r->orcpt = util_xstrdup(rp->orcpt);
	r->status = SPOOL_PENDING;
}

/* ---- commands ---- */

static bool session_no_args(struct session *s, const char *verb, const char *args)
{
	if (*args == '\0')
		return true;
	session_reply(s, R_NO_ARGS, verb);
	return false;
}

/* Keep the HELO argument printable for the log and the Received header. */
static void session_set_helo(struct session *s, const char *args)
{
	size_t n = strcspn(args, " ");
	if (n > SESSION_HELO_MAX)
		n = SESSION_HELO_MAX;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)args[i];
		s->helo[i] = (c > 32 && c < 127 && c != '(' && c != ')' && c != '\\') ? (char)c : '?';
	}
	s->helo[n] = '\0';
}

/* RFC 4954 4: AUTH only where passwords do not cross in the clear. */
static bool session_auth_offered(const struct session *s)
{
	return auth_users_count(s->srv->users) > 0 &&
	       (s->tls || s->srv->conf->auth_allow_plaintext);
}

static void session_greet(struct session *s, const char *args, bool esmtp)
{
	const char *verb = esmtp ? "EHLO" : "HELO";
	if (*args == '\0') {
		session_reply(s, R_HELO_SYNTAX, verb);
		return;
	}
	session_reset(s);  /* RFC 5321 4.1.4: like RSET */
	session_set_helo(s, args);
	s->greeted = true;
	s->esmtp = esmtp;
	if (!esmtp) {
		session_reply(s, R_HELO, s->srv->conf->hostname, s->ip);
		return;
	}
	char size[32];
	snprintf(size, sizeof size, "SIZE %llu", (unsigned long long)s->srv->conf->max_message_size);
	session_reply_more(s, R_HELO, s->srv->conf->hostname, s->ip);
	/* Exactly what is implemented (RFC 5321 4.1.1.1). */
	const char *ext[] = { "PIPELINING", size, "8BITMIME", "ENHANCEDSTATUSCODES", "DSN" };
	for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++)
		session_reply_more(s, R_EHLO_LINE, ext[i]);
	if (s->srv->tls && !s->tls)
		session_reply_more(s, R_EHLO_LINE, "STARTTLS");   /* RFC 3207 */
	if (session_auth_offered(s))
		session_reply_more(s, R_EHLO_LINE, "AUTH PLAIN LOGIN");  /* RFC 4954 */
	session_reply(s, R_EHLO_LINE, "HELP");
}

static void cmd_helo(struct session *s, const char *args)
{
	session_greet(s, args, false);
}

static void cmd_ehlo(struct session *s, const char *args)
{
	session_greet(s, args, true);
}

/* The ESMTP keyword a parameter error points at, for the reply. */
static void session_keyword(const char *bad, char *kw, size_t n)
{
	if (!bad)
		bad = "";
	snprintf(kw, n, "%.*s", (int)strcspn(bad, " ="), bad);
}

static bool session_mail_params(struct session *s, const char *rest, struct parse_mail_params *mp)
{
	const char *bad = NULL;
	enum parse_perr e = parse_mail_params(rest, mp, &bad);
	char kw[41];
	session_keyword(bad, kw, sizeof kw);
	if (e == PARSE_EUNKNOWN)
		session_reply(s, R_PARAM_UNKNOWN, kw);
	else if (e != PARSE_OK)
		session_reply(s, R_PARAM_BAD, kw);
	else if (mp->has_size && s->srv->conf->max_message_size &&
	         mp->size > s->srv->conf->max_message_size)
		session_reply(s, R_SIZE_EXCEEDED);  /* RFC 1870 6.1 */
	else
		return true;
	return false;
}

/* RFC 5321 4.1.1.2 MAIL FROM:<reverse-path> [SP Mail-parameters] */
static void cmd_mail(struct session *s, const char *args)
{
	if (!s->greeted)
		return session_reply(s, R_NEED_HELO);
	if (s->tx)
		return session_reply(s, R_NESTED_MAIL);
	if ((s->modes & CONF_LISTEN_SUBMISSION) && !s->authed)
		return session_reply(s, R_AUTH_REQUIRED);  /* RFC 6409 4.2, RFC 4954 6 */
	const char *p = parse_keyword_colon(args, "FROM"), *rest;
	if (!p)
		return session_reply(s, R_MAIL_SYNTAX);
	struct addr a;
	enum addr_err ae = addr_parse_path(p, &rest, &a, true, false);
	if (ae == ADDR_OK && *rest && *rest != ' ')
		ae = ADDR_ESYNTAX;  /* RFC 5321 4.1.1.2: SP before parameters */
	if (ae != ADDR_OK)
		return session_reply(s, R_BAD_SENDER, addr_strerror(ae));
	struct parse_mail_params mp;
	if (!session_mail_params(s, rest, &mp))
		return;
	if (s->authed && !policy_sender_owned(&s->srv->policy, s->user, &a)) {
		char from[POLICY_ADDR_MAX];
		addr_format(&a, from, sizeof from);
		log_info("session %llu: reject: MAIL from [%s] user %s: <%s> not theirs",
		         (unsigned long long)s->id, s->ip, s->user, from);
		return session_reply(s, R_SENDER_NOT_OWNED, from, s->user);
	}
	session_tx_begin(s);
	s->tx->mp = mp;
	addr_format(&a, s->tx->sender, sizeof s->tx->sender);
	log_info("%s: client=[%s], helo=%s, from=<%s>%s%s%s", s->tx->qid, s->ip, s->helo,
	         s->tx->sender, s->authed ? ", user=" : "", s->authed ? s->user : "",
	         s->tls ? ", tls" : "");
	session_reply(s, R_SENDER_OK);
}

static bool session_rcpt_params(struct session *s, const char *rest, struct parse_rcpt_params *rp)
{
	const char *bad = NULL;
	enum parse_perr e = parse_rcpt_params(rest, rp, &bad);
	if (e == PARSE_OK)
		return true;
	char kw[41];
	session_keyword(bad, kw, sizeof kw);
	session_reply(s, e == PARSE_EUNKNOWN ? R_PARAM_UNKNOWN : R_PARAM_BAD, kw);
	return false;
}

static void session_rcpt_verdict(struct session *s, const char *orig, enum policy_verdict v)
{
	static const enum esc_id ids[] = { [POLICY_UNKNOWN] = R_USER_UNKNOWN,
	                                   [POLICY_RELAY_DENIED] = R_RELAY_DENIED,
	                                   [POLICY_LOOP] = R_USER_UNKNOWN };
	log_info("%s: reject: RCPT from [%s]: <%s>: %s", s->tx->qid, s->ip, orig,
	         esc_get(ids[v])->text);
	session_reply(s, ids[v]);
}

/* RFC 5321 4.1.1.3 RCPT TO:<forward-path> [SP Rcpt-parameters] */
static void cmd_rcpt(struct session *s, const char *args)
{
	if (!s->tx)
		return session_reply(s, R_NEED_MAIL, "RCPT");
	const char *p = parse_keyword_colon(args, "TO"), *rest;
	if (!p)
		return session_reply(s, R_RCPT_SYNTAX);
	struct addr a;
	enum addr_err ae = addr_parse_path(p, &rest, &a, false, true);
	if (ae == ADDR_OK && *rest && *rest != ' ')
		ae = ADDR_ESYNTAX;
	if (ae != ADDR_OK)
		return session_reply(s, R_BAD_RCPT, addr_strerror(ae));
	struct parse_rcpt_params rp;
	if (!session_rcpt_params(s, rest, &rp))
		return;
	if (s->tx->rcpt_cmds >= s->srv->conf->max_recipients)
		return session_reply(s, R_TOO_MANY_RCPTS);  /* RFC 5321 4.5.3.1.10 */
	char orig[POLICY_ADDR_MAX];
	addr_format(&a, orig, sizeof orig);
	struct policy_targets t = { 0, 0, NULL };
	bool relay = policy_may_relay(&s->srv->policy, (struct sockaddr *)&s->peer, s->authed);
	enum policy_verdict v = policy_rcpt(&s->srv->policy, &a, relay, &t);
	if (v == POLICY_ACCEPT) {
		for (size_t i = 0; i < t.n; i++)
			session_tx_add(s->tx, orig, &t.v[i], &rp);
		s->tx->rcpt_cmds++;
		session_reply(s, R_RCPT_OK);
	} else {
		session_rcpt_verdict(s, orig, v);
	}
	policy_targets_free(&t);
}

static void session_data_sink(void *ctx, const char *p, size_t n)
{
	struct session *s = ctx;
	if (!spool_msg_write(s->tx->msg, p, n))
		s->paused = true;
}

static void session_chunk_done(void *ctx, int err)
{
	struct session *s = ctx;
	if (err)
		log_error("%s: spool write failed: %s", s->tx ? s->tx->qid : "?", strerror(err));
	if (s->paused && s->tx && s->tx->msg && spool_msg_writable(s->tx->msg)) {
		s->paused = false;
		bufferevent_enable(s->bev, EV_READ);
		session_process(s);
	}
}

/* RFC 5321 4.4: the trace header, first line of the spooled message. */
static void session_received(struct session *s)
{
	struct tx *tx = s->tx;
	char date[64];
	util_rfc5322_date(time(NULL), date, sizeof date);
	struct buf b = BUF_INIT;
	/* RFC 3848: ESMTP, ESMTPS (TLS), ESMTPA (AUTH), ESMTPSA (both). */
	char with[16];
	snprintf(with, sizeof with, "%s%s%s", s->esmtp ? "ESMTP" : "SMTP", s->tls ? "S" : "",
	         s->authed ? "A" : "");
	buf_printf(&b, "Received: from %s ([%s])\r\n\tby %s (tern) with %s id %s", s->helo,
	           s->ip, s->srv->conf->hostname, with, tx->qid);
	if (tx->rcpt_cmds == 1)
		buf_printf(&b, "\r\n\tfor <%s>", tx->rcpt[0].orig);
	buf_printf(&b, ";\r\n\t%s\r\n", date);
	spool_msg_write(tx->msg, b.data, b.len);
	buf_free(&b);
}

static void cmd_data(struct session *s, const char *args)
{
	if (!session_no_args(s, "DATA", args))
		return;
	if (!s->tx)
		return session_reply(s, R_NEED_MAIL, "DATA");
	if (s->tx->nrcpt == 0)
		return session_reply(s, R_NEED_RCPT);
	const struct conf *c = s->srv->conf;
	struct tx *tx = s->tx;
	tx->arrival = (int64_t)time(NULL);
	tx->msg = spool_msg_begin(s->srv->spool, tx->qid, session_chunk_done, s);
	session_received(s);
	data_init(&tx->dp, c->max_line_length, c->max_message_size, session_data_sink, s);
	s->state = ST_DATA;
	session_set_timeout(s, c->data_timeout);
	session_reply(s, R_START_DATA);
}

static void cmd_rset(struct session *s, const char *args)
{
	if (!session_no_args(s, "RSET", args))
		return;
	session_reset(s);
	session_reply(s, R_OK);
}

static void cmd_noop(struct session *s, const char *args)
{
	(void)args;  /* RFC 5321 4.1.1.9: a parameter is allowed and ignored */
	session_reply(s, R_OK);
}

static void cmd_quit(struct session *s, const char *args)
{
	(void)args;
	session_reply(s, R_BYE);
	session_close_after_flush(s);
}

static const char *const session_help[][2] = {
	{ "HELO", "HELO hostname - identify yourself (plain SMTP)" },
	{ "EHLO", "EHLO hostname - identify yourself and list the extensions" },
	{ "MAIL", "MAIL FROM:<sender> [SIZE=n] [BODY=8BITMIME] [RET=FULL|HDRS] [ENVID=id]" },
	{ "RCPT", "RCPT TO:<recipient> [NOTIFY=SUCCESS,FAILURE,DELAY|NEVER] [ORCPT=rfc822;addr]" },
	{ "DATA", "DATA - then the message, ending with a line holding only a dot" },
	{ "RSET", "RSET - abandon the current message" },
	{ "VRFY", "VRFY address - check a mailbox (answers 252 unless enabled)" },
	{ "EXPN", "EXPN alias - expand an alias (answers 252 unless enabled)" },
	{ "STARTTLS", "STARTTLS - start TLS (RFC 3207), when offered in the EHLO reply" },
	{ "AUTH", "AUTH PLAIN|LOGIN [response] - authenticate (RFC 4954), when offered" },
	{ "HELP", "HELP [command] - this text" },
	{ "NOOP", "NOOP - do nothing, answer 250" },
	{ "QUIT", "QUIT - end the session" },
};
#define SESSION_NHELP (sizeof session_help / sizeof session_help[0])

static void cmd_help(struct session *s, const char *args)
{
	if (*args) {
		for (size_t i = 0; i < SESSION_NHELP; i++)
			if (!strcasecmp(args, session_help[i][0]))
				return session_reply(s, R_HELP_LINE, session_help[i][1]);
		return session_reply(s, R_HELP_UNKNOWN, args);
	}
	session_reply_more(s, R_HELP_LINE, "tern: the commands are");
	session_reply_more(s, R_HELP_LINE,
	                   "HELO EHLO MAIL RCPT DATA RSET VRFY EXPN HELP NOOP QUIT STARTTLS AUTH");
	session_reply_more(s, R_HELP_LINE, "TURN, ETRN, VERB and DSN are answered but not offered");
	session_reply(s, R_HELP_END);
}

/* VRFY and EXPN (RFC 5321 3.5): 252 unless vrfy_disclose = yes. */
static void session_verify(struct session *s, const char *verb, const char *args, bool expn)
{
	if (!*args)
		return session_reply(s, R_VRFY_SYNTAX, verb);
	if (!s->srv->conf->vrfy_disclose)
		return session_reply(s, expn ? R_EXPN_CANNOT : R_VRFY_CANNOT);
	struct addr a;
	const char *rest;
	if (addr_parse_path(args, &rest, &a, false, true) != ADDR_OK)
		return session_reply(s, R_BAD_RCPT, "not an address");
	struct policy_targets t = { 0, 0, NULL };
	enum policy_verdict v = policy_rcpt(&s->srv->policy, &a, false, &t);
	if (v == POLICY_RELAY_DENIED)
		session_reply(s, expn ? R_EXPN_CANNOT : R_VRFY_CANNOT);
	else if (v != POLICY_ACCEPT)
		session_reply(s, R_USER_UNKNOWN);
	else if (!expn)
		session_reply(s, R_VRFY_OK, t.v[0].addr);
	else
		for (size_t i = 0; i < t.n; i++)
			(i + 1 < t.n ? session_reply_more : session_reply)(s, R_VRFY_OK, t.v[i].addr);
	policy_targets_free(&t);
}

static void cmd_vrfy(struct session *s, const char *args)
{
	session_verify(s, "VRFY", args, false);
}

static void cmd_expn(struct session *s, const char *args)
{
	session_verify(s, "EXPN", args, true);
}

static void cmd_turn(struct session *s, const char *args)
{
	(void)args;
	session_reply(s, R_TURN);
}

static void cmd_etrn(struct session *s, const char *args)
{
	(void)args;
	session_reply(s, R_ETRN);
}

static void cmd_verb(struct session *s, const char *args)
{
	(void)args;
	session_reply(s, R_VERB);
}

static void cmd_dsn(struct session *s, const char *args)
{
	(void)args;
	session_reply(s, R_DSN_VERB);
}

/* RFC 3207 4.2: the session starts over, and nothing the client sent
 * before the handshake may count: input already buffered is discarded
 * (command injection across STARTTLS, CVE-2011-0411). */
static void session_start_tls(struct session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	size_t stale = evbuffer_get_length(in);
	if (stale)
		log_info("session %llu: discarding %zu octets sent with STARTTLS by [%s]",
		         (unsigned long long)s->id, stale, s->ip);
	evbuffer_drain(in, stale);
	if (!session_tls_on(s))
		return;
	s->greeted = s->esmtp = s->authed = false;
	s->helo[0] = s->user[0] = '\0';
}

static void cmd_starttls(struct session *s, const char *args)
{
	if (!s->srv->tls)
		return session_reply(s, R_NOT_OFFERED, "STARTTLS");
	if (s->tls)
		return session_reply(s, R_TLS_ACTIVE);
	if (*args)
		return session_reply(s, R_TLS_SYNTAX);
	session_reset(s);
	session_reply(s, R_TLS_READY);
	session_start_tls(s);
}

/* The end of an AUTH exchange: RFC 4954 4, 6. */
static void session_auth_result(struct session *s, const char *user, const char *pass)
{
	s->state = ST_CMD;
	bool ok = auth_users_check(s->srv->users, user, pass);
	log_info("session %llu: AUTH %s for user %s from [%s]", (unsigned long long)s->id,
	         ok ? "succeeded" : "failed", user, s->ip);
	if (ok) {
		s->authed = true;
		snprintf(s->user, sizeof s->user, "%s", user);
		return session_reply(s, R_AUTH_OK);
	}
	session_reply(s, R_AUTH_FAILED);
	if (++s->auth_failures >= s->srv->conf->max_auth_failures) {
		session_reply(s, R_AUTH_TOO_MANY, s->srv->conf->hostname);
		session_close_after_flush(s);
	}
}

/* One SASL step: resp is the client's base64 line. */
static void session_auth_step(struct session *s, const char *resp)
{
	char user[AUTH_FIELD_MAX + 1], pass[AUTH_FIELD_MAX + 1];
	bool ok = false;
	s->state = ST_CMD;
	if (!strcmp(resp, "*"))
		return session_reply(s, R_AUTH_CANCELLED);
	switch (s->auth_step) {
	case AUTH_STEP_PLAIN:
		ok = auth_plain_decode(resp, user, pass);
		if (ok)
			session_auth_result(s, user, pass);
		break;
	case AUTH_STEP_LOGIN_USER:
		ok = auth_login_decode(resp, s->login_user);
		if (ok) {
			s->state = ST_AUTH;
			s->auth_step = AUTH_STEP_LOGIN_PASS;
			session_reply(s, R_AUTH_PASSWORD);
		}
		break;
	case AUTH_STEP_LOGIN_PASS:
		ok = auth_login_decode(resp, pass);
		if (ok)
			session_auth_result(s, s->login_user, pass);
		explicit_bzero(s->login_user, sizeof s->login_user);
		break;
	}
	if (!ok)
		session_reply(s, R_AUTH_DECODE);
	explicit_bzero(pass, sizeof pass);
}

/* May AUTH start now? Replies and returns false when not. */
static bool session_auth_allowed(struct session *s)
{
	if (auth_users_count(s->srv->users) == 0)
		session_reply(s, R_NOT_OFFERED, "AUTH");
	else if (!s->greeted || !s->esmtp)
		session_reply(s, R_NEED_HELO);
	else if (s->authed)
		session_reply(s, R_AUTH_ALREADY);
	else if (s->tx)
		session_reply(s, R_AUTH_IN_TX);
	else if (!session_auth_offered(s))
		session_reply(s, R_AUTH_ENCRYPT);
	else
		return true;
	return false;
}

/* RFC 4954 4: AUTH mechanism [initial-response] */
static void cmd_auth(struct session *s, const char *args)
{
	if (!session_auth_allowed(s))
		return;
	size_t mlen = strcspn(args, " ");
	const char *ir = args[mlen] ? args + mlen + 1 : NULL;
	if (mlen == 5 && !strncasecmp(args, "PLAIN", 5)) {
		s->auth_step = AUTH_STEP_PLAIN;
	} else if (mlen == 5 && !strncasecmp(args, "LOGIN", 5)) {
		s->auth_step = AUTH_STEP_LOGIN_USER;
	} else {
		return session_reply(s, R_AUTH_MECH);
	}
	if (ir)
		return session_auth_step(s, !strcmp(ir, "=") ? "" : ir);
	s->state = ST_AUTH;
	session_reply(s, s->auth_step == AUTH_STEP_PLAIN ? R_AUTH_CHALLENGE : R_AUTH_USERNAME);
}

static void cmd_bdat(struct session *s, const char *args)
{
	(void)args;
	session_reply(s, R_NOT_OFFERED, "BDAT");
}

/* The command table (qmail commands.c, OpenSMTPD smtp_session.c): every
 * verb of the seeds' list is answered deliberately. */
static const struct session_cmd session_cmds[] = {
	{ "HELO", cmd_helo }, { "EHLO", cmd_ehlo }, { "MAIL", cmd_mail },
	{ "RCPT", cmd_rcpt }, { "DATA", cmd_data }, { "RSET", cmd_rset },
	{ "NOOP", cmd_noop }, { "QUIT", cmd_quit }, { "HELP", cmd_help },
	{ "VRFY", cmd_vrfy }, { "EXPN", cmd_expn }, { "TURN", cmd_turn },
	{ "ETRN", cmd_etrn }, { "VERB", cmd_verb }, { "DSN", cmd_dsn },
	{ "STARTTLS", cmd_starttls }, { "AUTH", cmd_auth }, { "BDAT", cmd_bdat },
};

static void session_dispatch(struct session *s, const char *line)
{
	struct parse_cmd pc;
	if (!parse_command(line, &pc) || !pc.verb[0])
		return session_reply(s, R_UNRECOGNIZED);
	for (size_t i = 0; i < sizeof session_cmds / sizeof session_cmds[0]; i++)
		if (!strcmp(pc.verb, session_cmds[i].verb))
			return session_cmds[i].fn(s, pc.args);
	session_reply(s, R_UNRECOGNIZED);
}

/* After max_errors error replies the client is broken or probing. */
static void session_check_errors(struct session *s)
{
	if (s->dead || s->state == ST_CLOSING || s->errors < s->srv->conf->max_errors)
		return;
	log_info("session %llu: %u errors from [%s]: closing", (unsigned long long)s->id,
	         s->errors, s->ip);
	session_reply(s, R_TOO_MANY_ERRORS, s->srv->conf->hostname);
	session_close_after_flush(s);
}

/* The debug log shows every command, but never credentials: an AUTH
 * line keeps its mechanism and loses its initial response (RFC 4954 4). */
static void session_log_command(struct session *s, const char *line)
{
	if (strncasecmp(line, "AUTH ", 5) != 0) {
		log_debug("session %llu: < %s", (unsigned long long)s->id, line);
		return;
	}
	size_t mech = strcspn(line + 5, " ");
	log_debug("session %llu: < %.*s%s", (unsigned long long)s->id, (int)(5 + mech), line,
	          line[5 + mech] ? " (initial response hidden)" : "");
}

static void session_command(struct session *s, const char *line)
{
	if (s->state == ST_AUTH) {
		log_debug("session %llu: < (SASL response)", (unsigned long long)s->id);
		session_auth_step(s, line);
	} else {
		session_log_command(s, line);
		session_dispatch(s, line);
	}
	session_check_errors(s);
}

/* ---- the end of DATA ---- */

static void session_env(struct session *s, struct spool_env *e)
{
	struct tx *tx = s->tx;
	memset(e, 0, sizeof *e);
	snprintf(e->qid, sizeof e->qid, "%s", tx->qid);
	e->sender = tx->sender;
	e->envid = tx->mp.envid;
	e->ret = tx->mp.ret;
	e->body = tx->mp.body;
	e->size = tx->dp.size;
	e->dotless = tx->dp.dot_lines == 0;
	e->arrival = tx->arrival;
	e->client = s->ip;
	e->helo = s->helo;
	e->nrcpt = tx->nrcpt;
	e->rcpt = tx->rcpt;
}

static void session_committed(void *ctx, int err)
{
	struct session *s = ctx;
	s->pending--;
	if (s->dead) {   /* the client left; the message is queued all the same */
		if (s->pending == 0 && s->busy == 0)
			free(s);
		return;
	}
	struct tx *tx = s->tx;
	if (s->state == ST_CLOSING) {  /* a 421 went out meanwhile (timeout) */
		log_info("%s: %s after the session ended", tx->qid, err ? "not queued" : "queued");
		return;
	}
	s->busy++;   /* the 250 leaves with the replies to what was pipelined after it */
	if (err) {
		log_error("%s: not queued: %s", tx->qid, strerror(err));
		session_reply(s, err == ENOSPC ? R_SPOOL_FULL : R_SPOOL_ERROR);
	} else {
		log_info("%s: queued: from=<%s>, size=%llu, nrcpt=%zu", tx->qid, tx->sender,
		         (unsigned long long)tx->dp.size, tx->nrcpt);
		session_reply(s, R_QUEUED, tx->qid, s->srv->conf->hostname);
	}
	session_reset(s);
	if (s->srv->shutting_down)
		session_shutdown(s);  /* the 250 first: the client must not retry */
	else
		session_process(s);  /* pipelined commands may be waiting */
	session_unbusy(s);
}

/* Refuse a message whose data broke the rules; the session goes on. */
static bool session_data_refused(struct session *s)
{
	struct tx *tx = s->tx;
	unsigned f = tx->dp.flags;
	int spool_err = spool_msg_error(tx->msg);
	if (!f && !spool_err)
		return false;
	if (f & DATA_TOO_BIG)
		session_reply(s, R_SIZE_EXCEEDED);
	else if (f & DATA_BARE_LF)
		session_reply(s, R_DATA_BARE_LF);
	else if (f & DATA_BARE_CR)
		session_reply(s, R_DATA_BARE_CR);
	else if (f & DATA_NUL)
		session_reply(s, R_DATA_NUL);
	else if (f & DATA_LONG_LINE)
		session_reply(s, R_DATA_LONG_LINE, s->srv->conf->max_line_length);
	else
		session_reply(s, spool_err == ENOSPC ? R_SPOOL_FULL : R_SPOOL_ERROR);
	log_info("%s: refused at end of data from [%s] (flags 0x%x, spool %s)", tx->qid, s->ip,
	         f, spool_err ? strerror(spool_err) : "ok");
	session_reset(s);
	return true;
}

static void session_data_end(struct session *s)
{
	if (session_data_refused(s))
		return;
	struct spool_env e;
	session_env(s, &e);
	s->state = ST_COMMIT;
	s->pending++;
	spool_msg_commit(s->tx->msg, &e, session_committed, s);
	s->tx->msg = NULL;  /* the spool owns it now */
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
			session_data_end(s);
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
	log_info("session %llu: bare CR/LF or NUL in a command from [%s]",
	         (unsigned long long)s->id, s->ip);
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
	else if (s->pending == 0)
		free(s);   /* closed while processing its input */
}

static void session_process(struct session *s)
{
	s->busy++;
	while (!s->dead && s->bev) {
		struct evbuffer *in = bufferevent_get_input(s->bev);
		if (session_output_full(s)) {
			s->throttled = true;
			bufferevent_disable(s->bev, EV_READ);
			break;
		}
		if (s->state == ST_PROXY) {
			session_proxy_header(s, in);
			if (s->state == ST_PROXY)
				break;
		} else if (s->state == ST_GREET) {
			session_early_talker(s, in);
			break;
		} else if (s->state == ST_DATA) {
			session_feed_data(s, in);
			if (s->state == ST_DATA)
				break;  /* need more bytes, or paused */
		} else if ((s->state != ST_CMD && s->state != ST_AUTH) || !session_read_line(s, in)) {
			break;
		}
	}
	if (!s->dead && s->bev && s->paused)
		bufferevent_disable(s->bev, EV_READ);
	session_unbusy(s);
}

static void session_read_cb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	session_process(arg);
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

/* Refuse with a 421 at once (limits), before any greeting. */
static void session_refuse(struct session *s, enum esc_id id)
{
	log_info("session %llu: refused [%s]: %s", (unsigned long long)s->id, s->ip,
	         esc_get(id)->text + 3);
	session_reply(s, id, s->srv->conf->hostname);
	session_close_after_flush(s);
}

/* Per-address limits (RFC 5321 4.5.3: resources are the server's to
 * protect); false when the session was refused. */
static bool session_limits(struct session *s)
{
	const struct conf *c = s->srv->conf;
	enum limits_verdict v = limits_connect(s->srv->limits, s->ip, (int64_t)time(NULL),
	                                       c->max_connections_per_ip, c->max_connection_rate);
	if (v == LIMITS_OK) {
		s->counted = true;
		return true;
	}
	session_refuse(s, v == LIMITS_TOO_FAST ? R_TOO_FAST : R_TOO_MANY_CONNS_IP);
	return false;
}

static void session_send_greeting(struct session *s)
{
	const char *banner = s->srv->conf->banner;
	s->state = ST_CMD;
	session_reply(s, R_GREETING, s->srv->conf->hostname, *banner ? " " : "", banner);
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
	log_info("session %llu: [%s] talked before the greeting", (unsigned long long)s->id, s->ip);
	evbuffer_drain(in, evbuffer_get_length(in));
	session_reply(s, R_EARLY_TALKER);
	session_close_after_flush(s);
}

/* After the socket (and any PROXY header) is settled: limits, TLS for
 * smtps, then the greeting (now, or after greeting_delay). */
static void session_begin(struct session *s)
{
	log_info("session %llu: connect from [%s]%s", (unsigned long long)s->id, s->ip,
	         s->modes & CONF_LISTEN_SMTPS ? " (smtps)" : "");
	if (!session_limits(s))
		return;
	if ((s->modes & CONF_LISTEN_SMTPS) && !session_tls_on(s))
		return;
	unsigned delay = s->srv->conf->greeting_delay;
	if (delay == 0)
		return session_send_greeting(s);
	s->state = ST_GREET;
	s->greet_timer = evtimer_new(s->srv->base, session_greet_cb, s);
	if (!s->greet_timer)
		abort();
	struct timeval tv = { (time_t)delay, 0 };
	evtimer_add(s->greet_timer, &tv);
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
		log_info("session %llu: bad PROXY header from [%s]", (unsigned long long)s->id, s->ip);
		return session_close(s, "bad PROXY protocol header");
	}
	evbuffer_drain(in, used);
	char via[INET6_ADDRSTRLEN];
	snprintf(via, sizeof via, "%s", s->ip);
	if (h.has_addr)
		session_set_ip(s, (struct sockaddr *)&h.src, sizeof h.src);
	log_info("session %llu: PROXY v%d header from [%s]: client [%s]", (unsigned long long)s->id,
	         h.version, via, s->ip);
	session_begin(s);
}

static bool session_too_many(struct server *srv)
{
	return srv->nsessions >= srv->conf->max_connections;
}

void session_start(struct server *srv, int fd, const struct sockaddr *sa, int salen,
                   unsigned modes)
{
	struct session *s = calloc(1, sizeof *s);
	if (!s)
		abort();
	s->srv = srv;
	s->id = ++srv->next_id;
	s->modes = modes;
	session_set_ip(s, sa, (size_t)salen);
	bool full = session_too_many(srv);
	s->bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!s->bev) {
		evutil_closesocket(fd);
		free(s);
		return;
	}
	s->next = srv->sessions;
	if (s->next)
		s->next->prev = s;
	srv->sessions = s;
	if (++srv->nsessions > srv->peak_sessions)
		srv->peak_sessions = srv->nsessions;
	session_bev_setup(s);
	wire_direct(s->bev);
	s->direct = true;
	if (full)
		return session_refuse(s, R_TOO_MANY_CONNS);  /* RFC 5321 3.8 */
	if (modes & CONF_LISTEN_PROXY) {
		s->state = ST_PROXY;
		return;
	}
	session_begin(s);
}

/* 421 and close (RFC 5321 3.8). */
static void session_shutdown(struct session *s)
{
	session_reply(s, R_SHUTDOWN, s->srv->conf->hostname);
	session_close_after_flush(s);
}

void session_close_all(struct server *srv)
{
	srv->shutting_down = true;
	if (srv->nsessions == 0) {
		closer_drain(srv->closer, CLOSER_LINGER);
		return;
	}
	for (struct session *s = srv->sessions, *next; s; s = next) {
		next = s->next;
		/* a message being committed gets its 250 first (session_committed) */
		if (s->state == ST_CLOSING || s->state == ST_COMMIT)
			continue;
		session_shutdown(s);
	}
}

void session_free_all(struct server *srv)
{
	while (srv->sessions)
		session_close(srv->sessions, "shutdown");
}
