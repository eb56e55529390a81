/* report: step bookkeeping, text and JSON output, the exit status. */
#include "tools/probe/report.h"

#include <stdarg.h>
#include <string.h>
#include <time.h>

#include "lib/jsonw.h"

static const char *const report_names[] = { "pass", "warn", "FAIL", "skip", "info" };
static const char *const report_json_names[] = { "pass", "warn", "fail", "skip", "info" };

static long long report_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void report_init_cmd(struct report *r, FILE *out, bool json, bool verbose, const char *cmd,
		     const char *target)
{
	memset(r, 0, sizeof *r);
	r->out = out;
	r->json = json;
	r->verbose = verbose;
	r->graded = strcmp(cmd, "doctor") == 0;
	snprintf(r->target, sizeof r->target, "%s", target);
	if (!json)
		fprintf(out, "tern-probe %s %s\n\n", cmd, target);
}

void report_init(struct report *r, FILE *out, bool json, bool verbose, const char *target)
{
	report_init_cmd(r, out, json, verbose, "check", target);
}

void report_free(struct report *r)
{
	for (int i = 0; i < r->n; i++) {
		buf_free(&r->steps[i].verdict);
		buf_free(&r->steps[i].details);
		buf_free(&r->steps[i].transcript);
		buf_free(&r->steps[i].advice);
	}
}

struct report_step *report_begin(struct report *r, const char *name)
{
	if (r->n == REPORT_MAX_STEPS)
		r->n--;                 /* the last slot is reused; never reached */
	struct report_step *s = &r->steps[r->n++];
	memset(s, 0, sizeof *s);
	snprintf(s->name, sizeof s->name, "%s", name);
	s->started_ns = report_now_ns();
	r->cur = s;
	return s;
}

void report_detail(struct report_step *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(&s->details, fmt, ap);
	va_end(ap);
	buf_putc(&s->details, '\n');
}

void report_advice(struct report_step *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(&s->advice, fmt, ap);
	va_end(ap);
	buf_putc(&s->advice, '\n');
}

void report_trace(void *arg, char dir, const char *line)
{
	struct report *r = arg;
	if (!r->cur)
		return;
	const char *who = dir == '>' ? "C: " : dir == '<' ? "S: " : "   ";
	buf_printf(&r->cur->transcript, "%s%s\n", who, line);
}

static void report_indent(FILE *out, const struct buf *b, const char *prefix)
{
	const char *p = buf_cstr(b);
	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);
		fprintf(out, "%s%.*s\n", prefix, (int)n, p);
		p += n + (nl != NULL);
	}
}

static void report_print_step(struct report *r, const struct report_step *s)
{
	fprintf(r->out, "[%-4s] %-10s %8.1f ms  %s\n", report_names[s->status], s->name,
		s->ms, buf_cstr(&s->verdict));
	report_indent(r->out, &s->details, "                              ");
	report_indent(r->out, &s->advice, "                              fix: ");
	if (r->verbose)
		report_indent(r->out, &s->transcript, "         ");
	fflush(r->out);
}

void report_end(struct report *r, struct report_step *s, enum report_status st,
		const char *fmt, ...)
{
	va_list ap;
	s->status = st;
	s->ms = (double)(report_now_ns() - s->started_ns) / 1e6;
	va_start(ap, fmt);
	buf_vprintf(&s->verdict, fmt, ap);
	va_end(ap);
	if (!r->json)
		report_print_step(r, s);
	r->cur = NULL;
}

/* A '\n'-separated text as a JSON array of strings. */
static void report_json_lines(struct buf *out, const struct buf *b)
{
	const char *p = buf_cstr(b);
	buf_putc(out, '[');
	for (bool first = true; *p; first = false) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);
		struct buf line = BUF_INIT;
		buf_append(&line, p, n);
		buf_puts(out, first ? "" : ", ");
		jsonw_str(out, buf_cstr(&line));
		buf_free(&line);
		p += n + (nl != NULL);
	}
	buf_putc(out, ']');
}

static void report_json_step(struct buf *o, const struct report_step *s)
{
	buf_puts(o, "    {\"name\": ");
	jsonw_str(o, s->name);
	buf_printf(o, ", \"status\": \"%s\", \"ms\": %.3f, \"verdict\": ",
		   report_json_names[s->status], s->ms);
	jsonw_str(o, buf_cstr(&s->verdict));
	buf_puts(o, ", \"details\": ");
	report_json_lines(o, &s->details);
	buf_puts(o, ", \"advice\": ");
	report_json_lines(o, &s->advice);
	buf_puts(o, ", \"transcript\": ");
	report_json_lines(o, &s->transcript);
	buf_puts(o, "}");
}

static int report_exit(const struct report *r, int counts[5])
{
	memset(counts, 0, 5 * sizeof counts[0]);
	for (int i = 0; i < r->n; i++)
		counts[r->steps[i].status]++;
	if (r->graded)
		return r->unreachable ? 3 : counts[REPORT_FAIL] ? 2 : counts[REPORT_WARN] ? 1 : 0;
	if (r->unreachable)
		return 2;
	return counts[REPORT_FAIL] ? 1 : 0;
}

static const char *report_outcome(const struct report *r, int rc)
{
	if (r->graded)
		return rc == 0 ? "all checks passed" : rc == 1 ? "warnings" :
		       rc == 2 ? "problems found" : "could not run";
	return rc == 0 ? "all tests passed" : rc == 1 ? "a test failed" : "could not connect";
}

int report_finish(struct report *r)
{
	int c[5];
	int rc = report_exit(r, c);
	if (!r->json) {
		fprintf(r->out, "\nSummary: %d passed, %d warnings, %d failed, %d skipped: %s.\n",
			c[REPORT_PASS], c[REPORT_WARN], c[REPORT_FAIL], c[REPORT_SKIP],
			report_outcome(r, rc));
		return rc;
	}
	struct buf o = BUF_INIT;
	buf_puts(&o, "{\n  \"target\": ");
	jsonw_str(&o, r->target);
	buf_puts(&o, ",\n  \"steps\": [\n");
	for (int i = 0; i < r->n; i++) {
		report_json_step(&o, &r->steps[i]);
		buf_puts(&o, i + 1 < r->n ? ",\n" : "\n");
	}
	buf_printf(&o, "  ],\n  \"summary\": {\"passed\": %d, \"warnings\": %d, \"failed\": %d, "
		   "\"skipped\": %d, \"outcome\": \"%s\", \"exit\": %d}\n}\n",
		   c[REPORT_PASS], c[REPORT_WARN], c[REPORT_FAIL], c[REPORT_SKIP],
		   report_outcome(r, rc), rc);
	fputs(buf_cstr(&o), r->out);
	buf_free(&o);
	return rc;
}
