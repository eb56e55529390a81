"""The header block held while the body streams (smtpd/msgin.h), and what
tern writes into it: Authentication-Results (RFC 8601) with its
authserv-id, forged ones removed, and the limit on a header block's size.

Messages are delivered into Maildirs and read back as a user would."""

import re

from conftest import START_DATA, Delivered, crlf

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
    # ours (DKIM was checked: none) and the other server's
    assert ar == ["Authentication-Results: mx.test.example;",
                  "Authentication-Results: other.example; spf=fail"], head
    assert head[head.index("Authentication-Results: mx.test.example;") + 1] == "\tdkim=none" 
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
        # after Return-Path, Delivered-To, our Received and Authentication-
        # Results, the message as sent
        d = Delivered(data)
        assert d.authres == "Authentication-Results: mx.test.example; dkim=none"
        assert d.body == m.replace(b"\r\n", b"\n"), (d.body, m)


# --------------------------------------------------------------------------
# DMARC (RFC 7489) with real DNS: an unbound serving the test zones, SPF
# checked at MAIL (spf_policy = record), DKIM signatures made by dkimpy
# with a key `ternctl dkim-keygen` made, published in the same zone.

import json
import subprocess
import time

import pytest

from conftest import REPO, TERND, wait_for
from test_ternctl import ctl

TERNCTL_BIN = str(REPO / "build" / "ternctl")
import os as _os
TERNCTL_BIN = _os.environ.get("TERNCTL") or TERNCTL_BIN

ZONE = [
    'reject.test. TXT "v=spf1 ip4:127.0.0.2 -all"',
    '_dmarc.reject.test. TXT "v=DMARC1; p=reject; rua=mailto:d@reject.test"',
    'quar.test. TXT "v=spf1 ip4:127.0.0.2 -all"',
    '_dmarc.quar.test. TXT "v=DMARC1; p=quarantine"',
    '_dmarc.org.test. TXT "v=DMARC1; p=none; sp=reject"',
    '_dmarc.strict.test. TXT "v=DMARC1; p=reject; aspf=s"',
    'bounces.strict.test. TXT "v=spf1 ip4:127.0.0.2 -all"',
    '_dmarc.two.test. TXT "v=DMARC1; p=reject"',
    '_dmarc.two.test. TXT "v=DMARC1; p=none"',
    'other.test. TXT "v=spf1 -all"',
]


def split_txt(text):
    """A TXT record's text as unbound local-data strings of 255 octets."""
    return " ".join('"%s"' % text[i:i + 255] for i in range(0, len(text), 255))


@pytest.fixture
def dkim_key(tmp_path):
    path = tmp_path / "sel.pem"
    p = subprocess.run([TERNCTL_BIN, "dkim-keygen", "reject.test", "sel", "--out", str(path)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    import re as _re
    txt = next(l for l in p.stdout.splitlines() if " IN TXT ( " in l)
    record = "".join(_re.findall(r'"([^"]*)"', txt))
    return path, record


@pytest.fixture
def dmarc_dns(unbound, dkim_key):
    _, record = dkim_key
    return unbound(ZONE + ["sel._domainkey.reject.test. TXT %s" % split_txt(record)],
                   zones=[("servfail.test.", "always_refuse")])


def dmarc_server(ternd, dns, policy="enforce"):
    return ternd(dns_resolver=dns.resolver, spf_policy="record", dmarc_policy=policy,
                 mailboxes=[RCPT])


def letter(frm, marker):
    return crlf("From: Boss <boss@%s>" % frm, "To: <%s>" % RCPT, "Subject: " + marker,
                "Message-ID: <%s@test>" % marker, "", "body " + marker)


def send_from(server, source, sender, msg, want=None):
    """One transaction from a client at source; the reply to the final dot."""
    c = server.connect(source=source)
    assert c.cmd("EHLO client.example").code == 250
    c.expect("MAIL FROM:<%s>" % sender, "250 2.1.0 Sender OK")
    c.expect("RCPT TO:<%s>" % RCPT, "250 2.1.5 Recipient OK")
    c.expect("DATA", START_DATA)
    c.raw(msg + b".\r\n")
    r = c.reply()
    c.cmd("QUIT")
    c.close()
    return r


def dmarc_line(server, **fields):
    def find():
        for l in server.log().splitlines():
            if " dmarc: " in l and all("%s=%s" % kv in l for kv in fields.items()):
                return l
        return None
    return wait_for("a dmarc line with %s" % fields, find)


def test_dmarc_reject_and_aligned_spf_pass(ternd, dmarc_dns):
    s = dmarc_server(ternd, dmarc_dns)
    # SPF fails for 127.0.0.1, no signature: p=reject refuses
    r = send_from(s, "127.0.0.1", "x@reject.test", letter("reject.test", "spoofed"))
    assert r.text == ("550 5.7.1 Message refused: the DMARC policy of reject.test says reject "
                      "(RFC 7489)"), r.text
    line = dmarc_line(s, result="fail", **{"from": "reject.test"})
    assert "action=rejected" in line and "policy=reject" in line, line
    # the same From, SPF pass for the aligned MAIL FROM: accepted
    r = send_from(s, "127.0.0.2", "x@reject.test", letter("reject.test", "genuine"))
    assert r.code == 250, r.text
    d = Delivered(s.wait_message_with(RCPT, "genuine"))
    assert d.authres == ("Authentication-Results: mx.test.example; spf=pass "
                         "smtp.mailfrom=x@reject.test; dkim=none; dmarc=pass (p=reject dis=none) "
                         "header.from=reject.test"), d.authres
    assert b"spoofed" not in b"".join(p.read_bytes() for p in s.messages(RCPT))


def test_dmarc_dkim_alignment_passes_where_spf_fails(ternd, dmarc_dns, dkim_key):
    dkim = pytest.importorskip("dkim")
    path, _ = dkim_key
    s = dmarc_server(ternd, dmarc_dns)
    msg = letter("reject.test", "signed")
    sig = dkim.sign(msg, b"sel", b"reject.test", path.read_bytes(),
                    include_headers=[b"from", b"to", b"subject", b"message-id"])
    r = send_from(s, "127.0.0.1", "list@other.test", sig + msg)
    assert r.code == 250, r.text
    d = Delivered(s.wait_message_with(RCPT, "body signed"))
    assert "spf=fail smtp.mailfrom=list@other.test" in d.authres, d.authres
    assert "dkim=pass header.d=reject.test header.s=sel header.b=" in d.authres, d.authres
    assert "dmarc=pass (p=reject dis=none) header.from=reject.test" in d.authres, d.authres
    line = dmarc_line(s, result="pass")
    assert "dkim=aligned" in line and "spf=not aligned" in line, line


def test_dmarc_quarantine_holds_until_released(ternd, dmarc_dns):
    s = dmarc_server(ternd, dmarc_dns)
    r = send_from(s, "127.0.0.1", "x@quar.test", letter("quar.test", "suspect"))
    assert r.code == 250, r.text
    qid = re.search(r"<([0-9A-F]+)@", r.text).group(1)
    dmarc_line(s, result="fail", action="quarantined")
    shown = json.loads(ctl(s, "show", qid, json_out=True).stdout)
    rc = shown["recipients"][0]
    assert rc["state"] == "quarantined" and "DMARC" in rc["last_reply"], shown
    time.sleep(0.5)   # a delivery would have had its chance
    assert s.messages(RCPT) == []
    ctl(s, "release", qid)
    d = Delivered(s.wait_message_with(RCPT, "body suspect"))
    assert "dmarc=fail (p=quarantine dis=quarantine) header.from=quar.test" in d.authres


def test_dmarc_subdomain_policy_strict_alignment_and_errors(ternd, dmarc_dns):
    s = dmarc_server(ternd, dmarc_dns)
    # no record at sub.org.test: the organizational domain's sp=reject
    r = send_from(s, "127.0.0.1", "x@other.test", letter("sub.org.test", "sub"))
    assert r.code == 550 and "DMARC policy of org.test" in r.text, r.text
    # aspf=s: bounces.strict.test passes SPF but is not strictly aligned
    r = send_from(s, "127.0.0.2", "x@bounces.strict.test", letter("strict.test", "strict"))
    assert r.code == 550, r.text
    # two records: no policy applies (permerror); SERVFAIL: temperror; both accepted
    for frm, result in (("two.test", "permerror"), ("servfail.test", "temperror")):
        r = send_from(s, "127.0.0.1", "x@other.test", letter(frm, "err-" + result))
        assert r.code == 250, r.text
        d = Delivered(s.wait_message_with(RCPT, "body err-" + result))
        assert ("dmarc=%s header.from=%s" % (result, frm)) in d.authres, d.authres
    assert s.running()


def test_dmarc_report_only_records(ternd, dmarc_dns):
    s = dmarc_server(ternd, dmarc_dns, policy="report")
    r = send_from(s, "127.0.0.1", "x@reject.test", letter("reject.test", "reported"))
    assert r.code == 250, r.text
    d = Delivered(s.wait_message_with(RCPT, "body reported"))
    assert "dmarc=fail (p=reject dis=none) header.from=reject.test" in d.authres, d.authres
    line = dmarc_line(s, result="fail")
    assert "action=accepted (dmarc_policy = report)" in line, line


def test_dmarc_not_asked_for_relay_networks_mail(ternd, dmarc_dns):
    """Mail of relay_networks clients is this site's own (as for SPF): no
    DMARC lookup, no refusal, even under enforce."""
    s = ternd(dns_resolver=dmarc_dns.resolver, spf_policy="record", dmarc_policy="enforce",
              relay_networks="127.0.0.1/32", mailboxes=[RCPT])
    r = send_from(s, "127.0.0.1", "x@reject.test", letter("reject.test", "ours"))
    assert r.code == 250, r.text
    s.wait_message_with(RCPT, "body ours")
    assert " dmarc: " not in s.log()
