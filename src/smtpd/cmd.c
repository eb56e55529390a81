/* cmd: the command table and each command's check and proceed (see
 * session_priv.h). A check parses and refuses what is malformed or out
 * of order; the policy phase decides; a proceed carries the answer out.
 * Every verb of the seeds' list is answered deliberately (qmail
 * commands.c, OpenSMTPD smtp_session.c, Postfix smtpd_cmd_table).
 */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "lib/buf.h"
#include "lib/idna.h"
#include "lib/log.h"
#include "lib/util.h"
#include "smtpd/session_priv.h"

static bool cmd_no_args(struct session *s, const char *verb, const char *args)
{
	if (*args == '\0')
		return true;
	session_reply(s, R_NO_ARGS, verb);
	return false;
}

/* ---- HELO and EHLO (RFC 5321 4.1.1.1) ---- */

/* Keep the HELO argument printable for the log and the Received header. */
static void cmd_set_helo(char *out, const char *args)
{
	size_t n = strcspn(args, " ");
	if (n > SESSION_HELO_MAX)
		n = SESSION_HELO_MAX;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)args[i];
		out[i] = (c > 32 && c < 127 && c != '(' && c != ')' && c != '\\') ? (char)c : '?';
	}
	out[n] = '\0';
}

static bool cmd_greet_check(struct session *s, const char *args, bool esmtp)
{
	if (*args == '\0') {
		session_reply(s, R_HELO_SYNTAX, esmtp ? "EHLO" : "HELO");
		return false;
	}
	s->args.esmtp = esmtp;
	cmd_set_helo(s->args.helo, args);
	return true;
}

static bool cmd_helo(struct session *s, const char *args)
{
	return cmd_greet_check(s, args, false);
}

static bool cmd_ehlo(struct session *s, const char *args)
{
	return cmd_greet_check(s, args, true);
}

/* An odmr listener's EHLO reply (RFC 2645 4, its example): STARTTLS,
 * AUTH and ATRN (where delivery runs); nothing of mail transactions,
 * which it does not take. */
static void cmd_ehlo_odmr_reply(struct session *s)
{
	session_reply_more(s, R_HELO, s->conf->hostname, s->ip);
	session_reply_more(s, R_EHLO_LINE, "ENHANCEDSTATUSCODES");
	if (s->set->tls && !s->client.tls && !faults_no_tls(s))
		session_reply_more(s, R_EHLO_LINE, "STARTTLS");   /* RFC 3207 */
	if (sasl_offered(s))
		session_reply_more(s, R_EHLO_LINE, sasl_ehlo_line(s));  /* RFC 4954, 2195 */
	if (s->srv->hold.release)
		session_reply_more(s, R_EHLO_LINE, "ATRN");   /* RFC 2645 */
	session_reply(s, R_EHLO_LINE, "HELP");
}

/* The EHLO reply: exactly what is implemented (RFC 5321 4.1.1.1). */
static void cmd_ehlo_reply(struct session *s)
{
	if (session_odmr(s))
		return cmd_ehlo_odmr_reply(s);
	char size[32];
	snprintf(size, sizeof size, "SIZE %llu", (unsigned long long)s->conf->max_message_size);
	session_reply_more(s, R_HELO, s->conf->hostname, s->ip);
	const char *ext[] = { "PIPELINING", size, "8BITMIME", "ENHANCEDSTATUSCODES", "DSN",
	                      "SMTPUTF8" };
	for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++)
		session_reply_more(s, R_EHLO_LINE, ext[i]);
	session_reply_more(s, R_EHLO_LINE, "CHUNKING");   /* RFC 3030 2 */
	session_reply_more(s, R_EHLO_LINE, "BINARYMIME");   /* RFC 3030 3 */
	if (s->set->tls && !s->client.tls && !faults_no_tls(s))
		session_reply_more(s, R_EHLO_LINE, "STARTTLS");   /* RFC 3207 */
	if (sasl_offered(s))
		session_reply_more(s, R_EHLO_LINE, sasl_ehlo_line(s));  /* RFC 4954, 2195 */
	if (turn_etrn_offered(s))
		session_reply_more(s, R_EHLO_LINE, "ETRN");   /* RFC 1985 */
	if (s->client.tls)
		session_reply_more(s, R_EHLO_LINE, "REQUIRETLS");   /* RFC 8689 4.1: under TLS only */
	session_reply(s, R_EHLO_LINE, "HELP");
}

static void cmd_greet_milters(struct session *s, const struct milters_verdict *v)
{
	if (!v->ok)
		return milters_reply(s, v);
	session_reset(s);  /* RFC 5321 4.1.4: like RSET */
	snprintf(s->helo, sizeof s->helo, "%s", s->args.helo);
	s->greeted = true;
	s->esmtp = s->args.esmtp;
	if (s->esmtp)
		cmd_ehlo_reply(s);
	else
		session_reply(s, R_HELO, s->conf->hostname, s->ip);
}

static void cmd_greet(struct session *s, const struct policy_answer *a)
{
	if (!a->ok)
		return session_refusal(s, a);
	milters_stage(s, MS_HELO, NULL, cmd_greet_milters);
}

/* ---- MAIL (RFC 5321 4.1.1.2) ---- */

/* The ESMTP keyword a parameter error points at, for the reply. */
static void cmd_keyword(const char *bad, char *kw, size_t n)
{
	if (!bad)
		bad = "";
	snprintf(kw, n, "%.*s", (int)strcspn(bad, " ="), bad);
}

static bool cmd_mail_params(struct session *s, const char *rest, struct parse_mail_params *mp)
{
	const char *bad = NULL;
	enum parse_perr e = parse_mail_params(rest, mp, &bad);
	char kw[41];
	cmd_keyword(bad, kw, sizeof kw);
	if (e == PARSE_EUNKNOWN)
		session_reply(s, R_PARAM_UNKNOWN, kw);
	else if (e != PARSE_OK)
		session_reply(s, R_PARAM_BAD, kw);
	else if (mp->has_size && s->conf->max_message_size &&
	         mp->size > s->conf->max_message_size)
		session_reply(s, R_SIZE_EXCEEDED);  /* RFC 1870 6.1 */
	else
		return true;
	return false;
}

/* A path, then nothing or SP and parameters (RFC 5321 4.1.1.2, 4.1.1.3). */
static enum addr_err cmd_path(const char *p, const char **rest, struct addr *a, bool null_ok,
                              bool postmaster_ok)
{
	enum addr_err ae = addr_parse_path(p, rest, a, null_ok, postmaster_ok);
	if (ae == ADDR_OK && **rest && **rest != ' ')
		ae = ADDR_ESYNTAX;
	return ae;
}

/* An address with UTF-8 (RFC 6531 3.3): well-formed, in a transaction
 * whose MAIL said SMTPUTF8 (3.4; 553 5.6.7 otherwise, 3.7.4.1), with a
 * domain that IDNA takes. bad: the reply for a syntax error. */
static bool cmd_utf8_ok(struct session *s, const struct addr *a, bool smtputf8,
                        enum esc_id bad)
{
	char alabel[ADDR_DOMAIN_MAX + 1];
	if (!a->utf8)
		return true;
	if (!smtputf8)
		return session_no(s, R_UTF8_NEEDED);
	if (!a->literal && !idna_alabel(a->domain, alabel, sizeof alabel))
		return session_no(s, bad, "domain is not a valid IDNA name (RFC 5891)");
	return true;
}

/* MAIL FROM:<reverse-path> [SP Mail-parameters] */
static bool cmd_mail(struct session *s, const char *args)
{
	if (!s->greeted)
		return session_no(s, R_NEED_HELO);
	if (s->tx)
		return session_no(s, R_NESTED_MAIL);
	const char *p = parse_keyword_colon(args, "FROM"), *rest;
	if (!p)
		return session_no(s, R_MAIL_SYNTAX);
	enum addr_err ae = cmd_path(p, &rest, &s->args.addr, true, false);
	if (ae == ADDR_EUTF8)
		return session_no(s, R_UTF8_BAD);
	if (ae != ADDR_OK)
		return session_no(s, R_BAD_SENDER, addr_strerror(ae));
	if (!cmd_mail_params(s, rest, &s->args.mp) ||
	    !cmd_utf8_ok(s, &s->args.addr, s->args.mp.smtputf8, R_BAD_SENDER))
		return false;
	if (s->args.mp.requiretls && !s->client.tls)   /* RFC 8689 4.1 */
		return session_no(s, R_REQUIRETLS_CLEAR);
	if (!spool_has_room(s->srv->spool, s->args.mp.size)) {   /* RFC 1870 6.1: 452 */
		struct ev e;
		session_event(s, &e, EK_REJECT, LOG_WARNING, NULL);
		ev_add(&e, "cmd", "MAIL");
		ev_add(&e, "reason", "the spool's disk is (nearly) full");
		ev_emit(&e);
		return session_no(s, R_SPOOL_FULL);
	}
	return true;
}

/* The SPF check's line: its result, the identity's domain, the client
 * and the term that decided (RFC 7208 9.1's fields, as a log line). */
static void cmd_mail_spf(struct session *s, const struct policy_spf *spf, const char *qid)
{
	const struct spf_outcome *o = &spf->o;
	if (!spf->checked)
		return;
	struct ev e;
	session_event(s, &e, EK_SPF, LOG_INFO, qid);
	ev_add(&e, "result", "%s", spf_result_name(o->result));
	ev_add(&e, "identity", "%s", o->identity == SPF_HELO ? "helo" : "mailfrom");
	ev_add(&e, "domain", "%s", o->domain);
	if (o->mechanism[0])
		ev_add(&e, "mechanism", "%s", o->mechanism);
	if (o->problem[0])
		ev_add(&e, "problem", "%s", o->problem);
	ev_emit(&e);
}

/* A refusal of the milters to a command of the transaction, logged. */
static void cmd_milter_refused(struct session *s, const char *cmd, const struct milters_verdict *v)
{
	struct ev e;
	session_event(s, &e, EK_REJECT, LOG_INFO, s->tx ? s->tx->qid : NULL);
	ev_add(&e, "cmd", "%s", cmd);
	ev_add(&e, "reason", "milter: %.*s", (int)strcspn(v->text, "\n"), v->text);
	ev_emit(&e);
	milters_reply(s, v);
}

/* The milters saw MAIL: the transaction begins, or it never was. */
static void cmd_mail_milters(struct session *s, const struct milters_verdict *v)
{
	struct tx *tx = s->tx;
	if (!tx)
		return;
	if (!v->ok) {
		cmd_milter_refused(s, "MAIL", v);
		return session_reset(s);
	}
	struct ev e;
	session_event(s, &e, EK_RECEIVED, LOG_INFO, tx->qid);
	ev_add(&e, "helo", "%s", s->helo);
	ev_add(&e, "from", "<%s>", tx->sender);
	if (s->client.authed)
		ev_add(&e, "user", "%s", s->user);
	if (s->client.tls)
		ev_flag(&e, "tls");
	ev_emit(&e);
	cmd_mail_spf(s, &tx->spf, tx->qid);
	session_reply(s, R_SENDER_OK);
}

static void cmd_mail_proceed(struct session *s, const struct policy_answer *a)
{
	if (!a->ok) {
		cmd_mail_spf(s, &a->spf, NULL);
		char from[POLICY_ADDR_MAX];
		addr_format(&s->args.addr, from, sizeof from);
		struct ev e;
		session_event(s, &e, EK_REJECT, LOG_INFO, NULL);
		ev_add(&e, "cmd", "MAIL");
		if (s->client.authed)
			ev_add(&e, "user", "%s", s->user);
		ev_add(&e, "from", "<%s>", from);
		ev_add(&e, "reason", "%s", a->why);
		ev_emit(&e);
		return session_refusal(s, a);
	}
	session_tx_begin(s);
	struct tx *tx = s->tx;
	tx->mp = s->args.mp;
	tx->spf = a->spf;
	addr_format(&s->args.addr, tx->sender, sizeof tx->sender);
	milters_stage(s, MS_MAIL, NULL, cmd_mail_milters);
}

/* ---- RCPT (RFC 5321 4.1.1.3) ---- */

static bool cmd_rcpt_params(struct session *s, const char *rest, struct parse_rcpt_params *rp)
{
	const char *bad = NULL;
	enum parse_perr e = parse_rcpt_params(rest, rp, &bad);
	if (e == PARSE_OK)
		return true;
	char kw[41];
	cmd_keyword(bad, kw, sizeof kw);
	session_reply(s, e == PARSE_EUNKNOWN ? R_PARAM_UNKNOWN : R_PARAM_BAD, kw);
	return false;
}

/* RCPT TO:<forward-path> [SP Rcpt-parameters] */
static bool cmd_rcpt(struct session *s, const char *args)
{
	if (!s->tx)
		return session_no(s, R_NEED_MAIL, "RCPT");
	const char *p = parse_keyword_colon(args, "TO"), *rest;
	if (!p)
		return session_no(s, R_RCPT_SYNTAX);
	enum addr_err ae = cmd_path(p, &rest, &s->args.addr, false, true);
	if (ae == ADDR_EUTF8)
		return session_no(s, R_UTF8_BAD);
	if (ae != ADDR_OK)
		return session_no(s, R_BAD_RCPT, addr_strerror(ae));
	if (!cmd_utf8_ok(s, &s->args.addr, s->tx->mp.smtputf8, R_BAD_RCPT) ||
	    !cmd_rcpt_params(s, rest, &s->args.rp))
		return false;
	addr_format(&s->args.addr, s->args.orig, sizeof s->args.orig);
	return true;
}

/* The milters saw RCPT: the recipient's mailboxes stay, or go again. */
static void cmd_rcpt_milters(struct session *s, const struct milters_verdict *v)
{
	struct tx *tx = s->tx;
	if (!tx)
		return;
	if (!v->ok) {
		while (tx->nrcpt > tx->rcpt_before)
			spool_rcpt_clear(&tx->rcpt[--tx->nrcpt]);
		return cmd_milter_refused(s, "RCPT", v);
	}
	tx->rcpt_cmds++;
	session_reply(s, R_RCPT_OK);
}

static void cmd_rcpt_proceed(struct session *s, const struct policy_answer *a)
{
	if (!s->tx)
		return;   /* the transaction went while the answer was awaited */
	if (!a->ok) {
		struct ev e;
		session_event(s, &e, EK_REJECT, LOG_INFO, s->tx->qid);
		ev_add(&e, "cmd", "RCPT");
		ev_add(&e, "to", "<%s>", s->args.orig);
		ev_add(&e, "reason", "%s", a->why);
		ev_emit(&e);
		return session_refusal(s, a);
	}
	struct tx *tx = s->tx;
	tx->rcpt_before = tx->nrcpt;   /* the milters may refuse it yet */
	for (size_t i = 0; i < a->targets.n; i++) {
		spool_rcpt_add(&tx->rcpt, &tx->nrcpt, &tx->cap, s->args.orig, a->targets.v[i].addr,
		               a->targets.v[i].transport, s->args.rp.notify, s->args.rp.orcpt);
		if (a->targets.v[i].inbox) {   /* the test mode keeps it (policy/capture.h) */
			tx->rcpt[tx->nrcpt - 1].inbox = util_xstrdup(a->targets.v[i].inbox);
			tx->rcpt[tx->nrcpt - 1].held = SPOOL_CAPTURED;
		}
	}
	milters_stage(s, MS_RCPT, s->args.orig, cmd_rcpt_milters);
}

/* ---- DATA (RFC 5321 4.1.1.4) ---- */

static bool cmd_data(struct session *s, const char *args)
{
	if (!cmd_no_args(s, "DATA", args))
		return false;
	if (!s->tx)
		return session_no(s, R_NEED_MAIL, "DATA");
	if (s->tx->bdat || s->tx->bdat_failed)   /* RFC 3030 2 */
		return session_no(s, R_BDAT_MIXED);
	if (s->tx->mp.body == BODY_BINARYMIME)   /* RFC 3030 3 */
		return session_no(s, R_BINARYMIME_DATA);
	if (s->tx->nrcpt == 0)
		return session_no(s, R_NEED_RCPT);
	return true;
}

/* RFC 5321 4.4: the trace header, at the top of the message (below the
 * fields tern adds for itself), appended to b. */
static void cmd_received(struct session *s, struct buf *b)
{
	struct tx *tx = s->tx;
	char date[64];
	util_rfc5322_date(time(NULL), date, sizeof date);
	/* RFC 3848: ESMTP, ESMTPS (TLS), ESMTPA (AUTH), ESMTPSA (both);
	 * RFC 6531 3.7.3: UTF8SMTP, UTF8SMTPS, ... for an SMTPUTF8 transaction. */
	char with[16];
	snprintf(with, sizeof with, "%s%s%s",
	         tx->mp.smtputf8 ? "UTF8SMTP" : s->esmtp ? "ESMTP" : "SMTP",
	         s->client.tls ? "S" : "", s->client.authed ? "A" : "");
	buf_printf(b, "Received: from %s ([%s])\r\n\tby %s (tern) with %s id %s", s->helo,
	           s->ip, s->conf->hostname, with, tx->qid);
	if (tx->rcpt_cmds == 1)
		buf_printf(b, "\r\n\tfor <%s>", tx->rcpt[0].orig);
	if (tx->mp.requiretls)   /* RFC 8689 4.1: the trace says it was asked for */
		buf_puts(b, "\r\n\t(requiretls)");
	buf_printf(b, ";\r\n\t%s\r\n", date);
}

/* The message begins (DATA's 354, BDAT's first chunk): the spool, the
 * DKIM signer and verifier, the milters' copy, the parser. */
static void cmd_msg_begin(struct session *s)
{
	const struct conf *c = s->conf;
	struct tx *tx = s->tx;
	tx->arrival = (int64_t)time(NULL);
	tx->msg = spool_msg_begin(s->srv->spool, tx->qid, session_chunk_done, s);
	/* Ours to sign (AUTH, or relay_networks with dkim_sign = trusted):
	 * signed if there is a key, and not verified. */
	bool own = signer_owns(s->set, s->client.authed, s->client.addr);
	msgin_begin(&tx->in, tx->msg, signer_begin(s->set, own), c->max_header_size);
	tx->verifier = verifier_begin(s->set, own);
	milters_data_begin(s);
	data_init(&tx->dp, c->max_line_length, c->max_message_size, session_data_sink, s);
}

static void cmd_data_milters(struct session *s, const struct milters_verdict *v)
{
	if (!s->tx)
		return;
	if (!v->ok)
		return cmd_milter_refused(s, "DATA", v);
	cmd_msg_begin(s);
	s->state = ST_DATA;
	session_set_timeout(s, s->conf->data_timeout);
	session_reply(s, R_START_DATA);
}

static void cmd_data_proceed(struct session *s, const struct policy_answer *a)
{
	if (!s->tx)
		return;
	if (!a->ok)
		return session_refusal(s, a);
	milters_stage(s, MS_DATA, NULL, cmd_data_milters);
}

/* Refuse a message whose data broke the rules; the session goes on. */
static bool cmd_data_refused(struct session *s)
{
	struct tx *tx = s->tx;
	if (!msgin_end(&tx->in))
		tx->dp.flags |= DATA_HEAD_TOO_BIG;
	if (s->rec)
		transcript_data_end(s);
	unsigned f = tx->dp.flags;
	if (tx->mp.body == BODY_BINARYMIME)   /* RFC 3030 3: any octet, lines of any length */
		f &= ~(unsigned)(DATA_BARE_LF | DATA_BARE_CR | DATA_NUL | DATA_LONG_LINE);
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
		session_reply(s, R_DATA_LONG_LINE, s->conf->max_line_length);
	else if (f & DATA_HEAD_TOO_BIG)
		session_reply(s, R_HEADER_TOO_BIG, (unsigned long long)s->conf->max_header_size);
	else
		session_reply(s, spool_err == ENOSPC ? R_SPOOL_FULL : R_SPOOL_ERROR);
	struct ev e;
	session_event(s, &e, EK_REFUSED_DATA, LOG_INFO, tx->qid);
	ev_add(&e, "flags", "0x%x", f);
	ev_add(&e, "spool", "%s", spool_err ? strerror(spool_err) : "ok");
	ev_emit(&e);
	session_reset(s);
	return true;
}

static void cmd_env(struct session *s, struct spool_env *e)
{
	struct tx *tx = s->tx;
	memset(e, 0, sizeof *e);
	snprintf(e->qid, sizeof e->qid, "%s", tx->qid);
	e->sender = tx->sender;
	e->envid = tx->mp.envid;
	e->ret = tx->mp.ret;
	e->body = tx->mp.body;
	e->smtputf8 = tx->mp.smtputf8;
	e->requiretls = tx->mp.requiretls;
	/* RFC 8689 5: TLS-Required: No is ignored on a REQUIRETLS message */
	e->tls_optional = !tx->mp.requiretls && msgin_tls_optional(&tx->in);
	e->size = tx->in.stored;
	e->dotless = tx->dp.dot_lines == 0;
	e->arrival = tx->arrival;
	e->client = s->ip;
	e->helo = s->helo;
	e->session = s->id;
	e->nrcpt = tx->nrcpt;
	e->rcpt = tx->rcpt;
}

/* The test mode: what the inbox lists of a message with captured
 * recipients, or NULL. */
static struct spool_capture *cmd_capture(struct tx *tx)
{
	bool any = false;
	for (size_t i = 0; i < tx->nrcpt && !any; i++)
		any = tx->rcpt[i].inbox != NULL;
	if (!any)
		return NULL;
	return spool_capture_of(&tx->in.head);
}

/* Every recipient queued held, with the reason where ternctl shows it:
 * only `ternctl release QID` lets it go (SPOOL_QUARANTINED). */
static void cmd_quarantine(struct tx *tx)
{
	for (size_t i = 0; i < tx->nrcpt; i++) {
		if (tx->rcpt[i].held == SPOOL_CAPTURED)
			continue;
		tx->rcpt[i].held = SPOOL_QUARANTINED;
		free(tx->rcpt[i].last_reply);
		tx->rcpt[i].last_reply = util_xstrdup(tx->quarantine);
	}
}

/* The policy's word on the whole message: commit, or refuse. */
static void cmd_eom_proceed(struct session *s, const struct policy_answer *a)
{
	if (!a->ok) {
		struct ev e;
		session_event(s, &e, EK_REJECT, LOG_INFO, s->tx->qid);
		ev_add(&e, "cmd", "end of data");
		ev_add(&e, "reason", "%s", a->why);
		ev_emit(&e);
		session_refusal(s, a);
		return session_reset(s);
	}
	struct spool_env e;
	cmd_env(s, &e);
	struct buf fields = BUF_INIT;
	cmd_received(s, &fields);
	authres_field(s, &fields);
	if (s->tx->quarantine)
		cmd_quarantine(s->tx);
	e.capture = cmd_capture(s->tx);
	/* RFC 6376 5: signed before the 250 */
	e.prefix = msgin_prefix(&s->tx->in, fields.data, s->id, s->tx->qid);
	buf_free(&fields);
	s->pending++;
	spool_msg_commit(s->tx->msg, &e, session_committed, s);
	s->tx->msg = NULL;  /* the spool owns it now */
	free(e.prefix);     /* copied */
	spool_capture_free(e.capture);
}

static void cmd_eom(struct session *s)
{
	struct policy_query q;
	session_query(s, &q, POLICY_EOM);
	session_ask(s, &q, cmd_eom_proceed);
}

/* A body the milters replaced (SMFIR_REPLBODY): the one streamed to the
 * spool is given up and the new one written under the same queue id
 * (spool.h allows a new spool_msg for it after the abort); the DKIM
 * signer, which hashed the old body, starts again on the new one, and
 * signs over the header block as it finally is (msgin_prefix). */
static void cmd_replace_body(struct session *s, const struct buf *body)
{
	struct tx *tx = s->tx;
	spool_msg_abort(tx->msg);
	tx->msg = tx->in.msg = spool_msg_begin(s->srv->spool, tx->qid, session_chunk_done, s);
	spool_msg_write(tx->msg, body->data, body->len);
	tx->in.stored = body->len;
	for (size_t i = 0; i < body->len && !tx->dp.dot_lines; i++)   /* stuffing needed? */
		tx->dp.dot_lines = body->data[i] == '.' && (i == 0 || body->data[i - 1] == '\n');
	if (tx->in.signer) {
		signer_free(tx->in.signer);
		tx->in.signer = signer_begin(s->set, true);   /* it signed: ours */
		if (tx->in.signer)
			signer_feed(tx->in.signer, body->data, body->len);
	}
}

/* The milters' word on the whole message: refused, discarded (250, and
 * nothing kept), or changed as they asked and on to the EOM stage. */
static void cmd_eom_milters(struct session *s, const struct milters_verdict *v)
{
	struct tx *tx = s->tx;
	if (!v->ok) {
		cmd_milter_refused(s, "end of data", v);
		return session_reset(s);
	}
	struct buf body = BUF_INIT;
	bool replaced;
	bool kept = !v->discard && milters_apply(s, &body, &replaced);
	if (kept && replaced)
		cmd_replace_body(s, &body);
	buf_free(&body);
	if (kept)
		return cmd_eom(s);
	struct ev e;
	session_event(s, &e, EK_MILTER, LOG_INFO, tx->qid);
	ev_add(&e, "result", "%s", v->discard ? "discarded" : "discarded (no recipient left)");
	ev_emit(&e);
	session_reply(s, R_QUEUED, tx->qid, s->conf->hostname);
	session_reset(s);
}

/* Every check is in: DMARC decides (RFC 7489 6.6), then the milters and
 * the EOM stage. */
static void cmd_checked(struct session *s)
{
	const char *domain = NULL;
	enum authres_act act = authres_decide(s, &domain);
	if (act == AUTHRES_REJECT) {
		struct ev e;
		session_event(s, &e, EK_REJECT, LOG_INFO, s->tx->qid);
		ev_add(&e, "cmd", "end of data");
		ev_add(&e, "reason", "DMARC policy of %s", domain);
		ev_emit(&e);
		session_reply(s, R_DMARC_REJECT, domain);
		return session_reset(s);
	}
	if (act == AUTHRES_QUARANTINE)
		s->tx->quarantine = "quarantined: DMARC policy of the From domain (p=quarantine)";
	milters_eom(s, cmd_eom_milters);
}

/* A check is in (the DKIM verdicts, logged; the DMARC record): on when it
 * was the last. A session closed meanwhile freed them; they never call. */
static void cmd_check_done(void *ctx)
{
	struct session *s = ctx;
	if (--s->tx->checks > 0)
		return;
	s->asking = false;
	s->busy++;
	cmd_checked(s);
	session_go_on(s);
}

/* The end of DATA: the message's DKIM signatures checked (RFC 6376 6,
 * their keys fetched) and its DMARC record looked up at once, while the
 * input waits; then DMARC's verdict and the EOM stage. */
void cmd_data_end(struct session *s)
{
	if (cmd_data_refused(s) || (s->faults && faults_data_end(s)))
		return;
	s->state = ST_COMMIT;
	struct tx *tx = s->tx;
	size_t forged = msgin_strip_verdicts(&tx->in, s->conf->authserv_id);
	if (forged) {   /* RFC 8601 5: not ours, whatever they claim */
		struct ev e;
		session_event(s, &e, EK_AUTHRES, LOG_INFO, tx->qid);
		ev_add(&e, "removed", "%zu Authentication-Results claiming %s", forged,
		       s->conf->authserv_id);
		ev_emit(&e);
	}
	tx->checks = 0;
	if (tx->verifier && verifier_end(tx->verifier, s->srv->dns, s->srv->base, s->id, tx->qid,
	                                 cmd_check_done, s))
		tx->checks++;
	if (authres_dmarc_start(s, cmd_check_done, s))
		tx->checks++;
	if (tx->checks > 0) {
		s->asking = true;
		return;
	}
	cmd_checked(s);
}

/* ---- BDAT (RFC 3030) ---- */

/* Read the chunk's octets next: into the message, or dropped and then
 * answered with err (has_err; else the refusal went already). Whatever
 * the answer, the octets are read: the next command follows them. */
static void cmd_bdat_read(struct session *s, bool discard, bool has_err, enum esc_id err)
{
	s->chunk.discard = discard;
	s->chunk.has_err = has_err;
	s->chunk.err = err;
	s->state = ST_BDAT;
	session_set_timeout(s, s->conf->data_timeout);
}

/* The message was refused at its first chunk: the transaction goes (the
 * rest of its chunks get 503), this chunk's octets are dropped. */
static void cmd_bdat_refused(struct session *s)
{
	if (s->dead || s->state == ST_CLOSING)
		return;
	session_reset(s);
	cmd_bdat_read(s, true, false, R_SUCCESS);
}

static void cmd_bdat_milters(struct session *s, const struct milters_verdict *v)
{
	if (!s->tx)
		return cmd_bdat_read(s, true, true, R_NEED_MAIL);
	if (!v->ok) {
		cmd_milter_refused(s, "BDAT", v);
		return cmd_bdat_refused(s);
	}
	cmd_msg_begin(s);
	data_raw(&s->tx->dp);
	s->tx->bdat = true;
	cmd_bdat_read(s, false, false, R_SUCCESS);
}

/* The first chunk: the DATA stage's policy and milters, as for DATA. */
static void cmd_bdat_proceed(struct session *s, const struct policy_answer *a)
{
	if (!s->tx)
		return cmd_bdat_read(s, true, true, R_NEED_MAIL);
	if (!a->ok) {
		session_refusal(s, a);
		return cmd_bdat_refused(s);
	}
	milters_stage(s, MS_DATA, NULL, cmd_bdat_milters);
}

/* BDAT chunk-size [LAST]: never refused before its octets are read (the
 * row passes every gate), except when malformed, where its size is not
 * known. */
static bool cmd_bdat(struct session *s, const char *args)
{
	struct tx *tx = s->tx;
	if (!parse_bdat(args, &s->chunk.size, &s->chunk.last))
		return session_no(s, R_BDAT_SYNTAX);
	s->chunk.left = s->chunk.size;
	if (!tx) {
		cmd_bdat_read(s, true, true, R_NEED_MAIL);
	} else if (tx->bdat_failed) {
		cmd_bdat_read(s, true, true, tx->bdat_err);
	} else if (tx->nrcpt == 0) {
		cmd_bdat_read(s, true, true, R_NEED_RCPT);
	} else if (tx->bdat) {
		cmd_bdat_read(s, false, false, R_SUCCESS);
	} else {
		struct policy_query q;
		session_query(s, &q, POLICY_DATA);
		session_ask(s, &q, cmd_bdat_proceed);
	}
	return false;
}

static void cmd_bdat_answer(struct session *s, enum esc_id id)
{
	if (id == R_NEED_MAIL)
		session_reply(s, id, "BDAT");
	else
		session_reply(s, id);
}

void cmd_bdat_chunk_end(struct session *s)
{
	struct tx *tx = s->tx;
	s->state = ST_CMD;
	session_set_timeout(s, s->conf->command_timeout);
	if (s->chunk.discard) {
		/* the repeats of a failed message's error count once, at its
		 * chunk: a pipelined message of many chunks is no attack */
		s->uncounted = tx && tx->bdat_failed;
		if (s->chunk.has_err)
			cmd_bdat_answer(s, s->chunk.err);
		s->uncounted = false;
		if (s->chunk.last && tx)
			session_reset(s);   /* RFC 3030 2: the message is gone */
		return;
	}
	if (s->chunk.last) {
		data_finish(&tx->dp);
		return cmd_data_end(s);   /* the end of DATA's path from here */
	}
	if (tx->dp.flags & DATA_TOO_BIG) {   /* RFC 3030 4.2; the rest is dropped */
		tx->bdat_failed = true;
		tx->bdat_err = R_SIZE_EXCEEDED;
		struct ev e;
		session_event(s, &e, EK_REFUSED_DATA, LOG_INFO, tx->qid);
		ev_add(&e, "flags", "0x%x", tx->dp.flags);
		ev_add(&e, "reason", "BDAT: over max_message_size");
		ev_emit(&e);
		return session_reply(s, R_SIZE_EXCEEDED);
	}
	session_reply(s, R_BDAT_OK, (unsigned long long)s->chunk.size);
}

/* ---- the others ---- */

static bool cmd_rset(struct session *s, const char *args)
{
	if (cmd_no_args(s, "RSET", args)) {
		session_reset(s);
		session_reply(s, R_SUCCESS);
	}
	return false;
}

static bool cmd_noop(struct session *s, const char *args)
{
	(void)args;  /* RFC 5321 4.1.1.9: a parameter is allowed and ignored */
	session_reply(s, R_SUCCESS);
	return false;
}

static bool cmd_quit(struct session *s, const char *args)
{
	(void)args;
	session_reply(s, R_BYE);
	session_close_after_flush(s);
	return false;
}

static const char *const cmd_help_text[][2] = {
	{ "HELO", "HELO hostname - identify yourself (plain SMTP)" },
	{ "EHLO", "EHLO hostname - identify yourself and list the extensions" },
	{ "MAIL", "MAIL FROM:<sender> [SIZE=n] [BODY=8BITMIME|BINARYMIME] [RET=FULL|HDRS] [ENVID=id] "
	          "[SMTPUTF8]" },
	{ "RCPT", "RCPT TO:<recipient> [NOTIFY=SUCCESS,FAILURE,DELAY|NEVER] [ORCPT=rfc822;addr]" },
	{ "DATA", "DATA - then the message, ending with a line holding only a dot" },
	{ "BDAT", "BDAT chunk-size [LAST] - then exactly that many octets (RFC 3030)" },
	{ "RSET", "RSET - abandon the current message" },
	{ "VRFY", "VRFY address - check a mailbox (answers 252 unless enabled)" },
	{ "EXPN", "EXPN alias - expand an alias (answers 252 unless enabled)" },
	{ "STARTTLS", "STARTTLS - start TLS (RFC 3207), when offered in the EHLO reply" },
	{ "AUTH", "AUTH PLAIN|LOGIN [response] | CRAM-MD5 - authenticate (RFC 4954), when offered" },
	{ "ETRN", "ETRN domain|@domain - deliver the mail held here for it (RFC 1985), when offered" },
	{ "ATRN", "ATRN [domain,...] - reverse the connection and take your mail (RFC 2645), "
	          "on an ODMR listener after AUTH" },
	{ "HELP", "HELP [command] - this text" },
	{ "NOOP", "NOOP - do nothing, answer 250" },
	{ "QUIT", "QUIT - end the session" },
};
#define CMD_NHELP (sizeof cmd_help_text / sizeof cmd_help_text[0])

static bool cmd_help(struct session *s, const char *args)
{
	if (*args) {
		size_t i = 0;
		while (i < CMD_NHELP && strcasecmp(args, cmd_help_text[i][0]))
			i++;
		if (i < CMD_NHELP)
			session_reply(s, R_HELP_LINE, cmd_help_text[i][1]);
		else
			session_reply(s, R_HELP_UNKNOWN, args);
		return false;
	}
	session_reply_more(s, R_HELP_LINE, "tern: the commands are");
	session_reply_more(s, R_HELP_LINE,
	                   "HELO EHLO MAIL RCPT DATA BDAT RSET VRFY EXPN HELP NOOP QUIT STARTTLS "
	                   "AUTH");
	session_reply_more(s, R_HELP_LINE, "ETRN and ATRN where offered; TURN, VERB and DSN are "
	                   "answered but not offered");
	session_reply(s, R_HELP_END);
	return false;
}

/* VRFY and EXPN (RFC 5321 3.5): 252 unless vrfy_disclose = yes. */
static void cmd_verify(struct session *s, const char *verb, const char *args, bool expn)
{
	if (!*args)
		return session_reply(s, R_VRFY_SYNTAX, verb);
	if (!s->conf->vrfy_disclose)
		return session_reply(s, expn ? R_EXPN_CANNOT : R_VRFY_CANNOT);
	struct addr a;
	const char *rest;
	if (addr_parse_path(args, &rest, &a, false, true) != ADDR_OK)
		return session_reply(s, R_BAD_RCPT, "not an address");
	struct policy_targets t = { 0, 0, NULL };
	enum policy_verdict v = policy_rcpt(s->set, &a, false, &t);
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

static bool cmd_vrfy(struct session *s, const char *args)
{
	cmd_verify(s, "VRFY", args, false);
	return false;
}

static bool cmd_expn(struct session *s, const char *args)
{
	cmd_verify(s, "EXPN", args, true);
	return false;
}

/* Answered, not offered: the row's reply says why (its verb for %s). */
static bool cmd_answered(struct session *s, const char *args)
{
	(void)args;
	return session_no(s, s->cmd->reply, s->cmd->verb);
}

/* RFC 3207 4.2: the session starts over, and nothing the client sent
 * before the handshake may count: input already buffered is discarded
 * (command injection across STARTTLS, CVE-2011-0411). */
static void cmd_start_tls(struct session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	size_t stale = evbuffer_get_length(in);
	if (stale) {
		struct ev e;
		session_event(s, &e, EK_PROTOCOL, LOG_INFO, NULL);
		ev_add(&e, "problem", "discarding %zu octets sent with STARTTLS", stale);
		ev_emit(&e);
	}
	evbuffer_drain(in, stale);
	if (!session_tls_on(s))
		return;
	s->greeted = s->esmtp = s->client.authed = false;
	s->helo[0] = s->user[0] = '\0';
}

/* STARTTLS's own work: 220, then the handshake. */
static void cmd_starttls_go(struct session *s)
{
	session_reset(s);
	session_reply(s, R_TLS_READY);
	cmd_start_tls(s);
}

static bool cmd_starttls(struct session *s, const char *args)
{
	if (!s->set->tls || faults_no_tls(s))
		return session_no(s, R_NOT_OFFERED, "STARTTLS");
	if (s->client.tls)
		return session_no(s, R_TLS_ACTIVE);
	if (*args)
		return session_no(s, R_TLS_SYNTAX);
	if (s->faults && faults_starttls(s, cmd_starttls_go))
		return false;
	cmd_starttls_go(s);
	return false;
}

/* reply: for cmd_answered rows only (R_UNRECOGNIZED, never sent, on the
 * others). */
#define PRE (CMD_PRE_TLS | CMD_PRE_AUTH | CMD_ODMR_PRE_AUTH)
#define NO CMD_NO_STAGE
#define TX (CMD_ERRORS | CMD_NOT_ODMR)
static const struct cmd cmd_table[] = {
	{ "HELO", PRE | CMD_LAST | CMD_ERRORS, POLICY_HELO, cmd_helo, cmd_greet, R_UNRECOGNIZED },
	{ "EHLO", PRE | CMD_LAST | CMD_ERRORS, POLICY_HELO, cmd_ehlo, cmd_greet, R_UNRECOGNIZED },
	{ "MAIL", TX, POLICY_MAIL, cmd_mail, cmd_mail_proceed, R_UNRECOGNIZED },
	{ "RCPT", TX, POLICY_RCPT, cmd_rcpt, cmd_rcpt_proceed, R_UNRECOGNIZED },
	{ "DATA", TX | CMD_LAST, POLICY_DATA, cmd_data, cmd_data_proceed, R_UNRECOGNIZED },
	{ "RSET", PRE | CMD_ERRORS, NO, cmd_rset, NULL, R_UNRECOGNIZED },
	{ "NOOP", PRE | CMD_LAST, NO, cmd_noop, NULL, R_UNRECOGNIZED },
	{ "QUIT", PRE | CMD_LAST | CMD_AT_STOP, NO, cmd_quit, NULL, R_UNRECOGNIZED },
	{ "HELP", PRE, NO, cmd_help, NULL, R_UNRECOGNIZED },
	{ "VRFY", CMD_LAST | CMD_ERRORS, NO, cmd_vrfy, NULL, R_UNRECOGNIZED },
	{ "EXPN", CMD_LAST | CMD_ERRORS, NO, cmd_expn, NULL, R_UNRECOGNIZED },
	{ "STARTTLS", PRE | CMD_LAST | CMD_ERRORS, NO, cmd_starttls, NULL, R_UNRECOGNIZED },
	{ "AUTH", CMD_PRE_AUTH | CMD_ODMR_PRE_AUTH | CMD_LAST | CMD_ERRORS, NO, sasl_check, NULL,
	  R_UNRECOGNIZED },
	{ "ATRN", CMD_PRE_AUTH | CMD_LAST | CMD_ERRORS, NO, turn_atrn, NULL, R_UNRECOGNIZED },
	{ "TURN", CMD_PRE_AUTH | CMD_LAST, NO, cmd_answered, NULL, R_TURN },
	{ "ETRN", CMD_PRE_AUTH | CMD_LAST | CMD_ERRORS, NO, turn_etrn, NULL, R_UNRECOGNIZED },
	{ "VERB", CMD_PRE_AUTH, NO, cmd_answered, NULL, R_VERB },
	{ "DSN", CMD_PRE_AUTH, NO, cmd_answered, NULL, R_DSN_VERB },
	/* past the TLS and submission gates: its octets are read whatever
	 * the answer; odmr does not offer it, and refuses the line alone */
	{ "BDAT", CMD_PRE_TLS | CMD_PRE_AUTH | CMD_ERRORS | CMD_NOT_ODMR, NO, cmd_bdat, NULL,
	  R_UNRECOGNIZED },
};
#undef PRE
#undef NO
#undef TX

const struct cmd *cmd_find(const char *verb)
{
	for (size_t i = 0; i < sizeof cmd_table / sizeof cmd_table[0]; i++)
		if (!strcmp(verb, cmd_table[i].verb))
			return &cmd_table[i];
	return NULL;
}
