/* Unit tests for dsn: who gets a report, the status and diagnostic of a
 * result, and the shape of a built RFC 3464 report. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "dsn/dsn.h"
#include "smtpd/parse.h"

static struct spool_env env_with(char *sender, int ret)
{
	struct spool_env e;
	memset(&e, 0, sizeof e);
	strcpy(e.qid, "0123456789ABCDEF");
	e.sender = sender;
	e.envid = (char *)"ENV-1";
	e.ret = ret;
	e.arrival = 1700000000;
	return e;
}

static void test_wanted(void **state)
{
	(void)state;
	static const struct { const char *sender; unsigned notify; enum dsn_kind k; bool want; } rows[] = {
		{ "a@b", 0, DSN_FAILED, true },      /* default: FAILURE, DELAY */
		{ "a@b", 0, DSN_DELAYED, true },
		{ "a@b", 0, DSN_SUCCESS, false },
		{ "a@b", NOTIFY_NEVER, DSN_FAILED, false },
		{ "a@b", NOTIFY_SUCCESS, DSN_SUCCESS, true },
		{ "a@b", NOTIFY_SUCCESS, DSN_FAILED, false },
		{ "a@b", NOTIFY_FAILURE, DSN_DELAYED, false },
		{ "a@b", NOTIFY_DELAY | NOTIFY_FAILURE, DSN_DELAYED, true },
		{ "", 0, DSN_FAILED, false },         /* never to the null sender */
		{ "", NOTIFY_SUCCESS, DSN_SUCCESS, false },
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		struct spool_env e = env_with((char *)rows[i].sender, RET_UNSET);
		struct spool_rcpt r = { .notify = rows[i].notify };
		if (dsn_wanted(&e, &r, rows[i].k) != rows[i].want)
			fail_msg("row %zu: want %d", i, rows[i].want);
	}
}

static void test_status_and_diagnostic(void **state)
{
	(void)state;
	static const struct { const char *reply, *status, *diag; } rows[] = {
		{ "5.1.1 mx[1.2.3.4] said: 550 5.1.1 no such user (in reply to RCPT TO)", "5.1.1",
		  "550 5.1.1 no such user (in reply to RCPT TO)" },
		{ "4.4.1 Connection refused", "4.4.1", NULL },
		{ "2.0.0 delivered to maildir x", "2.0.0", NULL },
		{ "5.1.10 nomail.example does not accept mail", "5.1.10", NULL },
		{ "garbage", "5.0.0", NULL },
		{ "", "5.0.0", NULL },
		{ "9.9.9 bad class", "5.0.0", NULL },
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		char st[16];
		dsn_status(rows[i].reply, st, sizeof st);
		assert_string_equal(st, rows[i].status);
		const char *d = dsn_diagnostic(rows[i].reply);
		if (rows[i].diag)
			assert_string_equal(d, rows[i].diag);
		else
			assert_null(d);
	}
}

static void test_return_full(void **state)
{
	(void)state;
	struct spool_env e = env_with((char *)"a@b", RET_UNSET);
	assert_true(dsn_return_full(&e, DSN_FAILED));
	assert_false(dsn_return_full(&e, DSN_SUCCESS));
	assert_false(dsn_return_full(&e, DSN_DELAYED));
	e.ret = RET_HDRS;
	assert_false(dsn_return_full(&e, DSN_FAILED));
	e.ret = RET_FULL;
	assert_true(dsn_return_full(&e, DSN_SUCCESS));
	e.requiretls = true;   /* RFC 8689 5: headers only, whatever RET said */
	assert_false(dsn_return_full(&e, DSN_SUCCESS));
	assert_false(dsn_return_full(&e, DSN_FAILED));
	e.ret = RET_UNSET;
	assert_false(dsn_return_full(&e, DSN_FAILED));
	e.requiretls = false;   /* RFC 3030 3: binary content never goes in a report */
	e.ret = RET_FULL;
	e.body = BODY_BINARYMIME;
	assert_false(dsn_return_full(&e, DSN_FAILED));
	e.body = BODY_8BITMIME;
	assert_true(dsn_return_full(&e, DSN_FAILED));
}

static const char original[] = "Received: from x\r\n\tby y\r\nSubject: hello\r\n\r\nbody line\r\n";

static void build(struct buf *b, enum dsn_kind k, bool full, const struct spool_rcpt *r, size_t n)
{
	static struct spool_env e;
	e = env_with((char *)"alice@example.com", RET_UNSET);
	struct dsn_item items[4];
	static const char *const act[] = { "failed", "delayed", "delivered" };
	for (size_t i = 0; i < n; i++)
		items[i] = (struct dsn_item){ &r[i], act[k] };
	struct dsn_report rep = { k, "mx.example", "FEDCBA9876543210", &e, items, n, 1700000100,
	                          1700400000, original, sizeof original - 1, full };
	dsn_build(b, &rep);
}

static void test_build_failure(void **state)
{
	(void)state;
	struct spool_rcpt r[2] = {
		{ .addr = (char *)"bob@dest.example", .orcpt = (char *)"rfc822;Bob@Dest.Example",
		  .last_reply = (char *)"5.1.1 mx1[1.2.3.4] said: 550 5.1.1 unknown (in reply to RCPT TO)",
		  .remote_mta = (char *)"mx1.dest.example[1.2.3.4]" },
		{ .addr = (char *)"carol@dest.example", .orcpt = (char *)"",
		  .last_reply = (char *)"5.4.4 no route", .remote_mta = (char *)"" },
	};
	struct buf b = BUF_INIT;
	build(&b, DSN_FAILED, true, r, 2);
	const char *s = buf_cstr(&b);
	const char *want[] = {
		"To: <alice@example.com>\r\n", "Auto-Submitted: auto-replied\r\n",
		"Content-Type: multipart/report; report-type=delivery-status;\r\n"
		"\tboundary=\"FEDCBA9876543210/mx.example\"\r\n",
		"--FEDCBA9876543210/mx.example\r\nContent-Description: Notification\r\n",
		"Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example\r\n",
		"Original-Envelope-Id: ENV-1\r\n",
		"\r\nFinal-Recipient: rfc822; bob@dest.example\r\n"
		"Original-Recipient: rfc822; Bob@Dest.Example\r\nAction: failed\r\nStatus: 5.1.1\r\n"
		"Remote-MTA: dns; mx1.dest.example\r\n"
		"Diagnostic-Code: smtp; 550 5.1.1 unknown (in reply to RCPT TO)\r\n",
		"\r\nFinal-Recipient: rfc822; carol@dest.example\r\nAction: failed\r\nStatus: 5.4.4\r\n",
		"Content-Type: message/rfc822\r\n\r\nReceived: from x\r\n",
		"body line\r\n\r\n--FEDCBA9876543210/mx.example--\r\n",
	};
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
		if (!strstr(s, want[i]))
			fail_msg("missing %s\nin\n%s", want[i], s);
	assert_null(strstr(s, "Will-Retry-Until"));
	buf_free(&b);
}

static void test_build_delay_headers_only(void **state)
{
	(void)state;
	struct spool_rcpt r = { .addr = (char *)"bob@dest.example", .orcpt = (char *)"",
	                        .last_reply = (char *)"4.4.1 Connection refused",
	                        .remote_mta = (char *)"" };
	struct buf b = BUF_INIT;
	build(&b, DSN_DELAYED, false, &r, 1);
	const char *s = buf_cstr(&b);
	assert_non_null(strstr(s, "Action: delayed\r\nStatus: 4.4.1\r\n"));
	assert_non_null(strstr(s, "Will-Retry-Until: "));
	assert_non_null(strstr(s, "Content-Type: text/rfc822-headers\r\n\r\nReceived: from x\r\n"
	                          "\tby y\r\nSubject: hello\r\n\r\n--"));
	assert_null(strstr(s, "body line"));
	buf_free(&b);
}

static void test_build_success_status(void **state)
{
	(void)state;
	struct spool_rcpt r = { .addr = (char *)"bob@x", .orcpt = (char *)"",
	                        .last_reply = (char *)"weird text", .remote_mta = (char *)"" };
	struct buf b = BUF_INIT;
	build(&b, DSN_SUCCESS, false, &r, 1);
	assert_non_null(strstr(buf_cstr(&b), "Action: delivered\r\nStatus: 2.0.0\r\n"));
	buf_free(&b);
}

/* A reply in UTF-8 (RFC 6531 allows it) reaches the Diagnostic-Code as
 * US-ASCII (RFC 3464 2.3.6), each octet past it a '?'. */
static void test_build_diagnostic_ascii(void **state)
{
	(void)state;
	struct spool_rcpt r = { .addr = (char *)"bob@x", .orcpt = (char *)"",
	                        .last_reply = (char *)"4.3.0 mx[1.2.3.4] said: 451 caf\xc3\xa9 busy",
	                        .remote_mta = (char *)"" };
	struct buf b = BUF_INIT;
	build(&b, DSN_DELAYED, false, &r, 1);
	assert_non_null(strstr(buf_cstr(&b), "Diagnostic-Code: smtp; 451 caf?? busy\r\n"));
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wanted), cmocka_unit_test(test_status_and_diagnostic),
		cmocka_unit_test(test_return_full), cmocka_unit_test(test_build_failure),
		cmocka_unit_test(test_build_delay_headers_only),
		cmocka_unit_test(test_build_success_status),
		cmocka_unit_test(test_build_diagnostic_ascii),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
