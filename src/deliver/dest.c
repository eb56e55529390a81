/* dest: next hops (a destination: an MX domain, a host, an LMTP socket)
 * with their waiting jobs and their connections, at most
 * destination_concurrency each, resolved (net/dns.c), opened and reused
 * (net/smtpc.c); the SMTP and LMTP transport (see engine.h). A job
 * waiting for a busy connection goes out right behind the previous
 * message's final dot (RFC 2920 3.1, smtpc_cbs.more); idle connections
 * are kept QUEUE_CONN_IDLE seconds. An MX list that names this host is
 * cut to the better hosts first (RFC 5321 5.1, myself.h). With mta_sts an
 * MX destination's MTA-STS policy (RFC 8461, sts.h) is found before its
 * hosts' TLSA records: under enforce the hosts its mx patterns do not
 * match are left out (unless DANE authenticates them), and the client
 * requires a valid certificate of the others.
 */
#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "deliver/adapt.h"
#include "deliver/engine.h"
#include "deliver/job_source.h"
#include "deliver/sts.h"
#include "deliver/tlsrpt.h"
#include "lib/buf.h"
#include "lib/log.h"
#include "lib/util.h"
#include "net/dns.h"
#include "net/tlsa.h"

struct dest;

struct conn {
	struct conn *next;          /* in its dest's idle list */
	size_t slot;                /* its index in the queue's conns */
	struct queue *q;
	struct dest *d;
	struct smtpc *c;
	struct event *idle_ev;
	struct qjob *job;           /* under way */
	struct qjob *pipelined;     /* sent after it (smtpc's more) */
	struct engine_set *es;      /* the settings it was opened with (its target's) */
	struct hold_conduit *conduit; /* ATRN: the conduit whose connection it took */
	bool ready;
	bool backup;                /* this host is an MX of the domain: only better ones are tried */
	bool retiring;              /* over its destination's limit: closes after its job */
	struct dane_wait *dane;     /* dane, dane-only: the TLSA lookups under way */
	struct sts_hold *sts_hold;  /* mta_sts: waiting for the domain's policy */
	struct sts_policy *sts;     /* the policy found (NULL: none, or mode none) */
};

/* The MX hosts, kept while the domain's MTA-STS policy is discovered. */
struct sts_hold {
	struct dns_result res;
	size_t nhost;
	struct sts_wait *w;
};

/* The TLSA lookups of a connection's MX hosts (RFC 7672 2.2), one per
 * host whose MX and address answers were secure; the connection opens
 * once all have answered. */
struct dane_wait {
	struct conn *cn;
	struct dns_result res;      /* the hosts to try (cut by conn_myself) */
	struct tlsa_set *set;       /* their verdicts */
	unsigned waiting;
	struct dns_lookup *l[DNS_HOSTS_MAX];
	struct dane_ask { struct dane_wait *w; size_t h; } ask[DNS_HOSTS_MAX];
};

/* A route's messages go on connections of three kinds: the configured
 * policy; TLS-Required: No (RFC 8689 5), smtp_tls = may whatever is
 * configured; REQUIRETLS (RFC 8689 4.2.1), only to hosts that verify
 * and offer it, the others passed over for the next MX. */
enum dest_tls { DEST_POLICY, DEST_TLS_MAY, DEST_REQUIRETLS };

struct dest {
	struct hmap_node node;      /* in the queue's table, by route key */
	struct route route;
	enum dest_tls tls;          /* which of a route's messages it carries */
	unsigned active, starting;  /* connections, and of them not yet ready */
	struct qjob *wait_head, **wait_tail;
	size_t nwait;
	struct conn *idle;
	unsigned holds;             /* calls under way that use it after jobs end */
	struct adapt adapt;         /* how many connections now (adapt.h) */
	unsigned nretiring;         /* connections marked to close (conn_over) */
};

/* ATRN's reversed connection as a next hop (see the end of this file). */
struct hold_conduit {
	char name[200];               /* "atrn:user", for the log */
	struct sockaddr_storage peer;
	struct closer_taken taken;    /* until its connection takes it */
	bool attached;                /* the session has handed it over (or gave up) */
	bool usable;                  /* and there is a connection to take */
	bool released;                /* its release has ended */
	unsigned holds;               /* its connection, and calls under way */
	unsigned id;
};

static void dest_pump(struct queue *q, struct dest *d);

/* The connections d may have now: adapt's limit, under the settings in
 * force; made on first use (adapt.max 0) and again after a reload that
 * changed them. */
static unsigned dest_limit(const struct queue *q, struct dest *d)
{
	bool adaptive = q->conf->destination_concurrency_adaptive;
	if (d->adapt.max != q->conf->destination_concurrency || adaptive != (d->adapt.level != NULL)) {
		adapt_free(&d->adapt);
		adapt_init(&d->adapt, q->conf->destination_concurrency, adaptive,
		           (int64_t)util_now_ms());
	}
	return d->adapt.limit;
}

static struct dest *dest_get(struct queue *q, const struct route *r, enum dest_tls tls)
{
	size_t h = hmap_hash(r->key);
	for (struct hmap_node *n = hmap_first(&q->dests, h); n; n = hmap_next(n)) {
		struct dest *d = HMAP_ENTRY(n, struct dest, node);
		if (!strcmp(d->route.key, r->key) && d->tls == tls)
			return d;
	}
	struct dest *d = util_xcalloc(1, sizeof *d);
	d->route = *r;
	d->tls = tls;
	d->wait_tail = &d->wait_head;
	dest_limit(q, d);   /* adapt's state, made for the settings in force */
	hmap_add(&q->dests, &d->node, h);
	return d;
}

static void dest_free_if_unused(struct queue *q, struct dest *d)
{
	if (d->active || d->nwait || d->idle || d->holds)
		return;
	hmap_del(&q->dests, &d->node);
	adapt_free(&d->adapt);
	free(d);
}

static void dest_free_node(struct hmap_node *n, void *ctx)
{
	(void)ctx;
	struct dest *d = HMAP_ENTRY(n, struct dest, node);
	adapt_free(&d->adapt);
	free(d);
}

static struct qjob *dest_pop(struct dest *d)
{
	struct qjob *j = d->wait_head;
	if (!j)
		return NULL;
	d->wait_head = j->next;
	if (!d->wait_head)
		d->wait_tail = &d->wait_head;
	d->nwait--;
	j->next = NULL;
	return j;
}

/* Every live conn in q->conns (for shutdown); each knows its slot, and
 * the last one moves into a slot freed. */
static void conn_track(struct queue *q, struct conn *cn, bool add)
{
	if (add) {
		q->conns = util_xrealloc(q->conns, q->nconns + 1, sizeof *q->conns);
		cn->slot = q->nconns;
		q->conns[q->nconns++] = cn;
		return;
	}
	struct conn *last = q->conns[--q->nconns];
	q->conns[cn->slot] = last;
	last->slot = cn->slot;
}

static void dest_conduit_free_if_over(struct hold_conduit *c);

/* The lookups are cancelled when the resolver is still there. */
static void conn_dane_free(struct conn *cn, struct dns *dns)
{
	struct dane_wait *w = cn->dane;
	if (!w)
		return;
	for (size_t h = 0; dns && h < w->res.nhost; h++)
		if (w->l[h])
			dns_cancel(dns, w->l[h]);
	tlsa_set_unref(w->set);
	free(w);
	cn->dane = NULL;
}

/* The wait is cancelled when the policies are still there. */
static void conn_sts_free(struct conn *cn, struct sts *sts)
{
	if (cn->sts_hold && sts)
		sts_cancel(sts, cn->sts_hold->w);
	free(cn->sts_hold);
	free(cn->sts);
	cn->sts_hold = NULL;
	cn->sts = NULL;
}

static void conn_free(struct conn *cn)
{
	struct queue *q = cn->q;
	if (cn->retiring)
		cn->d->nretiring--;
	conn_track(q, cn, false);
	conn_dane_free(cn, q->dns);
	conn_sts_free(cn, q->sts);
	if (cn->conduit) {
		cn->conduit->holds--;
		dest_conduit_free_if_over(cn->conduit);
	}
	if (cn->idle_ev)
		event_free(cn->idle_ev);
	engine_set_unref(cn->es);
	free(cn);
}

static void conn_job_init(struct conn *cn, struct qjob *job)
{
	job->sj = (struct smtpc_job){ &job_source, &job->m->env, cn->q->reader, job->n, job->idx,
	                              job->res, false, "", "" };
}

static void conn_run(struct conn *cn, struct qjob *job)
{
	cn->job = job;
	conn_job_init(cn, job);
	smtpc_send(cn->c, &job->sj);
}

static void conn_unidle(struct conn *cn)
{
	for (struct conn **pp = &cn->d->idle; *pp; pp = &(*pp)->next)
		if (*pp == cn) {
			*pp = cn->next;
			return;
		}
}

static void conn_idle_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct conn *cn = arg;
	struct dest *d = cn->d;
	struct queue *q = cn->q;
	conn_unidle(cn);
	d->active--;
	smtpc_close(cn->c);
	conn_free(cn);
	dest_free_if_unused(q, d);
}

/* Why a job may not go on this connection, or NULL. A message received
 * with SMTPUTF8 goes only to a next hop that offers it: no downgraded
 * copy (RFC 6531 3.4), even when its envelope and header happen to be
 * ASCII; 5.6.7 (RFC 6533 3). A BODY=BINARYMIME message only by BDAT to a
 * next hop that offers BINARYMIME (RFC 3030 3; never over LMTP, which
 * sends DATA): no conversion, 5.6.3. A REQUIRETLS message only over TLS verified
 * by policy, to a next hop that offers REQUIRETLS (RFC 8689 4.2.1); LMTP
 * is final delivery, which needs neither. */
static const char *conn_lacks(const struct conn *cn, const struct qjob *job)
{
	const struct smtp_ext *x = smtpc_ext(cn->c);
	if (job->m->env.smtputf8 && !x->smtputf8)
		return "5.6.7 %s: the next hop does not support SMTPUTF8 (RFC 6531 3.4)";
	if (job->m->env.body == BODY_BINARYMIME && !(x->binarymime && smtpc_bdat(cn->c)))
		return cn->d->route.lmtp ? "5.6.3 %s: BINARYMIME needs BDAT, and LMTP is sent by DATA"
		                           " (RFC 3030 3)"
		                         : "5.6.3 %s: the next hop does not support BINARYMIME and"
		                           " CHUNKING (RFC 3030 3)";
	if (!job->m->env.requiretls || cn->d->route.lmtp)
		return NULL;
	return smtpc_requiretls_lacks(cn->c);
}

/* Such a job ends here, every recipient returned with the reason. */
static void conn_refuse(struct conn *cn, struct qjob *job, const char *why)
{
	struct deliver_result r = { DELIVER_PERM, "" };
	snprintf(r.reply, sizeof r.reply, why, cn->d->route.name);
	conn_job_init(cn, job);
	for (size_t i = 0; i < job->n; i++)
		job->res[i] = r;
	sched_job_done(cn->q, job);
}

/* Whether cn is one too many for its destination's limit (lowered
 * since it opened): as many connections are marked as are over it, the
 * first to ask; the others go on taking and pipelining jobs. A mark is
 * taken back when the limit has risen again. */
static bool conn_over(struct conn *cn)
{
	struct dest *d = cn->d;
	if (d->route.kind == ROUTE_CONDUIT)
		return false;
	unsigned kept = d->active - d->nretiring + cn->retiring;   /* cn among them */
	bool over = kept > dest_limit(cn->q, d);
	if (over && !cn->retiring)
		d->nretiring++;
	else if (!over && cn->retiring)
		d->nretiring--;
	cn->retiring = over;
	return over;
}

/* A marked connection closes instead of taking another job. */
static bool conn_retire(struct conn *cn)
{
	if (!conn_over(cn))
		return false;
	cn->d->active--;   /* still >= the limit, >= 1: d stays */
	smtpc_close(cn->c);
	conn_free(cn);
	return true;
}

/* A ready connection with nothing to do: the next waiting job, or idle. */
static void conn_next(struct conn *cn)
{
	struct qjob *job;
	const char *why;
	if (conn_retire(cn))
		return;
	while ((job = dest_pop(cn->d)) && (why = conn_lacks(cn, job)))
		conn_refuse(cn, job, why);
	if (job)
		return conn_run(cn, job);
	cn->next = cn->d->idle;
	cn->d->idle = cn;
	struct timeval tv = { QUEUE_CONN_IDLE, 0 };
	if (cn->d->route.kind != ROUTE_CONDUIT)   /* it waits for its release's end */
		evtimer_add(cn->idle_ev, &tv);
	else if (cn->d->route.conduit->released)
		event_active(cn->idle_ev, EV_TIMEOUT, 0);
}

static void conn_ready_cb(struct smtpc *c, void *arg)
{
	(void)c;
	struct conn *cn = arg;
	cn->ready = true;
	cn->d->starting--;
	conn_next(cn);
}

/* The connection has sent a job whole: the next waiting one may follow at
 * once, pipelined. */
static struct smtpc_job *conn_more_cb(struct smtpc *c, void *arg)
{
	(void)c;
	struct conn *cn = arg;
	if (cn->d->wait_head && conn_lacks(cn, cn->d->wait_head))
		return NULL;   /* conn_next refuses it once this job is done */
	if (conn_over(cn))
		return NULL;   /* it retires once this job is done */
	struct qjob *job = dest_pop(cn->d);
	if (!job)
		return NULL;
	cn->pipelined = job;
	conn_job_init(cn, job);
	return &job->sj;
}

/* A transaction to d has ended: adapt's count, saturated while jobs
 * still wait for a connection; a limit raised opens one more at once. */
static void dest_done(struct queue *q, struct dest *d)
{
	if (d->route.kind == ROUTE_CONDUIT)   /* one connection, the customer's */
		return;
	unsigned was = dest_limit(q, d);
	if (!adapt_done(&d->adapt, d->nwait > 0, (int64_t)util_now_ms()))
		return;
	log_debug("%s: %u connections at most, was %u (destination_concurrency_adaptive)",
	          d->route.name, d->adapt.limit, was);
	if (d->adapt.limit > was)
		dest_pump(q, d);
}

static void conn_done_cb(struct smtpc *c, struct smtpc_job *sj, void *arg)
{
	struct conn *cn = arg;
	struct qjob *job = cn->job;
	if (sj != &job->sj)
		log_panic("%s: the client ended a job out of order", job->m->env.qid);
	cn->job = cn->pipelined;
	cn->pipelined = NULL;
	dest_done(cn->q, cn->d);
	sched_job_done(cn->q, job);
	if (!cn->job && smtpc_usable(c))
		conn_next(cn);
}

/* Every waiting job of d ends with r (nobody is left to carry them). A
 * job's end can end what d serves (an ATRN release, whose end frees its
 * conduit's dest when it looks unused): d is held until the last one, and
 * the caller frees it if nothing is left. */
static void dest_fail_waiting(struct queue *q, struct dest *d, const struct deliver_result *r)
{
	struct qjob *job;
	d->holds++;
	while ((job = dest_pop(d))) {
		for (size_t i = 0; i < job->n; i++)
			job->res[i] = *r;
		sched_job_done(q, job);
	}
	d->holds--;
}

/* The connection is gone (it never came up, or an idle or busy one broke).
 * A backup MX that reached none of the better hosts says so (4.4.4). */
static void conn_fail(struct conn *cn, const struct deliver_result *why)
{
	struct dest *d = cn->d;
	struct queue *q = cn->q;
	struct deliver_result r;
	if (cn->backup && !cn->ready && myself_unreachable(d->route.name, why, &r))
		why = &r;
	conn_unidle(cn);
	d->active--;
	if (!cn->ready)
		d->starting--;
	if (cn->c)
		smtpc_close(cn->c);
	conn_free(cn);
	if (d->active == 0)
		dest_fail_waiting(q, d, why);
	dest_free_if_unused(q, d);
}

static void conn_fail_cb(struct smtpc *c, const struct deliver_result *why, void *arg)
{
	(void)c;
	conn_fail(arg, why);
}

static void conn_target_base(struct conn *cn, struct smtpc_target *t)
{
	const struct engine_set *es = cn->es;
	const struct route *r = &cn->d->route;
	memset(t, 0, sizeof *t);
	t->lmtp = r->lmtp;
	t->tls = r->kind == ROUTE_UNIX ? SMTPC_TLS_NONE : es->tls;
	if (r->kind == ROUTE_CONDUIT && (t->tls == SMTPC_TLS_DANE || t->tls == SMTPC_TLS_DANE_ONLY))
		t->tls = SMTPC_TLS_MAY;   /* the customer's own session: no MX, no TLSA */
	t->ssl_ctx = es->ssl;
	t->requiretls = cn->d->tls == DEST_REQUIRETLS;
	if (cn->d->tls == DEST_TLS_MAY && t->tls > SMTPC_TLS_MAY) {   /* TLS-Required: No */
		t->tls = SMTPC_TLS_MAY;
		t->ssl_ctx = es->ssl_may;
	}
	t->helo = es->set->conf.hostname;
	t->auth_user = r->auth ? es->auth_user : NULL;
	t->auth_pass = r->auth ? es->auth_pass : NULL;
	t->connect_timeout = es->set->conf.smtp_connect_timeout;
	t->timeout = es->set->conf.smtp_timeout;
	t->chunking = es->set->conf.smtp_chunking;
	t->closer = cn->q->closer;
}

/* TLS-RPT: an MX host's TLS outcome counts for the domain. */
static void conn_tls_cb(struct smtpc *c, const struct smtpc_tls_result *r, void *arg)
{
	(void)c;
	struct conn *cn = arg;
	if (cn->d->route.kind == ROUTE_MX)
		tlsrpt_note(cn->q->tlsrpt, cn->d->route.name, cn->sts, r);
}

static void conn_open(struct conn *cn, const struct smtpc_target *t)
{
	static const struct smtpc_cbs cbs0 = { conn_ready_cb, conn_fail_cb, conn_done_cb,
	                                       conn_more_cb, NULL, conn_tls_cb };
	struct smtpc_cbs cbs = cbs0;
	cbs.ctx = cn;
	cn->c = smtpc_open(cn->q->base, t, &cbs);
}

/* RFC 5321 5.1: an MX list that names this host keeps only the hosts
 * better than it (myself.h), in *nhost; false when none is left to try
 * (cn has failed). */
static bool conn_myself(struct conn *cn, const struct dns_result *res, size_t *nhost)
{
	const char *domain = cn->d->route.name;
	struct myself_cut c = myself_cut(cn->es->myself, res);
	if (c.verdict == MYSELF_ABSENT)
		return true;
	struct buf b = BUF_INIT;
	myself_describe(&c, res, domain, &b);
	if (c.verdict == MYSELF_BEST)   /* MX records that point here: worth a warning */
		log_warn("%s", buf_cstr(&b));
	else
		log_info("%s", buf_cstr(&b));
	buf_free(&b);
	struct deliver_result r;
	if (myself_result(&c, domain, &r)) {
		conn_fail(cn, &r);
		return false;
	}
	cn->backup = true;
	*nhost = c.keep;
	return true;
}

/* ---- MTA-STS (RFC 8461) ---- */

/* TLS-RPT (RFC 8460): a host left out before any connection, counted
 * against the domain's policy (its first address as receiving-ip). */
static void conn_rpt_host(const struct conn *cn, enum tlsrpt_policy p, enum tlsrpt_result r,
                          const struct dns_host *dh, const char *detail)
{
	char ip[INET6_ADDRSTRLEN] = "";
	if (dh->naddr)
		util_ip_text(&dh->addr[0], ip, sizeof ip);
	struct smtpc_tls_result res = { p, r, dh->name, ip, detail, "" };
	tlsrpt_note(cn->q->tlsrpt, cn->d->route.name, cn->sts, &res);
}

static void conn_sts_target(struct conn *cn, struct smtpc_target *t)
{
	if (!cn->sts)
		return;
	t->sts = cn->sts->pol.mode;
	t->sts_ctx = cn->es->sts_ssl;
	sts_describe(cn->sts, t->sts_policy, sizeof t->sts_policy);
}

/* RFC 8461 4.1: may this MX host be used? Under enforce not when the
 * policy's mx patterns do not match it (why says so), unless DANE
 * authenticates it (RFC 8461 2); each verdict is logged. */
static bool conn_sts_host(struct conn *cn, const struct dns_host *dh, const struct tlsa_host *th,
                          char *why, size_t n)
{
	if (!cn->sts)
		return true;
	char pol[300];
	sts_describe(cn->sts, pol, sizeof pol);
	bool dane = th && (th->state == TLSA_USABLE || th->state == TLSA_UNUSABLE);
	if (mtasts_mx_match(&cn->sts->pol, dh->name) || dane) {
		log_info("mta-sts: %s: %s %s", pol, dh->name,
		         dane ? "has DANE TLSA records, which take precedence" : "matches");
		return true;
	}
	bool enforce = cn->sts->pol.mode == MTASTS_ENFORCE;
	conn_rpt_host(cn, TLSRPT_POLICY_STS, TLSRPT_VALIDATION_FAILURE, dh,
	              "the MX host does not match the policy's mx");
	log_warn("mta-sts: %s: %s does not match the policy's mx%s", pol, dh->name,
	         enforce ? ": not used" : " (testing: used)");
	if (!*why)   /* the first host's, as DANE's reasons */
		snprintf(why, n, "4.7.5 MX host %s does not match the MTA-STS policy %s", dh->name, pol);
	return !enforce;
}

/* The addresses of the first nhost hosts, but for hosts DANE leaves out
 * (a failed TLSA lookup, or dane-only without usable records): when
 * nothing is left, the first such host's reason (RFC 7672 2.2: deferred,
 * never sent in clear text). */
static void conn_connect(struct conn *cn, const struct dns_result *res, size_t nhost,
                         struct tlsa_set *dane)
{
	struct smtpc_target t;
	const char *why = NULL;
	char sts_why[400] = "";
	conn_target_base(cn, &t);
	t.dane = dane;
	conn_sts_target(cn, &t);
	for (size_t h = 0; h < nhost; h++) {
		if (dane && dane->host[h].state == TLSA_FAILED) {
			why = why ? why : dane->host[h].why;
			continue;
		}
		if (!conn_sts_host(cn, &res->host[h], dane ? &dane->host[h] : NULL, sts_why,
		                   sizeof sts_why)) {
			why = why ? why : sts_why;
			continue;
		}
		for (size_t a = 0; a < res->host[h].naddr && t.naddr < SMTPC_ADDRS_MAX; a++) {
			struct sockaddr_storage *ss = &t.addr[t.naddr];
			*ss = res->host[h].addr[a];
			if (ss->ss_family == AF_INET)
				((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)cn->d->route.port);
			else
				((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)cn->d->route.port);
			snprintf(t.name[t.naddr++], sizeof t.name[0], "%s", res->host[h].name);
		}
	}
	if (t.naddr == 0 && why) {
		struct deliver_result r = { DELIVER_TEMP, "" };
		snprintf(r.reply, sizeof r.reply, "%s", why);
		return conn_fail(cn, &r);
	}
	conn_open(cn, &t);
}

/* TLS-Required: No (RFC 8689 5): the hosts as they are, no TLSA lookups
 * (nor an MTA-STS policy): TLS as under may. */
static void conn_resolved_may(struct conn *cn, const struct dns_result *res)
{
	size_t nhost = res->nhost;
	if (cn->d->route.kind == ROUTE_MX && !conn_myself(cn, res, &nhost))
		return;
	conn_connect(cn, res, nhost, NULL);
}

/* ---- DANE: the MX hosts' TLSA records (RFC 7672 2.2) ---- */

/* dane-only: a host without usable records is not tried. */
static void conn_dane_only(struct tlsa_host *h, const struct dns_host *dh)
{
	if (h->state == TLSA_USABLE || h->state == TLSA_FAILED || dh->naddr == 0)
		return;
	char why[sizeof h->why];
	snprintf(why, sizeof why, "4.7.5 %s: no usable DANE TLSA records (%.300s); smtp_tls is "
	         "dane-only", h->name, h->state == TLSA_UNUSABLE ? "none of them is usable" : h->why);
	memcpy(h->why, why, sizeof why);
	h->state = TLSA_FAILED;
}

static void conn_dane_done(struct dane_wait *w)
{
	struct conn *cn = w->cn;
	static const char *const names[] = { "none", "usable", "unusable", "failed" };
	for (size_t h = 0; h < w->res.nhost; h++) {
		struct tlsa_host *th = &w->set->host[h];
		if (cn->es->tls == SMTPC_TLS_DANE_ONLY)
			conn_dane_only(th, &w->res.host[h]);
		log_info("dane: %s: TLSA %s%s%s", th->name, names[th->state], *th->why ? ": " : "",
		         th->why);
	}
	cn->dane = NULL;
	conn_connect(cn, &w->res, w->res.nhost, w->set);   /* may free cn */
	tlsa_set_unref(w->set);
	free(w);
}

/* RFC 7672 2.2: records in a secure answer are judged; a secure or an
 * insecure denial, or insecure records, mean no DANE; a failed lookup
 * (SERVFAIL, a timeout, bogus) means the host may not be used. */
static void conn_dane_answer(void *arg, const struct dns_rrset *r)
{
	struct dane_ask *a = arg;
	struct dane_wait *w = a->w;
	struct tlsa_host *th = &w->set->host[a->h];
	w->l[a->h] = NULL;
	if (r->status == DNS_TEMP) {
		char why[sizeof th->why];
		snprintf(why, sizeof why, "4.7.5 TLSA lookup for %s failed: %s", th->name, r->why);
		memcpy(th->why, why, sizeof why);
		th->state = TLSA_FAILED;
		if (r->bogus)   /* RFC 8460 4.3.2 */
			conn_rpt_host(w->cn, TLSRPT_POLICY_TLSA, TLSRPT_DNSSEC_INVALID, &w->res.host[a->h],
			              r->why);
	} else if (r->status == DNS_OK && r->n && r->secure) {
		const char *data[TLSA_RECORDS_MAX * 2];
		size_t lens[TLSA_RECORDS_MAX * 2], n = 0;
		for (; n < r->n && n < TLSA_RECORDS_MAX * 2; n++) {
			data[n] = r->rr[n].data;
			lens[n] = r->rr[n].len;
		}
		tlsa_host_judge(th, data, lens, n);
	} else {
		snprintf(th->why, sizeof th->why, "%s", r->status == DNS_OK && r->n ?
		         "TLSA records not DNSSEC-signed" : "no TLSA records");
	}
	if (--w->waiting == 0)
		conn_dane_done(w);
}

/* RFC 7672 2.2.1-2.2.2: TLSA records count only below a secure MX answer
 * and secure address records; they are at _port._tcp.host. */
static void conn_dane(struct conn *cn, const struct dns_result *res, size_t nhost)
{
	struct dane_wait *w = util_xcalloc(1, sizeof *w);
	w->cn = cn;
	w->res = *res;
	w->res.nhost = nhost;
	w->set = tlsa_set_new(nhost);
	cn->dane = w;
	for (size_t h = 0; h < nhost; h++) {
		struct tlsa_host *th = &w->set->host[h];
		const struct dns_host *dh = &res->host[h];
		char name[300];
		snprintf(th->name, sizeof th->name, "%s", dh->name);
		if (!res->secure || !dh->secure) {
			snprintf(th->why, sizeof th->why, "%s records not DNSSEC-signed",
			         res->secure ? "address" : "MX");
			continue;
		}
		if (dh->naddr == 0)
			continue;
		snprintf(name, sizeof name, "_%u._tcp.%s", cn->d->route.port, dh->name);
		w->ask[h] = (struct dane_ask){ w, h };
		w->waiting++;
		w->l[h] = dns_lookup(cn->q->dns, name, DNS_T_TLSA, conn_dane_answer, &w->ask[h]);
	}
	if (w->waiting == 0)
		conn_dane_done(w);
}

/* The TLSA records next (dane, dane-only), or the connection. */
static void conn_secure(struct conn *cn, const struct dns_result *res, size_t nhost)
{
	if (cn->es->tls == SMTPC_TLS_DANE || cn->es->tls == SMTPC_TLS_DANE_ONLY)
		return conn_dane(cn, res, nhost);
	conn_connect(cn, res, nhost, NULL);
}

/* MTA-STS is for delivery to a domain's MX hosts (RFC 8461 1), at the
 * levels that would otherwise take less; dane-only asks more already. */
static bool conn_sts_applies(const struct conn *cn)
{
	enum smtpc_tls tls = cn->es->tls;
	return cn->es->sts_ssl && cn->d->route.kind == ROUTE_MX && !cn->d->route.lmtp &&
	       tls != SMTPC_TLS_NONE && tls != SMTPC_TLS_DANE_ONLY;
}

static void conn_sts_found(struct conn *cn, const struct sts_policy *p)
{
	if (p->pol.mode == MTASTS_NONE)
		return;
	cn->sts = util_xcalloc(1, sizeof *cn->sts);
	*cn->sts = *p;
}

static void conn_sts_cb(void *arg, const struct sts_policy *p)
{
	struct conn *cn = arg;
	struct sts_hold *h = cn->sts_hold;
	cn->sts_hold = NULL;
	conn_sts_found(cn, p);
	conn_secure(cn, &h->res, h->nhost);   /* may free cn */
	free(h);
}

static void conn_sts(struct conn *cn, const struct dns_result *res, size_t nhost)
{
	struct sts_policy p;
	struct sts_wait *w;
	if (sts_find(cn->q->sts, cn->d->route.name, &p, conn_sts_cb, cn, &w)) {
		conn_sts_found(cn, &p);
		return conn_secure(cn, res, nhost);
	}
	struct sts_hold *h = util_xcalloc(1, sizeof *h);
	h->res = *res;
	h->nhost = nhost;
	h->w = w;
	cn->sts_hold = h;
}

static void conn_resolved(void *arg, const struct dns_result *res)
{
	struct conn *cn = arg;
	if (res->status != DNS_OK) {
		struct deliver_result r = { res->status == DNS_PERM ? DELIVER_PERM : DELIVER_TEMP, "" };
		snprintf(r.reply, sizeof r.reply, "%s", res->why);
		return conn_fail(cn, &r);
	}
	if (cn->d->tls == DEST_TLS_MAY)
		return conn_resolved_may(cn, res);
	size_t nhost = res->nhost;
	if (cn->d->route.kind == ROUTE_MX && !conn_myself(cn, res, &nhost))
		return;
	if (conn_sts_applies(cn))
		return conn_sts(cn, res, nhost);
	conn_secure(cn, res, nhost);
}

static void conn_unix(struct conn *cn)
{
	struct smtpc_target t;
	conn_target_base(cn, &t);
	struct sockaddr_un *sun = (struct sockaddr_un *)&t.addr[0];
	sun->sun_family = AF_UNIX;
	if (strlen(cn->d->route.name) >= sizeof sun->sun_path) {
		struct deliver_result r = { DELIVER_TEMP, "4.3.5 lmtp_host: socket path too long" };
		return conn_fail(cn, &r);
	}
	memcpy(sun->sun_path, cn->d->route.name, strlen(cn->d->route.name) + 1);
	snprintf(t.name[0], sizeof t.name[0], "%s", cn->d->route.name);
	t.naddr = 1;
	conn_open(cn, &t);
}

/* ---- ATRN: the customer's connection, reversed (RFC 2645 4) ---- */


struct hold_conduit *queue_conduit_new(struct queue *q, const char *name)
{
	(void)q;
	static _Atomic unsigned ids;
	struct hold_conduit *c = util_xcalloc(1, sizeof *c);
	snprintf(c->name, sizeof c->name, "%s", name);
	c->taken.fd = -1;
	c->id = ++ids;
	return c;
}

const char *dest_conduit_name(const struct hold_conduit *c)
{
	return c->name;
}

void dest_conduit_route(struct hold_conduit *c, struct route *out)
{
	memset(out, 0, sizeof *out);
	out->kind = ROUTE_CONDUIT;
	out->conduit = c;
	snprintf(out->name, sizeof out->name, "%s", c->name);
	snprintf(out->key, sizeof out->key, "atrn:%u", c->id);
}

static struct dest *dest_find(struct queue *q, const char *key)
{
	size_t h = hmap_hash(key);
	for (struct hmap_node *n = hmap_first(&q->dests, h); n; n = hmap_next(n)) {
		struct dest *d = HMAP_ENTRY(n, struct dest, node);
		if (!strcmp(d->route.key, key))
			return d;
	}
	return NULL;
}

static struct dest *dest_of_conduit(struct queue *q, struct hold_conduit *c)
{
	struct route r;
	dest_conduit_route(c, &r);
	return dest_find(q, r.key);
}

static void dest_conduit_free_if_over(struct hold_conduit *c)
{
	if (!c->attached || !c->released || c->holds)
		return;
	closer_taken_free(&c->taken);
	free(c);
}

/* Its one connection: the session's socket and TLS, moved here. */
static void conn_conduit(struct conn *cn)
{
	struct hold_conduit *c = cn->d->route.conduit;
	if (!c->usable) {
		struct deliver_result r = { DELIVER_TEMP, "4.4.2 the ATRN connection is gone" };
		return conn_fail(cn, &r);
	}
	c->usable = false;
	c->holds++;
	cn->conduit = c;
	struct smtpc_target t;
	conn_target_base(cn, &t);
	t.addr[0] = c->peer;
	t.naddr = 1;
	snprintf(t.name[0], sizeof t.name[0], "%s", c->name);
	t.adopt = &c->taken;
	conn_open(cn, &t);
}

void dest_conduit_attach(struct queue *q, struct hold_conduit *c, struct closer_taken *t)
{
	c->attached = true;
	if (!q) {   /* the engine has stopped: its release has ended */
		closer_taken_free(t);
		c->released = true;
		return dest_conduit_free_if_over(c);
	}
	if (t) {
		c->taken = *t;   /* moved */
		memset(t, 0, sizeof *t);
		t->fd = -1;
		socklen_t len = sizeof c->peer;
		if (getpeername(c->taken.fd, (struct sockaddr *)&c->peer, &len) != 0)
			c->peer.ss_family = AF_UNSPEC;
		c->usable = true;
	}
	struct dest *d = c->released ? NULL : dest_of_conduit(q, c);
	if (d)
		dest_pump(q, d);
	dest_conduit_free_if_over(c);
}

/* The release has ended: its connection says QUIT (at once when idle);
 * nothing more will be sent over it. */
void dest_conduit_done(struct queue *q, struct hold_conduit *c)
{
	c->released = true;
	c->holds++;   /* its connection may go in here */
	struct dest *d = dest_of_conduit(q, c);
	if (d && d->nwait) {
		struct deliver_result r = { DELIVER_TEMP, "4.4.2 the ATRN session has ended" };
		dest_fail_waiting(q, d, &r);
	}
	d = dest_of_conduit(q, c);
	if (d && d->idle) {   /* its one connection: QUIT now */
		evtimer_del(d->idle->idle_ev);
		conn_idle_cb(-1, 0, d->idle);   /* frees d when nothing else is left */
	} else if (d) {
		dest_free_if_unused(q, d);
	}
	c->holds--;
	dest_conduit_free_if_over(c);
}

static void conn_new(struct queue *q, struct dest *d)
{
	struct conn *cn = util_xcalloc(1, sizeof *cn);
	cn->q = q;
	cn->d = d;
	cn->es = engine_set_ref(q->cur);
	cn->idle_ev = evtimer_new(q->base, conn_idle_cb, cn);
	conn_track(q, cn, true);
	d->active++;
	d->starting++;
	if (d->route.kind == ROUTE_MX)
		dns_mx(q->dns, d->route.name, conn_resolved, cn);
	else if (d->route.kind == ROUTE_HOST)
		dns_host(q->dns, d->route.name, conn_resolved, cn);
	else if (d->route.kind == ROUTE_CONDUIT)
		conn_conduit(cn);
	else
		conn_unix(cn);
}

/* Give waiting jobs to idle connections; open more, up to the limit. */
static void dest_pump(struct queue *q, struct dest *d)
{
	while (d->wait_head && d->idle) {
		struct conn *cn = d->idle;
		d->idle = cn->next;
		evtimer_del(cn->idle_ev);
		conn_next(cn);   /* conn_lacks: what this connection cannot carry is refused */
	}
	if (d->route.kind == ROUTE_CONDUIT) {   /* one connection, once handed over */
		struct hold_conduit *c = d->route.conduit;
		if (d->nwait && !d->active && c->attached && !c->usable) {
			struct deliver_result r = { DELIVER_TEMP, "4.4.2 the ATRN connection is gone" };
			dest_fail_waiting(q, d, &r);
			dest_free_if_unused(q, d);   /* no caller uses d after the pump */
		} else if (d->nwait && !d->active && c->usable) {
			conn_new(q, d);
		}
		return;
	}
	while (d->nwait > d->starting && d->active < dest_limit(q, d))
		conn_new(q, d);
}

/* Which connections a job goes on (see enum dest_tls). RFC 8689 5: a
 * message that says TLS-Required: No (and was not sent with REQUIRETLS,
 * spool_env.tls_optional) goes out as under smtp_tls = may, without
 * MTA-STS, the others keeping the configured policy. LMTP is final
 * delivery, and ATRN's conduit is the customer's one session: neither
 * has an MX to choose (conn_lacks still guards a REQUIRETLS job there). */
static enum dest_tls dest_tls_for(const struct queue *q, const struct qjob *job)
{
	if (job->route.lmtp || job->route.kind == ROUTE_CONDUIT)
		return DEST_POLICY;
	if (job->m->env.requiretls)
		return DEST_REQUIRETLS;
	bool strict = q->cur->tls > SMTPC_TLS_MAY || q->cur->sts_ssl;
	if (!job->m->env.tls_optional || !strict)
		return DEST_POLICY;
	log_info("%s: TLS-Required: No: to %s with smtp_tls = may instead of the policy "
	         "(RFC 8689 5)", job->m->env.qid, job->route.name);
	return DEST_TLS_MAY;
}

static void dest_submit(struct queue *q, struct qjob *job)
{
	struct dest *d = dest_get(q, &job->route, dest_tls_for(q, job));
	*d->wait_tail = job;
	d->wait_tail = &job->next;
	d->nwait++;
	dest_pump(q, d);
}

/* The same next-hop machinery for both: the route says which protocol
 * (route.lmtp, RFC 2033's LHLO and a reply per recipient after DATA). */
const struct transport transport_smtp = { "smtp", dest_submit };
const struct transport transport_lmtp = { "lmtp", dest_submit };

/* ---- what ternctl destinations shows ---- */

static void dest_json_one(struct hmap_node *n, void *ctx)
{
	static const char *const kinds[] = {
		[ROUTE_MX] = "mx", [ROUTE_HOST] = "host", [ROUTE_UNIX] = "unix",
		[ROUTE_LOCAL] = "local", [ROUTE_ERROR] = "error", [ROUTE_CONDUIT] = "atrn",
	};
	static const char *const tls[] = {
		[DEST_POLICY] = "policy", [DEST_TLS_MAY] = "may", [DEST_REQUIRETLS] = "requiretls",
	};
	const struct dest *d = HMAP_ENTRY(n, struct dest, node);
	unsigned idle = 0;
	for (const struct conn *cn = d->idle; cn; cn = cn->next)
		idle++;
	int64_t now = (int64_t)util_now_ms();
	json_t *rates = json_object();
	for (unsigned l = 1; l <= d->adapt.max; l++) {
		double r = adapt_rate(&d->adapt, l, now);
		char key[16];
		snprintf(key, sizeof key, "%u", l);
		if (r >= 0)
			json_object_set_new(rates, key, json_real(r));
	}
	json_array_append_new(ctx, json_pack("{s:s, s:s, s:b, s:s, s:i, s:i, s:i, s:I, s:i, s:i, s:b, s:o}",
		"destination", d->route.name, "kind", kinds[d->route.kind], "lmtp", d->route.lmtp,
		"tls", tls[d->tls], "connections", (int)d->active, "starting", (int)d->starting,
		"idle", (int)idle, "waiting", (json_int_t)d->nwait, "limit", (int)d->adapt.limit,
		"max", (int)d->adapt.max, "adaptive", d->adapt.level != NULL, "rates", rates));
}

/* Every destination: its connections (open, of them still starting, and
 * idle), the jobs waiting for one, the limit now and its maximum, and the
 * recent completion rate of each level adapt measured. */
json_t *dest_json(struct queue *q)
{
	json_t *a = json_array();
	hmap_each(&q->dests, dest_json_one, a);
	return a;
}

/* Shutdown: every connection says QUIT when idle and goes to the closer. */
void dest_hangup_all(struct queue *q)
{
	for (size_t i = 0; i < q->nconns; i++)
		smtpc_hangup(q->conns[i]->c);
}

/* The loop has stopped. */
void dest_free_all(struct queue *q)
{
	for (size_t i = 0; i < q->nconns; i++) {
		conn_dane_free(q->conns[i], NULL);   /* the resolver has gone */
		conn_sts_free(q->conns[i], NULL);    /* and the policies */
		smtpc_destroy(q->conns[i]->c);
		if (q->conns[i]->idle_ev)
			event_free(q->conns[i]->idle_ev);
		engine_set_unref(q->conns[i]->es);
		if (q->conns[i]->conduit) {
			q->conns[i]->conduit->holds--;
			dest_conduit_free_if_over(q->conns[i]->conduit);
		}
		free(q->conns[i]);
	}
	free(q->conns);
	q->conns = NULL;
	q->nconns = 0;
	hmap_clear(&q->dests, dest_free_node, NULL);
}
