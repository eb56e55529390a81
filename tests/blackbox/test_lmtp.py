"""LMTP delivery (RFC 2033) into a real Dovecot: domains in lmtp_domains go to
lmtp_host (TCP or a unix socket); Dovecot's verdict per recipient is kept;
a Dovecot that is down means retry, not loss."""

import pytest

from conftest import crlf
from peers import Dovecot, free_port_on, parse, report_parts
from test_mx import SENDER, send, wait_log


@pytest.fixture
def dovecot():
    servers = []

    def start(users=("bob@lmtp.example", "carol@lmtp.example"), port=None):
        d = Dovecot(port or free_port_on("127.0.0.1"), list(users))
        servers.append(d)
        return d

    yield start
    for d in servers:
        d.stop()


def lmtp_ternd(ternd, host, **opts):
    s = ternd(lmtp_domains="lmtp.example", lmtp_host=host, retry_min="1s", retry_max="1s", **opts)
    s.make_maildir(SENDER)
    return s


def test_lmtp_over_tcp_into_dovecot(ternd, dovecot):
    d = dovecot()
    s = lmtp_ternd(ternd, "127.0.0.1:%d" % d.port)
    send(s, ["bob@lmtp.example"], crlf("Subject: to dovecot", "", "lmtp-tcp-body"))
    got = d.wait_message_with("bob@lmtp.example", "lmtp-tcp-body")
    assert b"Subject: to dovecot" in got
    assert b"by mx.test.example (tern)" in got
    wait_log(s, "status=sent")
    assert "relay=" in s.log() and "said: 250" in s.log()


def test_lmtp_over_a_unix_socket(ternd, dovecot):
    d = dovecot()
    s = lmtp_ternd(ternd, "unix:%s" % d.socket)
    send(s, ["carol@lmtp.example"], crlf("Subject: via socket", "", "lmtp-unix-body"))
    d.wait_message_with("carol@lmtp.example", "lmtp-unix-body")


def test_lmtp_per_recipient_results(ternd, dovecot):
    d = dovecot()
    s = lmtp_ternd(ternd, "127.0.0.1:%d" % d.port)
    send(s, ["bob@lmtp.example", "nobody@lmtp.example"], crlf("Subject: two", "", "lmtp-two"))
    d.wait_message_with("bob@lmtp.example", "lmtp-two")
    s.wait_messages(SENDER, 1)
    _, _, rcpts, _ = report_parts(parse(s.messages(SENDER)[0]))
    assert [r["Final-Recipient"] for r in rcpts] == ["rfc822; nobody@lmtp.example"]
    assert rcpts[0]["Action"] == "failed"
    assert rcpts[0]["Status"].startswith("5.1.")


def test_lmtp_success_report_says_delivered(ternd, dovecot):
    d = dovecot()
    s = lmtp_ternd(ternd, "127.0.0.1:%d" % d.port)
    send(s, ["bob@lmtp.example"], crlf("Subject: receipt", "", "lmtp-receipt"), notify="SUCCESS")
    d.wait_message_with("bob@lmtp.example", "lmtp-receipt")
    s.wait_messages(SENDER, 1)
    _, _, rcpts, _ = report_parts(parse(s.messages(SENDER)[0]))
    assert rcpts[0]["Action"] == "delivered"


def test_dovecot_down_then_up(ternd, dovecot):
    port = free_port_on("127.0.0.1")
    s = lmtp_ternd(ternd, "127.0.0.1:%d" % port)
    send(s, ["bob@lmtp.example"], crlf("Subject: later", "", "lmtp-later"))
    wait_log(s, "status=deferred")
    d = dovecot(port=port)
    d.wait_message_with("bob@lmtp.example", "lmtp-later")
