/* fault: the test mode's fault rules (fault_rules), pure: a rule file's
 * parser and the matcher that picks the rule for a stage of a session.
 * No I/O, no loop; smtpd/faults.c carries the rules out.
 *
 * One rule a line, "STAGE [GLOB] ACTION [ARGS...] [CONDITION...]", '#'
 * lines and blank lines skipped (tern.conf(5) has the whole grammar).
 * Conditions are key=value words (and size>N, rate>N/min) after the
 * action's arguments; an action whose last argument is free text (reply,
 * bounce, abort's reply) takes its conditions only after a "--" word, so
 * the text may hold '=' and anything else. The first rule that matches,
 * in order, wins; a rule with nth= or every= counts its matches (since it
 * was loaded) and fires on the ones it names.
 */
#ifndef TERN_FAULT_H
#define TERN_FAULT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "lib/cidr.h"

#define FAULT_TEXT_MAX 400
#define FAULT_ORIGIN_MAX 300

enum fault_stage {
	FAULT_CONNECT, FAULT_HELO, FAULT_MAIL, FAULT_RCPT, FAULT_DATA, FAULT_EOM,
	FAULT_STARTTLS, FAULT_AUTH, FAULT_ANY,
};

enum fault_action {
	FAULT_REPLY,        /* this reply instead */
	FAULT_DISCONNECT,   /* 421 4.4.2 and close */
	FAULT_CLOSE,        /* close, no reply */
	FAULT_DELAY,        /* wait, then the normal answer */
	FAULT_THROTTLE,     /* replies at most rate octets a second from now on */
	FAULT_ABORT,        /* DATA: refuse the message after size octets */
	FAULT_GREYLIST,     /* RCPT: 451 4.7.1 to a triple's first try */
	FAULT_NO_STARTTLS,  /* HELO: STARTTLS not offered, refused */
	FAULT_TLS_FAIL,     /* STARTTLS: 220, then a broken handshake */
	FAULT_BOUNCE,       /* RCPT: accepted, then returned with a report */
};

struct fault_rule {
	struct fault_rule *next;
	char origin[FAULT_ORIGIN_MAX];  /* "FILE:LINE" */
	char *line;                     /* as written, trimmed */
	enum fault_stage stage;
	char *glob;                     /* NULL: every address */
	enum fault_action action;
	/* reply, bounce, abort (code 0: its default reply) */
	unsigned code;
	char esc[16];                   /* "" when none */
	char text[FAULT_TEXT_MAX];
	unsigned delay_ms, jitter_ms;   /* delay; greylist: delay_ms the wait */
	uint64_t amount;                /* throttle: octets a second; abort: octets */
	/* conditions (all must hold) */
	char *listener;                 /* "ADDR:PORT" */
	bool has_ip;
	struct cidr ip;
	char *user, *from, *to, *tag;
	char *header_name, *header_glob;
	bool has_size;
	uint64_t size_gt;
	bool has_rate;
	unsigned rate_gt;               /* a minute's commands of the stage */
	bool has_odds;
	double odds;
	unsigned nth, every;
	uint64_t matches;               /* since loaded: counts for nth/every */
};

struct fault_rules {
	struct fault_rule *head, **tail;
	size_t n;
};

/* What a session knows at a stage, for the matcher. */
struct fault_facts {
	enum fault_stage stage;
	const char *addr;               /* MAIL: the sender; RCPT: the recipient */
	const char *sender;             /* MAIL FROM's, once known, else NULL */
	const char *const *rcpts;       /* the transaction's recipients (RCPT's own
	                                   among them) */
	size_t nrcpt;
	const struct sockaddr *client;
	const char *listener;           /* "ADDR:PORT" the client connected to */
	const char *user;               /* AUTH's, or NULL */
	bool has_size;
	uint64_t size;                  /* SIZE=, or the message's at eom */
	/* eom: the nth field called name (0 first), its value, or NULL */
	const char *(*header)(void *ctx, const char *name, size_t nth, size_t *len);
	/* this client's commands of the stage in the last minute */
	unsigned (*rate)(void *ctx, enum fault_stage stage);
	void *ctx;
	double random;                  /* [0, 1), for odds= */
};

void fault_rules_init(struct fault_rules *r);
void fault_rules_free(struct fault_rules *r);

/* Parse one line (comments and blank lines are nothing) into r. false:
 * err holds "ORIGIN: problem" and r is as it was. */
bool fault_parse_line(struct fault_rules *r, const char *line, const char *origin, char *err,
                      size_t errlen);
/* A whole text, its lines named "name:N"; false: the first bad line in
 * err, and r is left as it was. */
bool fault_parse_text(struct fault_rules *r, const char *text, const char *name, char *err,
                      size_t errlen);

/* The first rule of r for the facts' stage whose glob and conditions hold
 * and that fires (nth, every, odds), or NULL. Counts the matches. */
const struct fault_rule *fault_match(struct fault_rules *r, const struct fault_facts *f);

const char *fault_stage_name(enum fault_stage st);
const char *fault_action_name(enum fault_action a);

#endif
