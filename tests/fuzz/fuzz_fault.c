/* libFuzzer: the fault rules' parser (policy/fault.c) on a whole text,
 * then the matcher at every stage on facts drawn from the same bytes. A
 * text refused adds nothing; a rule taken keeps its line and origin. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/fault.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *fuzz_fault_header(void *ctx, const char *name, size_t nth, size_t *len)
{
	const char *text = ctx;
	(void)name;
	if (nth > 0)
		return NULL;
	*len = strlen(text) < 40 ? strlen(text) : 40;
	return text;
}

static unsigned fuzz_fault_rate(void *ctx, enum fault_stage st)
{
	return (unsigned)strlen(ctx) + (unsigned)st;
}

static void fuzz_fault_match(struct fault_rules *r, char *text)
{
	const char *rcpts[] = { "user+t1@x.test", text };
	struct fault_facts f = {
		.addr = text, .sender = "s@x.test", .rcpts = rcpts, .nrcpt = 2,
		.listener = "127.0.0.1:2525", .user = "bob", .has_size = true, .size = strlen(text),
		.header = fuzz_fault_header, .rate = fuzz_fault_rate, .ctx = text, .random = 0.5,
	};
	for (int st = FAULT_CONNECT; st <= FAULT_ANY; st++) {
		f.stage = (enum fault_stage)st;
		const struct fault_rule *hit = fault_match(r, &f);
		if (hit && hit->stage != f.stage && hit->stage != FAULT_ANY)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 16384)
		return 0;
	char *text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	struct fault_rules r;
	fault_rules_init(&r);
	char err[512];
	if (!fault_parse_text(&r, "rcpt close\n", "seed", err, sizeof err))
		abort();
	bool ok = fault_parse_text(&r, text, "fuzz", err, sizeof err);
	if (!ok && r.n != 1)
		abort();
	if (!ok && strncmp(err, "fuzz:", 5))
		abort();
	for (const struct fault_rule *f = r.head; f; f = f->next)
		if (!f->line || !*f->line || !f->origin[0])
			abort();
	fuzz_fault_match(&r, text);
	fault_rules_free(&r);
	free(text);
	return 0;
}
