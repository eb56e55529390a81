/* aliases: load and look up the aliases file (see aliases.h). A sorted
 * array and binary search: the file is read at start-up and on reload. */
#include "lib/aliases.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/addr.h"
#include "lib/buf.h"
#include "lib/log.h"
#include "lib/util.h"

#define ALIASES_TARGETS_MAX 1000

struct alias {
	char *key;          /* lower-case */
	size_t n;
	char **targets;
};

struct aliases {
	size_t n, cap;
	struct alias *v;
};

static bool aliases_key_valid(const char *k)
{
	struct addr a;
	if (strchr(k, '@'))
		return addr_parse_mailbox(k, &a) == ADDR_OK;
	struct buf b = BUF_INIT;
	buf_printf(&b, "%s@x.invalid", k);
	bool ok = addr_parse_mailbox(buf_cstr(&b), &a) == ADDR_OK;
	buf_free(&b);
	return ok;
}

/* Parse the targets of one line into al; returns problems found. */
static int aliases_targets(struct alias *al, char *list, const char *origin)
{
	char *save = NULL;
	for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		t = util_trim(t);
		if (!*t)
			continue;
		if (!aliases_key_valid(t)) {
			log_problem("%s: bad alias target '%s'\n", origin, t);
			return 1;
		}
		if (al->n >= ALIASES_TARGETS_MAX) {
			log_problem("%s: too many targets\n", origin);
			return 1;
		}
		al->targets = util_xrealloc(al->targets, al->n + 1, sizeof *al->targets);
		al->targets[al->n++] = util_xstrdup(t);
	}
	return 0;
}

static void aliases_entry_free(struct alias *al)
{
	for (size_t i = 0; i < al->n; i++)
		free(al->targets[i]);
	free(al->targets);
	free(al->key);
}

static int aliases_line(void *ctx, char *t, const char *origin)
{
	struct aliases *a = ctx;
	char *colon = strchr(t, ':');
	if (!colon) {
		log_problem("%s: expected 'address: target, target'\n", origin);
		return 1;
	}
	*colon = '\0';
	char *key = util_trim(t);
	if (!aliases_key_valid(key)) {
		log_problem("%s: bad alias name '%s'\n", origin, key);
		return 1;
	}
	struct alias al = { util_xstrdup(key), 0, NULL };
	util_lower(al.key);
	if (aliases_targets(&al, colon + 1, origin) || al.n == 0) {
		if (al.n == 0)
			log_problem("%s: alias '%s' has no targets\n", origin, key);
		aliases_entry_free(&al);
		return 1;
	}
	if (a->n == a->cap) {
		a->cap = a->cap ? a->cap * 2 : 16;
		a->v = util_xrealloc(a->v, a->cap, sizeof *a->v);
	}
	a->v[a->n++] = al;
	return 0;
}

static int aliases_cmp(const void *x, const void *y)
{
	return strcmp(((const struct alias *)x)->key, ((const struct alias *)y)->key);
}

struct aliases *aliases_load(const char *path, int *bad)
{
	struct aliases *a = util_xcalloc(1, sizeof *a);
	if (!path || !*path)
		return a;
	*bad += util_each_line(path, "aliases file", UTIL_LINES_COMMENTS, aliases_line, a);
	if (a->n)
		qsort(a->v, a->n, sizeof *a->v, aliases_cmp);
	return a;
}

void aliases_free(struct aliases *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < a->n; i++)
		aliases_entry_free(&a->v[i]);
	free(a->v);
	free(a);
}

static const struct alias *aliases_find(const struct aliases *a, const char *key)
{
	struct alias k = { (char *)key, 0, NULL };
	if (a->n == 0)
		return NULL;  /* bsearch on a NULL base is undefined */
	return bsearch(&k, a->v, a->n, sizeof *a->v, aliases_cmp);
}

size_t aliases_lookup(const struct aliases *a, const char *local, const char *domain,
                      char *const **targets)
{
	char key[ADDR_LOCAL_MAX + ADDR_DOMAIN_MAX + 2];
	snprintf(key, sizeof key, "%s@%s", local, domain);
	util_lower(key);
	const struct alias *al = aliases_find(a, key);
	if (!al) {
		snprintf(key, sizeof key, "%s", local);
		util_lower(key);
		al = aliases_find(a, key);
	}
	if (!al)
		return 0;
	*targets = al->targets;
	return al->n;
}
