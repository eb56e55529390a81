/* job_source: a delivery job's envelope and body, from the spool (see
 * job_source.h); the message's prefix (spool_env.prefix) goes first. */
#include "deliver/job_source.h"

#include <errno.h>
#include <string.h>

#include "spool/reader.h"
#include "spool/spool.h"

/* SIZE (RFC 1870) counts the prefix that goes before the body too. */
static void job_source_mail(const struct smtpc_job *job, struct smtp_mail *out)
{
	const struct spool_env *e = job->msg;
	uint64_t size = e->size + (e->prefix ? strlen(e->prefix) : 0);
	*out = (struct smtp_mail){ e->sender, size, (enum smtp_body)e->body,
	                           (enum smtp_ret)e->ret, e->envid, e->smtputf8, e->requiretls };
}

static void job_source_rcpt(const struct smtpc_job *job, size_t i, struct smtp_rcpt *out)
{
	const struct spool_env *e = job->msg;
	const struct spool_rcpt *r = &e->rcpt[job->idx[i]];
	*out = (struct smtp_rcpt){ r->addr, r->notify, r->orcpt };
}

static int job_source_chunk(const struct smtpc_job *job, unsigned seq, struct buf *out)
{
	return spool_reader_chunk(job->store, job->msg, seq, out);
}

/* Only a body file known to have no line that begins with a dot goes out
 * as it is in DATA (spool_env.dotless); any, by BDAT (raw). */
static int job_source_file(const struct smtpc_job *job, bool raw, uint64_t *size)
{
	const struct spool_env *e = job->msg;
	if (!e->body_file || (!raw && !e->dotless)) {
		errno = ENOENT;
		return -1;
	}
	return spool_reader_body_fd(job->store, e, size);
}

/* The DKIM-Signature fields made at receipt (spool_env.prefix). */
static const char *job_source_prefix(const struct smtpc_job *job)
{
	const struct spool_env *e = job->msg;
	return e->prefix;
}

const struct smtpc_source job_source = {
	job_source_mail, job_source_rcpt, job_source_chunk, job_source_file, job_source_prefix,
};
