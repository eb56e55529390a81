/* hmap: an intrusive hash table keyed by strings (pure).
 *
 * The caller embeds a struct hmap_node in its object and keeps the key
 * there too: the table holds only the nodes and each one's hash, and a
 * lookup walks the nodes of one hash while the caller compares keys.
 * Adding and removing are O(1) (a node knows the link that points at it);
 * the table doubles its buckets when it holds more nodes than buckets, so
 * chains stay short however many objects there are. Allocation failure
 * aborts.
 *
 *     size_t h = hmap_hash(key);
 *     for (struct hmap_node *n = hmap_first(&t, h); n; n = hmap_next(n))
 *         if (!strcmp(HMAP_ENTRY(n, struct thing, node)->key, key)) ...
 */
#ifndef TERN_HMAP_H
#define TERN_HMAP_H

#include <stddef.h>

struct hmap_node {
	struct hmap_node *next, **pprev;
	size_t hash;
};

struct hmap {
	struct hmap_node **b;
	size_t mask;     /* buckets - 1 (a power of 2 minus 1), 0 before the first add */
	size_t n;        /* nodes */
};

#define HMAP_INIT { NULL, 0, 0 }
#define HMAP_ENTRY(node, type, member) ((type *)((char *)(node) - offsetof(type, member)))

size_t hmap_hash(const char *key);
void hmap_add(struct hmap *t, struct hmap_node *n, size_t hash);
void hmap_del(struct hmap *t, struct hmap_node *n);
/* The first node of hash's chain that has that hash, and the next one. */
struct hmap_node *hmap_first(const struct hmap *t, size_t hash);
struct hmap_node *hmap_next(const struct hmap_node *n);
/* fn on every node, in no particular order; fn must not add or remove. */
void hmap_each(const struct hmap *t, void (*fn)(struct hmap_node *n, void *ctx), void *ctx);
/* Take every node out, calling fn (if not NULL) on each, which may free
 * it; then free the buckets. The table is empty and usable again. */
void hmap_clear(struct hmap *t, void (*fn)(struct hmap_node *n, void *ctx), void *ctx);

#endif
