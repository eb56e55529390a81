/* test_data: src/smtpd/data.c, the DATA stream of RFC 5321 4.1.1.4.
 *
 * Written against the contract in data.h. Every row of the table is fed
 * three ways (all at once, one byte at a time, and split in two at every
 * position) and must give the same sink output, flags, end and consumed
 * count each time: the parser may not depend on how TCP cut the stream.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "smtpd/data.h"

#define ARRAY_LEN(a) (sizeof (a) / sizeof (a)[0])
#define SINK_MAX 8192
#define ALL ((size_t)-1)

struct sink {
	char buf[SINK_MAX];
	size_t len;
	unsigned calls;
	unsigned calls_after_too_big;
	struct data_parser *d;
};

static void sink_fn(void *ctx, const char *p, size_t n)
{
	struct sink *s = ctx;

	s->calls++;
	if (s->d != NULL && (s->d->flags & DATA_TOO_BIG))
		s->calls_after_too_big++;
	assert_true(n <= SINK_MAX - s->len);
	memcpy(s->buf + s->len, p, n);
	s->len += n;
}

struct data_row {
	const char *in;
	size_t max_line;
	uint64_t max_size;
	const char *out;     /* unstuffed message the sink receives */
	unsigned flags;
	bool done;
	size_t consumed;     /* ALL: the whole input */
};

static const struct data_row data_rows[] = {
	/* the plain case */
	{ "Subject: x\r\n\r\nbody\r\n.\r\n", 998, 0,
	  "Subject: x\r\n\r\nbody\r\n", 0, true, ALL },
	/* the empty message: DATA's CRLF is the first CRLF */
	{ ".\r\n", 998, 0, "", 0, true, ALL },
	{ "\r\n.\r\n", 998, 0, "\r\n", 0, true, ALL },
	/* transparency, RFC 5321 4.5.2 */
	{ "..a\r\n.\r\n", 998, 0, ".a\r\n", 0, true, ALL },
	{ "a\r\n..\r\n.\r\n", 998, 0, "a\r\n.\r\n", 0, true, ALL },
	{ "a\r\n...\r\nb.\r\n.\r\n", 998, 0, "a\r\n..\r\nb.\r\n", 0, true, ALL },
	{ "a.b\r\n .\r\n.\r\n", 998, 0, "a.b\r\n .\r\n", 0, true, ALL },
	/* pipelining: what follows the end is not consumed */
	{ "a\r\n.\r\nMAIL FROM:<x@y>\r\n", 998, 0, "a\r\n", 0, true, 6 },
	{ ".\r\nQUIT\r\n", 998, 0, "", 0, true, 3 },
	{ "a\r\n.\r\n.\r\n", 998, 0, "a\r\n", 0, true, 6 },
	/* not finished yet */
	{ "abc\r\n", 998, 0, "abc\r\n", 0, false, ALL },
	{ "abc", 998, 0, "abc", 0, false, ALL },
	{ "", 998, 0, "", 0, false, ALL },
	{ "a\r\n.", 998, 0, "a\r\n", 0, false, ALL },
	{ "a\r\n.\r", 998, 0, "a\r\n", 0, false, ALL },
	{ "a\r\n.x", 998, 0, "a\r\nx", 0, false, ALL },
	/* bare LF: flagged, never a line end, never part of the end */
	{ "a\nb\r\n.\r\n", 998, 0, "a\nb\r\n", DATA_BARE_LF, true, ALL },
	{ "a\n.\nb\r\n.\r\n", 998, 0, "a\n.\nb\r\n", DATA_BARE_LF, true, ALL },
	{ "a\n.\r\nb\r\n.\r\n", 998, 0, "a\n.\r\nb\r\n", DATA_BARE_LF, true, ALL },
	{ "a\r\n.\nb\r\n.\r\n", 998, 0, "a\r\n\nb\r\n", DATA_BARE_LF, true, ALL },
	{ "a\n.\n", 998, 0, "a\n.\n", DATA_BARE_LF, false, ALL },
	{ "a\r\n.\nMAIL FROM:<evil@x>\r\n", 998, 0,
	  "a\r\n\nMAIL FROM:<evil@x>\r\n", DATA_BARE_LF, false, ALL },
	{ "a\n.\r\nMAIL FROM:<evil@x>\r\n", 998, 0,
	  "a\n.\r\nMAIL FROM:<evil@x>\r\n", DATA_BARE_LF, false, ALL },
	/* bare CR: flagged, never a line end */
	{ "a\rb\r\n.\r\n", 998, 0, "a\rb\r\n", DATA_BARE_CR, true, ALL },
	{ "a\r.\r\n.\r\n", 998, 0, "a\r.\r\n", DATA_BARE_CR, true, ALL },
	{ "a\r\n.\r.\r\n", 998, 0, "a\r\n\r.\r\n", DATA_BARE_CR, false, ALL },
	{ "a\r\r\n.\r\n", 998, 0, "a\r\r\n", DATA_BARE_CR, true, ALL },
	{ "a\r\n\r.\r\n", 998, 0, "a\r\n\r.\r\n", DATA_BARE_CR, false, ALL },
	{ "a\r\n.\r\r\n.\r\n", 998, 0, "a\r\n\r\r\n", DATA_BARE_CR, true, ALL },
	{ "a\r\nb\n\r.\r\n.\r\n", 998, 0, "a\r\nb\n\r.\r\n",
	  DATA_BARE_LF | DATA_BARE_CR, true, ALL },
	/* line length: max_line octets fine, one more flagged */
	{ "0123456789\r\n.\r\n", 10, 0, "0123456789\r\n", 0, true, ALL },
	{ "0123456789A\r\n.\r\n", 10, 0, "0123456789A\r\n", DATA_LONG_LINE, true, ALL },
	{ "a\r\n0123456789\r\n0123456789\r\n.\r\n", 10, 0,
	  "a\r\n0123456789\r\n0123456789\r\n", 0, true, ALL },
	{ "a\r\n0123456789A\r\nb\r\n.\r\n", 10, 0,
	  "a\r\n0123456789A\r\nb\r\n", DATA_LONG_LINE, true, ALL },
	/* the stuffing dot does not count (RFC 5321 4.5.3.1.6) */
	{ "..123456789\r\n.\r\n", 10, 0, ".123456789\r\n", 0, true, ALL },
	{ "..123456789A\r\n.\r\n", 10, 0, ".123456789A\r\n", DATA_LONG_LINE, true, ALL },
	/* size: max_size octets fine, one more flagged, still consumed */
	{ "01234567\r\n.\r\n", 998, 10, "01234567\r\n", 0, true, ALL },
	{ "012345678\r\n.\r\n", 998, 10, NULL, DATA_TOO_BIG, true, ALL },
	{ "0123\r\n0123\r\n0123\r\n.\r\nQUIT\r\n", 998, 10, NULL, DATA_TOO_BIG, true, 21 },
	{ "..23456\r\n.\r\n", 998, 8, ".23456\r\n", 0, true, ALL },
	{ "0123456789\r\n0123456789\r\n.\r\n", 5, 12, NULL,
	  DATA_TOO_BIG | DATA_LONG_LINE, true, ALL },
	/* many whole lines at once (data_lines), then what stops them */
	{ "l1\r\nl2\r\n..dot\r\nl4\r\n.\r\n", 998, 0, "l1\r\nl2\r\n.dot\r\nl4\r\n", 0, true, ALL },
	{ "ok\r\nbad\rcr\r\nok\r\n.\r\n", 998, 0, "ok\r\nbad\rcr\r\nok\r\n", DATA_BARE_CR, true, ALL },
	{ "ok\r\nbad\nlf\r\nok\r\n.\r\n", 998, 0, "ok\r\nbad\nlf\r\nok\r\n", DATA_BARE_LF, true, ALL },
	{ "ok\r\n\nok\r\n.\r\n", 998, 0, "ok\r\n\nok\r\n", DATA_BARE_LF, true, ALL },
	{ "abc\r\nabcdef\r\nab\r\n.\r\n", 5, 0, "abc\r\nabcdef\r\nab\r\n", DATA_LONG_LINE, true, ALL },
	{ "abc\r\nabcde\r\nab\r\n.\r\nRSET\r\n", 5, 0, "abc\r\nabcde\r\nab\r\n", 0, true, 19 },
};

struct result {
	struct sink sink;
	struct data_parser d;
	size_t consumed;
};

static void start(const struct data_row *r, struct result *res)
{
	memset(res, 0, sizeof *res);
	res->sink.d = &res->d;
	data_init(&res->d, r->max_line, r->max_size, sink_fn, &res->sink);
}

/* Feed [p, p + n) in one call, accounting what was consumed. */
static void feed(struct result *res, const char *p, size_t n)
{
	size_t c;

	if (res->d.done)
		return;
	c = data_feed(&res->d, p, n);
	assert_true(c <= n);
	if (c < n)
		assert_true(res->d.done);
	res->consumed += c;
}

static void check(size_t i, const char *how, const struct data_row *r,
                  const struct result *res)
{
	size_t len = strlen(r->in);
	size_t want = r->consumed == ALL ? len : r->consumed;

	if (res->d.flags != r->flags || res->d.done != r->done ||
	    res->consumed != want)
		fail_msg("row %zu (%s): flags %#x done %d consumed %zu, want "
		         "%#x %d %zu", i, how, res->d.flags, res->d.done,
		         res->consumed, r->flags, r->done, want);
	if (r->out != NULL) {
		if (res->sink.len != strlen(r->out) ||
		    memcmp(res->sink.buf, r->out, res->sink.len) != 0)
			fail_msg("row %zu (%s): sink got %zu bytes \"%.*s\"", i, how,
			         res->sink.len, (int)res->sink.len, res->sink.buf);
		if (res->d.size != res->sink.len)
			fail_msg("row %zu (%s): size %ju", i, how, (uintmax_t)res->d.size);
		/* dot_lines: the lines of the output that begin with a dot;
		 * never fewer (a dot-led line would go out unstuffed), exact
		 * but for bare CR/LF, which refuse the message anyway */
		uint64_t dots = 0;
		for (size_t k = 0; k < res->sink.len; k++)
			dots += res->sink.buf[k] == '.' &&
			        (k == 0 || (k >= 2 && !memcmp(res->sink.buf + k - 2, "\r\n", 2)));
		bool bare = r->flags & (DATA_BARE_LF | DATA_BARE_CR);
		if (r->done && (bare ? res->d.dot_lines < dots : res->d.dot_lines != dots))
			fail_msg("row %zu (%s): dot_lines %ju, want %ju", i, how,
			         (uintmax_t)res->d.dot_lines, (uintmax_t)dots);
	} else {
		/* too big: the sink got at most max_size octets, and no call
		 * once the flag was up */
		if (res->sink.len > r->max_size || res->sink.calls_after_too_big)
			fail_msg("row %zu (%s): sink got %zu bytes, %u late calls", i,
			         how, res->sink.len, res->sink.calls_after_too_big);
	}
}

static void test_all_at_once(void **state)
{
	struct result res;

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(data_rows); i++) {
		start(&data_rows[i], &res);
		feed(&res, data_rows[i].in, strlen(data_rows[i].in));
		check(i, "all at once", &data_rows[i], &res);
	}
}

static void test_byte_at_a_time(void **state)
{
	struct result res;

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(data_rows); i++) {
		const char *in = data_rows[i].in;
		start(&data_rows[i], &res);
		for (size_t j = 0; in[j] != '\0'; j++)
			feed(&res, in + j, 1);
		check(i, "byte at a time", &data_rows[i], &res);
	}
}

static void test_split_everywhere(void **state)
{
	struct result res;

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(data_rows); i++) {
		const char *in = data_rows[i].in;
		size_t len = strlen(in);
		for (size_t k = 0; k <= len; k++) {
			start(&data_rows[i], &res);
			feed(&res, in, k);
			feed(&res, in + k, len - k);
			check(i, "split in two", &data_rows[i], &res);
		}
	}
}

/* Once done, nothing more is consumed. */
static void test_after_done(void **state)
{
	struct result res;

	(void)state;
	start(&data_rows[0], &res);
	assert_int_equal(data_feed(&res.d, ".\r\n", 3), 3);
	assert_true(res.d.done);
	assert_int_equal(data_feed(&res.d, "more\r\n", 6), 0);
	assert_int_equal(res.sink.len, 0);
}

/* A large message with a size limit: the sink stops, the stream is still
 * consumed to the end, and the end is found. */
static void test_too_big_stream(void **state)
{
	static const struct data_row r = { "", 998, 4096, NULL, 0, false, ALL };
	char line[100];
	struct result res;
	size_t before;

	(void)state;
	start(&r, &res);
	memset(line, 'x', 98);
	line[98] = '\r';
	line[99] = '\n';
	for (int i = 0; i < 50; i++)
		assert_int_equal(data_feed(&res.d, line, sizeof line), sizeof line);
	assert_false(res.d.done);
	assert_true(res.d.flags & DATA_TOO_BIG);
	assert_true(res.sink.len <= 4096);
	before = res.sink.len;
	for (int i = 0; i < 40; i++)
		assert_int_equal(data_feed(&res.d, line, sizeof line), sizeof line);
	assert_int_equal(res.sink.len, before);
	assert_int_equal(data_feed(&res.d, ".\r\nQUIT\r\n", 9), 3);
	assert_true(res.d.done);
	assert_int_equal(res.d.flags, DATA_TOO_BIG);
	assert_int_equal(res.sink.calls_after_too_big, 0);
}

/* A long message without limits arrives intact, CRLFs and all. */
static void test_large_message(void **state)
{
	static const struct data_row r = { "", 998, 0, NULL, 0, false, ALL };
	char line[998 + 2];
	struct result res;

	(void)state;
	start(&r, &res);
	memset(line, 'y', 998);
	line[0] = '.';          /* stuffed on the wire */
	line[1] = '.';
	line[998] = '\r';
	line[999] = '\n';
	for (int i = 0; i < 8; i++)
		assert_int_equal(data_feed(&res.d, line, sizeof line), sizeof line);
	assert_int_equal(data_feed(&res.d, ".\r\n", 3), 3);
	assert_true(res.d.done);
	assert_int_equal(res.d.flags, 0);
	assert_int_equal(res.sink.len, 8 * 999);
	assert_int_equal(res.d.size, 8 * 999);
	assert_memory_equal(res.sink.buf, ".yyy", 4);
	assert_memory_equal(res.sink.buf + 999, ".yyy", 4);
	assert_memory_equal(res.sink.buf + 8 * 999 - 3, "y\r\n", 3);
}

/* NUL octets (RFC 5322 3.5): flagged wherever they stand, the end still
 * found, whatever the cut. Lengths are explicit: the rows hold NULs. */
static const struct { const char *in; size_t len; unsigned flags; bool done; } nul_rows[] = {
	{ "a\0b\r\n.\r\n", 8, DATA_NUL, true },
	{ "\0\r\n.\r\n", 6, DATA_NUL, true },          /* at the start of a line */
	{ "a\r\n\0.\r\n.\r\n", 11, DATA_NUL, true },  /* the smuggling form */
	{ "a\r\n.\0\r\n.\r\n", 11, DATA_NUL, true },  /* after a stuffing dot */
	{ "a\r\n.\r\n\0", 7, 0, true },              /* after the end: not data */
	{ "a\r\n\0", 4, DATA_NUL, false },
	{ "a\r\nb\r\nc\0d\r\ne\r\n.\r\n", 17, DATA_NUL, true },  /* among whole lines */
	{ "a\r\nb\r\n\r\0\r\n.\r\n", 13, DATA_NUL | DATA_BARE_CR, true },
};

static void test_nul(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(nul_rows); i++) {
		for (size_t cut = 0; cut <= nul_rows[i].len; cut++) {
			struct sink sk;
			struct data_parser d;
			memset(&sk, 0, sizeof sk);
			data_init(&d, 998, 0, sink_fn, &sk);
			data_feed(&d, nul_rows[i].in, cut);
			if (!d.done)
				data_feed(&d, nul_rows[i].in + cut, nul_rows[i].len - cut);
			if (d.flags != nul_rows[i].flags || d.done != nul_rows[i].done)
				fail_msg("nul row %zu cut %zu: flags %#x done %d", i, cut, d.flags, d.done);
		}
	}
}

/* Raw mode (BDAT, RFC 3030): every octet passes, dots and CRLF.CRLF
 * included; the flags as in DATA; data_finish ends the last line. Each
 * row is cut in two at every place (a chunk boundary anywhere). */
static const struct {
	const char *in;
	size_t len;
	size_t max_line;
	uint64_t max_size;
	const char *out;
	size_t out_len;
	unsigned flags;
	uint64_t dot_lines;
} raw_rows[] = {
	{ "a\r\n.\r\nb\r\n", 9, 998, 0, "a\r\n.\r\nb\r\n", 9, 0, 1 },
	{ "..x\r\n.\r\n", 8, 998, 0, "..x\r\n.\r\n", 8, 0, 2 },
	{ "", 0, 998, 0, "", 0, 0, 0 },
	{ "no end", 6, 998, 0, "no end\r\n", 8, 0, 0 },
	{ "a\nb\r\n", 5, 998, 0, "a\nb\r\n", 5, DATA_BARE_LF, 0 },
	{ "a\rb\r\n", 5, 998, 0, "a\rb\r\n", 5, DATA_BARE_CR, 0 },
	{ "ab\r", 3, 998, 0, "ab\r\r\n", 5, DATA_BARE_CR, 0 },
	{ "a\0b\r\n", 5, 998, 0, "a\0b\r\n", 5, DATA_NUL, 0 },
	{ "abcd\r\nabc\r\n", 11, 3, 0, "abcd\r\nabc\r\n", 11, DATA_LONG_LINE, 0 },
	{ "abc\r\nabc\r\n", 10, 3, 0, "abc\r\nabc\r\n", 10, 0, 0 },
	{ "abc\r\nabc\r\n", 10, 998, 8, "abc\r\n", 5, DATA_TOO_BIG, 0 },
};

static void test_raw(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(raw_rows); i++) {
		for (size_t cut = 0; cut <= raw_rows[i].len; cut++) {
			struct sink sk;
			struct data_parser d;
			memset(&sk, 0, sizeof sk);
			data_init(&d, raw_rows[i].max_line, raw_rows[i].max_size, sink_fn, &sk);
			data_raw(&d);
			size_t used = data_feed(&d, raw_rows[i].in, cut);
			used += data_feed(&d, raw_rows[i].in + cut, raw_rows[i].len - cut);
			assert_false(d.done);
			data_finish(&d);
			assert_true(d.done);
			bool big = raw_rows[i].flags & DATA_TOO_BIG;
			if (used != raw_rows[i].len || d.flags != raw_rows[i].flags ||
			    d.dot_lines != raw_rows[i].dot_lines ||
			    (!big && (sk.len != raw_rows[i].out_len ||
			              memcmp(sk.buf, raw_rows[i].out, sk.len))))
				fail_msg("raw row %zu cut %zu: used %zu flags %#x dots %llu out %zu", i, cut,
				         used, d.flags, (unsigned long long)d.dot_lines, sk.len);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_all_at_once),
		cmocka_unit_test(test_byte_at_a_time),
		cmocka_unit_test(test_split_everywhere),
		cmocka_unit_test(test_after_done),
		cmocka_unit_test(test_too_big_stream),
		cmocka_unit_test(test_large_message),
		cmocka_unit_test(test_nul),
		cmocka_unit_test(test_raw),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
