"""Memory per session stays bounded whatever the message size: a large
message streams through the spool in chunks, never whole in memory.

The check is the daemon's peak resident size (VmHWM) before and after a
64 MiB message: a daemon holding the message would grow by at least that
much. Under AddressSanitizer, freed memory sits in a quarantine; the test
shrinks it so that the figure means the same in both builds."""

import os

import pytest

from conftest import BYE, RCPT_OK, SENDER_OK, START_DATA, proc_status

MIB = 1024 * 1024


def peak_rss(pid):
    return proc_status(pid, "VmHWM")


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


def vm_rss(pid):
    return proc_status(pid, "VmRSS")


def burst_client(port, i):
    import socket
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
        f = s.makefile("rb")
        f.readline()
        s.sendall(b"EHLO burst%d.example\r\nMAIL FROM:<a@b.example>\r\n"
                  b"RCPT TO:<x@example.com>\r\nDATA\r\n" % i)
        for _ in range(9):      # 7 lines of EHLO, 250, 250; then 354
            f.readline()
        line = (b"y" * 998) + b"\r\n"
        s.sendall(b"Subject: burst\r\n\r\n" + line * 100 + b".\r\nQUIT\r\n")
        return f.read()


def test_memory_goes_back_after_a_burst(ternd):
    """After a burst of concurrent clients the daemon gives the memory of
    their buffers back (it keeps freed buffers while busy, for speed)."""
    import time
    from concurrent.futures import ThreadPoolExecutor
    from conftest import ternd_binary
    with open(ternd_binary(), "rb") as f:
        if b"__asan_init" in f.read():
            pytest.skip("AddressSanitizer's allocator keeps its own pools; "
                        "the optimised build checks this")
    n = 1000
    s = ternd(max_connections=str(n + 100), max_connections_per_ip=str(n + 100),
              max_connection_rate="0")
    s.make_maildir("x@example.com")
    burst_client(s.port, -1)
    s.wait_messages("x@example.com", 1)
    before = vm_rss(s.proc.pid)
    with ThreadPoolExecutor(200) as ex:
        replies = list(ex.map(lambda i: burst_client(s.port, i), range(n)))
    assert all(b"250 2.6.0" in r for r in replies)
    peak = peak_rss(s.proc.pid)
    s.wait_messages("x@example.com", n + 1)
    deadline = time.monotonic() + 30     # the daemon looks every 5 s
    now = vm_rss(s.proc.pid)
    while now > before + (peak - before) // 4 and time.monotonic() < deadline:
        time.sleep(0.2)
        now = vm_rss(s.proc.pid)
    print("RSS before %.1f MiB, peak %.1f MiB, after %.1f MiB" % (before / MIB, peak / MIB, now / MIB))
    assert peak - before > 8 * MIB, "the burst did not use memory; the test measures nothing"
    assert now <= before + (peak - before) // 4, \
        "RSS still %.1f MiB after the burst (before %.1f, peak %.1f)" % (now / MIB, before / MIB, peak / MIB)
