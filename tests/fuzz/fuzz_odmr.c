/* libFuzzer: the odmr_map file's line parser (policy/odmr.c), line by
 * line as util_each_line hands them over. A line it takes grants its
 * first user its domain, in any case; a line it refuses changes nothing. */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/log.h"
#include "lib/util.h"
#include "policy/odmr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The domain and first user of a line the parser took. */
static void fuzz_odmr_check(const struct odmr_map *m, const char *line)
{
	size_t dlen = strcspn(line, " \t");
	char domain[512], user[512];
	if (dlen >= sizeof domain)
		abort();
	memcpy(domain, line, dlen);
	domain[dlen] = '\0';
	const char *u = line + dlen;
	while (isspace((unsigned char)*u) || *u == ',')
		u++;
	size_t ulen = 0;
	while (u[ulen] && u[ulen] != ',' && !isspace((unsigned char)u[ulen]))
		ulen++;
	if (ulen == 0 || ulen >= sizeof user)
		abort();
	memcpy(user, u, ulen);
	user[ulen] = '\0';
	for (char *p = domain; *p; p++)
		*p = (char)toupper((unsigned char)*p);
	if (!odmr_map_allows(m, user, domain))
		abort();
}

static void fuzz_odmr_line(struct odmr_map *m, char *line)
{
	line[strcspn(line, "#")] = '\0';
	char *t = util_trim(line);
	if (!*t)
		return;
	char *copy = strdup(t);
	size_t before = odmr_map_count(m);
	int bad = odmr_map_line(m, t, "fuzz:1");
	if (bad != (odmr_map_count(m) == before))
		abort();
	if (!bad)
		fuzz_odmr_check(m, copy);
	free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 8192)
		return 0;
	char *text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	struct buf problems = BUF_INIT;
	log_problems_collect(&problems);
	struct odmr_map *m = odmr_map_new();
	char *save = NULL;
	for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
		fuzz_odmr_line(m, l);
	const char *d[4];
	(void)odmr_map_domains(m, "kate@example.com", d, 4);
	odmr_map_free(m);
	log_problems_collect(NULL);
	buf_free(&problems);
	free(text);
	return 0;
}
