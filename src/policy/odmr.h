/* odmr: the odmr_map file, which authenticated users may dequeue which
 * domains' held mail (RFC 2645, On-Demand Mail Relay: ATRN).
 *
 * A line is "domain user[, user...]"; '#' starts a comment, blank lines
 * are skipped. A domain (RFC 5321 4.1.2 syntax) is listed once and
 * compared case-insensitively (kept lower-case); a user is compared
 * exactly, as the client authenticated (the name of users_file). The map
 * is part of a settings generation (settings.h): loaded with it, replaced
 * by a reload only when the whole file is good. The lookups are pure.
 */
#ifndef TERN_ODMR_H
#define TERN_ODMR_H

#include <stdbool.h>
#include <stddef.h>

struct odmr_map;

struct odmr_map *odmr_map_new(void);
/* Load path: problems are printed as "FILE:LINE: message" and counted in
 * *bad. Returns an empty map for path "". */
struct odmr_map *odmr_map_load(const char *path, int *bad);
void odmr_map_free(struct odmr_map *m);

/* Add one line (comment removed, trimmed, not empty): the file's parser,
 * public for the tests and the fuzzer. Returns the problems (0 or 1),
 * each printed as "origin: message"; a bad line adds nothing. */
int odmr_map_line(struct odmr_map *m, char *line, const char *origin);

/* Domains listed. */
size_t odmr_map_count(const struct odmr_map *m);

/* May user dequeue domain? */
bool odmr_map_allows(const struct odmr_map *m, const char *user, const char *domain);

/* The domains user may dequeue (an ATRN without arguments, RFC 2645 4):
 * the first max of them into out (owned by the map), in the file's
 * order; returns how many there are in all. */
size_t odmr_map_domains(const struct odmr_map *m, const char *user, const char **out, size_t max);

#endif
