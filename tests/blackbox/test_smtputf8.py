"""SMTPUTF8 (RFC 6531) and internationalized domains.

Clients: Python's smtplib (mail_options=["SMTPUTF8"]) and the raw socket
client of conftest. Local delivery: a UTF-8 local part's Maildir is
mail_dir/<domain>/<local part as received, ASCII lower-cased>, an IDN's
domain directory its A-label (bücher.test: xn--bcher-kva.test). Next hops:
aiosmtpd in this process (Controller), with and without SMTPUTF8 in its
EHLO, reached through a transport_map entry; a message received with
SMTPUTF8 goes only to one that offers it, else the sender gets a 5.6.7
bounce.
"""

import email
import email.policy
import os
import smtplib
import threading
import time

import pytest

from conftest import (BYE, DEADLINE, QUEUED, RCPT_OK, SENDER_OK, START_DATA, Delivered,
                      crlf, give_to_run_user)
from peers import free_port_on

aiosmtpd_controller = pytest.importorskip("aiosmtpd.controller",
                                          reason="python3-aiosmtpd: scripts/install-deps test")

GREEK = "δοκιμή"                  # "test"
IDN = "bücher.test"
ALABEL = "xn--bcher-kva.test"
UTF8_SENT = "250 2.1.0 Sender OK"
NEED_UTF8 = "553 5.6.7 Non-ASCII address needs MAIL FROM:<...> SMTPUTF8 (RFC 6531 3.4)"
BAD_UTF8 = "553 5.6.7 Malformed UTF-8 in address (RFC 6531 3.3, RFC 3629)"


def maildir(s, local, domain_dir):
    """Create mail_dir/domain_dir/local as the run user's Maildir."""
    d = s.mail_dir / domain_dir / local
    for sub in ("tmp", "new", "cur"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    for p in (d.parent, d, d / "tmp", d / "new", d / "cur"):
        give_to_run_user(p)
    return d


def wait_files(d, n=1):
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        files = sorted(p for p in (d / "new").iterdir() if not p.name.startswith("."))
        if len(files) >= n:
            return [p.read_bytes() for p in files]
        time.sleep(0.05)
    raise AssertionError("no message in %s/new" % d)


@pytest.fixture
def local(ternd):
    s = ternd(local_domains="example.com, mx.test.example, " + IDN)
    s.greek = maildir(s, GREEK, "example.com")
    s.idn = maildir(s, "kate", ALABEL)
    s.make_maildir("x@example.com")
    return s


def test_ehlo_lists_smtputf8(server):
    c = server.connect()
    r = c.cmd("EHLO client.example")
    assert "250-SMTPUTF8" in r.text.split("\n"), r.text


def test_smtplib_utf8_local_part_and_idn_delivered(local):
    msg = ("From: Ἀλέξανδρος <ἀλέξ@παράδειγμα.test>\r\nTo: %s@example.com\r\n"
           "Subject: δοκιμή ✓\r\n\r\nΚαλημέρα\r\n" % GREEK).encode()
    with smtplib.SMTP("127.0.0.1", local.port, timeout=DEADLINE) as c:
        c.ehlo("client.example")
        assert c.has_extn("smtputf8")
        refused = c.sendmail("ἀλέξ@παράδειγμα.test", ["%s@example.com" % GREEK, "kate@" + IDN],
                             msg, mail_options=["SMTPUTF8", "BODY=8BITMIME"])
        assert refused == {}
    [data] = wait_files(local.greek)
    d = Delivered(data)
    d.check(sender="ἀλέξ@παράδειγμα.test", rcpt="%s@example.com" % GREEK,
            helo="client.example", proto="UTF8SMTP",
            message=msg.replace(b"\r\n", b"\n"))
    # the envelope keeps the address as given: the U-label, not the A-label
    [data] = wait_files(local.idn)
    Delivered(data).check(sender="ἀλέξ@παράδειγμα.test", rcpt="kate@" + IDN,
                          helo="client.example", proto="UTF8SMTP")
    assert not (local.mail_dir / IDN).exists()


def test_idn_as_a_label_reaches_the_same_mailbox(local):
    with smtplib.SMTP("127.0.0.1", local.port, timeout=DEADLINE) as c:
        c.sendmail("a@b.example", ["kate@" + ALABEL.upper()], b"Subject: ascii\r\n\r\nx\r\n")
    [data] = wait_files(local.idn)
    d = Delivered(data)
    assert d.delivered_to == "Delivered-To: kate@" + ALABEL, d.delivered_to
    assert " with ESMTP " in d.received, d.received


def test_utf8_address_without_smtputf8_refused(local):
    c = local.session()
    c.expect("MAIL FROM:<%s@example.com>" % GREEK, NEED_UTF8)
    c.expect("MAIL FROM:<a@b.example>", SENDER_OK)
    c.expect("RCPT TO:<%s@example.com>" % GREEK, NEED_UTF8)
    c.expect("RCPT TO:<kate@%s>" % IDN, NEED_UTF8)
    c.expect("RCPT TO:<kate@%s>" % ALABEL, RCPT_OK)
    c.expect("QUIT", BYE)


def test_smtplib_without_smtputf8_refused(local):
    with smtplib.SMTP("127.0.0.1", local.port, timeout=DEADLINE) as c:
        c.ehlo("client.example")
        c.command_encoding = "utf-8"   # smtplib would refuse to send it
        with pytest.raises(smtplib.SMTPRecipientsRefused) as e:
            c.sendmail("a@b.example", ["%s@example.com" % GREEK], b"Subject: x\r\n\r\nx\r\n")
        code, text = e.value.recipients["%s@example.com" % GREEK]
        assert code == 553 and text.startswith(b"5.6.7"), (code, text)


@pytest.mark.parametrize("bad", [
    b"a\xc0\xaf",            # overlong '/'
    b"\xed\xa0\x80x",        # a surrogate
    b"x\xc3",                # truncated
    b"\x80x",                # a lone continuation octet
    b"x\xc2\x85",            # U+0085, a C1 control
    b"\xf4\x90\x80\x80",     # above U+10FFFF
    b"\xff",
])
def test_malformed_utf8_refused_nothing_stored(local, bad):
    c = local.session()
    c.raw(b"MAIL FROM:<" + bad + b"@example.com> SMTPUTF8\r\n")
    r = c.reply()
    assert r.text in (BAD_UTF8,) or r.text.startswith("501 5.1.7"), r.text
    c.expect("MAIL FROM:<a@b.example> SMTPUTF8", SENDER_OK)
    c.raw(b"RCPT TO:<" + bad + b"@example.com>\r\n")
    assert c.reply().text == BAD_UTF8
    c.raw(b"RCPT TO:<x@" + bad + b".example.com>\r\n")
    assert c.reply().text == BAD_UTF8
    c.expect("DATA", "503 5.5.1 No valid recipients")
    c.expect("QUIT", BYE)
    assert local.all_delivered() == []
    assert not any(p.name.encode("utf-8", "surrogateescape").startswith(bad[:1])
                   for p in (local.mail_dir / "example.com").iterdir()
                   if p.name not in (GREEK, "x"))


def test_invalid_idn_refused(local):
    c = local.session()
    c.expect("MAIL FROM:<a@b.example> SMTPUTF8", SENDER_OK)
    # a label may not begin with a combining mark (RFC 5891 4.2.3.2)
    r = c.cmd("RCPT TO:<kate@\u0301a.test>")
    assert r.text.startswith("501 5.1.3"), r.text


def test_smtputf8_parameter_syntax(server):
    c = server.session()
    c.expect("MAIL FROM:<a@b.example> SMTPUTF8=yes", "501 5.5.4 Invalid parameter SMTPUTF8")
    c.expect("MAIL FROM:<a@b.example> SMTPUTF8 SMTPUTF8", "501 5.5.4 Invalid parameter SMTPUTF8")
    c.expect("MAIL FROM:<a@b.example> smtputf8", SENDER_OK)


def test_received_says_utf8smtp_even_for_ascii(server):
    server.make_maildir("x@example.com")
    c = server.session()
    qid = c.converse([
        ("MAIL FROM:<a@b.example> SMTPUTF8", SENDER_OK),
        ("RCPT TO:<x@example.com>", RCPT_OK),
        ("DATA", START_DATA),
        ("Subject: ascii in an SMTPUTF8 transaction", None),
        ("", None),
        (".", QUEUED),
    ])[-1]
    [data] = server.wait_messages("x@example.com", 1)
    Delivered(data).check(sender="a@b.example", rcpt="x@example.com", helo="client.example",
                          proto="UTF8SMTP", qid=QUEUED.fullmatch(qid.text).group(1))


# --------------------------------------------------------------------------
# Onward over SMTP


class Recorder:
    """aiosmtpd handler: keeps each envelope (MAIL options included)."""

    def __init__(self):
        self.envelopes = []
        self.got = threading.Event()

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        self.got.set()
        return "250 2.0.0 OK"


@pytest.fixture(params=[True, False], ids=["hop-smtputf8", "hop-ascii"])
def hop(request):
    rec = Recorder()
    port = free_port_on("127.0.0.1")
    ctl = aiosmtpd_controller.Controller(rec, hostname="127.0.0.1", port=port,
                                         enable_SMTPUTF8=request.param)
    ctl.start()
    rec.port, rec.utf8 = port, request.param
    yield rec
    ctl.stop()


def relay_server(ternd, tmp_path, hop):
    tmap = tmp_path / "transport"
    tmap.write_text("far.example 127.0.0.1:%d\n%s 127.0.0.1:%d\n" % (hop.port, "bücher.far",
                                                                     hop.port),
                    encoding="utf-8")
    give_to_run_user(tmap)
    return ternd(transport_map=str(tmap), relay_networks="127.0.0.0/8",
                 mailboxes=("sender@example.com",))


def bounce_of(s):
    [data] = s.wait_messages("sender@example.com", 1)
    return data


def test_relay_smtputf8(ternd, tmp_path, hop):
    s = relay_server(ternd, tmp_path, hop)
    rcpts = ["%s@far.example" % GREEK, "kate@bücher.far"]
    msg = ("From: sender@example.com\r\nSubject: Grüße\r\n\r\nαβγ\r\n").encode()
    with smtplib.SMTP("127.0.0.1", s.port, timeout=DEADLINE) as c:
        c.sendmail("sender@example.com", rcpts, msg, mail_options=["SMTPUTF8"])
    if hop.utf8:
        assert hop.got.wait(DEADLINE), s.log()
        [env] = hop.envelopes
        assert "SMTPUTF8" in env.mail_options, env.mail_options
        assert env.mail_from == "sender@example.com"
        assert sorted(env.rcpt_tos) == sorted(rcpts)
        assert b"\xce\xb1\xce\xb2\xce\xb3" in env.original_content
        assert b"with UTF8SMTP" in env.original_content
        return
    # no downgraded copy: both recipients come back with 5.6.7
    data = bounce_of(s)
    assert hop.envelopes == []
    report = email.message_from_bytes(data.split(b"\n", 2)[2], policy=email.policy.compat32)
    text = data.decode("utf-8", "replace")
    assert "5.6.7" in text and "does not support SMTPUTF8 (RFC 6531 3.4)" in text, text
    assert report.get_content_type() == "multipart/report", text
    assert text.count("Status: 5.6.7") == 2, text


def test_relay_ascii_message_without_smtputf8_unchanged(ternd, tmp_path, hop):
    """A transaction without SMTPUTF8 goes everywhere, with no parameter."""
    s = relay_server(ternd, tmp_path, hop)
    with smtplib.SMTP("127.0.0.1", s.port, timeout=DEADLINE) as c:
        c.sendmail("sender@example.com", ["kate@far.example"], b"Subject: plain\r\n\r\nx\r\n")
    assert hop.got.wait(DEADLINE), s.log()
    [env] = hop.envelopes
    assert "SMTPUTF8" not in env.mail_options


# --------------------------------------------------------------------------
# Real peers: Postfix's smtp-sink (no SMTPUTF8) and a private Postfix


class _Port:
    def __init__(self, port):
        self.port = port


def test_smtp_sink_without_smtputf8_gets_no_copy(ternd, tmp_path):
    """Postfix's smtp-sink does not list SMTPUTF8 (nor CHUNKING): the UTF-8
    message comes back with 5.6.7 and the sink gets nothing; an ASCII one
    goes to it by DATA."""
    from peers import SmtpSink
    sink = SmtpSink(tmp_path, "127.0.0.1", free_port_on("127.0.0.1"))
    try:
        s = relay_server(ternd, tmp_path, _Port(sink.port))
        with smtplib.SMTP("127.0.0.1", s.port, timeout=DEADLINE) as c:
            c.sendmail("sender@example.com", ["%s@far.example" % GREEK],
                       "Subject: Grüße\r\n\r\nαβγ\r\n".encode(), mail_options=["SMTPUTF8"])
        text = bounce_of(s).decode("utf-8", "replace")
        assert "Status: 5.6.7" in text and "does not support SMTPUTF8" in text, text
        assert sink.messages() == []
        with smtplib.SMTP("127.0.0.1", s.port, timeout=DEADLINE) as c:
            c.sendmail("sender@example.com", ["kate@far.example"], b"Subject: plain\r\n\r\nx\r\n")
        # smtp-sink creates its dump file first and writes it as the
        # message comes: wait for the content, not for the file
        def dumped():
            return [p for p in sink.messages() if b"kate@far.example" in p.read_bytes()]
        deadline = time.monotonic() + DEADLINE
        while not dumped() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(dumped()) == 1 and len(sink.messages()) == 1, sink.messages()
    finally:
        sink.stop()


@pytest.mark.skipif(os.geteuid() != 0, reason="a private Postfix master must start as root")
def test_real_postfix_takes_smtputf8(ternd, tmp_path):
    """A private Postfix 3.7 (smtputf8_enable by its compatibility level)
    as the next hop: MAIL ... SMTPUTF8, both recipients taken, Postfix's
    own log names the UTF-8 address."""
    from probe_peers import Postfix
    pf = Postfix({"kate@example.test": "s3cret"}, mynetworks="127.0.0.0/8")
    try:
        s = relay_server(ternd, tmp_path, _Port(pf.port))
        rcpts = ["%s@far.example" % GREEK, "kate@bücher.far"]
        with smtplib.SMTP("127.0.0.1", s.port, timeout=DEADLINE) as c:
            c.sendmail("sender@example.com", rcpts,
                       "Subject: Grüße\r\n\r\nαβγ\r\n".encode(), mail_options=["SMTPUTF8"])
        deadline = time.monotonic() + DEADLINE
        while s.log().count("status=sent") < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert s.log().count("status=sent") == 2, s.log()
        deadline = time.monotonic() + DEADLINE
        while "to=<%s@far.example>" % GREEK not in pf.log() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "to=<%s@far.example>" % GREEK in pf.log(), pf.log()
        assert "to=<kate@bücher.far>" in pf.log(), pf.log()
    finally:
        pf.stop()
