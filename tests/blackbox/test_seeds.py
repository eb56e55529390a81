"""The seed sessions, replayed line by line over a raw socket as telnet
would: each line sent with CRLF, each reply read before the next line.
After each session the delivered Maildir file is checked.
"""

import re

from conftest import EHLO_REPLY, GREETING, HELO_OK, QUEUED, QUEUED_HELO, Delivered, crlf

# (a) A Helo session typed by hand. After HELO there are no enhanced status
# codes (RFC 2034), so the replies are the bare texts.
SEED_A = [
    (None,                                      GREETING),
    ("Helo local.activedirectorydomain.co.uk",  HELO_OK),
    ("Mail from: info@yourdomain.com",          "250 Sender OK"),
    ("Rcpt to: destination@example.com",        "250 Recipient OK"),
    ("Data",                                    "354 Start mail input; end with <CRLF>.<CRLF>"),
    ("Subject: test",                           None),
    ("",                                        None),
    ("This is the body.",                       None),
    (".",                                       QUEUED_HELO),
    ("quit",                                    "221 Service closing transmission channel"),
]

# (b) Seed 001 types a bare "ehlo" (a 501 per RFC 5321); the replay uses a
# domain.
SEED_B = [
    (None,                                      GREETING),
    ("ehlo client.example",                     EHLO_REPLY),
    ("mail from: guyt@exchguy.com",             "250 2.1.0 Sender OK"),
    ("rcpt to: administrator@example.com",      "250 2.1.5 Recipient OK"),
    ("data",                                    "354 Start mail input; end with <CRLF>.<CRLF>"),
    ("Where are you server?",                   None),
    (".",                                       QUEUED),
    ("quit",                                    "221 2.0.0 Service closing transmission channel"),
]

# (c) Microsoft KB153119.
SEED_C = [
    (None,                                      GREETING),
    ("EHLO test.com",                           EHLO_REPLY),
    ("MAIL FROM:Admin@test.com",                "250 2.1.0 Sender OK"),
    ("RCPT TO: User@Example.Com",               "250 2.1.5 Recipient OK"),
    ("DATA",                                    "354 Start mail input; end with <CRLF>.<CRLF>"),
    ("Subject: test message",                   None),
    ("",                                        None),
    ("This is a test message you will not see a response from this command.", None),
    (".",                                       QUEUED),
    ("QUIT",                                    "221 2.0.0 Service closing transmission channel"),
]

# (d) TechNet bb123686.
SEED_D = [
    (None,                                      GREETING),
    ("EHLO contoso.com",                        EHLO_REPLY),
    ("MAIL FROM:chris@contoso.com",             "250 2.1.0 Sender OK"),
    ("RCPT TO:kate@example.com NOTIFY=success,failure", "250 2.1.5 Recipient OK"),
    ("DATA",                                    "354 Start mail input; end with <CRLF>.<CRLF>"),
    ("Subject: Test from Contoso",              None),
    ("",                                        None),
    ("This is a test message",                  None),
    (".",                                       QUEUED),
    ("QUIT",                                    "221 2.0.0 Service closing transmission channel"),
]

# (e) The relay check of a seed: a domain that is not ours, from a client
# outside relay_networks.
SEED_RELAY = [
    (None,                                      GREETING),
    ("EHLO client.example",                     EHLO_REPLY),
    ("MAIL FROM:chris@contoso.com",             "250 2.1.0 Sender OK"),
    ("RCPT TO:diffuser@somewherelse.net",       "550 5.7.1 Unable to relay"),
    ("QUIT",                                    "221 2.0.0 Service closing transmission channel"),
]


def replay(server, script):
    c = server.connect(greeting=False)
    replies = c.converse(script)
    c.wait_closed()
    queued = [r for r in replies if QUEUED.fullmatch(r.text) or QUEUED_HELO.fullmatch(r.text)]
    assert len(queued) <= 1
    if not queued:
        return None
    m = QUEUED.fullmatch(queued[0].text) or QUEUED_HELO.fullmatch(queued[0].text)
    return m.group(1)


def test_seed_a_helo_session(server):
    server.make_maildir("destination@example.com")
    qid = replay(server, SEED_A)
    [data] = server.wait_messages("destination@example.com", 1)
    Delivered(data).check(
        sender="info@yourdomain.com", rcpt="destination@example.com",
        helo="local.activedirectorydomain.co.uk", proto="SMTP", qid=qid,
        message=crlf("Subject: test", "", "This is the body."))


def test_seed_b_ehlo_lower_case(server):
    server.make_maildir("administrator@example.com")
    qid = replay(server, SEED_B)
    [data] = server.wait_messages("administrator@example.com", 1)
    Delivered(data).check(
        sender="guyt@exchguy.com", rcpt="administrator@example.com",
        helo="client.example", proto="ESMTP", qid=qid,
        message=crlf("Where are you server?"))


def test_seed_c_kb153119(server):
    # "User@Example.Com" lands in mail_dir/example.com/user
    server.make_maildir("user@example.com")
    qid = replay(server, SEED_C)
    [data] = server.wait_messages("user@example.com", 1)
    Delivered(data).check(
        sender="Admin@test.com", rcpt="user@example.com", rcpt_nocase=True,
        helo="test.com", proto="ESMTP", qid=qid,
        message=crlf("Subject: test message", "",
                     "This is a test message you will not see a response from this command."))


def test_seed_d_technet_notify(server):
    server.make_maildir("kate@example.com")
    qid = replay(server, SEED_D)
    [data] = server.wait_messages("kate@example.com", 1)
    Delivered(data).check(
        sender="chris@contoso.com", rcpt="kate@example.com",
        helo="contoso.com", proto="ESMTP", qid=qid,
        message=crlf("Subject: Test from Contoso", "", "This is a test message"))


def test_seed_relay_refused(server):
    replay(server, SEED_RELAY)
    assert not list(server.mail_dir.glob("somewherelse.net")), "a Maildir was made for a foreign domain"


def test_seed_001_bare_ehlo_then_retry(server):
    # Seed 001 as typed: the bare "ehlo" is refused, the session continues.
    server.make_maildir("administrator@example.com")
    c = server.connect()
    c.expect("ehlo", "501 5.5.4 Syntax: EHLO hostname")
    c.converse(SEED_B[1:])
    server.wait_messages("administrator@example.com", 1)
