"""tern-probe console, driven through a pseudo-terminal as a person types:
keys (backspace, arrow keys) go in, the screen comes out. What the server
received is read from its own log (ternd at log_level=debug prints every
line as "session N: < LINE"; smtp-sink -v prints every line), so the tests
check what the editing produced, not only what the screen shows.
"""

import os
import pty
import re
import select
import signal
import time

import pytest

from conftest import DEADLINE, crlf, free_port, sanitizer_problems
from probe_peers import SmtpSink
from test_probe import PROBE

BACKSPACE = b"\x7f"
UP = b"\x1b[A"
CTRL_D = b"\x04"


class Console:
    """tern-probe console on a pty: type() keys, expect() screen text."""

    def __init__(self, *args):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            os.execv(PROBE, [PROBE, "console"] + [str(a) for a in args])
        self.screen = b""
        self.seen = 0          # expect() searches after the last match
        self.status = None

    def _read(self, timeout):
        r, _, _ = select.select([self.fd], [], [], timeout)
        if not r:
            return True
        try:
            data = os.read(self.fd, 65536)
        except OSError:        # EIO: the child closed the terminal
            return False
        self.screen += data
        return bool(data)

    def text(self):
        return self.screen.decode("utf-8", "replace")

    def expect(self, pattern):
        """Waits (10 s) until pattern (a regex on the text) appears after
        the previous match; returns the match."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + DEADLINE
        while True:
            m = rx.search(self.text(), self.seen)
            if m:
                self.seen = m.end()
                return m
            left = deadline - time.monotonic()
            more = left > 0 and self._read(min(left, 0.2))
            if left <= 0 or (not more and self.exited()):
                raise AssertionError("console: %r did not appear; screen:\n%s"
                                     % (pattern, self.text()))

    def prompt(self, kind="smtp"):
        return self.expect(r"%s> $|%s> (?=\S)" % (kind, kind))

    def type(self, keys):
        if isinstance(keys, str):
            keys = keys.encode("utf-8")
        os.write(self.fd, keys)

    def exited(self):
        if self.status is None:
            pid, st = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = os.waitstatus_to_exitcode(st)
        return self.status is not None

    def wait(self):
        """Waits (10 s) for the program to end; returns its exit status."""
        deadline = time.monotonic() + DEADLINE
        while not self.exited():
            self._read(0.05)
            if time.monotonic() > deadline:
                raise AssertionError("console did not exit; screen:\n%s" % self.text())
        while self._read(0):
            pass
        assert not sanitizer_problems(self.text()), self.text()
        return self.status

    def close(self):
        if not self.exited():
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        os.close(self.fd)


@pytest.fixture
def console():
    consoles = []

    def start(*args):
        c = Console(*args)
        consoles.append(c)
        return c

    yield start
    for c in consoles:
        c.close()


def received(log):
    """The lines ternd received, in order."""
    return re.findall(r"session \d+: < (.*)", log)


def test_console_backspace_history_and_one_step_quit(ternd, console):
    s = ternd(log_level="debug")
    c = console("127.0.0.1:%d" % s.port)
    c.expect(r"220 mx\.test\.example ESMTP tern ready +<- the server is ready")
    c.prompt()
    # a typo, taken back with backspace: the server must see the corrected line
    c.type(b"EHLX" + BACKSPACE + b"O client.example\r")
    c.expect(r"250 HELP +<- accepted")
    c.prompt()
    c.type("NOOP\r")
    c.expect(r"250 2\.0\.0 OK +<- accepted")
    c.prompt()
    # up-arrow twice: the EHLO line again
    c.type(UP + UP + b"\r")
    c.expect(r"250 HELP")
    c.prompt()
    c.type(".quit\r")
    c.expect(r"221 2\.0\.0 Service closing transmission channel +<- goodbye")
    assert c.wait() == 0
    assert received(s.log()) == ["EHLO client.example", "NOOP", "EHLO client.example", "QUIT"]


def test_console_typed_data_is_dot_stuffed(ternd, console):
    s = ternd(log_level="debug")
    s.make_maildir("kate@example.com")
    c = console("127.0.0.1:%d" % s.port)
    c.prompt()
    for line, want in [("EHLO client.example", r"250 HELP"),
                       ("MAIL FROM:<chris@contoso.test>", r"250 2\.1\.0 Sender OK"),
                       ("RCPT TO:<kate@example.com>", r"250 2\.1\.5 Recipient OK +<- the recipient is accepted"),
                       ("DATA", r"354 .* +<- send the message now")]:
        c.type(line + "\r")
        c.expect(want)
    for line in ["Subject: dots", "", ".hidden", "..two", "end"]:
        c.prompt("data")
        c.type(line + "\r")
    c.prompt("data")
    c.type(".\r")
    c.expect(r"250 2\.6\.0 <[0-9A-F]{16}@mx\.test\.example> Queued mail for delivery +<- the message is queued")
    c.prompt()
    c.type(CTRL_D)           # end of input: QUIT, and out
    c.expect(r"221 2\.0\.0")
    assert c.wait() == 0
    msg = s.wait_message_with("kate@example.com", "Subject: dots")
    assert msg.endswith(b"Subject: dots\n\n.hidden\n..two\nend\n"), msg
    assert "QUIT" in received(s.log())


def test_console_data_file_log_and_explain(ternd, console, tmp_path):
    s = ternd()
    s.make_maildir("kate@example.com")
    body = tmp_path / "message.txt"
    body.write_bytes(b"Subject: from a file\n\n.leading dot\nbare LF lines\n")
    logfile = tmp_path / "session.log"
    c = console("127.0.0.1:%d" % s.port)
    c.prompt()
    c.type(".log %s\r" % logfile)
    c.expect("logging the session to")
    for line in ["EHLO client.example", "MAIL FROM:<chris@contoso.test>",
                 "RCPT TO:<kate@example.com>"]:
        c.prompt()
        c.type(line + "\r")
    c.prompt()
    c.type(".data %s\r" % body)
    c.expect(r"250 2\.6\.0 <([0-9A-F]{16})@")
    c.prompt()
    c.type("RCPT TO:<someone@elsewhere.example>\r")
    c.expect(r"503 .*<- |550 .*<- ")
    c.prompt()
    c.type(".explain 550 5.7.1\r")
    c.expect("relaying denied: the server does not accept mail for that domain from you")
    c.prompt()
    c.type(".quit\r")
    assert c.wait() == 0
    msg = s.wait_message_with("kate@example.com", "Subject: from a file")
    assert msg.endswith(b"Subject: from a file\n\n.leading dot\nbare LF lines\n"), msg
    log = logfile.read_text()
    assert "C: MAIL FROM:<chris@contoso.test>\n" in log
    assert "S: 250 2.1.5 Recipient OK\n" in log
    assert re.search(r"S: 250 2\.6\.0 <[0-9A-F]{16}@mx\.test\.example> Queued", log)
    assert "C: QUIT\nS: 221 2.0.0 Service closing transmission channel\n" in log


def test_console_auth_password_not_echoed_smtp_sink(tmp_path, console):
    k = SmtpSink(tmp_path, "-v")
    try:
        c = console("127.0.0.1:%d" % k.port)
        c.prompt()
        c.type("EHLO client.example\r")
        c.expect(r"250-AUTH PLAIN LOGIN")
        c.prompt()
        c.type(".auth plain kate\r")
        c.expect("Password: ")
        c.type("s3cret\r")
        c.expect(r"250 2\.0\.0 Ok")
        c.prompt()
        c.type(".quit\r")
        assert c.wait() == 0
        assert "s3cret" not in c.text()
        # "\0kate\0s3cret" in base64, done by the console
        assert "AUTH PLAIN AGthdGUAczNjcmV0" in k.log()
    finally:
        k.stop()


def test_console_explains_refusals_smtp_sink(tmp_path, console):
    k = SmtpSink(tmp_path, "-f", "RCPT")
    try:
        c = console("127.0.0.1:%d" % k.port)
        c.prompt()
        c.type("HELO client.example\r")
        c.expect(r"250 sink\.test\.example")
        c.prompt()
        c.type("MAIL FROM:<a@b.example>\r")
        c.prompt()
        c.type("RCPT TO:<c@d.example>\r")
        c.expect(r"500 5\.3\.0 Error: command failed +<- the server does not know this command")
        c.prompt()
        c.type(".quit\r")
        assert c.wait() == 0
    finally:
        k.stop()


def test_console_connection_refused(console):
    c = console("127.0.0.1:%d" % free_port())
    c.expect("could not connect")
    assert c.wait() == 2
