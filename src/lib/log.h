/* log: one line per event, with a level, to stderr (with a timestamp),
 * syslog or the systemd journal (log_target).
 *
 * Every line is an event record (event.h) rendered by log_event; log_info
 * and the others make prose records (EK_NOTE). Lines about a message start
 * with its queue id ("4F2A...: queued: from=<...>"), so that grepping the
 * id gives the message's whole life. In the journal the record's queue id,
 * session and fields are fields of the entry too (QUEUE_ID=, SESSION=,
 * TERN_<KEY>=), so that `journalctl QUEUE_ID=4F2A...` gives the same.
 */
#ifndef TERN_LOG_H
#define TERN_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/uio.h>

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

/* Where lines go: stderr ("2026-12-01T18:20:10.495Z ternd[6222]: info:
 * TEXT"); syslog(3), facility mail, ident ternd ("info: TEXT"); or the
 * systemd journal (MESSAGE=TEXT, PRIORITY= and the fields). */
enum log_target { LOG_TO_STDERR, LOG_TO_SYSLOG, LOG_TO_JOURNAL };

/* "stderr", "syslog", "journal"; returns -1 when unknown. */
int log_target_parse(const char *s);
/* Send every later line to t (syslog: openlog now). At start-up, before
 * other threads log. With no journal to write to, the lines stay on stderr
 * and the first says so. */
void log_open(enum log_target t);
/* Back to stderr (syslog: closelog). */
void log_close(void);

struct ev;
/* The log writer: renders an event record as one line to the target (the
 * first subscriber of event.h, always there). A line the journal refuses
 * goes to stderr. */
void log_event(void *ctx, const struct ev *e);

/* A problem with the configuration or a file it names, "FILE:LINE:
 * message": a line on stderr; while this thread collects (a reload), a line
 * of into instead (log_problems_collect(NULL) stops collecting). */
void log_problem(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
struct buf;
void log_problems_collect(struct buf *into);

/* A record's journal entry, as sd_journal_sendv(3) takes it: MESSAGE=,
 * PRIORITY=, SYSLOG_IDENTIFIER=ternd, SYSLOG_FACILITY=2 (mail), then
 * TERN_EVENT=kind, QUEUE_ID=, SESSION= where the record has them, and each
 * field as TERN_<KEY>=value (the key upper-cased, other characters '_'; a
 * flag is "1"; prose has MESSAGE alone). Fields that do not fit are left
 * out. Public for the unit tests. */
#define LOG_JOURNAL_MAX 32
struct log_journal {
	size_t n;
	struct iovec iov[LOG_JOURNAL_MAX];
	size_t used;
	char buf[6144];
};
void log_journal_build(const struct ev *e, struct log_journal *j);

/* A bad environment: log and exit(2). */
void log_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* A bug or a broken invariant (memory exhausted included): say what
 * broke, then abort() for a core dump. */
void log_panic(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
