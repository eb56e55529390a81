/* Unit tests for odmr: the odmr_map file's lines, its lookups, and
 * policy_may_dequeue on settings generations (a reload reads the file
 * again; a bad line refuses the generation). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "policy/odmr.h"
#include "policy/policy.h"
#include "policy/settings.h"

static int add(struct odmr_map *m, const char *line)
{
	char *copy = strdup(line);
	int bad = odmr_map_line(m, copy, "t:1");
	free(copy);
	return bad;
}

static void test_lines(void **state)
{
	(void)state;
	static const struct { const char *line; int bad; } rows[] = {
		{ "example.org kate@example.com", 0 },
		{ "Example.NET kate@example.com, dana@example.com", 0 },
		{ "sub.example.com\tdana@example.com ,kate ,  x", 0 },
		{ "example.org other", 1 },                    /* listed twice */
		{ "EXAMPLE.ORG other", 1 },                    /* twice, another case */
		{ "nousers.example", 1 },
		{ "nousers.example   ", 1 },
		{ "commas.example ,, ,", 1 },
		{ "bad..domain kate", 1 },
		{ "-bad.example kate", 1 },
		{ "[192.0.2.1] kate", 1 },
		{ "space.example kate dana", 1 },              /* users are separated by commas */
		{ "colon.example ka:te", 1 },
	};
	struct odmr_map *m = odmr_map_new();
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
		if (add(m, rows[i].line) != rows[i].bad)
			fail_msg("row %zu '%s': want %d", i, rows[i].line, rows[i].bad);
	assert_int_equal(odmr_map_count(m), 3);
	char big[300];
	int n = snprintf(big, sizeof big, "long.example ");
	memset(big + n, 'u', 256);
	big[n + 256] = '\0';
	assert_int_equal(add(m, big), 1);                  /* a user over AUTH_FIELD_MAX */
	assert_int_equal(odmr_map_count(m), 3);
	odmr_map_free(m);
}

static void test_lookups(void **state)
{
	(void)state;
	struct odmr_map *m = odmr_map_new();
	assert_int_equal(add(m, "example.org kate@example.com"), 0);
	assert_int_equal(add(m, "Example.NET kate@example.com, dana@example.com"), 0);
	assert_int_equal(add(m, "only.example dana@example.com"), 0);
	static const struct { const char *user, *domain; bool ok; } rows[] = {
		{ "kate@example.com", "example.org", true },
		{ "kate@example.com", "EXAMPLE.org", true },      /* domains: any case */
		{ "kate@example.com", "example.net", true },
		{ "dana@example.com", "example.net", true },
		{ "dana@example.com", "example.org", false },
		{ "Kate@example.com", "example.org", true },      /* users: as AUTH, in any case */
		{ "kate", "example.org", false },
		{ "kate@example.com", "sub.example.org", false },
		{ "kate@example.com", "example", false },
		{ "kate@example.com", "", false },
		{ "", "example.org", false },
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
		if (odmr_map_allows(m, rows[i].user, rows[i].domain) != rows[i].ok)
			fail_msg("row %zu: %s %s", i, rows[i].user, rows[i].domain);
	const char *d[2];
	assert_int_equal(odmr_map_domains(m, "dana@example.com", d, 2), 2);
	assert_string_equal(d[0], "example.net");   /* lower-cased, in the file's order */
	assert_string_equal(d[1], "only.example");
	assert_int_equal(odmr_map_domains(m, "kate@example.com", d, 1), 2);
	assert_string_equal(d[0], "example.org");
	assert_int_equal(odmr_map_domains(m, "nobody", d, 2), 0);
	assert_false(odmr_map_allows(NULL, "kate@example.com", "example.org"));
	odmr_map_free(m);
}

static void put(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static struct settings *load(const char *map, int *bad)
{
	char key[128];
	snprintf(key, sizeof key, "odmr_map=%s", map);
	char *o[] = { "hostname=mx.test.example", key };
	return settings_load(NULL, o, 2, NULL, bad);
}

/* The map is part of a settings generation: a new one reads the file
 * again, a bad line (FILE:LINE) refuses it. */
static void test_generations(void **state)
{
	(void)state;
	char path[] = "/tmp/tern-odmr-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	put(path, "# who may ATRN what\nexample.org kate@example.com  # kate's\n\n");
	int bad = 0;
	struct settings *a = load(path, &bad);
	assert_non_null(a);
	assert_int_equal(bad, 0);
	assert_true(policy_may_dequeue(a, "kate@example.com", "Example.ORG"));
	assert_false(policy_may_dequeue(a, "dana@example.com", "example.org"));
	put(path, "example.org dana@example.com\n");
	struct settings *b = load(path, &bad);
	assert_non_null(b);
	assert_false(policy_may_dequeue(b, "kate@example.com", "example.org"));
	assert_true(policy_may_dequeue(b, "dana@example.com", "example.org"));
	assert_true(policy_may_dequeue(a, "kate@example.com", "example.org"));  /* the old one stays */
	const char *d[4];
	assert_int_equal(policy_dequeue_domains(b, "dana@example.com", d, 4), 1);
	put(path, "example.org dana@example.com\nexample.net\n");
	assert_null(load(path, &bad));
	assert_int_equal(bad, 1);
	bad = 0;
	assert_null(load("/nonexistent/odmr", &bad));
	assert_int_equal(bad, 1);
	bad = 0;
	struct settings *none = load("", &bad);
	assert_false(policy_may_dequeue(none, "kate@example.com", "example.org"));
	settings_unref(none);
	settings_unref(a);
	settings_unref(b);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lines), cmocka_unit_test(test_lookups),
		cmocka_unit_test(test_generations),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
