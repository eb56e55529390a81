/* query: Mailpit's search syntax, in part, as an SQLite FTS5 MATCH
 * expression (https://sqlite.org/fts5.html#full_text_query_syntax): free
 * words and "quoted phrases" anywhere, `subject:`, `from:`, `to:`
 * (addresses and names), `body:`; each term prefix-matched, all of them
 * required. Every term becomes an FTS5 string, its quotes doubled, so
 * nothing a user types is FTS5 syntax. Pure: a table test and a fuzzer. */
#include "http/query.h"

#include <string.h>
#include <strings.h>

/* One term as an FTS5 string, prefix-matched, in column col (NULL: any). */
static void query_term(struct buf *out, const char *col, const char *t, size_t n)
{
	if (out->len)
		buf_printf(out, " AND ");
	if (col)
		buf_printf(out, "%s : ", col);
	buf_append(out, "\"", 1);
	for (size_t i = 0; i < n; i++)
		buf_append(out, t[i] == '"' ? "\"\"" : &t[i], t[i] == '"' ? 2 : 1);
	buf_append(out, "\"*", 2);
}

bool query_fts(const char *q, struct buf *out)
{
	static const struct { const char *prefix, *col; } cols[] = {
		{ "subject:", "subject" }, { "from:", "addrs" }, { "to:", "addrs" },
		{ "addr:", "addrs" }, { "body:", "body" },
	};
	buf_reset(out);
	while (q && *q) {
		while (*q == ' ' || *q == '\t')
			q++;
		if (!*q)
			break;
		const char *col = NULL;
		for (size_t i = 0; i < sizeof cols / sizeof cols[0]; i++)
			if (!strncasecmp(q, cols[i].prefix, strlen(cols[i].prefix))) {
				col = cols[i].col;
				q += strlen(cols[i].prefix);
				break;
			}
		const char *t = q;
		size_t n;
		if (*q == '"') {
			t = ++q;
			n = strcspn(q, "\"");
			q += n + (q[n] == '"');
		} else {
			n = strcspn(q, " \t");
			q += n;
		}
		if (n)
			query_term(out, col, t, n);
	}
	return out->len > 0;
}
