/* check: the seeds' troubleshooting procedure as a program.
 *
 * DNS (MX listing as nslookup shows it), connect, greeting, EHLO (HELO
 * fallback), STARTTLS, an optional relay test, AUTH, MAIL, RCPT, an
 * optional test message, QUIT: each a step of the report with its timing,
 * the lines exchanged and a verdict in plain words. The transport step
 * sums up REQUIRETLS, SMTPUTF8 and CHUNKING; for a mail domain, doctor's
 * DANE, MTA-STS and TLS-RPT steps follow (doctor_transport).
 */
#ifndef TERN_PROBE_CHECK_H
#define TERN_PROBE_CHECK_H

#include <stdbool.h>

#include "lib/buf.h"
#include "net/smtp.h"
#include "tools/probe/mx.h"

#define CHECK_MAX_RCPT 16

struct check_opts {
	const char *target, *resolver, *helo, *from, *user, *password, *notify;
	const char *cafile, *tls_name, *auth_mech, *outside;
	const char *trust_anchor;   /* DNSSEC, for a domain's DANE step */
	const char *to[CHECK_MAX_RCPT];
	int nto;
	int port, timeout_ms;
	bool mx_only, verbose, json, relay_test, send, no_tls, require_tls;
};

/* Runs the check and prints the report; returns the exit status. */
int check_run(const struct check_opts *o);

/* The reply's last line ("code esc text") and its one-line explanation. */
void check_said(const struct smtp_reply *r, struct buf *out);

#endif
