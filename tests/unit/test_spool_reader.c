/* Unit tests for the operators' queries of spool/reader.h: the listing
 * with its filters (domain, sender, state), its pages and the counts per
 * domain. A real spool in a temporary directory; messages and results go
 * in through the public API; the tests set rcpt.held with SQL of their
 * own. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/util.h"
#include "spool/reader.h"
#include "spool/spool.h"

struct fixture {
	char dir[64];
	struct spool *sp;
	struct spool_reader *r;
};

static void ignore(void *ctx)
{
	(void)ctx;
}

static void open_spool(struct fixture *f)
{
	f->sp = spool_open(f->dir, ignore, NULL);
	assert_non_null(f->sp);
	f->r = spool_reader_open(f->dir);
	assert_non_null(f->r);
}

static struct fixture *fixture_new(void)
{
	struct fixture *f = calloc(1, sizeof *f);
	snprintf(f->dir, sizeof f->dir, "/tmp/tern-test-reader-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	return f;
}

static void fixture_free(struct fixture *f)
{
	spool_reader_close(f->r);
	spool_close(f->sp);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
}

/* Run one statement on the spool's database, as nothing in the daemon
 * does yet (holds) or as an older version did (the schema). */
static void sql(struct fixture *f, const char *text)
{
	char path[128];
	snprintf(path, sizeof path, "%s/queue.db", f->dir);
	sqlite3 *db = NULL;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 10000);
	char *err = NULL;
	int rc = sqlite3_exec(db, text, NULL, NULL, &err);
	if (rc != SQLITE_OK)
		fail_msg("%s: %s", text, err);
	sqlite3_close(db);
}

/* ---- messages and results through the public API ---- */

static void env_make(struct spool_env *e, struct spool_rcpt *r, const char *qid,
                     const char *sender, const char *const *to)
{
	size_t n = 0;
	for (; to[n]; n++)
		r[n] = (struct spool_rcpt){ .idx = (unsigned)n, .orig = (char *)to[n],
		                            .addr = (char *)to[n], .transport = SPOOL_REMOTE,
		                            .orcpt = "", .last_reply = "", .remote_mta = "" };
	*e = (struct spool_env){ .sender = (char *)sender, .envid = "", .client = "[127.0.0.1]",
	                         .helo = "client.example", .size = 5, .arrival = 100,
	                         .nrcpt = n, .rcpt = r };
	snprintf(e->qid, sizeof e->qid, "%s", qid);
}

static void put(struct fixture *f, const char *qid, const char *sender, const char *const *to)
{
	struct spool_rcpt r[4];
	struct spool_env e;
	env_make(&e, r, qid, sender, to);
	assert_int_equal(spool_inject(f->sp, &e, "hello", 5), 0);
}

static void on_recorded(void *ctx, int err)
{
	assert_int_equal(err, 0);
	__atomic_store_n((bool *)ctx, true, __ATOMIC_RELEASE);
}

/* Record a result for recipient idx of qid, as the delivery engine does. */
static void result(struct fixture *f, const char *qid, unsigned idx, int status,
                   unsigned attempts, int64_t next_try, const char *reply)
{
	struct spool_env e;
	assert_int_equal(spool_reader_env(f->r, qid, &e), 0);
	assert_true(idx < e.nrcpt);
	e.rcpt[idx].status = status;
	e.rcpt[idx].attempts = attempts;
	e.rcpt[idx].next_try = next_try;
	free(e.rcpt[idx].last_reply);
	e.rcpt[idx].last_reply = util_xstrdup(reply);
	const struct spool_env *envs[] = { &e };
	bool done = false;
	spool_update_many_async(f->sp, envs, 1, NULL, 0, on_recorded, &done);
	for (int i = 0; i < 5000 && !__atomic_load_n(&done, __ATOMIC_ACQUIRE); i++)
		usleep(1000);
	assert_true(__atomic_load_n(&done, __ATOMIC_ACQUIRE));
	spool_env_free(&e);
}

/* The queue of every test but the migration's:
 *   Q01 a@one.example -> x@Dom.example (delivered), y@other.example (deferred twice)
 *   Q02 <>            -> z@dom.example
 *   Q03 B@Two.example -> w@other.example (failed), v@dom.example
 *   Q04 a@one.example -> u@third.example (held) */
static int setup(void **state)
{
	struct fixture *f = fixture_new();
	open_spool(f);
	put(f, "Q01", "a@one.example", (const char *[]){ "x@Dom.example", "y@other.example", NULL });
	put(f, "Q02", "", (const char *[]){ "z@dom.example", NULL });
	put(f, "Q03", "B@Two.example", (const char *[]){ "w@other.example", "v@dom.example", NULL });
	put(f, "Q04", "a@one.example", (const char *[]){ "u@third.example", NULL });
	result(f, "Q01", 0, SPOOL_DELIVERED, 1, 0, "250 2.0.0 ok");
	result(f, "Q01", 1, SPOOL_PENDING, 2, 500, "451 4.3.0 try later");
	result(f, "Q03", 0, SPOOL_FAILED, 1, 0, "550 5.1.1 no such user");
	sql(f, "UPDATE rcpt SET held=1 WHERE qid='Q04'");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture_free(*state);
	return 0;
}

/* ---- helpers over a listing ---- */

/* The queue ids of one page, joined by spaces. */
static const char *page_qids(const struct spool_list *l)
{
	static char s[256];
	s[0] = '\0';
	for (size_t i = 0; i < l->n; i++)
		snprintf(s + strlen(s), sizeof s - strlen(s), "%s%s", i ? " " : "", l->msg[i].qid);
	return s;
}

/* Everything f lets through, in one page, as queue ids. */
static const char *listed(struct fixture *f, const struct spool_filter *flt)
{
	static char s[256];
	struct spool_list_cursor cur = SPOOL_LIST_START;
	struct spool_list l;
	assert_int_equal(spool_reader_list(f->r, flt, &cur, 100, &l), 0);
	assert_false(l.more);
	snprintf(s, sizeof s, "%s", page_qids(&l));
	spool_list_free(&l);
	return s;
}

static void check_rcpt(const struct spool_summary_rcpt *x, const char *addr, int state,
                       unsigned attempts, int64_t next_try, const char *reply)
{
	assert_string_equal(x->addr, addr);
	assert_string_equal(x->orig, addr);
	assert_int_equal(x->state, state);
	assert_int_equal(x->attempts, attempts);
	assert_int_equal(x->next_try, next_try);
	assert_string_equal(x->last_reply, reply);
}

/* ---- tests ---- */

static void test_list_all(void **state)
{
	struct fixture *f = *state;
	struct spool_list_cursor cur = SPOOL_LIST_START;
	struct spool_list l;
	assert_int_equal(spool_reader_list(f->r, NULL, &cur, 10, &l), 0);
	assert_string_equal(page_qids(&l), "Q01 Q02 Q03 Q04");
	assert_false(l.more);
	const struct spool_summary *m = &l.msg[0];
	assert_string_equal(m->sender, "a@one.example");
	assert_int_equal(m->size, 5);
	assert_int_equal(m->arrival, 100);
	assert_int_equal(m->nrcpt, 2);
	check_rcpt(&m->rcpt[0], "x@Dom.example", SPOOL_STATE_DELIVERED, 1, 0, "250 2.0.0 ok");
	check_rcpt(&m->rcpt[1], "y@other.example", SPOOL_STATE_PENDING, 2, 500, "451 4.3.0 try later");
	assert_int_equal(m->rcpt[0].idx, 0);   /* in the order given */
	assert_int_equal(m->rcpt[1].idx, 1);
	assert_string_equal(l.msg[1].sender, "");
	check_rcpt(&l.msg[1].rcpt[0], "z@dom.example", SPOOL_STATE_PENDING, 0, 0, "");
	check_rcpt(&l.msg[2].rcpt[0], "w@other.example", SPOOL_STATE_FAILED, 1, 0,
	           "550 5.1.1 no such user");
	check_rcpt(&l.msg[3].rcpt[0], "u@third.example", SPOOL_STATE_HELD, 0, 0, "");
	/* Q01 tried and pending, Q02 and Q03 nothing pending tried, Q04 held */
	assert_int_equal(l.msg[0].queue, SPOOL_QUEUE_DEFERRED);
	assert_int_equal(l.msg[1].queue, SPOOL_QUEUE_ACTIVE);
	assert_int_equal(l.msg[2].queue, SPOOL_QUEUE_ACTIVE);
	assert_int_equal(l.msg[3].queue, SPOOL_QUEUE_HOLD);
	spool_list_free(&l);
	uint64_t bytes;
	assert_int_equal(spool_reader_totals(f->r, &bytes), 4);
	assert_int_equal(bytes, 4 * 5);   /* each message of the fixture is 5 octets */
	long q[SPOOL_QUEUE__COUNT];
	assert_int_equal(spool_reader_queues(f->r, q), 0);
	assert_int_equal(q[SPOOL_QUEUE_ACTIVE], 2);
	assert_int_equal(q[SPOOL_QUEUE_DEFERRED], 1);
	assert_int_equal(q[SPOOL_QUEUE_HOLD], 1);
}

/* Pages follow the cursor without a gap or a repeat; a page says there is
 * more when a message follows it, the last one that there is not. */
static void test_list_pages(void **state)
{
	struct fixture *f = *state;
	struct spool_list_cursor cur = SPOOL_LIST_START;
	struct spool_list l;
	static const char *const want[] = { "Q01 Q02 Q03", "Q04" };
	for (size_t i = 0; i < 2; i++) {
		assert_int_equal(spool_reader_list(f->r, NULL, &cur, 3, &l), 0);
		assert_string_equal(page_qids(&l), want[i]);
		assert_int_equal(l.more, i == 0);
		spool_list_free(&l);
	}
	cur = SPOOL_LIST_START;
	for (size_t i = 1; i <= 4; i++) {
		assert_int_equal(spool_reader_list(f->r, NULL, &cur, 1, &l), 0);
		assert_int_equal(l.n, 1);
		assert_int_equal(l.more, i < 4);
		assert_string_equal(cur.qid, l.msg[0].qid);
		spool_list_free(&l);
	}
	assert_int_equal(spool_reader_list(f->r, NULL, &cur, 1, &l), 0);
	assert_int_equal(l.n, 0);
	assert_false(l.more);
	spool_list_free(&l);
	assert_int_equal(spool_reader_list(f->r, NULL, &cur, 0, &l), 0);
	assert_int_equal(l.n, 0);
	assert_true(l.more);   /* nothing was read: the caller cannot know */
}

/* A message is listed whole, with recipients at other domains too. */
static void test_filter_domain(void **state)
{
	struct fixture *f = *state;
	assert_string_equal(listed(f, &(struct spool_filter){ .domain = "DOM.example" }),
	                    "Q01 Q02 Q03");
	assert_string_equal(listed(f, &(struct spool_filter){ .domain = "other.example" }),
	                    "Q01 Q03");
	assert_string_equal(listed(f, &(struct spool_filter){ .domain = "example" }), "");
	struct spool_list_cursor cur = SPOOL_LIST_START;
	struct spool_list l;
	struct spool_filter flt = { .domain = "third.example" };
	assert_int_equal(spool_reader_list(f->r, &flt, &cur, 10, &l), 0);
	assert_string_equal(page_qids(&l), "Q04");
	assert_int_equal(l.msg[0].nrcpt, 1);
	spool_list_free(&l);
	flt.domain = "dom.example";
	cur = SPOOL_LIST_START;
	assert_int_equal(spool_reader_list(f->r, &flt, &cur, 10, &l), 0);
	assert_int_equal(l.msg[0].nrcpt, 2);
	spool_list_free(&l);
}

static void test_filter_sender(void **state)
{
	struct fixture *f = *state;
	assert_string_equal(listed(f, &(struct spool_filter){ .sender = "A@ONE.example" }),
	                    "Q01 Q04");
	assert_string_equal(listed(f, &(struct spool_filter){ .sender = "b@two.example" }), "Q03");
	assert_string_equal(listed(f, &(struct spool_filter){ .sender = "" }), "Q02");
	assert_string_equal(listed(f, &(struct spool_filter){ .sender = "one.example" }), "");
}

static void test_filter_state(void **state)
{
	struct fixture *f = *state;
	const unsigned pending = SPOOL_STATE_BIT(SPOOL_STATE_PENDING);
	const unsigned held = SPOOL_STATE_BIT(SPOOL_STATE_HELD);
	assert_string_equal(listed(f, &(struct spool_filter){ .states = pending }), "Q01 Q02 Q03");
	assert_string_equal(listed(f, &(struct spool_filter){ .states = held }), "Q04");
	assert_string_equal(listed(f, &(struct spool_filter){ .states = pending | held }),
	                    "Q01 Q02 Q03 Q04");
	assert_string_equal(listed(f, &(struct spool_filter){
		.states = SPOOL_STATE_BIT(SPOOL_STATE_DELIVERED) }), "Q01");
	assert_string_equal(listed(f, &(struct spool_filter){
		.states = SPOOL_STATE_BIT(SPOOL_STATE_FAILED) }), "Q03");
}

/* The domain and the state must hold for the same recipient. */
static void test_filter_together(void **state)
{
	struct fixture *f = *state;
	const unsigned failed = SPOOL_STATE_BIT(SPOOL_STATE_FAILED);
	assert_string_equal(listed(f, &(struct spool_filter){ .domain = "other.example",
	                                                      .states = failed }), "Q03");
	assert_string_equal(listed(f, &(struct spool_filter){ .domain = "dom.example",
	                                                      .states = failed }), "");
	assert_string_equal(listed(f, &(struct spool_filter){
		.domain = "dom.example", .states = SPOOL_STATE_BIT(SPOOL_STATE_DELIVERED) }), "Q01");
	assert_string_equal(listed(f, &(struct spool_filter){
		.sender = "a@one.example", .domain = "third.example",
		.states = SPOOL_STATE_BIT(SPOOL_STATE_HELD) }), "Q04");
	assert_string_equal(listed(f, &(struct spool_filter){
		.sender = "", .domain = "other.example" }), "");
}

/* Counts per domain as "domain msgs rcpts" lines, joined by ", ". */
/* Counts per domain as "domain msgs rcpts, ..." (the caller's result). */
static const char *counts_text(struct spool_domain_counts *c)
{
	static char s[256];
	s[0] = '\0';
	for (size_t i = 0; i < c->n; i++)
		snprintf(s + strlen(s), sizeof s - strlen(s), "%s%s %zu %zu", i ? ", " : "",
		         c->v[i].domain, c->v[i].msgs, c->v[i].rcpts);
	spool_domain_counts_free(c);
	return s;
}

static const char *counted(struct fixture *f, unsigned states, size_t max)
{
	struct spool_domain_counts c;
	assert_int_equal(spool_reader_domains(f->r, states, max, &c), 0);
	return counts_text(&c);
}

static void test_domains(void **state)
{
	struct fixture *f = *state;
	static const struct { int state; size_t max; const char *want; } t[] = {
		{ SPOOL_STATE_HELD, 10, "third.example 1 1" },
		{ SPOOL_STATE_PENDING, 10, "dom.example 2 2, other.example 1 1" },
		{ SPOOL_STATE_FAILED, 10, "other.example 1 1" },
		{ SPOOL_STATE_DELIVERED, 10, "dom.example 1 1" },   /* x@Dom.example */
		{ -1, 10, "dom.example 3 3, other.example 2 2, third.example 1 1" },
		{ -1, 1, "dom.example 3 3" },
		{ -1, 0, "" },
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
		assert_string_equal(counted(f, t[i].state < 0 ? 0 : SPOOL_STATE_BIT(t[i].state),
		                            t[i].max), t[i].want);
	put(f, "Q05", "", (const char *[]){ "a@dom.example", "b@dom.example", NULL });
	assert_string_equal(counted(f, SPOOL_STATE_BIT(SPOOL_STATE_PENDING), 1), "dom.example 3 4");
}

/* Held recipients per domain, as "domain msgs rcpts" lines. */
static const char *held(struct fixture *f, size_t max)
{
	struct spool_domain_counts c;
	assert_int_equal(spool_reader_held_domains(f->r, max, &c), 0);
	return counts_text(&c);
}

/* The query plan of the held domains' statement: through the scheduler's
 * index, so that its cost is the held rows', not the queue's. */
static void plan_row(void *ctx, const char *detail)
{
	char *out = ctx;
	snprintf(out + strlen(out), 512 - strlen(out), "%s; ", detail);
}

static int plan_cb(void *ctx, int n, char **v, char **names)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(names[i], "detail"))
			plan_row(ctx, v[i]);
	return 0;
}

static void test_held_domains(void **state)
{
	struct fixture *f = *state;
	assert_string_equal(held(f, 10), "third.example 1 1");
	sql(f, "UPDATE rcpt SET held=1 WHERE qid='Q03'");   /* w@other.example failed: not held */
	put(f, "Q05", "", (const char *[]){ "a@Dom.example", "b@dom.example", "c@four.example", NULL });
	sql(f, "UPDATE rcpt SET held=1 WHERE qid='Q05' AND idx < 2");
	assert_string_equal(held(f, 10), "dom.example 2 3, third.example 1 1");
	assert_string_equal(held(f, 1), "dom.example 2 3");
	assert_string_equal(held(f, 0), "");
	result(f, "Q05", 0, SPOOL_DELIVERED, 1, 0, "250 2.0.0 ok");   /* a release delivered it */
	assert_string_equal(held(f, 10), "dom.example 2 2, third.example 1 1");
	char path[128], detail[512] = "";
	snprintf(path, sizeof path, "%s/queue.db", f->dir);
	sqlite3 *db = NULL;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "EXPLAIN QUERY PLAN SELECT lower(addr) AS d,"
	                              " COUNT(DISTINCT qid), COUNT(*) FROM rcpt WHERE status=0"
	                              " AND held=1 GROUP BY d ORDER BY d", plan_cb, detail, NULL),
	                 SQLITE_OK);
	sqlite3_close(db);
	if (!strstr(detail, "USING INDEX rcpt_sched (status=? AND held=?)"))
		fail_msg("the held domains are not counted through rcpt_sched: %s", detail);
}

/* ---- a page looks at a bounded number of messages ---- */

static void on_committed(void *ctx, int err)
{
	assert_int_equal(err, 0);
	(*(size_t *)ctx)++;
}

/* n messages to a@bulk.example, then one to b@rare.example, committed as
 * a session does (and so in few group commits). */
static void put_bulk(struct fixture *f, size_t n)
{
	size_t done = 0;
	for (size_t i = 0; i <= n; i++) {
		char qid[UTIL_QID_LEN + 1];
		snprintf(qid, sizeof qid, "B%06zu", i);
		struct spool_rcpt r[1];
		struct spool_env e;
		env_make(&e, r, qid, "s@example.net",
		         (const char *[]){ i < n ? "a@bulk.example" : "b@rare.example", NULL });
		struct spool_msg *m = spool_msg_begin(f->sp, qid, NULL, NULL);
		spool_msg_write(m, "hello", 5);
		spool_msg_commit(m, &e, on_committed, &done);
	}
	for (int i = 0; i < 10000 && done <= n; i++) {
		spool_run_completions(f->sp);
		if (done <= n)
			usleep(1000);
	}
	assert_int_equal(done, n + 1);
}

static void test_list_look(void **state)
{
	(void)state;
	struct fixture *f = fixture_new();
	open_spool(f);
	put_bulk(f, SPOOL_LIST_LOOK);
	struct spool_filter flt = { .domain = "rare.example" };
	struct spool_list_cursor cur = SPOOL_LIST_START;
	struct spool_list l;
	assert_int_equal(spool_reader_list(f->r, &flt, &cur, 10, &l), 0);
	assert_int_equal(l.n, 0);   /* SPOOL_LIST_LOOK messages looked at, none matched */
	assert_true(l.more);
	assert_string_equal(cur.qid, "B004095");
	assert_int_equal(spool_reader_list(f->r, &flt, &cur, 10, &l), 0);
	assert_string_equal(page_qids(&l), "B004096");
	assert_false(l.more);
	spool_list_free(&l);
	cur = SPOOL_LIST_START;   /* a page larger than SPOOL_LIST_LOOK looks at that many */
	assert_int_equal(spool_reader_list(f->r, NULL, &cur, SPOOL_LIST_LOOK + 10, &l), 0);
	assert_int_equal(l.n, SPOOL_LIST_LOOK + 1);
	assert_false(l.more);
	spool_list_free(&l);
	fixture_free(f);
}

/* A spool made before rcpt.held gets the column, every recipient not held. */
static void test_held_migration(void **state)
{
	(void)state;
	struct fixture *f = fixture_new();
	sql(f, "CREATE TABLE msg(qid TEXT PRIMARY KEY, sender TEXT NOT NULL,"
	       " envid TEXT NOT NULL, ret INT, body INT, size INT, arrival INT,"
	       " client TEXT, helo TEXT, bodyfile INT NOT NULL DEFAULT 0,"
	       " dotless INT NOT NULL DEFAULT 0);"
	       "CREATE TABLE rcpt(qid TEXT NOT NULL, idx INT NOT NULL,"
	       " orig TEXT NOT NULL, addr TEXT NOT NULL, transport INT, notify INT,"
	       " orcpt TEXT NOT NULL, status INT NOT NULL, attempts INT NOT NULL,"
	       " next_try INT NOT NULL, last_reply TEXT NOT NULL, remote_mta TEXT NOT NULL,"
	       " dsn_flags INT NOT NULL, PRIMARY KEY(qid, idx));"
	       "INSERT INTO msg VALUES('OLD1', 's@example.net', '', 0, 0, 5, 7, '[127.0.0.1]',"
	       " 'c.example', 0, 0);"
	       "INSERT INTO rcpt VALUES('OLD1', 0, 'u@old.example', 'u@old.example', 1, 0, '',"
	       " 0, 3, 9, '421 4.4.2 timeout', '', 0);"
	       "CREATE TABLE chunk(id INTEGER PRIMARY KEY, qid TEXT NOT NULL,"
	       " seq INT NOT NULL, data BLOB NOT NULL);"
	       "INSERT INTO chunk(qid, seq, data) VALUES('OLD1', 0, 'hello');");
	open_spool(f);
	struct spool_list_cursor cur = SPOOL_LIST_START;
	struct spool_list l;
	struct spool_filter flt = { .states = SPOOL_STATE_BIT(SPOOL_STATE_PENDING) };
	assert_int_equal(spool_reader_list(f->r, &flt, &cur, 10, &l), 0);
	assert_string_equal(page_qids(&l), "OLD1");
	check_rcpt(&l.msg[0].rcpt[0], "u@old.example", SPOOL_STATE_PENDING, 3, 9,
	           "421 4.4.2 timeout");
	spool_list_free(&l);
	struct spool_env e;   /* nor had it msg.prefix: nothing goes before the body */
	assert_int_equal(spool_reader_env(f->r, "OLD1", &e), 0);
	assert_null(e.prefix);
	spool_env_free(&e);
	fixture_free(f);
}

/* msg.prefix (the DKIM-Signature fields made at receipt): a message
 * keeps it, one without has NULL, and a spool made before the column
 * (with rcpt.held) gets it, NULL for its messages. msg.smtputf8 (RFC
 * 6531) likewise: kept when set, 0 for the old messages. */
static void test_prefix(void **state)
{
	(void)state;
	struct fixture *f = fixture_new();
	sql(f, "CREATE TABLE msg(qid TEXT PRIMARY KEY, sender TEXT NOT NULL,"
	       " envid TEXT NOT NULL, ret INT, body INT, size INT, arrival INT,"
	       " client TEXT, helo TEXT, bodyfile INT NOT NULL DEFAULT 0,"
	       " dotless INT NOT NULL DEFAULT 0);"
	       "CREATE TABLE rcpt(qid TEXT NOT NULL, idx INT NOT NULL,"
	       " orig TEXT NOT NULL, addr TEXT NOT NULL, transport INT, notify INT,"
	       " orcpt TEXT NOT NULL, status INT NOT NULL, attempts INT NOT NULL,"
	       " next_try INT NOT NULL, last_reply TEXT NOT NULL, remote_mta TEXT NOT NULL,"
	       " dsn_flags INT NOT NULL, held INT NOT NULL DEFAULT 0, PRIMARY KEY(qid, idx));"
	       "INSERT INTO msg VALUES('OLD2', 's@example.net', '', 0, 0, 5, 7, '[127.0.0.1]',"
	       " 'c.example', 0, 0);"
	       "INSERT INTO rcpt VALUES('OLD2', 0, 'u@old.example', 'u@old.example', 1, 0, '',"
	       " 0, 0, 9, '', '', 0, 0);");
	open_spool(f);
	struct spool_rcpt r[2];
	struct spool_env e;
	env_make(&e, r, "NEW1", "a@example.com", (const char *[]){ "x@example.org", NULL });
	e.prefix = "DKIM-Signature: v=1; a=ed25519-sha256;\r\n\tb=AAAA\r\n";
	e.smtputf8 = true;
	assert_int_equal(spool_inject(f->sp, &e, "hello", 5), 0);
	env_make(&e, r, "NEW2", "a@example.com", (const char *[]){ "x@example.org", NULL });
	assert_int_equal(spool_inject(f->sp, &e, "hello", 5), 0);
	const char *qids[] = { "NEW1", "NEW2", "OLD2" };
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(spool_reader_env(f->r, qids[i], &e), 0);
		if (i == 0)
			assert_string_equal(e.prefix, "DKIM-Signature: v=1; a=ed25519-sha256;\r\n\tb=AAAA\r\n");
		else
			assert_null(e.prefix);
		assert_int_equal(e.smtputf8, i == 0);
		spool_env_free(&e);
	}
	fixture_free(f);
}

/* Each test of the four-message queue gets a spool of its own. */
#define QUEUE_TEST(t) cmocka_unit_test_setup_teardown(t, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		QUEUE_TEST(test_list_all),
		QUEUE_TEST(test_list_pages),
		QUEUE_TEST(test_filter_domain),
		QUEUE_TEST(test_filter_sender),
		QUEUE_TEST(test_filter_state),
		QUEUE_TEST(test_filter_together),
		QUEUE_TEST(test_domains),
		QUEUE_TEST(test_held_domains),
		cmocka_unit_test(test_list_look),
		cmocka_unit_test(test_held_migration),
		cmocka_unit_test(test_prefix),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
