/* conf: tern's configuration: the embedded defaults, the `key = value` file
 * format, -o overrides, and validation with file and line in every message.
 *
 * Every key lives in one table (conf.c); etc/tern.conf documents each one.
 */
#ifndef TERN_CONF_H
#define TERN_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>

#include "lib/cidr.h"
#include "lib/log.h"

#define CONF_LIST_MAX 64

struct conf_list {
	size_t n;
	char *v[CONF_LIST_MAX];
};

/* smtp_tls: what the outbound client asks of STARTTLS (RFC 3207). Parsed
 * here, once; the client engine (net/smtpc.h) acts on it. */
enum smtpc_tls {
	SMTPC_TLS_NONE,      /* never */
	SMTPC_TLS_MAY,       /* when offered; a failure falls back to plain text */
	SMTPC_TLS_ENCRYPT,   /* required, certificate not checked */
	SMTPC_TLS_VERIFY,    /* required, the chain and the host name checked */
	SMTPC_TLS_DANE,      /* RFC 7672: DANE where an MX has secure usable TLSA
	                        records (required then), else as may */
	SMTPC_TLS_DANE_ONLY, /* only to MX hosts DANE authenticates; else deferred */
};

/* dkim_sign: whose mail is signed at receipt (RFC 6376 5). */
enum conf_dkim_sign {
	CONF_DKIM_SIGN_NO,              /* nobody's */
	CONF_DKIM_SIGN_AUTHENTICATED,   /* AUTH'ed sessions' and local submissions' */
	CONF_DKIM_SIGN_TRUSTED,         /* those and relay_networks' clients' too */
};

/* spf_policy: what an SPF fail at MAIL does (RFC 7208 8.4). */
enum conf_spf {
	CONF_SPF_OFF,        /* no check */
	CONF_SPF_RECORD,     /* checked and logged, never refused */
	CONF_SPF_REJECT,     /* fail: 550 5.7.23; temperror: 451 4.4.3 */
};

/* A milter's default action (milter_default_action, default_action=):
 * what its stages answer when it cannot be reached or misbehaves. */
enum conf_milter_action {
	CONF_MILTER_TEMPFAIL,   /* 451 4.7.1 */
	CONF_MILTER_ACCEPT,     /* as if it were not there */
	CONF_MILTER_REJECT,     /* 550 5.7.1 */
};

#define CONF_MILTERS_MAX 8
#define CONF_MILTER_TARGET_MAX 256

/* One entry of `milters`: where it listens and its settings (the global
 * milter_* keys unless the entry's {...} says otherwise). */
struct conf_milter {
	char target[CONF_MILTER_TARGET_MAX];  /* "inet:IP:port" or "unix:/path" */
	unsigned connect_timeout, command_timeout, content_timeout;  /* seconds */
	enum conf_milter_action default_action;
};

/* dmarc_policy: what a DMARC fail does (RFC 7489 6.6, 6.7). */
enum conf_dmarc {
	CONF_DMARC_OFF,      /* no evaluation */
	CONF_DMARC_REPORT,   /* evaluated, logged, in Authentication-Results; never acted on */
	CONF_DMARC_ENFORCE,  /* p=reject: 550 5.7.1; p=quarantine: held (ternctl release) */
};

struct conf {
	char *hostname;                /* FQDN in the banner, HELO reply, Received */
	struct conf_list listen;       /* "addr:port", "[v6]:port" */
	char *spool_dir;
	char *mail_dir;
	uint64_t spool_reserve;        /* octets of disk kept for delivery results */
	struct conf_list local_domains;/* lower-cased */
	struct cidr_list relay_networks;
	char *aliases_file;            /* "" = none */
	unsigned dns_timeout;          /* seconds a delivery's MX and address lookups
	                                  may take (then 4.4.3, retried later) */
	uint64_t max_message_size;     /* octets, RFC 1870 SIZE */
	uint64_t max_header_size;      /* octets of a message's header block, held in
	                                  memory while the body streams (552 5.3.4) */
	unsigned max_recipients;       /* per message, RFC 5321 4.5.3.1.8 */
	unsigned max_line_length;      /* message lines, RFC 5322 2.1.1 */
	char *banner;                  /* after "220 <hostname> ESMTP " */
	char *postmaster_address;      /* where postmaster@<local domain> goes */
	bool vrfy_disclose;            /* VRFY/EXPN say whether a mailbox exists */
	bool queue_only;              /* accept and spool, deliver nothing */
	unsigned command_timeout;      /* seconds, RFC 5321 4.5.3.2.7 */
	unsigned data_timeout;         /* seconds, RFC 5321 4.5.3.2.6 */
	unsigned retry_min;            /* seconds before a failed local delivery is retried */
	unsigned retry_max;            /* seconds, the backoff's ceiling */
	char *log_level;               /* "debug", "info", "warning", "error" */
	enum log_target log_target;    /* stderr, syslog, journal */

	/* delivery */
	struct conf_list lmtp_domains; /* delivered over LMTP to lmtp_host */
	char *lmtp_host;               /* "unix:/path" or "host:port" */
	char *dns_resolver;            /* "IP[@port]" for libunbound; "" = resolv.conf */
	char *dns_trust_anchor;        /* DNSSEC trust anchors for DANE (a file) */
	char *transport_map;           /* file of "domain host:port" lines; "" = none */
	char *relayhost;               /* "host:port": all remote mail through it */
	char *relayhost_auth;          /* "user:password" for AUTH at relayhost */
	enum smtpc_tls smtp_tls;       /* none, may, encrypt, verify, dane, dane-only */
	char *smtp_tls_ca_file;        /* CA bundle for verify and MTA-STS; "" = system default */
	bool mta_sts;                  /* RFC 8461 for MX delivery (deliver/sts.c) */
	bool tls_rpt;                  /* RFC 8460 reports (deliver/tlsrpt.c) */
	char *tls_rpt_org;             /* their organization-name; "" = hostname */
	unsigned tls_rpt_interval;     /* seconds a report covers */
	unsigned smtp_port;            /* port of MX hosts, 25 */
	struct conf_list proxy_interfaces; /* IPs that reach us through a proxy or NAT */
	unsigned smtp_connect_timeout; /* seconds */
	unsigned smtp_timeout;         /* seconds per reply, RFC 5321 4.5.3.2 */
	bool smtp_chunking;            /* BDAT to next hops that offer CHUNKING (RFC 3030) */
	unsigned destination_concurrency; /* connections per destination */
	bool destination_concurrency_adaptive; /* fewer while they bring no more (deliver/adapt.h) */
	unsigned delay_warning;        /* seconds before a delay report */
	unsigned max_queue_lifetime;   /* seconds before a bounce */

	/* backup MX: domains held for dequeuing (ETRN, ATRN, dequeue_listen) */
	struct conf_list hold_domains; /* and their subdomains, lower-cased */
	char *hold_recipients_file;    /* "user@domain" lines: RCPT checks; "" = none */
	unsigned hold_lifetime;        /* seconds mail may wait held before a bounce */
	struct cidr_list etrn_networks;/* clients that may ETRN */
	char *dequeue_listen;          /* host:port of the dequeue trigger; "" = none */

	/* security */
	char *tls_cert;                /* PEM chain for STARTTLS/SMTPS; "" = no TLS */
	char *tls_key;                 /* PEM private key */
	char *users_file;              /* Dovecot passwd-file for AUTH; "" = no AUTH */
	bool auth_allow_plaintext;     /* offer AUTH without TLS */
	char *odmr_map;                /* "domain user, ..." lines: who may ATRN
	                                  what (RFC 2645); "" = nobody */
	char *dkim_keys;               /* "domain selector key.pem": a file of such
	                                  lines, or entries separated by commas;
	                                  "" = no DKIM signing */
	enum conf_dkim_sign dkim_sign; /* whose mail is signed */
	bool dkim_verify;              /* check received signatures at end of DATA */
	unsigned dkim_verify_timeout;  /* seconds the key lookups may take */
	char *run_user;                /* drop to this user after binding */
	char *maildrop_group;          /* may write spool_dir/maildrop (tern-sendmail) */
	unsigned max_connections;      /* sessions at once, all clients */
	unsigned max_connections_per_ip;
	unsigned max_connection_rate;  /* connections per IP per minute; 0 = any */
	unsigned max_auth_failures;    /* per session, then 421 and close */
	unsigned max_errors;           /* error replies per session, then 421 */
	unsigned greeting_delay;       /* seconds; talking before the 220 gets 554 */
	unsigned reject_delay;         /* seconds before a refusal is answered (tarpit) */
	unsigned reject_delay_after;   /* from this refusal of a session on */
	enum conf_spf spf_policy;      /* SPF at MAIL: off, record, reject */
	unsigned spf_timeout;          /* seconds an SPF check may take (RFC 7208 4.6.4) */
	char *authserv_id;             /* names this server in Authentication-Results
	                                  (RFC 8601 2.5); default hostname */
	enum conf_dmarc dmarc_policy;  /* DMARC at end of DATA: off, report, enforce */
	unsigned dmarc_timeout;        /* seconds the policy lookups may take */
	struct conf_list dnsbl;        /* "zone[=127.0.0.N]": clients listed are refused */
	struct conf_list dnswl;        /* the same: clients listed skip the dnsbl */
	unsigned dnsbl_timeout;        /* seconds the list lookups may take */
	char *milters;                 /* the milters every listener's sessions ask, in
	                                  order: "inet:IP:port{k=v, ...}, unix:/path"; "" = none */
	char *submission_milters;      /* those of submission listeners; "" = as milters,
	                                  "none" = none */
	unsigned milter_connect_timeout;   /* seconds: connecting and negotiating */
	unsigned milter_command_timeout;   /* seconds per reply to an SMTP stage */
	unsigned milter_content_timeout;   /* seconds per reply to a header or body chunk
	                                      and to the end of the message */
	enum conf_milter_action milter_default_action;

	/* operators */
	unsigned shutdown_grace;       /* seconds transactions may take to finish at SIGTERM */
	char *fault_rules;             /* the test mode's fault rules (policy/fault.h); "" = none */
	char *control_socket;          /* ternctl's unix socket; default spool_dir/control */
	char *control_group;           /* its group, besides root and run_user; "" = none */
	char *metrics_listen;          /* host:port of the Prometheus page; "" = none */

	/* test mode: capture into inboxes, the HTTP API and web page */
	bool capture;                  /* every message captured, nothing delivered */
	char *capture_rules;           /* file of "INBOX condition..." lines; "" = none */
	unsigned capture_keep;         /* messages kept per inbox; 0 = no limit */
	unsigned capture_max_age;      /* seconds a captured message is kept; 0 = no limit */
	char *http_listen;             /* host:port of the API and web page; "" = none */
	bool http_tls;                 /* HTTPS with tls_cert and tls_key */
	bool http_login;               /* HTTP Basic login against users_file */
	/* session transcripts and client lint */
	bool transcripts;              /* record every session (spool_dir/sessions.db) */
	uint64_t transcript_max_size;  /* octets of text per session's record */
	unsigned transcript_keep;      /* sessions kept, the oldest removed */
};

/* Listener modes: the words after "addr:port" in a `listen` entry. */
enum {
	CONF_LISTEN_SUBMISSION = 1 << 0,  /* RFC 6409: AUTH required */
	CONF_LISTEN_SMTPS = 1 << 1,       /* RFC 8314: implicit TLS */
	CONF_LISTEN_PROXY = 1 << 2,       /* HAProxy PROXY protocol v1/v2 header first */
	CONF_LISTEN_STARTTLS = 1 << 3,    /* STARTTLS required before mail commands */
	CONF_LISTEN_ODMR = 1 << 4,        /* RFC 2645 On-Demand Mail Relay: AUTH, then
	                                     ATRN; no MAIL, RCPT or DATA */
	CONF_LISTEN_CAPTURE = 1 << 5,     /* test mode: every message captured
	                                     into an inbox, nothing delivered */
};

/* Fill c with the embedded defaults (hostname from the system). */
void conf_defaults(struct conf *c);

/* Read a file into c. Every problem is printed to stderr as
 * "FILE:LINE: message"; returns the number of problems. */
int conf_load_file(struct conf *c, const char *path);

/* Apply one "key=value" override (-o). origin names it in messages. Returns
 * the number of problems (0 or 1). */
int conf_set(struct conf *c, const char *key, const char *value,
             const char *origin);

/* Cross-key checks after everything is loaded (e.g. derived defaults).
 * Returns the number of problems, each printed. */
int conf_finish(struct conf *c);

/* Parse "10m", "30s", "2h", "1d", or plain seconds. */
bool conf_parse_duration(const char *s, unsigned *out);
/* Parse "10240000", "10k", "25M", "1G". */
bool conf_parse_size(const char *s, uint64_t *out);

/* An entry of `listen`: "IPv4:port" or "[IPv6]:port", then optional
 * space-separated modes (submission, smtps, starttls, proxy, odmr; odmr
 * and submission exclude each other). */
bool conf_listen_valid(const char *spec);

/* Split a valid `listen` entry into its address ("127.0.0.1:25", room for
 * n bytes) and CONF_LISTEN_* modes; false when it is not valid. */
bool conf_listen_parse(const char *spec, char *addr, size_t n, unsigned *modes);

/* Read configuration text (fuzzing, tests); origin names it in messages. */
int conf_load_string(struct conf *c, const char *text, size_t len, const char *origin);

/* A reload: the keys read at start only (listen, hostname, spool_dir,
 * mail_dir, queue_only, dns_resolver, dns_trust_anchor, run_user, maildrop_group,
 * log_target, control_socket, control_group, metrics_listen) keep
 * running's values in c, each change
 * logged as waiting for a restart and named in changed (space-separated,
 * n bytes). Returns how many changed. */
int conf_keep_restart_keys(struct conf *c, const struct conf *running, char *changed, size_t n);

/* The milters of a `milters` value, with c's milter_* keys as defaults:
 * how many (at most max into out), or -1 with the problem in err (n
 * bytes). Entries are separated by commas outside braces; each is
 * "inet:IP:port" or "unix:/path", then optionally "{key=value, ...}" with
 * the keys connect_timeout, command_timeout, content_timeout and
 * default_action. "" and "none" are no milters. */
int conf_milters_parse(const struct conf *c, const char *value, struct conf_milter *out,
                       size_t max, char *err, size_t n);
/* The milters value of a listener with CONF_LISTEN_* modes. */
const char *conf_milters_of(const struct conf *c, unsigned modes);

bool conf_is_local_domain(const struct conf *c, const char *domain);
/* A dnsbl or dnswl entry, "zone[=127.0.0.N]": the zone (lower-case) into
 * zone, and the one answer that counts into want (0.0.0.0: any). */
bool conf_dnsbl_entry(const char *entry, char *zone, size_t n, struct in_addr *want);

void conf_free(struct conf *c);

#endif
