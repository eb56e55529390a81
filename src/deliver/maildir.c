/* maildir: delivery into Maildir (https://cr.yp.to/proto/maildir.html):
 * write the file in tmp/, fsync it, rename it into new/, fsync new/ — the
 * durable order of DESIGN.md. The body streams from the spool, so memory
 * stays bounded whatever the message size. */
#include "deliver/maildir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/addr.h"
#include "lib/buf.h"
#include "lib/mailbox.h"
#include "lib/util.h"

#define MAILDIR_FLUSH (64 * 1024)

struct maildir_out {
	int fd;
	struct buf buf;
	bool cr;       /* the last chunk ended in CR */
	int err;
};

static bool maildir_flush(struct maildir_out *o)
{
	if (o->buf.len && !util_write_all(o->fd, o->buf.data, o->buf.len)) {
		o->err = errno ? errno : EIO;
		return false;
	}
	buf_reset(&o->buf);
	return true;
}

/* Spool body callback: CRLF -> LF (a Maildir file holds LF line ends). */
static bool maildir_body(void *ctx, const void *p, size_t n)
{
	struct maildir_out *o = ctx;
	const char *s = p;
	size_t i = 0;
	if (o->cr && s[0] != '\n')
		buf_putc(&o->buf, '\r');
	o->cr = false;
	while (i < n) {
		const char *cr = memchr(s + i, '\r', n - i);
		size_t end = cr ? (size_t)(cr - s) : n;
		buf_append(&o->buf, s + i, end - i);
		i = end;
		if (!cr)
			break;
		if (i + 1 == n) {
			o->cr = true;        /* decide with the next chunk */
		} else if (s[i + 1] != '\n') {
			buf_putc(&o->buf, '\r');
		}
		i++;
	}
	return o->buf.len < MAILDIR_FLUSH || maildir_flush(o);
}

static void maildir_result(struct deliver_result *res, int err, const char *what)
{
	res->status = DELIVER_TEMP;
	snprintf(res->reply, sizeof res->reply, "%s maildir %s: %s",
	         err == ENOSPC || err == EDQUOT ? "4.3.1" : "4.3.0", what, strerror(err));
}

/* The file name depends only on the message and the recipient, never on
 * the clock: queue ids are unique on this host, so the name is unique, and
 * a delivery repeated after a crash can find its earlier copy. */
static void maildir_name(char *out, size_t n, const char *hostname, const struct spool_env *e,
                         unsigned idx)
{
	snprintf(out, n, "%lld.Q%sR%u.%s", (long long)e->arrival, e->qid, idx, hostname);
}

/* Is the copy already there, in new/ or (read since) in cur/ as NAME:2,...? */
static bool maildir_has(const char *dir, const char *name)
{
	char p[4600];
	struct stat st;
	snprintf(p, sizeof p, "%s/new/%s", dir, name);
	if (stat(p, &st) == 0)
		return true;
	snprintf(p, sizeof p, "%s/cur", dir);
	DIR *d = opendir(p);
	if (!d)
		return false;
	size_t len = strlen(name);
	bool found = false;
	for (struct dirent *de; !found && (de = readdir(d));)
		found = !strncmp(de->d_name, name, len) && (!de->d_name[len] || de->d_name[len] == ':');
	closedir(d);
	return found;
}

/* Write the whole file to fd: trace headers, the message's prefix, then
 * the body from the spool. */
static int maildir_write(int fd, struct spool_reader *r, const struct spool_env *e,
                         const struct spool_rcpt *rcpt)
{
	struct maildir_out o = { fd, BUF_INIT, false, 0 };
	/* RFC 5321 4.4: Return-Path is added at final delivery. */
	buf_printf(&o.buf, "Return-Path: <%s>\nDelivered-To: %s\n", e->sender, rcpt->addr);
	if (e->prefix)   /* the DKIM-Signature fields made at receipt */
		maildir_body(&o, e->prefix, strlen(e->prefix));
	int err = spool_reader_body(r, e, maildir_body, &o);
	if (o.cr)
		buf_putc(&o.buf, '\r');
	if (!err && !o.err)
		maildir_flush(&o);
	if (!err)
		err = o.err;
	if (!err && fsync(fd) != 0)
		err = errno;
	buf_free(&o.buf);
	return err;
}

void maildir_deliver(const char *mail_dir, const char *hostname, struct spool_reader *r,
                     const struct spool_env *e, const struct spool_rcpt *rcpt, bool recovered,
                     struct deliver_result *res)
{
	char dir[4096], local[ADDR_LOCAL_MAX + 1], name[400], tmp[4700], new[4700];
	const char *at = strrchr(rcpt->addr, '@');
	size_t ll = at ? (size_t)(at - rcpt->addr) : 0;
	if (!at || ll >= sizeof local) {
		res->status = DELIVER_PERM;
		snprintf(res->reply, sizeof res->reply, "5.1.3 bad local address %s", rcpt->addr);
		return;
	}
	memcpy(local, rcpt->addr, ll);
	local[ll] = '\0';
	struct stat st;
	if (!mailbox_path(mail_dir, local, at + 1, dir, sizeof dir) || stat(dir, &st) != 0) {
		res->status = DELIVER_PERM;
		snprintf(res->reply, sizeof res->reply, "5.1.1 mailbox %s does not exist", rcpt->addr);
		return;
	}
	if (!mailbox_create(dir))
		return maildir_result(res, errno, "cannot create tmp/new/cur");
	maildir_name(name, sizeof name, hostname, e, rcpt->idx);
	if (recovered && maildir_has(dir, name)) {
		res->status = DELIVER_OK;
		snprintf(res->reply, sizeof res->reply, "2.0.0 already in maildir as %s", name);
		return;
	}
	snprintf(tmp, sizeof tmp, "%s/tmp/%s", dir, name);
	snprintf(new, sizeof new, "%s/new/%s", dir, name);
	/* O_TRUNC: a tmp/ file of this name is ours, left by a crash. */
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return maildir_result(res, errno, "cannot create file");
	int err = maildir_write(fd, r, e, rcpt);
	if (close(fd) != 0 && !err)
		err = errno;
	snprintf(dir + strlen(dir), sizeof dir - strlen(dir), "/new");
	if (!err && rename(tmp, new) != 0)
		err = errno;
	if (!err && !util_fsync_dir(dir))
		err = errno;
	if (err) {
		unlink(tmp);
		return maildir_result(res, err, "write failed");
	}
	res->status = DELIVER_OK;
	snprintf(res->reply, sizeof res->reply, "2.0.0 delivered to maildir %s", name);
}
