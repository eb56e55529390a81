/* esc: every reply tern sends, as (code, enhanced code, text) rows of one
 * table (RFC 5321 4.2, RFC 3463 enhanced status codes, RFC 2034).
 *
 * Texts may hold printf conversions; the session fills them in. A row whose
 * enhanced code is NULL never carries one (354, greeting-style replies).
 */
#ifndef TERN_ESC_H
#define TERN_ESC_H

enum esc_id {
	R_GREETING,
	R_HELO,
	R_EHLO_LINE,
	R_SUCCESS,
	R_SENDER_OK,
	R_RCPT_OK,
	R_START_DATA,
	R_QUEUED,
	R_BYE,
	R_UNRECOGNIZED,
	R_LINE_TOO_LONG,
	R_BARE_NL_CMD,
	R_HELO_SYNTAX,
	R_NEED_HELO,
	R_NESTED_MAIL,
	R_NEED_MAIL,
	R_NEED_RCPT,
	R_MAIL_SYNTAX,
	R_RCPT_SYNTAX,
	R_BAD_SENDER,
	R_BAD_RCPT,
	R_PARAM_UNKNOWN,
	R_PARAM_BAD,
	R_SIZE_EXCEEDED,
	R_USER_UNKNOWN,
	R_RELAY_DENIED,
	R_TOO_MANY_RCPTS,
	R_NO_ARGS,
	R_DATA_BARE_LF,
	R_DATA_BARE_CR,
	R_DATA_LONG_LINE,
	R_DATA_NUL,
	R_SPOOL_ERROR,
	R_SPOOL_FULL,
	R_VRFY_CANNOT,
	R_EXPN_CANNOT,
	R_VRFY_OK,
	R_VRFY_SYNTAX,
	R_TURN,
	R_ETRN,
	R_VERB,
	R_DSN_VERB,
	R_NOT_OFFERED,
	R_TIMEOUT,
	R_SHUTDOWN,
	R_PAUSED,
	R_HELP_LINE,
	R_HELP_END,
	R_HELP_UNKNOWN,
	R_TLS_READY,
	R_TLS_ACTIVE,
	R_TLS_SYNTAX,
	R_TLS_REQUIRED,
	R_AUTH_REQUIRED,
	R_AUTH_OK,
	R_AUTH_FAILED,
	R_AUTH_CHALLENGE,
	R_AUTH_USERNAME,
	R_AUTH_PASSWORD,
	R_AUTH_ALREADY,
	R_AUTH_IN_TX,
	R_AUTH_ENCRYPT,
	R_AUTH_MECH,
	R_AUTH_DECODE,
	R_AUTH_CANCELLED,
	R_AUTH_TOO_MANY,
	R_AUTH_CRAM,
	R_AUTH_TEMP,
	R_AUTH_NO_IR,
	R_ODMR_ONLY,
	R_SENDER_NOT_OWNED,
	R_TOO_MANY_CONNS,
	R_TOO_MANY_CONNS_IP,
	R_TOO_FAST,
	R_TOO_MANY_ERRORS,
	R_EARLY_TALKER,
	R__COUNT
};

struct esc_reply {
	int code;
	const char *esc;   /* "2.1.0", or NULL */
	const char *text;  /* printf format */
};

const struct esc_reply *esc_get(enum esc_id id);

#endif
