"""Submission (RFC 6409) and AUTH PLAIN/LOGIN (RFC 4954): refused without
TLS, good and bad credentials, relaying and sender ownership. CRAM-MD5 is
test_cram's."""

import smtplib

import pytest

from conftest import BYE, NO_RELAY, QUEUED, RCPT_OK, SENDER_OK, START_DATA, free_port, crlf
from secfix import (PASSWORD, b64, cert, client_context, plain_b64, starttls,  # noqa: F401
                    users_file)


@pytest.fixture
def sub(ternd, cert, users_file, tmp_path):
    crt, key = cert
    aliases = tmp_path / "aliases"
    aliases.write_text("sales@example.com: kate@example.com\n")
    port, sport = free_port(), free_port()
    s = ternd(tls_cert=str(crt), tls_key=str(key), users_file=str(users_file),
              aliases_file=str(aliases),
              listen="127.0.0.1:%d, 127.0.0.1:%d submission" % (port, sport))
    s.sub_port = sport
    return s


def sub_client(s):
    from conftest import Client, GREETING
    c = Client(s.sub_port, name="submission client")
    s.clients.append(c)
    c.expect(None, GREETING)
    c.expect("EHLO client.example", "250-...")
    return c


def test_submission_refuses_unauthenticated_mail(sub):
    c = sub_client(sub)
    c.expect("MAIL FROM:<kate@example.com>", "530 5.7.0 Authentication required")
    starttls(c)
    c.expect("EHLO client.example", "250-...")
    c.expect("MAIL FROM:<kate@example.com>", "530 5.7.0 Authentication required")


def test_auth_not_offered_without_tls(sub):
    c = sub_client(sub)
    r = c.cmd("EHLO client.example")
    assert not any(l[4:].startswith("AUTH") for l in r.lines), r.text
    c.expect("AUTH PLAIN " + plain_b64("kate@example.com", PASSWORD),
             "538 5.7.11 Encryption required for requested authentication mechanism")
    starttls(c)
    r = c.cmd("EHLO client.example")
    assert "250-AUTH PLAIN LOGIN CRAM-MD5" in r.lines, r.text   # kate's {PLAIN} serves CRAM-MD5


@pytest.mark.parametrize("user", ["kate@example.com", "chris@example.com", "lee@example.com"])
def test_auth_plain_each_hash_scheme(sub, user):
    c = starttls(sub_client(sub))
    c.expect("EHLO client.example", "250-...")
    c.expect("AUTH PLAIN " + plain_b64(user, PASSWORD), "235 2.7.0 Authentication successful")
    c.expect("AUTH PLAIN " + plain_b64(user, PASSWORD), "503 5.5.1 Already authenticated")
    c.expect("MAIL FROM:<%s>" % user, SENDER_OK)
    c.expect("RCPT TO:<far@elsewhere.example>", RCPT_OK)   # authenticated: may relay
    c.expect("DATA", START_DATA)
    c.raw(crlf("Subject: submitted", "", "hi") + b".\r\n")
    c.expect_reply(QUEUED)


def test_auth_plain_two_steps_and_login(sub):
    c = starttls(sub_client(sub))
    c.expect("EHLO client.example", "250-...")
    c.expect("AUTH PLAIN", "334 ")
    c.expect(plain_b64("kate@example.com", "wrong"), "535 5.7.8 Authentication credentials invalid")
    c.expect("AUTH LOGIN", "334 VXNlcm5hbWU6")
    c.expect(b64("kate@example.com"), "334 UGFzc3dvcmQ6")
    c.expect(b64(PASSWORD), "235 2.7.0 Authentication successful")


def test_auth_login_initial_response_and_cancel(sub):
    c = starttls(sub_client(sub))
    c.expect("EHLO client.example", "250-...")
    c.expect("AUTH LOGIN " + b64("chris@example.com"), "334 UGFzc3dvcmQ6")
    c.expect("*", "501 5.0.0 Authentication cancelled")
    c.expect("AUTH LOGIN", "334 VXNlcm5hbWU6")
    c.expect("not base64!", "501 5.5.2 Cannot decode response")
    c.expect("AUTH DIGEST-MD5", "504 5.5.4 Unrecognized authentication type")
    c.expect("AUTH LOGIN " + b64("chris@example.com"), "334 UGFzc3dvcmQ6")
    c.expect(b64(PASSWORD), "235 2.7.0 Authentication successful")


def test_smtplib_login_and_plain(sub):
    for mech in ("PLAIN", "LOGIN"):
        with smtplib.SMTP("127.0.0.1", sub.sub_port, timeout=10) as s:
            s.starttls(context=client_context())
            s.ehlo("client.example")
            s.user, s.password = "kate@example.com", PASSWORD
            code, _ = s.auth(mech, getattr(s, "auth_" + mech.lower()))
            assert code == 235
            s.sendmail("kate@example.com", ["far@elsewhere.example"], b"Subject: x\r\n\r\nvia smtplib\r\n")
        with smtplib.SMTP("127.0.0.1", sub.sub_port, timeout=10) as s:
            s.starttls(context=client_context())
            s.ehlo("client.example")
            s.user, s.password = "kate@example.com", "nope"
            with pytest.raises(smtplib.SMTPAuthenticationError) as e:
                s.auth(mech, getattr(s, "auth_" + mech.lower()))
            assert e.value.smtp_code == 535


def test_bad_credentials_then_disconnect(sub):
    c = starttls(sub_client(sub))
    c.expect("EHLO client.example", "250-...")
    for pw in ("a", "b"):
        c.expect("AUTH PLAIN " + plain_b64("kate@example.com", pw), "535 5.7.8 Authentication credentials invalid")
    c.expect("AUTH PLAIN " + plain_b64("nobody@example.com", PASSWORD), "535 5.7.8 Authentication credentials invalid")
    c.expect_reply("421 4.7.0 mx.test.example Too many failed authentication attempts")
    c.wait_closed()


def test_proxy_authorization_refused(sub):
    c = starttls(sub_client(sub))
    c.expect("EHLO client.example", "250-...")
    c.expect("AUTH PLAIN " + plain_b64("kate@example.com", PASSWORD, authz="chris@example.com"),
             "501 5.5.2 Cannot decode response")


def test_sender_ownership(sub):
    c = starttls(sub_client(sub))
    c.expect("EHLO client.example", "250-...")
    c.expect("AUTH PLAIN " + plain_b64("kate@example.com", PASSWORD), "235 2.7.0 Authentication successful")
    c.expect("MAIL FROM:<chris@example.com>",
             "553 5.7.1 Sender address <chris@example.com> not owned by user kate@example.com")
    c.expect("MAIL FROM:<kate@elsewhere.example>", "553 5.7.1 ...")
    c.expect("MAIL FROM:<\"kate\"@example.com>", "553 5.7.1 ...")
    c.expect("MAIL FROM:<Kate@Example.COM>", SENDER_OK)      # the same mailbox, any case
    c.expect("RSET", "250 2.0.0 OK")
    c.expect("MAIL FROM:<sales@example.com>", SENDER_OK)     # aliased to kate
    c.expect("RSET", "250 2.0.0 OK")
    c.expect("MAIL FROM:<>", SENDER_OK)


def test_auth_during_transaction_refused(sub):
    c = starttls(sub_client(sub))
    c.expect("EHLO client.example", "250-...")
    c.expect("AUTH PLAIN " + plain_b64("kate@example.com", PASSWORD), "235 2.7.0 Authentication successful")
    c.expect("MAIL FROM:<kate@example.com>", SENDER_OK)
    c.expect("AUTH LOGIN", "503 5.5.1 ...")


def test_port25_unauthenticated_still_no_relay(sub):
    c = sub.connect()
    c.expect("EHLO client.example", "250-...")
    c.expect("MAIL FROM:<kate@example.com>", SENDER_OK)
    c.expect("RCPT TO:<far@elsewhere.example>", NO_RELAY)


def test_auth_allow_plaintext(ternd, users_file):
    s = ternd(users_file=str(users_file), auth_allow_plaintext="yes")
    c = s.connect()
    r = c.cmd("EHLO client.example")
    assert "250-AUTH PLAIN LOGIN CRAM-MD5" in r.lines
    c.expect("AUTH PLAIN " + plain_b64("kate@example.com", PASSWORD), "235 2.7.0 Authentication successful")
    c.expect("MAIL FROM:<kate@example.com>", SENDER_OK)
    c.expect("RCPT TO:<far@elsewhere.example>", RCPT_OK)
    c.expect("QUIT", BYE)


def test_received_says_esmtpsa(sub):
    sub.make_maildir("x@example.com")
    c = starttls(sub_client(sub))
    c.expect("EHLO client.example", "250-...")
    c.expect("AUTH PLAIN " + plain_b64("kate@example.com", PASSWORD), "235 2.7.0 Authentication successful")
    c.send_mail("kate@example.com", ["x@example.com"], crlf("Subject: a", "", "sa-marker"))
    from conftest import Delivered
    Delivered(sub.wait_message_with("x@example.com", "sa-marker")).check(
        sender="kate@example.com", rcpt="x@example.com", helo="client.example", proto="ESMTPSA")


def test_submission_needs_users_file():
    from conftest import run_ternd
    rc, out, err = run_ternd(["-n", "-o", "listen=127.0.0.1:2587 submission"])
    assert rc == 2 and "submission listener needs users_file" in err, err
