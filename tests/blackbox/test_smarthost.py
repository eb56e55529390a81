"""A smarthost (relayhost) with AUTH after STARTTLS (issue 3): all remote mail
goes to relayhost, tern logs in with relayhost_auth (AUTH PLAIN or LOGIN),
never before TLS. The smarthost is another ternd with a submission listener,
a certificate and a users file (the security tests' fixtures)."""

import os
import time

import pytest

from conftest import crlf
from peers import free_port_on
from secfix import PASSWORD, cert, users_file  # noqa: F401  (fixtures)
from test_mx import send, wait_log

USER = "kate@example.com"


@pytest.fixture
def smarthost(ternd, tmp_path, cert, users_file):  # noqa: F811
    port = free_port_on("127.0.0.2")
    crt, key = cert
    s = ternd(tmp=tmp_path / "smarthost", listen="127.0.0.2:%d submission" % port,
              hostname="smart.example", tls_cert=str(crt), tls_key=str(key),
              users_file=str(users_file), local_domains="dest.example", log_level="debug")
    s.make_maildir("bob@dest.example")
    s.port_string = "127.0.0.2:%d" % port
    return s


def sender(ternd, tmp_path, smarthost, **opts):
    conf = dict(relay_networks="127.0.0.0/8", log_level="debug", relayhost=smarthost.port_string,
                relayhost_auth="%s:%s" % (USER, PASSWORD), retry_min="1s", retry_max="1s")
    conf.update(opts)
    s = ternd(tmp=tmp_path / "sender", **conf)
    s.make_maildir(USER)
    return s


def test_smarthost_with_auth_after_starttls(ternd, tmp_path, smarthost):
    s = sender(ternd, tmp_path, smarthost)
    send(s, ["bob@dest.example"], crlf("Subject: via smarthost", "", "smarthost-body"), sender=USER)
    got = smarthost.wait_message_with("bob@dest.example", "smarthost-body")
    assert b"with ESMTPSA" in got, "the smarthost saw TLS and AUTH (RFC 3848)"
    wait_log(s, "status=sent")
    assert "relay=127.0.0.2[127.0.0.2]" in s.log()
    assert "TLS TLSv1." in s.log()
    assert ": < AUTH PLAIN (initial response hidden)" in smarthost.log(), "the sender logged in"
    from secfix import plain_b64
    assert plain_b64(USER, PASSWORD) not in smarthost.log(), "credentials in the log"
    assert plain_b64(USER, PASSWORD) not in s.log() and PASSWORD not in s.log()


def test_smarthost_wrong_password_is_deferred(ternd, tmp_path, smarthost):
    s = sender(ternd, tmp_path, smarthost, relayhost_auth="%s:wrong" % USER)
    qid = send(s, ["bob@dest.example"], crlf("Subject: bad pw", "", "bad-password"), sender=USER)
    wait_log(s, "authentication failed: 535")
    wait_log(s, "status=deferred")
    assert "%s: removed" % qid not in s.log()
    assert smarthost.messages("bob@dest.example") == []


def test_no_password_without_tls(ternd, tmp_path, smarthost):
    s = sender(ternd, tmp_path, smarthost, smtp_tls="none")
    send(s, ["bob@dest.example"], crlf("Subject: clear", "", "no-clear-password"), sender=USER)
    wait_log(s, "no TLS: not sending the password in clear")
    wait_log(s, "status=deferred")
    assert ": < EHLO mx.test.example" in smarthost.log(), "the sender did connect"
    assert ": < AUTH" not in smarthost.log(), "credentials were sent without TLS"


def test_tls_verify_with_the_right_ca(ternd, tmp_path, smarthost, cert):  # noqa: F811
    from dnsserver import Unbound
    dns = Unbound(tmp_path, ["mx.test.example. A 127.0.0.2"])   # the certificate's name
    try:
        port = smarthost.port_string.rsplit(":", 1)[1]
        s = sender(ternd, tmp_path, smarthost, relayhost="mx.test.example:" + port,
                   dns_resolver=dns.resolver, smtp_tls="verify", smtp_tls_ca_file=str(cert[0]))
        send(s, ["bob@dest.example"], crlf("Subject: verified", "", "verified-tls"), sender=USER)
        smarthost.wait_message_with("bob@dest.example", "verified-tls")
    finally:
        dns.stop()


def test_tls_verify_refuses_an_untrusted_certificate(ternd, tmp_path, smarthost):
    s = sender(ternd, tmp_path, smarthost, smtp_tls="verify")    # system CAs only
    qid = send(s, ["bob@dest.example"], crlf("Subject: untrusted", "", "untrusted"), sender=USER)
    wait_log(s, "status=deferred")
    assert "certificate verif" in s.log() or "TLS error" in s.log(), s.log()
    assert "%s: removed" % qid not in s.log()
    assert smarthost.messages("bob@dest.example") == []


def test_smarthost_auth_login_with_a_real_postfix(ternd, tmp_path):
    """A smarthost that offers only AUTH LOGIN (Postfix with Dovecot SASL):
    tern logs in with the username/password prompts and relays."""
    from probe_peers import Postfix
    if os.geteuid() != 0:
        pytest.skip("a private Postfix needs root")
    pf = Postfix({USER: PASSWORD}, mechanisms="login")
    try:
        s = ternd(tmp=tmp_path / "sender", relay_networks="127.0.0.0/8",
                  relayhost="127.0.0.1:%d" % pf.port, relayhost_auth="%s:%s" % (USER, PASSWORD))
        s.make_maildir(USER)
        send(s, ["bob@far.example"], crlf("Subject: login", "", "auth-login"), sender=USER)
        wait_log(s, "status=sent")
        assert "said: 250" in s.log()
        deadline = time.monotonic() + 10
        while "sasl_method=LOGIN" not in pf.log() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "sasl_method=LOGIN, sasl_username=%s" % USER in pf.log()
    finally:
        pf.stop()
