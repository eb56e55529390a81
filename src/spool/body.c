/* spool/body: bodies kept in files, spool_dir/body/<qid>, by the writer
 * thread: writes, the sync before the envelope commits, removal (at once
 * for a refused message, by the reaper thread for a delivered one), and
 * the reserve of disk for delivery results, spool_dir/reserve.
 *
 * A message longer than one chunk keeps its body in body/<qid> instead of
 * chunk rows: one large write per chunk, where SQLite would write each 4 KiB
 * page to the WAL and copy it again at the checkpoint. Writes go to fixed
 * offsets, so an operation retried after a failed batch rewrites the same
 * bytes. Before the transaction that adds the envelope row commits, the
 * file is fdatasync'd and body/ itself fsync'd (once per transaction): a
 * committed row always has its whole body on disk. */
#include "spool/spool_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/log.h"
#include "lib/util.h"

/* spool_dir/body, created if needed; -1 (and why, printed) on failure. */
int body_dir_open(const char *dir)
{
	struct buf path = BUF_INIT;
	buf_printf(&path, "%s/body", dir);
	int fd = -1;
	if (!util_mkdir_p(buf_cstr(&path), 0700) ||
	    (fd = open(buf_cstr(&path), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		log_error("spool: cannot open %s: %s", buf_cstr(&path), strerror(errno));
	buf_free(&path);
	return fd;
}

static int body_err(int e)
{
	return e == ENOSPC || e == EDQUOT ? ENOSPC : EIO;
}

int body_put(struct spool *sp, struct spool_msg *m, uint64_t off, const struct buf *b)
{
	if (m->fd < 0) {
		m->fd = openat(sp->body_dir, m->qid, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (m->fd < 0) {
			log_error("spool: cannot create body/%s: %s", m->qid, strerror(errno));
			return body_err(errno);
		}
		sp->dir_dirty = true;
	}
	for (size_t done = 0; done < b->len;) {
		ssize_t w = pwrite(m->fd, b->data + done, b->len - done, (off_t)(off + done));
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			int e = w < 0 ? errno : ENOSPC;
			log_error("spool: cannot write body/%s: %s", m->qid, strerror(e));
			return body_err(e);
		}
		done += (size_t)w;
	}
	/* Start the write-back now: the fdatasync at the commit finds less to do. */
	if (b->len)
		sync_file_range(m->fd, (off_t)off, (off_t)b->len, SYNC_FILE_RANGE_WRITE);
	return 0;
}

int body_commit(struct spool *sp, struct spool_msg *m, uint64_t off, const struct buf *b)
{
	int err = body_put(sp, m, off, b);
	if (!err && fdatasync(m->fd) != 0) {
		log_error("spool: cannot sync body/%s: %s", m->qid, strerror(errno));
		err = body_err(errno);
	}
	if (!err)
		sp->dir_needed = true;
	return err;
}

/* Before the COMMIT of a transaction that adds a message with a body file:
 * make the names of new body files durable, one fsync of body/ for them
 * all (a file's fdatasync does not cover its directory entry, fsync(2)). */
int body_dir_sync(struct spool *sp)
{
	if (sp->dir_needed && sp->dir_dirty) {
		if (fsync(sp->body_dir) != 0) {
			log_error("spool: cannot sync the body directory: %s", strerror(errno));
			return EIO;
		}
		sp->dir_dirty = false;
	}
	return 0;
}

/* The body file of a message that will never be committed (given up, or
 * its commit failed: a 452 or 451): no row refers to it, so it goes at
 * once rather than at the next start. */
void body_discard(struct spool *sp, struct spool_msg *m)
{
	if (m->file && unlinkat(sp->body_dir, m->qid, 0) != 0 && errno != ENOENT)
		log_warn("spool: cannot remove body/%s: %s", m->qid, strerror(errno));
}

/* Hand the body files of messages deleted by committed operations to the
 * reaper thread: unlinking a large file frees its blocks (and with a
 * "discard" mount, trims them), which took 1.4 ms per 1 MiB body here, time
 * the writer would otherwise not spend committing. A crash before the
 * unlink leaves an orphan for the next start. */
void body_unlink(struct spool *sp, struct spool_op *ops)
{
	pthread_mutex_lock(&sp->reap_mu);
	for (struct spool_op *op = ops; op; op = op->next) {
		if (!op->err && op->gone.len)
			buf_append(&sp->reap, op->gone.data, op->gone.len);
		buf_reset(&op->gone);
	}
	if (sp->reap.len)
		pthread_cond_signal(&sp->reap_cv);
	pthread_mutex_unlock(&sp->reap_mu);
}

void *body_reaper(void *arg)
{
	struct spool *sp = arg;
	struct buf names = BUF_INIT;
	pthread_mutex_lock(&sp->reap_mu);
	for (;;) {
		while (!sp->reap.len && !sp->reap_stop)
			pthread_cond_wait(&sp->reap_cv, &sp->reap_mu);
		if (!sp->reap.len)
			break;
		struct buf t = names;
		names = sp->reap;
		sp->reap = t;
		pthread_mutex_unlock(&sp->reap_mu);
		for (size_t i = 0; i < names.len; i += strlen(names.data + i) + 1)
			if (unlinkat(sp->body_dir, names.data + i, 0) != 0 && errno != ENOENT)
				log_warn("spool: cannot remove body/%s: %s", names.data + i, strerror(errno));
		buf_reset(&names);
		pthread_mutex_lock(&sp->reap_mu);
	}
	pthread_mutex_unlock(&sp->reap_mu);
	buf_free(&names);
	return NULL;
}

/* ---- the reserve ----
 *
 * spool_dir/reserve holds disk space that only delivery results may use:
 * when a batch of results fails for want of space, the writer deletes the
 * file and tries the batch again, so that deliveries already made are
 * recorded (and not made again) while new mail is refused with 452. The
 * file is made again before a batch once the disk has twice its size free.
 * Its blocks are allocated (posix_fallocate), not a sparse file. */

static bool body_reserve_room(struct spool *sp)
{
	struct statvfs v;
	return fstatvfs(sp->dir, &v) == 0 && (uint64_t)v.f_bavail * v.f_frsize >= 2 * sp->reserve;
}

/* Make the file (reserve_mu held): kept from an earlier run, or new when
 * there is room. */
static void body_reserve_make(struct spool *sp)
{
	struct stat st;
	bool there = fstatat(sp->dir, "reserve", &st, 0) == 0 &&
	             (uint64_t)st.st_blocks * 512 >= sp->reserve;
	if (!there && !body_reserve_room(sp))
		return;
	int fd = openat(sp->dir, "reserve", O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	int err = fd < 0 ? errno : posix_fallocate(fd, 0, (off_t)sp->reserve);
	if (!err && ftruncate(fd, (off_t)sp->reserve) != 0)
		err = errno;
	if (fd >= 0)
		close(fd);
	if (err) {
		unlinkat(sp->dir, "reserve", 0);
		return;
	}
	sp->reserve_made = true;
	if (sp->reserve_used)
		log_info("spool: the reserve for delivery results is back (%llu KiB)",
		         (unsigned long long)(sp->reserve >> 10));
	sp->reserve_used = false;
}

/* Before a batch: make the reserve if it is missing and there is room. */
void body_reserve_keep(struct spool *sp)
{
	pthread_mutex_lock(&sp->reserve_mu);
	if (sp->reserve && !sp->reserve_made && sp->dir >= 0)
		body_reserve_make(sp);
	pthread_mutex_unlock(&sp->reserve_mu);
}

/* The disk is asked at most every SPOOL_ROOM_MS while it has plenty of
 * room (a statfs for every MAIL was a system call per message), and every
 * time once it is within twice the margin: a burst that fills the disk
 * between two looks is refused by the writes themselves (452 at the dot). */
#define SPOOL_ROOM_MS 100

static int64_t body_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool spool_has_room(struct spool *sp, uint64_t size)
{
	if (sp->dir < 0)
		return true;
	int64_t now = body_now_ms();
	pthread_mutex_lock(&sp->reserve_mu);
	uint64_t need = size + 4 * sp->reserve;
	bool fresh = sp->room_at_ms && now - sp->room_at_ms < SPOOL_ROOM_MS &&
	             sp->room_free / 2 >= need;
	uint64_t free_bytes = sp->room_free;
	pthread_mutex_unlock(&sp->reserve_mu);
	if (!fresh) {
		struct statvfs v;
		if (fstatvfs(sp->dir, &v) != 0)
			return true;   /* cannot tell: the writes will */
		free_bytes = (uint64_t)v.f_bavail * v.f_frsize;
		pthread_mutex_lock(&sp->reserve_mu);
		sp->room_free = free_bytes;
		sp->room_at_ms = now;
		pthread_mutex_unlock(&sp->reserve_mu);
	}
	return free_bytes >= need;
}

bool body_reserve_spent(struct spool *sp)
{
	pthread_mutex_lock(&sp->reserve_mu);
	bool spent = sp->reserve && sp->reserve_used && !sp->reserve_made;
	pthread_mutex_unlock(&sp->reserve_mu);
	return spent;
}

/* A batch of results failed for want of space: give it the reserve.
 * false when there is none to give. */
bool body_reserve_release(struct spool *sp)
{
	pthread_mutex_lock(&sp->reserve_mu);
	bool freed = sp->reserve_made && unlinkat(sp->dir, "reserve", 0) == 0;
	if (freed) {
		sp->reserve_made = false;
		sp->reserve_used = true;
		log_warn("spool: disk full: released the reserve (%llu KiB) for delivery results",
		         (unsigned long long)(sp->reserve >> 10));
	}
	pthread_mutex_unlock(&sp->reserve_mu);
	return freed;
}

void spool_set_reserve(struct spool *sp, uint64_t bytes)
{
	pthread_mutex_lock(&sp->reserve_mu);
	sp->reserve = bytes;
	sp->reserve_made = false;
	if (sp->dir >= 0 && !bytes)
		unlinkat(sp->dir, "reserve", 0);   /* one from an earlier run */
	else if (sp->dir >= 0)
		body_reserve_make(sp);
	if (bytes && !sp->reserve_made)
		log_warn("spool: no room for the reserve (%llu KiB) yet",
		         (unsigned long long)(bytes >> 10));
	pthread_mutex_unlock(&sp->reserve_mu);
}
