/* log: lines rendered from event records (event.h), written to stderr,
 * syslog or the journal (see log.h). */
#include "lib/log.h"

#include "lib/buf.h"
#include "lib/event.h"
#include "lib/util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <syslog.h>
#include <systemd/sd-journal.h>

/* syslog.h names its priorities as log.h names its levels: keep syslog's
 * numbers, by level, and give the names back to log.h. */
static const int log_prio[] = { LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR };
#undef LOG_DEBUG
#undef LOG_INFO
#undef LOG_WARNING

static enum log_level log_min = LOG_INFO;
static enum log_target log_to = LOG_TO_STDERR;
static const char *const log_names[] = { "debug", "info", "warning", "error" };
static const char *const log_targets[] = { "stderr", "syslog", "journal" };

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

int log_target_parse(const char *s)
{
	for (int i = 0; i < 3; i++)
		if (strcmp(s, log_targets[i]) == 0)
			return i;
	return -1;
}

/* sd_journal_sendv(3) drops an entry silently when there is no journal:
 * look for journald's socket once, at start-up. */
#define LOG_JOURNAL_SOCKET "/run/systemd/journal/socket"

void log_open(enum log_target t)
{
	struct stat st;
	if (t == LOG_TO_JOURNAL && (stat(LOG_JOURNAL_SOCKET, &st) != 0 || !S_ISSOCK(st.st_mode))) {
		log_warn("log_target = journal: no journal (%s is not there); logging to stderr",
		         LOG_JOURNAL_SOCKET);
		return;
	}
	if (t == LOG_TO_SYSLOG)
		openlog("ternd", LOG_PID | LOG_NDELAY, LOG_MAIL);
	log_to = t;
}

void log_close(void)
{
	if (log_to == LOG_TO_SYSLOG)
		closelog();
	log_to = LOG_TO_STDERR;
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

/* The line without time and level: "QID: kind: k=v, ..., session=N",
 * "session N: kind: ...", or prose. Returns its length (at most n). */
static size_t log_render(const struct ev *e, char *line, size_t n)
{
	char pre[64];
	size_t len = 0;
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
	return len;
}

/* One write(2) per line, so that lines from the spool and delivery
 * threads never interleave. */
static void log_stderr(enum log_level l, const char *text, size_t tlen)
{
	char line[2048 + 64];
	size_t n = sizeof line - 1, len = log_stamp(line, n, l);
	log_append(line, n, &len, text, tlen);
	line[len++] = '\n';
	ssize_t r = write(STDERR_FILENO, line, len);
	(void)r;
}

/* Appends "name" and value to j->buf as one more field, when both fit. */
static void log_jfield(struct log_journal *j, const char *name, const char *v, size_t vlen)
{
	size_t k = strlen(name);
	if (j->n == LOG_JOURNAL_MAX || j->used + k + vlen > sizeof j->buf)
		return;
	char *p = j->buf + j->used;
	memcpy(p, name, k);
	memcpy(p + k, v, vlen);
	j->iov[j->n].iov_base = p;
	j->iov[j->n++].iov_len = k + vlen;
	j->used += k + vlen;
}

/* TERN_<KEY>= from a field's key: upper case, digits kept, the rest '_';
 * journald takes names of up to 64 characters. */
static void log_jname(const char *key, char *name, size_t n)
{
	size_t len = (size_t)snprintf(name, n, "TERN_");
	for (; *key && len + 2 < n && len < 64; key++) {
		char c = *key;
		name[len++] = c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A')
		              : (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ? c : '_';
	}
	name[len++] = '=';
	name[len] = '\0';
}

/* The record's own fields (none for prose: its text is the MESSAGE). */
static void log_jrecord(const struct ev *e, struct log_journal *j)
{
	char name[80], num[32];
	if (e->kind != EK_NOTE) {
		const char *kind = ev_name(e->kind);
		log_jfield(j, "TERN_EVENT=", kind, strlen(kind));
	}
	if (e->qid[0])
		log_jfield(j, "QUEUE_ID=", e->qid, strlen(e->qid));
	if (e->session) {
		int w = snprintf(num, sizeof num, "%llu", (unsigned long long)e->session);
		log_jfield(j, "SESSION=", num, (size_t)w);
	}
	for (size_t i = 0; e->kind != EK_NOTE && i < e->n; i++) {
		const struct ev_field *f = &e->f[i];
		log_jname(f->key, name, sizeof name);
		if (f->flag)
			log_jfield(j, name, "1", 1);
		else
			log_jfield(j, name, e->text + f->off, f->len);
	}
}

/* MESSAGE, PRIORITY, SYSLOG_IDENTIFIER, SYSLOG_FACILITY, TERN_EVENT,
 * QUEUE_ID, SESSION, and a slot for every field of a record. */
_Static_assert(7 + EK_FIELDS <= LOG_JOURNAL_MAX, "LOG_JOURNAL_MAX below a full record");

void log_journal_build(const struct ev *e, struct log_journal *j)
{
	char text[2048], prio[4];
	size_t len = log_render(e, text, sizeof text);
	j->n = 0;
	j->used = 0;
	log_jfield(j, "MESSAGE=", text, len);
	prio[0] = (char)('0' + log_prio[e->level]);
	log_jfield(j, "PRIORITY=", prio, 1);
	log_jfield(j, "SYSLOG_IDENTIFIER=", "ternd", 5);
	log_jfield(j, "SYSLOG_FACILITY=", "2", 1);
	log_jrecord(e, j);
}

/* The journal, or stderr when it refuses the entry. */
static void log_journal(const struct ev *e)
{
	struct log_journal j;
	log_journal_build(e, &j);
	if (sd_journal_sendv(j.iov, (int)j.n) >= 0)
		return;
	char text[2048];
	log_stderr(e->level, text, log_render(e, text, sizeof text));
}

/* The log writer, the events' first subscriber. */
void log_event(void *ctx, const struct ev *e)
{
	(void)ctx;
	if (!log_enabled(e->level))
		return;
	if (log_to == LOG_TO_JOURNAL) {
		log_journal(e);
		return;
	}
	char text[2048];
	size_t len = log_render(e, text, sizeof text);
	if (log_to == LOG_TO_SYSLOG)
		syslog(LOG_MAIL | log_prio[e->level], "%s: %.*s", log_names[e->level], (int)len, text);
	else
		log_stderr(e->level, text, len);
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
	if (!ev_wanted(EK_NOTE, l))
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
