/* sasl: the AUTH command (RFC 4954) with the PLAIN (RFC 4616) and LOGIN
 * mechanisms, over one or more lines of the session. The decoding is
 * policy/auth.c's; whether the credentials are good is the policy's
 * answer at its AUTH stage, which may come later. Secrets are wiped as
 * soon as the answer is in. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "lib/log.h"
#include "smtpd/session_priv.h"

/* RFC 4954 4: AUTH only where passwords do not cross in the clear. */
bool sasl_offered(const struct session *s)
{
	return auth_users_count(s->set->users) > 0 &&
	       (s->client.tls || s->conf->auth_allow_plaintext);
}

static void sasl_wipe(struct session *s)
{
	explicit_bzero(s->args.user, sizeof s->args.user);
	explicit_bzero(s->args.pass, sizeof s->args.pass);
	explicit_bzero(s->login_user, sizeof s->login_user);
}

/* The policy's answer on the credentials (RFC 4954 4, 6). */
static void sasl_proceed(struct session *s, const struct policy_answer *a)
{
	struct ev e;
	session_event(s, &e, EK_AUTH, LOG_INFO, NULL);
	ev_add(&e, "user", "%s", s->args.user);
	ev_add(&e, "result", "%s", a->ok ? "succeeded" : "failed");
	ev_emit(&e);
	if (a->ok) {
		s->client.authed = true;
		snprintf(s->user, sizeof s->user, "%s", s->args.user);
		session_reply(s, R_AUTH_OK);
	} else {
		session_reply(s, a->reply);
		if (a->close) {
			session_reply(s, R_AUTH_TOO_MANY, s->conf->hostname);
			session_close_after_flush(s);
		}
	}
	sasl_wipe(s);
}

/* The exchange is complete: ask the policy. */
static void sasl_ask(struct session *s)
{
	struct policy_query q;
	session_query(s, &q, POLICY_AUTH);
	session_ask(s, &q, sasl_proceed);
}

/* One SASL step: resp is the client's base64 line. */
void sasl_response(struct session *s, const char *resp)
{
	s->state = ST_CMD;
	if (!strcmp(resp, "*"))
		return session_reply(s, R_AUTH_CANCELLED);
	bool ok = false;
	switch (s->sasl) {
	case SASL_PLAIN:
		ok = auth_plain_decode(resp, s->args.user, s->args.pass);
		break;
	case SASL_LOGIN_USER:
		ok = auth_login_decode(resp, s->login_user);
		if (ok) {
			s->state = ST_AUTH;
			s->sasl = SASL_LOGIN_PASS;
			return session_reply(s, R_AUTH_PASSWORD);
		}
		break;
	case SASL_LOGIN_PASS:
		ok = auth_login_decode(resp, s->args.pass);
		snprintf(s->args.user, sizeof s->args.user, "%s", s->login_user);
		break;
	}
	if (!ok) {
		sasl_wipe(s);
		return session_reply(s, R_AUTH_DECODE);
	}
	sasl_ask(s);
}

/* May AUTH start now? Replies and returns false when not. */
static bool sasl_allowed(struct session *s)
{
	if (auth_users_count(s->set->users) == 0)
		session_reply(s, R_NOT_OFFERED, "AUTH");
	else if (!s->greeted || !s->esmtp)
		session_reply(s, R_NEED_HELO);
	else if (s->client.authed)
		session_reply(s, R_AUTH_ALREADY);
	else if (s->tx)
		session_reply(s, R_AUTH_IN_TX);
	else if (!sasl_offered(s))
		session_reply(s, R_AUTH_ENCRYPT);
	else
		return true;
	return false;
}

/* RFC 4954 4: AUTH mechanism [initial-response] */
bool sasl_check(struct session *s, const char *args)
{
	if (!sasl_allowed(s))
		return false;
	size_t mlen = strcspn(args, " ");
	const char *ir = args[mlen] ? args + mlen + 1 : NULL;
	if (mlen == 5 && !strncasecmp(args, "PLAIN", 5))
		s->sasl = SASL_PLAIN;
	else if (mlen == 5 && !strncasecmp(args, "LOGIN", 5))
		s->sasl = SASL_LOGIN_USER;
	else
		return session_no(s, R_AUTH_MECH);
	if (ir) {
		sasl_response(s, !strcmp(ir, "=") ? "" : ir);
		return false;
	}
	s->state = ST_AUTH;
	session_reply(s, s->sasl == SASL_PLAIN ? R_AUTH_CHALLENGE : R_AUTH_USERNAME);
	return false;
}
