/* submit: tern-sendmail's default mode: read a message from standard
 * input and leave it in spool_dir/maildrop for ternd (net/maildrop.h).
 * Returns a <sysexits.h> code; every problem is on stderr. */
#ifndef TERN_SENDMAIL_SUBMIT_H
#define TERN_SENDMAIL_SUBMIT_H

#include <sys/types.h>

#include "lib/conf.h"
#include "tools/sendmail/args.h"

/* drop_gid: the group tern-sendmail is installed setgid to; the effective
 * group while the file is made, the real one otherwise. */
int submit_run(const struct args *a, const struct conf *c, gid_t drop_gid);

#endif
