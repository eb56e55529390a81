/* test_dialog: tern-probe conform's dialogue files (tools/probe/dialog.c).
 *
 * Tables of files and what they parse to, or the error with its line;
 * sent text and its expansion; reply patterns against replies; the
 * printable form of bytes. Every file of conform/ must parse too (the
 * test runs from the build directory: ../conform).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/probe/dialog.h"

#define ARRAY_LEN(a) (sizeof (a) / sizeof (a)[0])

static const struct dialog_vars vars = { "client.example", "a@client.example", "b@example.com" };

static int parse(const char *src, struct dialog *d, char *err, size_t n)
{
	return dialog_parse(src, strlen(src), d, err, n);
}

static void test_parse_ok(void **state)
{
	(void)state;
	struct dialog d;
	char err[200] = "";
	static const char src[] =
		"# a comment\n"
		"about: pipelining\n"
		"rfc: RFC 2920 3.1\n"
		"requires: PIPELINING !smtputf8\n"
		"\n"
		"> EHLO ${helo}\n"
		">raw MAIL FROM:<>\\r\\n\n"
		"< 250|2xx ~ ok\n"
		"rfc: RFC 3207 4.2\n"
		"starttls\r\n"
		"< 25x !~ STARTTLS\n"
		">\n"
		"closed\n";
	assert_int_equal(parse(src, &d, err, sizeof err), 0);
	assert_string_equal(d.about, "pipelining");
	assert_string_equal(d.rfc, "RFC 2920 3.1");
	assert_int_equal(d.nreq, 2);
	assert_string_equal(d.req[0].keyword, "PIPELINING");
	assert_false(d.req[0].absent);
	assert_string_equal(d.req[1].keyword, "SMTPUTF8");
	assert_true(d.req[1].absent);
	assert_int_equal(d.nsteps, 7);
	static const enum dialog_kind kinds[] = { DIALOG_SEND, DIALOG_RAW, DIALOG_EXPECT,
		DIALOG_STARTTLS, DIALOG_EXPECT, DIALOG_SEND, DIALOG_CLOSED };
	for (int i = 0; i < 7; i++)
		assert_int_equal(d.steps[i].kind, kinds[i]);
	assert_string_equal(d.steps[0].text, "EHLO ${helo}");
	assert_int_equal(d.steps[0].line, 6);
	assert_string_equal(d.steps[2].rfc, "RFC 2920 3.1");
	assert_string_equal(d.steps[4].rfc, "RFC 3207 4.2");
	assert_string_equal(d.steps[5].text, "");
	assert_int_equal(d.steps[2].ex.ncodes, 2);
	assert_true(d.starttls);
	dialog_free(&d);
}

static void test_parse_errors(void **state)
{
	(void)state;
	static const struct { const char *src; const char *err; } cases[] = {
		{ "", "no steps" },
		{ "about: x\n", "no steps" },
		{ "> x\nhello\n", "line 2: not a step" },
		{ "< 250\nabout: late\n", "line 2: not a step" },
		{ "< 2x0\n", "line 1: bad reply pattern" },
		{ "< 650\n", "line 1: bad reply pattern" },
		{ "< 250|\n", "line 1: bad reply pattern" },
		{ "< |250\n", "line 1: bad reply pattern" },
		{ "< 2500\n", "line 1: bad reply pattern" },
		{ "< closed|closed\n", "line 1: bad reply pattern" },
		{ "< 1|2|3|4|5|6|7|8|9\n", "line 1: bad reply pattern" },
		{ "< 250|251|252|253|254|255|256|257|258\n", "line 1: bad reply pattern" },
		{ "< 250 ~ (\n", "line 1: bad regular expression" },
		{ "< 250 ~ \n", "line 1: bad regular expression" },
		/* what would make glibc's regcomp take gigabytes */
		{ "< 250 ~ O++++++++\n", "line 1: bad regular expression" },
		{ "< 250 ~ a*{2}\n", "line 1: bad regular expression" },
		{ "< 250 ~ a{100}\n", "line 1: bad regular expression" },
		{ "< 250 ~ ((((a{9}){9}){9}){9}){9}\n", "line 1: bad regular expression" },
		{ "> \\q\n", "line 1: bad escape" },
		{ "> \\x4\n", "line 1: bad escape" },
		{ "> ${nobody}\n", "line 1: bad ${...}" },
		{ "> ${helo\n", "line 1: bad ${...}" },
		{ "> ${2000000*x}\n", "line 1: bad ${...}" },
		{ "> ${600000*xx}\n", "line 1: bad ${...}" },
		{ "> ${*x}\n", "line 1: bad ${...}" },
		{ "> ${5*}\n", "line 1: bad ${...}" },
		{ "> $x\n", "line 1: bad ${...}" },
		{ "requires: A B C D E F G H I\n> x\n", "line 1: bad requires:" },
		{ "requires: !\n> x\n", "line 1: bad requires:" },
	};
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct dialog d;
		char err[200] = "";
		assert_int_equal(parse(cases[i].src, &d, err, sizeof err), -1);
		if (strncmp(err, cases[i].err, strlen(cases[i].err)) != 0)
			fail_msg("case %zu: %s: got \"%s\"", i, cases[i].src, err);
		dialog_free(&d);
	}
	struct dialog d;
	char err[200];
	assert_int_equal(dialog_parse("> a\0b\n", 6, &d, err, sizeof err), -1);
	assert_string_equal(err, "a NUL in the file");
	dialog_free(&d);
}

static void test_expand(void **state)
{
	(void)state;
	static const struct { const char *in; const char *out; size_t n; } cases[] = {
		{ "EHLO ${helo}", "EHLO client.example", 19 },
		{ "MAIL FROM:<${from}> TO ${to}", "MAIL FROM:<a@client.example> TO b@example.com", 45 },
		{ "\\r\\n.\\n", "\r\n.\n", 4 },
		{ "a\\0b", "a\0b", 3 },
		{ "\\x41\\x7e\\\\\\t\\$", "A~\\\t$", 5 },
		{ "${3*ab}c", "abababc", 7 },
		{ "${0*ab}c", "c", 1 },
		{ "caf\xc3\xa9", "caf\xc3\xa9", 5 },
	};
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct buf b = BUF_INIT;
		char err[160];
		assert_int_equal(dialog_expand(cases[i].in, &vars, &b, err, sizeof err), 0);
		assert_int_equal(b.len, cases[i].n);
		assert_memory_equal(b.data, cases[i].out, cases[i].n);
		buf_free(&b);
	}
	struct buf b = BUF_INIT;
	char err[160];
	assert_int_equal(dialog_expand("${1048576*x}", &vars, &b, err, sizeof err), 0);
	assert_int_equal(b.len, 1048576);
	buf_reset(&b);
	assert_int_equal(dialog_expand("${1048576*x}y", &vars, &b, err, sizeof err), -1);
	buf_free(&b);
}

static bool match(const char *pattern, int code, const char *text)
{
	struct dialog d;
	char src[300], err[200];
	snprintf(src, sizeof src, "< %s\n", pattern);
	assert_int_equal(parse(src, &d, err, sizeof err), 0);
	bool ok = dialog_match(&d.steps[0].ex, code, text);
	dialog_free(&d);
	return ok;
}

static void test_match(void **state)
{
	(void)state;
	static const struct { const char *pat; int code; const char *text; bool ok; } cases[] = {
		{ "250", 250, "250 OK", true },
		{ "250", 251, "251 OK", false },
		{ "2xx", 221, "221 Bye", true },
		{ "2xx", 354, "354 Go", false },
		{ "25x", 252, "252 x", true },
		{ "25x", 260, "260 x", false },
		{ "250|251", 251, "251 forward", true },
		{ "503|554", 554, "554 no", true },
		{ "5xx", 421, "421 bye", false },
		{ "250 ~ 2\\.1\\.0", 250, "250 2.1.0 Sender OK", true },
		{ "250 ~ 2\\.1\\.0", 250, "250 2.1.5 Recipient OK", false },
		{ "250 ~ sender ok", 250, "250 2.1.0 Sender OK", true },
		{ "250 !~ ^250[- ]STARTTLS", 250, "250-a\n250-SIZE\n250 HELP", true },
		{ "250 !~ ^250[- ]STARTTLS", 250, "250-a\n250-STARTTLS\n250 HELP", false },
		{ "250 !~ ^250[- ]STARTTLS", 250, "250-a XSTARTTLS\n250 HELP", true },
		{ "250 ~ ^250 HELP$", 250, "250-a\n250 HELP", true },
		{ "250 ~ a ~ b", 250, "250 a ~ b", true },
		{ "250|closed", 0, NULL, true },
		{ "250", 0, NULL, false },
		{ "closed", 250, "250 OK", false },
	};
	for (size_t i = 0; i < ARRAY_LEN(cases); i++)
		if (match(cases[i].pat, cases[i].code, cases[i].text) != cases[i].ok)
			fail_msg("case %zu: %s against %d", i, cases[i].pat, cases[i].code);
}

static void test_show(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	dialog_show("A\r\n.\n\\\0\x7f", 8, 100, &b);
	assert_string_equal(buf_cstr(&b), "A\\r\\n.\\n\\\\\\x00\\x7f");
	buf_reset(&b);
	dialog_show("abcdef", 6, 3, &b);
	assert_string_equal(buf_cstr(&b), "abc...(6 octets)");
	buf_free(&b);
}

/* The shipped dialogues parse: the build directory is beside conform/. */
static void test_shipped(void **state)
{
	(void)state;
	DIR *dir = opendir("../conform");
	if (!dir)
		skip();
	int n = 0;
	for (struct dirent *e; (e = readdir(dir));) {
		size_t len = strlen(e->d_name);
		if (len < 5 || strcmp(e->d_name + len - 4, ".dlg") != 0)
			continue;
		char path[512], src[65536], err[200] = "";
		snprintf(path, sizeof path, "../conform/%s", e->d_name);
		FILE *f = fopen(path, "r");
		assert_non_null(f);
		size_t got = fread(src, 1, sizeof src, f);
		fclose(f);
		struct dialog d;
		if (dialog_parse(src, got, &d, err, sizeof err) != 0)
			fail_msg("%s: %s", path, err);
		dialog_free(&d);
		n++;
	}
	closedir(dir);
	assert_true(n >= 40);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_ok),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_expand),
		cmocka_unit_test(test_match),
		cmocka_unit_test(test_show),
		cmocka_unit_test(test_shipped),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
