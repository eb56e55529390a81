/* util: small helpers shared by the daemon: dates, queue ids, directories,
 * durable file writes, string case. */
#ifndef TERN_UTIL_H
#define TERN_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/time.h>
#include <time.h>

#define UTIL_QID_LEN 16  /* upper-case hex digits */

/* RFC 5322 3.3 date-time, e.g. "Sat, 21 Nov 2026 11:22:33 +0000". */
void util_rfc5322_date(time_t t, char *out, size_t n);
/* "2026-12-01T18:20:10.495Z" (UTC, milliseconds): the log's and the
 * control socket's time stamps. out holds UTIL_ISO_TIME_LEN + 1. */
#define UTIL_ISO_TIME_LEN 24
void util_iso_time(const struct timeval *tv, char out[UTIL_ISO_TIME_LEN + 1]);
/* Unix seconds as RFC 3339 in UTC to the second: "2026-12-02T05:28:56Z". */
#define UTIL_RFC3339_LEN 20
void util_rfc3339(int64_t t, char out[UTIL_RFC3339_LEN + 1]);

/* A new queue id: 16 upper-case hex digits, unique within this host
 * (36 bits of seconds, 20 of microseconds, an 8-bit counter): ids sort by
 * arrival. Thread-safe. */
void util_qid(char out[UTIL_QID_LEN + 1]);

/* mkdir -p with mode (the parents it makes: mode and search for all, so
 * that another user can reach the last one); true when the directory
 * exists afterwards. */
bool util_mkdir_p(const char *path, unsigned mode);

/* fsync a directory so a rename or create in it is durable. */
bool util_fsync_dir(const char *path);

/* Write all of p, retrying on EINTR and short writes. */
bool util_write_all(int fd, const void *p, size_t n);

void util_lower(char *s);
/* Trim spaces and tabs at both ends in place; returns s. */
char *util_trim(char *s);

/* Read a configuration-like file line by line, for conf, aliases, the
 * transport map and the users file. Each line is trimmed; empty lines and
 * lines starting with '#' are skipped; with UTIL_LINES_COMMENTS a '#'
 * anywhere starts a comment (not for password files, where '#' may be
 * data); with UTIL_LINES_SECRET the read buffer is wiped afterwards.
 * fn gets the line and its origin "FILE:LINE" and returns the problems it
 * found (printed by itself). Returns their sum, or 1 when the file cannot
 * be opened ("FILE: cannot open WHAT: reason"). */
enum { UTIL_LINES_COMMENTS = 1, UTIL_LINES_SECRET = 2 };
int util_each_line(const char *path, const char *what, unsigned flags,
                   int (*fn)(void *ctx, char *line, const char *origin), void *ctx);

/* strdup that aborts when memory runs out (a bug-level condition here);
 * NULL copies as "". */
char *util_xstrdup(const char *s);
/* At most n octets of s, NUL-terminated. */
char *util_xstrndup(const char *s, size_t n);

/* calloc and realloc (n elements of size octets, overflow checked) that
 * log_panic when memory runs out: callers never see NULL. */
void *util_xcalloc(size_t n, size_t size);
void *util_xrealloc(void *p, size_t n, size_t size);

/* Split "host:port" or "[v6]:port" (port 1..65535) into host (room for n)
 * and port; false when malformed. The one parser for relayhost,
 * lmtp_host and transport_map targets, at start-up and at delivery. */
bool util_hostport(const char *s, char *host, size_t n, unsigned *port);

/* The address of an IPv4 or IPv6 socket address as text into out (n
 * octets, INET6_ADDRSTRLEN is enough); "" for any other family. */
struct sockaddr_storage;
void util_ip_text(const struct sockaddr_storage *ss, char *out, size_t n);
/* The local address of socket fd as text (util_ip_text); "" when fd is
 * negative or not bound to an IP address. */
void util_local_ip(int fd, char *out, size_t n);

/* The length of the well-formed UTF-8 sequence of a non-ASCII character at
 * p (before e), 0 when there is none: a stray continuation octet, a
 * truncated sequence, an overlong form, a surrogate, a value above
 * U+10FFFF (RFC 3629 4). */
size_t util_utf8_seq(const unsigned char *p, const unsigned char *e);

/* Monotonic clock in milliseconds. */
uint64_t util_now_ms(void);

#endif
