/* session_priv: what the session's three files share, and nobody else:
 * session.c (lifetime, framing, replies, the policy phase), cmd.c (the
 * command table and its check and proceed functions) and sasl.c (AUTH).
 */
#ifndef TERN_SESSION_PRIV_H
#define TERN_SESSION_PRIV_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/buf.h"
#include "lib/esc.h"
#include "lib/event.h"
#include "policy/auth.h"
#include "policy/policy.h"
#include "smtpd/authres.h"
#include "smtpd/data.h"
#include "smtpd/msgin.h"
#include "smtpd/parse.h"
#include "smtpd/session.h"
#include "smtpd/signer.h"
#include "smtpd/transcript.h"
#include "smtpd/verifier.h"

#define SESSION_HELO_MAX 255

enum session_state {
	ST_PROXY,    /* waiting for the PROXY protocol header */
	ST_START,    /* the CONNECT stage is being asked */
	ST_GREET,    /* greeting_delay: the client must stay silent */
	ST_CMD,
	ST_AUTH,     /* the next line is a SASL response (RFC 4954 4) */
	ST_DATA,
	ST_BDAT,     /* a BDAT chunk's octets are read (RFC 3030 2) */
	ST_COMMIT,
	ST_CLOSING,
};

enum sasl_step { SASL_PLAIN, SASL_LOGIN_USER, SASL_LOGIN_PASS, SASL_CRAM };

/* The transaction: MAIL FROM to the end of DATA (OpenSMTPD's smtp_tx). */
struct tx {
	char qid[UTIL_QID_LEN + 1];
	char sender[POLICY_ADDR_MAX];
	struct parse_mail_params mp;
	struct spool_rcpt *rcpt;
	size_t nrcpt, cap;
	size_t rcpt_before;             /* RCPT: nrcpt before its mailboxes, while
	                                   the milters are asked */
	unsigned rcpt_cmds;             /* accepted RCPT commands */
	struct data_parser dp;
	bool bdat;                      /* BDAT chunks began the message: no DATA */
	bool bdat_failed;               /* a chunk was refused: the rest get
	                                   bdat_err until LAST (RFC 3030 2) */
	enum esc_id bdat_err;
	struct spool_msg *msg;
	struct msgin in;                /* the header block held, the body to msg and
	                                   to the DKIM signer, if any (msgin.h) */
	struct verifier *verifier;      /* DKIM of received mail, or NULL (verifier.h) */
	int64_t arrival;
	struct policy_spf spf;          /* MAIL's SPF check (RFC 7208), for the
	                                   Authentication-Results to come */
	struct authres *authres;        /* DMARC's lookup and verdict, or NULL (authres.h) */
	unsigned checks;                /* end of DATA: checks still out (DKIM, DMARC) */
	const char *quarantine;         /* why the message is queued held, or NULL */
};

/* What a command's check parsed, for its proceed (across the policy phase). */
struct cmd_args {
	struct addr addr;               /* MAIL, RCPT */
	char orig[POLICY_ADDR_MAX];     /* RCPT: the address as given, formatted */
	struct parse_mail_params mp;
	struct parse_rcpt_params rp;
	char user[AUTH_FIELD_MAX + 1];  /* AUTH: credentials, wiped after the answer */
	char pass[AUTH_FIELD_MAX + 1];
	unsigned char digest[AUTH_CRAM_DIGEST_LEN];  /* AUTH CRAM-MD5: the client's answer */
	bool esmtp;                     /* EHLO rather than HELO */
	char helo[SESSION_HELO_MAX + 1];
};

struct session;
struct milters;
typedef void session_proceed_fn(struct session *s, const struct policy_answer *a);

struct session {
	struct session *next, *prev;
	struct server *srv;
	struct settings *set;           /* taken at the start, kept to the end */
	const struct conf *conf;        /* set->conf */
	struct bufferevent *bev;
	struct sockaddr_storage peer;
	char ip[INET6_ADDRSTRLEN];
	char local[INET6_ADDRSTRLEN + 8];  /* the listener's address: "127.0.0.1:2525" */
	uint64_t id;
	enum session_state state;
	struct policy_client client;    /* what the policy knows; tls, authed,
	                                   user, helo, errors live here */
	bool greeted;                   /* HELO or EHLO seen */
	bool esmtp;                     /* EHLO: enhanced codes (RFC 2034) */
	bool direct;                    /* plain socket: replies are written at once
	                                   (session_flush), libevent only writes a
	                                   remainder the socket would not take */
	struct buf cork;                /* not direct (TLS): the replies of a frame,
	                                   handed to OpenSSL at its end, one record */
	enum sasl_step sasl;
	struct event *greet_timer;      /* greeting_delay */
	char user[AUTH_FIELD_MAX + 1];
	char login_user[AUTH_FIELD_MAX + 1];  /* AUTH LOGIN, between its steps */
	char challenge[AUTH_CRAM_CHALLENGE_MAX];  /* AUTH CRAM-MD5: the one sent */
	char helo[SESSION_HELO_MAX + 1];
	enum { SKIP_NONE, SKIP_LONG, SKIP_BARE } skip;  /* discarding input up to:
	                                   LONG the next LF, then 500;
	                                   BARE the next CRLF, silently */
	bool paused;                    /* the spool asked us to wait */
	bool throttled;                 /* the client is not reading our replies */
	bool asking;                    /* a policy answer is awaited */
	bool in_ask;                    /* inside policy_ask (a synchronous answer) */
	bool stepping;                  /* inside session_process's loop */
	bool arrived;                   /* input came meanwhile (read callback) */
	bool uncounted;                 /* a command without CMD_ERRORS is running:
	                                   its error replies do not count */
	session_proceed_fn *proceed;    /* what the awaited answer goes to */
	bool dead;                      /* closed, waiting for callbacks */
	unsigned pending;               /* spool and policy callbacks outstanding */
	unsigned busy;                  /* session frames running: a close
	                                   inside one frees at its end */
	struct cmd_args args;
	struct {                        /* BDAT: the chunk being read */
		uint64_t size, left;    /* its octets, those still to come */
		bool last;
		bool discard;           /* read and dropped, then err (if
		                           has_err) answers it */
		bool has_err;
		enum esc_id err;
	} chunk;
	const struct cmd *cmd;          /* the row being run */
	struct tx *tx;
	struct milters *milters;        /* its milters (milters.c), or NULL */
	struct transcript *rec;         /* its recorder (transcript.h), or NULL */
	struct faults_session *faults;  /* the fault rules' state (faults.c), or
	                                   NULL: no rules were in force at its start */
};

/* ---- the command table (cmd.c) ---- */

enum cmd_flag {
	CMD_PRE_TLS = POLICY_PRE_TLS,   /* allowed before STARTTLS where TLS is required */
	CMD_PRE_AUTH = POLICY_PRE_AUTH, /* allowed on submission before AUTH */
	CMD_LAST = 1 << 2,              /* ends a pipelining group (RFC 2920 3.1):
	                                   its reply leaves at once */
	CMD_ERRORS = 1 << 3,            /* its error replies count toward max_errors */
	CMD_AT_STOP = 1 << 4,           /* answered while ternd stops, outside a
	                                   transaction too (else 421) */
	CMD_ODMR_PRE_AUTH = POLICY_ODMR_PRE_AUTH, /* allowed on odmr before AUTH
	                                   (RFC 2645 4; else 530) */
	CMD_NOT_ODMR = POLICY_NOT_ODMR, /* never on odmr: it takes no mail (502) */
};

#define CMD_NO_STAGE (-1)

/* OpenSMTPD's smtp_check_* / smtp_proceed_* with Postfix's flags: check
 * parses and refuses what is malformed or out of order (replying, and
 * returning false); then the policy is asked at stage (unless
 * CMD_NO_STAGE) and proceed gets its answer (NULL without a stage). */
struct cmd {
	const char *verb;
	unsigned flags;
	int stage;                      /* enum policy_stage, or CMD_NO_STAGE */
	bool (*check)(struct session *s, const char *args);
	session_proceed_fn *proceed;
	enum esc_id reply;              /* cmd_answered: the refusal */
};

/* The row of an upper-case verb, or NULL. */
const struct cmd *cmd_find(const char *verb);
/* The end of DATA: refuse a broken message, or ask EOM and commit. */
void cmd_data_end(struct session *s);
/* A BDAT chunk's octets are all read: its answer, or the end of the
 * message (LAST). */
void cmd_bdat_chunk_end(struct session *s);

/* ---- milters (milters.c) ---- */

enum milters_stage { MS_CONNECT, MS_HELO, MS_MAIL, MS_RCPT, MS_DATA, MS_EOM, MS_UNKNOWN };

/* What the milters said at a stage: go on (perhaps discarding the
 * message, at its end), or the reply lines ("ddd text", LF between) of a
 * refusal, closing after it when close. */
struct milters_verdict {
	bool ok;
	bool discard;
	bool close;
	char text[1024];
};
typedef void milters_fn(struct session *s, const struct milters_verdict *v);

/* Connect to the listener's milters (none: s->milters stays NULL) and
 * negotiate; the CONNECT stage waits for it. */
void milters_open(struct session *s);
/* Ask each milter at stage (arg: RCPT's address, the unknown command's
 * line); fn gets the verdict, now or from the loop (the input waits). */
void milters_stage(struct session *s, enum milters_stage st, const char *arg, milters_fn *fn);
/* Send a refusal's lines, and close if it says so. */
void milters_reply(struct session *s, const struct milters_verdict *v);
/* DATA: keep the message's octets from here (data_begin), each chunk
 * (data), then the end-of-message exchange (eom). */
void milters_data_begin(struct session *s);
void milters_data(struct session *s, const char *p, size_t n);
void milters_eom(struct session *s, milters_fn *fn);
/* Carry out what the milters asked at the end of the message: sender,
 * recipients, quarantine and header edits on s->tx (the held header
 * block, msghead.h); a replaced body into body (CRLF), *replaced set.
 * false: no recipient is left. */
bool milters_apply(struct session *s, struct buf *body, bool *replaced);
/* The transaction is over (SMFIC_ABORT where owed); the session is
 * (SMFIC_QUIT, no more callbacks). */
void milters_tx_end(struct session *s);
void milters_free(struct session *s);
const char *milters_stage_name(enum milters_stage st);

/* ---- the test mode's fault rules (faults.c) ---- */

/* At the start: the session's state when rules are in force (else
 * s->faults stays NULL and nothing below is called); at the close. */
void faults_open(struct session *s);
void faults_close(struct session *s);
/* A policy stage: true when a rule took the command over (answered it
 * with fn, now or after a delay, or closed); false: ask the policy. */
bool faults_ask(struct session *s, const struct policy_query *q, session_proceed_fn *fn);
/* STARTTLS passed its checks: true when a rule took it over (go, the
 * command's own work, runs after a delay). */
bool faults_starttls(struct session *s, void (*go)(struct session *s));
/* no-starttls fired: STARTTLS is neither offered nor taken. */
bool faults_no_tls(const struct session *s);
/* The end of the message: true when an abort rule refused it (answered,
 * the transaction reset). */
bool faults_data_end(struct session *s);

/* ---- AUTH (sasl.c) ---- */

bool sasl_offered(const struct session *s);
/* The EHLO line naming the mechanisms: "AUTH PLAIN LOGIN[ CRAM-MD5]". */
const char *sasl_ehlo_line(const struct session *s);
bool sasl_check(struct session *s, const char *args);
/* One line in ST_AUTH: the client's SASL response. */
void sasl_response(struct session *s, const char *line);

/* ---- ETRN and ATRN (turn.c) ---- */

bool turn_etrn_offered(const struct session *s);
bool turn_etrn(struct session *s, const char *args);
bool turn_atrn(struct session *s, const char *args);

/* ---- session.c, for the others ---- */

/* Is this a session of an odmr listener (RFC 2645 On-Demand Mail Relay)?
 * There, before AUTH only CMD_ODMR_PRE_AUTH commands run (530), and
 * after it CMD_NOT_ODMR ones are refused (502): policy_gate decides. The
 * place ATRN's check asks whether it may act at all. */
bool session_odmr(const struct session *s);

/* An event of the session (of its message, with qid): client=[ip] set;
 * the caller adds fields and emits it. */
void session_event(struct session *s, struct ev *e, enum ev_kind k, enum log_level l,
                   const char *qid);
void session_reply(struct session *s, enum esc_id id, ...);
/* A reply line made elsewhere (a milter's): n octets of text, a
 * continuation line when more. */
void session_reply_text(struct session *s, const char *text, size_t n, bool more);
void session_reply_more(struct session *s, enum esc_id id, ...);
/* Reply, and return false: a check that refuses (no policy stage follows). */
bool session_no(struct session *s, enum esc_id id, ...);
/* A refusal the policy answered: its reply and arguments, then closing
 * if it says so. */
void session_refusal(struct session *s, const struct policy_answer *a);
/* Ask the policy (the fault rules first, when any); fn gets the answer,
 * and input waits until it has. */
void session_ask(struct session *s, const struct policy_query *q, session_proceed_fn *fn);
/* The policy alone (what a fault rule's delay asks when it is over). */
void session_ask_policy(struct session *s, const struct policy_query *q, session_proceed_fn *fn);
/* An answer made on the session's side (a fault rule's), given to fn now. */
void session_answer_now(struct session *s, session_proceed_fn *fn, const struct policy_answer *a);
void session_query(struct session *s, struct policy_query *q, enum policy_stage stage);
void session_close_after_flush(struct session *s);
/* A command waits for an answer from elsewhere (the delivery engine), its
 * input stopped. When it comes: session_wait_over, false when the session
 * has gone meanwhile (it is freed then); else reply and session_go_on. */
void session_wait(struct session *s);
bool session_wait_over(struct session *s);
void session_go_on(struct session *s);
/* Replies not yet in the kernel? */
bool session_output_pending(struct session *s);
/* Octets for the client that are not a reply (a fault's raw alert), after
 * the replies made so far. */
void session_write_raw(struct session *s, const void *p, size_t n);
/* ATRN: end the session, its connection (socket, TLS session, bytes read
 * and not used) taken into out, not closed. */
struct closer_taken;
void session_hand_over(struct session *s, struct closer_taken *out);
void session_reset(struct session *s);
void session_tx_begin(struct session *s);
bool session_tls_on(struct session *s);
void session_set_timeout(struct session *s, unsigned secs);
void session_send_greeting(struct session *s);
/* Set when the data parser or the spool must wait (session.c reads on). */
void session_data_sink(void *ctx, const char *p, size_t n);
void session_chunk_done(void *ctx, int err);
/* The message is committed (or not): 250 and the next command. */
void session_committed(void *ctx, int err);

#endif
