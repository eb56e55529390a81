"""The policy phase: answers that come later (the reject_delay tarpit) keep
replies in order behind pipelined commands, do not hold up other
sessions, and survive the client leaving; a `starttls` listener refuses
mail commands before STARTTLS (RFC 3207 4)."""

import socket
import time

from conftest import (BYE, NO_RELAY, OK, QUEUED, RCPT_OK, SENDER_OK, START_DATA,
                      USER_UNKNOWN, crlf, free_port)
from secfix import cert, starttls  # noqa: F401


def test_tarpit_answers_in_order_behind_pipelined_commands(ternd):
    s = ternd(reject_delay="1", reject_delay_after="2")
    s.make_maildir("x@example.com")
    c = s.session()
    # one RCPT refused without delay (the first refusal), then two delayed
    # ones; what is pipelined behind them waits and is answered in order
    c.raw(crlf("MAIL FROM:<a@client.example>",
               "RCPT TO:<nobody1@example.com>",
               "RCPT TO:<x@example.com>",
               "RCPT TO:<nobody2@example.com>",
               "RCPT TO:<someone@far.example>",
               "DATA"))
    start = time.monotonic()
    for want in (SENDER_OK, USER_UNKNOWN, RCPT_OK, USER_UNKNOWN, NO_RELAY, START_DATA):
        c.expect_reply(want)
    waited = time.monotonic() - start
    c.raw(crlf("Subject: tarpit", "", "after the tarpit") + b".\r\n")
    c.expect_reply(QUEUED)
    c.expect("QUIT", BYE)
    s.wait_message_with("x@example.com", "after the tarpit")
    # two delayed refusals: the client waited for them (a lower bound, so
    # that a slow machine cannot fail it)
    assert waited >= 1.9, "the refusals were not delayed (%.2f s)" % waited


def test_tarpit_holds_up_only_its_own_session(ternd):
    s = ternd(reject_delay="3", reject_delay_after="1")
    slow = s.session()
    slow.expect("MAIL FROM:<a@client.example>", SENDER_OK)
    slow.raw(b"RCPT TO:<nobody@example.com>\r\n")      # answered in 3 s
    other = s.session()                               # meanwhile, another client
    start = time.monotonic()
    other.expect("NOOP", OK)
    other.expect("QUIT", BYE)
    assert time.monotonic() - start < 3, "another session waited for the tarpit"
    slow.expect_reply(USER_UNKNOWN)
    slow.expect("QUIT", BYE)


def test_client_leaving_during_a_delayed_answer(ternd):
    """The session is freed after the answer that nobody reads (ASan checks
    the memory), and the daemon goes on."""
    s = ternd(reject_delay="1", reject_delay_after="1")
    for i in range(5):
        c = s.session()
        c.expect("MAIL FROM:<a@client.example>", SENDER_OK)
        c.raw(b"RCPT TO:<nobody@example.com>\r\nQUIT\r\n")
        c.close()
    c = s.session()
    c.expect("NOOP", OK)
    deadline = time.monotonic() + 10
    while s.log().count("cmd=RCPT") < 6 and time.monotonic() < deadline:
        c.expect("NOOP", OK)
        time.sleep(0.2)
    c.expect("QUIT", BYE)


def test_sigterm_with_answers_waiting(ternd):
    s = ternd(reject_delay="30", reject_delay_after="1")
    c = s.session()
    c.expect("MAIL FROM:<a@client.example>", SENDER_OK)
    c.raw(b"RCPT TO:<nobody@example.com>\r\n")
    time.sleep(0.2)
    s.stop_checked()     # exit 0, no sanitizer report, within the grace period


def starttls_server(ternd, cert):
    crt, key = cert
    port = free_port()
    return ternd(tls_cert=str(crt), tls_key=str(key),
                 listen="127.0.0.1:%d starttls" % port)


def test_starttls_listener_refuses_mail_before_tls(ternd, cert):
    s = starttls_server(ternd, cert)
    s.make_maildir("x@example.com")
    c = s.connect()
    c.expect("EHLO client.example", "250-...")
    must = "530 5.7.0 Must issue a STARTTLS command first"
    c.expect("MAIL FROM:<a@client.example>", must)
    c.expect("RCPT TO:<x@example.com>", must)
    c.expect("VRFY x@example.com", must)
    c.expect("NOOP", OK)
    c.expect("HELP", "214-...")
    starttls(c)
    c.expect("EHLO client.example", "250-...")
    c.send_mail("a@client.example", ["x@example.com"], crlf("Subject: over tls", "", "tls-only"))
    c.expect("QUIT", BYE)
    data = s.wait_message_with("x@example.com", "tls-only")
    assert b"with ESMTPS" in data


def test_starttls_listener_needs_a_certificate(ternd):
    from conftest import run_ternd
    rc, out, err = run_ternd(["-n", "-o", "listen=127.0.0.1:2599 starttls"])
    assert rc == 2 and "a starttls listener needs tls_cert and tls_key" in err, err
