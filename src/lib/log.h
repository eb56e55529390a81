/* log: one line per event on stderr, with a timestamp and a level.
 *
 * Every line is an event record (event.h) rendered by log_event; log_info
 * and the others make prose records (EK_NOTE). Lines about a message start
 * with its queue id ("4F2A...: queued: from=<...>"), so that grepping the
 * id gives the message's whole life.
 */
#ifndef TERN_LOG_H
#define TERN_LOG_H

#include <stdbool.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERROR };

void log_set_level(enum log_level l);
bool log_enabled(enum log_level l);
/* "debug", "info", "warning", "error"; returns -1 when unknown. */
int log_level_parse(const char *s);

void log_msg(enum log_level l, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

struct ev;
/* The log writer: renders an event record as one line on stderr (the
 * first subscriber of event.h, always there). */
void log_event(void *ctx, const struct ev *e);

/* A problem with the configuration or a file it names, "FILE:LINE:
 * message": a line on stderr; while this thread collects (a reload), a line
 * of into instead (log_problems_collect(NULL) stops collecting). */
void log_problem(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
struct buf;
void log_problems_collect(struct buf *into);

/* A bad environment: log and exit(2). */
void log_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* A bug or a broken invariant (memory exhausted included): say what
 * broke, then abort() for a core dump. */
void log_panic(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
