"""Milters (Sendmail milter protocol 6): ternd as the MTA side against real
filters started here on 127.0.0.1, each with its own files in the test's
directory:

* a fault milter on python3-milter (faultmilter.py, libmilter underneath)
  told by a plan file what to answer at each stage, which modifications to
  ask for, when to die or never answer;
* rspamd in milter mode (its proxy worker, no Redis): its verdict header
  and a reject of the GTUBE test string;
* OpenDKIM signing through the milter, the signature checked by dkimpy.

What a user checks: the SMTP codes the client gets (a default action's
451 4.7.1 or 550 5.7.1, a milter's own reply), the delivered message, the
log line that says why, and ternd serving on after a hostile milter.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from secfix import PASSWORD, users_file  # noqa: F401,F811  (fixture)
from conftest import (BYE, DEADLINE, EHLO_REPLY, GREETING, OK, QUEUED, RCPT_OK, REPO,
                      SENDER_OK, START_DATA, crlf, free_port, make_traversable, wait_for)

FAULT = str(Path(__file__).resolve().parent / "faultmilter.py")
TERNCTL = os.environ.get("TERNCTL") or str(REPO / "build" / "ternctl")
BOB = "bob@example.com"
TEMPFAIL = "451 4.7.1 Service unavailable - try again later"
REJECT = "550 5.7.1 Command rejected"


def wait_port(port, proc, what, timeout=DEADLINE):
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            pass
        if proc.poll() is not None:
            raise AssertionError("%s exited with %d" % (what, proc.returncode))
        if time.monotonic() > deadline:
            raise AssertionError("%s did not listen on port %d" % (what, port))
        time.sleep(0.02)


class Fault:
    """The fault milter: plan(...) says what it does from its next
    connection on; seen() is what it was told."""

    def __init__(self, tmp, quiet=False, **plan):
        self.dir = Path(tmp)
        self.plan_path = self.dir / ("plan-%d.json" % id(self))
        self.plan(**plan)
        self.port = free_port()
        self.spec = "inet:127.0.0.1:%d" % self.port
        argv = ["/usr/bin/python3", FAULT, str(self.plan_path),
                "inet:%d@127.0.0.1" % self.port] + (["--quiet"] if quiet else [])
        self.out = open(self.dir / ("fault-%d.out" % self.port), "wb")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.out,
                                     stderr=self.out)
        wait_port(self.port, self.proc, "faultmilter")

    def plan(self, **plan):
        self.plan_path.write_text(json.dumps(plan))

    def seen(self):
        try:
            text = Path(str(self.plan_path) + ".log").read_text()
        except OSError:
            return []
        return [json.loads(l) for l in text.splitlines() if l.strip()]

    def stages(self):
        return [r["stage"] for r in self.seen()]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(DEADLINE)
        self.out.close()


@pytest.fixture
def fault(tmp_path):
    made = []

    def start(**kw):
        f = Fault(tmp_path, **kw)
        made.append(f)
        return f
    yield start
    for f in made:
        f.stop()


@pytest.fixture
def milter_ternd(ternd):
    """ternd(milters spec, key=value...) with bob's mailbox and debug logs."""
    def start(milters, **kw):
        kw.setdefault("log_level", "debug")
        return ternd(milters=milters, mailboxes=(BOB,), **kw)
    return start


def message(marker, *extra, frm="Alice <alice@client.example>"):
    return crlf("From: " + frm, "To: Bob <bob@example.com>",
                "Subject: %s" % marker, "Message-ID: <%s@client.example>" % marker,
                *extra, "", "Hello Bob,", "this is %s." % marker, "")


def transaction(c, marker, want_end, rcpt=BOB, **kw):
    """MAIL, RCPT, DATA and the message; the reply to the final dot must
    match want_end."""
    c.expect("MAIL FROM:<alice@client.example>", SENDER_OK)
    c.expect("RCPT TO:<%s>" % rcpt, RCPT_OK)
    c.expect("DATA", START_DATA)
    c.raw(message(marker, **kw) + b".\r\n")
    return c.expect_reply(want_end, after="the final dot")


def log_has(server, *pieces):
    return wait_for("a log line with %r" % (pieces,),
                    lambda: any(all(p in l for p in pieces) for l in server.log().splitlines()))


# --------------------------------------------------------------------------
# Every stage, with the macros


def test_every_stage_is_shown_with_its_macros(fault, milter_ternd):
    f = fault()
    s = milter_ternd(f.spec)
    c = s.session()
    qid = QUEUED.fullmatch(transaction(c, "stages", QUEUED).text).group(1)
    c.expect("XYZZY plugh", "500 5.5.1 Unrecognized command")
    c.expect("QUIT", BYE)
    msg = s.wait_message_with(BOB, "stages")
    assert b"this is stages." in msg
    # the harness's probe connection is another milter connection: this one's
    conn = wait_for("the HELO", lambda: [r["conn"] for r in f.seen()
                                         if r["stage"] == "helo"])[0]
    mine = lambda: [r for r in f.seen() if r["conn"] == conn]
    wait_for("the milter's close", lambda: any(r["stage"] == "close" for r in mine()))
    st = [r["stage"] for r in mine()]
    assert st[:5] == ["connect", "helo", "envfrom", "envrcpt", "data"], st
    assert st.count("header") == 4 and st.index("eoh") > st.index("header")
    assert st.index("body") > st.index("eoh") and st.index("eom") > st.index("body")
    assert "unknown" in st and st[-1] == "close"
    by = {r["stage"]: r for r in mine()}
    assert by["connect"]["args"][0] == "[127.0.0.1]"
    m = by["connect"]["macros"]
    assert m["j"] == "mx.test.example" and m["{daemon_name}"] == "ternd"
    assert m["{if_addr}"] == "127.0.0.1" and m["_"] == "unknown [127.0.0.1]"
    assert by["helo"]["args"] == ["client.example"]
    assert by["envfrom"]["args"] == ["<alice@client.example>"]
    assert by["envfrom"]["macros"]["i"] == qid
    assert by["envfrom"]["macros"]["{mail_addr}"] == "alice@client.example"
    assert by["envrcpt"]["macros"]["{rcpt_addr}"] == BOB
    headers = [r["args"] for r in mine() if r["stage"] == "header"]
    assert headers[2] == ["Subject", "stages"], headers
    assert by["body"]["args"][1] == "Hello Bob,\r\nthis is stages.\r\n\r\n"
    assert by["unknown"]["args"] == ["XYZZY plugh"]


def test_quiet_milter_skips_steps_and_replies(fault, milter_ternd):
    """SMFIP_NOCONNECT, NOHELO, NR_HDR, NR_EOH, NR_BODY as python3-milter
    negotiates them for @nocallback and @noreply, and a macro list for
    MAIL (@symlist, SMFIR_SETSYMLIST)."""
    f = fault(quiet=True)
    s = milter_ternd(f.spec)
    c = s.session()
    transaction(c, "quiet", QUEUED)
    c.expect("QUIT", BYE)
    s.wait_message_with(BOB, "quiet")
    st = f.stages()
    assert "connect" not in st and "helo" not in st
    assert st.count("header") == 4 and "eoh" in st and "body" in st and "eom" in st
    mail = next(r for r in f.seen() if r["stage"] == "envfrom")
    # its list: {mail_addr} only (libmilter keeps the connection's macros)
    assert mail["macros"]["{mail_addr}"] == "alice@client.example" and "i" not in mail["macros"]


# --------------------------------------------------------------------------
# Verdicts at each stage, and the SMTP code the client gets


def test_connect_verdicts(fault, milter_ternd):
    f = fault(connect="reject")
    s = milter_ternd(f.spec)
    c = s.connect(greeting=False)
    c.expect(None, "554 5.7.1 Connection rejected")
    c.wait_closed()
    f.plan(connect="tempfail")
    c = s.connect(greeting=False)
    c.expect(None, "421 4.7.1 Service unavailable - try again later")
    c.wait_closed()
    f.plan(connect="reply:550:5.7.1:Not from your network")
    c = s.connect(greeting=False)
    c.expect(None, "550 5.7.1 Not from your network")
    c.wait_closed()
    f.plan(connect="accept")       # the whole connection: asked no more
    c = s.session()
    transaction(c, "accepted", QUEUED)
    s.wait_message_with(BOB, "accepted")
    log_has(s, "milter", "stage=connect", "result=reject")


@pytest.mark.parametrize("stage, action, at, want", [
    ("helo", "reject", "EHLO", REJECT),
    ("envfrom", "reject", "MAIL", REJECT),
    ("envfrom", "tempfail", "MAIL", TEMPFAIL),
    ("envfrom", "reply:553:5.1.8:Sender domain unknown", "MAIL", "553 5.1.8 Sender domain unknown"),
    ("envrcpt", "reject", "RCPT", REJECT),
    ("envrcpt", "reply:450:4.2.1:Try again later, greylisted", "RCPT",
     "450 4.2.1 Try again later, greylisted"),
    ("data", "tempfail", "DATA", TEMPFAIL),
    ("header", "reject", "dot", REJECT),
    ("eoh", "tempfail", "dot", TEMPFAIL),
    ("body", "reject", "dot", REJECT),
    ("eom", "reject", "dot", REJECT),
    ("eom", "reply:554:5.7.0:Message refused by policy", "dot",
     "554 5.7.0 Message refused by policy"),
    ("eom", "reply:421:4.7.0:Closing down", "dot", "421 4.7.0 Closing down"),
])
def test_refusal_reaches_the_client(fault, milter_ternd, stage, action, at, want):
    f = fault(**{stage: action})
    s = milter_ternd(f.spec)
    c = s.connect()
    steps = [("EHLO client.example", EHLO_REPLY), ("MAIL FROM:<alice@client.example>", SENDER_OK),
             ("RCPT TO:<%s>" % BOB, RCPT_OK), ("DATA", START_DATA)]
    names = ["EHLO", "MAIL", "RCPT", "DATA"]
    for (line, ok), name in zip(steps, names):
        if name == at:
            c.expect(line, want)
            break
        c.expect(line, ok)
    else:
        c.raw(message("refused") + b".\r\n")
        c.expect_reply(want, after="the final dot")
    if want.startswith("421"):
        c.wait_closed()
    else:
        c.expect("RSET", OK)     # the session goes on
    log_has(s, "milter", "result=")
    assert s.messages(BOB) == []


def test_discard_accepts_and_drops(fault, milter_ternd):
    f = fault(eom="discard")
    s = milter_ternd(f.spec)
    c = s.session()
    transaction(c, "dropped", QUEUED)
    log_has(s, "milter", "discard")
    c.expect("QUIT", BYE)
    f.plan()                        # read at the next connection
    c = s.session()
    transaction(c, "kept", QUEUED)
    s.wait_message_with(BOB, "kept")
    assert not any(b"dropped" in p.read_bytes() for p in s.messages(BOB))


def test_discard_at_rcpt_drops_the_message_at_its_end(fault, milter_ternd):
    f = fault(envrcpt="discard")
    s = milter_ternd(f.spec)
    c = s.session()
    transaction(c, "dropped early", QUEUED)    # RCPT and the end both say yes
    c.expect("QUIT", BYE)
    log_has(s, "milter", "result=discarded")
    wait_for("the milter's abort", lambda: "abort" in f.stages())
    assert "eom" not in f.stages()
    f.plan()
    s.barrier(BOB)
    assert not any(b"dropped early" in p.read_bytes() for p in s.messages(BOB))


def test_accept_at_mail_skips_the_rest_of_the_message(fault, milter_ternd):
    f = fault(envfrom="accept", body="reject")
    s = milter_ternd(f.spec)
    c = s.session()
    transaction(c, "waved", QUEUED)
    s.wait_message_with(BOB, "waved")
    assert "body" not in f.stages() and "envrcpt" not in f.stages()


# --------------------------------------------------------------------------
# Modifications at the end of the message


def test_modifications_land_in_the_delivered_message(fault, milter_ternd):
    f = fault(mods=[["addheader", "X-Checked", "yes, by the fault milter"],
                    ["insheader", 0, "X-First", "top"],
                    ["chgheader", "Subject", 1, "changed subject"],
                    ["chgheader", "Message-ID", 1, ""],
                    ["replacebody", "A new body.\r\n.a dot line\r\n"],
                    ["chgfrom", "<bounces@example.com>"],
                    ["addrcpt", "<carol@example.com>"],
                    ["addrcpt", "<dave@example.com>", "NOTIFY=NEVER"],
                    ["addrcpt", "<erin@example.com>", "FROB=1"],
                    ["addrcpt", "<nobody@example.com>"],
                    ["delrcpt", "<bob@example.com>"]])
    s = milter_ternd(f.spec)
    s.make_maildir("carol@example.com", "dave@example.com", "erin@example.com")
    c = s.session()
    transaction(c, "modified", QUEUED)
    got = s.wait_messages("carol@example.com", 1)[0].decode()
    head, body = got.split("\n\n", 1)
    assert head.startswith("Return-Path: <bounces@example.com>\nDelivered-To: carol@example.com")
    assert "\nX-First: top\nFrom: Alice" in head
    assert "Subject: changed subject" in head and "Subject: modified" not in head
    assert "Message-ID" not in head
    assert head.endswith("X-Checked: yes, by the fault milter")
    assert body == "A new body.\n.a dot line\n"
    c.expect("QUIT", BYE)
    s.wait_message_with("dave@example.com", "A new body.")
    assert s.messages(BOB) == [] and s.messages("erin@example.com") == []
    log_has(s, "recipient not added (bad parameters)", "erin@example.com")
    log_has(s, "recipient not added (not deliverable)", "nobody@example.com")
    for what in ("header edited", "body replaced", "sender changed", "recipient added",
                 "recipient deleted"):
        log_has(s, "milter", what)


def test_milters_in_order(fault, milter_ternd):
    """Each milter in turn, each edit applied in order; a refusal by the
    first is the last word: the second is not asked."""
    first = fault(mods=[["addheader", "X-First", "1"]])
    second = fault(mods=[["addheader", "X-Second", "2"]])
    s = milter_ternd("%s, %s" % (first.spec, second.spec))
    c = s.session()
    transaction(c, "both", QUEUED)
    head = s.wait_message_with(BOB, "both").decode().split("\n\n")[0]
    assert head.endswith("X-First: 1\nX-Second: 2"), head
    c.expect("QUIT", BYE)
    first.plan(envrcpt="reject")
    c = s.session()
    c.expect("MAIL FROM:<alice@client.example>", SENDER_OK)
    c.expect("RCPT TO:<%s>" % BOB, REJECT)
    c.expect("QUIT", BYE)
    wait_for("the second's close", lambda: second.stages().count("close") >= 2)
    assert second.stages().count("envrcpt") == 1 and first.stages().count("envrcpt") == 2


def test_skip_ends_the_body_early(fault, milter_ternd):
    f = fault(body="skip")
    s = milter_ternd(f.spec)
    c = s.session()
    big = "\r\n".join("line %06d %s" % (i, "x" * 60) for i in range(3000))  # 3 chunks
    c.expect("MAIL FROM:<alice@client.example>", SENDER_OK)
    c.expect("RCPT TO:<%s>" % BOB, RCPT_OK)
    c.expect("DATA", START_DATA)
    c.raw(crlf("Subject: big", "", big) + b".\r\n")
    c.expect_reply(QUEUED)
    s.wait_message_with(BOB, "line 002999")
    st = f.stages()
    assert st.count("body") == 1 and "eom" in st, st


def ternctl(s, *args):
    p = subprocess.run([TERNCTL, "-s", str(s.spool_dir / "control")] + list(args),
                       capture_output=True, text=True, timeout=DEADLINE)
    assert p.returncode == 0, "ternctl %s: %s" % (" ".join(args), p.stderr)
    return p.stdout


def test_quarantine_holds_until_ternctl_release(fault, milter_ternd):
    f = fault(mods=[["quarantine", "looks like a virus"]])
    s = milter_ternd(f.spec)
    c = s.session()
    qid = QUEUED.fullmatch(transaction(c, "quarantined", QUEUED).text).group(1)
    log_has(s, "quarantined", "looks like a virus")
    assert qid in ternctl(s, "--json", "queue", "--state", "held")
    rc = json.loads(ternctl(s, "--json", "show", qid))["recipients"][0]
    assert rc["state"] == "quarantined", rc
    assert rc["last_reply"] == "quarantined by a milter: looks like a virus", rc
    time.sleep(0.5)    # a delivery would have had its chance
    assert s.messages(BOB) == []
    ternctl(s, "release", qid)
    s.wait_message_with(BOB, "quarantined")


# --------------------------------------------------------------------------
# Milters that fail: the default action, a log line, and ternd serving on


def test_milter_dies_mid_body(fault, milter_ternd):
    f = fault(body="die")
    s = milter_ternd(f.spec)
    c = s.session()
    transaction(c, "died", TEMPFAIL)
    log_has(s, "milter", "failed", "default_action=tempfail")
    c.expect("MAIL FROM:<alice@client.example>", TEMPFAIL)   # still down: still 451
    c.expect("QUIT", BYE)
    c = s.connect()                                          # a new connection: refused
    c.expect("EHLO client.example", EHLO_REPLY)               # at MAIL, not at once
    c.expect("MAIL FROM:<alice@client.example>", TEMPFAIL)
    c.expect("QUIT", BYE)
    assert s.messages(BOB) == []


@pytest.mark.parametrize("action, want", [("accept", QUEUED), ("reject", REJECT)])
def test_default_action_of_a_dead_milter(fault, milter_ternd, action, want):
    f = fault(body="die")
    s = milter_ternd("%s{default_action=%s}" % (f.spec, action))
    c = s.session()
    transaction(c, "default", want)
    log_has(s, "milter", "failed", "default_action=%s" % action)
    c.expect("QUIT", BYE)
    if action == "accept":
        s.wait_message_with(BOB, "default")


def test_nothing_listening(milter_ternd):
    s = milter_ternd("inet:127.0.0.1:%d" % free_port())
    c = s.session()
    c.expect("MAIL FROM:<alice@client.example>", TEMPFAIL)
    log_has(s, "milter", "failed", "Connection refused")
    c.expect("QUIT", BYE)
    s2 = milter_ternd("unix:/nonexistent/milter.sock", milter_default_action="accept")
    c = s2.session()
    transaction(c, "no milter", QUEUED)
    s2.wait_message_with(BOB, "no milter")


def test_hung_milter_times_out_and_blocks_nobody(fault, milter_ternd):
    hung = fault(envrcpt="hang")
    s = milter_ternd("%s{command_timeout=2s}" % hung.spec)
    slow = s.session()
    slow.expect("MAIL FROM:<alice@client.example>", SENDER_OK)
    slow.send("RCPT TO:<%s>" % BOB)
    t0 = time.monotonic()
    hung.plan()                     # the next connections get a prompt milter
    quick = s.session()
    transaction(quick, "meanwhile", QUEUED)    # served while the other waits
    assert time.monotonic() - t0 < 1.9
    slow.expect_reply(TEMPFAIL, after="RCPT with the milter hanging")
    assert time.monotonic() - t0 < DEADLINE
    log_has(s, "milter", "failed", "no reply within 2s")
    slow.expect("QUIT", BYE)


def test_progress_keeps_a_slow_milter_alive(fault, milter_ternd):
    f = fault(eom="progress:3")
    s = milter_ternd("%s{content_timeout=2s}" % f.spec)
    c = s.session()
    c.timeout = DEADLINE
    transaction(c, "patient", QUEUED)
    s.wait_message_with(BOB, "patient")


class RawMilter:
    """A milter written with a socket, for what libmilter never sends:
    it negotiates (optneg: the reply's bytes), answers CONTINUE to each
    command that wants a reply, and at the command `at` sends `bad` (then
    goes on reading, or closes when bad is None)."""

    def __init__(self, at, bad, optneg=b"O" + bytes([0, 0, 0, 6, 0, 0, 1, 0xff, 0, 0, 0, 0])):
        import threading
        self.at, self.bad, self.optneg = at, bad, optneg
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.spec = "inet:127.0.0.1:%d" % self.port
        self.conns = []
        threading.Thread(target=self.serve, daemon=True).start()

    @staticmethod
    def packet(cmd, data=b""):
        return (len(data) + 1).to_bytes(4, "big") + cmd + data

    def serve(self):
        import threading
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)
            threading.Thread(target=self.one, args=(c,), daemon=True).start()

    def one(self, c):
        buf = b""
        try:
            while True:
                while len(buf) < 4 or len(buf) < 4 + int.from_bytes(buf[:4], "big"):
                    chunk = c.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                n = int.from_bytes(buf[:4], "big")
                cmd, buf = buf[4:5], buf[4 + n:]
                if cmd == b"O":
                    c.sendall(self.packet(self.optneg[:1], self.optneg[1:]))
                elif cmd == self.at:
                    if self.bad is None:
                        c.close()
                        return
                    c.sendall(self.bad)
                elif cmd not in (b"D", b"A", b"Q"):
                    c.sendall(self.packet(b"c"))
        except OSError:
            return

    def stop(self):
        self.sock.close()
        for c in self.conns:
            c.close()


@pytest.mark.parametrize("at, bad, stage, why", [
    (b"M", RawMilter.packet(b"Z"), "MAIL", "a malformed reply (command 0x5a)"),
    (b"M", b"\x7f\xff\xff\xffc", "MAIL", "a reply of a bad length"),
    (b"M", RawMilter.packet(b"y", b"250 fine\0"), "MAIL", "a malformed reply"),
    (b"R", RawMilter.packet(b"h", b"X-Early\0yes\0"), "RCPT",
     "a modification before the end of the message"),
    (b"R", RawMilter.packet(b"c") + RawMilter.packet(b"c"), "DATA", "a reply nobody asked for"),
    (b"T", None, "DATA", "the milter closed the connection"),
    (b"E", RawMilter.packet(b"b", b"x\r\n") + RawMilter.packet(b"c"), "dot",
     "a modification it did not negotiate"),
])
def test_protocol_violations(milter_ternd, at, bad, stage, why):
    optneg = b"O" + bytes([0, 0, 0, 6, 0, 0, 0, 1, 0, 0, 0, 0])   # ADDHDRS only
    raw = RawMilter(at, bad, optneg)
    try:
        s = milter_ternd(raw.spec)
        c = s.session()
        steps = [("MAIL", "MAIL FROM:<alice@client.example>", SENDER_OK),
                 ("RCPT", "RCPT TO:<%s>" % BOB, RCPT_OK), ("DATA", "DATA", START_DATA)]
        for name, line, ok in steps:
            if name == stage:
                c.expect(line, TEMPFAIL)
                break
            c.expect(line, ok)
        else:
            c.raw(message("violation") + b".\r\n")
            c.expect_reply(TEMPFAIL, after="the final dot")
        log_has(s, "milter", "result=failed", why, "default_action=tempfail")
        c.expect("RSET", OK)
        c.expect("QUIT", BYE)
        assert s.messages(BOB) == []
    finally:
        raw.stop()


def test_other_protocol_versions_are_refused(milter_ternd):
    raw = RawMilter(b"-", b"", b"O" + bytes([0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0]))
    try:
        s = milter_ternd(raw.spec)
        c = s.session()
        c.expect("MAIL FROM:<alice@client.example>", TEMPFAIL)
        log_has(s, "milter", "result=failed", "a protocol version other than 6")
    finally:
        raw.stop()


def test_pipelined_commands_wait_for_the_milters(fault, milter_ternd):
    f = fault(envrcpt="progress:1")      # RCPT answered after a second
    s = milter_ternd(f.spec)
    c = s.session()
    c.raw(b"MAIL FROM:<alice@client.example>\r\nRCPT TO:<bob@example.com>\r\n"
          b"RCPT TO:<nobody@example.com>\r\nDATA\r\n")
    c.expect_reply(SENDER_OK)
    c.expect_reply(RCPT_OK)
    c.expect_reply("550 5.1.1 User unknown")
    c.expect_reply(START_DATA)
    c.raw(message("pipelined") + b".\r\nQUIT\r\n")
    c.expect_reply(QUEUED)
    c.expect_reply(BYE)
    s.wait_message_with(BOB, "pipelined")


def test_submission_listeners_have_their_own_milters(fault, ternd, users_file):  # noqa: F811
    """milters on port 25, submission_milters on the submission listener
    (a signing milter there, a checking one here); AUTH as a mail client
    does it, the {auth_authen} macro at MAIL."""
    import base64
    check, sign = fault(), fault()
    port, sport = free_port(), free_port()
    s = ternd(milters=check.spec, submission_milters=sign.spec, users_file=str(users_file),
              auth_allow_plaintext="yes", mailboxes=(BOB,),
              listen="127.0.0.1:%d, 127.0.0.1:%d submission" % (port, sport))
    c = s.connect()
    c.expect("EHLO client.example", re.compile(r"250-.*250 HELP", re.S))   # AUTH offered
    transaction(c, "by port 25", QUEUED)
    c.expect("QUIT", BYE)
    from conftest import Client
    c = Client(sport, name="submission client")
    s.clients.append(c)
    c.expect(None, GREETING)
    c.expect("EHLO client.example", re.compile(r"250-.*250 HELP", re.S))
    plain = base64.b64encode(b"\0kate@example.com\0" + PASSWORD.encode()).decode()
    c.expect("AUTH PLAIN " + plain, "235 2.7.0 Authentication successful")
    c.expect("MAIL FROM:<kate@example.com>", SENDER_OK)
    c.expect("RCPT TO:<%s>" % BOB, RCPT_OK)
    c.expect("DATA", START_DATA)
    c.raw(message("by submission", frm="kate@example.com") + b".\r\n")
    c.expect_reply(QUEUED)
    c.expect("QUIT", BYE)
    s.wait_message_with(BOB, "by submission")
    subjects = lambda f: [r["args"][1] for r in f.seen()
                          if r["stage"] == "header" and r["args"][0] == "Subject"]
    assert subjects(check) == ["by port 25"] and subjects(sign) == ["by submission"]
    mail = next(r for r in sign.seen() if r["stage"] == "envfrom")
    assert mail["macros"]["{auth_authen}"] == "kate@example.com", mail


def test_config_errors(ternd, tmp_path):
    from conftest import run_ternd
    for bad in ("tcp:127.0.0.1:1", "inet:127.0.0.1:1{default_action=maybe}",
                "inet:127.0.0.1:1{"):
        rc, out, err = run_ternd(["-n", "-o", "milters=" + bad, "-o",
                                  "spool_dir=%s" % tmp_path, "-o", "hostname=mx.test.example"])
        assert rc != 0 and "milters:" in err, (bad, err)


# --------------------------------------------------------------------------
# Real milters: rspamd and OpenDKIM


RSPAMD_LOCAL = {
    "worker-proxy.inc": 'bind_socket = "127.0.0.1:{port}";\nmilter = yes;\ntimeout = 120s;\n'
                        'upstream "local" {{\n  default = yes;\n  self_scan = yes;\n}}\n'
                        'count = 1;\n',
    "worker-normal.inc": 'enabled = false;\n',
    "worker-controller.inc": 'enabled = false;\n',
    "worker-fuzzy.inc": 'enabled = false;\n',
    "options.inc": 'dns {{\n  nameserver = ["127.0.0.1:{dns}"];\n  timeout = 1s;\n retransmits = 1;\n}}\n'
                   'filters = "";\n',
    "redis.conf": '',
    # the test's client is 127.0.0.1, a local network to rspamd
    "milter_headers.conf": 'use = ["x-spam-status", "x-rspamd-queue-id", "x-spam-level"];\n'
                           'skip_local = false;\nskip_authenticated = false;\n',
    "logging.inc": 'type = "file";\nfilename = "{dir}/rspamd.log";\nlevel = "info";\n',
}


RSPAMD_START = 180.0


@pytest.fixture
def rspamd(tmp_path):
    if not shutil.which("rspamd"):
        pytest.fail("rspamd is not installed (scripts/install-deps test)")
    d = tmp_path / "rspamd"
    local = d / "local.d"
    local.mkdir(parents=True)
    port, dns = free_port(), free_port()
    for name, text in RSPAMD_LOCAL.items():
        (local / name).write_text(text.format(port=port, dns=dns, dir=d))
    for sub in ("db", "run"):
        (d / sub).mkdir()
    make_traversable(d)
    shutil.chown(d, "_rspamd", "_rspamd") if os.geteuid() == 0 else None
    for sub in ("db", "run"):
        if os.geteuid() == 0:
            shutil.chown(d / sub, "_rspamd", "_rspamd")
    argv = ["rspamd", "-f", "-i", "-c", "/etc/rspamd/rspamd.conf",
            "--var=LOCAL_CONFDIR=%s" % d, "--var=DBDIR=%s/db" % d, "--var=RUNDIR=%s/run" % d,
            "--var=LOGDIR=%s" % d]
    if os.geteuid() == 0:
        argv += ["-u", "_rspamd", "-g", "_rspamd"]
    out = open(d / "rspamd.out", "wb")
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                            start_new_session=True)
    try:
        wait_port(port, proc, "rspamd", RSPAMD_START)
    except AssertionError:
        proc.kill()
        raise AssertionError("rspamd did not start:\n%s\n%s" % (
            (d / "rspamd.out").read_text(errors="replace")[-3000:],
            (d / "rspamd.log").read_text(errors="replace")[-3000:]
            if (d / "rspamd.log").exists() else ""))
    proc.port = port
    yield proc
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(DEADLINE)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    out.close()


# rspamd compiles its URL and regexp tables at start: tens of seconds on
# two shared cores.
RSPAMD_START = 180.0
GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"


def test_rspamd_headers_and_gtube_reject(rspamd, milter_ternd):
    s = milter_ternd("inet:127.0.0.1:%d{content_timeout=60s, command_timeout=60s}" % rspamd.port,
                     milter_connect_timeout="20s")
    c = s.session()
    c.timeout = 60
    transaction(c, "clean", QUEUED)
    got = s.wait_message_with(BOB, "clean").decode()
    head = got.split("\n\n", 1)[0]
    assert re.search(r"^X-Spam-Status: No, score=", head, re.M), head
    assert re.search(r"^X-Rspamd-Queue-Id: ", head, re.M), head
    c.expect("MAIL FROM:<alice@client.example>", SENDER_OK)
    c.expect("RCPT TO:<%s>" % BOB, RCPT_OK)
    c.expect("DATA", START_DATA)
    c.raw(crlf("From: alice@client.example", "To: bob@example.com", "Subject: spam",
               "Message-ID: <gtube@client.example>", "", GTUBE, "") + b".\r\n")
    r = c.expect_reply(re.compile(r"554 5\.7\.1 .*"), after="the GTUBE message")
    c.expect("QUIT", BYE)
    log_has(s, "milter", "stage=end of message", "result=reply code")
    assert not any(b"GTUBE" in p.read_bytes() for p in s.messages(BOB)), r


@pytest.fixture
def opendkim(tmp_path):
    from test_dkim import keygen
    d = tmp_path / "opendkim"
    d.mkdir()
    key = keygen(d, "milter")
    port = free_port()
    conf = d / "opendkim.conf"
    conf.write_text("\n".join([
        "Syslog no", "Mode s", "Domain example.com", "Selector milter",
        "KeyFile %s" % key.path, "Socket inet:%d@127.0.0.1" % port,
        "Canonicalization relaxed/simple", "InternalHosts 127.0.0.1",
        "PidFile %s/opendkim.pid" % d, "Background no", "UserID %s" % ("opendkim"
        if os.geteuid() == 0 else os.getuid()), "RequireSafeKeys no", ""]))
    make_traversable(d)
    if os.geteuid() == 0:
        shutil.chown(d, "opendkim")
        shutil.chown(key.path, "opendkim")
    out = open(d / "opendkim.out", "wb")
    proc = subprocess.Popen(["opendkim", "-f", "-x", str(conf)], stdin=subprocess.DEVNULL,
                            stdout=out, stderr=out)
    try:
        wait_port(port, proc, "opendkim")
    except AssertionError:
        raise AssertionError((d / "opendkim.out").read_text(errors="replace"))
    proc.port, proc.key = port, key
    yield proc
    proc.terminate()
    proc.wait(DEADLINE)
    out.close()


def test_opendkim_signs_through_the_milter(opendkim, milter_ternd):
    import dkim
    s = milter_ternd("inet:127.0.0.1:%d" % opendkim.port)
    c = s.session()
    transaction(c, "signed", QUEUED, frm="Alice <alice@example.com>")   # OpenDKIM's Domain
    got = s.wait_message_with(BOB, "signed")
    head, body = got.split(b"\n\n", 1)
    assert re.search(rb"^DKIM-Signature: .*d=example\.com", head, re.M | re.S), head
    # the message as sent on: without the delivery fields (Return-Path,
    # Delivered-To), CRLF line ends
    lines = got.split(b"\n")
    msg = b"\r\n".join(lines[2:])
    k = opendkim.key
    table = {k.name.encode(): k.record.encode()}
    assert dkim.verify(msg, dnsfunc=lambda name, timeout=5: table.get(name)), msg[:1500]
    log_has(s, "milter", "header edited")


# --------------------------------------------------------------------------
# BDAT (RFC 3030): the milters see a chunked message as a DATA one


def test_bdat_message_reaches_the_milter(fault, milter_ternd):
    f = fault()
    s = milter_ternd(f.spec)
    c = s.session()
    msg = message("chunks")
    c.raw(b"MAIL FROM:<alice@client.example>\r\nRCPT TO:<%s>\r\n" % BOB.encode() +
          b"BDAT 50\r\n" + msg[:50] + b"BDAT %d LAST\r\n" % (len(msg) - 50) + msg[50:])
    c.expect_reply(SENDER_OK)
    c.expect_reply(RCPT_OK)
    c.expect_reply("250 2.0.0 50 octets received")
    c.expect_reply(QUEUED)
    s.wait_message_with(BOB, "chunks")
    wait_for("the body", lambda: [r for r in f.seen() if r["stage"] == "body"])
    body = [r for r in f.seen() if r["stage"] == "body"][0]
    assert body["args"][1] == "Hello Bob,\r\nthis is chunks.\r\n\r\n"
    assert [r["args"] for r in f.seen() if r["stage"] == "header"][2] == ["Subject", "chunks"]


def test_bdat_refused_by_the_milter_at_data_keeps_in_step(fault, milter_ternd):
    """The milter refuses the message at its first chunk: the refusal,
    the chunk's octets read and dropped, later chunks 503, no mail."""
    f = fault(data="reject")
    s = milter_ternd(f.spec)
    c = s.session()
    c.expect("MAIL FROM:<alice@client.example>", SENDER_OK)
    c.expect("RCPT TO:<%s>" % BOB, RCPT_OK)
    c.raw(b"BDAT 6\r\nQUIT\r\nBDAT 6 LAST\r\nQUIT\r\nNOOP\r\n")
    c.expect_reply(REJECT)
    c.expect_reply("503 5.5.1 Need MAIL before BDAT")
    c.expect_reply(OK)
    assert s.messages(BOB) == []
