"""The SMTP dialogue: every command, its replies, and the order of things.

Each test is a scripted conversation: the line sent, the reply expected.
A reply ending in "..." is matched by prefix (the contract fixes the code and
enhanced code, not the wording).
"""

import re

import pytest

from conftest import (BYE, EHLO_REPLY, GREETING, HELO_OK, NO_RELAY, OK, QUEUED,
                      RCPT_OK, SENDER_OK, START_DATA, USER_UNKNOWN, crlf,
                      ehlo_reply)

ESC_RE = re.compile(r"^\d{3}[ -]\d\.\d{1,3}\.\d{1,3}( |$)")


# --------------------------------------------------------------------------
# Greeting, HELO, EHLO


def test_greeting(server):
    c = server.connect(greeting=False)
    c.expect(None, "220 mx.test.example ESMTP tern ready")


def test_greeting_uses_configured_banner(ternd):
    s = ternd(banner="Welcome to the test lab")
    c = s.connect(greeting=False)
    c.expect(None, "220 mx.test.example ESMTP Welcome to the test lab")


def test_helo(server):
    c = server.connect()
    c.expect("HELO x", "250 mx.test.example Hello [127.0.0.1]")


def test_ehlo_lists_extensions_in_order(ternd):
    s = ternd(max_message_size="10485760")
    c = s.connect()
    c.expect("EHLO x", "\n".join([
        "250-mx.test.example Hello [127.0.0.1]",
        "250-PIPELINING",
        "250-SIZE 10485760",
        "250-8BITMIME",
        "250-ENHANCEDSTATUSCODES",
        "250-DSN",
        "250-SMTPUTF8",
        "250-CHUNKING",
        "250-BINARYMIME",
        "250 HELP",
    ]))


def test_ehlo_default_size_is_advertised(server):
    c = server.connect()
    r = c.expect("EHLO client.example", EHLO_REPLY)
    size = int(re.search(r"^250-SIZE (\d+)$", r.text, re.M).group(1))
    assert size > 0


@pytest.mark.parametrize("verb", ["EHLO", "HELO", "ehlo", "helo"])
def test_hello_without_argument(server, verb):
    c = server.connect()
    c.expect(verb, "501 5.5.4 Syntax: %s hostname" % verb.upper())
    # the session goes on: a proper greeting still works
    c.expect("EHLO client.example", EHLO_REPLY)


def test_ehlo_resets_transaction(server):
    server.make_maildir("x@example.com")
    c = server.session()
    c.converse([
        ("MAIL FROM:<a@b.example>",  SENDER_OK),
        ("RCPT TO:<x@example.com>",  RCPT_OK),
        ("EHLO client.example",      EHLO_REPLY),
        ("RCPT TO:<x@example.com>",  "503 5.5.1 ..."),
    ])


# --------------------------------------------------------------------------
# Enhanced status codes (RFC 2034): present before any HELO/EHLO and after
# EHLO, absent after HELO.


def test_replies_before_hello_carry_enhanced_codes(server):
    c = server.connect()
    c.converse([
        ("NOOP",                      "250 2.0.0 OK"),
        ("RSET",                      "250 2.0.0 OK"),
        ("FOO",                       "500 5.5.1 Unrecognized command"),
        ("MAIL FROM:<a@b.example>",   "503 5.5.1 ..."),
        ("RCPT TO:<x@example.com>",   "503 5.5.1 ..."),
        ("DATA",                      "503 5.5.1 ..."),
        ("QUIT",                      "221 2.0.0 Service closing transmission channel"),
    ])
    c.wait_closed()


def test_replies_after_ehlo_carry_enhanced_codes(server):
    server.make_maildir("x@example.com")
    c = server.session()
    c.converse([
        ("NOOP",                      "250 2.0.0 OK"),
        ("FOO",                       "500 5.5.1 Unrecognized command"),
        ("MAIL FROM:<a@b.example>",   "250 2.1.0 Sender OK"),
        ("RCPT TO:<nobody@example.com>", "550 5.1.1 User unknown"),
        ("RCPT TO:<x@example.com>",   "250 2.1.5 Recipient OK"),
        ("RSET",                      "250 2.0.0 OK"),
        ("VRFY x",                    "252 2.0.0 ..."),
        ("QUIT",                      "221 2.0.0 Service closing transmission channel"),
    ])


def test_replies_after_helo_have_no_enhanced_codes(server):
    server.make_maildir("x@example.com")
    c = server.connect()
    c.converse([
        ("HELO client.example",       HELO_OK),
        ("NOOP",                      "250 OK"),
        ("FOO",                       "500 Unrecognized command"),
        ("MAIL FROM:<a@b.example>",   "250 Sender OK"),
        ("MAIL FROM:<a@b.example>",   "503 ..."),
        ("RCPT TO:<nobody@example.com>", "550 User unknown"),
        ("RCPT TO:<far@elsewhere.example>", "550 Unable to relay"),
        ("RCPT TO:<x@example.com>",   "250 Recipient OK"),
        ("DATA",                      START_DATA),
        ("Subject: helo",             None),
        ("",                          None),
        ("hi",                        None),
        (".",                         re.compile(r"250 <[0-9A-F]{16}@mx\.test\.example> Queued mail for delivery")),
        ("RSET",                      "250 OK"),
    ])
    for line in ("VRFY x", "HELP", "TURN"):
        r = c.cmd(line)
        assert not ESC_RE.match(r.lines[-1]), (
            "after HELO, %r got a reply with an enhanced status code: %r" % (line, r.text))
    c.expect("QUIT", "221 Service closing transmission channel")


# --------------------------------------------------------------------------
# MAIL FROM


@pytest.mark.parametrize("line", [
    "MAIL FROM:<a@b.example>",
    "MAIL FROM:Admin@test.com",
    "Mail from: info@yourdomain.com",
    "mail from:<>",
    "MAIL FROM: <a@b.example>",
    "mAiL fRoM:<a@b.example>",
    "MAIL FROM:<@relay.example:a@b.example>",   # source route, RFC 5321 4.1.2
])
def test_mail_from_forms(server, line):
    c = server.session()
    c.expect(line, "250 2.1.0 Sender OK")


def test_mail_before_hello(server):
    c = server.connect()
    c.expect("MAIL FROM:<a@b.example>", "503 5.5.1 ...")


def test_second_mail_in_transaction(server):
    c = server.session()
    c.converse([
        ("MAIL FROM:<a@b.example>", SENDER_OK),
        ("MAIL FROM:<c@d.example>", "503 5.5.1 ..."),
    ])


@pytest.mark.parametrize("line", [
    "MAIL FROM:<a@>",
    "MAIL FROM:<a@b..example>",
    "MAIL FROM:<a@-b.example>",
    "MAIL FROM:<a@b.example",
])
def test_mail_bad_address(server, line):
    c = server.session()
    c.expect(line, "501 5.1.7 ...")
    c.expect("MAIL FROM:<a@b.example>", SENDER_OK)  # no transaction was started


@pytest.mark.parametrize("line", [
    "MAIL",
    "MAIL <a@b.example>",
    "MAIL TO:<a@b.example>",
    "MAIL FROM <a@b.example>",
])
def test_mail_without_from_colon(server, line):
    c = server.session()
    c.expect(line, "501 5.5.4 ...")


# --------------------------------------------------------------------------
# RCPT TO


@pytest.mark.parametrize("line", [
    "RCPT TO:<x@example.com>",
    "RCPT TO: User@Example.Com",
    "RCPT TO:kate@example.com NOTIFY=success,failure",
    "rcpt to:<x@example.com>",
    "RCPT TO:<X@EXAMPLE.COM>",
    "RCPT TO:<x@mx.test.example>",
    "RCPT TO:<@relay.example:x@example.com>",   # source route, RFC 5321 4.1.2
])
def test_rcpt_to_forms(server, line):
    server.make_maildir("x@example.com", "user@example.com", "kate@example.com",
                        "x@mx.test.example")
    c = server.session()
    c.expect("MAIL FROM:<a@b.example>", SENDER_OK)
    c.expect(line, "250 2.1.5 Recipient OK")


@pytest.mark.parametrize("rcpt", ["nobody@example.com", "nobody@mx.test.example"])
def test_rcpt_unknown_local_user(server, rcpt):
    server.make_maildir("x@example.com")
    c = server.session()
    c.converse([
        ("MAIL FROM:<a@b.example>",  SENDER_OK),
        ("RCPT TO:<%s>" % rcpt,      "550 5.1.1 User unknown"),
        ("RCPT TO:<x@example.com>",  RCPT_OK),   # the transaction goes on
    ])


def test_rcpt_non_local_domain_is_not_relayed(server):
    c = server.session()
    c.converse([
        ("MAIL FROM:<a@b.example>",           SENDER_OK),
        ("RCPT TO:<someone@elsewhere.example>", "550 5.7.1 Unable to relay"),
    ])


def test_rcpt_before_mail(server):
    server.make_maildir("x@example.com")
    c = server.session()
    c.expect("RCPT TO:<x@example.com>", "503 5.5.1 ...")


@pytest.mark.parametrize("line", [
    "RCPT TO:<x@>",
    "RCPT TO:<x@exa..mple.com>",
    "RCPT TO:<x>",
    "RCPT TO:<>",
    "RCPT TO:<x@example.com",
])
def test_rcpt_bad_address(server, line):
    c = server.session()
    c.expect("MAIL FROM:<a@b.example>", SENDER_OK)
    c.expect(line, "501 5.1.3 ...")


@pytest.mark.parametrize("line", ["RCPT", "RCPT <x@example.com>", "RCPT FROM:<x@example.com>"])
def test_rcpt_without_to_colon(server, line):
    server.make_maildir("x@example.com")
    c = server.session()
    c.expect("MAIL FROM:<a@b.example>", SENDER_OK)
    c.expect(line, "501 5.5.4 ...")


@pytest.mark.parametrize("rcpt", [
    "<postmaster>",
    "<Postmaster>",
    "<POSTMASTER>",
    "<postmaster@example.com>",
    "<postmaster@mx.test.example>",
    "<Postmaster@Example.COM>",
])
def test_rcpt_postmaster_always_accepted(server, rcpt):
    # no Maildir is made: postmaster is accepted regardless (RFC 5321 4.5.1)
    c = server.session()
    c.expect("MAIL FROM:<a@b.example>", SENDER_OK)
    c.expect("RCPT TO:%s" % rcpt, "250 2.1.5 Recipient OK")


def test_too_many_recipients(ternd):
    s = ternd(max_recipients="3")
    s.make_maildir("r1@example.com", "r2@example.com", "r3@example.com", "r4@example.com")
    c = s.session()
    qid = c.converse([
        ("MAIL FROM:<a@b.example>",    SENDER_OK),
        ("RCPT TO:<r1@example.com>",   RCPT_OK),
        ("RCPT TO:<r2@example.com>",   RCPT_OK),
        ("RCPT TO:<r3@example.com>",   RCPT_OK),
        ("RCPT TO:<r4@example.com>",   "452 4.5.3 Too many recipients"),
        ("DATA",                       START_DATA),
        ("Subject: three",             None),
        ("",                           None),
        ("three only",                 None),
        (".",                          QUEUED),
    ])
    for r in ("r1@example.com", "r2@example.com", "r3@example.com"):
        s.wait_messages(r, 1)
    s.barrier("r4@example.com")
    assert len(s.messages("r4@example.com")) == 1, "the 4th recipient received the message too"


def test_default_max_recipients_is_100(ternd):
    s = ternd(relay_networks="127.0.0.0/8", queue_only="yes")
    c = s.session()
    c.expect("MAIL FROM:<a@b.example>", SENDER_OK)
    c.raw("".join("RCPT TO:<r%d@far.example>\r\n" % i for i in range(101)))
    for i in range(100):
        c.expect_reply(RCPT_OK, after="RCPT %d" % (i + 1))
    c.expect_reply("452 4.5.3 Too many recipients", after="RCPT 101")
    c.expect("RSET", OK)


# --------------------------------------------------------------------------
# ESMTP parameters (RFC 1870, 3461, 6152)


@pytest.mark.parametrize("params", [
    "SIZE=1000",
    "BODY=7BIT",
    "BODY=8BITMIME",
    "body=8bitmime",
    "RET=FULL",
    "RET=HDRS",
    "ENVID=QQ314159",
    "ENVID=abc+2Bdef+3Dx",
    "SIZE=1000 BODY=8BITMIME RET=HDRS ENVID=xyz",
])
def test_mail_parameters_accepted(server, params):
    c = server.session()
    c.expect("MAIL FROM:<a@b.example> " + params, "250 2.1.0 Sender OK")


@pytest.mark.parametrize("params", [
    "NOTIFY=NEVER",
    "NOTIFY=SUCCESS",
    "NOTIFY=SUCCESS,FAILURE,DELAY",
    "notify=failure",
    "ORCPT=rfc822;x@example.com",
    "ORCPT=rfc822;x+2Bsub@example.com",
    "NOTIFY=FAILURE ORCPT=rfc822;x@example.com",
])
def test_rcpt_parameters_accepted(server, params):
    server.make_maildir("x@example.com")
    c = server.session()
    c.expect("MAIL FROM:<a@b.example>", SENDER_OK)
    c.expect("RCPT TO:<x@example.com> " + params, "250 2.1.5 Recipient OK")


@pytest.mark.parametrize("params", ["FOO=bar", "XYZZY", "X-FOO=1"])
def test_mail_unknown_parameter(server, params):
    c = server.session()
    c.expect("MAIL FROM:<a@b.example> " + params, "555 5.5.4 ...")


@pytest.mark.parametrize("params", ["FOO=bar", "XYZZY"])
def test_rcpt_unknown_parameter(server, params):
    server.make_maildir("x@example.com")
    c = server.session()
    c.expect("MAIL FROM:<a@b.example>", SENDER_OK)
    c.expect("RCPT TO:<x@example.com> " + params, "555 5.5.4 ...")


@pytest.mark.parametrize("params", [
    "BODY=9BIT",
    "SIZE=abc",
    "SIZE=",
    "RET=SOME",
    "ENVID=bad+zz",
])
def test_mail_parameter_bad_value(server, params):
    c = server.session()
    c.expect("MAIL FROM:<a@b.example> " + params, "501 5.5.4 ...")


@pytest.mark.parametrize("params", [
    "NOTIFY=never,success",
    "NOTIFY=sometimes",
    "NOTIFY=",
    "ORCPT=x@example.com",
])
def test_rcpt_parameter_bad_value(server, params):
    server.make_maildir("x@example.com")
    c = server.session()
    c.expect("MAIL FROM:<a@b.example>", SENDER_OK)
    c.expect("RCPT TO:<x@example.com> " + params, "501 5.5.4 ...")


def test_mail_size_over_limit(ternd):
    s = ternd(max_message_size="2000")
    c = s.connect()
    c.expect("EHLO client.example", ehlo_reply(2000))
    c.converse([
        ("MAIL FROM:<a@b.example> SIZE=2001", "552 5.3.4 ..."),
        ("MAIL FROM:<a@b.example> SIZE=2000", SENDER_OK),
    ])


# --------------------------------------------------------------------------
# DATA


def test_data_without_mail(server):
    """The reply names the command it refuses (not "before RCPT")."""
    c = server.session()
    c.expect("DATA", "503 5.5.1 Need MAIL before DATA")
    c.expect("RCPT TO:<x@example.com>", "503 5.5.1 Need MAIL before RCPT")


def test_data_without_valid_recipient(server):
    c = server.session()
    c.converse([
        ("MAIL FROM:<a@b.example>",      SENDER_OK),
        ("DATA",                         "503 5.5.1 ..."),
        ("RCPT TO:<nobody@example.com>", USER_UNKNOWN),
        ("RCPT TO:<x@far.example>",      NO_RELAY),
        ("DATA",                         "503 5.5.1 ..."),
        ("NOOP",                         OK),   # not in DATA mode
    ])


def test_queue_ids_are_16_hex_digits_and_distinct(server):
    server.make_maildir("x@example.com")
    c = server.session()
    ids = [c.send_mail("a@b.example", ["x@example.com"], crlf("Subject: %d" % i, "", "m"))
           for i in range(3)]
    for qid in ids:
        assert re.fullmatch(r"[0-9A-F]{16}", qid)
    assert len(set(ids)) == 3, "queue ids repeat: %r" % ids


# --------------------------------------------------------------------------
# QUIT, RSET, NOOP, HELP, VRFY, EXPN, unsupported commands


def test_quit_closes(server):
    c = server.session()
    c.expect("QUIT", "221 2.0.0 Service closing transmission channel")
    extra = c.wait_closed()
    assert extra == b"", "server sent more after 221: %r" % extra


def test_rset_resets_transaction(server):
    server.make_maildir("x@example.com")
    c = server.session()
    c.converse([
        ("MAIL FROM:<a@b.example>",  SENDER_OK),
        ("RCPT TO:<x@example.com>",  RCPT_OK),
        ("RSET",                     "250 2.0.0 OK"),
        ("RCPT TO:<x@example.com>",  "503 5.5.1 ..."),
        ("DATA",                     "503 5.5.1 ..."),
        ("MAIL FROM:<c@d.example>",  SENDER_OK),
        ("RCPT TO:<x@example.com>",  RCPT_OK),
    ])


@pytest.mark.parametrize("line", ["NOOP", "noop", "NOOP anything at all"])
def test_noop(server, line):
    c = server.session()
    c.expect(line, "250 2.0.0 OK")


def test_unknown_command(server):
    c = server.session()
    c.expect("FOO", "500 5.5.1 Unrecognized command")
    c.expect("XYZZY plugh", "500 5.5.1 Unrecognized command")
    c.expect("NOOP", OK)


def test_help_lists_commands(server):
    c = server.session()
    r = c.cmd("HELP")
    assert r.code == 214, "HELP gave %r" % r.text
    assert len(r.lines) >= 2, "HELP reply is not multi-line: %r" % r.text
    words = set(re.findall(r"[A-Z]+", r.text))
    for verb in "HELO EHLO MAIL RCPT DATA RSET VRFY EXPN HELP NOOP QUIT".split():
        assert verb in words, "HELP does not list %s: %r" % (verb, r.text)


@pytest.mark.parametrize("verb", ["VRFY", "EXPN"])
def test_vrfy_expn_disclose_nothing_by_default(server, verb):
    server.make_maildir("x@example.com")
    c = server.session()
    known = c.expect("%s x@example.com" % verb, "252 2.0.0 ...")
    unknown = c.expect("%s nobody@example.com" % verb, "252 2.0.0 ...")
    assert known.text == unknown.text, (
        "%s tells an existing mailbox from a missing one: %r vs %r" % (verb, known.text, unknown.text))
    bare_known = c.expect("%s x" % verb, "252 2.0.0 ...")
    bare_unknown = c.expect("%s nobody" % verb, "252 2.0.0 ...")
    assert bare_known.text == bare_unknown.text


def test_vrfy_disclose(ternd):
    s = ternd(vrfy_disclose="yes")
    s.make_maildir("x@example.com")
    c = s.session()
    c.converse([
        ("VRFY x@example.com",      "250 2.1.5 ..."),
        ("VRFY nobody@example.com", "550 5.1.1 ..."),
    ])


@pytest.mark.parametrize("line", ["TURN", "ETRN x", "ETRN example.com", "VERB", "DSN"])
def test_unsupported_commands(server, line):
    c = server.session()
    r = c.expect(line, "502 5.5.1 ...")
    if line == "TURN":
        assert re.fullmatch(r"502 5\.5\.1 \S.*", r.text), "TURN refused without a reason: %r" % r.text
    c.expect("NOOP", OK)


# --------------------------------------------------------------------------
# PIPELINING (RFC 2920)


def test_pipelined_transaction(server):
    server.make_maildir("x@example.com")
    c = server.session()
    c.raw(b"MAIL FROM:<a@b>\r\nRCPT TO:<x@example.com>\r\n"
          b"RCPT TO:<nobody@example.com>\r\nDATA\r\n")
    c.expect_reply("250 2.1.0 Sender OK", after="pipelined MAIL")
    c.expect_reply("250 2.1.5 Recipient OK", after="pipelined RCPT 1")
    c.expect_reply("550 5.1.1 User unknown", after="pipelined RCPT 2")
    c.expect_reply(START_DATA, after="pipelined DATA")
    c.raw(b"Subject: pipelined\r\n\r\nhello\r\n.\r\nQUIT\r\n")
    c.expect_reply(QUEUED, after="the final dot")
    c.expect_reply(BYE, after="pipelined QUIT")
    c.wait_closed()
    server.wait_message_with("x@example.com", "Subject: pipelined")


def test_pipelined_rset_and_second_transaction(server):
    server.make_maildir("x@example.com", "y@example.com")
    c = server.session()
    c.raw(b"MAIL FROM:<a@b.example>\r\nRCPT TO:<x@example.com>\r\nRSET\r\n"
          b"MAIL FROM:<c@d.example>\r\nRCPT TO:<y@example.com>\r\nDATA\r\n")
    for want in (SENDER_OK, RCPT_OK, OK, SENDER_OK, RCPT_OK, START_DATA):
        c.expect_reply(want)
    c.raw(b"Subject: second\r\n\r\nonly y\r\n.\r\nNOOP\r\n")
    c.expect_reply(QUEUED)
    c.expect_reply(OK)
    server.wait_message_with("y@example.com", "only y")
    server.barrier("x@example.com")
    assert len(server.messages("x@example.com")) == 1, "RSET transaction was delivered"


def test_pipelined_failed_rcpts_then_data(server):
    c = server.session()
    c.raw(b"MAIL FROM:<a@b.example>\r\nRCPT TO:<nobody@example.com>\r\nDATA\r\n"
          b"NOOP\r\n")
    c.expect_reply(SENDER_OK)
    c.expect_reply(USER_UNKNOWN)
    c.expect_reply("503 5.5.1 ...", after="pipelined DATA with no recipient")
    c.expect_reply(OK, after="NOOP following the refused DATA")


# --------------------------------------------------------------------------
# Malformed command lines


def test_bare_lf_in_command_line(server):
    server.make_maildir("x@example.com")
    c = server.session()
    # One line (up to the CRLF) that contains a bare LF: one 500 5.5.2, and
    # neither half is executed.
    c.raw(b"MAIL FROM:<a@b.example>\nRCPT TO:<x@example.com>\r\n")
    c.expect_reply("500 5.5.2 ...", after="a command line with a bare LF")
    # if MAIL had run, this would be 250; if the tail had run, 503 already
    # came above and this reply would be out of step
    c.expect("VRFY x", "252 2.0.0 ...")
    c.expect("RCPT TO:<x@example.com>", "503 5.5.1 ...")
    c.expect("MAIL FROM:<a@b.example>", SENDER_OK)


def test_bare_lf_terminated_command(server):
    c = server.session()
    c.raw(b"NOOP\nNOOP\r\n")
    c.expect_reply("500 5.5.2 ...", after="NOOP<LF>NOOP<CRLF>")
    c.expect("HELP", re.compile(r"214[ -].*", re.S))


def test_command_line_too_long(server):
    c = server.session()
    c.send("NOOP " + "x" * 3000)
    c.expect_reply("500 5.5.2 Line too long", after="a 3005-octet command line")


def test_command_line_too_long_rest_is_not_executed(server):
    c = server.session()
    # the tail of an overlong line must not be read as a command
    c.send("X" * 2100 + "RSET")
    c.expect_reply("500 5.5.2 Line too long", after="a 2104-octet command line")
    c.expect("VRFY x", "252 2.0.0 ...")


def test_command_line_of_2000_octets_is_not_too_long(server):
    c = server.session()
    c.expect("NOOP " + "x" * 1995, OK)


# --------------------------------------------------------------------------
# Timeouts


def test_command_timeout_closes_idle_session(ternd):
    s = ternd(command_timeout="1s")
    c = s.session()
    got = c.wait_closed()
    if got:
        assert re.fullmatch(rb"421[ -][^\r\n]*\r\n", got), (
            "on command timeout the server sent %r (only a 421 reply may precede the close)" % got)
