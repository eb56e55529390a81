/* query: the test mode's search syntax into an FTS5 query (query.c). */
#ifndef TERN_QUERY_H
#define TERN_QUERY_H

#include <stdbool.h>

#include "lib/buf.h"

/* q as an FTS5 MATCH expression over the columns subject, addrs and body
 * (into out, replacing it); false when q holds nothing to search for. */
bool query_fts(const char *q, struct buf *out);

#endif
