/* libFuzzer: SPF macro strings (policy/spf_macro.c). The first octet picks
 * a macro-string or an explain-string; a string found valid expands, and
 * as a domain-spec it becomes a name of at most 253 octets (RFC 7208
 * 7.3). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/log.h"
#include "policy/spf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int quiet;
	if (!quiet++)
		log_set_level(LOG_ERROR);
	char spec[2048];
	if (size < 1 || size >= sizeof spec)
		return 0;
	bool explain = data[0] & 1;
	memcpy(spec, data + 1, size - 1);
	spec[size - 1] = '\0';
	static const struct spf_vars v = {
		.s = "strong-bad@email.example.com", .l = "strong-bad", .o = "email.example.com",
		.d = "email.example.com", .i = "2.0.0.1.0.d.b.8.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.c.b.0.1",
		.p = "mx.example.org", .v = "ip6", .h = "mx.example.org", .c = "2001:db8::cb01",
		.r = "receiver.example", .t = "1700000000",
	};
	bool valid = spf_macro_valid(spec, explain);
	bool domain = spf_macro_domain_spec(spec);
	if (domain && !spf_macro_valid(spec, false))
		abort();   /* a domain-spec is a macro-string */
	if (valid && !explain && !spf_macro_valid(spec, true))
		abort();   /* and a macro-string an explain-string */
	(void)spf_macro_uses_p(spec);
	if (!valid)
		return 0;
	struct buf b = BUF_INIT;
	if (spf_macro_expand(spec, &v, &b) && b.len > SPF_EXPAND_MAX)
		abort();
	buf_free(&b);
	char name[SPF_NAME_MAX + 1];
	if (spf_macro_domain(spec, &v, name) && strlen(name) > SPF_NAME_MAX)
		abort();
	return 0;
}
