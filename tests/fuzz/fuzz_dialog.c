/* libFuzzer: tern-probe conform's dialogue files (tools/probe/dialog.c).
 * Any input parses or is refused with a message naming why; a file that
 * parses has steps, each sent text expands within its limit, each reply
 * pattern matches or not without harm, and the printable form of the
 * input holds no control octet. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "tools/probe/dialog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_dialog_steps(const struct dialog *d)
{
	static const struct dialog_vars v = { "h.example", "a@h.example", "b@h.example" };
	for (int i = 0; i < d->nsteps; i++) {
		const struct dialog_step *st = &d->steps[i];
		if (st->kind == DIALOG_SEND || st->kind == DIALOG_RAW) {
			struct buf b = BUF_INIT;
			char err[160];
			if (dialog_expand(st->text, &v, &b, err, sizeof err) != 0 ||
			    b.len > DIALOG_EXPAND_MAX)
				abort();   /* the parser expanded it once already */
			buf_free(&b);
		} else if (st->kind == DIALOG_EXPECT) {
			dialog_match(&st->ex, 250, "250-x\n250 OK");
			if (st->ex.ncodes == 0 && !st->ex.or_closed)
				abort();
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 65536)
		return 0;
	struct dialog d;
	char err[200] = "";
	int rc = dialog_parse((const char *)data, size, &d, err, sizeof err);
	if (rc == 0 && d.nsteps == 0)
		abort();
	if (rc != 0 && err[0] == '\0')
		abort();
	if (rc == 0)
		fuzz_dialog_steps(&d);
	dialog_free(&d);
	struct buf b = BUF_INIT;
	dialog_show((const char *)data, size, 256, &b);
	for (size_t i = 0; i < b.len; i++)
		if ((unsigned char)b.data[i] < 0x20 || b.data[i] == 0x7f)
			abort();
	buf_free(&b);
	return 0;
}
