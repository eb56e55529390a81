/* Unit tests for msghead: where the header block ends, what goes to the
 * body, at every split of the input, and the field edits. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/msghead.h"

static void sink(void *ctx, const char *p, size_t n)
{
	buf_append(ctx, p, n);
}

/* Feed in in pieces of step octets; the block rendered and the body. */
static void run(const char *in, size_t step, struct msghead *h, struct buf *head, struct buf *body)
{
	msghead_init(h, 4096, sink, body);
	size_t n = strlen(in);
	for (size_t i = 0; i < n; i += step)
		msghead_feed(h, in + i, n - i < step ? n - i : step);
	msghead_end(h);
	msghead_render(h, head);
}

static void test_split(void **state)
{
	(void)state;
	static const struct { const char *in; size_t fields, head_len; bool blank; } rows[] = {
		{ "Subject: a\r\nFrom: b@c\r\n\r\nbody\r\n", 2, 25, true },
		{ "Subject: a\r\n folded\r\n\r\nbody\r\n", 1, 23, true },
		{ "Subject : obsolete\r\n\r\nx\r\n", 1, 22, true },        /* 4.5.8 */
		{ "Subject: only headers\r\n", 1, 23, false },
		{ "Hello world\r\nSecond line\r\n", 0, 0, false },          /* no colon */
		{ "\r\nbody after an empty first line\r\n", 0, 2, true },
		{ " starts with space: x\r\n\r\n", 0, 0, false },
		{ ":no name\r\n\r\n", 0, 0, false },
		{ "To: a@b\r\nnot a field\r\nX: y\r\n\r\n", 1, 9, false },
		{ "X-\xc3\xa9: utf8 name\r\n\r\n", 0, 0, false },             /* not ftext */
		{ "X: v\r\n\tcont\r\n more\r\nY: z\r\n\r\nb", 2, 28, true },
		{ "", 0, 0, false },
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		size_t len = strlen(rows[i].in);
		for (size_t step = 1; step <= len + 1; step++) {
			struct msghead h;
			struct buf head = BUF_INIT, body = BUF_INIT;
			run(rows[i].in, step, &h, &head, &body);
			assert_true(h.done);
			assert_int_equal(h.nf, rows[i].fields);
			assert_int_equal(head.len, rows[i].head_len);
			assert_int_equal(h.blank, rows[i].blank);
			/* nothing lost, nothing reordered */
			buf_append(&head, body.data, body.len);
			assert_int_equal(head.len, len);
			assert_memory_equal(buf_cstr(&head), rows[i].in, len);
			msghead_free(&h);
			buf_free(&head);
			buf_free(&body);
		}
	}
}

static void test_too_big(void **state)
{
	(void)state;
	struct msghead h;
	struct buf body = BUF_INIT;
	msghead_init(&h, 16, sink, &body);
	const char *in = "Subject: 0123456789abcdef\r\n\r\nbody\r\n";
	msghead_feed(&h, in, strlen(in));
	msghead_end(&h);
	assert_true(h.too_big);
	msghead_free(&h);
	buf_free(&body);
}

static void test_edits(void **state)
{
	(void)state;
	struct msghead h;
	struct buf head = BUF_INIT, body = BUF_INIT;
	run("Received: one\r\nSubject: s\r\nX-A: 1\r\nx-a: 2\r\n\r\nbody\r\n", 7, &h, &head, &body);
	assert_int_equal(msghead_count(&h, "X-A"), 2);
	assert_int_equal(msghead_find(&h, "x-A", 2), 3);
	assert_int_equal(msghead_find(&h, "X-A", 3), -1);
	size_t vlen;
	const char *v = msghead_value(&h, 1, &vlen);
	assert_int_equal(vlen, 2);
	assert_memory_equal(v, " s", 2);

	assert_true(msghead_change(&h, "X-A", 2, "two"));        /* change the 2nd */
	assert_true(msghead_change(&h, "x-a", 1, NULL));         /* delete the 1st */
	assert_false(msghead_change(&h, "X-New", 1, "added"));   /* absent: added */
	assert_false(msghead_change(&h, "X-Gone", 1, NULL));
	msghead_insert(&h, 0, "Authentication-Results", "mx.test;\n\tspf=pass");
	msghead_insert(&h, 99, "X-Last", " lead space");
	buf_reset(&head);
	msghead_render(&h, &head);
	assert_string_equal(buf_cstr(&head),
		"Authentication-Results: mx.test;\r\n\tspf=pass\r\n"
		"Received: one\r\nSubject: s\r\nX-A: two\r\nX-New: added\r\nX-Last: lead space\r\n\r\n");
	msghead_remove(&h, 0);
	assert_false(msghead_is(&h, 0, "Authentication-Results"));
	assert_true(msghead_is(&h, 0, "received"));
	msghead_free(&h);
	buf_free(&head);
	buf_free(&body);
}

/* A field's text: unfolded, white space at both ends gone (trailing
 * white space once came back: the trimmed buffer was not cut). */
static void test_text(void **state)
{
	(void)state;
	static const struct { const char *in, *name, *want; } rows[] = {
		{ "TLS-Required:  no \r\n\r\nb\r\n", "tls-required", "no" },
		{ "TLS-Required: No\r\n\r\n", "TLS-Required", "No" },
		{ "Subject: a\r\n\tb \t\r\n\r\n", "Subject", "a\tb" },
		{ "Subject:\r\n\r\n", "Subject", "" },
		{ "X: 1\r\n\r\n", "Subject", "" },
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		struct msghead h;
		struct buf head = BUF_INIT, body = BUF_INIT;
		run(rows[i].in, 3, &h, &head, &body);
		char *t = msghead_text(&h, rows[i].name);
		assert_string_equal(t, rows[i].want);
		free(t);
		msghead_free(&h);
		buf_free(&head);
		buf_free(&body);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_split),
		cmocka_unit_test(test_too_big),
		cmocka_unit_test(test_edits),
		cmocka_unit_test(test_text),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
