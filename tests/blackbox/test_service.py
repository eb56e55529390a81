"""ternd as a service: what systemd sees.

* sd_notify: a real datagram socket given as NOTIFY_SOCKET receives
  READY=1 once ternd listens as run_user, STOPPING=1 on SIGTERM, and only a
  STATUS= line when start-up fails.
"""

import os
import pwd
import socket
from pathlib import Path

import pytest

from conftest import BYE, RUN_USER, make_traversable, run_ternd


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
