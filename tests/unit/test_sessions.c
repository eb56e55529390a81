/* Unit tests for the transcripts' store (spool/sessions.c) on a real
 * database: what is written is read back before and after its commit,
 * keep prunes the oldest sessions with their lines and links, forget and
 * clear, and ids that never repeat, across a reopen and after a clear. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spool/sessions.h"

struct fix {
	char dir[64];
	struct event_base *base;
	struct sessions *st;
};

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof *f);
	snprintf(f->dir, sizeof f->dir, "/tmp/test_sessions.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	f->base = event_base_new();
	f->st = sessions_open(f->dir, f->base);
	assert_non_null(f->st);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;
	sessions_close(f->st);
	event_base_free(f->base);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static int64_t one(struct sessions *st, unsigned keep, const char *helo)
{
	int64_t id = sessions_begin(st, 1764648000123, "192.0.2.1", "127.0.0.1:25", keep);
	assert_true(id > 0);
	sessions_line(st, id, 0, 0, SESSIONS_OUT, 0, "220 hi", 6);
	sessions_line(st, id, 1, 5, SESSIONS_IN, 1, "EHLO x", 6);
	struct sessions_meta m = { "192.0.2.1", helo, "", "", "", 0 };
	sessions_update(st, id, &m);
	return id;
}

static void test_roundtrip(void **state)
{
	struct fix *f = *state;
	int64_t id = one(f->st, 100, "x");
	sessions_message(f->st, id, "0123456789ABCDEF", "queued", 1, 1,
	                 "[{\"code\":\"no-date\",\"text\":\"t\",\"rfc\":\"RFC 5322 3.6\"}]");
	for (int commit = 0; commit < 2; commit++) {   /* pending, then committed */
		json_t *o = sessions_by_qid(f->st, "0123456789ABCDEF");
		assert_non_null(o);
		assert_string_equal(json_string_value(json_object_get(o, "status")), "queued");
		json_t *lint = json_object_get(o, "lint");
		assert_int_equal(json_array_size(lint), 1);
		json_t *s = json_object_get(o, "session");
		assert_int_equal(json_integer_value(json_object_get(s, "id")), id);
		assert_string_equal(json_string_value(json_object_get(s, "start")),
		                    "2025-12-02T04:00:00.123Z");
		assert_string_equal(json_string_value(json_object_get(s, "helo")), "x");
		json_t *lines = json_object_get(s, "lines");
		assert_int_equal(json_array_size(lines), 2);
		json_t *l1 = json_array_get(lines, 1);
		assert_string_equal(json_string_value(json_object_get(l1, "dir")), "in");
		assert_string_equal(json_string_value(json_object_get(l1, "text")), "EHLO x");
		assert_int_equal(json_integer_value(json_object_get(l1, "t")), 5);
		assert_int_equal(json_integer_value(json_object_get(s, "messages")), 1);
		json_decref(o);
		sessions_commit(f->st);
	}
	assert_null(sessions_by_qid(f->st, "FFFFFFFFFFFFFFFF"));
	assert_null(sessions_get(f->st, id + 1));
	sessions_forget(f->st, "0123456789ABCDEF");
	assert_null(sessions_by_qid(f->st, "0123456789ABCDEF"));
	json_t *s = sessions_get(f->st, id);
	assert_int_equal(json_integer_value(json_object_get(s, "messages")), 0);
	json_decref(s);
}

static void test_keep(void **state)
{
	struct fix *f = *state;
	int64_t ids[6];
	for (int i = 0; i < 6; i++) {
		ids[i] = one(f->st, 3, "k");
		sessions_message(f->st, ids[i], i == 0 ? "00000000000000A0" : "00000000000000B0",
		                 "queued", 0, 1, "[]");
	}
	json_t *l = sessions_list(f->st, 0, 10);
	assert_int_equal(json_integer_value(json_object_get(l, "total")), 3);
	json_t *a = json_object_get(l, "sessions");
	assert_int_equal(json_array_size(a), 3);
	for (int i = 0; i < 3; i++)
		assert_int_equal(json_integer_value(json_object_get(json_array_get(a, (size_t)i),
		                                                    "id")), ids[5 - i]);
	json_decref(l);
	assert_null(sessions_get(f->st, ids[0]));
	assert_null(sessions_by_qid(f->st, "00000000000000A0"));
	l = sessions_list(f->st, 2, 10);   /* offset */
	assert_int_equal(json_array_size(json_object_get(l, "sessions")), 1);
	json_decref(l);
}

static void test_ids_go_on(void **state)
{
	struct fix *f = *state;
	int64_t a = one(f->st, 100, "a");
	sessions_close(f->st);
	f->st = sessions_open(f->dir, f->base);
	assert_non_null(f->st);
	json_t *o = sessions_get(f->st, a);   /* kept across the reopen */
	assert_non_null(o);
	json_decref(o);
	int64_t b = one(f->st, 100, "b");
	assert_true(b > a);
	sessions_clear(f->st);
	assert_null(sessions_get(f->st, b));
	sessions_commit(f->st);
	sessions_close(f->st);
	f->st = sessions_open(f->dir, f->base);
	int64_t c = one(f->st, 100, "c");
	assert_true(c > b);
	json_t *l = sessions_list(f->st, 0, 10);
	assert_int_equal(json_integer_value(json_object_get(l, "total")), 1);
	json_decref(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_keep, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ids_go_on, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
