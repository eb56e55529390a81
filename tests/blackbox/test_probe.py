"""tern-probe check and explain, against real servers on loopback: ternd,
Postfix's smtp-sink (a different SMTP implementation), and a real unbound
for the MX lookups. Each test runs the tern-probe binary as a person would
and checks its report, its exit status, and what the server received.
"""

import json
import os
import re
import subprocess

import pytest

from conftest import REPO, DEADLINE, free_port, sanitizer_problems
from probe_peers import SmtpSink

PROBE = os.environ.get("TERN_PROBE") or str(REPO / "build" / "tern-probe")


def probe(*args, timeout=DEADLINE * 3):
    """Runs tern-probe; returns (exit status, stdout). Fails on a
    sanitizer report."""
    p = subprocess.run([PROBE] + [str(a) for a in args], stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=timeout)
    out = p.stdout.decode("utf-8", "replace")
    err = p.stderr.decode("utf-8", "replace")
    assert not sanitizer_problems(out + err), "sanitizer report:\n" + err
    return p.returncode, out


def step(out, name):
    """The report line of step name: "[pass] name ... verdict"."""
    m = re.search(r"^\[(pass|warn|FAIL|skip|info)\] %s +[\d.]+ ms  (.*)$" % re.escape(name),
                  out, re.M)
    assert m, "no step %r in the report:\n%s" % (name, out)
    return m.group(1), m.group(2)


@pytest.fixture
def sink(tmp_path):
    sinks = []

    def start(*args):
        s = SmtpSink(tmp_path, *args)
        sinks.append(s)
        return s

    yield start
    for s in sinks:
        s.stop()


# -------------------------------------------------------------- explain


def test_explain_relay_denied():
    rc, out = probe("explain", "550", "5.7.1")
    assert rc == 0
    assert "relaying denied: the server does not accept mail for that domain from you" in out
    assert "550: Requested action not taken: mailbox unavailable" in out
    assert "5.7.1: Delivery not authorized, message refused" in out


def test_explain_one_argument_and_enhanced_only():
    rc, out = probe("explain", "535 5.7.8")
    assert rc == 0 and "wrong user name or password" in out
    rc, out = probe("explain", "4.2.2")
    assert rc == 0 and "Mailbox full" in out and "temporary failure" in out


def test_explain_unknown_code_by_class():
    rc, out = probe("explain", "597", "5.9.1")
    assert rc == 0
    assert "597: not in the table" in out and "permanent failure" in out
    assert "5.9.1: not in the table" in out and "subject 9" in out


def test_explain_refuses_garbage():
    rc, out = probe("explain", "hello")
    assert rc == 2 and out == ""


# -------------------------------------------------------------- check: ternd


def test_check_ternd_whole_procedure(ternd):
    s = ternd(log_level="debug")
    s.make_maildir("kate@example.com")
    rc, out = probe("check", "127.0.0.1:%d" % s.port, "-v", "--helo", "contoso.test",
                    "--from", "chris@contoso.test", "--to", "kate@example.com",
                    "--send", "--notify", "success,failure")
    assert rc == 0, out
    assert step(out, "connect") == ("pass", "connected to 127.0.0.1 [127.0.0.1] port %d" % s.port)
    assert step(out, "greeting")[0] == "pass"
    assert "server name: mx.test.example" in out and "software:    ESMTP tern ready" in out
    assert step(out, "ehlo") == ("pass", "250: 9 extensions announced")
    assert re.search(r"^ +BINARYMIME +binary message bodies with BDAT", out, re.M), out
    assert re.search(r"^ +DSN +delivery status notifications", out, re.M), out
    assert re.search(r"^ +SMTPUTF8 +internationalized \(UTF-8\) addresses accepted", out,
                     re.M), out
    assert re.search(r"^ +PIPELINING +commands may be sent in groups", out, re.M), out
    # ternd offers no STARTTLS (yet): a warning, not a failure
    assert step(out, "starttls")[0] == "warn"
    assert step(out, "rcpt") == ("pass", "1 of 1 recipient accepted, delivery receipts requested")
    st, verdict = step(out, "data")
    assert st == "pass" and "250 2.6.0 <" in verdict and "queued" in verdict
    assert step(out, "quit")[0] == "pass"
    assert "Summary: " in out and "0 failed" in out and "all tests passed" in out
    # -v: the exact lines
    assert "C: RCPT TO:<kate@example.com> NOTIFY=success,failure" in out
    assert "S: 221 2.0.0 Service closing transmission channel" in out
    # what ternd received, and the test message of the seeds
    assert "< RCPT TO:<kate@example.com> NOTIFY=success,failure" in s.log()
    msg = s.wait_message_with("kate@example.com", "Subject: Test from contoso.test")
    assert b"\nThis is a test message\n" in msg
    assert b"From: <chris@contoso.test>" in msg


def test_check_json(ternd):
    s = ternd()
    rc, out = probe("check", "127.0.0.1:%d" % s.port, "--json", "--to", "nobody@example.com")
    doc = json.loads(out)
    names = [st["name"] for st in doc["steps"]]
    assert names == ["connect", "greeting", "ehlo", "starttls", "transport", "mail", "rcpt",
                     "quit"], names
    rcpt = doc["steps"][names.index("rcpt")]
    assert rcpt["status"] == "fail"
    assert any("550 5.1.1 User unknown" in d and "user unknown" in d for d in rcpt["details"])
    assert "RCPT TO:<nobody@example.com>" in "\n".join(rcpt["transcript"])
    assert doc["summary"]["exit"] == 1 == rc
    assert doc["summary"]["failed"] == 1


def test_check_unknown_user_fails(ternd):
    s = ternd()
    rc, out = probe("check", "127.0.0.1:%d" % s.port, "--to", "ghost@example.com", "--send")
    assert rc == 1, out
    st, verdict = step(out, "rcpt")
    assert st == "FAIL" and verdict == "0 of 1 recipient accepted"
    assert "ghost@example.com: 550 5.1.1 User unknown (user unknown: no such mailbox here)" in out
    assert "data" not in re.findall(r"^\[\w+\] (\w+)", out, re.M)   # nothing to send
    assert "a test failed" in out


def test_relay_test_closed(ternd):
    s = ternd(log_level="debug")
    rc, out = probe("check", "127.0.0.1:%d" % s.port, "--relay-test")
    assert rc == 0, out
    st, verdict = step(out, "relay")
    assert st == "pass" and verdict.startswith("not an open relay: all 10 attempts")
    assert ("plain outside recipient" in out and "refused: 550 5.7.1 Unable to relay "
            "(relaying denied: the server does not accept mail for that domain from you)" in out)
    assert "< DATA" not in s.log()


def test_relay_test_open(ternd):
    # relaying for 127.0.0.0/8: from this client ternd is an open relay
    s = ternd(log_level="debug", relay_networks="127.0.0.0/8")
    rc, out = probe("check", "127.0.0.1:%d" % s.port, "--relay-test",
                    "--outside-domain", "outside.example")
    assert rc == 1, out
    st, verdict = step(out, "relay")
    assert st == "FAIL" and verdict.startswith("OPEN RELAY"), verdict
    assert "<relaytest@outside.example> -> ACCEPTED: 250 2.1.5" in out
    # nothing was sent: every attempt stopped at RCPT
    assert "< DATA" not in s.log()
    assert "< RCPT TO:<relaytest@outside.example>" in s.log()


def test_connect_refused_exit_2():
    port = free_port()
    rc, out = probe("check", "127.0.0.1:%d" % port)
    assert rc == 2
    st, verdict = step(out, "connect")
    assert st == "FAIL" and "Connection refused" in out
    assert "could not connect" in out


def test_bad_target_exit_2():
    rc, out = probe("check", "host:99999")
    assert rc == 2 and "not a host[:port] or a mail domain" in out


# -------------------------------------------------------------- DNS


def test_mx_only_nslookup_format(unbound):
    dns = unbound(["example.test. MX 20 mx2.example.test.",
                   "example.test. MX 10 mx1.example.test.",
                   "mx1.example.test. A 127.0.0.1",
                   "mx2.example.test. A 127.0.0.2",
                   "mx2.example.test. AAAA ::1"])
    rc, out = probe("check", "example.test", "--mx-only", "--resolver", dns.resolver)
    assert rc == 0, out
    lines = [l.strip() for l in out.splitlines()]
    i = lines.index("example.test  MX preference = 10, mail exchanger = mx1.example.test")
    assert lines[i + 1] == "example.test  MX preference = 20, mail exchanger = mx2.example.test"
    assert "mx1.example.test  internet address = 127.0.0.1" in lines
    assert "mx2.example.test  internet address = 127.0.0.2" in lines
    assert "mx2.example.test  AAAA IPv6 address = ::1" in lines
    assert "connect" not in out


def test_mx_unknown_domain(unbound):
    dns = unbound(["example.test. MX 10 mx1.example.test."])
    rc, out = probe("check", "nowhere.test", "--resolver", dns.resolver)
    assert rc == 2, out
    assert "NXDOMAIN" in step(out, "dns")[1]


def test_null_mx(unbound):
    dns = unbound(["nomail.test. MX 0 ."])
    rc, out = probe("check", "nomail.test", "--mx-only", "--resolver", dns.resolver)
    assert rc == 1
    assert "null MX (RFC 7505)" in step(out, "dns")[1]


def test_check_domain_through_mx_fallback(unbound, ternd):
    # the best MX (127.0.0.2) refuses connections; the second is ternd
    s = ternd()
    dns = unbound(["example.test. MX 10 mx1.example.test.",
                   "example.test. MX 20 mx2.example.test.",
                   "mx1.example.test. A 127.0.0.2",
                   "mx2.example.test. A 127.0.0.1"])
    rc, out = probe("check", "example.test", "--port", s.port, "--resolver", dns.resolver)
    assert rc == 0, out
    assert step(out, "dns") == ("pass", "example.test: 2 MX records")
    assert step(out, "connect") == ("pass", "connected to mx2.example.test [127.0.0.1] port %d"
                                    % s.port)
    assert "mx1.example.test [127.0.0.2]:%d: Connection refused" % s.port in out


def test_implicit_mx(unbound, ternd):
    s = ternd()
    dns = unbound(["host.test. A 127.0.0.1"])
    rc, out = probe("check", "host.test", "--port", s.port, "--resolver", dns.resolver)
    assert rc == 0, out
    st, verdict = step(out, "dns")
    assert st == "warn" and "implicit MX" in verdict
    assert step(out, "greeting")[0] == "pass"


# -------------------------------------------------------------- smtp-sink


def test_check_smtp_sink(sink):
    k = sink()
    rc, out = probe("check", "127.0.0.1:%d" % k.port, "--helo", "contoso.test",
                    "--from", "chris@contoso.test", "--to", "kate@fabrikam.test",
                    "--send", "--notify", "success,failure")
    assert rc == 0, out
    assert "server name: sink.test.example" in out
    assert re.search(r"^ +XFORWARD NAME ADDR PROTO HELO +a trusted filter", out, re.M), out
    st, verdict = step(out, "data")
    assert st == "pass" and verdict.startswith("test message accepted: 250 2.0.0 Ok")
    msgs = k.messages()
    assert len(msgs) == 1, k.log()
    assert b"X-Rcpt-Args: <kate@fabrikam.test> NOTIFY=success,failure" in msgs[0]
    assert b"Subject: Test from contoso.test" in msgs[0]


def test_helo_fallback_smtp_sink(sink):
    k = sink("-e")     # no ESMTP: EHLO is an unknown command
    rc, out = probe("check", "127.0.0.1:%d" % k.port, "-v", "--to", "kate@fabrikam.test")
    assert rc == 0, out
    st, verdict = step(out, "ehlo")
    assert st == "warn" and "EHLO refused, HELO accepted" in verdict
    assert "C: HELO " in out
    assert "starttls" not in re.findall(r"^\[\w+\] (\w+)", out, re.M)


def test_refused_rcpt_smtp_sink(sink):
    k = sink("-f", "RCPT")
    rc, out = probe("check", "127.0.0.1:%d" % k.port, "--to", "kate@fabrikam.test", "--send")
    assert rc == 1, out
    assert "kate@fabrikam.test: 500 5.3.0 Error: command failed" in out
    assert k.messages() == []


def test_server_hangs_up_smtp_sink(sink):
    k = sink("-Q", "MAIL")   # 421 and disconnect at MAIL
    rc, out = probe("check", "127.0.0.1:%d" % k.port, "--to", "kate@fabrikam.test")
    assert rc == 1, out
    st, verdict = step(out, "mail")
    assert st == "FAIL" and verdict.startswith("sender refused: 421"), verdict


def test_require_tls_fails_without_starttls(ternd):
    s = ternd()
    rc, out = probe("check", "127.0.0.1:%d" % s.port, "--require-tls")
    assert rc == 1, out
    assert step(out, "starttls") == ("FAIL", "STARTTLS not offered: mail to this server "
                                     "travels unencrypted")
