"""The DATA stream (RFC 5321 4.1.1.4, 4.5.2): dot-unstuffing, the one and
only end-of-data sequence CRLF.CRLF, bare LF / bare CR refusal (SMTP
smuggling), line and size limits, and the session going on after each
refusal.

Absence of a delivery is checked with a barrier: after the refusal a good
message goes to the same mailbox on the same connection; once it is there,
the mailbox must hold it alone.
"""

import pytest

from conftest import (BYE, OK, QUEUED, RCPT_OK, SENDER_OK, START_DATA,
                      Delivered, crlf, ehlo_reply)

REFUSED_FORMAT = "554 5.6.0 ..."
TOO_BIG = "552 5.3.4 ..."


def open_data(c, rcpt="x@example.com", sender="a@b.example"):
    c.converse([
        ("MAIL FROM:<%s>" % sender, SENDER_OK),
        ("RCPT TO:<%s>" % rcpt,     RCPT_OK),
        ("DATA",                    START_DATA),
    ])


def good_transaction_after(server, c, rcpt="x@example.com"):
    """On the same connection: a good message, delivered, and alone in the
    mailbox."""
    qid = c.send_mail("good@b.example", [rcpt], crlf("Subject: good", "", "good message"))
    data = server.wait_message_with(rcpt, "good message")
    files = server.messages(rcpt)
    assert len(files) == 1, (
        "%d messages in %s, expected only the good one:\n%r"
        % (len(files), rcpt, [f.read_bytes()[:500] for f in files]))
    return qid, data


# --------------------------------------------------------------------------
# Dot-unstuffing and the end of data


def test_dot_unstuffing(server):
    server.make_maildir("x@example.com")
    c = server.session()
    open_data(c)
    c.raw(b"Subject: dots\r\n\r\n..x\r\n...\r\n..\r\n. leading dot and space\r\nend\r\n.\r\n")
    c.expect_reply(QUEUED, after="the final dot")
    [data] = server.wait_messages("x@example.com", 1)
    Delivered(data).check(sender="a@b.example", rcpt="x@example.com", helo="client.example",
                          message=b"Subject: dots\r\n\r\n.x\r\n..\r\n.\r\n leading dot and space\r\nend\r\n")


def test_empty_message(server):
    # the CRLF ending the DATA command is the first CRLF of CRLF.CRLF
    server.make_maildir("x@example.com")
    c = server.session()
    open_data(c)
    c.raw(b".\r\n")
    c.expect_reply(QUEUED, after="DATA then at once the final dot")
    [data] = server.wait_messages("x@example.com", 1)
    Delivered(data).check(sender="a@b.example", rcpt="x@example.com", helo="client.example",
                          message=b"")


def test_dot_line_only_at_line_start_ends_data(server):
    server.make_maildir("x@example.com")
    c = server.session()
    open_data(c)
    c.raw(b"Subject: x\r\n\r\na.\r\n .\r\n.a\r\n.\r\n")   # ".a" is unstuffed to "a"
    c.expect_reply(QUEUED)
    [data] = server.wait_messages("x@example.com", 1)
    assert Delivered(data).body == b"Subject: x\n\na.\n .\na\n"


def test_message_sent_one_byte_at_a_time(server):
    server.make_maildir("x@example.com")
    c = server.session()
    open_data(c)
    msg = b"Subject: slow\r\n\r\nline\r\n..stuffed\r\n"
    for i in range(len(msg)):
        c.raw(msg[i:i + 1])
    for b in (b".", b"\r", b"\n"):
        c.raw(b)
    c.expect_reply(QUEUED)
    [data] = server.wait_messages("x@example.com", 1)
    assert Delivered(data).body == b"Subject: slow\n\nline\n.stuffed\n"


def test_eight_bit_body(server):
    server.make_maildir("x@example.com")
    c = server.session()
    c.converse([
        ("MAIL FROM:<a@b.example> BODY=8BITMIME", SENDER_OK),
        ("RCPT TO:<x@example.com>",               RCPT_OK),
        ("DATA",                                  START_DATA),
    ])
    body = "Subject: caf\u00e9\r\n\r\nJ\u00fcrgen \u2013 \u00e7a va\r\n".encode("utf-8") + b"\xff\xfe raw\r\n"
    c.raw(body + b".\r\n")
    c.expect_reply(QUEUED)
    [data] = server.wait_messages("x@example.com", 1)
    assert Delivered(data).body == body.replace(b"\r\n", b"\n")


# --------------------------------------------------------------------------
# Bare LF and bare CR: refused, never an end of data


@pytest.mark.parametrize("body", [
    b"Subject: lf\r\n\r\nline one\nline two\r\n",
    b"Subject: lf\nX: y\r\n\r\nbody\r\n",
    b"Subject: cr\r\n\r\nline one\rline two\r\n",
    b"Subject: cr\r\n\r\ntrailing cr\r\r\n",
], ids=["bare-LF-in-body", "bare-LF-in-header", "bare-CR-in-body", "CR-CR-LF"])
def test_bare_lf_or_cr_refused(server, body):
    server.make_maildir("x@example.com")
    c = server.session()
    open_data(c)
    c.raw(body + b".\r\n")
    c.expect_reply(REFUSED_FORMAT, after="a message with a bare LF/CR and the final dot")
    good_transaction_after(server, c)


SMUGGLED = (b"MAIL FROM:<evil@x>\r\nRCPT TO:<x@example.com>\r\nDATA\r\n"
            b"Subject: smuggled\r\n\r\nevil\r\n")


@pytest.mark.parametrize("fake_end", [
    b"\n.\n", b"\r\n.\n", b"\n.\r\n", b"\r.\r\n", b"\r\n.\r", b"\n.\r",
], ids=["LF.LF", "CRLF.LF", "LF.CRLF", "CR.CRLF", "CRLF.CR", "LF.CR"])
def test_smuggling_fake_end_of_data(server, fake_end):
    server.make_maildir("x@example.com")
    c = server.session()
    open_data(c)
    c.raw(b"Subject: hi\r\n\r\nbody" + fake_end + SMUGGLED + b".\r\n")
    # exactly one reply for all of that: the refusal at the real CRLF.CRLF
    c.expect_reply(REFUSED_FORMAT, after="a smuggling attempt and the real CRLF.CRLF")
    c.expect("NOOP", OK)   # had a smuggled command been run, its reply would be here
    good_transaction_after(server, c)


def test_smuggling_in_one_write_with_quit(server):
    server.make_maildir("x@example.com")
    c = server.session()
    open_data(c)
    c.raw(b"Subject: hi\r\n\r\nbody\n.\n" + SMUGGLED + b".\r\nQUIT\r\n")
    c.expect_reply(REFUSED_FORMAT)
    c.expect_reply(BYE, after="QUIT")
    c.wait_closed()
    server.barrier("x@example.com")
    assert len(server.messages("x@example.com")) == 1, "the smuggled message was delivered"


# --------------------------------------------------------------------------
# Line length


def test_line_of_max_length_accepted(server):
    server.make_maildir("x@example.com")
    c = server.session()
    open_data(c)
    line = b"a" * 998
    c.raw(b"Subject: long\r\n\r\n" + line + b"\r\n.\r\n")
    c.expect_reply(QUEUED, after="a 998-octet line")
    [data] = server.wait_messages("x@example.com", 1)
    assert Delivered(data).body == b"Subject: long\n\n" + line + b"\n"


def test_line_over_max_length_refused(server):
    server.make_maildir("x@example.com")
    c = server.session()
    open_data(c)
    c.raw(b"Subject: long\r\n\r\n" + b"a" * 999 + b"\r\n.\r\n")
    c.expect_reply(REFUSED_FORMAT, after="a 999-octet line")
    good_transaction_after(server, c)


def test_very_long_line_refused(server):
    server.make_maildir("x@example.com")
    c = server.session()
    open_data(c)
    c.raw(b"Subject: long\r\n\r\n" + b"b" * 200000 + b"\r\n.\r\n")
    c.expect_reply(REFUSED_FORMAT, after="a 200000-octet line")
    good_transaction_after(server, c)


def test_configured_max_line_length(ternd):
    s = ternd(max_line_length="100")
    s.make_maildir("x@example.com")
    c = s.session()
    open_data(c)
    c.raw(b"Subject: l\r\n\r\n" + b"c" * 100 + b"\r\n.\r\n")
    c.expect_reply(QUEUED, after="a 100-octet line")
    s.wait_messages("x@example.com", 1)
    open_data(c)
    c.raw(b"Subject: l\r\n\r\n" + b"c" * 101 + b"\r\n.\r\n")
    c.expect_reply(REFUSED_FORMAT, after="a 101-octet line")
    c.expect("NOOP", OK)


# --------------------------------------------------------------------------
# Message size


def test_message_over_max_size_refused(ternd):
    s = ternd(max_message_size="2000")
    s.make_maildir("x@example.com")
    c = s.connect()
    c.expect("EHLO client.example", ehlo_reply(2000))
    open_data(c)
    c.raw(b"Subject: big\r\n\r\n" + b"0123456789abcdef0123456789abcdef\r\n" * 300 + b".\r\n")
    c.expect_reply(TOO_BIG, after="a 10 kB message with max_message_size=2000")
    good_transaction_after(s, c)


def test_message_over_max_size_with_suffix(ternd):
    s = ternd(max_message_size="1k")
    s.make_maildir("x@example.com")
    c = s.session()
    open_data(c)
    c.raw(b"Subject: big\r\n\r\n" + (b"z" * 98 + b"\r\n") * 100 + b".\r\n")
    c.expect_reply(TOO_BIG, after="a 10 kB message with max_message_size=1k")
    good_transaction_after(s, c)


def test_message_within_size_accepted(ternd):
    s = ternd(max_message_size="20000")
    s.make_maildir("x@example.com")
    c = s.session()
    body = b"Subject: fits\r\n\r\n" + (b"y" * 98 + b"\r\n") * 150
    c.expect("MAIL FROM:<a@b.example> SIZE=%d" % len(body), SENDER_OK)
    c.expect("RCPT TO:<x@example.com>", RCPT_OK)
    c.expect("DATA", START_DATA)
    c.raw(body + b".\r\n")
    c.expect_reply(QUEUED)
    [data] = s.wait_messages("x@example.com", 1)
    assert Delivered(data).body == body.replace(b"\r\n", b"\n")


# --------------------------------------------------------------------------
# Interrupted transactions


def test_client_disconnect_during_data_delivers_nothing(server):
    server.make_maildir("x@example.com")
    c = server.session()
    open_data(c)
    c.raw(b"Subject: cut\r\n\r\nthe client goes away\r\n")
    c.close()
    server.barrier("x@example.com")
    assert len(server.messages("x@example.com")) == 1, "an unfinished message was delivered"


def test_quit_before_data_delivers_nothing(server):
    server.make_maildir("x@example.com")
    c = server.session()
    c.converse([
        ("MAIL FROM:<a@b.example>", SENDER_OK),
        ("RCPT TO:<x@example.com>", RCPT_OK),
        ("QUIT",                    BYE),
    ])
    c.wait_closed()
    server.barrier("x@example.com")
    assert len(server.messages("x@example.com")) == 1


def test_data_timeout(ternd):
    s = ternd(data_timeout="1s")
    s.make_maildir("x@example.com")
    c = s.session()
    open_data(c)
    c.raw(b"Subject: stalled\r\n\r\nand then nothing\r\n")
    got = c.wait_closed()
    assert not got or got.startswith(b"421"), (
        "on data timeout the server sent %r (only a 421 reply may precede the close)" % got)
    s.barrier("x@example.com")
    assert len(s.messages("x@example.com")) == 1, "a timed-out message was delivered"
