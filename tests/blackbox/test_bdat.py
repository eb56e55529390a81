"""CHUNKING (RFC 3030): BDAT chunks of counted octets, pipelined, binary
(no dot-stuffing, no end-of-data dot), the end of the message on the
same path as DATA (250 with the queue id only after the spool's commit),
sizes, the errors and the protocol kept in step after each of them.
smtplib has no BDAT: raw sockets throughout.
"""

import re
import time

from conftest import (OK, QUEUED, RCPT_OK, SENDER_OK, Delivered, ehlo_reply, wait_for)
from peers import SmtpSink, free_port_on

TOO_BIG = "552 5.3.4 ..."
MIXED = "503 5.5.1 DATA and BDAT cannot be mixed in one transaction"
SYNTAX = "501 5.5.4 Syntax: BDAT chunk-size [LAST]"
NEED_MAIL = "503 5.5.1 Need MAIL before BDAT"


def chunk_ok(n):
    return "250 2.0.0 %d octets received" % n


def bdat(data, last=False):
    """One BDAT command and its octets."""
    return b"BDAT %d%s\r\n" % (len(data), b" LAST" if last else b"") + data


def open_tx(c, rcpt="x@example.com", sender="a@b.example"):
    c.converse([
        ("MAIL FROM:<%s>" % sender, SENDER_OK),
        ("RCPT TO:<%s>" % rcpt,     RCPT_OK),
    ])


def delivered(server, rcpt, marker, message):
    data = server.wait_message_with(rcpt, marker)
    Delivered(data).check(sender="a@b.example", rcpt=rcpt, helo="client.example",
                          message=message)
    return data


def test_ehlo_offers_chunking(server):
    c = server.connect()
    r = c.expect("EHLO client.example", ehlo_reply())
    assert "250-CHUNKING" in r.lines and "250-BINARYMIME" in r.lines


def test_chunks_pipelined_in_one_write(server):
    """MAIL, RCPT, three chunks and the LAST in one write: each answered
    in order; the message arrives byte for byte, boundaries anywhere
    (inside the header block, between CR and LF)."""
    server.make_maildir("x@example.com")
    c = server.session()
    msg = (b"Subject: chunked\r\nX-Marker: pipelined-1\r\n\r\n"
           b"line one\r\n.line with a leading dot\r\n.\r\nlast line\r\n")
    cuts = [9, 30, msg.index(b"\r\n.\r\n") + 1]   # in a field, in the head, in a CRLF
    parts = [msg[:cuts[0]], msg[cuts[0]:cuts[1]], msg[cuts[1]:cuts[2]], msg[cuts[2]:]]
    c.raw(b"MAIL FROM:<a@b.example>\r\nRCPT TO:<x@example.com>\r\n" +
          b"".join(bdat(p) for p in parts[:-1]) + bdat(parts[-1], last=True))
    c.expect_reply(SENDER_OK)
    c.expect_reply(RCPT_OK)
    for p in parts[:-1]:
        c.expect_reply(chunk_ok(len(p)))
    qid = QUEUED.fullmatch(c.expect_reply(QUEUED).text).group(1)
    data = delivered(server, "x@example.com", "pipelined-1", msg)
    assert re.search(rb"with ESMTP id %s" % qid.encode(), data), data[:400]
    c.expect("NOOP", OK)


def test_bdat_zero_last_ends_the_message(server):
    server.make_maildir("x@example.com")
    c = server.session()
    open_tx(c)
    msg = b"Subject: zero\r\n\r\nzero-last-1\r\n"
    c.raw(bdat(msg[:20]) + bdat(msg[20:]) + b"BDAT 0 LAST\r\n")
    c.expect_reply(chunk_ok(20))
    c.expect_reply(chunk_ok(len(msg) - 20))
    c.expect_reply(QUEUED)
    delivered(server, "x@example.com", "zero-last-1", msg)


def test_one_chunk_last_then_next_transaction(server):
    """BDAT n LAST alone; then the session goes on with another message."""
    server.make_maildir("x@example.com")
    c = server.session()
    for i in range(2):
        open_tx(c)
        msg = b"Subject: n%d\r\n\r\nsecond-tx-%d\r\n" % (i, i)
        c.raw(bdat(msg, last=True))
        c.expect_reply(QUEUED)
        delivered(server, "x@example.com", "second-tx-%d" % i, msg)


def test_dot_lines_and_crlf_dot_crlf_are_data(server):
    """What would end or be unstuffed in DATA is plain data in BDAT: a
    lone "." line, a leading "..", and a pipelined "QUIT" inside."""
    server.make_maildir("x@example.com")
    c = server.session()
    open_tx(c)
    msg = b"Subject: dots\r\n\r\n..two\r\n.\r\nQUIT\r\n.\r\nMAIL FROM:<evil@x>\r\ndots-1\r\n"
    c.raw(bdat(msg, last=True))
    c.expect_reply(QUEUED)
    delivered(server, "x@example.com", "dots-1", msg)
    c.expect("NOOP", OK)


def test_last_line_without_crlf_gets_one(server):
    server.make_maildir("x@example.com")
    c = server.session()
    open_tx(c)
    c.raw(bdat(b"Subject: t\r\n\r\nno-crlf-1", last=True))
    c.expect_reply(QUEUED)
    delivered(server, "x@example.com", "no-crlf-1", b"Subject: t\r\n\r\nno-crlf-1\r\n")


def test_size_exceeded_midway_keeps_in_step(ternd):
    """Over max_message_size at the second chunk: 552 for it and for
    every chunk after it up to LAST (their octets read, not run), then
    the session is as after RSET; nothing delivered."""
    s = ternd(max_message_size="2000")
    s.make_maildir("x@example.com")
    c = s.session()
    open_tx(c)
    evil = b"RSET\r\nMAIL FROM:<e@x>\r\nRCPT TO:<x@example.com>\r\nDATA\r\n"
    c.raw(bdat(b"Subject: big\r\n\r\n") + bdat(b"a" * 1500 + b"\r\n") +
          bdat(b"b" * 1500 + b"\r\n") + bdat(evil) + bdat(b"end\r\n", last=True) + b"NOOP\r\n")
    c.expect_reply(chunk_ok(16))
    c.expect_reply(chunk_ok(1502))
    for _ in range(3):
        c.expect_reply(TOO_BIG)
    c.expect_reply(OK)
    c.expect("RCPT TO:<x@example.com>", "503 5.5.1 Need MAIL before RCPT")
    # the barrier: a good message alone in the mailbox
    open_tx(c)
    c.raw(bdat(b"Subject: ok\r\n\r\nafter-big-1\r\n", last=True))
    c.expect_reply(QUEUED)
    s.wait_message_with("x@example.com", "after-big-1")
    assert len(s.messages("x@example.com")) == 1


def test_size_exceeded_in_the_last_chunk(ternd):
    s = ternd(max_message_size="1000")
    s.make_maildir("x@example.com")
    c = s.session()
    open_tx(c)
    c.raw(bdat(b"Subject: big\r\n\r\n" + b"c" * 990 + b"\r\n", last=True))
    c.expect_reply(TOO_BIG)
    c.expect("RCPT TO:<x@example.com>", "503 5.5.1 Need MAIL before RCPT")


def test_data_after_bdat_refused(server):
    server.make_maildir("x@example.com")
    c = server.session()
    open_tx(c)
    c.raw(bdat(b"Subject: mixed\r\n\r\n"))
    c.expect_reply(chunk_ok(18))
    c.expect("DATA", MIXED)
    c.raw(bdat(b"mixed-1\r\n", last=True))   # the transaction is still there
    c.expect_reply(QUEUED)
    delivered(server, "x@example.com", "mixed-1", b"Subject: mixed\r\n\r\nmixed-1\r\n")


def test_bdat_without_transaction(server):
    """503, and the octets are read, not run as commands."""
    server.make_maildir("x@example.com")
    c = server.session()
    c.raw(b"BDAT 6 LAST\r\nQUIT\r\nNOOP\r\n")
    c.expect_reply(NEED_MAIL)
    c.expect_reply(OK)
    c.expect("MAIL FROM:<a@b.example>", SENDER_OK)
    c.raw(b"BDAT 6\r\nRSET\r\n")
    c.expect_reply("503 5.5.1 No valid recipients")
    c.expect("RCPT TO:<x@example.com>", RCPT_OK)   # not LAST: the transaction stays


def test_bad_arguments(server):
    server.make_maildir("x@example.com")
    c = server.session()
    open_tx(c)
    for args in ("", "x", "-1", "1 FIRST", "1 LAST more", "99999999999999999999"):
        c.expect(("BDAT " + args).strip(), SYNTAX)
    c.expect("NOOP", OK)


def test_refusals_of_data_apply_at_last(server):
    """Without BINARYMIME the message is text: a bare LF or a NUL is
    refused as in DATA (554), at the end; the session goes on."""
    server.make_maildir("x@example.com")
    c = server.session()
    for body in (b"bare\nlf\r\n", b"nul\0x\r\n", b"bare\rcr\r\n"):
        open_tx(c)
        c.raw(bdat(b"Subject: bad\r\n\r\n") + bdat(body, last=True))
        c.expect_reply(chunk_ok(16))
        c.expect_reply("554 5.6.0 ...")
    open_tx(c)
    c.raw(bdat(b"Subject: fine\r\n\r\nfine-1\r\n", last=True))
    c.expect_reply(QUEUED)
    server.wait_message_with("x@example.com", "fine-1")
    assert len(server.messages("x@example.com")) == 1


def test_long_line_refused(server):
    server.make_maildir("x@example.com")
    c = server.session()
    open_tx(c)
    c.raw(bdat(b"Subject: l\r\n\r\n" + b"a" * 500) + bdat(b"a" * 499 + b"\r\n", last=True))
    c.expect_reply(chunk_ok(514))
    c.expect_reply("554 5.6.0 Message refused: a line is longer than 998 octets ...")


def test_kill9_after_last_reply_delivers_after_restart(ternd):
    s1 = ternd(queue_only="yes")
    s1.make_maildir("x@example.com")
    c = s1.session()
    open_tx(c)
    msg = b"Subject: durable\r\n\r\nbdat-durable-1\r\n"
    c.raw(bdat(msg[:10]) + bdat(msg[10:], last=True))
    c.expect_reply(chunk_ok(10))
    c.expect_reply(QUEUED)
    s1.kill9()
    s2 = ternd(queue_only="no")
    s2.wait_message_with("x@example.com", "bdat-durable-1")
    s2.barrier("x@example.com")
    assert sum(1 for f in s2.messages("x@example.com") if b"bdat-durable-1" in f.read_bytes()) == 1


def test_large_message_in_many_chunks(server):
    """1 MiB in 64 KiB chunks, all in one go: the spool's pauses do not
    lose the count."""
    server.make_maildir("x@example.com")
    c = server.session()
    open_tx(c)
    line = b"0123456789" * 10 + b"\r\n"
    msg = b"Subject: large\r\nX-Marker: large-1\r\n\r\n" + line * 10000
    out = b"".join(bdat(msg[i:i + 65536]) for i in range(0, len(msg), 65536))
    c.raw(out + b"BDAT 0 LAST\r\n")
    for i in range(0, len(msg), 65536):
        c.expect_reply(chunk_ok(len(msg[i:i + 65536])))
    c.expect_reply(QUEUED)
    delivered(server, "x@example.com", "large-1", msg)


def test_many_chunks_after_a_failure_do_not_close(ternd):
    """max_errors counts the failure once, not at each later chunk."""
    s = ternd(max_message_size="100", max_errors="3")
    s.make_maildir("x@example.com")
    c = s.session()
    open_tx(c)
    c.raw(bdat(b"x" * 200 + b"\r\n") + b"".join(bdat(b"y\r\n") for _ in range(10)) +
          bdat(b"z\r\n", last=True) + b"NOOP\r\n")
    for _ in range(12):
        c.expect_reply(TOO_BIG)
    c.expect_reply(OK)


def test_relayed_to_smtp_sink_with_its_dots(ternd, tmp_path):
    """A chunked message with dot lines, relayed on to Postfix's smtp-sink
    (over DATA: ternd stuffs the dots again): the sink gets it whole."""
    sink = SmtpSink(tmp_path, "127.0.0.1", free_port_on("127.0.0.1"))
    try:
        tmap = tmp_path / "transport"
        tmap.write_text("far.example 127.0.0.1:%d\n" % sink.port)
        s = ternd(transport_map=str(tmap), relay_networks="127.0.0.0/8")
        c = s.session()
        open_tx(c, rcpt="bob@far.example")
        msg = b"Subject: relayed-1\r\n\r\n.\r\n..two\r\n.one\r\nend\r\n"
        c.raw(bdat(msg[:19]) + bdat(msg[19:], last=True))
        c.expect_reply(chunk_ok(19))
        c.expect_reply(QUEUED)

        def found():
            for p in sink.messages():
                data = p.read_bytes()
                if b"relayed-1" in data:
                    return data
            return None
        got = wait_for("the message at the sink", found)
        # the dump has LF line ends, and an empty line after the message
        assert got.endswith(b"\nSubject: relayed-1\n\n.\n..two\n.one\nend\n\n"), repr(got[-80:])
    finally:
        sink.stop()


def test_chunk_octets_in_slow_pieces_and_rset(server):
    """A chunk's octets over several writes (the count holds across
    reads); RSET drops a chunked message; the next one goes through."""
    server.make_maildir("x@example.com")
    c = server.session()
    open_tx(c)
    c.raw(bdat(b"Subject: dropped\r\n\r\ndropped-1\r\n"))
    c.expect_reply(chunk_ok(31))
    c.expect("RSET", OK)
    open_tx(c)
    msg = b"Subject: slow\r\n\r\nslow-1\r\n.\r\n"
    c.raw(b"BDAT %d LAST\r\n" % len(msg))
    for i in range(0, len(msg), 5):
        time.sleep(0.05)
        c.raw(msg[i:i + 5])
    c.expect_reply(QUEUED)
    c.expect("NOOP", OK)
    delivered(server, "x@example.com", "slow-1", msg)
    assert len(server.messages("x@example.com")) == 1
