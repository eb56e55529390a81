/* journal: the delivery journal (see spool.h, spool_journal_*).
 *
 * Results are recorded in group commits; a crash between a next hop's 250
 * and the commit that records it would deliver the message again. So the
 * delivery thread also appends "QID IDX" to spool_dir/delivered.N the
 * moment a recipient is delivered: one write(2), no fsync. A process
 * that dies (kill -9, a crash, the OOM killer) leaves what it wrote in the
 * kernel's page cache, and the next start applies it before anything is
 * delivered again; after a power cut the lines may be gone, and SMTP's
 * duplicate (RFC 5321 6.1) is the price, as before.
 *
 * Two files take turns: lines go to the current one; once it holds
 * SPOOL_JOURNAL_SWAP octets and the other has no line whose message is
 * still unrecorded, that other one is emptied and becomes current. The
 * delivery thread counts the live lines of each (spool_journal_recorded).
 */
#include "spool/spool_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/util.h"

#define SPOOL_JOURNAL_SWAP (256 * 1024)
/* A file whose live count never came back to 0 (a message dropped without
 * its record) is emptied anyway once the other is this big: its lines
 * could only spare a duplicate. */
#define SPOOL_JOURNAL_MAX (8 * 1024 * 1024)

static const char *const journal_names[2] = { "delivered.0", "delivered.1" };

struct spool_journal {
	int dir;
	int fd[2];
	int cur;
	uint64_t size[2];
	uint64_t live[2];
};

/* ---- the start: what the last run delivered and did not record ---- */

/* One line "QID IDX"; false when it is not one (a torn last line). */
static bool journal_line(const char *line, char *qid, unsigned *idx)
{
	char q[UTIL_QID_LEN + 2];
	unsigned i;
	char end;
	if (sscanf(line, "%17s %u%c", q, &i, &end) != 3 || end != '\n' ||
	    strlen(q) != UTIL_QID_LEN)
		return false;
	memcpy(qid, q, UTIL_QID_LEN + 1);
	*idx = i;
	return true;
}

/* Apply one file's lines (in the open transaction); how many applied. */
static long journal_apply_file(sqlite3 *db, int dir, int body_dir, const char *name, int *err)
{
	int fd = openat(dir, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	FILE *f = fdopen(fd, "r");
	if (!f) {
		close(fd);
		return 0;
	}
	char line[64], qid[UTIL_QID_LEN + 1];
	unsigned idx;
	long n = 0;
	int64_t now = (int64_t)time(NULL);
	while (!*err && fgets(line, sizeof line, f)) {
		if (!journal_line(line, qid, &idx))
			continue;
		bool gone_file = false;
		int r = rows_journal_apply(db, qid, idx, now, &gone_file);
		if (r > 0)
			n++;
		else if (r < 0)
			*err = -r;
		if (gone_file)
			unlinkat(body_dir, qid, 0);
	}
	fclose(f);
	return n;
}

int spool_journal_replay(sqlite3 *db, int dir, int body_dir)
{
	int err = rows_sql(db, "BEGIN IMMEDIATE");
	long n = 0;
	for (int i = 0; i < 2 && !err; i++)
		n += journal_apply_file(db, dir, body_dir, journal_names[i], &err);
	if (!err)
		err = rows_sql(db, "COMMIT");
	if (err) {
		rows_sql(db, "ROLLBACK");
		log_error("spool: cannot apply the delivery journal: %s", strerror(err));
		return err;
	}
	for (int i = 0; i < 2; i++) {   /* applied and committed: not again */
		int fd = openat(dir, journal_names[i], O_WRONLY | O_CLOEXEC);
		if (fd >= 0) {
			if (ftruncate(fd, 0) != 0)
				log_warn("spool: cannot empty %s: %s", journal_names[i], strerror(errno));
			close(fd);
		}
	}
	if (n)
		log_info("spool: %ld delivery result%s of the last run recorded from the journal "
		         "(delivered before it stopped, not delivered again)", n, n == 1 ? "" : "s");
	return 0;
}

/* ---- the delivery thread's side ---- */

struct spool_journal *spool_journal_open(struct spool *sp)
{
	struct spool_journal *j = util_xcalloc(1, sizeof *j);
	j->dir = sp->dir;
	for (int i = 0; i < 2; i++) {
		j->fd[i] = openat(sp->dir, journal_names[i],
		                  O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		if (j->fd[i] < 0)
			log_warn("spool: no delivery journal (%s: %s): a crash may deliver again",
			         journal_names[i], strerror(errno));
	}
	return j;
}

int spool_journal_add(struct spool_journal *j, const char *qid, unsigned idx)
{
	char line[64];
	int n = snprintf(line, sizeof line, "%s %u\n", qid, idx);
	int f = j->cur;
	if (j->fd[f] >= 0 && write(j->fd[f], line, (size_t)n) == n)
		j->size[f] += (uint64_t)n;
	j->live[f]++;
	return f;
}

static void journal_empty(struct spool_journal *j, int f)
{
	if (j->fd[f] >= 0 && ftruncate(j->fd[f], 0) != 0)
		log_warn("spool: cannot empty %s: %s", journal_names[f], strerror(errno));
	j->size[f] = 0;
	j->live[f] = 0;
}

void spool_journal_recorded(struct spool_journal *j, int f, unsigned n)
{
	j->live[f] = n > j->live[f] ? 0 : j->live[f] - n;
	int other = 1 - j->cur;
	if (j->live[other] == 0 && j->size[other] > 0)
		journal_empty(j, other);
	if (j->size[j->cur] < SPOOL_JOURNAL_SWAP)
		return;
	if (j->live[other] > 0 && j->size[j->cur] < SPOOL_JOURNAL_MAX)
		return;
	if (j->live[other] > 0)
		journal_empty(j, other);
	j->cur = other;
	if (j->live[1 - j->cur] == 0)
		journal_empty(j, 1 - j->cur);
}

void spool_journal_close(struct spool_journal *j)
{
	if (!j)
		return;
	for (int i = 0; i < 2; i++) {
		if (j->live[i] == 0 && j->size[i] > 0)
			journal_empty(j, i);   /* every line recorded: nothing for the next start */
		if (j->fd[i] >= 0)
			close(j->fd[i]);
	}
	free(j);
}
