"""Delivery to remote domains (issue 3): MX lookup through a real unbound,
preference order, fallback, A fallback, null MX, retries after 4xx, bounces
after 5xx, success and delay reports, and no report to the null sender.

The world: an unbound on 127.0.0.1 serving test zones; receiving servers
(another ternd, or Postfix's smtp-sink with its fault options) on 127.0.0.2,
127.0.0.3 ... all on one port, which the sending ternd uses as smtp_port;
the sending ternd relays for 127.0.0.0/8 and has a local sender mailbox."""

import os
import time

import pytest

from conftest import BYE, QUEUED, RCPT_OK, SENDER_OK, START_DATA, crlf, wait_for
from dnsserver import Unbound
from peers import SmtpSink, free_port_on, parse, report_parts
from test_ternctl import ctl, queue_json

SENDER = "alice@example.com"
HOSTS = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]


class World:
    def __init__(self, ternd, tmp):
        self.ternd, self.tmp = ternd, tmp
        self.port = free_port_on(*HOSTS)
        self.sinks, self.dns = [], None

    def zone(self, *records):
        self.dns = Unbound(self.tmp, list(records))
        return self.dns

    def mx_server(self, host, domain, *mailboxes, **opts):
        # The mailboxes exist before it listens: a sender retrying at once
        # must not meet "User unknown".
        return self.ternd(tmp=self.tmp / ("mx-" + host), listen="%s:%d" % (host, self.port),
                          hostname="mx-%s.%s" % (host.replace(".", "-"), domain),
                          local_domains=domain, mailboxes=mailboxes, **opts)

    def sink(self, host, *options):
        s = SmtpSink(self.tmp, host, self.port, *options)
        self.sinks.append(s)
        return s

    def sender(self, **opts):
        conf = dict(relay_networks="127.0.0.0/8", dns_resolver=self.dns.resolver, log_level="debug",
                    smtp_port=str(self.port), retry_min="1s", retry_max="2s",
                    smtp_timeout="5s", smtp_connect_timeout="2s")
        conf.update(opts)
        s = self.ternd(tmp=self.tmp / "sender", **conf)
        s.make_maildir(SENDER)
        return s

    def stop(self):
        for s in self.sinks:
            s.stop()
        if self.dns:
            self.dns.stop()


@pytest.fixture
def world(ternd, tmp_path):
    w = World(ternd, tmp_path)
    yield w
    w.stop()


def send(server, rcpts, body, sender=SENDER, notify=None, ret=None, envid=None):
    c = server.session()
    mail = "MAIL FROM:<%s>" % sender
    if ret:
        mail += " RET=" + ret
    if envid:
        mail += " ENVID=" + envid
    c.expect(mail, SENDER_OK)
    for r in rcpts:
        c.expect("RCPT TO:<%s>%s" % (r, " NOTIFY=" + notify if notify else ""), RCPT_OK)
    c.expect("DATA", START_DATA)
    c.raw((body if isinstance(body, bytes) else body.encode()) + b".\r\n")
    qid = QUEUED.fullmatch(c.expect_reply(QUEUED).text).group(1)
    c.expect("QUIT", BYE)
    return qid


def wait_log(server, text, timeout=10.0):
    deadline = time.monotonic() + timeout
    while text not in server.log():
        if time.monotonic() > deadline:
            raise AssertionError("%r not in the log after %.0f s:\n%s" % (text, timeout, server.log()))
        time.sleep(0.02)


def zone_two_mx(w):
    return w.zone("dest.example. MX 10 mx1.dest.example.", "dest.example. MX 20 mx2.dest.example.",
                  "mx1.dest.example. A 127.0.0.2", "mx2.dest.example. A 127.0.0.3")


def test_delivered_through_the_preferred_mx(world):
    zone_two_mx(world)
    mx1 = world.mx_server("127.0.0.2", "dest.example", "bob@dest.example")
    mx2 = world.mx_server("127.0.0.3", "dest.example", "bob@dest.example")
    s = world.sender()
    send(s, ["bob@dest.example"], crlf("Subject: via mx1", "", "preferred-mx"))
    got = mx1.wait_message_with("bob@dest.example", "preferred-mx")
    assert b"by mx.test.example (tern)" in got, "the sender's Received header is missing"
    assert mx2.messages("bob@dest.example") == []
    wait_log(s, "status=sent")
    assert "relay=mx1.dest.example[127.0.0.2]" in s.log()


def test_falls_back_to_the_next_mx(world):
    zone_two_mx(world)            # nothing listens on mx1 (127.0.0.2)
    mx2 = world.mx_server("127.0.0.3", "dest.example", "bob@dest.example")
    s = world.sender()
    send(s, ["bob@dest.example"], crlf("Subject: fallback", "", "fallback-mx2"))
    mx2.wait_message_with("bob@dest.example", "fallback-mx2")
    wait_log(s, "relay=mx2.dest.example[127.0.0.3]")


def test_domain_without_mx_uses_its_address(world):
    world.zone("plain.example. A 127.0.0.2")   # RFC 5321 5.1 implicit MX
    mx = world.mx_server("127.0.0.2", "plain.example", "bob@plain.example")
    s = world.sender()
    send(s, ["bob@plain.example"], crlf("Subject: implicit", "", "implicit-mx"))
    mx.wait_message_with("bob@plain.example", "implicit-mx")


def test_several_recipients_of_one_domain_share_one_transaction(world):
    zone_two_mx(world)
    mx1 = world.mx_server("127.0.0.2", "dest.example", "bob@dest.example", "carol@dest.example")
    s = world.sender()
    send(s, ["bob@dest.example", "carol@dest.example"], crlf("Subject: two", "", "two-rcpts"))
    mx1.wait_message_with("bob@dest.example", "two-rcpts")
    mx1.wait_message_with("carol@dest.example", "two-rcpts")
    assert mx1.log().count(": queued: ") == 1, "one transaction for both recipients"
    assert "nrcpt=2" in mx1.log()


def test_connection_is_reused(world):
    zone_two_mx(world)
    mx1 = world.mx_server("127.0.0.2", "dest.example", "bob@dest.example", log_level="debug")
    s = world.sender()
    send(s, ["bob@dest.example"], crlf("Subject: one", "", "reuse-1"))
    mx1.wait_message_with("bob@dest.example", "reuse-1")
    send(s, ["bob@dest.example"], crlf("Subject: two", "", "reuse-2"))
    mx1.wait_message_with("bob@dest.example", "reuse-2")
    assert mx1.log().count(": < EHLO mx.test.example") == 1, "one session for both messages"
    assert mx1.log().count(": queued: ") == 2


def test_retry_after_4xx_then_success(world):
    zone_two_mx(world)
    sink = world.sink("127.0.0.2", "-r", "RCPT")   # 4xx to every RCPT
    s = world.sender()
    send(s, ["bob@dest.example"], crlf("Subject: retry", "", "retry-after-4xx"))
    wait_log(s, "status=deferred")
    assert "said: 450" in s.log() or "said: 4" in s.log()
    sink.stop()
    mx1 = world.mx_server("127.0.0.2", "dest.example", "bob@dest.example")
    mx1.wait_message_with("bob@dest.example", "retry-after-4xx")
    assert s.messages(SENDER) == [], "no report was asked for a success"


def test_bounce_after_5xx(world):
    zone_two_mx(world)
    world.sink("127.0.0.2", "-f", "RCPT")           # 5xx to every RCPT
    s = world.sender()
    qid = send(s, ["bob@dest.example"], crlf("Subject: doomed", "Message-ID: <doomed@x>", "",
                                          "bounce-me"), envid="ENV1")
    bounce = parse(s.wait_messages(SENDER, 1) and s.messages(SENDER)[0])
    assert bounce["Return-Path"] == "<>"
    assert bounce["Auto-Submitted"] == "auto-replied"
    assert bounce["To"] == "<%s>" % SENDER
    human, msgf, rcpts, returned = report_parts(bounce)
    assert "bob@dest.example" in human
    assert msgf["Reporting-MTA"] == "dns; mx.test.example"
    assert msgf["Original-Envelope-Id"] == "ENV1"
    assert msgf["Arrival-Date"]
    assert len(rcpts) == 1
    r = rcpts[0]
    assert r["Final-Recipient"] == "rfc822; bob@dest.example"
    assert r["Action"] == "failed"
    assert r["Status"].startswith("5.")
    assert r["Remote-MTA"] == "dns; mx1.dest.example"
    assert r["Diagnostic-Code"].startswith("smtp; 5")
    assert returned.get_content_type() == "message/rfc822"   # RET unset: full on failure
    orig = returned.get_payload()[0]
    assert orig["Message-ID"] == "<doomed@x>"
    assert b"bounce-me" in returned.as_bytes()
    assert qid in s.log()


def test_bounce_returns_headers_only_with_ret_hdrs(world):
    zone_two_mx(world)
    world.sink("127.0.0.2", "-f", "RCPT")
    s = world.sender()
    send(s, ["bob@dest.example"], crlf("Subject: hdrs", "", "secret-body"), ret="HDRS")
    s.wait_messages(SENDER, 1)
    _, _, _, returned = report_parts(parse(s.messages(SENDER)[0]))
    assert returned.get_content_type() == "text/rfc822-headers"
    assert b"Subject: hdrs" in returned.as_bytes()
    assert b"secret-body" not in returned.as_bytes()


def test_null_mx_bounces_at_once(world):
    world.zone("nomail.example. MX 0 .")              # RFC 7505
    s = world.sender()
    send(s, ["bob@nomail.example"], crlf("Subject: nullmx", "", "null-mx"))
    s.wait_messages(SENDER, 1)
    _, _, rcpts, _ = report_parts(parse(s.messages(SENDER)[0]))
    assert rcpts[0]["Status"] == "5.1.10"
    assert rcpts[0]["Action"] == "failed"


def test_unknown_domain_bounces(world):
    world.zone("other.example. A 127.0.0.9")
    s = world.sender()
    send(s, ["bob@nowhere.example"], crlf("Subject: nx", "", "nxdomain"))
    s.wait_messages(SENDER, 1)
    _, _, rcpts, _ = report_parts(parse(s.messages(SENDER)[0]))
    assert rcpts[0]["Status"] == "5.1.2"


def test_no_bounce_for_the_null_sender(world):
    zone_two_mx(world)
    world.sink("127.0.0.2", "-f", "RCPT")
    s = world.sender()
    qid = send(s, ["bob@dest.example"], crlf("Subject: from <>", "", "null-sender"), sender="")
    wait_log(s, "%s: removed" % qid)
    assert "status=bounced" in s.log()
    assert "notification" not in s.log()
    s.barrier(SENDER)
    assert len(s.messages(SENDER)) == 1, "only the barrier: no report to <>"


def test_notify_never_means_no_bounce(world):
    zone_two_mx(world)
    world.sink("127.0.0.2", "-f", "RCPT")
    s = world.sender()
    qid = send(s, ["bob@dest.example"], crlf("Subject: never", "", "never"), notify="NEVER")
    wait_log(s, "%s: removed" % qid)
    s.barrier(SENDER)
    assert len(s.messages(SENDER)) == 1


def test_success_report_relayed_when_next_hop_lacks_dsn(world):
    zone_two_mx(world)
    sink = world.sink("127.0.0.2", "-N")           # no DSN announced
    s = world.sender()
    send(s, ["bob@dest.example"], crlf("Subject: receipt", "", "receipt"), notify="SUCCESS")
    s.wait_messages(SENDER, 1)
    rep = parse(s.messages(SENDER)[0])
    _, _, rcpts, returned = report_parts(rep)
    assert rcpts[0]["Action"] == "relayed"
    assert rcpts[0]["Status"].startswith("2.")
    assert returned.get_content_type() == "text/rfc822-headers"
    assert len(sink.messages()) == 1


def test_notify_passed_on_to_a_next_hop_with_dsn(world):
    zone_two_mx(world)
    sink = world.sink("127.0.0.2")                 # announces DSN
    s = world.sender()
    send(s, ["bob@dest.example"], crlf("Subject: passon", "", "passon"), notify="SUCCESS,FAILURE",
         envid="E-42")
    deadline = time.monotonic() + 10
    while not sink.messages() and time.monotonic() < deadline:
        time.sleep(0.02)
    wait_log(s, "status=sent")
    dump = sink.messages()[0].read_bytes()
    assert b"NOTIFY=SUCCESS,FAILURE" in dump
    assert b"ENVID=E-42" in dump
    s.barrier(SENDER)
    assert len(s.messages(SENDER)) == 1, "the next hop reports success, not us"


def test_success_report_for_local_delivery(world):
    world.zone("x.example. A 127.0.0.9")
    s = world.sender()
    s.make_maildir("bob@example.com")
    send(s, ["bob@example.com"], crlf("Subject: local receipt", "", "local-receipt"),
         notify="SUCCESS")
    s.wait_messages(SENDER, 1)
    _, _, rcpts, _ = report_parts(parse(s.messages(SENDER)[0]))
    assert rcpts[0]["Action"] == "delivered"
    assert rcpts[0]["Status"] == "2.0.0"


def test_delay_report_then_expiry_bounce(world):
    zone_two_mx(world)
    world.sink("127.0.0.2", "-r", "RCPT")
    world.sink("127.0.0.3", "-r", "RCPT")
    s = world.sender(delay_warning="1s", max_queue_lifetime="4s")
    send(s, ["bob@dest.example"], crlf("Subject: slow", "", "slow"))
    files = s.wait_messages(SENDER, 2)
    reps = [parse(s.messages(SENDER)[i]) for i in range(2)]
    actions = sorted(report_parts(r)[2][0]["Action"] for r in reps)
    assert actions == ["delayed", "failed"], actions
    delayed = [r for r in reps if report_parts(r)[2][0]["Action"] == "delayed"][0]
    assert report_parts(delayed)[2][0]["Will-Retry-Until"]
    assert report_parts(delayed)[2][0]["Status"].startswith("4.")
    failed = [r for r in reps if report_parts(r)[2][0]["Action"] == "failed"][0]
    assert report_parts(failed)[2][0]["Status"] == "4.4.7"
    assert files


def test_unreachable_mx_is_deferred_not_lost(world):
    zone_two_mx(world)                             # nobody listens anywhere
    s = world.sender()
    qid = send(s, ["bob@dest.example"], crlf("Subject: later", "", "later"))
    wait_log(s, "%s: delivery: to=<bob@dest.example>" % qid)
    wait_log(s, "status=deferred")
    assert "%s: removed" % qid not in s.log()
    mx1 = world.mx_server("127.0.0.2", "dest.example", "bob@dest.example")
    mx1.wait_message_with("bob@dest.example", "later")


def test_kill9_mid_delivery_then_restart_loses_nothing(world):
    zone_two_mx(world)
    sink = world.sink("127.0.0.2", "-w", "30")    # hangs before answering DATA
    s = world.sender()
    send(s, ["bob@dest.example"], crlf("Subject: crash", "", "crash-mid-delivery"))
    deadline = time.monotonic() + 10
    while "DATA" not in sink.log.read_text(errors="replace") and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)
    s.kill9()
    sink.stop()
    mx1 = world.mx_server("127.0.0.2", "dest.example", "bob@dest.example")
    s2 = world.ternd(tmp=world.tmp / "sender", relay_networks="127.0.0.0/8",
                     dns_resolver=world.dns.resolver, smtp_port=str(world.port), retry_min="1s")
    mx1.wait_message_with("bob@dest.example", "crash-mid-delivery")
    assert s2.running()


def test_tls_required_but_not_offered_is_retried(world):
    zone_two_mx(world)
    world.sink("127.0.0.2")                          # smtp-sink offers no STARTTLS
    s = world.sender(smtp_tls="encrypt")
    qid = send(s, ["bob@dest.example"], crlf("Subject: tls", "", "need-tls"))
    wait_log(s, "status=deferred")
    assert "4.7.5 STARTTLS required by policy but not offered" in s.log()
    assert "%s: removed" % qid not in s.log()


def test_reply_timeout_is_retried(world):
    zone_two_mx(world)
    sink = world.sink("127.0.0.2", "-w", "30")       # no answer to DATA for 30 s
    s = world.sender(smtp_timeout="1s")
    send(s, ["bob@dest.example"], crlf("Subject: slow peer", "", "slow-peer"))
    wait_log(s, "timeout waiting for a reply")
    wait_log(s, "status=deferred")
    sink.stop()
    mx1 = world.mx_server("127.0.0.2", "dest.example", "bob@dest.example")
    mx1.wait_message_with("bob@dest.example", "slow-peer")


def test_disconnect_during_transaction_is_retried(world):
    zone_two_mx(world)
    sink = world.sink("127.0.0.2", "-q", "DATA")     # hangs up on DATA
    s = world.sender()
    send(s, ["bob@dest.example"], crlf("Subject: hangup", "", "hang-up"))
    wait_log(s, "lost connection")
    wait_log(s, "status=deferred")
    sink.stop()
    mx1 = world.mx_server("127.0.0.2", "dest.example", "bob@dest.example")
    mx1.wait_message_with("bob@dest.example", "hang-up")


def test_restart_keeps_schedule_and_never_redelivers(world):
    zone_two_mx(world)                               # the remote one stays down for now
    s = world.sender(retry_min="1h", retry_max="1h")
    s.make_maildir("local@example.com")
    send(s, ["local@example.com", "bob@dest.example"], crlf("Subject: half", "", "half-done"))
    s.wait_message_with("local@example.com", "half-done")
    wait_log(s, "status=deferred")
    s.stop_checked()
    mx1 = world.mx_server("127.0.0.2", "dest.example", "bob@dest.example")
    # The same spool, retries now every second: the remote copy goes out,
    # the local one is not written again.
    s2 = world.ternd(tmp=world.tmp / "sender", relay_networks="127.0.0.0/8",
                     dns_resolver=world.dns.resolver, smtp_port=str(world.port),
                     retry_min="1s", retry_max="1s")
    s2.barrier("local@example.com")                  # the engine has scanned the spool
    assert len(s2.messages("local@example.com")) == 2   # half-done + barrier only
    assert "status=deferred" not in s2.log(), "the 1h retry schedule did not survive"
    assert mx1.messages("bob@dest.example") == []


def test_lab_domains_under_test_tld(world):
    # RFC 6761 reserves .test for labs; with a dns_resolver of its own,
    # tern asks it rather than answering NXDOMAIN like a public resolver.
    world.zone("lab.test. MX 10 mx1.lab.test.", "mx1.lab.test. A 127.0.0.2")
    mx = world.mx_server("127.0.0.2", "lab.test", "bob@lab.test")
    s = world.sender()
    send(s, ["bob@lab.test"], crlf("Subject: lab", "", "lab-tld"))
    mx.wait_message_with("bob@lab.test", "lab-tld")


def test_transport_map_overrides_mx(world):
    zone_two_mx(world)
    mx1 = world.mx_server("127.0.0.2", "dest.example", "bob@dest.example")
    mx3 = world.mx_server("127.0.0.4", "dest.example", "bob@dest.example")
    tmap = world.tmp / "transport"
    tmap.write_text("# domain  host:port\nDest.Example  127.0.0.4:%d\n" % world.port)
    s = world.sender(transport_map=str(tmap))
    send(s, ["bob@dest.example"], crlf("Subject: mapped", "", "mapped-route"))
    mx3.wait_message_with("bob@dest.example", "mapped-route")
    assert mx1.messages("bob@dest.example") == []


def test_helo_fallback_when_ehlo_is_refused(world):
    zone_two_mx(world)
    sink = world.sink("127.0.0.2", "-e")            # no ESMTP: EHLO refused
    s = world.sender(log_level="debug")
    send(s, ["bob@dest.example"], crlf("Subject: old", "", "old-server"))
    wait_log(s, "status=sent")
    assert "> HELO mx.test.example" in s.log()
    assert len(sink.messages()) == 1


def test_destination_concurrency_limits_connections(world):
    zone_two_mx(world)
    mx1 = world.mx_server("127.0.0.2", "dest.example", "bob@dest.example", log_level="debug")
    s = world.sender(queue_only="yes")
    for i in range(6):
        send(s, ["bob@dest.example"], crlf("Subject: c%d" % i, "", "conc-%d" % i))
    s.stop_checked()
    s2 = world.ternd(tmp=world.tmp / "sender", relay_networks="127.0.0.0/8",
                     dns_resolver=world.dns.resolver, smtp_port=str(world.port),
                     destination_concurrency="1")
    mx1.wait_messages("bob@dest.example", 6)
    assert mx1.log().count(": < EHLO mx.test.example") == 1, "six messages, one connection"
    assert s2.running()


@pytest.mark.parametrize("chunking", ["no", "yes"], ids=["data", "bdat"])
def test_next_transaction_pipelined_after_the_dot(world, chunking):
    """RFC 2920 3.1: with messages waiting for the connection, the next
    MAIL, RCPT and DATA go out right behind a message's final dot, before
    its reply; every reply is still matched to its own message. By BDAT
    (RFC 3030 2, the MX offers CHUNKING) the same behind the LAST chunk."""
    zone_two_mx(world)
    mx1 = world.mx_server("127.0.0.2", "dest.example", "bob@dest.example", "carol@dest.example")
    s = world.sender(queue_only="yes")
    senders = ["first@example.com", "second@example.com", "third@example.com"]
    for i, who in enumerate(senders):
        send(s, ["bob@dest.example", "carol@dest.example"], crlf("Subject: p%d" % i, "", "pipe-%d" % i),
             sender=who)
    s.stop_checked()
    s2 = world.ternd(tmp=world.tmp / "sender", relay_networks="127.0.0.0/8",
                     dns_resolver=world.dns.resolver, smtp_port=str(world.port),
                     destination_concurrency="1", log_level="debug", smtp_chunking=chunking)
    for box in ("bob@dest.example", "carol@dest.example"):
        mx1.wait_messages(box, 3)
        for i in range(3):
            mx1.wait_message_with(box, "pipe-%d" % i)
    deadline = time.monotonic() + 10
    while s2.log().count("status=sent") < 6 and time.monotonic() < deadline:
        time.sleep(0.02)
    # "...Z ternd[N]: debug: smtp mx1.dest.example: > MAIL FROM:<...>"
    said = [l.split(": ", 3)[3] for l in s2.log().splitlines() if ": debug: smtp " in l]
    end = (lambda l: l.startswith("< 354")) if chunking == "no" else \
        (lambda l: l.startswith("> BDAT ") and l.endswith(" LAST"))
    first_354 = next(i for i, l in enumerate(said) if end(l))
    dot_reply = next(i for i, l in enumerate(said) if i > first_354 and l.startswith("< 250 2.6.0"))
    mails = [l for l in said[first_354:dot_reply] if l.startswith("> MAIL FROM:")]
    assert len(mails) == 1 and "<second@example.com>" in mails[0], \
        "the second transaction did not follow the first dot:\n" + "\n".join(said)
    assert s2.log().count("status=sent") == 6
    assert "status=deferred" not in s2.log() and "status=bounced" not in s2.log()
    assert said.count("> EHLO mx.test.example") == 1, "three messages, one connection"


def test_pipelined_transaction_lost_with_the_connection_is_retried(world):
    """The next hop hangs up after a message's dot, without a reply: that
    message and the one pipelined behind it are both deferred, neither is
    lost, and both are tried again."""
    zone_two_mx(world)
    world.sink("127.0.0.2", "-q", ".")              # disconnect at end of data
    s = world.sender(queue_only="yes")
    qids = [send(s, ["bob@dest.example"], crlf("Subject: h%d" % i, "", "hangup-%d" % i),
                 sender="s%d@example.com" % i) for i in range(2)]
    s.stop_checked()
    s2 = world.ternd(tmp=world.tmp / "sender", relay_networks="127.0.0.0/8",
                     dns_resolver=world.dns.resolver, smtp_port=str(world.port),
                     destination_concurrency="1", log_level="debug", retry_min="1s",
                     retry_max="1s", smtp_timeout="5s")
    for qid in qids:
        wait_log(s2, "%s: delivery: to=<bob@dest.example>, relay=mx1.dest.example[127.0.0.2], delay=" % qid)
    said = [l.split(": ", 3)[3] for l in s2.log().splitlines() if ": debug: smtp " in l]
    after_354 = said[said.index("< 354 End data with <CR><LF>.<CR><LF>") + 1]
    assert after_354.startswith("> MAIL FROM:<s1@example.com>"), \
        "the second message was not pipelined:\n" + "\n".join(said)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not all(
            "%s: delivery: to=<bob@dest.example>" % q in s2.log() and "attempts=2" in s2.log() for q in qids):
        time.sleep(0.05)
    log = s2.log()
    for qid in qids:
        lines = [l for l in log.splitlines() if l.split(": ", 2)[-1].startswith(qid + ": delivery: to=<")]
        assert lines and all("status=deferred" in l for l in lines), log
        assert any("attempts=2" in l for l in lines), "%s was not tried again" % qid
        assert "%s: removed" % qid not in log
    assert "status=sent" not in log and "status=bounced" not in log


def test_retry_not_hidden_behind_messages_in_flight(world):
    """1,100 recipients wait for a next hop that takes a minute per message
    (in flight, never tried: their rows come first among the due ones). A
    message deferred for another destination is still retried when due:
    the scan pages on past what is in flight instead of reading the same
    first 1,024 rows again."""
    world.zone("slow.example. MX 10 mx.slow.example.", "mx.slow.example. A 127.0.0.2",
               "later.example. MX 10 mx.later.example.", "mx.later.example. A 127.0.0.3")
    world.sink("127.0.0.2", "-w", "60")           # DATA answered after a minute
    s = world.sender(destination_concurrency="1", smtp_timeout="2m")
    qid = send(s, ["bob@later.example"], crlf("Subject: later", "", "retried-in-time"))
    wait_log(s, "%s: delivery: to=<bob@later.example>" % qid)   # nobody at 127.0.0.3 yet
    assert "status=deferred" in s.log()
    for i in range(11):
        send(s, ["u%d@slow.example" % k for k in range(100)], crlf("Subject: s%d" % i, "", "slow"))
    later = world.mx_server("127.0.0.3", "later.example", "bob@later.example")
    later.wait_message_with("bob@later.example", "retried-in-time")
    assert "status=sent" not in "\n".join(l for l in s.log().splitlines() if "slow.example" in l)


def _lines_message(marker, n_lines, dot_every):
    """Header and n_lines body lines of 77 octets (79 with CRLF); every
    dot_every-th line (if any) starts with a dot, some of them ".." or "."
    alone, so that dot-led lines fall on and around 64 KiB boundaries."""
    lines = ["Subject: " + marker, ""]
    for i in range(n_lines):
        line = "%06d-%s" % (i, "x" * 70)
        if dot_every and i % dot_every == 0:
            line = [".", "..", ".hidden " + line][i // dot_every % 3]
        lines.append(line)
    return lines


@pytest.mark.parametrize("n_lines,dot_every", [(25, 3), (4000, 0), (4000, 7), (4000, 829)])
def test_relayed_bodies_arrive_byte_for_byte(world, n_lines, dot_every):
    """What the next hop stores is what the client meant, whichever way the
    sender keeps the body (in the database under 64 KiB, in a file above)
    and sends it (dot-stuffed in runs, or straight from the file when no
    line starts with a dot)."""
    zone_two_mx(world)
    mx1 = world.mx_server("127.0.0.2", "dest.example", "bob@dest.example")
    s = world.sender()
    marker = "bytes-%d-%d" % (n_lines, dot_every)
    lines = _lines_message(marker, n_lines, dot_every)
    wire = "".join(("." + l if l.startswith(".") else l) + "\r\n" for l in lines)
    send(s, ["bob@dest.example"], wire)
    got = mx1.wait_message_with("bob@dest.example", marker)
    body = "\n".join(lines[2:]).encode() + b"\n"
    assert got.endswith(b"\n\n" + body), "the relayed body differs from the one sent"
    if n_lines > 1000:
        wait_log(s, "status=sent")


# --------------------------------------------------------------------------
# RFC 5321 5.1: this host among a domain's MX hosts (a backup MX). The
# sending ternd (hostname mx.test.example) listens on 127.0.0.1 on the very
# port it delivers to (smtp_port): an MX record that leads back to it is a
# real loop here, not a refused connection.

SELF_IP = "127.0.0.1"
EDGE_IP = "127.0.0.5"     # a proxy or NAT in front of the sender, in one test


def loop_world(world, *records):
    world.port = free_port_on(SELF_IP, *HOSTS, EDGE_IP)
    world.zone(*records)
    return world


def loop_sender(world, **opts):
    return world.sender(listen="%s:%d" % (SELF_IP, world.port), **opts)


def delivery_lines(server, qid):
    return [l for l in server.log().splitlines() if "%s: delivery: " % qid in l]


def assert_never_to_itself(server):
    log = server.log()
    assert "relay=mx.test.example[" not in log and "relay=alias.dest.test[" not in log, \
        "ternd delivered to itself:\n" + log
    assert ": < EHLO mx.test.example" not in log, "ternd connected to itself:\n" + log
    assert log.count(": received: ") == log.count("EHLO client.example"), \
        "a session that is not the test's:\n" + log


BACKUP_ZONE = ("dest.test. MX 10 primary.dest.test.", "dest.test. MX 20 mx.test.example.",
               "primary.dest.test. A 127.0.0.2", "mx.test.example. A 127.0.0.1")


def test_backup_mx_relays_to_the_primary_only(world):
    """tern is dest.test's second MX: the mail goes to the primary, and
    tern neither tries itself nor says anything but that it is sent."""
    w = loop_world(world, *BACKUP_ZONE)
    primary = w.sink("127.0.0.2")
    s = loop_sender(w)
    qid = send(s, ["bob@dest.test"], crlf("Subject: backup", "", "via-the-primary"))
    wait_log(s, "%s: removed" % qid)
    [line] = delivery_lines(s, qid)
    assert "relay=primary.dest.test[127.0.0.2]" in line and "status=sent" in line, line
    [got] = primary.messages()
    assert b"via-the-primary" in got.read_bytes()
    assert ("mx dest.test: mx.test.example (preference 20) is this host (hostname): dropped "
            "with every MX of preference 20 or more (RFC 5321 5.1): mx.test.example; "
            "left: primary.dest.test") in s.log()
    assert_never_to_itself(s)


@pytest.mark.parametrize("primary", ["down", "no address"])
def test_backup_mx_defers_while_no_better_mx_is_reachable(world, primary):
    """The primary does not answer (or has no address): the recipient
    waits with 4.4.4 and is never handed to tern itself; once the
    primary is back, the retry delivers there."""
    records = BACKUP_ZONE if primary == "down" else BACKUP_ZONE[:2] + BACKUP_ZONE[3:]
    w = loop_world(world, *records)
    s = loop_sender(w)
    qid = send(s, ["bob@dest.test"], crlf("Subject: primary down", "", "kept-for-later"))
    wait_log(s, "%s: delivery: to=<bob@dest.test>" % qid)
    line = delivery_lines(s, qid)[0]
    why = "(none has an address)" if primary == "no address" else "(Connection refused)"
    assert "status=deferred" in line, line
    assert ("reply=4.4.4 no better mail exchanger than this host for dest.test is reachable "
            + why) in line, line
    # the result is written a moment after its log line
    [m] = wait_for("the deferral in the queue",
                   lambda: [m for m in queue_json(s) if m["recipients"][0].get("delay_reason")])
    assert m["queue_id"] == qid
    [r] = m["recipients"]
    assert r["delay_reason"].startswith("4.4.4 no better mail exchanger than this host for "
                                        "dest.test is reachable"), r
    assert "%s: removed" % qid not in s.log()
    assert s.messages(SENDER) == [], "a temporary failure, no report yet"
    assert_never_to_itself(s)
    if primary == "down":
        sink = w.sink("127.0.0.2")
        wait_log(s, "%s: removed" % qid)
        assert b"kept-for-later" in sink.messages()[0].read_bytes()
        assert "relay=primary.dest.test[127.0.0.2]" in delivery_lines(s, qid)[-1]
        assert_never_to_itself(s)


@pytest.mark.parametrize("known_as", ["hostname", "address"])
def test_best_mx_pointing_at_this_host_bounces(world, known_as):
    """dest.test's best MX is tern itself (by its hostname, or by another
    name with its address) but dest.test is not a local domain: the mail
    would loop, so it comes back to the sender with 5.4.6, and the worse
    MX is not tried either."""
    best = "mx.test.example" if known_as == "hostname" else "alias.dest.test"
    w = loop_world(world, "dest.test. MX 10 %s." % best, "dest.test. MX 20 mx2.dest.test.",
                   "%s. A 127.0.0.1" % best, "mx2.dest.test. A 127.0.0.3")
    other = w.sink("127.0.0.3")
    s = loop_sender(w)
    qid = send(s, ["bob@dest.test"], crlf("Subject: loop", "Message-ID: <loop@x>", "", "no-loop"))
    s.wait_messages(SENDER, 1)
    bounce = parse(s.messages(SENDER)[0])
    assert bounce["Return-Path"] == "<>"
    human, _, rcpts, returned = report_parts(bounce)
    assert ("<bob@dest.test>: 5.4.6 mail for dest.test loops back to myself: this host is its "
            "best MX") in human, human
    [r] = rcpts
    assert r["Final-Recipient"] == "rfc822; bob@dest.test"
    assert r["Action"] == "failed"
    assert r["Status"] == "5.4.6"
    assert r["Remote-MTA"] is None and r["Diagnostic-Code"] is None, "no remote MTA said it"
    assert returned.get_payload()[0]["Message-ID"] == "<loop@x>"
    [line] = delivery_lines(s, qid)
    assert "status=bounced" in line, line
    assert "reply=5.4.6 mail for dest.test loops back to myself" in line, line
    why = "hostname" if known_as == "hostname" else "address 127.0.0.1"
    assert "warning: mx dest.test: %s (preference 10) is this host (%s)" % (best, why) in s.log()
    assert other.messages() == [], "an MX worse than this host was tried"
    assert_never_to_itself(s)


EDGE_ZONE = ("dest.test. MX 10 primary.dest.test.", "dest.test. MX 20 edge.dest.test.",
             "primary.dest.test. A 127.0.0.2", "edge.dest.test. A %s" % EDGE_IP)


@pytest.mark.parametrize("proxy", [True, False])
def test_proxy_interfaces_count_as_this_host(world, proxy):
    """edge.dest.test (127.0.0.5) is the NAT in front of tern: with it in
    proxy_interfaces tern knows that MX for itself and waits for the
    primary; without, it cannot know and delivers there (the sink on
    127.0.0.5 stands for the loop that would follow)."""
    w = loop_world(world, *EDGE_ZONE)
    edge = w.sink(EDGE_IP)
    opts = dict(proxy_interfaces="192.0.2.1, %s" % EDGE_IP) if proxy else {}
    s = loop_sender(w, **opts)
    qid = send(s, ["bob@dest.test"], crlf("Subject: nat", "", "behind-a-nat"))
    wait_log(s, "%s: delivery: to=<bob@dest.test>" % qid)
    line = delivery_lines(s, qid)[0]
    if proxy:
        assert "status=deferred" in line and "reply=4.4.4 " in line, line
        assert ("mx dest.test: edge.dest.test (preference 20) is this host (address %s)"
                % EDGE_IP) in s.log()
        assert edge.messages() == []
    else:
        assert "relay=edge.dest.test[%s]" % EDGE_IP in line and "status=sent" in line, line
        assert len(edge.messages()) == 1
        assert "is this host" not in s.log()


def test_proxy_interfaces_follow_a_reload(world):
    """proxy_interfaces is read again on reload: the deferred recipient
    goes to edge.dest.test once the address is no longer this host's."""
    w = loop_world(world, *EDGE_ZONE)
    edge = w.sink(EDGE_IP)
    conf = w.tmp / "tern.conf"
    conf.write_text("proxy_interfaces = %s\n" % EDGE_IP)
    os.chmod(conf, 0o644)
    s = loop_sender(w, args=("-c", str(conf)), retry_min="1h", retry_max="1h")
    qid = send(s, ["bob@dest.test"], crlf("Subject: reload", "", "after-reload"))
    wait_for("the deferral in the queue",
             lambda: [m for m in queue_json(s) if m["recipients"][0].get("delay_reason")])
    assert "reply=4.4.4 " in delivery_lines(s, qid)[0]
    conf.write_text("proxy_interfaces =\n")
    ctl(s, "reload")
    wait_for("the engine took the settings", lambda: "queue: settings of generation" in s.log())
    ctl(s, "flush", qid)
    wait_log(s, "%s: removed" % qid)
    assert "relay=edge.dest.test[%s]" % EDGE_IP in delivery_lines(s, qid)[-1]
    assert len(edge.messages()) == 1


# --------------------------------------------------------------------------
# A backup MX that holds the domain (hold_domains) until ETRN


def send_any_ehlo(server, rcpts, body):
    c = server.connect()
    assert c.cmd("EHLO client.example").code == 250
    qid = c.send_mail(SENDER, rcpts, body)
    c.expect("QUIT", "221 ...")
    return qid


def assert_no_session_with_itself(server):
    log = server.log()
    assert "relay=mx.test.example[" not in log, "ternd delivered to itself:\n" + log
    assert ": < EHLO mx.test.example" not in log, "ternd connected to itself:\n" + log


def etrn(server, node):
    c = server.connect()
    assert c.cmd("EHLO client.example").code == 250
    r = c.cmd("ETRN " + node)
    c.expect("QUIT", "221 ...")
    return r


def test_held_domain_released_goes_to_the_primary_only(world):
    """tern is dest.test's second MX and holds its mail: ETRN releases it
    to the primary, never to tern itself."""
    w = loop_world(world, *BACKUP_ZONE)
    primary = w.sink("127.0.0.2")
    s = loop_sender(w, hold_domains="dest.test", etrn_networks="127.0.0.0/8")
    qid = send_any_ehlo(s, ["bob@dest.test"], crlf("Subject: held backup", "", "held-for-the-primary"))
    wait_for("the message held", lambda: [m["queue_name"] for m in queue_json(s)] == ["hold"])
    assert primary.messages() == [], "delivered before ETRN"
    r = etrn(s, "dest.test")
    assert r.code == 253, r.text
    wait_log(s, "%s: removed" % qid)
    [line] = delivery_lines(s, qid)
    assert "relay=primary.dest.test[127.0.0.2]" in line and "status=sent" in line, line
    [got] = primary.messages()
    assert b"held-for-the-primary" in got.read_bytes()
    assert_no_session_with_itself(s)


def test_held_domain_where_tern_is_the_best_mx_does_not_loop(world):
    """tern is dest.test's best MX and holds it without a transport_map
    entry: a release can only loop, so the mail is returned (5.4.6), once."""
    w = loop_world(world, "dest.test. MX 10 mx.test.example.", "dest.test. MX 20 other.dest.test.",
                   "mx.test.example. A 127.0.0.1", "other.dest.test. A 127.0.0.3")
    s = loop_sender(w, hold_domains="dest.test", etrn_networks="127.0.0.0/8")
    qid = send_any_ehlo(s, ["bob@dest.test"], crlf("Subject: loops", "", "nowhere-to-go"))
    wait_for("the message held", lambda: [m["queue_name"] for m in queue_json(s)] == ["hold"])
    assert etrn(s, "dest.test").code == 253
    wait_log(s, "%s: removed" % qid)
    [line] = delivery_lines(s, qid)
    assert "status=bounced" in line and "5.4.6" in line, line
    s.wait_messages(SENDER, 1)
    assert_no_session_with_itself(s)


def test_a_resolver_that_never_answers_defers_after_dns_timeout(world, silent_dns):
    """The MX lookup goes to a server that takes queries and never answers
    (unbound forwards hang.test to it): after dns_timeout the mail is
    deferred with a DNS reason and tried again, and ternd goes on."""
    world.dns = Unbound(world.tmp, ["dest.example. MX 10 mx1.dest.example."],
                        forward=[("hang.test.", silent_dns)])
    s = world.sender(dns_timeout="2s")
    t = time.monotonic()
    qid = send(s, ["bob@dest.hang.test"], crlf("Subject: hang", "", "never-answered"))
    wait_log(s, "%s: delivery: to=<bob@dest.hang.test>" % qid, timeout=15)
    assert time.monotonic() - t < 12
    line = next(l for l in s.log().splitlines() if "%s: delivery: to=<bob@dest.hang.test>" % qid in l)
    assert "status=deferred" in line and "4.4.3 DNS lookup timed out after 2 s (dns_timeout)" in line, line
    wait_log(s, "attempts=2", timeout=15)   # and tried again
    assert s.running()


class HostileHop:
    """A next hop on HOSTS[0] that attacks or lacks TLS: strip (its EHLO
    offers no STARTTLS, as a man in the middle deleting it would), refuse
    (STARTTLS answered 454), wrongname (real TLS, with a certificate for
    wrong.example), broken (220 to STARTTLS, then garbage for a handshake
    and a hang-up: a broken TLS stack). It takes mail in clear or over
    TLS; messages: (body, over TLS?); starttls: how often it was asked."""

    def __init__(self, port, mode, cert=None):
        import socketserver
        import ssl
        import threading
        hop = self
        self.messages, self.starttls = [], 0
        ctx = None
        if cert:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*cert)

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                rfile, wfile, tls = self.rfile, self.wfile, False
                wfile.write(b"220 hostile.dest.example ESMTP\r\n")
                data = None
                while True:
                    line = rfile.readline()
                    if not line:
                        return
                    if data is not None:
                        if line == b".\r\n":
                            hop.messages.append((b"".join(data), tls))
                            data = None
                            wfile.write(b"250 2.0.0 taken\r\n")
                        else:
                            data.append(line)
                        continue
                    cmd = line.strip().upper()
                    if cmd.startswith(b"EHLO"):
                        ext = b"" if mode == "strip" or tls else b"250-STARTTLS\r\n"
                        wfile.write(b"250-hostile.dest.example\r\n" + ext + b"250 8BITMIME\r\n")
                    elif cmd == b"STARTTLS" and mode == "broken":
                        hop.starttls += 1
                        wfile.write(b"220 2.0.0 go ahead\r\n\x15\x03\x03\x00\x02garbage\r\n")
                        return
                    elif cmd == b"STARTTLS" and mode == "refuse":
                        wfile.write(b"454 4.7.0 TLS not available due to local problem\r\n")
                    elif cmd == b"STARTTLS" and mode == "wrongname" and not tls:
                        wfile.write(b"220 2.0.0 go ahead\r\n")
                        wfile.flush()
                        try:
                            conn = ctx.wrap_socket(self.request, server_side=True)
                        except (ssl.SSLError, OSError):
                            return
                        rfile, wfile, tls = conn.makefile("rb"), conn.makefile("wb", 0), True
                    elif cmd == b"DATA":
                        data = []
                        wfile.write(b"354 go\r\n")
                    elif cmd == b"QUIT":
                        wfile.write(b"221 bye\r\n")
                        return
                    else:
                        wfile.write(b"250 ok\r\n")
                    wfile.flush()

        class Server(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            daemon_threads = True

        self.server = Server((HOSTS[0], port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("level", ["may", "encrypt"])
def test_broken_tls_at_the_next_hop(world, level):
    """smtp_tls = may: a next hop whose TLS breaks after its 220 to STARTTLS
    gets the message in clear on a new connection to the same address, as
    Postfix does, and the log says so; encrypt: never in clear, deferred."""
    zone_two_mx(world)
    hop = HostileHop(world.port, "broken")
    try:
        s = world.sender(smtp_tls=level)
        qid = send(s, ["bob@dest.example"], crlf("Subject: tls", "", "broken-tls-" + level))
        wait_log(s, "%s: delivery: to=<bob@dest.example>" % qid, timeout=15)
        line = next(l for l in s.log().splitlines() if "%s: delivery: to=<bob@dest.example>" % qid in l)
        if level == "may":
            assert "status=sent" in line, line
            assert "trying again without STARTTLS (smtp_tls = may)" in s.log()
            assert [m for m, _ in hop.messages if b"broken-tls-may" in m]
            assert hop.starttls == 1   # once: the retry does not ask again
        else:   # mx1 given up for its TLS (4.7.5), then mx2 (nothing there)
            assert "status=deferred" in line, line
            assert [l for l in s.log().splitlines()
                    if "smtp mx1.dest.example[127.0.0.2]: 4.7.5" in l], s.log()
            assert hop.messages == [] and hop.starttls >= 1
            assert "trying again without STARTTLS" not in s.log()
    finally:
        hop.stop()


@pytest.fixture(scope="module")
def wrong_cert(tmp_path_factory):
    import subprocess
    d = tmp_path_factory.mktemp("wrongname")
    key, crt = d / "key.pem", d / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", "/CN=wrong.example",
                    "-addext", "subjectAltName=DNS:wrong.example", "-keyout", str(key),
                    "-out", str(crt)], check=True, capture_output=True)
    return str(crt), str(key)


# (mode, smtp_tls) -> delivered? and over TLS?
HOSTILE = {
    ("strip", "may"): (True, False), ("strip", "encrypt"): (False, None),
    ("strip", "verify"): (False, None),
    ("refuse", "may"): (True, False), ("refuse", "encrypt"): (False, None),
    ("refuse", "verify"): (False, None),
    ("wrongname", "may"): (True, True), ("wrongname", "encrypt"): (True, True),
    ("wrongname", "verify"): (False, None),
}


@pytest.mark.parametrize("mode,level", sorted(HOSTILE))
def test_a_hostile_next_hop_never_gets_mail_in_clear_where_tls_is_required(world, wrong_cert,
                                                                           mode, level):
    """Issue 17: STARTTLS stripped, refused with 454, or a certificate for
    another name, against each smtp_tls level: may delivers (in clear where
    there is no TLS), encrypt never sends in clear, verify never sends to a
    host it cannot authenticate. A refused hop defers the mail."""
    world.zone("dest.example. MX 10 mx1.dest.example.", "mx1.dest.example. A 127.0.0.2")
    hop = HostileHop(world.port, mode, wrong_cert)
    try:
        s = world.sender(smtp_tls=level, retry_min="1h", retry_max="1h")
        marker = "hostile-%s-%s" % (mode, level)
        qid = send(s, ["bob@dest.example"], crlf("Subject: " + marker, "", marker))
        wait_log(s, "%s: delivery: to=<bob@dest.example>" % qid, timeout=15)
        line = next(l for l in s.log().splitlines()
                    if "%s: delivery: to=<bob@dest.example>" % qid in l)
        delivered, over_tls = HOSTILE[(mode, level)]
        got = [tls for body, tls in hop.messages if marker.encode() in body]
        if delivered:
            assert "status=sent" in line and got == [over_tls], (line, hop.messages)
        else:
            assert "status=deferred" in line, line
            assert got == [], "the message left although smtp_tls = %s forbids it" % level
    finally:
        hop.stop()
