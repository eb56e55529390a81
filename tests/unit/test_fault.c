/* Unit tests for fault: the fault rules' grammar (good lines and bad ones
 * with their messages), text replacement that changes nothing when a line
 * is bad, and the matcher's globs, conditions and counters. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "policy/fault.h"

static void test_good(void **state)
{
	(void)state;
	static const struct {
		const char *line;
		enum fault_stage stage;
		const char *glob;
		enum fault_action action;
		unsigned code;
		const char *esc, *text;
	} rows[] = {
		{ "rcpt *@full.test reply 452 4.2.2 Mailbox full", FAULT_RCPT, "*@full.test",
		  FAULT_REPLY, 452, "4.2.2", "Mailbox full" },
		{ "  rcpt * reply 550 no esc here  ", FAULT_RCPT, NULL, FAULT_REPLY, 550, "",
		  "no esc here" },
		{ "mail reply 451 4.3.0 a=b \"quoted\" -- tag=t1", FAULT_MAIL, NULL, FAULT_REPLY, 451,
		  "4.3.0", "a=b \"quoted\"" },
		{ "connect reply 554 5.7.1", FAULT_CONNECT, NULL, FAULT_REPLY, 554, "5.7.1", "" },
		{ "data *@slow.test delay 2s", FAULT_DATA, "*@slow.test", FAULT_DELAY, 0, "", "" },
		{ "mail *@drop.test close", FAULT_MAIL, "*@drop.test", FAULT_CLOSE, 0, "", "" },
		{ "helo disconnect", FAULT_HELO, NULL, FAULT_DISCONNECT, 0, "", "" },
		{ "any throttle 2k/s ip=127.0.0.0/8", FAULT_ANY, NULL, FAULT_THROTTLE, 0, "", "" },
		{ "data abort after 10k", FAULT_DATA, NULL, FAULT_ABORT, 0, "", "" },
		{ "data abort 100 552 5.3.4 Too big -- nth=2", FAULT_DATA, NULL, FAULT_ABORT, 552,
		  "5.3.4", "Too big" },
		{ "rcpt greylist 1s", FAULT_RCPT, NULL, FAULT_GREYLIST, 0, "", "" },
		{ "rcpt greylist from=*@x.test", FAULT_RCPT, NULL, FAULT_GREYLIST, 0, "", "" },
		{ "helo no-starttls", FAULT_HELO, NULL, FAULT_NO_STARTTLS, 0, "", "" },
		{ "starttls tls-fail", FAULT_STARTTLS, NULL, FAULT_TLS_FAIL, 0, "", "" },
		{ "rcpt *@b.test bounce 550 5.1.1 No such user -- odds=1", FAULT_RCPT, "*@b.test",
		  FAULT_BOUNCE, 550, "5.1.1", "No such user" },
		{ "eom reply 554 5.7.1 spam header=\"Subject: *viagra*\"", FAULT_EOM, NULL, FAULT_REPLY,
		  554, "5.7.1", "spam header=\"Subject: *viagra*\"" },   /* no "--": all text */
		{ "eom reply 554 5.7.1 spam -- header=\"Subject: *viagra*\" size>10k", FAULT_EOM, NULL,
		  FAULT_REPLY, 554, "5.7.1", "spam" },
		{ "MAIL * DELAY 500ms jitter 1s rate>5/min every=3", FAULT_MAIL, NULL, FAULT_DELAY, 0,
		  "", "" },
		{ "auth reply 454 4.7.0 later -- user=bob listener=127.0.0.1:2525", FAULT_AUTH, NULL,
		  FAULT_REPLY, 454, "4.7.0", "later" },
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		struct fault_rules r;
		char err[512] = "";
		fault_rules_init(&r);
		if (!fault_parse_line(&r, rows[i].line, "t:1", err, sizeof err))
			fail_msg("%s: %s", rows[i].line, err);
		assert_int_equal(r.n, 1);
		const struct fault_rule *f = r.head;
		assert_int_equal(f->stage, rows[i].stage);
		if (rows[i].glob)
			assert_string_equal(f->glob, rows[i].glob);
		else
			assert_null(f->glob);
		assert_int_equal(f->action, rows[i].action);
		assert_int_equal(f->code, rows[i].code);
		assert_string_equal(f->esc, rows[i].esc);
		assert_string_equal(f->text, rows[i].text);
		assert_string_equal(f->origin, "t:1");
		fault_rules_free(&r);
	}
}

static void test_args(void **state)
{
	(void)state;
	struct fault_rules r;
	char err[512];
	fault_rules_init(&r);
	assert_true(fault_parse_line(&r, "data delay 2s jitter 500ms", "t:1", err, sizeof err));
	assert_true(fault_parse_line(&r, "any throttle 100/s", "t:2", err, sizeof err));
	assert_true(fault_parse_line(&r, "data abort after 10k", "t:3", err, sizeof err));
	assert_true(fault_parse_line(&r, "rcpt greylist", "t:4", err, sizeof err));
	assert_true(fault_parse_line(&r, "eom close -- header=\"X-Test: a b*\" size>1k nth=3",
	                             "t:5", err, sizeof err));
	assert_true(fault_parse_line(&r, "# a comment", "t:6", err, sizeof err));
	assert_true(fault_parse_line(&r, "   ", "t:7", err, sizeof err));
	assert_int_equal(r.n, 5);
	const struct fault_rule *f = r.head;
	assert_int_equal(f->delay_ms, 2000);
	assert_int_equal(f->jitter_ms, 500);
	f = f->next;
	assert_int_equal(f->amount, 100);
	f = f->next;
	assert_int_equal(f->amount, 10240);
	f = f->next;
	assert_int_equal(f->delay_ms, 60000);   /* greylist's default */
	f = f->next;
	assert_string_equal(f->header_name, "X-Test");
	assert_string_equal(f->header_glob, "a b*");
	assert_true(f->has_size);
	assert_int_equal(f->size_gt, 1024);
	assert_int_equal(f->nth, 3);
	fault_rules_free(&r);
}

static void test_bad(void **state)
{
	(void)state;
	static const struct { const char *line, *msg; } rows[] = {
		{ "bogus reply 550 x", "is not a stage" },
		{ "rcpt", "expected an action" },
		{ "rcpt *@x.test", "expected an action" },
		{ "rcpt explode", "expected an action" },
		{ "rcpt reply 250 ok", "reply code from 400 to 599" },
		{ "rcpt reply 45 x", "reply code" },
		{ "rcpt reply abc", "reply code" },
		{ "rcpt bounce 550 no esc", "enhanced code 5.x.y" },
		{ "rcpt bounce 450 4.2.2 full", "reply code from 500 to 599" },
		{ "rcpt bounce 550 4.1.1 class mismatch", "enhanced code" },
		{ "data delay", "expected a duration" },
		{ "data delay soon", "expected a duration" },
		{ "data delay 2s jitter", "after jitter" },
		{ "data delay 2h", "expected a duration" },
		{ "data delay 5mms", "expected a duration" },
		{ "data delay -1s", "expected a duration" },
		{ "any throttle 100", "rate such as" },
		{ "any throttle 0/s", "not a rate" },
		{ "rcpt abort 10", "abort cannot stand at rcpt" },
		{ "data abort", "expected a size" },
		{ "data greylist", "greylist cannot stand at data" },
		{ "mail bounce 550 5.1.1 x", "bounce cannot stand at mail" },
		{ "rcpt no-starttls", "no-starttls cannot stand at rcpt" },
		{ "helo tls-fail", "tls-fail cannot stand at helo" },
		{ "connect *@x.test close", "address pattern holds only" },
		{ "rcpt close extra", "expected a condition key=value" },
		{ "rcpt close color=red", "unknown condition" },
		{ "rcpt close ip=banana", "ip= expects" },
		{ "rcpt close odds=1.5", "odds= expects" },
		{ "rcpt close nth=0", "nth= expects" },
		{ "rcpt close nth=1 every=2", "cannot be combined" },
		{ "rcpt close to=", "needs a value" },
		{ "rcpt close from=a from=b", "given twice" },
		{ "rcpt close header=\"Subject: x\"", "only at eom" },
		{ "eom close header=NoColon", "header= expects" },
		{ "rcpt close size>big", "size> expects" },
		{ "rcpt close rate>5", "rate> expects" },
		{ "rcpt close weight>5", "unknown condition" },
		{ "rcpt close header=\"unclosed", "unclosed quote" },
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		struct fault_rules r;
		char err[512] = "";
		fault_rules_init(&r);
		if (fault_parse_line(&r, rows[i].line, "f.rules:7", err, sizeof err))
			fail_msg("accepted: %s", rows[i].line);
		if (strncmp(err, "f.rules:7: ", 11) || !strstr(err, rows[i].msg))
			fail_msg("%s: got \"%s\", want \"%s\"", rows[i].line, err, rows[i].msg);
		assert_int_equal(r.n, 0);
		assert_null(r.head);
		fault_rules_free(&r);
	}
}

/* A bad line anywhere in a text: the first one named, nothing added. */
static void test_text(void **state)
{
	(void)state;
	struct fault_rules r;
	char err[512];
	fault_rules_init(&r);
	assert_true(fault_parse_text(&r, "rcpt close\n", "a", err, sizeof err));
	assert_int_equal(r.n, 1);
	assert_false(fault_parse_text(&r, "# ok\nmail close\n\nrcpt reply 99 x\nbad\n", "runtime",
	                              err, sizeof err));
	assert_string_equal(err, "runtime:4: reply: expected a reply code from 400 to 599, got \"99\"");
	assert_int_equal(r.n, 1);
	assert_true(fault_parse_text(&r, "mail close\r\nhelo disconnect", "runtime", err,
	                             sizeof err));
	assert_int_equal(r.n, 3);
	assert_string_equal(r.head->next->origin, "runtime:1");
	assert_string_equal(r.head->next->next->origin, "runtime:2");
	assert_string_equal(r.head->next->next->line, "helo disconnect");
	fault_rules_free(&r);
}

static const char *test_header(void *ctx, const char *name, size_t nth, size_t *len)
{
	(void)ctx;
	static const char *const fields[][2] = {
		{ "Subject", " hello\r\n world" }, { "X-Test", " one" }, { "x-test", " two" },
	};
	for (size_t i = 0; i < 3; i++)
		if (!strcasecmp(fields[i][0], name) && nth-- == 0) {
			*len = strlen(fields[i][1]);
			return fields[i][1];
		}
	return NULL;
}

static unsigned test_rate(void *ctx, enum fault_stage st)
{
	(void)st;
	return *(unsigned *)ctx;
}

/* One line against facts: fired or not. */
static bool matches(const char *line, const struct fault_facts *f)
{
	struct fault_rules r;
	char err[512];
	fault_rules_init(&r);
	if (!fault_parse_line(&r, line, "t:1", err, sizeof err))
		fail_msg("%s", err);
	bool hit = fault_match(&r, f) != NULL;
	fault_rules_free(&r);
	return hit;
}

static void test_match(void **state)
{
	(void)state;
	struct sockaddr_in sin = { .sin_family = AF_INET };
	inet_pton(AF_INET, "192.0.2.7", &sin.sin_addr);
	const char *rcpts[] = { "a@x.test", "user+t1@y.test" };
	unsigned rate = 6;
	struct fault_facts f = {
		.stage = FAULT_RCPT, .addr = "user+t1@y.test", .sender = "s@from.test",
		.rcpts = rcpts, .nrcpt = 2, .client = (struct sockaddr *)&sin,
		.listener = "127.0.0.1:2525", .user = NULL, .has_size = true, .size = 5000,
		.header = test_header, .rate = test_rate, .ctx = &rate, .random = 0.5,
	};
	static const struct { const char *line; bool want; } rows[] = {
		{ "rcpt close", true },
		{ "mail close", false },            /* another stage */
		{ "any close", true },
		{ "rcpt *@Y.TEST close", true },    /* case-insensitive */
		{ "rcpt *@x.test close", false },   /* RCPT: this recipient only */
		{ "rcpt close -- to=a@x.test", true },   /* to=: any of them */
		{ "rcpt close from=*@from.test", true },
		{ "rcpt close from=*@other.test", false },
		{ "rcpt close tag=t1", true },
		{ "rcpt close tag=T1", true },
		{ "rcpt close tag=t2", false },
		{ "rcpt close tag=t", false },
		{ "rcpt close ip=192.0.2.0/24", true },
		{ "rcpt close ip=198.51.100.0/24", false },
		{ "rcpt close listener=127.0.0.1:2525", true },
		{ "rcpt close listener=127.0.0.1:25", false },
		{ "rcpt close user=*", false },     /* not authenticated */
		{ "rcpt close size>4999", true },
		{ "rcpt close size>5000", false },
		{ "rcpt close rate>5/min", true },
		{ "rcpt close rate>6/min", false },
		{ "rcpt close odds=1", true },
		{ "rcpt close odds=0", false },
		{ "rcpt close odds=0.5", false },   /* random 0.5: fires below */
		{ "rcpt close odds=0.51", true },
		{ "rcpt greylist", true },
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
		if (matches(rows[i].line, &f) != rows[i].want)
			fail_msg("%s: want %d", rows[i].line, rows[i].want);
	f.stage = FAULT_EOM;
	assert_true(matches("eom close header=\"subject: hello world\"", &f));
	assert_true(matches("eom close header=\"X-Test: tw*\"", &f));   /* the second field */
	assert_false(matches("eom close header=\"X-Test: three\"", &f));
	assert_false(matches("eom close header=\"Missing: *\"", &f));
	assert_true(matches("eom *@x.test close", &f));     /* eom: any recipient */
	assert_false(matches("eom *@z.test close", &f));
	f.stage = FAULT_CONNECT;
	assert_false(matches("any *@x.test close", &f));    /* no address at connect */
	assert_true(matches("any close", &f));
}

/* nth fires once, on the Nth match; every on each Nth; the first rule
 * that fires wins, in order. */
static void test_counts(void **state)
{
	(void)state;
	struct fault_rules r;
	char err[512];
	fault_rules_init(&r);
	assert_true(fault_parse_text(&r,
	                             "rcpt reply 451 first -- nth=2\n"
	                             "rcpt reply 452 second -- every=3\n"
	                             "rcpt *@only.test reply 453 third\n",
	                             "t", err, sizeof err));
	struct fault_facts f = { .stage = FAULT_RCPT, .addr = "a@only.test" };
	unsigned want[] = { 453, 451, 453, 452, 453, 453, 452 };
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
		const struct fault_rule *hit = fault_match(&r, &f);
		assert_non_null(hit);
		assert_int_equal(hit->code, want[i]);
	}
	f.addr = "a@other.test";
	assert_null(fault_match(&r, &f));   /* the 8th: neither 2nd nor a 3rd of 3 */
	fault_rules_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),  cmocka_unit_test(test_args),
		cmocka_unit_test(test_bad),   cmocka_unit_test(test_text),
		cmocka_unit_test(test_match), cmocka_unit_test(test_counts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
