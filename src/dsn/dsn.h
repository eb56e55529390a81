/* dsn: delivery status notifications in RFC 3464 form: failure ("bounce"),
 * delay and success reports, as multipart/report messages (RFC 6522) with
 * a human-readable part, a message/delivery-status part and the returned
 * message or its headers (RFC 3461 RET). Pure: builds bytes, sends nothing. */
#ifndef TERN_DSN_H
#define TERN_DSN_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "lib/buf.h"
#include "spool/spool.h"

enum dsn_kind { DSN_FAILED, DSN_DELAYED, DSN_SUCCESS };

struct dsn_item {
	const struct spool_rcpt *rcpt;
	const char *action;          /* "failed", "delayed", "delivered", "relayed", "expanded" */
};

struct dsn_report {
	enum dsn_kind kind;
	const char *hostname;        /* Reporting-MTA */
	const char *qid;             /* of the report itself (Message-ID) */
	const struct spool_env *env; /* the original message */
	const struct dsn_item *items;
	size_t n;
	time_t now;
	time_t retry_until;          /* delay reports: Will-Retry-Until */
	const char *content;         /* the original message (CRLF lines) */
	size_t content_len;
	bool full;                   /* content is the whole message, else headers */
};

#define DSN_RETURN_MAX (1024 * 1024)  /* larger originals go back as headers */

/* Should this recipient get a report of this kind? (RFC 3461 4.1: NOTIFY;
 * without it, failure and delay reports.) Never for the null sender. */
bool dsn_wanted(const struct spool_env *env, const struct spool_rcpt *r, enum dsn_kind k);

/* Whether to return the whole message (RET=FULL, or a failure report
 * without RET) rather than its headers. */
bool dsn_return_full(const struct spool_env *env, enum dsn_kind k);

/* The report, CRLF line ends, ready for the spool. */
void dsn_build(struct buf *out, const struct dsn_report *r);

/* The status code of a result text "x.y.z ..." (into out, "5.0.0" if none)
 * and the SMTP diagnostic after "said: ", or NULL. */
void dsn_status(const char *reply, char *out, size_t n);
const char *dsn_diagnostic(const char *reply);

#endif
