"""Local delivery into Maildirs: the file format, one copy per recipient,
aliases, postmaster, queue_only, concurrent sessions."""

import re

from conftest import (BYE, EHLO_REPLY, HELO_OK, QUEUED, QUEUED_HELO, RCPT_OK,
                      SENDER_OK, START_DATA, USER_UNKNOWN, Delivered, crlf)


def test_delivered_file_format(server):
    server.make_maildir("x@example.com")
    c = server.connect()
    c.expect("EHLO relay.client.example", EHLO_REPLY)
    msg = crlf("From: A <a@b.example>", "To: x@example.com", "Subject: format",
               "", "line 1", "", "line 3 after an empty line", "\ttabbed", "")
    qid = c.send_mail("a@b.example", ["x@example.com"], msg)
    c.expect("QUIT", BYE)
    [data] = server.wait_messages("x@example.com", 1)
    d = Delivered(data)
    d.check(sender="a@b.example", rcpt="x@example.com", helo="relay.client.example",
            proto="ESMTP", qid=qid, message=msg)
    assert data.endswith(b"\n\n"), "trailing empty line lost"


def test_delivered_after_helo_says_smtp(server):
    server.make_maildir("x@example.com")
    c = server.connect()
    c.expect("HELO old.client.example", HELO_OK)
    msg = crlf("Subject: helo", "", "plain SMTP")
    qid = c.send_mail("a@b.example", ["x@example.com"], msg, ehlo=False)
    [data] = server.wait_messages("x@example.com", 1)
    d = Delivered(data)
    d.check(sender="a@b.example", rcpt="x@example.com", helo="old.client.example",
            proto="SMTP", qid=qid, message=msg)
    assert not re.search(r"\bwith ESMTP", d.received), d.received


def test_null_sender(server):
    server.make_maildir("x@example.com")
    c = server.session()
    msg = crlf("Subject: bounce", "", "a bounce")
    qid = c.converse([
        ("mail from:<>",            SENDER_OK),
        ("RCPT TO:<x@example.com>", RCPT_OK),
        ("DATA",                    START_DATA),
        ("Subject: bounce",         None),
        ("",                        None),
        ("a bounce",                None),
        (".",                       QUEUED),
    ])[-1]
    [data] = server.wait_messages("x@example.com", 1)
    Delivered(data).check(sender="", rcpt="x@example.com", helo="client.example",
                          qid=QUEUED.fullmatch(qid.text).group(1), message=msg)
    assert data.startswith(b"Return-Path: <>\n")


def test_one_copy_per_recipient(server):
    rcpts = ["one@example.com", "two@example.com", "three@mx.test.example"]
    server.make_maildir(*rcpts)
    c = server.session()
    msg = crlf("Subject: three copies", "", "hello all")
    qid = c.send_mail("a@b.example", rcpts, msg)
    for r in rcpts:
        [data] = server.wait_messages(r, 1)
        Delivered(data).check(sender="a@b.example", rcpt=r, helo="client.example",
                              qid=qid, message=msg)


def test_refused_recipient_gets_nothing_others_do(server):
    server.make_maildir("x@example.com")
    c = server.session()
    c.converse([
        ("MAIL FROM:<a@b.example>",      SENDER_OK),
        ("RCPT TO:<nobody@example.com>", USER_UNKNOWN),
        ("RCPT TO:<x@example.com>",      RCPT_OK),
        ("DATA",                         START_DATA),
        ("Subject: partial",             None),
        ("",                             None),
        (".",                            QUEUED),
    ])
    server.wait_messages("x@example.com", 1)
    assert not server.mailbox("nobody@example.com").exists(), "a Maildir was made for an unknown user"


def test_mixed_case_recipient_lands_in_lower_case_maildir(server):
    server.make_maildir("john.doe@example.com")
    c = server.session()
    c.converse([
        ("MAIL FROM:<a@b.example>",        SENDER_OK),
        ("RCPT TO:<John.Doe@EXAMPLE.com>", RCPT_OK),
        ("DATA",                           START_DATA),
        ("Subject: case",                  None),
        ("",                               None),
        (".",                              QUEUED),
    ])
    [data] = server.wait_messages("john.doe@example.com", 1)
    d = Delivered(data)
    assert d.delivered_to.lower() == "delivered-to: john.doe@example.com", d.delivered_to


def test_several_messages_one_connection(server):
    server.make_maildir("x@example.com")
    c = server.session()
    for i in range(5):
        c.send_mail("a@b.example", ["x@example.com"], crlf("Subject: n%d" % i, "", "msg %d" % i))
    datas = server.wait_messages("x@example.com", 5)
    bodies = sorted(Delivered(d).body for d in datas)
    assert bodies == sorted(b"Subject: n%d\n\nmsg %d\n" % (i, i) for i in range(5))


def test_concurrent_sessions(server):
    n = 8
    server.make_maildir("x@example.com")
    clients = [server.session() for _ in range(n)]
    for i, c in enumerate(clients):
        c.expect("MAIL FROM:<s%d@b.example>" % i, SENDER_OK)
    for c in clients:
        c.expect("RCPT TO:<x@example.com>", RCPT_OK)
        c.expect("DATA", START_DATA)
    for i, c in enumerate(clients):
        c.raw(b"Subject: concurrent %d\r\n\r\n" % i)
    for i, c in reversed(list(enumerate(clients))):
        c.raw(b"from client %d\r\n.\r\n" % i)
        c.expect_reply(QUEUED)
    datas = server.wait_messages("x@example.com", n)
    assert len(datas) == n
    got = sorted(Delivered(d).return_path for d in datas)
    assert got == sorted("Return-Path: <s%d@b.example>" % i for i in range(n))


def test_parallel_maildir_workers_write_each_copy_once(ternd):
    """destination_concurrency Maildir workers share the local jobs: every
    copy lands once, in its own mailbox, with nothing left in tmp/."""
    s = ternd(destination_concurrency="4")
    boxes = ["w%d@example.com" % i for i in range(6)]
    s.make_maildir(*boxes)
    want = {b: set() for b in boxes}
    for k in range(4):
        c = s.session()
        for i in range(6):
            rcpts = [boxes[i], boxes[(i + k + 1) % 6]]
            marker = "par-%d-%d" % (k, i)
            c.send_mail("a@b.example", rcpts, crlf("Subject: " + marker, "", marker))
            for r in rcpts:
                want[r].add(marker)
        c.expect("QUIT", BYE)
    s.barrier("w0@example.com")   # everything queued before it had its turn
    for b in boxes:
        datas = s.wait_messages(b, len(want[b]))
        got = [re.search(rb"Subject: (par-\d+-\d+)", d) for d in datas
               if b"Subject: par-" in d]
        assert sorted(m.group(1).decode() for m in got) == sorted(want[b]), b
        assert not list((s.mailbox(b) / "tmp").iterdir()), b


# --------------------------------------------------------------------------
# Aliases


ALIASES = """\
# tern aliases: address: target, target
sales: alice, bob
info@example.com: carol@mx.test.example
team@mx.test.example: dave@example.com, alice
"""


def aliased_server(ternd, tmp_path):
    path = tmp_path / "aliases"
    path.write_text(ALIASES)
    s = ternd(aliases_file=str(path))
    s.make_maildir("alice@example.com", "bob@example.com", "alice@mx.test.example",
                   "bob@mx.test.example", "carol@mx.test.example", "dave@example.com")
    return s


def send_one(s, rcpt, subject):
    c = s.session()
    msg = crlf("Subject: " + subject, "", "to " + rcpt)
    qid = c.send_mail("a@b.example", [rcpt], msg)
    c.expect("QUIT", BYE)
    return qid, msg


def test_alias_bare_local_part_any_local_domain(ternd, tmp_path):
    s = aliased_server(ternd, tmp_path)
    qid, msg = send_one(s, "sales@example.com", "sales")
    for t in ("alice@example.com", "bob@example.com"):
        [data] = s.wait_messages(t, 1)
        Delivered(data).check(sender="a@b.example", rcpt=t, helo="client.example",
                              qid=qid, message=msg)
    qid, msg = send_one(s, "sales@mx.test.example", "sales2")
    for t in ("alice@mx.test.example", "bob@mx.test.example"):
        [data] = s.wait_messages(t, 1)
        Delivered(data).check(sender="a@b.example", rcpt=t, helo="client.example",
                              qid=qid, message=msg)
    assert len(s.messages("alice@example.com")) == 1


def test_alias_full_address(ternd, tmp_path):
    s = aliased_server(ternd, tmp_path)
    qid, msg = send_one(s, "info@example.com", "info")
    [data] = s.wait_messages("carol@mx.test.example", 1)
    Delivered(data).check(sender="a@b.example", rcpt="carol@mx.test.example",
                          helo="client.example", qid=qid, message=msg)


def test_alias_full_address_key_only_matches_its_domain(ternd, tmp_path):
    s = aliased_server(ternd, tmp_path)
    c = s.session()
    c.expect("MAIL FROM:<a@b.example>", SENDER_OK)
    c.expect("RCPT TO:<info@mx.test.example>", USER_UNKNOWN)


def test_alias_mixed_targets(ternd, tmp_path):
    s = aliased_server(ternd, tmp_path)
    qid, msg = send_one(s, "team@mx.test.example", "team")
    for t in ("dave@example.com", "alice@mx.test.example"):
        [data] = s.wait_messages(t, 1)
        Delivered(data).check(sender="a@b.example", rcpt=t, helo="client.example",
                              qid=qid, message=msg)
    s.barrier("alice@example.com")
    assert len(s.messages("alice@example.com")) == 1, (
        "bare target 'alice' of team@mx.test.example went to example.com")


# --------------------------------------------------------------------------
# Postmaster


def test_postmaster_without_domain_goes_to_postmaster_address(server):
    # postmaster_address defaults to postmaster@mx.test.example, a local
    # address; its Maildir is created by the daemon.
    c = server.session()
    msg = crlf("Subject: to postmaster", "", "hello postmaster")
    qid = c.converse([
        ("MAIL FROM:<a@b.example>", SENDER_OK),
        ("RCPT TO:<postmaster>",    RCPT_OK),
        ("DATA",                    START_DATA),
        ("Subject: to postmaster",  None),
        ("",                        None),
        ("hello postmaster",        None),
        (".",                       QUEUED),
    ])[-1]
    [data] = server.wait_messages("postmaster@mx.test.example", 1)
    Delivered(data).check(sender="a@b.example", rcpt="postmaster@mx.test.example",
                          helo="client.example", qid=QUEUED.fullmatch(qid.text).group(1),
                          message=msg)


def test_postmaster_of_any_local_domain(server):
    c = server.session()
    c.send_mail("a@b.example", ["postmaster@example.com"], crlf("Subject: pm", "", "pm"))
    server.wait_message_with("postmaster@mx.test.example", "Subject: pm")


def test_configured_postmaster_address(ternd):
    s = ternd(postmaster_address="boss@example.com")
    c = s.session()
    c.send_mail("a@b.example", ["postmaster"], crlf("Subject: boss", "", "to the boss"))
    c.send_mail("a@b.example", ["postmaster@mx.test.example"], crlf("Subject: boss2", "", "x"))
    datas = s.wait_messages("boss@example.com", 2)
    for d in datas:
        assert Delivered(d).delivered_to == "Delivered-To: boss@example.com"


def test_postmaster_in_helo_session(server):
    c = server.connect()
    c.converse([
        ("HELO client.example",    HELO_OK),
        ("MAIL FROM:<>",           "250 Sender OK"),
        ("RCPT TO:<Postmaster>",   "250 Recipient OK"),
        ("DATA",                   START_DATA),
        ("Subject: helo pm",       None),
        ("",                       None),
        (".",                      QUEUED_HELO),
    ])
    server.wait_message_with("postmaster@mx.test.example", "Subject: helo pm")


# --------------------------------------------------------------------------
# queue_only


def test_queue_only_accepts_but_does_not_deliver(ternd):
    s = ternd(queue_only="yes")
    s.make_maildir("x@example.com")
    c = s.session()
    c.send_mail("a@b.example", ["x@example.com"], crlf("Subject: held", "", "held"))
    c.send_mail("a@b.example", ["x@example.com"], crlf("Subject: held2", "", "held2"))
    c.expect("QUIT", BYE)
    assert s.messages("x@example.com") == [], "queue_only=yes delivered a message"
    assert s.all_delivered() == []
