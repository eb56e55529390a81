/* test_event: lib/event.c's records and subscribers, and log.c's rendering
 * of them (the log is what operators grep: its form is an interface), on
 * stderr and as journal entries. */
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
	assert_false(ev_wanted(EK_DELIVERY, LOG_INFO));
	int h = ev_subscribe(collect, &s, LOG_INFO);
	assert_true(h > 0);
	assert_true(ev_wanted(EK_DELIVERY, LOG_INFO));   /* the subscriber wants it, the log not */
	assert_false(ev_wanted(EK_DELIVERY, LOG_DEBUG));
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
	/* narrowed to some kinds: the others are neither built nor given */
	ev_set_kinds(h, EV_KIND(EK_QUEUED) | EV_KIND(EK_DELIVERY));
	assert_true(ev_wanted(EK_DELIVERY, LOG_INFO));
	assert_false(ev_wanted(EK_RECEIVED, LOG_INFO));
	ev_init(&e, EK_RECEIVED, LOG_INFO, 1, "Q");
	ev_add(&e, "from", "%s", "x");
	assert_int_equal(e.n, 0);
	ev_emit(&e);
	assert_int_equal(s.calls, 2);
	ev_init(&e, EK_QUEUED, LOG_INFO, 1, "Q");
	ev_add(&e, "to", "%s", "<y@example.com>");
	ev_emit(&e);
	assert_int_equal(s.calls, 3);
	assert_string_equal(s.text, "<y@example.com>");
	ev_set_kinds(h, EV_ALL_KINDS);
	assert_true(ev_wanted(EK_RECEIVED, LOG_INFO));
	log_set_level(LOG_INFO);
}

/* "%s" is copied without vsnprintf: cut at EK_TEXT like any other field,
 * NULL as glibc prints it, and the queue id cut to its field. */
static void test_plain_string_fields(void **state)
{
	(void)state;
	log_set_level(LOG_INFO);
	static char big[EK_TEXT * 2];
	memset(big, 'x', sizeof big - 1);
	struct ev e;
	ev_init(&e, EK_DELIVERY, LOG_INFO, 0, "0123456789012345678901234567890123456789");
	assert_int_equal(strlen(e.qid), sizeof e.qid - 1);
	const char *volatile none = NULL;   /* out of the compiler's sight */
	ev_add(&e, "a", "%s", none);
	ev_add(&e, "b", "%s", "");
	ev_add(&e, "c", "%s", big);
	ev_add(&e, "d", "%s", "after");
	size_t len;
	const char *v = ev_get(&e, "a", &len);
	assert_int_equal(len, 6);
	assert_memory_equal(v, "(null)", 6);
	assert_non_null(ev_get(&e, "b", &len));
	assert_int_equal(len, 0);
	ev_get(&e, "c", &len);
	assert_int_equal(len, EK_TEXT - 1 - 6);   /* all the room there was */
	assert_true(e.used < sizeof e.text);
	ev_get(&e, "d", &len);
	assert_int_equal(len, 0);                 /* none left */
}

/* The entry's fields, "NAME=value" each, joined by '\n'. */
static void journal_text(const struct ev *e, char *out, size_t n)
{
	static struct log_journal j;
	log_journal_build(e, &j);
	size_t len = 0;
	for (size_t i = 0; i < j.n && len + j.iov[i].iov_len + 1 < n; i++) {
		memcpy(out + len, j.iov[i].iov_base, j.iov[i].iov_len);
		len += j.iov[i].iov_len;
		out[len++] = '\n';
	}
	out[len] = '\0';
}

static void test_journal_fields(void **state)
{
	(void)state;
	struct ev e;
	char text[1024];
	log_set_level(LOG_INFO);
	ev_init(&e, EK_DELIVERY, LOG_WARNING, 12, "06B0180CAC6F9400");
	ev_add(&e, "to", "<%s>", "bob@dest.example");
	ev_add(&e, "orig_to", "<%s>", "b@x");
	ev_add(&e, "reply", "%s", "450 4.2.0 later");
	ev_flag(&e, "after the session ended");
	journal_text(&e, text, sizeof text);
	assert_string_equal(text,
		"MESSAGE=06B0180CAC6F9400: delivery: to=<bob@dest.example>, orig_to=<b@x>, "
		"reply=450 4.2.0 later, after the session ended, session=12\n"
		"PRIORITY=4\nSYSLOG_IDENTIFIER=ternd\nSYSLOG_FACILITY=2\n"
		"TERN_EVENT=delivery\nQUEUE_ID=06B0180CAC6F9400\nSESSION=12\n"
		"TERN_TO=<bob@dest.example>\nTERN_ORIG_TO=<b@x>\nTERN_REPLY=450 4.2.0 later\n"
		"TERN_AFTER_THE_SESSION_ENDED=1\n");
	/* prose: its text is the message, nothing else of its own */
	ev_init(&e, EK_NOTE, LOG_ERROR, 0, NULL);
	ev_add(&e, "text", "cannot bind %s", "127.0.0.1:25");
	journal_text(&e, text, sizeof text);
	assert_string_equal(text, "MESSAGE=cannot bind 127.0.0.1:25\nPRIORITY=3\n"
	                          "SYSLOG_IDENTIFIER=ternd\nSYSLOG_FACILITY=2\n");
	/* a session's line: SESSION=, no QUEUE_ID= */
	log_set_level(LOG_DEBUG);
	ev_init(&e, EK_CONNECT, LOG_DEBUG, 3, NULL);
	ev_add(&e, "client", "[%s]", "192.0.2.1");
	journal_text(&e, text, sizeof text);
	assert_string_equal(text, "MESSAGE=session 3: connect: client=[192.0.2.1]\nPRIORITY=7\n"
	                          "SYSLOG_IDENTIFIER=ternd\nSYSLOG_FACILITY=2\nTERN_EVENT=connect\n"
	                          "SESSION=3\nTERN_CLIENT=[192.0.2.1]\n");
	log_set_level(LOG_INFO);
}

/* A record as large as a record gets: every field still fits in the
 * entry, and nothing overruns it. */
static void test_journal_limits(void **state)
{
	(void)state;
	static struct log_journal j;
	struct ev e;
	char big[EK_TEXT];
	memset(big, 'v', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	ev_init(&e, EK_REPORT, LOG_ERROR, 1, "Q");
	ev_add(&e, "an-unusually long key name that goes on and on past sixty-four characters",
	       "%s", big);
	for (int i = 1; i < EK_FIELDS; i++)
		ev_add(&e, "k", "%d", i);
	log_journal_build(&e, &j);
	assert_int_equal(j.n, 7 + EK_FIELDS);
	assert_true(j.used <= sizeof j.buf);
	const char *name = j.iov[7].iov_base;
	assert_int_equal(strchr(name, '=') - name, 64);
	assert_memory_equal(name, "TERN_AN_UNUSUALLY_LONG_KEY_NAME", 31);
	assert_int_equal(log_target_parse("journal"), LOG_TO_JOURNAL);
	assert_int_equal(log_target_parse("syslog"), LOG_TO_SYSLOG);
	assert_int_equal(log_target_parse("stderr"), LOG_TO_STDERR);
	assert_int_equal(log_target_parse("Journal"), -1);
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
		cmocka_unit_test(test_journal_fields),
		cmocka_unit_test(test_journal_limits),
		cmocka_unit_test(test_subscriber_and_levels),
		cmocka_unit_test(test_plain_string_fields),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
