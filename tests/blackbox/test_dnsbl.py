"""DNSBL and DNSWL (RFC 5782) with a real unbound serving list zones:
clients from 127.0.0.1-127.0.0.6 are each listed differently. Lookups
start at connect; the verdict comes at MAIL (554 5.7.1 with the list's
reason), so that a client that authenticates first is never refused, and
relay_networks and submission listeners are not checked."""

import re
import time

import pytest

from conftest import BYE, SENDER_OK, wait_for
from secfix import PASSWORD, plain_b64, users_file  # noqa: F401

ZONE = [
    # 127.0.0.1: listed, with a reason
    "1.0.0.127.bl.test. A 127.0.0.2",
    '1.0.0.127.bl.test. TXT "listed: see https://bl.test/q/127.0.0.1"',
    # 127.0.0.2: listed, but allowed by the white list
    "2.0.0.127.bl.test. A 127.0.0.2",
    "2.0.0.127.wl.test. A 127.0.10.0",
    # 127.0.0.3: an error code of the list (127.255.255.254), not a listing
    "3.0.0.127.bl.test. A 127.255.255.254",
    # 127.0.0.4: listed on strict.test with a code the entry does not count
    "4.0.0.127.strict.test. A 127.0.0.3",
    # 127.0.0.5: listed, but in relay_networks
    "5.0.0.127.bl.test. A 127.0.0.2",
]


@pytest.fixture
def lists(unbound, silent_dns):
    return unbound(ZONE, forward=[("hang.test.", silent_dns)])


def lister(ternd, lists, **kw):
    opts = dict(dns_resolver=lists.resolver, dnsbl="bl.test, strict.test=127.0.0.2",
                dnswl="wl.test", relay_networks="127.0.0.5/32")
    opts.update(kw)
    return ternd(**opts)


def mail_reply(server, source, auth=False):
    c = server.connect(source=source)
    assert c.cmd("EHLO client.example").code == 250
    if auth:
        c.expect("AUTH PLAIN " + plain_b64("kate@example.com", PASSWORD),
                 "235 2.7.0 Authentication successful")
    r = c.cmd("MAIL FROM:<kate@example.com>")
    c.expect("QUIT", BYE)
    c.close()
    return r


def test_listed_client_refused_at_mail_with_the_reason(ternd, lists):
    s = lister(ternd, lists)
    r = mail_reply(s, "127.0.0.1")
    assert r.text == ("554 5.7.1 Service unavailable; client [127.0.0.1] blocked using bl.test; "
                      "listed: see https://bl.test/q/127.0.0.1"), r.text
    line = wait_for("the dnsbl line", lambda: next(
        (l for l in s.log().splitlines() if " dnsbl: " in l and "127.0.0.1" in l), None))
    assert "listed by=bl.test" in line, line
    assert re.search(r"reject: .*reason=listed on a DNSBL", s.log()), s.log()
    assert s.running()


def test_allowed_errors_codes_and_trusted_clients_pass(ternd, lists):
    s = lister(ternd, lists)
    for source in ("127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6"):
        r = mail_reply(s, source)
        assert r.text == SENDER_OK, (source, r.text)
    assert re.search(r"dnsbl: client=\[127\.0\.0\.2\], allowed by=wl\.test", s.log()), s.log()


def test_authenticated_client_is_not_refused(ternd, lists, users_file):
    s = lister(ternd, lists, users_file=str(users_file), auth_allow_plaintext="yes")
    assert mail_reply(s, "127.0.0.1", auth=True).text == SENDER_OK


def test_a_list_that_never_answers_does_not_stop_mail(ternd, lists):
    s = lister(ternd, lists, dnsbl="hang.test", dnsbl_timeout="1s")
    t = time.monotonic()
    assert mail_reply(s, "127.0.0.1").text == SENDER_OK
    assert time.monotonic() - t < 8
    # a client that hangs up while its MAIL waits for the list: ternd goes on
    c = s.connect(source="127.0.0.1")
    assert c.cmd("EHLO client.example").code == 250
    c.send("MAIL FROM:<kate@example.com>")
    c.close()
    assert mail_reply(s, "127.0.0.1").text == SENDER_OK
    assert s.running()
