"""PROXY protocol v1 and v2 with a real HAProxy in front: ternd logs and
records (Received) the original client address, here 127.0.0.2+, not the
proxy's."""

import socket
import subprocess
import time

import pytest

from conftest import BYE, GREETING, Client, Delivered, crlf, free_port

HAPROXY = "/usr/sbin/haproxy"


@pytest.fixture
def haproxy(tmp_path):
    procs = []

    def start(backend_port, mode):
        front = free_port()
        cfg = tmp_path / ("haproxy-%s.cfg" % mode)
        cfg.write_text("""
global
    maxconn 100
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend smtp
    bind 127.0.0.1:%d
    default_backend tern
backend tern
    server t1 127.0.0.1:%d %s
""" % (front, backend_port, mode))
        log = open(tmp_path / ("haproxy-%s.log" % mode), "wb")
        p = subprocess.Popen([HAPROXY, "-db", "-f", str(cfg)], stdout=log, stderr=log)
        procs.append(p)
        deadline = time.monotonic() + 10
        while True:
            assert p.poll() is None, "haproxy exited: %s" % (tmp_path / ("haproxy-%s.log" % mode)).read_text()
            try:
                socket.create_connection(("127.0.0.1", front), timeout=1).close()
                return front
            except OSError:
                assert time.monotonic() < deadline, "haproxy did not listen"
                time.sleep(0.05)

    yield start
    for p in procs:
        p.terminate()
        p.wait(10)


def client_from(port, src):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(10)
    s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    c = Client.__new__(Client)
    c.name, c.timeout, c.transcript, c.buf, c.sock = "client from " + src, 10, [], b"", s
    return c


@pytest.mark.parametrize("mode,src", [("send-proxy", "127.0.0.2"), ("send-proxy-v2", "127.0.0.3")])
def test_haproxy_passes_client_address(ternd, haproxy, mode, src):
    plain, proxied = free_port(), free_port()
    s = ternd(listen="127.0.0.1:%d, 127.0.0.1:%d proxy" % (plain, proxied))
    s.make_maildir("x@example.com")
    front = haproxy(proxied, mode)
    c = client_from(front, src)
    s.clients.append(c)
    c.expect(None, GREETING)
    c.expect("HELO proxied.example", "250 mx.test.example Hello [%s]" % src)
    c.expect("MAIL FROM:<a@proxied.example>", "250 Sender OK")
    c.expect("RCPT TO:<x@example.com>", "250 Recipient OK")
    c.expect("DATA", "354 Start mail input; end with <CRLF>.<CRLF>")
    c.raw(crlf("Subject: via haproxy", "", "proxied-" + mode) + b".\r\n")
    c.expect_reply("250 ...")
    c.expect("QUIT", "221 Service closing transmission channel")
    data = s.wait_message_with("x@example.com", "proxied-" + mode)
    d = Delivered(data)
    assert d.received.startswith("Received: from proxied.example ([%s])" % src), d.received
    v = "2" if mode.endswith("v2") else "1"
    assert "proxy: client=[%s], version=%s, via=[127.0.0.1]" % (src, v) in s.log(), s.log()


def test_proxy_listener_refuses_missing_header(ternd):
    port = free_port()
    s = ternd(listen="127.0.0.1:%d, 127.0.0.1:%d proxy" % (free_port(), port))
    c = Client(port)
    c.send("EHLO direct.example")
    assert c.wait_closed() == b"", "a proxy listener answered a client without a header"
    assert "bad PROXY header" in s.log()


def test_proxy_header_spoofing_ignored_on_plain_listener(server):
    c = server.connect()
    c.send("PROXY TCP4 192.0.2.66 127.0.0.1 1234 25")
    c.expect_reply("500 5.5.1 Unrecognized command")
    c.expect("HELO x.example", "250 mx.test.example Hello [127.0.0.1]")


def test_proxy_limits_apply_to_the_real_client(ternd, haproxy):
    proxied = free_port()
    s = ternd(listen="127.0.0.1:%d, 127.0.0.1:%d proxy" % (free_port(), proxied),
              max_connections_per_ip=1)
    front = haproxy(proxied, "send-proxy-v2")
    a = client_from(front, "127.0.0.5")
    a.expect(None, GREETING)
    b = client_from(front, "127.0.0.6")      # another client, same proxy: fine
    b.expect(None, GREETING)
    c = client_from(front, "127.0.0.5")
    c.expect(None, "421 4.7.0 mx.test.example Too many connections from your address")
    for x in (a, b, c):
        x.close()
