/* report: the steps of a check, their verdicts, and how they are printed.
 *
 * A step has a status, its duration, a verdict in plain words, detail lines
 * (extensions, certificate fields, MX hosts) and the exact lines sent and
 * received. Text output streams one step at a time (the transcript with
 * -v); JSON output is written once at the end. The exit status is derived
 * here: 0 all passed, 1 a test failed, 2 could not connect.
 */
#ifndef TERN_PROBE_REPORT_H
#define TERN_PROBE_REPORT_H

#include <stdbool.h>
#include <stdio.h>

#include "lib/buf.h"

#define REPORT_MAX_STEPS 128

enum report_status { REPORT_PASS, REPORT_WARN, REPORT_FAIL, REPORT_SKIP, REPORT_INFO };

struct report_step {
	char name[64];
	enum report_status status;
	double ms;
	struct buf verdict;
	struct buf details;      /* lines, '\n'-terminated */
	struct buf transcript;   /* "C: ..." / "S: ..." lines, '\n'-terminated */
	struct buf advice;       /* what to change (doctor), lines, '\n'-terminated */
	long long started_ns;
};

struct report {
	FILE *out;
	bool json, verbose;
	char target[300];
	struct report_step steps[REPORT_MAX_STEPS];
	int n;
	bool unreachable;        /* exit status 2 (doctor: 3, could not run) */
	bool graded;             /* doctor: exit 0 pass, 1 warnings, 2 failures */
	struct report_step *cur; /* the step the transcript goes to */
};

void report_init(struct report *r, FILE *out, bool json, bool verbose, const char *target);
/* The same for another command than "check": doctor's report is graded. */
void report_init_cmd(struct report *r, FILE *out, bool json, bool verbose, const char *cmd,
		     const char *target);
void report_free(struct report *r);
struct report_step *report_begin(struct report *r, const char *name);
void report_end(struct report *r, struct report_step *s, enum report_status st,
		const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void report_detail(struct report_step *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* A line of advice: what to change, the record to publish. */
void report_advice(struct report_step *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* An smtpc trace callback: arg is the struct report. */
void report_trace(void *arg, char dir, const char *line);
/* The summary (text) or the whole document (JSON); returns the exit status. */
int report_finish(struct report *r);

#endif
