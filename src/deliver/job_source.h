/* job_source: where the client engine (net/smtpc.h) reads a delivery
 * job's envelope and body: the spool. A job's msg is the message's struct
 * spool_env, its store the delivery thread's struct spool_reader, its idx
 * numbers into the envelope's recipients.
 */
#ifndef TERN_JOB_SOURCE_H
#define TERN_JOB_SOURCE_H

#include "net/smtpc.h"

extern const struct smtpc_source job_source;

#endif
