/* dkim-verify: tern's DKIM verifier (src/dkim/verify.c) as a program, for
 * the tests that bring messages signed by outside signers (dkimpy,
 * OpenDKIM): the message on standard input, the key records as
 * arguments "SELECTOR._domainkey.DOMAIN=RECORD" (the DNS the tests play),
 * the time with -t SECONDS (default now). One line per DKIM-Signature:
 *
 *   d=DOMAIN s=SELECTOR a=ALG result=WORD (TEXT)
 *
 * in the message's order; exit status 0 when every signature passed and
 * there was at least one, 1 otherwise, 2 on a usage error. Not installed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "dkim/dkim.h"
#include "dkim/verify.h"

/* The record given for name, or NULL (as NXDOMAIN). */
static const char *record_for(int argc, char **argv, const char *name)
{
	size_t len = strlen(name);
	for (int i = 0; i < argc; i++)
		if (!strncasecmp(argv[i], name, len) && argv[i][len] == '=')
			return argv[i] + len + 1;
	return NULL;
}

static enum dkim_status check_one(struct dkim_verify *v, size_t k, int argc, char **argv,
                                  int64_t now)
{
	const struct dkim_sig *sig;
	enum dkim_status st = dkim_verify_sig(v, k, &sig);
	char name[600];
	if (st == DKIM_OK) {
		snprintf(name, sizeof name, "%s._domainkey.%s", sig->s, sig->d);
		const char *rec = record_for(argc, argv, name);
		st = rec ? dkim_verify_check(v, k, rec, strlen(rec), now) : DKIM_KEY_NONE;
	}
	printf("d=%s s=%s a=%s result=%s (%s)\n", sig->d[0] ? sig->d : "?", sig->s[0] ? sig->s : "?",
	       dkim_alg_name(sig->alg), dkim_status_result(st), dkim_status_text(st));
	return st;
}

int main(int argc, char **argv)
{
	int64_t now = (int64_t)time(NULL);
	int opt;
	while ((opt = getopt(argc, argv, "t:")) != -1) {
		if (opt != 't') {
			fprintf(stderr, "usage: dkim-verify [-t SECONDS] [NAME=RECORD...] < MESSAGE\n");
			return 2;
		}
		now = strtoll(optarg, NULL, 10);
	}
	struct dkim_verify *v = dkim_verify_new();
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof chunk, stdin)) > 0)
		dkim_verify_feed(v, chunk, n);
	dkim_verify_end(v);
	int bad = dkim_verify_message(v) != DKIM_OK || dkim_verify_count(v) == 0;
	if (dkim_verify_message(v) != DKIM_OK)
		printf("message: %s\n", dkim_status_text(dkim_verify_message(v)));
	for (size_t k = 0; k < dkim_verify_count(v); k++)
		bad |= check_one(v, k, argc - optind, argv + optind, now) != DKIM_OK;
	dkim_verify_free(v);
	return bad;
}
