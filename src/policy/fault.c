/* fault: the fault rules' parser and matcher (see fault.h). Pure. */
#include "policy/fault.h"

#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/conf.h"
#include "lib/util.h"

#define FAULT_TOKENS 64
#define FAULT_LINE_MAX 2048
#define FAULT_DELAY_MAX_MS (3600u * 1000)   /* an hour: more is a typo */

static const char *const fault_stages[] = {
	[FAULT_CONNECT] = "connect", [FAULT_HELO] = "helo", [FAULT_MAIL] = "mail",
	[FAULT_RCPT] = "rcpt", [FAULT_DATA] = "data", [FAULT_EOM] = "eom",
	[FAULT_STARTTLS] = "starttls", [FAULT_AUTH] = "auth", [FAULT_ANY] = "any",
};

static const char *const fault_actions[] = {
	[FAULT_REPLY] = "reply", [FAULT_DISCONNECT] = "disconnect", [FAULT_CLOSE] = "close",
	[FAULT_DELAY] = "delay", [FAULT_THROTTLE] = "throttle", [FAULT_ABORT] = "abort",
	[FAULT_GREYLIST] = "greylist", [FAULT_NO_STARTTLS] = "no-starttls",
	[FAULT_TLS_FAIL] = "tls-fail", [FAULT_BOUNCE] = "bounce",
};

#define FAULT_NSTAGES (sizeof fault_stages / sizeof fault_stages[0])
#define FAULT_NACTIONS (sizeof fault_actions / sizeof fault_actions[0])

const char *fault_stage_name(enum fault_stage st)
{
	return (unsigned)st < FAULT_NSTAGES ? fault_stages[st] : "?";
}

const char *fault_action_name(enum fault_action a)
{
	return (unsigned)a < FAULT_NACTIONS ? fault_actions[a] : "?";
}

void fault_rules_init(struct fault_rules *r)
{
	r->head = NULL;
	r->tail = &r->head;
	r->n = 0;
}

static void fault_rule_free(struct fault_rule *f)
{
	free(f->line);
	free(f->glob);
	free(f->listener);
	free(f->user);
	free(f->from);
	free(f->to);
	free(f->tag);
	free(f->header_name);
	free(f->header_glob);
	free(f);
}

void fault_rules_free(struct fault_rules *r)
{
	for (struct fault_rule *f = r->head, *next; f; f = next) {
		next = f->next;
		fault_rule_free(f);
	}
	fault_rules_init(r);
}

/* ---- parsing ---- */

/* A line cut into words: each one's value (quotes removed: "a b" is one
 * word) and where it began in the line, for free text. */
struct fault_words {
	size_t n;
	char *v[FAULT_TOKENS];
	size_t at[FAULT_TOKENS];
	char store[FAULT_LINE_MAX + 1];
};

static bool fault_split(const char *line, struct fault_words *w)
{
	size_t i = 0, o = 0;
	w->n = 0;
	while (line[i]) {
		while (line[i] == ' ' || line[i] == '\t')
			i++;
		if (!line[i])
			break;
		if (w->n == FAULT_TOKENS)
			return false;
		w->at[w->n] = i;
		w->v[w->n++] = &w->store[o];
		bool quoted = false;
		while (line[i] && (quoted || (line[i] != ' ' && line[i] != '\t'))) {
			if (line[i] == '"')
				quoted = !quoted;
			else
				w->store[o++] = line[i];
			i++;
		}
		w->store[o++] = '\0';
		if (quoted)
			return false;
	}
	return true;
}

/* The parser's state over one line's words. */
struct fault_p {
	const struct fault_words *w;
	const char *line;
	size_t i;
	char *err;
	size_t errlen;
	const char *origin;
};

__attribute__((format(printf, 2, 3)))
static bool fault_bad(struct fault_p *p, const char *fmt, ...)
{
	int k = snprintf(p->err, p->errlen, "%s: ", p->origin);
	va_list ap;
	va_start(ap, fmt);
	if (k >= 0 && (size_t)k < p->errlen)
		vsnprintf(p->err + k, p->errlen - (size_t)k, fmt, ap);
	va_end(ap);
	return false;
}

static const char *fault_peek(const struct fault_p *p)
{
	return p->i < p->w->n ? p->w->v[p->i] : NULL;
}

static int fault_word(const char *s, const char *const *words, size_t n)
{
	for (size_t i = 0; s && i < n; i++)
		if (words[i] && !strcasecmp(s, words[i]))
			return (int)i;
	return -1;
}

/* "500ms", "2s", "1m", "0": milliseconds. */
static bool fault_duration(const char *s, unsigned *ms)
{
	size_t n = strlen(s);
	unsigned secs;
	if (n > 2 && !strcmp(s + n - 2, "ms")) {
		char num[24];
		if (n - 2 >= sizeof num || strspn(s, "0123456789") != n - 2)
			return false;
		snprintf(num, sizeof num, "%.*s", (int)(n - 2), s);
		if (!conf_parse_duration(num, &secs) || secs > FAULT_DELAY_MAX_MS)
			return false;
		*ms = secs;
		return true;
	}
	if (!conf_parse_duration(s, &secs) || secs > FAULT_DELAY_MAX_MS / 1000)
		return false;
	*ms = secs * 1000;
	return true;
}

static bool fault_uint(const char *s, uint64_t *out)
{
	if (!isdigit((unsigned char)*s))
		return false;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end)
		return false;
	*out = v;
	return true;
}

/* RFC 3463 2: class.subject.detail, the class the code's first digit. */
static bool fault_is_esc(const char *s, unsigned code)
{
	unsigned a, b, c;
	int used = 0;
	if (sscanf(s, "%1u.%3u.%3u%n", &a, &b, &c, &used) != 3 || s[used] || !isdigit((unsigned char)*s))
		return false;
	return a == code / 100;
}

/* CODE [ENHANCED] TEXT... up to "--" or the end. lo..hi: codes allowed. */
static bool fault_reply(struct fault_p *p, struct fault_rule *f, unsigned lo, unsigned hi,
                        bool esc_needed)
{
	const char *c = fault_peek(p);
	uint64_t code;
	if (!c || !fault_uint(c, &code) || strlen(c) != 3 || code < lo || code > hi)
		return fault_bad(p, "%s: expected a reply code from %u to %u, got \"%s\"",
		                 fault_action_name(f->action), lo, hi, c ? c : "");
	f->code = (unsigned)code;
	p->i++;
	const char *e = fault_peek(p);
	if (e && fault_is_esc(e, f->code)) {
		snprintf(f->esc, sizeof f->esc, "%s", e);
		p->i++;
	} else if (esc_needed) {
		return fault_bad(p, "%s: expected an enhanced code %u.x.y after %u (RFC 3463)",
		                 fault_action_name(f->action), f->code / 100, f->code);
	}
	size_t first = p->i;
	while (p->i < p->w->n && strcmp(p->w->v[p->i], "--"))
		p->i++;
	if (p->i > first) {   /* the text as written, spaces and quotes kept */
		size_t from = p->w->at[first];
		size_t to = p->i < p->w->n ? p->w->at[p->i] : strlen(p->line);
		while (to > from && (p->line[to - 1] == ' ' || p->line[to - 1] == '\t'))
			to--;
		if (to - from >= sizeof f->text)
			return fault_bad(p, "the reply text is longer than %d octets", FAULT_TEXT_MAX - 1);
		snprintf(f->text, sizeof f->text, "%.*s", (int)(to - from), p->line + from);
		for (char *t = f->text; *t; t++)
			if ((unsigned char)*t < 32 || *t == 127)
				*t = '?';
	}
	return true;
}

static bool fault_args_delay(struct fault_p *p, struct fault_rule *f)
{
	const char *d = fault_peek(p);
	if (!d || !fault_duration(d, &f->delay_ms))
		return fault_bad(p, "delay: expected a duration such as 500ms, 2s or 1m");
	p->i++;
	if (fault_peek(p) && !strcasecmp(fault_peek(p), "jitter")) {
		p->i++;
		d = fault_peek(p);
		if (!d || !fault_duration(d, &f->jitter_ms))
			return fault_bad(p, "delay: expected a duration after jitter");
		p->i++;
	}
	return true;
}

static bool fault_args_throttle(struct fault_p *p, struct fault_rule *f)
{
	const char *t = fault_peek(p);
	char num[32];
	size_t n = t ? strlen(t) : 0;
	if (!t || n < 3 || n - 2 >= sizeof num || strcmp(t + n - 2, "/s"))
		return fault_bad(p, "throttle: expected a rate such as 100/s or 2k/s");
	snprintf(num, sizeof num, "%.*s", (int)(n - 2), t);
	if (!conf_parse_size(num, &f->amount) || f->amount == 0 || f->amount > 1u << 30)
		return fault_bad(p, "throttle: \"%s\" is not a rate from 1/s to 1G/s", t);
	p->i++;
	return true;
}

/* abort [after] SIZE [CODE [ENHANCED] TEXT...] */
static bool fault_args_abort(struct fault_p *p, struct fault_rule *f)
{
	if (fault_peek(p) && !strcasecmp(fault_peek(p), "after"))
		p->i++;
	const char *s = fault_peek(p);
	if (!s || !conf_parse_size(s, &f->amount))
		return fault_bad(p, "abort: expected a size such as 1000 or 10k");
	p->i++;
	const char *c = fault_peek(p);
	if (c && strcmp(c, "--") && !strchr(c, '=') && !strchr(c, '>'))
		return fault_reply(p, f, 400, 599, false);
	return true;
}

static bool fault_args_greylist(struct fault_p *p, struct fault_rule *f)
{
	f->delay_ms = 60 * 1000;
	const char *d = fault_peek(p);
	if (d && strcmp(d, "--") && !strchr(d, '=') && !strchr(d, '>')) {
		if (!fault_duration(d, &f->delay_ms))
			return fault_bad(p, "greylist: expected a duration such as 1s or 5m");
		p->i++;
	}
	return true;
}

static bool fault_args(struct fault_p *p, struct fault_rule *f)
{
	switch (f->action) {
	case FAULT_REPLY: return fault_reply(p, f, 400, 599, false);
	case FAULT_BOUNCE: return fault_reply(p, f, 500, 599, true);
	case FAULT_DELAY: return fault_args_delay(p, f);
	case FAULT_THROTTLE: return fault_args_throttle(p, f);
	case FAULT_ABORT: return fault_args_abort(p, f);
	case FAULT_GREYLIST: return fault_args_greylist(p, f);
	case FAULT_DISCONNECT: case FAULT_CLOSE: case FAULT_NO_STARTTLS: case FAULT_TLS_FAIL:
		return true;
	}
	return true;
}

/* Where an action may stand: its stages. */
static bool fault_stage_ok(enum fault_action a, enum fault_stage st)
{
	switch (a) {
	case FAULT_ABORT: return st == FAULT_DATA;
	case FAULT_GREYLIST: case FAULT_BOUNCE: return st == FAULT_RCPT;
	case FAULT_NO_STARTTLS: return st == FAULT_CONNECT || st == FAULT_HELO;
	case FAULT_TLS_FAIL: return st == FAULT_STARTTLS;
	default: return true;
	}
}

static bool fault_cond_str(struct fault_p *p, char **slot, const char *key, const char *v)
{
	if (*slot)
		return fault_bad(p, "%s= given twice", key);
	if (!*v)
		return fault_bad(p, "%s= needs a value", key);
	*slot = util_xstrdup(v);
	return true;
}

static bool fault_cond_header(struct fault_p *p, struct fault_rule *f, const char *v)
{
	const char *colon = strchr(v, ':');
	if (!colon || colon == v || f->header_name)
		return fault_bad(p, "header= expects \"Name: GLOB\", once");
	f->header_name = util_xstrdup(v);
	f->header_name[colon - v] = '\0';
	const char *g = colon + 1;
	while (*g == ' ' || *g == '\t')
		g++;
	f->header_glob = util_xstrdup(*g ? g : "*");
	return true;
}

static bool fault_cond_count(struct fault_p *p, unsigned *slot, const char *key, const char *v)
{
	uint64_t n;
	if (!fault_uint(v, &n) || n == 0 || n > 1000000000)
		return fault_bad(p, "%s= expects a count from 1", key);
	*slot = (unsigned)n;
	return true;
}

static bool fault_cond_odds(struct fault_p *p, struct fault_rule *f, const char *v)
{
	char *end;
	errno = 0;
	double d = strtod(v, &end);
	if (!*v || *end || errno || !(d >= 0.0 && d <= 1.0))
		return fault_bad(p, "odds= expects a probability from 0 to 1, such as 0.25");
	f->has_odds = true;
	f->odds = d;
	return true;
}

/* size>N, rate>N/min */
static bool fault_cond_gt(struct fault_p *p, struct fault_rule *f, const char *w)
{
	const char *v = strchr(w, '>') + 1;
	if (!strncasecmp(w, "size>", 5)) {
		if (!conf_parse_size(v, &f->size_gt))
			return fault_bad(p, "size> expects a size such as 1000 or 10k");
		f->has_size = true;
		return true;
	}
	if (!strncasecmp(w, "rate>", 5)) {
		char num[24];
		size_t n = strlen(v);
		uint64_t r;
		if (n < 5 || n - 4 >= sizeof num || strcasecmp(v + n - 4, "/min"))
			return fault_bad(p, "rate> expects N/min, such as rate>10/min");
		snprintf(num, sizeof num, "%.*s", (int)(n - 4), v);
		if (!fault_uint(num, &r) || r > 1000000)
			return fault_bad(p, "rate> expects N/min with N up to 1000000");
		f->has_rate = true;
		f->rate_gt = (unsigned)r;
		return true;
	}
	return fault_bad(p, "unknown condition \"%s\"", w);
}

static bool fault_cond(struct fault_p *p, struct fault_rule *f, const char *w)
{
	const char *eq = strchr(w, '=');
	const char *gt = strchr(w, '>');
	if (gt && (!eq || gt < eq))
		return fault_cond_gt(p, f, w);
	if (!eq)
		return fault_bad(p, "\"%s\": expected a condition key=value (after \"--\" for a "
		                 "reply's text)", w);
	char key[16];
	snprintf(key, sizeof key, "%.*s", (int)(eq - w < 15 ? eq - w : 15), w);
	const char *v = eq + 1;
	if (!strcasecmp(key, "listener")) return fault_cond_str(p, &f->listener, key, v);
	if (!strcasecmp(key, "user")) return fault_cond_str(p, &f->user, key, v);
	if (!strcasecmp(key, "from")) return fault_cond_str(p, &f->from, key, v);
	if (!strcasecmp(key, "to")) return fault_cond_str(p, &f->to, key, v);
	if (!strcasecmp(key, "tag")) return fault_cond_str(p, &f->tag, key, v);
	if (!strcasecmp(key, "header")) return fault_cond_header(p, f, v);
	if (!strcasecmp(key, "nth")) return fault_cond_count(p, &f->nth, key, v);
	if (!strcasecmp(key, "every")) return fault_cond_count(p, &f->every, key, v);
	if (!strcasecmp(key, "odds")) return fault_cond_odds(p, f, v);
	if (!strcasecmp(key, "ip")) {
		if (f->has_ip || !cidr_parse(v, &f->ip))
			return fault_bad(p, "ip= expects a network such as 192.0.2.0/24, once");
		f->has_ip = true;
		return true;
	}
	return fault_bad(p, "unknown condition \"%s\"", key);
}

static bool fault_conds(struct fault_p *p, struct fault_rule *f)
{
	if (fault_peek(p) && !strcmp(fault_peek(p), "--"))
		p->i++;
	for (; p->i < p->w->n; p->i++)
		if (!fault_cond(p, f, p->w->v[p->i]))
			return false;
	if (f->nth && f->every)
		return fault_bad(p, "nth= and every= cannot be combined");
	if (f->header_name && f->stage != FAULT_EOM && f->stage != FAULT_ANY)
		return fault_bad(p, "header= holds only at eom");
	return true;
}

/* STAGE [GLOB] ACTION */
static bool fault_head(struct fault_p *p, struct fault_rule *f)
{
	int st = fault_word(fault_peek(p), fault_stages, FAULT_NSTAGES);
	if (st < 0)
		return fault_bad(p, "\"%s\" is not a stage (connect, helo, mail, rcpt, data, eom, "
		                 "starttls, auth, any)", fault_peek(p));
	f->stage = (enum fault_stage)st;
	p->i++;
	int a = fault_word(fault_peek(p), fault_actions, FAULT_NACTIONS);
	if (a < 0 && fault_peek(p)) {
		const char *g = fault_peek(p);
		if (strcmp(g, "*"))
			f->glob = util_xstrdup(g);
		p->i++;
		a = fault_word(fault_peek(p), fault_actions, FAULT_NACTIONS);
	}
	if (a < 0)
		return fault_bad(p, "expected an action (reply, disconnect, close, delay, throttle, "
		                 "abort, greylist, no-starttls, tls-fail, bounce), got \"%s\"",
		                 fault_peek(p) ? fault_peek(p) : "nothing");
	f->action = (enum fault_action)a;
	p->i++;
	if (f->glob && f->stage != FAULT_MAIL && f->stage != FAULT_RCPT && f->stage != FAULT_DATA &&
	    f->stage != FAULT_EOM && f->stage != FAULT_ANY)
		return fault_bad(p, "an address pattern holds only at mail, rcpt, data, eom or any");
	if (!fault_stage_ok(f->action, f->stage))
		return fault_bad(p, "%s cannot stand at %s", fault_action_name(f->action),
		                 fault_stage_name(f->stage));
	return true;
}

bool fault_parse_line(struct fault_rules *r, const char *line, const char *origin, char *err,
                      size_t errlen)
{
	while (*line == ' ' || *line == '\t')
		line++;
	size_t n = strlen(line);
	while (n && (line[n - 1] == ' ' || line[n - 1] == '\t' || line[n - 1] == '\r'))
		n--;
	if (n == 0 || *line == '#')
		return true;
	struct fault_words *w = util_xcalloc(1, sizeof *w);
	char copy[FAULT_LINE_MAX + 1];
	struct fault_rule *f = util_xcalloc(1, sizeof *f);
	snprintf(f->origin, sizeof f->origin, "%s", origin);
	struct fault_p p = { w, copy, 0, err, errlen, origin };
	bool ok = false;
	if (n > FAULT_LINE_MAX)
		fault_bad(&p, "the line is longer than %d octets", FAULT_LINE_MAX);
	else if (snprintf(copy, sizeof copy, "%.*s", (int)n, line), !fault_split(copy, w))
		fault_bad(&p, "an unclosed quote, or more than %d words", FAULT_TOKENS);
	else
		ok = fault_head(&p, f) && fault_args(&p, f) && fault_conds(&p, f);
	free(w);
	if (!ok) {
		fault_rule_free(f);
		return false;
	}
	f->line = util_xstrdup(copy);
	*r->tail = f;
	r->tail = &f->next;
	r->n++;
	return true;
}

bool fault_parse_text(struct fault_rules *r, const char *text, const char *name, char *err,
                      size_t errlen)
{
	struct fault_rules add;
	fault_rules_init(&add);
	char origin[FAULT_ORIGIN_MAX];
	size_t lineno = 0;
	for (const char *p = text; p && *p;) {
		size_t len = strcspn(p, "\n");
		char *line = util_xcalloc(1, len + 1);
		memcpy(line, p, len);
		snprintf(origin, sizeof origin, "%s:%zu", name, ++lineno);
		bool ok = strlen(line) == len ? fault_parse_line(&add, line, origin, err, errlen)
		                              : (snprintf(err, errlen, "%s: a NUL octet", origin), false);
		free(line);
		if (!ok) {
			fault_rules_free(&add);
			return false;
		}
		p += len;
		if (*p)
			p++;
	}
	if (add.head) {
		*r->tail = add.head;
		r->tail = add.tail;
		r->n += add.n;
	}
	return true;
}

/* ---- matching ---- */

static bool fault_glob(const char *glob, const char *s)
{
	return fnmatch(glob, s ? s : "", FNM_CASEFOLD) == 0;
}

/* Does any recipient match glob? */
static bool fault_any_rcpt(const char *glob, const struct fault_facts *f)
{
	for (size_t i = 0; i < f->nrcpt; i++)
		if (fault_glob(glob, f->rcpts[i]))
			return true;
	return false;
}

/* RFC 5233 subaddress: "user+TAG@domain" has the tag TAG. */
static bool fault_has_tag(const char *addr, const char *tag)
{
	const char *at = strrchr(addr, '@');
	const char *plus = strchr(addr, '+');
	if (!plus || (at && plus > at))
		return false;
	size_t n = at ? (size_t)(at - plus - 1) : strlen(plus + 1);
	return n == strlen(tag) && !strncasecmp(plus + 1, tag, n);
}

static bool fault_tagged(const char *tag, const struct fault_facts *f)
{
	for (size_t i = 0; i < f->nrcpt; i++)
		if (f->rcpts[i] && fault_has_tag(f->rcpts[i], tag))
			return true;
	return false;
}

/* The rule's pattern against the stage's address: MAIL's sender, the
 * RCPT, any recipient at data and eom; no address: only "*" holds. */
static bool fault_glob_holds(const struct fault_rule *r, const struct fault_facts *f)
{
	if (!r->glob)
		return true;
	switch (f->stage) {
	case FAULT_MAIL: case FAULT_RCPT: return f->addr && fault_glob(r->glob, f->addr);
	case FAULT_DATA: case FAULT_EOM: return fault_any_rcpt(r->glob, f);
	default: return false;
	}
}

static bool fault_header_holds(const struct fault_rule *r, const struct fault_facts *f)
{
	if (!f->header)
		return false;
	char val[FAULT_TEXT_MAX];
	size_t len;
	const char *v;
	for (size_t k = 0; (v = f->header(f->ctx, r->header_name, k, &len)); k++) {
		while (len && (*v == ' ' || *v == '\t')) {
			v++;
			len--;
		}
		size_t m = 0;
		for (size_t i = 0; i < len && m < sizeof val - 1; i++)   /* unfolded: RFC 5322 2.2.3 */
			if (v[i] != '\r' && v[i] != '\n')
				val[m++] = v[i];
		while (m && val[m - 1] == ' ')
			m--;
		val[m] = '\0';
		if (fault_glob(r->header_glob, val))
			return true;
	}
	return false;
}

static bool fault_conds_hold(const struct fault_rule *r, const struct fault_facts *f)
{
	if (r->listener && (!f->listener || strcasecmp(r->listener, f->listener)))
		return false;
	if (r->has_ip && (!f->client || !cidr_list_match(&(struct cidr_list){ 1, { r->ip } },
	                                                  f->client)))
		return false;
	if (r->user && (!f->user || !fault_glob(r->user, f->user)))
		return false;
	if (r->from && (!f->sender || !fault_glob(r->from, f->sender)))
		return false;
	if (r->to && !fault_any_rcpt(r->to, f))
		return false;
	if (r->tag && !fault_tagged(r->tag, f))
		return false;
	if (r->has_size && (!f->has_size || f->size <= r->size_gt))
		return false;
	if (r->header_name && !fault_header_holds(r, f))
		return false;
	if (r->has_rate && (!f->rate || f->rate(f->ctx, f->stage) <= r->rate_gt))
		return false;
	return true;
}

const struct fault_rule *fault_match(struct fault_rules *rules, const struct fault_facts *f)
{
	for (struct fault_rule *r = rules ? rules->head : NULL; r; r = r->next) {
		if (r->stage != f->stage && r->stage != FAULT_ANY)
			continue;
		if (!fault_stage_ok(r->action, f->stage))   /* "any": what fits here */
			continue;
		if (!fault_glob_holds(r, f) || !fault_conds_hold(r, f))
			continue;
		r->matches++;
		if (r->nth && r->matches != r->nth)
			continue;
		if (r->every && r->matches % r->every != 0)
			continue;
		if (r->has_odds && !(f->random < r->odds))
			continue;
		return r;
	}
	return NULL;
}
