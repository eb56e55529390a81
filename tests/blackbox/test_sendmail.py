"""tern-sendmail, as the programs that run /usr/sbin/sendmail use it.

The real callers (PHP's mail(), git send-email, swaks through -bs,
bsd-mailx) and cron's exact argument lists deliver through a running
ternd into a Maildir; mail submitted while ternd is stopped waits in the
maildrop and arrives after it starts; a setgid copy submits for an
unprivileged user; bad input (binary data, a 100 MB line, a message over
max_message_size, a malformed maildrop file) gets a clear error, leaves
nothing behind or is moved aside, and ternd keeps serving.

tern-sendmail reads the test's configuration with -C (the same spool_dir,
hostname and listener as the test's ternd). Every wait polls against a
deadline (conftest.wait_for).
"""

import grp
import os
import pwd
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from conftest import DEADLINE, REPO, wait_for
from peers import parse_bytes, report_parts

SENDMAIL = os.environ.get("TERN_SENDMAIL") or str(REPO / "build" / "tern-sendmail")
RECEIVED_LOCAL = re.compile(
    r"Received: by mx\.test\.example \(tern, from local user (\S+), uid (\d+)\)")

EX_USAGE, EX_DATAERR, EX_NOUSER, EX_UNAVAILABLE, EX_CANTCREAT = 64, 65, 67, 69, 73


def write_conf(server, **extra):
    """The test's configuration as a file for -C (readable by anyone, as
    /etc/tern/tern.conf is)."""
    opts = dict(server.opts, **extra)
    path = server.tmp / "tern.conf"
    path.write_text("".join("%s = %s\n" % (k, v) for k, v in opts.items() if v is not None))
    os.chmod(path, 0o644)
    return path


def sendmail(conf, args, data=b"", timeout=DEADLINE, argv0=None, **kw):
    """Run tern-sendmail -C conf args with data on standard input."""
    if isinstance(data, str):
        data = data.encode()
    argv = [argv0 or SENDMAIL, "-C", str(conf)] + list(args)
    return subprocess.run(argv, input=data, capture_output=True, timeout=timeout,
                          executable=SENDMAIL, **kw)


def maildrop(server):
    """The files waiting in the maildrop (temporary ones included)."""
    d = server.spool_dir / "maildrop"
    return sorted(p.name for p in d.iterdir() if p.name != "bad")


def bad_files(server):
    d = server.spool_dir / "maildrop" / "bad"
    return sorted(d.iterdir()) if d.exists() else []


def local_message(server, rcpt, marker, user="root", uid=0):
    """The delivered message holding marker, its Received header checked."""
    data = server.wait_message_with(rcpt, marker)
    m = RECEIVED_LOCAL.search(data.decode("utf-8", "replace"))
    assert m, "no Received header of a local submission in:\n%r" % data[:1500]
    assert m.group(1, 2) == (user, str(uid)), m.group(0)
    return data


def header_block(data):
    return data.split(b"\n\n", 1)[0].decode("utf-8", "replace")


# --------------------------------------------------------------------------
# The real callers


def test_php_mail(ternd):
    if not shutil.which("php"):
        pytest.skip("php-cli missing: scripts/install-deps test")
    server = ternd(mailboxes=["kate@example.com"])
    conf = write_conf(server)
    code = ('$ok = mail("kate@example.com", "php marker", "line one\\n.\\nline three", '
            '"From: Web <www@example.com>\\r\\nX-Mailer: php", "-fbounces@example.com"); '
            'exit($ok ? 0 : 1);')
    p = subprocess.run(["php", "-n", "-d", "sendmail_path=%s -C %s -t -i" % (SENDMAIL, conf),
                        "-r", code], capture_output=True, timeout=DEADLINE)
    assert p.returncode == 0, p.stderr.decode() + p.stdout.decode()
    data = local_message(server, "kate@example.com", "php marker")
    assert data.startswith(b"Return-Path: <bounces@example.com>\n")
    head = header_block(data)
    assert "From: Web <www@example.com>" in head and "X-Mailer: php" in head
    assert re.search(r"^Date: ", head, re.M) and re.search(r"^Message-ID: <", head, re.M)
    assert data.endswith(b"\n\nline one\n.\nline three\n"), data[-200:]


def test_git_send_email(ternd, tmp_path):
    if subprocess.run(["git", "send-email", "-h"], capture_output=True).returncode == 1 and \
            not Path("/usr/lib/git-core/git-send-email").exists():
        pytest.skip("git-email missing: scripts/install-deps test")
    server = ternd(mailboxes=["kate@example.com", "bob@example.com"])
    conf = write_conf(server)
    repo = tmp_path / "repo"
    env = dict(os.environ, GIT_AUTHOR_NAME="Dev", GIT_AUTHOR_EMAIL="dev@example.com",
               GIT_COMMITTER_NAME="Dev", GIT_COMMITTER_EMAIL="dev@example.com",
               HOME=str(tmp_path))
    git = lambda *a: subprocess.run(["git", "-C", str(repo)] + list(a), env=env,
                                    capture_output=True, timeout=DEADLINE, check=True)
    repo.mkdir()
    git("init", "-q")
    (repo / "f.c").write_text("int main(void) { return 0; }\n")
    git("add", "f.c")
    git("commit", "-q", "-m", "git marker: a patch by mail")
    git("format-patch", "-1", "-o", str(tmp_path / "patches"))
    [patch] = list((tmp_path / "patches").iterdir())
    p = subprocess.run(["git", "send-email", "--sendmail-cmd=%s -C %s" % (SENDMAIL, conf),
                        "--from=Dev <dev@example.com>", "--envelope-sender=dev@example.com",
                        "--to=kate@example.com",
                        "--cc=bob@example.com", "--confirm=never", "--no-chain-reply-to",
                        "--suppress-cc=all", str(patch)],
                       cwd=repo, env=env, capture_output=True, timeout=DEADLINE,
                       stdin=subprocess.DEVNULL)
    assert p.returncode == 0, p.stderr.decode() + p.stdout.decode()
    for rcpt in ("kate@example.com", "bob@example.com"):
        data = local_message(server, rcpt, "git marker")
        assert data.startswith(b"Return-Path: <dev@example.com>\n")
        assert b"+int main(void) { return 0; }\n" in data


def test_swaks_through_bs(ternd):
    server = ternd(mailboxes=["kate@example.com"])
    conf = write_conf(server)
    p = subprocess.run(["swaks", "--pipe", "%s -C %s -bs" % (SENDMAIL, conf),
                        "--from", "app@example.com", "--to", "kate@example.com",
                        "--header", "Subject: swaks marker", "--body", "via -bs"],
                       capture_output=True, timeout=DEADLINE)
    out = p.stdout.decode()
    assert p.returncode == 0, out + p.stderr.decode()
    assert "220 mx.test.example ESMTP tern ready" in out    # ternd's own session
    assert re.search(r"250 2\.6\.0 <[0-9A-F]{16}@mx\.test\.example> Queued", out)
    data = server.wait_message_with("kate@example.com", "swaks marker")
    assert b"with ESMTP id" in data and b"via -bs" in data


def test_bsd_mailx(ternd, tmp_path):
    if not shutil.which("bsd-mailx"):
        pytest.skip("bsd-mailx missing: scripts/install-deps test")
    server = ternd(mailboxes=["kate@example.com"])
    conf = write_conf(server)
    wrapper = tmp_path / "sendmail"   # mailx takes a path, not a command line
    wrapper.write_text('#!/bin/sh\nexec %s -C %s "$@"\n' % (SENDMAIL, conf))
    wrapper.chmod(0o755)
    rc = tmp_path / "mailrc"
    rc.write_text("set sendmail=%s\n" % wrapper)
    p = subprocess.run(["bsd-mailx", "-s", "mailx marker", "kate@example.com"],
                       input=b"from mailx\n", env=dict(os.environ, MAILRC=str(rc)),
                       capture_output=True, timeout=DEADLINE)
    assert p.returncode == 0, p.stderr.decode()
    data = local_message(server, "kate@example.com", "mailx marker")
    assert b"\n\nfrom mailx\n" in data


# Cron's mails as the daemons send them: the argument lists of their
# sources (Debian cron's do_command.c, cronie's MAILARGS), the headers
# they write.
CRON_OUTPUT = ("From: root (Cron Daemon)\n"
               "To: kate\n"
               "Subject: Cron <kate@host> /usr/local/bin/backup %s\n"
               "MIME-Version: 1.0\n"
               "Content-Type: text/plain; charset=UTF-8\n"
               "Content-Transfer-Encoding: 8bit\n"
               "X-Cron-Env: <SHELL=/bin/sh>\n"
               "X-Cron-Env: <HOME=/root>\n"
               "\n"
               "backup done: 3 files\n")


@pytest.mark.parametrize("daemon,args", [
    ("debian", ["-FCronDaemon", "-i", "-B8BITMIME", "-oem", "kate"]),
    ("cronie", ["-FCronDaemon", "-i", "-odi", "-oem", "-oi", "-t", "-f", "root"]),
    ("busybox", ["-t", "-fx"]),
])
def test_cron_argument_lists(ternd, daemon, args):
    server = ternd(mailboxes=["kate@mx.test.example"])
    conf = write_conf(server)
    marker = "cron-%s-marker" % daemon
    p = sendmail(conf, args, CRON_OUTPUT % marker)
    assert p.returncode == 0, p.stderr.decode()
    data = local_message(server, "kate@mx.test.example", marker)
    sender = {"debian": "root", "cronie": "root", "busybox": "x"}[daemon]
    assert data.startswith(b"Return-Path: <%s@mx.test.example>\n" % sender.encode())
    assert b"From: root (Cron Daemon)\n" in data and b"\nbackup done: 3 files\n" in data


# --------------------------------------------------------------------------
# The maildrop while ternd is stopped, and for an unprivileged user


def test_submitted_while_stopped_arrive_after_start(ternd, tmp_path):
    first = ternd(mailboxes=["kate@example.com", "bob@example.com"])
    conf = write_conf(first)
    first.stop_checked()
    for i in range(3):
        p = sendmail(conf, ["-t"], "To: kate@example.com\nCc: bob@example.com\n"
                     "Subject: stopped %d\n\nwaiting\n" % i)
        assert p.returncode == 0, p.stderr.decode()
    assert len(maildrop(first)) == 3
    second = ternd(tmp=tmp_path)     # the same spool
    for i in range(3):
        for rcpt in ("kate@example.com", "bob@example.com"):
            local_message(second, rcpt, "stopped %d" % i)
    wait_for("an empty maildrop", lambda: maildrop(second) == [])
    assert bad_files(second) == []


def setgid_copy(tmp_path, group):
    """tern-sendmail installed as make install does: setgid to the drop
    group (in the test's directory, which every user may enter)."""
    path = tmp_path / "tern-sendmail"
    shutil.copy(SENDMAIL, path)
    os.chown(path, 0, grp.getgrnam(group).gr_gid)
    os.chmod(path, 0o2755)
    return path


def as_nobody():
    nobody = pwd.getpwnam("nobody")

    def drop():
        os.setgroups([])
        os.setgid(nobody.pw_gid)
        os.setuid(nobody.pw_uid)
    return nobody, drop


def test_setgid_for_an_unprivileged_user(ternd, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to make a setgid copy and become nobody")
    server = ternd(mailboxes=["kate@example.com"])
    conf = write_conf(server)
    nobody, drop = as_nobody()
    plain = tmp_path / "plain-sendmail"
    shutil.copy(SENDMAIL, plain)
    os.chmod(plain, 0o755)
    msg = b"To: kate@example.com\nSubject: nobody marker\n\nfrom nobody\n"
    p = subprocess.run([str(plain), "-C", str(conf), "-t"], input=msg, capture_output=True,
                       preexec_fn=drop, timeout=DEADLINE)
    assert p.returncode == EX_CANTCREAT, p
    assert b"tern-sendmail: cannot write in" in p.stderr and b"setgid tern-drop" in p.stderr
    sg = setgid_copy(tmp_path, "tern-drop")
    p = subprocess.run([str(sg), "-C", str(conf), "-t"], input=msg, capture_output=True,
                       preexec_fn=drop, timeout=DEADLINE)
    assert p.returncode == 0, p.stderr.decode()
    data = local_message(server, "kate@example.com", "nobody marker", user="nobody",
                         uid=nobody.pw_uid)
    assert data.startswith(b"Return-Path: <nobody@mx.test.example>\n")
    # the group may enter and create, not list; spool_dir lets anyone pass
    # (to maildrop/ and the control socket) and read nothing
    md = server.spool_dir / "maildrop"
    st = md.stat()
    assert (st.st_mode & 0o7777, grp.getgrgid(st.st_gid).gr_name) == (0o1730, "tern-drop")
    assert server.spool_dir.stat().st_mode & 0o7777 == 0o711
    for what in (md, server.spool_dir):
        p = subprocess.run(["ls", str(what)], preexec_fn=drop, capture_output=True)
        assert p.returncode != 0, "%s listed by nobody" % what
    p = subprocess.run(["cat", str(server.spool_dir / "queue.db")], preexec_fn=drop,
                       capture_output=True)
    assert p.returncode != 0 and b"Permission denied" in p.stderr


# --------------------------------------------------------------------------
# What tern-sendmail does to a message


def test_lines_dots_mbox_and_added_headers(ternd):
    server = ternd(mailboxes=["kate@example.com", "hidden@example.com"])
    conf = write_conf(server)
    crlf = (b"From alice Mon Dec  1 10:00:00 2026\r\n"
            b"To: Kate <kate@example.com>\r\n"
            b"Bcc: hidden@example.com\r\n"
            b"Subject: crlf marker\r\n"
            b"\r\n"
            b"..two dots\r\n"
            b".\r\n"
            b"after the dot\r\n")
    p = sendmail(conf, ["-t", "-i", "-F", 'Alice "A" Smith', "-f", "alice@example.com"], crlf)
    assert p.returncode == 0, p.stderr.decode()
    for rcpt in ("kate@example.com", "hidden@example.com"):
        data = local_message(server, rcpt, "crlf marker")
        head = header_block(data)
        assert "Bcc" not in head and "From alice" not in data.decode()
        assert 'From: "Alice \\"A\\" Smith" <alice@example.com>' in head, head
        assert data.endswith(b"\n\n..two dots\n.\nafter the dot\n"), data[-100:]
    # without -i a lone dot ends the message (sendmail(8)); LF lines
    p = sendmail(conf, ["kate@example.com"],
                 b"Subject: unix-lines marker\nFrom: k@example.com\n\nkept\n.\ndropped\n")
    assert p.returncode == 0, p.stderr.decode()
    data = local_message(server, "kate@example.com", "unix-lines marker")
    assert data.endswith(b"\n\nkept\n") and b"dropped" not in data
    # a message without a header section: headers made, the line kept as body
    p = sendmail(conf, ["kate@example.com"], b"just a line, no marker header\n")
    assert p.returncode == 0
    data = server.wait_message_with("kate@example.com", "just a line")
    assert re.search(rb"\nFrom: root@mx\.test\.example\n", data)
    assert data.endswith(b"\n\njust a line, no marker header\n")


def test_exit_codes_and_modes(ternd):
    server = ternd()
    conf = write_conf(server)
    p = sendmail(conf, ["-Z"])
    assert p.returncode == EX_USAGE and p.stderr.startswith(b"tern-sendmail: -Z: unknown option")
    p = sendmail(conf, [], b"Subject: x\n\nno recipient\n")
    assert p.returncode == EX_USAGE and b"no recipients" in p.stderr
    p = sendmail(conf, ["a@@b"], b"x\n")
    assert p.returncode == EX_NOUSER and b"a@@b: not a recipient address" in p.stderr
    p = sendmail(conf, ["-t"], b"To: \"unclosed@example.com\n\nx\n")
    assert p.returncode == EX_DATAERR
    # mailq, -bp and -q are ternctl's queue and flush, on the daemon of -C
    p = sendmail(conf, ["-bp"])
    assert p.returncode == 0 and p.stdout == b"Mail queue is empty\n", p.stderr
    p = sendmail(conf, ["-qR", "example.com"])
    assert p.returncode == 0 and p.stdout == b"flush example.com: 0 recipients\n", p.stderr
    p = sendmail(conf, ["-q"])
    assert p.returncode == 0 and p.stdout.startswith(b"flush all: "), p.stderr
    p = sendmail(conf, ["-bi"])
    assert p.returncode == 0 and b"nothing to build" in p.stdout
    p = sendmail(conf, [], argv0="newaliases")
    assert p.returncode == 0 and b"newaliases" in p.stdout
    p = sendmail(conf, [], argv0="mailq")
    assert p.returncode == 0 and p.stdout == b"Mail queue is empty\n", p.stderr
    p = sendmail(server.tmp / "missing.conf", ["x@example.com"], b"x\n")
    assert p.returncode == 78   # EX_CONFIG
    assert maildrop(server) == []
    server.stop_checked()
    p = sendmail(conf, ["-bs"], b"QUIT\r\n")
    assert p.returncode == EX_UNAVAILABLE
    assert b"tern-sendmail: -bs: ternd is not running" in p.stderr


# --------------------------------------------------------------------------
# Bad input


def test_binary_data_refused_nothing_left(server):
    conf = write_conf(server)
    blob = bytes(range(256)) * 64
    p = sendmail(conf, ["kate@example.com"], b"Subject: bin\n\n" + blob)
    assert p.returncode == EX_DATAERR, p
    assert re.match(rb"tern-sendmail: line \d+: a (NUL octet|CR that does not end the line)",
                    p.stderr), p.stderr
    assert maildrop(server) == []
    server.barrier("kate@example.com")


def test_100_mb_line_refused_early(server):
    conf = write_conf(server)
    proc = subprocess.Popen([SENDMAIL, "-C", str(conf), "kate@example.com"],
                            stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    chunk = b"a" * (1 << 20)
    sent = 0
    try:
        for _ in range(100):        # 100 MB, no line end
            proc.stdin.write(chunk)
            sent += len(chunk)
        proc.stdin.close()
    except BrokenPipeError:
        pass
    err = proc.stderr.read()
    assert proc.wait(DEADLINE) == EX_DATAERR
    assert sent < 100 << 20, "tern-sendmail read the whole line"
    assert b"line 1 is longer than 998 octets (max_line_length" in err, err
    assert maildrop(server) == []
    server.barrier("kate@example.com")


def test_over_max_message_size(server):
    conf = write_conf(server, max_message_size="100k")
    body = b"".join(b"line %06d of a long message\n" % i for i in range(8000))
    p = sendmail(conf, ["kate@example.com"], b"Subject: big\n\n" + body)
    assert p.returncode == EX_DATAERR
    assert b"larger than max_message_size (102400 octets)" in p.stderr
    assert maildrop(server) == []


def test_malformed_maildrop_files_moved_aside(server):
    server.make_maildir("kate@example.com")
    md = server.spool_dir / "maildrop"
    files = {
        "1.garbage": b"\x7fELF\x02\x01\x01\x00" * 100,
        "2.no-dot": (b"TERN-MAILDROP 1 uid=0 user=root\r\nMAIL FROM:<a@example.com>\r\n"
                     b"RCPT TO:<kate@example.com>\r\nDATA\r\nSubject: cut short\r\n"),
        "3.bare-lf": (b"TERN-MAILDROP 1 uid=0 user=root\r\nMAIL FROM:<a@example.com>\r\n"
                      b"RCPT TO:<kate@example.com>\r\nDATA\r\nbare\nlf\r\n.\r\n"),
        "4.no-rcpt": (b"TERN-MAILDROP 1 uid=0 user=root\r\nMAIL FROM:<a@example.com>\r\n"
                      b"DATA\r\nx\r\n.\r\n"),
    }
    for name, data in files.items():
        (md / (".tmp." + name)).write_bytes(data)
        os.rename(md / (".tmp." + name), md / name)
    wait_for("four files in bad/", lambda: len(bad_files(server)) == 4)
    for f in bad_files(server):
        assert f.read_bytes() == files[f.name], "%s changed on its way aside" % f.name
    log = server.log()
    for name, why in (("1.garbage", "not a maildrop file"), ("2.no-dot", "does not end"),
                      ("3.bare-lf", "bare CR or LF"), ("4.no-rcpt", "no recipients")):
        assert re.search(r"pickup: file=%s, .*problem=[^,]*%s.*moved=" % (re.escape(name), why),
                         log), "no log line for %s in:\n%s" % (name, log)
    assert maildrop(server) == []
    server.barrier("kate@example.com")


def test_unknown_recipient_returned_to_the_sender(ternd):
    """The program that ran sendmail has gone: an unknown local recipient
    comes back to the sender as a delivery-status report (as Postfix's
    local(8) "unknown user"), and the known one gets the message."""
    server = ternd(mailboxes=["kate@example.com", "bob@example.com"])
    conf = write_conf(server)
    p = sendmail(conf, ["-f", "kate@example.com", "-i", "nobody@example.com", "bob@example.com"],
                 b"Subject: half known\n\nhalf-known-body\n")
    assert p.returncode == 0, p.stderr
    local_message(server, "bob@example.com", "half-known-body")
    report = server.wait_message_with("kate@example.com", "half known")
    human, _, rcpts, returned = report_parts(parse_bytes(report))
    assert [r["Final-Recipient"] for r in rcpts] == ["rfc822; nobody@example.com"]
    assert rcpts[0]["Action"] == "failed" and rcpts[0]["Status"] == "5.1.1"
    assert "<nobody@example.com>: 5.1.1 nobody@example.com: user unknown" in human
    assert b"half-known-body" in returned.as_bytes()
    log = server.log()
    assert re.search(r"to=<nobody@example\.com>, reason=5\.1\.1 [^,]*user unknown, "
                     r"report=to the sender", log), log
    assert maildrop(server) == [] and bad_files(server) == []
    server.barrier("kate@example.com")
