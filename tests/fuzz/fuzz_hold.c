/* libFuzzer: hold_recipients_file's line parser and the domain matcher
 * (policy/hold.c). A line it takes lets its own address through; a line
 * it refuses changes nothing; a domain is always under itself. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/util.h"
#include "policy/hold.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int quiet;
	if (!quiet++)
		log_set_level(LOG_ERROR);
	char line[1024];
	if (size >= sizeof line)
		return 0;
	memcpy(line, data, size);
	line[size] = '\0';
	if (strpbrk(line, "\r\n"))
		return 0;
	char copy[1024];
	memcpy(copy, line, size + 1);
	struct hold_rcpts *h = hold_rcpts_new();
	if (hold_rcpts_line(h, line, "fuzz:1") == 0) {
		const char *at = strrchr(copy, '@');
		if (!at)
			abort();
		char local[1024];
		memcpy(local, copy, (size_t)(at - copy));
		local[at - copy] = '\0';
		if (!hold_rcpts_allow(h, local[0] ? local : "anyone", at + 1))
			abort();
	}
	hold_rcpts_free(h);
	if (!hold_domain_under(copy, copy, false))
		abort();
	const char *dot = strchr(copy, '.');
	if (dot && dot != copy && dot[1] && !hold_domain_under(copy, dot + 1, true))
		abort();
	return 0;
}
