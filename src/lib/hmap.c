/* hmap: intrusive string-keyed hash table with O(1) removal (hmap.h). */
#include "lib/hmap.h"

#include <stdint.h>
#include <stdlib.h>

#include "lib/util.h"

#define HMAP_MIN 64   /* buckets at the first add */

/* FNV-1a, 64-bit. */
size_t hmap_hash(const char *key)
{
	uint64_t h = 14695981039346656037ULL;
	for (const unsigned char *p = (const unsigned char *)key; *p; p++)
		h = (h ^ *p) * 1099511628211ULL;
	return (size_t)h;
}

static void hmap_link(struct hmap_node **head, struct hmap_node *n)
{
	n->next = *head;
	if (n->next)
		n->next->pprev = &n->next;
	n->pprev = head;
	*head = n;
}

/* Twice the buckets (HMAP_MIN at first); every node goes to its new chain. */
static void hmap_grow(struct hmap *t)
{
	size_t nb = t->b ? (t->mask + 1) * 2 : HMAP_MIN;
	struct hmap_node **b = util_xcalloc(nb, sizeof *b);
	for (size_t i = 0; t->b && i <= t->mask; i++)
		while (t->b[i]) {
			struct hmap_node *n = t->b[i];
			t->b[i] = n->next;
			hmap_link(&b[n->hash & (nb - 1)], n);
		}
	free(t->b);
	t->b = b;
	t->mask = nb - 1;
}

void hmap_add(struct hmap *t, struct hmap_node *n, size_t hash)
{
	if (!t->b || t->n > t->mask)
		hmap_grow(t);
	n->hash = hash;
	hmap_link(&t->b[hash & t->mask], n);
	t->n++;
}

void hmap_del(struct hmap *t, struct hmap_node *n)
{
	*n->pprev = n->next;
	if (n->next)
		n->next->pprev = n->pprev;
	n->next = NULL;
	n->pprev = NULL;
	t->n--;
}

static struct hmap_node *hmap_same(struct hmap_node *n, size_t hash)
{
	while (n && n->hash != hash)
		n = n->next;
	return n;
}

struct hmap_node *hmap_first(const struct hmap *t, size_t hash)
{
	return t->b ? hmap_same(t->b[hash & t->mask], hash) : NULL;
}

struct hmap_node *hmap_next(const struct hmap_node *n)
{
	return hmap_same(n->next, n->hash);
}

void hmap_each(const struct hmap *t, void (*fn)(struct hmap_node *n, void *ctx), void *ctx)
{
	for (size_t i = 0; t->b && i <= t->mask; i++)
		for (struct hmap_node *n = t->b[i]; n; n = n->next)
			fn(n, ctx);
}

void hmap_clear(struct hmap *t, void (*fn)(struct hmap_node *n, void *ctx), void *ctx)
{
	for (size_t i = 0; t->b && i <= t->mask; i++)
		while (t->b[i]) {
			struct hmap_node *n = t->b[i];
			hmap_del(t, n);
			if (fn)
				fn(n, ctx);
		}
	free(t->b);
	*t = (struct hmap)HMAP_INIT;
}
