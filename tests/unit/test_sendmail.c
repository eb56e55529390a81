/* test_sendmail: tern-sendmail's pure parsers (src/tools/sendmail/args.c
 * and message.c): the command lines of the real callers, glued and
 * separate values; RFC 5322 address lists and the header section; line
 * ends. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <sysexits.h>

#include "net/smtp.h"
#include "tools/sendmail/args.h"
#include "tools/sendmail/message.h"

#define ARRAY_LEN(a) (sizeof (a) / sizeof (a)[0])
#define MAXW 16

static int parse(const char *const *words, struct args *a)
{
	char *argv[MAXW + 1];
	int argc = 0;
	while (words[argc]) {
		assert_true(argc < MAXW);
		argv[argc] = (char *)words[argc];
		argc++;
	}
	argv[argc] = NULL;
	char err[256];
	err[0] = '\0';
	int rc = args_parse(argc, argv, a, err, sizeof err);
	if (rc && !err[0])
		fail_msg("%s: refused without a message", argc > 1 ? argv[1] : "(none)");
	return rc;
}

/* ---- the callers' command lines ---- */

static void test_php(void **state)
{
	(void)state;
	struct args a;
	const char *w[] = { "sendmail", "-t", "-i", "-fwww@example.com", NULL };
	assert_int_equal(parse(w, &a), 0);
	assert_int_equal(a.mode, ARGS_SEND);
	assert_true(a.extract && a.dots);
	assert_string_equal(a.sender, "www@example.com");
	assert_int_equal(a.nrcpt, 0);
}

static void test_debian_cron(void **state)
{
	(void)state;
	struct args a;
	const char *w[] = { "/usr/sbin/sendmail", "-FCronDaemon", "-i", "-B8BITMIME", "-oem", "kate",
	                    NULL };
	assert_int_equal(parse(w, &a), 0);
	assert_string_equal(a.fullname, "CronDaemon");
	assert_true(a.dots && !a.extract);
	assert_int_equal(a.body, BODY_8BITMIME);
	assert_int_equal(a.nrcpt, 1);
	assert_string_equal(a.rcpt[0], "kate");
}

static void test_cronie(void **state)
{
	(void)state;
	struct args a;
	const char *w[] = { "sendmail", "-t", "-f", "kate", "-odi", "-oem", "-oi", NULL };
	assert_int_equal(parse(w, &a), 0);
	assert_true(a.extract && a.dots);
	assert_string_equal(a.sender, "kate");
	assert_int_equal(a.nrcpt, 0);
}

static void test_git_busybox_grouped(void **state)
{
	(void)state;
	struct args a;
	const char *git[] = { "sendmail", "-i", "-f", "me@example.com", "a@example.com",
	                      "b@example.org", NULL };
	assert_int_equal(parse(git, &a), 0);
	assert_int_equal(a.nrcpt, 2);
	assert_string_equal(a.rcpt[1], "b@example.org");
	const char *bb[] = { "sendmail", "-t", "-fx", NULL };
	assert_int_equal(parse(bb, &a), 0);
	assert_string_equal(a.sender, "x");
	const char *grouped[] = { "sendmail", "-tif", "y", "--", "-z@example.com", NULL };
	assert_int_equal(parse(grouped, &a), 0);
	assert_true(a.extract && a.dots);
	assert_string_equal(a.sender, "y");
	assert_int_equal(a.nrcpt, 1);
	assert_string_equal(a.rcpt[0], "-z@example.com");
}

static void test_modes(void **state)
{
	(void)state;
	struct args a;
	const char *bs[] = { "sendmail", "-bs", NULL };
	assert_int_equal(parse(bs, &a), 0);
	assert_int_equal(a.mode, ARGS_SMTP);
	const char *mailq[] = { "/usr/bin/mailq", NULL };
	assert_int_equal(parse(mailq, &a), 0);
	assert_int_equal(a.mode, ARGS_QUEUE);
	const char *na[] = { "newaliases", NULL };
	assert_int_equal(parse(na, &a), 0);
	assert_int_equal(a.mode, ARGS_ALIASES);
	const char *bp[] = { "sendmail", "-b", "p", "-C", "/etc/x.conf", NULL };
	assert_int_equal(parse(bp, &a), 0);
	assert_int_equal(a.mode, ARGS_QUEUE);
	assert_string_equal(a.config, "/etc/x.conf");
	const char *q[] = { "sendmail", "-q", NULL };
	assert_int_equal(parse(q, &a), 0);
	assert_int_equal(a.mode, ARGS_FLUSH);
	assert_null(a.site);
	const char *qr[] = { "sendmail", "-qR", "example.com", NULL };
	assert_int_equal(parse(qr, &a), 0);
	assert_string_equal(a.site, "example.com");
	assert_int_equal(a.nrcpt, 0);
	const char *qrg[] = { "sendmail", "-qRexample.org", NULL };
	assert_int_equal(parse(qrg, &a), 0);
	assert_string_equal(a.site, "example.org");
	const char *bi[] = { "sendmail", "-I", NULL };
	assert_int_equal(parse(bi, &a), 0);
	assert_int_equal(a.mode, ARGS_ALIASES);
}

static void test_dsn(void **state)
{
	(void)state;
	struct args a;
	const char *w[] = { "sendmail", "-N", "success,FAILURE", "-Rhdrs", "-V", "env-1",
	                    "-B", "7bit", "x", NULL };
	assert_int_equal(parse(w, &a), 0);
	assert_int_equal(a.notify, NOTIFY_SUCCESS | NOTIFY_FAILURE);
	assert_int_equal(a.ret, RET_HDRS);
	assert_string_equal(a.envid, "env-1");
	assert_int_equal(a.body, BODY_7BIT);
	const char *never[] = { "sendmail", "-Nnever", NULL };
	assert_int_equal(parse(never, &a), 0);
	assert_int_equal(a.notify, NOTIFY_NEVER);
}

/* Postfix's ignored flags are taken; the broken ones are refused. */
static void test_ignored_and_bad(void **state)
{
	(void)state;
	struct args a;
	const char *ign[] = { "sendmail", "-G", "-U", "-c", "-m", "-n", "-x", "-L", "label", "-O",
	                      "a=b", "-h", "9", NULL };
	assert_int_equal(parse(ign, &a), 0);
	assert_int_equal(a.nrcpt, 0);
	const char *const bad[][4] = {
		{ "sendmail", "-Z", NULL }, { "sendmail", "-f", NULL }, { "sendmail", "-bd", NULL },
		{ "sendmail", "-N", "never,delay", NULL }, { "sendmail", "-Bbinary", NULL },
		{ "sendmail", "-R", "all", NULL }, { "sendmail", "-qR", NULL },
	};
	for (size_t i = 0; i < ARRAY_LEN(bad); i++)
		if (parse(bad[i], &a) != EX_USAGE)
			fail_msg("%s %s: not refused", bad[i][1], bad[i][2] ? bad[i][2] : "");
}

/* ---- address lists, RFC 5322 3.4 ---- */

struct got {
	char all[1024];
};

static void collect(void *ctx, const char *addr)
{
	struct got *g = ctx;
	size_t n = strlen(g->all);
	snprintf(g->all + n, sizeof g->all - n, "%s%s", n ? "|" : "", addr);
}

static const struct {
	const char *in;
	int count;
	const char *out;
} lists[] = {
	{ "a@example.com", 1, "a@example.com" },
	{ " a@example.com , b@example.org ", 2, "a@example.com|b@example.org" },
	{ "Kate Smith <kate@example.com>", 1, "kate@example.com" },
	{ "\"Smith, Kate\" <kate@example.com>, bob@x.example", 2, "kate@example.com|bob@x.example" },
	{ "kate@example.com (Kate, the boss)", 1, "kate@example.com" },
	{ "(c (nested)) kate@example.com", 1, "kate@example.com" },
	{ "\"john doe\"@example.com", 1, "\"john doe\"@example.com" },
	{ "\"a\\\"b\"@example.com", 1, "\"a\\\"b\"@example.com" },
	{ "undisclosed-recipients:;", 0, "" },
	{ "Friends: a@x.example, B <b@y.example>;, c@z.example", 3,
	  "a@x.example|b@y.example|c@z.example" },
	{ "<@relay.example:a@x.example>", 1, "@relay.example:a@x.example" },
	{ "a@[192.0.2.1]", 1, "a@[192.0.2.1]" },
	{ "a@example.com,\r\n\tb@example.com", 2, "a@example.com|b@example.com" },
	{ "root", 1, "root" },
	{ "", 0, "" },
	{ ",,", 0, "" },
	{ "\"unclosed@example.com", -1, NULL },
	{ "(unclosed a@example.com", -1, NULL },
	{ "Kate <kate@example.com", -1, NULL },
};

static void test_addrs(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(lists); i++) {
		struct got g = { { 0 } };
		int n = message_addrs(lists[i].in, strlen(lists[i].in), collect, &g);
		if (n != lists[i].count || (n >= 0 && strcmp(g.all, lists[i].out)))
			fail_msg("%s: %d '%s', expected %d '%s'", lists[i].in, n, g.all, lists[i].count,
			         lists[i].out ? lists[i].out : "");
	}
	char big[1200];
	memset(big, 'a', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	struct got g = { { 0 } };
	assert_int_equal(message_addrs(big, strlen(big), collect, &g), -1);
}

/* ---- the header section ---- */

#define HDR "From: Kate <kate@example.com>\r\n" \
            "To: a@example.com,\r\n b@example.com\r\n" \
            "Subject: to: not a field\r\n" \
            "cc : c@example.com\r\n" \
            "BCC: Hidden <d@example.com>,\r\n" \
            "\tFriends: e@example.com;\r\n" \
            "X-Bcc: f@example.com\r\n"

static void test_rcpts(void **state)
{
	(void)state;
	struct got g = { { 0 } };
	assert_int_equal(message_rcpts(HDR, strlen(HDR), collect, &g), 5);
	assert_string_equal(g.all, "a@example.com|b@example.com|c@example.com|d@example.com|"
	                    "e@example.com");
	const char *bad = "To: \"a@example.com\r\n";
	assert_int_equal(message_rcpts(bad, strlen(bad), collect, &g), -1);
}

static void test_drop_has(void **state)
{
	(void)state;
	char h[] = HDR;
	size_t n = message_drop(h, strlen(h), "Bcc");
	h[n] = '\0';
	assert_null(strstr(h, "BCC"));
	assert_null(strstr(h, "Friends"));
	assert_non_null(strstr(h, "X-Bcc: f@example.com\r\n"));
	assert_true(message_has(h, n, "from"));
	assert_true(message_has(h, n, "CC"));
	assert_false(message_has(h, n, "Date"));
	assert_false(message_has(h, n, "Bcc"));
	assert_false(message_has(h, n, "X"));
	assert_int_equal(message_drop(h, 0, "Bcc"), 0);
}

/* ---- lines ---- */

static void test_lines(void **state)
{
	(void)state;
	size_t n = 5;
	assert_int_equal(message_line("abc\r\n", &n), MESSAGE_LINE_OK);
	assert_int_equal(n, 3);
	n = 4;
	assert_int_equal(message_line("abc\n", &n), MESSAGE_LINE_OK);
	assert_int_equal(n, 3);
	n = 3;
	assert_int_equal(message_line("abc", &n), MESSAGE_LINE_OK);
	assert_int_equal(n, 3);
	n = 5;
	assert_int_equal(message_line("a\rc\r\n", &n), MESSAGE_LINE_CR);
	n = 6;
	assert_int_equal(message_line("abc\r\r\n", &n), MESSAGE_LINE_CR);
	n = 4;
	assert_int_equal(message_line("a\0c\n", &n), MESSAGE_LINE_NUL);
	assert_true(message_mbox_from("From kate Mon Dec  1 10:00:00 2026", 34));
	assert_false(message_mbox_from("From: kate", 10));
	assert_int_equal(message_kind("Subject: x", 10), MESSAGE_FIELD);
	assert_int_equal(message_kind("Subject : x", 11), MESSAGE_FIELD);
	assert_int_equal(message_kind(" folded", 7), MESSAGE_FOLD);
	assert_int_equal(message_kind("\tfolded", 7), MESSAGE_FOLD);
	assert_int_equal(message_kind("no colon here", 13), MESSAGE_OTHER);
	assert_int_equal(message_kind(":empty name", 11), MESSAGE_OTHER);
	assert_int_equal(message_kind("two words: x", 12), MESSAGE_OTHER);
	assert_int_equal(message_kind("", 0), MESSAGE_OTHER);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_php),
		cmocka_unit_test(test_debian_cron),
		cmocka_unit_test(test_cronie),
		cmocka_unit_test(test_git_busybox_grouped),
		cmocka_unit_test(test_modes),
		cmocka_unit_test(test_dsn),
		cmocka_unit_test(test_ignored_and_bad),
		cmocka_unit_test(test_addrs),
		cmocka_unit_test(test_rcpts),
		cmocka_unit_test(test_drop_has),
		cmocka_unit_test(test_lines),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
