"""SMTP smuggling: the end of data is CRLF.CRLF only. Every other mix of
CR, LF and NUL around a dot is refused or kept as data, and what follows it
is never run as commands (CVE-2023-51764, -51765, -51766)."""

import re

import pytest

from conftest import QUEUED, RCPT_OK, SENDER_OK, START_DATA

FAKE_ENDS = [b"\n.\n", b"\r\n.\n", b"\n.\r\n", b"\r.\r\n", b"\r\n.\r", b"\r.\r",
             b"\r\n.\r\r\n", b"\r\n\x00.\r\n", b"\r\n.\x00\r\n", b"\r\n\x00\r\n.\n",
             b"\r\n .\r\n", b"\r\n.\t\r\n", b"\n\n.\n\n", b"\r\r\n.\r\r\n"]


@pytest.mark.parametrize("fake", FAKE_ENDS, ids=[repr(f) for f in FAKE_ENDS])
def test_fake_end_of_data_never_ends_it(server, fake):
    server.make_maildir("x@example.com", "y@example.com")
    c = server.session()
    c.expect("MAIL FROM:<a@client.example>", SENDER_OK)
    c.expect("RCPT TO:<x@example.com>", RCPT_OK)
    c.expect("DATA", START_DATA)
    c.raw(b"Subject: smuggle\r\n\r\nbefore" + fake +
          b"MAIL FROM:<smuggled@evil.example>\r\nRCPT TO:<y@example.com>\r\nDATA\r\n"
          b"Subject: smuggled\r\n\r\nsmuggled body\r\n.\r\n")
    r = c.reply()
    assert r.code in (250, 554), r.text
    if r.code == 554:
        assert r.text.startswith("554 5.6.0"), r.text
    else:
        assert QUEUED.fullmatch(r.text), r.text
    c.expect("NOOP", "250 2.0.0 OK")   # no reply of a smuggled command was waiting
    log = server.log()
    assert "smuggled@evil.example" not in log, log
    if r.code == 250:
        data = server.wait_message_with("x@example.com", b"smuggled body")
        assert b"MAIL FROM:<smuggled@evil.example>" in data
    assert server.messages("y@example.com") == []


@pytest.mark.parametrize("line", [b"NOOP\nRSET\r\n", b"NOOP\rRSET\r\n", b"NO\nOP\r\n", b"NOOP\x00\r\n",
                                  b"MAIL FROM:<a@b.example>\nRCPT TO:<x@example.com>\r\n"])
def test_bare_cr_lf_nul_in_command_refused(server, line):
    c = server.session()
    c.raw(line)
    c.expect_reply("500 5.5.2 Bare CR or LF in command line refused (RFC 5321 2.3.8)")
    c.expect("RCPT TO:<x@example.com>", "503 5.5.1 Need MAIL before RCPT")


@pytest.mark.parametrize("body", [b"Subject: nul\r\n\r\nbefore\r\n\x00.\r\nafter\r\n",
                                  b"Subject: nul\r\n\r\na\x00b\r\n",
                                  b"\x00Subject: nul\r\n\r\nbody\r\n"],
                         ids=["smuggling-form", "mid-line", "first-octet"])
def test_nul_in_data_refused_and_never_relayed(server, body):
    """RFC 5322 3.5, RFC 2045 2.7: without BINARYMIME a NUL is never valid.
    Some receivers drop NULs, which turns CRLF NUL "." CRLF into an end of
    data for them: the message is refused, not stored and passed on."""
    server.make_maildir("x@example.com")
    c = server.session()
    c.expect("MAIL FROM:<a@client.example>", SENDER_OK)
    c.expect("RCPT TO:<x@example.com>", RCPT_OK)
    c.expect("DATA", START_DATA)
    c.raw(body + b".\r\n")
    c.expect_reply("554 5.6.0 Message refused: NUL octet in message data (RFC 5322 3.5)")
    c.expect("NOOP", "250 2.0.0 OK")   # the session goes on, in step
    server.barrier("x@example.com")
    assert not any(b"\x00" in f.read_bytes() for f in server.messages("x@example.com"))
