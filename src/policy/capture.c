/* capture: the test mode's routing of recipients into inboxes (capture.h). */
#include "policy/capture.h"

#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/conf.h"
#include "lib/log.h"
#include "lib/util.h"

#define CAPTURE_GLOB_MAX 320

enum capture_field { CF_RCPT, CF_FROM, CF_USER, CF_LISTENER, CF__COUNT };

struct capture_rule {
	char inbox[CAPTURE_INBOX_MAX + 1];
	char *glob[CF__COUNT];         /* NULL: no condition on it */
	bool route;                    /* has a condition: a route line */
	bool has_keep, has_age;        /* a retention line */
	unsigned keep, age;
};

struct capture_rules {
	struct capture_rule *v;
	size_t n, cap;
};

static const char *const capture_keys[CF__COUNT] = { "rcpt", "from", "user", "listener" };

bool capture_inbox_valid(const char *name)
{
	size_t n = strlen(name);
	return n >= 1 && n <= CAPTURE_INBOX_MAX &&
	       strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n;
}

struct capture_rules *capture_rules_new(void)
{
	return util_xcalloc(1, sizeof(struct capture_rules));
}

void capture_rules_free(struct capture_rules *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n; i++)
		for (int f = 0; f < CF__COUNT; f++)
			free(r->v[i].glob[f]);
	free(r->v);
	free(r);
}

static void capture_rule_clear(struct capture_rule *ru)
{
	for (int f = 0; f < CF__COUNT; f++)
		free(ru->glob[f]);
}

/* One "key=value" word of a line into ru; 0 or 1 after printing why. */
static int capture_word(struct capture_rule *ru, const char *w, const char *origin)
{
	const char *eq = strchr(w, '=');
	size_t klen = eq ? (size_t)(eq - w) : 0;
	const char *v = eq ? eq + 1 : NULL;
	if (!eq || !*v) {
		log_problem("%s: '%s': expected key=value (rcpt, from, user, listener, keep, age)\n",
		            origin, w);
		return 1;
	}
	for (int f = 0; f < CF__COUNT; f++)
		if (strlen(capture_keys[f]) == klen && !strncmp(w, capture_keys[f], klen)) {
			if (ru->glob[f] || strlen(v) > CAPTURE_GLOB_MAX) {
				log_problem("%s: %s given twice or too long\n", origin, capture_keys[f]);
				return 1;
			}
			ru->glob[f] = util_xstrdup(v);
			ru->route = true;
			return 0;
		}
	if (klen == 4 && !strncmp(w, "keep", 4)) {
		char *end;
		unsigned long n = strtoul(v, &end, 10);
		if (*end || *v == '-' || n > 100000000ul) {
			log_problem("%s: keep=%s: expected a number of messages (0: no limit)\n", origin, v);
			return 1;
		}
		ru->keep = (unsigned)n;
		ru->has_keep = true;
		return 0;
	}
	if (klen == 3 && !strncmp(w, "age", 3)) {
		if (!conf_parse_duration(v, &ru->age)) {
			log_problem("%s: age=%s: expected a duration such as 2h or 7d (0: no limit)\n",
			            origin, v);
			return 1;
		}
		ru->has_age = true;
		return 0;
	}
	log_problem("%s: unknown condition '%.*s' (rcpt, from, user, listener, keep, age)\n", origin,
	            (int)klen, w);
	return 1;
}

int capture_rules_line(struct capture_rules *r, const char *line, const char *origin)
{
	char buf[1024];
	if (strlen(line) >= sizeof buf) {
		log_problem("%s: line too long\n", origin);
		return 1;
	}
	snprintf(buf, sizeof buf, "%s", line);
	char *save = NULL, *w = strtok_r(buf, " \t", &save);
	if (!w || *w == '#')
		return 0;
	struct capture_rule ru = { 0 };
	if (!capture_inbox_valid(w)) {
		log_problem("%s: '%s' is not an inbox name (1 to 64 of A-Z a-z 0-9 . _ -)\n", origin, w);
		return 1;
	}
	snprintf(ru.inbox, sizeof ru.inbox, "%s", w);
	int bad = 0;
	while (!bad && (w = strtok_r(NULL, " \t", &save)) != NULL)
		bad = capture_word(&ru, w, origin);
	if (!bad && !ru.route && !ru.has_keep && !ru.has_age) {
		log_problem("%s: inbox %s: no condition (rcpt=*, from=, user=, listener=) and no"
		            " keep= or age=\n", origin, ru.inbox);
		bad = 1;
	}
	if (bad) {
		capture_rule_clear(&ru);
		return 1;
	}
	if (r->n == r->cap) {
		r->cap = r->cap ? 2 * r->cap : 8;
		r->v = util_xrealloc(r->v, r->cap, sizeof *r->v);
	}
	r->v[r->n++] = ru;
	return 0;
}

static int capture_each(void *ctx, char *t, const char *origin)
{
	return capture_rules_line(ctx, t, origin);
}

struct capture_rules *capture_rules_load(const char *path, int *bad)
{
	struct capture_rules *r = capture_rules_new();
	if (path && *path)
		*bad += util_each_line(path, "capture rules", UTIL_LINES_COMMENTS, capture_each, r);
	return r;
}

static bool capture_glob(const char *glob, const char *value)
{
	return !glob || (value && fnmatch(glob, value, FNM_CASEFOLD) == 0);
}

static bool capture_rule_matches(const struct capture_rule *ru, const struct capture_facts *f)
{
	const char *v[CF__COUNT] = { f->rcpt, f->from, f->user, f->listener };
	for (int i = 0; i < CF__COUNT; i++)
		if (!capture_glob(ru->glob[i], v[i]))
			return false;
	return true;
}

const char *capture_inbox(const struct capture_rules *r, const struct capture_facts *f, bool all)
{
	for (size_t i = 0; r && i < r->n; i++)
		if (r->v[i].route && capture_rule_matches(&r->v[i], f))
			return r->v[i].inbox;
	return all ? CAPTURE_DEFAULT : NULL;
}

void capture_retention(const struct capture_rules *r, const char *inbox, unsigned def_keep,
                       unsigned def_age, unsigned *keep, unsigned *age)
{
	*keep = def_keep;
	*age = def_age;
	for (size_t i = 0; r && i < r->n; i++) {
		if (strcmp(r->v[i].inbox, inbox))
			continue;
		if (r->v[i].has_keep)
			*keep = r->v[i].keep;
		if (r->v[i].has_age)
			*age = r->v[i].age;
	}
}

bool capture_rules_any(const struct capture_rules *r)
{
	for (size_t i = 0; r && i < r->n; i++)
		if (r->v[i].route)
			return true;
	return false;
}

size_t capture_rules_inboxes(const struct capture_rules *r, const char **out, size_t max)
{
	size_t n = 0;
	for (size_t i = 0; r && i < r->n && n < max; i++) {
		bool seen = false;
		for (size_t j = 0; j < n && !seen; j++)
			seen = !strcmp(out[j], r->v[i].inbox);
		if (!seen)
			out[n++] = r->v[i].inbox;
	}
	return n;
}

bool capture_rules_retain(const struct capture_rules *r)
{
	for (size_t i = 0; r && i < r->n; i++)
		if ((r->v[i].has_keep && r->v[i].keep) || (r->v[i].has_age && r->v[i].age))
			return true;
	return false;
}
