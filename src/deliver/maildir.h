/* maildir: local delivery into Maildir mailboxes (tmp/, fsync, new/). */
#ifndef TERN_MAILDIR_H
#define TERN_MAILDIR_H

#include <stdbool.h>

#include "spool/reader.h"
#include "spool/spool.h"
#include "deliver/deliver.h"

/* Deliver one copy of the message to rcpt (a local "local@domain"):
 * Return-Path and Delivered-To are prepended, CRLF becomes LF. recovered:
 * the message was queued before this process started, so a crash may have
 * come between an earlier delivery and its record in the spool; a copy
 * already in the mailbox then counts as delivered (exactly once). */
void maildir_deliver(const char *mail_dir, const char *hostname, struct spool_reader *r,
                     const struct spool_env *e, const struct spool_rcpt *rcpt, bool recovered,
                     struct deliver_result *res);

#endif
