"""The odmr listener (RFC 2645, On-Demand Mail Relay), its authentication
side: EHLO offers STARTTLS and AUTH with CRAM-MD5; nothing but
EHLO/HELO/STARTTLS/AUTH/NOOP/RSET/QUIT/HELP before AUTH (530); never
MAIL, RCPT or DATA (502). ATRN itself (the release, the reversed
session) is test_backupmx.py's. And odmr_map: read at start and on reload, a bad line refusing
the reload with FILE:LINE."""

import os
import re

import pytest

from conftest import BYE, OK, SENDER_OK, free_port, run_ternd
from secfix import PASSWORD, cert, starttls  # noqa: F401
from test_cram import AUTH_OK, cram, cram_users  # noqa: F401
from test_reload import sighup, write_conf
from test_ternctl import ctl

AUTH_REQUIRED = "530 5.7.0 Authentication required"
ODMR_ONLY = "502 5.5.1 %s not offered: this is an On-Demand Mail Relay service (RFC 2645)"


def odmr_map(tmp_path, text):
    p = tmp_path / "odmr_map"
    p.write_text(text)
    os.chmod(p, 0o644)    # a reload reads it as run_user
    return p


@pytest.fixture
def odmr(ternd, cert, cram_users, tmp_path):
    crt, key = cert
    m = odmr_map(tmp_path, "example.org kate@example.com\n"
                           "example.net dana@example.com, kate@example.com\n")
    port = free_port()
    s = ternd(tls_cert=str(crt), tls_key=str(key), users_file=str(cram_users),
              odmr_map=str(m), listen="127.0.0.1:%d, 127.0.0.1:%d odmr" % (free_port(), port))
    s.odmr_port = port
    return s


def odmr_client(s):
    from conftest import Client, GREETING
    c = Client(s.odmr_port, name="odmr client")
    s.clients.append(c)
    c.expect(None, GREETING)
    return c


def test_ehlo_offers_starttls_then_auth(odmr):
    c = odmr_client(odmr)
    r = c.expect("EHLO client.example", "250-...")
    assert r.lines == ["250-mx.test.example Hello [127.0.0.1]", "250-ENHANCEDSTATUSCODES",
                       "250-STARTTLS", "250-ATRN", "250 HELP"], r.text
    starttls(c)
    r = c.expect("EHLO client.example", "250-...")
    assert r.lines == ["250-mx.test.example Hello [127.0.0.1]", "250-ENHANCEDSTATUSCODES",
                       "250-AUTH PLAIN LOGIN CRAM-MD5", "250-ATRN", "250 HELP"], r.text
    assert re.search(r"connect: client=\[127\.0\.0\.1\], odmr$", odmr.log(), re.M), odmr.log()


def test_nothing_before_auth(odmr):
    c = odmr_client(odmr)
    c.expect("EHLO client.example", "250-...")
    for line in ("MAIL FROM:<kate@example.com>", "RCPT TO:<kate@example.com>", "DATA",
                 "VRFY kate@example.com", "EXPN kate", "ETRN example.org", "ATRN example.org",
                 "TURN", "VERB", "BDAT 10 LAST"):
        c.expect(line, AUTH_REQUIRED)
    c.expect("NOOP", OK)
    c.expect("RSET", OK)
    c.expect("HELP", "214-...")
    c.expect("HELO client.example", "250 mx.test.example Hello [127.0.0.1]")
    c.expect("MAIL FROM:<kate@example.com>", "530 Authentication required")   # HELO: no 5.7.0
    c.expect("QUIT", "221 Service closing transmission channel")


def test_starttls_then_cram_md5_then_no_mail(odmr):
    c = odmr_client(odmr)
    c.expect("EHLO client.example", "250-...")
    starttls(c)
    c.expect("EHLO client.example", "250-...")
    c.expect("MAIL FROM:<kate@example.com>", AUTH_REQUIRED)
    cram(c, "kate@example.com", PASSWORD, AUTH_OK)
    c.expect("MAIL FROM:<kate@example.com>", ODMR_ONLY % "MAIL")
    c.expect("RCPT TO:<kate@example.com>", ODMR_ONLY % "RCPT")
    c.expect("DATA", ODMR_ONLY % "DATA")
    c.expect("ATRN example.org", "453 4.3.0 You have no mail")
    c.expect("NOOP", OK)
    c.expect("QUIT", BYE)


def test_auth_in_the_clear_when_allowed(ternd, cram_users, tmp_path):
    m = odmr_map(tmp_path, "example.org dana@example.com\n")
    port = free_port()
    s = ternd(users_file=str(cram_users), odmr_map=str(m), auth_allow_plaintext="yes",
              listen="127.0.0.1:%d, 127.0.0.1:%d odmr" % (free_port(), port))
    s.odmr_port = port
    c = odmr_client(s)
    r = c.expect("EHLO client.example", "250-...")
    assert "250-AUTH PLAIN LOGIN CRAM-MD5" in r.lines and "250-STARTTLS" not in r.lines, r.text
    c.expect("STARTTLS", "502 5.5.1 STARTTLS not offered by this server")
    cram(c, "dana@example.com", PASSWORD, AUTH_OK)
    c.expect("MAIL FROM:<>", ODMR_ONLY % "MAIL")
    # the other listener takes mail as ever
    c2 = s.connect()
    c2.expect("EHLO client.example", "250-...")
    c2.expect("MAIL FROM:<>", SENDER_OK)


def test_odmr_listener_needs_users_and_map(tmp_path):
    rc, _, err = run_ternd(["-n", "-o", "listen=127.0.0.1:2366 odmr"])
    assert rc == 2 and "an odmr listener needs users_file (AUTH) and odmr_map" in err, err
    rc, _, err = run_ternd(["-n", "-o", "listen=127.0.0.1:2366 odmr submission"])
    assert rc == 2 and "'127.0.0.1:2366 odmr submission' is not address:port" in err, err
    m = odmr_map(tmp_path, "example.org kate@example.com\nexample.org dana@example.com\n")
    rc, _, err = run_ternd(["-n", "-o", "odmr_map=%s" % m])
    assert rc == 2 and "%s:2: domain example.org is listed twice" % m in err, err


def test_odmr_map_reload(ternd, tmp_path):
    m = odmr_map(tmp_path, "example.org kate@example.com\n")
    users = tmp_path / "users"     # a reload reads it as run_user
    users.write_text("kate@example.com:{PLAIN}%s\n" % PASSWORD)
    os.chmod(users, 0o644)
    conf = tmp_path / "tern.conf"
    write_conf(conf, users_file=str(users), odmr_map=str(m))
    port = free_port()
    s = ternd(args=("-c", str(conf)),
              listen="127.0.0.1:%d, 127.0.0.1:%d odmr" % (free_port(), port))
    said = "odmr_map %s: %%d domain(s) may be dequeued with ATRN" % m
    assert said % 1 in s.log(), s.log()
    # a change is read again
    m.write_text("example.org kate@example.com\n# and now\nexample.net kate@example.com, "
                 "dana@example.com\n")
    p = ctl(s, "reload")
    assert "reloaded" in p.stdout
    assert said % 2 in s.log(), s.log()
    # a bad line refuses the reload, FILE:LINE, and the map in force stays
    m.write_text("example.org kate@example.com\nexample.net\n")
    p = ctl(s, "reload", check=False)
    assert p.returncode == 1
    assert "%s:2: domain example.net has no users" % m in p.stderr, p.stderr
    sighup(s)
    assert "reload: %s:2: domain example.net has no users" % m in s.log()
    assert s.log().count(said % 2) == 1 and said % 3 not in s.log()
