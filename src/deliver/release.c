/* release: releases of held mail that are followed to their end (see
 * queue_release in queue.h): ETRN, ATRN, the dequeue trigger, and an
 * operator's release.
 *
 * A release names domains (or one message). On the loop it takes the
 * matching held recipients of the messages in flight (their copy is the
 * one that will be recorded), then asks the writer to release the held
 * rows of the spool, which answers with each row it changed
 * (spool_release_async); those come back to the loop through q->post.
 * Every recipient released is then an entry "qid/idx" in q->rel_entries,
 * pointing at its release: sched_waits lets it through although its
 * domain is held (hold_domains), sched_plan sends it over the release's
 * conduit when there is one (ATRN), and its result (release_result, from
 * sched_apply) is told to the requester. The release ends when every
 * entry has had its result; one that hears nothing for RELEASE_IDLE
 * seconds stops waiting (a message deleted under it, say), its entries
 * dropped: they are held again at their next look.
 */
#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "deliver/engine.h"
#include "lib/addr.h"
#include "lib/event.h"
#include "lib/log.h"
#include "lib/util.h"
#include "net/post.h"
#include "policy/hold.h"

#define RELEASE_IDLE 900   /* seconds without a result before a release stops waiting */

struct rel {
	struct rel *next;
	struct queue *q;
	struct hold_release req;
	char qid[UTIL_QID_LEN + 1];   /* one message, "" for domains */
	unsigned waiting;             /* spool releases not yet answered */
	int err;                      /* the first of their errors */
	long count, left;             /* entries made, and without a result yet */
	long messages;                /* the distinct messages of those entries */
	struct hmap msgs;             /* their queue ids, until started is told */
	long ok, deferred, failed;
	int64_t last;                 /* its last news (unix seconds) */
};

struct rel_entry {
	struct hmap_node node;
	struct rel *r;
	char key[UTIL_QID_LEN + 12];  /* "qid/idx" */
};

/* A message with an entry of a release, counted once (started's messages). */
struct rel_msg {
	struct hmap_node node;
	char qid[UTIL_QID_LEN + 1];
};

/* Rows released by the writer, on their way to the loop. */
struct rel_rows {
	struct queue *q;
	struct rel *r;                /* freed already if the engine stopped */
	int err;
	size_t n;
	struct spool_released v[];
};

static void release_key(char *out, size_t n, const char *qid, unsigned idx)
{
	snprintf(out, n, "%s/%u", qid, idx);
}

static struct rel_entry *release_find(const struct queue *q, const char *qid, unsigned idx)
{
	char key[UTIL_QID_LEN + 12];
	release_key(key, sizeof key, qid, idx);
	size_t h = hmap_hash(key);
	for (struct hmap_node *n = hmap_first(&q->rel_entries, h); n; n = hmap_next(n)) {
		struct rel_entry *e = HMAP_ENTRY(n, struct rel_entry, node);
		if (!strcmp(e->key, key))
			return e;
	}
	return NULL;
}

static void release_count_msg(struct rel *r, const char *qid)
{
	size_t h = hmap_hash(qid);
	for (struct hmap_node *n = hmap_first(&r->msgs, h); n; n = hmap_next(n))
		if (!strcmp(HMAP_ENTRY(n, struct rel_msg, node)->qid, qid))
			return;
	struct rel_msg *m = util_xcalloc(1, sizeof *m);
	snprintf(m->qid, sizeof m->qid, "%s", qid);
	hmap_add(&r->msgs, &m->node, h);
	r->messages++;
}

static void release_msg_free(struct hmap_node *n, void *ctx)
{
	(void)ctx;
	free(HMAP_ENTRY(n, struct rel_msg, node));
}

static void release_add(struct queue *q, struct rel *r, const char *qid, unsigned idx)
{
	if (release_find(q, qid, idx))
		return;
	release_count_msg(r, qid);
	struct rel_entry *e = util_xcalloc(1, sizeof *e);
	e->r = r;
	release_key(e->key, sizeof e->key, qid, idx);
	hmap_add(&q->rel_entries, &e->node, hmap_hash(e->key));
	r->count++;
	r->left++;
}

/* ---- what a release names ---- */

static bool release_names(const struct rel *r, const char *qid, const char *addr)
{
	if (r->qid[0])
		return !strcmp(r->qid, qid);
	if (!r->req.n)
		return true;   /* a drain of every domain */
	for (size_t i = 0; i < r->req.n; i++)
		if (hold_domain_under(addr_domain_of(addr), r->req.domain[i], r->req.subdomains))
			return true;
	return false;
}

/* Do two releases name some of the same mail? (RFC 1985's 458.) */
static bool release_overlap(const struct rel *a, const struct rel *b)
{
	if (a->qid[0] || b->qid[0])
		return a->qid[0] && !strcmp(a->qid, b->qid);
	if (!a->req.n || !b->req.n)
		return true;   /* every domain */
	for (size_t i = 0; i < a->req.n; i++)
		for (size_t k = 0; k < b->req.n; k++)
			if (hold_domain_under(a->req.domain[i], b->req.domain[k], b->req.subdomains) ||
			    hold_domain_under(b->req.domain[k], a->req.domain[i], a->req.subdomains))
				return true;
	return false;
}

/* ---- the end ---- */

static void release_unlink(struct queue *q, struct rel *r)
{
	for (struct rel **p = &q->releases; *p; p = &(*p)->next)
		if (*p == r) {
			*p = r->next;
			return;
		}
}

static void release_drop_entries(struct queue *q, struct rel *r)
{
	if (!r->left)
		return;
	for (size_t b = 0; q->rel_entries.b && b <= q->rel_entries.mask; b++)
		for (struct hmap_node *n = q->rel_entries.b[b], *next; n; n = next) {
			next = n->next;
			struct rel_entry *e = HMAP_ENTRY(n, struct rel_entry, node);
			if (e->r == r) {
				hmap_del(&q->rel_entries, n);
				free(e);
			}
		}
	r->deferred += r->left;
	r->left = 0;
}

static void release_end(struct queue *q, struct rel *r)
{
	release_drop_entries(q, r);
	release_unlink(q, r);
	if (r->req.via)
		dest_conduit_done(q, r->req.via);
	if (r->req.finished)
		r->req.finished(r->req.ctx, r->ok, r->deferred, r->failed);
	hmap_clear(&r->msgs, release_msg_free, NULL);
	free(r);
}

/* ---- the loop's side ---- */

/* The matching held recipients of the messages in flight: released in
 * their copy, which recording writes (one being recorded already is the
 * writer's: the spool's release comes after it). */
static void release_inflight(struct queue *q, struct rel *r, int64_t now)
{
	if (q->recording)   /* their rows change after that batch: look again then */
		q->rescan_recorded = true;
	struct qmsg *lists[] = { q->msgs, q->done, q->held };
	for (int l = 0; l < 3; l++)
		for (struct qmsg *m = lists[l]; m; m = m->next)
			for (size_t i = 0; i < m->env.nrcpt; i++) {
				struct spool_rcpt *rc = &m->env.rcpt[i];
				if (rc->status != SPOOL_PENDING || (!rc->held && !r->req.all) ||
				    (rc->held == SPOOL_QUARANTINED && !r->qid[0]) ||
				    rc->held == SPOOL_CAPTURED ||
				    !release_names(r, m->env.qid, rc->addr))
					continue;
				rc->held = false;
				rc->next_try = now;
				release_add(q, r, m->env.qid, rc->idx);
			}
}

static void release_rows(void *arg);

/* The writer's thread: hand the rows to the loop. */
static void release_rows_cb(void *ctx, int err, const struct spool_released *v, size_t n)
{
	struct rel *r = ctx;
	struct queue *q = r->q;
	struct rel_rows *rows = util_xcalloc(1, sizeof *rows + n * sizeof *v);
	rows->q = q;
	rows->r = r;
	rows->err = err;
	rows->n = n;
	if (n)
		memcpy(rows->v, v, n * sizeof *v);
	post_call(q->post, release_rows, rows);
	pthread_mutex_lock(&q->rec_mu);   /* queue_stop waits for the last one */
	q->admin_pending--;
	pthread_cond_broadcast(&q->rec_cv);
	pthread_mutex_unlock(&q->rec_mu);
}

/* Every spool release of r answered: the requester hears how many. */
static void release_started(struct queue *q, struct rel *r, int err)
{
	struct ev e;
	ev_init(&e, EK_RELEASE, err ? LOG_ERROR : LOG_INFO, 0, r->qid[0] ? r->qid : NULL);
	for (size_t i = 0; i < r->req.n; i++)
		ev_add(&e, "domain", "%s%s", r->req.subdomains ? "@" : "", r->req.domain[i]);
	if (r->req.via)
		ev_add(&e, "via", "%s", dest_conduit_name(r->req.via));
	if (err)
		ev_add(&e, "error", "%s", strerror(err));
	else
		ev_add(&e, "released", "%ld", r->count);
	if (!err)
		ev_add(&e, "messages", "%ld", r->messages);
	ev_emit(&e);
	hmap_clear(&r->msgs, release_msg_free, NULL);   /* no entry comes after this */
	if (r->req.started)
		r->req.started(r->req.ctx, err, r->count, r->messages);
	if (err) {
		r->req.finished = NULL;   /* started told it all */
		return release_end(q, r);
	}
	if (!r->left)
		return release_end(q, r);
	r->last = (int64_t)time(NULL);
	event_active(q->scan_ev, EV_TIMEOUT, 0);
}

/* On the loop (q->post): one spool release of r answered; after the
 * engine stopped (release_free_all has ended every release), only freed. */
static void release_rows(void *arg)
{
	struct rel_rows *rows = arg;
	struct rel *r = rows->r;
	if (post_stopped(rows->q->post)) {
		free(rows);
		return;
	}
	for (size_t i = 0; i < rows->n; i++)
		release_add(r->q, r, rows->v[i].qid, rows->v[i].idx);
	if (rows->err && !r->err)
		r->err = rows->err;
	free(rows);
	if (--r->waiting == 0)
		release_started(r->q, r, r->err);
}

void release_begin(struct queue *q, const struct hold_release *req, const char *qid)
{
	struct rel *r = util_xcalloc(1, sizeof *r);
	r->q = q;
	r->req = *req;
	snprintf(r->qid, sizeof r->qid, "%s", qid ? qid : "");
	for (struct rel *o = q->releases; o; o = o->next)
		if (release_overlap(o, r)) {
			if (req->via)
				dest_conduit_done(q, req->via);
			if (req->started)
				req->started(req->ctx, EBUSY, 0, 0);
			free(r);
			return;
		}
	r->next = q->releases;
	q->releases = r;
	int64_t now = (int64_t)time(NULL);
	release_inflight(q, r, now);
	r->waiting = r->qid[0] || !r->req.n ? 1 : (unsigned)r->req.n;
	pthread_mutex_lock(&q->rec_mu);
	q->admin_pending += r->waiting;
	pthread_mutex_unlock(&q->rec_mu);
	if (r->qid[0] || !r->req.n)   /* one message, or a drain of every domain */
		return spool_release_async(q->spool, r->qid[0] ? r->qid : NULL, NULL, false,
		                           r->req.all, now, release_rows_cb, r);
	for (size_t i = 0; i < r->req.n; i++)
		spool_release_async(q->spool, NULL, r->req.domain[i], r->req.subdomains, r->req.all,
		                    now, release_rows_cb, r);
}

/* ---- what sched.c asks ---- */

const struct hold_release *release_of(const struct queue *q, const struct qmsg *m,
                                     const struct spool_rcpt *rc)
{
	struct rel_entry *e = q->rel_entries.n ? release_find(q, m->env.qid, rc->idx) : NULL;
	return e ? &e->r->req : NULL;
}

void release_result(struct queue *q, const struct qmsg *m, const struct spool_rcpt *rc)
{
	struct rel_entry *e = q->rel_entries.n ? release_find(q, m->env.qid, rc->idx) : NULL;
	if (!e)
		return;
	struct rel *r = e->r;
	hmap_del(&q->rel_entries, &e->node);
	free(e);
	r->left--;
	r->last = (int64_t)time(NULL);
	if (rc->status == SPOOL_DELIVERED)
		r->ok++;
	else if (rc->status == SPOOL_FAILED)
		r->failed++;
	else
		r->deferred++;
	if (r->req.result)
		r->req.result(r->req.ctx, m->env.qid, rc->addr, rc->status, rc->last_reply);
	if (!r->left && !r->waiting)
		release_end(q, r);
}

/* From the timer: releases that heard nothing for too long stop waiting. */
void release_tick(struct queue *q, int64_t now)
{
	for (struct rel *r = q->releases, *next; r; r = next) {
		next = r->next;
		if (!r->waiting && r->last && now - r->last >= RELEASE_IDLE) {
			ev_note(LOG_WARNING, 0, r->qid[0] ? r->qid : NULL,
			        "release: %ld recipient(s) released gave no result in %d s: held again",
			        r->left, RELEASE_IDLE);
			release_end(q, r);
		}
	}
}

/* The loop has stopped: every release ends, its requester told (one
 * still waiting for the spool's rows hears started's ECANCELED, and
 * nothing after it, as the contract says). */
void release_free_all(struct queue *q)
{
	while (q->releases) {
		struct rel *r = q->releases;
		if (r->waiting && r->req.started) {
			r->req.started(r->req.ctx, ECANCELED, 0, 0);
			r->req.finished = NULL;
		}
		release_end(q, r);
	}
	hmap_clear(&q->rel_entries, NULL, NULL);
}
