/* Unit tests for hmap: lookups, O(1) removal anywhere in a chain, growth,
 * clearing. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/hmap.h"

struct thing {
	char key[24];
	struct hmap_node node;
	int freed;
};

static struct thing *find(const struct hmap *t, const char *key)
{
	size_t h = hmap_hash(key);
	for (struct hmap_node *n = hmap_first(t, h); n; n = hmap_next(n)) {
		struct thing *x = HMAP_ENTRY(n, struct thing, node);
		if (!strcmp(x->key, key))
			return x;
	}
	return NULL;
}

static void add(struct hmap *t, struct thing *x, const char *key)
{
	snprintf(x->key, sizeof x->key, "%s", key);
	hmap_add(t, &x->node, hmap_hash(key));
}

static void count_each(struct hmap_node *n, void *ctx)
{
	HMAP_ENTRY(n, struct thing, node)->freed++;   /* here: times seen */
	(*(int *)ctx)++;
}

static void test_each(void **state)
{
	(void)state;
	struct hmap t = HMAP_INIT;
	int seen = 0;
	hmap_each(&t, count_each, &seen);   /* empty: no buckets yet */
	assert_int_equal(seen, 0);
	static struct thing x[300];
	char key[16];
	for (int i = 0; i < 300; i++) {
		snprintf(key, sizeof key, "k%d", i % 150);   /* chains with equal keys too */
		add(&t, &x[i], key);
	}
	hmap_each(&t, count_each, &seen);
	assert_int_equal(seen, 300);
	for (int i = 0; i < 300; i++)
		assert_int_equal(x[i].freed, 1);   /* every node once */
	hmap_clear(&t, NULL, NULL);
}

static void test_empty(void **state)
{
	(void)state;
	struct hmap t = HMAP_INIT;
	assert_null(find(&t, "nothing"));
	assert_null(hmap_first(&t, hmap_hash("")));
}

static void test_add_find_del(void **state)
{
	(void)state;
	struct hmap t = HMAP_INIT;
	struct thing a, b, c;
	add(&t, &a, "alpha");
	add(&t, &b, "beta");
	add(&t, &c, "gamma");
	assert_ptr_equal(find(&t, "alpha"), &a);
	assert_ptr_equal(find(&t, "beta"), &b);
	assert_ptr_equal(find(&t, "gamma"), &c);
	assert_null(find(&t, "delta"));
	hmap_del(&t, &b.node);
	assert_null(find(&t, "beta"));
	assert_ptr_equal(find(&t, "alpha"), &a);
	assert_int_equal(t.n, 2);
	hmap_del(&t, &a.node);
	hmap_del(&t, &c.node);
	assert_int_equal(t.n, 0);
	hmap_clear(&t, NULL, NULL);
}

/* Nodes of one chain (the same key twice: the same hash) come off from
 * the head, the middle and the tail. */
static void test_same_key_chain(void **state)
{
	(void)state;
	struct hmap t = HMAP_INIT;
	struct thing x[3];
	for (int i = 0; i < 3; i++)
		add(&t, &x[i], "same");
	int seen = 0;
	for (struct hmap_node *n = hmap_first(&t, hmap_hash("same")); n; n = hmap_next(n))
		seen++;
	assert_int_equal(seen, 3);
	hmap_del(&t, &x[1].node);   /* middle */
	hmap_del(&t, &x[2].node);   /* head (last added) */
	assert_ptr_equal(hmap_first(&t, hmap_hash("same")), &x[0].node);
	hmap_del(&t, &x[0].node);
	assert_null(hmap_first(&t, hmap_hash("same")));
	hmap_clear(&t, NULL, NULL);
}

static void mark_freed(struct hmap_node *n, void *ctx)
{
	HMAP_ENTRY(n, struct thing, node)->freed++;
	(*(int *)ctx)++;
}

/* 100,000 keys: the buckets grow past them, every key is found, half
 * removed, the rest found, clear visits each remaining node once. */
static void test_growth(void **state)
{
	(void)state;
	enum { N = 100000 };
	struct hmap t = HMAP_INIT;
	struct thing *x = calloc(N, sizeof *x);
	char key[24];
	for (int i = 0; i < N; i++) {
		snprintf(key, sizeof key, "Q%015d", i);
		add(&t, &x[i], key);
	}
	assert_int_equal(t.n, N);
	assert_true(t.mask + 1 >= N);
	for (int i = 0; i < N; i++) {
		snprintf(key, sizeof key, "Q%015d", i);
		assert_ptr_equal(find(&t, key), &x[i]);
	}
	for (int i = 0; i < N; i += 2)
		hmap_del(&t, &x[i].node);
	for (int i = 0; i < N; i++) {
		snprintf(key, sizeof key, "Q%015d", i);
		assert_ptr_equal(find(&t, key), i % 2 ? &x[i] : NULL);
	}
	int calls = 0;
	hmap_clear(&t, mark_freed, &calls);
	assert_int_equal(calls, N / 2);
	for (int i = 0; i < N; i++)
		assert_int_equal(x[i].freed, i % 2);
	assert_int_equal(t.n, 0);
	assert_null(t.b);
	free(x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_add_find_del),
		cmocka_unit_test(test_same_key_chain),
		cmocka_unit_test(test_growth),
		cmocka_unit_test(test_each),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
