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


def sender_loop(port, k, results, stop):
    """Send messages one after another until told to stop or cut off;
    results[marker] = the reply code to the final dot, None when the
    connection ended before one came."""
    import socket
    sock = socket.create_connection(("127.0.0.1", port), timeout=20)
    f = sock.makefile("rb")

    def reply():
        while True:
            line = f.readline()
            if not line:
                return None
            if line[3:4] != b"-":
                return int(line[:3])
    try:
        if reply() != 220:
            return
        sock.sendall(b"EHLO sender%d.example\r\n" % k)
        if reply() != 250:
            return
        body = b"x" * 998 + b"\r\n"
        for i in range(10000):
            if stop.is_set():
                return
            marker = "sigterm-%d-%05d" % (k, i)
            sock.sendall(b"MAIL FROM:<a@b.example>\r\nRCPT TO:<x@example.com>\r\nDATA\r\n")
            if [reply(), reply(), reply()] != [250, 250, 354]:
                return
            results[marker] = None
            sock.sendall(b"Subject: " + marker.encode() + b"\r\n\r\n" + body * 256 + b".\r\n")
            results[marker] = reply()
            if results[marker] != 250:
                return
    except OSError:
        return
    finally:
        sock.close()


def test_sigterm_never_asks_a_committed_message_to_be_sent_again(ternd):
    """SIGTERM answers 421 to a transaction only while its message is not
    committed: a message whose final dot was in and got committed is
    answered 250 before the session closes. A 421 at the dot makes a real
    client send the message again, so a 421'd message that is delivered
    too is a duplicate."""
    import threading
    import time
    s1 = ternd(queue_only="yes")
    s1.make_maildir("x@example.com")
    results, stop = {}, threading.Event()
    threads = [threading.Thread(target=sender_loop, args=(s1.port, k, results, stop))
               for k in range(8)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 20
    while sum(1 for v in results.values() if v == 250) < 40 and time.monotonic() < deadline:
        time.sleep(0.01)
    s1.stop_checked()          # SIGTERM with commits in flight
    stop.set()
    for t in threads:
        t.join(30)
    acked = [m for m, v in results.items() if v == 250]
    refused = [m for m, v in results.items() if v == 421]
    cut = [m for m, v in results.items() if v is None]
    print("acked %d, 421 at the dot %d, cut before a reply %d" % (len(acked), len(refused), len(cut)))
    assert len(acked) >= 40
    s2 = ternd()
    s2.wait_messages("x@example.com", len(acked))
    s2.barrier("x@example.com")
    have = {}
    for f in s2.messages("x@example.com"):
        for line in f.read_bytes().splitlines():
            if line.startswith(b"Subject: sigterm-"):
                m = line[9:].decode()
                have[m] = have.get(m, 0) + 1
    bad = {m: have.get(m) for m in acked if have.get(m) != 1}
    assert not bad, "acknowledged messages lost or doubled: %s" % bad
    assert not [m for m in refused if m in have], "told to retry, and delivered as well"
    assert all(have.get(m, 0) <= 1 for m in cut)


SHUTDOWN = "421 4.3.2 mx.test.example Service shutting down"


def test_sigterm_lets_a_long_data_transfer_finish(ternd):
    """SIGTERM: the listener closes, a session between transactions gets
    421 at once, one in the middle of DATA goes on (shutdown_grace) and
    gets its 250 before the 421; the message is there after a restart."""
    import signal
    import socket
    s1 = ternd(queue_only="yes", shutdown_grace="20s")
    s1.make_maildir("x@example.com")
    idle = s1.session()
    busy = s1.session()
    busy.expect("MAIL FROM:<a@b.example>", SENDER_OK)
    busy.expect("RCPT TO:<x@example.com>", RCPT_OK)
    busy.expect("DATA", START_DATA)
    busy.raw(b"Subject: long-transfer\r\n\r\n" + b"y" * 998 + b"\r\n")
    s1.proc.send_signal(signal.SIGTERM)
    idle.expect_reply(SHUTDOWN, after="SIGTERM")
    idle.wait_closed()
    import time
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:   # the listener goes
        try:
            socket.create_connection(("127.0.0.1", s1.port), timeout=1).close()
        except ConnectionRefusedError:
            break
        time.sleep(0.02)
    else:
        raise AssertionError("still accepting connections after SIGTERM")
    for _ in range(200):              # the rest of the message, after the signal
        busy.raw(b"z" * 998 + b"\r\n")
    busy.raw(b".\r\n")
    busy.expect_reply("250 2.6.0 ...", after="the final dot")
    busy.expect_reply(SHUTDOWN, after="its 250")
    busy.wait_closed()
    s1.stop_checked()
    assert "transactions under way have 20s to finish" in s1.log()
    s2 = ternd()
    s2.wait_message_with("x@example.com", "long-transfer")


def test_sigterm_grace_over_unfinished_transfer_is_not_kept(ternd):
    """A transfer still unfinished when shutdown_grace is over gets 421 (the
    client will retry it) and leaves nothing behind."""
    import signal
    s1 = ternd(queue_only="yes", shutdown_grace="1s")
    s1.make_maildir("x@example.com")
    c = s1.session()
    c.expect("MAIL FROM:<a@b.example>", SENDER_OK)
    c.expect("RCPT TO:<x@example.com>", RCPT_OK)
    c.expect("DATA", START_DATA)
    c.raw(b"Subject: never-finished\r\n\r\nhalf\r\n")
    s1.proc.send_signal(signal.SIGTERM)
    c.expect_reply(SHUTDOWN, after="shutdown_grace")
    c.wait_closed()
    s1.stop_checked()
    assert "shutdown_grace (1s) is over: 421 to 1 session still open" in s1.log()
    s2 = ternd()
    s2.barrier("x@example.com")
    assert count_with(s2, "x@example.com", "never-finished") == 0


def test_delivery_journal_spares_a_second_delivery(ternd, tmp_path):
    """A recipient delivered just before a crash, whose result the group
    commit had not recorded yet, is in the delivery journal
    (spool_dir/delivered.N, written the moment it was delivered): the next
    start records it from there and does not deliver it again. The crash
    is staged: the message waits in the spool (queue_only), and the
    journal holds the line the delivery thread would have written for its
    second recipient."""
    rcpts = ["x@example.com", "y@example.com"]
    s1 = ternd(tmp=tmp_path / "one", queue_only="yes")
    s1.make_maildir(*rcpts)
    c = s1.session()
    qid = c.send_mail("a@b.example", rcpts, crlf("Subject: journal", "", "journaled-1"))
    c.expect("QUIT", BYE)
    s1.kill9()
    (s1.spool_dir / "delivered.1").write_text("%s 1\n%s 7\nnot a line\n" % (qid, "0" * 16))
    s2 = ternd(tmp=tmp_path / "one")
    s2.wait_message_with("x@example.com", "journaled-1")   # the one not in the journal
    s2.barrier("y@example.com")
    assert count_with(s2, "y@example.com", "journaled-1") == 0, "delivered again"
    assert "1 delivery result of the last run recorded from the journal" in s2.log()
    assert (s2.spool_dir / "delivered.1").read_text() == ""   # applied once
    s2.barrier("x@example.com")
    assert count_with(s2, "x@example.com", "journaled-1") == 1
