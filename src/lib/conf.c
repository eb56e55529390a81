/* conf: the key table, defaults, file parsing and -o overrides (conf.h).
 *
 * Each key is one row: name, type, where it lives in struct conf, and its
 * default as text. Defaults go through the same parser as the file, so a
 * default can never be a value the file would refuse.
 */
#include "lib/conf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/addr.h"
#include "lib/buf.h"
#include "lib/idna.h"
#include "lib/log.h"
#include "lib/util.h"

enum conf_type { T_STR, T_LIST, T_DOMAINS, T_CIDRS, T_ADDRS, T_SIZE, T_UINT, T_DURATION,
                 T_BOOL, T_LOGLEVEL, T_LOGTARGET, T_TLS, T_DKIM_SIGN, T_SPF, T_DMARC,
                 T_MILTER_ACTION };

struct conf_key {
	const char *name;
	enum conf_type type;
	size_t off;
	const char *def;  /* NULL: derived in conf_finish */
	bool restart;     /* read at start only: a reload keeps the running value */
};

#define K(n, t, d) { #n, t, offsetof(struct conf, n), d, false }
/* What the process is built around (sockets bound as root, directories,
 * identity): a change needs a restart. */
#define R(n, t, d) { #n, t, offsetof(struct conf, n), d, true }
static const struct conf_key conf_keys[] = {
	R(hostname, T_STR, NULL),
	R(listen, T_LIST, "127.0.0.1:2525"),
	R(spool_dir, T_STR, "./var/spool"),
	R(mail_dir, T_STR, "./var/mail"),
	K(spool_reserve, T_SIZE, "256k"),
	K(local_domains, T_DOMAINS, NULL),
	K(relay_networks, T_CIDRS, ""),
	K(aliases_file, T_STR, ""),
	K(max_message_size, T_SIZE, "25M"),
	K(max_header_size, T_SIZE, "256k"),
	K(max_recipients, T_UINT, "100"),
	K(max_line_length, T_UINT, "998"),
	K(banner, T_STR, "tern ready"),
	K(postmaster_address, T_STR, NULL),
	K(vrfy_disclose, T_BOOL, "no"),
	R(queue_only, T_BOOL, "no"),
	K(command_timeout, T_DURATION, "5m"),
	K(data_timeout, T_DURATION, "10m"),
	K(retry_min, T_DURATION, "5m"),
	K(retry_max, T_DURATION, "1h"),
	K(log_level, T_LOGLEVEL, "info"),
	R(log_target, T_LOGTARGET, "stderr"),
	K(lmtp_domains, T_DOMAINS, ""),
	K(lmtp_host, T_STR, ""),
	R(dns_resolver, T_STR, ""),
	K(dns_timeout, T_DURATION, "20s"),
	R(dns_trust_anchor, T_STR, "/usr/share/dns/root.key"),
	K(transport_map, T_STR, ""),
	K(relayhost, T_STR, ""),
	K(relayhost_auth, T_STR, ""),
	K(smtp_tls, T_TLS, "may"),
	K(smtp_tls_ca_file, T_STR, ""),
	K(mta_sts, T_BOOL, "no"),
	R(tls_rpt, T_BOOL, "no"),
	K(tls_rpt_org, T_STR, ""),
	R(tls_rpt_interval, T_DURATION, "1d"),
	K(smtp_port, T_UINT, "25"),
	K(proxy_interfaces, T_ADDRS, ""),
	K(smtp_connect_timeout, T_DURATION, "30s"),
	K(smtp_timeout, T_DURATION, "5m"),
	K(smtp_chunking, T_BOOL, "yes"),
	K(destination_concurrency, T_UINT, "10"),
	K(destination_concurrency_adaptive, T_BOOL, "yes"),
	K(delay_warning, T_DURATION, "4h"),
	K(max_queue_lifetime, T_DURATION, "5d"),
	K(hold_domains, T_DOMAINS, ""),
	K(hold_recipients_file, T_STR, ""),
	K(hold_lifetime, T_DURATION, "10d"),
	K(etrn_networks, T_CIDRS, ""),
	R(dequeue_listen, T_STR, ""),
	K(tls_cert, T_STR, ""),
	K(tls_key, T_STR, ""),
	K(users_file, T_STR, ""),
	K(auth_allow_plaintext, T_BOOL, "no"),
	K(odmr_map, T_STR, ""),
	K(dkim_keys, T_STR, ""),
	K(dkim_sign, T_DKIM_SIGN, "authenticated"),
	K(dkim_verify, T_BOOL, "yes"),
	K(dkim_verify_timeout, T_DURATION, "10s"),
	R(run_user, T_STR, "tern"),
	R(maildrop_group, T_STR, "tern-drop"),
	K(max_connections, T_UINT, "500"),
	K(max_connections_per_ip, T_UINT, "20"),
	K(max_connection_rate, T_UINT, "120"),
	K(max_auth_failures, T_UINT, "3"),
	K(max_errors, T_UINT, "20"),
	K(greeting_delay, T_DURATION, "0"),
	K(reject_delay, T_DURATION, "0"),
	K(reject_delay_after, T_UINT, "3"),
	K(spf_policy, T_SPF, "record"),
	K(spf_timeout, T_DURATION, "20s"),
	K(authserv_id, T_STR, NULL),
	K(dmarc_policy, T_DMARC, "report"),
	K(dmarc_timeout, T_DURATION, "10s"),
	K(dnsbl, T_LIST, ""),
	K(dnswl, T_LIST, ""),
	K(dnsbl_timeout, T_DURATION, "5s"),
	K(milters, T_STR, ""),
	K(submission_milters, T_STR, ""),
	K(milter_connect_timeout, T_DURATION, "30s"),
	K(milter_command_timeout, T_DURATION, "30s"),
	K(milter_content_timeout, T_DURATION, "5m"),
	K(milter_default_action, T_MILTER_ACTION, "tempfail"),
	K(shutdown_grace, T_DURATION, "30s"),
	R(transcripts, T_BOOL, "no"),
	K(transcript_max_size, T_SIZE, "64k"),
	K(transcript_keep, T_UINT, "10000"),
	K(fault_rules, T_STR, ""),
	R(control_socket, T_STR, NULL),
	R(control_group, T_STR, ""),
	R(metrics_listen, T_STR, ""),
	K(capture, T_BOOL, "no"),
	K(capture_rules, T_STR, ""),
	K(capture_keep, T_UINT, "10000"),
	K(capture_max_age, T_DURATION, "0"),
	R(http_listen, T_STR, ""),
	R(http_tls, T_BOOL, "no"),
	K(http_login, T_BOOL, "no"),
};
#undef K
#undef R
#define CONF_NKEYS (sizeof conf_keys / sizeof conf_keys[0])

static const struct conf_key *conf_find(const char *name)
{
	for (size_t i = 0; i < CONF_NKEYS; i++)
		if (strcmp(conf_keys[i].name, name) == 0)
			return &conf_keys[i];
	return NULL;
}

static void conf_list_clear(struct conf_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	l->n = 0;
}

bool conf_parse_duration(const char *s, unsigned *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (end == s || errno || *s == '-')
		return false;
	unsigned long mul = 1;
	switch (*end) {
	case '\0': case 's': break;
	case 'm': mul = 60; break;
	case 'h': mul = 3600; break;
	case 'd': mul = 86400; break;
	default: return false;
	}
	if (*end && end[1])
		return false;
	if (v > 0xffffffffUL / mul)
		return false;
	*out = (unsigned)(v * mul);
	return true;
}

bool conf_parse_size(const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (end == s || errno || *s == '-')
		return false;
	uint64_t mul = 1;
	switch (*end) {
	case '\0': break;
	case 'k': case 'K': mul = 1024; break;
	case 'm': case 'M': mul = 1024 * 1024; break;
	case 'g': case 'G': mul = 1024ULL * 1024 * 1024; break;
	default: return false;
	}
	if (*end && end[1])
		return false;
	if (v > UINT64_MAX / mul)
		return false;
	*out = v * mul;
	return true;
}

/* A word of words (n of them) as its index. */
static bool conf_parse_word(const char *s, const char *const *words, size_t n, int *out)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(s, words[i])) {
			*out = (int)i;
			return true;
		}
	return false;
}

/* smtp_tls's words, in enum smtpc_tls order. */
static bool conf_parse_tls(const char *s, enum smtpc_tls *out)
{
	static const char *const words[] = { "none", "may", "encrypt", "verify", "dane",
	                                       "dane-only" };
	int i;
	if (!conf_parse_word(s, words, sizeof words / sizeof words[0], &i))
		return false;
	*out = (enum smtpc_tls)i;
	return true;
}

/* spf_policy's words, in enum conf_spf order. */
static bool conf_parse_spf(const char *s, enum conf_spf *out)
{
	static const char *const words[] = { "off", "record", "reject" };
	int i;
	if (!conf_parse_word(s, words, sizeof words / sizeof words[0], &i))
		return false;
	*out = (enum conf_spf)i;
	return true;
}

/* dmarc_policy's words, in enum conf_dmarc order. */
static bool conf_parse_dmarc(const char *s, enum conf_dmarc *out)
{
	static const char *const words[] = { "off", "report", "enforce" };
	int i;
	if (!conf_parse_word(s, words, sizeof words / sizeof words[0], &i))
		return false;
	*out = (enum conf_dmarc)i;
	return true;
}

/* dkim_sign's words, in enum conf_dkim_sign order. */
static bool conf_parse_dkim_sign(const char *s, enum conf_dkim_sign *out)
{
	static const char *const words[] = { "no", "authenticated", "trusted" };
	for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
		if (!strcmp(s, words[i])) {
			*out = (enum conf_dkim_sign)i;
			return true;
		}
	return false;
}

/* milter_default_action's words, in enum conf_milter_action order. */
static bool conf_parse_milter_action(const char *s, enum conf_milter_action *out)
{
	static const char *const words[] = { "tempfail", "accept", "reject" };
	int i;
	if (!conf_parse_word(s, words, sizeof words / sizeof words[0], &i))
		return false;
	*out = (enum conf_milter_action)i;
	return true;
}

static bool conf_parse_bool(const char *s, bool *out)
{
	if (!strcmp(s, "yes") || !strcmp(s, "true") || !strcmp(s, "1") || !strcmp(s, "on"))
		*out = true;
	else if (!strcmp(s, "no") || !strcmp(s, "false") || !strcmp(s, "0") || !strcmp(s, "off"))
		*out = false;
	else
		return false;
	return true;
}

/* Split a list at any of seps, trimming each item; calls fn per item. */
static int conf_split(const char *value, const char *seps, int (*fn)(void *, const char *),
                      void *ctx)
{
	char *copy = util_xstrdup(value);
	int bad = 0;
	char *save = NULL;
	for (char *tok = strtok_r(copy, seps, &save); tok; tok = strtok_r(NULL, seps, &save)) {
		char *t = util_trim(tok);
		if (*t)
			bad += fn(ctx, t);
	}
	free(copy);
	return bad;
}

static int conf_add_item(void *ctx, const char *item)
{
	struct conf_list *l = ctx;
	if (l->n >= CONF_LIST_MAX)
		return 1;
	l->v[l->n++] = util_xstrdup(item);
	return 0;
}

/* A domain of a list, kept as its A-label ("bücher.test" becomes
 * "xn--bcher-kva.test"): what conf_is_local_domain compares with. */
static int conf_add_domain(void *ctx, const char *item)
{
	char a[ADDR_DOMAIN_MAX + 1];
	if (!idna_alabel(item, a, sizeof a) || !addr_domain_valid(a))
		return 1;
	return conf_add_item(ctx, a);
}

/* An IP address literal, IPv4 or IPv6 (no brackets, no port). */
static int conf_add_ip(void *ctx, const char *item)
{
	unsigned char a[16];
	if (inet_pton(AF_INET, item, a) != 1 && inet_pton(AF_INET6, item, a) != 1)
		return 1;
	return conf_add_item(ctx, item);
}

static int conf_add_cidr(void *ctx, const char *item)
{
	struct cidr_list *l = ctx;
	if (l->n >= CIDR_MAX || !cidr_parse(item, &l->v[l->n]))
		return 1;
	l->n++;
	return 0;
}

/* Store value into the field described by k; false when the value is bad. */
static bool conf_store(struct conf *c, const struct conf_key *k, const char *value)
{
	void *f = (char *)c + k->off;
	int lvl, to;
	switch (k->type) {
	case T_STR:
		free(*(char **)f);
		*(char **)f = util_xstrdup(value);
		return true;
	case T_LIST:
		conf_list_clear(f);
		return conf_split(value, ",", conf_add_item, f) == 0;
	case T_DOMAINS:
		conf_list_clear(f);
		return conf_split(value, ",", conf_add_domain, f) == 0;
	case T_ADDRS:
		conf_list_clear(f);
		return conf_split(value, ", \t", conf_add_ip, f) == 0;
	case T_CIDRS:
		((struct cidr_list *)f)->n = 0;
		return conf_split(value, ",", conf_add_cidr, f) == 0;
	case T_SIZE:
		return conf_parse_size(value, f);
	case T_UINT:
		return conf_parse_duration(value, f) && !strpbrk(value, "smhd");
	case T_DURATION:
		return conf_parse_duration(value, f);
	case T_BOOL:
		return conf_parse_bool(value, f);
	case T_TLS:
		return conf_parse_tls(value, f);
	case T_DKIM_SIGN:
		return conf_parse_dkim_sign(value, f);
	case T_SPF:
		return conf_parse_spf(value, f);
	case T_DMARC:
		return conf_parse_dmarc(value, f);
	case T_MILTER_ACTION:
		return conf_parse_milter_action(value, f);
	case T_LOGLEVEL:
		lvl = log_level_parse(value);
		if (lvl < 0)
			return false;
		free(*(char **)f);
		*(char **)f = util_xstrdup(value);
		return true;
	case T_LOGTARGET:
		if ((to = log_target_parse(value)) < 0)
			return false;
		*(enum log_target *)f = (enum log_target)to;
		return true;
	}
	return false;
}

static const char *conf_type_hint(enum conf_type t)
{
	switch (t) {
	case T_SIZE: return "a size such as 10485760, 10k, 25M or 1G";
	case T_UINT: return "a whole number";
	case T_DURATION: return "a duration such as 30s, 5m, 2h or 1d";
	case T_BOOL: return "yes or no";
	case T_LOGLEVEL: return "debug, info, warning or error";
	case T_LOGTARGET: return "stderr, syslog or journal";
	case T_TLS: return "none, may, encrypt, verify, dane or dane-only";
	case T_DKIM_SIGN: return "authenticated, trusted or no";
	case T_SPF: return "reject, record or off";
	case T_DMARC: return "enforce, report or off";
	case T_MILTER_ACTION: return "tempfail, accept or reject";
	case T_DOMAINS: return "a comma-separated list of domain names";
	case T_CIDRS: return "a comma-separated list of networks such as 192.0.2.0/24 or ::1";
	case T_LIST: return "a comma-separated list";
	case T_ADDRS: return "a list of IP addresses such as 192.0.2.1, 2001:db8::1";
	case T_STR: break;
	}
	return "a string";
}

int conf_set(struct conf *c, const char *key, const char *value, const char *origin)
{
	const struct conf_key *k = conf_find(key);
	if (!k) {
		log_problem("%s: unknown key '%s'\n", origin, key);
		return 1;
	}
	if (!conf_store(c, k, value)) {
		log_problem("%s: bad value '%s' for %s: expected %s\n", origin, value,
		        key, conf_type_hint(k->type));
		return 1;
	}
	return 0;
}

static void conf_default_hostname(struct conf *c)
{
	char host[256];
	if (gethostname(host, sizeof host) != 0 || !host[0])
		snprintf(host, sizeof host, "localhost");
	host[sizeof host - 1] = '\0';
	util_lower(host);
	c->hostname = util_xstrdup(host);
}

void conf_defaults(struct conf *c)
{
	memset(c, 0, sizeof *c);
	for (size_t i = 0; i < CONF_NKEYS; i++)
		if (conf_keys[i].def && conf_set(c, conf_keys[i].name, conf_keys[i].def, "default"))
			log_panic("conf: the default of %s is refused (a bug in the key table)",
			          conf_keys[i].name);
	conf_default_hostname(c);
}

/* One "key = value" line; returns the number of problems. */
static int conf_line(void *ctx, char *line, const char *origin)
{
	char *eq = strchr(line, '=');
	if (!eq) {
		log_problem("%s: expected 'key = value'\n", origin);
		return 1;
	}
	*eq = '\0';
	return conf_set(ctx, util_trim(line), util_trim(eq + 1), origin);
}

int conf_load_file(struct conf *c, const char *path)
{
	return util_each_line(path, "the configuration", UTIL_LINES_COMMENTS, conf_line, c);
}

int conf_load_string(struct conf *c, const char *text, size_t len, const char *origin)
{
	int bad = 0;
	unsigned lineno = 0;
	for (const char *p = text, *e = text + len; p < e;) {
		const char *nl = memchr(p, '\n', (size_t)(e - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(e - p);
		char *line = util_xcalloc(n + 1, 1);
		char where[256];
		memcpy(line, p, n);
		line[n] = '\0';
		snprintf(where, sizeof where, "%.200s:%u", origin, ++lineno);
		if (strlen(line) != n) {
			log_problem("%s: NUL byte in line\n", where);
			bad++;
		} else {
			bad += conf_line(c, line, where);
		}
		free(line);
		p += n + 1;
	}
	return bad;
}

/* "192.0.2.1:25", "[2001:db8::1]:25", "*:25" is not accepted: name the
 * address, as a listener on every address is rarely what one wants. */
static bool conf_addr_valid(const char *spec)
{
	const char *colon = strrchr(spec, ':');
	if (!colon || !colon[1] || strspn(colon + 1, "0123456789") != strlen(colon + 1))
		return false;
	long port = strtol(colon + 1, NULL, 10);
	if (port < 1 || port > 65535)
		return false;
	char host[INET6_ADDRSTRLEN + 2];
	size_t n = (size_t)(colon - spec);
	if (n == 0 || n >= sizeof host)
		return false;
	memcpy(host, spec, n);
	host[n] = '\0';
	unsigned char sa[16];
	if (host[0] == '[' && host[n - 1] == ']') {
		host[n - 1] = '\0';
		return inet_pton(AF_INET6, host + 1, sa) == 1;
	}
	return inet_pton(AF_INET, host, sa) == 1;
}

/* The same parser route.c uses at delivery, so -n refuses what would
 * fail there. */
static bool conf_hostport_valid(const char *s)
{
	char host[256];
	unsigned port;
	return util_hostport(s, host, sizeof host, &port);
}

static int conf_finish_delivery(struct conf *c)
{
	int bad = 0;
	if (c->lmtp_domains.n && !*c->lmtp_host) {
		log_problem("lmtp_domains: needs lmtp_host (unix:/path or host:port)\n");
		bad++;
	}
	if (*c->lmtp_host && strncmp(c->lmtp_host, "unix:/", 6) && !conf_hostport_valid(c->lmtp_host)) {
		log_problem("lmtp_host: '%s' is not unix:/path or host:port\n", c->lmtp_host);
		bad++;
	}
	if (*c->metrics_listen && !conf_hostport_valid(c->metrics_listen)) {
		log_problem("metrics_listen: '%s' is not host:port\n", c->metrics_listen);
		bad++;
	}
	if (*c->dequeue_listen && !conf_addr_valid(c->dequeue_listen)) {
		log_problem("dequeue_listen: '%s' is not address:port (an IP address, as in listen)\n",
		            c->dequeue_listen);
		bad++;
	}
	if (*c->relayhost && !conf_hostport_valid(c->relayhost)) {
		log_problem("relayhost: '%s' is not host:port\n", c->relayhost);
		bad++;
	}
	if (*c->relayhost_auth && !strchr(c->relayhost_auth, ':')) {
		log_problem("relayhost_auth: expected user:password\n");
		bad++;
	}
	if (c->smtp_port == 0 || c->smtp_port > 65535 || c->destination_concurrency == 0) {
		log_problem("smtp_port / destination_concurrency: out of range\n");
		bad++;
	}
	return bad;
}

static unsigned conf_listen_mode(const char *word)
{
	static const struct { const char *name; unsigned bit; } modes[] = {
		{ "submission", CONF_LISTEN_SUBMISSION }, { "smtps", CONF_LISTEN_SMTPS },
		{ "proxy", CONF_LISTEN_PROXY }, { "starttls", CONF_LISTEN_STARTTLS },
		{ "odmr", CONF_LISTEN_ODMR }, { "capture", CONF_LISTEN_CAPTURE },
	};
	for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++)
		if (!strcmp(word, modes[i].name))
			return modes[i].bit;
	return 0;
}

bool conf_listen_parse(const char *spec, char *addr, size_t n, unsigned *modes)
{
	size_t alen = strcspn(spec, " \t");
	if (alen == 0 || alen >= n)
		return false;
	memcpy(addr, spec, alen);
	addr[alen] = '\0';
	if (!conf_addr_valid(addr))
		return false;
	*modes = 0;
	for (const char *p = spec + alen; *p;) {
		p += strspn(p, " \t");
		size_t wlen = strcspn(p, " \t");
		char word[16];
		if (!wlen)
			break;
		if (wlen >= sizeof word)
			return false;
		memcpy(word, p, wlen);
		word[wlen] = '\0';
		unsigned bit = conf_listen_mode(word);
		if (!bit || (*modes & bit))
			return false;  /* unknown or repeated mode */
		*modes |= bit;
		p += wlen;
	}
	/* submission takes mail after AUTH, odmr never does */
	return (*modes & (CONF_LISTEN_SUBMISSION | CONF_LISTEN_ODMR)) !=
	       (CONF_LISTEN_SUBMISSION | CONF_LISTEN_ODMR);
}

bool conf_listen_valid(const char *spec)
{
	char addr[INET6_ADDRSTRLEN + 16];
	unsigned modes;
	return conf_listen_parse(spec, addr, sizeof addr, &modes);
}

/* Modes every listener asks for, ORed. */
static unsigned conf_listen_modes(const struct conf *c)
{
	unsigned all = 0, m;
	char addr[INET6_ADDRSTRLEN + 16];
	for (size_t i = 0; i < c->listen.n; i++)
		if (conf_listen_parse(c->listen.v[i], addr, sizeof addr, &m))
			all |= m;
	return all;
}

/* ---- milters ---- */

/* "inet:IP:port" ("[IPv6]:port" too) or "unix:/path" (a sun_path). */
static bool conf_milter_target_valid(const char *t)
{
	if (!strncmp(t, "unix:/", 6))
		return strlen(t + 5) < 108;
	return !strncmp(t, "inet:", 5) && conf_addr_valid(t + 5);
}

/* One "key=value" of an entry's braces. */
static bool conf_milter_option(struct conf_milter *m, const char *k, const char *v)
{
	if (!strcmp(k, "connect_timeout"))
		return conf_parse_duration(v, &m->connect_timeout) && m->connect_timeout;
	if (!strcmp(k, "command_timeout"))
		return conf_parse_duration(v, &m->command_timeout) && m->command_timeout;
	if (!strcmp(k, "content_timeout"))
		return conf_parse_duration(v, &m->content_timeout) && m->content_timeout;
	if (!strcmp(k, "default_action"))
		return conf_parse_milter_action(v, &m->default_action);
	return false;
}

/* The options inside an entry's braces (opts, the braces gone). */
static bool conf_milter_options(struct conf_milter *m, char *opts, char *err, size_t n)
{
	char *save = NULL;
	for (char *tok = strtok_r(opts, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');
		if (eq)
			*eq = '\0';
		char *k = util_trim(tok);
		const char *v = eq ? util_trim(eq + 1) : "";
		if (!*k && !eq)
			continue;
		if (!eq || !conf_milter_option(m, k, v)) {
			snprintf(err, n, "bad option '%s' (connect_timeout, command_timeout, "
			         "content_timeout = a duration; default_action = tempfail, accept "
			         "or reject)", k);
			return false;
		}
	}
	return true;
}

/* One entry: target, then {options}. */
static bool conf_milter_entry(const struct conf *c, char *e, struct conf_milter *m, char *err,
                              size_t n)
{
	*m = (struct conf_milter){ .connect_timeout = c->milter_connect_timeout,
	                           .command_timeout = c->milter_command_timeout,
	                           .content_timeout = c->milter_content_timeout,
	                           .default_action = c->milter_default_action };
	char *brace = strchr(e, '{');
	if (brace) {
		char *end = strrchr(brace, '}');
		if (!end || util_trim(end + 1)[0]) {
			snprintf(err, n, "'%s': '{' without its '}' at the end", e);
			return false;
		}
		*brace = *end = '\0';
		if (!conf_milter_options(m, brace + 1, err, n))
			return false;
	}
	char *t = util_trim(e);
	if (!conf_milter_target_valid(t) || strlen(t) >= sizeof m->target) {
		snprintf(err, n, "'%s' is not inet:IP:port or unix:/path", t);
		return false;
	}
	snprintf(m->target, sizeof m->target, "%s", t);
	return true;
}

int conf_milters_parse(const struct conf *c, const char *value, struct conf_milter *out,
                       size_t max, char *err, size_t n)
{
	char *copy = util_xstrdup(value), *p = copy;
	int count = 0;
	if (!strcmp(util_trim(copy), "none"))
		*p = '\0';
	while (count >= 0 && *p) {
		size_t len = 0;
		int depth = 0;
		for (; p[len] && (depth || p[len] != ','); len++)
			depth += p[len] == '{' ? 1 : p[len] == '}' ? -1 : 0;
		char *next = p[len] ? p + len + 1 : p + len;
		p[len] = '\0';
		if (*util_trim(p)) {
			if ((size_t)count >= max) {
				snprintf(err, n, "more than %zu milters", max);
				count = -1;
			} else if (!conf_milter_entry(c, p, &out[count], err, n)) {
				count = -1;
			} else {
				count++;
			}
		}
		p = next;
	}
	free(copy);
	return count;
}

const char *conf_milters_of(const struct conf *c, unsigned modes)
{
	if ((modes & CONF_LISTEN_SUBMISSION) && *c->submission_milters)
		return c->submission_milters;
	return c->milters;
}

/* Both lists parse, and the timeouts are not 0. */
static int conf_finish_milters(const struct conf *c)
{
	struct conf_milter m[CONF_MILTERS_MAX];
	char err[512];
	int bad = 0;
	if (!c->milter_connect_timeout || !c->milter_command_timeout ||
	    !c->milter_content_timeout) {
		log_problem("milter_connect_timeout, milter_command_timeout, "
		            "milter_content_timeout: must be at least 1s\n");
		bad++;
	}
	if (conf_milters_parse(c, c->milters, m, CONF_MILTERS_MAX, err, sizeof err) < 0) {
		log_problem("milters: %s\n", err);
		bad++;
	}
	if (conf_milters_parse(c, c->submission_milters, m, CONF_MILTERS_MAX, err, sizeof err) < 0) {
		log_problem("submission_milters: %s\n", err);
		bad++;
	}
	return bad;
}

/* TLS, AUTH and limits: keys that only make sense together. */
static int conf_finish_security(const struct conf *c)
{
	int bad = 0;
	unsigned modes = conf_listen_modes(c);
	if (!*c->tls_cert != !*c->tls_key) {
		log_problem("tls_cert/tls_key: set both or neither\n");
		bad++;
	}
	if ((modes & CONF_LISTEN_SMTPS) && !*c->tls_cert) {
		log_problem("listen: an smtps listener needs tls_cert and tls_key\n");
		bad++;
	}
	if ((modes & CONF_LISTEN_STARTTLS) && !*c->tls_cert) {
		log_problem("listen: a starttls listener needs tls_cert and tls_key\n");
		bad++;
	}
	if ((modes & CONF_LISTEN_SUBMISSION) && !*c->users_file) {
		log_problem("listen: a submission listener needs users_file (AUTH)\n");
		bad++;
	}
	if ((modes & CONF_LISTEN_ODMR) && (!*c->users_file || !*c->odmr_map)) {
		log_problem("listen: an odmr listener needs users_file (AUTH) and odmr_map (RFC 2645)\n");
		bad++;
	}
	if (!*c->run_user) {
		log_problem("run_user: must name an unprivileged user\n");
		bad++;
	}
	if (c->max_connections == 0 || c->max_connections_per_ip == 0 ||
	    c->max_auth_failures == 0 || c->max_errors == 0) {
		log_problem("max_connections, max_connections_per_ip, max_auth_failures, "
		                "max_errors: must be at least 1\n");
		bad++;
	}
	return bad;
}

bool conf_dnsbl_entry(const char *entry, char *zone, size_t n, struct in_addr *want)
{
	const char *eq = strchr(entry, '=');
	size_t len = eq ? (size_t)(eq - entry) : strlen(entry);
	if (len == 0 || len >= n)
		return false;
	memcpy(zone, entry, len);
	zone[len] = '\0';
	util_lower(zone);
	if (!addr_domain_valid(zone))
		return false;
	want->s_addr = 0;
	if (!eq)
		return true;
	return inet_pton(AF_INET, eq + 1, want) == 1 && (ntohl(want->s_addr) >> 24) == 127;
}

static bool conf_dnsbl_valid(const char *entry)
{
	char zone[256];
	struct in_addr want;
	return conf_dnsbl_entry(entry, zone, sizeof zone, &want);
}

int conf_finish(struct conf *c)
{
	int bad = 0;
	for (size_t i = 0; i < c->listen.n; i++) {
		if (!conf_listen_valid(c->listen.v[i])) {
			log_problem("listen: '%s' is not address:port [submission|odmr] [smtps] [starttls] "
			        "[proxy] (e.g. 127.0.0.1:25 or [::1]:587 submission)\n",
			        c->listen.v[i]);
			bad++;
		}
	}
	if (!addr_domain_valid(c->hostname)) {
		log_problem("hostname: '%s' is not a valid domain name\n", c->hostname);
		bad++;
	}
	util_lower(c->hostname);
	if (c->local_domains.n == 0) {
		conf_add_item(&c->local_domains, "localhost");
		if (strcmp(c->hostname, "localhost") != 0)
			conf_add_item(&c->local_domains, c->hostname);
	}
	if (!c->control_socket) {
		struct buf b = BUF_INIT;
		buf_printf(&b, "%s/control", c->spool_dir);
		c->control_socket = util_xstrdup(buf_cstr(&b));
		buf_free(&b);
	}
	if (strlen(c->control_socket) >= 108) {   /* sun_path */
		log_problem("control_socket: '%s' is longer than a unix socket path may be (107)\n",
		        c->control_socket);
		bad++;
	}
	if (!c->postmaster_address) {
		struct buf b = BUF_INIT;
		buf_printf(&b, "postmaster@%s", c->hostname);
		c->postmaster_address = util_xstrdup(buf_cstr(&b));
		buf_free(&b);
	}
	struct addr a;
	if (addr_parse_mailbox(c->postmaster_address, &a) != ADDR_OK) {
		log_problem("postmaster_address: '%s' is not a mailbox\n", c->postmaster_address);
		bad++;
	}
	if (c->listen.n == 0) {
		log_problem("listen: at least one address:port is needed\n");
		bad++;
	}
	if (c->max_line_length < 78 || c->max_line_length > 65536) {
		log_problem("max_line_length: %u is outside 78..65536\n", c->max_line_length);
		bad++;
	}
	if (c->max_recipients == 0) {
		log_problem("max_recipients: must be at least 1\n");
		bad++;
	}
	bad += conf_finish_milters(c);
	if (c->spf_timeout == 0) {
		log_problem("spf_timeout: must be at least 1s\n");
		bad++;
	}
	for (size_t i = 0; i < c->dnsbl.n + c->dnswl.n; i++) {
		const char *z = i < c->dnsbl.n ? c->dnsbl.v[i] : c->dnswl.v[i - c->dnsbl.n];
		if (!conf_dnsbl_valid(z)) {
			log_problem("%s: '%s' is not zone[=127.0.0.N] (e.g. zen.spamhaus.org or "
			            "list.dnswl.org=127.0.10.0)\n", i < c->dnsbl.n ? "dnsbl" : "dnswl", z);
			bad++;
		}
	}
	if (c->max_header_size < 1024) {
		log_problem("max_header_size: must be at least 1k\n");
		bad++;
	}
	if (!c->authserv_id)
		c->authserv_id = util_xstrdup(c->hostname);
	if (!*c->authserv_id || strpbrk(c->authserv_id, " \t;()\"\\")) {
		log_problem("authserv_id: '%s' is not a single token (RFC 8601 2.5)\n", c->authserv_id);
		bad++;
	}
	if (c->retry_min == 0 || c->retry_max < c->retry_min) {
		log_problem("retry_min/retry_max: need 0 < retry_min <= retry_max\n");
		bad++;
	}
	bad += conf_finish_delivery(c);
	bad += conf_finish_security(c);
	return bad;
}

static bool conf_list_equal(const struct conf_list *a, const struct conf_list *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->v[i], b->v[i]))
			return false;
	return true;
}

int conf_keep_restart_keys(struct conf *c, const struct conf *running, char *changed, size_t n)
{
	int kept = 0;
	if (n)
		changed[0] = '\0';
	for (size_t i = 0; i < CONF_NKEYS; i++) {
		const struct conf_key *k = &conf_keys[i];
		if (!k->restart)
			continue;
		void *to = (char *)c + k->off;
		const void *from = (const char *)running + k->off;
		bool same;
		switch (k->type) {
		case T_STR: {   /* NULL: not derived yet (before conf_finish) */
			const char *a = *(char **)to, *b = *(char *const *)from;
			same = !strcmp(a ? a : "", b ? b : "");
			break;
		}
		case T_LIST: same = conf_list_equal(to, from); break;
		case T_BOOL: same = *(bool *)to == *(const bool *)from; break;
		case T_DURATION: same = *(unsigned *)to == *(const unsigned *)from; break;
		case T_LOGTARGET:
			same = *(enum log_target *)to == *(const enum log_target *)from;
			break;
		default: log_panic("conf: restart key %s of an unexpected type", k->name);
		}
		if (same)
			continue;
		log_warn("%s: changed; the running value stays until a restart", k->name);
		size_t used = strlen(changed);
		if (used < n)
			snprintf(changed + used, n - used, "%s%s", kept ? " " : "", k->name);
		kept++;
		if (k->type == T_STR) {
			free(*(char **)to);
			*(char **)to = *(char *const *)from ? util_xstrdup(*(char *const *)from) : NULL;
		} else if (k->type == T_LIST) {
			const struct conf_list *l = from;
			conf_list_clear(to);
			for (size_t j = 0; j < l->n; j++)
				conf_add_item(to, l->v[j]);
		} else if (k->type == T_LOGTARGET) {
			*(enum log_target *)to = *(const enum log_target *)from;
		} else if (k->type == T_DURATION) {
			*(unsigned *)to = *(const unsigned *)from;
		} else {
			*(bool *)to = *(const bool *)from;
		}
	}
	return kept;
}

bool conf_is_local_domain(const struct conf *c, const char *domain)
{
	char a[ADDR_DOMAIN_MAX + 1];
	if (idna_has_8bit(domain)) {   /* a U-label: compared as its A-label */
		if (!idna_alabel(domain, a, sizeof a))
			return false;
		domain = a;
	}
	for (size_t i = 0; i < c->local_domains.n; i++)
		if (strcasecmp(c->local_domains.v[i], domain) == 0)
			return true;
	return false;
}

void conf_free(struct conf *c)
{
	for (size_t i = 0; i < CONF_NKEYS; i++) {
		void *f = (char *)c + conf_keys[i].off;
		if (conf_keys[i].type == T_STR || conf_keys[i].type == T_LOGLEVEL)
			free(*(char **)f);
		else if (conf_keys[i].type == T_LIST || conf_keys[i].type == T_DOMAINS ||
		         conf_keys[i].type == T_ADDRS)
			conf_list_clear(f);
	}
	memset(c, 0, sizeof *c);
}
