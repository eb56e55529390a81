"""Real client software: Python's smtplib and swaks."""

import shutil
import smtplib
import subprocess

import pytest

from conftest import Delivered


MESSAGE = (
    "From: Sender <a@b.example>\r\n"
    "To: x@example.com, y@example.com\r\n"
    "Subject: from smtplib\r\n"
    "\r\n"
    "first line\r\n"
    ".starts with a dot\r\n"
    "..two dots\r\n"
    ".\r\n"          # a lone dot inside the message, stuffed by smtplib
    "last line\r\n"
)


def smtp(server, **kw):
    return smtplib.SMTP("127.0.0.1", server.port, local_hostname="client.example",
                        timeout=10, **kw)


def test_smtplib_ehlo_features(server):
    with smtp(server) as s:
        code, _ = s.ehlo()
        assert code == 250
        for ext in ("pipelining", "size", "8bitmime", "enhancedstatuscodes", "dsn", "help"):
            assert s.has_extn(ext), "EHLO lacks %s: %r" % (ext, s.esmtp_features)
        assert s.noop() == (250, b"2.0.0 OK")


def test_smtplib_several_recipients_and_dot_lines(server):
    rcpts = ["x@example.com", "y@example.com", "z@mx.test.example"]
    server.make_maildir(*rcpts)
    with smtp(server) as s:
        refused = s.sendmail("a@b.example", rcpts, MESSAGE)
        assert refused == {}
        s.quit()
    want = MESSAGE.encode().replace(b"\r\n", b"\n")
    for r in rcpts:
        [data] = server.wait_messages(r, 1)
        Delivered(data).check(sender="a@b.example", rcpt=r, helo="client.example",
                              proto="ESMTP", message=want)


def test_smtplib_refused_recipient(server):
    server.make_maildir("x@example.com")
    with smtp(server) as s:
        refused = s.sendmail("a@b.example", ["x@example.com", "nobody@example.com",
                                             "far@elsewhere.example"], MESSAGE)
        assert refused == {
            "nobody@example.com": (550, b"5.1.1 User unknown"),
            "far@elsewhere.example": (550, b"5.7.1 Unable to relay"),
        }
    server.wait_messages("x@example.com", 1)


def test_smtplib_all_refused(server):
    with smtp(server) as s:
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            s.sendmail("a@b.example", ["nobody@example.com"], MESSAGE)
        assert s.noop()[0] == 250


def test_smtplib_helo(server):
    server.make_maildir("x@example.com")
    with smtp(server) as s:
        code, msg = s.helo()
        assert (code, msg) == (250, b"mx.test.example Hello [127.0.0.1]")
        s.sendmail("a@b.example", ["x@example.com"], "Subject: helo\r\n\r\nvia HELO\r\n")
    [data] = server.wait_messages("x@example.com", 1)
    Delivered(data).check(sender="a@b.example", rcpt="x@example.com", helo="client.example",
                          proto="SMTP", message=b"Subject: helo\n\nvia HELO\n")


def test_smtplib_dsn_and_8bitmime_options(server):
    server.make_maildir("x@example.com")
    body = "Subject: opts\r\n\r\nna\u00efve caf\u00e9\r\n".encode("utf-8")
    with smtp(server) as s:
        refused = s.sendmail("a@b.example", ["x@example.com"], body,
                             mail_options=["BODY=8BITMIME", "RET=HDRS", "ENVID=abc123"],
                             rcpt_options=["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;x@example.com"])
        assert refused == {}
    [data] = server.wait_messages("x@example.com", 1)
    assert Delivered(data).body == body.replace(b"\r\n", b"\n")


def test_smtplib_size_refused(ternd):
    s = ternd(max_message_size="1000")
    with smtp(s) as c:
        with pytest.raises(smtplib.SMTPSenderRefused) as e:
            c.sendmail("a@b.example", ["x@example.com"], "Subject: big\r\n\r\n" + "x" * 5000 + "\r\n")
        assert e.value.smtp_code == 552
        assert e.value.smtp_error.startswith(b"5.3.4")


def swaks(server, *extra):
    exe = shutil.which("swaks")
    if not exe:
        pytest.skip("swaks not installed")
    argv = [exe, "--server", "127.0.0.1", "--port", str(server.port)] + list(extra)
    try:
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    except subprocess.TimeoutExpired as e:
        raise AssertionError("swaks did not finish:\n%s" % (e.stdout or b"").decode("utf-8", "replace"))
    return p.returncode, p.stdout.decode("utf-8", "replace") + p.stderr.decode("utf-8", "replace")


def test_swaks(server):
    server.make_maildir("x@example.com")
    rc, out = swaks(server, "--to", "x@example.com", "--from", "a@b.c")
    assert rc == 0, "swaks exited %d:\n%s" % (rc, out)
    [data] = server.wait_messages("x@example.com", 1)
    d = Delivered(data)
    assert d.return_path == "Return-Path: <a@b.c>"
    assert d.delivered_to == "Delivered-To: x@example.com"
    assert b"X-Mailer: swaks" in d.body


def test_swaks_pipelining(server):
    server.make_maildir("x@example.com", "y@example.com")
    rc, out = swaks(server, "--pipeline", "--to", "x@example.com,y@example.com",
                    "--from", "a@b.c", "--helo", "client.example")
    assert rc == 0, "swaks --pipeline exited %d:\n%s" % (rc, out)
    for r in ("x@example.com", "y@example.com"):
        [data] = server.wait_messages(r, 1)
        Delivered(data).check(sender="a@b.c", rcpt=r, helo="client.example", proto="ESMTP")


def test_swaks_relay_refused(server):
    rc, out = swaks(server, "--to", "diffuser@somewherelse.net", "--from", "a@b.c")
    assert rc != 0, "swaks reported success for a relay attempt:\n%s" % out
    assert "550 5.7.1 Unable to relay" in out, out
