"""Second SMTP servers for tern-probe's tests, all real and on loopback (peers.py has the delivery tests' ones):

* SmtpSink: Postfix's smtp-sink (a different SMTP implementation from ternd,
  with switches to refuse commands or speak only HELO);
* AioSmtpd: Python's aiosmtpd (python3-aiosmtpd), a third SMTP
  implementation, with SMTPUTF8 and STARTTLS (tern-probe conform);
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

from peers import free_port_on

DEADLINE = 10.0
POLL = 0.02
SMTP_SINK = "/usr/sbin/smtp-sink"
POSTFIX = "/usr/sbin/postfix"
DOVECOT = "/usr/sbin/dovecot"


def free_port(host="127.0.0.1"):
    return free_port_on(host)


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


class AioSmtpd:
    """aiosmtpd on 127.0.0.1:port with its Sink handler (accepts every
    message, keeps none), SMTPUTF8 (-u) and STARTTLS with cert and key,
    TLS not required."""

    def __init__(self, tmp, cert, key):
        self.tmp = Path(tmp)
        self.port = free_port()
        self.logpath = self.tmp / ("aiosmtpd-%d.log" % self.port)
        argv = ["/usr/bin/python3", "-m", "aiosmtpd", "-n", "-u",
                "-c", "aiosmtpd.handlers.Sink", "-l", "127.0.0.1:%d" % self.port,
                "--tlscert", str(cert), "--tlskey", str(key), "--no-requiretls"]
        with open(self.logpath, "wb") as log:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=log)
        wait_port(self.port, self.proc, "aiosmtpd", self.log)

    def log(self):
        return self.logpath.read_text("utf-8", "replace") if self.logpath.exists() else ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(DEADLINE)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {dir}/queue
data_directory = {dir}/data
mail_owner = postfix
setgid_group = postdrop
myhostname = pf.test.example
mydomain = test.example
mydestination = pf.test.example
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = {mynetworks}
maillog_file = {dir}/maillog
maillog_file_prefixes = {dir}
smtpd_banner = $myhostname ESMTP Postfix
smtpd_tls_cert_file = {dir}/cert.pem
smtpd_tls_key_file = {dir}/key.pem
smtpd_tls_security_level = may
smtpd_tls_auth_only = yes
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = inet:127.0.0.1:{auth_port}
smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination
smtpd_soft_error_limit = 100
smtpd_error_sleep_time = 0
alias_maps =
alias_database =
local_recipient_maps =
default_transport = discard
local_transport = discard
"""

MASTER_CF = """\
127.0.0.1:{port} inet n - n - - smtpd
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
tlsmgr    unix  - - n 1000? 1 tlsmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n - - proxymap
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
"""

DOVECOT_CONF = """\
base_dir = {dir}/dovecot/run
state_dir = {dir}/dovecot/state
log_path = {dir}/dovecot/dovecot.log
instance_name = tern-probe-{auth_port}
protocols =
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = {mechanisms}
auth_failure_delay = 0
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {dir}/dovecot/passwd
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home=/nonexistent
}}
service auth {{
  inet_listener {{
    address = 127.0.0.1
    port = {auth_port}
  }}
}}
"""


class Postfix:
    """A private Postfix (master in the foreground, own config and queue)
    on 127.0.0.1:port: STARTTLS with a self-signed certificate for
    pf.test.example (and IP 127.0.0.1) in self.cert, AUTH PLAIN/LOGIN after
    STARTTLS only, checked by a private Dovecot auth service against
    users {address: password}. Relays for mynetworks and logged-in
    clients. Accepted mail is discarded."""

    def __init__(self, users, mynetworks="127.0.0.2/32", mechanisms="plain login"):
        # Postfix daemons drop to the postfix user: the directory must be
        # reachable for it, unlike pytest's 0700 tmp_path.
        import tempfile
        self.dir = Path(tempfile.mkdtemp(prefix="tern-probe-postfix-"))
        os.chmod(self.dir, 0o755)
        self.port = free_port()
        self.auth_port = free_port()
        self.cert = self.dir / "cert.pem"
        self.master = self.dovecot = None
        v = dict(dir=self.dir, port=self.port, auth_port=self.auth_port,
                 mynetworks=mynetworks, mechanisms=mechanisms)
        for sub in ("conf", "queue", "data", "dovecot"):
            (self.dir / sub).mkdir()
        shutil.chown(self.dir / "data", "postfix")
        (self.dir / "conf" / "main.cf").write_text(MAIN_CF.format(**v))
        (self.dir / "conf" / "master.cf").write_text(MASTER_CF.format(**v))
        (self.dir / "dovecot" / "dovecot.conf").write_text(DOVECOT_CONF.format(**v))
        (self.dir / "dovecot" / "passwd").write_text(
            "".join("%s:{PLAIN}%s\n" % (u, p) for u, p in users.items()))
        self._certificate()
        try:
            self._start()
        except Exception:
            self.stop()
            raise

    def _certificate(self):
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                        "-keyout", str(self.dir / "key.pem"), "-out", str(self.cert),
                        "-days", "30", "-subj", "/CN=pf.test.example",
                        "-addext", "subjectAltName=DNS:pf.test.example,IP:127.0.0.1"],
                       check=True, capture_output=True, timeout=DEADLINE * 3)

    def _start(self):
        with open(self.dir / "dovecot.out", "wb") as out:
            self.dovecot = subprocess.Popen(
                [DOVECOT, "-F", "-c", str(self.dir / "dovecot" / "dovecot.conf")],
                stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        wait_port(self.auth_port, self.dovecot, "dovecot auth", self.log)
        # "postfix check" creates the queue's subdirectories
        subprocess.run([POSTFIX, "-c", str(self.dir / "conf"), "check"],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=DEADLINE * 3)
        with open(self.dir / "master.out", "wb") as out:
            self.master = subprocess.Popen(
                ["/usr/lib/postfix/sbin/master", "-c", str(self.dir / "conf"), "-d"],
                stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        wait_port(self.port, self.master, "postfix master", self.log)

    def log(self):
        out = []
        for name in ("maillog", "master.out", "dovecot.out", "dovecot/dovecot.log"):
            p = self.dir / name
            if p.exists():
                out.append("--- %s\n%s" % (name, p.read_text("utf-8", "replace")))
        return "\n".join(out)

    def stop(self):
        for proc in (self.master, self.dovecot):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(DEADLINE)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
