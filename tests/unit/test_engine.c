/* test_engine: the delivery engine's held state and its command inbox
 * (deliver/queue.h: queue_command), against a real spool and real Maildir
 * mailboxes in a temporary directory: hold and release by domain and by
 * message, flush, delete, and a hold that outlives a restart.
 *
 * Proving that something was *not* delivered needs a barrier: a message to
 * a mailbox that is not held, delivered after the held one was planned
 * (one Maildir worker, messages started in the order they are queued).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <event2/thread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "deliver/queue.h"
#include "lib/conf.h"
#include "lib/log.h"
#include "lib/mailbox.h"
#include "lib/util.h"
#include "policy/settings.h"
#include "spool/reader.h"
#include "spool/spool.h"

#define WAIT_MS 10000

struct fixture {
	char dir[64], spool[96], mail[96];
	struct settings *set;
	struct spool *sp;
	struct queue *q;
	unsigned seq;
};

struct done {
	int calls, err;
	long count;
};

static void on_command(void *ctx, int err, long count)
{
	struct done *d = ctx;
	d->err = err;
	d->count = count;
	__atomic_store_n(&d->calls, 1, __ATOMIC_RELEASE);
}

static void engine_start(struct fixture *f)
{
	f->sp = spool_open(f->spool, NULL, NULL);
	assert_non_null(f->sp);
	f->q = queue_new(f->set);
	assert_non_null(f->q);
	assert_true(queue_start(f->q, f->sp));
	spool_set_commit_hook(f->sp, queue_kick, f->q);
}

static void engine_stop(struct fixture *f)
{
	spool_set_commit_hook(f->sp, NULL, NULL);
	queue_stop(f->q);
	spool_close(f->sp);
	f->q = NULL;
	f->sp = NULL;
}

/* local@example.com; "free" is free@example.org, a domain never held. */
static const char *domain_of(const char *local)
{
	return strcmp(local, "free") ? "example.com" : "example.org";
}

static void mailbox(struct fixture *f, const char *local)
{
	char p[256];
	assert_true(mailbox_path(f->mail, local, domain_of(local), p, sizeof p));
	assert_true(mailbox_create(p));
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	snprintf(f->dir, sizeof f->dir, "/tmp/tern-engine-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->spool, sizeof f->spool, "%s/spool", f->dir);
	snprintf(f->mail, sizeof f->mail, "%s/mail", f->dir);
	assert_true(util_mkdir_p(f->spool, 0700) && util_mkdir_p(f->mail, 0700));
	char spool[300], mail[300];
	snprintf(spool, sizeof spool, "spool_dir=%s", f->spool);
	snprintf(mail, sizeof mail, "mail_dir=%s", f->mail);
	char *o[] = { spool, mail, "hostname=mx.example.com",
	              "local_domains=example.com, example.org", "retry_min=1h" };
	int bad = 0;
	f->set = settings_load(NULL, o, sizeof o / sizeof o[0], NULL, &bad);
	assert_int_equal(bad, 0);
	log_set_level(getenv("TEST_DEBUG") ? LOG_DEBUG : LOG_WARNING);
	mailbox(f, "held");
	mailbox(f, "free");
	engine_start(f);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	if (f->q)
		engine_stop(f);
	settings_unref(f->set);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static void queue_msg_from(struct fixture *f, const char *local, const char *sender,
                           char qid[UTIL_QID_LEN + 1]);

/* Queue a message to local@example.com (the engine is told by the spool's
 * commit hook); its qid in qid. */
static void queue_msg(struct fixture *f, const char *local, char qid[UTIL_QID_LEN + 1])
{
	queue_msg_from(f, local, "s@example.net", qid);
}

static void queue_msg_from(struct fixture *f, const char *local, const char *sender,
                           char qid[UTIL_QID_LEN + 1])
{
	char addr[64], body[128];
	snprintf(addr, sizeof addr, "%s@%s", local, domain_of(local));
	int n = snprintf(body, sizeof body, "Subject: %u\r\n\r\nmessage %u to %s\r\n", f->seq,
	                 f->seq, local);
	f->seq++;
	struct spool_rcpt r = { .idx = 0, .orig = addr, .addr = addr, .transport = SPOOL_LOCAL,
	                        .orcpt = "", .last_reply = "", .remote_mta = "",
	                        .status = SPOOL_PENDING };
	struct spool_env e = { .sender = (char *)sender, .envid = "", .client = "127.0.0.1",
	                       .helo = "test", .size = (uint64_t)n, .arrival = time(NULL),
	                       .nrcpt = 1, .rcpt = &r };
	util_qid(e.qid);
	memcpy(qid, e.qid, sizeof e.qid);
	assert_int_equal(spool_inject(f->sp, &e, body, (size_t)n), 0);
	queue_kick(f->q);
}

static int count(struct fixture *f, const char *local)
{
	char p[256];
	snprintf(p, sizeof p, "%s/%s/%s/new", f->mail, domain_of(local), local);
	DIR *d = opendir(p);
	if (!d)
		return 0;
	int n = 0;
	for (struct dirent *e; (e = readdir(d));)
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

static void wait_count(struct fixture *f, const char *local, int want)
{
	for (int i = 0; i < WAIT_MS / 10 && count(f, local) < want; i++)
		usleep(10000);
	assert_int_equal(count(f, local), want);
}

/* A message to the free mailbox arrives: everything queued before it has
 * been looked at. */
static void barrier(struct fixture *f)
{
	char qid[UTIL_QID_LEN + 1];
	int before = count(f, "free");
	queue_msg(f, "free", qid);
	wait_count(f, "free", before + 1);
}

static struct done command(struct fixture *f, enum queue_op op, const char *qid,
                           const char *domain)
{
	struct queue_cmd c = { .op = op };
	snprintf(c.qid, sizeof c.qid, "%s", qid ? qid : "");
	snprintf(c.domain, sizeof c.domain, "%s", domain ? domain : "");
	struct done d = { 0, -1, -1 };
	queue_command(f->q, &c, on_command, &d);
	for (int i = 0; i < WAIT_MS / 10 && !__atomic_load_n(&d.calls, __ATOMIC_ACQUIRE); i++)
		usleep(10000);
	assert_int_equal(__atomic_load_n(&d.calls, __ATOMIC_ACQUIRE), 1);
	return d;
}

static bool queued(struct fixture *f, const char *qid)
{
	struct spool_reader *r = spool_reader_open(f->spool);
	struct spool_env e;
	int err = spool_reader_env(r, qid, &e);
	if (!err)
		spool_env_free(&e);
	spool_reader_close(r);
	return err == 0;
}

/* Recording the results follows the delivery: wait for it. */
static void wait_gone(struct fixture *f, const char *qid)
{
	for (int i = 0; i < WAIT_MS / 10 && queued(f, qid); i++)
		usleep(10000);
	assert_false(queued(f, qid));
}

static void test_hold_and_release_a_domain(void **state)
{
	struct fixture *f = *state;
	char qid[UTIL_QID_LEN + 1];
	struct done d = command(f, QUEUE_HOLD, NULL, "Example.COM");
	assert_int_equal(d.err, 0);
	for (int i = 0; i < 3; i++)
		queue_msg(f, "held", qid);
	barrier(f);
	assert_int_equal(count(f, "held"), 0);
	d = command(f, QUEUE_RELEASE, NULL, "example.com");
	assert_int_equal(d.err, 0);
	assert_int_equal(d.count, 3);
	wait_count(f, "held", 3);
}

static void test_hold_a_message_across_a_restart(void **state)
{
	struct fixture *f = *state;
	char qid[UTIL_QID_LEN + 1];
	command(f, QUEUE_HOLD, NULL, "example.com");
	queue_msg(f, "held", qid);
	struct done d = command(f, QUEUE_HOLD, qid, NULL);
	assert_int_equal(d.err, 0);
	engine_stop(f);          /* the domain's hold was the engine's; the message's is on disk */
	engine_start(f);
	barrier(f);
	assert_int_equal(count(f, "held"), 0);
	assert_true(queued(f, qid));
	d = command(f, QUEUE_RELEASE, qid, NULL);
	assert_int_equal(d.count, 1);
	wait_count(f, "held", 1);
}

static void test_delete(void **state)
{
	struct fixture *f = *state;
	char qid[UTIL_QID_LEN + 1];
	command(f, QUEUE_HOLD, NULL, "example.com");
	queue_msg(f, "held", qid);
	barrier(f);
	struct done d = command(f, QUEUE_DELETE, qid, NULL);
	assert_int_equal(d.err, 0);
	assert_int_equal(d.count, 1);
	assert_false(queued(f, qid));
	command(f, QUEUE_RELEASE, NULL, "example.com");
	barrier(f);
	assert_int_equal(count(f, "held"), 0);
	assert_int_equal(command(f, QUEUE_DELETE, NULL, "example.com").err, EINVAL);
	assert_int_equal(command(f, QUEUE_HOLD, NULL, NULL).err, EINVAL);
}

static void test_flush_a_deferred_message(void **state)
{
	struct fixture *f = *state;
	char qid[UTIL_QID_LEN + 1], p[256];
	/* a mailbox whose tmp/ is a file: a temporary failure, retried in
	 * retry_min (1h) */
	mailbox(f, "later");
	snprintf(p, sizeof p, "%s/example.com/later/tmp", f->mail);
	assert_int_equal(rmdir(p), 0);
	FILE *fp = fopen(p, "w");
	assert_non_null(fp);
	fclose(fp);
	queue_msg(f, "later", qid);
	barrier(f);
	assert_true(queued(f, qid));
	assert_int_equal(unlink(p), 0);
	assert_int_equal(mkdir(p, 0700), 0);
	struct done d = command(f, QUEUE_FLUSH, NULL, "example.com");
	assert_int_equal(d.err, 0);
	assert_true(d.count >= 1);
	wait_count(f, "later", 1);
	wait_gone(f, qid);
}

/* Bounce: the message goes back to its sender with a report (RFC 3464),
 * and leaves the queue; the command is answered once that is recorded. */
static void test_bounce(void **state)
{
	struct fixture *f = *state;
	char qid[UTIL_QID_LEN + 1];
	command(f, QUEUE_HOLD, NULL, "example.com");
	queue_msg_from(f, "held", "free@example.org", qid);
	barrier(f);
	int before = count(f, "free");
	struct done d = command(f, QUEUE_BOUNCE, qid, NULL);
	assert_int_equal(d.err, 0);
	assert_int_equal(d.count, 1);
	assert_false(queued(f, qid));
	wait_count(f, "free", before + 1);   /* the report */
	assert_int_equal(count(f, "held"), 0);
	assert_int_equal(command(f, QUEUE_BOUNCE, qid, NULL).err, ENOENT);
}

static void test_pause_and_resume(void **state)
{
	struct fixture *f = *state;
	char qid[UTIL_QID_LEN + 1];
	assert_int_equal(command(f, QUEUE_PAUSE, NULL, NULL).count, 1);
	queue_msg(f, "free", qid);
	usleep(500000);
	assert_int_equal(count(f, "free"), 0);
	assert_true(queued(f, qid));
	assert_int_equal(command(f, QUEUE_RESUME, NULL, NULL).count, 1);
	wait_count(f, "free", 1);
	assert_int_equal(command(f, QUEUE_PAUSE, "X", NULL).err, EINVAL);
}

int main(void)
{
	evthread_use_pthreads();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_hold_and_release_a_domain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hold_a_message_across_a_restart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delete, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flush_a_deferred_message, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bounce, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pause_and_resume, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
