/* libFuzzer: milter replies as the client reads them (milter/proto.c):
 * packets framed one after the other from the input, each decoded. A
 * frame never reaches past the input; a decoded reply's strings lie
 * inside its packet and end there with their NUL; a REPLYCODE has a code
 * of 4xx or 5xx; a prefix of a whole packet always asks for more. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "milter/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* s is NULL, or a NUL-ended string within [p, p + n). */
static void check_str(const char *s, const unsigned char *p, size_t n)
{
	if (!s)
		return;
	const unsigned char *u = (const unsigned char *)s;
	if (u < p || u >= p + n || !memchr(u, '\0', (size_t)(p + n - u)))
		abort();
}

static void check_reply(char cmd, const unsigned char *d, size_t len)
{
	struct milter_reply r;
	if (!milter_decode(cmd, d, len, &r))
		return;
	if (r.cmd != cmd)
		abort();
	check_str(r.s1, d, len);
	check_str(r.s2, d, len);
	if (cmd == MILTER_R_REPLYCODE && (r.code < 400 || r.code > 599))
		abort();
	if (cmd == MILTER_R_REPLBODY && (r.body != d || r.body_len != len))
		abort();
	if (milter_reply_name(cmd)[0] == '\0')
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t at = 0;
	while (at < size) {
		char cmd;
		const unsigned char *d;
		size_t len, used;
		enum milter_frame f = milter_frame(data + at, size - at, &cmd, &d, &len, &used);
		if (f != MILTER_FRAME_OK)
			break;
		if (used < 5 || used > size - at || d != data + at + 5 || len != used - 5)
			abort();
		for (size_t cut = 0; cut < used; cut += 1 + used / 8)   /* a prefix waits */
			if (milter_frame(data + at, cut, &cmd, &d, &len, &used) != MILTER_FRAME_MORE)
				abort();
		milter_frame(data + at, size - at, &cmd, &d, &len, &used);
		/* decode a copy of exactly the packet's data: nothing past it may be read */
		unsigned char *copy = malloc(len ? len : 1);
		if (!copy)
			abort();
		memcpy(copy, d, len);
		check_reply(cmd, copy, len);
		free(copy);
		at += used;
	}
	return 0;
}
