/* dropfile: the envelope of a maildrop file; see dropfile.h and
 * net/maildrop.h for the format. Each line is framed as a session frames
 * a command line (CRLF, at most MAILDROP_LINE_MAX octets, no NUL, no bare
 * CR or LF), then goes to the same parsers as a session's MAIL and RCPT.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "smtpd/dropfile.h"

void dropfile_free(struct dropfile_env *e)
{
	free(e->rcpt);
	memset(e, 0, sizeof *e);
}

/* The next line of p[0..n) into line (CRLF stripped): its length with
 * the CRLF, 0 when it is not complete yet, -1 when malformed. */
static long dropfile_line(const char *p, size_t n, char line[MAILDROP_LINE_MAX])
{
	size_t lim = n < MAILDROP_LINE_MAX ? n : MAILDROP_LINE_MAX;
	const char *lf = memchr(p, '\n', lim);
	if (!lf)
		return n < MAILDROP_LINE_MAX ? 0 : -1;
	size_t len = (size_t)(lf - p);
	if (len == 0 || p[len - 1] != '\r')
		return -1;
	len--;
	if (memchr(p, '\0', len) || memchr(p, '\r', len))
		return -1;
	memcpy(line, p, len);
	line[len] = '\0';
	return (long)len + 2;
}

/* Could p[0..n) be the start of a maildrop file? (A file of something
 * else is refused at its first octets, not read to its end.) */
static bool dropfile_magic(const char *p, size_t n)
{
	static const char magic[] = MAILDROP_MAGIC " ";
	return memcmp(p, magic, n < sizeof magic - 1 ? n : sizeof magic - 1) == 0;
}

/* "TERN-MAILDROP 1 uid=N user=NAME" */
static bool dropfile_first(const char *line, struct dropfile_env *e)
{
	size_t m = strlen(MAILDROP_MAGIC);
	if (strncmp(line, MAILDROP_MAGIC " ", m + 1) != 0)
		return false;
	char *end;
	const char *p = line + m + 1;
	e->version = (unsigned)strtoul(p, &end, 10);
	if (end == p || e->version != MAILDROP_VERSION || strncmp(end, " uid=", 5) != 0)
		return false;
	p = end + 5;
	e->uid = strtoul(p, &end, 10);
	if (end == p || *p < '0' || *p > '9' || strncmp(end, " user=", 6) != 0)
		return false;
	p = end + 6;
	size_t len = strlen(p);
	if (len == 0 || len > MAILDROP_USER_MAX || strcspn(p, " \t") != len)
		return false;
	memcpy(e->user, p, len + 1);
	return true;
}

/* A path, then nothing or SP and parameters (RFC 5321 4.1.1.2-3). */
static const char *dropfile_path(const char *args, const char *kw, struct addr *a, bool mail)
{
	const char *p = parse_keyword_colon(args, kw), *rest;
	if (!p || addr_parse_path(p, &rest, a, mail, !mail) != ADDR_OK)
		return NULL;
	return (*rest == '\0' || *rest == ' ') ? rest : NULL;
}

static const char *dropfile_mail(const char *args, struct dropfile_env *e)
{
	const char *bad, *rest = dropfile_path(args, "FROM", &e->sender, true);
	if (!rest)
		return "MAIL: not a reverse-path";
	if (parse_mail_params(rest, &e->mp, &bad) != PARSE_OK)
		return "MAIL: bad parameters";
	return NULL;
}

static const char *dropfile_rcpt(const char *args, unsigned max_rcpt, struct dropfile_env *e)
{
	if (e->nrcpt >= max_rcpt)
		return "too many recipients";
	if (e->nrcpt == e->cap) {
		e->cap = e->cap ? e->cap * 2 : 8;
		e->rcpt = util_xrealloc(e->rcpt, e->cap, sizeof *e->rcpt);
	}
	struct dropfile_rcpt *r = &e->rcpt[e->nrcpt];
	memset(r, 0, sizeof *r);
	const char *bad, *rest = dropfile_path(args, "TO", &r->addr, false);
	if (!rest)
		return "RCPT: not a forward-path";
	if (parse_rcpt_params(rest, &r->rp, &bad) != PARSE_OK)
		return "RCPT: bad parameters";
	e->nrcpt++;
	return NULL;
}

/* One line after the first: MAIL once, then RCPT lines, then DATA. */
static const char *dropfile_command(const char *line, unsigned max_rcpt, unsigned nline,
                                    struct dropfile_env *e, bool *data)
{
	struct parse_cmd c;
	if (!parse_command(line, &c))
		return "not a command line";
	if (nline == 1)
		return strcmp(c.verb, "MAIL") ? "MAIL expected" : dropfile_mail(c.args, e);
	if (!strcmp(c.verb, "RCPT"))
		return dropfile_rcpt(c.args, max_rcpt, e);
	if (strcmp(c.verb, "DATA") || *c.args)
		return "RCPT or DATA expected";
	if (e->nrcpt == 0)
		return "no recipients";
	*data = true;
	return NULL;
}

enum dropfile_res dropfile_parse(const char *p, size_t n, unsigned max_rcpt,
                                 struct dropfile_env *e, size_t *used, const char **why)
{
	char line[MAILDROP_LINE_MAX];
	size_t off = 0;
	bool data = false;
	dropfile_free(e);
	*why = NULL;
	for (unsigned nline = 0; !data; nline++) {
		long len = dropfile_line(p + off, n - off, line);
		if (len == 0 && (nline > 0 || dropfile_magic(p, n)))
			return DROPFILE_MORE;
		if (len <= 0 && nline == 0)
			*why = "not a maildrop file of version 1";
		else if (len < 0)
			*why = "an envelope line is not framed by CRLF";
		else if (nline == 0 && !dropfile_first(line, e))
			*why = "not a maildrop file of version 1";
		else if (nline > 0)
			*why = dropfile_command(line, max_rcpt, nline, e, &data);
		if (*why)
			return DROPFILE_BAD;
		off += (size_t)len;
	}
	*used = off;
	return DROPFILE_OK;
}
