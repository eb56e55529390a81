/* dsn: RFC 3464 report construction (see dsn.h). */
#include "dsn/dsn.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "lib/util.h"
#include "net/smtp.h"

bool dsn_wanted(const struct spool_env *env, const struct spool_rcpt *r, enum dsn_kind k)
{
	if (!env->sender[0])
		return false;  /* RFC 5321 4.5.5: never report to the null sender */
	unsigned notify = r->notify ? r->notify : NOTIFY_FAILURE | NOTIFY_DELAY;
	if (notify & NOTIFY_NEVER)
		return false;
	static const unsigned bit[] = { [DSN_FAILED] = NOTIFY_FAILURE,
	                                [DSN_DELAYED] = NOTIFY_DELAY,
	                                [DSN_SUCCESS] = NOTIFY_SUCCESS };
	return (notify & bit[k]) != 0;
}

bool dsn_return_full(const struct spool_env *env, enum dsn_kind k)
{
	if (env->requiretls)
		return false;   /* RFC 8689 5: as if RET=HDRS, whatever was asked */
	if (env->body == BODY_BINARYMIME)
		return false;   /* RFC 3030 3: binary content cannot go in a report (7BIT
		                   text, sent by DATA): its header fields only */
	if (env->ret == RET_FULL)
		return true;
	return env->ret == RET_UNSET && k == DSN_FAILED;
}

void dsn_status(const char *reply, char *out, size_t n)
{
	size_t len = strcspn(reply, " ");
	bool ok = len >= 5 && len < 12 && (reply[0] == '2' || reply[0] == '4' || reply[0] == '5') &&
	          reply[1] == '.';
	for (size_t i = 0; ok && i < len; i++)
		ok = isdigit((unsigned char)reply[i]) || reply[i] == '.';
	snprintf(out, n, "%.*s", ok ? (int)len : 5, ok ? reply : "5.0.0");
}

const char *dsn_diagnostic(const char *reply)
{
	const char *said = strstr(reply, " said: ");
	return said ? said + 7 : NULL;
}

static const char *const dsn_subject[] = {
	[DSN_FAILED] = "Undelivered Mail Returned to Sender",
	[DSN_DELAYED] = "Delayed Mail (still being retried)",
	[DSN_SUCCESS] = "Successful Mail Delivery Report",
};

static const char *const dsn_intro[] = {
	[DSN_FAILED] = "I'm sorry to have to inform you that your message could not\r\n"
	               "be delivered to one or more recipients. The reasons follow.\r\n",
	[DSN_DELAYED] = "Your message could not be delivered yet to one or more\r\n"
	                "recipients. Delivery will be retried; you need not send it again.\r\n",
	[DSN_SUCCESS] = "Your message was successfully delivered to the destination(s)\r\n"
	                "listed below. If the message was delivered to a mailbox you will\r\n"
	                "receive no further notifications; if it was relayed to a system\r\n"
	                "that does not report delivery, this is the last notice you get.\r\n",
};

static void dsn_headers(struct buf *b, const struct dsn_report *r, const char *boundary)
{
	char date[64];
	util_rfc5322_date(r->now, date, sizeof date);
	buf_printf(b, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n", r->hostname);
	buf_printf(b, "To: <%s>\r\n", r->env->sender);
	buf_printf(b, "Subject: %s\r\n", dsn_subject[r->kind]);
	buf_printf(b, "Date: %s\r\n", date);
	buf_printf(b, "Message-ID: <%s.dsn@%s>\r\n", r->qid, r->hostname);
	buf_puts(b, "Auto-Submitted: auto-replied\r\n");  /* RFC 3834 */
	buf_puts(b, "MIME-Version: 1.0\r\n");
	buf_printf(b, "Content-Type: multipart/report; report-type=delivery-status;\r\n"
	              "\tboundary=\"%s\"\r\n\r\n", boundary);
	buf_puts(b, "This is a MIME-encapsulated message.\r\n\r\n");
}

static void dsn_human(struct buf *b, const struct dsn_report *r, const char *boundary)
{
	buf_printf(b, "--%s\r\nContent-Description: Notification\r\n"
	              "Content-Type: text/plain; charset=us-ascii\r\n\r\n", boundary);
	buf_printf(b, "This is the mail system at host %s.\r\n\r\n%s\r\n", r->hostname,
	           dsn_intro[r->kind]);
	for (size_t i = 0; i < r->n; i++) {
		const struct spool_rcpt *rc = r->items[i].rcpt;
		buf_printf(b, "<%s>: %s\r\n", rc->addr, rc->last_reply[0] ? rc->last_reply : r->items[i].action);
	}
	buf_puts(b, "\r\n");
}

/* "rfc822;addr" (decoded ORCPT) as a DSN field value "rfc822; addr". */
static void dsn_orcpt(struct buf *b, const char *orcpt)
{
	const char *semi = strchr(orcpt, ';');
	if (semi)
		buf_printf(b, "Original-Recipient: %.*s; %s\r\n", (int)(semi - orcpt), orcpt, semi + 1);
}

static void dsn_recipient(struct buf *b, const struct dsn_report *r, const struct dsn_item *it)
{
	const struct spool_rcpt *rc = it->rcpt;
	char status[16], date[64];
	dsn_status(rc->last_reply, status, sizeof status);
	if (r->kind == DSN_SUCCESS && status[0] != '2')
		snprintf(status, sizeof status, "2.0.0");
	buf_printf(b, "\r\nFinal-Recipient: rfc822; %s\r\n", rc->addr);
	if (rc->orcpt && rc->orcpt[0])
		dsn_orcpt(b, rc->orcpt);
	buf_printf(b, "Action: %s\r\nStatus: %s\r\n", it->action, status);
	if (rc->remote_mta && rc->remote_mta[0])
		buf_printf(b, "Remote-MTA: dns; %.*s\r\n", (int)strcspn(rc->remote_mta, "["), rc->remote_mta);
	const char *diag = dsn_diagnostic(rc->last_reply);
	if (diag) {   /* RFC 3464 2.3.6: US-ASCII text; a UTF-8 reply's other octets as '?' */
		buf_puts(b, "Diagnostic-Code: smtp; ");
		for (const char *p = diag; *p && *p != '\r' && *p != '\n'; p++)
			buf_putc(b, (unsigned char)*p < 0x80 ? *p : '?');
		buf_puts(b, "\r\n");
	}
	util_rfc5322_date(r->now, date, sizeof date);
	buf_printf(b, "Last-Attempt-Date: %s\r\n", date);
	if (r->kind == DSN_DELAYED && r->retry_until) {
		util_rfc5322_date(r->retry_until, date, sizeof date);
		buf_printf(b, "Will-Retry-Until: %s\r\n", date);
	}
}

static void dsn_status_part(struct buf *b, const struct dsn_report *r, const char *boundary)
{
	char date[64];
	buf_printf(b, "--%s\r\nContent-Description: Delivery report\r\n"
	              "Content-Type: message/delivery-status\r\n\r\n", boundary);
	buf_printf(b, "Reporting-MTA: dns; %s\r\n", r->hostname);
	buf_printf(b, "X-Tern-Queue-ID: %s\r\n", r->env->qid);
	if (r->env->envid[0])
		buf_printf(b, "Original-Envelope-Id: %s\r\n", r->env->envid);
	util_rfc5322_date((time_t)r->env->arrival, date, sizeof date);
	buf_printf(b, "Arrival-Date: %s\r\n", date);
	for (size_t i = 0; i < r->n; i++)
		dsn_recipient(b, r, &r->items[i]);
	buf_puts(b, "\r\n");
}

static void dsn_returned(struct buf *b, const struct dsn_report *r, const char *boundary)
{
	bool full = r->full && r->content_len <= DSN_RETURN_MAX;
	buf_printf(b, "--%s\r\nContent-Description: %s\r\nContent-Type: %s\r\n\r\n", boundary,
	           full ? "Undelivered Message" : "Message Headers",
	           full ? "message/rfc822" : "text/rfc822-headers");
	size_t n = r->content_len;
	if (!full) {  /* the header section: up to the first empty line */
		const char *end = NULL;
		for (const char *p = r->content; p && p < r->content + n; p += 2) {
			p = memchr(p, '\r', (size_t)(r->content + n - p));
			if (!p)
				break;
			if (p + 3 < r->content + n && !memcmp(p, "\r\n\r\n", 4)) {
				end = p + 2;
				break;
			}
		}
		if (end)
			n = (size_t)(end - r->content);
	}
	buf_append(b, r->content, n);
	if (n < 2 || memcmp(r->content + n - 2, "\r\n", 2))
		buf_puts(b, "\r\n");
	buf_printf(b, "\r\n--%s--\r\n", boundary);
}

void dsn_build(struct buf *out, const struct dsn_report *r)
{
	char boundary[128];
	snprintf(boundary, sizeof boundary, "%s/%s", r->qid, r->hostname);
	dsn_headers(out, r, boundary);
	dsn_human(out, r, boundary);
	dsn_status_part(out, r, boundary);
	dsn_returned(out, r, boundary);
}
