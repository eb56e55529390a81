/* milters: a session's milters (`milters`, `submission_milters`), asked in
 * order at every stage, as Postfix's milter8.c does (the facts from it
 * and Sendmail's libmilter/mfdef.h; see milter/proto.h).
 *
 * Each milter is a milter/client.h connection on the session's loop,
 * opened at the connection's start; a stage (milters_stage) sends each one
 * still interested the stage's macros and command, one after the other,
 * and waits for each reply, the session's input stopped meanwhile (the
 * policy phase's pattern: session_wait, session_wait_over, session_go_on).
 * The first refusal ends the stage. A milter that cannot be reached or
 * misbehaves answers its default_action from then on: accept leaves it
 * out, tempfail and reject refuse every message stage (451 4.7.1, 550
 * 5.7.1); the log says why.
 *
 * The message reaches the milters at its end, before the EOM policy
 * stage: its header fields (the block msgin holds), end of headers, the
 * body in chunks, end of message. While DATA streams the body to the
 * spool a copy stays here for them (in memory, within max_message_size,
 * and only when a milter will be shown it). The modifications they ask
 * for are gathered, and carried out by milters_apply before the commit.
 */
#include <arpa/inet.h>
#include <event2/bufferevent.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "lib/buf.h"
#include "lib/log.h"
#include "lib/util.h"
#include "milter/client.h"
#include "net/tls.h"
#include "smtpd/session_priv.h"

struct milter_peer {
	struct milters *m;
	struct milter_client *c;      /* NULL once failed or closed */
	struct conf_milter spec;
	uint32_t actions, proto;      /* negotiated */
	char *want[MILTER_M__COUNT];  /* SMFIR_SETSYMLIST: the macros it wants at a
	                                 stage, or NULL: tern's own list */
	bool ready;                   /* OPTNEG answered */
	bool failed;                  /* its default action from now on */
	bool done_conn;               /* accepted the connection: asked no more */
	bool done_msg;                /* accepted the message */
	bool in_msg;                  /* MAIL sent: ABORT owed if it does not end */
};

/* A modification asked for at the end of the message (milter/proto.h). */
struct milters_mod {
	char cmd;
	uint32_t index;
	char *s1, *s2;
	size_t peer;
};

enum milters_phase { MP_HEADERS, MP_EOH, MP_BODY, MP_EOB, MP_DONE };

struct milters {
	struct session *s;
	size_t n;
	struct milter_peer p[CONF_MILTERS_MAX];
	/* the stage under way */
	enum milters_stage stage;
	milters_fn *fn;               /* NULL: none */
	size_t cur;                   /* the milter asked */
	bool awaiting;                /* its reply */
	bool sync;                    /* inside milters_stage */
	bool waiting;                 /* holds a session_wait */
	enum milters_phase phase;     /* MS_EOM: where the message is */
	size_t off;                   /* in the header block or the body */
	struct milters_verdict v;
	/* the message, as DATA brought it (unstuffed, CRLF) */
	struct buf msg;
	bool collect;
	size_t body_at;               /* where the body starts in msg */
	/* what the milters asked at its end */
	struct milters_mod *mods;
	size_t nmods, capmods;
	struct buf body;              /* SMFIR_REPLBODY: the new body */
	bool body_replaced;
	char quarantine[256];         /* reason; "" none */
	char quarantine_why[300];     /* tx->quarantine points here */
	bool discard_session;         /* a discard at CONNECT or HELO: every message */
	bool discard_msg;             /* a discard at MAIL, RCPT or DATA: this one */
	unsigned busy;
	bool dead;
	const char *rcpt;             /* MS_RCPT: the address */
	char unknown[512];            /* MS_UNKNOWN: the command (cut) */
};

static void milters_pump(struct milters *m);

/* ---- events ---- */

static void milters_log(struct milters *m, size_t i, enum log_level l, const char *what,
                        const char *detail)
{
	struct session *s = m->s;
	struct ev e;
	session_event(s, &e, EK_MILTER, l, s->tx ? s->tx->qid : NULL);
	ev_add(&e, "milter", "%s", m->p[i].spec.target);
	ev_add(&e, "stage", "%s", milters_stage_name(m->stage));
	ev_add(&e, "result", "%s", what);
	if (detail && *detail)
		ev_add(&e, "detail", "%s", detail);
	ev_emit(&e);
}

const char *milters_stage_name(enum milters_stage st)
{
	static const char *const names[] = { "connect", "helo", "mail", "rcpt", "data",
	                                     "end of message", "unknown command" };
	return names[st];
}

/* ---- the verdict ---- */

/* A refusal: code with its enhanced code (when the session uses them)
 * and text. */
static void milters_refuse(struct milters *m, int code, const char *esc, const char *text,
                           bool close)
{
	struct session *s = m->s;
	m->v.ok = false;
	m->v.close = close;
	if (s->esmtp || !s->greeted)
		snprintf(m->v.text, sizeof m->v.text, "%d %s %s", code, esc, text);
	else
		snprintf(m->v.text, sizeof m->v.text, "%d %s", code, text);
}

/* A milter's own reply (SMFIR_REPLYCODE): its lines, each "ddd text" or
 * "ddd-text" with the code it began with; anything else refused with
 * the code alone. 421 closes (RFC 5321 3.8). */
static void milters_custom(struct milters *m, const struct milter_reply *r)
{
	struct buf b = BUF_INIT;
	const char *p = r->s1;
	while (*p) {
		size_t n = strcspn(p, "\r\n");
		bool last = p[n + strspn(p + n, "\r\n")] == '\0';
		const char *t = n >= 4 ? p + 4 : "";
		size_t tn = n >= 4 ? n - 4 : 0;
		for (size_t k = 0; k < tn; k++)
			if ((unsigned char)t[k] < 32 || t[k] == 127)
				tn = k;
		buf_printf(&b, "%d%c%.*s%s", r->code, last ? ' ' : '-', (int)tn, t, last ? "" : "\n");
		p += n;
		p += strspn(p, "\r\n");
	}
	m->v.ok = false;
	m->v.close = r->code == 421;
	snprintf(m->v.text, sizeof m->v.text, "%s", buf_cstr(&b));
	buf_free(&b);
}

void milters_reply(struct session *s, const struct milters_verdict *v)
{
	const char *p = v->text;
	while (*p) {
		size_t n = strcspn(p, "\n");
		session_reply_text(s, p, n, p[n] == '\n');
		p += n + (p[n] == '\n');
	}
	if (v->close)
		session_close_after_flush(s);
}

/* The stage is over: its verdict to whoever asked (now, or from the loop
 * with the input started again). */
static void milters_finish(struct milters *m)
{
	milters_fn *fn = m->fn;
	m->fn = NULL;
	m->awaiting = false;
	if (m->sync || !fn)
		return;
	struct session *s = m->s;
	struct milters_verdict v = m->v;
	m->waiting = false;
	if (!session_wait_over(s))
		return;
	fn(s, &v);
	session_go_on(s);
}

/* ---- failures and default actions ---- */

static bool milters_message_stage(enum milters_stage st)
{
	return st == MS_MAIL || st == MS_RCPT || st == MS_DATA || st == MS_EOM;
}

/* A failed milter at this stage: nothing (accept; or a connection-level
 * stage, where the refusal waits for MAIL), or its refusal. */
static bool milters_default(struct milters *m, struct milter_peer *p)
{
	if (p->spec.default_action == CONF_MILTER_ACCEPT || !milters_message_stage(m->stage))
		return false;
	if (p->spec.default_action == CONF_MILTER_TEMPFAIL)
		milters_refuse(m, 451, "4.7.1", "Service unavailable - try again later", false);
	else
		milters_refuse(m, 550, "5.7.1", "Command rejected", false);
	return true;
}

static void milters_failed(struct milters *m, size_t i, const char *why)
{
	struct milter_peer *p = &m->p[i];
	static const char *const act[] = { "tempfail", "accept", "reject" };
	char detail[400];
	snprintf(detail, sizeof detail, "%s; default_action=%s", why, act[p->spec.default_action]);
	milters_log(m, i, LOG_WARNING, "failed", detail);
	if (p->c)
		milter_client_close(p->c, false);
	p->c = NULL;
	p->failed = true;
	if (!m->fn || m->cur != i)
		return;
	m->awaiting = false;
	if (milters_default(m, p))
		return milters_finish(m);
	m->cur++;
	m->phase = MP_HEADERS;
	m->off = 0;
	milters_pump(m);
}

/* ---- macros (Postfix's milter_*_macros, Sendmail's names) ---- */

struct milters_macros {
	const char *name[8], *value[8];
	size_t n;
	char buf[4][300];
};

static void milters_macro(struct milters_macros *mm, const char *name, const char *value)
{
	if (value && mm->n < 8) {
		mm->name[mm->n] = name;
		mm->value[mm->n++] = value;
	}
}

/* The local address the client reached ({if_addr}). */
static void milters_if_addr(struct session *s, char *out, size_t n)
{
	util_local_ip(s->bev ? (int)bufferevent_getfd(s->bev) : -1, out, n);
}

static void milters_macros_of(struct milters *m, struct milters_macros *mm,
                              enum milter_macro_stage ms)
{
	struct session *s = m->s;
	memset(mm, 0, sizeof *mm);
	const char *qid = s->tx ? s->tx->qid : NULL;
	switch (ms) {
	case MILTER_M_CONNECT:
		milters_macro(mm, "j", s->conf->hostname);
		snprintf(mm->buf[0], sizeof mm->buf[0], "unknown [%s]", s->ip);
		milters_macro(mm, "_", mm->buf[0]);
		milters_macro(mm, "{daemon_name}", "ternd");
		milters_if_addr(s, mm->buf[1], sizeof mm->buf[1]);
		milters_macro(mm, "{if_addr}", mm->buf[1][0] ? mm->buf[1] : NULL);
		milters_macro(mm, "{client_addr}", s->ip);
		milters_macro(mm, "v", "tern " TERN_VERSION);
		break;
	case MILTER_M_HELO:
		if (s->client.tls && s->bev) {
			milters_macro(mm, "{tls_version}", tls_version(s->bev));
			tls_describe(s->bev, mm->buf[0], sizeof mm->buf[0]);
			milters_macro(mm, "{cipher}", mm->buf[0]);
		}
		break;
	case MILTER_M_ENVFROM:
		milters_macro(mm, "i", qid);
		if (s->client.authed)
			milters_macro(mm, "{auth_authen}", s->user);
		milters_macro(mm, "{mail_addr}", s->tx ? s->tx->sender : "");
		break;
	case MILTER_M_ENVRCPT:
		milters_macro(mm, "{rcpt_addr}", m->rcpt);
		break;
	case MILTER_M_DATA: case MILTER_M_EOH: case MILTER_M_EOM:
		milters_macro(mm, "i", qid);
		break;
	case MILTER_M__COUNT:
		break;
	}
}

/* The stage's macros, those p asked for when it set a list (Sendmail's
 * smfi_setsymlist). */
static void milters_put_macros(struct milters *m, struct milter_peer *p, struct buf *out,
                               char cmd, enum milter_macro_stage ms)
{
	struct milters_macros mm;
	milters_macros_of(m, &mm, ms);
	for (size_t k = 0; p->want[ms] && k < mm.n; k++)
		if (!milter_symlist_has(p->want[ms], mm.name[k]))
			mm.value[k] = NULL;
	milter_put_macros(out, cmd, mm.name, mm.value, mm.n);
}

/* ---- what each stage sends ---- */

/* The SMTP stages: their command, macros, "do not send" and "no reply" bits. */
struct milters_step {
	char cmd;
	enum milter_macro_stage ms;
	uint32_t no, nr;
};

static const struct milters_step milters_steps[] = {
	[MS_CONNECT] = { MILTER_C_CONNECT, MILTER_M_CONNECT, MILTER_P_NOCONNECT, MILTER_P_NR_CONN },
	[MS_HELO] = { MILTER_C_HELO, MILTER_M_HELO, MILTER_P_NOHELO, MILTER_P_NR_HELO },
	[MS_MAIL] = { MILTER_C_MAIL, MILTER_M_ENVFROM, MILTER_P_NOMAIL, MILTER_P_NR_MAIL },
	[MS_RCPT] = { MILTER_C_RCPT, MILTER_M_ENVRCPT, MILTER_P_NORCPT, MILTER_P_NR_RCPT },
	[MS_DATA] = { MILTER_C_DATA, MILTER_M_DATA, MILTER_P_NODATA, MILTER_P_NR_DATA },
	[MS_UNKNOWN] = { MILTER_C_UNKNOWN, MILTER_M__COUNT, MILTER_P_NOUNKNOWN, MILTER_P_NR_UNKN },
};

static void milters_command(struct milters *m, struct buf *out)
{
	struct session *s = m->s;
	uint16_t port = 0;
	switch (m->stage) {
	case MS_CONNECT:
		if (s->peer.ss_family == AF_INET)
			port = ntohs(((struct sockaddr_in *)&s->peer)->sin_port);
		else if (s->peer.ss_family == AF_INET6)
			port = ntohs(((struct sockaddr_in6 *)&s->peer)->sin6_port);
		{
			char host[INET6_ADDRSTRLEN + 2];
			snprintf(host, sizeof host, "[%s]", s->ip);
			milter_put_connect(out, host, strchr(s->ip, ':') ? '6' : '4', port, s->ip);
		}
		break;
	case MS_HELO:
		milter_put_string(out, MILTER_C_HELO, s->args.helo);
		break;
	case MS_MAIL:
		milter_put_env(out, MILTER_C_MAIL, s->tx->sender, NULL, 0);
		break;
	case MS_RCPT:
		milter_put_env(out, MILTER_C_RCPT, m->rcpt, NULL, 0);
		break;
	case MS_DATA:
		milter_put(out, MILTER_C_DATA, NULL, 0);
		break;
	case MS_UNKNOWN:
		milter_put_string(out, MILTER_C_UNKNOWN, m->unknown);
		break;
	case MS_EOM:
		break;
	}
}

/* The body octets a milter sees: the last of DATA's (msgin stored them
 * past the header block). */
static const char *milters_body(struct milters *m, size_t *n)
{
	*n = m->msg.len - m->body_at;
	return buf_cstr(&m->msg) + m->body_at;
}

/* Header field k of the held block (msghead.h) as a filter sees it: the
 * name, the value without its first white space, folds as LF. */
static void milters_field_of(const struct msghead *h, size_t k, struct buf *name,
                             struct buf *value)
{
	size_t len;
	const char *v = msghead_value(h, k, &len);
	buf_reset(name);
	buf_reset(value);
	buf_append(name, h->raw.data + h->f[k].off, h->f[k].nlen);
	if (len && (*v == ' ' || *v == '\t')) {
		v++;
		len--;
	}
	for (size_t i = 0; i < len; i++)
		if (v[i] != '\r' || i + 1 >= len || v[i + 1] != '\n')
			buf_putc(value, v[i]);
}

/* MS_EOM's next packet for p into out; its wait (0: no reply), or false
 * when the message is all sent. */
static bool milters_eom_next(struct milters *m, struct milter_peer *p, struct buf *out,
                             unsigned *wait)
{
	unsigned t = p->spec.content_timeout;
	struct buf name = BUF_INIT, value = BUF_INIT;
	size_t used, blen;
	const char *body;
	(void)used;
	switch (m->phase) {
	case MP_HEADERS:
		if (p->proto & MILTER_P_NOHDRS || m->off >= m->s->tx->in.head.nf) {
			m->phase = MP_EOH;
			return milters_eom_next(m, p, out, wait);
		}
		milters_field_of(&m->s->tx->in.head, m->off++, &name, &value);
		milter_put_header(out, buf_cstr(&name), buf_cstr(&value));
		buf_free(&name);
		buf_free(&value);
		*wait = p->proto & MILTER_P_NR_HDR ? 0 : t;
		return true;
	case MP_EOH:
		m->phase = MP_BODY;
		m->off = 0;
		if (p->proto & MILTER_P_NOEOH)
			return milters_eom_next(m, p, out, wait);
		milters_put_macros(m, p, out, MILTER_C_EOH, MILTER_M_EOH);
		milter_put(out, MILTER_C_EOH, NULL, 0);
		*wait = p->proto & MILTER_P_NR_EOH ? 0 : t;
		return true;
	case MP_BODY:
		body = milters_body(m, &blen);
		if (p->proto & MILTER_P_NOBODY || m->off >= blen) {
			m->phase = MP_EOB;
			return milters_eom_next(m, p, out, wait);
		}
		used = blen - m->off < MILTER_CHUNK ? blen - m->off : MILTER_CHUNK;
		milter_put(out, MILTER_C_BODY, body + m->off, used);
		m->off += used;
		*wait = p->proto & MILTER_P_NR_BODY ? 0 : t;
		return true;
	case MP_EOB:
		m->phase = MP_DONE;
		milters_put_macros(m, p, out, MILTER_C_EOB, MILTER_M_EOM);
		milter_put(out, MILTER_C_EOB, NULL, 0);
		*wait = t;
		return true;
	case MP_DONE:
		break;
	}
	return false;
}

/* The next packets for p at this stage, up to one whose reply is awaited;
 * false when p has nothing (more) to be sent. */
static bool milters_next(struct milters *m, struct milter_peer *p, struct buf *out,
                         unsigned *wait)
{
	if (m->stage == MS_EOM)
		return milters_eom_next(m, p, out, wait);
	const struct milters_step *st = &milters_steps[m->stage];
	if (m->phase != MP_HEADERS || (p->proto & st->no))
		return false;
	m->phase = MP_DONE;
	if (st->ms != MILTER_M__COUNT)
		milters_put_macros(m, p, out, st->cmd, st->ms);
	milters_command(m, out);
	*wait = p->proto & st->nr ? 0 : p->spec.command_timeout;
	if (m->stage == MS_MAIL)
		p->in_msg = true;
	return true;
}

/* Is p asked at this stage at all? A failed one answers for itself. */
static bool milters_asks(struct milters *m, struct milter_peer *p)
{
	if (p->done_conn)
		return false;
	if (p->done_msg && m->stage != MS_MAIL && milters_message_stage(m->stage))
		return false;
	return true;
}

/* Go on with the stage: the current milter's next packets, or the next
 * milter, or the end. */
static void milters_pump(struct milters *m)
{
	while (m->fn && !m->awaiting) {
		if (m->cur >= m->n)
			return milters_finish(m);
		struct milter_peer *p = &m->p[m->cur];
		if (p->failed && milters_default(m, p))
			return milters_finish(m);
		if (!p->failed && milters_asks(m, p) && !p->ready) {
			m->awaiting = true;   /* its OPTNEG reply, within connect_timeout */
			return;
		}
		struct buf out = BUF_INIT;
		unsigned wait = 0;
		while (!p->failed && milters_asks(m, p) && !wait && milters_next(m, p, &out, &wait))
			;
		if (out.len)
			milter_client_send(p->c, &out, wait);
		buf_free(&out);
		if (wait) {
			m->awaiting = true;
			return;
		}
		m->cur++;
		m->phase = MP_HEADERS;
		m->off = 0;
	}
}

/* ---- replies ---- */

/* The actions a modification needs (negotiated in OPTNEG). */
static uint32_t milters_action_of(char cmd)
{
	switch (cmd) {
	case MILTER_R_ADDHEADER: return MILTER_F_ADDHDRS;
	case MILTER_R_INSHEADER: return MILTER_F_ADDHDRS;
	case MILTER_R_CHGHEADER: return MILTER_F_CHGHDRS;
	case MILTER_R_REPLBODY: return MILTER_F_CHGBODY;
	case MILTER_R_ADDRCPT: return MILTER_F_ADDRCPT;
	case MILTER_R_ADDRCPT_PAR: return MILTER_F_ADDRCPT_PAR;
	case MILTER_R_DELRCPT: return MILTER_F_DELRCPT;
	case MILTER_R_CHGFROM: return MILTER_F_CHGFROM;
	case MILTER_R_QUARANTINE: return MILTER_F_QUARANTINE;
	}
	return 0;
}

/* A modification: only at the end of the message, only if negotiated. */
static const char *milters_modify(struct milters *m, size_t i, const struct milter_reply *r)
{
	struct milter_peer *p = &m->p[i];
	if (m->stage != MS_EOM || m->phase != MP_DONE)
		return "a modification before the end of the message";
	if (!(p->actions & milters_action_of(r->cmd)))
		return "a modification it did not negotiate";
	if (r->cmd == MILTER_R_REPLBODY) {
		if (!m->body_replaced)
			buf_reset(&m->body);
		m->body_replaced = true;
		buf_append(&m->body, r->body, r->body_len);
	} else if (r->cmd == MILTER_R_QUARANTINE) {
		snprintf(m->quarantine, sizeof m->quarantine, "%s", r->s1);
	} else {
		if (m->nmods == m->capmods) {
			m->capmods = m->capmods ? 2 * m->capmods : 8;
			m->mods = util_xrealloc(m->mods, m->capmods, sizeof *m->mods);
		}
		m->mods[m->nmods++] = (struct milters_mod){ r->cmd, r->index, util_xstrdup(r->s1),
		                                            r->s2 ? util_xstrdup(r->s2) : NULL, i };
	}
	milter_client_wait(p->c, p->spec.content_timeout);
	return NULL;
}

/* OPTNEG's answer: version 6, and nothing beyond what was offered. */
static const char *milters_optneg(struct milter_peer *p, const struct milter_reply *r)
{
	if (p->ready)
		return "a second option negotiation";
	if (r->version != MILTER_VERSION)
		return "a protocol version other than 6";
	if ((r->actions & ~MILTER_F_ALL) || (r->proto & ~MILTER_P_OFFER))
		return "actions or protocol steps that were not offered";
	p->actions = r->actions;
	p->proto = r->proto;
	const unsigned char *at = r->body;
	size_t left = r->body_len;
	uint32_t stage;
	const char *names;
	while (left && milter_symlist_next(&at, &left, &stage, &names)) {
		free(p->want[stage]);
		p->want[stage] = util_xstrdup(names);
	}
	if (left)
		return "a malformed macro list";
	p->ready = true;
	milter_client_wait(p->c, 0);
	return NULL;
}

/* The current milter answered for itself: accept. */
static void milters_accepted(struct milters *m, struct milter_peer *p)
{
	if (m->stage == MS_CONNECT || m->stage == MS_HELO || m->stage == MS_UNKNOWN)
		p->done_conn = true;
	else
		p->done_msg = true;
	m->phase = MP_DONE;
}

/* A refusal ends the stage: reject 550 5.7.1 (554 at the connection),
 * tempfail 451 4.7.1 (421 there), the milter's own reply, or
 * SMFIR_CONN_FAIL's 421; at the connection, or with a 421, it closes. */
static void milters_refusal(struct milters *m, size_t i, const struct milter_reply *r)
{
	if (r->cmd == MILTER_R_REPLYCODE)
		milters_custom(m, r);
	else if (r->cmd == MILTER_R_CONN_FAIL)
		milters_refuse(m, 421, "4.7.0", "Service unavailable - closing", true);
	else if (m->stage == MS_CONNECT && r->cmd == MILTER_R_REJECT)
		milters_refuse(m, 554, "5.7.1", "Connection rejected", true);
	else if (m->stage == MS_CONNECT)
		milters_refuse(m, 421, "4.7.1", "Service unavailable - try again later", true);
	else if (r->cmd == MILTER_R_REJECT)
		milters_refuse(m, 550, "5.7.1", "Command rejected", false);
	else
		milters_refuse(m, 451, "4.7.1", "Service unavailable - try again later", false);
	if (m->stage == MS_CONNECT)
		m->v.close = true;   /* no greeting: the session cannot go on */
	milters_log(m, i, LOG_INFO, milter_reply_name(r->cmd), m->v.text);
	milters_finish(m);
}

/* A verdict reply of the milter being asked; an error text when it may
 * not give it. */
static const char *milters_verdict(struct milters *m, size_t i, const struct milter_reply *r)
{
	struct milter_peer *p = &m->p[i];
	if (!m->fn || m->cur != i || !m->awaiting)
		return "a reply nobody asked for";
	milter_client_wait(p->c, 0);
	m->awaiting = false;
	if (m->stage == MS_EOM && m->phase == MP_DONE)
		p->in_msg = false;   /* its message is over */
	if (r->cmd == MILTER_R_CONTINUE || r->cmd == MILTER_R_ACCEPT || r->cmd == MILTER_R_SKIP)
		milters_log(m, i, LOG_DEBUG, milter_reply_name(r->cmd), NULL);
	switch (r->cmd) {
	case MILTER_R_CONTINUE:
		break;
	case MILTER_R_ACCEPT:
		milters_accepted(m, p);
		break;
	case MILTER_R_SKIP:
		if (m->stage != MS_EOM || m->phase != MP_BODY || !(p->proto & MILTER_P_SKIP))
			return "skip outside the body";
		m->phase = MP_EOB;
		break;
	case MILTER_R_DISCARD:
		if (m->stage == MS_CONNECT || m->stage == MS_HELO)
			m->discard_session = true;
		else
			m->discard_msg = true;
		m->v.discard = true;
		milters_log(m, i, LOG_INFO, "discard", NULL);
		milters_finish(m);
		return NULL;
	case MILTER_R_REJECT: case MILTER_R_TEMPFAIL: case MILTER_R_REPLYCODE:
	case MILTER_R_CONN_FAIL:
		milters_refusal(m, i, r);
		return NULL;
	default:
		return "a reply that has no place here";
	}
	if (m->phase == MP_DONE || m->stage != MS_EOM) {
		m->cur++;
		m->phase = MP_HEADERS;
		m->off = 0;
	}
	milters_pump(m);
	return NULL;
}

static void milters_reply_one(struct milters *m, size_t i, const struct milter_reply *r)
{
	struct milter_peer *p = &m->p[i];
	const char *bad = NULL;
	if (r->cmd == MILTER_R_OPTNEG) {
		bad = milters_optneg(p, r);
		if (!bad && m->fn && m->cur == i && m->awaiting) {
			m->awaiting = false;
			milters_pump(m);
		}
	} else if (r->cmd == MILTER_R_PROGRESS) {
		if (m->fn && m->cur == i && m->awaiting)
			milter_client_wait(p->c, m->stage == MS_EOM ? p->spec.content_timeout
			                                             : p->spec.command_timeout);
		else
			bad = "progress while nothing was asked";
	} else if (r->cmd == MILTER_R_SHUTDOWN) {
		bad = "shutting down";
	} else if (milters_action_of(r->cmd)) {
		bad = m->fn && m->cur == i ? milters_modify(m, i, r) : "a reply nobody asked for";
	} else if (!p->ready) {
		bad = "a reply before the option negotiation";
	} else {
		bad = milters_verdict(m, i, r);
	}
	if (bad)
		milters_failed(m, i, bad);
}

static void milters_free_now(struct milters *m);

static void milters_reply_cb(void *ctx, const struct milter_reply *r, const char *why)
{
	struct milter_peer *p = ctx;
	struct milters *m = p->m;
	size_t i = (size_t)(p - m->p);
	m->busy++;
	if (!r) {
		milters_failed(m, i, why);   /* closes the client */
	} else if (!m->dead) {
		milters_reply_one(m, i, r);
	}
	if (--m->busy == 0 && m->dead)
		milters_free_now(m);
}

/* ---- the session's side ---- */

void milters_open(struct session *s)
{
	struct conf_milter spec[CONF_MILTERS_MAX];
	char err[256];
	int n = conf_milters_parse(s->conf, conf_milters_of(s->conf, s->client.modes), spec,
	                           CONF_MILTERS_MAX, err, sizeof err);
	if (n <= 0 || session_odmr(s))
		return;
	struct milters *m = util_xcalloc(1, sizeof *m);
	m->s = s;
	m->n = (size_t)n;
	for (size_t i = 0; i < m->n; i++) {
		m->p[i].m = m;
		m->p[i].spec = spec[i];
		m->p[i].c = milter_client_open(s->srv->base, s->srv->closer, &spec[i],
		                               milters_reply_cb, &m->p[i]);
	}
	s->milters = m;
}

void milters_stage(struct session *s, enum milters_stage st, const char *arg, milters_fn *fn)
{
	struct milters *m = s->milters;
	struct milters_verdict ok = { .ok = true };
	if (!m)
		return fn(s, &ok);
	if (st == MS_MAIL) {
		m->discard_msg = false;
		for (size_t i = 0; i < m->n; i++)
			m->p[i].done_msg = false;
	}
	m->stage = st;
	m->fn = fn;
	m->cur = 0;
	m->phase = MP_HEADERS;
	m->off = 0;
	m->awaiting = false;
	m->v = ok;
	m->rcpt = st == MS_RCPT ? arg : NULL;
	snprintf(m->unknown, sizeof m->unknown, "%s", st == MS_UNKNOWN && arg ? arg : "");
	if (st == MS_EOM && (m->discard_session || m->discard_msg)) {
		m->fn = NULL;   /* discarded already: the message is not shown (ABORT follows) */
		m->v.discard = true;
		ok = m->v;
		return fn(s, &ok);
	}
	m->sync = true;
	milters_pump(m);
	m->sync = false;
	if (m->fn) {   /* a reply is awaited: the input waits for the verdict */
		m->waiting = true;
		session_wait(s);
		return;
	}
	ok = m->v;
	fn(s, &ok);
}

/* DATA's octets (session_data_sink), kept for the end of the message. */
void milters_data(struct session *s, const char *p, size_t n)
{
	struct milters *m = s->milters;
	if (m && m->collect)
		buf_append(&m->msg, p, n);
}

void milters_data_begin(struct session *s)
{
	struct milters *m = s->milters;
	if (!m)
		return;
	buf_reset(&m->msg);
	m->collect = false;   /* only for a milter that will be shown the message */
	for (size_t i = 0; i < m->n; i++)
		m->collect |= !m->p[i].failed && !m->p[i].done_conn && !m->p[i].done_msg;
}

void milters_eom(struct session *s, milters_fn *fn)
{
	struct milters *m = s->milters;
	if (m) {   /* the body: the last octets, as many as msgin stored */
		m->collect = false;
		uint64_t stored = s->tx->in.stored;
		m->body_at = stored < m->msg.len ? m->msg.len - (size_t)stored : 0;
	}
	milters_stage(s, MS_EOM, NULL, fn);
}

static void milters_mods_free(struct milters *m)
{
	for (size_t k = 0; k < m->nmods; k++) {
		free(m->mods[k].s1);
		free(m->mods[k].s2);
	}
	m->nmods = 0;
	buf_reset(&m->body);
	m->body_replaced = false;
	m->quarantine[0] = '\0';
}

/* The transaction ends: the message's memory goes; a milter that saw
 * MAIL and not the message's end gets SMFIC_ABORT (Postfix sends it so). */
void milters_tx_end(struct session *s)
{
	struct milters *m = s->milters;
	if (!m)
		return;
	struct buf abort = BUF_INIT;
	milter_put(&abort, MILTER_C_ABORT, NULL, 0);
	for (size_t i = 0; i < m->n; i++) {
		struct milter_peer *p = &m->p[i];
		if (p->in_msg && p->c && !p->failed)
			milter_client_send(p->c, &abort, 0);
		p->in_msg = false;
	}
	buf_free(&abort);
	buf_free(&m->msg);
	m->collect = false;
	milters_mods_free(m);
}

static void milters_free_now(struct milters *m)
{
	for (size_t i = 0; i < m->n; i++)
		for (size_t k = 0; k < MILTER_M__COUNT; k++)
			free(m->p[i].want[k]);
	milters_mods_free(m);
	free(m->mods);
	buf_free(&m->msg);
	buf_free(&m->body);
	free(m);
}

void milters_free(struct session *s)
{
	struct milters *m = s->milters;
	if (!m)
		return;
	s->milters = NULL;
	if (m->waiting)
		s->pending--;   /* the verdict will not come */
	m->waiting = false;
	m->fn = NULL;
	for (size_t i = 0; i < m->n; i++)
		if (m->p[i].c)
			milter_client_close(m->p[i].c, true);
	m->dead = true;
	if (!m->busy)
		milters_free_now(m);
}

/* ---- carrying out the modifications ---- */

/* The header edits, in the order asked, on the held block (msghead.h;
 * Sendmail's rules: SMFIR_CHGHEADER's index counts fields of that name
 * from 1, an empty value removes the field, a missing one is added). */
static bool milters_head_edit(struct milters *m, struct msghead *h)
{
	bool changed = false;
	for (size_t k = 0; k < m->nmods; k++) {
		const struct milters_mod *d = &m->mods[k];
		if (d->cmd == MILTER_R_ADDHEADER)
			msghead_insert(h, h->nf, d->s1, d->s2);
		else if (d->cmd == MILTER_R_INSHEADER)
			msghead_insert(h, d->index, d->s1, d->s2);
		else if (d->cmd == MILTER_R_CHGHEADER)
			msghead_change(h, d->s1, d->index ? d->index : 1, *d->s2 ? d->s2 : NULL);
		else
			continue;
		changed = true;
	}
	return changed;
}

/* An address a milter gives: its angle brackets taken off. */
static void milters_addr(const char *in, char *out, size_t n)
{
	size_t l = strlen(in);
	if (l >= 2 && in[0] == '<' && in[l - 1] == '>')
		snprintf(out, n, "%.*s", (int)(l - 2), in + 1);
	else
		snprintf(out, n, "%s", in);
}

static void milters_note(struct session *s, const char *what, const char *detail)
{
	struct ev e;
	session_event(s, &e, EK_MILTER, LOG_INFO, s->tx->qid);
	ev_add(&e, "result", "%s", what);
	if (detail)
		ev_add(&e, "detail", "%s", detail);
	ev_emit(&e);
}

/* SMFIR_ADDRCPT(_PAR): resolved as a recipient that may relay (the
 * milter is trusted), its mailboxes appended, with the RCPT parameters
 * it gives (RFC 3461 NOTIFY, ORCPT). */
static void milters_add_rcpt(struct session *s, const char *addr, const char *params)
{
	struct addr a;
	struct policy_targets t = { 0, 0, NULL };
	struct parse_rcpt_params rp;
	const char *bad;
	memset(&rp, 0, sizeof rp);
	if (params && parse_rcpt_params(params, &rp, &bad) != PARSE_OK)
		return milters_note(s, "recipient not added (bad parameters)", addr);
	if (addr_parse_mailbox(addr, &a) != ADDR_OK ||
	    policy_rcpt(s->set, &a, true, &t) != POLICY_ACCEPT) {
		policy_targets_free(&t);
		return milters_note(s, "recipient not added (not deliverable)", addr);
	}
	struct tx *tx = s->tx;
	for (size_t i = 0; i < t.n; i++)
		spool_rcpt_add(&tx->rcpt, &tx->nrcpt, &tx->cap, addr, t.v[i].addr, t.v[i].transport,
		               rp.notify, rp.orcpt);
	policy_targets_free(&t);
	milters_note(s, "recipient added", addr);
}

/* SMFIR_DELRCPT: every recipient given as that address, or delivered to it. */
static void milters_del_rcpt(struct session *s, const char *addr)
{
	struct tx *tx = s->tx;
	size_t kept = 0;
	for (size_t i = 0; i < tx->nrcpt; i++) {
		if (strcasecmp(tx->rcpt[i].orig, addr) && strcasecmp(tx->rcpt[i].addr, addr)) {
			tx->rcpt[kept++] = tx->rcpt[i];
			continue;
		}
		spool_rcpt_clear(&tx->rcpt[i]);
	}
	if (kept == tx->nrcpt)
		return milters_note(s, "recipient not deleted (not one)", addr);
	tx->nrcpt = kept;
	for (size_t i = 0; i < kept; i++)
		tx->rcpt[i].idx = (unsigned)i;
	milters_note(s, "recipient deleted", addr);
}

/* SMFIR_CHGFROM: the sender, and the MAIL parameters it gives (RFC 3461
 * RET, ENVID; BODY) in place of the client's. */
static void milters_chgfrom(struct session *s, const char *addr, const char *params)
{
	struct parse_mail_params mp;
	const char *bad;
	memset(&mp, 0, sizeof mp);
	if (params && *params && parse_mail_params(params, &mp, &bad) != PARSE_OK)
		return milters_note(s, "sender not changed (bad parameters)", addr);
	snprintf(s->tx->sender, sizeof s->tx->sender, "%s", addr);
	if (params && *params)
		s->tx->mp = mp;
	milters_note(s, "sender changed", addr);
}

/* The envelope: sender and recipients, in the order asked. */
static void milters_envelope(struct milters *m)
{
	struct session *s = m->s;
	char addr[POLICY_ADDR_MAX];
	for (size_t k = 0; k < m->nmods; k++) {
		const struct milters_mod *d = &m->mods[k];
		milters_addr(d->s1, addr, sizeof addr);
		if (d->cmd == MILTER_R_CHGFROM) {
			milters_chgfrom(s, addr, d->s2);
		} else if (d->cmd == MILTER_R_ADDRCPT || d->cmd == MILTER_R_ADDRCPT_PAR) {
			milters_add_rcpt(s, addr, d->s2);
		} else if (d->cmd == MILTER_R_DELRCPT) {
			milters_del_rcpt(s, addr);
		}
	}
}

/* A body as the spool keeps it: CRLF line ends. */
static void milters_crlf(struct buf *out, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\n' && (i == 0 || p[i - 1] != '\r'))
			buf_putc(out, '\r');
		buf_putc(out, p[i]);
	}
}

bool milters_apply(struct session *s, struct buf *body, bool *replaced)
{
	struct milters *m = s->milters;
	*replaced = false;
	if (!m)
		return true;
	milters_envelope(m);
	if (m->quarantine[0]) {   /* queued held as DMARC's quarantine is (SPOOL_QUARANTINED) */
		snprintf(m->quarantine_why, sizeof m->quarantine_why, "quarantined by a milter: %s",
		         m->quarantine);
		s->tx->quarantine = m->quarantine_why;
		milters_note(s, "quarantined (every recipient held)", m->quarantine);
	}
	if (milters_head_edit(m, &s->tx->in.head))
		milters_note(s, "header edited", NULL);
	if (m->body_replaced) {
		milters_crlf(body, buf_cstr(&m->body), m->body.len);
		*replaced = true;
		milters_note(s, "body replaced", NULL);
	}
	return s->tx->nrcpt > 0;
}
