/* console: the interactive session (see console.h). */
#include "tools/probe/console.h"

#include <ctype.h>
#include <errno.h>
#include <histedit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <termios.h>
#include <unistd.h>

#include "lib/buf.h"
#include "net/smtp.h"
#include "tools/probe/conn.h"
#include "tools/probe/explain.h"
#include "tools/probe/mx.h"

#define CONSOLE_HELP \
"Type SMTP commands; CRLF is sent for you. Helpers:\n" \
"  .starttls             upgrade the connection to TLS (then EHLO again)\n" \
"  .auth login USER      log in; the password is asked for without echo\n" \
"  .auth plain USER      the same with AUTH PLAIN\n" \
"  .data FILE            DATA, the file dot-stuffed, and the final dot\n" \
"  .log FILE             write the session to FILE (.log alone: stop)\n" \
"  .explain CODE [ESC]   what a reply code means, e.g. .explain 550 5.7.1\n" \
"  .quit                 QUIT and leave, in one step\n" \
"After DATA (354), type the message; a line with only \".\" ends it and\n" \
"lines starting with \".\" are dot-stuffed for you.\n"

struct console {
	const struct console_opts *o;
	struct probe_conn c;
	struct smtp_reply r;
	EditLine *el;
	History *hist;
	FILE *log;
	char host[MX_NAME_MAX], ip[46];
	bool data_mode, quit;
};

static void console_trace(void *arg, char dir, const char *line)
{
	struct console *k = arg;
	if (!k->log)
		return;
	fprintf(k->log, "%s%s\n", dir == '>' ? "C: " : dir == '<' ? "S: " : "*  ", line);
	fflush(k->log);
}

static char *console_prompt(EditLine *el)
{
	struct console *k = NULL;
	el_get(el, EL_CLIENTDATA, &k);
	return k && k->data_mode ? (char *)"data> " : (char *)"smtp> ";
}

/* Every line of the reply; the last one with its explanation beside it.
 * A 334 challenge is shown decoded (RFC 4954 section 4). */
static void console_show(struct console *k)
{
	const char *t = buf_cstr(&k->r.text);
	const char *last = t + k->r.last;
	fwrite(t, 1, (size_t)(last - t), stdout);
	struct explain_codes ec;
	explain_parse(last, &ec);
	const char *asked = smtp_reply_last(&k->r);
	unsigned char dec[1024];
	if (k->r.code == 334 && smtp_b64_decode(asked, strlen(asked), dec, sizeof dec) >= 0)
		printf("%-40s  <- the server asks for: %s\n", last, (const char *)dec);
	else
		printf("%-40s  <- %s\n", last, explain_short(&ec));
	fflush(stdout);
}

/* Reads and shows one reply; false when the connection is gone (a reply
 * that is late may still come: the connection stays). */
static bool console_reply(struct console *k)
{
	int rc = probe_conn_reply(&k->c, &k->r);
	if (rc == 0) {
		console_show(k);
		return true;
	}
	printf("*** %s\n", k->c.err);
	if (rc != PROBE_CONN_TIMEOUT) {
		printf("*** connection closed\n");
		probe_conn_close(&k->c);
		return false;
	}
	return true;
}

static bool console_cmd(struct console *k, const char *line)
{
	if (probe_conn_send(&k->c, line) < 0) {
		printf("*** %s\n", k->c.err);
		return false;
	}
	return console_reply(k);
}

/* ------------------------------------------------------------ helpers */

static void console_starttls(struct console *k)
{
	if (!console_cmd(k, "STARTTLS") || k->r.code != 220)
		return;
	struct smtpc_tls_facts ti;
	const char *name = k->o->tls_name ? k->o->tls_name : k->host;
	if (probe_conn_tls(&k->c, name, k->o->cafile, &ti) < 0) {
		printf("*** %s\n", k->c.err);
		return;
	}
	printf("*** TLS: %s, %s\n*** certificate: %s\n***   issuer: %s\n***   expires: %s"
	       " (%ld days)\n***   name %s: %s; chain: %s\n"
	       "*** send EHLO again: the server forgets what it knew (RFC 3207 4.2)\n",
	       ti.version, ti.cipher, ti.subject, ti.issuer, ti.not_after, ti.days_left,
	       name, ti.name_ok ? "matches" : "does NOT match",
	       ti.chain_ok ? "verifies" : ti.verify_error);
}

/* The password, read from the terminal without echo. */
static void console_password(struct buf *pw)
{
	struct termios old, quiet;
	bool tty = tcgetattr(STDIN_FILENO, &old) == 0;
	if (tty) {
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		quiet.c_lflag |= ICANON;
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
	}
	printf("Password: ");
	fflush(stdout);
	char ch;
	while (read(STDIN_FILENO, &ch, 1) == 1 && ch != '\n' && ch != '\r')
		buf_putc(pw, ch);
	if (tty)
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
	printf("\n");
}

static void console_auth(struct console *k, const char *args)
{
	char mech[16], user[512];
	if (sscanf(args, "%15s %511s", mech, user) != 2 ||
	    (strcasecmp(mech, "login") != 0 && strcasecmp(mech, "plain") != 0)) {
		printf("*** usage: .auth login USER  or  .auth plain USER\n");
		return;
	}
	struct buf pw = BUF_INIT;
	console_password(&pw);
	int rc = probe_conn_auth(&k->c, mech, user, buf_cstr(&pw), &k->r);
	explicit_bzero(pw.data, pw.len);
	buf_free(&pw);
	if (rc == 0)
		console_show(k);
	else
		printf("*** %s\n", k->c.err);
}

static void console_data_file(struct console *k, const char *path)
{
	FILE *f = *path ? fopen(path, "rb") : NULL;
	if (!f) {
		printf("*** cannot read %s: %s\n", *path ? path : "(no file given)",
		       *path ? strerror(errno) : "usage: .data FILE");
		return;
	}
	struct buf m = BUF_INIT;
	char tmp[8192];
	size_t n;
	while ((n = fread(tmp, 1, sizeof tmp, f)) > 0)
		buf_append(&m, tmp, n);
	fclose(f);
	if (console_cmd(k, "DATA") && k->r.code == 354) {
		printf("*** sending %s (%zu octets, dot-stuffed)\n", path, m.len);
		if (probe_conn_data(&k->c, m.data ? m.data : "", m.len, &k->r) == 0)
			console_show(k);
		else
			printf("*** %s\n", k->c.err);
	}
	buf_free(&m);
}

static void console_log(struct console *k, const char *path)
{
	if (k->log)
		fclose(k->log);
	k->log = NULL;
	if (!*path) {
		printf("*** logging stopped\n");
		return;
	}
	if (!(k->log = fopen(path, "a")))
		printf("*** cannot open %s: %s\n", path, strerror(errno));
	else
		printf("*** logging the session to %s\n", path);
}

static void console_explain(const char *args)
{
	struct explain_codes ec;
	struct buf out = BUF_INIT;
	if (explain_parse(args, &ec))
		explain_long(&ec, &out);
	else
		buf_puts(&out, "*** usage: .explain CODE [ENHANCED], e.g. .explain 550 5.7.1\n");
	fputs(buf_cstr(&out), stdout);
	buf_free(&out);
}

static void console_quit(struct console *k)
{
	if (k->c.open)
		console_cmd(k, "QUIT");
	k->quit = true;
}

/* A line starting with "." outside DATA: a helper. */
static void console_helper(struct console *k, const char *line)
{
	size_t n = strcspn(line, " \t");
	const char *args = line + n + strspn(line + n, " \t");
	if (strncasecmp(line, ".quit", n) == 0 && n == 5)
		console_quit(k);
	else if (strncasecmp(line, ".starttls", n) == 0 && n == 9)
		console_starttls(k);
	else if (strncasecmp(line, ".auth", n) == 0 && n == 5)
		console_auth(k, args);
	else if (strncasecmp(line, ".data", n) == 0 && n == 5)
		console_data_file(k, args);
	else if (strncasecmp(line, ".log", n) == 0 && n == 4)
		console_log(k, args);
	else if (strncasecmp(line, ".explain", n) == 0 && n == 8)
		console_explain(args);
	else
		fputs(CONSOLE_HELP, stdout);
}

/* ------------------------------------------------------------ the loop */

/* RFC 5321 section 4.5.2: the final "." ends the message, other lines
 * starting with "." are stuffed. */
static void console_data_line(struct console *k, const char *line)
{
	if (strcmp(line, ".") == 0) {
		k->data_mode = false;
		console_cmd(k, ".");
		return;
	}
	struct buf b = BUF_INIT;
	buf_printf(&b, "%s%s", line[0] == '.' ? "." : "", line);
	if (probe_conn_send(&k->c, buf_cstr(&b)) < 0)
		printf("*** %s\n", k->c.err);
	buf_free(&b);
}

static void console_line(struct console *k, const char *line)
{
	if (k->data_mode) {
		console_data_line(k, line);
		return;
	}
	if (*line) {
		HistEvent ev;
		history(k->hist, &ev, H_ENTER, line);
	}
	if (line[0] == '.') {
		console_helper(k, line);
		return;
	}
	if (console_cmd(k, line) && k->r.code == 354)
		k->data_mode = true;
	if (k->r.code == 221 && strcasecmp(line, "QUIT") == 0)
		k->quit = true;
}

/* Replies nobody asked for (a 421 on timeout) are shown before the prompt. */
static void console_unsolicited(struct console *k)
{
	while (k->c.open && !k->data_mode && probe_conn_pending(&k->c))
		if (!console_reply(k))
			break;
}

static void console_loop(struct console *k)
{
	while (!k->quit && k->c.open) {
		console_unsolicited(k);
		if (!k->c.open)
			break;
		int n;
		const char *got = el_gets(k->el, &n);
		if (!got || n <= 0) {
			printf("\n");
			console_quit(k);
			break;
		}
		struct buf line = BUF_INIT;
		buf_append(&line, got, strcspn(got, "\r\n"));
		console_line(k, buf_cstr(&line));
		buf_free(&line);
	}
}

static void console_editor(struct console *k)
{
	HistEvent ev;
	k->hist = history_init();
	history(k->hist, &ev, H_SETSIZE, 1000);
	k->el = el_init("tern-probe", stdin, stdout, stderr);
	el_set(k->el, EL_CLIENTDATA, k);
	el_set(k->el, EL_PROMPT, console_prompt);
	el_set(k->el, EL_EDITOR, "emacs");
	el_set(k->el, EL_HIST, history, k->hist);
	el_set(k->el, EL_SIGNAL, 1);
	el_source(k->el, NULL);
}

static int console_connect(struct console *k)
{
	struct mx_target t;
	struct mx_list l;
	bool mx_found;
	char err[300] = "";
	struct mx *m = NULL;
	int rc = -1;
	if (mx_target_parse(k->o->target, &t) < 0)
		snprintf(err, sizeof err, "not a host[:port] or a mail domain: %s", k->o->target);
	else if ((m = mx_new(k->o->resolver, k->o->timeout_ms, err, sizeof err)) &&
		 mx_route(m, &t, &l, &mx_found, err, sizeof err) == 0) {
		struct buf log = BUF_INIT;
		int port = t.port ? t.port : k->o->port;
		rc = probe_conn_open(&k->c, &l, port, k->host, k->ip, &log);
		fputs(buf_cstr(&log), stdout);
		if (rc == 0)
			printf("Connected to %s [%s] port %d%s. Type .help for helpers.\n",
			       k->host, k->ip, port, mx_found ? " (its best MX)" : "");
		buf_free(&log);
	}
	mx_free(m);
	if (rc < 0)
		printf("*** could not connect%s%s\n", err[0] ? ": " : "", err);
	return rc;
}

int console_run(const struct console_opts *o)
{
	struct console k;
	memset(&k, 0, sizeof k);
	k.o = o;
	probe_conn_init(&k.c, o->timeout_ms);
	smtp_reply_init(&k.r);
	k.c.trace = console_trace;
	k.c.trace_arg = &k;
	if (o->log)
		console_log(&k, o->log);
	int rc = 2;
	if (console_connect(&k) == 0) {
		console_editor(&k);
		if (console_reply(&k))
			console_loop(&k);
		rc = k.quit ? 0 : 1;
		el_end(k.el);
		history_end(k.hist);
	}
	if (k.log)
		fclose(k.log);
	probe_conn_free(&k.c);
	smtp_reply_free(&k.r);
	return rc;
}
