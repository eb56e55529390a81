/* libFuzzer: capture_rules' line parser (policy/capture.c) and the search
 * syntax (http/query.c). A line the parser takes and that names a route
 * puts a recipient somewhere or nowhere, never crashes; the query's FTS5
 * expression is balanced: every term an FTS5 string with its quotes
 * doubled, so the output has an even number of quote characters. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/query.h"
#include "lib/buf.h"
#include "lib/log.h"
#include "policy/capture.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int quiet;
	if (!quiet++)
		log_set_level(LOG_ERROR);
	char line[2048];
	if (size >= sizeof line)
		return 0;
	memcpy(line, data, size);
	line[size] = '\0';
	struct capture_rules *r = capture_rules_new();
	if (capture_rules_line(r, line, "fuzz:1") == 0) {
		struct capture_facts f = { "user@example.test", "app@sender.test", "user",
		                           "127.0.0.1:2525" };
		const char *inbox = capture_inbox(r, &f, true);
		if (!inbox || !capture_inbox_valid(inbox))
			abort();
		unsigned keep, age;
		capture_retention(r, inbox, 1, 2, &keep, &age);
	}
	capture_rules_free(r);
	struct buf b = BUF_INIT;
	if (query_fts(line, &b)) {
		size_t quotes = 0;
		for (size_t i = 0; i < b.len; i++)
			quotes += b.data[i] == '"';
		if (quotes % 2 || b.len == 0)
			abort();
	}
	buf_free(&b);
	return 0;
}
