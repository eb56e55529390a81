/* libFuzzer: PROXY protocol headers; a header found in a prefix is found
 * the same in the whole input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtpd/proxy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proxy_hdr h, h2;
	size_t used = 0, used2 = 0;
	enum proxy_status st = proxy_parse(data, size, &h, &used);
	if (st == PROXY_DONE) {
		if (used == 0 || used > size)
			abort();
		if (proxy_parse(data, used, &h2, &used2) != PROXY_DONE || used2 != used ||
		    h.has_addr != h2.has_addr)
			abort();
	}
	return 0;
}
