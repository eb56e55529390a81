"""The backup MX spool, as the seeds' "Autoturn": hold_domains keep mail
until its server asks for it with ETRN (RFC 1985), ATRN (RFC 2645) or
the dequeue trigger, or an operator releases it.

The customer's server is a real smtp-sink on loopback named by
transport_map; clients are raw sockets (the seeds' telnet), Python's
smtplib and Debian's fetchmail. Every wait polls against a deadline.
"""

import os
import re
import subprocess
import time

import pytest

from conftest import DEADLINE, crlf, free_port, wait_for
from peers import SmtpSink, free_port_on, parse_bytes, report_parts
from secfix import PASSWORD, cert  # noqa: F401 (fixtures)
from test_cram import cram, cram_users  # noqa: F401 (fixtures)
from test_ternctl import ctl, queue_json

HELD = "held.test"


def message(subject, body="hello"):
    return crlf("From: <a@example.com>", "To: <x@held.test>", "Subject: " + subject, "", body)


def send(server, sender, rcpts, subject="test", c=None):
    own = c is None
    if own:
        c = server.connect()
        assert c.cmd("EHLO client.example").code == 250
    qid = c.send_mail(sender, rcpts, message(subject))
    if own:
        c.expect("QUIT", "221 ...")
        c.close()
    return qid


def offers(reply, ext):
    return any(line[4:].split(" ")[0] == ext for line in reply.lines[1:])


def sink_subjects(sink):
    out = []
    for p in sink.messages():
        m = re.search(rb"^Subject: (.*?)\r?$", p.read_bytes(), re.M)
        if m:
            out.append(m.group(1).decode())
    return sorted(out)


def held_rcpts(server):
    """address -> queue_name of every recipient queued."""
    out = {}
    for m in queue_json(server):
        for r in m["recipients"]:
            out[r["address"]] = m["queue_name"]
    return out


@pytest.fixture
def backup(ternd, tmp_path):
    """A ternd holding held.test (and its subdomains) for a customer whose
    server (an smtp-sink) is the transport_map entry; ETRN allowed from
    127.0.0.1 only, as etrn_networks says."""
    sink_port = free_port_on("127.0.0.1")
    sink = SmtpSink(tmp_path, "127.0.0.1", sink_port)
    tmap = tmp_path / "transport"
    tmap.write_text("%s 127.0.0.1:%d\nsub.%s 127.0.0.1:%d\nother.test 127.0.0.1:%d\n"
                    % (HELD, sink_port, HELD, sink_port, sink_port))
    s = ternd(transport_map=str(tmap), hold_domains=HELD, etrn_networks="127.0.0.1/32",
              relay_networks="127.0.0.0/8", mailboxes=("alice@example.com",))
    s.sink = sink
    s.sink_port = sink_port
    s.tmap = tmap
    yield s
    sink.stop()
    s.sink.stop()   # a test may have put a new one in its place


def wait_held(server, addrs):
    return wait_for("%s held" % ", ".join(addrs),
                    lambda: all(held_rcpts(server).get(a) == "hold" for a in addrs))


# --------------------------------------------------------------------------
# hold_domains


def test_held_mail_waits_and_etrn_delivers_it(backup):
    s = backup
    a = send(s, "alice@example.com", ["u1@held.test"], subject="first")
    send(s, "alice@example.com", ["u2@held.test", "u3@other.test"], subject="second")
    wait_held(s, ["u1@held.test", "u2@held.test"])
    # mail for other domains is not held
    wait_for("other.test delivered", lambda: sink_subjects(s.sink) == ["second"])
    time.sleep(0.5)
    assert sink_subjects(s.sink) == ["second"], "held mail was delivered before ETRN"
    c = s.connect()
    r = c.cmd("EHLO customer.held.test")
    assert r.code == 250 and offers(r, "ETRN"), r.lines
    r = c.cmd("ETRN held.test")
    assert r.code == 253 and re.match(r"253 2\.0\.0 OK, 2 pending messages for node held\.test "
                                      r"started", r.text), r.lines
    wait_for("both held messages at the customer",
             lambda: sink_subjects(s.sink) == ["first", "second", "second"])
    wait_for("the queue empty", lambda: queue_json(s) == [])
    r = c.cmd("ETRN held.test")
    assert r.code == 251 and "2.0.0 OK, no messages waiting for node held.test" in r.text
    c.expect("QUIT", "221 ...")
    assert re.search(r"release: .*domain=held\.test, released=2", s.log()), s.log()
    assert a


def test_etrn_replies(backup):
    s = backup
    c = s.connect()
    assert c.cmd("EHLO client.example").code == 250
    r = c.cmd("ETRN")
    assert r.code == 501 and "5.5.4" in r.text
    r = c.cmd("ETRN #queue1")
    assert r.code == 459 and "Node #queue1 not allowed" in r.text
    r = c.cmd("ETRN elsewhere.test")
    assert r.code == 459 and "4.7.1 Node elsewhere.test not allowed: no mail is held here" in r.text
    r = c.cmd("ETRN not_a..domain")
    assert r.code == 501
    assert c.cmd("MAIL FROM:<alice@example.com>").code == 250
    r = c.cmd("ETRN held.test")
    assert r.code == 503 and "5.5.1" in r.text
    assert c.cmd("RSET").code == 250
    r = c.cmd("ETRN @held.test")
    assert r.code == 251 and "node @held.test" in r.text
    c.expect("QUIT", "221 ...")


def test_etrn_at_domain_takes_subdomains(backup):
    s = backup
    send(s, "alice@example.com", ["u@sub.held.test"], subject="to the subdomain")
    wait_held(s, ["u@sub.held.test"])
    c = s.connect()
    assert c.cmd("EHLO client.example").code == 250
    assert c.cmd("ETRN held.test").code == 251   # the domain alone: nothing for it
    r = c.cmd("ETRN @held.test")
    assert r.code == 253 and "1 pending messages for node @held.test" in r.text, r.lines
    wait_for("the subdomain's mail delivered",
             lambda: sink_subjects(s.sink) == ["to the subdomain"])
    c.expect("QUIT", "221 ...")


def test_etrn_refused_outside_etrn_networks(ternd, tmp_path):
    s = ternd(hold_domains=HELD, etrn_networks="192.0.2.0/24")
    c = s.connect()
    r = c.cmd("EHLO client.example")
    assert r.code == 250 and not offers(r, "ETRN")
    r = c.cmd("ETRN held.test")
    assert r.code == 459 and "not allowed" in r.text and "etrn_networks" in r.text
    c.expect("QUIT", "221 ...")


def test_etrn_not_offered_without_hold_domains(server):
    c = server.connect()
    r = c.cmd("EHLO client.example")
    assert not offers(r, "ETRN")
    r = c.cmd("ETRN example.org")
    assert r.code == 502
    c.expect("QUIT", "221 ...")


def test_deferred_after_release_is_held_again(backup):
    """The customer's server is down when ETRN comes: the mail waits for
    the next release instead of being retried on a schedule."""
    s = backup
    s.sink.stop()
    send(s, "alice@example.com", ["u1@held.test"], subject="while down")
    wait_held(s, ["u1@held.test"])
    c = s.connect()
    assert c.cmd("EHLO client.example").code == 250
    assert c.cmd("ETRN held.test").code == 253
    wait_for("the attempt made and the recipient held again",
             lambda: [m for m in queue_json(s) if m["queue_name"] == "hold"
                      and m["recipients"][0]["attempts"]])
    assert "deferred, held again" in s.log()
    # the sink is back: the next ETRN delivers
    s.sink = SmtpSink(s.tmp, "127.0.0.1", s.sink_port)
    r = c.cmd("ETRN held.test")
    assert r.code == 253, r.lines
    wait_for("delivered after the second ETRN", lambda: sink_subjects(s.sink) == ["while down"])
    c.expect("QUIT", "221 ...")


def test_ternctl_release_of_a_hold_domain(backup):
    s = backup
    send(s, "alice@example.com", ["u1@held.test"], subject="by the operator")
    wait_held(s, ["u1@held.test"])
    p = ctl(s, "release", HELD)
    assert "1" in p.stdout, p.stdout
    wait_for("released by ternctl", lambda: sink_subjects(s.sink) == ["by the operator"])
    # the domain stays held for later mail
    send(s, "alice@example.com", ["u2@held.test"], subject="later")
    wait_held(s, ["u2@held.test"])


def test_hold_recipients_file_refuses_unknown_at_rcpt(ternd, tmp_path):
    lst = tmp_path / "held-rcpts"
    lst.write_text("# the customer's users\nkate@held.test\n@open.test\n")
    s = ternd(hold_domains="held.test, open.test, free.test", hold_recipients_file=str(lst))
    c = s.connect()
    assert c.cmd("EHLO client.example").code == 250
    assert c.cmd("MAIL FROM:<a@example.com>").code == 250
    assert c.cmd("RCPT TO:<kate@held.test>").code == 250
    r = c.cmd("RCPT TO:<nobody@held.test>")
    assert r.code == 550 and "5.1.1" in r.text
    assert c.cmd("RCPT TO:<anyone@open.test>").code == 250
    assert c.cmd("RCPT TO:<anyone@free.test>").code == 250   # no list: anyone
    r = c.cmd("RCPT TO:<x@elsewhere.test>")
    assert r.code == 550 and "5.7.1" in r.text   # not held, not relayed
    c.expect("QUIT", "221 ...")


def test_held_mail_ages_delay_report_then_bounce(ternd, tmp_path):
    """Nobody asks: a delay report after delay_warning (NOTIFY=DELAY), a
    bounce with a delivery-status report after hold_lifetime."""
    s = ternd(hold_domains=HELD, hold_lifetime="4s", delay_warning="1s",
              mailboxes=("alice@example.com",))
    c = s.connect()
    assert c.cmd("EHLO client.example").code == 250
    assert c.cmd("MAIL FROM:<alice@example.com>").code == 250
    assert c.cmd("RCPT TO:<late@held.test> NOTIFY=DELAY,FAILURE").code == 250
    assert c.cmd("DATA").code == 354
    c.raw(message("never asked for") + b".\r\n")
    assert c.expect_reply("250 ...").code == 250
    c.expect("QUIT", "221 ...")
    msgs = s.wait_messages("alice@example.com", 2)
    kinds = []
    for data in msgs:
        human, _, rcpts, _ = report_parts(parse_bytes(data))
        assert rcpts[0]["Final-Recipient"] == "rfc822; late@held.test"
        kinds.append((rcpts[0]["Action"], rcpts[0]["Status"]))
    assert sorted(kinds) == [("delayed", "4.4.0"), ("failed", "4.4.7")], kinds
    wait_for("the queue empty", lambda: queue_json(s) == [])
    assert "hold_lifetime" in s.log()


# --------------------------------------------------------------------------
# ATRN (RFC 2645) and the customers' own client, fetchmail

FETCHMAIL = "/usr/bin/fetchmail"


@pytest.fixture
def odmr(ternd, cert, cram_users, tmp_path):
    """A ternd holding held.test and held2.test; kate may dequeue held.test
    (ODMR on an implicit-TLS odmr listener, ETRN on the SMTP one); the
    customer's own server is an smtp-sink that fetchmail relays to."""
    s = odmr_ternd(ternd, cert, cram_users, tmp_path)
    yield s
    s.local.stop()


def odmr_ternd(ternd, cert, cram_users, tmp_path, **extra):
    crt, key = cert
    omap = tmp_path / "odmr_map"
    omap.write_text("held.test kate@example.com\nheld2.test dana@example.com\n")
    port, odmr_port = free_port(), free_port()
    local_port = free_port_on("127.0.0.1")
    local = SmtpSink(tmp_path, "127.0.0.1", local_port)
    tmap = tmp_path / "transport"
    tmap.write_text("held.test 127.0.0.1:%d\n" % local_port)
    s = ternd(tls_cert=str(crt), tls_key=str(key), users_file=str(cram_users),
              odmr_map=str(omap), hold_domains="held.test, held2.test",
              etrn_networks="127.0.0.1/32", mailboxes=("alice@example.com",),
              transport_map=str(tmap),
              listen="127.0.0.1:%d, 127.0.0.1:%d odmr smtps" % (port, odmr_port), **extra)
    s.odmr_port = odmr_port
    s.crt = crt
    s.local, s.local_port = local, local_port
    return s


def fetchmail(tmp_path, line, name="fetchmailrc"):
    rc = tmp_path / name
    rc.write_text(line + "\n")
    os.chmod(rc, 0o600)
    # --pidfile: as root fetchmail locks /var/run/fetchmail.pid, shared
    # with every other fetchmail on the machine (make test runs two suites)
    p = subprocess.run([FETCHMAIL, "-f", str(rc), "-v", "--nosyslog", "-N",
                        "--pidfile", str(tmp_path / "fetchmail.pid")],
                       capture_output=True, text=True, timeout=DEADLINE * 3,
                       env=dict(os.environ, HOME=str(tmp_path), FETCHMAILHOME=str(tmp_path)))
    return p


def test_fetchmail_odmr_over_tls_with_cram_md5(odmr, tmp_path):
    """fetchmail's ODMR client: TLS, AUTH CRAM-MD5, ATRN, and the reversed
    session relayed into the customer's server; held2.test (not kate's)
    stays held."""
    s = odmr
    send(s, "alice@example.com", ["u1@held.test"], subject="odmr one")
    send(s, "alice@example.com", ["u2@held.test", "v@held2.test"], subject="odmr two")
    wait_held(s, ["u1@held.test", "u2@held.test", "v@held2.test"])
    p = fetchmail(tmp_path, 'poll 127.0.0.1 protocol ODMR service %d user "kate@example.com" '
                  'password "%s" fetchdomains held.test smtphost "127.0.0.1/%d" ssl '
                  'sslcertck sslcertfile "%s" sslcommonname "mx.test.example"'
                  % (s.odmr_port, PASSWORD, s.local_port, s.crt))
    assert p.returncode == 0, p.stdout + p.stderr
    out = p.stdout + p.stderr
    assert "AUTH CRAM-MD5" in out and "ATRN held.test" in out, out
    assert "250 2.0.0 OK now reversing the connection" in out, out
    assert sink_subjects(s.local) == ["odmr one", "odmr two"]
    wait_for("only held2.test left",
             lambda: held_rcpts(s) == {"v@held2.test": "hold"})
    log = s.log()
    assert re.search(r"release: domain=held\.test, via=atrn:kate@example\.com, released=2", log)
    assert "handed over to delivery (ATRN" in log
    assert re.search(r"to=<u1@held\.test>, relay=atrn:kate@example\.com\[127\.0\.0\.1\].*"
                     r"status=sent", log), log


def test_fetchmail_etrn(odmr, tmp_path):
    """fetchmail --protocol ETRN: ternd releases held.test to its
    transport_map host (the customer's server); held2.test stays."""
    s = odmr
    send(s, "alice@example.com", ["u1@held.test", "v@held2.test"], subject="etrn one")
    wait_held(s, ["u1@held.test", "v@held2.test"])
    p = fetchmail(tmp_path, "poll 127.0.0.1 protocol ETRN service %d fetchdomains held.test"
                  % s.port)
    out = p.stdout + p.stderr
    assert "253 2.0.0 OK, 1 pending messages for node held.test started" in out, out
    wait_for("the held.test part delivered", lambda: sink_subjects(s.local) == ["etrn one"])
    wait_for("only held2.test left", lambda: held_rcpts(s) == {"v@held2.test": "hold"})
    p = fetchmail(tmp_path, "poll 127.0.0.1 protocol ETRN service %d fetchdomains held.test"
                  % s.port)
    assert "251 2.0.0 OK, no messages waiting for node held.test" in p.stdout + p.stderr


def atrn_session(s, user="kate@example.com"):
    from secfix import tls_client
    c = tls_client(s.odmr_port, name="atrn")
    s.clients.append(c)
    c.expect(None, "220 ...")
    c.expect("EHLO customer.example", "250-...")
    cram(c, user, PASSWORD, "235 2.7.0 Authentication successful")
    return c


def test_atrn_replies(odmr):
    s = odmr
    c = atrn_session(s)
    r = c.cmd("ATRN held2.test")
    assert r.code == 450 and "4.7.1 ATRN request refused: kate@example.com may not " \
                             "dequeue held2.test" in r.text
    r = c.cmd("ATRN held.test")
    assert r.code == 453 and "4.3.0 You have no mail" in r.text
    r = c.cmd("ATRN not..valid")
    assert r.code == 501
    c.expect("QUIT", "221 ...")
    # the SMTP listener does not offer it
    c = s.connect()
    assert c.cmd("EHLO client.example").code == 250
    r = c.cmd("ATRN held.test")
    assert r.code == 502
    c.expect("QUIT", "221 ...")
    # TURN stays refused: it cannot be authenticated
    c = s.connect()
    assert c.cmd("TURN").code == 502


def test_atrn_reverses_the_roles_on_the_same_connection(odmr):
    """A raw client does what fetchmail does: after 250 it greets, and
    ternd, now the client, sends EHLO, the message and QUIT."""
    s = odmr
    send(s, "alice@example.com", ["u1@held.test"], subject="reversed")
    wait_held(s, ["u1@held.test"])
    c = atrn_session(s)
    c.expect("ATRN", "250 2.0.0 OK now reversing the connection")
    c.raw(b"220 customer.example ESMTP ready\r\n")
    assert c._readline() == "EHLO mx.test.example"
    c.raw(b"250-customer.example\r\n250 8BITMIME\r\n")
    lines = []
    while True:
        line = c._readline()
        lines.append(line)
        if line.startswith("MAIL FROM:<alice@example.com>"):
            c.raw(b"250 2.1.0 ok\r\n")
        elif line.startswith("RCPT"):
            assert line == "RCPT TO:<u1@held.test>"
            c.raw(b"250 2.1.5 ok\r\n")
        elif line == "DATA":
            c.raw(b"354 go\r\n")
        elif line == ".":
            c.raw(b"250 2.0.0 taken\r\n")
        elif line == "QUIT":
            c.raw(b"221 bye\r\n")
            break
        assert len(lines) < 200
    assert "Subject: reversed" in lines, lines
    wait_for("the queue empty", lambda: queue_json(s) == [])


def test_atrn_customer_silent_with_mail_waiting(ternd, cert, cram_users, tmp_path):
    """The customer's side of the reversed session stops answering after
    MAIL while another message waits for the connection: at the timeout
    both are held again, ternd goes on serving and stops cleanly. (Ending
    the waiting job ended the release, which freed the conduit's next hop
    while its list of waiting jobs was being emptied: a use after free.)"""
    s = odmr_ternd(ternd, cert, cram_users, tmp_path, smtp_timeout="2s")
    try:
        send(s, "alice@example.com", ["u1@held.test"], subject="silent one")
        send(s, "alice@example.com", ["u2@held.test"], subject="silent two")
        wait_held(s, ["u1@held.test", "u2@held.test"])
        c = atrn_session(s)
        c.expect("ATRN", "250 2.0.0 OK now reversing the connection")
        c.raw(b"220 customer.example ESMTP ready\r\n")
        assert c._readline() == "EHLO mx.test.example"
        c.raw(b"250 customer.example\r\n")   # no PIPELINING: one command at a time
        assert c._readline().startswith("MAIL FROM:<alice@example.com>")
        c.raw(b"250 2.1.0 ok\r\n")
        assert c._readline().startswith("RCPT TO:<u")
        # and nothing more from the customer
        wait_for("both held again",
                 lambda: s.log().count("held again") >= 2 and
                 held_rcpts(s) == {"u1@held.test": "hold", "u2@held.test": "hold"})
        assert "timeout waiting for a reply" in s.log()
        d = s.connect()
        d.expect("QUIT", "221 ...")
    finally:
        s.local.stop()


def test_kill9_during_a_release_loses_nothing(ternd, tmp_path):
    """ETRN starts three deliveries to a customer that takes each message
    but sits 30 s before its reply to the final dot; ternd is killed.
    None was acknowledged, so none is lost: after a restart the mail is
    held again (the release died with the process), and the next ETRN
    delivers each message once."""
    slow_port = free_port_on("127.0.0.1")
    slow = SmtpSink(tmp_path / "slow", "127.0.0.1", slow_port, "-w", "30")
    tmap = tmp_path / "transport"
    tmap.write_text("%s 127.0.0.1:%d\n" % (HELD, slow_port))
    opts = dict(transport_map=str(tmap), hold_domains=HELD, etrn_networks="127.0.0.1/32")
    s1 = ternd(**opts)
    for i in range(3):
        send(s1, "alice@example.com", ["u%d@held.test" % i], subject="crash %d" % i)
    wait_held(s1, ["u0@held.test", "u1@held.test", "u2@held.test"])
    c = s1.connect()
    assert c.cmd("EHLO client.example").code == 250
    assert c.cmd("ETRN held.test").code == 253
    wait_for("three messages at the customer, unanswered", lambda: len(slow.messages()) == 3)
    s1.kill9()
    slow.stop()
    fast = SmtpSink(tmp_path / "fast", "127.0.0.1", slow_port)
    s2 = ternd(**opts)
    wait_held(s2, ["u0@held.test", "u1@held.test", "u2@held.test"])
    c = s2.connect()
    assert c.cmd("EHLO client.example").code == 250
    r = c.cmd("ETRN held.test")
    assert r.code == 253 and "3 pending messages" in r.text, r.lines
    wait_for("all three delivered", lambda: len(fast.messages()) == 3)
    assert sink_subjects(fast) == ["crash 0", "crash 1", "crash 2"]
    wait_for("the queue empty", lambda: queue_json(s2) == [])
    time.sleep(0.3)
    assert len(fast.messages()) == 3, "a message was delivered twice"
    fast.stop()


def test_etrn_while_a_release_runs_gets_458(ternd, tmp_path):
    """A customer that sits on DATA keeps the first release running: a
    second ETRN for the domain, or for its parent with @, gets 458."""
    slow_port = free_port_on("127.0.0.1")
    slow = SmtpSink(tmp_path / "slow", "127.0.0.1", slow_port, "-w", "30")
    tmap = tmp_path / "transport"
    tmap.write_text("%s 127.0.0.1:%d\n" % (HELD, slow_port))
    s = ternd(transport_map=str(tmap), hold_domains=HELD, etrn_networks="127.0.0.1/32")
    send(s, "alice@example.com", ["u@held.test"], subject="slow")
    wait_held(s, ["u@held.test"])
    c = s.connect()
    assert c.cmd("EHLO client.example").code == 250
    assert c.cmd("ETRN held.test").code == 253
    r = c.cmd("ETRN held.test")
    assert r.code == 458 and "4.3.0 Unable to queue messages for node held.test: a release " \
                             "of it is under way" in r.text, r.lines
    assert c.cmd("ETRN @test").code == 459   # not held here
    c.expect("QUIT", "221 ...")
    slow.stop()


def test_etrn_by_an_authenticated_user_of_odmr_map(ternd, cert, cram_users, tmp_path):
    """Outside etrn_networks, ETRN is for the users odmr_map lets dequeue
    the domain, after AUTH."""
    from secfix import starttls
    crt, key = cert
    omap = tmp_path / "odmr_map"
    omap.write_text("held.test kate@example.com\nheld2.test dana@example.com\n")
    s = ternd(tls_cert=str(crt), tls_key=str(key), users_file=str(cram_users),
              odmr_map=str(omap), hold_domains="held.test, held2.test")
    c = s.connect()
    r = c.expect("EHLO client.example", "250-...")
    assert not offers(r, "ETRN")
    assert c.cmd("ETRN held.test").code == 459
    starttls(c)
    c.expect("EHLO client.example", "250-...")
    cram(c, "kate@example.com", PASSWORD, "235 2.7.0 Authentication successful")
    r = c.cmd("EHLO client.example")
    assert offers(r, "ETRN"), r.lines
    assert c.cmd("ETRN held.test").code == 251
    r = c.cmd("ETRN held2.test")
    assert r.code == 459 and "odmr_map" in r.text, r.lines
    c.expect("QUIT", "221 ...")
