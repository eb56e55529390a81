"""A full spool disk: 452 4.3.1 Insufficient system storage, nothing
already acknowledged is lost, and a delivery whose result cannot be written
is not made again: the result is kept and written once there is room. The
spool is a real 2 MB tmpfs; the next hop is Postfix's smtp-sink, held
stopped (SIGSTOP: the kernel still completes the TCP handshake, nobody
greets) while the test fills the disk, so that every delivery ends after
the disk is full."""

import errno
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import threading
import time

import pytest

import conftest

from conftest import BYE, DEADLINE, POLL, QUEUED, RCPT_OK, SENDER_OK, START_DATA, crlf
from peers import SmtpSink, free_port_on


@pytest.fixture
def small_spool(tmp_path):
    d = tmp_path / "spool"
    d.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0755", "tmpfs", str(d)],
                       capture_output=True)
    if r.returncode != 0:
        pytest.skip("cannot mount a tmpfs here: %s" % r.stderr.decode())
    yield d
    subprocess.run(["umount", "-l", str(d)], check=True)


def test_full_spool_gives_452_and_keeps_acknowledged_mail(small_spool, ternd, tmp_path):
    s = ternd(spool_dir=str(small_spool), queue_only="yes", max_message_size="20M")
    s.make_maildir("x@example.com")
    c = s.session()
    qid = c.send_mail("a@client.example", ["x@example.com"], crlf("Subject: first", "", "kept-mail"))
    # 4 MB cannot fit in 2 MB: the spool fills while the message streams in
    c.expect("MAIL FROM:<a@client.example>", SENDER_OK)
    c.expect("RCPT TO:<x@example.com>", RCPT_OK)
    c.expect("DATA", START_DATA)
    line = b"y" * 76 + b"\r\n"
    c.raw(b"Subject: big\r\n\r\n" + line * (4 * 1024 * 1024 // len(line)) + b".\r\n")
    c.expect_reply("452 4.3.1 Insufficient system storage", after="4 MB on a 2 MB spool")
    c.expect("NOOP", "250 2.0.0 OK")        # the session goes on
    # a small message while the spool is still full is refused the same way,
    # never acknowledged without being stored
    c.expect("MAIL FROM:<a@client.example>", SENDER_OK)
    c.expect("RCPT TO:<x@example.com>", RCPT_OK)
    c.expect("DATA", START_DATA)
    c.raw(crlf("Subject: small", "", "while-full") + b".\r\n")
    r = c.reply()
    assert r.code in (250, 452), r.text
    print("small message while the spool is full:", r.text)
    c.expect("QUIT", BYE)
    s.stop_checked()
    # The administrator frees space (here: moves the spool to a larger
    # disk); every acknowledged message is there and gets delivered.
    roomy = tmp_path / "roomy-spool"
    shutil.copytree(small_spool, roomy)
    s2 = ternd(spool_dir=str(roomy))
    data = s2.wait_message_with("x@example.com", "kept-mail")
    assert qid.encode() in data
    if r.code == 250:
        s2.wait_message_with("x@example.com", "while-full")
    else:
        s2.barrier("x@example.com")
        assert not any(b"while-full" in f.read_bytes() for f in s2.messages("x@example.com"))
    assert not any(b"Subject: big" in f.read_bytes() for f in s2.messages("x@example.com"))


# --------------------------------------------------------------------------
# Delivery results on a full disk


N = 20          # messages relayed through the full disk
LONG = 30.0     # seconds: waits that span several retry rounds


def wait_for(what, check, timeout=DEADLINE):
    return conftest.wait_for(what, check, timeout, POLL)


def fill(directory):
    """Write directory/filler until its filesystem is full (64 KiB, then 4
    KiB pieces: tmpfs allocates pages). Bounded by the size of the tmpfs."""
    path = directory / "filler"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for size in (65536, 4096):
            for _ in range(64 * 1024 * 1024 // size):
                try:
                    os.write(fd, b"\0" * size)
                except OSError as e:
                    if e.errno != errno.ENOSPC:
                        raise
                    break
    finally:
        os.close(fd)
    return path


def lines_with(server, text):
    return [l for l in server.log().splitlines() if text in l]


def sent_lines(server, qid):
    return [l for l in lines_with(server, "%s: delivery: to=<" % qid) if "status=sent" in l]


def sink_count(sink, marker):
    marker = marker.encode()
    return sum(1 for f in sink.messages() if marker in f.read_bytes())


def spool_messages(spool):
    db = sqlite3.connect("file:%s?mode=ro" % (spool / "queue.db"), uri=True)
    try:
        return db.execute("SELECT COUNT(*) FROM msg").fetchone()[0]
    finally:
        db.close()


class Relay:
    """A ternd on the small spool relaying everything to a stopped sink, with
    N messages queued (each to its own recipient, marked full-disk-NN)."""

    def __init__(self, ternd, tmp_path, spool, sink=True, **opts):
        self.tmp, self.spool = tmp_path, spool
        self.port = free_port_on("127.0.0.1")
        self.sink = None
        if sink:
            self.sink = SmtpSink(tmp_path, "127.0.0.1", self.port)
            os.kill(self.sink.proc.pid, signal.SIGSTOP)
        self.conf = dict(spool_dir=str(spool), relay_networks="127.0.0.0/8",
                         relayhost="127.0.0.1:%d" % self.port, smtp_tls="none",
                         retry_min="1s", retry_max="1s", smtp_timeout="60s")
        self.conf.update(opts)
        self.ternd = ternd
        self.s = ternd(tmp=tmp_path / "a", **self.conf)
        c = self.s.session()
        self.qids = [c.send_mail("a@client.example", ["r%02d@far.example" % i],
                                 crlf("Subject: full disk %d" % i, "", self.marker(i)))
                     for i in range(N)]
        c.expect("QUIT", BYE)

    @staticmethod
    def marker(i):
        return "full-disk-%02d" % i

    def resume_sink(self):
        os.kill(self.sink.proc.pid, signal.SIGCONT)

    def wait_all_sent(self):
        wait_for("every message accepted by the sink",
                 lambda: all(sent_lines(self.s, q) for q in self.qids), LONG)

    def assert_each_once(self):
        for i in range(N):
            assert sink_count(self.sink, self.marker(i)) == 1, \
                "%s reached the sink %d times" % (self.marker(i), sink_count(self.sink, self.marker(i)))

    def stop(self):
        if self.sink is None:
            return
        if self.sink.proc.poll() is None:
            os.kill(self.sink.proc.pid, signal.SIGCONT)
        self.sink.stop()


@pytest.fixture
def relay(small_spool, ternd, tmp_path):
    made = []

    def make(**opts):
        r = Relay(ternd, tmp_path, small_spool, **opts)
        made.append(r)
        return r

    yield make
    for r in made:
        r.stop()


def big_messages_refused(s, spool):
    """Messages longer than one spool chunk (they go to body/<qid>) are
    refused with 452, and their body files do not stay behind: whether the
    failed write is seen before the end of the data (the message is given
    up) or only at its commit. Several at once, of several sizes, reach
    both."""
    sizes = [65 * 1024, 70 * 1024, 100 * 1024, 256 * 1024, 1024 * 1024] * 2
    replies = []

    def one(size):
        with s.connect() as c:
            c.expect("EHLO client.example", "250-...")
            c.expect("MAIL FROM:<a@client.example>", SENDER_OK)
            c.expect("RCPT TO:<big@far.example>", RCPT_OK)
            c.expect("DATA", START_DATA)
            line = b"z" * 76 + b"\r\n"
            c.raw(b"Subject: big\r\n\r\n" + line * (size // len(line)) + b".\r\n")
            replies.append(c.reply().text)

    threads = [threading.Thread(target=one, args=(n,)) for n in sizes]
    for t in threads:
        t.start()
    for t in threads:
        t.join(DEADLINE)
    assert replies == ["452 4.3.1 Insufficient system storage"] * len(sizes), replies
    wait_for("body/ emptied after the 452s", lambda: not os.listdir(spool / "body"))


def results_held(relay):
    """Messages delivered while the spool's disk is full (no reserve):
    their results are held. The relay, its ternd and the filler file."""
    r = relay(spool_reserve="0")
    filler = fill(r.spool)
    r.resume_sink()
    r.wait_all_sent()
    wait_for("the results held", lambda: lines_with(r.s, "cannot record delivery results"))
    return r, r.s, filler


def test_results_on_a_full_disk_are_kept_not_delivered_again(relay, ternd, tmp_path):
    r, s, filler = results_held(relay)
    # several retry rounds with the disk still full: nothing goes out again
    # (it did 2 s later, every 2 s), and the rounds back off (1 s, 2 s, 4 s)
    wait_for("three rounds of retrying the record",
             lambda: len(lines_with(s, "cannot record delivery results")) >= 3, LONG)
    big_messages_refused(s, r.spool)
    for q in r.qids:
        assert len(sent_lines(s, q)) == 1, "%s delivered again:\n%s" % (q, s.log())
    r.assert_each_once()
    rounds = lines_with(s, "cannot record delivery results")
    delays = [int(m.group(1)) for m in (re.search(r"retrying in (\d+) s", l) for l in rounds) if m]
    assert delays[:3] == [1, 2, 4], rounds
    os.unlink(filler)
    wait_for("every result recorded", lambda: all(lines_with(s, "%s: removed" % q) for q in r.qids),
             LONG)
    assert "recorded after" in s.log()
    for q in r.qids:
        [line] = sent_lines(s, q)
        assert "attempts=1, status=sent" in line, line
    r.assert_each_once()
    s.stop_checked()
    assert spool_messages(r.spool) == 0
    # a new start finds nothing to send again
    s2 = ternd(tmp=tmp_path / "b", **r.conf)
    c = s2.session()
    c.send_mail("a@client.example", ["last@far.example"], crlf("Subject: last", "", "after-restart"))
    c.expect("QUIT", BYE)
    wait_for("the message after the restart", lambda: sink_count(r.sink, "after-restart") == 1)
    assert len(lines_with(s2, "status=sent")) == 1, s2.log()
    r.assert_each_once()


def deferred_attempts(server, qid):
    return [int(a) for a in re.findall(r"attempts=(\d+), status=deferred",
                                       "\n".join(lines_with(server, "%s: delivery: to=<" % qid)))]


def test_deferred_results_on_a_full_disk_count_attempts(relay):
    """A next hop that is down while the disk is full: the deferrals are
    kept too, the message is not tried again until its result is written,
    and the attempts go on counting from there (they stayed at 1)."""
    r = relay(sink=False, spool_reserve="0")
    s = r.s
    wait_for("first deferrals", lambda: all(deferred_attempts(s, q) for q in r.qids))
    filler = fill(r.spool)
    wait_for("every message held",
             lambda: all(lines_with(s, "%s: delivery results held" % q) for q in r.qids), LONG)
    held = len(lines_with(s, "status=deferred"))
    rounds = len(lines_with(s, "cannot record delivery results"))
    wait_for("two more rounds",
             lambda: len(lines_with(s, "cannot record delivery results")) >= rounds + 2, LONG)
    assert len(lines_with(s, "status=deferred")) == held, "held messages were tried again"
    os.unlink(filler)
    wait_for("two attempts after the disk had room again",
             lambda: all(max(deferred_attempts(s, q)) >= 4 for q in r.qids), LONG)
    for q in r.qids:
        a = deferred_attempts(s, q)
        assert a == list(range(1, len(a) + 1)), "%s: attempts %r" % (q, a)


def test_results_lost_at_shutdown_are_named(relay, ternd, tmp_path):
    r, s, filler = results_held(relay)
    s.stop_checked()
    for q in r.qids:
        assert lines_with(s, "%s: delivery results lost" % q), s.log()
    os.unlink(filler)
    # what was lost goes out again after a restart (as after a crash)
    s2 = ternd(tmp=tmp_path / "b", **r.conf)
    wait_for("redelivered", lambda: all(lines_with(s2, "%s: removed" % q) for q in r.qids), LONG)


def test_reserve_lets_results_commit_on_a_full_disk(relay):
    r = relay()
    s = r.s
    reserve = r.spool / "reserve"
    assert reserve.stat().st_size > 0
    filler = fill(r.spool)
    r.resume_sink()
    r.wait_all_sent()
    wait_for("every result recorded at once",
             lambda: all(lines_with(s, "%s: removed" % q) for q in r.qids), LONG)
    assert "released the reserve" in s.log()
    assert not reserve.exists()
    assert not lines_with(s, "cannot record delivery results")
    r.assert_each_once()
    # what the reserve freed is for results: new mail waits (452 at MAIL,
    # RFC 1870 6.1) until there is room again, or it would take that space
    c = s.session()
    c.expect("MAIL FROM:<a@client.example>", "452 4.3.1 Insufficient system storage")
    c.expect("QUIT", BYE)
    assert lines_with(s, "reason=the spool's disk is (nearly) full")
    os.unlink(filler)
    # the next commit makes the reserve again, now that there is room
    c = s.session()
    c.send_mail("a@client.example", ["last@far.example"], crlf("Subject: last", "", "room-again"))
    c.expect("QUIT", BYE)
    wait_for("the reserve made again", lambda: reserve.exists() and reserve.stat().st_blocks > 0)
    wait_for("the message after", lambda: sink_count(r.sink, "room-again") == 1)
