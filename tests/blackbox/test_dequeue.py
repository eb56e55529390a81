"""The dequeue trigger (dequeue_listen), the seeds' "telnet
autoturn.plus.net 79": a customer's server connects, and the mail held for
its domains (hold_domains whose transport_map host is the client's own
address) is delivered to it while the connection tells what happens; then
tern closes the connection. And what ternctl shows of held domains.

The customer's server is a real smtp-sink on 127.0.0.1 named by
transport_map; the trigger's clients are raw sockets, as telnet is; a
client of another address binds 127.0.0.2. Every wait has a deadline.
"""

import json
import re
import socket
import time

import pytest

from conftest import DEADLINE, free_port, wait_for
from peers import SmtpSink, free_port_on
from test_backupmx import HELD, send, sink_subjects, wait_held
from test_ternctl import ctl, jlines, queue_json


def trigger_raw(port, source="127.0.0.1", hang_up=False):
    """Connect to the trigger from source; read until ternd closes (b""
    from recv within the deadline). Returns what came, or None when the
    client hung up at once."""
    with socket.create_connection(("127.0.0.1", port), timeout=DEADLINE,
                                  source_address=(source, 0)) as sk:
        if hang_up:
            return None
        data = b""
        end = time.monotonic() + DEADLINE
        while True:
            left = end - time.monotonic()
            assert left > 0, ("ternd did not close the dequeue connection within %.0f s; "
                              "received %r" % (DEADLINE, data))
            sk.settimeout(left)
            chunk = sk.recv(65536)
            if not chunk:
                return data
            data += chunk


def trigger(port, source="127.0.0.1"):
    """The lines of one connection, each ended by CRLF as telnet shows them."""
    data = trigger_raw(port, source)
    assert data.endswith(b"\r\n") and b"\n" not in data.replace(b"\r\n", b""), data
    return data.decode().split("\r\n")[:-1]


def customer(ternd, tmp_path, *sink_options, host="127.0.0.1", **overrides):
    """A ternd holding held.test for a customer at 127.0.0.1 (an smtp-sink,
    the transport_map entry), with the trigger on 127.0.0.1."""
    sink_port = free_port_on("127.0.0.1")
    sink = SmtpSink(tmp_path, "127.0.0.1", sink_port, *sink_options)
    tmap = tmp_path / "transport"
    tmap.write_text("%s %s:%d\nother.test 127.0.0.1:%d\n" % (HELD, host, sink_port, sink_port))
    opts = dict(transport_map=str(tmap), hold_domains=HELD, relay_networks="127.0.0.0/8",
                dequeue_listen="127.0.0.1:%d" % free_port(), mailboxes=("alice@example.com",))
    opts.update(overrides)
    s = ternd(**opts)
    s.sink = sink
    s.sink_port = sink_port
    s.tmap = tmap
    s.dq_port = int(opts["dequeue_listen"].rsplit(":", 1)[1])
    return s


@pytest.fixture
def backup(ternd, tmp_path):
    s = customer(ternd, tmp_path)
    yield s
    s.sink.stop()


def progress(lines):
    """{(verb, address): qid} of the progress lines."""
    out = {}
    for line in lines:
        m = re.fullmatch(r"(delivered|deferred|failed) ([0-9A-F]{16}) to (\S+)(: .*)?", line)
        if m:
            out[(m.group(1), m.group(3))] = m.group(2)
    return out


# --------------------------------------------------------------------------
# the trigger


def test_dequeue_delivers_held_mail_and_closes(backup):
    s = backup
    a = send(s, "alice@example.com", ["u1@held.test"], subject="first")
    b = send(s, "alice@example.com", ["u2@held.test", "u3@held.test"], subject="second")
    wait_held(s, ["u1@held.test", "u2@held.test", "u3@held.test"])
    assert sink_subjects(s.sink) == []
    lines = trigger(s.dq_port)
    assert lines[0] == "dequeuing 2 messages", lines
    assert progress(lines) == {("delivered", "u1@held.test"): a, ("delivered", "u2@held.test"): b,
                               ("delivered", "u3@held.test"): b}, lines
    assert lines[-1] == "done: 3 delivered, 0 deferred, 0 failed", lines
    assert len(lines) == 5, lines
    assert sink_subjects(s.sink) == ["first", "second"]
    wait_for("the queue empty", lambda: queue_json(s) == [])
    log = s.log()
    assert re.search(r"dequeue: client=127\.0\.0\.1, domain=held\.test", log), log
    assert re.search(r"release: domain=held\.test, released=3, messages=2", log), log
    assert re.search(r"dequeue: client=127\.0\.0\.1, delivered=3, deferred=0, failed=0", log), log


def test_nothing_waiting(backup):
    assert trigger(backup.dq_port) == ["no messages waiting for held.test"]


def test_a_client_with_no_held_domain(backup):
    s = backup
    send(s, "alice@example.com", ["u1@held.test"], subject="not for them")
    wait_held(s, ["u1@held.test"])
    lines = trigger(s.dq_port, source="127.0.0.2")
    assert lines == ["no mail is held here for [127.0.0.2]: no domain of hold_domains has this "
                     "address as its transport_map host"], lines
    assert "dequeue: client=127.0.0.2, held=none" in s.log()
    time.sleep(0.3)
    assert sink_subjects(s.sink) == [] and wait_held(s, ["u1@held.test"])


def test_a_client_that_hangs_up_at_once(backup):
    """The release goes on without it; ternd goes on serving."""
    s = backup
    send(s, "alice@example.com", ["u1@held.test"], subject="nobody watching")
    wait_held(s, ["u1@held.test"])
    assert trigger_raw(s.dq_port, hang_up=True) is None
    wait_for("the held mail at the customer", lambda: sink_subjects(s.sink) == ["nobody watching"])
    wait_for("the queue empty", lambda: queue_json(s) == [])
    assert trigger(s.dq_port) == ["no messages waiting for held.test"]
    c = s.connect()
    c.expect("QUIT", "221 ...")
    wait_for("the end logged", lambda: re.search(
        r"dequeue: client=127\.0\.0\.1, delivered=1, deferred=0, failed=0", s.log()))


@pytest.mark.parametrize("refuse, verb, code, done", [
    ("-r", "deferred", "4", "done: 0 delivered, 1 deferred, 0 failed (the deferred wait for the "
                            "next dequeue)"),
    ("-f", "failed", "5", "done: 0 delivered, 0 deferred, 1 failed"),
])
def test_deferred_and_failed_are_told(ternd, tmp_path, refuse, verb, code, done):
    """The customer's server refuses RCPT, for now (4xx: the mail waits,
    held, for the next connection) or for good (5xx: a bounce), and the
    line says so with its reply."""
    s = customer(ternd, tmp_path, refuse, "RCPT")
    try:
        qid = send(s, "alice@example.com", ["u1@held.test"], subject="refused")
        wait_held(s, ["u1@held.test"])
        lines = trigger(s.dq_port)
        assert lines[0] == "dequeuing 1 message", lines
        assert re.fullmatch(r"%s %s to u1@held\.test: %s\.\d\.\d .*said: %s\d\d .*"
                            % (verb, qid, code, code), lines[1]), lines
        assert lines[2:] == [done], lines
        if verb == "deferred":
            wait_held(s, ["u1@held.test"])
        else:
            s.wait_message_with("alice@example.com", "u1@held.test")
    finally:
        s.sink.stop()


def test_a_release_under_way(ternd, tmp_path):
    """A second connection while the first one's release goes on (the
    customer's server sits on DATA) is told so, and closed."""
    s = customer(ternd, tmp_path, "-w", "2")
    try:
        send(s, "alice@example.com", ["u1@held.test"], subject="slow")
        wait_held(s, ["u1@held.test"])
        first = socket.create_connection(("127.0.0.1", s.dq_port), timeout=DEADLINE)
        first.settimeout(DEADLINE)
        assert first.recv(4096) == b"dequeuing 1 message\r\n"
        assert trigger(s.dq_port) == ["a release of held.test is under way: try again once it "
                                      "is done"]
        rest = b""
        while not rest.endswith(b"failed\r\n"):
            chunk = first.recv(4096)
            assert chunk, rest
            rest += chunk
        assert rest.endswith(b"done: 1 delivered, 0 deferred, 0 failed\r\n"), rest
        assert first.recv(4096) == b""
        first.close()
    finally:
        s.sink.stop()


def test_a_transport_map_host_by_name(ternd, tmp_path):
    """A host name in the transport_map is resolved (localhost: 127.0.0.1),
    without the loop waiting for it."""
    s = customer(ternd, tmp_path, host="localhost")
    try:
        send(s, "alice@example.com", ["u1@held.test"], subject="by name")
        wait_held(s, ["u1@held.test"])
        lines = trigger(s.dq_port)
        assert lines[0] == "dequeuing 1 message" and lines[-1].startswith("done: 1 delivered"), lines
        assert sink_subjects(s.sink) == ["by name"]
    finally:
        s.sink.stop()


def test_the_settings_in_force_at_each_connection(ternd, tmp_path):
    """The transport map changed and reloaded: the next connection sees it."""
    s = customer(ternd, tmp_path, host="127.0.0.9")
    try:
        assert trigger(s.dq_port) == ["no mail is held here for [127.0.0.1]: no domain of "
                                      "hold_domains has this address as its transport_map host"]
        s.tmap.write_text("%s 127.0.0.1:%d\n" % (HELD, s.sink_port))
        ctl(s, "reload")
        assert trigger(s.dq_port) == ["no messages waiting for held.test"]
    finally:
        s.sink.stop()


def test_queue_only_explains(ternd, tmp_path):
    s = customer(ternd, tmp_path, queue_only="yes")
    try:
        lines = trigger(s.dq_port)
        assert lines == ["mail is held here for held.test, but delivery is off (queue_only = yes): "
                         "try again later"], lines
    finally:
        s.sink.stop()


def test_delivery_paused_explains(backup):
    s = backup
    send(s, "alice@example.com", ["u1@held.test"], subject="after the pause")
    wait_held(s, ["u1@held.test"])
    ctl(s, "pause", "delivery")
    assert trigger(s.dq_port) == ["mail is held here for held.test, but delivery is paused "
                                  "(ternctl pause delivery): try again later"]
    ctl(s, "resume")
    assert trigger(s.dq_port)[0] == "dequeuing 1 message"
    assert sink_subjects(s.sink) == ["after the pause"]


def test_etrn_counts_the_recipients_released(ternd, tmp_path):
    """ETRN's 253 counts what it released: recipients (a release works per
    recipient), as the issue's interface says; the dequeue trigger's line
    counts messages."""
    s = customer(ternd, tmp_path, etrn_networks="127.0.0.1/32")
    send(s, "alice@example.com", ["u1@held.test", "u2@held.test"], subject="two recipients")
    wait_held(s, ["u1@held.test", "u2@held.test"])
    c = s.connect()
    assert c.cmd("EHLO client.example").code == 250
    r = c.cmd("ETRN held.test")
    assert r.code == 253 and "OK, 2 pending messages for node held.test started" in r.text, r.lines
    c.expect("QUIT", "221 ...")
    wait_for("both delivered", lambda: sink_subjects(s.sink) == ["two recipients"])
    s.sink.stop()


# --------------------------------------------------------------------------
# what ternctl shows of held domains


def test_ternctl_shows_held_domains(backup):
    s = backup
    send(s, "alice@example.com", ["u1@held.test"], subject="one")
    send(s, "alice@example.com", ["u2@held.test", "u3@held.test"], subject="two")
    wait_held(s, ["u1@held.test", "u2@held.test", "u3@held.test"])
    ctl(s, "hold", "example.net")
    st = jlines(ctl(s, "status", json_out=True))[-1]
    assert st["held_domains"] == [
        {"domain": "example.net", "recipients": 0, "messages": 0, "configured": False,
         "operator": True},
        {"domain": HELD, "recipients": 3, "messages": 2, "configured": True, "operator": False},
    ], st
    human = ctl(s, "status").stdout
    assert "held domains (waiting for a release):\n" in human, human
    assert "  held.test: 3 recipients in 2 messages (hold_domains)\n" in human, human
    assert "  example.net: 0 recipients (ternctl hold)\n" in human, human
    table = ctl(s, "queue").stdout.splitlines()
    assert table[-2:] == ["-- held for held.test: 3 recipients in 2 messages (hold_domains)",
                          "-- 2 messages"], table
    out = ctl(s, "queue", json_out=True).stdout
    assert all("queue_id" in json.loads(line) for line in out.splitlines()), out
    assert "held_domains" not in out
    one = ctl(s, "queue", "--domain", "other.test").stdout
    assert "held for" not in one
    ctl(s, "release", "example.net")
    lines = trigger(s.dq_port)
    assert lines[0] == "dequeuing 2 messages", lines
    st = jlines(ctl(s, "status", json_out=True))[-1]
    assert st["held_domains"] == [
        {"domain": HELD, "recipients": 0, "messages": 0, "configured": True, "operator": False}]


def test_ternd_stops_during_a_release(ternd, tmp_path):
    """SIGTERM while the customer's server sits on DATA: the client is
    told, ternd exits 0 (the fixture's checks: no sanitizer report, no
    leak), and the mail is still queued for the next connection."""
    s = customer(ternd, tmp_path, "-w", "30")
    try:
        send(s, "alice@example.com", ["u1@held.test"], subject="interrupted")
        wait_held(s, ["u1@held.test"])
        with socket.create_connection(("127.0.0.1", s.dq_port), timeout=DEADLINE) as sk:
            sk.settimeout(DEADLINE)
            assert sk.recv(4096) == b"dequeuing 1 message\r\n"
            s.stop_checked()
            rest = b""
            while True:
                chunk = sk.recv(4096)
                if not chunk:
                    break
                rest += chunk
        assert rest == (b"ternd is stopping: what was not delivered waits for the next "
                        b"connection\r\n"), rest
    finally:
        s.sink.stop()


def test_an_ipv6_client(ternd, tmp_path):
    """dequeue_listen on [::1]: the client's IPv6 address matches a
    transport_map host [::1] (nothing listens there: the mail is tried,
    deferred, and waits again)."""
    try:
        with socket.socket(socket.AF_INET6) as t:
            t.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback")
    tmap = tmp_path / "transport"
    tmap.write_text("%s [::1]:%d\n" % (HELD, free_port()))
    port = free_port()
    s = ternd(transport_map=str(tmap), hold_domains=HELD, dequeue_listen="[::1]:%d" % port,
              mailboxes=("alice@example.com",))
    qid = send(s, "alice@example.com", ["u1@held.test"], subject="over IPv6")
    wait_held(s, ["u1@held.test"])
    with socket.create_connection(("::1", port), timeout=DEADLINE) as sk:
        data = b""
        while not data.endswith(b"next dequeue)\r\n"):
            chunk = sk.recv(4096)
            assert chunk, data
            data += chunk
        assert sk.recv(4096) == b""
    lines = data.decode().split("\r\n")[:-1]
    assert lines[0] == "dequeuing 1 message" and lines[1].startswith("deferred %s to u1@held.test: "
                                                                    % qid), lines
    assert "dequeue: client=::1, domain=held.test" in s.log()
