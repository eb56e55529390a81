"""AUTH CRAM-MD5 (RFC 2195): users stored {PLAIN} and in Dovecot's
{CRAM-MD5} form (made by `doveadm pw -s CRAM-MD5`), through Python's
smtplib, swaks and a raw socket; good and wrong passwords, a user stored
as a crypt hash, malformed answers, cancel, over TLS and (with
auth_allow_plaintext) in the clear; offered only where a user can use it;
never in the log."""

import base64
import hashlib
import hmac
import re
import shutil
import smtplib
import subprocess

import pytest

from conftest import RCPT_OK, SENDER_OK
from secfix import (PASSWORD, b64, cert, client_context, plain_b64, sha512_crypt,  # noqa: F401
                    starttls)

AUTH_OK = "235 2.7.0 Authentication successful"
AUTH_BAD = "535 5.7.8 Authentication credentials invalid"
DECODE = "501 5.5.2 Cannot decode response"
CANCELLED = "501 5.0.0 Authentication cancelled"
CHALLENGE = re.compile(r"<\d+\.\d+@mx\.test\.example>")


def doveadm_cram(pw):
    """Dovecot's own {CRAM-MD5} form of pw."""
    out = subprocess.run(["doveadm", "pw", "-s", "CRAM-MD5", "-p", pw], check=True,
                         capture_output=True, text=True).stdout.strip()
    assert re.fullmatch(r"\{CRAM-MD5\}[0-9a-f]{64}", out), out
    return out


@pytest.fixture(scope="session")
def cram_users(tmp_path_factory):
    """kate: {PLAIN}; dana: {CRAM-MD5} from doveadm; chris: sha512-crypt."""
    p = tmp_path_factory.mktemp("cram") / "users"
    p.write_text("kate@example.com:{PLAIN}%s\n"
                 "dana@example.com:%s::::::\n"
                 "chris@example.com:{SHA512-CRYPT}%s\n"
                 % (PASSWORD, doveadm_cram(PASSWORD), sha512_crypt(PASSWORD)))
    return p


@pytest.fixture
def srv(ternd, cert, cram_users):
    """STARTTLS offered, AUTH only after it."""
    crt, key = cert
    return ternd(tls_cert=str(crt), tls_key=str(key), users_file=str(cram_users))


@pytest.fixture
def clear(ternd, cram_users):
    """No TLS; AUTH in the clear (auth_allow_plaintext)."""
    return ternd(users_file=str(cram_users), auth_allow_plaintext="yes")


def cram_answer(challenge_b64, user, pw):
    challenge = base64.b64decode(challenge_b64)
    digest = hmac.new(pw.encode(), challenge, hashlib.md5).hexdigest()
    return b64("%s %s" % (user, digest))


def tls_session(s):
    c = s.connect()
    c.expect("EHLO client.example", "250-...")
    starttls(c)
    r = c.expect("EHLO client.example", "250-...")
    assert "250-AUTH PLAIN LOGIN CRAM-MD5" in r.lines, r.text
    return c


def cram(c, user, pw, want):
    """One CRAM-MD5 exchange on a raw client; returns the challenge."""
    r = c.expect("AUTH CRAM-MD5", "334 ...")
    challenge = base64.b64decode(r.text[4:]).decode()
    assert CHALLENGE.fullmatch(challenge), challenge
    c.expect(cram_answer(r.text[4:], user, pw), want)
    return challenge


@pytest.mark.parametrize("user", ["kate@example.com", "dana@example.com"])
def test_raw_cram_md5_plain_and_dovecot_forms(srv, user):
    c = tls_session(srv)
    cram(c, user, "wrong", AUTH_BAD)
    first = cram(c, user, PASSWORD, AUTH_OK)
    c.expect("MAIL FROM:<%s>" % user, SENDER_OK)
    c.expect("RCPT TO:<far@elsewhere.example>", RCPT_OK)   # authenticated: may relay
    assert re.search(r"auth: client=\[127\.0\.0\.1\], user=%s, mechanism=CRAM-MD5, "
                     r"result=succeeded" % re.escape(user), srv.log()), srv.log()
    c2 = tls_session(srv)
    assert cram(c2, user.upper(), PASSWORD, AUTH_OK) != first, "a challenge is never reused"


def test_crypt_hash_user_fails_cram_but_not_plain(srv):
    c = tls_session(srv)
    cram(c, "chris@example.com", PASSWORD, AUTH_BAD)
    cram(c, "nobody@example.com", PASSWORD, AUTH_BAD)
    c.expect("AUTH PLAIN " + plain_b64("chris@example.com", PASSWORD), AUTH_OK)


def test_plain_and_login_against_a_cram_md5_entry(srv):
    c = tls_session(srv)
    c.expect("AUTH PLAIN " + plain_b64("dana@example.com", "wrong"), AUTH_BAD)
    c.expect("AUTH PLAIN " + plain_b64("dana@example.com", PASSWORD), AUTH_OK)
    c = tls_session(srv)
    c.expect("AUTH LOGIN " + b64("dana@example.com"), "334 UGFzc3dvcmQ6")
    c.expect(b64(PASSWORD), AUTH_OK)


def test_malformed_answers_and_cancel(srv):
    c = tls_session(srv)
    c.expect("AUTH CRAM-MD5 " + b64("kate@example.com 00"), "501 5.5.2 CRAM-MD5 takes no initial response")
    c.expect("AUTH CRAM-MD5", "334 ...")
    c.expect("not base64!", DECODE)
    c.expect("AUTH CRAM-MD5", "334 ...")
    c.expect(b64("kate@example.com"), DECODE)                     # no digest
    c.expect("AUTH CRAM-MD5", "334 ...")
    c.expect(b64("kate@example.com 0123456789abcdef"), DECODE)    # 16 digits, not 32
    c.expect("AUTH CRAM-MD5", "334 ...")
    c.expect(b64(" " + "0" * 32), DECODE)                           # no user
    c.expect("AUTH CRAM-MD5", "334 ...")
    c.expect(b64("kate@example.com " + "g" * 32), DECODE)         # not hex
    c.expect("AUTH CRAM-MD5", "334 ...")
    c.expect("*", CANCELLED)
    c.expect("AUTH cram-md5", "334 ...")
    c.expect("=", DECODE)
    # none of these was a failed login: three of those would end the session
    cram(c, "kate@example.com", PASSWORD, AUTH_OK)


def test_smtplib_cram_md5(srv):
    for user in ("kate@example.com", "dana@example.com"):
        with smtplib.SMTP("127.0.0.1", srv.port, local_hostname="client.example", timeout=10) as s:
            s.starttls(context=client_context())
            s.ehlo()
            assert "CRAM-MD5" in s.esmtp_features["auth"].split(), s.esmtp_features
            s.user, s.password = user, PASSWORD
            code, _ = s.auth("CRAM-MD5", s.auth_cram_md5)
            assert code == 235
            s.sendmail(user, ["far@elsewhere.example"], b"Subject: x\r\n\r\nvia CRAM-MD5\r\n")
        with smtplib.SMTP("127.0.0.1", srv.port, local_hostname="client.example", timeout=10) as s:
            s.starttls(context=client_context())
            s.ehlo()
            s.user, s.password = user, "nope"
            with pytest.raises(smtplib.SMTPAuthenticationError) as e:
                s.auth("CRAM-MD5", s.auth_cram_md5)
            assert e.value.smtp_code == 535
    # login() prefers CRAM-MD5 when it is offered
    with smtplib.SMTP("127.0.0.1", srv.port, local_hostname="client.example", timeout=10) as s:
        s.starttls(context=client_context())
        assert s.login("dana@example.com", PASSWORD)[0] == 235
    assert srv.log().count("user=dana@example.com, mechanism=CRAM-MD5, result=succeeded") == 2


def swaks(port, *extra):
    exe = shutil.which("swaks")
    assert exe, "swaks is missing: scripts/install-deps test installs it"
    argv = [exe, "--server", "127.0.0.1", "--port", str(port), "--quit-after", "AUTH",
            "--helo", "client.example"] + list(extra)
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    return p.returncode, p.stdout.decode("utf-8", "replace") + p.stderr.decode("utf-8", "replace")


@pytest.mark.parametrize("user", ["kate@example.com", "dana@example.com"])
def test_swaks_cram_md5_over_tls(srv, user):
    rc, out = swaks(srv.port, "--tls", "-a", "CRAM-MD5", "--auth-user", user,
                    "--auth-password", PASSWORD)
    assert rc == 0 and AUTH_OK in out, "swaks exited %d:\n%s" % (rc, out)
    assert "AUTH CRAM-MD5" in out
    rc, out = swaks(srv.port, "--tls", "-a", "CRAM-MD5", "--auth-user", user,
                    "--auth-password", "wrong")
    assert rc != 0 and AUTH_BAD in out, "swaks exited %d:\n%s" % (rc, out)
    rc, out = swaks(srv.port, "--tls", "-a", "CRAM-MD5", "--auth-user", "chris@example.com",
                    "--auth-password", PASSWORD)
    assert rc != 0 and AUTH_BAD in out, "a crypt hash cannot serve CRAM-MD5:\n%s" % out


def test_cram_md5_in_the_clear_when_allowed(clear):
    rc, out = swaks(clear.port, "-a", "CRAM-MD5", "--auth-user", "dana@example.com",
                    "--auth-password", PASSWORD)
    assert rc == 0 and AUTH_OK in out, "swaks exited %d:\n%s" % (rc, out)
    with smtplib.SMTP("127.0.0.1", clear.port, local_hostname="client.example", timeout=10) as s:
        s.ehlo()
        s.user, s.password = "kate@example.com", PASSWORD
        assert s.auth("CRAM-MD5", s.auth_cram_md5)[0] == 235


def test_not_in_the_clear_without_auth_allow_plaintext(srv):
    c = srv.connect()
    r = c.expect("EHLO client.example", "250-...")
    assert not any(l[4:].startswith("AUTH") for l in r.lines), r.text
    c.expect("AUTH CRAM-MD5",
             "538 5.7.11 Encryption required for requested authentication mechanism")


def test_not_offered_when_no_user_can_use_it(ternd, tmp_path):
    users = tmp_path / "users"
    users.write_text("chris@example.com:{SHA512-CRYPT}%s\n" % sha512_crypt(PASSWORD))
    s = ternd(users_file=str(users), auth_allow_plaintext="yes")
    c = s.connect()
    r = c.expect("EHLO client.example", "250-...")
    assert "250-AUTH PLAIN LOGIN" in r.lines, r.text
    c.expect("AUTH CRAM-MD5", "504 5.5.4 Unrecognized authentication type")
    c.expect("AUTH PLAIN " + plain_b64("chris@example.com", PASSWORD), AUTH_OK)


def test_answers_never_logged(ternd, cram_users):
    s = ternd(users_file=str(cram_users), auth_allow_plaintext="yes", log_level="debug")
    c = s.connect()
    c.expect("EHLO client.example", "250-...")
    r = c.expect("AUTH CRAM-MD5", "334 ...")
    answer = cram_answer(r.text[4:], "dana@example.com", PASSWORD)
    digest = base64.b64decode(answer).decode().split()[1]
    c.expect(answer, AUTH_OK)
    c.expect("QUIT", "221 ...")
    c.wait_closed()
    log = s.log()
    assert "< AUTH CRAM-MD5" in log and "(SASL response)" in log, log
    assert answer not in log and digest not in log, log
    assert PASSWORD not in log
