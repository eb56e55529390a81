/* dialog: dialogue files parsed into steps, sent text expanded, replies
 * matched (see dialog.h). Pure: no I/O. */
#include "tools/probe/dialog.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"

#define DIALOG_LINE_MAX 4096
#define DIALOG_RE_MAX 512

static int dialog_err(char *err, size_t errlen, int line, const char *what)
{
	if (line > 0)
		snprintf(err, errlen, "line %d: %s", line, what);
	else
		snprintf(err, errlen, "%s", what);
	return -1;
}

/* ---- expansion of sent text ---- */

static int dialog_hex(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* One escape after the backslash at *p; *p moves past it. */
static int dialog_escape(const char **p, struct buf *out)
{
	const char *s = *p;
	static const char from[] = "rnt0\\$", to[] = "\r\n\t\0\\$";
	const char *k = *s ? strchr(from, *s) : NULL;
	if (k) {
		buf_putc(out, to[k - from]);
		*p = s + 1;
		return 0;
	}
	if (*s == 'x' && dialog_hex(s[1]) >= 0 && dialog_hex(s[2]) >= 0) {
		buf_putc(out, (char)(dialog_hex(s[1]) * 16 + dialog_hex(s[2])));
		*p = s + 3;
		return 0;
	}
	return -1;
}

/* ${N*TEXT}: TEXT (no escapes) N times. */
static int dialog_repeat(const char *s, size_t n, struct buf *out, size_t start)
{
	char *e;
	unsigned long count = strtoul(s, &e, 10);
	if (e == s || *e != '*' || !isdigit((unsigned char)*s))
		return -1;
	size_t len = n - (size_t)(e + 1 - s);
	if (len == 0 || count > DIALOG_EXPAND_MAX ||
	    count * len > DIALOG_EXPAND_MAX - (out->len - start))
		return -1;
	for (unsigned long i = 0; i < count; i++)
		buf_append(out, e + 1, len);
	return 0;
}

/* ${name} at *p (after the '$'); *p moves past the '}'. */
static int dialog_var(const char **p, const struct dialog_vars *v, struct buf *out,
                      size_t start)
{
	const char *s = *p + 1, *end = strchr(s, '}');
	if (**p != '{' || !end)
		return -1;
	size_t n = (size_t)(end - s);
	const char *val = NULL;
	if (n == 4 && !memcmp(s, "helo", 4))
		val = v->helo;
	else if (n == 4 && !memcmp(s, "from", 4))
		val = v->from;
	else if (n == 2 && !memcmp(s, "to", 2))
		val = v->to;
	else if (dialog_repeat(s, n, out, start) < 0)
		return -1;
	if (val)
		buf_puts(out, val);
	*p = end + 1;
	return 0;
}

int dialog_expand(const char *text, const struct dialog_vars *v, struct buf *out,
                  char *err, size_t errlen)
{
	size_t start = out->len;
	for (const char *p = text; *p;) {
		char c = *p++;
		if (c == '\\' && dialog_escape(&p, out) < 0)
			return dialog_err(err, errlen, 0, "bad escape (\\r \\n \\t \\0 \\\\ \\$ \\xHH)");
		if (c == '$' && dialog_var(&p, v, out, start) < 0)
			return dialog_err(err, errlen, 0,
			                  "bad ${...} (${helo} ${from} ${to} ${N*TEXT}, at most 1 MiB)");
		if (c != '\\' && c != '$')
			buf_putc(out, c);
		if (out->len - start > DIALOG_EXPAND_MAX)
			return dialog_err(err, errlen, 0, "more than 1 MiB to send in one step");
	}
	return 0;
}

/* ---- reply patterns ---- */

/* "250", "2xx", "25x": a digit 2-5 then digits or x's, x's last. */
static bool dialog_code_ok(const char *s, size_t n)
{
	if (n != 3 || s[0] < '2' || s[0] > '5')
		return false;
	if (s[1] == 'x')
		return s[2] == 'x';
	return isdigit((unsigned char)s[1]) && (isdigit((unsigned char)s[2]) || s[2] == 'x');
}

/* One alternative: a code, or "closed". */
static int dialog_alt(const char *s, size_t k, struct dialog_expect *e)
{
	if (k == 6 && !memcmp(s, "closed", 6) && !e->or_closed) {
		e->or_closed = true;
		return 0;
	}
	if (e->ncodes == DIALOG_MAX_CODES || !dialog_code_ok(s, k))
		return -1;
	memcpy(e->codes[e->ncodes++], s, 3);
	return 0;
}

/* A pattern glibc's regcomp would blow up on: a repetition operator
 * right after another ("O++", "a*{2}": undefined in POSIX EREs), a bound
 * over 99, or more than 4 bounds ("(a{99}){99}"...): regcomp copies the
 * whole tree per repetition, so a few dozen took gigabytes (found by
 * fuzz_dialog). A dialogue's pattern never needs them. */
#define DIALOG_RE_BOUNDS 4
static bool dialog_re_stacked(const char *re)
{
	bool after_rep = false;
	int bounds = 0;
	for (const char *p = re; *p; p++) {
		if (*p == '\\' && p[1]) {
			p++;
			after_rep = false;
			continue;
		}
		bool rep = *p == '*' || *p == '+' || *p == '?' || *p == '{';
		if (rep && after_rep)
			return true;
		if (*p == '{') {
			const char *close = strchr(p, '}');
			if (!close)
				return false;   /* regcomp refuses it */
			for (const char *d = p + 1; d < close; d++)
				if (d + 2 < close && isdigit((unsigned char)d[0]) &&
				    isdigit((unsigned char)d[1]) && isdigit((unsigned char)d[2]))
					return true;   /* a bound of 100 or more */
			if (++bounds > DIALOG_RE_BOUNDS)
				return true;
			p = close;
		}
		after_rep = rep;
	}
	return false;
}

/* "250|2xx|closed", then " ~ RE" or " !~ RE". */
static int dialog_pattern(const char *s, struct dialog_expect *e)
{
	const char *tilde = strstr(s, " ~ "), *not = strstr(s, " !~ ");
	if (not && (!tilde || not < tilde))
		tilde = not;
	size_t n = tilde ? (size_t)(tilde - s) : strlen(s);
	if (n == 0 || s[n - 1] == '|')
		return -1;
	for (size_t i = 0; i < n;) {
		size_t k = strcspn(s + i, "|");
		if (k > n - i)
			k = n - i;
		if (dialog_alt(s + i, k, e) < 0)
			return -1;
		i += k + 1;
	}
	if (e->ncodes == 0 && !e->or_closed)
		return -1;
	if (tilde) {
		e->re_not = tilde == not;
		const char *re = tilde + (e->re_not ? 4 : 3);
		if (!*re || strlen(re) > DIALOG_RE_MAX || dialog_re_stacked(re) ||
		    regcomp(&e->re, re, REG_EXTENDED | REG_ICASE | REG_NOSUB | REG_NEWLINE) != 0)
			return -2;
		e->has_re = true;
	}
	return 0;
}

bool dialog_match(const struct dialog_expect *e, int code, const char *text)
{
	char c[4];
	bool ok = false;
	if (!text)
		return e->or_closed;
	snprintf(c, sizeof c, "%03d", code < 0 || code > 999 ? 0 : code);
	for (int i = 0; i < e->ncodes && !ok; i++)
		ok = c[0] == e->codes[i][0] &&
		     (e->codes[i][1] == 'x' || c[1] == e->codes[i][1]) &&
		     (e->codes[i][2] == 'x' || c[2] == e->codes[i][2]);
	return ok && (!e->has_re || (regexec(&e->re, text, 0, NULL, 0) == 0) != e->re_not);
}

/* ---- the file ---- */

struct dialog_parser {
	struct dialog *d;
	int line;
	bool in_body;
	char rfc[DIALOG_RFC_MAX];
	char *err;
	size_t errlen;
};

static int dialog_requires(struct dialog_parser *ps, const char *v)
{
	struct dialog *d = ps->d;
	while (*v) {
		size_t n = strcspn(v, " \t");
		if (n > 0) {
			bool neg = *v == '!';
			if (d->nreq == DIALOG_MAX_REQUIRES || n - neg == 0 ||
			    n - neg >= sizeof d->req[0].keyword)
				return dialog_err(ps->err, ps->errlen, ps->line, "bad requires:");
			struct dialog_require *r = &d->req[d->nreq++];
			r->absent = neg;
			for (size_t i = neg; i < n; i++)
				r->keyword[i - neg] = (char)toupper((unsigned char)v[i]);
		}
		v += n + strspn(v + n, " \t");
	}
	return 0;
}

/* "key: value" lines: about, rfc and requires in the header; rfc also
 * among the steps. 1: not such a line. */
static int dialog_header(struct dialog_parser *ps, const char *s)
{
	const char *colon = strchr(s, ':');
	if (!colon || colon[1] != ' ')
		return 1;
	size_t k = (size_t)(colon - s);
	const char *v = colon + 2;
	if (k == 3 && !memcmp(s, "rfc", 3)) {
		if (strlen(v) >= DIALOG_RFC_MAX)
			return dialog_err(ps->err, ps->errlen, ps->line, "rfc: too long");
		snprintf(ps->rfc, sizeof ps->rfc, "%s", v);
		if (!ps->in_body)
			snprintf(ps->d->rfc, sizeof ps->d->rfc, "%s", v);
		return 0;
	}
	if (ps->in_body)
		return 1;
	if (k == 5 && !memcmp(s, "about", 5)) {
		snprintf(ps->d->about, sizeof ps->d->about, "%s", v);
		return 0;
	}
	if (k == 8 && !memcmp(s, "requires", 8))
		return dialog_requires(ps, v);
	return 1;
}

static struct dialog_step *dialog_add(struct dialog_parser *ps, enum dialog_kind kind,
                                      const char *text)
{
	struct dialog *d = ps->d;
	if (d->nsteps == DIALOG_MAX_STEPS)
		return NULL;
	struct dialog_step *st = &d->steps[d->nsteps++];
	memset(st, 0, sizeof *st);
	st->kind = kind;
	st->line = ps->line;
	snprintf(st->rfc, sizeof st->rfc, "%s", ps->rfc);
	st->text = util_xstrdup(text);
	return st;
}

static int dialog_send(struct dialog_parser *ps, enum dialog_kind kind, const char *text)
{
	static const struct dialog_vars probe = { "h", "f", "t" };
	struct buf b = BUF_INIT;
	char why[160];
	int rc = dialog_expand(text, &probe, &b, why, sizeof why);
	buf_free(&b);
	if (rc < 0)
		return dialog_err(ps->err, ps->errlen, ps->line, why);
	if (!dialog_add(ps, kind, text))
		return dialog_err(ps->err, ps->errlen, ps->line, "too many steps");
	return 0;
}

static int dialog_expect_line(struct dialog_parser *ps, const char *text)
{
	struct dialog_step *st = dialog_add(ps, DIALOG_EXPECT, text);
	if (!st)
		return dialog_err(ps->err, ps->errlen, ps->line, "too many steps");
	int rc = dialog_pattern(text, &st->ex);
	if (rc == -2)
		return dialog_err(ps->err, ps->errlen, ps->line, "bad regular expression after ~");
	if (rc < 0)
		return dialog_err(ps->err, ps->errlen, ps->line,
		                  "bad reply pattern (250, 2xx, 250|251, then ~ REGEX)");
	return 0;
}

static int dialog_step_line(struct dialog_parser *ps, const char *s)
{
	ps->in_body = true;
	if (!strncmp(s, "> ", 2) || !strcmp(s, ">"))
		return dialog_send(ps, DIALOG_SEND, s[1] ? s + 2 : "");
	if (!strncmp(s, ">raw ", 5))
		return dialog_send(ps, DIALOG_RAW, s + 5);
	if (!strncmp(s, "< ", 2))
		return dialog_expect_line(ps, s + 2);
	if (!strcmp(s, "starttls")) {
		ps->d->starttls = true;
		return dialog_add(ps, DIALOG_STARTTLS, "") ? 0 :
		       dialog_err(ps->err, ps->errlen, ps->line, "too many steps");
	}
	if (!strcmp(s, "closed"))
		return dialog_add(ps, DIALOG_CLOSED, "") ? 0 :
		       dialog_err(ps->err, ps->errlen, ps->line, "too many steps");
	return dialog_err(ps->err, ps->errlen, ps->line,
	                  "not a step (> , >raw , < , starttls, closed, rfc: )");
}

static int dialog_line(struct dialog_parser *ps, char *s)
{
	size_t n = strlen(s);
	if (n > 0 && s[n - 1] == '\r')
		s[--n] = '\0';
	if (n == 0 || s[0] == '#')
		return 0;
	int rc = dialog_header(ps, s);
	return rc <= 0 ? rc : dialog_step_line(ps, s);
}

int dialog_parse(const char *src, size_t n, struct dialog *d, char *err, size_t errlen)
{
	memset(d, 0, sizeof *d);
	d->steps = util_xcalloc(DIALOG_MAX_STEPS, sizeof *d->steps);
	struct dialog_parser ps = { .d = d, .err = err, .errlen = errlen };
	if (memchr(src, '\0', n))
		return dialog_err(err, errlen, 0, "a NUL in the file");
	char line[DIALOG_LINE_MAX];
	for (size_t i = 0; i < n;) {
		const char *nl = memchr(src + i, '\n', n - i);
		size_t len = nl ? (size_t)(nl - src - i) : n - i;
		ps.line++;
		if (len >= sizeof line)
			return dialog_err(err, errlen, ps.line, "line too long");
		memcpy(line, src + i, len);
		line[len] = '\0';
		if (dialog_line(&ps, line) < 0)
			return -1;
		i += len + 1;
	}
	if (d->nsteps == 0)
		return dialog_err(err, errlen, 0, "no steps");
	return 0;
}

void dialog_free(struct dialog *d)
{
	for (int i = 0; i < d->nsteps; i++) {
		free(d->steps[i].text);
		if (d->steps[i].ex.has_re)
			regfree(&d->steps[i].ex.re);
	}
	free(d->steps);
	d->steps = NULL;
	d->nsteps = 0;
}

void dialog_show(const char *p, size_t n, size_t max, struct buf *out)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		if (i == max) {
			buf_printf(out, "...(%zu octets)", n);
			return;
		}
		if (c == '\r')
			buf_puts(out, "\\r");
		else if (c == '\n')
			buf_puts(out, "\\n");
		else if (c == '\\')
			buf_puts(out, "\\\\");
		else if (c < 0x20 || c == 0x7f)
			buf_printf(out, "\\x%02x", c);
		else
			buf_putc(out, (char)c);
	}
}
