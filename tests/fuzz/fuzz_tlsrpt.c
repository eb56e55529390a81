/* libFuzzer: the TLS-RPT TXT record (net/tlsrpt.c, RFC 8460 3). A record
 * accepted has 1 to TLSRPT_RUA_MAX URIs, each a NUL-terminated string
 * within its buffer: an https:// URI, or a mailto: address with an @ and
 * no space. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "net/tlsrpt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy = malloc(size + 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	copy[size] = '\0';
	struct tlsrpt_rua rua;
	if (tlsrpt_txt(copy, size, &rua)) {
		if (rua.n == 0 || rua.n > TLSRPT_RUA_MAX)
			abort();
		for (size_t i = 0; i < rua.n; i++) {
			const char *u = rua.v[i].uri;
			size_t n = strnlen(u, sizeof rua.v[i].uri);
			if (n == 0 || n == sizeof rua.v[i].uri || strchr(u, ' '))
				abort();
			if (rua.v[i].https ? strncasecmp(u, "https://", 8) != 0 : !strchr(u, '@'))
				abort();
		}
	}
	char host[256];
	unsigned port;
	const char *path;
	if (tlsrpt_https_split(copy, host, sizeof host, &port, &path) &&
	    (!*host || port == 0 || port > 65535 || (*path && *path != '/') ||
	     path < copy || path > copy + size))
		abort();
	free(copy);
	return 0;
}
