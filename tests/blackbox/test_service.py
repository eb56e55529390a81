"""ternd as a service: what systemd and the log readers see.

* sd_notify: a real datagram socket given as NOTIFY_SOCKET receives
  READY=1 once ternd listens as run_user, STOPPING=1 on SIGTERM, and only a
  STATUS= line when start-up fails.
* log_target=syslog: ternd's syslog(3) lines are read back from /dev/log.
  /dev/log is the machine's; the test does not take it over: ternd runs in
  a private mount namespace whose /dev is an overlay where /dev/log is the
  test's own datagram socket, so the test reads exactly the datagrams
  glibc's syslog(3) sends (priority, time, ident[pid], text).
* log_target=journal: a systemd-journald of the test's own, in a mount
  namespace whose /run is an overlay, takes ternd's entries, and
  journalctl reads them back by QUEUE_ID= and SESSION=, as an operator
  would. Where journald is not installed the test is skipped, saying so;
  the entry's fields are also checked by the unit tests (test_event).
  Without a journal, ternd says so and the lines go to stderr.
* The unit file passes `systemd-analyze verify` (with ExecStart pointing
  at the binary under test and the man pages of man/ on MANPATH), and
  `make install DESTDIR=...` stages the binaries, the unit, the man pages
  and the configuration.

The namespaces need root, unshare(1) and overlayfs; without them those
tests are skipped with the reason.
"""

import json
import os
import pwd
import re
import select
import shutil
import signal
import socket
import subprocess
from pathlib import Path

import pytest

from conftest import (BYE, DEADLINE, REPO, RUN_USER, crlf, make_traversable, run_ternd,
                      ternd_binary, wait_for)

MAILBOX = "kate@example.com"
SENDER = "chris@client.example"


class DatagramSocket:
    """A Unix datagram socket at path that anyone may send to (ternd sends
    as run_user); what arrived, in order, as text."""

    def __init__(self, path):
        self.path = str(path)
        make_traversable(Path(path).parent)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        os.chmod(self.path, 0o666)
        self.sock.setblocking(False)
        self.messages = []

    def received(self):
        while True:
            try:
                self.messages.append(self.sock.recv(65536).decode("utf-8", "replace"))
            except BlockingIOError:
                return self.messages

    def find(self, text):
        """The first message containing text, or None."""
        return next((m for m in self.received() if text in m), None)

    def close(self):
        self.sock.close()


@pytest.fixture
def dgram(tmp_path):
    """Factory: dgram(name) binds a DatagramSocket in the test's directory."""
    socks = []

    def make(name):
        s = DatagramSocket(tmp_path / name)
        socks.append(s)
        return s

    yield make
    for s in socks:
        s.close()


# --------------------------------------------------------------------------
# Private mount namespaces


_mounts_reason = []


def private_mounts_reason():
    """Why a private mount namespace with an overlay cannot be made here,
    or None when it can (tried once)."""
    if not _mounts_reason:
        _mounts_reason.append(_try_private_mounts())
    return _mounts_reason[0]


def _try_private_mounts():
    if os.geteuid() != 0:
        return "needs root (a mount namespace with an overlay over /dev)"
    if not shutil.which("unshare") or not shutil.which("nsenter"):
        return "unshare and nsenter (util-linux) are not installed"
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        script = overlay_script(Path(d), "/run", "true")
        p = subprocess.run(["unshare", "--mount", "--propagation", "private",
                            "sh", "-c", script, "sh", "true"], capture_output=True, timeout=DEADLINE)
        if p.returncode != 0:
            return ("cannot make a private mount namespace with an overlay: %s"
                    % p.stderr.decode("utf-8", "replace").strip())
    return None


def skip_without_private_mounts():
    reason = private_mounts_reason()
    if reason:
        pytest.skip(reason)


def overlay_script(tmp, target, setup):
    """sh text: an overlay over target (its changes kept in tmp), then the
    setup commands, then exec "$@"."""
    name = target.strip("/").replace("/", "-")
    up, work = tmp / (name + "-upper"), tmp / (name + "-work")
    up.mkdir(exist_ok=True)
    work.mkdir(exist_ok=True)
    return ('mount -t overlay overlay -o lowerdir=%s,upperdir=%s,workdir=%s %s && %s && exec "$@"'
            % (target, up, work, target, setup))


def overlay_wrap(tmp, target, setup):
    """A wrap for the ternd factory: ternd in a mount namespace of its own
    where target is an overlay changed by setup."""
    return ["unshare", "--mount", "--propagation", "private",
            "sh", "-c", overlay_script(tmp, target, setup), "sh"]


def journald_binary():
    for p in ("/lib/systemd/systemd-journald", "/usr/lib/systemd/systemd-journald"):
        if os.access(p, os.X_OK):
            return p
    return None


JOURNALD_CONF = """[Journal]
Storage=volatile
ReadKMsg=no
ForwardToSyslog=no
ForwardToKMsg=no
ForwardToConsole=no
ForwardToWall=no
RateLimitIntervalSec=0
"""


class PrivateJournal:
    """A systemd-journald of the test's own. A holder process keeps a mount
    namespace whose /run is an overlay (the changes in tmp/run-upper):
    journald's sockets and its volatile journal live there, and nothing of
    the machine's /run changes. `enter` is the wrap that runs a command in
    that namespace; query() runs journalctl on the journal's files."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.upper = tmp / "run-upper"
        conf = self.upper / "systemd" / "journald.conf.d"
        conf.mkdir(parents=True)
        (conf / "tern-test.conf").write_text(JOURNALD_CONF)
        script = overlay_script(tmp, "/run", "echo mounted")
        self.holder = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh",
             "sleep", "600"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT)
        self.journald = None
        self._await_mount()
        self.enter = ["nsenter", "-t", str(self.holder.pid), "-m", "--"]
        self.logpath = tmp / "journald.log"
        with open(self.logpath, "wb") as f:
            self.journald = subprocess.Popen(self.enter + [journald_binary()],
                                             stdin=subprocess.DEVNULL, stdout=f, stderr=f)
        wait_for("journald's socket (log: %s)" % self.logpath,
                 lambda: (self.upper / "systemd" / "journal" / "socket").exists()
                 or self.journald.poll() is not None)
        if self.journald.poll() is not None:
            raise AssertionError("systemd-journald exited with %d:\n%s"
                                 % (self.journald.returncode, self.logpath.read_text()))

    def _await_mount(self):
        ready, _, _ = select.select([self.holder.stdout], [], [], DEADLINE)
        line = self.holder.stdout.readline() if ready else b""
        if line.strip() != b"mounted":
            self.holder.kill()
            raise AssertionError("no private /run: %r" % (line + self.holder.stdout.read()))

    def query(self, *matches):
        """journalctl's entries (dicts) for the matches, e.g. QUEUE_ID=..."""
        p = subprocess.run(["journalctl", "-D", str(self.upper / "log" / "journal"),
                            "-o", "json", "--no-pager"] + list(matches),
                           capture_output=True, timeout=DEADLINE)
        assert p.returncode == 0, "journalctl %s: %s" % (matches, p.stderr.decode())
        return [json.loads(line) for line in p.stdout.splitlines() if line.strip()]

    def stop(self):
        for proc in (self.journald, self.holder):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(DEADLINE)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self.holder.stdout.close()


@pytest.fixture
def private_journal(tmp_path):
    """A PrivateJournal, stopped after the test's daemons (request it
    before `ternd`)."""
    skip_without_private_mounts()
    if not journald_binary() or not shutil.which("journalctl"):
        pytest.skip("systemd-journald or journalctl is not installed "
                    "(scripts/install-deps test installs systemd)")
    j = PrivateJournal(tmp_path)
    yield j
    j.stop()


def send_one(server, subject):
    """One message from SENDER to MAILBOX, delivered; its queue id."""
    with server.session() as c:
        qid = c.send_mail(SENDER, [MAILBOX], crlf("Subject: " + subject, "", "hello"))
        c.expect("QUIT", BYE)
    server.wait_messages(MAILBOX, 1)
    return qid


def run_user_uid():
    return pwd.getpwnam(RUN_USER).pw_uid if os.geteuid() == 0 else os.geteuid()


# --------------------------------------------------------------------------
# sd_notify


def test_notify_ready_then_stopping(ternd, dgram):
    notify = dgram("notify.sock")
    s = ternd(env=dict(os.environ, NOTIFY_SOCKET=notify.path),
              ready=lambda: notify.find("READY=1"))
    # READY=1 came: the port answers and ternd is run_user already
    assert notify.received() == ["READY=1\nSTATUS=accepting mail on 127.0.0.1:%d" % s.port]
    with open("/proc/%d/status" % s.proc.pid) as f:
        uids = next(line for line in f if line.startswith("Uid:")).split()[1:]
    assert uids == [str(run_user_uid())] * 4, "ternd's uids after READY=1: %s" % uids
    with s.session() as c:
        c.expect("QUIT", BYE)
    s.stop_checked()
    assert notify.received()[1:] == ["STOPPING=1\nSTATUS=shutting down (signal 15)"]


def test_notify_failed_start(tmp_path, dgram):
    notify = dgram("notify.sock")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        make_traversable(tmp_path)
        rc, _, err = run_ternd(["-o", "listen=127.0.0.1:%d" % port,
                                "-o", "spool_dir=%s" % (tmp_path / "spool"),
                                "-o", "mail_dir=%s" % (tmp_path / "mail")],
                               env=dict(os.environ, NOTIFY_SOCKET=notify.path))
    assert rc == 2, "ternd on a port in use exited %d:\n%s" % (rc, err)
    assert notify.received() == ["STATUS=start-up failed (see the log)"]


# --------------------------------------------------------------------------
# log_target = syslog


SYSLOG_LINE = r"<%d>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d ternd\[%d\]: %s"


def test_syslog(ternd, tmp_path, dgram):
    skip_without_private_mounts()
    devlog = dgram("devlog.sock")
    wrap = overlay_wrap(tmp_path, "/dev", "ln -sfn %s /dev/log" % devlog.path)
    s = ternd(wrap=wrap, ready=lambda: devlog.find(" ready: "), log_target="syslog",
              mailboxes=[MAILBOX])
    qid = send_one(s, "syslog")
    queued = wait_for("the queued line in syslog", lambda: devlog.find(qid + ": queued: "))
    # facility mail (2), info (6): <22>; the text is the stderr line's
    want = (SYSLOG_LINE % (22, s.proc.pid, "info: %s: queued: from=<%s>, size=\\d+, nrcpt=1, "
                           "session=\\d+" % (qid, re.escape(SENDER))))
    assert re.fullmatch(want, queued), "syslog line %r\ndoes not match %r" % (queued, want)
    delivered = wait_for("the delivery line in syslog", lambda: devlog.find(qid + ": delivery: "))
    assert "status=sent" in delivered and delivered.startswith("<22>"), delivered
    s.stop_checked()
    stopped = [m for m in devlog.received() if m.endswith(": info: stopped")]
    assert len(stopped) == 1, "no 'stopped' line in syslog after SIGTERM"
    assert qid not in s.log(), "syslog lines also went to stderr:\n" + s.log()


# --------------------------------------------------------------------------
# log_target = journal


def test_journal(private_journal, ternd, dgram):
    notify = dgram("notify.sock")
    s = ternd(wrap=private_journal.enter, env=dict(os.environ, NOTIFY_SOCKET=notify.path),
              ready=lambda: notify.find("READY=1"), log_target="journal", mailboxes=[MAILBOX])
    qid = send_one(s, "journal")

    def both():
        got = {e.get("TERN_EVENT"): e for e in private_journal.query("QUEUE_ID=" + qid)}
        return got if "queued" in got and "delivery" in got else None
    entries = wait_for("journalctl QUEUE_ID=%s: queued and delivery" % qid, both)
    q = entries["queued"]
    session = q["SESSION"]
    want = {"PRIORITY": "6", "SYSLOG_IDENTIFIER": "ternd", "SYSLOG_FACILITY": "2",
            "QUEUE_ID": qid, "TERN_FROM": "<%s>" % SENDER, "TERN_NRCPT": "1",
            "_PID": str(s.proc.pid), "_UID": str(run_user_uid())}
    assert {k: q.get(k) for k in want} == want, q
    assert q["MESSAGE"] == "%s: queued: from=<%s>, size=%s, nrcpt=1, session=%s" % (
        qid, SENDER, q["TERN_SIZE"], session)
    d = entries["delivery"]
    assert d["TERN_TO"] == "<%s>" % MAILBOX and d["TERN_STATUS"] == "sent", d
    assert d["SESSION"] == session, "the delivery names the session that brought the message"
    connect = [e for e in private_journal.query("SESSION=" + session, "TERN_EVENT=connect")]
    assert [e["TERN_CLIENT"] for e in connect] == ["[127.0.0.1]"], connect
    assert qid not in s.log(), "journal lines also went to stderr:\n" + s.log()


def test_no_journal_lines_go_to_stderr(ternd, tmp_path):
    """No journald (its socket gone from a private /run): ternd says so and
    logs to stderr; nothing is lost."""
    skip_without_private_mounts()
    wrap = overlay_wrap(tmp_path, "/run", "rm -rf /run/systemd/journal")
    s = ternd(wrap=wrap, log_target="journal", mailboxes=[MAILBOX])
    assert ("warning: log_target = journal: no journal (/run/systemd/journal/socket is not "
            "there); logging to stderr") in s.log()
    qid = send_one(s, "no journal")
    wait_for("the queued line on stderr", lambda: qid + ": queued: " in s.log())


# --------------------------------------------------------------------------
# The unit file and make install


UNIT = REPO / "etc" / "ternd.service"
EXEC_START = "ExecStart=/usr/local/sbin/ternd -c /etc/tern/tern.conf"


def man_tree(tmp):
    """man/NAME.N as tmp/man/manN/NAME.N, for MANPATH."""
    root = tmp / "man"
    for page in sorted((REPO / "man").glob("*.[0-9]")):
        d = root / ("man" + page.suffix[1:])
        d.mkdir(parents=True, exist_ok=True)
        (d / page.name).symlink_to(page)
    return root


def analyze_verify(unit, env):
    p = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True,
                       env=env, timeout=60)
    return p.returncode, (p.stdout + p.stderr).strip()


def test_unit_file_verifies(tmp_path):
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed (scripts/install-deps test installs systemd)")
    text = UNIT.read_text()
    assert EXEC_START in text.splitlines(), "ExecStart is not %r (make install rewrites it)" % EXEC_START
    unit = tmp_path / "ternd.service"
    unit.write_text(text.replace("/usr/local/sbin/ternd", ternd_binary()))
    env = dict(os.environ, MANPATH=str(man_tree(tmp_path)), SYSTEMD_LOG_COLOR="0")
    rc, out = analyze_verify(unit, env)
    if rc != 0:
        least = tmp_path / "least.service"
        least.write_text("[Service]\nExecStart=/bin/true\n")
        rc0, out0 = analyze_verify(least, env)
        if rc0 != 0:
            pytest.skip("systemd-analyze verify cannot run here (it fails on a one-line "
                        "unit too): " + out0)
    # verify exits 0 on unknown keys and bad values: any word from it is a failure
    assert rc == 0 and out == "", "systemd-analyze verify:\n" + out


@pytest.mark.parametrize("prefix", ["/usr/local", "/usr"])
def test_make_install_stages_everything(tmp_path, prefix):
    dest = tmp_path / "dest"
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    p = subprocess.run(["make", "-s", "-C", str(REPO), "install", "DESTDIR=%s" % dest,
                        "PREFIX=%s" % prefix], capture_output=True, text=True, timeout=600,
                       env=env)
    assert p.returncode == 0, "make install:\n" + p.stdout + p.stderr
    root = Path(str(dest) + prefix)
    for f in ("sbin/ternd", "bin/tern-probe"):
        assert os.access(root / f, os.X_OK), f
    pages = sorted((REPO / "man").glob("*.[0-9]"))
    assert pages
    for page in pages:
        assert (root / "share" / "man" / ("man" + page.suffix[1:]) / page.name).read_bytes() == \
            page.read_bytes(), page.name
    unit = (root / "lib" / "systemd" / "system" / "ternd.service").read_text()
    assert "ExecStart=%s/sbin/ternd -c /etc/tern/tern.conf" % prefix in unit.splitlines()
    assert "ReadWritePaths=/var/lib/tern/spool /var/lib/tern/mail" in unit.splitlines()
    assert unit == UNIT.read_text().replace("/usr/local/sbin/ternd", prefix + "/sbin/ternd")
    conf = (dest / "etc" / "tern" / "tern.conf").read_text().splitlines()
    for line in ("log_target = journal", "spool_dir = /var/lib/tern/spool",
                 "mail_dir = /var/lib/tern/mail"):
        assert line in conf, line
    for d in ("spool", "mail"):
        assert (dest / "var" / "lib" / "tern" / d).is_dir(), "ReadWritePaths needs /var/lib/tern/" + d
