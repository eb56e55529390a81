"""Second SMTP servers for tern-probe's tests, all real and on loopback:

* SmtpSink: Postfix's smtp-sink (a different SMTP implementation from ternd,
  with switches to refuse commands or speak only HELO);
* Postfix: a private instance of Postfix itself (own config and queue
  directories) with STARTTLS (a self-signed certificate made by openssl)
  and AUTH through a private Dovecot auth service (passwd-file).

Each class starts its server, waits until it accepts connections (polling
against a deadline) and has stop(). Postfix needs root (its master starts
as root and drops privileges), as the package's own service does.
"""

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

DEADLINE = 10.0
POLL = 0.02
SMTP_SINK = "/usr/sbin/smtp-sink"
POSTFIX = "/usr/sbin/postfix"
DOVECOT = "/usr/sbin/dovecot"


def free_port(host="127.0.0.1"):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_port(port, proc=None, what="server", log=lambda: "", host="127.0.0.1"):
    deadline = time.monotonic() + DEADLINE
    while True:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("%s exited with %d before accepting connections:\n%s"
                               % (what, proc.returncode, log()))
        try:
            socket.create_connection((host, port), timeout=1).close()
            return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("%s did not accept connections on port %d within %.0f s:\n%s"
                               % (what, port, DEADLINE, log()))
        time.sleep(POLL)


class SmtpSink:
    """smtp-sink on 127.0.0.1:port; args are its switches (e.g. "-e")."""

    def __init__(self, tmp, *args, hostname="sink.test.example"):
        self.tmp = Path(tmp)
        self.port = free_port()
        self.dump = self.tmp / ("sink-%d" % self.port)
        self.dump.mkdir(parents=True)
        self.logpath = self.tmp / ("sink-%d.log" % self.port)
        argv = [SMTP_SINK, "-h", hostname, "-d", str(self.dump) + "/msg."]
        if os.geteuid() == 0:
            argv += ["-u", "root"]   # smtp-sink insists on -u as root
        argv += list(args) + ["127.0.0.1:%d" % self.port, "10"]
        with open(self.logpath, "wb") as log:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=log)
        wait_port(self.port, self.proc, "smtp-sink", self.log)

    def log(self):
        return self.logpath.read_text("utf-8", "replace") if self.logpath.exists() else ""

    def messages(self):
        return [p.read_bytes() for p in sorted(self.dump.iterdir())]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(DEADLINE)
