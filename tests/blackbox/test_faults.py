"""The test mode's fault rules (fault_rules, issue 18): each action seen
from real clients (smtplib, swaks, Python's ssl, another ternd as the
sending MTA), the conditions that scope a rule (tag=, nth=, odds=,
header=), the log line naming the rule's FILE:LINE, and a bad file refused
at start and at reload with nothing changed."""

import os
import re
import smtplib
import socket
import ssl
import subprocess
import time

import pytest

from conftest import (DEADLINE, START_DATA, RCPT_OK, SENDER_OK, crlf, run_ternd,
                      wait_for)
from peers import free_port_on
from secfix import PASSWORD, cert, client_context, users_file  # noqa: F401  (fixtures)
from test_ternctl import ctl

MSG = "Subject: fault test\r\n\r\nbody\r\n"


def rules_file(tmp_path, text, name="faults.rules"):
    """A rule file run_user can read (a reload reads it as run_user)."""
    p = tmp_path / name
    p.write_text(text)
    os.chmod(p, 0o644)
    return p


def start(ternd, tmp_path, text, **opts):
    """A ternd that relays for loopback, with these rules."""
    conf = dict(relay_networks="127.0.0.0/8", fault_rules=str(rules_file(tmp_path, text)))
    conf.update(opts)
    return ternd(**conf)


def fired(server, line, action, timeout=DEADLINE):
    """Wait for the log line of the rule at line of the file firing."""
    want = re.compile(r"fault: client=\[127\.0\.0\.1\], rule=\S+faults\.rules:%d, "
                      r"stage=\w+, action=%s\b" % (line, re.escape(action)))
    return wait_for("rule %d (%s) logged" % (line, action),
                    lambda: want.search(server.log()), timeout=timeout)


def smtp(server):
    return smtplib.SMTP("127.0.0.1", server.port, timeout=DEADLINE)


# ---- reply, disconnect, close ----

def test_reply_at_rcpt_with_smtplib_and_swaks(ternd, tmp_path):
    s = start(ternd, tmp_path, "# a comment\n\nrcpt *@full.test reply 452 4.2.2 Mailbox full\n")
    with smtp(s) as c:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as e:
            c.sendmail("a@example.net", ["x@FULL.test"], MSG)
        assert e.value.recipients == {"x@FULL.test": (452, b"4.2.2 Mailbox full")}
        assert c.sendmail("a@example.net", ["x@other.test"], MSG) == {}, "other domains pass"
    fired(s, 3, "reply")
    p = subprocess.run(["swaks", "--to", "x@full.test", "--from", "a@example.net", "--server",
                        "127.0.0.1", "--port", str(s.port)],
                       capture_output=True, text=True, timeout=DEADLINE)
    assert "<** 452 4.2.2 Mailbox full" in p.stdout, p.stdout + p.stderr
    assert p.returncode != 0


def test_reply_at_connect_refuses_the_greeting(ternd, tmp_path):
    s = start(ternd, tmp_path, "connect reply 554 5.7.1 No service for you\n")
    with pytest.raises(smtplib.SMTPConnectError) as e:
        smtplib.SMTP("127.0.0.1", s.port, timeout=DEADLINE)
    assert e.value.smtp_code == 554 and e.value.smtp_error == b"5.7.1 No service for you"
    fired(s, 1, "reply")


def test_reply_text_keeps_equals_signs_and_conditions_after_dashes(ternd, tmp_path):
    s = start(ternd, tmp_path, "mail reply 550 5.7.1 policy=strict a=b -- from=*@bad.test\n")
    with smtp(s) as c:
        with pytest.raises(smtplib.SMTPSenderRefused) as e:
            c.sendmail("x@bad.test", ["y@example.net"], MSG)
        assert (e.value.smtp_code, e.value.smtp_error) == (550, b"5.7.1 policy=strict a=b")
        assert c.sendmail("x@good.test", ["y@example.net"], MSG) == {}


def test_disconnect_and_close(ternd, tmp_path):
    s = start(ternd, tmp_path, "mail *@gone.test disconnect\nmail *@drop.test close\n")
    c = s.connect()
    c.expect("EHLO client.example", "250-...")
    c.expect("MAIL FROM:<a@gone.test>", "421 4.4.2 mx.test.example closing connection")
    c.wait_closed()
    fired(s, 1, "disconnect")
    with smtp(s) as c:
        with pytest.raises(smtplib.SMTPServerDisconnected):
            c.sendmail("a@drop.test", ["y@example.net"], MSG)
    fired(s, 2, "close")
    p = subprocess.run(["swaks", "--from", "a@gone.test", "--to", "y@example.net", "--server",
                        "127.0.0.1", "--port", str(s.port)],
                       capture_output=True, text=True, timeout=DEADLINE)
    assert "<** 421 4.4.2 mx.test.example closing connection" in p.stdout, p.stdout + p.stderr


# ---- delay, throttle ----

def test_delay_answers_after_the_wait(ternd, tmp_path):
    s = start(ternd, tmp_path, "data *@slow.test delay 1s\n")
    with smtp(s) as c:
        c.ehlo()
        c.mail("a@example.net")
        c.rcpt("x@slow.test")
        t0 = time.monotonic()
        code, _ = c.docmd("DATA")
        waited = time.monotonic() - t0
        assert code == 354
        assert waited >= 0.9, "the answer came before the rule's delay"
        fired(s, 1, "delay")
        c.send(b"hello\r\n.\r\n")
        assert c.getreply()[0] == 250


def test_delay_at_eom_then_queued(ternd, tmp_path):
    s = start(ternd, tmp_path, "eom delay 300ms\n", mailboxes=("b@example.com",))
    with smtp(s) as c:
        t0 = time.monotonic()
        assert c.sendmail("a@example.net", ["b@example.com"], "Subject: x\r\n\r\neom-delay\r\n") == {}
        assert time.monotonic() - t0 >= 0.25
    fired(s, 1, "delay")
    s.wait_message_with("b@example.com", "eom-delay")


def test_delay_at_connect_keeps_the_greeting(ternd, tmp_path):
    s = start(ternd, tmp_path, "connect delay 500ms jitter 100ms\n")
    t0 = time.monotonic()
    with smtp(s) as c:
        assert time.monotonic() - t0 >= 0.45
        assert c.noop()[0] == 250
    fired(s, 1, "delay")


def test_throttle_paces_the_replies(ternd, tmp_path):
    s = start(ternd, tmp_path, "connect throttle 40/s\n")
    t0 = time.monotonic()
    c = s.connect()   # the greeting: 36 octets at 4 a tick of 100 ms
    assert time.monotonic() - t0 >= 0.5
    c.expect("EHLO client.example", "250-...")
    c.expect("QUIT", "221 ...")
    fired(s, 1, "throttle")


def test_throttle_then_starttls(ternd, tmp_path, cert):  # noqa: F811
    """The throttled socket under TLS: the session works to its end and
    its memory goes cleanly (the fixture fails a sanitizer report)."""
    crt, key = cert
    s = start(ternd, tmp_path, "helo throttle 2k/s\n", tls_cert=str(crt), tls_key=str(key))
    with smtp(s) as c:
        c.ehlo()
        assert c.starttls(context=client_context())[0] == 220
        c.ehlo()
        assert c.sendmail("a@example.net", ["b@example.net"], MSG) == {}
    fired(s, 1, "throttle")
    assert s.stop() == []


# ---- abort ----

def test_abort_refuses_a_long_message_and_the_session_goes_on(ternd, tmp_path):
    s = start(ternd, tmp_path, "data abort after 1k\n", mailboxes=("b@example.com",))
    c = s.connect()
    c.expect("EHLO client.example", "250-...")
    c.expect("MAIL FROM:<a@example.net>", SENDER_OK)
    c.expect("RCPT TO:<b@example.com>", RCPT_OK)
    c.expect("DATA", START_DATA)
    c.raw(crlf("Subject: big", "", *(["x" * 100] * 30)) + b".\r\n")
    c.expect_reply("451 4.3.0 Local error in processing; try again later", after="the final dot")
    fired(s, 1, "abort")
    assert "action=abort, result=message of " in s.log()
    # the next transaction of the same session: short enough, taken
    c.send_mail("a@example.net", ["b@example.com"], crlf("Subject: small", "", "small-body"))
    s.wait_message_with("b@example.com", "small-body")
    assert len(s.messages("b@example.com")) == 1, "the aborted message was kept"


def test_abort_with_a_reply_of_its_own_over_bdat(ternd, tmp_path):
    s = start(ternd, tmp_path, "data abort 10 552 5.3.4 Too much for the test\n")
    c = s.connect()
    c.expect("EHLO client.example", "250-...")
    c.expect("MAIL FROM:<a@example.net>", SENDER_OK)
    c.expect("RCPT TO:<b@example.net>", RCPT_OK)
    body = crlf("Subject: bdat", "", "more than ten octets")
    c.raw(b"BDAT %d LAST\r\n" % len(body) + body)
    c.expect_reply("552 5.3.4 Too much for the test", after="BDAT LAST")
    c.expect("NOOP", "250 ...")


# ---- greylist: a real ternd retries ----

def test_greylist_retried_by_a_real_ternd(ternd, tmp_path):
    port = free_port_on("127.0.0.2")
    b = ternd(tmp=tmp_path / "b", listen="127.0.0.2:%d" % port, hostname="b.example",
              local_domains="dest.example",
              fault_rules=str(rules_file(tmp_path, "rcpt * greylist 1s\n")))
    b.make_maildir("bob@dest.example")
    a = ternd(tmp=tmp_path / "a", relay_networks="127.0.0.0/8",
              relayhost="127.0.0.2:%d" % port, retry_min="1s", retry_max="1s",
              mailboxes=("kate@example.com",))
    c = a.session()
    c.send_mail("kate@example.com", ["bob@dest.example"],
                crlf("Subject: greylisted", "", "greylist-body"))
    b.wait_message_with("bob@dest.example", "greylist-body")
    log = b.log()
    assert re.search(r"rule=\S+faults\.rules:1, stage=rcpt, action=greylist, "
                     r"to=<bob@dest\.example>, result=451 4\.7\.1 greylisted", log), log
    assert "action=greylist, to=<bob@dest.example>, result=passed" in log
    assert "451 4.7.1 Greylisted, try again later" in a.log(), "A saw the 451"


def test_greylist_first_try_refused_then_taken(ternd, tmp_path):
    s = start(ternd, tmp_path, "rcpt *@grey.test greylist 0s\n")
    with smtp(s) as c:
        c.ehlo()
        c.mail("a@example.net")
        assert c.rcpt("x@grey.test") == (451, b"4.7.1 Greylisted, try again later")
        assert c.rcpt("x@grey.test")[0] == 250, "retried after the (zero) wait"
        assert c.rcpt("y@grey.test")[0] == 451, "another triple"


# ---- bounce: a real report ----

def test_bounce_accepts_then_returns_a_report(ternd, tmp_path):
    s = start(ternd, tmp_path, "rcpt *@bounce.test bounce 550 5.1.1 No such user here\n",
              mailboxes=("kate@example.com",))
    with smtp(s) as c:
        assert c.sendmail("kate@example.com", ["x@bounce.test"], MSG) == {}, "accepted: 250"
    fired(s, 1, "bounce")
    got = s.wait_message_with("kate@example.com", "Undelivered Mail Returned to Sender")
    text = got.decode("utf-8", "replace")
    assert "Content-Type: message/delivery-status" in text, text
    assert "Final-Recipient: rfc822; x@bounce.test" in text, text
    assert "Action: failed" in text and "Status: 5.1.1" in text, text
    assert "Diagnostic-Code: smtp; 550 5.1.1 No such user here" in text, text


# ---- conditions ----

def test_tag_scopes_a_rule_to_one_test(ternd, tmp_path):
    s = start(ternd, tmp_path, "rcpt reply 550 5.7.1 tagged for t1 -- tag=t1\n")
    with smtp(s) as c:
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            c.sendmail("a@example.net", ["user+t1@x.test"], MSG)
        assert c.sendmail("a@example.net", ["user+t2@x.test"], MSG) == {}
        assert c.sendmail("a@example.net", ["user@x.test"], MSG) == {}
    fired(s, 1, "reply")
    assert s.log().count("action=reply") == 1


def test_nth_fires_once(ternd, tmp_path):
    s = start(ternd, tmp_path, "rcpt reply 451 4.3.0 second one -- nth=2\n")
    with smtp(s) as c:
        c.ehlo()
        c.mail("a@example.net")
        got = [c.rcpt("r%d@x.test" % i)[0] for i in range(4)]
    assert got == [250, 451, 250, 250]


def test_odds_one_always_zero_never(ternd, tmp_path):
    s = start(ternd, tmp_path, "rcpt *@never.test reply 550 5.0.0 never -- odds=0\n"
                               "rcpt *@always.test reply 550 5.0.0 always -- odds=1\n")
    with smtp(s) as c:
        c.ehlo()
        c.mail("a@example.net")
        for _ in range(5):
            assert c.rcpt("x@never.test")[0] == 250
            assert c.rcpt("x@always.test") == (550, b"5.0.0 always")


def test_header_at_eom(ternd, tmp_path):
    s = start(ternd, tmp_path, 'eom reply 554 5.7.1 Looks like a test -- '
                               'header="Subject: *please fail*"\n')
    with smtp(s) as c:
        with pytest.raises(smtplib.SMTPDataError) as e:
            c.sendmail("a@example.net", ["b@x.test"],
                       "Subject: Please\r\n FAIL this\r\n\r\nbody\r\n")
        assert (e.value.smtp_code, e.value.smtp_error) == (554, b"5.7.1 Looks like a test")
        assert c.sendmail("a@example.net", ["b@x.test"], "Subject: fine\r\n\r\nbody\r\n") == {}
    fired(s, 1, "reply")


def test_every_rate_and_any(ternd, tmp_path):
    s = start(ternd, tmp_path, "helo reply 421 4.7.0 too fast -- rate>2/min\n"
                               "any *@every.test reply 451 4.3.0 every second -- every=2\n")
    with smtp(s) as c:
        c.ehlo()
        c.mail("a@example.net")
        got = [c.rcpt("x%d@every.test" % i)[0] for i in range(4)]
        assert got == [250, 451, 250, 451], "every=2, at rcpt through any"
    with smtp(s) as c:   # the second EHLO within the minute
        assert c.ehlo()[0] == 250
    with smtp(s) as c:   # the third
        assert c.ehlo() == (421, b"4.7.0 too fast")
    fired(s, 1, "reply")


def test_ip_and_listener_conditions(ternd, tmp_path):
    s = start(ternd, tmp_path, "")
    # the listener's port is known once started: the rules come by a reload
    rules_file(tmp_path, "mail reply 550 5.7.1 other listener -- listener=127.0.0.1:1\n"
                         "mail reply 550 5.7.1 other network -- ip=192.0.2.0/24\n"
                         "mail reply 451 4.7.1 this one -- ip=127.0.0.0/8 listener=127.0.0.1:%d\n"
                         % s.port)
    ctl(s, "reload")
    with smtp(s) as c:
        with pytest.raises(smtplib.SMTPSenderRefused) as e:
            c.sendmail("a@example.net", ["b@example.net"], MSG)
        assert (e.value.smtp_code, e.value.smtp_error) == (451, b"4.7.1 this one")
    fired(s, 3, "reply")


def test_auth_stage_with_user(ternd, tmp_path, users_file):  # noqa: F811
    s = start(ternd, tmp_path, "auth reply 454 4.7.0 Try later -- user=kate@*\n",
              users_file=str(users_file), auth_allow_plaintext="yes")
    with smtp(s) as c:
        c.ehlo()
        with pytest.raises(smtplib.SMTPAuthenticationError) as e:
            c.login("kate@example.com", PASSWORD)
        assert e.value.smtp_code == 454
    fired(s, 1, "reply")


def test_delays_end_with_the_session_or_the_daemon(ternd, tmp_path):
    """A client that leaves during a delay, and a daemon stopped during
    one: the timer goes with the session (the fixture fails a sanitizer
    report or an exit code other than 0)."""
    s = start(ternd, tmp_path, "rcpt delay 30s\n")
    c = s.connect()
    c.expect("EHLO client.example", "250-...")
    c.expect("MAIL FROM:<a@example.net>", SENDER_OK)
    c.send("RCPT TO:<b@example.net>")
    fired(s, 1, "delay")
    c.close()
    wait_for("the session closed", lambda: "reason=client closed" in s.log())
    d = s.connect()
    d.expect("EHLO client.example", "250-...")
    d.expect("MAIL FROM:<a@example.net>", SENDER_OK)
    d.send("RCPT TO:<b@example.net>")
    wait_for("the second delay", lambda: s.log().count("action=delay") == 2)
    problems = s.stop()
    assert problems == [], "\n".join(problems)


def test_delay_at_starttls_then_tls(ternd, tmp_path, cert):  # noqa: F811
    crt, key = cert
    s = start(ternd, tmp_path, "starttls delay 300ms\n", tls_cert=str(crt), tls_key=str(key))
    with smtp(s) as c:
        c.ehlo()
        t0 = time.monotonic()
        assert c.starttls(context=client_context())[0] == 220
        assert time.monotonic() - t0 >= 0.25
        c.ehlo()
        assert c.sendmail("a@example.net", ["b@example.net"], MSG) == {}
    fired(s, 1, "delay")


# ---- TLS ----

def test_no_starttls(ternd, tmp_path, cert):  # noqa: F811
    crt, key = cert
    s = start(ternd, tmp_path, "helo no-starttls\n", tls_cert=str(crt), tls_key=str(key))
    with smtp(s) as c:
        c.ehlo()
        assert not c.has_extn("starttls"), "STARTTLS offered"
        assert c.docmd("STARTTLS") == (502, b"5.5.1 STARTTLS not offered by this server")
    fired(s, 1, "no-starttls")


def test_tls_fail_breaks_the_handshake(ternd, tmp_path, cert):  # noqa: F811
    crt, key = cert
    s = start(ternd, tmp_path, "starttls tls-fail\n", tls_cert=str(crt), tls_key=str(key))
    with smtp(s) as c:
        c.ehlo()
        assert c.has_extn("starttls")
        with pytest.raises((ssl.SSLError, ConnectionError, smtplib.SMTPServerDisconnected)):
            c.starttls(context=client_context())
    fired(s, 1, "tls-fail")
    p = subprocess.run(["openssl", "s_client", "-starttls", "smtp", "-connect",
                        "127.0.0.1:%d" % s.port], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=DEADLINE)
    assert p.returncode != 0 and "BEGIN CERTIFICATE" not in p.stdout


def test_transcript_notes_the_rule(ternd, tmp_path):
    """With transcripts, the session's record says which rule gave a reply."""
    import json
    s = start(ternd, tmp_path, "rcpt *@full.test reply 452 4.2.2 Mailbox full\n",
              transcripts="yes")
    with smtp(s) as c:
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            c.sendmail("a@example.net", ["x@full.test"], MSG)

    def recorded():
        o = json.loads(ctl(s, "transcript", json_out=True).stdout)
        ended = [x for x in o["sessions"] if x.get("ended")]
        if not ended:
            return None
        whole = json.loads(ctl(s, "transcript", str(ended[0]["id"]), json_out=True).stdout)
        return [(line["dir"], line["text"]) for line in whole["lines"]]
    lines = wait_for("the session's transcript", recorded)
    note = [t for d, t in lines if d == "note" and t.startswith("fault rule ")]
    assert note and re.fullmatch(r"fault rule \S+faults\.rules:1 fired: reply at rcpt: "
                                 r"452 4\.2\.2 Mailbox full", note[0]), lines
    assert ("out", "452 4.2.2 Mailbox full") in lines, lines


# ---- the file: refused when bad, at start and at reload ----

def test_bad_file_refused_at_start_naming_the_line(tmp_path):
    f = rules_file(tmp_path, "rcpt *@a.test reply 452 4.2.2 ok\nrcpt *@b.test explode\n")
    rc, out, err = run_ternd(["-n", "-o", "fault_rules=%s" % f, "-o", "hostname=mx.test.example"])
    assert rc != 0
    assert "%s:2: expected an action" % f in err, err


def test_reload_rereads_the_rules_and_a_bad_file_changes_nothing(ternd, tmp_path):
    s = start(ternd, tmp_path, "rcpt *@a.test reply 550 5.0.0 rule one\n")
    with smtp(s) as c:
        c.ehlo()
        c.mail("a@example.net")
        assert c.rcpt("x@a.test")[0] == 550
        assert c.rcpt("x@b.test")[0] == 250
    rules_file(tmp_path, "rcpt *@b.test reply 551 5.0.0 rule two\n")
    ctl(s, "reload")
    with smtp(s) as c:
        c.ehlo()
        c.mail("a@example.net")
        assert c.rcpt("x@a.test")[0] == 250
        assert c.rcpt("x@b.test") == (551, b"5.0.0 rule two")
    rules_file(tmp_path, "rcpt *@c.test reply 552 5.0.0 rule three\nrcpt reply 99 bad\n")
    p = ctl(s, "reload", check=False)
    assert p.returncode != 0
    assert "faults.rules:2: reply: expected a reply code from 400 to 599" in p.stderr, p.stderr
    with smtp(s) as c:
        c.ehlo()
        c.mail("a@example.net")
        assert c.rcpt("x@b.test")[0] == 551, "the rules in force stay"
        assert c.rcpt("x@c.test")[0] == 250


def test_no_rules_no_change(server):
    """Without fault_rules a session is what it always was."""
    with smtp(server) as c:
        c.ehlo()
        assert c.has_extn("pipelining")
        assert c.sendmail("a@example.net", ["postmaster@example.com"], MSG) == {}
    assert "fault:" not in server.log()
