/* tlsrpt: TLS-RPT (RFC 8460) counts and aggregate reports on the
 * delivery loop; see tlsrpt.h. */
#include "deliver/tlsrpt.h"

#include <errno.h>
#include <event2/event.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "deliver/engine.h"
#include "lib/addr.h"
#include "lib/buf.h"
#include "lib/log.h"
#include "lib/util.h"
#include "net/dns.h"
#include "net/httpc.h"
#include "net/smtp.h"
#include "net/tlsrpt.h"

/* One failure-details row (RFC 8460 4.4). */
struct tr_fail {
	struct tr_fail *next;
	enum tlsrpt_result r;
	char mx[256], ip[64], local[64], detail[200];
	unsigned long n;
};

/* One policy of a domain: its counts since the last report. */
struct tr_pol {
	struct tr_pol *next;          /* in tlsrpt.all, or a report's */
	struct hmap_node node;        /* in tlsrpt.pols, by key */
	char key[300], domain[256];
	enum tlsrpt_policy type;
	struct sts_policy *sts;       /* sts: the policy, when one was in force */
	unsigned long ok, failed;
	struct tr_fail *fails;
};

/* A domain's report, waiting for its _smtp._tls record. */
struct tr_send {
	struct tr_send *next, **pprev;
	struct tlsrpt *t;
	char domain[256];
	struct tr_pol *pols;
	struct dns_lookup *l;
	int64_t start, end;
};

/* A report on its way to an https: rua (RFC 8460 5.4): its host's
 * address, then the POST. */
struct tr_post {
	struct tr_post *next, **pprev;
	struct tlsrpt *t;
	char domain[256], uri[256], host[256], path[256];
	unsigned port;
	struct buf gz;
	bool tried_aaaa;
	struct dns_lookup *l;
	struct httpc_get *g;
};

struct tlsrpt {
	struct queue *q;
	struct httpc *http;           /* made at the first POST */
	struct tr_post *posting;
	struct event *timer;          /* the period's end */
	struct event *save_ev;        /* every TLSRPT_SAVE_S, the counts to the file */
	struct hmap pols;
	struct tr_pol *all;
	int64_t since;                /* the period counted began (tlsrpt_end) */
	int64_t interval;
	bool dirty;                   /* counts not yet in the file */
	struct tr_send *sending;
	unsigned seq;
	char path[4096];              /* spool_dir/tlsrpt.json */
};

#define TLSRPT_SAVE_S 30

static void tlsrpt_pols_free(struct tr_pol *p)
{
	while (p) {
		struct tr_pol *next = p->next;
		for (struct tr_fail *f = p->fails, *fn; f; f = fn) {
			fn = f->next;
			free(f);
		}
		free(p->sts);
		free(p);
		p = next;
	}
}

static void tlsrpt_send_free(struct tr_send *s)
{
	*s->pprev = s->next;
	if (s->next)
		s->next->pprev = s->pprev;
	if (s->l)
		dns_cancel(s->t->q->dns, s->l);
	tlsrpt_pols_free(s->pols);
	free(s);
}

static void tlsrpt_post_free(struct tr_post *p)
{
	*p->pprev = p->next;
	if (p->next)
		p->next->pprev = p->pprev;
	if (p->l)
		dns_cancel(p->t->q->dns, p->l);
	if (p->g)
		httpc_cancel(p->t->http, p->g);
	buf_free(&p->gz);
	free(p);
}

/* ---- counting ---- */

static struct tr_pol *tlsrpt_pol(struct tlsrpt *t, const char *domain, enum tlsrpt_policy type)
{
	char key[300];
	snprintf(key, sizeof key, "%d %s", (int)type, domain);
	size_t h = hmap_hash(key);
	for (struct hmap_node *n = hmap_first(&t->pols, h); n; n = hmap_next(n)) {
		struct tr_pol *p = HMAP_ENTRY(n, struct tr_pol, node);
		if (!strcmp(p->key, key))
			return p;
	}
	struct tr_pol *p = util_xcalloc(1, sizeof *p);
	memcpy(p->key, key, sizeof key);
	snprintf(p->domain, sizeof p->domain, "%s", domain);
	p->type = type;
	hmap_add(&t->pols, &p->node, h);
	p->next = t->all;
	t->all = p;
	return p;
}

/* A failure row: its counts go up by n (one per session, more when a
 * saved row is read back). */
static void tlsrpt_count(struct tr_pol *p, enum tlsrpt_result r, const char *mx, const char *ip,
                         const char *local, const char *detail, unsigned long n)
{
	if (r == TLSRPT_SUCCESS) {
		p->ok += n;
		return;
	}
	p->failed += n;
	struct tr_fail *f = p->fails;
	while (f && !(f->r == r && !strcmp(f->mx, mx) && !strcmp(f->ip, ip) &&
	              !strcmp(f->local, local) && !strncmp(f->detail, detail, sizeof f->detail - 1)))
		f = f->next;
	if (!f) {
		f = util_xcalloc(1, sizeof *f);
		f->r = r;
		snprintf(f->mx, sizeof f->mx, "%s", mx);
		snprintf(f->ip, sizeof f->ip, "%s", ip);
		snprintf(f->local, sizeof f->local, "%s", local);
		snprintf(f->detail, sizeof f->detail, "%s", detail);
		f->next = p->fails;
		p->fails = f;
	}
	f->n += n;
}

void tlsrpt_note(struct tlsrpt *t, const char *domain, const struct sts_policy *sts,
                 const struct smtpc_tls_result *r)
{
	if (!t)
		return;
	struct tr_pol *p = tlsrpt_pol(t, domain, r->policy);
	if (r->policy == TLSRPT_POLICY_STS && sts && !p->sts) {
		p->sts = util_xcalloc(1, sizeof *p->sts);
		*p->sts = *sts;
	}
	tlsrpt_count(p, r->result, r->mx, r->ip, r->local ? r->local : "", r->detail, 1);
	t->dirty = true;
}

void tlsrpt_note_fetch(struct tlsrpt *t, const char *domain, enum tlsrpt_result r,
                       const char *detail)
{
	if (!t)
		return;
	tlsrpt_count(tlsrpt_pol(t, domain, TLSRPT_POLICY_STS), r, "", "", "", detail, 1);
	t->dirty = true;
}

/* ---- the report (RFC 8460 4.4) ---- */

/* policy-string: the policy's lines (RFC 8460 4.4, RFC 8461 3.2). */
static json_t *tlsrpt_policy_json(const struct tr_pol *p)
{
	json_t *strings = json_array(), *mx = json_array();
	if (p->sts) {
		const struct mtasts_policy *m = &p->sts->pol;
		char line[300];
		json_array_append_new(strings, json_string("version: STSv1"));
		snprintf(line, sizeof line, "mode: %s", mtasts_mode_name(m->mode));
		json_array_append_new(strings, json_string(line));
		for (size_t i = 0; i < m->nmx; i++) {
			snprintf(line, sizeof line, "mx: %s", m->mx[i]);
			json_array_append_new(strings, json_string(line));
			json_array_append_new(mx, json_string(m->mx[i]));
		}
		snprintf(line, sizeof line, "max_age: %u", m->max_age);
		json_array_append_new(strings, json_string(line));
	}
	json_t *o = json_pack("{s:s, s:s}", "policy-type", tlsrpt_policy_name(p->type),
	                      "policy-domain", p->domain);
	json_object_set_new(o, "policy-string", strings);
	json_object_set_new(o, "mx-host", mx);
	return o;
}

static json_t *tlsrpt_fails_json(const struct tr_pol *p)
{
	json_t *a = json_array();
	for (const struct tr_fail *f = p->fails; f; f = f->next) {
		json_t *o = json_pack("{s:s, s:I}", "result-type", tlsrpt_result_name(f->r),
		                      "failed-session-count", (json_int_t)f->n);
		if (*f->mx)
			json_object_set_new(o, "receiving-mx-hostname", json_string(f->mx));
		if (*f->ip)
			json_object_set_new(o, "receiving-ip", json_string(f->ip));
		if (*f->local)
			json_object_set_new(o, "sending-mta-ip", json_string(f->local));
		if (*f->detail)
			json_object_set_new(o, "failure-reason-code", json_string(f->detail));
		json_array_append_new(a, o);
	}
	return a;
}

static char *tlsrpt_json(const struct tr_send *s, const char *report_id)
{
	const struct conf *c = s->t->q->conf;
	char start[UTIL_RFC3339_LEN + 1], end[UTIL_RFC3339_LEN + 1];
	util_rfc3339(s->start, start);
	util_rfc3339(s->end, end);
	json_t *pols = json_array();
	for (const struct tr_pol *p = s->pols; p; p = p->next) {
		json_t *summary = json_pack("{s:I, s:I}", "total-successful-session-count",
		                            (json_int_t)p->ok, "total-failure-session-count",
		                            (json_int_t)p->failed);
		json_t *o = json_object();
		json_object_set_new(o, "policy", tlsrpt_policy_json(p));
		json_object_set_new(o, "summary", summary);
		json_object_set_new(o, "failure-details", tlsrpt_fails_json(p));
		json_array_append_new(pols, o);
	}
	json_t *r = json_pack("{s:s, s:{s:s, s:s}, s:s, s:s}",
	                      "organization-name", *c->tls_rpt_org ? c->tls_rpt_org : c->hostname,
	                      "date-range", "start-datetime", start, "end-datetime", end,
	                      "contact-info", c->postmaster_address, "report-id", report_id);
	json_object_set_new(r, "policies", pols);
	char *text = json_dumps(r, JSON_COMPACT);
	json_decref(r);
	return text;
}

/* gzip (RFC 1952) through zlib. */
static bool tlsrpt_gzip(const char *in, size_t len, struct buf *out)
{
	z_stream z;
	memset(&z, 0, sizeof z);
	if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return false;
	unsigned char chunk[16384];
	z.next_in = (unsigned char *)in;
	z.avail_in = (uInt)len;
	int rc;
	do {
		z.next_out = chunk;
		z.avail_out = sizeof chunk;
		rc = deflate(&z, Z_FINISH);
		buf_append(out, chunk, sizeof chunk - z.avail_out);
	} while (rc == Z_OK);
	deflateEnd(&z);
	return rc == Z_STREAM_END;
}

/* RFC 8460 5.3: the message, its report in base64 lines of 76. */
static void tlsrpt_message(const struct tr_send *s, const char *to, const char *report_id,
                           const struct buf *gz, struct buf *m)
{
	const struct conf *c = s->t->q->conf;
	char date[64], start[UTIL_RFC3339_LEN + 1], end[UTIL_RFC3339_LEN + 1];
	util_rfc5322_date((time_t)s->end, date, sizeof date);
	util_rfc3339(s->start, start);
	util_rfc3339(s->end, end);
	buf_printf(m, "From: <%s>\r\nTo: <%s>\r\nDate: %s\r\n", c->postmaster_address, to, date);
	buf_printf(m, "Subject: Report Domain: %s Submitter: %s Report-ID: <%s>\r\n", s->domain,
	           c->hostname, report_id);
	buf_printf(m, "Message-ID: <%s>\r\nTLS-Report-Domain: %s\r\nTLS-Report-Submitter: %s\r\n",
	           report_id, s->domain, c->hostname);
	buf_printf(m, "MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=\"tlsrpt\";"
	           "\r\n boundary=\"tlsrpt-%s\"\r\n\r\n", report_id);
	buf_printf(m, "--tlsrpt-%s\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
	           "The TLS report (RFC 8460) of %s for %s, %s to %s.\r\n\r\n", report_id,
	           c->hostname, s->domain, start, end);
	buf_printf(m, "--tlsrpt-%s\r\nContent-Type: application/tlsrpt+gzip\r\n"
	           "Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment;\r\n"
	           " filename=\"%s!%s!%lld!%lld.json.gz\"\r\n\r\n", report_id, c->hostname, s->domain,
	           (long long)s->start, (long long)s->end);
	struct buf b64 = BUF_INIT;
	smtp_b64_encode(gz->data, gz->len, &b64);
	for (size_t i = 0; i < b64.len; i += 76) {
		buf_append(m, b64.data + i, b64.len - i < 76 ? b64.len - i : 76);
		buf_puts(m, "\r\n");
	}
	buf_free(&b64);
	buf_printf(m, "--tlsrpt-%s--\r\n", report_id);
}

/* Queued from <> to the rua address, routed as any recipient. */
static void tlsrpt_inject(struct tlsrpt *t, const char *to, const struct buf *msg)
{
	struct queue *q = t->q;
	struct addr a;
	struct policy_targets tg = { 0, 0, NULL };
	if (addr_parse_mailbox(to, &a) != ADDR_OK ||
	    policy_rcpt(q->cur->set, &a, true, &tg) != POLICY_ACCEPT || tg.n == 0) {
		log_warn("tls-rpt: cannot send a report to <%s>: no such mailbox or route", to);
		return policy_targets_free(&tg);
	}
	struct spool_env e;
	memset(&e, 0, sizeof e);
	util_qid(e.qid);
	e.sender = e.envid = e.client = e.helo = (char *)"";
	int64_t now = (int64_t)time(NULL);
	e.arrival = now;
	e.size = msg->len;
	e.nrcpt = tg.n;
	e.rcpt = util_xcalloc(tg.n, sizeof *e.rcpt);
	for (size_t i = 0; i < tg.n; i++)
		e.rcpt[i] = (struct spool_rcpt){ .idx = (unsigned)i, .orig = (char *)to,
		                                 .addr = tg.v[i].addr, .transport = tg.v[i].transport,
		                                 .orcpt = (char *)"", .last_reply = (char *)"",
		                                 .remote_mta = (char *)"", .next_try = now };
	int err = spool_inject(q->spool, &e, msg->data, msg->len);
	if (err)
		log_error("tls-rpt: cannot queue the report to <%s>: %s", to, strerror(err));
	else
		log_info("%s: tls-rpt: report queued to <%s>", e.qid, to);
	free(e.rcpt);
	policy_targets_free(&tg);
}

/* The report, gzipped, into gz; its id into report_id. */
static bool tlsrpt_report(struct tr_send *s, char *report_id, size_t n, struct buf *gz)
{
	snprintf(report_id, n, "%lld.%u.%s@%s", (long long)s->end, ++s->t->seq, s->domain,
	         s->t->q->conf->hostname);
	char *json = tlsrpt_json(s, report_id);
	bool ok = json && tlsrpt_gzip(json, strlen(json), gz);
	free(json);
	if (!ok)
		log_error("tls-rpt: %s: cannot make the report", s->domain);
	return ok;
}

static void tlsrpt_mail(struct tr_send *s, const char *to)
{
	char report_id[400];
	struct buf gz = BUF_INIT, msg = BUF_INIT;
	if (tlsrpt_report(s, report_id, sizeof report_id, &gz)) {
		tlsrpt_message(s, to, report_id, &gz, &msg);
		tlsrpt_inject(s->t, to, &msg);
	}
	buf_free(&gz);
	buf_free(&msg);
}

/* ---- https: (RFC 8460 5.4) ---- */

static void tlsrpt_posted(void *arg, const struct httpc_resp *r)
{
	struct tr_post *p = arg;
	p->g = NULL;
	if (r->ok)
		log_info("tls-rpt: %s: report posted to %s (HTTP %ld)", p->domain, p->uri, r->status);
	else
		log_warn("tls-rpt: %s: cannot post the report to %s: %s", p->domain, p->uri, r->why);
	tlsrpt_post_free(p);
}

static void tlsrpt_post_addr(void *arg, const struct dns_rrset *r)
{
	struct tr_post *p = arg;
	struct tlsrpt *t = p->t;
	p->l = NULL;
	if (!(r->status == DNS_OK && r->n) && r->status != DNS_TEMP && !p->tried_aaaa) {
		p->tried_aaaa = true;
		p->l = dns_lookup(t->q->dns, p->host, DNS_T_AAAA, tlsrpt_post_addr, p);
		return;
	}
	if (!(r->status == DNS_OK && r->n)) {
		log_warn("tls-rpt: %s: cannot post the report to %s: %s: %s", p->domain, p->uri,
		         p->host, r->status == DNS_TEMP ? r->why : "no address");
		return tlsrpt_post_free(p);
	}
	if (!t->http && !(t->http = httpc_new(t->q->base))) {
		log_error("tls-rpt: cannot start libcurl");
		return tlsrpt_post_free(p);
	}
	const struct buf *ca = &t->q->cur->sts_ca;
	struct httpc_req req = { p->host, r->rr[0].data, p->port, *p->path ? p->path : "/",
	                         ca->len ? ca->data : NULL, ca->len, NULL, 64 * 1024,
	                         STS_CONNECT_TIMEOUT, STS_TIMEOUT, p->gz.data, p->gz.len,
	                         "application/tlsrpt+gzip" };
	p->g = httpc_get(t->http, &req, tlsrpt_posted, p);
}

static void tlsrpt_post(struct tr_send *s, const char *uri)
{
	struct tlsrpt *t = s->t;
	struct tr_post *p = util_xcalloc(1, sizeof *p);
	const char *path;
	p->t = t;
	snprintf(p->domain, sizeof p->domain, "%s", s->domain);
	snprintf(p->uri, sizeof p->uri, "%s", uri);
	p->next = t->posting;
	if (p->next)
		p->next->pprev = &p->next;
	p->pprev = &t->posting;
	t->posting = p;
	char report_id[400];
	if (!tlsrpt_https_split(uri, p->host, sizeof p->host, &p->port, &path) ||
	    strlen(path) >= sizeof p->path) {
		log_warn("tls-rpt: %s: rua %s: not an https URI tern can post to", s->domain, uri);
		return tlsrpt_post_free(p);
	}
	snprintf(p->path, sizeof p->path, "%s", path);
	if (!tlsrpt_report(s, report_id, sizeof report_id, &p->gz))
		return tlsrpt_post_free(p);
	p->l = dns_lookup(t->q->dns, p->host, DNS_T_A, tlsrpt_post_addr, p);
}

/* RFC 8460 3: the one record that is v=TLSRPTv1, and its rua. */
static void tlsrpt_txt_cb(void *arg, const struct dns_rrset *r)
{
	struct tr_send *s = arg;
	s->l = NULL;
	struct tlsrpt_rua rua = { 0 };
	size_t found = 0;
	for (size_t i = 0; r->status == DNS_OK && i < r->n; i++)
		if (tlsrpt_txt(r->rr[i].data, r->rr[i].len, &rua))
			found++;
	if (found != 1) {
		log_info("tls-rpt: %s: %s _smtp._tls TLSRPTv1 record; no report sent", s->domain,
		         found ? "more than one" : "no");
		return tlsrpt_send_free(s);
	}
	for (size_t i = 0; i < rua.n; i++) {
		if (rua.v[i].https)
			tlsrpt_post(s, rua.v[i].uri);
		else
			tlsrpt_mail(s, rua.v[i].uri);
	}
	tlsrpt_send_free(s);
}

/* ---- the counts across restarts: spool_dir/tlsrpt.json ---- */

static json_t *tlsrpt_pol_json(const struct tr_pol *p)
{
	json_t *fails = json_array();
	for (const struct tr_fail *f = p->fails; f; f = f->next)
		json_array_append_new(fails, json_pack("{s:s, s:s, s:s, s:s, s:s, s:I}", "result",
		                                       tlsrpt_result_name(f->r), "mx", f->mx, "ip",
		                                       f->ip, "local", f->local, "detail", f->detail,
		                                       "n", (json_int_t)f->n));
	json_t *o = json_pack("{s:s, s:s, s:I, s:o}", "domain", p->domain, "type",
	                      tlsrpt_policy_name(p->type), "ok", (json_int_t)p->ok, "fails", fails);
	if (p->sts) {
		const struct mtasts_policy *m = &p->sts->pol;
		json_t *mx = json_array();
		for (size_t i = 0; i < m->nmx; i++)
			json_array_append_new(mx, json_string(m->mx[i]));
		json_object_set_new(o, "sts", json_pack("{s:s, s:s, s:I, s:o}", "id", p->sts->id,
		                                         "mode", mtasts_mode_name(m->mode), "max_age",
		                                         (json_int_t)m->max_age, "mx", mx));
	}
	return o;
}

/* The counts of this period, and with unsent those of reports still on
 * their way (at shutdown: they are counted again next time), written to
 * a new file renamed over the old one. Not fsynced: a crash loses at
 * most TLSRPT_SAVE_S seconds of counts, statistics, never mail. */
static void tlsrpt_save(struct tlsrpt *t, bool unsent)
{
	json_t *pols = json_array();
	for (const struct tr_pol *p = t->all; p; p = p->next)
		json_array_append_new(pols, tlsrpt_pol_json(p));
	for (const struct tr_send *s = t->sending; unsent && s; s = s->next)
		for (const struct tr_pol *p = s->pols; p; p = p->next)
			json_array_append_new(pols, tlsrpt_pol_json(p));
	json_t *root = json_pack("{s:i, s:I, s:o}", "version", 1, "since", (json_int_t)t->since,
	                         "policies", pols);
	char tmp[sizeof t->path + 8];
	snprintf(tmp, sizeof tmp, "%s.new", t->path);
	if (json_dump_file(root, tmp, JSON_COMPACT) != 0 || rename(tmp, t->path) != 0)
		log_warn("tls-rpt: cannot save the counts in %s: %s", t->path, strerror(errno));
	else
		t->dirty = false;
	json_decref(root);
}

static void tlsrpt_save_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct tlsrpt *t = arg;
	if (t->dirty)
		tlsrpt_save(t, false);
}

/* The enum values of names written by tlsrpt_save; -1 for none. */
static int tlsrpt_result_of(const char *name)
{
	for (int r = TLSRPT_SUCCESS; r <= TLSRPT_STS_WEBPKI_INVALID; r++)
		if (!strcmp(tlsrpt_result_name((enum tlsrpt_result)r), name))
			return r;
	return -1;
}

static int tlsrpt_policy_of(const char *name)
{
	for (int p = TLSRPT_POLICY_NONE; p <= TLSRPT_POLICY_TLSA; p++)
		if (!strcmp(tlsrpt_policy_name((enum tlsrpt_policy)p), name))
			return p;
	return -1;
}

static bool tlsrpt_load_sts(struct tr_pol *p, json_t *o)
{
	const char *id, *mode;
	json_int_t max_age;
	json_t *mx;
	if (json_unpack(o, "{s:s, s:s, s:I, s:o}", "id", &id, "mode", &mode, "max_age", &max_age,
	                "mx", &mx) != 0 || !json_is_array(mx))
		return false;
	struct sts_policy *sp = util_xcalloc(1, sizeof *sp);
	snprintf(sp->domain, sizeof sp->domain, "%s", p->domain);
	snprintf(sp->id, sizeof sp->id, "%s", id);
	sp->pol.mode = !strcmp(mode, "enforce") ? MTASTS_ENFORCE :
	               !strcmp(mode, "testing") ? MTASTS_TESTING : MTASTS_NONE;
	sp->pol.max_age = (unsigned)max_age;
	for (size_t i = 0; i < json_array_size(mx) && sp->pol.nmx < MTASTS_MX_MAX; i++)
		if (json_is_string(json_array_get(mx, i)))
			snprintf(sp->pol.mx[sp->pol.nmx++], sizeof sp->pol.mx[0], "%s",
			         json_string_value(json_array_get(mx, i)));
	free(p->sts);
	p->sts = sp;
	return true;
}

static bool tlsrpt_load_fails(struct tr_pol *p, json_t *fails)
{
	size_t i;
	json_t *f;
	json_array_foreach(fails, i, f) {
		const char *result, *mx, *ip, *local, *detail;
		json_int_t n;
		if (json_unpack(f, "{s:s, s:s, s:s, s:s, s:s, s:I}", "result", &result, "mx", &mx,
		                "ip", &ip, "local", &local, "detail", &detail, "n", &n) != 0 ||
		    tlsrpt_result_of(result) < 0 || n < 0)
			return false;
		tlsrpt_count(p, (enum tlsrpt_result)tlsrpt_result_of(result), mx, ip, local, detail,
		             (unsigned long)n);
	}
	return true;
}

static bool tlsrpt_load_pol(struct tlsrpt *t, json_t *o)
{
	const char *domain, *type;
	json_int_t ok;
	json_t *fails, *sts = NULL;
	if (json_unpack(o, "{s:s, s:s, s:I, s:o, s?o}", "domain", &domain, "type", &type, "ok", &ok,
	                "fails", &fails, "sts", &sts) != 0 || tlsrpt_policy_of(type) < 0 ||
	    !json_is_array(fails) || ok < 0)
		return false;
	struct tr_pol *p = tlsrpt_pol(t, domain, (enum tlsrpt_policy)tlsrpt_policy_of(type));
	p->ok += (unsigned long)ok;
	return (!sts || tlsrpt_load_sts(p, sts)) && tlsrpt_load_fails(p, fails);
}

/* The counts a previous run saved, and the start of their period. A file
 * that does not read is set aside (its counts are lost, not the start). */
static void tlsrpt_load(struct tlsrpt *t)
{
	json_error_t err;
	if (access(t->path, F_OK) != 0)
		return;
	json_t *root = json_load_file(t->path, 0, &err), *pols, *o;
	json_int_t since;
	size_t i;
	bool ok = root && json_unpack(root, "{s:I, s:o}", "since", &since, "policies", &pols) == 0 &&
	          json_is_array(pols);
	if (ok) {
		t->since = since;
		json_array_foreach(pols, i, o)
			ok = tlsrpt_load_pol(t, o) && ok;
	}
	if (!ok)
		log_warn("tls-rpt: %s: %s; counts in it may be lost", t->path,
		         root ? "not the file tern writes" : err.text);
	else
		log_info("tls-rpt: counts since %lld read from %s", (long long)since, t->path);
	json_decref(root);
}

/* ---- periods ---- */

/* Periods are aligned: with the default day, UTC midnight to midnight
 * (RFC 8460 4.1). */
static int64_t tlsrpt_period_start(const struct tlsrpt *t, int64_t when)
{
	return when - when % t->interval;
}

/* When the period counted ends: the end of the aligned period since is
 * in (a saved since may be unaligned: a new tls_rpt_interval). */
static int64_t tlsrpt_end(const struct tlsrpt *t)
{
	return tlsrpt_period_start(t, t->since) + t->interval;
}

static void tlsrpt_arm(struct tlsrpt *t, int64_t now)
{
	int64_t end = tlsrpt_end(t);
	struct timeval tv = { end > now ? (time_t)(end - now) : 0, 0 };
	evtimer_add(t->timer, &tv);
}

/* The period is over: each domain's counts go into a report of its own. */
static void tlsrpt_period(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct tlsrpt *t = arg;
	int64_t now = (int64_t)time(NULL), end = tlsrpt_end(t);
	struct tr_pol *all = t->all;
	t->all = NULL;
	hmap_clear(&t->pols, NULL, NULL);
	while (all) {
		struct tr_send *s = util_xcalloc(1, sizeof *s);
		s->t = t;
		s->start = t->since;
		s->end = end;
		snprintf(s->domain, sizeof s->domain, "%s", all->domain);
		for (struct tr_pol **pp = &all; *pp;) {   /* the domain's policies move */
			struct tr_pol *p = *pp;
			if (strcmp(p->domain, s->domain) != 0) {
				pp = &p->next;
				continue;
			}
			*pp = p->next;
			p->next = s->pols;
			s->pols = p;
		}
		s->next = t->sending;
		if (s->next)
			s->next->pprev = &s->next;
		s->pprev = &t->sending;
		t->sending = s;
		char name[300];
		snprintf(name, sizeof name, "_smtp._tls.%s", s->domain);
		s->l = dns_lookup(t->q->dns, name, DNS_T_TXT, tlsrpt_txt_cb, s);
	}
	t->since = tlsrpt_period_start(t, now);
	if (t->since < end)
		t->since = end;
	tlsrpt_save(t, false);
	tlsrpt_arm(t, now);
}

struct tlsrpt *tlsrpt_new(struct queue *q)
{
	if (!q->conf->tls_rpt)
		return NULL;
	struct tlsrpt *t = util_xcalloc(1, sizeof *t);
	t->q = q;
	t->interval = q->conf->tls_rpt_interval ? (int64_t)q->conf->tls_rpt_interval : 86400;
	snprintf(t->path, sizeof t->path, "%s/tlsrpt.json", q->conf->spool_dir);
	int64_t now = (int64_t)time(NULL);
	t->since = tlsrpt_period_start(t, now);
	tlsrpt_load(t);   /* an earlier start, or a period already over: reported at once */
	t->timer = evtimer_new(q->base, tlsrpt_period, t);
	tlsrpt_arm(t, now);
	t->save_ev = event_new(q->base, -1, EV_PERSIST, tlsrpt_save_cb, t);
	struct timeval tv = { TLSRPT_SAVE_S, 0 };
	evtimer_add(t->save_ev, &tv);
	return t;
}

void tlsrpt_free(struct tlsrpt *t)
{
	if (!t)
		return;
	tlsrpt_save(t, true);
	while (t->sending)
		tlsrpt_send_free(t->sending);
	while (t->posting)
		tlsrpt_post_free(t->posting);
	httpc_free(t->http);
	hmap_clear(&t->pols, NULL, NULL);
	tlsrpt_pols_free(t->all);
	event_free(t->timer);
	event_free(t->save_ev);
	free(t);
}
