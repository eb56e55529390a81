/* submit: a message from standard input into the maildrop; see submit.h.
 *
 * Lines: LF or CRLF, either, one at a time (message_line); at most
 * max_line_length octets of text, no NUL, no CR but before the LF (RFC
 * 5322 2.1.1, 2.3): anything else is refused (EX_DATAERR) as ternd
 * refuses it over SMTP, and nothing is left behind. A leading mbox
 * "From " line is skipped. Without -i a line holding only "." ends the
 * message (sendmail(8)). The header section ends at an empty line, or at
 * a line that is not a field (an empty line is put before it). With -t
 * the recipients of To, Cc and Bcc are added to those of the command
 * line (as Postfix does); Bcc is removed in every case (RFC 5322 3.6.3).
 * From, Date and Message-ID are added when missing (RFC 5322 3.6).
 * Addresses without a domain get "@hostname".
 *
 * The file: made as ".tmp.PID.RANDOM" in the maildrop (O_EXCL, mode
 * 0644), the envelope written first, then the message streamed through
 * dot-stuffing (net/smtp.c) and the final dot, fsynced, renamed to
 * "SECONDS.PID.RANDOM", then fsynced again: the rename changes the file's
 * ctime, so on a journalling file system that fsync commits the rename
 * with it; the directory itself is fsynced too where it can be read
 * (root, or run_user), not by the group, which may not list it. A signal
 * or an error removes the temporary file.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/util.h"
#include "net/maildrop.h"
#include "net/smtp.h"
#include "tools/sendmail/message.h"
#include "tools/sendmail/submit.h"

#define SUBMIT_FLUSH (64 * 1024)

struct submit {
	const struct args *a;
	const struct conf *c;
	gid_t drop_gid;
	unsigned long uid;
	char user[MAILDROP_USER_MAX + 1];
	char sender[MESSAGE_ADDR_MAX + 1];   /* "" for the null sender */
	char **rcpt;
	size_t nrcpt, cap;
	int rc;                              /* the first problem's exit code */
	/* input */
	char *in;
	size_t in_cap, start, end;
	bool eof;
	unsigned long lineno;
	/* output */
	char dir[PATH_MAX];
	int fd;
	struct buf out;
	struct smtp_stuff st;
	uint64_t size;
};

/* For the signal handler: the temporary file, while there is one. */
static char submit_tmp[PATH_MAX + 64];

static int submit_fail(struct submit *s, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int submit_fail(struct submit *s, int code, const char *fmt, ...)
{
	if (s->rc)
		return s->rc;   /* the first problem is the one reported */
	va_list ap;
	va_start(ap, fmt);
	fputs("tern-sendmail: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	return s->rc = code;
}

static void submit_signal(int sig)
{
	(void)sig;
	if (submit_tmp[0])
		unlink(submit_tmp);
	_exit(EX_TEMPFAIL);
}

/* ---- who and to whom ---- */

static void submit_who(struct submit *s)
{
	s->uid = (unsigned long)getuid();
	struct passwd *pw = getpwuid(getuid());
	const char *name = pw ? pw->pw_name : "unknown";
	bool ok = strlen(name) <= MAILDROP_USER_MAX;
	for (const char *p = name; ok && *p; p++)
		ok = *p > 32 && *p < 127;
	snprintf(s->user, sizeof s->user, "%s", ok && *name ? name : "unknown");
}

/* addr, with "@hostname" when it has no domain, as an RFC 5321 path's
 * mailbox into out; false (and the reason) when it is none. */
static bool submit_qualify(struct submit *s, const char *addr, bool null_ok, char *out,
                           const char **why)
{
	char path[2 * MESSAGE_ADDR_MAX + 8];
	snprintf(path, sizeof path, "<%s%s%s>", addr, strchr(addr, '@') || !*addr ? "" : "@",
	         strchr(addr, '@') || !*addr ? "" : s->c->hostname);
	struct addr a;
	const char *end;
	enum addr_err e = addr_parse_path(path, &end, &a, null_ok, true);
	*why = e ? addr_strerror(e) : "text after the address";
	return e == ADDR_OK && *end == '\0' && addr_format(&a, out, MESSAGE_ADDR_MAX + 1);
}

static void submit_rcpt(void *ctx, const char *addr)
{
	struct submit *s = ctx;
	char q[MESSAGE_ADDR_MAX + 1];
	const char *why;
	if (!submit_qualify(s, addr, false, q, &why)) {
		submit_fail(s, EX_NOUSER, "%s: not a recipient address (%s)", addr, why);
		return;
	}
	for (size_t i = 0; i < s->nrcpt; i++)
		if (!strcasecmp(s->rcpt[i], q))
			return;
	if (s->nrcpt == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 8;
		s->rcpt = util_xrealloc(s->rcpt, s->cap, sizeof *s->rcpt);
	}
	s->rcpt[s->nrcpt++] = util_xstrdup(q);
}

static void submit_sender_one(void *ctx, const char *addr)
{
	struct submit *s = ctx;
	const char *why;
	if (!submit_qualify(s, addr, true, s->sender, &why))
		submit_fail(s, EX_USAGE, "-f %s: not a sender address (%s)", addr, why);
}

/* -f: one address, or none ("", "<>") for the null sender; else the user
 * at hostname. */
static int submit_sender(struct submit *s)
{
	const char *f = s->a->sender;
	if (!f) {
		snprintf(s->sender, sizeof s->sender, "%s@%s", s->user, s->c->hostname);
		return 0;
	}
	int n = message_addrs(f, strlen(f), submit_sender_one, s);
	if (n > 1 || n < 0)
		return submit_fail(s, EX_USAGE, "-f %s: expected one address", f);
	return s->rc;
}

/* The command line's recipients, each an address list; with -t those of
 * To, Cc and Bcc; then the limits. */
static int submit_rcpts(struct submit *s, const struct buf *hdr)
{
	for (int i = 0; i < s->a->nrcpt; i++) {
		const char *w = s->a->rcpt[i];
		if (message_addrs(w, strlen(w), submit_rcpt, s) < 0)
			submit_fail(s, EX_NOUSER, "%s: not an address list", w);
	}
	if (s->a->extract && message_rcpts(hdr->data, hdr->len, submit_rcpt, s) < 0)
		submit_fail(s, EX_DATAERR, "-t: a To, Cc or Bcc field is not an address list");
	if (s->rc)
		return s->rc;
	if (s->nrcpt == 0)
		return submit_fail(s, EX_USAGE, "no recipients%s",
		                   s->a->extract ? " (none given, none in To, Cc or Bcc)" :
		                   " (give them, or -t to take them from the message)");
	if (s->nrcpt > s->c->max_recipients)
		return submit_fail(s, EX_USAGE, "%zu recipients: more than max_recipients (%u)",
		                   s->nrcpt, s->c->max_recipients);
	return 0;
}

/* ---- input ---- */

static int submit_too_long(struct submit *s, unsigned long line)
{
	return submit_fail(s, EX_DATAERR, "line %lu is longer than %u octets (max_line_length, "
	                   "RFC 5322 2.1.1)", line, s->c->max_line_length);
}

/* The next line (without its end) in *p, *n: 1, or 0 at the end of input,
 * or -1 after a problem (reported). */
static int submit_line(struct submit *s, const char **p, size_t *n)
{
	for (;;) {   /* until a line, the end, or a problem */
		const char *b = s->in + s->start;
		size_t have = s->end - s->start;
		const char *lf = memchr(b, '\n', have);
		size_t len = lf ? (size_t)(lf - b) + 1 : have;
		if (lf || (s->eof && have)) {
			s->start += len;
			s->lineno++;
			enum message_line r = message_line(b, &len);
			if (r == MESSAGE_LINE_NUL || r == MESSAGE_LINE_CR)
				return submit_fail(s, EX_DATAERR, "line %lu: %s; binary data is not mail",
				                   s->lineno, r == MESSAGE_LINE_NUL ? "a NUL octet" :
				                   "a CR that does not end the line"), -1;
			if (len > s->c->max_line_length)
				return submit_too_long(s, s->lineno), -1;
			*p = b;
			*n = len;
			return 1;
		}
		if (s->eof)
			return 0;
		if (have >= s->in_cap - 1)
			return submit_too_long(s, s->lineno + 1), -1;
		memmove(s->in, b, have);
		s->start = 0;
		s->end = have;
		ssize_t r = read(0, s->in + s->end, s->in_cap - s->end);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return submit_fail(s, EX_IOERR, "reading the message: %s", strerror(errno)), -1;
		s->eof = r == 0;
		s->end += (size_t)r;
	}
	return submit_too_long(s, s->lineno + 1), -1;
}

/* Does this line end the message (a lone dot, without -i)? */
static bool submit_dot(const struct submit *s, const char *p, size_t n)
{
	return !s->a->dots && n == 1 && p[0] == '.';
}

/* The header section into hdr (CRLF lines). Returns 1 with the first body
 * line in *p, *n (the empty line before it eaten), 0 at the end of the
 * message, -1 after a problem. */
static int submit_headers(struct submit *s, struct buf *hdr, const char **p, size_t *n)
{
	int r = submit_line(s, p, n);
	if (r == 1 && message_mbox_from(*p, *n))
		r = submit_line(s, p, n);
	for (; r == 1; r = submit_line(s, p, n)) {
		enum message_kind k = message_kind(*p, *n);
		if (submit_dot(s, *p, *n))
			return 0;
		if (*n == 0)
			return submit_line(s, p, n);
		if (k == MESSAGE_OTHER || (k == MESSAGE_FOLD && hdr->len == 0))
			return 1;
		if (hdr->len + *n + 2 > s->c->max_message_size)
			return submit_fail(s, EX_DATAERR, "the header section is larger than "
			                   "max_message_size"), -1;
		buf_append(hdr, *p, *n);
		buf_puts(hdr, "\r\n");
	}
	return r;
}

/* From, Date and Message-ID when the message has none (RFC 5322 3.6). */
static void submit_add_headers(struct submit *s, struct buf *hdr)
{
	if (!message_has(hdr->data, hdr->len, "From")) {
		const char *from = *s->sender ? s->sender : "";
		char self[MESSAGE_ADDR_MAX + 1];
		if (!*from) {
			snprintf(self, sizeof self, "%s@%s", s->user, s->c->hostname);
			from = self;
		}
		const char *name = s->a->fullname;
		if (name && *name) {   /* a quoted-string display name, RFC 5322 3.2.4 */
			buf_puts(hdr, "From: \"");
			for (const char *c = name; *c; c++) {
				if (*c == '"' || *c == '\\')
					buf_putc(hdr, '\\');
				if (*c != '\r' && *c != '\n')
					buf_putc(hdr, *c);
			}
			buf_printf(hdr, "\" <%s>\r\n", from);
		} else {
			buf_printf(hdr, "From: %s\r\n", from);
		}
	}
	if (!message_has(hdr->data, hdr->len, "Date")) {
		char date[64];
		util_rfc5322_date(time(NULL), date, sizeof date);
		buf_printf(hdr, "Date: %s\r\n", date);
	}
	if (!message_has(hdr->data, hdr->len, "Message-ID")) {
		char id[UTIL_QID_LEN + 1];
		util_qid(id);
		buf_printf(hdr, "Message-ID: <%lld.%s@%s>\r\n", (long long)time(NULL), id,
		           s->c->hostname);
	}
}

/* ---- output ---- */

static int submit_write_error(struct submit *s, const char *what)
{
	int e = errno;
	return submit_fail(s, e == ENOSPC || e == EDQUOT ? EX_TEMPFAIL : EX_CANTCREAT,
	                   "%s %s: %s", what, s->dir, strerror(e));
}

static int submit_flush(struct submit *s)
{
	if (s->out.len && !util_write_all(s->fd, s->out.data, s->out.len))
		return submit_write_error(s, "writing in");
	buf_reset(&s->out);
	return 0;
}

static void submit_sink(void *arg, const char *p, size_t n)
{
	struct submit *s = arg;
	buf_append(&s->out, p, n);
}

/* Message text, counted against max_message_size, dot-stuffed out. */
static int submit_text(struct submit *s, const char *p, size_t n)
{
	s->size += n;
	if (s->c->max_message_size && s->size > s->c->max_message_size)
		return submit_fail(s, EX_DATAERR, "the message is larger than max_message_size "
		                   "(%llu octets)", (unsigned long long)s->c->max_message_size);
	smtp_stuff(&s->st, p, n, submit_sink, s);
	return s->out.len >= SUBMIT_FLUSH ? submit_flush(s) : 0;
}

/* The first line and the envelope (net/maildrop.h). */
static void submit_envelope(struct submit *s)
{
	const struct args *a = s->a;
	buf_printf(&s->out, "%s %d uid=%lu user=%s\r\n", MAILDROP_MAGIC, MAILDROP_VERSION, s->uid,
	           s->user);
	struct smtp_ext ext;
	memset(&ext, 0, sizeof ext);
	ext.dsn = ext.eightbitmime = true;
	struct smtp_mail m = { s->sender, 0, a->body, a->ret, a->envid, false, false };
	smtp_mail_line(&m, &ext, &s->out);
	buf_puts(&s->out, "\r\n");
	for (size_t i = 0; i < s->nrcpt; i++) {
		struct smtp_rcpt r = { s->rcpt[i], a->notify, NULL };
		smtp_rcpt_line(&r, &ext, &s->out);
		buf_puts(&s->out, "\r\n");
	}
	buf_puts(&s->out, "DATA\r\n");
}

/* A fresh name in the maildrop: PREFIX SECONDS.PID.RANDOM. */
static void submit_name(const struct submit *s, const char *prefix, char *out, size_t n)
{
	unsigned long long r = 0;
	if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
		r ^= (unsigned long long)util_now_ms() * 0x9E3779B97F4A7C15ull;
	snprintf(out, n, "%s/%s%lld.%d.%016llx", s->dir, prefix, (long long)time(NULL),
	         (int)getpid(), r);
}

/* Create the temporary file, as the maildrop's group. */
static int submit_open(struct submit *s)
{
	snprintf(s->dir, sizeof s->dir, "%s/%s", s->c->spool_dir, MAILDROP_DIR);
	if (geteuid() == 0 && access(s->dir, F_OK) != 0 &&   /* before ternd's first start */
	    util_mkdir_p(s->dir, 0700))
		chmod(s->dir, MAILDROP_MODE);
	submit_name(s, MAILDROP_TMP_PREFIX, submit_tmp, sizeof submit_tmp);
	umask(022);
	s->fd = open(submit_tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	             MAILDROP_FILE_MODE);
	if (s->fd >= 0)
		return 0;
	submit_tmp[0] = '\0';
	if (errno == EACCES || errno == EPERM)
		return submit_fail(s, EX_CANTCREAT, "cannot write in %s: %s (tern-sendmail must be "
		                   "installed setgid %s: make install)", s->dir, strerror(EACCES),
		                   s->c->maildrop_group);
	if (errno == ENOENT)
		return submit_fail(s, EX_CANTCREAT, "%s does not exist: ternd makes it when it "
		                   "starts", s->dir);
	return submit_write_error(s, "cannot create a file in");
}

/* fsync, rename to the final name, fsync again (see the top). */
static int submit_close(struct submit *s)
{
	char final[sizeof submit_tmp];
	submit_name(s, "", final, sizeof final);
	if (submit_flush(s) || fchmod(s->fd, MAILDROP_FILE_MODE) != 0 || fsync(s->fd) != 0)
		return submit_write_error(s, "writing in");
	int moved = renameat2(AT_FDCWD, submit_tmp, AT_FDCWD, final, RENAME_NOREPLACE);
	if (moved != 0 && errno == EINVAL)   /* a file system without it: names are random */
		moved = rename(submit_tmp, final);
	if (moved != 0)
		return submit_write_error(s, "cannot rename a file in");
	submit_tmp[0] = '\0';
	if (fsync(s->fd) != 0)
		return submit_write_error(s, "writing in");
	util_fsync_dir(s->dir);   /* where it may: see the top */
	if (s->a->verbose)
		fprintf(stderr, "tern-sendmail: left %s for %zu recipient%s\n", final, s->nrcpt,
		        s->nrcpt == 1 ? "" : "s");
	return 0;
}

/* The whole message: headers, the line that ended them, the rest. */
static int submit_message(struct submit *s, struct buf *hdr, const char *p, size_t n, int r)
{
	if (submit_open(s))
		return s->rc;
	submit_envelope(s);
	if (submit_text(s, hdr->data, hdr->len) || submit_text(s, "\r\n", 2))
		return s->rc;
	for (; r == 1 && !submit_dot(s, p, n); r = submit_line(s, &p, &n))
		if (submit_text(s, p, n) || submit_text(s, "\r\n", 2))
			return s->rc;
	if (r < 0)
		return s->rc;
	smtp_stuff_end(&s->st, submit_sink, s);
	return submit_close(s);
}

static void submit_free(struct submit *s)
{
	if (submit_tmp[0])
		unlink(submit_tmp);
	submit_tmp[0] = '\0';
	if (s->fd >= 0)
		close(s->fd);
	for (size_t i = 0; i < s->nrcpt; i++)
		free(s->rcpt[i]);
	free(s->rcpt);
	free(s->in);
	buf_free(&s->out);
}

int submit_run(const struct args *a, const struct conf *c, gid_t drop_gid)
{
	struct submit s = { .a = a, .c = c, .drop_gid = drop_gid, .fd = -1 };
	s.in_cap = (size_t)c->max_line_length + 3;   /* the text, CR, LF, one more */
	s.in = util_xcalloc(1, s.in_cap);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = submit_signal;
	int sigs[] = { SIGINT, SIGTERM, SIGHUP };
	for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
		sigaction(sigs[i], &sa, NULL);
	submit_who(&s);
	struct buf hdr = BUF_INIT;
	const char *p = NULL;
	size_t n = 0;
	int r = 0;
	if (!submit_sender(&s))
		r = submit_headers(&s, &hdr, &p, &n);
	if (r >= 0 && !s.rc && !submit_rcpts(&s, &hdr)) {
		hdr.len = message_drop(hdr.data, hdr.len, "Bcc");
		submit_add_headers(&s, &hdr);
		if (setegid(drop_gid) != 0)
			submit_fail(&s, EX_OSERR, "setegid: %s", strerror(errno));
		else
			submit_message(&s, &hdr, p, n, r);
	}
	buf_free(&hdr);
	submit_free(&s);
	return s.rc;
}
