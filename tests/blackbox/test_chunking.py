"""Outbound CHUNKING and BINARYMIME (RFC 3030): ternd sends a message by
BDAT to a next hop that offers CHUNKING (no dot-stuffing, no final dot),
DATA with smtp_chunking = no or to one without it; a refused chunk is
the reply every recipient gets, as DATA's final reply would be; a
connection lost in a chunk is a temporary failure. BODY=BINARYMIME is
taken inbound with BDAT only (DATA: 503) and goes only to a next hop
with BINARYMIME and CHUNKING; elsewhere the sender gets a 5.6.3 report.

Next hops: another ternd (its debug log shows each command it got), a
raw Python server in this process (keywords, refusals and a dropped
connection on request, every chunk recorded), and a private Postfix
(probe_peers), over STARTTLS.
"""

import email
import email.policy
import os
import re
import smtplib
import socketserver
import threading
import time

import pytest

from conftest import (DEADLINE, QUEUED, RCPT_OK, SENDER_OK, crlf, give_to_run_user,
                      wait_for)
from peers import report_parts

SENDER = "sender@example.com"
RCPT = "bob@far.example"
MIB = 1024 * 1024


def bdat(data, last=False):
    return b"BDAT %d%s\r\n" % (len(data), b" LAST" if last else b"") + data


# --------------------------------------------------------------------------
# A next hop in Python


class Hop(socketserver.ThreadingTCPServer):
    """An SMTP server on 127.0.0.1 with the EHLO keywords given. fail:
    {chunk index in a transaction: reply line}; drop_at: the chunk index
    whose octets it stops reading halfway, closing the connection. Every
    finished transaction goes into txs: mail line, rcpts, how (DATA or
    BDAT), chunks [(size, last)], body (as the octets came, unstuffed for
    DATA); rsets counts RSET."""

    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, keywords=("PIPELINING", "8BITMIME", "CHUNKING")):
        self.keywords = list(keywords)
        self.fail = {}
        self.drop_at = None
        self.txs = []
        self.rsets = 0
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), HopSession)
        self.port = self.server_address[1]
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.shutdown()
        self.server_close()

    def with_marker(self, marker):
        with self.lock:
            return [t for t in self.txs if marker in t["body"]]

    def wait(self, marker, n=1):
        return wait_for("%d transaction(s) with %r at the hop" % (n, marker),
                        lambda: len(self.with_marker(marker)) >= n and self.with_marker(marker))


class HopSession(socketserver.StreamRequestHandler):
    def send(self, line):
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self):
        hop = self.server
        self.send("220 hop.example ESMTP")
        self.tx = None
        while True:
            line = self.rfile.readline()
            if not line:
                return
            cmd = line.rstrip(b"\r\n").decode("latin-1")
            verb = cmd.split(" ", 1)[0].upper()
            if verb == "EHLO":
                self.send("250-hop.example")
                for k in hop.keywords:
                    self.send("250-" + k)
                self.send("250 HELP")
            elif verb == "MAIL":
                self.tx = {"mail": cmd, "rcpts": [], "how": None, "chunks": [], "body": b"",
                           "failed": False}
                self.send("250 2.1.0 ok")
            elif verb == "RCPT":
                self.tx["rcpts"].append(cmd)
                self.send("250 2.1.5 ok")
            elif verb == "DATA":
                self.data()
            elif verb == "BDAT":
                if not self.chunk(cmd):
                    return
            elif verb == "RSET":
                hop.rsets += 1
                self.tx = None
                self.send("250 2.0.0 ok")
            elif verb == "QUIT":
                self.send("221 2.0.0 bye")
                return
            else:
                self.send("502 5.5.2 unknown")

    def done(self, how):
        self.tx["how"] = how
        with self.server.lock:
            self.server.txs.append(self.tx)
        self.tx = None

    def data(self):
        self.send("354 go on")
        body = []
        while True:
            line = self.rfile.readline()
            if line in (b".\r\n", b""):
                break
            body.append(line[1:] if line.startswith(b".") else line)
        self.tx["body"] = b"".join(body)
        self.done("DATA")
        self.send("250 2.0.0 queued")

    def chunk(self, cmd):
        hop = self.server
        parts = cmd.split()
        n, last = int(parts[1]), len(parts) > 2 and parts[2].upper() == "LAST"
        idx = len(self.tx["chunks"]) if self.tx else 0
        if hop.drop_at == idx:
            self.rfile.read(n // 2)
            return False
        data = self.rfile.read(n)
        if self.tx is None:
            self.send("503 5.5.1 no transaction")
            return True
        self.tx["chunks"].append((n, last))
        self.tx["body"] += data
        if self.tx["failed"]:
            self.send("503 5.5.1 the message has failed already")
        elif idx in hop.fail:
            self.tx["failed"] = True
            self.send(hop.fail[idx])
        elif last:
            self.done("BDAT")
            self.send("250 2.0.0 queued as hop-%d" % len(hop.txs))
            return True
        else:
            self.send("250 2.0.0 %d octets" % n)
        if last:
            self.tx = None
        return True


@pytest.fixture
def hop():
    hops = []

    def start(*keywords):
        h = Hop(keywords) if keywords else Hop()
        hops.append(h)
        return h

    yield start
    for h in hops:
        h.stop()


def relay(ternd, tmp_path, port, **opts):
    """ternd A: far.example relayed to 127.0.0.1:port, the sender's mailbox
    local (for reports), retries every second."""
    tmap = tmp_path / "transport"
    tmap.write_text("far.example 127.0.0.1:%d\n" % port)
    give_to_run_user(tmap)
    conf = dict(transport_map=str(tmap), relay_networks="127.0.0.0/8", retry_min="1s",
                retry_max="1s")
    conf.update(opts)
    a = ternd(tmp=tmp_path / "a", **conf)
    a.make_maildir(SENDER)
    return a


def send(a, msg, options=(), rcpts=(RCPT,)):
    with smtplib.SMTP("127.0.0.1", a.port, timeout=DEADLINE) as c:
        c.sendmail(SENDER, list(rcpts), msg, mail_options=list(options))


def send_bdat(a, msg, mail_params=" BODY=BINARYMIME", rcpt=RCPT):
    """A message by raw BDAT (smtplib has none), one chunk."""
    with a.session() as c:
        c.converse([("MAIL FROM:<%s>%s" % (SENDER, mail_params), SENDER_OK),
                    ("RCPT TO:<%s>" % rcpt, RCPT_OK)])
        c.raw(bdat(msg, last=True))
        c.expect_reply(QUEUED)


def wait_log(s, pattern):
    rx = re.compile(pattern)
    return wait_for("%r in the log" % pattern, lambda: rx.search(s.log()))


def report(a):
    """The sender's report: (whole text, its per-recipient fields)."""
    [data] = a.wait_messages(SENDER, 1)
    msg = email.message_from_bytes(data, policy=email.policy.compat32)
    _, _, rcpts, _ = report_parts(msg)
    return data.decode("utf-8", "replace"), rcpts


DOTS = crlf("Subject: dots", "", ".", "..two", ".one", "end")


def test_bdat_to_a_hop_with_chunking(ternd, tmp_path, hop):
    """One chunk, LAST, octets as they are (dot lines unstuffed); the
    log line of the delivery names BDAT."""
    h = hop()
    a = relay(ternd, tmp_path, h.port)
    msg = DOTS.replace(b"end", b"end-bdat-1")
    send(a, msg)
    [t] = h.wait(b"end-bdat-1")
    assert t["how"] == "BDAT" and t["chunks"] == [(len(t["body"]), True)], t["chunks"]
    assert t["body"].startswith(b"Received: ") and t["body"].endswith(msg), t["body"]
    line = wait_log(a, r"delivery: to=<%s>.*status=sent.*" % RCPT).group(0)
    assert "(in reply to BDAT LAST)" in line, line


def test_smtp_chunking_no_sends_data(ternd, tmp_path, hop):
    h = hop()
    a = relay(ternd, tmp_path, h.port, smtp_chunking="no")
    msg = DOTS.replace(b"end", b"end-data-1")
    send(a, msg)
    [t] = h.wait(b"end-data-1")
    assert t["how"] == "DATA" and t["body"].endswith(msg)
    line = wait_log(a, r"delivery: to=<%s>.*status=sent.*" % RCPT).group(0)
    assert "(in reply to end of DATA)" in line, line


def test_hop_without_chunking_gets_data(ternd, tmp_path, hop):
    h = hop("PIPELINING", "8BITMIME")
    a = relay(ternd, tmp_path, h.port)
    send(a, DOTS.replace(b"end", b"end-plain-1"))
    [t] = h.wait(b"end-plain-1")
    assert t["how"] == "DATA"


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelined", "one-by-one"])
def test_large_message_in_several_chunks(ternd, tmp_path, hop, pipelining):
    """A body file of 3.5 MiB: chunks of about 1 MiB, the last one LAST,
    the message whole; then a small one on the same connection."""
    h = hop(*(["PIPELINING"] if pipelining else []), "CHUNKING")
    a = relay(ternd, tmp_path, h.port)
    line = b"." + b"x" * 70 + b"\r\n"
    big = b"Subject: big\r\n\r\nbig-1\r\n" + line * (7 * MIB // 2 // len(line)) + b"end\r\n"
    with smtplib.SMTP("127.0.0.1", a.port, timeout=DEADLINE) as c:
        c.sendmail(SENDER, [RCPT], big)
        c.sendmail(SENDER, [RCPT], b"Subject: small\r\n\r\nsmall-1\r\n")
    [t] = h.wait(b"big-1")
    sizes = [n for n, _ in t["chunks"]]
    # at most 1 MiB of the body file each, the first with the prefix
    # (the Received field) before it
    assert len(sizes) >= 4 and max(sizes[1:]) <= MIB and sizes[0] <= MIB + 1024, sizes
    assert [last for _, last in t["chunks"]] == [False] * (len(sizes) - 1) + [True]
    assert t["body"].endswith(big) and sum(sizes) == len(t["body"])
    h.wait(b"small-1")


def test_chunk_refused_4xx_deferred_then_delivered_once(ternd, tmp_path, hop):
    h = hop()
    h.fail = {0: "452 4.3.1 no room now"}
    a = relay(ternd, tmp_path, h.port)
    send(a, crlf("Subject: later", "", "later-1"))
    line = wait_log(a, r"delivery: to=<%s>.*status=deferred.*" % RCPT).group(0)
    assert "452 4.3.1 no room now (in reply to BDAT LAST)" in line, line
    assert h.with_marker(b"later-1") == []
    h.fail = {}
    h.wait(b"later-1")
    wait_log(a, r"status=sent")
    assert len(h.with_marker(b"later-1")) == 1
    assert a.messages(SENDER) == []


def test_middle_chunk_refused_5xx_bounces_with_rset(ternd, tmp_path, hop):
    """A refusal of the second of several chunks: no more chunks after
    it (those in the pipe are answered), every recipient returned."""
    h = hop()
    h.fail = {1: "552 5.3.4 too much for me"}
    a = relay(ternd, tmp_path, h.port)
    big = b"Subject: toobig\r\n\r\ntoobig-1\r\n" + (b"y" * 78 + b"\r\n") * (3 * MIB // 80)
    send(a, big, rcpts=(RCPT, "carol@far.example"))
    text, rcpts = report(a)
    assert text.count("Status: 5.3.4") == 2, text
    line = wait_log(a, r"delivery: to=<%s>.*status=bounced.*" % RCPT).group(0)
    assert "552 5.3.4 too much for me (in reply to BDAT)" in line, line
    assert h.with_marker(b"toobig-1") == []
    # the next message goes (on the same connection: RSET before it)
    send(a, crlf("Subject: next", "", "next-1"))
    h.wait(b"next-1")


def test_last_chunk_refused_5xx_bounces(ternd, tmp_path, hop):
    h = hop()
    h.fail = {0: "554 5.7.1 content refused"}
    a = relay(ternd, tmp_path, h.port)
    send(a, crlf("Subject: refused", "", "refused-1"))
    text, rcpts = report(a)
    assert "Status: 5.7.1" in text, text
    line = wait_log(a, r"delivery: to=<%s>.*status=bounced.*" % RCPT).group(0)
    assert "554 5.7.1 content refused (in reply to BDAT LAST)" in line, line
    assert h.rsets == 0


def test_connection_lost_in_a_chunk_deferred_then_delivered(ternd, tmp_path, hop):
    h = hop()
    h.drop_at = 0
    a = relay(ternd, tmp_path, h.port)
    send(a, crlf("Subject: dropped", "", "dropped-1"))
    line = wait_log(a, r"delivery: to=<%s>.*status=deferred.*" % RCPT).group(0)
    assert "4.4.2" in line, line
    h.drop_at = None
    h.wait(b"dropped-1")
    wait_log(a, r"status=sent")
    assert len(h.with_marker(b"dropped-1")) == 1 and a.messages(SENDER) == []


# --------------------------------------------------------------------------
# ternd to ternd


@pytest.fixture
def hop_ternd(ternd, tmp_path):
    b = ternd(tmp=tmp_path / "b", hostname="b.test.example", local_domains="far.example",
              log_level="debug")
    b.make_maildir(RCPT)
    return b


def b_body(data):
    """What B stored after its own three lines (Return-Path, Delivered-To,
    its Received header)."""
    lines = data.split(b"\n")
    i = 3
    while lines[i][:1] in (b"\t", b" "):
        i += 1
    return b"\n".join(lines[i:])


def test_ternd_to_ternd_by_bdat(ternd, tmp_path, hop_ternd):
    a = relay(ternd, tmp_path, hop_ternd.port)
    small = DOTS.replace(b"end", b"end-tt-1")
    line = b"." + b"z" * 70 + b"\r\n"
    big = b"Subject: big\r\n\r\nbig-tt-1\r\n" + line * (5 * MIB // 2 // len(line))
    with smtplib.SMTP("127.0.0.1", a.port, timeout=DEADLINE) as c:
        c.sendmail(SENDER, [RCPT], small)
        c.sendmail(SENDER, [RCPT], big)
    got = hop_ternd.wait_message_with(RCPT, b"end-tt-1")
    assert b_body(got).endswith(small.replace(b"\r\n", b"\n")), got
    got = hop_ternd.wait_message_with(RCPT, b"big-tt-1")
    assert b_body(got).endswith(big.replace(b"\r\n", b"\n"))
    log = hop_ternd.log()
    chunks = re.findall(r": < BDAT (\d+)( LAST)?", log)
    assert len([c for c in chunks if c[1]]) == 2 and len(chunks) >= 4, chunks
    assert ": < DATA" not in log


def test_unterminated_last_line_gets_its_crlf(ternd, tmp_path, hop):
    """A body whose last line has no CRLF is stored with one (as the
    receiving side adds it, smtpd/data.c): that is what goes on."""
    h = hop()
    a = relay(ternd, tmp_path, h.port)
    send_bdat(a, b"Subject: open\r\n\r\nopen-1 no newline", mail_params="")
    [t] = h.wait(b"open-1")
    assert t["body"].endswith(b"\r\nopen-1 no newline\r\n"), t["body"][-60:]


# --------------------------------------------------------------------------
# BINARYMIME


BINARY = b"Subject: bin\r\nMIME-Version: 1.0\r\n\r\nbin-%d \x00\x01\xff\rbare\nlf " + \
         b"a" * 1200 + b"\r\n"


def test_binarymime_needs_bdat(server):
    server.make_maildir("x@example.com")
    c = server.session()
    c.expect("MAIL FROM:<a@b.example> BODY=BINARYMIME", SENDER_OK)
    c.expect("RCPT TO:<x@example.com>", RCPT_OK)
    c.expect("DATA", "503 5.5.1 BODY=BINARYMIME requires BDAT, not DATA (RFC 3030 3)")
    msg = BINARY.replace(b"%d", b"1")
    c.raw(bdat(msg, last=True))   # the same transaction goes on by BDAT
    c.expect_reply(QUEUED)
    got = server.wait_message_with("x@example.com", b"bin-1")
    assert b"\x00\x01\xff\rbare\nlf " + b"a" * 1200 in got


def test_binary_octets_refused_without_binarymime(server):
    server.make_maildir("x@example.com")
    c = server.session()
    c.expect("MAIL FROM:<a@b.example> BODY=8BITMIME", SENDER_OK)
    c.expect("RCPT TO:<x@example.com>", RCPT_OK)
    c.raw(bdat(BINARY.replace(b"%d", b"2"), last=True))
    c.expect_reply("554 5.6.0 ...")


def test_binarymime_relayed_with_body_binarymime(ternd, tmp_path, hop):
    h = hop("PIPELINING", "CHUNKING", "BINARYMIME")
    a = relay(ternd, tmp_path, h.port)
    msg = BINARY.replace(b"%d", b"3")
    send_bdat(a, msg)
    [t] = h.wait(b"bin-3")
    assert t["mail"].endswith(" BODY=BINARYMIME"), t["mail"]
    assert t["how"] == "BDAT" and t["body"].endswith(msg)


def test_binarymime_ternd_to_ternd(ternd, tmp_path, hop_ternd):
    a = relay(ternd, tmp_path, hop_ternd.port)
    msg = BINARY.replace(b"%d", b"4")
    send_bdat(a, msg)
    got = hop_ternd.wait_message_with(RCPT, b"bin-4")
    assert b"\x00\x01\xff\rbare\nlf " in got
    assert re.search(r": < MAIL FROM:<%s> SIZE=\d+ BODY=BINARYMIME" % SENDER, hop_ternd.log())


@pytest.mark.parametrize("keywords,opts", [
    (("PIPELINING", "CHUNKING"), {}),
    (("PIPELINING", "BINARYMIME"), {}),
    (("PIPELINING", "CHUNKING", "BINARYMIME"), {"smtp_chunking": "no"}),
], ids=["no-binarymime", "no-chunking", "chunking-off"])
def test_binarymime_to_a_hop_without_it_bounces_5_6_3(ternd, tmp_path, hop, keywords, opts):
    h = hop(*keywords)
    a = relay(ternd, tmp_path, h.port, **opts)
    send_bdat(a, BINARY.replace(b"%d", b"5"))
    text, rcpts = report(a)
    assert "Status: 5.6.3" in text, text
    assert "does not support BINARYMIME and CHUNKING (RFC 3030 3)" in text, text
    assert "\x00" not in text   # the binary body is not returned (headers only)
    assert h.txs == []


# --------------------------------------------------------------------------
# Postfix


@pytest.mark.skipif(os.geteuid() != 0, reason="a private Postfix master must start as root")
def test_postfix_next_hop_by_bdat_over_tls(ternd, tmp_path):
    """Postfix's smtpd offers CHUNKING (3.4 and later); over STARTTLS
    the body goes in chunks read from the spool (no sendfile), none over
    1 MiB (a body held in memory is one piece, cut)."""
    from probe_peers import Postfix
    pf = Postfix({"kate@example.test": "s3cret"}, mynetworks="127.0.0.0/8")
    try:
        a = relay(ternd, tmp_path, pf.port, log_level="debug")
        line = b"." + b"p" * 70 + b"\r\n"
        msg = b"Subject: pf\r\n\r\npf-1\r\n" + line * (5 * MIB // 2 // len(line))
        send(a, msg)
        sent = wait_log(a, r"delivery: to=<%s>.*status=sent.*" % RCPT).group(0)
        assert "(in reply to BDAT LAST)" in sent and "tls=TLS" in sent, sent
        chunks = re.findall(r"smtp [^:]*: > BDAT (\d+)( LAST)?", a.log())
        assert len(chunks) >= 3 and chunks[-1][1], chunks
        assert max(int(n) for n, _ in chunks[1:]) <= MIB, chunks
    finally:
        pf.stop()


# --------------------------------------------------------------------------
# LMTP


def test_lmtp_keeps_data_and_returns_binarymime_5_6_3(ternd, tmp_path):
    """LMTP (Dovecot, which offers CHUNKING) still gets DATA; a BINARYMIME
    message, which would need BDAT there, is returned with 5.6.3."""
    from peers import Dovecot, free_port_on
    d = Dovecot(free_port_on("127.0.0.1"), ["bob@lmtp.example"])
    try:
        a = ternd(tmp=tmp_path / "a", lmtp_domains="lmtp.example",
                  lmtp_host="127.0.0.1:%d" % d.port, retry_min="1s", retry_max="1s",
                  log_level="debug")
        a.make_maildir(SENDER)
        send(a, crlf("Subject: lmtp", "", "lmtp-data-1"), rcpts=("bob@lmtp.example",))
        d.wait_message_with("bob@lmtp.example", "lmtp-data-1")
        assert re.search(r"smtp [^:]*: > DATA", a.log()) and "> BDAT" not in a.log()
        send_bdat(a, BINARY.replace(b"%d", b"6"), rcpt="bob@lmtp.example")
        text, rcpts = report(a)
        assert rcpts[0]["Status"] == "5.6.3", text
        assert "BINARYMIME needs BDAT, and LMTP is sent by DATA" in text, text
    finally:
        d.stop()
