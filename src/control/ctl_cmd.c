/* ctl_cmd: the control socket's commands (see control.h): what they read
 * (the spool's reader queries, the counters) and what they ask the
 * delivery engine (queue_command). */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <openssl/x509.h>

#include "control/control_priv.h"
#include "control/stats.h"
#include "deliver/route.h"
#include "lib/addr.h"
#include "lib/buf.h"
#include "lib/jsonw.h"
#include "lib/log.h"
#include "lib/util.h"
#include "net/smtp.h"
#include "policy/hold.h"
#include "policy/policy.h"
#include "policy/settings.h"
#include "spool/sessions.h"

#define CTL_PAGE 200            /* messages per page of a listing */
#define CTL_HEADERS_MAX 65536   /* octets of headers `show` returns */

/* ---- reading a request ---- */

/* A queue id as util_qid makes them: 16 upper-case hex digits. */
static bool ctl_is_qid(const char *s)
{
	if (strlen(s) != UTIL_QID_LEN)
		return false;
	for (size_t i = 0; i < UTIL_QID_LEN; i++)
		if (!isxdigit((unsigned char)s[i]) || islower((unsigned char)s[i]))
			return false;
	return true;
}

/* ---- held domains: the spool's counts, hold_domains, an operator's holds ---- */

#define CTL_HELD_MAX 1000   /* domains with held mail listed, at most */

/* A domain held by `ternctl hold DOMAIN`, as the engine was told (it keeps
 * them on its own thread; this copy saves asking it). */
struct ctl_held {
	struct ctl_held *next;
	char domain[256];
};

static struct ctl_held **ctl_held_find(struct control *c, const char *domain)
{
	struct ctl_held **p = &c->held;
	while (*p && strcasecmp((*p)->domain, domain))
		p = &(*p)->next;
	return p;
}

static void ctl_held_set(struct control *c, const char *domain, bool hold)
{
	struct ctl_held **p = ctl_held_find(c, domain);
	if (hold && !*p) {
		*p = util_xcalloc(1, sizeof **p);
		snprintf((*p)->domain, sizeof (*p)->domain, "%s", domain);
		util_lower((*p)->domain);
	} else if (!hold && *p) {
		struct ctl_held *h = *p;
		*p = h->next;
		free(h);
	}
}

void ctl_held_free(struct control *c)
{
	while (c->held)
		ctl_held_set(c, c->held->domain, false);
}

struct ctl_held_row {
	const char *domain;
	size_t rcpts, msgs;
};

static int ctl_held_cmp(const void *a, const void *b)
{
	return strcmp(((const struct ctl_held_row *)a)->domain,
	              ((const struct ctl_held_row *)b)->domain);
}

static void ctl_held_add(struct ctl_held_row **rows, size_t *n, struct ctl_held_row r)
{
	*rows = util_xrealloc(*rows, *n + 1, sizeof **rows);
	(*rows)[(*n)++] = r;
}

/* A held domain with no mail waiting, unless rows has it already. */
static void ctl_held_zero(struct ctl_held_row **rows, size_t *n, const char *domain)
{
	for (size_t i = 0; i < *n; i++)
		if (!strcasecmp((*rows)[i].domain, domain))
			return;
	ctl_held_add(rows, n, (struct ctl_held_row){ domain, 0, 0 });
}

static json_t *ctl_held_json(struct control *c, const struct ctl_held_row *r)
{
	const struct conf *cf = &c->env.srv->set->conf;
	return json_pack("{s:s, s:I, s:I, s:b, s:b}", "domain", r->domain,
	                 "recipients", (json_int_t)r->rcpts, "messages", (json_int_t)r->msgs,
	                 "configured", hold_domain(cf, r->domain),
	                 "operator", *ctl_held_find(c, r->domain) != NULL);
}

json_t *ctl_held_domains(struct control *c, const char *only)
{
	struct spool_domain_counts h;
	if (spool_reader_held_domains(c->reader, CTL_HELD_MAX, &h) != 0)
		return NULL;
	const struct conf *cf = &c->env.srv->set->conf;
	struct ctl_held_row *rows = NULL;
	size_t n = 0;
	for (size_t i = 0; i < h.n; i++)
		ctl_held_add(&rows, &n, (struct ctl_held_row){ h.v[i].domain, h.v[i].rcpts, h.v[i].msgs });
	for (size_t i = 0; i < cf->hold_domains.n; i++)   /* held, nothing waiting */
		ctl_held_zero(&rows, &n, cf->hold_domains.v[i]);
	for (struct ctl_held *o = c->held; o; o = o->next)
		ctl_held_zero(&rows, &n, o->domain);
	if (n)
		qsort(rows, n, sizeof *rows, ctl_held_cmp);
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++)
		if (!only || !strcasecmp(only, rows[i].domain))
			json_array_append_new(a, ctl_held_json(c, &rows[i]));
	free(rows);
	spool_domain_counts_free(&h);
	return a;
}

/* ---- status and stats ---- */

static json_t *ctl_cert(SSL_CTX *tls)
{
	X509 *x = tls ? SSL_CTX_get0_certificate(tls) : NULL;
	if (!x)
		return json_null();
	int days = 0, secs = 0;
	ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(x));
	char subject[256];
	X509_NAME_oneline(X509_get_subject_name(x), subject, sizeof subject);
	return json_pack("{s:s, s:i}", "subject", subject, "days_left", days);
}

static void ctl_status(struct ctl_client *cl, json_t *req)
{
	(void)req;
	const struct control_env *env = &cl->c->env;
	const struct settings *st = env->srv->set;
	json_t *ls = json_array();
	for (size_t i = 0; i < st->conf.listen.n; i++)
		json_array_append_new(ls, json_string(st->conf.listen.v[i]));
	json_t *o = json_pack("{s:s, s:i, s:I, s:s, s:o, s:i, s:I, s:{s:b, s:b}, s:o}",
		"version", TERN_VERSION, "pid", (int)getpid(),
		"uptime", (json_int_t)((int64_t)time(NULL) - env->started),
		"hostname", st->conf.hostname, "listeners", ls,
		"sessions", (int)env->srv->nsessions,
		"queued", (json_int_t)spool_reader_count(cl->c->reader),
		"paused", "smtp", env->srv->policy->paused, "delivery", cl->c->delivery_paused,
		"tls_certificate", ctl_cert(st->tls));
	json_object_set_new(o, "generation", json_integer(st->generation));
	if (*st->restart_pending)
		json_object_set_new(o, "restart_pending", json_string(st->restart_pending));
	json_t *held = ctl_held_domains(cl->c, NULL);
	json_object_set_new(o, "held_domains", held ? held : json_null());
	ctl_ok(cl, o);
}

json_t *control_stats(struct control *c)
{
	json_t *o = stats_json();
	struct spool_domain_counts dc;
	json_t *by = json_array();
	if (spool_reader_domains(c->reader, SPOOL_STATE_BIT(SPOOL_STATE_PENDING) |
	                         SPOOL_STATE_BIT(SPOOL_STATE_HELD), 20, &dc) == 0)
		for (size_t i = 0; i < dc.n; i++)
			json_array_append_new(by, json_pack("{s:s, s:I, s:I}", "domain", dc.v[i].domain,
			                                    "messages", (json_int_t)dc.v[i].msgs,
			                                    "recipients", (json_int_t)dc.v[i].rcpts));
	spool_domain_counts_free(&dc);
	uint64_t bytes = 0;
	json_object_set_new(o, "queued", json_integer(spool_reader_totals(c->reader, &bytes)));
	json_object_set_new(o, "queued_bytes", json_integer((json_int_t)bytes));
	json_object_set_new(o, "queued_by_domain", by);
	json_object_set_new(o, "sessions", json_integer(c->env.srv->nsessions));
	return o;
}

static void ctl_stats(struct ctl_client *cl, json_t *req)
{
	(void)req;
	ctl_ok(cl, control_stats(cl->c));
}

/* destinations: the engine's next hops and their connections, asked on
 * its thread (queue_destinations). */
static void ctl_destinations(struct ctl_client *cl, json_t *req)
{
	(void)req;
	if (!cl->c->env.queue)
		return ctl_fail(cl, "delivery is off here (queue_only = yes)");
	cl->pending++;
	cl->mode = CL_WAIT;
	queue_destinations(cl->c->env.queue, ctl_engine_dests, cl);
}

/* ---- queue: Postfix's postqueue -j members, and tern's own ---- */

static const char *const ctl_queue_names[SPOOL_QUEUE__COUNT] = {
	[SPOOL_QUEUE_ACTIVE] = "active", [SPOOL_QUEUE_DEFERRED] = "deferred",
	[SPOOL_QUEUE_HOLD] = "hold",
};

const struct route_map *ctl_routes(struct control *c)
{
	const struct settings *st = c->env.srv->set;
	if (!c->routes || c->routes_gen != st->generation) {   /* a reload: the map again */
		int bad = 0;   /* the engine refused a bad map already */
		route_map_free(c->routes);
		c->routes = route_map_load(st->conf.transport_map, &bad);
		c->routes_gen = st->generation;
	}
	return c->routes;
}

/* Where the recipient goes next, as the engine names destinations
 * ("mx:example.com", "smtp:10.0.0.5:25", "lmtp:/run/dovecot/lmtp", "local"),
 * or "capture" (the test mode's inboxes); NULL when no route takes it. */
static const char *ctl_route(struct control *c, const struct spool_summary_rcpt *r,
                             struct route *rt)
{
	const struct route_map *m = ctl_routes(c);
	const struct settings *st = c->env.srv->set;
	if (r->transport == SPOOL_CAPTURE)   /* the test mode keeps it: never delivered */
		return "capture";
	return route_for(&st->conf, m, r->addr, r->transport, rt) ? rt->key : NULL;
}

static void ctl_queue_rcpt(struct control *c, const struct spool_summary_rcpt *r, struct buf *b)
{
	struct route rt;
	buf_puts(b, "{\"address\":");
	jsonw_str(b, r->addr);
	buf_puts(b, ",\"attempts\":");
	jsonw_int(b, r->attempts);
	buf_puts(b, ",\"next_try\":");
	jsonw_int(b, r->next_try);
	buf_puts(b, r->state == SPOOL_STATE_HELD ? ",\"held\":true" : ",\"held\":false");
	buf_puts(b, ",\"route\":");
	jsonw_str(b, ctl_route(c, r, &rt));
	buf_puts(b, ",\"last_reply\":");
	jsonw_str(b, r->last_reply);
	if (strcmp(r->orig, r->addr)) {
		buf_puts(b, ",\"orig_address\":");
		jsonw_str(b, r->orig);
	}
	if (r->last_reply[0]) {
		buf_puts(b, r->state == SPOOL_STATE_FAILED ? ",\"bounce_reason\":"
		                                           : ",\"delay_reason\":");
		jsonw_str(b, r->last_reply);
	}
	buf_putc(b, '}');
}

/* A message of a listing as one line of JSON, written out directly (a
 * deep queue lists a million: lib/jsonw.h says why not through jansson).
 * postqueue -j's names, and the node: queue ids are unique per node only
 * (docs/SCALING.md). queue_name first: ternctl --json passes a line that
 * begins so on without parsing it. */
static void ctl_queue_msg(struct control *c, const struct spool_summary *m, struct buf *b)
{
	buf_puts(b, "{\"queue_name\":");
	jsonw_str(b, ctl_queue_names[m->queue]);
	buf_puts(b, ",\"queue_id\":");
	jsonw_str(b, m->qid);
	buf_puts(b, ",\"node\":");
	jsonw_str(b, c->env.srv->set->conf.hostname);
	buf_puts(b, ",\"arrival_time\":");
	jsonw_int(b, m->arrival);
	buf_puts(b, ",\"message_size\":");
	jsonw_int(b, m->size > INT64_MAX ? INT64_MAX : (int64_t)m->size);
	buf_puts(b, ",\"forced_expire\":false,\"sender\":");
	jsonw_str(b, m->sender);
	buf_puts(b, ",\"recipients\":[");
	bool first = true;
	for (size_t i = 0; i < m->nrcpt; i++) {
		if (m->rcpt[i].state == SPOOL_STATE_DELIVERED)
			continue;
		if (!first)
			buf_putc(b, ',');
		first = false;
		ctl_queue_rcpt(c, &m->rcpt[i], b);
	}
	buf_puts(b, "]}");
}

/* The reply after the listing (never shown by ternctl --json, as
 * postqueue -j has none): the count, and the held domains with mail
 * waiting (the one of --domain only) for the human table's summary. */
static void ctl_list_end(struct ctl_client *cl)
{
	json_t *o = json_pack("{s:I}", "count", (json_int_t)cl->listed);
	json_t *held = ctl_held_domains(cl->c, cl->filter.domain), *waiting = json_array(), *h;
	size_t i;
	json_array_foreach(held, i, h)
		if (json_integer_value(json_object_get(h, "recipients")) > 0)
			json_array_append(waiting, h);
	json_decref(held);
	json_object_set_new(o, "held_domains", waiting);
	ctl_ok(cl, o);
}

/* One page, as long as the client reads; then the reply. */
void ctl_list_more(struct ctl_client *cl)
{
	while (cl->mode == CL_LIST && !ctl_output_full(cl)) {
		struct spool_list l;
		int err = spool_reader_list(cl->c->reader, &cl->filter, &cl->cur, CTL_PAGE, &l);
		for (size_t i = 0; !err && i < l.n; i++) {
			if (cl->f_queue && strcmp(cl->f_queue, ctl_queue_names[l.msg[i].queue]))
				continue;
			struct buf *b = ctl_line(cl);
			ctl_queue_msg(cl->c, &l.msg[i], b);
			ctl_send_line(cl);
			cl->listed++;
		}
		bool more = !err && l.more;
		spool_list_free(&l);
		if (err)
			return ctl_fail(cl, "cannot read the spool: %s", strerror(err));
		if (!more)
			return ctl_list_end(cl);
		if (evbuffer_get_length(bufferevent_get_output(cl->bev)) > 0)
			return;   /* the write callback goes on once it has drained */
	}
}

static void ctl_queue(struct ctl_client *cl, json_t *req)
{
	const char *domain = ctl_str(req, "domain"), *sender = ctl_str(req, "sender");
	const char *state = ctl_str(req, "state");
	memset(&cl->filter, 0, sizeof cl->filter);
	cl->f_queue = NULL;
	if (state && !strcmp(state, "held")) {
		cl->filter.states = SPOOL_STATE_BIT(SPOOL_STATE_HELD);
		cl->f_queue = "hold";
	} else if (state && (!strcmp(state, "deferred") || !strcmp(state, "active"))) {
		cl->filter.states = SPOOL_STATE_BIT(SPOOL_STATE_PENDING);
		cl->f_queue = !strcmp(state, "deferred") ? "deferred" : "active";
	} else if (state) {
		return ctl_fail(cl, "state: '%s' is not deferred, held or active", state);
	}
	if (domain) {
		snprintf(cl->f_domain, sizeof cl->f_domain, "%s", domain);
		cl->filter.domain = cl->f_domain;
	}
	if (sender) {
		snprintf(cl->f_sender, sizeof cl->f_sender, "%s", sender);
		cl->filter.sender = cl->f_sender;
	}
	cl->cur = SPOOL_LIST_START;
	cl->listed = 0;
	cl->mode = CL_LIST;
	ctl_list_more(cl);
}

json_t *control_queue(struct control *c, size_t max)
{
	json_t *a = json_array();
	struct spool_filter f = { 0 };
	struct spool_list_cursor cur = SPOOL_LIST_START;
	struct buf b = BUF_INIT;
	bool more = true;
	while (more && json_array_size(a) < max) {
		struct spool_list l;
		if (spool_reader_list(c->reader, &f, &cur, CTL_PAGE, &l))
			break;
		for (size_t i = 0; i < l.n && json_array_size(a) < max; i++) {
			buf_reset(&b);   /* the listing's own line: one encoding of a message */
			ctl_queue_msg(c, &l.msg[i], &b);
			json_t *m = json_loads(buf_cstr(&b), 0, NULL);
			if (!m)
				log_panic("control: a listing line is not JSON: %s", buf_cstr(&b));
			json_array_append_new(a, m);
		}
		more = l.more;
		spool_list_free(&l);
	}
	buf_free(&b);
	return a;
}

/* ---- show: the envelope, every recipient, their history, the headers ---- */

static void ctl_show_attempt(void *ctx, unsigned idx, int64_t at, const char *reply,
                             const char *mta)
{
	json_array_append_new(ctx, json_pack("{s:i, s:I, s:s, s:s}", "recipient", (int)idx,
	                                     "time", (json_int_t)at, "reply", reply, "host", mta));
}

static json_t *ctl_show_headers(struct spool_reader *r, const struct spool_env *e)
{
	struct buf b = BUF_INIT, first = BUF_INIT;
	if (spool_reader_chunk(r, e, 0, &first) != 0) {
		buf_free(&first);
		return json_null();
	}
	if (e->prefix)   /* the fields made at receipt go first, as delivered */
		buf_puts(&b, e->prefix);
	buf_append(&b, first.data, first.len);
	buf_free(&first);
	size_t n = b.len < CTL_HEADERS_MAX ? b.len : CTL_HEADERS_MAX;
	const char *end = memmem(b.data, n, "\r\n\r\n", 4);
	json_t *s = json_stringn(b.data, end ? (size_t)(end - b.data) + 2 : n);
	buf_free(&b);
	return s ? s : json_string("(headers are not UTF-8)");
}

static json_t *ctl_show_rcpt(const struct spool_rcpt *r)
{
	char notify[40];   /* RFC 3461 4.1's words */
	snprintf(notify, sizeof notify, "%s%s%s%s", r->notify & NOTIFY_NEVER ? "NEVER," : "",
	         r->notify & NOTIFY_SUCCESS ? "SUCCESS," : "", r->notify & NOTIFY_FAILURE ? "FAILURE," : "",
	         r->notify & NOTIFY_DELAY ? "DELAY," : "");
	notify[strlen(notify) ? strlen(notify) - 1 : 0] = '\0';
	return json_pack("{s:i, s:s, s:s, s:s, s:b, s:i, s:I, s:s, s:s, s:i, s:s, s:s}", "index",
	                 (int)r->idx, "address", r->addr, "orig_address", r->orig,
	                 "state", r->status == SPOOL_DELIVERED ? "delivered" :
	                          r->status == SPOOL_FAILED ? "failed" :
	                          r->held == SPOOL_QUARANTINED ? "quarantined" :
	                          r->held ? "held" : "pending",
	                 "held", r->held, "attempts", (int)r->attempts, "next_try",
	                 (json_int_t)r->next_try, "last_reply", r->last_reply, "host", r->remote_mta,
	                 "notify", (int)r->notify, "notify_words", notify, "orcpt",
	                 r->orcpt ? r->orcpt : "");
}

static void ctl_show(struct ctl_client *cl, json_t *req)
{
	const char *qid = ctl_str(req, "id");
	if (!qid || !ctl_is_qid(qid))
		return ctl_fail(cl, "show: a queue id, please");
	struct spool_reader *r = cl->c->reader;
	struct spool_env e;
	int err = spool_reader_env(r, qid, &e);
	if (err)
		return ctl_fail(cl, "%s: %s", qid, err == ENOENT ? "not in the queue" : strerror(err));
	json_t *rs = json_array(), *hist = json_array();
	for (size_t i = 0; i < e.nrcpt; i++)
		json_array_append_new(rs, ctl_show_rcpt(&e.rcpt[i]));
	spool_reader_attempts(r, qid, ctl_show_attempt, hist);
	json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:s, s:s, s:b, s:b, s:o, s:o,"
	                      " s:o}",
	                      "queue_id", qid, "node", cl->c->env.srv->set->conf.hostname,
	                      "sender", e.sender, "envid", e.envid, "ret",
	                      e.ret == RET_FULL ? "FULL" : e.ret == RET_HDRS ? "HDRS" : "",
	                      "message_size",
	                      (json_int_t)e.size, "arrival_time", (json_int_t)e.arrival,
	                      "client", e.client, "helo", e.helo, "requiretls", e.requiretls,
	                      "tls_required_no", e.tls_optional, "recipients", rs,
	                      "attempts", hist, "headers", ctl_show_headers(r, &e));
	spool_env_free(&e);
	ctl_ok(cl, o);
}

/* ---- transcripts (the test mode: spool/sessions.h) ---- */

static bool ctl_is_number(const char *s)
{
	size_t n = strspn(s, "0123456789");
	return n > 0 && n < 19 && !s[n];
}

/* transcript: {"id": QID or session id} gives that message's (its lint
 * and its session's lines) or that session's; without an id, the list
 * of sessions, newest first ("offset", "limit"). */
static void ctl_transcript(struct ctl_client *cl, json_t *req)
{
	struct sessions *st = cl->c->env.srv->transcripts;
	if (!st)
		return ctl_fail(cl, "transcripts are not recorded (transcripts = yes in tern.conf)");
	const char *id = ctl_str(req, "id");
	json_t *o = NULL;
	if (!id) {
		json_int_t off = json_integer_value(json_object_get(req, "offset"));
		json_int_t lim = json_integer_value(json_object_get(req, "limit"));
		o = sessions_list(st, off > 0 ? (unsigned)off : 0, lim > 0 && lim < 100000 ?
		                  (unsigned)lim : 20);
	} else if (ctl_is_qid(id)) {
		o = sessions_by_qid(st, id);
	} else if (ctl_is_number(id)) {
		o = sessions_get(st, strtoll(id, NULL, 10));
	} else {
		return ctl_fail(cl, "transcript: a queue id or a session id, please");
	}
	if (!o)
		return ctl_fail(cl, "%s: no transcript recorded", id);
	ctl_ok(cl, o);
}

/* ---- acting: through the engine's inbox ---- */

static const struct {
	const char *cmd;
	enum queue_op op;
} ctl_acts[] = {
	{ "flush", QUEUE_FLUSH }, { "hold", QUEUE_HOLD }, { "release", QUEUE_RELEASE },
	{ "delete", QUEUE_DELETE }, { "bounce", QUEUE_BOUNCE },
};

static void ctl_ask_engine(struct ctl_client *cl, const struct queue_cmd *qc)
{
	if (!cl->c->env.queue)
		return ctl_fail(cl, "delivery is off here (queue_only = yes)");
	cl->pending++;
	cl->mode = CL_WAIT;
	queue_command(cl->c->env.queue, qc, ctl_engine_done, cl);
}

/* flush ID|DOMAIN|all, hold and release ID|DOMAIN, delete and bounce ID. */
static void ctl_act(struct ctl_client *cl, enum queue_op op, const char *verb, json_t *req)
{
	const char *target = ctl_str(req, "target");
	bool ids_only = op == QUEUE_DELETE || op == QUEUE_BOUNCE;
	struct queue_cmd qc = { .op = op };
	if (!target || !*target)
		return ctl_fail(cl, "%s: what? (a queue id%s)", verb,
		                ids_only ? "" : op == QUEUE_FLUSH ? ", a domain or all" : " or a domain");
	if (ctl_is_qid(target))
		snprintf(qc.qid, sizeof qc.qid, "%s", target);
	else if (ids_only)
		return ctl_fail(cl, "%s: '%.64s' is not a queue id", verb, target);
	else if (op == QUEUE_FLUSH && !strcmp(target, "all"))
		;   /* neither: every message */
	else if (addr_domain_valid(target))
		snprintf(qc.domain, sizeof qc.domain, "%s", target);
	else
		return ctl_fail(cl, "%s: '%.64s' is neither a queue id nor a domain", verb, target);
	ctl_audit(cl, verb, target);
	if (qc.domain[0] && (op == QUEUE_HOLD || op == QUEUE_RELEASE) && cl->c->env.queue)
		ctl_held_set(cl->c, qc.domain, op == QUEUE_HOLD);   /* as the engine will */
	ctl_ask_engine(cl, &qc);
}

/* The engine's answer to an act of the HTTP API: logged (any thread). */
static void ctl_web_done(void *ctx, int err, long count)
{
	(void)ctx;
	if (err)
		log_warn("http: the queue command failed: %s", strerror(err));
	else
		log_info("http: the queue command changed %ld recipient%s", count, count == 1 ? "" : "s");
}

const char *control_act(struct control *c, const char *verb, const char *target, const char *who)
{
	for (size_t i = 0; i < sizeof ctl_acts / sizeof ctl_acts[0]; i++) {
		if (strcmp(verb, ctl_acts[i].cmd) || ctl_acts[i].op == QUEUE_BOUNCE)
			continue;
		struct queue_cmd qc = { .op = ctl_acts[i].op };
		if (ctl_is_qid(target))
			snprintf(qc.qid, sizeof qc.qid, "%s", target);
		else if (qc.op != QUEUE_DELETE && addr_domain_valid(target))
			snprintf(qc.domain, sizeof qc.domain, "%s", target);
		else
			return "not a queue id (or, but for delete, a domain)";
		if (!c->env.queue)
			return "delivery is off here (queue_only = yes)";
		ev_note(LOG_INFO, 0, qc.qid[0] ? qc.qid : NULL, "http: %s: %s %s", who, verb, target);
		if (qc.domain[0] && (qc.op == QUEUE_HOLD || qc.op == QUEUE_RELEASE))
			ctl_held_set(c, qc.domain, qc.op == QUEUE_HOLD);
		queue_command(c->env.queue, &qc, ctl_web_done, NULL);
		return NULL;
	}
	return "unknown action (hold, release, flush, delete)";
}

/* drain --to HOST:PORT [--domain D]: every pending recipient (held too)
 * delivered to another node over SMTP, with its envelope and DSN
 * parameters, and removed here only after that node's 250 (planned
 * maintenance: pause smtp first). Answered when every one has had its
 * attempt. The engine's calls run on its thread: they only post. */
struct ctl_drain {
	struct ctl_client *cl;
	long count;
};

static void ctl_drain_started(void *ctx, int err, long count, long messages)
{
	(void)messages;
	struct ctl_drain *d = ctx;
	if (err) {   /* nothing follows */
		ctl_engine_done(d->cl, err, 0);
		free(d);
		return;
	}
	d->count = count;
}

static void ctl_drain_finished(void *ctx, long delivered, long deferred, long failed)
{
	struct ctl_drain *d = ctx;
	ctl_engine_drained(d->cl, d->count, delivered, deferred, failed);
	free(d);
}

static void ctl_drain(struct ctl_client *cl, json_t *req)
{
	const char *to = ctl_str(req, "to");
	const char *domain = ctl_str(req, "domain");
	char host[256];
	unsigned port;
	if (!to || !util_hostport(to, host, sizeof host, &port))
		return ctl_fail(cl, "drain: --to host:port (the node to take the queue)");
	if (domain && !addr_domain_valid(domain))
		return ctl_fail(cl, "drain: '%.64s' is not a domain", domain);
	if (!cl->c->env.queue)
		return ctl_fail(cl, "delivery is off here (queue_only = yes)");
	struct hold_release rel = { .all = true, .started = ctl_drain_started,
	                            .finished = ctl_drain_finished };
	snprintf(rel.to, sizeof rel.to, "%s", to);
	if (domain) {
		snprintf(rel.domain[0], sizeof rel.domain[0], "%s", domain);
		rel.n = 1;
	}
	struct ctl_drain *d = util_xcalloc(1, sizeof *d);
	d->cl = cl;
	rel.ctx = d;
	ctl_audit(cl, "drain", to);
	cl->pending++;
	cl->mode = CL_WAIT;
	queue_release(cl->c->env.queue, &rel);
}

void ctl_drained(struct ctl_client *cl, long count, long delivered, long deferred, long failed)
{
	ctl_ok(cl, json_pack("{s:I, s:I, s:I, s:I}", "count", (json_int_t)count, "delivered",
	                     (json_int_t)delivered, "deferred", (json_int_t)deferred, "failed",
	                     (json_int_t)failed));
}

/* pause smtp|delivery; resume [smtp|delivery] (both when not named). */
static void ctl_pause(struct ctl_client *cl, json_t *req, bool pause)
{
	const char *what = ctl_str(req, "what");
	bool smtp = !what ? !pause : !strcmp(what, "smtp");
	bool delivery = !what ? !pause : !strcmp(what, "delivery");
	if (!smtp && !delivery)
		return ctl_fail(cl, "%s: smtp or delivery", pause ? "pause" : "resume");
	ctl_audit(cl, pause ? "pause" : "resume", what ? what : "smtp and delivery");
	if (smtp)
		cl->c->env.srv->policy->paused = pause;
	if (!delivery || (!cl->c->env.queue && !pause))
		return ctl_ok(cl, NULL);
	cl->c->delivery_paused = pause;
	struct queue_cmd qc = { .op = pause ? QUEUE_PAUSE : QUEUE_RESUME };
	ctl_ask_engine(cl, &qc);
}

/* reload: ternd's, at once (the engine takes the new settings on its own
 * thread a moment later). */
static void ctl_reload(struct ctl_client *cl, json_t *req)
{
	(void)req;
	const struct control_env *env = &cl->c->env;
	struct buf problems = BUF_INIT;
	ctl_audit(cl, "reload", "the configuration");
	bool ok = env->reload(env->reload_ctx, &problems);
	if (ok) {
		const struct settings *st = env->srv->set;
		ctl_ok(cl, json_pack("{s:i, s:s}", "generation", (int)st->generation,
		                     "restart_pending", st->restart_pending));
	} else {
		json_t *lines = json_array();
		buf_cstr(&problems);
		for (char *p = problems.data, *nl; p && *p; p = nl ? nl + 1 : p + strlen(p)) {
			nl = strchr(p, '\n');
			json_t *line = json_stringn(p, nl ? (size_t)(nl - p) : strlen(p));
			json_array_append_new(lines, line ? line : json_string("(not UTF-8)"));
		}
		ctl_send(cl, json_pack("{s:b, s:s, s:o}", "ok", 0, "error",
		                       "configuration refused; the one in force stays", "problems", lines));
	}
	buf_free(&problems);
}

void ctl_answered(struct ctl_client *cl, int err, long count)
{
	if (err)
		return ctl_fail(cl, "%s", err == EINVAL ? "nothing to act on" :
		                err == ENOENT ? "not in the queue" :
		                err == ECANCELED ? "ternd is stopping" :
		                strerror(err));
	ctl_ok(cl, json_pack("{s:I}", "count", (json_int_t)count));
}

/* ---- dispatch ---- */

void ctl_dispatch(struct ctl_client *cl, const char *cmd, json_t *req)
{
	static const struct {
		const char *name;
		void (*fn)(struct ctl_client *cl, json_t *req);
	} cmds[] = {
		{ "status", ctl_status }, { "stats", ctl_stats }, { "queue", ctl_queue },
		{ "show", ctl_show }, { "trace", trace_start }, { "reload", ctl_reload },
		{ "drain", ctl_drain }, { "transcript", ctl_transcript },
		{ "destinations", ctl_destinations },
	};
	for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
		if (!strcmp(cmd, cmds[i].name))
			return cmds[i].fn(cl, req);
	for (size_t i = 0; i < sizeof ctl_acts / sizeof ctl_acts[0]; i++)
		if (!strcmp(cmd, ctl_acts[i].cmd))
			return ctl_act(cl, ctl_acts[i].op, cmd, req);
	if (!strcmp(cmd, "pause") || !strcmp(cmd, "resume"))
		return ctl_pause(cl, req, !strcmp(cmd, "pause"));
	if (!strcmp(cmd, "monitor"))
		return monitor_start(cl);
	ctl_fail(cl, "unknown command '%s'", cmd);
}
