/* conform: the dialogue files run against a server (see conform.h). */
#include "tools/probe/conform.h"

#include <ctype.h>
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/jsonw.h"
#include "lib/util.h"
#include "tools/probe/conn.h"
#include "tools/probe/dialog.h"
#include "tools/probe/mx.h"
#include "tools/probe/report.h"

#define CONFORM_MAX_FILES 256
#define CONFORM_MAX_KEYWORDS 64
#define CONFORM_SHOW 160    /* octets of a line shown in a verdict */

enum conform_result { CONFORM_PASS, CONFORM_FAIL, CONFORM_SKIP };

struct conform_file {
	char name[64];
	struct dialog d;
	enum conform_result result;
	struct buf detail;      /* fail: "RFC ...: sent X, expected Y, got Z"; skip: why */
};

/* EHLO keywords, upper case. */
struct conform_keywords {
	char kw[CONFORM_MAX_KEYWORDS][32];
	int n;
};

struct conform {
	const struct conform_opts *o;
	struct conform_file *files;
	int nfiles;
	struct mx_list l;
	int port;
	char host[MX_NAME_MAX], ip[46], server[MX_NAME_MAX], to[MX_NAME_MAX + 16], from[300];
	struct dialog_vars vars;
	struct conform_keywords plain, tls;
	struct probe_conn c;
	struct smtp_reply r;
	struct buf sent;        /* the last group sent, shown */
};

/* ------------------------------------------------------------ the files */

/* --dir, or next to the binary: an installation's share/tern/conform,
 * else a build tree's conform/ (build/tern-probe beside conform/). */
static int conform_dir(const struct conform_opts *o, char *out, size_t n)
{
	if (o->dir)
		return snprintf(out, n, "%s", o->dir) < (int)n ? 0 : -1;
	char exe[PATH_MAX];
	ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (k <= 0)
		return -1;
	exe[k] = '\0';
	*strrchr(exe, '/') = '\0';
	static const char *const rel[] = { "/../share/tern/conform", "/../conform" };
	for (size_t i = 0; i < 2; i++)
		if (snprintf(out, n, "%s%s", exe, rel[i]) < (int)n && access(out, R_OK | X_OK) == 0)
			return 0;
	return -1;
}

static bool conform_wanted(const struct conform_opts *o, const char *name)
{
	if (o->nonly == 0)
		return true;
	for (int i = 0; i < o->nonly; i++)
		if (strcmp(o->only[i], name) == 0)
			return true;
	return false;
}

static int conform_dlg_filter(const struct dirent *e)
{
	size_t n = strlen(e->d_name);
	return n > 4 && n < 64 + 4 && strcmp(e->d_name + n - 4, ".dlg") == 0;
}

static int conform_load_one(struct conform *k, const char *dir, const char *fname)
{
	struct conform_file *f = &k->files[k->nfiles];
	char path[PATH_MAX], err[200];
	struct buf src = BUF_INIT;
	snprintf(f->name, sizeof f->name, "%.*s", (int)(strlen(fname) - 4), fname);
	FILE *fp = snprintf(path, sizeof path, "%s/%s", dir, fname) < (int)sizeof path ?
	           fopen(path, "r") : NULL;
	if (!fp) {
		perror(path);
		return -1;
	}
	char chunk[4096];
	size_t got;
	while ((got = fread(chunk, 1, sizeof chunk, fp)) > 0)
		buf_append(&src, chunk, got);
	fclose(fp);
	int rc = dialog_parse(src.data ? src.data : "", src.len, &f->d, err, sizeof err);
	buf_free(&src);
	k->nfiles++;
	if (rc < 0)
		fprintf(stderr, "tern-probe: %s: %s\n", path, err);
	return rc;
}

/* Every wanted *.dlg of the directory, by name. */
static int conform_load(struct conform *k)
{
	char dir[PATH_MAX];
	if (conform_dir(k->o, dir, sizeof dir) < 0) {
		fprintf(stderr, "tern-probe: no dialogue directory (give --dir)\n");
		return -1;
	}
	struct dirent **list;
	int n = scandir(dir, &list, conform_dlg_filter, alphasort), rc = 0;
	if (n < 0) {
		perror(dir);
		return -1;
	}
	k->files = util_xcalloc((size_t)n + 1, sizeof *k->files);
	for (int i = 0; i < n; i++) {
		char name[64];
		snprintf(name, sizeof name, "%.*s", (int)(strlen(list[i]->d_name) - 4), list[i]->d_name);
		if (rc == 0 && k->nfiles < CONFORM_MAX_FILES && conform_wanted(k->o, name))
			rc = conform_load_one(k, dir, list[i]->d_name);
		free(list[i]);
	}
	free(list);
	for (int i = 0; rc == 0 && i < k->o->nonly; i++) {
		bool found = false;
		for (int j = 0; j < k->nfiles; j++)
			found |= strcmp(k->files[j].name, k->o->only[i]) == 0;
		if (!found) {
			fprintf(stderr, "tern-probe: no dialogue %s in %s\n", k->o->only[i], dir);
			rc = -1;
		}
	}
	return rc;
}

/* ------------------------------------------------------------ the server */

static void conform_trace(void *arg, char dir, const char *line)
{
	struct conform *k = arg;
	if (k->o->verbose && !k->o->json)
		printf("    %s %s\n", dir == '>' ? "C:" : dir == '<' ? "S:" : "  ", line);
}

static void conform_keywords(const struct smtp_reply *r, struct conform_keywords *kw)
{
	const char *p;
	size_t n;
	kw->n = 0;
	for (size_t i = 1; smtp_reply_nth(r, i, &p, &n) && kw->n < CONFORM_MAX_KEYWORDS; i++) {
		size_t w = strcspn(p, " \n");
		if (w > n)
			w = n;
		if (w == 0 || w >= sizeof kw->kw[0])
			continue;
		for (size_t j = 0; j < w; j++)
			kw->kw[kw->n][j] = (char)toupper((unsigned char)p[j]);
		kw->kw[kw->n++][w] = '\0';
	}
}

static bool conform_has(const struct conform_keywords *kw, const char *word)
{
	for (int i = 0; i < kw->n; i++)
		if (strcmp(kw->kw[i], word) == 0)
			return true;
	return false;
}

static int conform_connect(struct conform *k)
{
	struct buf log = BUF_INIT;
	int rc = probe_conn_open(&k->c, &k->l, k->port, k->host, k->ip, &log);
	if (rc < 0 && k->server[0] == '\0')
		fprintf(stderr, "tern-probe: cannot connect:\n%s", buf_cstr(&log));
	buf_free(&log);
	return rc;
}

/* EHLO, STARTTLS and the handshake, EHLO again: --tls before a dialogue. */
static int conform_starttls(struct conform *k, const char **why)
{
	struct smtpc_tls_facts f;
	const char *name = k->o->tls_name ? k->o->tls_name : k->host;
	*why = "EHLO refused";
	if (probe_conn_cmd(&k->c, "EHLO conform.example", &k->r) < 0 || k->r.code != 250)
		return -1;
	*why = "STARTTLS refused";
	if (probe_conn_cmd(&k->c, "STARTTLS", &k->r) < 0 || k->r.code != 220)
		return -1;
	*why = k->c.err;
	return probe_conn_tls(&k->c, name, k->o->cafile, &f);
}

/* The look before the dialogues: greeting, the keywords of EHLO, over TLS
 * too with --tls. */
static int conform_discover(struct conform *k)
{
	const char *why = NULL;
	if (conform_connect(k) < 0)
		return -1;
	if (probe_conn_reply(&k->c, &k->r) < 0 || k->r.code != 220) {
		fprintf(stderr, "tern-probe: no 220 greeting: %s\n",
		        k->r.code ? buf_cstr(&k->r.text) : k->c.err);
		return -1;
	}
	sscanf(buf_cstr(&k->r.text) + 4, "%255s", k->server);
	if (probe_conn_cmd(&k->c, "EHLO conform.example", &k->r) == 0 && k->r.code == 250)
		conform_keywords(&k->r, &k->plain);
	if (k->o->tls && (probe_conn_cmd(&k->c, "RSET", &k->r) < 0 ||
	                  conform_starttls(k, &why) < 0)) {
		fprintf(stderr, "tern-probe: --tls: %s\n", why ? why : "STARTTLS failed");
		return -1;
	}
	if (k->o->tls && probe_conn_cmd(&k->c, "EHLO conform.example", &k->r) == 0 &&
	    k->r.code == 250)
		conform_keywords(&k->r, &k->tls);
	probe_conn_send(&k->c, "QUIT");
	probe_conn_reply(&k->c, &k->r);
	probe_conn_close(&k->c);
	return 0;
}

/* ------------------------------------------------------------ a dialogue */

static bool conform_over_tls(const struct conform *k, const struct dialog *d)
{
	return k->o->tls && !d->starttls;
}

/* Whether a dialogue is skipped: the server lacks (or has) a keyword it
 * requires (absent); why goes to its detail. */
static bool conform_skip(struct conform *k, struct conform_file *f)
{
	const struct conform_keywords *kw = conform_over_tls(k, &f->d) ? &k->tls : &k->plain;
	for (int i = 0; i < f->d.nreq; i++) {
		const struct dialog_require *q = &f->d.req[i];
		if (conform_has(kw, q->keyword) == q->absent) {
			buf_printf(&f->detail, "the server %s %s", q->absent ? "advertises" :
			           "does not advertise", q->keyword);
			return true;
		}
	}
	return false;
}

static void conform_got(struct conform *k, int rc, struct buf *out)
{
	if (rc == 0) {
		const char *t = buf_cstr(&k->r.text);
		struct buf one = BUF_INIT;
		for (const char *p = t; *p; p++)
			if (*p == '\n')
				buf_puts(&one, " / ");
			else
				buf_putc(&one, *p);
		dialog_show(one.data, one.len, CONFORM_SHOW, out);
		buf_free(&one);
	} else if (rc == PROBE_CONN_TIMEOUT) {
		buf_printf(out, "no reply within %d s", k->o->timeout_ms / 1000);
	} else {
		buf_puts(out, "the connection closed");
	}
}

static int conform_fail(struct conform *k, struct conform_file *f, const struct dialog_step *st,
                        const char *expected, int rc)
{
	f->result = CONFORM_FAIL;
	buf_printf(&f->detail, "%s: sent %s, expected %s, got ", st->rfc[0] ? st->rfc : "RFC 5321",
	           k->sent.len ? buf_cstr(&k->sent) : "nothing", expected);
	conform_got(k, rc, &f->detail);
	return -1;
}

/* The sends gathered since the last wait, in one write. */
static int conform_flush(struct conform *k, struct buf *out)
{
	if (out->len == 0)
		return 0;
	int rc = probe_conn_write(&k->c, out->data, out->len);
	buf_reset(out);
	return rc;
}

static int conform_send(struct conform *k, const struct dialog_step *st, struct buf *out,
                        bool first)
{
	char err[160];
	size_t at = out->len;
	if (dialog_expand(st->text, &k->vars, out, err, sizeof err) < 0)
		return -1;   /* checked when the file was read */
	if (st->kind == DIALOG_SEND)
		buf_puts(out, "\r\n");
	struct buf shown = BUF_INIT;
	dialog_show(out->data + at, out->len - at, CONFORM_SHOW, &shown);
	conform_trace(k, '>', buf_cstr(&shown));
	if (first)
		buf_reset(&k->sent);
	buf_printf(&k->sent, "%s\"%s\"", k->sent.len ? " " : "", buf_cstr(&shown));
	buf_free(&shown);
	return 0;
}

static int conform_wait(struct conform *k, struct conform_file *f, const struct dialog_step *st)
{
	if (st->kind == DIALOG_EXPECT) {
		int rc = probe_conn_reply(&k->c, &k->r);
		bool closed = rc == PROBE_CONN_ERR;
		if ((rc < 0 && !closed) ||
		    !dialog_match(&st->ex, k->r.code, closed ? NULL : buf_cstr(&k->r.text)))
			return conform_fail(k, f, st, st->text, rc);
		return 0;
	}
	if (st->kind == DIALOG_CLOSED) {
		int rc = probe_conn_reply(&k->c, &k->r);
		return rc == PROBE_CONN_ERR ? 0 : conform_fail(k, f, st, "the connection closed", rc);
	}
	struct smtpc_tls_facts facts;
	const char *name = k->o->tls_name ? k->o->tls_name : k->host;
	if (probe_conn_tls(&k->c, name, k->o->cafile, &facts) < 0) {
		f->result = CONFORM_FAIL;
		buf_printf(&f->detail, "%s: TLS handshake: %s", st->rfc[0] ? st->rfc : "RFC 3207",
		           k->c.err);
		return -1;
	}
	return 0;
}

static void conform_steps(struct conform *k, struct conform_file *f)
{
	struct buf out = BUF_INIT;
	bool first = true;
	buf_reset(&k->sent);
	for (int i = 0; i < f->d.nsteps; i++) {
		const struct dialog_step *st = &f->d.steps[i];
		if (st->kind == DIALOG_SEND || st->kind == DIALOG_RAW) {
			conform_send(k, st, &out, first);
			first = false;
			continue;
		}
		first = true;
		conform_flush(k, &out);
		if (conform_wait(k, f, st) < 0)
			break;
	}
	conform_flush(k, &out);
	buf_free(&out);
}

/* Connect, the greeting, STARTTLS first with --tls, then the steps. */
static void conform_one(struct conform *k, struct conform_file *f)
{
	const char *why;
	if (conform_skip(k, f)) {
		f->result = CONFORM_SKIP;
		return;
	}
	if (conform_connect(k) < 0) {
		f->result = CONFORM_FAIL;
		buf_printf(&f->detail, "could not connect");
		return;
	}
	int rc = probe_conn_reply(&k->c, &k->r);
	if (rc < 0 || k->r.code != 220) {
		static const struct dialog_step greet = { .rfc = "RFC 5321 4.3.2" };
		buf_reset(&k->sent);
		conform_fail(k, f, &greet, "220", rc);
	} else if (conform_over_tls(k, &f->d) && conform_starttls(k, &why) < 0) {
		f->result = CONFORM_FAIL;
		buf_printf(&f->detail, "RFC 3207 4: --tls: %s", why);
	} else {
		conform_steps(k, f);
	}
	if (k->c.c && f->result == CONFORM_PASS) {   /* a polite end, not checked */
		probe_conn_send(&k->c, "QUIT");
		probe_conn_reply(&k->c, &k->r);
	}
	probe_conn_close(&k->c);
}

/* ------------------------------------------------------------ output */

static const char *const conform_words[] = { "pass", "fail", "skip" };

static void conform_print(const struct conform_file *f)
{
	printf("%-28s %s%s%s\n", f->name, conform_words[f->result], f->detail.len ? ": " : "",
	       buf_cstr(&f->detail));
	fflush(stdout);
}

static void conform_json(struct conform *k, const int count[3])
{
	struct buf o = BUF_INIT;
	buf_puts(&o, "{\"target\": ");
	jsonw_str(&o, k->o->target);
	buf_printf(&o, ", \"host\": ");
	jsonw_str(&o, k->host);
	buf_printf(&o, ", \"ip\": \"%s\", \"port\": %d, \"tls\": %s, \"dialogues\": [", k->ip,
	           k->port, k->o->tls ? "true" : "false");
	for (int i = 0; i < k->nfiles; i++) {
		const struct conform_file *f = &k->files[i];
		buf_printf(&o, "%s{\"name\": ", i ? ", " : "");
		jsonw_str(&o, f->name);
		buf_printf(&o, ", \"result\": \"%s\", \"about\": ", conform_words[f->result]);
		jsonw_str(&o, f->d.about);
		buf_puts(&o, ", \"detail\": ");
		jsonw_str(&o, buf_cstr(&f->detail));
		buf_putc(&o, '}');
	}
	buf_printf(&o, "], \"passed\": %d, \"failed\": %d, \"skipped\": %d}\n", count[0],
	           count[1], count[2]);
	fputs(buf_cstr(&o), stdout);
	buf_free(&o);
}

/* ------------------------------------------------------------ the run */

static int conform_target(struct conform *k)
{
	struct mx_target t;
	char err[300] = "";
	bool mx_found;
	if (mx_target_parse(k->o->target, &t) < 0) {
		fprintf(stderr, "tern-probe: not a host[:port] or a mail domain: %s\n", k->o->target);
		return -1;
	}
	struct mx *m = mx_new(k->o->resolver, k->o->timeout_ms, err, sizeof err);
	int rc = m ? mx_route(m, &t, &k->l, &mx_found, err, sizeof err) : -1;
	mx_free(m);
	if (rc < 0)
		fprintf(stderr, "tern-probe: %s: %s\n", k->o->target, err);
	k->port = t.port ? t.port : k->o->port;
	return rc;
}

static void conform_vars(struct conform *k)
{
	k->vars.helo = k->o->helo ? k->o->helo : "conform.example";
	snprintf(k->from, sizeof k->from, "conform@%s", k->vars.helo);
	k->vars.from = k->o->from ? k->o->from : k->from;
	snprintf(k->to, sizeof k->to, "postmaster@%s", k->server);
	k->vars.to = k->o->to ? k->o->to : k->to;
}

static int conform_all(struct conform *k)
{
	int count[3] = { 0, 0, 0 };
	if (!k->o->json)
		printf("tern-probe conform: %s [%s] port %d%s, %d dialogues\n", k->host, k->ip,
		       k->port, k->o->tls ? " (STARTTLS first)" : "", k->nfiles);
	for (int i = 0; i < k->nfiles; i++) {
		conform_one(k, &k->files[i]);
		count[k->files[i].result]++;
		if (!k->o->json)
			conform_print(&k->files[i]);
	}
	if (k->o->json)
		conform_json(k, count);
	else
		printf("Summary: %d passed, %d failed, %d skipped\n", count[0], count[1], count[2]);
	return count[CONFORM_FAIL] ? 1 : 0;
}

int conform_run(const struct conform_opts *o)
{
	struct conform k = { .o = o };
	int rc = conform_load(&k) < 0 ? 2 : conform_target(&k) < 0 ? 3 : 0;
	probe_conn_init(&k.c, o->timeout_ms);
	k.c.trace = conform_trace;
	k.c.trace_arg = &k;
	smtp_reply_init(&k.r);
	if (rc == 0 && conform_discover(&k) < 0)
		rc = 3;
	if (rc == 0) {
		conform_vars(&k);
		rc = conform_all(&k);
	}
	for (int i = 0; i < k.nfiles; i++) {
		dialog_free(&k.files[i].d);
		buf_free(&k.files[i].detail);
	}
	free(k.files);
	smtp_reply_free(&k.r);
	buf_free(&k.sent);
	probe_conn_free(&k.c);
	return rc;
}
