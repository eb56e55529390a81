/* libFuzzer: the configuration parser and its cross-key checks. */
#include <stdint.h>
#include <stdlib.h>

#include "lib/conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct conf c;
	conf_defaults(&c);
	(void)conf_load_string(&c, (const char *)data, size, "fuzz");
	(void)conf_finish(&c);
	conf_free(&c);
	return 0;
}
