/* Unit tests for lint: the header block's warnings (a table of header
 * blocks and the codes they must give, no more), the octet scan fed whole
 * and one octet at a time, and the list's rules. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/msghead.h"
#include "smtpd/lint.h"

static void sink(void *ctx, const char *p, size_t n)
{
	buf_append(ctx, p, n);
}

/* The codes of l, space-separated, in order ("" for none). */
static void codes(const struct lint *l, char *out, size_t n)
{
	out[0] = '\0';
	for (size_t i = 0; i < l->n; i++) {
		size_t used = strlen(out);
		snprintf(out + used, n - used, "%s%s%s%s", used ? " " : "",
		         lint_info(l->item[i].code)->code, l->item[i].detail[0] ? "=" : "",
		         l->item[i].detail);
	}
}

#define OK_HEAD "Date: Mon, 1 Dec 2026 10:00:00 +0000\r\nFrom: a@example.com\r\n" \
	"Message-ID: <1@example.com>\r\n"

static void test_head(void **state)
{
	(void)state;
	static const struct { const char *msg; bool utf8; const char *want; } rows[] = {
		{ OK_HEAD "Subject: hi\r\n\r\nbody\r\n", false, "" },
		{ "Subject: hi\r\n\r\nbody\r\n", false, "no-message-id no-date no-from" },
		{ OK_HEAD "\r\n", false, "" },
		{ OK_HEAD "Subject: a\r\nSubject: b\r\nTo: x@y\r\nto: z@y\r\n\r\n", false,
		  "duplicate-field=To duplicate-field=Subject" },
		{ OK_HEAD "Received: a\r\nReceived: b\r\nX-A: 1\r\nX-A: 2\r\n\r\n", false, "" },
		{ OK_HEAD "Subject : obsolete\r\n\r\nbody\r\n", false, "space-before-colon=Subject" },
		{ OK_HEAD "Subject: caf\xc3\xa9\r\n\r\n", false, "header-8bit=Subject" },
		{ OK_HEAD "Subject: caf\xc3\xa9\r\n\r\n", true, "" },
		{ OK_HEAD "this is not a field\r\nmore\r\n", false, "header-not-field" },
		{ OK_HEAD, false, "" },   /* headers alone, no body: nothing after */
		{ "From: a@b\r\nFrom: c@d\r\nDate: x\r\nMessage-ID: <m@b>\r\n\r\n", false,
		  "duplicate-field=From" },
		{ "", false, "no-message-id no-date no-from" },
		{ "hello world\r\n", false, "header-not-field no-message-id no-date no-from" },
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		struct msghead h;
		struct buf body = BUF_INIT;
		msghead_init(&h, 65536, sink, &body);
		msghead_feed(&h, rows[i].msg, strlen(rows[i].msg));
		msghead_end(&h);
		struct lint l = { 0 };
		lint_head(&h, body.len > 0, rows[i].utf8, &l);
		char got[512];
		codes(&l, got, sizeof got);
		if (strcmp(got, rows[i].want))
			fail_msg("row %zu: got '%s', want '%s'", i, got, rows[i].want);
		msghead_free(&h);
		buf_free(&body);
	}
}

static void test_scan(void **state)
{
	(void)state;
	char long_line[1200];
	memset(long_line, 'x', 999);
	memcpy(long_line + 999, "\r\n", 3);
	char exact[1100];
	memset(exact, 'x', 998);
	memcpy(exact + 998, "\r\n", 3);
	static struct { const char *data; bool ok8; const char *want; uint64_t lines; } rows[] = {
		{ "Subject: x\r\n\r\nplain\r\n", false, "", 3 },
		{ "a\n.\nb\r\n", false, "smuggling-shape", 3 },
		{ "a\n.\r\nb\r\n", false, "smuggling-shape", 3 },
		{ "a\r.\r\nb\r\n", false, "smuggling-shape", 2 },
		{ "a\r\n\r\nb.\r\n", false, "", 3 },
		{ "caf\xc3\xa9\r\n", false, "8bit-undeclared", 1 },
		{ "caf\xc3\xa9\r\n", true, "", 1 },
		{ NULL, false, "line-too-long", 1 },
		{ NULL, false, "", 1 },
		{ "no end", false, "", 0 },
	};
	rows[7].data = long_line;
	rows[8].data = exact;
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		size_t n = strlen(rows[i].data);
		for (int whole = 0; whole < 2; whole++) {
			struct lint_scan sc;
			lint_scan_init(&sc);
			if (whole)
				lint_scan_feed(&sc, rows[i].data, n);
			else
				for (size_t k = 0; k < n; k++)
					lint_scan_feed(&sc, rows[i].data + k, 1);
			struct lint l = { 0 };
			lint_scan_end(&sc, rows[i].ok8, &l);
			char got[256];
			codes(&l, got, sizeof got);
			if (strcmp(got, rows[i].want))
				fail_msg("row %zu: got '%s', want '%s'", i, got, rows[i].want);
			assert_int_equal(sc.lines, rows[i].lines);
			assert_int_equal(sc.octets, n);
		}
	}
}

static void test_list(void **state)
{
	(void)state;
	struct lint l = { 0 };
	lint_add(&l, LINT_BARE_LF, NULL);
	lint_add(&l, LINT_BARE_LF, "");
	lint_add(&l, LINT_DUPLICATE_FIELD, "To");
	lint_add(&l, LINT_DUPLICATE_FIELD, "Cc");
	lint_add(&l, LINT_DUPLICATE_FIELD, "To");
	assert_int_equal(l.n, 3);
	assert_true(lint_has(&l, LINT_BARE_LF));
	assert_false(lint_has(&l, LINT_NUL));
	for (int i = 0; i < 100; i++) {
		char d[16];
		snprintf(d, sizeof d, "f%d", i);
		lint_add(&l, LINT_DUPLICATE_FIELD, d);
	}
	assert_int_equal(l.n, LINT_MAX);
	/* every code has its words */
	for (int c = 0; c < LINT__COUNT; c++) {
		const struct lint_info *li = lint_info((enum lint_code)c);
		assert_non_null(li->code);
		assert_non_null(li->text);
		assert_true(!strncmp(li->rfc, "RFC ", 4));
		for (int k = 0; k < c; k++)
			assert_string_not_equal(li->code, lint_info((enum lint_code)k)->code);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_head),
		cmocka_unit_test(test_scan),
		cmocka_unit_test(test_list),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
