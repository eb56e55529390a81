"""The header block held while the body streams (smtpd/msgin.h), and what
tern writes into it: Authentication-Results (RFC 8601) with its
authserv-id, forged ones removed, and the limit on a header block's size.

Messages are delivered into Maildirs and read back as a user would."""

import re

from conftest import QUEUED, START_DATA, crlf

RCPT = "kate@example.com"


def head_of(data):
    """The header block of a delivered message (bytes), as text lines."""
    return data.split(b"\n\n", 1)[0].decode("utf-8", "replace").split("\n")


def test_forged_verdicts_are_removed(ternd):
    """RFC 8601 5: an Authentication-Results field that claims our
    authserv-id did not come from us; one of another server stays."""
    server = ternd(mailboxes=[RCPT], authserv_id="mx.test.example")
    msg = crlf("Authentication-Results: mx.test.example; spf=pass smtp.mailfrom=ceo@example.com",
               "Authentication-Results: (comment) MX.TEST.EXAMPLE;",
               "\tdkim=pass header.d=example.com",
               "Authentication-Results: other.example; spf=fail",
               "Subject: forged", "", "body of forged")
    with server.session() as c:
        c.send_mail("a@client.example", [RCPT], msg)
    data = server.wait_message_with(RCPT, "body of forged")
    head = head_of(data)
    ar = [l for l in head if l.lower().startswith("authentication-results:")]
    assert ar == ["Authentication-Results: other.example; spf=fail"], head
    assert "Subject: forged" in head
    assert re.search(r"removed=2 Authentication-Results claiming mx\.test\.example",
                     server.log()), server.log()


def test_header_block_over_the_limit(ternd):
    """552 5.3.4 for a header block over max_header_size; the session goes
    on and the next message is taken."""
    server = ternd(mailboxes=[RCPT], max_header_size="2k")
    big = "X-Filler: " + "x" * 900
    with server.session() as c:
        c.expect("MAIL FROM:<a@client.example>", "250 2.1.0 Sender OK")
        c.expect("RCPT TO:<%s>" % RCPT, "250 2.1.5 Recipient OK")
        c.expect("DATA", START_DATA)
        c.raw(crlf(big, big, big, "Subject: big", "", "never stored") + b".\r\n")
        c.expect_reply("552 5.3.4 Message header exceeds max_header_size (2048 octets)")
        c.send_mail("a@client.example", [RCPT], crlf(big, "Subject: small", "", "stored"))
    data = server.wait_message_with(RCPT, "stored")
    assert b"never stored" not in data
    assert server.running()


def test_message_shapes_kept_octet_for_octet(ternd):
    """What the header block's end is does not change what is delivered: a
    message of headers alone, one without headers, a first line that is no
    field, folded and obsolete fields, a body of dots."""
    server = ternd(mailboxes=[RCPT])
    shapes = [
        crlf("Subject: only headers", "X-Marker: shape-1"),
        crlf("shape-2: no header block at all? this line is a field"),
        crlf("shape-3 is not a field", "Subject: so this is body"),
        crlf("Subject: folded", "\tshape-4 continued", "X : obsolete", "", "..dots", "."),
        crlf("", "shape-5 after an empty first line"),
    ]
    with server.session() as c:
        for m in shapes:
            c.send_mail("a@client.example", [RCPT], m.replace(b"\r\n.", b"\r\n.."))
    for i, m in enumerate(shapes, 1):
        data = server.wait_message_with(RCPT, "shape-%d" % i)
        # after Return-Path, Delivered-To and our Received, the message as sent
        text = data.decode()
        received = text.index("Received: from ")
        after = text[received:]
        body = after[re.search(r"\n\t[A-Z][a-z]{2}, .*\n", after).end():]
        assert body == m.decode().replace("\r\n", "\n"), (body, m)
