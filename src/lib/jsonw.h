/* jsonw: JSON text written straight into a buf (RFC 8259), for output made
 * of many small records: the queue listing (a line per message, a million
 * of them on a deep queue) and tern-probe's report.
 *
 * Replies of one object go through jansson. jansson has no streaming
 * writer, and building then freeing a tree for each of a million lines
 * was a third of the listing's CPU (docs/PERFORMANCE-QUEUE.md); yajl,
 * which has one, is unmaintained since 2014.
 */
#ifndef TERN_JSONW_H
#define TERN_JSONW_H

#include <stdint.h>

#include "lib/buf.h"

/* s as a JSON string, quotes included (RFC 8259 7): '"', '\\' and the
 * control characters escaped, UTF-8 kept as it is, and each byte that does
 * not begin a well-formed UTF-8 sequence (RFC 3629 4) written as U+FFFD, so
 * that the text is always valid for a strict reader. NULL writes null. */
void jsonw_str(struct buf *b, const char *s);

/* n in decimal. */
void jsonw_int(struct buf *b, int64_t n);

#endif
