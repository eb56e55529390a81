/* queue: delivery scheduling (see queue.h). Every line it logs starts with
 * the queue id. Results go back to the spool through its writer, so they
 * are group-committed with everything else. */
#include "queue.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../lib/log.h"
#include "deliver.h"
#include "maildir.h"

#define QUEUE_BATCH 64
#define QUEUE_IDLE_WAIT 60  /* seconds between looks at an idle spool */

struct queue {
	const struct conf *conf;
	struct spool *spool;
	struct spool_reader *reader;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool kicked, stop;
	int64_t started;   /* messages that arrived before were recovered */
};

/* Exponential backoff: retry_min, doubling, capped at retry_max. */
static int64_t queue_backoff(const struct conf *c, unsigned attempts)
{
	uint64_t d = c->retry_min;
	for (unsigned i = 1; i < attempts && d < c->retry_max; i++)
		d *= 2;
	return (int64_t)(d < c->retry_max ? d : c->retry_max);
}

static void queue_transport(struct queue *q, const struct spool_env *e,
                            const struct spool_rcpt *r, struct deliver_result *res)
{
	if (r->transport == SPOOL_LOCAL) {
		maildir_deliver(q->conf->mail_dir, q->conf->hostname, q->reader, e, r,
		                e->arrival <= q->started, res);
		return;
	}
	res->status = DELIVER_TEMP;
	snprintf(res->reply, sizeof res->reply, "4.4.0 no remote transport in this build yet");
}

static const char *queue_status_word(enum deliver_status s)
{
	return s == DELIVER_OK ? "sent" : s == DELIVER_TEMP ? "deferred" : "failed";
}

static void queue_record(struct queue *q, const struct spool_env *e, struct spool_rcpt *r,
                         const struct deliver_result *res, int64_t now)
{
	free(r->last_reply);
	r->last_reply = strdup(res->reply);
	if (!r->last_reply)
		abort();
	r->attempts++;
	if (res->status == DELIVER_OK)
		r->status = SPOOL_DELIVERED;
	else if (res->status == DELIVER_PERM)
		r->status = SPOOL_FAILED;
	else
		r->next_try = now + queue_backoff(q->conf, r->attempts);
	log_info("%s: to=<%s>%s%s%s, relay=%s, delay=%llds, attempts=%u, status=%s (%s)",
	         e->qid, r->addr, strcmp(r->orig, r->addr) ? ", orig_to=<" : "",
	         strcmp(r->orig, r->addr) ? r->orig : "", strcmp(r->orig, r->addr) ? ">" : "",
	         r->transport == SPOOL_LOCAL ? "maildir" : "none", (long long)(now - e->arrival),
	         r->attempts, queue_status_word(res->status), res->reply);
}

static bool queue_finished(const struct spool_env *e)
{
	for (size_t i = 0; i < e->nrcpt; i++)
		if (e->rcpt[i].status == SPOOL_PENDING)
			return false;
	return true;
}

static void queue_message(struct queue *q, const char *qid)
{
	struct spool_env e;
	int err = spool_reader_env(q->reader, qid, &e);
	if (err) {
		if (err != ENOENT)
			log_error("%s: cannot read from the spool: %s", qid, strerror(err));
		return;
	}
	int64_t now = (int64_t)time(NULL);
	for (size_t i = 0; i < e.nrcpt; i++) {
		struct spool_rcpt *r = &e.rcpt[i];
		if (r->status != SPOOL_PENDING || r->next_try > now)
			continue;
		struct deliver_result res = { DELIVER_TEMP, "" };
		queue_transport(q, &e, r, &res);
		queue_record(q, &e, r, &res, now);
	}
	err = spool_update(q->spool, &e);
	if (err)
		log_error("%s: cannot record delivery results: %s", qid, strerror(err));
	else if (queue_finished(&e))
		log_info("%s: removed", qid);
	spool_env_free(&e);
}

/* Sleep until kicked, stopped, or the next retry is due. */
static void queue_wait(struct queue *q)
{
	int64_t next = spool_reader_next_due(q->reader);
	int64_t now = (int64_t)time(NULL);
	int64_t wait = next < 0 ? QUEUE_IDLE_WAIT : next - now;
	if (wait > QUEUE_IDLE_WAIT)
		wait = QUEUE_IDLE_WAIT;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += wait > 0 ? wait : 0;
	pthread_mutex_lock(&q->mu);
	while (!q->kicked && !q->stop && wait > 0)
		if (pthread_cond_timedwait(&q->cv, &q->mu, &ts) == ETIMEDOUT)
			break;
	q->kicked = false;
	pthread_mutex_unlock(&q->mu);
}

static bool queue_stopping(struct queue *q)
{
	pthread_mutex_lock(&q->mu);
	bool s = q->stop;
	pthread_mutex_unlock(&q->mu);
	return s;
}

static void *queue_run(void *arg)
{
	struct queue *q = arg;
	char qids[QUEUE_BATCH][UTIL_QID_LEN + 1];
	while (!queue_stopping(q)) {
		size_t n = spool_reader_due(q->reader, (int64_t)time(NULL), qids, QUEUE_BATCH);
		for (size_t i = 0; i < n && !queue_stopping(q); i++)
			queue_message(q, qids[i]);
		if (n < QUEUE_BATCH)
			queue_wait(q);
	}
	return NULL;
}

struct queue *queue_start(const struct conf *c, struct spool *sp)
{
	struct queue *q = calloc(1, sizeof *q);
	if (!q)
		abort();
	q->conf = c;
	q->spool = sp;
	q->started = (int64_t)time(NULL);
	q->reader = spool_reader_open(c->spool_dir);
	if (!q->reader) {
		free(q);
		return NULL;
	}
	pthread_mutex_init(&q->mu, NULL);
	pthread_cond_init(&q->cv, NULL);
	if (pthread_create(&q->thread, NULL, queue_run, q) != 0)
		log_fatal("queue: cannot start the delivery thread");
	return q;
}

void queue_kick(void *arg)
{
	struct queue *q = arg;
	pthread_mutex_lock(&q->mu);
	q->kicked = true;
	pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->mu);
}

void queue_stop(struct queue *q)
{
	if (!q)
		return;
	pthread_mutex_lock(&q->mu);
	q->stop = true;
	pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->mu);
	pthread_join(q->thread, NULL);
	spool_reader_close(q->reader);
	pthread_mutex_destroy(&q->mu);
	pthread_cond_destroy(&q->cv);
	free(q);
}
