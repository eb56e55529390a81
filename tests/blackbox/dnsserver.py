"""A real unbound DNS server on 127.0.0.1 for tests, serving given records.

    dns = Unbound(tmpdir, ["example.test. MX 10 mx1.example.test.",
                           "mx1.example.test. A 127.0.0.1"])
    dns.port        # the UDP/TCP port it answers on
    dns.resolver    # "127.0.0.1@PORT", unbound's forwarder syntax
    dns.stop()

Every name not among the records is NXDOMAIN at once (`local-zone: "."
static`): nothing leaves the machine. zones adds local zones of other
types, (name, type): "always_refuse" answers REFUSED below name, which a
resolver forwarding here turns into a failure (SERVFAIL); "static" serves
a name's own records inside such a zone. forward sends the names below a
zone to another server, (name, "IP@port"): one that never answers makes
lookups hang. auth_zones serves zone files authoritatively, (name, file),
with what they hold (a signed zone's RRSIG, NSEC and DNSKEY records
answer a query with the DO bit: DNSSEC tests). The server runs in the foreground
(unbound -d), is ready when it answers a query, and stop() ends it.
Only the standard library is used; waits poll against a deadline.
"""

import os
import random
import socket
import struct
import subprocess
import time
from pathlib import Path

from peers import free_port_on

UNBOUND = os.environ.get("UNBOUND") or "/usr/sbin/unbound"
DEADLINE = 10.0
POLL = 0.02


def _free_port():
    """A port free for both UDP and TCP on 127.0.0.1, drawn as every other
    server's port is (peers.free_port_on): never one this run handed out
    before, so that a test's SMTP port and its resolver's cannot be the
    same (unbound takes TCP too, and ternd's listen then failed)."""
    for _ in range(50):
        port = free_port_on("127.0.0.1")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            try:
                u.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port for both UDP and TCP")


def _query(port, name="ready.invalid.", qtype=1, timeout=0.2):
    """One UDP query; returns the response or None."""
    qid = random.randrange(65536)
    packet = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        packet += bytes([len(label)]) + label.encode("ascii")
    packet += b"\0" + struct.pack(">HH", qtype, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        try:
            s.sendto(packet, ("127.0.0.1", port))
            data, _ = s.recvfrom(4096)
        except OSError:
            return None
    return data if data[:2] == packet[:2] else None


def local_data(record):
    """A record in unbound's local-data syntax, quoted. One with quoted
    strings (TXT) goes in single quotes, a quote of that kind inside as
    the zone-file escape \\039; any other in double quotes."""
    if '"' in record:
        return "'%s'" % record.replace("'", "\\039")
    return '"%s"' % record


class Unbound:
    def __init__(self, tmpdir, records, zones=(), forward=(), auth_zones=()):
        self.zones = list(zones)
        self.forward = list(forward)
        self.auth_zones = list(auth_zones)
        self.dir = Path(tmpdir) / ("unbound-%d" % random.randrange(10**9))
        self.dir.mkdir(parents=True)
        self.port = _free_port()
        self.resolver = "127.0.0.1@%d" % self.port
        self.conf = self.dir / "unbound.conf"
        self.logpath = self.dir / "unbound.log"
        self.conf.write_text(self._config(records))
        self.proc = None
        self._start()

    def _config(self, records):
        lines = [
            "server:",
            "    interface: 127.0.0.1@%d" % self.port,
            "    port: %d" % self.port,
            "    do-daemonize: no",
            '    username: ""',
            '    chroot: ""',
            '    directory: "%s"' % self.dir,
            '    pidfile: "%s"' % (self.dir / "unbound.pid"),
            '    logfile: ""',
            "    use-syslog: no",
            "    verbosity: 1",
            "    do-ip6: no",
            "    do-not-query-localhost: no",
            "    module-config: \"iterator\"",
            '    local-zone: "." static',
        ]
        for name, kind in self.zones:
            lines.append('    local-zone: "%s" %s' % (name, kind))
        for name, _ in self.forward + self.auth_zones:
            lines.append('    local-zone: "%s" transparent' % name)
        for r in records:
            lines.append("    local-data: %s" % local_data(r))
        for name, addr in self.forward:
            lines += ["forward-zone:", '    name: "%s"' % name, "    forward-addr: %s" % addr]
        for name, path in self.auth_zones:
            lines += ["auth-zone:", '    name: "%s"' % name, '    zonefile: "%s"' % path,
                      "    for-downstream: yes", "    for-upstream: no"]
        lines += ["remote-control:", "    control-enable: no", ""]
        return "\n".join(lines)

    def _start(self):
        with open(self.logpath, "wb") as log:
            self.proc = subprocess.Popen([UNBOUND, "-d", "-c", str(self.conf)],
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        deadline = time.monotonic() + DEADLINE
        while _query(self.port) is None:
            if self.proc.poll() is not None:
                raise RuntimeError("unbound exited with %d:\n%s"
                                   % (self.proc.returncode, self.log()))
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("unbound did not answer on port %d within %.0f s:\n%s"
                                   % (self.port, DEADLINE, self.log()))
            time.sleep(POLL)

    def log(self):
        try:
            return self.logpath.read_text("utf-8", "replace")
        except OSError:
            return ""

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(DEADLINE)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
