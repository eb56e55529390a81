"""SPF (RFC 7208) at MAIL: a real ternd with spf_policy = reject, record or
off, a real unbound serving the senders' records, and clients from
127.0.0.1 and 127.0.0.2 (two addresses, two clients as the server sees
them). The lookups run on ternd's loop: while one hangs, other sessions
are served.

The RFC 7208 test suite itself runs in test_spf_suite.py."""

import re
import socket
import time

import pytest

from conftest import (BYE, EHLO_REPLY, QUEUED, RCPT_OK, SENDER_OK, START_DATA, Client, GREETING,
                      crlf, run_ternd, wait_for)
from secfix import PASSWORD, plain_b64, users_file  # noqa: F401
from test_config import base_opts, o_args

ZONE = [
    'spf.test. TXT "v=spf1 ip4:127.0.0.2 -all"',
    'soft.test. TXT "v=spf1 ip4:127.0.0.2 ~all"',
    'exp.test. TXT "v=spf1 ip4:127.0.0.2 -all exp=why.exp.test"',
    'why.exp.test. TXT "%{i} may not send mail for %{d}: see https://exp.test/spf"',
    'include.test. TXT "v=spf1 include:spf.test -all"',
    'helo.test. TXT "v=spf1 a -all"',
    "helo.test. A 127.0.0.2",
    'example.com. TXT "v=spf1 -all"',
    'broken.test. TXT "v=spf1 ip4:127.0.0.2 -all moo"',
]

FAIL_1 = "550 5.7.23 SPF: spf.test does not designate 127.0.0.1 as a permitted sender"
TEMP = "451 4.4.3 SPF: temporary error looking up the policy of %s; try again later"
MESSAGE = crlf("Subject: spf", "", "checked")


@pytest.fixture
def dns(unbound, silent_dns):
    """The test zones; servfail.test answers REFUSED (a failure to a
    forwarding resolver), hang.test never answers."""
    return unbound(ZONE, zones=[("servfail.test.", "always_refuse")],
                   forward=[("hang.test.", silent_dns)])


def spf_lines(server):
    return [l for l in server.log().splitlines() if " spf: " in l]


def spf_line(server, **fields):
    """Wait for the spf line with these fields (key=value as logged)."""
    def find():
        for l in spf_lines(server):
            if all(re.search(r"\b%s=%s(,|$)" % (k, re.escape(v)), l) for k, v in fields.items()):
                return l
        return None
    return wait_for("an spf line with %s" % fields, find)


def session_from(server, source, helo="EHLO client.example"):
    c = server.connect(source=source)
    r = c.cmd(helo)
    assert r.code == 250, r.text
    return c


def test_fail_refused_pass_accepted(ternd, dns):
    s = ternd(dns_resolver=dns.resolver, spf_policy="reject", mailboxes=("kate@example.com",))
    c = session_from(s, "127.0.0.1")
    c.expect("MAIL FROM:<anyone@spf.test>", FAIL_1)
    c.expect("MAIL FROM:<anyone@include.test>",   # through include: the same fail
             "550 5.7.23 SPF: include.test does not designate 127.0.0.1 as a permitted sender")
    c.expect("MAIL FROM:<anyone@nospf.test>", SENDER_OK)   # none: accepted
    c.expect("RSET", "250 2.0.0 OK")
    line = spf_line(s, result="fail", domain="spf.test")
    assert "client=[127.0.0.1]" in line and "mechanism=-all" in line, line
    assert re.search(r"reject: .*from=<anyone@spf\.test>.*reason=SPF fail", s.log()), s.log()
    c2 = session_from(s, "127.0.0.2")
    qid = c2.send_mail("anyone@spf.test", ["kate@example.com"], MESSAGE)
    c2.expect("QUIT", BYE)
    line = spf_line(s, result="pass", domain="spf.test")
    assert (qid + ": spf: ") in line, line   # the message's own line
    assert "client=[127.0.0.2]" in line and "mechanism=ip4:127.0.0.2" in line, line
    s.wait_messages("kate@example.com", 1)


def test_explanation_from_the_domain(ternd, dns):
    s = ternd(dns_resolver=dns.resolver, spf_policy="reject")
    c = session_from(s, "127.0.0.1")
    c.expect("MAIL FROM:<x@exp.test>",
             "550 5.7.23 127.0.0.1 may not send mail for exp.test: see https://exp.test/spf")


def test_softfail_accepted_and_logged(ternd, dns):
    s = ternd(dns_resolver=dns.resolver, spf_policy="reject", mailboxes=("kate@example.com",))
    c = session_from(s, "127.0.0.1")
    qid = c.send_mail("someone@soft.test", ["kate@example.com"], MESSAGE)
    line = spf_line(s, result="softfail", domain="soft.test", mechanism="~all")
    assert (qid + ": spf: ") in line and "identity=mailfrom" in line, line
    assert "client=[127.0.0.1]" in line, line


def test_record_only_logs(ternd, dns):
    """spf_policy's default, record: a fail is logged, the mail taken.
    (spf_policy=None drops the harness's "off": the embedded default.)"""
    s = ternd(dns_resolver=dns.resolver, spf_policy=None, mailboxes=("kate@example.com",))
    c = session_from(s, "127.0.0.1")
    qid = c.send_mail("anyone@spf.test", ["kate@example.com"], MESSAGE)
    c.expect("MAIL FROM:<x@servfail.test>", SENDER_OK)
    c.expect("RSET", "250 2.0.0 OK")
    c.expect("MAIL FROM:<x@broken.test>", SENDER_OK)
    line = spf_line(s, result="fail", domain="spf.test", mechanism="-all")
    assert (qid + ": spf: ") in line, line
    line = spf_line(s, result="temperror", domain="servfail.test")
    assert "problem=servfail.test: DNS error" in line, line
    line = spf_line(s, result="permerror", domain="broken.test")
    assert "unknown mechanism 'moo'" in line, line


def test_temporary_error_451_with_reject(ternd, dns):
    s = ternd(dns_resolver=dns.resolver, spf_policy="reject")
    c = session_from(s, "127.0.0.1")
    c.expect("MAIL FROM:<x@servfail.test>", TEMP % "servfail.test")
    c.expect("MAIL FROM:<x@broken.test>", SENDER_OK)   # permerror: not refused (8.7)


def test_lookup_time_limit_451(ternd, dns):
    s = ternd(dns_resolver=dns.resolver, spf_policy="reject", spf_timeout="2s")
    c = session_from(s, "127.0.0.1")
    started = time.monotonic()
    c.expect("MAIL FROM:<x@hang.test>", TEMP % "hang.test")
    assert 1.5 < time.monotonic() - started < 9, time.monotonic() - started
    line = spf_line(s, result="temperror", domain="hang.test")
    assert "no answer within the time limit" in line, line


def test_null_sender_checks_the_helo_name(ternd, dns):
    """RFC 7208 2.4: MAIL FROM:<> is checked as postmaster@helo."""
    s = ternd(dns_resolver=dns.resolver, spf_policy="reject", mailboxes=("kate@example.com",))
    c = session_from(s, "127.0.0.1", "EHLO helo.test")
    c.expect("MAIL FROM:<>",
             "550 5.7.23 SPF: helo.test does not designate 127.0.0.1 as a permitted sender")
    c2 = session_from(s, "127.0.0.2", "EHLO helo.test")
    c2.send_mail("", ["kate@example.com"], MESSAGE)
    line = spf_line(s, result="pass", identity="helo", domain="helo.test")
    assert "mechanism=a" in line, line


def test_pipelined_commands_wait_for_the_check(ternd, dns):
    """The answer comes from the loop later; the pipelined RCPT and DATA
    behind MAIL wait for it (RFC 2920)."""
    s = ternd(dns_resolver=dns.resolver, spf_policy="reject", mailboxes=("kate@example.com",))
    c = session_from(s, "127.0.0.1")
    c.raw(b"MAIL FROM:<a@spf.test>\r\nRCPT TO:<kate@example.com>\r\nDATA\r\n")
    c.expect_reply(FAIL_1)
    c.expect_reply("503 5.5.1 ...")
    c.expect_reply("503 5.5.1 ...")
    c2 = session_from(s, "127.0.0.2")
    c2.raw(b"MAIL FROM:<a@spf.test>\r\nRCPT TO:<kate@example.com>\r\nDATA\r\n")
    c2.expect_reply(SENDER_OK)
    c2.expect_reply(RCPT_OK)
    c2.expect_reply(START_DATA)
    c2.raw(MESSAGE + b".\r\n")
    c2.expect_reply(QUEUED)


def test_authenticated_client_not_checked(ternd, dns, users_file):
    s = ternd(dns_resolver=dns.resolver, spf_policy="reject", users_file=str(users_file),
              auth_allow_plaintext="yes")
    c = s.connect()
    c.expect("EHLO client.example", "250-...")
    c.expect("MAIL FROM:<kate@example.com>",   # example.com: -all
             "550 5.7.23 SPF: example.com does not designate 127.0.0.1 as a permitted sender")
    c.expect("AUTH PLAIN " + plain_b64("kate@example.com", PASSWORD),
             "235 2.7.0 Authentication successful")
    c.expect("MAIL FROM:<kate@example.com>", SENDER_OK)
    c.expect("QUIT", BYE)
    c.wait_closed()
    assert len(spf_lines(s)) == 1, s.log()   # the unauthenticated MAIL's alone


def test_relay_networks_and_off_not_checked(ternd, dns):
    s = ternd(dns_resolver=dns.resolver, spf_policy="reject", relay_networks="127.0.0.1/32")
    c = session_from(s, "127.0.0.1")
    c.expect("MAIL FROM:<anyone@spf.test>", SENDER_OK)
    c2 = session_from(s, "127.0.0.3")
    c2.expect("MAIL FROM:<anyone@spf.test>",
              "550 5.7.23 SPF: spf.test does not designate 127.0.0.3 as a permitted sender")
    assert len(spf_lines(s)) == 1, s.log()
    off = ternd(dns_resolver=dns.resolver, spf_policy="off")
    c3 = session_from(off, "127.0.0.1")
    c3.expect("MAIL FROM:<anyone@spf.test>", SENDER_OK)
    c3.expect("QUIT", BYE)
    c3.wait_closed()
    assert spf_lines(off) == [], off.log()


def test_loop_serves_others_while_a_lookup_hangs(ternd, dns):
    """One client's MAIL waits on a DNS server that never answers; others
    complete whole transactions meanwhile. A client that leaves while its
    check runs, and one still waiting at SIGTERM, cost nothing: the
    fixture fails a ternd that does not exit 0 or that a sanitizer
    reported on."""
    s = ternd(dns_resolver=dns.resolver, spf_policy="reject", mailboxes=("kate@example.com",))
    waiting = session_from(s, "127.0.0.1")
    waiting.send("MAIL FROM:<x@hang.test>")
    leaving = session_from(s, "127.0.0.1")
    leaving.send("MAIL FROM:<y@hang.test>")
    started = time.monotonic()
    for i in range(3):
        c = session_from(s, "127.0.0.2")
        c.send_mail("anyone@spf.test", ["kate@example.com"], MESSAGE)
        c.expect("QUIT", BYE)
    assert time.monotonic() - started < 8, "the others took %.1f s" % (time.monotonic() - started)
    s.wait_messages("kate@example.com", 3)
    leaving.close()                      # gone while its check runs
    waiting.sock.settimeout(0.2)
    with pytest.raises(socket.timeout):
        waiting.sock.recv(100)           # still no answer: the lookup hangs
    c = session_from(s, "127.0.0.2")     # and the server still serves
    c.expect("NOOP", "250 2.0.0 OK")


def test_bad_values_refused(tmp_path):
    for key, value in (("spf_policy", "maybe"), ("spf_timeout", "0"), ("spf_timeout", "soon")):
        rc, out, err = run_ternd(["-n"] + o_args(base_opts(tmp_path)) +
                                 ["-o", "%s=%s" % (key, value)])
        assert rc == 2 and key in err, "-o %s=%s: %d\n%s" % (key, value, rc, err)
    rc, out, err = run_ternd(["-n"] + o_args(base_opts(tmp_path)) +
                             ["-o", "spf_policy=reject", "-o", "spf_timeout=1m"])
    assert rc == 0, err
