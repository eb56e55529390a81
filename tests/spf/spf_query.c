/* spf-query: SPF checks (RFC 7208) through tern's own evaluator and
 * resolver (policy/spf_check.c on net/dns.c), for the tests that hold
 * them against the RFC 7208 test suite and pyspf with a real unbound.
 *
 *   spf-query [-t SECONDS] RESOLVER < checks
 *
 * RESOLVER is "IP@port" (or "" for /etc/resolv.conf). Each input line is
 * "ID<TAB>IP<TAB>SENDER<TAB>HELO" (SENDER empty: the HELO identity); all
 * run at once on one loop, and each prints one line as it ends:
 * "ID<TAB>result<TAB>mechanism<TAB>explanation<TAB>problem". Not
 * installed: a test helper. */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/util.h"
#include "net/dns.h"
#include "policy/spf_check.h"

struct query {
	char *id;
	unsigned *left;
	struct event_base *base;
};

static void query_done(void *ctx, const struct spf_outcome *o)
{
	struct query *q = ctx;
	printf("%s\t%s\t%s\t%s\t%s\n", q->id, spf_result_name(o->result), o->mechanism,
	       o->explanation, o->problem);
	fflush(stdout);
	if (--*q->left == 0)
		event_base_loopexit(q->base, NULL);
	free(q->id);
	free(q);
}

/* One input line into its fields (in place); false when malformed. */
static bool query_fields(char *line, char *f[4])
{
	line[strcspn(line, "\r\n")] = '\0';
	for (int i = 0; i < 4; i++) {
		f[i] = line;
		line += strcspn(line, "\t");
		if (i < 3 && !*line)
			return false;
		if (*line)
			*line++ = '\0';
	}
	return true;
}

int main(int argc, char **argv)
{
	unsigned timeout = 20;
	int opt;
	while ((opt = getopt(argc, argv, "t:")) != -1)
		timeout = (unsigned)atoi(optarg);
	if (optind + 1 != argc || timeout == 0) {
		fprintf(stderr, "usage: spf-query [-t SECONDS] RESOLVER < checks\n");
		return 2;
	}
	log_set_level(LOG_ERROR);
	struct event_base *base = event_base_new();
	struct dns *dns = dns_new(base, argv[optind]);
	struct spf_checker *k = spf_check_new(base, dns);
	unsigned left = 1;   /* held until the input ends */
	char line[4096];
	while (fgets(line, sizeof line, stdin)) {
		char *f[4];
		if (!query_fields(line, f)) {
			fprintf(stderr, "spf-query: bad line: %s\n", line);
			continue;
		}
		struct query *q = util_xcalloc(1, sizeof *q);
		*q = (struct query){ util_xstrdup(f[0]), &left, base };
		left++;
		struct spf_request req = { f[1], f[2], f[3], "receiver.example", (int64_t)time(NULL) };
		spf_check_start(k, &req, timeout, query_done, q);
	}
	if (--left > 0)
		event_base_dispatch(base);
	spf_check_free(k);
	dns_free(dns);
	event_base_free(base);
	return 0;
}
