/* util: dates, queue ids, directories and durable writes (see util.h). */
#include "lib/util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "lib/log.h"

void util_rfc5322_date(time_t t, char *out, size_t n)
{
	static const char *const days[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char *const mons[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
	                                    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	struct tm tm;
	gmtime_r(&t, &tm);
	snprintf(out, n, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday],
	         tm.tm_mday, mons[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
	         tm.tm_sec);
}

void util_iso_time(const struct timeval *tv, char out[UTIL_ISO_TIME_LEN + 1])
{
	struct tm tm;
	gmtime_r(&tv->tv_sec, &tm);
	size_t n = strftime(out, UTIL_ISO_TIME_LEN + 1, "%Y-%m-%dT%H:%M:%S", &tm);
	if (n != 19) {   /* a year past 9999 */
		snprintf(out, UTIL_ISO_TIME_LEN + 1, "%s", "9999-12-31T23:59:59.999Z");
		return;
	}
	snprintf(out + n, UTIL_ISO_TIME_LEN + 1 - n, ".%03uZ", (unsigned)(tv->tv_usec / 1000) % 1000u);
}

void util_rfc3339(int64_t t, char out[UTIL_RFC3339_LEN + 1])
{
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	if (strftime(out, UTIL_RFC3339_LEN + 1, "%Y-%m-%dT%H:%M:%SZ", &tm) != UTIL_RFC3339_LEN)
		snprintf(out, UTIL_RFC3339_LEN + 1, "%s", "9999-12-31T23:59:59Z");   /* past 9999 */
}

void util_qid(char out[UTIL_QID_LEN + 1])
{
	static atomic_uint counter;
	struct timeval tv;
	gettimeofday(&tv, NULL);
	/* 36 bits of seconds, 20 of microseconds, 8 of counter: ids sort by
	 * arrival and 256 ids per microsecond stay unique. */
	uint64_t c = atomic_fetch_add(&counter, 1) & 0xff;
	uint64_t v = ((uint64_t)tv.tv_sec & 0xfffffffffULL) << 28 |
	             ((uint64_t)tv.tv_usec & 0xfffff) << 8 | c;
	snprintf(out, UTIL_QID_LEN + 1, "%016llX", (unsigned long long)v);
}

bool util_mkdir_p(const char *path, unsigned mode)
{
	char tmp[4096];
	size_t n = strlen(path);
	if (n == 0 || n >= sizeof tmp)
		return false;
	memcpy(tmp, path, n + 1);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		/* a parent it makes can be passed through (0711, whatever the
		 * umask): run_user must reach the directory below, which it owns */
		if (mkdir(tmp, mode) == 0)
			chmod(tmp, mode | 0111);
		else if (errno != EEXIST)
			return false;
		*p = '/';
	}
	if (mkdir(tmp, mode) != 0 && errno != EEXIST)
		return false;
	struct stat st;
	return stat(tmp, &st) == 0 && S_ISDIR(st.st_mode);
}

bool util_fsync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return false;
	bool ok = fsync(fd) == 0;
	close(fd);
	return ok;
}

bool util_write_all(int fd, const void *p, size_t n)
{
	const char *c = p;
	while (n > 0) {
		ssize_t w = write(fd, c, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		c += w;
		n -= (size_t)w;
	}
	return true;
}

void util_lower(char *s)
{
	for (; *s; s++)
		*s = (char)tolower((unsigned char)*s);
}

char *util_trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = strlen(s);
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' ||
	                 s[n - 1] == '\n'))
		s[--n] = '\0';
	return s;
}

int util_each_line(const char *path, const char *what, unsigned flags,
                   int (*fn)(void *ctx, char *line, const char *origin), void *ctx)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		log_problem("%s: cannot open %s: %s\n", path, what, strerror(errno));
		return 1;
	}
	char *line = NULL, origin[4200];
	size_t cap = 0;
	unsigned lineno = 0;
	int bad = 0;
	while (getline(&line, &cap, f) >= 0) {
		snprintf(origin, sizeof origin, "%s:%u", path, ++lineno);
		if (flags & UTIL_LINES_COMMENTS)
			line[strcspn(line, "#")] = '\0';
		char *t = util_trim(line);
		if (*t && *t != '#')
			bad += fn(ctx, t, origin);
	}
	if (line && (flags & UTIL_LINES_SECRET))
		explicit_bzero(line, cap);
	free(line);
	fclose(f);
	return bad;
}

char *util_xstrdup(const char *s)
{
	char *d = strdup(s ? s : "");
	if (!d)
		log_panic("out of memory copying a %zu-octet string", strlen(s ? s : ""));
	return d;
}

char *util_xstrndup(const char *s, size_t n)
{
	char *d = strndup(s, n);
	if (!d)
		log_panic("out of memory copying a %zu-octet string", n);
	return d;
}

void *util_xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (!p)
		log_panic("out of memory: calloc(%zu, %zu)", n, size);
	return p;
}

void *util_xrealloc(void *p, size_t n, size_t size)
{
	if (size && n > SIZE_MAX / size)
		log_panic("allocation overflow: %zu x %zu octets", n, size);
	size_t total = n * size;
	void *q = realloc(p, total > 0 ? total : 1);
	if (!q)
		log_panic("out of memory: realloc to %zu x %zu octets", n, size);
	return q;
}

void util_ip_text(const struct sockaddr_storage *ss, char *out, size_t n)
{
	const void *a = ss->ss_family == AF_INET ? (const void *)&((const struct sockaddr_in *)ss)->sin_addr :
	                ss->ss_family == AF_INET6 ? (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr :
	                NULL;
	if (n && (!a || !inet_ntop(ss->ss_family, a, out, (socklen_t)n)))
		out[0] = '\0';
}

void util_local_ip(int fd, char *out, size_t n)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	if (fd < 0 || getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
		ss.ss_family = AF_UNSPEC;
	util_ip_text(&ss, out, n);
}

bool util_hostport(const char *s, char *host, size_t n, unsigned *port)
{
	const char *colon = strrchr(s, ':');
	if (!colon || colon == s || !colon[1] || strspn(colon + 1, "0123456789") != strlen(colon + 1))
		return false;
	long p = strtol(colon + 1, NULL, 10);
	size_t len = (size_t)(colon - s);
	if (p < 1 || p > 65535)
		return false;
	if (s[0] == '[' && colon[-1] == ']') {  /* [2001:db8::1]:25 */
		s++;
		len -= 2;
	}
	if (len == 0 || len >= n)
		return false;
	memcpy(host, s, len);
	host[len] = '\0';
	*port = (unsigned)p;
	return true;
}

size_t util_utf8_seq(const unsigned char *p, const unsigned char *e)
{
	unsigned char c = p[0];
	size_t n;
	unsigned long v;

	if (c >= 0xc2 && c <= 0xdf)
		n = 2, v = c & 0x1fu;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3, v = c & 0x0fu;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4, v = c & 0x07u;
	else
		return 0;   /* 0x80..0xc1 (continuation, overlong lead), 0xf5.. */
	if ((size_t)(e - p) < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		v = v << 6 | (p[i] & 0x3fu);
	}
	if ((n == 3 && v < 0x800) || (n == 4 && (v < 0x10000 || v > 0x10ffff)) ||
	    (v >= 0xd800 && v <= 0xdfff))
		return 0;
	return n;
}

uint64_t util_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}
