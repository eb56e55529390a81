/* Unit tests for the fault rules as the server holds them (smtpd/faults.h):
 * the runtime set replaced from text, refused whole when a line is bad,
 * read back beside the configured set and cleared; and fault_rules read
 * with a generation of the settings, a bad file refusing the generation
 * with the line named (what a reload then keeps). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/log.h"
#include "policy/settings.h"
#include "smtpd/faults.h"
#include "smtpd/session.h"

/* Settings from the embedded defaults and these -o overrides. */
static struct settings *load(const char *rules, int *bad)
{
	char key[600];
	snprintf(key, sizeof key, "fault_rules=%s", rules);
	char *o[] = { (char *)"hostname=mx.test.example", key };
	*bad = 0;
	return settings_load(NULL, o, 2, NULL, bad);
}

static char *text_of(const struct server *srv)
{
	struct buf b = BUF_INIT;
	faults_text(srv, &b);
	char *t = strdup(buf_cstr(&b));
	buf_free(&b);
	return t;
}

static void test_runtime(void **state)
{
	(void)state;
	int bad;
	struct server srv;
	memset(&srv, 0, sizeof srv);
	srv.set = load("", &bad);
	assert_non_null(srv.set);
	assert_null(srv.set->faults);
	char *t = text_of(&srv);
	assert_string_equal(t, "# runtime\n# fault_rules \n");
	free(t);

	char err[512] = "";
	assert_true(faults_replace(&srv, "rcpt *@a.test reply 452 4.2.2 full\n# note\nmail close\n",
	                           err, sizeof err));
	t = text_of(&srv);
	assert_string_equal(t, "# runtime\nrcpt *@a.test reply 452 4.2.2 full\nmail close\n"
	                       "# fault_rules \n");
	free(t);

	/* a bad line: named, and nothing changes */
	assert_false(faults_replace(&srv, "helo disconnect\nrcpt reply 250 fine\n", err, sizeof err));
	assert_string_equal(err, "runtime:2: reply: expected a reply code from 400 to 599, got \"250\"");
	t = text_of(&srv);
	assert_non_null(strstr(t, "mail close\n"));
	assert_null(strstr(t, "helo disconnect"));
	free(t);

	/* replaced whole, then cleared */
	assert_true(faults_replace(&srv, "helo disconnect", err, sizeof err));
	t = text_of(&srv);
	assert_string_equal(t, "# runtime\nhelo disconnect\n# fault_rules \n");
	free(t);
	faults_clear(&srv);
	t = text_of(&srv);
	assert_string_equal(t, "# runtime\n# fault_rules \n");
	free(t);
	assert_true(faults_replace(&srv, "", err, sizeof err));
	faults_free(&srv);
	assert_null(srv.faults);
	settings_unref(srv.set);
}

static char *write_rules(const char *text)
{
	char *path = strdup("/tmp/test_faults_XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

static void test_configured(void **state)
{
	(void)state;
	int bad;
	char *path = write_rules("# the configured set\nrcpt *@b.test bounce 550 5.1.1 gone\n");
	struct server srv;
	memset(&srv, 0, sizeof srv);
	srv.set = load(path, &bad);
	assert_non_null(srv.set);
	assert_int_equal(bad, 0);
	assert_non_null(srv.set->faults);
	assert_int_equal(srv.set->faults->n, 1);
	char err[512];
	assert_true(faults_replace(&srv, "mail close", err, sizeof err));
	char *t = text_of(&srv);
	char want[1024];
	snprintf(want, sizeof want, "# runtime\nmail close\n# fault_rules %s\n"
	         "rcpt *@b.test bounce 550 5.1.1 gone\n", path);
	assert_string_equal(t, want);
	free(t);
	faults_free(&srv);
	settings_unref(srv.set);
	unlink(path);
	free(path);
}

/* A bad file: the generation is refused, every bad line named. */
static void test_configured_bad(void **state)
{
	(void)state;
	int bad;
	char *path = write_rules("rcpt close\nrcpt explode\nmail delay forever\n");
	struct buf problems = BUF_INIT;
	log_problems_collect(&problems);
	struct settings *st = load(path, &bad);
	log_problems_collect(NULL);
	assert_null(st);
	assert_int_equal(bad, 2);
	char want[600];
	snprintf(want, sizeof want, "%s:2: expected an action", path);
	assert_non_null(strstr(buf_cstr(&problems), want));
	snprintf(want, sizeof want, "%s:3: delay: expected a duration", path);
	assert_non_null(strstr(buf_cstr(&problems), want));
	buf_free(&problems);
	unlink(path);
	free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_runtime),
		cmocka_unit_test(test_configured),
		cmocka_unit_test(test_configured_bad),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
