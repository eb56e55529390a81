/* faults: the test mode's fault rules carried out in a session (see
 * faults.h for the sets in force, policy/fault.h for the grammar).
 *
 * The session asks here first at each policy stage (session_ask), at
 * STARTTLS and at the end of the message; with no rules in force at its
 * start, s->faults is NULL and nothing here runs. A rule that fires is
 * logged (EK_FAULT, naming its FILE:LINE) and carried out: a reply of its
 * own or the esc table's given to the command's proceed as the policy's
 * refusal would be (so each command cleans up as it always does), a close,
 * a timer before the policy is asked (the input waits, as for any
 * answer), a rate limit on the session's output (libevent's token
 * bucket: timer-paced writes), the greylist's triples, a recipient
 * accepted and failed at once with a report (SPOOL_ERROR, as pickup's
 * unknown users), a broken TLS handshake.
 */
#include "smtpd/faults.h"

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/hmap.h"
#include "lib/log.h"
#include "lib/util.h"
#include "net/wire.h"
#include "policy/fault.h"
#include "smtpd/session_priv.h"
#include "smtpd/transcript.h"

#define FAULTS_GREY_MAX 100000           /* triples remembered, at most */
#define FAULTS_GREY_LIFETIME_MS (36ULL * 86400 * 1000)   /* a triple is forgotten after */
#define FAULTS_RATE_MAX 1024             /* clients' counters, at most */
#define FAULTS_RATE_SLOTS 60             /* one a second: the last minute */
#define FAULTS_NSTAGES (FAULT_ANY + 1)

/* A greylisted triple (client IP, sender, recipient), in the table and in
 * the order it was first seen: the oldest go first. */
struct faults_grey {
	struct hmap_node node;
	struct faults_grey *newer;
	uint64_t first_ms;
	char key[];
};

/* A client's commands of each stage over the last minute, a slot a second
 * (about 2.6 KiB a client). */
struct faults_rate {
	struct hmap_node node;
	struct faults_rate *newer;
	struct {
		int64_t second;
		uint32_t count[FAULTS_NSTAGES];
	} slot[FAULTS_RATE_SLOTS];
	char ip[INET6_ADDRSTRLEN];
};

struct faults {
	struct fault_rules runtime;
	struct hmap grey;
	struct faults_grey *grey_old, *grey_new;
	struct hmap rates;
	struct faults_rate *rate_old, *rate_new;
};

/* What a session's rules left behind for later in the session. */
struct faults_session {
	struct event *timer;            /* a delay: the answer waits for it */
	struct policy_query q;          /* the delayed stage's query, */
	session_proceed_fn *fn;         /* its proceed, */
	void (*go)(struct session *s);  /* or a command's own work (STARTTLS) */
	session_proceed_fn *bounce_fn;  /* bounce: RCPT's own proceed */
	char bounce[FAULT_TEXT_MAX + FAULT_ORIGIN_MAX + 64];   /* its last_reply */
	bool no_tls;                    /* no-starttls fired */
	bool abort;                     /* abort fired at DATA: */
	uint64_t abort_after;           /* the octets the message may have */
	char abort_text[FAULT_TEXT_MAX + 32];   /* its reply, "" for 451 4.3.0 */
	char abort_origin[FAULT_ORIGIN_MAX];
	struct ev_token_bucket_cfg *bucket;   /* throttle */
};

static struct faults *faults_server(struct server *srv)
{
	if (!srv->faults) {
		srv->faults = util_xcalloc(1, sizeof *srv->faults);
		fault_rules_init(&srv->faults->runtime);
	}
	return srv->faults;
}

/* ---- the runtime set (faults.h) ---- */

bool faults_replace(struct server *srv, const char *text, char *err, size_t errlen)
{
	struct fault_rules fresh;
	fault_rules_init(&fresh);
	if (!fault_parse_text(&fresh, text, "runtime", err, errlen))
		return false;
	struct faults *f = faults_server(srv);
	fault_rules_free(&f->runtime);
	f->runtime = fresh;
	if (!f->runtime.head)
		f->runtime.tail = &f->runtime.head;
	log_info("fault rules: %zu runtime rule%s in force", fresh.n, fresh.n == 1 ? "" : "s");
	return true;
}

void faults_clear(struct server *srv)
{
	if (srv->faults)
		fault_rules_free(&srv->faults->runtime);
}

static void faults_text_of(const struct fault_rules *r, struct buf *out)
{
	for (const struct fault_rule *f = r ? r->head : NULL; f; f = f->next)
		buf_printf(out, "%s\n", f->line);
}

void faults_text(const struct server *srv, struct buf *out)
{
	buf_puts(out, "# runtime\n");
	faults_text_of(srv->faults ? &srv->faults->runtime : NULL, out);
	buf_printf(out, "# fault_rules %s\n", srv->set->conf.fault_rules);
	faults_text_of(srv->set->faults, out);
}

static void faults_grey_free(struct hmap_node *n, void *ctx)
{
	(void)ctx;
	free(HMAP_ENTRY(n, struct faults_grey, node));
}

static void faults_rate_free(struct hmap_node *n, void *ctx)
{
	(void)ctx;
	free(HMAP_ENTRY(n, struct faults_rate, node));
}

void faults_free(struct server *srv)
{
	struct faults *f = srv->faults;
	if (!f)
		return;
	fault_rules_free(&f->runtime);
	hmap_clear(&f->grey, faults_grey_free, NULL);
	hmap_clear(&f->rates, faults_rate_free, NULL);
	free(f);
	srv->faults = NULL;
}

/* ---- the greylist ---- */

static void faults_grey_forget_oldest(struct faults *f)
{
	struct faults_grey *g = f->grey_old;
	f->grey_old = g->newer;
	if (!f->grey_old)
		f->grey_new = NULL;
	hmap_del(&f->grey, &g->node);
	free(g);
}

static struct faults_grey *faults_grey_find(struct faults *f, const char *key, size_t h)
{
	for (struct hmap_node *n = hmap_first(&f->grey, h); n; n = hmap_next(n)) {
		struct faults_grey *g = HMAP_ENTRY(n, struct faults_grey, node);
		if (!strcmp(g->key, key))
			return g;
	}
	return NULL;
}

/* Is this try of the triple to wait (true), or has it waited enough? The
 * first try is remembered; old triples and the oldest beyond the cap go. */
static bool faults_greylisted(struct session *s, const char *rcpt, unsigned wait_ms)
{
	struct faults *f = faults_server(s->srv);
	uint64_t now = util_now_ms();
	while (f->grey_old && now - f->grey_old->first_ms > FAULTS_GREY_LIFETIME_MS)
		faults_grey_forget_oldest(f);
	char key[INET6_ADDRSTRLEN + 2 * POLICY_ADDR_MAX + 4];
	snprintf(key, sizeof key, "%s\n%s\n%s", s->ip, s->tx ? s->tx->sender : "", rcpt);
	util_lower(key);
	size_t h = hmap_hash(key);
	struct faults_grey *g = faults_grey_find(f, key, h);
	if (g)
		return now - g->first_ms < wait_ms;
	if (f->grey.n >= FAULTS_GREY_MAX)
		faults_grey_forget_oldest(f);
	g = util_xcalloc(1, sizeof *g + strlen(key) + 1);
	strcpy(g->key, key);
	g->first_ms = now;
	hmap_add(&f->grey, &g->node, h);
	if (f->grey_new)
		f->grey_new->newer = g;
	else
		f->grey_old = g;
	f->grey_new = g;
	return true;
}

/* ---- rates: a client's commands of a stage in the last minute ---- */

static struct faults_rate *faults_rate_of(struct faults *f, const char *ip)
{
	size_t h = hmap_hash(ip);
	for (struct hmap_node *n = hmap_first(&f->rates, h); n; n = hmap_next(n)) {
		struct faults_rate *r = HMAP_ENTRY(n, struct faults_rate, node);
		if (!strcmp(r->ip, ip))
			return r;
	}
	if (f->rates.n >= FAULTS_RATE_MAX) {   /* the client seen first goes */
		struct faults_rate *old = f->rate_old;
		f->rate_old = old->newer;
		hmap_del(&f->rates, &old->node);
		free(old);
	}
	struct faults_rate *r = util_xcalloc(1, sizeof *r);
	snprintf(r->ip, sizeof r->ip, "%s", ip);
	hmap_add(&f->rates, &r->node, h);
	if (f->rate_old)
		f->rate_new->newer = r;
	else
		f->rate_old = r;
	f->rate_new = r;
	return r;
}

static void faults_rate_count(struct session *s, enum fault_stage st)
{
	struct faults_rate *r = faults_rate_of(faults_server(s->srv), s->ip);
	int64_t now = (int64_t)(util_now_ms() / 1000);
	size_t i = (size_t)(now % FAULTS_RATE_SLOTS);
	if (r->slot[i].second != now) {
		r->slot[i].second = now;
		memset(r->slot[i].count, 0, sizeof r->slot[i].count);
	}
	r->slot[i].count[st]++;
}

static unsigned faults_rate(void *ctx, enum fault_stage st)
{
	struct session *s = ctx;
	struct faults_rate *r = faults_rate_of(faults_server(s->srv), s->ip);
	int64_t now = (int64_t)(util_now_ms() / 1000);
	unsigned n = 0;
	for (size_t i = 0; i < FAULTS_RATE_SLOTS; i++)
		if (now - r->slot[i].second < FAULTS_RATE_SLOTS)
			n += r->slot[i].count[st];
	return n;
}

/* ---- a session's state ---- */

void faults_open(struct session *s)
{
	bool runtime = s->srv->faults && s->srv->faults->runtime.n > 0;
	if (!s->set->faults && !runtime)
		return;
	s->faults = util_xcalloc(1, sizeof *s->faults);
}

/* The throttle ends: libevent keeps a pointer to the bucket, taken off
 * every layer before it goes. */
static void faults_unthrottle(struct session *s)
{
	struct faults_session *fs = s->faults;
	if (!fs->bucket)
		return;
	for (struct bufferevent *b = s->bev; b; b = bufferevent_get_underlying(b))
		bufferevent_set_rate_limit(b, NULL);
	ev_token_bucket_cfg_free(fs->bucket);
	fs->bucket = NULL;
}

void faults_close(struct session *s)
{
	struct faults_session *fs = s->faults;
	if (fs->timer) {   /* a delay under way: its wait ends with the session */
		event_free(fs->timer);
		fs->timer = NULL;
		s->pending--;
		s->asking = false;
	}
	if (fs->bucket && s->bev) {   /* closing: taking the limit off calls nobody */
		bufferevent_setcb(s->bev, NULL, NULL, NULL, NULL);
		bufferevent_disable(s->bev, EV_READ);
	}
	faults_unthrottle(s);
	free(fs);
	s->faults = NULL;
}

bool faults_no_tls(const struct session *s)
{
	return s->faults && s->faults->no_tls;
}

/* ---- matching ---- */

static const char *faults_header(void *ctx, const char *name, size_t nth, size_t *len)
{
	struct session *s = ctx;
	if (!s->tx)
		return NULL;
	long k = msghead_find(&s->tx->in.head, name, nth + 1);
	return k < 0 ? NULL : msghead_value(&s->tx->in.head, (size_t)k, len);
}

static double faults_random(void)
{
	return (double)(arc4random() >> 8) / (double)(1u << 24);
}

/* The facts of a stage, for fault_match: rcpts, up to max, the
 * transaction's recipients (and RCPT's own). */
static void faults_facts(struct session *s, enum fault_stage st, struct fault_facts *f,
                         const char **rcpts, size_t max, char *addr, size_t addrlen)
{
	struct tx *tx = s->tx;
	memset(f, 0, sizeof *f);
	f->stage = st;
	if (st == FAULT_MAIL) {
		addr_format(&s->args.addr, addr, addrlen);
		f->addr = f->sender = addr;
		f->has_size = s->args.mp.has_size;
		f->size = s->args.mp.size;
	} else if (tx) {
		f->sender = tx->sender;
		f->has_size = tx->mp.has_size || st == FAULT_EOM;
		f->size = st == FAULT_EOM ? tx->dp.size : tx->mp.size;
	}
	for (size_t i = 0; tx && i < tx->nrcpt && f->nrcpt + 1 < max; i++)
		if (i == 0 || strcmp(tx->rcpt[i].orig, tx->rcpt[i - 1].orig))
			rcpts[f->nrcpt++] = tx->rcpt[i].orig;
	if (st == FAULT_RCPT)
		f->addr = rcpts[f->nrcpt++] = s->args.orig;
	f->rcpts = rcpts;
	f->client = (const struct sockaddr *)&s->peer;
	f->listener = s->local;
	f->user = st == FAULT_AUTH ? s->args.user : s->client.authed ? s->user : NULL;
	f->header = st == FAULT_EOM ? faults_header : NULL;
	f->rate = faults_rate;
	f->ctx = s;
	f->random = faults_random();
}

/* The rule that fires at this stage: the runtime set's first, then the
 * session's configured set. */
static const struct fault_rule *faults_match(struct session *s, enum fault_stage st)
{
	const char *rcpts[POLICY_TARGETS_MAX / 4];
	char addr[POLICY_ADDR_MAX];
	struct fault_facts f;
	faults_rate_count(s, st);
	faults_facts(s, st, &f, rcpts, sizeof rcpts / sizeof rcpts[0], addr, sizeof addr);
	const struct fault_rule *r = NULL;
	if (s->srv->faults)
		r = fault_match(&s->srv->faults->runtime, &f);
	if (!r && s->set->faults)
		r = fault_match(s->set->faults, &f);
	return r;
}

/* Every rule that fires says so, with its FILE:LINE. */
static void faults_log(struct session *s, const struct fault_rule *r, enum fault_stage st,
                       const char *what)
{
	struct ev e;
	session_event(s, &e, EK_FAULT, LOG_INFO, s->tx ? s->tx->qid : NULL);
	ev_add(&e, "rule", "%s", r->origin);
	ev_add(&e, "stage", "%s", fault_stage_name(st));
	ev_add(&e, "action", "%s", fault_action_name(r->action));
	char from[POLICY_ADDR_MAX];
	if (st == FAULT_MAIL && addr_format(&s->args.addr, from, sizeof from))
		ev_add(&e, "from", "<%s>", from);
	if (st == FAULT_RCPT)
		ev_add(&e, "to", "<%s>", s->args.orig);
	if (what)
		ev_add(&e, "result", "%s", what);
	ev_emit(&e);
	if (s->rec)   /* the session's transcript says why, beside the reply */
		transcript_note(s, "fault rule %s fired: %s at %s%s%s", r->origin,
		                fault_action_name(r->action), fault_stage_name(st), what ? ": " : "",
		                what ? what : "");
}

/* ---- carrying a rule out ---- */

/* A rule's own reply line: "CODE ESC TEXT", the enhanced code only where
 * the session gives them (RFC 2034: after EHLO). */
static void faults_line(struct session *s, unsigned code, const char *esc, const char *text,
                        char *out, size_t n)
{
	bool with_esc = *esc && (s->esmtp || !s->greeted);
	snprintf(out, n, "%u %s%s%s", code, with_esc ? esc : "", with_esc ? " " : "",
	         *text ? text : "Error (fault rule)");
}

/* A refusal: given to the command's proceed as the policy's would be
 * (fn), or replied at once (STARTTLS, which has none). */
static void faults_refuse(struct session *s, session_proceed_fn *fn, const struct policy_answer *a)
{
	if (fn)
		session_answer_now(s, fn, a);
	else
		session_refusal(s, a);
}

/* reply: the rule's line; a 421 (RFC 5321 3.8) and any refusal of the
 * connection close after it. */
static void faults_reply(struct session *s, const struct fault_rule *r, enum fault_stage st,
                         session_proceed_fn *fn)
{
	char line[FAULT_TEXT_MAX + 32];
	faults_line(s, r->code, r->esc, r->text, line, sizeof line);
	faults_log(s, r, st, line);
	struct policy_answer a;
	memset(&a, 0, sizeof a);
	a.text = line;
	a.why = "fault rule";
	a.close = st == FAULT_CONNECT || r->code == 421;
	faults_refuse(s, fn, &a);
}

/* disconnect: 421 4.4.2 and close. */
static void faults_disconnect(struct session *s, const struct fault_rule *r, enum fault_stage st,
                              session_proceed_fn *fn)
{
	faults_log(s, r, st, "421, closing");
	const struct esc_reply *er = esc_get(R_FAULT_CLOSING);
	char text[FAULT_TEXT_MAX], line[FAULT_TEXT_MAX + 32];
	snprintf(text, sizeof text, "%s %s", s->conf->hostname, er->text);
	faults_line(s, (unsigned)er->code, er->esc, text, line, sizeof line);
	struct policy_answer a;
	memset(&a, 0, sizeof a);
	a.text = line;   /* a line of its own: AUTH's proceed takes no arguments */
	a.why = "fault rule";
	a.close = true;
	faults_refuse(s, fn, &a);
}

/* A delay is over: the policy's answer (or the command's work) now. */
static void faults_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct session *s = arg;
	struct faults_session *fs = s->faults;
	event_free(fs->timer);
	fs->timer = NULL;
	if (!session_wait_over(s))
		return;
	if (fs->go)
		fs->go(s);
	else
		session_ask_policy(s, &fs->q, fs->fn);
	session_go_on(s);
}

/* delay: the input waits on a timer of the loop, then the stage goes on
 * as it would have. */
static void faults_delay(struct session *s, const struct fault_rule *r, enum fault_stage st,
                         const struct policy_query *q, session_proceed_fn *fn,
                         void (*go)(struct session *s))
{
	struct faults_session *fs = s->faults;
	unsigned ms = r->delay_ms;
	if (r->jitter_ms)
		ms += (unsigned)(faults_random() * (r->jitter_ms + 1.0));
	char what[48];
	snprintf(what, sizeof what, "waiting %ums", ms);
	faults_log(s, r, st, what);
	if (q)
		fs->q = *q;
	fs->fn = fn;
	fs->go = go;
	fs->timer = evtimer_new(s->srv->base, faults_timer_cb, s);
	if (!fs->timer)
		log_panic("faults: cannot create a timer");
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };
	session_wait(s);
	evtimer_add(fs->timer, &tv);
}

/* throttle: the session's output through a token bucket from now on
 * (libevent's rate limit on the socket, timer-paced); direct writes,
 * which would pass it, stop. A tenth of the rate every 100 ms, or the
 * rate every second when it is under 10 octets. STARTTLS ends it. */
static void faults_throttle(struct session *s, const struct fault_rule *r, enum fault_stage st)
{
	struct faults_session *fs = s->faults;
	faults_log(s, r, st, NULL);
	if (!s->bev)
		return;
	struct timeval tick = { 0, 100 * 1000 };
	size_t per = (size_t)(r->amount / 10);
	if (r->amount < 10) {
		tick.tv_sec = 1;
		tick.tv_usec = 0;
		per = (size_t)r->amount;
	}
	struct ev_token_bucket_cfg *b =
	    ev_token_bucket_cfg_new(EV_RATE_LIMIT_MAX, EV_RATE_LIMIT_MAX, per, per, &tick);
	if (!b)
		log_panic("faults: cannot make a token bucket");
	if (s->direct) {
		wire_indirect(s->bev);
		s->direct = false;
	}
	faults_unthrottle(s);
	struct bufferevent *sock = s->bev;   /* under TLS, the socket's: OpenSSL's
	                                        records are what is paced */
	while (bufferevent_get_underlying(sock))
		sock = bufferevent_get_underlying(sock);
	bufferevent_set_rate_limit(sock, b);
	fs->bucket = b;
}

/* bounce: RCPT's proceed, then its new recipients queued failed: the
 * scheduler returns them at once with a report (SPOOL_ERROR). */
static void faults_bounce_proceed(struct session *s, const struct policy_answer *a)
{
	session_proceed_fn *fn = s->faults->bounce_fn;
	fn(s, a);
	struct tx *tx = s->tx;
	if (!a->ok || !tx || !s->faults)
		return;
	for (size_t i = tx->rcpt_before; i < tx->nrcpt; i++) {
		tx->rcpt[i].transport = SPOOL_ERROR;
		if (tx->rcpt[i].held == SPOOL_CAPTURED) {   /* returned, not kept: its report is */
			tx->rcpt[i].held = 0;
			free(tx->rcpt[i].inbox);
			tx->rcpt[i].inbox = NULL;
		}
		free(tx->rcpt[i].last_reply);
		tx->rcpt[i].last_reply = util_xstrdup(s->faults->bounce);
	}
}

static void faults_bounce(struct session *s, const struct fault_rule *r,
                          const struct policy_query *q, session_proceed_fn *fn)
{
	struct faults_session *fs = s->faults;
	/* "ESC ... said: CODE ESC TEXT": the report's Status and
	 * Diagnostic-Code (dsn.c) */
	snprintf(fs->bounce, sizeof fs->bounce, "%s fault rule %s said: %u %s %s", r->esc, r->origin,
	         r->code, r->esc, r->text);
	fs->bounce_fn = fn;
	faults_log(s, r, FAULT_RCPT, "accepted, to be returned");
	session_ask_policy(s, q, faults_bounce_proceed);
}

static bool faults_greylist(struct session *s, const struct fault_rule *r,
                            session_proceed_fn *fn)
{
	if (!faults_greylisted(s, s->args.orig, r->delay_ms)) {
		faults_log(s, r, FAULT_RCPT, "passed");
		return false;
	}
	faults_log(s, r, FAULT_RCPT, "451 4.7.1 greylisted");
	struct policy_answer a;
	memset(&a, 0, sizeof a);
	a.reply = R_GREYLISTED;
	a.why = "fault rule: greylisted";
	faults_refuse(s, fn, &a);
	return true;
}

/* abort: the message may have that many octets; the rest is read to its
 * end and the whole refused then (faults_data_end). */
static void faults_abort(struct session *s, const struct fault_rule *r)
{
	struct faults_session *fs = s->faults;
	fs->abort = true;
	fs->abort_after = r->amount;
	fs->abort_text[0] = '\0';
	if (r->code)
		faults_line(s, r->code, r->esc, r->text, fs->abort_text, sizeof fs->abort_text);
	snprintf(fs->abort_origin, sizeof fs->abort_origin, "%s", r->origin);
	char what[64];
	snprintf(what, sizeof what, "after %llu octets", (unsigned long long)r->amount);
	faults_log(s, r, FAULT_DATA, what);
}

static void faults_close_now(struct session *s, const struct fault_rule *r, enum fault_stage st)
{
	faults_log(s, r, st, "closed");
	session_close_after_flush(s);
}

static enum fault_stage faults_stage(enum policy_stage st)
{
	switch (st) {
	case POLICY_CONNECT: return FAULT_CONNECT;
	case POLICY_HELO: return FAULT_HELO;
	case POLICY_MAIL: return FAULT_MAIL;
	case POLICY_RCPT: return FAULT_RCPT;
	case POLICY_DATA: return FAULT_DATA;
	case POLICY_EOM: return FAULT_EOM;
	case POLICY_AUTH: return FAULT_AUTH;
	}
	return FAULT_ANY;
}

bool faults_ask(struct session *s, const struct policy_query *q, session_proceed_fn *fn)
{
	enum fault_stage st = faults_stage(q->stage);
	if (st == FAULT_DATA)
		s->faults->abort = false;
	const struct fault_rule *r = faults_match(s, st);
	if (!r)
		return false;
	switch (r->action) {
	case FAULT_REPLY: faults_reply(s, r, st, fn); return true;
	case FAULT_DISCONNECT: faults_disconnect(s, r, st, fn); return true;
	case FAULT_CLOSE: faults_close_now(s, r, st); return true;
	case FAULT_DELAY: faults_delay(s, r, st, q, fn, NULL); return true;
	case FAULT_THROTTLE: faults_throttle(s, r, st); return false;
	case FAULT_ABORT: faults_abort(s, r); return false;
	case FAULT_GREYLIST: return faults_greylist(s, r, fn);
	case FAULT_BOUNCE: faults_bounce(s, r, q, fn); return true;
	case FAULT_NO_STARTTLS:
		s->faults->no_tls = true;
		faults_log(s, r, st, NULL);
		return false;
	case FAULT_TLS_FAIL: return false;   /* STARTTLS only */
	}
	return false;
}

/* tls-fail: 220, then what a broken peer sends instead of a ServerHello:
 * a fatal handshake_failure alert (RFC 8446 6, 6.2), and the close. */
static void faults_tls_fail(struct session *s, const struct fault_rule *r)
{
	static const unsigned char alert[] = { 0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28 };
	faults_log(s, r, FAULT_STARTTLS, "220, then a handshake_failure alert");
	session_reset(s);
	session_reply(s, R_TLS_READY);
	session_write_raw(s, alert, sizeof alert);
	session_close_after_flush(s);
}

bool faults_starttls(struct session *s, void (*go)(struct session *s))
{
	faults_unthrottle(s);   /* a throttle ends with the plain session */
	const struct fault_rule *r = faults_match(s, FAULT_STARTTLS);
	if (!r)
		return false;
	switch (r->action) {
	case FAULT_REPLY: faults_reply(s, r, FAULT_STARTTLS, NULL); return true;
	case FAULT_DISCONNECT: faults_disconnect(s, r, FAULT_STARTTLS, NULL); return true;
	case FAULT_CLOSE: faults_close_now(s, r, FAULT_STARTTLS); return true;
	case FAULT_DELAY: faults_delay(s, r, FAULT_STARTTLS, NULL, NULL, go); return true;
	case FAULT_THROTTLE: faults_throttle(s, r, FAULT_STARTTLS); return false;
	case FAULT_TLS_FAIL: faults_tls_fail(s, r); return true;
	default: return false;
	}
}

bool faults_data_end(struct session *s)
{
	struct faults_session *fs = s->faults;
	struct tx *tx = s->tx;
	if (!fs->abort)
		return false;
	fs->abort = false;
	if (tx->dp.size <= fs->abort_after)
		return false;   /* it ended before the rule's size: taken */
	struct ev e;
	session_event(s, &e, EK_FAULT, LOG_INFO, tx->qid);
	ev_add(&e, "rule", "%s", fs->abort_origin);
	ev_add(&e, "stage", "data");
	ev_add(&e, "action", "abort");
	ev_add(&e, "result", "message of %llu octets refused, discarded",
	       (unsigned long long)tx->dp.size);
	ev_emit(&e);
	if (s->rec)
		transcript_note(s, "fault rule %s fired: abort at data: message of %llu octets refused",
		                fs->abort_origin, (unsigned long long)tx->dp.size);
	if (fs->abort_text[0])
		session_reply_text(s, fs->abort_text, strlen(fs->abort_text), false);
	else
		session_reply(s, R_SPOOL_ERROR);
	session_reset(s);
	return true;
}
