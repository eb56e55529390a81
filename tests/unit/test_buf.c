/* test_buf: src/lib/buf.c, the growable byte buffer.
 *
 * Written against the contract in buf.h. A table of small scripts (one
 * operation per row, applied in order to one buffer, expected contents
 * after each), plus targeted tests for growth over many KiB, reserve,
 * consume, reset and the empty buffer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "lib/buf.h"

#define ARRAY_LEN(a) (sizeof (a) / sizeof (a)[0])

enum op { OP_APPEND, OP_PUTS, OP_PUTC, OP_PRINTF_D_S, OP_CONSUME, OP_RESET };

struct step {
	enum op op;
	const char *s;       /* APPEND/PUTS/PRINTF text, PUTC its first byte */
	size_t n;            /* APPEND length, CONSUME count */
	int num;             /* PRINTF number */
	const char *want;    /* buf_cstr() afterwards */
	size_t want_len;     /* b.len afterwards */
};

static const struct step script[] = {
	{ OP_PUTS, "", 0, 0, "", 0 },
	{ OP_APPEND, "hello", 0, 0, "", 0 },
	{ OP_APPEND, "hello", 5, 0, "hello", 5 },
	{ OP_PUTC, " ", 0, 0, "hello ", 6 },
	{ OP_PUTS, "world", 0, 0, "hello world", 11 },
	{ OP_CONSUME, NULL, 6, 0, "world", 5 },
	{ OP_PRINTF_D_S, "x", 0, 42, "world42-x", 9 },
	{ OP_PRINTF_D_S, "", 0, -1, "world42-x-1-", 12 },
	{ OP_CONSUME, NULL, 0, 0, "world42-x-1-", 12 },
	{ OP_CONSUME, NULL, 12, 0, "", 0 },
	{ OP_PUTS, "again", 0, 0, "again", 5 },
	{ OP_CONSUME, NULL, 100, 0, "", 0 },
	{ OP_PUTS, "abc", 0, 0, "abc", 3 },
	{ OP_RESET, NULL, 0, 0, "", 0 },
	{ OP_RESET, NULL, 0, 0, "", 0 },
	{ OP_APPEND, "a\0b", 3, 0, "a", 3 },
	{ OP_PUTC, "\r", 0, 0, "a", 4 },
	{ OP_CONSUME, NULL, 2, 0, "b\r", 2 },
	{ OP_PRINTF_D_S, "%s", 0, 7, "b\r7-%s", 6 },
};

static void apply(struct buf *b, const struct step *st)
{
	switch (st->op) {
	case OP_APPEND:
		buf_append(b, st->s, st->n);
		break;
	case OP_PUTS:
		buf_puts(b, st->s);
		break;
	case OP_PUTC:
		buf_putc(b, st->s[0]);
		break;
	case OP_PRINTF_D_S:
		buf_printf(b, "%d-%s", st->num, st->s);
		break;
	case OP_CONSUME:
		buf_consume(b, st->n);
		break;
	case OP_RESET:
		buf_reset(b);
		break;
	}
}

/* The buffer as seen from outside: contents, NUL, length, capacity. */
static void check_invariants(size_t i, const struct buf *b, const struct step *st)
{
	const char *s = buf_cstr(b);

	if (b->len != st->want_len || strcmp(s, st->want) != 0)
		fail_msg("step %zu: len %zu \"%s\", want %zu \"%s\"", i, b->len, s,
		         st->want_len, st->want);
	if (b->data != NULL && (b->cap <= b->len || b->data[b->len] != '\0'))
		fail_msg("step %zu: cap %zu len %zu, NUL missing", i, b->cap, b->len);
}

static void test_script(void **state)
{
	struct buf b = BUF_INIT;

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(script); i++) {
		apply(&b, &script[i]);
		check_invariants(i, &b, &script[i]);
	}
	/* embedded NUL and CR survived: look at the bytes, not the string */
	assert_memory_equal(b.data, "b\r7-%s", 6);
	buf_free(&b);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, 0);
}

/* A new buffer, before any write, reads as "". */
static void test_empty(void **state)
{
	struct buf b = BUF_INIT;
	struct buf c;

	(void)state;
	assert_null(b.data);
	assert_string_equal(buf_cstr(&b), "");
	memset(&c, 0x55, sizeof c);
	buf_init(&c);
	assert_null(c.data);
	assert_int_equal(c.len, 0);
	assert_string_equal(buf_cstr(&c), "");
	buf_reset(&c);
	buf_consume(&c, 10);
	assert_string_equal(buf_cstr(&c), "");
	assert_int_equal(c.len, 0);
	buf_free(&c);
	buf_free(&c);
	assert_string_equal(buf_cstr(&c), "");
}

/* Growth across many KiB, in odd-sized pieces, keeps every byte. */
static void test_growth(void **state)
{
	struct buf b = BUF_INIT;
	char piece[257];
	size_t total = 0;

	(void)state;
	for (size_t k = 1; total < 256 * 1024; k = k % 257 + 1) {
		for (size_t j = 0; j < k; j++)
			piece[j] = (char)('A' + (total + j) % 26);
		buf_append(&b, piece, k);
		total += k;
		assert_int_equal(b.len, total);
		assert_true(b.cap > b.len);
		assert_int_equal(b.data[b.len], '\0');
	}
	for (size_t j = 0; j < total; j++)
		if (b.data[j] != (char)('A' + j % 26))
			fail_msg("byte %zu is %c", j, b.data[j]);
	assert_int_equal(strlen(buf_cstr(&b)), total);
	buf_free(&b);
}

/* buf_printf grows too, past any first guess of a size. */
static void test_printf_large(void **state)
{
	struct buf b = BUF_INIT;
	static char big[20000];

	(void)state;
	memset(big, 'z', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	buf_puts(&b, "<");
	buf_printf(&b, "%s>%zu", big, sizeof big - 1);
	assert_int_equal(b.len, 1 + (sizeof big - 1) + 1 + 5);
	assert_int_equal(b.data[0], '<');
	assert_int_equal(b.data[sizeof big], '>');
	assert_string_equal(b.data + sizeof big + 1, "19999");
	for (int i = 0; i < 1000; i++)
		buf_printf(&b, "%04d\n", i);
	assert_int_equal(b.len, 1 + (sizeof big - 1) + 1 + 5 + 5000);
	assert_string_equal(buf_cstr(&b) + b.len - 5, "0999\n");
	buf_free(&b);
}

static void vprintf_helper(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void vprintf_helper(struct buf *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	buf_vprintf(b, fmt, ap);
	va_end(ap);
}

static void test_vprintf(void **state)
{
	struct buf b = BUF_INIT;

	(void)state;
	vprintf_helper(&b, "%s %u %c", "250", 8u, 'x');
	vprintf_helper(&b, "%s", "");
	assert_string_equal(buf_cstr(&b), "250 8 x");
	assert_int_equal(b.len, 7);
	buf_free(&b);
}

/* After buf_reserve(n), n bytes go in without moving the data. */
static void test_reserve(void **state)
{
	struct buf b = BUF_INIT;
	char block[5000];
	char *before;

	(void)state;
	buf_puts(&b, "head");
	buf_reserve(&b, sizeof block);
	assert_true(b.cap >= b.len + sizeof block + 1);
	assert_string_equal(buf_cstr(&b), "head");
	before = b.data;
	memset(block, 'r', sizeof block);
	buf_append(&b, block, sizeof block);
	assert_ptr_equal(b.data, before);
	assert_int_equal(b.len, 4 + sizeof block);
	buf_reserve(&b, 0);
	assert_ptr_equal(b.data, before);
	buf_free(&b);
}

/* reset keeps the memory; consume keeps the rest and its NUL. */
static void test_reset_consume(void **state)
{
	struct buf b = BUF_INIT;
	char *before;
	size_t cap;

	(void)state;
	for (int i = 0; i < 1000; i++)
		buf_printf(&b, "line %d\r\n", i);
	before = b.data;
	cap = b.cap;
	buf_reset(&b);
	assert_int_equal(b.len, 0);
	assert_string_equal(buf_cstr(&b), "");
	assert_ptr_equal(b.data, before);
	assert_int_equal(b.cap, cap);
	buf_puts(&b, "EHLO x\r\nMAIL FROM:<>\r\n");
	buf_consume(&b, strlen("EHLO x\r\n"));
	assert_string_equal(buf_cstr(&b), "MAIL FROM:<>\r\n");
	buf_consume(&b, b.len - 2);
	assert_string_equal(buf_cstr(&b), "\r\n");
	buf_consume(&b, 3);
	assert_int_equal(b.len, 0);
	assert_string_equal(buf_cstr(&b), "");
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_script),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_growth),
		cmocka_unit_test(test_printf_large),
		cmocka_unit_test(test_vprintf),
		cmocka_unit_test(test_reserve),
		cmocka_unit_test(test_reset_consume),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
