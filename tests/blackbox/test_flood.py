"""A client that pipelines commands without reading the replies cannot make
the server buffer replies without bound: the server stops reading until the
client reads, then answers everything, in order."""

import os
import socket
import threading
import time

import pytest

from conftest import HOSTNAME, proc_status


def rss(pid):
    return proc_status(pid, "VmHWM")


@pytest.fixture
def server(ternd, monkeypatch):
    # Under AddressSanitizer freed memory waits in a quarantine (256 MiB by
    # default), which reads as growth: turn it off so that the RSS figure
    # means the same in both builds (leaks are still reported at exit).
    asan = os.environ.get("ASAN_OPTIONS", "")
    monkeypatch.setenv("ASAN_OPTIONS", (asan + ":" if asan else "") + "quarantine_size_mb=0")
    return ternd()


def test_unread_replies_do_not_grow_memory(server):
    n = 2_500_000  # 15 MB of NOOPs, 37 MB of replies: well past kernel buffers
    payload = b"NOOP\r\n" * n + b"QUIT\r\n"
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=60)
    f = sock.makefile("rb")
    assert f.readline().startswith(b"220 " + HOSTNAME.encode())
    before = rss(server.proc.pid)

    # Send without reading until the server stops taking input for a while.
    sock.setblocking(False)
    sent, stalled_since = 0, None
    deadline = time.monotonic() + 30
    while sent < len(payload) and time.monotonic() < deadline:
        try:
            sent += sock.send(payload[sent:sent + 65536])
            stalled_since = None
        except BlockingIOError:
            stalled_since = stalled_since or time.monotonic()
            if time.monotonic() - stalled_since > 0.5:
                break
            time.sleep(0.01)
    assert sent < len(payload), "the server read everything while nobody read its replies"
    grown = rss(server.proc.pid) - before
    assert grown < 4 * 1024 * 1024, "peak RSS grew by %d bytes while replies were unread" % grown

    # Now read; the rest of the input follows from another thread.
    sock.setblocking(True)
    rest = threading.Thread(target=sock.sendall, args=(payload[sent:],))
    rest.start()
    ok, last = 0, b""
    for line in f:
        if line.startswith(b"221 "):
            last = line
            break
        assert line == b"250 2.0.0 OK\r\n", line
        ok += 1
    rest.join(30)
    sock.close()
    assert ok == n and last.startswith(b"221 2.0.0")
