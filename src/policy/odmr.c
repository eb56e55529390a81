/* odmr: load and look up the odmr_map file (see odmr.h). A short list in
 * the file's order: a server relays on demand for a few domains, and
 * ATRN asks once a connection. */
#include "policy/odmr.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/addr.h"
#include "lib/log.h"
#include "lib/util.h"
#include "policy/auth.h"

#define ODMR_USERS_MAX 1000   /* per domain */

struct odmr_entry {
	char *domain;     /* lower-case */
	size_t n;
	char **users;
};

struct odmr_map {
	size_t n, cap;
	struct odmr_entry *v;
};

struct odmr_map *odmr_map_new(void)
{
	return util_xcalloc(1, sizeof(struct odmr_map));
}

static void odmr_entry_free(struct odmr_entry *e)
{
	for (size_t i = 0; i < e->n; i++)
		free(e->users[i]);
	free(e->users);
	free(e->domain);
}

void odmr_map_free(struct odmr_map *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n; i++)
		odmr_entry_free(&m->v[i]);
	free(m->v);
	free(m);
}

static const struct odmr_entry *odmr_find(const struct odmr_map *m, const char *domain)
{
	for (size_t i = 0; m && i < m->n; i++)
		if (!strcasecmp(m->v[i].domain, domain))
			return &m->v[i];
	return NULL;
}

/* A user name as users_file could hold it: 1..AUTH_FIELD_MAX printable
 * octets, no ':' (the file's separator) and no space. */
static bool odmr_user_valid(const char *u)
{
	size_t n = strlen(u);
	if (n == 0 || n > AUTH_FIELD_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)u[i] <= ' ' || u[i] == ':' || u[i] == 0x7f)
			return false;
	return true;
}

/* The users after the domain: "user[, user...]"; returns problems. */
static int odmr_users(struct odmr_entry *e, char *list, const char *origin)
{
	char *save = NULL;
	for (char *u = strtok_r(list, ",", &save); u; u = strtok_r(NULL, ",", &save)) {
		u = util_trim(u);
		if (!*u)
			continue;
		if (!odmr_user_valid(u)) {
			log_problem("%s: bad user name '%.*s'%s\n", origin, AUTH_FIELD_MAX, u,
			            u[strcspn(u, " \t")] ? " (users are separated by commas)" : "");
			return 1;
		}
		if (e->n >= ODMR_USERS_MAX) {
			log_problem("%s: more than %d users\n", origin, ODMR_USERS_MAX);
			return 1;
		}
		e->users = util_xrealloc(e->users, e->n + 1, sizeof *e->users);
		e->users[e->n++] = util_xstrdup(u);
	}
	if (e->n)
		return 0;
	log_problem("%s: domain %s has no users\n", origin, e->domain);
	return 1;
}

static void odmr_map_add(struct odmr_map *m, struct odmr_entry *e)
{
	if (m->n == m->cap) {
		m->cap = m->cap ? m->cap * 2 : 8;
		m->v = util_xrealloc(m->v, m->cap, sizeof *m->v);
	}
	m->v[m->n++] = *e;
}

int odmr_map_line(struct odmr_map *m, char *line, const char *origin)
{
	size_t dlen = strcspn(line, " \t");
	char *rest = line + dlen;
	if (*rest)
		*rest++ = '\0';
	if (!addr_domain_valid(line)) {
		log_problem("%s: '%s' is not a domain (expected 'domain user[, user...]')\n", origin, line);
		return 1;
	}
	if (odmr_find(m, line)) {
		log_problem("%s: domain %s is listed twice\n", origin, line);
		return 1;
	}
	struct odmr_entry e = { util_xstrdup(line), 0, NULL };
	util_lower(e.domain);
	if (odmr_users(&e, rest, origin)) {
		odmr_entry_free(&e);
		return 1;
	}
	odmr_map_add(m, &e);
	return 0;
}

static int odmr_map_file_line(void *ctx, char *line, const char *origin)
{
	return odmr_map_line(ctx, line, origin);
}

struct odmr_map *odmr_map_load(const char *path, int *bad)
{
	struct odmr_map *m = odmr_map_new();
	if (path && *path)
		*bad += util_each_line(path, "odmr_map", UTIL_LINES_COMMENTS, odmr_map_file_line, m);
	return m;
}

size_t odmr_map_count(const struct odmr_map *m)
{
	return m ? m->n : 0;
}

static bool odmr_entry_has(const struct odmr_entry *e, const char *user)
{
	for (size_t i = 0; i < e->n; i++)
		if (!strcasecmp(e->users[i], user))   /* as AUTH matches them */
			return true;
	return false;
}

bool odmr_map_allows(const struct odmr_map *m, const char *user, const char *domain)
{
	const struct odmr_entry *e = odmr_find(m, domain);
	return e && odmr_entry_has(e, user);
}

size_t odmr_map_domains(const struct odmr_map *m, const char *user, const char **out, size_t max)
{
	size_t n = 0;
	for (size_t i = 0; m && i < m->n; i++) {
		if (!odmr_entry_has(&m->v[i], user))
			continue;
		if (n < max)
			out[n] = m->v[i].domain;
		n++;
	}
	return n;
}
