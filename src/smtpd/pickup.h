/* pickup: ternd's side of the maildrop (net/maildrop.h). Messages that
 * tern-sendmail left in spool_dir/maildrop are queued as a session queues
 * them: recipients resolved by the policy (policy_rcpt; a local user may
 * relay), a Received header naming the user, the message through the
 * data parser into the spool (spool_msg_begin/write/commit); a file goes
 * only after its message is committed. A file ternd cannot take is moved
 * to maildrop/bad/ with a log line, never deleted. A recipient the policy
 * refuses is logged (a reject event) and left out; no report goes to the
 * sender for it yet, and a file with no recipient left is moved aside.
 *
 * When: a scan at start, an inotify watch on the directory (a file
 * renamed into it, or written and closed by hand), and a scan every
 * PICKUP_RESCAN seconds in case the watch missed one (its queue overflowed)
 * or a commit failed. One file at a time, one 64 KiB read per turn of the
 * main loop, so that sessions keep being served.
 */
#ifndef TERN_PICKUP_H
#define TERN_PICKUP_H

#include <stdbool.h>

struct server;
struct pickup;

#define PICKUP_RESCAN 60   /* seconds between scans without news */

/* Start watching spool_dir/maildrop (after the spool is open, as
 * run_user) and scan it. NULL when the directory cannot be watched
 * (logged); ternd goes on without it. */
struct pickup *pickup_new(struct server *srv);
/* The loop is ending: a message being read is given up (its file stays
 * for the next start), nothing new is started. Before spool_close. */
void pickup_stop(struct pickup *p);
/* After spool_close (a commit under way has finished by then). */
void pickup_free(struct pickup *p);

#endif
