"""Every limit reached, with its reply code: connections (421 4.7.0),
rate, errors, AUTH failures (in test_auth), recipients (452 4.5.3), size
(552 5.3.4), line length (500 5.5.2), timeouts (421 4.4.2), and a client
that talks before the greeting (554)."""

import socket
import time

from conftest import BYE, GREETING, SENDER_OK, RCPT_OK, START_DATA, Client, crlf


def connect_from(port, src):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(10)
    s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    c = Client.__new__(Client)
    c.name, c.timeout, c.transcript, c.buf, c.sock = "client from " + src, 10, [], b"", s
    return c


def test_max_connections(ternd):
    s = ternd(max_connections=2)
    a, b = s.connect(), s.connect()
    c = s.connect(greeting=False)
    c.expect(None, "421 4.7.0 mx.test.example Too many connections; try again later")
    c.wait_closed()
    a.expect("QUIT", BYE)
    a.wait_closed()
    b.expect("NOOP", "250 2.0.0 OK")


def test_max_connections_per_ip(ternd):
    s = ternd(max_connections_per_ip=2)
    a, b = s.connect(), s.connect()
    c = s.connect(greeting=False)
    c.expect(None, "421 4.7.0 mx.test.example Too many connections from your address")
    c.wait_closed()
    other = connect_from(s.port, "127.0.0.2")
    s.clients.append(other)
    other.expect(None, GREETING)
    a.expect("QUIT", BYE)
    a.wait_closed()
    deadline = time.monotonic() + 10
    while True:     # the slot frees once the server has seen the close
        d = s.connect(greeting=False)
        r = d.reply()
        if r.text == GREETING:
            break
        assert r.code == 421 and time.monotonic() < deadline, r.text
        d.close()


def test_connection_rate(ternd):
    s = ternd(max_connection_rate=3)
    for _ in range(3):
        c = connect_from(s.port, "127.0.0.3")
        c.expect(None, GREETING)
        c.expect("QUIT", BYE)
        c.close()
    c = connect_from(s.port, "127.0.0.3")
    c.expect(None, "421 4.7.0 mx.test.example Connection rate limit exceeded; try again later")
    c.wait_closed()
    c = connect_from(s.port, "127.0.0.4")
    c.expect(None, GREETING)


def test_max_errors(ternd):
    s = ternd(max_errors=3)
    c = s.session()
    c.expect("FOO", "500 5.5.1 Unrecognized command")
    c.expect("RCPT TO:<a@example.com>", "503 5.5.1 Need MAIL before RCPT")
    c.expect("BAR", "500 5.5.1 Unrecognized command")
    c.expect_reply("421 4.7.0 mx.test.example Too many errors; closing")
    c.wait_closed()


def test_max_recipients(ternd):
    s = ternd(max_recipients=2)
    s.make_maildir("a@example.com", "b@example.com", "c@example.com")
    c = s.session()
    c.expect("MAIL FROM:<x@client.example>", SENDER_OK)
    c.expect("RCPT TO:<a@example.com>", RCPT_OK)
    c.expect("RCPT TO:<b@example.com>", RCPT_OK)
    c.expect("RCPT TO:<c@example.com>", "452 4.5.3 Too many recipients")


def test_message_size(ternd):
    s = ternd(max_message_size="1k")
    s.make_maildir("a@example.com")
    c = s.session()
    c.expect("MAIL FROM:<x@client.example> SIZE=5000", "552 5.3.4 Message size exceeds fixed maximum message size")
    c.expect("MAIL FROM:<x@client.example>", SENDER_OK)
    c.expect("RCPT TO:<a@example.com>", RCPT_OK)
    c.expect("DATA", START_DATA)
    c.raw(crlf("Subject: big", "", *(["x" * 70] * 40)) + b".\r\n")
    c.expect_reply("552 5.3.4 Message size exceeds fixed maximum message size")
    c.expect("NOOP", "250 2.0.0 OK")


def test_command_line_length(server):
    c = server.session()
    c.send("NOOP " + "x" * 3000)
    c.expect_reply("500 5.5.2 Line too long")
    c.expect("NOOP", "250 2.0.0 OK")


def test_command_timeout_closes_idle_session(ternd):
    s = ternd(command_timeout="1s")
    c = s.session()
    c.expect_reply("421 4.4.2 mx.test.example Error: timeout exceeded", after="1 s of silence")
    c.wait_closed()


def test_data_timeout(ternd):
    s = ternd(data_timeout="1s")
    s.make_maildir("a@example.com")
    c = s.session()
    c.expect("MAIL FROM:<x@client.example>", SENDER_OK)
    c.expect("RCPT TO:<a@example.com>", RCPT_OK)
    c.expect("DATA", START_DATA)
    c.send("Subject: slow")
    c.expect_reply("421 4.4.2 mx.test.example Error: timeout exceeded", after="1 s in DATA")
    c.wait_closed()


def test_talking_before_greeting_refused(ternd):
    s = ternd(greeting_delay="1s")
    c = s.connect(greeting=False)
    c.send("EHLO impatient.example")
    c.expect_reply("554 5.5.1 Protocol error: you talked before the greeting (RFC 5321 3.1)")
    c.wait_closed()
    d = s.connect()          # a patient client gets the greeting
    d.expect("QUIT", BYE)
    assert "talked before the greeting" in s.log()
