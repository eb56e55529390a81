"""Session transcripts and client lint (transcripts = yes, the test mode):
what `ternctl transcript` shows of real clients' sessions (smtplib with
STARTTLS, AUTH PLAIN and a pipelined group; raw sockets for what smtplib
never does wrong), with the credentials never recorded; the lint of a
message with a bare LF, of one without Message-ID and Date, and none for
smtplib's clean message; transcript_keep; transcripts kept across a
restart, with session ids that go on."""

import email.utils
import json
import re
import smtplib

import pytest

from conftest import BYE, crlf, free_port, wait_for
from secfix import PASSWORD, cert, client_context, starttls, users_file  # noqa: F401
from test_ternctl import ctl

QID = re.compile(r"\b([0-9A-F]{16})\b")
HEADER_CODES = {"no-message-id", "no-date", "no-from", "duplicate-field", "header-not-field",
                "header-8bit", "space-before-colon"}


def transcript(server, *args):
    p = ctl(server, "transcript", *args, json_out=True)
    o = json.loads(p.stdout)
    assert o["ok"] is True, o
    return o


def sessions(server):
    return transcript(server)["sessions"]


def codes(lint):
    return {w["code"] for w in lint}


@pytest.fixture
def tserver(ternd, cert, users_file):
    crt, key = cert
    return ternd(tls_cert=str(crt), tls_key=str(key), users_file=str(users_file),
                 transcripts="yes", mailboxes=("kate@example.com", "lee@example.com"))


def clean_message():
    return crlf("From: Kate <kate@example.com>", "To: lee@example.com",
                "Date: " + email.utils.formatdate(),
                "Message-ID: " + email.utils.make_msgid(domain="example.com"),
                "Subject: clean", "", "hello")


def test_smtplib_session_recorded(tserver):
    with smtplib.SMTP("127.0.0.1", tserver.port, timeout=10) as s:
        s.ehlo("client.example")
        s.starttls(context=client_context())
        s.ehlo("client.example")
        s.user, s.password = "kate@example.com", PASSWORD
        code, _ = s.auth("PLAIN", s.auth_plain)
        assert code == 235
        # RFC 2920: MAIL and both RCPTs in one write, one batch
        s.send(b"MAIL FROM:<kate@example.com>\r\nRCPT TO:<kate@example.com>\r\n"
               b"RCPT TO:<lee@example.com>\r\n")
        for _ in range(3):
            assert s.getreply()[0] == 250
        code, text = s.data(clean_message())
        assert code == 250, text
        qid = QID.search(text.decode()).group(1)
        # right after the 250, before QUIT: the transcript up to it is there
        o = transcript(tserver, qid)
    assert o["queue_id"] == qid and o["status"] == "queued", o
    assert not codes(o["lint"]), o["lint"]
    lines = o["session"]["lines"]
    ins = [line for line in lines if line["dir"] == "in"]
    outs = [line for line in lines if line["dir"] == "out"]
    notes = [line for line in lines if line["dir"] == "note"]
    assert outs[0]["text"].startswith("220 "), outs
    assert any(line["text"].lower() == "ehlo client.example" for line in ins), ins
    assert any(line["text"].startswith("250-") for line in outs), outs
    assert any(qid in line["text"] and line["text"].startswith("250 ") for line in outs), outs
    tls = [n["text"] for n in notes if n["text"].startswith("TLS established")]
    assert tls and re.search(r"protocol TLSv1\.[23]", tls[0]), notes
    assert "SNI" not in tls[0], tls   # smtplib names no server for 127.0.0.1
    assert any(line["text"] == "AUTH PLAIN ********" for line in ins), ins
    assert any(n["text"] == "AUTH PLAIN succeeded" for n in notes), notes
    group = [line for line in ins if line["text"].startswith(("MAIL ", "RCPT "))]
    assert len(group) == 3 and len({line["batch"] for line in group}) == 1, group
    ehlo = [line for line in ins if line["text"].lower().startswith("ehlo")]
    assert ehlo[0]["batch"] != group[0]["batch"], ins
    assert any(n["text"].startswith("message: ") and "octets" in n["text"] for n in notes), notes
    assert all(lines[i]["t"] <= lines[i + 1]["t"] for i in range(len(lines) - 1))
    sess = o["session"]
    assert sess["user"] == "kate@example.com" and sess["helo"] == "client.example", sess
    assert sess["tls"].startswith("TLSv1."), sess
    # the session as a whole, once it ended
    sid = str(sess["id"])
    wait_for("the session's end recorded",
             lambda: transcript(tserver, sid)["ended"] == "QUIT")
    whole = transcript(tserver, sid)
    assert [t["queue_id"] for t in whole["transactions"]] == [qid]
    assert whole["messages"] == 1
    # the password, plain or in its base64 forms, is nowhere
    human = ctl(tserver, "transcript", qid).stdout
    assert "C: AUTH PLAIN ********" in human and "S: 220 " in human, human
    secrets = [PASSWORD, s.auth_plain().strip(), s.auth_plain().strip()[:20]]
    stored = b"".join(p.read_bytes() for p in tserver.spool_dir.glob("sessions.db*"))
    for secret in secrets:
        for where in (json.dumps(o), json.dumps(whole), human):
            assert secret not in where
        assert secret.encode() not in stored


def test_rejected_session_recorded(tserver):
    c = tserver.connect()
    c.expect("EHLO client.example", "250-...")
    starttls(c)   # with SNI
    c.expect("EHLO client.example", "250-...")
    c.expect("MAIL FROM:<a@client.example>", "250 ...")
    r = c.cmd("RCPT TO:<someone@elsewhere.example>")
    assert r.code >= 500, r
    c.close()   # hangs up, no QUIT

    def ended():
        for s in sessions(tserver):
            if s["ended"].startswith("client hung up"):
                return s
        return None
    s = wait_for("the hung-up session recorded", ended)
    whole = transcript(tserver, str(s["id"]))
    texts = [(line["dir"], line["text"]) for line in whole["lines"]]
    assert ("in", "RCPT TO:<someone@elsewhere.example>") in texts, texts
    assert any(d == "out" and t.startswith("550 5.7.1") for d, t in texts), texts
    assert whole["messages"] == 0
    assert any(d == "note" and t.startswith("TLS established") and "SNI mx.test.example" in t
               for d, t in texts), texts


def test_lint_codes(tserver):
    c = tserver.connect()
    c.expect("EHLO client.example", "250-...")
    # a bare LF in a command and a 503 the client provoked, then a
    # message with a bare LF (refused)
    c.raw(b"NOOP\nNOOP\r\n")
    assert c.reply().code == 500
    c.expect("RCPT TO:<kate@example.com>", "503 ...")
    c.expect("MAIL FROM:<a@client.example>", "250 ...")
    c.expect("RCPT TO:<kate@example.com>", "250 ...")
    c.expect("DATA", "354 ...")
    c.raw(b"Subject: bare\r\n\r\none\n.\nbare\r\n.\r\n")
    refused = c.reply()
    assert refused.code >= 500, refused
    # a message without Message-ID, Date or From, and a duplicated Subject
    c.expect("MAIL FROM:<a@client.example>", "250 ...")
    c.expect("RCPT TO:<kate@example.com>", "250 ...")
    c.expect("DATA", "354 ...")
    c.raw(crlf("Subject: one", "Subject: two", "", "caf\u00e9 without 8BITMIME", "."))
    r = c.reply()
    assert r.code == 250, r
    qid = QID.search(r.text).group(1)
    c.expect("QUIT", BYE)
    c.close()
    o = transcript(tserver, qid)
    assert o["status"] == "queued"
    got = codes(o["lint"])
    assert {"no-message-id", "no-date", "no-from", "duplicate-field",
            "8bit-undeclared"} <= got, o["lint"]
    assert "bare-lf" not in got and "rcpt-before-mail" not in got, o["lint"]
    for w in o["lint"]:
        assert w["text"] and w["rfc"].startswith("RFC "), w
    dup = [w for w in o["lint"] if w["code"] == "duplicate-field"]
    assert dup[0]["detail"] == "Subject", dup
    first, second = o["session"]["transactions"]
    assert second["queue_id"] == qid
    assert first["status"].startswith("refused: 5"), first
    got = codes(first["lint"])
    assert {"bare-lf", "smuggling-shape", "rcpt-before-mail",
            "bare-newline-command"} <= got, first["lint"]
    assert not got & HEADER_CODES - {"no-message-id", "no-date", "no-from"}, first["lint"]
    human = ctl(tserver, "transcript", qid).stdout
    assert "warning no-message-id" in human, human


def test_transcripts_off_by_default(ternd):
    s = ternd()
    p = ctl(s, "transcript", check=False)
    assert p.returncode == 1 and "transcripts = yes" in p.stderr, p.stderr
    assert not (s.spool_dir / "sessions.db").exists()


def quick_session(server):
    c = server.connect()
    c.expect("EHLO client.example", "250-...")
    c.expect("QUIT", BYE)
    c.close()


def test_keep(ternd):
    s = ternd(transcripts="yes", transcript_keep="3")
    for _ in range(5):
        quick_session(s)
    listed = sessions(s)
    assert transcript(s)["total"] == 3 and len(listed) == 3, listed
    ids = [x["id"] for x in listed]
    assert ids == sorted(ids, reverse=True) and ids[0] - ids[2] == 2, ids
    assert all(x["helo"] == "client.example" for x in listed[1:]), listed


def test_max_size(ternd):
    s = ternd(transcripts="yes", transcript_max_size="300")
    c = s.connect()
    for _ in range(40):   # 18 octets each way: over 300 in all
        c.expect("NOOP", "250 ...")
    c.expect("QUIT", BYE)
    c.close()
    sid = str(wait_for("the session ended", lambda: [x for x in sessions(s)
                                                      if x["ended"] == "QUIT"])[0]["id"])
    o = transcript(s, sid)
    assert sum(len(x["text"]) for x in o["lines"]) <= 300 + 200, o["lines"]
    assert any("truncated" in x["text"] for x in o["lines"] if x["dir"] == "note"), o
    assert o["dropped"] > 0, o


def test_restart_keeps_transcripts(ternd, tmp_path):
    s1 = ternd(tmp=tmp_path / "one", transcripts="yes")
    quick_session(s1)
    wait_for("the first session ended",
             lambda: any(x["ended"] == "QUIT" for x in sessions(s1)))
    before = sessions(s1)
    s1.stop_checked()
    s2 = ternd(tmp=tmp_path / "one", transcripts="yes")
    quick_session(s2)
    after = sessions(s2)
    old = {x["id"]: x for x in before}
    for x in after:
        if x["id"] in old:
            assert x["start"] == old[x["id"]]["start"], (x, old[x["id"]])
    assert set(old) <= {x["id"] for x in after}, (before, after)
    new = [x for x in after if x["id"] not in old]
    assert new and min(x["id"] for x in new) > max(old), (before, after)
    ended = [x for x in after if x["id"] in old and x["ended"] == "QUIT"]
    assert ended and transcript(s2, str(ended[0]["id"]))["lines"], after


def test_bdat_chunks_and_unterminated_last_line(tserver):
    c = tserver.connect()
    c.expect("EHLO client.example", "250-...")
    msg = crlf("From: a@example.com", "Date: " + email.utils.formatdate(),
               "Message-ID: <b@example.com>", "", "body") + b"no CRLF at the end"
    c.raw(b"MAIL FROM:<a@client.example>\r\nRCPT TO:<kate@example.com>\r\n"
          b"BDAT %d\r\n" % 30 + msg[:30] + b"BDAT %d LAST\r\n" % (len(msg) - 30) + msg[30:])
    for _ in range(3):
        assert c.reply().code == 250
    r = c.reply()
    assert r.code == 250, r
    qid = QID.search(r.text).group(1)
    o = transcript(tserver, qid)
    assert codes(o["lint"]) == {"no-final-crlf"}, o["lint"]
    notes = [x["text"] for x in o["session"]["lines"] if x["dir"] == "note"]
    want = "in 2 BDAT chunks (30, %d LAST)" % (len(msg) - 30)
    assert any(want in n for n in notes), notes
    assert not any(msg[30:40].decode() in x["text"] for x in o["session"]["lines"])
    c.expect("QUIT", BYE)


def test_proxy_header_recorded(ternd):
    s = ternd(transcripts="yes", listen="127.0.0.1:%d proxy" % free_port())
    c = s.connect(greeting=False)
    c.send("PROXY TCP4 192.0.2.66 127.0.0.1 1234 25")
    c.expect(None, "220 ...")
    c.expect("QUIT", BYE)
    c.close()
    got = wait_for("the proxied session recorded",
                   lambda: [x for x in sessions(s) if x["client"] == "192.0.2.66"])
    o = transcript(s, str(got[0]["id"]))
    assert "proxy" in o["listener"], o
    assert any(x["dir"] == "note" and "PROXY v1" in x["text"] and "192.0.2.66" in x["text"]
               and "127.0.0.1" in x["text"] for x in o["lines"]), o["lines"]
