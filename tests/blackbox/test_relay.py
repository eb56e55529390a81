"""Relay control: non-local domains are accepted only from relay_networks,
and then stay queued (remote delivery is not part of this contract)."""

import pytest

from conftest import (BYE, NO_RELAY, QUEUED, RCPT_OK, SENDER_OK, START_DATA,
                      USER_UNKNOWN, crlf)


def test_no_relay_by_default(server):
    server.make_maildir("x@example.com")
    c = server.session()
    c.converse([
        ("MAIL FROM:<x@example.com>",           SENDER_OK),  # even from a local sender
        ("RCPT TO:<someone@elsewhere.example>", "550 5.7.1 Unable to relay"),
        ("RCPT TO:<diffuser@somewherelse.net>", "550 5.7.1 Unable to relay"),
        ("RCPT TO:<x@example.com>",             RCPT_OK),
        ("RCPT TO:<x@sub.example.com>",         "550 5.7.1 Unable to relay"),
        ("RCPT TO:<x@example.com.evil.example>", "550 5.7.1 Unable to relay"),
    ])


@pytest.mark.parametrize("nets", ["10.0.0.0/8", "::1/128", "192.0.2.1,198.51.100.0/24", "127.0.0.2/32"])
def test_relay_networks_not_matching_client(ternd, nets):
    s = ternd(relay_networks=nets)
    c = s.session()
    c.expect("MAIL FROM:<a@b.example>", SENDER_OK)
    c.expect("RCPT TO:<someone@elsewhere.example>", NO_RELAY)


@pytest.mark.parametrize("nets", ["127.0.0.0/8", "127.0.0.1", "10.0.0.0/8,127.0.0.1/32", "0.0.0.0/0"])
def test_relay_networks_matching_client(ternd, nets):
    s = ternd(relay_networks=nets)
    c = s.session()
    c.converse([
        ("MAIL FROM:<a@b.example>",               SENDER_OK),
        ("RCPT TO:<someone@elsewhere.example>",   "250 2.1.5 Recipient OK"),
        ("RCPT TO:diffuser@somewherelse.net",     "250 2.1.5 Recipient OK"),
        ("DATA",                                  START_DATA),
        ("Subject: relayed",                      None),
        ("",                                      None),
        ("going out",                             None),
        (".",                                     QUEUED),
        ("QUIT",                                  BYE),
    ])


def test_relayed_message_stays_queued_local_copy_delivered(ternd):
    s = ternd(relay_networks="127.0.0.0/8")
    s.make_maildir("x@example.com")
    c = s.session()
    c.send_mail("a@b.example", ["far@elsewhere.example", "x@example.com"],
                crlf("Subject: mixed", "", "one local, one remote"))
    c.expect("QUIT", BYE)
    s.wait_message_with("x@example.com", "one local, one remote")
    delivered = s.all_delivered()
    assert delivered == s.messages("x@example.com"), (
        "remote recipient ended up in a local Maildir: %r" % delivered)
    assert not (s.mail_dir / "elsewhere.example").exists()


def test_relay_networks_do_not_bypass_local_checks(ternd):
    s = ternd(relay_networks="127.0.0.0/8")
    c = s.session()
    c.expect("MAIL FROM:<a@b.example>", SENDER_OK)
    c.expect("RCPT TO:<nobody@example.com>", USER_UNKNOWN)
    c.expect("RCPT TO:<nobody@MX.TEST.EXAMPLE>", USER_UNKNOWN)
