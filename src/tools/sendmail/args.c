/* args: tern-sendmail's command line; see args.h. Every flag the callers
 * in use pass is taken: PHP's mail() "-t -i" and "-f", Symfony's "-bs",
 * Debian cron's "-FCronDaemon -i -B8BITMIME -oem", cronie's "-t -f user"
 * and "-odi -oem -oi", git send-email's "-i" and "-f", busybox's
 * "-t -fx"; the rest of Postfix's sendmail(1) flags are accepted and
 * ignored (-G -U -c -m -n -x -L -O -X -e -h -p, the -o options other
 * than -oi). */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>

#include "net/smtp.h"
#include "tools/sendmail/args.h"

#define ARGS_WITH_VALUE "BCFLNORVXbefhopr"   /* options that take a value */
#define ARGS_IGNORED "GUcmnx"                /* accepted, nothing to do */

static int args_error(char *err, size_t n, const char *fmt, const char *what)
{
	snprintf(err, n, fmt, what);
	return EX_USAGE;
}

/* -N: "never", or a list of success, failure, delay (RFC 3461 4.1). */
static bool args_notify(const char *v, unsigned *out)
{
	static const char *const words[] = { "never", "success", "failure", "delay" };
	*out = 0;
	for (const char *p = v; *p;) {
		size_t len = strcspn(p, ","), i = 0;
		while (i < 4 && !(strlen(words[i]) == len && !strncasecmp(p, words[i], len)))
			i++;
		if (i == 4)
			return false;
		*out |= 1u << i;    /* NOTIFY_NEVER, _SUCCESS, _FAILURE, _DELAY */
		p += len + (p[len] == ',');
	}
	return *out && !((*out & NOTIFY_NEVER) && *out != NOTIFY_NEVER);
}

/* -b: the mode. */
static int args_mode(struct args *a, const char *v, char *err, size_t n)
{
	static const char modes[] = "smpi";
	const char *m = strlen(v) == 1 ? strchr(modes, v[0]) : NULL;
	if (!m)
		return args_error(err, n, "-b%s: not supported (only -bm, -bs, -bp, -bi)", v);
	static const enum args_mode to[] = { ARGS_SMTP, ARGS_SEND, ARGS_QUEUE, ARGS_ALIASES };
	a->mode = to[m - modes];
	return 0;
}

/* An option with its value. */
static int args_value(struct args *a, char opt, const char *v, char *err, size_t n)
{
	switch (opt) {
	case 'C': a->config = v; break;
	case 'F': a->fullname = v; break;
	case 'f': case 'r': a->sender = v; break;
	case 'V': a->envid = v; break;
	case 'b': return args_mode(a, v, err, n);
	case 'o':  /* -oi as -i; -oem, -odi, -o7 and the others: nothing to do */
		a->dots |= !strcmp(v, "i");
		break;
	case 'B':
		a->body = !strcasecmp(v, "8BITMIME") ? BODY_8BITMIME :
		          !strcasecmp(v, "7BIT") ? BODY_7BIT : BODY_UNSET;
		if (a->body == BODY_UNSET)
			return args_error(err, n, "-B %s: expected 7BIT or 8BITMIME", v);
		break;
	case 'N':
		if (!args_notify(v, &a->notify))
			return args_error(err, n, "-N %s: expected never, or success,failure,delay", v);
		break;
	case 'R':
		a->ret = !strcasecmp(v, "full") ? RET_FULL : !strcasecmp(v, "hdrs") ? RET_HDRS : RET_UNSET;
		if (a->ret == RET_UNSET)
			return args_error(err, n, "-R %s: expected full or hdrs", v);
		break;
	default:   /* -L -O -X -e -h -p: accepted, ignored */
		break;
	}
	return 0;
}

/* -q: flush now; -qR site (or -qRsite) for one domain; -q with an
 * interval (a daemon's) as -q. Returns how many words it took. */
static int args_queue(struct args *a, const char *rest, const char *next, char *err, size_t n,
                      int *bad)
{
	a->mode = ARGS_FLUSH;
	if (rest[0] != 'R')
		return 0;
	a->site = rest[1] ? rest + 1 : next;
	if (!a->site)
		*bad = args_error(err, n, "-qR needs a site%s", "");
	return rest[1] ? 0 : 1;
}

/* One word of options ("-ti", "-fuser", "-f"); returns the words used
 * beyond it (0 or 1), or -1 with *bad set. */
static int args_word(struct args *a, const char *w, const char *next, char *err, size_t n,
                     int *bad)
{
	for (const char *p = w + 1; *p; p++) {
		char opt[2] = { *p, 0 };
		if (*p == 'q')
			return args_queue(a, p + 1, next, err, n, bad);
		if (strchr(ARGS_WITH_VALUE, *p)) {
			const char *v = p[1] ? p + 1 : next;
			if (!v) {
				*bad = args_error(err, n, "-%s needs a value", opt);
				return -1;
			}
			*bad = args_value(a, *p, v, err, n);
			return p[1] ? 0 : 1;
		}
		if (*p == 't')
			a->extract = true;
		else if (*p == 'i')
			a->dots = true;
		else if (*p == 'v')
			a->verbose = true;
		else if (*p == 'I')
			a->mode = ARGS_ALIASES;
		else if (!strchr(ARGS_IGNORED, *p)) {
			*bad = args_error(err, n, "-%s: unknown option", opt);
			return -1;
		}
	}
	return 0;
}

int args_parse(int argc, char **argv, struct args *a, char *err, size_t n)
{
	memset(a, 0, sizeof *a);
	const char *name = argc > 0 && argv[0] ? strrchr(argv[0], '/') : NULL;
	name = name ? name + 1 : argc > 0 && argv[0] ? argv[0] : "";
	if (!strcmp(name, "mailq"))
		a->mode = ARGS_QUEUE;
	else if (!strcmp(name, "newaliases"))
		a->mode = ARGS_ALIASES;
	int i = 1, bad = 0;
	while (i < argc && argv[i][0] == '-' && argv[i][1] && !bad) {
		if (!strcmp(argv[i], "--")) {
			i++;
			break;
		}
		int used = args_word(a, argv[i], i + 1 < argc ? argv[i + 1] : NULL, err, n, &bad);
		i += 1 + (used > 0 ? used : 0);
	}
	a->rcpt = argv + i;
	a->nrcpt = argc - i;
	return bad;
}
