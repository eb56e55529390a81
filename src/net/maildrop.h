/* maildrop: the file format in which tern-sendmail hands a message to
 * ternd, and where the files wait. Shared by the writer (tools/sendmail)
 * and the reader (smtpd/dropfile.c, smtpd/pickup.c); header only.
 *
 * A file is one SMTP transaction written down, every line ended by CRLF:
 *
 *     TERN-MAILDROP 1 uid=1000 user=alice
 *     MAIL FROM:<alice@host.example> BODY=8BITMIME RET=HDRS ENVID=x
 *     RCPT TO:<bob@example.com> NOTIFY=FAILURE,DELAY
 *     RCPT TO:<carol@example.org>
 *     DATA
 *     Subject: ...          (the message, dot-stuffed, RFC 5321 4.5.2)
 *     .
 *
 * The first line names the format's version and the submitting user (for
 * the reader of a file moved aside; ternd trusts the file's owner, not
 * this line). The MAIL and RCPT lines are RFC 5321 4.1.1.2-3 commands
 * with the parameters a session takes (RFC 1652 BODY, RFC 3461 RET,
 * ENVID, NOTIFY, ORCPT), written by net/smtp.c and read by the session's
 * own parsers; the message after DATA is the DATA stream of RFC 5321
 * 4.1.1.4 and goes through the session's data parser, so a file can hold
 * nothing that an SMTP client could not send. Nothing follows the final
 * dot.
 *
 * Where: spool_dir/maildrop/. ternd makes it at start, owned by run_user
 * with the group maildrop_group, mode 1730 (as Postfix's maildrop): the
 * group may create files and enter, not list; the sticky bit keeps one
 * user from removing another's file. tern-sendmail, installed setgid to
 * that group, writes MAILDROP_TMP_PREFIX names (mode 0644, fsynced), then
 * renames each to its final name; ternd takes the final names only,
 * unlinks a file after its message is committed to the spool, and moves a
 * file it cannot take to spool_dir/maildrop/bad/ (MAILDROP_BAD).
 */
#ifndef TERN_MAILDROP_H
#define TERN_MAILDROP_H

#define MAILDROP_DIR "maildrop"
#define MAILDROP_BAD "bad"
#define MAILDROP_MAGIC "TERN-MAILDROP"
#define MAILDROP_VERSION 1
#define MAILDROP_TMP_PREFIX ".tmp."
#define MAILDROP_MODE 01730            /* the directory */
#define MAILDROP_FILE_MODE 0644        /* a file, readable by run_user */
#define MAILDROP_LINE_MAX 2048         /* an envelope line, CRLF included */
#define MAILDROP_USER_MAX 64           /* the user name on the first line */

#endif
