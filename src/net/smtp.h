/* smtp: the SMTP protocol's shared vocabulary, pure functions for both
 * sides of a connection (the server's parser and SASL decoding, the client
 * engine, reports, tern-probe):
 *
 *   - reply lines and whole replies (RFC 5321 4.2), one parser;
 *   - EHLO keywords into the extensions a server offers (RFC 5321 4.1.1.1);
 *   - the MAIL and RCPT lines with their parameters (SIZE, BODY, the DSN
 *     parameters of RFC 3461 and their xtext encoding);
 *   - base64 (RFC 4648 4; OpenSSL's EVP coder behind a strict check) and
 *     the AUTH PLAIN and LOGIN responses (RFC 4954, RFC 4616);
 *   - dot-stuffing of message content as a stream (RFC 5321 4.5.2), and
 *     BDAT's command and chunk plan (RFC 3030 2);
 *   - the result of one delivery attempt for one recipient.
 */
#ifndef TERN_SMTP_H
#define TERN_SMTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"

/* RFC 3461 4.1 NOTIFY flags */
enum {
	NOTIFY_NONE = 0,        /* not given: the default applies */
	NOTIFY_NEVER = 1 << 0,
	NOTIFY_SUCCESS = 1 << 1,
	NOTIFY_FAILURE = 1 << 2,
	NOTIFY_DELAY = 1 << 3,
};

enum smtp_ret { RET_UNSET = 0, RET_FULL, RET_HDRS };  /* RFC 3461 4.3 */
/* RFC 6152; BINARYMIME: RFC 3030 3 (stored in the spool as these numbers) */
enum smtp_body { BODY_UNSET = 0, BODY_7BIT, BODY_8BITMIME, BODY_BINARYMIME };

#define SMTP_ENVID_MAX 100  /* RFC 3461 4.4 */
#define SMTP_ORCPT_MAX 500  /* RFC 3461 4.2 */

/* RFC 3461 4 xtext: decode into out (room for n bytes, NUL included).
 * Returns false on bad syntax or overflow. */
bool smtp_xtext_decode(const char *s, size_t len, char *out, size_t n);

/* xtext-encode s into out (room for n). Returns false on overflow. */
bool smtp_xtext_encode(const char *s, char *out, size_t n);

/* ---- the result of a delivery attempt (qmail-remote's temp_/perm_ split,
 * with the RFC 3463 enhanced code kept for reports) ---- */

enum deliver_status { DELIVER_OK, DELIVER_TEMP, DELIVER_PERM };

struct deliver_result {
	enum deliver_status status;
	char reply[512];   /* "2.0.0 delivered to maildir", "4.3.1 disk full", ... */
};

/* ---- replies, RFC 5321 4.2 ---- */

#define SMTP_REPLY_MAX 65536   /* octets in one reply, every line */

/* smtp_reply_add's complaints */
enum { SMTP_REPLY_MALFORMED = -1, SMTP_REPLY_MIXED = -2, SMTP_REPLY_LONG = -3 };

/* One reply line (CRLF removed): its code and whether more lines follow.
 * 0, or SMTP_REPLY_MALFORMED. */
int smtp_reply_line(const char *p, size_t n, int *code, bool *more);

struct smtp_reply {
	int code;          /* 0 until a line has been taken */
	size_t nlines;
	struct buf text;   /* every line as received, code included, '\n' between */
	size_t last;       /* where the last line starts in text */
};

void smtp_reply_init(struct smtp_reply *r);
void smtp_reply_reset(struct smtp_reply *r);
void smtp_reply_free(struct smtp_reply *r);
/* Take one line: 1 the reply is whole, 0 more lines follow, or an
 * SMTP_REPLY_* complaint (the reply is then unusable). */
int smtp_reply_add(struct smtp_reply *r, const char *p, size_t n);
/* A complaint in words. */
const char *smtp_reply_error(int rc);
/* The last line's text, after "ddd ". */
const char *smtp_reply_last(const struct smtp_reply *r);
/* Every line's text, codes stripped, joined by spaces, appended to out
 * until it holds max octets or more: printable ASCII and UTF-8, a tab as a
 * space, every other octet (a control, one not UTF-8) as '?'. */
void smtp_reply_join(const struct smtp_reply *r, struct buf *out, size_t max);
/* Line i (0 first): its text after "ddd " and length; false past the end. */
bool smtp_reply_nth(const struct smtp_reply *r, size_t i, const char **p, size_t *n);

/* ---- EHLO keywords, RFC 5321 4.1.1.1 ---- */

enum { SMTP_AUTH_PLAIN = 1 << 0, SMTP_AUTH_LOGIN = 1 << 1 };

struct smtp_ext {
	bool pipelining;       /* RFC 2920 */
	bool size;             /* RFC 1870 */
	uint64_t size_max;     /* SIZE's parameter; 0: none given */
	bool eightbitmime;     /* RFC 6152 */
	bool dsn;              /* RFC 3461 */
	bool starttls;         /* RFC 3207 */
	bool auth;             /* RFC 4954 */
	unsigned auth_mechs;   /* SMTP_AUTH_*, of those this code speaks */
	bool enhancedstatuscodes;  /* RFC 2034 */
	bool smtputf8;         /* RFC 6531 */
	bool chunking;         /* RFC 3030 2 */
	bool binarymime;       /* RFC 3030 3 */
	bool requiretls;       /* RFC 8689 2 */
};

/* One ehlo-line (the text after "250-"), added to e. */
void smtp_ehlo_line(struct smtp_ext *e, const char *p, size_t n);
/* A whole 250 reply to EHLO or LHLO: e is cleared, then every line after
 * the first (the greeting) is taken. */
void smtp_ehlo_parse(const struct smtp_reply *r, struct smtp_ext *e);
/* SMTP_AUTH_PLAIN or SMTP_AUTH_LOGIN for a mechanism name, else 0. */
unsigned smtp_auth_mech(const char *name);

/* ---- the envelope's commands, RFC 5321 4.1.1.2-3 ---- */

struct smtp_mail {
	const char *sender;    /* "" for the null sender */
	uint64_t size;         /* RFC 1870 */
	enum smtp_body body;
	enum smtp_ret ret;
	const char *envid;     /* "" or NULL: none */
	bool smtputf8;         /* RFC 6531 3.4: sent when the next hop offers it */
	bool requiretls;       /* RFC 8689 4.2.2: sent when the next hop offers it */
};

struct smtp_rcpt {
	const char *addr;
	unsigned notify;       /* NOTIFY_* */
	const char *orcpt;     /* "addr-type;address" as received, or NULL */
};

/* "MAIL FROM:<...>" with the parameters the server offers (e), no CRLF. */
void smtp_mail_line(const struct smtp_mail *m, const struct smtp_ext *e, struct buf *out);
/* "RCPT TO:<...>" with NOTIFY and ORCPT when e->dsn, no CRLF. */
void smtp_rcpt_line(const struct smtp_rcpt *r, const struct smtp_ext *e, struct buf *out);

/* ---- base64, RFC 4648 4 ---- */

/* p[0..n) in base64, appended to out. */
void smtp_b64_encode(const void *p, size_t n, struct buf *out);
/* Strict decode of s[0..len): only the alphabet, a multiple of 4, at most
 * two '=' and only at the end, and the canonical form (no stray bits in
 * the last group). Into out (room for n octets; a NUL is added, so n - 1
 * usable). Returns the decoded length, or -1. */
long smtp_b64_decode(const char *s, size_t len, unsigned char *out, size_t n);

/* ---- AUTH responses, RFC 4954 4 ---- */

/* RFC 4616 2: base64 of NUL user NUL pass (no authorization identity),
 * appended to out. */
void smtp_auth_plain(const char *user, const char *pass, struct buf *out);
/* LOGIN (draft-murchison-sasl-login): one step, the user name or the
 * password in base64, appended to out. */
void smtp_auth_login(const char *secret, struct buf *out);

/* ---- dot-stuffing, RFC 5321 4.5.2 ---- */

typedef void smtp_sink_fn(void *arg, const char *p, size_t n);

/* The state between chunks: a message may be cut anywhere. */
struct smtp_stuff {
	bool mid;   /* inside a line: not at its beginning */
	bool cr;    /* the last octet was a CR */
};

#define SMTP_STUFF_INIT { false, false }

/* Message content as it goes on the wire, to sink in runs of p (and the
 * octets put in): a line that begins with "." gets one more, and a bare
 * LF becomes CRLF (RFC 5321 2.3.8). */
void smtp_stuff(struct smtp_stuff *s, const char *p, size_t n, smtp_sink_fn *sink, void *arg);
/* The end of the data: CRLF when the last line has none, then "." CRLF
 * (RFC 5321 4.1.1.4). */
void smtp_stuff_end(struct smtp_stuff *s, smtp_sink_fn *sink, void *arg);

/* ---- BDAT, RFC 3030 2 ---- */

/* "BDAT <size>" or "BDAT <size> LAST" into out (room for n; 32 is
 * enough). */
void smtp_bdat_line(uint64_t size, bool last, char *out, size_t n);

/* The next chunk of a message sent by BDAT from a body of total octets
 * of which sent have gone, at most max (> 0) each: its size, and in *last
 * whether it ends the message. An empty body is one empty LAST chunk. */
uint64_t smtp_bdat_next(uint64_t total, uint64_t sent, uint64_t max, bool *last);

#endif
