/* Unit tests for the spool: inline and file-backed bodies, removal, orphans,
 * lazy result records, the handoff of fresh messages. A real SQLite database in a temporary directory. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/util.h"
#include "spool/reader.h"
#include "spool/spool.h"

struct fixture {
	char dir[64];
	struct spool *sp;
	struct spool_reader *r;
};

static void noop_notify(void *ctx)
{
	(void)ctx;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	snprintf(f->dir, sizeof f->dir, "/tmp/tern-test-spool-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	f->sp = spool_open(f->dir, noop_notify, NULL);
	assert_non_null(f->sp);
	f->r = spool_reader_open(f->dir);
	assert_non_null(f->r);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	spool_reader_close(f->r);
	spool_close(f->sp);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

/* ---- helpers ---- */

struct wait { bool done; int err; };

static void on_done(void *ctx, int err)
{
	struct wait *w = ctx;
	w->done = true;
	w->err = err;
}

/* Told on the writer thread (spool_update_many_async). */
static void on_recorded(void *ctx, int err)
{
	struct wait *w = ctx;
	w->err = err;
	__atomic_store_n(&w->done, true, __ATOMIC_RELEASE);
}

static void on_chunk(void *ctx, int err)
{
	(void)ctx;
	assert_int_equal(err, 0);
}

static void run_until(struct spool *sp, const bool *flag)
{
	for (int i = 0; i < 5000 && !*flag; i++) {
		spool_run_completions(sp);
		if (!*flag)
			usleep(1000);
	}
	assert_true(*flag);
}

static void env_one(struct spool_env *e, const char *qid, uint64_t size)
{
	static struct spool_rcpt rcpt;
	rcpt = (struct spool_rcpt){ .idx = 0, .orig = "u@example.org", .addr = "u@example.org",
	                            .transport = SPOOL_REMOTE, .orcpt = "", .last_reply = "",
	                            .remote_mta = "" };
	*e = (struct spool_env){ .sender = "s@example.net", .envid = "", .client = "[127.0.0.1]",
	                         .helo = "client.example", .size = size, .arrival = 1,
	                         .nrcpt = 1, .rcpt = &rcpt };
	snprintf(e->qid, sizeof e->qid, "%s", qid);
}

/* A body of n bytes of CRLF-ended lines, the same for a given n. */
static char *body_make(size_t n)
{
	char *b = malloc(n);
	for (size_t i = 0; i < n; i++)
		b[i] = (i % 78 == 76) ? '\r' : (i % 78 == 77) ? '\n' : (char)('a' + i % 26);
	return b;
}

/* Write a message in pieces (as a session does) and commit it. */
static void put_msg(struct fixture *f, const char *qid, const char *body, size_t n)
{
	struct spool_msg *m = spool_msg_begin(f->sp, qid, on_chunk, NULL);
	for (size_t off = 0; off < n; off += 1000) {
		size_t k = n - off < 1000 ? n - off : 1000;
		if (spool_msg_write(m, body + off, k))
			continue;
		while (!spool_msg_writable(m)) {   /* wait for the writer to catch up */
			spool_run_completions(f->sp);
			usleep(100);
		}
	}
	struct spool_env e;
	env_one(&e, qid, n);
	struct wait w = { false, -1 };
	spool_msg_commit(m, &e, on_done, &w);
	run_until(f->sp, &w.done);
	assert_int_equal(w.err, 0);
}

static bool collect(void *ctx, const void *p, size_t n)
{
	buf_append(ctx, p, n);
	return true;
}

static void check_body(struct fixture *f, const char *qid, const char *body, size_t n,
                       bool file)
{
	struct spool_env e;
	assert_int_equal(spool_reader_env(f->r, qid, &e), 0);
	assert_int_equal(e.body_file, file);
	struct buf got = BUF_INIT;
	assert_int_equal(spool_reader_body(f->r, &e, collect, &got), 0);
	assert_int_equal(got.len, n);
	assert_memory_equal(got.data, body, n);
	buf_free(&got);
	spool_env_free(&e);
}

static bool body_file_exists(struct fixture *f, const char *qid)
{
	char p[160];
	snprintf(p, sizeof p, "%s/body/%s", f->dir, qid);
	return access(p, F_OK) == 0;
}

/* Mark every recipient delivered, record it, wait for the commit. */
static void finish_msg(struct fixture *f, const char *qid)
{
	struct spool_env e;
	assert_int_equal(spool_reader_env(f->r, qid, &e), 0);
	for (size_t i = 0; i < e.nrcpt; i++)
		e.rcpt[i].status = SPOOL_DELIVERED;
	const struct spool_env *envs[] = { &e };
	struct wait w = { false, -1 };
	spool_update_many_async(f->sp, envs, 1, NULL, 0, on_recorded, &w);
	for (int i = 0; i < 5000 && !__atomic_load_n(&w.done, __ATOMIC_ACQUIRE); i++)
		usleep(1000);
	assert_true(__atomic_load_n(&w.done, __ATOMIC_ACQUIRE));
	assert_int_equal(w.err, 0);
	spool_env_free(&e);
}

/* ---- tests ---- */

static void test_small_inline(void **state)
{
	struct fixture *f = *state;
	char *b = body_make(4096);
	put_msg(f, "SMALL0000001", b, 4096);
	check_body(f, "SMALL0000001", b, 4096, false);
	assert_false(body_file_exists(f, "SMALL0000001"));
	finish_msg(f, "SMALL0000001");
	assert_int_equal(spool_reader_count(f->r), 0);
	free(b);
}

static void test_large_file(void **state)
{
	struct fixture *f = *state;
	size_t sizes[] = { SPOOL_CHUNK + 1, 3 * SPOOL_CHUNK, 5 * SPOOL_CHUNK + 777 };
	for (size_t i = 0; i < 3; i++) {
		char qid[16];
		snprintf(qid, sizeof qid, "LARGE%07zu", i);
		char *b = body_make(sizes[i]);
		put_msg(f, qid, b, sizes[i]);
		assert_true(body_file_exists(f, qid));
		check_body(f, qid, b, sizes[i], true);
		free(b);
	}
	for (size_t i = 0; i < 3; i++) {
		char qid[16];
		snprintf(qid, sizeof qid, "LARGE%07zu", i);
		finish_msg(f, qid);
	}
	assert_int_equal(spool_reader_count(f->r), 0);
	spool_close(f->sp);   /* drains the reaper: the files are gone by now */
	f->sp = spool_open(f->dir, noop_notify, NULL);
	for (size_t i = 0; i < 3; i++) {
		char qid[16];
		snprintf(qid, sizeof qid, "LARGE%07zu", i);
		assert_false(body_file_exists(f, qid));
	}
}

static void test_abort_removes_file(void **state)
{
	struct fixture *f = *state;
	char *b = body_make(3 * SPOOL_CHUNK);
	struct spool_msg *m = spool_msg_begin(f->sp, "ABORT0000001", on_chunk, NULL);
	spool_msg_write(m, b, 3 * SPOOL_CHUNK);
	for (int i = 0; i < 200 && !body_file_exists(f, "ABORT0000001"); i++) {
		spool_run_completions(f->sp);
		usleep(1000);
	}
	assert_true(body_file_exists(f, "ABORT0000001"));
	spool_msg_abort(m);
	for (int i = 0; i < 5000 && body_file_exists(f, "ABORT0000001"); i++)
		usleep(1000);
	assert_false(body_file_exists(f, "ABORT0000001"));   /* at once, not at the next start */
	assert_int_equal(spool_reader_count(f->r), 0);
	free(b);
}

/* A message whose body file cannot be written to the end fails at its
 * commit (the session answers 452 or 451): its file goes at once. The
 * file size limit makes the write fail (EFBIG) where a full disk would. */
static void test_failed_commit_removes_file(void **state)
{
	struct fixture *f = *state;
	char *b = body_make(3 * SPOOL_CHUNK);
	struct spool_msg *m = spool_msg_begin(f->sp, "FULL00000001", on_chunk, NULL);
	spool_msg_write(m, b, SPOOL_CHUNK);   /* the first chunk goes to body/ */
	for (int i = 0; i < 5000 && !body_file_exists(f, "FULL00000001"); i++)
		usleep(1000);
	assert_true(body_file_exists(f, "FULL00000001"));
	spool_msg_write(m, b + SPOOL_CHUNK, 2 * SPOOL_CHUNK);   /* held for the commit */
	struct rlimit old, lim;
	getrlimit(RLIMIT_FSIZE, &old);
	lim = old;
	lim.rlim_cur = SPOOL_CHUNK + 1024;
	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	struct spool_env e;
	env_one(&e, "FULL00000001", 3 * SPOOL_CHUNK);
	struct wait w = { false, 0 };
	spool_msg_commit(m, &e, on_done, &w);
	run_until(f->sp, &w.done);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	assert_int_not_equal(w.err, 0);
	assert_false(body_file_exists(f, "FULL00000001"));
	assert_int_equal(spool_reader_count(f->r), 0);
	free(b);
}

/* The reserve is a file with its blocks allocated; it stays across a
 * restart; 0 removes it. (Its use on a full disk: test_full_disk.py.) */
static void test_reserve(void **state)
{
	struct fixture *f = *state;
	char p[160];
	snprintf(p, sizeof p, "%s/reserve", f->dir);
	struct stat st;
	assert_int_not_equal(stat(p, &st), 0);
	spool_set_reserve(f->sp, 256 * 1024);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_size, 256 * 1024);
	assert_true(st.st_blocks * 512 >= 256 * 1024);
	spool_close(f->sp);
	f->sp = spool_open(f->dir, noop_notify, NULL);
	spool_set_reserve(f->sp, 128 * 1024);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_size, 128 * 1024);
	spool_set_reserve(f->sp, 0);
	assert_int_not_equal(stat(p, &st), 0);
}

/* A body file with no message (a crash mid-DATA) goes at the next start;
 * one whose message is queued stays. */
static void test_orphan_files(void **state)
{
	struct fixture *f = *state;
	char *b = body_make(2 * SPOOL_CHUNK);
	put_msg(f, "KEPT00000001", b, 2 * SPOOL_CHUNK);
	char p[160];
	snprintf(p, sizeof p, "%s/body/ORPHAN000001", f->dir);
	int fd = open(p, O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "x", 1), 1);
	close(fd);
	spool_close(f->sp);
	f->sp = spool_open(f->dir, noop_notify, NULL);
	assert_false(body_file_exists(f, "ORPHAN000001"));
	assert_true(body_file_exists(f, "KEPT00000001"));
	check_body(f, "KEPT00000001", b, 2 * SPOOL_CHUNK, true);
	free(b);
}

/* A record of results alone is committed within the lazy wait; it does
 * not wait for a message that never comes. */
static void test_lazy_update_alone(void **state)
{
	struct fixture *f = *state;
	char *b = body_make(100);
	put_msg(f, "LAZY00000001", b, 100);
	finish_msg(f, "LAZY00000001");   /* fails (times out) if it waited forever */
	assert_int_equal(spool_reader_count(f->r), 0);
	free(b);
}

/* A scan in pages of max rows reads every due message once, in order,
 * and says when it has reached the end. */
static void test_due_pages(void **state)
{
	struct fixture *f = *state;
	char *b = body_make(100);
	char qid[16];
	for (int i = 0; i < 5; i++) {
		snprintf(qid, sizeof qid, "PAGE%08d", i);
		put_msg(f, qid, b, 100);
	}
	char got[8][UTIL_QID_LEN + 1];
	struct spool_cursor cur = SPOOL_CURSOR_START;
	bool more = false;
	size_t total = 0;
	size_t pages[] = { 2, 2, 1 };
	for (int p = 0; p < 3; p++) {
		size_t n = spool_reader_due(f->r, 10, &cur, got + total, 2, &more);
		assert_int_equal(n, pages[p]);
		assert_int_equal(more, p < 2);
		total += n;
	}
	for (int i = 0; i < 5; i++) {
		snprintf(qid, sizeof qid, "PAGE%08d", i);
		assert_string_equal(got[i], qid);
	}
	cur = SPOOL_CURSOR_START;   /* from the start again; nothing is due at -1 */
	assert_int_equal(spool_reader_due(f->r, -1, &cur, got, 8, &more), 0);
	assert_false(more);
	free(b);
}

/* ---- handoff to the delivery side ---- */

static int hook_calls;

static void count_hook(void *ctx)
{
	(void)ctx;
	__atomic_add_fetch(&hook_calls, 1, __ATOMIC_RELAXED);
}

/* Committed messages come back fresh, in order, as the reader would load
 * them; a small body is held in memory and read from there. */
static void test_handoff(void **state)
{
	struct fixture *f = *state;
	bool rescan = true;
	spool_set_commit_hook(f->sp, count_hook, NULL);
	char *small = body_make(3000), *large = body_make(2 * SPOOL_CHUNK + 5);
	put_msg(f, "FRESH0000001", small, 3000);
	put_msg(f, "FRESH0000002", large, 2 * SPOOL_CHUNK + 5);
	assert_true(__atomic_load_n(&hook_calls, __ATOMIC_RELAXED) >= 2);
	struct spool_fresh *fr = spool_take_fresh(f->sp, &rescan);
	assert_false(rescan);
	assert_non_null(fr);
	assert_non_null(fr->next);
	assert_null(fr->next->next);
	struct spool_env *a = &fr->env, *b = &fr->next->env;
	assert_string_equal(a->qid, "FRESH0000001");
	assert_string_equal(b->qid, "FRESH0000002");
	struct spool_env db;
	assert_int_equal(spool_reader_env(f->r, a->qid, &db), 0);
	assert_string_equal(a->sender, db.sender);
	assert_int_equal(a->nrcpt, db.nrcpt);
	assert_string_equal(a->rcpt[0].addr, db.rcpt[0].addr);
	assert_int_equal(a->rcpt[0].status, db.rcpt[0].status);
	assert_int_equal(a->rcpt[0].next_try, db.rcpt[0].next_try);
	assert_string_equal(a->rcpt[0].last_reply, db.rcpt[0].last_reply);
	spool_env_free(&db);
	assert_non_null(a->mem);
	assert_int_equal(a->mem_len, 3000);
	assert_null(b->mem);
	assert_true(b->body_file);
	struct buf got = BUF_INIT;
	assert_int_equal(spool_reader_body(f->r, a, collect, &got), 0);
	assert_int_equal(got.len, 3000);
	assert_memory_equal(got.data, small, 3000);
	buf_reset(&got);
	assert_int_equal(spool_reader_body(f->r, b, collect, &got), 0);
	assert_int_equal(got.len, 2 * SPOOL_CHUNK + 5);
	assert_memory_equal(got.data, large, got.len);
	buf_free(&got);
	spool_fresh_free(fr->next);
	spool_fresh_free(fr);
	assert_null(spool_take_fresh(f->sp, &rescan));
	free(small);
	free(large);
}

/* A report queued by spool_inject is not handed over: the delivery side
 * is told to look in the spool. */
static void test_handoff_inject_rescans(void **state)
{
	struct fixture *f = *state;
	bool rescan = false;
	spool_set_commit_hook(f->sp, count_hook, NULL);
	struct spool_env e;
	env_one(&e, "INJECT000001", 5);
	assert_int_equal(spool_inject(f->sp, &e, "hello", 5), 0);
	assert_null(spool_take_fresh(f->sp, &rescan));
	assert_true(rescan);
	assert_null(spool_take_fresh(f->sp, &rescan));
	assert_false(rescan);
}

/* Results and the report they call for go in one commit: the message is
 * removed and the report is queued together, and the delivery side is
 * told to look for the report in the spool. */
static void test_results_with_report(void **state)
{
	struct fixture *f = *state;
	bool rescan = false;
	char *b = body_make(100);
	put_msg(f, "BOUNCED00001", b, 100);
	spool_set_commit_hook(f->sp, count_hook, NULL);
	struct spool_env e, rep;
	assert_int_equal(spool_reader_env(f->r, "BOUNCED00001", &e), 0);
	for (size_t i = 0; i < e.nrcpt; i++)
		e.rcpt[i].status = SPOOL_FAILED;
	env_one(&rep, "REPORT000001", 6);
	struct spool_report reps[] = { { &rep, "report", 6 } };
	const struct spool_env *envs[] = { &e };
	struct wait w = { false, -1 };
	spool_update_many_async(f->sp, envs, 1, reps, 1, on_recorded, &w);
	for (int i = 0; i < 5000 && !__atomic_load_n(&w.done, __ATOMIC_ACQUIRE); i++)
		usleep(1000);
	assert_true(__atomic_load_n(&w.done, __ATOMIC_ACQUIRE));
	assert_int_equal(w.err, 0);
	struct spool_env got;
	assert_int_equal(spool_reader_env(f->r, "BOUNCED00001", &got), ENOENT);
	assert_int_equal(spool_reader_env(f->r, "REPORT000001", &got), 0);
	spool_env_free(&got);
	check_body(f, "REPORT000001", "report", 6, false);
	assert_null(spool_take_fresh(f->sp, &rescan));
	assert_true(rescan);
	spool_env_free(&e);
	free(b);
}

static void collect_attempt(void *ctx, unsigned idx, int64_t at, const char *reply,
                            const char *mta)
{
	struct buf *b = ctx;
	buf_printf(b, "%u %lld %s %s;", idx, (long long)at, reply, mta);
}

/* Every recorded attempt joins the recipient's history (ternctl show). */
static void test_attempt_history(void **state)
{
	struct fixture *f = *state;
	char *b = body_make(100);
	put_msg(f, "HISTORY00001", b, 100);
	static const char *const replies[] = { "4.4.1 refused", "4.2.0 busy" };
	for (int round = 0; round < 2; round++) {
		struct spool_env e;
		assert_int_equal(spool_reader_env(f->r, "HISTORY00001", &e), 0);
		free(e.rcpt[0].last_reply);
		free(e.rcpt[0].remote_mta);
		e.rcpt[0].last_reply = util_xstrdup(replies[round]);
		e.rcpt[0].remote_mta = util_xstrdup("mx.example[192.0.2.1]");
		e.rcpt[0].attempts = (unsigned)round + 1;
		e.rcpt[0].tried_at = 1000 + round;
		const struct spool_env *envs[] = { &e };
		struct wait w = { false, -1 };
		spool_update_many_async(f->sp, envs, 1, NULL, 0, on_recorded, &w);
		for (int i = 0; i < 5000 && !__atomic_load_n(&w.done, __ATOMIC_ACQUIRE); i++)
			usleep(1000);
		assert_int_equal(w.err, 0);
		spool_env_free(&e);
	}
	struct buf got = BUF_INIT;
	assert_int_equal(spool_reader_attempts(f->r, "HISTORY00001", collect_attempt, &got), 0);
	assert_string_equal(buf_cstr(&got), "0 1000 4.4.1 refused mx.example[192.0.2.1];"
	                                    "0 1001 4.2.0 busy mx.example[192.0.2.1];");
	buf_free(&got);
	finish_msg(f, "HISTORY00001");   /* the history goes with the message */
	assert_int_equal(spool_reader_attempts(f->r, "HISTORY00001", collect_attempt, &got), 0);
	assert_int_equal(got.len, 0);
	free(b);
}

/* Without a hook (queue_only, or once the queue is gone) nothing is kept. */
static void test_no_hook_keeps_nothing(void **state)
{
	struct fixture *f = *state;
	bool rescan = true;
	spool_set_commit_hook(f->sp, count_hook, NULL);
	spool_set_commit_hook(f->sp, NULL, NULL);
	int before = __atomic_load_n(&hook_calls, __ATOMIC_RELAXED);
	char *b = body_make(100);
	put_msg(f, "NOHOOK000001", b, 100);
	assert_null(spool_take_fresh(f->sp, &rescan));
	assert_false(rescan);
	assert_int_equal(__atomic_load_n(&hook_calls, __ATOMIC_RELAXED), before);
	check_body(f, "NOHOOK000001", b, 100, false);
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_small_inline, setup, teardown),
		cmocka_unit_test_setup_teardown(test_large_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_abort_removes_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failed_commit_removes_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reserve, setup, teardown),
		cmocka_unit_test_setup_teardown(test_orphan_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lazy_update_alone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_due_pages, setup, teardown),
		cmocka_unit_test_setup_teardown(test_handoff, setup, teardown),
		cmocka_unit_test_setup_teardown(test_results_with_report, setup, teardown),
		cmocka_unit_test_setup_teardown(test_attempt_history, setup, teardown),
		cmocka_unit_test_setup_teardown(test_handoff_inject_rescans, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_hook_keeps_nothing, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
