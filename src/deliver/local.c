/* local: the Maildir transport (see engine.h). Jobs for local mailboxes
 * go to worker threads, each with a spool reader of its own: delivering a
 * copy is a write, an fsync, a rename and an fsync of the directory
 * (maildir.c), and none of that may stop the loop that keeps every outbound
 * connection going. There are destination_concurrency workers (read at
 * start), as many copies written at once as connections to one destination:
 * a copy waits mostly for its two fsyncs, which the file system commits
 * together when several are pending, so one worker alone was bound by the
 * disk's latency (about 1/(2 fsyncs) copies a second). Finished jobs come
 * back to the loop through a list and an event.
 */
#include <event2/event.h>
#include <pthread.h>
#include <stdlib.h>

#include "deliver/engine.h"
#include "deliver/maildir.h"
#include "lib/log.h"
#include "lib/util.h"

#define LOCAL_WORKERS_MAX 64

struct local;

struct local_worker {
	struct local *l;
	pthread_t thread;
	struct spool_reader *reader;      /* the worker's own */
};

struct local {
	struct queue *q;
	struct local_worker *w;
	size_t nw;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct qjob *todo, **todo_tail;   /* under mu */
	struct qjob *done, **done_tail;   /* under mu */
	bool stop;
	char *mail_dir, *hostname;        /* copies: read at start only (a reload keeps them) */
	struct event *done_ev;            /* on the loop: done has jobs */
};

static void local_push(struct qjob ***tail, struct qjob *job)
{
	job->next = NULL;
	**tail = job;
	*tail = &job->next;
}

/* One job: a copy per recipient (maildir.c). A message queued before this
 * process started may have been delivered just before a crash: a copy
 * already in the mailbox then counts (exactly once). */
static void local_deliver(struct local *l, struct spool_reader *reader, struct qjob *job)
{
	struct spool_env *e = &job->m->env;
	bool recovered = e->arrival <= l->q->started;
	for (size_t i = 0; i < job->n; i++) {
		job->res[i] = (struct deliver_result){ DELIVER_TEMP, "" };
		maildir_deliver(l->mail_dir, l->hostname, reader, e, &e->rcpt[job->idx[i]],
		                recovered, &job->res[i]);
	}
}

static void *local_run(void *arg)
{
	struct local_worker *w = arg;
	struct local *l = w->l;
	pthread_mutex_lock(&l->mu);
	for (;;) {
		while (!l->todo && !l->stop)
			pthread_cond_wait(&l->cv, &l->mu);
		if (l->stop)
			break;
		struct qjob *job = l->todo;
		l->todo = job->next;
		if (!l->todo)
			l->todo_tail = &l->todo;
		pthread_mutex_unlock(&l->mu);
		local_deliver(l, w->reader, job);
		pthread_mutex_lock(&l->mu);
		bool was_empty = !l->done;
		local_push(&l->done_tail, job);
		if (was_empty)
			event_active(l->done_ev, EV_TIMEOUT, 0);
	}
	pthread_mutex_unlock(&l->mu);
	return NULL;
}

/* The worker's finished jobs, back on the loop. */
static void local_collect(struct local *l)
{
	pthread_mutex_lock(&l->mu);
	struct qjob *job = l->done;
	l->done = NULL;
	l->done_tail = &l->done;
	pthread_mutex_unlock(&l->mu);
	while (job) {
		struct qjob *next = job->next;
		job->next = NULL;
		sched_job_done(l->q, job);
		job = next;
	}
}

static void local_done_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	local_collect(arg);
}

static void local_submit(struct queue *q, struct qjob *job)
{
	struct local *l = q->local;
	pthread_mutex_lock(&l->mu);
	local_push(&l->todo_tail, job);
	pthread_cond_signal(&l->cv);
	pthread_mutex_unlock(&l->mu);
}

const struct transport transport_maildir = { "maildir", local_submit };

static void local_readers_close(struct local *l)
{
	for (size_t i = 0; i < l->nw; i++)
		if (l->w[i].reader)
			spool_reader_close(l->w[i].reader);
	free(l->w);
}

bool local_start(struct queue *q)
{
	struct local *l = util_xcalloc(1, sizeof *l);
	l->q = q;
	l->todo_tail = &l->todo;
	l->done_tail = &l->done;
	l->nw = q->conf->destination_concurrency;
	if (l->nw > LOCAL_WORKERS_MAX)
		l->nw = LOCAL_WORKERS_MAX;
	l->w = util_xcalloc(l->nw, sizeof *l->w);
	for (size_t i = 0; i < l->nw; i++) {
		l->w[i].l = l;
		l->w[i].reader = spool_reader_open(q->conf->spool_dir);
		if (!l->w[i].reader) {
			local_readers_close(l);
			free(l);
			return false;
		}
	}
	l->mail_dir = util_xstrdup(q->conf->mail_dir);
	l->hostname = util_xstrdup(q->conf->hostname);
	pthread_mutex_init(&l->mu, NULL);
	pthread_cond_init(&l->cv, NULL);
	l->done_ev = event_new(q->base, -1, 0, local_done_cb, l);
	if (!l->done_ev)
		log_panic("local: cannot create an event");
	for (size_t i = 0; i < l->nw; i++)
		if (pthread_create(&l->w[i].thread, NULL, local_run, &l->w[i]) != 0)
			log_fatal("local: cannot start a Maildir worker thread");
	q->local = l;
	return true;
}

/* Jobs never started stay with their messages (freed with them, delivered
 * after the next start); those finished are applied, so that their
 * results are recorded. */
void local_stop(struct queue *q)
{
	struct local *l = q->local;
	if (!l)
		return;
	pthread_mutex_lock(&l->mu);
	l->stop = true;
	pthread_cond_broadcast(&l->cv);
	pthread_mutex_unlock(&l->mu);
	for (size_t i = 0; i < l->nw; i++)
		pthread_join(l->w[i].thread, NULL);
	local_collect(l);
	event_free(l->done_ev);
	local_readers_close(l);
	free(l->mail_dir);
	free(l->hostname);
	pthread_mutex_destroy(&l->mu);
	pthread_cond_destroy(&l->cv);
	free(l);
	q->local = NULL;
}
