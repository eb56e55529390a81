"""REQUIRETLS and TLS-Required: No (RFC 8689), issue 17.

Inbound: EHLO lists REQUIRETLS only on an encrypted session (after
STARTTLS, or on an smtps listener); MAIL ... REQUIRETLS is refused in
clear (530 5.7.10) and kept with the message under TLS (ternctl show
--json), the Received field saying so. Outbound: ternd A relays a
REQUIRETLS message only over TLS verified by policy (smtp_tls = verify
with a test CA) to a next hop that lists REQUIRETLS, with REQUIRETLS on
MAIL (ternd B); a next hop without it (aiosmtpd with STARTTLS) gets
nothing and the sender a headers-only bounce with 5.7.30, and where a
domain's preferred MX lacks it the next MX that has it takes the message; unverified TLS
(smtp_tls = may) gives 5.7.10. A message that says TLS-Required: No goes
out with opportunistic TLS where smtp_tls = verify would refuse the next
hop's certificate. Under DANE (test_dane's signed zone): REQUIRETLS over a
matching TLSA record, a bounce where dane acts as may (an unsigned zone),
and TLS-Required: No past a TLSA record that does not match. Under
MTA-STS (test_mtasts's world): REQUIRETLS under an enforce policy, a
bounce under a testing one, TLS-Required: No past an enforce policy.
"""

import email
import email.policy
import json
import os
import shutil
import smtplib
import tempfile
from pathlib import Path

import pytest

from conftest import (BYE, DEADLINE, QUEUED, RCPT_OK, SENDER_OK, START_DATA, crlf,
                      free_port, give_to_run_user)
from peers import free_port_on, report_parts
from secfix import cert, client_context, starttls, tls_client  # noqa: F401 (fixtures)
from test_dane import SENDER as DANE_SENDER
from test_dane import World as DaneWorld
from test_dane import pki  # noqa: F401 (fixture)
from test_mx import wait_log
from test_mtasts import SENDER as STS_SENDER
from test_mtasts import World as StsWorld
from test_mtasts import make_pki as make_sts_pki
from test_mtasts import policy
from test_ternctl import ctl

aiosmtpd_controller = pytest.importorskip("aiosmtpd.controller",
                                          reason="python3-aiosmtpd is in TEST_PKGS")

SENDER = "sender@example.com"
RCPT = "bob@dest.example"
NEEDS_TLS = "530 5.7.10 REQUIRETLS needs an encrypted connection (RFC 8689 4.1)"


def ehlo_keywords(c):
    r = c.cmd("EHLO client.example")
    assert r.code == 250, r.text
    return [line[4:] for line in r.lines[1:]]


def queued(c, mail, rcpt, body):
    """One transaction on a conftest Client; the queue id."""
    c.expect(mail, SENDER_OK)
    c.expect("RCPT TO:<%s>" % rcpt, RCPT_OK)
    c.expect("DATA", START_DATA)
    c.raw(body + b".\r\n")
    return QUEUED.fullmatch(c.expect_reply(QUEUED).text).group(1)


# --------------------------------------------------------------------------
# Inbound


@pytest.fixture
def tls_server(ternd, tmp_path, cert):  # noqa: F811
    """TLS, an smtps listener, and far.example routed to a closed port:
    its mail stays queued (deferred) for ternctl show."""
    crt, key = cert
    port, sport = free_port(), free_port()
    tmap = tmp_path / "transport"
    tmap.write_text("far.example 127.0.0.1:%d\n" % free_port())
    give_to_run_user(tmap)
    s = ternd(tls_cert=str(crt), tls_key=str(key), transport_map=str(tmap),
              relay_networks="127.0.0.0/8", retry_min="1h", retry_max="1h",
              listen="127.0.0.1:%d, 127.0.0.1:%d smtps" % (port, sport))
    s.smtps_port = sport
    s.make_maildir("kate@example.com")
    return s


def test_ehlo_lists_requiretls_only_under_tls(tls_server):
    c = tls_server.connect()
    clear = ehlo_keywords(c)
    assert "REQUIRETLS" not in clear and "STARTTLS" in clear, clear
    starttls(c)
    secure = ehlo_keywords(c)
    # after the others, before HELP; STARTTLS is gone (RFC 3207 4.2)
    assert secure[-2:] == ["REQUIRETLS", "HELP"], secure
    assert "STARTTLS" not in secure
    c.expect("QUIT", BYE)
    t = tls_client(tls_server.smtps_port)
    t.expect_reply("220 ...", after="(greeting)")
    assert "REQUIRETLS" in ehlo_keywords(t)
    t.expect("QUIT", BYE)


def test_requiretls_in_clear_refused_session_goes_on(tls_server):
    c = tls_server.connect()
    ehlo_keywords(c)
    c.expect("MAIL FROM:<a@example.com> REQUIRETLS", NEEDS_TLS)
    c.expect("MAIL FROM:<a@example.com> REQUIRETLS=YES", "501 5.5.4 Invalid parameter REQUIRETLS")
    c.expect("MAIL FROM:<a@example.com>", SENDER_OK)
    c.expect("QUIT", BYE)


def test_smtplib_requiretls_in_clear_refused(tls_server):
    with smtplib.SMTP("127.0.0.1", tls_server.port, timeout=DEADLINE) as c:
        c.ehlo("client.example")
        assert not c.has_extn("requiretls")
        code, text = c.mail("a@example.com", ["REQUIRETLS"])
        assert (code, text) == (530, NEEDS_TLS[4:].encode()), (code, text)


def show(s, qid):
    return json.loads(ctl(s, "show", qid, json_out=True).stdout)


def test_requiretls_after_starttls_stored_with_the_message(tls_server):
    s = tls_server
    c = s.connect()
    ehlo_keywords(c)
    starttls(c)
    ehlo_keywords(c)
    body = crlf("Subject: must be private", "", "requiretls-body")
    q1 = queued(c, "MAIL FROM:<a@example.com> REQUIRETLS", "x@far.example", body)
    # RFC 8689 5: TLS-Required: No is ignored on a REQUIRETLS message
    both = crlf("Subject: both", "TLS-Required: No", "", "both-body")
    q2 = queued(c, "MAIL FROM:<a@example.com> SMTPUTF8 REQUIRETLS", "x@far.example", both)
    q3 = queued(c, "MAIL FROM:<a@example.com>", "x@far.example",
                crlf("Subject: relaxed", "TLS-Required:  no ", "", "relaxed-body"))
    q4 = queued(c, "MAIL FROM:<a@example.com>", "x@far.example",
                crlf("Subject: plain", "X-TLS-Required: No", "", "plain-body"))
    c.expect("QUIT", BYE)
    flags = {q: (show(s, q)["requiretls"], show(s, q)["tls_required_no"])
             for q in (q1, q2, q3, q4)}
    assert flags == {q1: (True, False), q2: (True, False), q3: (False, True),
                     q4: (False, False)}, flags


def test_requiretls_local_delivery_and_received(tls_server):
    """Final delivery (RFC 8689 4.2.1) needs nothing more; the trace says
    REQUIRETLS was asked for."""
    s = tls_server
    with smtplib.SMTP("127.0.0.1", s.port, timeout=DEADLINE) as c:
        c.starttls(context=client_context())
        c.ehlo("client.example")
        assert c.has_extn("requiretls")
        c.sendmail("a@example.com", ["kate@example.com"],
                   crlf("Subject: local", "", "local-requiretls"), mail_options=["REQUIRETLS"])
    got = s.wait_message_with("kate@example.com", "local-requiretls")
    assert b"with ESMTPS id" in got and b"(requiretls)" in got, got


# --------------------------------------------------------------------------
# Outbound


@pytest.fixture
def dns(tmp_path):
    from dnsserver import Unbound
    d = Unbound(tmp_path, ["mx.test.example. A 127.0.0.2"])   # the certificate's name
    yield d
    d.stop()


@pytest.fixture
def next_hop(ternd, tmp_path, cert):  # noqa: F811
    """ternd B on 127.0.0.2, with the test certificate (CN mx.test.example)."""
    port = free_port_on("127.0.0.2")
    crt, key = cert
    b = ternd(tmp=tmp_path / "b", listen="127.0.0.2:%d" % port, hostname="b.example",
              tls_cert=str(crt), tls_key=str(key), local_domains="dest.example",
              log_level="debug")
    b.make_maildir(RCPT)
    b.hop_port = port
    return b


def relay_a(ternd, tmp_path, cert, dns, port, **opts):  # noqa: F811
    """ternd A: TLS inbound (REQUIRETLS needs it), dest.example relayed to
    mx.test.example:port (127.0.0.2), the sender's mailbox local."""
    crt, key = cert
    conf = dict(relay_networks="127.0.0.0/8", log_level="debug",
                relayhost="mx.test.example:%d" % port, dns_resolver=dns.resolver,
                tls_cert=str(crt), tls_key=str(key), retry_min="1s", retry_max="1s",
                smtp_tls="verify", smtp_tls_ca_file=str(crt))
    conf.update(opts)
    a = ternd(tmp=tmp_path / "a", **conf)
    a.make_maildir(SENDER)
    return a


def send_tls(a, body, options=("REQUIRETLS",), sender=SENDER, rcpt=RCPT):
    with smtplib.SMTP("127.0.0.1", a.port, timeout=DEADLINE) as c:
        c.starttls(context=client_context())
        c.sendmail(sender, [rcpt], body, mail_options=list(options))


def bounce(a, sender=SENDER):
    """The report in the sender's mailbox: (human text, its rcpt fields,
    the returned part)."""
    [data] = a.wait_messages(sender, 1)
    msg = email.message_from_bytes(data, policy=email.policy.compat32)
    human, _, rcpts, returned = report_parts(msg)
    return human, rcpts, returned


def test_relay_over_verified_tls_with_requiretls(ternd, tmp_path, cert, dns, next_hop):  # noqa: F811
    a = relay_a(ternd, tmp_path, cert, dns, next_hop.hop_port)
    send_tls(a, crlf("Subject: onward", "", "onward-requiretls"))
    got = next_hop.wait_message_with(RCPT, "onward-requiretls")
    assert b"with ESMTPS" in got and got.count(b"(requiretls)") == 2, got   # A's and B's
    assert ": < MAIL FROM:<%s> SIZE=" % SENDER in next_hop.log()
    mail = [line for line in next_hop.log().splitlines() if ": < MAIL FROM:" in line]
    assert mail and mail[0].endswith(" REQUIRETLS"), mail
    wait_log(a, "status=sent")


class Recorder:
    """aiosmtpd handler: every envelope it is given."""

    def __init__(self):
        self.envelopes = []

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 2.0.0 OK"


@pytest.fixture
def plain_hop(cert):  # noqa: F811
    """A next hop with STARTTLS and the test certificate that does not
    list REQUIRETLS (aiosmtpd)."""
    import ssl
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(cert[0]), str(cert[1]))
    rec = Recorder()
    port = free_port_on("127.0.0.2")
    ctl_ = aiosmtpd_controller.Controller(rec, hostname="127.0.0.2", port=port, tls_context=ctx,
                                          server_hostname="mx.test.example")
    ctl_.start()
    rec.port = port
    yield rec
    ctl_.stop()


def test_next_hop_without_requiretls_bounces_headers_only(ternd, tmp_path, cert, dns,  # noqa: F811
                                                          plain_hop):
    a = relay_a(ternd, tmp_path, cert, dns, plain_hop.port)
    send_tls(a, crlf("Subject: secret", "", "secret-body-line"), ("REQUIRETLS", "RET=FULL"))
    human, rcpts, returned = bounce(a)
    assert "5.7.30" in human and "REQUIRETLS support required" in human, human
    assert [r["Status"] for r in rcpts] == ["5.7.30"], rcpts
    # RFC 8689 5: headers only, though RET=FULL was asked for
    assert returned.get_content_type() == "text/rfc822-headers", returned.get_content_type()
    text = returned.as_string()
    assert "Subject: secret" in text and "secret-body-line" not in text, text
    assert plain_hop.envelopes == [], "the message went to a next hop without REQUIRETLS"


def test_ordinary_mail_still_goes_to_that_next_hop(ternd, tmp_path, cert, dns, plain_hop):  # noqa: F811
    """The control: the same next hop takes a message without REQUIRETLS."""
    a = relay_a(ternd, tmp_path, cert, dns, plain_hop.port)
    send_tls(a, crlf("Subject: ordinary", "", "ordinary-body"), ())
    wait_log(a, "status=sent")
    [env] = plain_hop.envelopes
    assert "REQUIRETLS" not in env.mail_options, env.mail_options


def test_unverified_tls_bounces_with_5_7_10(ternd, tmp_path, cert, dns, next_hop):  # noqa: F811
    a = relay_a(ternd, tmp_path, cert, dns, next_hop.hop_port, smtp_tls="may")
    send_tls(a, crlf("Subject: may", "", "may-body"))
    human, rcpts, returned = bounce(a)
    assert "5.7.10" in human and "no verified TLS" in human, human
    assert [r["Status"] for r in rcpts] == ["5.7.10"], rcpts
    assert returned.get_content_type() == "text/rfc822-headers"
    assert next_hop.messages(RCPT) == []
    assert ": < MAIL FROM:" not in next_hop.log(), "a transaction was started"


def test_tls_required_no_falls_back_to_opportunistic(ternd, tmp_path, cert, dns, next_hop):  # noqa: F811
    """smtp_tls = verify with the system CAs: B's certificate does not
    verify. The message that says TLS-Required: No goes over unverified
    TLS; the one that does not waits."""
    a = relay_a(ternd, tmp_path, cert, dns, next_hop.hop_port, smtp_tls_ca_file="")
    send_tls(a, crlf("Subject: strict", "", "strict-body"), ())
    wait_log(a, "status=deferred")
    send_tls(a, crlf("Subject: relaxed", "TLS-Required: No", "", "relaxed-body"), ())
    got = next_hop.wait_message_with(RCPT, "relaxed-body")
    assert b"with ESMTPS" in got, got
    assert "TLS-Required: No: to mx.test.example with smtp_tls = may" in a.log()
    wait_log(a, "status=sent")
    assert not any(b"strict-body" in m for m in next_hop.wait_messages(RCPT, 1)), \
        "the message without TLS-Required: No went over unverified TLS"


# --------------------------------------------------------------------------
# Two MX hosts: the better one lacks REQUIRETLS, the next one has it


@pytest.fixture(scope="module")
def cert2(tmp_path_factory):
    """A second certificate, for mx2.test.example, and a CA file that
    trusts both (each is its own anchor)."""
    import subprocess
    d = tmp_path_factory.mktemp("tls2")
    key, crt = d / "key.pem", d / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj",
                    "/CN=mx2.test.example", "-addext", "subjectAltName=DNS:mx2.test.example",
                    "-keyout", str(key), "-out", str(crt)], check=True, capture_output=True)
    return crt, key


@pytest.fixture
def two_mx(ternd, tmp_path, cert, cert2):  # noqa: F811
    """two.test: MX 10 mx.test.example (127.0.0.2, aiosmtpd with STARTTLS,
    no REQUIRETLS), MX 20 mx2.test.example (127.0.0.3, ternd B); both on
    one port, ternd A's smtp_port; A verifies both certificates."""
    import ssl
    from dnsserver import Unbound
    port = free_port_on("127.0.0.2", "127.0.0.3")
    dns = Unbound(tmp_path, ["two.test. MX 10 mx.test.example.",
                             "two.test. MX 20 mx2.test.example.",
                             "mx.test.example. A 127.0.0.2", "mx2.test.example. A 127.0.0.3"])
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(cert[0]), str(cert[1]))
    first = Recorder()
    ctl_ = aiosmtpd_controller.Controller(first, hostname="127.0.0.2", port=port, tls_context=ctx,
                                          server_hostname="mx.test.example")
    ctl_.start()
    b = ternd(tmp=tmp_path / "b", listen="127.0.0.3:%d" % port, hostname="mx2.test.example",
              tls_cert=str(cert2[0]), tls_key=str(cert2[1]), local_domains="two.test",
              log_level="debug")
    b.make_maildir("bob@two.test")
    cas = tmp_path / "cas.pem"
    cas.write_bytes(cert[0].read_bytes() + cert2[0].read_bytes())
    give_to_run_user(cas)
    a = ternd(tmp=tmp_path / "a", relay_networks="127.0.0.0/8", log_level="debug",
              hostname="a.example", dns_resolver=dns.resolver, smtp_port=str(port), tls_cert=str(cert[0]),
              tls_key=str(cert[1]), retry_min="1s", retry_max="1s", smtp_tls="verify",
              smtp_tls_ca_file=str(cas))
    a.make_maildir(SENDER)
    yield a, first, b
    ctl_.stop()
    dns.stop()


def test_requiretls_passes_over_an_mx_without_it(two_mx):
    """RFC 8689 4.2.1: the preferred MX verifies but does not list
    REQUIRETLS; the message goes to the next MX, which does."""
    a, first, b = two_mx
    send_tls(a, crlf("Subject: next mx", "", "next-mx-body"), rcpt="bob@two.test")
    got = b.wait_message_with("bob@two.test", "next-mx-body")
    assert got.count(b"(requiretls)") == 2, got
    wait_log(a, "status=sent")
    assert first.envelopes == [], "the message went to the MX without REQUIRETLS"
    assert "5.7.30 mx.test.example: REQUIRETLS support required" in a.log()


def test_ordinary_mail_still_takes_the_preferred_mx(two_mx):
    """The control: without REQUIRETLS the better MX takes the message."""
    a, first, b = two_mx
    send_tls(a, crlf("Subject: ordinary", "", "ordinary-two"), (), rcpt="bob@two.test")
    wait_log(a, "status=sent")
    assert len(first.envelopes) == 1 and b.messages("bob@two.test") == []


# --------------------------------------------------------------------------
# Under DANE (test_dane's world: a signed zone, TLSA records, ternd as MX)


@pytest.fixture
def dane_world(ternd, tmp_path, pki):  # noqa: F811
    w = DaneWorld(ternd, tmp_path, pki)
    yield w
    w.stop()


def dane_sender(w, cert):  # noqa: F811
    return w.sender(tls_cert=str(cert[0]), tls_key=str(cert[1]))


def test_requiretls_over_dane(dane_world, cert):  # noqa: F811
    s = dane_sender(dane_world, cert)
    send_tls(s, crlf("Subject: dane", "", "dane-requiretls"), sender=DANE_SENDER,
             rcpt="bob@ok.dane.test")
    got = dane_world.mx.wait_message_with("bob@ok.dane.test", "dane-requiretls")
    # the MX writes (requiretls) only for a MAIL that said REQUIRETLS
    assert got.count(b"(requiretls)") == 2, got
    wait_log(s, "status=sent")


def test_requiretls_to_a_host_dane_does_not_cover_bounces(dane_world, cert):  # noqa: F811
    """plain.test is not signed: dane acts as may there, TLS unverified."""
    s = dane_sender(dane_world, cert)
    send_tls(s, crlf("Subject: insecure", "", "insecure-body"), sender=DANE_SENDER,
             rcpt="bob@plain.test")
    human, rcpts, _ = bounce(s, DANE_SENDER)
    assert [r["Status"] for r in rcpts] == ["5.7.10"], human
    assert dane_world.mx.messages("bob@plain.test") == []


def test_tls_required_no_ignores_a_dane_mismatch(dane_world, cert):  # noqa: F811
    """bad.dane.test's TLSA record does not match (test_dane: deferred);
    with TLS-Required: No the message goes over unauthenticated TLS."""
    s = dane_sender(dane_world, cert)
    send_tls(s, crlf("Subject: relaxed", "TLS-Required: No", "", "relaxed-dane"), (),
             sender=DANE_SENDER, rcpt="bob@bad.dane.test")
    dane_world.mx.wait_message_with("bob@bad.dane.test", "relaxed-dane")
    wait_log(s, "status=sent")
    assert "TLS-Required: No: to bad.dane.test with smtp_tls = may" in s.log()
    assert "TLSA" not in "".join(line for line in s.log().splitlines()
                                 if "mx-bad.dane.test" in line), "TLSA looked up anyway"


# --------------------------------------------------------------------------
# Under MTA-STS (test_mtasts's world: policies over HTTPS, a test CA)


@pytest.fixture(scope="module")
def sts_pki():
    # as test_mtasts's pki: outside pytest's base temp dir
    base = Path(tempfile.gettempdir()) / ("tern-tests-%d" % os.getuid())
    base.mkdir(exist_ok=True)
    d = Path(tempfile.mkdtemp(prefix="rtls-sts-pki-", dir=base))
    yield make_sts_pki(d)
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def sts_world(ternd, tmp_path, sts_pki):
    w = StsWorld(ternd, tmp_path, sts_pki)
    yield w
    w.stop()


def sts_sender(w, cert):  # noqa: F811
    return w.sender(tls_cert=str(cert[0]), tls_key=str(cert[1]))


def test_requiretls_under_mta_sts_enforce(sts_world, cert):  # noqa: F811
    sts_world.web.serve("enforce", policy("enforce", "mx-enforce.sts.test"))
    s = sts_sender(sts_world, cert)
    send_tls(s, crlf("Subject: sts", "", "sts-requiretls"), sender=STS_SENDER,
             rcpt="bob@enforce.sts.test")
    got = sts_world.mx.wait_message_with("bob@enforce.sts.test", "sts-requiretls")
    assert got.count(b"(requiretls)") == 2, got
    wait_log(s, "status=sent")


def test_requiretls_under_mta_sts_testing_bounces(sts_world, cert):  # noqa: F811
    """A testing policy delivers over TLS that did not verify (the MX's
    certificate names wrong.example): not enough for REQUIRETLS."""
    sts_world.web.serve("testing", policy("testing", "mx-testing.sts.test"))
    s = sts_sender(sts_world, cert)
    send_tls(s, crlf("Subject: testing", "", "testing-body"), sender=STS_SENDER,
             rcpt="bob@testing.sts.test")
    human, rcpts, _ = bounce(s, STS_SENDER)
    assert [r["Status"] for r in rcpts] == ["5.7.10"], human
    assert sts_world.mx_wrong.messages("bob@testing.sts.test") == []


def test_tls_required_no_past_mta_sts_enforce(sts_world, cert):  # noqa: F811
    """badcert's enforce policy defers its mail (test_mtasts); with
    TLS-Required: No no policy is asked for and the message goes."""
    sts_world.web.serve("badcert", policy("enforce", "mx-badcert.sts.test"))
    s = sts_sender(sts_world, cert)
    send_tls(s, crlf("Subject: relaxed", "TLS-Required: No", "", "relaxed-sts"), (),
             sender=STS_SENDER, rcpt="bob@badcert.sts.test")
    sts_world.mx_wrong.wait_message_with("bob@badcert.sts.test", "relaxed-sts")
    wait_log(s, "status=sent")
    assert "TLS-Required: No: to badcert.sts.test with smtp_tls = may" in s.log()
    assert not [h for h in sts_world.web.hits if "badcert" in h[0]], sts_world.web.hits
