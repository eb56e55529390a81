"""OpenDMARC as a real milter in front of ternd (milters = unix:PATH).

OpenDMARC (opendmarc -f) checks SPF itself (SPFSelfValidate, libspf2)
and the From domain's DMARC record, and with RejectFailures refuses what
fails a p=reject policy. Its DNS (libresolv, libspf2) reads only
/etc/resolv.conf: it runs in a private network, mount and PID namespace
(unshare, root only) with a resolv.conf bind-mounted over /etc/resolv.conf
naming a real unbound on that namespace's 127.0.0.1:53. Its milter socket
is a unix socket in the test's directory, which ternd (run_user tern,
outside the namespace) reaches through the file system.

ternd runs with dmarc_policy = off and spf_policy = off (the harness's
defaults): OpenDMARC alone decides. The records:

    _dmarc.reject.test  TXT "v=DMARC1; p=reject"
    reject.test         TXT "v=spf1 ip4:192.0.2.2 -all"

libspf2, OpenDMARC's SPF, passes every loopback client without a lookup
("localhost is always allowed", SPF_REASON_LOCALHOST): a client on
127.0.0.1 or 127.0.0.2 would pass SPF whatever the record says. So the
clients come through a `proxy` listener of ternd (the test's client
sends the PROXY v1 header itself, over loopback) as 192.0.2.1 and
192.0.2.2 (TEST-NET-1), the address ternd gives the milter in its connect
command. A message From: reject.test from 192.0.2.1 fails SPF and has no
DKIM signature: 550 at the final dot. The same from 192.0.2.2 passes SPF,
aligned: delivered with OpenDMARC's Authentication-Results, dmarc=pass.
"""

import os
import re
import shutil
import signal
import socket
import subprocess

import pytest

from conftest import (BYE, DEADLINE, GREETING, OK, QUEUED, RCPT_OK, SENDER_OK, START_DATA,
                      Client, crlf, free_port, wait_for)
from dnsserver import local_data

BOB = "bob@example.com"
AUTHSERV_ID = "dmarc.test.example"
RECORDS = ['_dmarc.reject.test. TXT "v=DMARC1; p=reject"',
           'reject.test. TXT "v=spf1 ip4:192.0.2.2 -all"']
FAILS, PASSES = "192.0.2.1", "192.0.2.2"     # the clients, through PROXY

# Inside the namespaces: loopback up, unbound on 127.0.0.1:53, the
# resolv.conf over /etc/resolv.conf, unbound answering (bounded), then
# OpenDMARC in the foreground. The shell is the PID namespace's init: it
# passes a TERM on, and when it exits the kernel ends whatever is left.
NS_SCRIPT = r"""
ip link set lo up || exit 90
unbound -d -c {d}/unbound.conf >{d}/unbound.log 2>&1 & UB=$!
mount --bind {d}/resolv.conf /etc/resolv.conf || exit 91
/usr/bin/python3 -c '
import socket, sys, time
q = b"\0\1\1\0\0\1\0\0\0\0\0\0\5ready\7invalid\0\0\1\0\1"
end = time.monotonic() + 10
while time.monotonic() < end:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(0.1)
    try:
        s.sendto(q, ("127.0.0.1", 53))
        if s.recv(512)[:2] == q[:2]:
            sys.exit(0)
    except OSError:
        time.sleep(0.05)
    finally:
        s.close()
sys.exit(1)' || {{ echo "unbound did not answer" >&2; kill $UB; exit 92; }}
opendmarc -f -c {d}/opendmarc.conf & OD=$!
trap 'kill $OD $UB 2>/dev/null' TERM INT
wait $OD
rc=$?
kill $UB 2>/dev/null
wait $UB
exit $rc
"""


class OpenDMARC:
    def __init__(self, tmp):
        d = self.dir = tmp / "opendmarc"
        d.mkdir()
        run = d / "run"             # the socket's directory, OpenDMARC's
        run.mkdir()
        self.sock = run / "dmarc.sock"
        self.spec = "unix:%s" % self.sock
        unbound = ["server:", "    interface: 127.0.0.1@53", "    port: 53",
                   "    do-daemonize: no", '    username: ""', '    chroot: ""',
                   '    directory: "%s"' % d, '    pidfile: ""', "    use-syslog: no",
                   "    do-ip6: no", "    do-not-query-localhost: no", "    verbosity: 2",
                   "    log-queries: yes", '    module-config: "iterator"',
                   '    local-zone: "." static']
        unbound += ["    local-data: %s" % local_data(r) for r in RECORDS]
        unbound += ["remote-control:", "    control-enable: no", ""]
        (d / "unbound.conf").write_text("\n".join(unbound))
        (d / "resolv.conf").write_text("nameserver 127.0.0.1\noptions timeout:2 attempts:1\n")
        # IgnoreHosts defaults to 127.0.0.1: a list of none of the
        # test's clients (TEST-NET-3)
        (d / "ignore").write_text("203.0.113.1\n")
        (d / "opendmarc.conf").write_text("\n".join([
            "Socket unix:%s" % self.sock,
            "AuthservID %s" % AUTHSERV_ID,
            "TrustedAuthservIDs %s" % AUTHSERV_ID,
            "RejectFailures true",
            "SPFSelfValidate true",
            "SPFIgnoreResults true",
            "IgnoreAuthenticatedClients true",
            "IgnoreHosts %s" % (d / "ignore"),
            "PublicSuffixList /usr/share/publicsuffix/public_suffix_list.dat",
            "Syslog false",
            "DNSTimeout 5",
            # it drops to its own user once the socket is made; the socket
            # mode 0777 (UMask 0) lets ternd, as run_user tern, connect
            "UserID opendmarc",
            "UMask 0000",
            "PidFile %s" % (run / "opendmarc.pid"),
            ""]))
        for p in (d, run):
            os.chmod(p, 0o711)
        shutil.chown(run, "opendmarc")
        self.out = open(d / "opendmarc.out", "wb")
        self.proc = subprocess.Popen(
            ["unshare", "--net", "--mount", "--pid", "--fork", "--kill-child",
             "--propagation", "private", "sh", "-c", NS_SCRIPT.format(d=d)],
            stdin=subprocess.DEVNULL, stdout=self.out, stderr=self.out, start_new_session=True)
        try:
            wait_for("OpenDMARC's socket %s" % self.sock, self.listening)
        except AssertionError:
            self.stop()
            raise AssertionError("OpenDMARC did not start:\n%s" % self.logs())

    def listening(self):
        if self.proc.poll() is not None:
            raise AssertionError("OpenDMARC's namespace exited with %d:\n%s"
                                 % (self.proc.returncode, self.logs()))
        with socket.socket(socket.AF_UNIX) as s:
            try:
                s.connect(str(self.sock))
                return True
            except OSError:
                return False

    def logs(self):
        out = []
        for name in ("opendmarc.out", "unbound.log"):
            try:
                out.append("%s:\n%s" % (name, (self.dir / name).read_text(errors="replace")))
            except OSError:
                pass
        return "\n".join(out)

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(DEADLINE)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(DEADLINE)
        self.out.close()


@pytest.fixture
def opendmarc(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root: unshare --net --mount for OpenDMARC's own resolv.conf")
    for prog in ("opendmarc", "unshare", "unbound", "ip"):
        if not shutil.which(prog):
            pytest.fail("%s is not installed (scripts/install-deps test)" % prog)
    o = OpenDMARC(tmp_path)
    yield o
    o.stop()


@pytest.fixture
def dmarc_ternd(ternd, opendmarc):
    """ternd with OpenDMARC as its milter; .proxy_port is a listener
    that takes a PROXY header first."""
    plain, proxied = free_port(), free_port()
    s = ternd(milters=opendmarc.spec, mailboxes=(BOB,), log_level="debug",
              dmarc_policy="off", spf_policy="off",
              listen="127.0.0.1:%d, 127.0.0.1:%d proxy" % (plain, proxied))
    s.dmarc, s.proxy_port = opendmarc, proxied
    return s


def message(marker, frm="Boss <boss@reject.test>"):
    return crlf("From: " + frm, "To: Bob <bob@example.com>", "Subject: %s" % marker,
                "Date: Mon, 1 Jan 2024 10:00:00 +0000",
                "Message-ID: <%s@reject.test>" % marker, "", "Hello Bob,",
                "this is %s." % marker, "")


def send(s, marker, want_end, source, sender="x@reject.test", **kw):
    """The PROXY header naming source, then EHLO, MAIL, RCPT, DATA and
    the message; the reply to the final dot must match want_end. Returns
    the client and that reply."""
    c = Client(s.proxy_port, name="client from %s" % source)
    s.clients.append(c)
    c.raw("PROXY TCP4 %s 127.0.0.1 40000 25\r\n" % source)
    c.expect(None, GREETING)
    c.expect("EHLO client.example", "250-mx.test.example Hello [%s]..." % source)
    c.expect("MAIL FROM:<%s>" % sender, SENDER_OK)
    c.expect("RCPT TO:<%s>" % BOB, RCPT_OK)
    c.expect("DATA", START_DATA)
    c.raw(message(marker, **kw) + b".\r\n")
    return c, c.expect_reply(want_end, after="the final dot")


def authres(data):
    """OpenDMARC's Authentication-Results fields (unfolded) in a
    delivered message's header."""
    head = data.decode("utf-8", "replace").split("\n\n", 1)[0]
    fields = re.findall(r"^Authentication-Results: (.*(?:\n[ \t].*)*)", head, re.M)
    return [re.sub(r"\s+", " ", f) for f in fields if f.startswith(AUTHSERV_ID + ";")]


def dns_asked(s):
    """The names and types OpenDMARC asked its unbound for."""
    log = (s.dmarc.dir / "unbound.log").read_text(errors="replace")
    return re.findall(r"info: 127\.0\.0\.1 (\S+) (\S+) IN$", log, re.M)


def test_opendmarc_rejects_a_spf_failure_under_p_reject(dmarc_ternd):
    """From: reject.test, sent from 192.0.2.1, which reject.test's SPF
    record does not list (-all), and unsigned: DMARC fails, p=reject, and
    OpenDMARC's 550 reaches the client at the final dot. Nothing is
    queued; the session goes on, and a message From: a domain without a
    DMARC record, from the same client, is delivered (dmarc=none)."""
    s = dmarc_ternd
    # OpenDMARC's RejectString, by default "rejected by DMARC policy for %s"
    c, _ = send(s, "spf-fails", "550 5.7.1 rejected by DMARC policy for reject.test", FAILS)
    wait_for("the milter's log line", lambda: any(
        "milter=%s" % s.dmarc.spec in l and "stage=end of message" in l
        and "result=reply code" in l and "DMARC" in l for l in s.log().splitlines()))
    c.expect("RSET", OK)
    # OpenDMARC judged it with both records: SPF's and the policy
    asked = dns_asked(s)
    assert ("reject.test.", "TXT") in asked and ("_dmarc.reject.test.", "TXT") in asked, asked
    # the barrier: another From domain (no SPF, no DMARC record), same client
    c.expect("MAIL FROM:<x@other.test>", SENDER_OK)
    c.expect("RCPT TO:<%s>" % BOB, RCPT_OK)
    c.expect("DATA", START_DATA)
    c.raw(message("no-policy", frm="Ann <ann@other.test>") + b".\r\n")
    c.expect_reply(QUEUED, after="the final dot")
    c.expect("QUIT", BYE)
    got = s.wait_message_with(BOB, "no-policy")
    ar = authres(got)
    assert any("dmarc=none" in a and "header.from=other.test" in a for a in ar), ar
    assert len(s.messages(BOB)) == 1
    assert not any(b"spf-fails" in p.read_bytes() for p in s.messages(BOB))
    queued = [l for l in s.log().splitlines() if ": queued:" in l]
    assert len(queued) == 1, queued


def test_opendmarc_passes_an_aligned_spf_pass(dmarc_ternd):
    """The same message from 192.0.2.2, which reject.test's SPF record
    lists: OpenDMARC checks SPF against the client address ternd gives it
    (the connect command: the PROXY header's), SPF passes and is aligned
    with the From domain: dmarc=pass, delivered with OpenDMARC's
    Authentication-Results."""
    s = dmarc_ternd
    c, _ = send(s, "spf-passes", QUEUED, PASSES)
    c.expect("QUIT", BYE)
    got = s.wait_message_with(BOB, "spf-passes")
    assert b"Received: from client.example ([%s])" % PASSES.encode() in got
    ar = authres(got)
    assert any(re.search(r"\bdmarc=pass\b", a) and "header.from=reject.test" in a
               for a in ar), (ar, got[:2000])
    # its own SPF verdict (SPFSelfValidate), from the record in DNS
    assert any(re.search(r"\bspf=pass\b", a) and "smtp.mailfrom=reject.test" in a
               for a in ar), ar
    assert ("reject.test.", "TXT") in dns_asked(s)
