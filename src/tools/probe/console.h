/* console: an interactive SMTP session a person enjoys.
 *
 * libedit line editing (backspace, arrow keys, history), CRLF added, every
 * reply shown with its explanation beside it, and helpers for what telnet
 * makes hard: .starttls, .auth, .data, .log, .explain, .quit (one step).
 */
#ifndef TERN_PROBE_CONSOLE_H
#define TERN_PROBE_CONSOLE_H

struct console_opts {
	const char *target, *resolver, *cafile, *tls_name, *log;
	int port, timeout_ms;
};

/* Returns the exit status: 0 after .quit or end of input, 2 when the
 * connection could not be made. */
int console_run(const struct console_opts *o);

#endif
