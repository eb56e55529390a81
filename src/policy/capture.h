/* capture: which mail the test mode captures, and into which inbox.
 *
 * `capture = yes` captures every message, a listener with the `capture`
 * mode every message it receives, and `capture_rules` names inboxes:
 * each line is "INBOX condition..." where the conditions (all must hold)
 * are rcpt=GLOB, from=GLOB, user=GLOB (the AUTH user) and
 * listener=ADDR:PORT (where the client connected). A recipient goes into
 * the inbox of the first line whose conditions hold; with capture on and
 * no line for it, into "default"; with capture off and no line, it is
 * delivered as usual. A line "INBOX keep=N age=DURATION" (no conditions)
 * sets that inbox's retention instead of capture_keep and capture_max_age
 * (0: no limit). Globs are fnmatch(3) patterns, case-insensitive.
 * Pure: a table test and a fuzzer cover it.
 */
#ifndef TERN_CAPTURE_H
#define TERN_CAPTURE_H

#include <stdbool.h>
#include <stddef.h>

#define CAPTURE_INBOX_MAX 64
#define CAPTURE_DEFAULT "default"

struct capture_rules;

/* What a recipient is judged on (NULL fields: unknown, never match). */
struct capture_facts {
	const char *rcpt;       /* "local@domain" */
	const char *from;       /* MAIL's address, "" for the null sender */
	const char *user;       /* the AUTH user, NULL when not authenticated */
	const char *listener;   /* "127.0.0.1:2525", "[::1]:2525" */
};

/* Load a rules file; problems printed as FILE:LINE and counted in *bad.
 * path "" gives no rules. */
struct capture_rules *capture_rules_load(const char *path, int *bad);
void capture_rules_free(struct capture_rules *r);
/* Parse one line (comments and blanks skipped); 0, or 1 after printing
 * origin: the problem. For tests and the fuzzer. */
struct capture_rules *capture_rules_new(void);
int capture_rules_line(struct capture_rules *r, const char *line, const char *origin);

/* The inbox of a recipient, or NULL (not captured). all: capture is on
 * for this session (capture = yes, a capture listener). The name is
 * owned by r (or static). */
const char *capture_inbox(const struct capture_rules *r, const struct capture_facts *f, bool all);

/* An inbox's retention: the rules' line for it, else the defaults given. */
void capture_retention(const struct capture_rules *r, const char *inbox, unsigned def_keep,
                       unsigned def_age, unsigned *keep, unsigned *age);

/* Does a line set a limit (keep= or age= other than 0)? */
bool capture_rules_retain(const struct capture_rules *r);

/* Does any line name inboxes (so that some mail may be captured)? */
bool capture_rules_any(const struct capture_rules *r);

/* The inboxes the rules name, in order of first mention (at most max). */
size_t capture_rules_inboxes(const struct capture_rules *r, const char **out, size_t max);

/* Is name a valid inbox name: 1 to 64 of [A-Za-z0-9._-]? */
bool capture_inbox_valid(const char *name);

#endif
