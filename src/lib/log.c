/* log: timestamped lines on stderr (see log.h), each rendered from an
 * event record (event.h). */
#include "lib/log.h"

#include "lib/buf.h"
#include "lib/event.h"
#include "lib/util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static enum log_level log_min = LOG_INFO;
static const char *const log_names[] = { "debug", "info", "warning", "error" };

void log_set_level(enum log_level l)
{
	log_min = l;
}

int log_level_parse(const char *s)
{
	for (int i = 0; i < 4; i++)
		if (strcmp(s, log_names[i]) == 0)
			return i;
	return -1;
}

bool log_enabled(enum log_level l)
{
	return l >= log_min;
}

static _Thread_local struct buf *log_problems;

void log_problems_collect(struct buf *into)
{
	log_problems = into;
}

void log_problem(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (log_problems) {
		buf_vprintf(log_problems, fmt, ap);
	} else {
		vfprintf(stderr, fmt, ap);
	}
	va_end(ap);
}

/* "2026-12-01T18:20:10.495Z ternd[6222]: info: " */
static size_t log_stamp(char *line, size_t n, enum log_level l)
{
	struct timeval tv;
	char when[UTIL_ISO_TIME_LEN + 1];
	gettimeofday(&tv, NULL);
	util_iso_time(&tv, when);
	int w = snprintf(line, n, "%s ternd[%d]: %s: ", when, (int)getpid(), log_names[l]);
	return w < 0 || (size_t)w >= n ? 0 : (size_t)w;
}

static void log_append(char *line, size_t n, size_t *len, const char *p, size_t k)
{
	if (*len + k > n)
		k = n - *len;
	memcpy(line + *len, p, k);
	*len += k;
}

/* The fields, "key=value, flag, ...": the transcript's "< line" and
 * "> line", and prose, as they are. */
static void log_fields(const struct ev *e, char *line, size_t n, size_t *len)
{
	for (size_t i = 0; i < e->n; i++) {
		const struct ev_field *f = &e->f[i];
		if (i)
			log_append(line, n, len, ", ", 2);
		if (e->kind != EK_NOTE && e->kind != EK_IN && e->kind != EK_OUT) {
			log_append(line, n, len, f->key, strlen(f->key));
			if (!f->flag)
				log_append(line, n, len, "=", 1);
		}
		log_append(line, n, len, e->text + f->off, f->len);
	}
}

/* The log writer, the events' first subscriber. One write(2) per line, so
 * lines from the spool and delivery threads never interleave. */
void log_event(void *ctx, const struct ev *e)
{
	(void)ctx;
	if (!log_enabled(e->level))
		return;
	char line[2048], pre[64];
	size_t n = sizeof line - 1, len = log_stamp(line, n, e->level);
	int w = e->qid[0] ? snprintf(pre, sizeof pre, "%s: ", e->qid)
	        : e->session ? snprintf(pre, sizeof pre, "session %llu: ", (unsigned long long)e->session)
	        : 0;
	log_append(line, n, &len, pre, w > 0 ? (size_t)w : 0);
	if (e->kind == EK_IN || e->kind == EK_OUT) {
		log_append(line, n, &len, e->kind == EK_IN ? "< " : "> ", 2);
	} else if (e->kind != EK_NOTE) {
		const char *name = ev_name(e->kind);
		log_append(line, n, &len, name, strlen(name));
		if (e->n)
			log_append(line, n, &len, ": ", 2);
	}
	log_fields(e, line, n, &len);
	if (e->qid[0] && e->session) {
		w = snprintf(pre, sizeof pre, ", session=%llu", (unsigned long long)e->session);
		log_append(line, n, &len, pre, w > 0 ? (size_t)w : 0);
	}
	line[len++] = '\n';
	ssize_t r = write(STDERR_FILENO, line, len);
	(void)r;
}

/* Prose, as an event of its own kind (EK_NOTE). */
static void log_vwrite(enum log_level l, const char *fmt, va_list ap)
{
	char text[EK_TEXT];
	vsnprintf(text, sizeof text, fmt, ap);
	ev_note(l, 0, NULL, "%s", text);
}

void log_msg(enum log_level l, const char *fmt, ...)
{
	if (!ev_wanted(l))
		return;
	va_list ap;
	va_start(ap, fmt);
	log_vwrite(l, fmt, ap);
	va_end(ap);
}

void log_fatal(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vwrite(LOG_ERROR, fmt, ap);
	va_end(ap);
	exit(2);
}

void log_panic(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vwrite(LOG_ERROR, fmt, ap);
	va_end(ap);
	abort();
}
