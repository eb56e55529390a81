/* faults: the test mode's fault rules as the server holds them (issue 18).
 *
 * Two sets are in force: the runtime set, held here beside the server
 * (struct server's faults) and replaced through this interface (the HTTP
 * API's), checked first; then the configured one, fault_rules, read with
 * each generation of the settings (a reload rereads it). A session sees
 * the configured set of its own generation and the runtime set of the
 * moment it asks; one that began with neither set holding a rule sees
 * none to its end (it keeps no state for them: the cost of the test mode
 * off is a NULL check). The session side (asking the rules at each stage and
 * carrying out what they say) is in faults.c, behind session_priv.h.
 */
#ifndef TERN_FAULTS_H
#define TERN_FAULTS_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/buf.h"

struct server;

/* Replace the runtime rules with text's (one rule a line, named
 * "runtime:N"). false: err holds the first bad line's "runtime:N:
 * problem" and nothing changed. An empty text clears them. */
bool faults_replace(struct server *srv, const char *text, char *err, size_t errlen);

/* The rules in force as text, one a line as written: the runtime ones
 * under "# runtime", then the configured ones under "# fault_rules FILE".
 * Each section is parseable again as it is. */
void faults_text(const struct server *srv, struct buf *out);

/* Drop the runtime rules (the configured ones stay). */
void faults_clear(struct server *srv);

/* Free what the server holds for the rules: the runtime set, the
 * greylist and the rate counters (session_free_all calls it). */
void faults_free(struct server *srv);

#endif
