/* api: the test mode's endpoints over the captured mail. The list,
 * message, raw, search and delete endpoints answer as Mailpit's do
 * (its /api/v1 shapes), so test code written for Mailpit points at tern
 * unchanged; the rest are tern's own (docs/API.md). */
#include "http/http_priv.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/addr.h"
#include "lib/log.h"
#include "lib/util.h"
#include "net/smtp.h"
#include "policy/capture.h"
#include "policy/policy.h"
#include "policy/settings.h"
#include "smtpd/session.h"
#include "smtpd/faults.h"
#include "spool/sessions.h"
#include "spool/spool.h"

#define API_LIMIT_DEFAULT 50
#define API_LIMIT_MAX 10000
#define API_RELEASE_MAX 100          /* recipients of one release */

/* ---- rows ---- */

static int api_row(struct http *h, const char *id, struct spool_captured *out)
{
	struct spool_capture_filter f = { .limit = 1 };
	if (strcmp(id, "latest"))   /* Mailpit's alias for the newest */
		f.id = id;
	struct spool_captured_list l;
	int err = spool_reader_captured(h->reader, &f, &l);
	if (err)
		return err;
	if (l.n == 0) {
		spool_captured_list_free(&l);
		return ENOENT;
	}
	*out = l.v[0];
	memset(&l.v[0], 0, sizeof l.v[0]);
	spool_captured_list_free(&l);
	return 0;
}

/* The row of /api/v1/message/{ID}..., or a reply sent and false. */
static bool api_take_row(struct http_req *r, struct spool_captured *c)
{
	int err = api_row(r->h, r->arg[0], c);
	if (err == ENOENT)
		http_error(r, 404, "no such message: %s", r->arg[0]);
	else if (err)
		http_error(r, 500, "cannot read the spool");
	return err == 0;
}

/* The message of a row (whole: every octet in src->mem), or a reply sent
 * and false. */
static bool api_src_of(struct http_req *r, const struct spool_captured *c, bool whole,
                       struct mime_src *src)
{
	if (mime_open(r->h, c->qid, whole, src) == 0)
		return true;
	http_error(r, 404, "the message %s is gone from the spool", c->id);
	return false;
}

json_t *api_summary(struct http *h, const struct spool_captured *c)
{
	char created[UTIL_RFC3339_LEN + 1];
	util_rfc3339(c->created, created);
	char *subject = mime_decode(c->h.subject);
	json_t *from = mime_addresses(c->h.from);
	json_t *first = json_array_size(from) ? json_incref(json_array_get(from, 0)) : json_null();
	json_decref(from);
	int attachments;
	struct buf snip = BUF_INIT;
	search_meta(h, c->seq, &attachments, &snip);
	const char *mid = c->h.msgid;
	size_t mlen = strlen(mid);
	if (mlen >= 2 && mid[0] == '<' && mid[mlen - 1] == '>')   /* as Mailpit: no brackets */
		mid++, mlen -= 2;
	json_t *o = json_pack("{s:s, s:s, s:s, s:s%, s:b, s:o, s:o, s:o, s:[], s:[], s:s, s:s,"
	                      " s:[], s:I, s:i, s:s, s:s, s:{s:s, s:o}}",
	                      "ID", c->id, "QueueID", c->qid, "Inbox", c->inbox,
	                      "MessageID", mid, mlen, "Read", c->seen, "From", first,
	                      "To", mime_addresses(c->h.to), "Cc", mime_addresses(c->h.cc),
	                      "Bcc", "ReplyTo", "Subject", subject, "Created", created,
	                      "Tags", "Size", (json_int_t)c->size, "Attachments", attachments,
	                      "Snippet", buf_cstr(&snip), "Username", "",
	                      "Envelope", "From", c->sender, "To", json_string(c->rcpts));
	free(subject);
	buf_free(&snip);
	return o;
}

struct api_count {
	const char *inbox;
	long total, unread;
};

static void api_count_row(void *ctx, const char *inbox, long total, long unseen)
{
	struct api_count *c = ctx;
	if (c->inbox && strcmp(c->inbox, inbox))
		return;
	c->total += total;
	c->unread += unseen;
}

json_t *api_list(struct http *h, const struct spool_capture_filter *f, const char *query,
                 int *status)
{
	struct spool_capture_filter lf = *f;
	lf.count = true;   /* messages_count */
	struct buf match = BUF_INIT;
	*status = 200;
	if (query && *query) {
		search_index(h, 2000);   /* the rows findable before the search, within 2 s */
		if (!query_fts(query, &match)) {
			*status = 400;
			buf_free(&match);
			return json_pack("{s:s}", "Error", "nothing to search for");
		}
		lf.match = buf_cstr(&match);
	}
	struct spool_captured_list l;
	if (spool_reader_captured(h->reader, &lf, &l)) {
		*status = 400;
		buf_free(&match);
		return json_pack("{s:s}", "Error", "the search failed (a malformed query?)");
	}
	struct api_count all = { .inbox = f->inbox };
	spool_reader_inboxes(h->reader, api_count_row, &all);
	json_t *msgs = json_array();
	long unread = 0;
	for (size_t i = 0; i < l.n; i++) {
		json_array_append_new(msgs, api_summary(h, &l.v[i]));
		unread += !l.v[i].seen;
	}
	json_t *o = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:[], s:o}", "total",
	                      (json_int_t)all.total, "unread", (json_int_t)all.unread,
	                      "count", (json_int_t)l.n, "messages_count", (json_int_t)l.total,
	                      "messages_unread", (json_int_t)unread, "start", (json_int_t)f->offset,
	                      "tags", "messages", msgs);
	spool_captured_list_free(&l);
	buf_free(&match);
	return o;
}

/* start, limit and inbox of a listing. */
static void api_page(struct http_req *r, struct spool_capture_filter *f)
{
	f->offset = (size_t)http_param_long(r, "start", 0, 1L << 40);
	f->limit = (size_t)http_param_long(r, "limit", API_LIMIT_DEFAULT, API_LIMIT_MAX);
	if (f->limit == 0)
		f->limit = API_LIMIT_DEFAULT;
	const char *inbox = http_param(r, "inbox");
	f->inbox = inbox && *inbox ? inbox : NULL;
}

/* ---- the endpoints ---- */

static void api_info(struct http_req *r)
{
	const struct settings *st = http_settings(r->h);
	json_t *inboxes = json_array();
	const char *names[64];
	size_t n = capture_rules_inboxes(st->capture, names, 64);
	for (size_t i = 0; i < n; i++)
		json_array_append_new(inboxes, json_string(names[i]));
	http_json(r, 200, json_pack("{s:s, s:s, s:b, s:o, s:I}", "Version", TERN_VERSION,
	                            "Hostname", st->conf.hostname, "Capture", st->conf.capture,
	                            "Inboxes", inboxes, "Started", (json_int_t)r->h->env.started));
}

static void api_inbox_row(void *ctx, const char *inbox, long total, long unseen)
{
	json_array_append_new(ctx, json_pack("{s:s, s:I, s:I}", "Name", inbox, "Total",
	                                     (json_int_t)total, "Unread", (json_int_t)unseen));
}

static void api_inboxes(struct http_req *r)
{
	json_t *a = json_array();
	if (spool_reader_inboxes(r->h->reader, api_inbox_row, a)) {
		json_decref(a);
		return http_error(r, 500, "cannot read the spool");
	}
	http_json(r, 200, a);
}

static void api_messages(struct http_req *r)
{
	struct spool_capture_filter f = { 0 };
	api_page(r, &f);
	int status;
	json_t *o = api_list(r->h, &f, NULL, &status);
	http_json(r, status, o);
}

static void api_search(struct http_req *r)
{
	struct spool_capture_filter f = { 0 };
	api_page(r, &f);
	const char *q = http_param(r, "query");
	if (!q || !*q)
		return http_error(r, 400, "query= is needed");
	int status;
	json_t *o = api_list(r->h, &f, q, &status);
	http_json(r, status, o);
}

static void api_deleted(void *ctx, int err, long count)
{
	(void)ctx;
	if (err)
		log_warn("http: deleting captured mail: %s", strerror(err));
	else if (count)
		log_info("http: %ld captured message%s deleted", count, count == 1 ? "" : "s");
}

static void api_seen(void *ctx, int err, long count)
{
	(void)ctx, (void)count;
	if (err)
		log_warn("http: marking a captured message read: %s", strerror(err));
}

static void api_delete_one(struct http *h, const char *id)
{
	if (h->env.srv->transcripts && !strchr(id, '.'))   /* "QID.2" is another inbox's view */
		sessions_forget(h->env.srv->transcripts, id);
	spool_capture_async(h->env.srv->spool, SPOOL_CAPTURE_DELETE, id, NULL, 0, 0, api_deleted,
	                    NULL);
}

/* DELETE /api/v1/messages: {"IDs": [...]} those, else every one (of ?inbox=). */
static void api_delete_messages(struct http_req *r)
{
	json_t *body = http_body_json(r, false);
	json_t *ids = body ? json_object_get(body, "IDs") : NULL;
	if (body && ids && !json_is_array(ids)) {
		json_decref(body);
		return http_error(r, 400, "IDs must be an array of message IDs");
	}
	size_t i;
	json_t *v;
	if (ids && json_array_size(ids)) {
		json_array_foreach(ids, i, v)
			if (json_is_string(v))
				api_delete_one(r->h, json_string_value(v));
	} else {
		const char *inbox = http_param(r, "inbox");
		spool_capture_async(r->h->env.srv->spool, SPOOL_CAPTURE_CLEAR, NULL,
		                    inbox && *inbox ? inbox : NULL, 0, 0, api_deleted, NULL);
		if (!inbox || !*inbox) {
			search_clear(r->h);
			if (r->h->env.srv->transcripts)
				sessions_clear(r->h->env.srv->transcripts);
		}
	}
	json_decref(body);
	http_text(r, 200, "text/plain", "ok", 2);
}

/* DELETE /api/v1/search?query=: every message it finds. */
static void api_delete_search(struct http_req *r)
{
	struct spool_capture_filter f = { 0 };
	api_page(r, &f);
	f.offset = 0;
	f.limit = 0;
	const char *q = http_param(r, "query");
	if (!q || !*q)
		return http_error(r, 400, "query= is needed");
	int status;
	json_t *o = api_list(r->h, &f, q, &status);
	json_t *msgs = json_object_get(o, "messages"), *m;
	size_t i;
	json_array_foreach(msgs, i, m)
		api_delete_one(r->h, json_string_value(json_object_get(m, "ID")));
	json_decref(o);
	if (status != 200)
		return http_error(r, status, "malformed query");
	http_text(r, 200, "text/plain", "ok", 2);
}

static void api_message(struct http_req *r)
{
	struct spool_captured c;
	if (!api_take_row(r, &c))
		return;
	struct mime_src src;
	if (api_src_of(r, &c, false, &src)) {
		json_t *o = mime_message(&src);
		if (!o) {
			http_error(r, 422, "the message cannot be parsed as MIME");
		} else {
			json_object_set_new(o, "ID", json_string(c.id));
			json_object_set_new(o, "QueueID", json_string(c.qid));
			json_object_set_new(o, "Inbox", json_string(c.inbox));
			json_object_set_new(o, "Envelope", json_pack("{s:s, s:s}", "From", c.sender,
			                                             "To", c.rcpts));
			json_object_set_new(o, "Size", json_integer((json_int_t)c.size));
			if (!c.seen)
				spool_capture_async(r->h->env.srv->spool, SPOOL_CAPTURE_SEEN, c.id, NULL, 0, 0,
				                    api_seen, NULL);
			http_json(r, 200, o);
		}
		mime_close(&src);
	}
	spool_captured_clear(&c);
}

static void api_delete_message(struct http_req *r)
{
	struct spool_captured c;
	if (!api_take_row(r, &c))
		return;
	api_delete_one(r->h, c.id);
	spool_captured_clear(&c);
	http_text(r, 200, "text/plain", "ok", 2);
}

static void api_raw(struct http_req *r)
{
	struct spool_captured c;
	if (!api_take_row(r, &c))
		return;
	struct mime_src src;
	if (api_src_of(r, &c, false, &src)) {
		http_send_src(r, "text/plain; charset=utf-8", &src);
		mime_close(&src);
	}
	spool_captured_clear(&c);
}

/* headers and parts: a GMime view of the raw message. */
static void api_view(struct http_req *r, json_t *(*view)(const struct mime_src *))
{
	struct spool_captured c;
	if (!api_take_row(r, &c))
		return;
	struct mime_src src;
	if (api_src_of(r, &c, false, &src)) {
		json_t *o = view(&src);
		if (o)
			http_json(r, 200, o);
		else
			http_error(r, 422, "the message cannot be parsed as MIME");
		mime_close(&src);
	}
	spool_captured_clear(&c);
}

static void api_headers(struct http_req *r)
{
	api_view(r, mime_headers);
}

static void api_parts(struct http_req *r)
{
	api_view(r, mime_tree);
}

/* A file name for Content-Disposition: no path, no quotes or controls. */
static void api_safe_name(const char *name, char *out, size_t n)
{
	const char *base = name;
	for (const char *p = name; *p; p++)
		if (*p == '/' || *p == '\\')
			base = p + 1;
	size_t k = 0;
	for (const char *p = base; *p && k + 1 < n; p++)
		out[k++] = ((unsigned char)*p < 0x20 || *p == '"' || *p == 0x7f) ? '_' : *p;
	out[k] = 0;
	if (!k || !strcmp(out, ".") || !strcmp(out, ".."))
		snprintf(out, n, "part");
}

static void api_part(struct http_req *r)
{
	struct spool_captured c;
	if (!api_take_row(r, &c))
		return;
	struct buf out = BUF_INIT;
	struct mime_src src;
	char type[256], name[256], safe[256], disp[400];
	if (api_src_of(r, &c, false, &src)) {
		if (!mime_part(&src, r->arg[1], &out, type, sizeof type, name, sizeof name)) {
			http_error(r, 404, "no part %s in message %s", r->arg[1], c.id);
		} else {
			/* never rendered by the browser as a page of ours: a download */
			api_safe_name(name, safe, sizeof safe);
			snprintf(disp, sizeof disp, "attachment; filename=\"%s\"", safe);
			evhttp_add_header(evhttp_request_get_output_headers(r->req),
			                  "Content-Disposition", disp);
			http_send_buf(r, 200, type, &out);
		}
		mime_close(&src);
	}
	buf_free(&out);
	spool_captured_clear(&c);
}

/* The release's recipients, routed as an operator's mail would be. */
static bool api_release_rcpts(struct http_req *r, json_t *to, struct spool_env *e, size_t *cap)
{
	const struct settings *st = http_settings(r->h);
	size_t i;
	json_t *v;
	if (!json_is_array(to) || json_array_size(to) == 0 || json_array_size(to) > API_RELEASE_MAX) {
		http_error(r, 400, "To must be an array of 1 to %d addresses", API_RELEASE_MAX);
		return false;
	}
	json_array_foreach(to, i, v) {
		struct addr a;
		struct policy_targets t = { 0 };
		const char *s = json_string_value(v);
		if (!s || addr_parse_mailbox(s, &a) != ADDR_OK ||
		    policy_rcpt(st, &a, true, &t) != POLICY_ACCEPT) {
			policy_targets_free(&t);
			http_error(r, 400, "cannot release to '%s': not an address tern can deliver to",
			           s ? s : "(not a string)");
			return false;
		}
		for (size_t k = 0; k < t.n; k++)
			spool_rcpt_add(&e->rcpt, &e->nrcpt, cap, s, t.v[k].addr, t.v[k].transport,
			               0, "");
		policy_targets_free(&t);
	}
	return true;
}

/* POST /api/v1/message/{ID}/release {"To": [...]}: the message, as it was
 * captured, queued anew for real delivery (Mailpit's release). */
static void api_release(struct http_req *r)
{
	struct spool_captured c;
	if (!api_take_row(r, &c))
		return;
	json_t *body = http_body_json(r, true);
	struct mime_src src = { .mem = BUF_INIT, .fd = -1 };
	struct spool_env e = { 0 };
	size_t cap = 0;
	if (body && api_src_of(r, &c, true, &src) &&
	    api_release_rcpts(r, json_object_get(body, "To"), &e, &cap)) {
		util_qid(e.qid);
		e.sender = c.sender;
		e.envid = e.client = e.helo = (char *)"";
		e.arrival = (int64_t)time(NULL);
		e.size = src.mem.len;
		e.body = BODY_8BITMIME;
		for (size_t i = 0; i < e.nrcpt; i++)
			e.rcpt[i].next_try = e.arrival;
		int err = spool_inject(r->h->env.srv->spool, &e, src.mem.data ? src.mem.data : "",
		                       src.mem.len);
		if (err) {
			http_error(r, 503, "the spool did not take it: %s", strerror(err));
		} else {
			log_info("%s: released from capture %s to %zu recipient%s", e.qid, c.id, e.nrcpt,
			         e.nrcpt == 1 ? "" : "s");
			http_json(r, 200, json_pack("{s:s}", "QueueID", e.qid));
		}
	}
	spool_rcpts_free(e.rcpt, e.nrcpt);
	json_decref(body);
	mime_close(&src);
	spool_captured_clear(&c);
}

/* ---- retention (every second) ---- */

static void api_trim_one(void *ctx, const char *inbox, long total, long unseen)
{
	(void)unseen;
	struct http *h = ctx;
	const struct settings *st = http_settings(h);
	unsigned keep, age;
	capture_retention(st->capture, inbox, st->conf.capture_keep, st->conf.capture_max_age,
	                  &keep, &age);
	int64_t before = age ? (int64_t)time(NULL) - age : 0;
	if ((keep && total > (long)keep) || age)
		spool_capture_async(h->env.srv->spool, SPOOL_CAPTURE_TRIM, NULL, inbox, keep, before,
		                    api_deleted, NULL);
}

void api_retention(struct http *h)
{
	const struct settings *st = http_settings(h);
	if (st->conf.capture_keep || st->conf.capture_max_age || capture_rules_retain(st->capture))
		spool_reader_inboxes(h->reader, api_trim_one, h);
}

/* ---- transcripts and lint (spool/sessions.h: transcripts, or capture) ---- */

static struct sessions *api_sessions(struct http_req *r)
{
	struct sessions *st = r->h->env.srv->transcripts;
	if (!st)
		http_error(r, 404, "no transcripts here (transcripts = yes, or capture = yes)");
	return st;
}

/* The message's session record: its transcript, lint and status. */
static json_t *api_record(struct http_req *r, struct sessions *st, struct spool_captured *c)
{
	json_t *o = sessions_by_qid(st, c->qid);
	if (!o)
		http_error(r, 404, "no transcript of message %s (recorded before transcripts were on?)",
		           c->id);
	return o;
}

static void api_transcript(struct http_req *r)
{
	struct sessions *st = api_sessions(r);
	struct spool_captured c;
	if (!st || !api_take_row(r, &c))
		return;
	json_t *o = api_record(r, st, &c);
	if (o)
		http_json(r, 200, o);
	spool_captured_clear(&c);
}

static void api_lint(struct http_req *r)
{
	struct sessions *st = api_sessions(r);
	struct spool_captured c;
	if (!st || !api_take_row(r, &c))
		return;
	json_t *o = api_record(r, st, &c);
	if (o) {
		json_t *lint = json_object_get(o, "lint");
		http_json(r, 200, json_pack("{s:s, s:O}", "ID", c.id, "Warnings",
		                            lint ? lint : json_array()));
		json_decref(o);
	}
	spool_captured_clear(&c);
}

static void api_session_list(struct http_req *r)
{
	struct sessions *st = api_sessions(r);
	if (!st)
		return;
	unsigned start = (unsigned)http_param_long(r, "start", 0, 1L << 30);
	unsigned limit = (unsigned)http_param_long(r, "limit", API_LIMIT_DEFAULT, API_LIMIT_MAX);
	json_t *o = sessions_list(st, start, limit ? limit : API_LIMIT_DEFAULT);
	if (o)
		http_json(r, 200, o);
	else
		http_error(r, 500, "cannot read the transcripts");
}

static void api_session(struct http_req *r)
{
	struct sessions *st = api_sessions(r);
	if (!st)
		return;
	char *end;
	long long id = strtoll(r->arg[0], &end, 10);
	json_t *o = *end || id <= 0 ? NULL : sessions_get(st, id);
	if (o)
		http_json(r, 200, o);
	else
		http_error(r, 404, "no such session: %s", r->arg[0]);
}

/* ---- fault rules at run time (smtpd/faults.h) ---- */

static void api_faults(struct http_req *r)
{
	struct buf b = BUF_INIT;
	faults_text(r->h->env.srv, &b);
	http_json(r, 200, json_pack("{s:s}", "Rules", buf_cstr(&b)));
	buf_free(&b);
}

/* PUT {"Rules": "one rule a line"}: the runtime set replaced, all or nothing. */
static void api_faults_put(struct http_req *r)
{
	json_t *body = http_body_json(r, true);
	if (!body)
		return;
	const char *text = json_string_value(json_object_get(body, "Rules"));
	char err[512];
	if (!text)
		http_error(r, 400, "Rules must be a string of rules, one a line");
	else if (!faults_replace(r->h->env.srv, text, err, sizeof err))
		http_error(r, 400, "%s", err);
	else
		api_faults(r);
	json_decref(body);
}

static void api_faults_clear(struct http_req *r)
{
	faults_clear(r->h->env.srv);
	api_faults(r);
}

static void api_openapi(struct http_req *r)
{
	if (!page_serve(r))
		http_error(r, 404, "no OpenAPI document in this build");
}

#define G EVHTTP_REQ_GET
#define D EVHTTP_REQ_DELETE
#define P EVHTTP_REQ_POST
const struct http_route http_routes[] = {
	{ G, "/api/v1/info", api_info, false },
	{ G, "/api/v1/inboxes", api_inboxes, false },
	{ G, "/api/v1/messages", api_messages, false },
	{ D, "/api/v1/messages", api_delete_messages, true },
	{ G, "/api/v1/search", api_search, false },
	{ D, "/api/v1/search", api_delete_search, true },
	{ G, "/api/v1/message/{}", api_message, false },
	{ D, "/api/v1/message/{}", api_delete_message, true },
	{ G, "/api/v1/message/{}/raw", api_raw, false },
	{ G, "/api/v1/message/{}/headers", api_headers, false },
	{ G, "/api/v1/message/{}/parts", api_parts, false },
	{ G, "/api/v1/message/{}/part/{}", api_part, false },
	{ P, "/api/v1/message/{}/release", api_release, true },
	{ G, "/api/v1/message/{}/transcript", api_transcript, false },
	{ G, "/api/v1/message/{}/lint", api_lint, false },
	{ G, "/api/v1/sessions", api_session_list, false },
	{ G, "/api/v1/faults", api_faults, false },
	{ EVHTTP_REQ_PUT, "/api/v1/faults", api_faults_put, true },
	{ D, "/api/v1/faults", api_faults_clear, true },
	{ G, "/api/v1/session/{}", api_session, false },
	{ G, "/api/v1/wait", wait_get, false },
	{ G, "/api/v1/events", wait_events, false },
	{ G, "/api/v1/openapi.json", api_openapi, false },
	{ G, "/api/v1/queue", queue_list, false },
	{ G, "/api/v1/stats", queue_stats, false },
	{ P, "/api/v1/queue/{}/{}", queue_act, true },
	{ D, "/api/v1/queue/{}", queue_delete, true },
};
const size_t http_nroutes = sizeof http_routes / sizeof http_routes[0];
