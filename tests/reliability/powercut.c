/* powercut.so: an LD_PRELOAD recorder of what a process writes under one
 * directory, so that the test can rebuild that directory as it would be on
 * disk after a power cut at any moment (tests/reliability/powercut.py).
 *
 *   LD_PRELOAD=build/powercut.so POWERCUT_DIR=/abs/spool POWERCUT_LOG=/abs/journal ternd ...
 *
 * Every call that changes a file or a name under POWERCUT_DIR is appended
 * to the journal, in one total order (a mutex), with a CLOCK_MONOTONIC
 * stamp: opens (with the inode, and whether it is a directory), writes and
 * pwrites with their bytes and offsets, truncations and allocations,
 * renames, unlinks, mkdirs, closes, and each fsync/fdatasync twice: once
 * before the call (its start) and once after (its end, with the result).
 * A write is journaled after it returns, an fsync's end before it returns
 * to the caller: so whatever the caller does after an fsync (a 250) comes
 * after the fsync's end record, and a write journaled before an fsync's
 * start was complete when the fsync began. The journal is written with
 * one write(2) per record, unbuffered: a kill -9 loses nothing recorded.
 *
 * Record: struct rec (little endian, 48 bytes), then `plen` bytes of
 * payload (a path; two NUL-separated paths for a rename; the bytes of a
 * write). The model that turns this into a directory is powercut.py's.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

enum { PC_OPEN = 1, PC_CLOSE, PC_WRITE, PC_TRUNC, PC_ALLOC, PC_SYNC_BEGIN, PC_SYNC_END,
       PC_RENAME, PC_UNLINK, PC_MKDIR };

struct rec {
	uint32_t plen;     /* payload bytes after the record */
	uint32_t type;
	int64_t t_ns;      /* CLOCK_MONOTONIC */
	int32_t fd;
	int32_t arg;       /* OPEN: 1 for a directory; SYNC_END: the result (0 or errno) */
	uint64_t ino;      /* OPEN, MKDIR */
	int64_t off;       /* WRITE: offset; TRUNC: length; ALLOC: offset */
	int64_t len;       /* ALLOC: length; OPEN: flags */
};

#define MAXFD 65536
static unsigned char tracked[MAXFD];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int logfd = -1;
static char dir[PATH_MAX];
static size_t dirlen;

#define REAL(ret, name, ...) \
	static ret (*real_##name)(__VA_ARGS__); \
	if (!real_##name) real_##name = (ret (*)(__VA_ARGS__))dlsym(RTLD_NEXT, #name)

__attribute__((constructor)) static void pc_init(void)
{
	const char *d = getenv("POWERCUT_DIR"), *l = getenv("POWERCUT_LOG");
	if (!d || !l || !realpath(d, dir)) {
		return;
	}
	dirlen = strlen(dir);
	logfd = (int)syscall(SYS_openat, AT_FDCWD, l, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (logfd < 0) {
		fprintf(stderr, "powercut: cannot open %s\n", l);
		abort();
	}
}

static void pc_log(struct rec *r, const void *p1, size_t n1, const void *p2, size_t n2)
{
	struct timespec ts;
	struct iovec iov[3] = { { r, sizeof *r }, { (void *)p1, n1 }, { (void *)p2, n2 } };
	size_t want = sizeof *r + n1 + n2;
	r->plen = (uint32_t)(n1 + n2);
	pthread_mutex_lock(&mu);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	r->t_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
	ssize_t w = syscall(SYS_writev, logfd, iov, 3);
	pthread_mutex_unlock(&mu);
	if (w != (ssize_t)want) {
		static const char m[] = "powercut: short journal write\n";
		syscall(SYS_write, 2, m, sizeof m - 1);
		abort();
	}
}

/* The absolute form of (dirfd, path), and whether it lies under dir. */
static int pc_path(int dirfd, const char *path, char *out)
{
	char base[PATH_MAX];
	if (logfd < 0 || !path) {
		return 0;
	}
	if (path[0] == '/') {
		snprintf(out, PATH_MAX, "%s", path);
	} else {
		if (dirfd == AT_FDCWD) {
			if (!getcwd(base, sizeof base)) return 0;
		} else {
			char link[64];
			snprintf(link, sizeof link, "/proc/self/fd/%d", dirfd);
			ssize_t n = readlink(link, base, sizeof base - 1);
			if (n < 0) return 0;
			base[n] = 0;
		}
		if (snprintf(out, PATH_MAX, "%s/%s", base, path) >= PATH_MAX) return 0;
	}
	return !strncmp(out, dir, dirlen) && (out[dirlen] == '/' || out[dirlen] == 0);
}

static void pc_opened(int fd, const char *abs, int flags)
{
	struct stat st;
	if (fd < 0 || fd >= MAXFD || fstat(fd, &st) != 0) {
		return;
	}
	struct rec r = { .type = PC_OPEN, .fd = fd, .arg = S_ISDIR(st.st_mode), .ino = st.st_ino,
	                 .len = flags };
	tracked[fd] = 1;
	pc_log(&r, abs, strlen(abs), NULL, 0);
}

static int pc_tracked(int fd)
{
	return logfd >= 0 && fd >= 0 && fd < MAXFD && tracked[fd];
}

static void pc_wrote(int fd, const void *buf, ssize_t n, off_t off)
{
	if (n <= 0 || !pc_tracked(fd)) return;
	struct rec r = { .type = PC_WRITE, .fd = fd, .off = off };
	pc_log(&r, buf, (size_t)n, NULL, 0);
}

static int pc_openat(int dirfd, const char *path, int flags, mode_t mode)
{
	REAL(int, openat, int, const char *, int, ...);
	char abs[PATH_MAX];
	int fd = real_openat(dirfd, path, flags, mode);
	if (fd >= 0 && pc_path(dirfd, path, abs)) pc_opened(fd, abs, flags);
	return fd;
}

static mode_t pc_mode(int flags, va_list ap)
{
	return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? (mode_t)va_arg(ap, int) : 0;
}

int open(const char *path, int flags, ...)
{
	va_list ap; va_start(ap, flags); mode_t m = pc_mode(flags, ap); va_end(ap);
	return pc_openat(AT_FDCWD, path, flags, m);
}
int open64(const char *path, int flags, ...)
{
	va_list ap; va_start(ap, flags); mode_t m = pc_mode(flags, ap); va_end(ap);
	return pc_openat(AT_FDCWD, path, flags, m);
}
int openat(int d, const char *path, int flags, ...)
{
	va_list ap; va_start(ap, flags); mode_t m = pc_mode(flags, ap); va_end(ap);
	return pc_openat(d, path, flags, m);
}
int openat64(int d, const char *path, int flags, ...)
{
	va_list ap; va_start(ap, flags); mode_t m = pc_mode(flags, ap); va_end(ap);
	return pc_openat(d, path, flags, m);
}
int creat(const char *path, mode_t m) { return pc_openat(AT_FDCWD, path, O_WRONLY | O_CREAT | O_TRUNC, m); }
int creat64(const char *path, mode_t m) { return pc_openat(AT_FDCWD, path, O_WRONLY | O_CREAT | O_TRUNC, m); }

int close(int fd)
{
	REAL(int, close, int);
	if (pc_tracked(fd)) {
		/* journaled first: once closed, the number may be another file's */
		struct rec r = { .type = PC_CLOSE, .fd = fd };
		tracked[fd] = 0;
		pc_log(&r, NULL, 0, NULL, 0);
	}
	return real_close(fd);
}

ssize_t write(int fd, const void *buf, size_t n)
{
	REAL(ssize_t, write, int, const void *, size_t);
	ssize_t w = real_write(fd, buf, n);
	if (w > 0 && pc_tracked(fd)) pc_wrote(fd, buf, w, lseek(fd, 0, SEEK_CUR) - w);
	return w;
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
	REAL(ssize_t, pwrite, int, const void *, size_t, off_t);
	ssize_t w = real_pwrite(fd, buf, n, off);
	pc_wrote(fd, buf, w, off);
	return w;
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off)
{
	REAL(ssize_t, pwrite64, int, const void *, size_t, off_t);
	ssize_t w = real_pwrite64(fd, buf, n, off);
	pc_wrote(fd, buf, w, off);
	return w;
}

/* Vectored writes: journaled piece by piece, at consecutive offsets. */
static void pc_wrotev(int fd, const struct iovec *iov, int cnt, ssize_t w, off_t off)
{
	for (int i = 0; i < cnt && w > 0; i++) {
		ssize_t n = (ssize_t)iov[i].iov_len < w ? (ssize_t)iov[i].iov_len : w;
		pc_wrote(fd, iov[i].iov_base, n, off);
		off += n;
		w -= n;
	}
}

ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
	REAL(ssize_t, writev, int, const struct iovec *, int);
	ssize_t w = real_writev(fd, iov, cnt);
	if (w > 0 && pc_tracked(fd)) pc_wrotev(fd, iov, cnt, w, lseek(fd, 0, SEEK_CUR) - w);
	return w;
}

ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
	REAL(ssize_t, pwritev, int, const struct iovec *, int, off_t);
	ssize_t w = real_pwritev(fd, iov, cnt, off);
	if (w > 0 && pc_tracked(fd)) pc_wrotev(fd, iov, cnt, w, off);
	return w;
}

ssize_t pwritev64(int fd, const struct iovec *iov, int cnt, off_t off)
{
	return pwritev(fd, iov, cnt, off);
}

static void pc_trunc(int fd, int rc, off_t len)
{
	if (rc == 0 && pc_tracked(fd)) {
		struct rec r = { .type = PC_TRUNC, .fd = fd, .off = len };
		pc_log(&r, NULL, 0, NULL, 0);
	}
}

int ftruncate(int fd, off_t len)
{
	REAL(int, ftruncate, int, off_t);
	int rc = real_ftruncate(fd, len);
	pc_trunc(fd, rc, len);
	return rc;
}

int ftruncate64(int fd, off_t len)
{
	REAL(int, ftruncate64, int, off_t);
	int rc = real_ftruncate64(fd, len);
	pc_trunc(fd, rc, len);
	return rc;
}

static void pc_alloc(int fd, int rc, off_t off, off_t len)
{
	if (rc == 0 && pc_tracked(fd)) {
		struct rec r = { .type = PC_ALLOC, .fd = fd, .off = off, .len = len };
		pc_log(&r, NULL, 0, NULL, 0);
	}
}

int posix_fallocate(int fd, off_t off, off_t len)
{
	REAL(int, posix_fallocate, int, off_t, off_t);
	int rc = real_posix_fallocate(fd, off, len);
	pc_alloc(fd, rc, off, len);
	return rc;
}

int posix_fallocate64(int fd, off_t off, off_t len)
{
	REAL(int, posix_fallocate64, int, off_t, off_t);
	int rc = real_posix_fallocate64(fd, off, len);
	pc_alloc(fd, rc, off, len);
	return rc;
}

int fallocate(int fd, int mode, off_t off, off_t len)
{
	REAL(int, fallocate, int, int, off_t, off_t);
	int rc = real_fallocate(fd, mode, off, len);
	if (mode == 0) pc_alloc(fd, rc, off, len);
	return rc;
}

static int pc_sync(int fd, int (*fn)(int))
{
	if (!pc_tracked(fd)) return fn(fd);
	struct rec b = { .type = PC_SYNC_BEGIN, .fd = fd };
	pc_log(&b, NULL, 0, NULL, 0);
	int rc = fn(fd);
	struct rec e = { .type = PC_SYNC_END, .fd = fd, .arg = rc == 0 ? 0 : errno };
	int saved = errno;
	pc_log(&e, NULL, 0, NULL, 0);
	errno = saved;
	return rc;
}

int fsync(int fd)
{
	REAL(int, fsync, int);
	return pc_sync(fd, real_fsync);
}

int fdatasync(int fd)
{
	REAL(int, fdatasync, int);
	return pc_sync(fd, real_fdatasync);
}

static void pc_named(int type, int rc, int d1, const char *p1, int d2, const char *p2)
{
	char a[PATH_MAX], b[PATH_MAX];
	if (rc != 0) return;
	int in1 = pc_path(d1, p1, a), in2 = p2 ? pc_path(d2, p2, b) : 0;
	if (!in1 && !in2) return;
	struct rec r = { .type = (uint32_t)type };
	if (type == PC_MKDIR) {
		struct stat st;
		if (stat(a, &st) == 0) r.ino = st.st_ino;
	}
	if (p2) {
		/* into or out of the directory: the outside path is empty */
		pc_log(&r, in1 ? a : "", strlen(in1 ? a : "") + 1, in2 ? b : "", strlen(in2 ? b : ""));
	} else {
		pc_log(&r, a, strlen(a), NULL, 0);
	}
}

int rename(const char *o, const char *n)
{
	REAL(int, rename, const char *, const char *);
	int rc = real_rename(o, n);
	pc_named(PC_RENAME, rc, AT_FDCWD, o, AT_FDCWD, n);
	return rc;
}

int renameat(int od, const char *o, int nd, const char *n)
{
	REAL(int, renameat, int, const char *, int, const char *);
	int rc = real_renameat(od, o, nd, n);
	pc_named(PC_RENAME, rc, od, o, nd, n);
	return rc;
}

int renameat2(int od, const char *o, int nd, const char *n, unsigned flags)
{
	REAL(int, renameat2, int, const char *, int, const char *, unsigned);
	int rc = real_renameat2(od, o, nd, n, flags);
	pc_named(PC_RENAME, rc, od, o, nd, n);
	return rc;
}

int unlink(const char *p)
{
	REAL(int, unlink, const char *);
	int rc = real_unlink(p);
	pc_named(PC_UNLINK, rc, AT_FDCWD, p, 0, NULL);
	return rc;
}

int unlinkat(int d, const char *p, int flags)
{
	REAL(int, unlinkat, int, const char *, int);
	int rc = real_unlinkat(d, p, flags);
	pc_named(PC_UNLINK, rc, d, p, 0, NULL);
	return rc;
}

int rmdir(const char *p)
{
	REAL(int, rmdir, const char *);
	int rc = real_rmdir(p);
	pc_named(PC_UNLINK, rc, AT_FDCWD, p, 0, NULL);
	return rc;
}

int mkdir(const char *p, mode_t m)
{
	REAL(int, mkdir, const char *, mode_t);
	int rc = real_mkdir(p, m);
	pc_named(PC_MKDIR, rc, AT_FDCWD, p, 0, NULL);
	return rc;
}

int mkdirat(int d, const char *p, mode_t m)
{
	REAL(int, mkdirat, int, const char *, mode_t);
	int rc = real_mkdirat(d, p, m);
	pc_named(PC_MKDIR, rc, d, p, 0, NULL);
	return rc;
}
