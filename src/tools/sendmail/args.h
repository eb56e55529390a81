/* args: tern-sendmail's command line, as the callers of /usr/sbin/sendmail
 * write it (sendmail(8), and Postfix's sendmail(1) for what it accepts
 * and ignores). Pure.
 *
 * An option's value may be glued ("-fuser", "-FCronDaemon", "-B8BITMIME",
 * "-oem", "-qRsite") or the next word ("-f user", "-qR site"); value-less
 * options may be grouped ("-ti"). The first word that is not an option,
 * or "--", ends them: the rest are recipients. The mode comes from -b,
 * -q and -I, and first from the program's name (mailq, newaliases).
 */
#ifndef TERN_SENDMAIL_ARGS_H
#define TERN_SENDMAIL_ARGS_H

#include <stdbool.h>
#include <stddef.h>

enum args_mode {
	ARGS_SEND,       /* -bm, the default: read a message, leave it in the maildrop */
	ARGS_SMTP,       /* -bs: an SMTP session on standard input and output */
	ARGS_QUEUE,      /* -bp, mailq: list the queue */
	ARGS_ALIASES,    /* -bi, -I, newaliases */
	ARGS_FLUSH,      /* -q, -qR site: deliver what is queued now */
};

struct args {
	enum args_mode mode;
	const char *config;      /* -C FILE, else NULL */
	const char *sender;      /* -f / -r, else NULL (the user) */
	const char *fullname;    /* -F, for a From header made here */
	bool extract;            /* -t: recipients from To, Cc, Bcc */
	bool dots;               /* -i, -oi: a line "." is text, not the end */
	bool verbose;            /* -v */
	int body;                /* -B: enum smtp_body (RFC 6152) */
	int ret;                 /* -R: enum smtp_ret (RFC 3461 4.3) */
	unsigned notify;         /* -N: NOTIFY_* (RFC 3461 4.1) */
	const char *envid;       /* -V: RFC 3461 4.4 ENVID, else NULL */
	const char *site;        /* -qR: the domain to flush, else NULL */
	char **rcpt;             /* the words after the options */
	int nrcpt;
};

/* Parse argv (argv[0] included). 0, or EX_USAGE with a message in err
 * (room for n). */
int args_parse(int argc, char **argv, struct args *a, char *err, size_t n);

#endif
