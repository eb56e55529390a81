/* settings: one generation of what the configuration says: the keys
 * (struct conf), the aliases, the AUTH users, the odmr_map, capture_rules, the DKIM
 * signing keys and the server's TLS context,
 * loaded together and shared by reference. ternd holds the current one;
 * a session takes a reference when it starts and keeps its settings to
 * the end; the delivery engine holds its own and swaps it on its thread.
 * A reload loads a new generation beside the running one and replaces it
 * only when every part loaded: a bad file leaves everything as it was.
 */
#ifndef TERN_SETTINGS_H
#define TERN_SETTINGS_H

#include <stdatomic.h>
#include <stddef.h>

#include <openssl/ssl.h>

#include "lib/aliases.h"
#include "lib/conf.h"
#include "policy/auth.h"
#include "policy/capture.h"
#include "policy/fault.h"
#include "policy/hold.h"
#include "policy/odmr.h"
#include "policy/signkeys.h"

struct settings {
	atomic_uint refs;
	unsigned generation;          /* 1 at start, then one more a reload */
	struct conf conf;
	struct aliases *aliases;
	struct auth_users *users;     /* empty: no AUTH */
	struct hold_rcpts *hold_rcpts;/* hold_recipients_file */
	struct capture_rules *capture;/* capture_rules: inboxes of the test mode */
	struct odmr_map *odmr;        /* who may dequeue what (RFC 2645); empty: nobody */
	struct signkeys *dkim_keys;   /* DKIM signing keys; empty: no signing */
	SSL_CTX *tls;                 /* tls_cert and tls_key; NULL: no TLS */
	struct fault_rules *faults;   /* fault_rules, or NULL when there are none
	                                 (their counters: the main loop's) */
	char restart_pending[512];    /* keys changed in the file that wait for a
	                                 restart ("listen hostname"), or "" */
};

/* The configuration file (NULL: the embedded defaults), then the -o
 * overrides ("key=value"), checked; the files it names loaded. Problems
 * go through log_problem ("FILE:LINE: message") and are counted in *bad;
 * NULL when there is any. running (a reload) keeps the keys read at
 * start only (conf_keep_restart_keys). */
struct settings *settings_load(const char *file, char *const *overrides, size_t n,
                               const struct settings *running, int *bad);

/* A reference more (any thread); settings_unref frees the last. */
struct settings *settings_ref(struct settings *s);
void settings_unref(struct settings *s);

#endif
