/* test_dropfile: src/smtpd/dropfile.c, the envelope of a maildrop file
 * (net/maildrop.h). A table of whole files: what parses, with what, and
 * what is refused; every good row cut short at each octet before its DATA
 * line asks for more, never refuses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "smtpd/dropfile.h"

#define ARRAY_LEN(a) (sizeof (a) / sizeof (a)[0])
#define HEAD "TERN-MAILDROP 1 uid=1000 user=alice\r\n"
#define MAIL "MAIL FROM:<alice@host.example>\r\n"

struct row {
	const char *in;
	enum dropfile_res res;
	size_t nrcpt;          /* when OK */
	const char *first;     /* the first recipient, formatted, when OK */
};

static const struct row rows[] = {
	{ HEAD MAIL "RCPT TO:<bob@example.com>\r\nDATA\r\nSubject: x\r\n\r\n.\r\n",
	  DROPFILE_OK, 1, "bob@example.com" },
	{ HEAD "MAIL FROM:<>\r\nRCPT TO:<a@b.example>\r\nRCPT TO:<postmaster>\r\nDATA\r\n",
	  DROPFILE_OK, 2, "a@b.example" },
	{ HEAD "MAIL FROM:<a@b.example> BODY=8BITMIME RET=HDRS ENVID=x+2By\r\n"
	  "RCPT TO:<c@d.example> NOTIFY=FAILURE,DELAY ORCPT=rfc822;c@d.example\r\nDATA\r\n",
	  DROPFILE_OK, 1, "c@d.example" },
	/* the first line */
	{ "TERN-MAILDROP 2 uid=1 user=a\r\n" MAIL "RCPT TO:<b@c.example>\r\nDATA\r\n",
	  DROPFILE_BAD, 0, NULL },
	{ "TERN-MAILDROP 1 uid=x user=a\r\n" MAIL "RCPT TO:<b@c.example>\r\nDATA\r\n",
	  DROPFILE_BAD, 0, NULL },
	{ "TERN-MAILDROP 1 uid=1 user=\r\n" MAIL "RCPT TO:<b@c.example>\r\nDATA\r\n",
	  DROPFILE_BAD, 0, NULL },
	{ "TERN-MAILDROP 1 uid=1 user=a b\r\n" MAIL "RCPT TO:<b@c.example>\r\nDATA\r\n",
	  DROPFILE_BAD, 0, NULL },
	{ "From alice Mon Jan  1 00:00:00 2026\r\n", DROPFILE_BAD, 0, NULL },
	{ "\x7f" "ELF\x02\x01\x01", DROPFILE_BAD, 0, NULL },
	{ "TERN-MAIL", DROPFILE_MORE, 0, NULL },
	{ "\x7f" "ELF\x02\x01\x01\r\n", DROPFILE_BAD, 0, NULL },
	/* the envelope's commands */
	{ HEAD "RCPT TO:<b@c.example>\r\nDATA\r\n", DROPFILE_BAD, 0, NULL },
	{ HEAD MAIL "DATA\r\n", DROPFILE_BAD, 0, NULL },
	{ HEAD MAIL "RCPT TO:<b@c.example>\r\nDATA x\r\n", DROPFILE_BAD, 0, NULL },
	{ HEAD MAIL "MAIL FROM:<x@y.example>\r\n", DROPFILE_BAD, 0, NULL },
	{ HEAD "MAIL FROM:<a@b.example> SIZE=x\r\n", DROPFILE_BAD, 0, NULL },
	{ HEAD "MAIL FROM:<a@b.example> FOO=1\r\n", DROPFILE_BAD, 0, NULL },
	{ HEAD MAIL "RCPT TO:<>\r\n", DROPFILE_BAD, 0, NULL },
	{ HEAD MAIL "RCPT TO:<b@c.example> NOTIFY=NEVER,DELAY\r\n", DROPFILE_BAD, 0, NULL },
	{ HEAD MAIL "RCPT TO:<b@c.example>junk\r\n", DROPFILE_BAD, 0, NULL },
	{ HEAD MAIL "RCPT TO:<b\x01@c.example>\r\n", DROPFILE_BAD, 0, NULL },
	/* framing: CRLF only, no NUL */
	{ HEAD MAIL "RCPT TO:<b@c.example>\nDATA\r\n", DROPFILE_BAD, 0, NULL },
	{ HEAD MAIL "RCPT TO:<b@c.example>\r\rDATA\r\n", DROPFILE_BAD, 0, NULL },
	/* not complete yet */
	{ HEAD MAIL "RCPT TO:<b@c.example>\r\nDAT", DROPFILE_MORE, 0, NULL },
	{ "", DROPFILE_MORE, 0, NULL },
};

static enum dropfile_res parse(const char *p, size_t n, struct dropfile_env *e, size_t *used)
{
	const char *why;
	enum dropfile_res r = dropfile_parse(p, n, 3, e, used, &why);
	if (r == DROPFILE_BAD && !why)
		fail_msg("refused without a reason");
	return r;
}

static void test_rows(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
		struct dropfile_env e;
		memset(&e, 0, sizeof e);
		size_t used = 0, n = strlen(rows[i].in);
		enum dropfile_res r = parse(rows[i].in, n, &e, &used);
		if (r != rows[i].res)
			fail_msg("row %zu: result %d, expected %d", i, r, rows[i].res);
		if (r == DROPFILE_OK) {
			char first[600];
			addr_format(&e.rcpt[0].addr, first, sizeof first);
			assert_int_equal(e.nrcpt, rows[i].nrcpt);
			assert_string_equal(first, rows[i].first);
			assert_memory_equal(rows[i].in + used - 6, "DATA\r\n", 6);
		}
		dropfile_free(&e);
	}
}

/* A NUL inside an envelope line is refused, not read past. */
static void test_nul(void **state)
{
	(void)state;
	static const char in[] = HEAD MAIL "RCPT TO:<b@c.example\0>\r\nDATA\r\n";
	struct dropfile_env e;
	memset(&e, 0, sizeof e);
	size_t used;
	assert_int_equal(parse(in, sizeof in - 1, &e, &used), DROPFILE_BAD);
	dropfile_free(&e);
}

static void test_fields(void **state)
{
	(void)state;
	const char *in = rows[2].in;
	struct dropfile_env e;
	memset(&e, 0, sizeof e);
	size_t used;
	assert_int_equal(parse(in, strlen(in), &e, &used), DROPFILE_OK);
	assert_int_equal(e.uid, 1000);
	assert_string_equal(e.user, "alice");
	assert_int_equal(e.mp.body, BODY_8BITMIME);
	assert_int_equal(e.mp.ret, RET_HDRS);
	assert_string_equal(e.mp.envid, "x+y");
	assert_int_equal(e.rcpt[0].rp.notify, NOTIFY_FAILURE | NOTIFY_DELAY);
	assert_string_equal(e.rcpt[0].rp.orcpt, "rfc822;c@d.example");
	dropfile_free(&e);
	in = rows[1].in;
	assert_int_equal(parse(in, strlen(in), &e, &used), DROPFILE_OK);
	assert_true(e.sender.null);
	dropfile_free(&e);
}

/* Every good file cut before its DATA line's end asks for more. */
static void test_cut(void **state)
{
	(void)state;
	for (size_t i = 0; i < 3; i++) {
		const char *in = rows[i].in;
		const char *data = strstr(in, "DATA\r\n");
		for (size_t cut = 0; cut < (size_t)(data - in) + 6; cut++) {
			struct dropfile_env e;
			memset(&e, 0, sizeof e);
			size_t used;
			if (parse(in, cut, &e, &used) != DROPFILE_MORE)
				fail_msg("row %zu cut at %zu: not asking for more", i, cut);
			dropfile_free(&e);
		}
	}
}

/* At most max_rcpt recipients; an endless line is refused. */
static void test_limits(void **state)
{
	(void)state;
	const char *in = HEAD MAIL "RCPT TO:<a@b.example>\r\nRCPT TO:<c@b.example>\r\n"
	                 "RCPT TO:<d@b.example>\r\nRCPT TO:<e@b.example>\r\nDATA\r\n";
	struct dropfile_env e;
	memset(&e, 0, sizeof e);
	size_t used;
	assert_int_equal(parse(in, strlen(in), &e, &used), DROPFILE_BAD);
	dropfile_free(&e);
	static char big[MAILDROP_LINE_MAX + 100];
	snprintf(big, sizeof big, "%s", HEAD MAIL "RCPT TO:<");
	memset(big + strlen(big), 'a', sizeof big - strlen(big) - 1);
	assert_int_equal(parse(big, strlen(big), &e, &used), DROPFILE_BAD);
	dropfile_free(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rows),
		cmocka_unit_test(test_nul),
		cmocka_unit_test(test_fields),
		cmocka_unit_test(test_cut),
		cmocka_unit_test(test_limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
