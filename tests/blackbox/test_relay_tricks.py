"""Relay through address tricks is refused: the local/remote decision is
made on the canonical domain only (RFC 5321 3.6, 7.1)."""

import pytest

from conftest import NO_RELAY, RCPT_OK, SENDER_OK


@pytest.mark.parametrize("rcpt,want", [
    ("<victim%elsewhere.example@example.com>", NO_RELAY),             # percent hack
    ("<x%example.com@example.com>", NO_RELAY),                        # even to a local domain
    ("<elsewhere.example!victim@example.com>", NO_RELAY),             # bang path
    ("<victim!x@example.com>", NO_RELAY),
    ("<\"victim@elsewhere.example\"@example.com>", NO_RELAY),         # quoted '@'
    ("<\"victim%elsewhere.example\"@example.com>", NO_RELAY),         # quoted '%'
    ("<\"victim@elsewhere.example\"@elsewhere.example>", NO_RELAY),
    ("<@example.com:victim@elsewhere.example>", NO_RELAY),            # source route
    ("<@example.com,@mx.test.example:victim@elsewhere.example>", NO_RELAY),
    ("<victim@[192.0.2.1]>", NO_RELAY),                               # address literals
    ("<victim@[127.0.0.1]>", NO_RELAY),
    ("<postmaster@[127.0.0.1]>", NO_RELAY),
    ("<victim@[IPv6:::1]>", NO_RELAY),
    ("<victim@elsewhere.example.>", "501 5.1.3 ..."),                 # trailing dot
    ("<x@example.com.>", "501 5.1.3 ..."),
    ("<victim@Elsewhere.EXAMPLE>", NO_RELAY),                         # mixed case
    ("<victim@example.com.elsewhere.example>", NO_RELAY),
    ("<victim@elsewhere.example@example.com>", "501 5.1.3 ..."),
    ("victim@elsewhere.example", NO_RELAY),                           # lenient form
])
def test_relay_trick_refused(server, rcpt, want):
    server.make_maildir("x@example.com", "victim@example.com")
    c = server.session()
    c.expect("MAIL FROM:<a@client.example>", SENDER_OK)
    c.expect("RCPT TO:" + rcpt, want)
    c.expect("RCPT TO:<x@example.com>", RCPT_OK)   # the session is still fine


@pytest.mark.parametrize("rcpt", ["<x@EXAMPLE.COM>", "<x@Example.Com>", "<@elsewhere.example:x@example.com>"])
def test_canonical_local_domain_accepted(server, rcpt):
    server.make_maildir("x@example.com")
    c = server.session()
    c.expect("MAIL FROM:<a@client.example>", SENDER_OK)
    c.expect("RCPT TO:" + rcpt, RCPT_OK)


def test_tricks_not_delivered_anywhere(server):
    server.make_maildir("x@example.com")
    c = server.session()
    c.expect("MAIL FROM:<a@client.example>", SENDER_OK)
    c.expect("RCPT TO:<victim%elsewhere.example@example.com>", NO_RELAY)
    c.expect("DATA", "503 5.5.1 No valid recipients")
    assert "cmd=RCPT" in server.log()
