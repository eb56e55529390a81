"""A deep queue: more messages than the delivery engine keeps in flight
(16,384) are queued with queue_only, then delivered to a next hop (Postfix's
smtp-sink) that is held stopped (SIGSTOP) at first, so that the engine fills
up to its limit and reads the rest from the spool as messages finish. Every
message reaches the next hop exactly once and the spool ends empty. Nothing
here measures speed (bench/drain does)."""

import os
import re
import signal
import sqlite3
import subprocess
import time

import conftest
from peers import SmtpSink, free_port_on

N = 17000
SMTP_SOURCE = os.environ.get("SMTP_SOURCE") or "/usr/sbin/smtp-source"
LONG = 180.0    # seconds: 17,000 messages through an ASan build
POLL = 0.2      # listing 17,000 files is not free


def wait_for(what, check, timeout=LONG):
    return conftest.wait_for(what, check, timeout, POLL)


def spool_messages(spool):
    db = sqlite3.connect("file:%s?mode=ro" % (spool / "queue.db"), uri=True, timeout=30)
    try:
        return db.execute("SELECT COUNT(*) FROM msg").fetchone()[0]
    finally:
        db.close()


def test_deep_queue_is_delivered_once(ternd, tmp_path):
    port = free_port_on("127.0.0.1")
    sink = SmtpSink(tmp_path, "127.0.0.1", port)
    os.kill(sink.proc.pid, signal.SIGSTOP)
    spool = tmp_path / "spool"
    conf = dict(spool_dir=str(spool), relay_networks="127.0.0.0/8",
                relayhost="127.0.0.1:%d" % port, smtp_tls="none", smtp_timeout="300s")
    try:
        s1 = ternd(tmp=tmp_path / "fill", queue_only="yes", **conf)
        p = subprocess.run([SMTP_SOURCE, "-s", "10", "-m", str(N), "-l", "300", "-d",
                            "-f", "a@client.example", "-t", "r@far.example",
                            "127.0.0.1:%d" % s1.port], capture_output=True, timeout=LONG)
        assert p.returncode == 0, p.stderr
        s1.stop_checked()
        assert spool_messages(spool) == N

        s2 = ternd(tmp=tmp_path / "drain", **conf)
        wait_for("the engine full", lambda: "messages in flight: more are read" in s2.log())
        os.kill(sink.proc.pid, signal.SIGCONT)
        wait_for("every message recorded", lambda: s2.log().count(": removed\n") >= N)
        log = s2.log()
        sent = re.findall(r": ([0-9A-F]{16}): delivery: to=<r@far\.example>.*status=sent", log)
        assert len(sent) == N and len(set(sent)) == N, (len(sent), len(set(sent)))
        assert len(sink.messages()) == N
        assert spool_messages(spool) == 0
        s2.stop_checked()
    finally:
        if sink.proc.poll() is None:
            os.kill(sink.proc.pid, signal.SIGCONT)
        sink.stop()
