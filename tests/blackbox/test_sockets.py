"""The options ternd's TCP connections run with, read from its own sockets
(a duplicate of each taken with pidfd_getfd(2), as root may): a session's
socket and a delivery's connection to the next hop both have TCP_NODELAY.
Without it, OpenSSL's handshake flights, written in several writes, waited
for the peer's delayed ACK: bench scenario 1 over STARTTLS ran at 60% of
its rate (docs/PERFORMANCE.md)."""

import ctypes
import errno
import os
import socket

import pytest

from conftest import wait_for

SYS_PIDFD_GETFD = 438  # the same number on every Linux architecture
LIBC = ctypes.CDLL(None, use_errno=True)


def sockets_of(pid):
    """Every TCP socket the process holds, as duplicates of ours."""
    pidfd = os.pidfd_open(pid)
    try:
        for name in os.listdir("/proc/%d/fd" % pid):
            try:
                if not os.readlink("/proc/%d/fd/%s" % (pid, name)).startswith("socket:"):
                    continue
            except OSError:
                continue  # closed meanwhile
            fd = LIBC.syscall(SYS_PIDFD_GETFD, pidfd, int(name), 0)
            err = ctypes.get_errno() if fd < 0 else 0
            if err == errno.EPERM:
                pytest.skip("reading ternd's sockets takes ptrace rights over it (root)")
            if err == errno.EBADF:
                continue  # closed since the listing
            assert fd >= 0, "pidfd_getfd: %s" % os.strerror(err)
            try:
                s = socket.socket(fileno=fd)
            except OSError:
                os.close(fd)
                continue
            if s.family in (socket.AF_INET, socket.AF_INET6) and s.type == socket.SOCK_STREAM:
                yield s
            else:
                s.close()
    finally:
        os.close(pidfd)


def socket_to(pid, peer):
    """ternd's socket whose peer is `peer`, or None."""
    found = None
    for s in sockets_of(pid):
        try:
            mine = s.getpeername()[:2] == peer
        except OSError:
            mine = False  # listening
        if mine and found is None:
            found = s
        else:
            s.close()
    return found


def nodelay(s):
    return s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


def test_session_and_next_hop_sockets_have_nodelay(ternd):
    hop = socket.create_server(("127.0.0.1", 0))
    hop.settimeout(30)
    port = hop.getsockname()[1]
    srv = ternd(relay_networks="127.0.0.0/8", relayhost="127.0.0.1:%d" % port,
                retry_min="1h", retry_max="1h")
    with srv.session() as c:
        c.cmd("MAIL FROM:<a@example.com>")
        c.cmd("RCPT TO:<b@example.net>")
        c.cmd("DATA")
        c.expect("Subject: nodelay\r\n\r\nbody\r\n.", "250 ...")
        pid = srv.proc.pid
        session = socket_to(pid, c.sock.getsockname()[:2])
        assert session is not None, "ternd's socket of this session"
        with session:
            assert nodelay(session), "TCP_NODELAY on the session's socket"
        conn, _ = hop.accept()   # ternd delivering: the socket stays open, no banner yet
        with conn:
            assert not nodelay(conn), "the check can fail: this side never set it"
            out = wait_for("ternd's socket to the next hop", lambda: socket_to(pid, ("127.0.0.1", port)))
            with out:
                assert nodelay(out), "TCP_NODELAY on the connection to the next hop"
    hop.close()


def test_milter_connection_has_nodelay(ternd):
    """A milter stage sends packets without awaiting a reply (SMFIP_NR_*):
    the next stage's write must not wait for the milter's delayed ACK."""
    milter = socket.create_server(("127.0.0.1", 0))
    milter.settimeout(30)
    port = milter.getsockname()[1]
    srv = ternd(milters="inet:127.0.0.1:%d" % port, milter_connect_timeout="30s")
    c = srv.connect(greeting=False)   # the milter is asked before the greeting
    try:
        conn, _ = milter.accept()   # ternd's OPTNEG comes; no answer
        with conn:
            out = wait_for("ternd's socket to the milter", lambda: socket_to(srv.proc.pid, ("127.0.0.1", port)))
            with out:
                assert nodelay(out), "TCP_NODELAY on the connection to the milter"
    finally:
        c.close()
        milter.close()
