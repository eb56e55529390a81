"""Memory per session stays bounded whatever the message size: a large
message streams through the spool in chunks, never whole in memory.

The check is the daemon's peak resident size (VmHWM) before and after a
64 MiB message: a daemon holding the message would grow by at least that
much. Under AddressSanitizer, freed memory sits in a quarantine; the test
shrinks it so that the figure means the same in both builds."""

import os

from conftest import BYE, RCPT_OK, SENDER_OK, START_DATA

MIB = 1024 * 1024


def peak_rss(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc/%d/status" % pid)


def send_big(c, rcpt, size, marker):
    c.expect("MAIL FROM:<big@b.example> SIZE=%d" % size, SENDER_OK)
    c.expect("RCPT TO:<%s>" % rcpt, RCPT_OK)
    c.expect("DATA", START_DATA)
    line = (b"x" * 998) + b"\r\n"
    header = ("Subject: %s\r\n\r\n" % marker).encode()
    c.raw(header)
    sent = len(header)
    block = line * 64
    while sent < size:
        c.raw(block)
        sent += len(block)
    c.raw(b".\r\n")
    reply = c.reply()
    assert reply.code == 250, reply.text()


def test_large_message_streams_with_bounded_memory(ternd, monkeypatch):
    asan = os.environ.get("ASAN_OPTIONS", "")
    monkeypatch.setenv("ASAN_OPTIONS", (asan + ":" if asan else "") + "quarantine_size_mb=4")
    s = ternd(max_message_size="200M")
    s.make_maildir("x@example.com")
    c = s.session()
    send_big(c, "x@example.com", 1 * MIB, "small-one")
    s.wait_message_with("x@example.com", "small-one")
    before = peak_rss(s.proc.pid)

    send_big(c, "x@example.com", 64 * MIB, "big-one")
    s.wait_message_with("x@example.com", "big-one")
    after = peak_rss(s.proc.pid)
    c.expect("QUIT", BYE)

    big = [f for f in s.messages("x@example.com") if f.stat().st_size > 60 * MIB]
    assert len(big) == 1, "the 64 MiB message is not in the Maildir whole"
    grown = after - before
    assert grown < 24 * MIB, "peak RSS grew by %.1f MiB for a 64 MiB message" % (grown / MIB)
