/* spool/reader: read-only access to the spool, for the delivery thread
 * (and the operator's queries). Each reader has its own SQLite connection
 * and is used by one thread; WAL lets readers read while the writer
 * (spool.h) commits, and they see only committed messages.
 */
#ifndef TERN_SPOOL_READER_H
#define TERN_SPOOL_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "lib/util.h"
#include "spool/spool.h"

struct spool_reader;
/* A reader of spool_dir (queue.db and body/), made by spool_open; NULL,
 * and why logged, on failure. */
struct spool_reader *spool_reader_open(const char *dir);
void spool_reader_close(struct spool_reader *r);
/* Where a paged look for due recipients stopped: the last row read, in
 * (next_try, rowid) order; SPOOL_CURSOR_START before the first. */
struct spool_cursor {
	int64_t next_try, rowid;
};
#define SPOOL_CURSOR_START ((struct spool_cursor){ -1, 0 })
/* Up to max queue ids with a recipient due at or before now, from the rows
 * after *cur on; *cur moves past the rows read. *more: max rows were read,
 * there may be more after *cur; false: the end was reached. With max 0
 * nothing is read and *more is set. */
size_t spool_reader_due(struct spool_reader *r, int64_t now, struct spool_cursor *cur,
                        char (*qids)[UTIL_QID_LEN + 1], size_t max, bool *more);
/* The earliest next_try after now of any pending recipient, or -1. */
int64_t spool_reader_next_due(struct spool_reader *r, int64_t now);
/* Load a message's envelope with all its recipients. 0 or an errno. */
int spool_reader_env(struct spool_reader *r, const char *qid, struct spool_env *env);
/* Stream the body of a message (env from spool_reader_env) in order to
 * fn; stops when fn returns false. Returns 0 or an errno. */
int spool_reader_body(struct spool_reader *r, const struct spool_env *env,
                      bool (*fn)(void *ctx, const void *p, size_t n), void *ctx);
/* Read piece number seq of a message's body into out (replacing its
 * contents). Returns 0, ENOENT after the last piece, or an errno. */
int spool_reader_chunk(struct spool_reader *r, const struct spool_env *env, unsigned seq,
                       struct buf *out);
/* A message's body file, opened for reading (the caller closes it); its
 * size in *size. -1 with errno set when the body is not in a file. */
int spool_reader_body_fd(struct spool_reader *r, const struct spool_env *env, uint64_t *size);
/* Number of messages in the queue. */
long spool_reader_count(struct spool_reader *r);

#endif
