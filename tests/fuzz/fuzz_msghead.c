/* libFuzzer: the header block scanner (lib/msghead.c). Fed in two pieces
 * split where the input says, the block rendered and the body together
 * are the input, octet for octet; edits never break that the block is
 * well formed fields. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/msghead.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void sink(void *ctx, const char *p, size_t n)
{
	buf_append(ctx, p, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t cut = data[0] % size;
	const char *in = (const char *)data + 1;
	size--;
	cut = cut < size ? cut : size;
	struct msghead h;
	struct buf head = BUF_INIT, body = BUF_INIT;
	msghead_init(&h, 1 << 20, sink, &body);
	msghead_feed(&h, in, cut);
	msghead_feed(&h, in + cut, size - cut);
	msghead_end(&h);
	msghead_render(&h, &head);
	buf_append(&head, body.data, body.len);
	if (head.len != size || (size && memcmp(head.data, in, size) != 0))
		abort();
	for (size_t k = 0; k < h.nf; k++) {
		size_t len;
		msghead_value(&h, k, &len);
		if (h.f[k].nlen == 0 || h.f[k].len < h.f[k].nlen + 1)
			abort();
	}
	/* a field's text (RFC 8689 5's TLS-Required) has no white space at its
	 * ends (a NUL, which the DATA parser refuses, cuts the C string) */
	char *t = msghead_text(&h, "TLS-Required");
	size_t tl = strlen(t);
	if (tl && !memchr(in, '\0', size) &&
	    (t[tl - 1] == ' ' || t[tl - 1] == '\t' || t[0] == ' ' || t[0] == '\t'))
		abort();
	free(t);
	if (h.nf) {
		msghead_change(&h, "Subject", 1, "x");
		msghead_insert(&h, 0, "A", "b\nc");
		msghead_remove(&h, h.nf - 1);
	}
	msghead_free(&h);
	buf_free(&head);
	buf_free(&body);
	return 0;
}
