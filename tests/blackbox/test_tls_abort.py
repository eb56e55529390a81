"""TLS clients that go away at every point of a session cannot stop the
server: hundreds of them on smtps and STARTTLS, from Python's ssl and from
openssl s_client, closing mid-handshake, right after it, after the
greeting, mid command, mid DATA, after QUIT without reading, and with a TCP
reset. Afterwards the daemon still serves, its open descriptors are back
where they were, its memory has not grown with the number of clients, and
(in the ASan build) the fixture finds no sanitizer report.

Also the endings of a TLS session (RFC 8446 6.1, 4.2.1): a 221 or a 421
is followed by a close_notify, and a refused handshake by its alert."""

import os
import socket
import ssl
import struct
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import DEADLINE, POLL, crlf, free_port, proc_status
from secfix import cert, client_context  # noqa: F401

ROUNDS = 6          # of every (listener, way of leaving) pair, per pass
WORKERS = 24        # clients at once


def open_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def vm_rss(pid):
    return proc_status(pid, "VmRSS")


def reset(sock):
    """Close with a TCP reset instead of a FIN (SO_LINGER 0)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def read_reply(tls):
    buf = b""
    while True:
        chunk = tls.recv(4096)
        if not chunk:
            return buf
        buf += chunk
        lines = buf.split(b"\r\n")
        if len(lines) > 1 and len(lines[-2]) >= 4 and lines[-2][3:4] == b" ":
            return buf


def connect(port, smtps):
    """A TLS socket to the session, after the greeting for smtps, after the
    220 to STARTTLS otherwise."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE)
    if not smtps:
        f = b""
        while b"\r\n" not in f:
            f += raw.recv(1024)
        raw.sendall(b"EHLO abort.example\r\n")
        f = b""
        while b"250 " not in f:
            f += raw.recv(4096)
        raw.sendall(b"STARTTLS\r\n")
        f = b""
        while b"\r\n" not in f:
            f += raw.recv(1024)
        assert f.startswith(b"220 "), f
    return raw


def partial_handshake(raw, fraction):
    """Send part (or all) of a real ClientHello, then leave."""
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = client_context().wrap_bio(inc, out, server_hostname="mx.test.example")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = out.read()
    raw.sendall(hello[:max(1, int(len(hello) * fraction))])


def leave(port, smtps, how):
    """One client that leaves as `how` says; returns nothing, raises on a
    server that stopped answering where it should have."""
    raw = connect(port, smtps)
    if how == "mid-handshake":
        partial_handshake(raw, 0.5)
        return raw.close()
    if how == "hello-then-reset":
        partial_handshake(raw, 1.0)
        return reset(raw)
    tls = client_context().wrap_socket(raw, server_hostname="mx.test.example")
    if how == "after-handshake":
        return tls.close()
    if smtps:
        assert read_reply(tls).startswith(b"220 ")
    if how == "after-greeting":
        return reset(tls) if smtps else tls.close()
    tls.sendall(b"EHLO abort.example\r\n")
    assert b"250 " in read_reply(tls)
    if how == "mid-command":
        tls.sendall(b"MAIL FROM:<half@abort.exa")
        return tls.close()
    if how == "mid-data":
        tls.sendall(crlf("MAIL FROM:<a@abort.example>", "RCPT TO:<x@example.com>", "DATA"))
        tls.sendall(b"Subject: never finished\r\n\r\n" + b"z" * 30000)
        return reset(tls)
    if how == "quit-unread":
        tls.sendall(b"NOOP\r\n" * 50 + b"QUIT\r\n")
        return tls.close()
    raise AssertionError(how)


WAYS = ["mid-handshake", "hello-then-reset", "after-handshake", "after-greeting",
        "mid-command", "mid-data", "quit-unread"]


def storm(port, smtps_port):
    jobs = [(p, p == smtps_port, how) for _ in range(ROUNDS) for how in WAYS
            for p in (port, smtps_port)]
    with ThreadPoolExecutor(WORKERS) as ex:
        for f in [ex.submit(leave, *j) for j in jobs]:
            f.result(timeout=60)
    for _ in range(3 * ROUNDS):   # the reported reproduction: s_client, stdin closed
        subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % smtps_port],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=20)
        subprocess.run(["openssl", "s_client", "-starttls", "smtp", "-connect",
                        "127.0.0.1:%d" % port], stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=20)
    return len(jobs) + 6 * ROUNDS


def settle(pid, want_fds):
    """Wait for lingering closes to finish (bounded)."""
    deadline = time.monotonic() + DEADLINE
    while open_fds(pid) > want_fds and time.monotonic() < deadline:
        time.sleep(POLL)
    return open_fds(pid)


def test_tls_clients_leaving_at_every_point(ternd, cert, monkeypatch):
    asan = os.environ.get("ASAN_OPTIONS", "")
    monkeypatch.setenv("ASAN_OPTIONS", (asan + ":" if asan else "") + "quarantine_size_mb=0")
    crt, key = cert
    port, smtps = free_port(), free_port()
    s = ternd(tls_cert=str(crt), tls_key=str(key), max_connections_per_ip="1000",
              max_connection_rate="0", max_connections="1000",
              listen="127.0.0.1:%d, 127.0.0.1:%d smtps" % (port, smtps))
    s.make_maildir("x@example.com")
    pid = s.proc.pid
    fds0 = open_fds(pid)
    n = storm(s.port, smtps)                  # warms the allocator up
    fds1 = settle(pid, fds0)
    rss1 = vm_rss(pid)
    n += storm(s.port, smtps)
    fds2 = settle(pid, fds0)
    rss2 = vm_rss(pid)
    print("clients %d, fds %d -> %d -> %d, RSS %d -> %d KiB" % (n, fds0, fds1, fds2,
                                                              rss1 // 1024, rss2 // 1024))
    assert s.running(), "ternd died under the TLS clients:\n" + s.log()[-3000:]
    assert fds1 <= fds0 and fds2 <= fds0, "descriptors leaked: %d -> %d -> %d" % (fds0, fds1, fds2)
    assert rss2 - rss1 < 4 * 1024 * 1024, "RSS grew by %d KiB in the second pass" % (
        (rss2 - rss1) // 1024)
    # and it still does its job over both kinds of TLS
    for port, implicit in ((s.port, False), (smtps, True)):
        raw = connect(port, implicit)
        tls = client_context().wrap_socket(raw, server_hostname="mx.test.example")
        if implicit:
            assert read_reply(tls).startswith(b"220 ")
        tls.sendall(b"EHLO after.example\r\n")
        assert b"250 " in read_reply(tls)
        tls.sendall(crlf("MAIL FROM:<a@after.example>", "RCPT TO:<x@example.com>", "DATA"))
        r = b""
        while r.count(b"\r\n") < 3:
            r += tls.recv(4096)
        assert b"354 " in r, r
        tls.sendall(crlf("Subject: still here %d" % port, "", "served") + b".\r\n")
        assert read_reply(tls).startswith(b"250 2.6.0"), "no 250 after the storm"
        tls.close()
    s.wait_message_with("x@example.com", "still here %d" % smtps)


def close_notify_after(tls):
    """Read to the end: True when the server ended TLS with close_notify
    (a clean unwrap), False when it just closed TCP."""
    try:
        while tls.recv(4096):
            pass
    except ssl.SSLEOFError:
        return False
    return True


def test_221_and_421_end_with_close_notify(ternd, cert):
    crt, key = cert
    s = ternd(tls_cert=str(crt), tls_key=str(key), command_timeout="2")
    for quit_ in (True, False):
        raw = connect(s.port, False)
        tls = client_context().wrap_socket(raw, server_hostname="mx.test.example",
                                           suppress_ragged_eofs=False)
        tls.sendall(b"EHLO notify.example\r\n")
        assert b"250 " in read_reply(tls)
        if quit_:
            tls.sendall(b"QUIT\r\n")
            assert read_reply(tls).startswith(b"221 2.0.0")
        else:   # stay silent past command_timeout: 421 4.4.2
            assert read_reply(tls).startswith(b"421 4.4.2")
        assert close_notify_after(tls), "TCP closed without a TLS close_notify"
        tls.close()
    # openssl s_client says so too (it reports "unexpected eof" otherwise)
    p = subprocess.run(["openssl", "s_client", "-starttls", "smtp", "-crlf", "-ign_eof", "-connect",
                        "127.0.0.1:%d" % s.port], input=b"QUIT\n", capture_output=True,
                       timeout=20)
    err = p.stderr.decode("utf-8", "replace")
    assert b"221 2.0.0" in p.stdout and "unexpected eof" not in err, err


def test_refused_handshake_gets_its_alert(ternd, cert):
    """A TLS 1.1 ClientHello is refused with a protocol_version alert
    (RFC 8446 4.2.1), not a bare close."""
    crt, key = cert
    s = ternd(tls_cert=str(crt), tls_key=str(key))
    p = subprocess.run(["openssl", "s_client", "-starttls", "smtp", "-tls1_1", "-connect",
                        "127.0.0.1:%d" % s.port], stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=20)
    err = p.stderr.decode("utf-8", "replace")
    assert "alert protocol version" in err, err
    assert s.running()
