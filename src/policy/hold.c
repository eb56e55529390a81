/* hold: held domains and their recipient lists (see hold.h). */
#include "policy/hold.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/addr.h"
#include "lib/hmap.h"
#include "lib/idna.h"
#include "lib/log.h"
#include "lib/util.h"

#define HOLD_KEY_MAX (ADDR_LOCAL_MAX + ADDR_DOMAIN_MAX + 2)

bool hold_domain_under(const char *domain, const char *pattern, bool subdomains)
{
	size_t dl = strlen(domain), pl = strlen(pattern);
	if (dl == pl)
		return !strcasecmp(domain, pattern);
	return subdomains && pl && dl > pl + 1 && domain[dl - pl - 1] == '.' &&
	       !strcasecmp(domain + dl - pl, pattern);
}

bool hold_domain(const struct conf *c, const char *domain)
{
	char alabel[ADDR_DOMAIN_MAX + 1];   /* hold_domains are A-labels (conf.c) */
	if (idna_has_8bit(domain) && idna_alabel(domain, alabel, sizeof alabel))
		domain = alabel;
	for (size_t i = 0; i < c->hold_domains.n; i++)
		if (hold_domain_under(domain, c->hold_domains.v[i], true))
			return true;
	return false;
}

/* One entry per line: "local@domain", or "@domain" (every user); and one
 * per domain named, so that a domain without lines accepts anyone. */
struct hold_entry {
	struct hmap_node node;
	char key[];   /* lower-cased "local@domain", "@domain", or "domain" */
};

struct hold_rcpts {
	struct hmap t;
};

static bool hold_rcpts_has(const struct hold_rcpts *h, const char *key)
{
	size_t hash = hmap_hash(key);
	for (struct hmap_node *n = hmap_first(&h->t, hash); n; n = hmap_next(n))
		if (!strcmp(HMAP_ENTRY(n, struct hold_entry, node)->key, key))
			return true;
	return false;
}

static void hold_rcpts_put(struct hold_rcpts *h, const char *key)
{
	if (hold_rcpts_has(h, key))
		return;
	size_t n = strlen(key) + 1;
	struct hold_entry *e = util_xcalloc(1, sizeof *e + n);
	memcpy(e->key, key, n);
	util_lower(e->key);
	hmap_add(&h->t, &e->node, hmap_hash(e->key));
}

int hold_rcpts_line(struct hold_rcpts *h, char *t, const char *origin)
{
	struct addr a;
	char key[HOLD_KEY_MAX];
	if (t[0] == '@' && addr_domain_valid(t + 1)) {
		hold_rcpts_put(h, t + 1);
		hold_rcpts_put(h, t);
		return 0;
	}
	if (strpbrk(t, " \t") || addr_parse_mailbox(t, &a) != ADDR_OK) {
		log_problem("%s: expected one address, local@domain or @domain\n", origin);
		return 1;
	}
	hold_rcpts_put(h, a.domain);
	snprintf(key, sizeof key, "%s@%s", a.local, a.domain);
	hold_rcpts_put(h, key);
	return 0;
}

static int hold_rcpts_each(void *ctx, char *t, const char *origin)
{
	return hold_rcpts_line(ctx, t, origin);
}

struct hold_rcpts *hold_rcpts_new(void)
{
	return util_xcalloc(1, sizeof(struct hold_rcpts));
}

struct hold_rcpts *hold_rcpts_load(const char *path, int *bad)
{
	struct hold_rcpts *h = hold_rcpts_new();
	if (path && *path)
		*bad += util_each_line(path, "hold recipients file", UTIL_LINES_COMMENTS,
		                       hold_rcpts_each, h);
	return h;
}

static void hold_entry_free(struct hmap_node *n, void *ctx)
{
	(void)ctx;
	free(HMAP_ENTRY(n, struct hold_entry, node));
}

void hold_rcpts_free(struct hold_rcpts *h)
{
	if (!h)
		return;
	hmap_clear(&h->t, hold_entry_free, NULL);
	free(h);
}

bool hold_rcpts_allow(const struct hold_rcpts *h, const char *local, const char *domain)
{
	char key[HOLD_KEY_MAX];
	snprintf(key, sizeof key, "%s", domain);
	util_lower(key);
	if (!h || !hold_rcpts_has(h, key))
		return true;
	snprintf(key, sizeof key, "@%s", domain);
	util_lower(key);
	if (hold_rcpts_has(h, key))
		return true;
	snprintf(key, sizeof key, "%s@%s", local, domain);
	util_lower(key);
	return hold_rcpts_has(h, key);
}
