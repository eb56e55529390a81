"""Black-box test harness for ternd.

Every test talks to a real ternd process over 127.0.0.1, exactly as a client
(or a person with telnet) would. The harness:

* starts ternd on a free port with a private temporary spool and mail
  directory (the `ternd` factory fixture, and `server` for the defaults);
* waits until the port accepts connections (10 s deadline, failing at once
  with the log when the process exits);
* on teardown sends SIGTERM, waits up to 10 s, and fails the test when the
  exit code is not 0 or the log holds a sanitizer report;
* attaches the ternd log and every client transcript to failure reports.

Environment: TERND selects the binary (default <repo>/build/ternd).
Only the standard library and pytest are used. Nothing sleeps for a fixed
time: every wait polls against a deadline.
"""

import email.utils
import itertools
import os
import pwd
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from peers import SmtpSink, free_port_on

REPO = Path(__file__).resolve().parents[2]
TERND = os.environ.get("TERND") or str(REPO / "build" / "ternd")

HOSTNAME = "mx.test.example"
LOCAL_DOMAINS = "example.com,mx.test.example"
DEADLINE = 10.0  # seconds, for every wait
POLL = 0.02      # seconds between two looks

SANITIZER_MARKERS = (
    "ERROR: AddressSanitizer",
    "ERROR: LeakSanitizer",
    "runtime error:",
    "WARNING: ThreadSanitizer",
    "WARNING: MemorySanitizer",
)

# Replies that several test files share. A str ending in "..." is a prefix;
# a compiled pattern must match the whole reply (lines joined by "\n").
GREETING = "220 mx.test.example ESMTP tern ready"
HELO_OK = "250 mx.test.example Hello [127.0.0.1]"
SENDER_OK = "250 2.1.0 Sender OK"
RCPT_OK = "250 2.1.5 Recipient OK"
USER_UNKNOWN = "550 5.1.1 User unknown"
NO_RELAY = "550 5.7.1 Unable to relay"
START_DATA = "354 Start mail input; end with <CRLF>.<CRLF>"
BYE = "221 2.0.0 Service closing transmission channel"
OK = "250 2.0.0 OK"
QUEUED = re.compile(
    r"250 2\.6\.0 <([0-9A-F]{16})@mx\.test\.example> Queued mail for delivery")
# After HELO there are no enhanced status codes (RFC 2034).
QUEUED_HELO = re.compile(
    r"250 <([0-9A-F]{16})@mx\.test\.example> Queued mail for delivery")


def ehlo_reply(size=None):
    """The whole EHLO reply; SIZE is any number unless given."""
    size_re = r"\d+" if size is None else re.escape(str(size))
    lines = [
        re.escape("250-mx.test.example Hello [127.0.0.1]"),
        "250-PIPELINING",
        "250-SIZE " + size_re,
        "250-8BITMIME",
        "250-ENHANCEDSTATUSCODES",
        "250-DSN",
        "250-SMTPUTF8",
        "250-CHUNKING",
        "250-BINARYMIME",
        "250 HELP",
    ]
    return re.compile("\n".join(lines))


EHLO_REPLY = ehlo_reply()


# --------------------------------------------------------------------------
# The "telnet" client


class Reply:
    """One complete SMTP reply: code and its lines (CRLF removed)."""

    def __init__(self, lines):
        self.lines = lines
        self.code = int(lines[0][:3])

    @property
    def text(self):
        return "\n".join(self.lines)

    def __repr__(self):
        return "Reply(%r)" % self.text


def reply_matches(reply, want):
    if isinstance(want, re.Pattern):
        return want.fullmatch(reply.text) is not None
    if want.endswith("..."):
        return reply.text.startswith(want[:-3])
    return reply.text == want


def describe(want):
    return want.pattern if isinstance(want, re.Pattern) else want


class Client:
    """A raw-socket SMTP client that sends what it is told, byte for byte.
    source: the local address to connect from (another loopback address,
    127.0.0.2, is another client as the server sees it)."""

    def __init__(self, port, timeout=DEADLINE, name="client", source=None):
        self.name = name
        self.timeout = timeout
        self.transcript = []
        self.buf = b""
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                             source_address=(source, 0) if source else None)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def history(self):
        return "\n".join(self.transcript)

    # -- sending
    def raw(self, data):
        if isinstance(data, str):
            data = data.encode("utf-8")
        shown = data if len(data) <= 300 else data[:300] + b"...(%d octets)" % len(data)
        self.transcript.append("C: %r" % shown)
        self.sock.sendall(data)

    def send(self, line):
        """Send one line as telnet would: the text and CRLF."""
        if isinstance(line, str):
            line = line.encode("utf-8")
        self.raw(line + b"\r\n")

    # -- receiving
    def _fail(self, what):
        raise AssertionError("%s: %s\nunparsed bytes: %r\ntranscript:\n%s"
                             % (self.name, what, self.buf, self.history()))

    def _readline(self):
        deadline = time.monotonic() + self.timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                self._fail("no complete reply line within %.0f s" % self.timeout)
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                self._fail("no complete reply line within %.0f s" % self.timeout)
            except OSError as e:
                self._fail("connection error while waiting for a reply: %s" % e)
            if not chunk:
                self._fail("server closed the connection while a reply was expected")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        if not line.endswith(b"\r"):
            self.transcript.append("S: %r" % line)
            self._fail("reply line not terminated by CRLF: %r" % line)
        text = line[:-1].decode("utf-8", "replace")
        self.transcript.append("S: " + text)
        return text

    def reply(self):
        """Read one complete reply: "ddd-..." lines up to "ddd ..."."""
        lines = []
        while True:
            line = self._readline()
            if not re.match(r"\d{3}([ -]|$)", line):
                self._fail("malformed reply line %r" % line)
            if lines and line[:3] != lines[0][:3]:
                self._fail("reply code changed inside a multi-line reply: %r" % line)
            lines.append(line)
            if len(line) == 3 or line[3] == " ":
                return Reply(lines)

    def cmd(self, line):
        self.send(line)
        return self.reply()

    def expect(self, line, want):
        """Send line (None: send nothing) and check the reply against want."""
        if line is not None:
            self.send(line)
        r = self.reply()
        if not reply_matches(r, want):
            raise AssertionError(
                "%s: after sending %r expected %r\nbut the server replied %r\ntranscript:\n%s"
                % (self.name, line, describe(want), r.text, self.history()))
        return r

    def expect_reply(self, want, after="(pipelined)"):
        r = self.reply()
        if not reply_matches(r, want):
            raise AssertionError(
                "%s: after %s expected %r\nbut the server replied %r\ntranscript:\n%s"
                % (self.name, after, describe(want), r.text, self.history()))
        return r

    def converse(self, script):
        """Replay a scripted conversation: (line, expected) pairs. line None
        reads a reply without sending; expected None sends without reading
        (message lines after DATA). Returns the replies read."""
        out = []
        for line, want in script:
            if want is None:
                self.send(line)
            else:
                out.append(self.expect(line, want))
        return out

    def wait_closed(self, timeout=DEADLINE):
        """Wait until the server closes; returns what it sent meanwhile."""
        deadline = time.monotonic() + timeout
        got = self.buf
        self.buf = b""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self._fail("server did not close the connection within %.0f s "
                           "(received meanwhile: %r)" % (timeout, got))
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                continue
            except ConnectionResetError:
                return got
            if not chunk:
                if got:
                    self.transcript.append("S: %r" % got)
                self.transcript.append("S: <closed>")
                return got
            got += chunk

    # -- a whole transaction, for tests whose subject is elsewhere
    def send_mail(self, sender, rcpts, message, ehlo=True):
        """MAIL, RCPT (each must be accepted), DATA, message (bytes or str
        with CRLF line ends, not dot-stuffed beyond what is given), ".".
        Returns the queue id."""
        esc = ehlo
        self.expect("MAIL FROM:<%s>" % sender, SENDER_OK if esc else strip_esc(SENDER_OK))
        for r in rcpts:
            self.expect("RCPT TO:<%s>" % r, RCPT_OK if esc else strip_esc(RCPT_OK))
        self.expect("DATA", START_DATA)
        if isinstance(message, str):
            message = message.encode("utf-8")
        self.raw(message + b".\r\n")
        r = self.expect_reply(QUEUED if esc else QUEUED_HELO, after="the final dot")
        return (QUEUED if esc else QUEUED_HELO).fullmatch(r.text).group(1)


def strip_esc(text):
    """The same reply without its enhanced status code."""
    return re.sub(r"^(\d{3}[ -])\d\.\d{1,3}\.\d{1,3} ", r"\1", text)


def crlf(*lines):
    """Message text from lines: each line ended by CRLF."""
    return "".join(line + "\r\n" for line in lines).encode("utf-8")


# --------------------------------------------------------------------------
# Delivered messages


DATE_RE = (r"(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), )?\d{1,2} "
           r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} "
           r"\d{2}:\d{2}(?::\d{2})? [+-]\d{4}(?: \([^()]*\))?")


class Delivered:
    """A message file from a Maildir, split into what ternd added and the
    message itself."""

    def __init__(self, data):
        self.data = data
        assert b"\r" not in data, (
            "delivered file still has CR characters (CRLF must become LF):\n%r" % data[:2000])
        lines = data.split(b"\n")
        assert len(lines) >= 4, "delivered file too short:\n%r" % data
        self.return_path = lines[0].decode("utf-8", "replace")
        self.delivered_to = lines[1].decode("utf-8", "replace")
        assert lines[2].startswith(b"Received: "), (
            "third line of the delivered file is not a Received header:\n%r" % data[:2000])
        i = 3
        while i < len(lines) and lines[i][:1] in (b"\t", b" "):
            i += 1
        self.received_lines = [l.decode("utf-8", "replace") for l in lines[2:i]]
        self.received = " ".join(l.strip() for l in self.received_lines)
        # ternd's own Authentication-Results (RFC 8601) follows its Received
        self.authres = None
        if lines[i].startswith(b"Authentication-Results: " + HOSTNAME.encode() + b";"):
            j = i + 1
            while j < len(lines) and lines[j][:1] in (b"\t", b" "):
                j += 1
            self.authres = " ".join(l.decode().strip() for l in lines[i:j])
            i = j
        self.body = b"\n".join(lines[i:])

    def check(self, *, sender, rcpt, helo, proto="ESMTP", qid=None, message=None,
              rcpt_nocase=False):
        d = self.data[:3000]
        assert self.return_path == "Return-Path: <%s>" % sender, (
            "line 1 is %r, expected %r\nfile:\n%r" % (self.return_path, "Return-Path: <%s>" % sender, d))
        want_dt = "Delivered-To: %s" % rcpt
        if rcpt_nocase:
            ok = self.delivered_to.lower() == want_dt.lower()
        else:
            ok = self.delivered_to == want_dt
        assert ok, "line 2 is %r, expected %r\nfile:\n%r" % (self.delivered_to, want_dt, d)
        rec = self.received
        start = "Received: from %s ([127.0.0.1])" % helo
        assert rec.startswith(start), "Received header %r does not start with %r" % (rec, start)
        assert len(self.received_lines) >= 2, (
            "Received header not folded onto continuation lines: %r" % self.received_lines)
        for cont in self.received_lines[1:]:
            assert cont.startswith("\t"), "continuation line %r does not start with a tab" % cont
        assert re.search(r"\bby mx\.test\.example\b", rec), "no 'by mx.test.example' in %r" % rec
        assert re.search(r"\bwith %s\b" % proto, rec), "no 'with %s' in %r" % (proto, rec)
        if qid is not None:
            assert re.search(r"\bid <?%s>?(?![0-9A-Za-z])" % qid, rec), "no 'id %s' in %r" % (qid, rec)
        m = re.search(r"; (%s)$" % DATE_RE, rec)
        assert m, "Received header does not end with '; <RFC 5322 date>': %r" % rec
        assert email.utils.parsedate_to_datetime(m.group(1)) is not None
        if message is not None:
            want = message.replace(b"\r\n", b"\n")
            assert self.body == want, (
                "stored message differs from what was sent\nexpected: %r\nstored:   %r" % (want, self.body))


# --------------------------------------------------------------------------
# The daemon


# Started as root, ternd drops to run_user (default "tern", created by
# scripts/install-deps). That user must reach the test's directories and
# own the Maildirs the tests create.
RUN_USER = "tern"


def run_user_ids():
    """(uid, gid) ternd runs as after start-up, or None when not root."""
    if os.geteuid() != 0:
        return None
    try:
        pw = pwd.getpwnam(RUN_USER)
    except KeyError:
        pytest.exit("user %r missing: run scripts/install-deps" % RUN_USER, returncode=3)
    return pw.pw_uid, pw.pw_gid


def make_traversable(path):
    """Let run_user search every directory from / down to path (pytest's
    base temp dir is mode 0700)."""
    if run_user_ids() is None:
        return
    p = Path(path).resolve()
    for d in [p] + list(p.parents):
        mode = d.stat().st_mode
        if mode & 0o001 == 0:
            os.chmod(d, (mode & 0o7777) | 0o011)


def give_to_run_user(path):
    ids = run_user_ids()
    if ids is not None:
        os.chown(path, *ids)


@pytest.fixture
def tmp_path(request):
    """A fresh directory per test, outside pytest's base temp dir: pytest
    resets /tmp/pytest-of-<user> to mode 0700 whenever any pytest session
    starts, which would lock run_user out in the middle of a run. Removed
    after a passing test, kept after a failing one."""
    import shutil
    import tempfile
    base = Path(tempfile.gettempdir()) / ("tern-tests-%d" % os.getuid())
    base.mkdir(mode=0o711, exist_ok=True)
    os.chmod(base, 0o711)
    d = Path(tempfile.mkdtemp(prefix=re.sub(r"\W", "_", request.node.name)[:40] + "-", dir=base))
    os.chmod(d, 0o711)
    yield d
    rep = getattr(request.node, "_tern_rep_call", None)
    if rep is not None and rep.passed:
        shutil.rmtree(d, ignore_errors=True)


def ternd_binary():
    if not (os.path.isfile(TERND) and os.access(TERND, os.X_OK)):
        pytest.exit("ternd binary not found at %s: build it (make, or meson setup "
                    "build && ninja -C build) or set TERND" % TERND, returncode=3)
    return TERND


def free_port():
    return free_port_on("127.0.0.1")


def proc_status(pid, field):
    """A size line of /proc/PID/status ("VmRSS", "VmHWM") in bytes."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no %s in /proc/%d/status" % (field, pid))


def wait_for(what, check, timeout=DEADLINE, poll=POLL):
    """Poll check() until it returns something true (returned); fail after
    timeout, naming what was awaited."""
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError("%s: not within %.0f s" % (what, timeout))
        time.sleep(poll)


def sanitizer_problems(text):
    return [m for m in SANITIZER_MARKERS if m in text]


def run_ternd(args, timeout=DEADLINE, env=None):
    """Run ternd to completion (config checks); returns (rc, stdout, stderr)."""
    argv = [ternd_binary()] + list(args)
    try:
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=timeout, env=env)
    except subprocess.TimeoutExpired as e:
        raise AssertionError("ternd %s did not exit within %.0f s; stderr:\n%s"
                             % (" ".join(args), timeout,
                                (e.stderr or b"").decode("utf-8", "replace")))
    out = p.stdout.decode("utf-8", "replace")
    err = p.stderr.decode("utf-8", "replace")
    bad = sanitizer_problems(out + err)
    assert not bad, "sanitizer report from ternd %s:\n%s" % (" ".join(args), err)
    return p.returncode, out, err


class Ternd:
    """One daemon. env: its environment (default ours); wrap: a command line
    ternd's own is appended to (it must exec ternd, so that the pid is
    ternd's); ready: a callable that says ternd has started (default: the
    " ready: " line on stderr)."""

    def __init__(self, tmp, index, overrides, args, env=None, wrap=(), ready=None):
        self.tmp = Path(tmp)
        self.tmp.mkdir(parents=True, exist_ok=True)
        make_traversable(self.tmp)
        self.spool_dir = self.tmp / "spool"
        self.mail_dir = self.tmp / "mail"
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        self.mail_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        opts = {
            "listen": "127.0.0.1:%d" % self.port,
            "hostname": HOSTNAME,
            "spool_dir": str(self.spool_dir),
            "mail_dir": str(self.mail_dir),
            "local_domains": LOCAL_DOMAINS,
            # SPF's lookups would leave the machine for the senders'
            # domains; test_spf sets it, with an unbound of its own
            "spf_policy": "off",
            # and DMARC's for the From domains; test_authres sets it
            "dmarc_policy": "off",
        }
        opts.update(overrides)
        self.opts = opts    # what -o says (value None: the embedded default)
        self.host = "127.0.0.1"
        if overrides.get("listen"):
            # readiness is probed on the first listen address
            first = overrides["listen"].split(",")[0].split()[0]
            self.host, port = first.rsplit(":", 1)
            self.port = int(port)
        self.argv = list(wrap) + [ternd_binary()] + list(args)
        self.env = env
        self.ready = ready or (lambda: " ready: " in self.log())
        for k, v in opts.items():
            if v is not None:
                self.argv += ["-o", "%s=%s" % (k, v)]
        self.logpath = self.tmp / ("ternd-%d.log" % index)
        self.proc = None
        self.killed = False
        self.checked = False
        self.clients = []

    # -- process
    def start(self):
        with open(self.logpath, "wb") as logf:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                         stdout=logf, stderr=logf, env=self.env)
        deadline = time.monotonic() + DEADLINE
        while True:
            rc = self.proc.poll()
            if rc is not None:
                pytest.fail("ternd exited with %d before accepting connections\n"
                            "argv: %s\nlog:\n%s" % (rc, " ".join(self.argv), self.log()),
                            pytrace=False)
            # Every listener is bound before the "ready" line; a port that
            # answers without it may be another program's (tests of other
            # checkouts run on this machine too).
            if self.ready():
                try:
                    self.probe()
                    return self
                except OSError:
                    pass
            if time.monotonic() > deadline:
                pytest.fail("ternd did not accept connections on port %d within %.0f s\n"
                            "log:\n%s" % (self.port, DEADLINE, self.log()), pytrace=False)
            time.sleep(POLL)

    def probe(self):
        """Connect, hang up, and wait until the server has closed its side:
        the probe no longer counts against max_connections when a test
        begins (the server frees a session before it closes the socket)."""
        with socket.create_connection((self.host, self.port), timeout=1) as p:
            p.shutdown(socket.SHUT_WR)
            try:
                while p.recv(4096):
                    pass
            except OSError:
                pass

    def log(self):
        try:
            return self.logpath.read_text("utf-8", "replace")
        except OSError:
            return ""

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        """SIGTERM, wait up to 10 s; returns a list of problems."""
        if self.proc is None or self.checked:
            return []
        self.checked = True
        for c in self.clients:
            c.close()
        problems = []
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(DEADLINE)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                problems.append("ternd (port %d) did not exit within %.0f s of SIGTERM"
                                % (self.port, DEADLINE))
        rc = self.proc.returncode
        if not self.killed and not problems and rc != 0:
            problems.append("ternd (port %d) exited with code %d (expected 0 after SIGTERM)"
                            % (self.port, rc))
        bad = sanitizer_problems(self.log())
        if bad:
            problems.append("ternd (port %d) log contains %s" % (self.port, ", ".join(bad)))
        if problems:
            problems.append("log of ternd (port %d):\n%s" % (self.port, self.log()))
        return problems

    def stop_checked(self):
        problems = self.stop()
        assert not problems, "\n".join(problems)

    def kill9(self):
        """SIGKILL: the crash that durability must survive."""
        self.killed = True
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(DEADLINE)
        for c in self.clients:
            c.close()

    # -- clients
    def connect(self, greeting=True, source=None):
        c = Client(self.port, name="client %d" % (len(self.clients) + 1), source=source)
        self.clients.append(c)
        if greeting:
            c.expect(None, GREETING)
        return c

    def session(self, helo="EHLO client.example"):
        """A connection after the greeting and HELO/EHLO."""
        c = self.connect()
        c.expect(helo, EHLO_REPLY if helo.upper().startswith("EHLO") else HELO_OK)
        return c

    # -- Maildirs
    def mailbox(self, address):
        local, domain = address.lower().rsplit("@", 1)
        return self.mail_dir / domain / local

    def make_maildir(self, *addresses):
        for a in addresses:
            for sub in ("tmp", "new", "cur"):
                (self.mailbox(a) / sub).mkdir(parents=True, exist_ok=True)
            d = self.mailbox(a)
            for p in (d.parent, d, d / "tmp", d / "new", d / "cur"):
                give_to_run_user(p)

    def messages(self, address):
        new = self.mailbox(address) / "new"
        try:
            names = sorted(n for n in os.listdir(new) if not n.startswith("."))
        except FileNotFoundError:
            return []
        return [new / n for n in names]

    def wait_messages(self, address, n):
        """Wait (10 s) until new/ holds at least n files; returns their
        contents as bytes, in name order."""
        deadline = time.monotonic() + DEADLINE
        while True:
            files = self.messages(address)
            if len(files) >= n:
                out = []
                for f in files:
                    out.append(f.read_bytes())
                return out
            if time.monotonic() > deadline:
                raise AssertionError(
                    "%d message(s) in %s/new after %.0f s, expected %d\nlog:\n%s"
                    % (len(files), self.mailbox(address), DEADLINE, n, self.log()))
            time.sleep(POLL)

    def wait_message_with(self, address, marker):
        """Wait (10 s) for a message containing marker (bytes); returns it."""
        if isinstance(marker, str):
            marker = marker.encode("utf-8")
        deadline = time.monotonic() + DEADLINE
        while True:
            for f in self.messages(address):
                data = f.read_bytes()
                if marker in data:
                    return data
            if time.monotonic() > deadline:
                raise AssertionError(
                    "no message containing %r in %s/new after %.0f s (%d other files)\nlog:\n%s"
                    % (marker, self.mailbox(address), DEADLINE,
                       len(self.messages(address)), self.log()))
            time.sleep(POLL)

    def all_delivered(self):
        """Every file in any new/ under mail_dir."""
        return sorted(p for p in self.mail_dir.glob("*/*/new/*") if not p.name.startswith("."))

    def barrier(self, rcpt, tag="barrier"):
        """Send one good message to rcpt on a fresh connection and wait for it:
        anything queued earlier had its chance to be delivered. Returns the
        marker in its body."""
        self.make_maildir(rcpt)
        marker = "%s-%d-%d" % (tag, self.port, time.monotonic_ns())
        with self.session() as c:
            c.send_mail("barrier@client.example", [rcpt],
                        crlf("Subject: " + marker, "", marker))
            c.expect("QUIT", BYE)
        self.wait_message_with(rcpt, marker)
        return marker


@pytest.fixture
def ternd(request, tmp_path):
    """Factory: ternd(tmp=None, args=(), mailboxes=(), env=None, wrap=(),
    ready=None, key=value...) starts a daemon with -o overrides (value None
    drops a default) and returns it running; the mailboxes exist before it
    listens. env, wrap and ready: see Ternd."""
    servers = []
    counter = itertools.count()
    request.node._ternd_servers = servers

    def start(tmp=None, args=(), mailboxes=(), env=None, wrap=(), ready=None, **overrides):
        s = Ternd(tmp or tmp_path, next(counter), overrides, args, env, wrap, ready)
        s.make_maildir(*mailboxes)
        servers.append(s)
        return s.start()

    yield start
    problems = []
    for s in servers:
        problems += s.stop()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
def server(ternd):
    """A ternd with the default test configuration."""
    return ternd()


_STOPPED = []


def _stopped(signum, frame):
    _STOPPED.append(signum)
    raise KeyboardInterrupt("stopped by signal %d" % signum)


def _stat(pid):
    """/proc/PID/stat's fields after the command name (state, ppid, ...),
    or None when the process is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _descendants(pid):
    """Every process under pid, from /proc."""
    parent = {}
    for d in os.listdir("/proc"):
        st = _stat(int(d)) if d.isdigit() else None
        if st:
            parent[int(d)] = int(st[1])
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        kids = [c for c, pp in parent.items() if pp == p]
        out += kids
        todo += kids
    return out


def pytest_configure(config):
    """A run stopped by SIGTERM or SIGHUP (a cancelled CI job, a pkill)
    ends as one stopped by ^C: pytest tears the fixtures down, and
    pytest_unconfigure stops what a fixture was still starting, so no
    ternd, unbound or sink of it is left listening."""
    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, _stopped)


def pytest_unconfigure(config):
    if not _STOPPED:
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        left = _descendants(os.getpid())
        for p in left:
            try:
                os.kill(p, sig)
            except OSError:
                pass
        deadline = time.monotonic() + 2
        while left and time.monotonic() < deadline:
            left = [p for p in left if (_stat(p) or ["Z"])[0] != "Z"]
            time.sleep(0.05)


@pytest.fixture(autouse=True)
def _sinks_stopped():
    """The smtp-sinks a test started are stopped when it ends, passed or
    failed: one that failed before its own stop() left a sink answering
    DATA after 30 s on its port for the rest of the run."""
    yield
    for s in list(SmtpSink.live):
        s.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.when == "call":
        item._tern_rep_call = rep
    if rep.when == "call" and rep.failed:
        for s in getattr(item, "_ternd_servers", []):
            rep.sections.append(("ternd log (port %d)" % s.port, s.log() or "(empty)"))
            for c in s.clients:
                rep.sections.append(("transcript of %s (port %d)" % (c.name, s.port),
                                     c.history() or "(nothing)"))


# --------------------------------------------------------------------------
# DNS: a real unbound serving the records a test gives (dnsserver.py)


@pytest.fixture
def unbound(tmp_path):
    """Factory: unbound(records, zones=(), forward=()) starts an unbound on
    127.0.0.1 serving records (unbound local-data syntax) and nothing else
    (zones, forward: see dnsserver.py); every server is stopped at
    teardown. Returns the dnsserver.Unbound (.port, .resolver)."""
    from dnsserver import Unbound
    servers = []

    def start(records, **kw):
        s = Unbound(tmp_path, records, **kw)
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.stop()


@pytest.fixture
def silent_dns():
    """A UDP socket on 127.0.0.1 that takes DNS queries and never answers
    ("IP@port", for unbound's forward= or dns_resolver)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    yield "127.0.0.1@%d" % s.getsockname()[1]
    s.close()
