"""Durability: a 250 after the final dot means the message survives a crash
(kill -9) and is delivered exactly once; an unfinished transfer leaves
nothing behind. "Exactly once" is checked with a barrier message sent after
the restart: once the barrier is in the Maildir, earlier work is done."""

from conftest import BYE, RCPT_OK, SENDER_OK, START_DATA, crlf


def count_with(server, rcpt, marker):
    marker = marker.encode()
    return sum(1 for f in server.messages(rcpt) if marker in f.read_bytes())


def test_queue_only_then_kill9_then_deliver_once(ternd, tmp_path):
    s1 = ternd(queue_only="yes")
    s1.make_maildir("x@example.com")
    c = s1.session()
    c.send_mail("a@b.example", ["x@example.com"], crlf("Subject: durable", "", "durable-1"))
    assert s1.messages("x@example.com") == [], "queue_only=yes delivered"
    s1.kill9()
    assert s1.messages("x@example.com") == []

    s2 = ternd(queue_only="no")
    s2.wait_message_with("x@example.com", "durable-1")
    s2.barrier("x@example.com")
    assert count_with(s2, "x@example.com", "durable-1") == 1, "the message was delivered more than once"
    assert len(s2.messages("x@example.com")) == 2


def test_queue_only_then_sigterm_then_deliver_all_once(ternd):
    rcpts = ["x@example.com", "y@mx.test.example"]
    s1 = ternd(queue_only="yes")
    s1.make_maildir(*rcpts)
    c = s1.session()
    for i in range(10):
        c.send_mail("a@b.example", rcpts, crlf("Subject: q%d" % i, "", "queued-%02d" % i))
    c.expect("QUIT", BYE)
    s1.stop_checked()
    assert s1.all_delivered() == []

    s2 = ternd()
    for r in rcpts:
        s2.wait_messages(r, 10)
        s2.barrier(r)
        for i in range(10):
            assert count_with(s2, r, "queued-%02d" % i) == 1, "queued-%02d to %s not delivered exactly once" % (i, r)
        assert len(s2.messages(r)) == 11


def test_kill9_right_after_ack_delivers_once(ternd):
    s1 = ternd()
    s1.make_maildir("x@example.com")
    c = s1.session()
    c.send_mail("a@b.example", ["x@example.com"], crlf("Subject: acked", "", "acked-1"))
    s1.kill9()           # delivery may or may not have happened yet

    s2 = ternd()
    s2.wait_message_with("x@example.com", "acked-1")
    s2.barrier("x@example.com")
    assert count_with(s2, "x@example.com", "acked-1") == 1, "the message was delivered more than once"
    assert len(s2.messages("x@example.com")) == 2


def test_clean_restart_does_not_redeliver(ternd):
    s1 = ternd()
    s1.make_maildir("x@example.com")
    c = s1.session()
    c.send_mail("a@b.example", ["x@example.com"], crlf("Subject: once", "", "once-1"))
    s1.wait_message_with("x@example.com", "once-1")
    c.expect("QUIT", BYE)
    s1.stop_checked()

    s2 = ternd()
    s2.barrier("x@example.com")
    assert count_with(s2, "x@example.com", "once-1") == 1
    assert len(s2.messages("x@example.com")) == 2


def test_kill9_during_data_leaves_nothing(ternd):
    s1 = ternd()
    s1.make_maildir("x@example.com")
    c = s1.session()
    c.converse([
        ("MAIL FROM:<a@b.example>", SENDER_OK),
        ("RCPT TO:<x@example.com>", RCPT_OK),
        ("DATA",                    START_DATA),
        ("Subject: interrupted",    None),
        ("",                        None),
        ("half-a-message",          None),
    ])
    s1.kill9()

    s2 = ternd()
    s2.barrier("x@example.com")
    assert count_with(s2, "x@example.com", "half-a-message") == 0, "an unfinished message was delivered"
    assert len(s2.messages("x@example.com")) == 1
    # and the daemon still works after a second restart over that spool
    s2.stop_checked()
    s3 = ternd()
    s3.barrier("x@example.com", tag="after")
    assert len(s3.messages("x@example.com")) == 2
    assert count_with(s3, "x@example.com", "half-a-message") == 0


def test_kill9_with_idle_sessions_then_restart(ternd):
    s1 = ternd()
    s1.make_maildir("x@example.com")
    clients = [s1.session() for _ in range(3)]
    clients[0].expect("MAIL FROM:<a@b.example>", SENDER_OK)
    s1.kill9()
    s2 = ternd()
    s2.barrier("x@example.com")
    assert len(s2.messages("x@example.com")) == 1
