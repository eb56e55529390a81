"""Real peers for delivery tests: Postfix's smtp-sink with its fault options,
and helpers to read the delivery reports tern sends back.

    sink = SmtpSink(tmp, "127.0.0.2", port, "-r", "RCPT")   # 4xx to RCPT
    sink.messages()      # the transactions it received (with -d dumps)
    sink.stop()
"""

import email
import email.policy
import os
import socket
import subprocess
import time
from pathlib import Path

SMTP_SINK = os.environ.get("SMTP_SINK") or "/usr/sbin/smtp-sink"
DEADLINE = 10.0
POLL = 0.02


_PORTS_GIVEN = set()


def _family(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def free_port_on(*hosts):
    """A TCP port free on every one of the given loopback addresses, never
    one this run handed out before: two ports drawn for one server (listen
    and dequeue_listen, say) would otherwise now and then be the same."""
    for _ in range(1000):
        with socket.socket(_family(hosts[0])) as s:
            s.bind((hosts[0], 0))
            port = s.getsockname()[1]
        ok = port not in _PORTS_GIVEN
        for h in hosts[1:]:
            with socket.socket(_family(h)) as t:
                try:
                    t.bind((h, port))
                except OSError:
                    ok = False
        if ok:
            _PORTS_GIVEN.add(port)
            return port
    raise RuntimeError("no common free port")


def wait_port(host, port, proc=None, what="server"):
    deadline = time.monotonic() + DEADLINE
    while True:
        try:
            socket.create_connection((host, port), timeout=1).close()
            return
        except OSError:
            pass
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("%s exited with %d" % (what, proc.returncode))
        if time.monotonic() > deadline:
            raise RuntimeError("%s did not listen on %s:%d" % (what, host, port))
        time.sleep(POLL)


class SmtpSink:
    live = []   # started, not stopped yet: conftest stops them after each test

    def __init__(self, tmp, host, port, *options):
        self.dir = Path(tmp) / ("sink-%s-%d" % (host, port))
        self.dir.mkdir(parents=True, exist_ok=True)
        self.host, self.port = host, port
        # -u root: the dumps go under pytest's private (0700) temporary directory
        argv = [SMTP_SINK, "-u", "root", "-d", str(self.dir) + "/%M.", *options,
                "%s:%d" % (host, port), "64"]
        self.log = self.dir / "sink.log"
        with open(self.log, "wb") as f:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=f, stderr=f)
        SmtpSink.live.append(self)
        wait_port(host, port, self.proc, "smtp-sink")

    def messages(self):
        return sorted(p for p in self.dir.iterdir() if p.name != "sink.log")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(DEADLINE)
        if self in SmtpSink.live:
            SmtpSink.live.remove(self)


def parse(path):
    return parse_bytes(Path(path).read_bytes())


def parse_bytes(data):
    return email.message_from_bytes(data, policy=email.policy.compat32)


def report_parts(msg):
    """(human text, per-message fields, [per-recipient fields], returned part)
    of a multipart/report delivery-status message (RFC 3464)."""
    assert msg.get_content_type() == "multipart/report", msg.get_content_type()
    assert msg.get_param("report-type") == "delivery-status"
    parts = msg.get_payload()
    assert len(parts) == 3, [p.get_content_type() for p in parts]
    human, status, returned = parts
    assert human.get_content_type() == "text/plain"
    assert status.get_content_type() == "message/delivery-status"
    groups = status.get_payload()   # the email package parses the field groups
    per_message = groups[0]
    per_rcpt = groups[1:]
    return human.get_payload(decode=True).decode(), per_message, per_rcpt, returned


class Dovecot:
    """A private Dovecot serving LMTP on 127.0.0.1:port and a unix socket,
    storing mail as Maildir under its own directory, for the users given.
    Dovecot delivers as an unprivileged user, so it lives in a directory
    of its own under /tmp (pytest's are private to root)."""

    def __init__(self, port, users):
        import shutil
        import tempfile
        self._rmtree = shutil.rmtree
        self.dir = Path(tempfile.mkdtemp(prefix="tern-dovecot-"))
        os.chmod(self.dir, 0o755)
        self.mail = self.dir / "mail"
        self.mail.mkdir()
        os.chmod(self.mail, 0o777)
        self.port = port
        self.socket = self.dir / "lmtp.sock"
        (self.dir / "users").write_text("".join("%s::::::\n" % u for u in users))
        self.conf = self.dir / "dovecot.conf"
        self.conf.write_text(self._config())
        self.log = self.dir / "dovecot.log"
        with open(self.dir / "out.log", "wb") as f:
            self.proc = subprocess.Popen(["dovecot", "-F", "-c", str(self.conf)],
                                         stdin=subprocess.DEVNULL, stdout=f, stderr=f)
        wait_port("127.0.0.1", port, self.proc, "dovecot")

    def _config(self):
        d = self.dir
        return "\n".join([
            "base_dir = %s/run" % d, "state_dir = %s/state" % d,
            "log_path = %s/dovecot.log" % d, "info_log_path = %s/dovecot.log" % d,
            "protocols = lmtp", "ssl = no", "listen = 127.0.0.1",
            "mail_location = maildir:%s/%%d/%%n" % self.mail, "first_valid_uid = 1",
            "userdb {", "  driver = passwd-file",
            "  args = username_format=%%u %s/users" % d,
            "  default_fields = uid=nobody gid=nogroup home=%s/%%d/%%n" % self.mail, "}",
            "passdb {", "  driver = static", "  args = nopassword=y", "}",
            "service lmtp {", "  inet_listener lmtp {", "    address = 127.0.0.1",
            "    port = %d" % self.port, "  }",
            "  unix_listener %s {" % self.socket, "    mode = 0666", "  }", "}",
            "service anvil {", "  chroot =", "}", "service stats {", "  chroot =", "}", ""])

    def messages(self, address):
        local, domain = address.lower().rsplit("@", 1)
        new = self.mail / domain / local / "new"
        return sorted(new.iterdir()) if new.is_dir() else []

    def wait_message_with(self, address, marker):
        deadline = time.monotonic() + DEADLINE
        marker = marker.encode() if isinstance(marker, str) else marker
        while True:
            for f in self.messages(address):
                data = f.read_bytes()
                if marker in data:
                    return data
            if time.monotonic() > deadline:
                raise AssertionError("no message with %r for %s in Dovecot's store\n%s"
                                     % (marker, address, self.log.read_text(errors="replace")
                                        if self.log.exists() else ""))
            time.sleep(POLL)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(DEADLINE)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._rmtree(self.dir, ignore_errors=True)
