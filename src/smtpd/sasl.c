/* sasl: the AUTH command (RFC 4954) with the PLAIN (RFC 4616), LOGIN and
 * CRAM-MD5 (RFC 2195) mechanisms, over one or more lines of the session.
 * The decoding is policy/auth.c's; whether the credentials are good is
 * the policy's answer at its AUTH stage, which may come later. Secrets
 * are wiped as soon as the answer is in; the debug log shows no SASL
 * response (session_log_command). */
#include <openssl/rand.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "lib/buf.h"
#include "lib/log.h"
#include "net/smtp.h"
#include "smtpd/session_priv.h"

/* RFC 4954 4: AUTH only where passwords do not cross in the clear. */
bool sasl_offered(const struct session *s)
{
	return auth_users_count(s->set->users) > 0 &&
	       (s->client.tls || s->conf->auth_allow_plaintext);
}

/* CRAM-MD5 where some user has a secret it can use ({PLAIN}, {CRAM-MD5}). */
static bool sasl_cram_offered(const struct session *s)
{
	return auth_users_cram(s->set->users);
}

const char *sasl_ehlo_line(const struct session *s)
{
	return sasl_cram_offered(s) ? "AUTH PLAIN LOGIN CRAM-MD5" : "AUTH PLAIN LOGIN";
}

static void sasl_wipe(struct session *s)
{
	explicit_bzero(s->args.user, sizeof s->args.user);
	explicit_bzero(s->args.pass, sizeof s->args.pass);
	explicit_bzero(s->args.digest, sizeof s->args.digest);
	explicit_bzero(s->login_user, sizeof s->login_user);
	explicit_bzero(s->challenge, sizeof s->challenge);
}

static const char *sasl_mechanism(enum sasl_step step)
{
	switch (step) {
	case SASL_PLAIN: return "PLAIN";
	case SASL_LOGIN_USER: case SASL_LOGIN_PASS: return "LOGIN";
	case SASL_CRAM: return "CRAM-MD5";
	}
	return "?";
}

/* The policy's answer on the credentials (RFC 4954 4, 6). */
static void sasl_proceed(struct session *s, const struct policy_answer *a)
{
	struct ev e;
	session_event(s, &e, EK_AUTH, LOG_INFO, NULL);
	ev_add(&e, "user", "%s", s->args.user);
	ev_add(&e, "mechanism", "%s", sasl_mechanism(s->sasl));
	ev_add(&e, "result", "%s", a->ok ? "succeeded" : "failed");
	ev_emit(&e);
	if (s->rec)   /* the mechanism and the outcome; never the credentials */
		transcript_note(s, "AUTH %s %s", sasl_mechanism(s->sasl), a->ok ? "succeeded" : "failed");
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
	if (s->sasl == SASL_CRAM) {
		q.challenge = s->challenge;
		q.digest = s->args.digest;
	}
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
	case SASL_CRAM:
		ok = auth_cram_decode(resp, s->args.user, s->args.digest);
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

/* RFC 2195 2: the server speaks first, with a challenge in msg-id form
 * never sent before: 64 random bits, the time and the host name. */
static void sasl_cram_start(struct session *s)
{
	uint64_t r;
	if (RAND_bytes((unsigned char *)&r, sizeof r) != 1 ||
	    !auth_cram_challenge(s->challenge, sizeof s->challenge, r, (long long)time(NULL),
	                         s->conf->hostname))
		return session_reply(s, R_AUTH_TEMP);
	struct buf b = BUF_INIT;
	smtp_b64_encode(s->challenge, strlen(s->challenge), &b);
	s->state = ST_AUTH;
	session_reply(s, R_AUTH_CRAM, buf_cstr(&b));
	buf_free(&b);
}

/* The mechanism named first in AUTH's arguments (mlen octets), or false. */
static bool sasl_mechanism_set(struct session *s, const char *m, size_t mlen)
{
	if (mlen == 5 && !strncasecmp(m, "PLAIN", 5))
		s->sasl = SASL_PLAIN;
	else if (mlen == 5 && !strncasecmp(m, "LOGIN", 5))
		s->sasl = SASL_LOGIN_USER;
	else if (mlen == 8 && !strncasecmp(m, "CRAM-MD5", 8) && sasl_cram_offered(s))
		s->sasl = SASL_CRAM;
	else
		return false;
	return true;
}

/* RFC 4954 4: AUTH mechanism [initial-response] */
bool sasl_check(struct session *s, const char *args)
{
	if (!sasl_allowed(s))
		return false;
	size_t mlen = strcspn(args, " ");
	const char *ir = args[mlen] ? args + mlen + 1 : NULL;
	if (!sasl_mechanism_set(s, args, mlen))
		return session_no(s, R_AUTH_MECH);
	if (s->sasl == SASL_CRAM) {   /* RFC 2195 2: the server speaks first */
		if (ir)
			return session_no(s, R_AUTH_NO_IR, "CRAM-MD5");
		sasl_cram_start(s);
		return false;
	}
	if (ir) {
		sasl_response(s, !strcmp(ir, "=") ? "" : ir);
		return false;
	}
	s->state = ST_AUTH;
	session_reply(s, s->sasl == SASL_PLAIN ? R_AUTH_CHALLENGE : R_AUTH_USERNAME);
	return false;
}
