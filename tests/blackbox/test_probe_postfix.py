"""tern-probe against Postfix itself: STARTTLS (certificate facts, name and
chain checks), AUTH PLAIN and LOGIN (through a private Dovecot auth
service), the relay test, and the console's .starttls and .auth helpers.
ternd offers neither STARTTLS nor AUTH yet: Postfix is the peer for them.
"""

import os
import re

import pytest

from probe_peers import Postfix
from test_probe import probe, step
from test_probe_console import Console

USERS = {"kate@example.test": "s3cret"}

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason="a private Postfix master must start as root")


@pytest.fixture
def postfix():
    started = []

    def start(**kw):
        p = Postfix(USERS, **kw)
        started.append(p)
        return p

    yield start
    for p in started:
        p.stop()


def test_tls_and_auth_plain(postfix):
    pf = postfix()
    rc, out = probe("check", "127.0.0.1:%d" % pf.port, "-v", "--cafile", pf.cert,
                    "--tls-name", "pf.test.example", "--user", "kate@example.test",
                    "--password", "s3cret", "--to", "kate@pf.test.example", "--send")
    assert rc == 0, out + pf.log()
    st, verdict = step(out, "starttls")
    assert st == "pass" and re.match(r"TLSv1\.[23] \S+; certificate valid", verdict), verdict
    assert "subject:     /CN=pf.test.example" in out
    assert "issuer:      /CN=pf.test.example" in out
    assert re.search(r"expires: .* GMT \(in (29|30) days\)", out), out
    assert "name:        pf.test.example matches the certificate" in out
    assert "chain:       verifies" in out
    # AUTH appears only after STARTTLS (smtpd_tls_auth_only)
    assert step(out, "ehlo (tls)")[0] == "pass"
    assert re.search(r"^ +AUTH PLAIN LOGIN +log in", out, re.M)
    st, verdict = step(out, "auth")
    assert st == "pass" and verdict.startswith(
        "logged in as kate@example.test with PLAIN over TLS: 235 2.7.0")
    assert "C: (credentials, hidden)" in out and "s3cret" not in out
    assert step(out, "data")[1].startswith("test message accepted: 250 2.0.0 Ok: queued as")


def test_auth_login_password_file(postfix, tmp_path):
    pf = postfix()
    pw = tmp_path / "pw"
    pw.write_text("s3cret\n")
    rc, out = probe("check", "127.0.0.1:%d" % pf.port, "-v", "--cafile", pf.cert,
                    "--user", "kate@example.test", "--password-file", pw,
                    "--auth-mech", "LOGIN")
    assert rc == 0, out + pf.log()
    assert step(out, "auth")[1].startswith("logged in as kate@example.test with LOGIN over TLS")
    assert "C: AUTH LOGIN" in out and "S: 334 VXNlcm5hbWU6" in out


def test_auth_wrong_password(postfix):
    pf = postfix()
    rc, out = probe("check", "127.0.0.1:%d" % pf.port, "--cafile", pf.cert,
                    "--user", "kate@example.test", "--password", "wrong")
    assert rc == 1, out
    st, verdict = step(out, "auth")
    assert st == "FAIL"
    assert re.search(r"login failed as kate@example\.test with PLAIN over TLS: 535 5\.7\.8 .*"
                     r"\(authentication failed: wrong user name or password\)", verdict), verdict


def test_auth_not_offered_without_tls(postfix):
    pf = postfix()
    rc, out = probe("check", "127.0.0.1:%d" % pf.port, "--no-tls",
                    "--user", "kate@example.test", "--password", "s3cret")
    assert rc == 1, out
    assert step(out, "auth") == ("FAIL", "the server does not offer AUTH (many servers "
                                 "offer it only after STARTTLS)")


def test_certificate_problems_are_reported(postfix):
    pf = postfix()
    # no --cafile: the self-signed chain does not verify; wrong name
    rc, out = probe("check", "127.0.0.1:%d" % pf.port, "--tls-name", "mail.other.example")
    assert rc == 0, out           # a warning: the session itself works
    st, verdict = step(out, "starttls")
    assert st == "warn" and "certificate has problems" in verdict
    assert "name:        mail.other.example does NOT match the certificate" in out
    assert re.search(r"chain: +self[- ]signed certificate", out), out
    # the address of the server is in the certificate (IP SAN)
    rc, out = probe("check", "127.0.0.1:%d" % pf.port, "--cafile", pf.cert)
    assert "name:        127.0.0.1 matches the certificate" in out


def test_relay_postfix(postfix):
    closed = postfix()
    rc, out = probe("check", "127.0.0.1:%d" % closed.port, "--relay-test")
    assert rc == 0, out
    assert step(out, "relay")[0] == "pass"
    assert "554 5.7.1 <relaytest@example.net>: Relay access denied" in out
    opened = postfix(mynetworks="127.0.0.0/8")
    rc, out = probe("check", "127.0.0.1:%d" % opened.port, "--relay-test")
    assert rc == 1, out
    assert step(out, "relay")[1].startswith("OPEN RELAY")


def test_console_starttls_and_auth_login(postfix):
    pf = postfix()
    c = Console("127.0.0.1:%d" % pf.port, "--cafile", pf.cert)
    try:
        c.prompt()
        c.type("EHLO client.example\r")
        c.expect(r"250-STARTTLS")
        c.prompt()
        c.type(".starttls\r")
        c.expect(r"220 2\.0\.0 Ready to start TLS")
        c.expect(r"\*\*\* TLS: TLSv1\.[23]")
        c.expect(r"name 127\.0\.0\.1: matches; chain: verifies")
        c.prompt()
        c.type("EHLO client.example\r")
        c.expect(r"250-AUTH PLAIN LOGIN")
        c.prompt()
        c.type(".auth login kate@example.test\r")
        c.expect("Password: ")
        c.type("s3cret\r")
        c.expect(r"235 2\.7\.0 Authentication successful +<- you are logged in")
        c.prompt()
        c.type("MAIL FROM:<kate@example.test>\r")
        c.prompt()
        c.type("RCPT TO:<someone@outside.example>\r")   # relaying, now allowed
        c.expect(r"250 2\.1\.5 Ok")
        c.prompt()
        c.type(".quit\r")
        assert c.wait() == 0
        assert "s3cret" not in c.text()
    finally:
        c.close()


def test_doctor_against_postfix(postfix, unbound):
    """doctor, pointed at a domain whose MX is a real Postfix: the SMTP
    steps judge Postfix as they judge ternd (its banner name, STARTTLS with
    its certificate, a refused relay, postmaster@ and abuse@ accepted)."""
    from test_doctor import step
    pf = postfix()
    dns = unbound(["pf.test.example. MX 10 pf.test.example.", "pf.test.example. A 127.0.0.1",
                   "1.0.0.127.in-addr.arpa. PTR pf.test.example.",
                   'pf.test.example. TXT "v=spf1 mx -all"',
                   '_dmarc.pf.test.example. TXT "v=DMARC1; p=reject; rua=mailto:d@pf.test.example"'])
    rc, out = probe("doctor", "pf.test.example", "--resolver", dns.resolver, "-p", pf.port,
                    "--cafile", pf.cert, "--timeout", "5")
    for name in ("connect pf.test.example", "ehlo pf.test.example", "ehlo-tls pf.test.example",
                 "relay pf.test.example", "postmaster pf.test.example", "abuse pf.test.example",
                 "spf", "spf 127.0.0.1", "dmarc"):
        assert step(out, name)[0] == "pass", (name, out + pf.log())
    assert step(out, "greeting pf.test.example") == ("pass", "220 pf.test.example: the MX or PTR name")
    st, verdict = step(out, "starttls pf.test.example")
    assert st == "pass" and "certificate valid" in verdict, out
    assert step(out, "mta-sts")[0] == "skip" and step(out, "dane")[0] == "skip"
