/* test_event: lib/event.c's records and subscribers, and log.c's rendering
 * of them (the log is what operators grep: its form is an interface). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/event.h"
#include "lib/log.h"

struct seen {
	int calls;
	enum ev_kind kind;
	char text[256];
};

static void collect(void *ctx, const struct ev *e)
{
	struct seen *s = ctx;
	s->calls++;
	s->kind = e->kind;
	size_t len;
	const char *v = ev_get(e, "to", &len);
	snprintf(s->text, sizeof s->text, "%.*s", v ? (int)len : 0, v ? v : "");
}

/* What log_event writes for e, read back from stderr. */
static void rendered(const struct ev *e, char *out, size_t n)
{
	fflush(stderr);
	int saved = dup(STDERR_FILENO);
	FILE *tmp = tmpfile();
	assert_non_null(tmp);
	dup2(fileno(tmp), STDERR_FILENO);
	log_event(NULL, e);
	dup2(saved, STDERR_FILENO);
	close(saved);
	rewind(tmp);
	size_t got = fread(out, 1, n - 1, tmp);
	out[got] = '\0';
	fclose(tmp);
	/* the part after "<time> ternd[pid]: info: " */
	char *body = strstr(out, ": info: ");
	assert_non_null(body);
	memmove(out, body + 8, strlen(body + 8) + 1);
}

static void test_message_line(void **state)
{
	(void)state;
	log_set_level(LOG_INFO);
	struct ev e;
	ev_init(&e, EK_QUEUED, LOG_INFO, 7, "06B0180CAC6F9400");
	ev_add(&e, "from", "<%s>", "a@b.example");
	ev_add(&e, "size", "%d", 199);
	ev_flag(&e, "tls");
	char line[512];
	rendered(&e, line, sizeof line);
	assert_string_equal(line, "06B0180CAC6F9400: queued: from=<a@b.example>, size=199, tls, "
	                          "session=7\n");
	assert_true(ev_is(&e, "size", "199"));
	assert_false(ev_is(&e, "size", "19"));     /* the whole value, not a prefix */
	assert_false(ev_is(&e, "size", "1990"));
	assert_false(ev_is(&e, "nrcpt", "199"));   /* no such field */
}

static void test_session_lines(void **state)
{
	(void)state;
	log_set_level(LOG_DEBUG);
	struct ev e;
	char line[512];
	ev_init(&e, EK_CONNECT, LOG_INFO, 3, NULL);
	ev_add(&e, "client", "[%s]", "192.0.2.1");
	rendered(&e, line, sizeof line);
	assert_string_equal(line, "session 3: connect: client=[192.0.2.1]\n");
	ev_init(&e, EK_REMOVED, LOG_INFO, 0, "06B0180CAC6F9400");
	rendered(&e, line, sizeof line);
	assert_string_equal(line, "06B0180CAC6F9400: removed\n");
	log_set_level(LOG_INFO);
}

static void test_subscriber_and_levels(void **state)
{
	(void)state;
	static struct seen s;
	log_set_level(LOG_ERROR);
	assert_false(ev_wanted(LOG_INFO));
	int h = ev_subscribe(collect, &s, LOG_INFO);
	assert_true(h > 0);
	assert_true(ev_wanted(LOG_INFO));      /* the subscriber wants it, the log not */
	assert_false(ev_wanted(LOG_DEBUG));
	struct ev e;
	ev_init(&e, EK_DELIVERY, LOG_INFO, 0, "Q");
	ev_add(&e, "to", "<%s>", "x@example.com");
	ev_emit(&e);
	assert_int_equal(s.calls, 1);
	assert_int_equal(s.kind, EK_DELIVERY);
	assert_string_equal(s.text, "<x@example.com>");
	/* not wanted by anyone: nothing is formatted, nothing is called */
	ev_init(&e, EK_IN, LOG_DEBUG, 1, NULL);
	ev_add(&e, "line", "%s", "NOOP");
	assert_int_equal(e.n, 0);
	ev_emit(&e);
	assert_int_equal(s.calls, 1);
	/* a trace asks for the transcript: now it is built and given */
	ev_set_min(h, LOG_DEBUG);
	ev_init(&e, EK_IN, LOG_DEBUG, 1, NULL);
	ev_add(&e, "line", "%s", "NOOP");
	ev_emit(&e);
	assert_int_equal(s.calls, 2);
	ev_set_min(h, LOG_INFO);
	log_set_level(LOG_INFO);
}

static void test_limits(void **state)
{
	(void)state;
	struct ev e;
	ev_init(&e, EK_NOTE, LOG_ERROR, 0, NULL);
	for (int i = 0; i < EK_FIELDS + 4; i++)
		ev_add(&e, "k", "%d", i);
	assert_int_equal(e.n, EK_FIELDS);
	char big[EK_TEXT * 2];
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	ev_init(&e, EK_NOTE, LOG_ERROR, 0, NULL);
	ev_add(&e, "text", "%s", big);
	ev_add(&e, "more", "%s", "y");
	assert_true(e.used < EK_TEXT);
	size_t len;
	assert_non_null(ev_get(&e, "text", &len));
	assert_int_equal(len, EK_TEXT - 1);
	assert_string_equal(ev_name(EK_DELIVERY), "delivery");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_message_line),
		cmocka_unit_test(test_session_lines),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_subscriber_and_levels),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
