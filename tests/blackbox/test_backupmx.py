"""The backup MX spool, as the seeds' "Autoturn": hold_domains keep mail
until its server asks for it with ETRN (RFC 1985), ATRN (RFC 2645) or
the dequeue trigger, or an operator releases it.

The customer's server is a real smtp-sink on loopback named by
transport_map; clients are raw sockets (the seeds' telnet), Python's
smtplib and Debian's fetchmail. Every wait polls against a deadline.
"""

import os
import re
import socket
import smtplib
import time

import pytest

from conftest import DEADLINE, crlf, free_port, wait_for
from peers import SmtpSink, free_port_on, parse_bytes, report_parts
from test_ternctl import ctl, queue_json

HELD = "held.test"


def message(subject, body="hello"):
    return crlf("From: <a@example.com>", "To: <x@held.test>", "Subject: " + subject, "", body)


def send(server, sender, rcpts, subject="test", c=None):
    own = c is None
    if own:
        c = server.connect()
        assert c.cmd("EHLO client.example").code == 250
    qid = c.send_mail(sender, rcpts, message(subject))
    if own:
        c.expect("QUIT", "221 ...")
        c.close()
    return qid


def offers(reply, ext):
    return any(line[4:].split(" ")[0] == ext for line in reply.lines[1:])


def sink_subjects(sink):
    out = []
    for p in sink.messages():
        m = re.search(rb"^Subject: (.*?)\r?$", p.read_bytes(), re.M)
        if m:
            out.append(m.group(1).decode())
    return sorted(out)


def held_rcpts(server):
    """address -> queue_name of every recipient queued."""
    out = {}
    for m in queue_json(server):
        for r in m["recipients"]:
            out[r["address"]] = m["queue_name"]
    return out


@pytest.fixture
def backup(ternd, tmp_path):
    """A ternd holding held.test (and its subdomains) for a customer whose
    server (an smtp-sink) is the transport_map entry; ETRN allowed from
    127.0.0.1 only, as etrn_networks says."""
    sink_port = free_port_on("127.0.0.1")
    sink = SmtpSink(tmp_path, "127.0.0.1", sink_port)
    tmap = tmp_path / "transport"
    tmap.write_text("%s 127.0.0.1:%d\nsub.%s 127.0.0.1:%d\nother.test 127.0.0.1:%d\n"
                    % (HELD, sink_port, HELD, sink_port, sink_port))
    s = ternd(transport_map=str(tmap), hold_domains=HELD, etrn_networks="127.0.0.1/32",
              relay_networks="127.0.0.0/8", mailboxes=("alice@example.com",))
    s.sink = sink
    s.sink_port = sink_port
    s.tmap = tmap
    yield s
    sink.stop()


def wait_held(server, addrs):
    return wait_for("%s held" % ", ".join(addrs),
                    lambda: all(held_rcpts(server).get(a) == "hold" for a in addrs))


# --------------------------------------------------------------------------
# hold_domains


def test_held_mail_waits_and_etrn_delivers_it(backup):
    s = backup
    a = send(s, "alice@example.com", ["u1@held.test"], subject="first")
    send(s, "alice@example.com", ["u2@held.test", "u3@other.test"], subject="second")
    wait_held(s, ["u1@held.test", "u2@held.test"])
    # mail for other domains is not held
    wait_for("other.test delivered", lambda: sink_subjects(s.sink) == ["second"])
    time.sleep(0.5)
    assert sink_subjects(s.sink) == ["second"], "held mail was delivered before ETRN"
    c = s.connect()
    r = c.cmd("EHLO customer.held.test")
    assert r.code == 250 and offers(r, "ETRN"), r.lines
    r = c.cmd("ETRN held.test")
    assert r.code == 253 and re.match(r"253 2\.0\.0 OK, 2 pending messages for node held\.test "
                                      r"started", r.text), r.lines
    wait_for("both held messages at the customer",
             lambda: sink_subjects(s.sink) == ["first", "second", "second"])
    wait_for("the queue empty", lambda: queue_json(s) == [])
    r = c.cmd("ETRN held.test")
    assert r.code == 251 and "2.0.0 OK, no messages waiting for node held.test" in r.text
    c.expect("QUIT", "221 ...")
    assert re.search(r"release: .*domain=held\.test, released=2", s.log()), s.log()
    assert a


def test_etrn_replies(backup):
    s = backup
    c = s.connect()
    assert c.cmd("EHLO client.example").code == 250
    r = c.cmd("ETRN")
    assert r.code == 501 and "5.5.4" in r.text
    r = c.cmd("ETRN #queue1")
    assert r.code == 459 and "Node #queue1 not allowed" in r.text
    r = c.cmd("ETRN elsewhere.test")
    assert r.code == 459 and "4.7.1 Node elsewhere.test not allowed: no mail is held here" in r.text
    r = c.cmd("ETRN not_a..domain")
    assert r.code == 501
    assert c.cmd("MAIL FROM:<alice@example.com>").code == 250
    r = c.cmd("ETRN held.test")
    assert r.code == 503 and "5.5.1" in r.text
    assert c.cmd("RSET").code == 250
    r = c.cmd("ETRN @held.test")
    assert r.code == 251 and "node @held.test" in r.text
    c.expect("QUIT", "221 ...")


def test_etrn_at_domain_takes_subdomains(backup):
    s = backup
    send(s, "alice@example.com", ["u@sub.held.test"], subject="to the subdomain")
    wait_held(s, ["u@sub.held.test"])
    c = s.connect()
    assert c.cmd("EHLO client.example").code == 250
    assert c.cmd("ETRN held.test").code == 251   # the domain alone: nothing for it
    r = c.cmd("ETRN @held.test")
    assert r.code == 253 and "1 pending messages for node @held.test" in r.text, r.lines
    wait_for("the subdomain's mail delivered",
             lambda: sink_subjects(s.sink) == ["to the subdomain"])
    c.expect("QUIT", "221 ...")


def test_etrn_refused_outside_etrn_networks(ternd, tmp_path):
    s = ternd(hold_domains=HELD, etrn_networks="192.0.2.0/24")
    c = s.connect()
    r = c.cmd("EHLO client.example")
    assert r.code == 250 and not offers(r, "ETRN")
    r = c.cmd("ETRN held.test")
    assert r.code == 459 and "not allowed" in r.text and "etrn_networks" in r.text
    c.expect("QUIT", "221 ...")


def test_etrn_not_offered_without_hold_domains(server):
    c = server.connect()
    r = c.cmd("EHLO client.example")
    assert not offers(r, "ETRN")
    r = c.cmd("ETRN example.org")
    assert r.code == 502
    c.expect("QUIT", "221 ...")


def test_deferred_after_release_is_held_again(backup):
    """The customer's server is down when ETRN comes: the mail waits for
    the next release instead of being retried on a schedule."""
    s = backup
    s.sink.stop()
    send(s, "alice@example.com", ["u1@held.test"], subject="while down")
    wait_held(s, ["u1@held.test"])
    c = s.connect()
    assert c.cmd("EHLO client.example").code == 250
    assert c.cmd("ETRN held.test").code == 253
    wait_for("the attempt made and the recipient held again",
             lambda: [m for m in queue_json(s) if m["queue_name"] == "hold"
                      and m["recipients"][0]["attempts"]])
    assert "deferred, held again" in s.log()
    # the sink is back: the next ETRN delivers
    s.sink = SmtpSink(s.tmp, "127.0.0.1", s.sink_port)
    r = c.cmd("ETRN held.test")
    assert r.code == 253, r.lines
    wait_for("delivered after the second ETRN", lambda: sink_subjects(s.sink) == ["while down"])
    c.expect("QUIT", "221 ...")


def test_ternctl_release_of_a_hold_domain(backup):
    s = backup
    send(s, "alice@example.com", ["u1@held.test"], subject="by the operator")
    wait_held(s, ["u1@held.test"])
    p = ctl(s, "release", HELD)
    assert "1" in p.stdout, p.stdout
    wait_for("released by ternctl", lambda: sink_subjects(s.sink) == ["by the operator"])
    # the domain stays held for later mail
    send(s, "alice@example.com", ["u2@held.test"], subject="later")
    wait_held(s, ["u2@held.test"])


def test_hold_recipients_file_refuses_unknown_at_rcpt(ternd, tmp_path):
    lst = tmp_path / "held-rcpts"
    lst.write_text("# the customer's users\nkate@held.test\n@open.test\n")
    s = ternd(hold_domains="held.test, open.test, free.test", hold_recipients_file=str(lst))
    c = s.connect()
    assert c.cmd("EHLO client.example").code == 250
    assert c.cmd("MAIL FROM:<a@example.com>").code == 250
    assert c.cmd("RCPT TO:<kate@held.test>").code == 250
    r = c.cmd("RCPT TO:<nobody@held.test>")
    assert r.code == 550 and "5.1.1" in r.text
    assert c.cmd("RCPT TO:<anyone@open.test>").code == 250
    assert c.cmd("RCPT TO:<anyone@free.test>").code == 250   # no list: anyone
    r = c.cmd("RCPT TO:<x@elsewhere.test>")
    assert r.code == 550 and "5.7.1" in r.text   # not held, not relayed
    c.expect("QUIT", "221 ...")


def test_held_mail_ages_delay_report_then_bounce(ternd, tmp_path):
    """Nobody asks: a delay report after delay_warning (NOTIFY=DELAY), a
    bounce with a delivery-status report after hold_lifetime."""
    s = ternd(hold_domains=HELD, hold_lifetime="4s", delay_warning="1s",
              mailboxes=("alice@example.com",))
    c = s.connect()
    assert c.cmd("EHLO client.example").code == 250
    assert c.cmd("MAIL FROM:<alice@example.com>").code == 250
    assert c.cmd("RCPT TO:<late@held.test> NOTIFY=DELAY,FAILURE").code == 250
    assert c.cmd("DATA").code == 354
    c.raw(message("never asked for") + b".\r\n")
    assert c.expect_reply("250 ...").code == 250
    c.expect("QUIT", "221 ...")
    msgs = s.wait_messages("alice@example.com", 2)
    kinds = []
    for data in msgs:
        human, _, rcpts, _ = report_parts(parse_bytes(data))
        assert rcpts[0]["Final-Recipient"] == "rfc822; late@held.test"
        kinds.append((rcpts[0]["Action"], rcpts[0]["Status"]))
    assert sorted(kinds) == [("delayed", "4.4.0"), ("failed", "4.4.7")], kinds
    wait_for("the queue empty", lambda: queue_json(s) == [])
    assert "hold_lifetime" in s.log()
