/* libFuzzer: the command line parser (parse_command, parse_keyword_colon,
 * parse_bdat). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtpd/parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *line = malloc(size + 1);
	if (!line)
		return 0;
	memcpy(line, data, size);
	line[size] = '\0';
	struct parse_cmd pc;
	if (parse_command(line, &pc)) {
		if (strlen(pc.verb) > PARSE_VERB_MAX)
			abort();
		(void)parse_keyword_colon(pc.args, "FROM");
		(void)parse_keyword_colon(pc.args, "TO");
		uint64_t n;
		bool last;
		if (parse_bdat(pc.args, &n, &last) && n > PARSE_BDAT_MAX)
			abort();
	}
	free(line);
	return 0;
}
