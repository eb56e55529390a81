"""Fault scenarios: a fault injected while parallel senders send and ternd
delivers to the recording sink, then cleared. Each checks the answer the
senders got during the fault (a 4xx, never a 250 for what was not
stored), a log line of ternd's naming the fault, and, after the fault
clears, that everything acknowledged reaches the sink (lost=0).

  fault-disk-full       the spool on a small tmpfs, filled while senders
                        send (452 4.3.1), then room again
  fault-spool-unwritable spool_dir and body/ made unwritable (chmod 0500)
                        mid-run: messages that need a body file are refused
  fault-sqlite-busy     another process holds queue.db's write lock
                        (BEGIN IMMEDIATE); short form within ternd's busy
                        timeout (10 s), full form beyond it
  fault-next-hop        the next hop in turn stalls after the final dot,
                        resets mid-DATA, answers garbage, breaks STARTTLS's
                        handshake (smtp_tls = may: the same host again in
                        clear), answers 451 to MAIL: each a deferral (or that
                        retry) with its log line; then it recovers
  fault-dns             the next hop found by MX through a DNS server of the
                        test's own (dnsstub.py) that times out, then answers
                        SERVFAIL, then recovers
"""

import errno
import os
import re
import sqlite3
import subprocess
import threading
import time

from dnsstub import DnsStub
from harness import Daemon, Senders, Sink, drain_and_count


def check(name, what, ok, detail):
    print("  %s: %s: %s (%s)" % (name, what, "ok" if ok else "FAIL", detail), flush=True)
    return 0 if ok else 1


def loaded(name, work, sink, opts, fault, secs, senders=6, big=0.1, spool=None, route=True,
           drain=300.0):
    """Run senders, call fault(d, phase) with phase "on" after a second and
    "off" secs later, stop the senders a second after, drain and count.
    Returns (failures, daemon, senders)."""
    d = Daemon(work, sink.port, spool=spool, opts=opts, route=route)
    d.start()
    s = Senders(lambda: d.port, senders, name, big=big)
    try:
        time.sleep(1.0)
        fault(d, "on")
        time.sleep(secs)
        fault(d, "off")
        time.sleep(1.0)
        s.stop()
        codes = " codes=%s" % ",".join("%d:%d" % kv for kv in sorted(s.codes.items()))
        lost = drain_and_count(name, d, sink, s, dict(s.acked), extra=codes, timeout=drain)
        up = d.running()
        lost += check(name, "ternd still running", up, "pid %d" % d.proc.pid)
    finally:
        rc = d.stop()
    lost += check(name, "clean exit on SIGTERM", rc == 0, "status %s" % rc)
    return lost, d, s


# --------------------------------------------------------------------------

def fill(directory):
    path = os.path.join(directory, "filler")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for size in (65536, 4096):
            for _ in range(256 * 1024 * 1024 // size):
                try:
                    os.write(fd, b"\0" * size)
                except OSError as e:
                    if e.errno != errno.ENOSPC:
                        raise
                    break
    finally:
        os.close(fd)
    return path


def disk_full(work, short, args):
    spool = os.path.join(work, "spool")
    os.makedirs(spool)
    # the short form: a roomy tmpfs filled once under light load; the full
    # form: a small one under heavy load, so that acknowledged mail itself
    # fills the disk again after the filler goes
    size, senders = ("64m", 3) if short else ("16m", 8)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s,mode=0755" % size, "tmpfs", spool],
                       capture_output=True)
    if r.returncode:
        print("fault-disk-full: FAIL: cannot mount a tmpfs: %s" % r.stderr.decode().strip())
        return 1
    sink = Sink()
    try:
        cycles = 1 if short else 3

        def fault(d, phase):
            for i in range(cycles):
                if phase == "on":
                    fill(spool)
                    if cycles > 1:
                        time.sleep(4 if short else 8)
                        os.unlink(os.path.join(spool, "filler"))
                        time.sleep(2)
                else:
                    if os.path.exists(os.path.join(spool, "filler")):
                        os.unlink(os.path.join(spool, "filler"))
                    return

        lost, d, s = loaded("fault-disk-full", work, sink, {}, fault, 4 if short else 10,
                            senders=senders, big=0.3, spool=spool, drain=90)
        lost += check("fault-disk-full", "452 4.3.1 while full", s.codes.get(452, 0) > 0,
                      "%d x 452" % s.codes.get(452, 0))
        lost += check("fault-disk-full", "no 451/other refusals", set(s.codes) <= {250, 452},
                      "codes %s" % sorted(s.codes))
        lines = d.log_lines(r"No space left|refused-data|spool=No space|disk is \(nearly\) full")
        lost += check("fault-disk-full", "log names the full disk", bool(lines),
                      lines[0].strip()[:150] if lines else "none")
        return lost
    finally:
        sink.stop()
        subprocess.run(["umount", "-l", spool])


def spool_unwritable(work, short, args):
    sink = Sink()
    try:
        spool = os.path.join(work, "spool")
        body = os.path.join(spool, "body")
        modes = {}

        def fault(d, phase):
            if phase == "on":
                for p in (spool, body):
                    modes[p] = os.stat(p).st_mode & 0o7777
                    os.chmod(p, 0o500)
            else:
                for p, m in modes.items():
                    os.chmod(p, m)

        lost, d, s = loaded("fault-spool-unwritable", work, sink, {}, fault,
                            4 if short else 15, senders=6, big=0.3)
        refused = sum(n for c, n in s.codes.items() if 400 <= c < 500)
        lost += check("fault-spool-unwritable", "4xx for messages needing a body file", refused > 0,
                      "codes %s" % sorted(s.codes.items()))
        lines = d.log_lines(r"Permission denied")
        lost += check("fault-spool-unwritable", "log names the refusal", bool(lines),
                      lines[0].strip()[:150] if lines else "none")
        return lost
    finally:
        sink.stop()


def sqlite_busy(work, short, args):
    sink = Sink()
    hold = 3.0 if short else 14.0
    try:
        holder = {}

        def lock(spool):
            c = sqlite3.connect(os.path.join(spool, "queue.db"), timeout=30, isolation_level=None)
            c.execute("BEGIN IMMEDIATE")
            holder["c"] = c
            time.sleep(hold)
            c.execute("ROLLBACK")
            c.close()

        def fault(d, phase):
            if phase == "on":
                t = threading.Thread(target=lock, args=(d.spool,), daemon=True)
                t.start()
                holder["t"] = t
            else:
                holder["t"].join(hold + 30)

        lost, d, s = loaded("fault-sqlite-busy", work, sink, {}, fault, hold + 0.5, senders=6)
        lost += check("fault-sqlite-busy", "only 250 or 4xx", all(c == 250 or 400 <= c < 500
                                                                  for c in s.codes),
                      "codes %s" % sorted(s.codes.items()))
        lines = d.log_lines(r"database is locked|busy timeout|commit failed")
        if hold > 10:
            lost += check("fault-sqlite-busy", "log names the lock", bool(lines),
                          lines[0].strip()[:150] if lines else "none")
        else:
            print("  fault-sqlite-busy: log: %s (within the 10 s busy timeout: commits wait)"
                  % (lines[0].strip()[:150] if lines else "nothing"), flush=True)
        return lost
    finally:
        sink.stop()


HOP_FAULTS = [
    ("stall", r"timeout waiting"),
    ("reset", r"connection error|lost connection"),
    ("garbage", r"not SMTP"),
    # smtp_tls = may: the same host again in clear, as Postfix does
    ("tls", r"TLS failed .*trying again without STARTTLS"),
    ("tempfail", r"451 4\.3\.0"),
]


def reason(line):
    return line[line.find("reply="):].split(", session=")[0][:110] if "reply=" in line else line[-110:]


def next_hop(work, short, args):
    sink = Sink()
    per = 2.5 if short else 10.0
    try:
        marks = {}

        def fault(d, phase):
            if phase != "on":
                sink.set_mode("ok")
                return
            for _ in range(1 if short else 2):
                for mode, _pat in HOP_FAULTS:
                    n0 = len(d.log_text())
                    sink.set_mode(mode)
                    time.sleep(per)
                    marks.setdefault(mode, []).append((n0, len(d.log_text())))
            sink.set_mode("ok")

        opts = {"smtp_timeout": "2s", "smtp_tls": "may"}
        lost, d, s = loaded("fault-next-hop", work, sink, opts, fault, 0.1, senders=2, big=0.05)
        text = d.log_text()
        for mode, pat in HOP_FAULTS:
            # a stall shows smtp_timeout (2 s) after it began: look past its window
            seen = [l for a, b in marks.get(mode, [])
                    for l in text[a:b if mode != "stall" else b + 200000].splitlines()
                    if ("deferred" in l or mode == "tls") and re.search(pat, l)]
            what = "retried in clear" if mode == "tls" else "deferred with its reason"
            lost += check("fault-next-hop", "%s: %s" % (mode, what), bool(seen),
                          "%d x %s" % (len(seen), reason(seen[0])) if seen
                          else "no matching line logged")
        return lost
    finally:
        sink.stop()


def dns(work, short, args):
    sink = Sink(host="127.0.0.2")       # not 127.0.0.1: that is ternd's own address
    stub = DnsStub({"sink.test": "mx.sink.test"}, {"mx.sink.test": "127.0.0.2"})
    per = 4.0 if short else 30.0
    try:
        marks = {}

        def fault(d, phase):
            if phase != "on":
                stub.mode = "ok"
                return
            for mode in ("timeout", "servfail"):
                n0 = len(d.log_text())
                stub.mode = mode
                sink.set_mode("ok")     # its connections dropped: new ones look up again
                time.sleep(per)
                marks[mode] = (n0, len(d.log_text()))
            stub.mode = "ok"

        opts = {"dns_resolver": "127.0.0.1@%d" % stub.port, "smtp_port": str(sink.port),
                "smtp_tls": "none", "dns_timeout": "1s"}
        lost, d, s = loaded("fault-dns", work, sink, opts, fault, 0.1, senders=2, big=0.0,
                            route=False)
        text = d.log_text()
        # a lookup that gets no answer is deferred after dns_timeout (1 s
        # here); the connections the sink drops at each switch may end a
        # delivery under way (lost connection, connection error)
        for mode in ("timeout", "servfail"):
            a, b = marks.get(mode, (0, 0))
            seen = [l for l in text[a:b].splitlines() if "deferred" in l and "DNS" in l]
            other = [l for l in text[a:b].splitlines() if "deferred" in l and "DNS" not in l
                     and "lost connection" not in l and "connection error" not in l]
            lost += check("fault-dns", "%s: deferred as a DNS error" % mode, bool(seen),
                          "%d x %s" % (len(seen), reason(seen[0])) if seen
                          else "no DNS deferral logged")
            lost += check("fault-dns", "%s: no other deferral" % mode, not other,
                          reason(other[0]) if other else "none")
        lost += check("fault-dns", "the stub was asked", stub.queries > 0,
                      "%d queries" % stub.queries)
        return lost
    finally:
        stub.stop()
        sink.stop()


SCENARIOS = {
    "fault-disk-full": disk_full,
    "fault-spool-unwritable": spool_unwritable,
    "fault-sqlite-busy": sqlite_busy,
    "fault-next-hop": next_hop,
    "fault-dns": dns,
}
