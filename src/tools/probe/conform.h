/* conform: "tern-probe conform", the dialogue files of conform/ run
 * against a server, one connection each.
 *
 * First a look at the server (greeting, EHLO, with --tls STARTTLS and
 * EHLO again) for the keywords its dialogues may require; then each
 * dialogue (dialog.h): skipped when the server lacks (or has) what it
 * requires, else run step by step until a reply differs from the
 * pattern, which fails it with the RFC section of that step. One line
 * per dialogue and a summary, or a JSON document; the exit status is 0
 * all passed (or skipped), 1 one failed, 2 bad usage or dialogue files,
 * 3 could not connect.
 */
#ifndef TERN_PROBE_CONFORM_H
#define TERN_PROBE_CONFORM_H

#include <stdbool.h>

#define CONFORM_MAX_ONLY 64

struct conform_opts {
	const char *target, *resolver, *dir, *helo, *from, *to, *cafile, *tls_name;
	const char *only[CONFORM_MAX_ONLY];
	int nonly;
	int port, timeout_ms;
	bool tls, json, verbose;
};

int conform_run(const struct conform_opts *o);

#endif
