/* mailbox: the path of a local mailbox (a Maildir under mail_dir) and its
 * creation. Shared by the policy (does the mailbox exist? postmaster's is
 * made at start) and by Maildir delivery; pure but for mailbox_create. */
#ifndef TERN_MAILBOX_H
#define TERN_MAILBOX_H

#include <stdbool.h>
#include <stddef.h>

/* The mailbox directory of local@domain under mail_dir (lower-cased);
 * false when the local part cannot name a directory safely. */
bool mailbox_path(const char *mail_dir, const char *local, const char *domain,
                  char *out, size_t n);

/* Create dir and its tmp/ new/ cur/ (mode 0700). */
bool mailbox_create(const char *dir);

#endif
