/* aliases: the aliases file, `address: target, target` per line.
 *
 * A key is a full address ("sales@example.com") or a bare local part
 * ("sales", for every local domain). A target is a full address, or a bare
 * local part meaning the same domain as the recipient being expanded.
 * Keys are case-insensitive.
 */
#ifndef TERN_ALIASES_H
#define TERN_ALIASES_H

#include <stddef.h>

struct aliases;

/* Load path; problems are printed as "FILE:LINE: message" and counted in
 * *bad. Returns an empty table for path "". */
struct aliases *aliases_load(const char *path, int *bad);
void aliases_free(struct aliases *a);

/* Targets for local@domain (domain lower-case): tries the full address,
 * then the bare local part. Returns the number of targets and sets *targets
 * (owned by the table), or 0 when the address is not an alias. */
size_t aliases_lookup(const struct aliases *a, const char *local,
                      const char *domain, char *const **targets);

#endif
