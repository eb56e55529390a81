/* libFuzzer: JSON strings as lib/jsonw.c writes them. Whatever the bytes
 * (cut at the first NUL), the text must parse as one JSON string, and give
 * the bytes back when they were UTF-8 (jansson decides), or hold U+FFFD
 * when they were not. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "lib/jsonw.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = malloc(size + 1);
	if (!in)
		return 0;
	memcpy(in, data, size);
	in[size] = 0;
	struct buf b = BUF_INIT;
	jsonw_str(&b, in);
	json_t *v = json_loads(buf_cstr(&b), JSON_DECODE_ANY, NULL);
	if (!v || !json_is_string(v))
		abort();
	json_t *same = json_string(in);
	if (same ? strcmp(json_string_value(v), in) != 0
	         : !strstr(json_string_value(v), "\xef\xbf\xbd"))
		abort();
	json_decref(same);
	json_decref(v);
	buf_free(&b);
	free(in);
	return 0;
}
