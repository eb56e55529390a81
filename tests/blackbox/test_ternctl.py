"""ternctl against a running ternd: the control socket as an operator uses it.

Messages are made deferred by a next hop that refuses connections (a
transport_map entry to a closed port), held by ternctl, and in flight to a
slow smtp-sink (-w: it waits before answering DATA). Every command runs the
real build/ternctl; --json output is parsed, and jq recipes written for
Postfix's `postqueue -j` run on `ternctl queue --json`.
"""

import base64
import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import DEADLINE, REPO, crlf, free_port, wait_for
from peers import SmtpSink, free_port_on, parse, parse_bytes, report_parts
from secfix import PASSWORD, cert, users_file  # noqa: F401 (fixtures)

TERNCTL = os.environ.get("TERNCTL") or str(REPO / "build" / "ternctl")


def ctl(server, *args, json_out=False, input=None, check=True, user=None, timeout=DEADLINE):
    """Run ternctl on the server's control socket; returns the process."""
    argv = [TERNCTL, "-s", str(server.spool_dir / "control")]
    if json_out:
        argv.append("--json")
    argv += list(args)
    if user is not None:
        argv = ["setpriv", "--reuid", user[0], "--regid", user[1]] + (
            ["--groups", user[2]] if len(user) > 2 else ["--clear-groups"]) + argv
    p = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout)
    if check:
        assert p.returncode == 0, "ternctl %s: exit %d\nstdout:\n%s\nstderr:\n%s\nlog:\n%s" % (
            " ".join(args), p.returncode, p.stdout, p.stderr, server.log())
    return p


def jlines(p):
    return [json.loads(line) for line in p.stdout.splitlines() if line.strip()]


def queue_json(server, *args):
    """The messages of `ternctl --json queue`: JSON Lines, one a message
    and nothing else (as `postqueue -j` writes them)."""
    lines = jlines(ctl(server, "queue", *args, json_out=True))
    assert all("queue_id" in m for m in lines), lines
    return lines


def message(subject, body="hello"):
    return crlf("From: <a@example.com>", "To: <x@y>", "Subject: " + subject, "", body)


def ehlo(server):
    """A session after EHLO, whatever extensions the server offers."""
    c = server.connect()
    assert c.cmd("EHLO client.example").code == 250
    return c


def send(server, sender, rcpts, subject="test"):
    c = ehlo(server)
    qid = c.send_mail(sender, rcpts, message(subject))
    c.expect("QUIT", "221 ...")
    c.close()
    return qid


@pytest.fixture
def world(ternd, tmp_path):
    """A ternd whose unreach.test goes to a closed port (deferred) and
    slow.test to an smtp-sink that sits 30 s on DATA (in flight)."""
    sink_port = free_port_on("127.0.0.1")
    sink = SmtpSink(tmp_path, "127.0.0.1", sink_port, "-w", "30")
    closed = free_port()
    tmap = tmp_path / "transport"
    tmap.write_text("unreach.test 127.0.0.1:%d\nslow.test 127.0.0.1:%d\n" % (closed, sink_port))
    s = ternd(transport_map=str(tmap), relay_networks="127.0.0.0/8", retry_min="1h",
              retry_max="2h", mailboxes=("alice@example.com", "bob@example.com"))
    s.sink = sink
    yield s
    sink.stop()


def connected_to(port):
    """An established TCP connection to 127.0.0.1:port (from /proc/net/tcp)."""
    want = ":%04X" % port
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[2].endswith(want) and fields[3] == "01":
                return True
    return False


def wait_deferred(server, qid):
    def tried():
        for m in queue_json(server):
            if m["queue_id"] == qid and m["queue_name"] == "deferred":
                return m
        return None
    return wait_for("message %s deferred" % qid, tried)


# --------------------------------------------------------------------------
# queue, show


def test_queue_json_has_postqueue_members(world):
    deferred = send(world, "alice@example.com", ["u1@unreach.test", "u2@unreach.test"])
    m = wait_deferred(world, deferred)
    inflight = send(world, "alice@example.com", ["s@slow.test"])
    wait_for("ternd connected to the slow sink", lambda: connected_to(world.sink.port))
    held = send(world, "bob@example.com", ["h@unreach.test"])
    ctl(world, "hold", held)
    msgs = {m["queue_id"]: m for m in queue_json(world)}
    assert set(msgs) == {deferred, inflight, held}
    for k in ("queue_name", "queue_id", "arrival_time", "message_size", "forced_expire",
              "sender", "recipients"):
        assert k in m, (k, m)
    assert m["sender"] == "alice@example.com"
    assert m["node"] == "mx.test.example"   # queue ids are unique per node only
    assert abs(m["arrival_time"] - time.time()) < 60
    assert m["message_size"] > 0 and m["forced_expire"] is False
    r = m["recipients"][0]
    assert r["address"] == "u1@unreach.test"
    assert "Connection refused" in r["delay_reason"], r
    assert r["attempts"] == 1 and r["next_try"] > time.time() + 1800
    assert r["held"] is False and r["route"].startswith("smtp:127.0.0.1:")
    assert msgs[held]["queue_name"] == "hold"
    assert all(x["held"] for x in msgs[held]["recipients"])
    assert msgs[inflight]["queue_name"] == "active"
    # --state and --domain filter; the human table has one line a message
    assert [x["queue_id"] for x in queue_json(world, "--state", "held")] == [held]
    assert [x["queue_id"] for x in queue_json(world, "--state", "deferred")] == [deferred]
    assert [x["queue_id"] for x in queue_json(world, "--domain", "slow.test")] == [inflight]
    assert [x["queue_id"] for x in queue_json(world, "--sender", "BOB@example.com")] == [held]
    table = ctl(world, "queue").stdout.splitlines()
    assert table[0].startswith("QUEUE ID") and table[-1] == "-- 3 messages"
    line = [l for l in table if l.startswith(deferred)]
    assert len(line) == 1 and "deferred" in line[0] and "u2@unreach.test" in line[0]
    assert "Connection refused" in line[0]


def test_jq_recipes_from_postfix(world):
    """Recipes written for `postqueue -j` work on `ternctl --json queue`."""
    if not shutil.which("jq"):
        pytest.skip("jq not installed")
    a = send(world, "alice@example.com", ["u1@unreach.test"])
    b = send(world, "bob@example.com", ["u2@unreach.test", "bob@example.com"])
    wait_deferred(world, a)
    wait_deferred(world, b)
    out = ctl(world, "queue", json_out=True).stdout
    # the queue ids of deferred mail to a domain, fed to a delete
    recipe = ('select(.queue_name == "deferred") | select(.recipients[] | '
              '.address | endswith("@unreach.test")) | .queue_id')
    ids = subprocess.run(["jq", "-r", recipe], input=out, capture_output=True, text=True,
                         check=True).stdout.split()
    assert sorted(set(ids)) == sorted([a, b])
    # messages by sender, and the delay reasons counted
    by_sender = subprocess.run(["jq", "-r", "-s", 'group_by(.sender) | map("\\(.[0].sender) '
                                '\\(length)") | .[]'], input=out, capture_output=True,
                               text=True, check=True).stdout.split("\n")
    assert "alice@example.com 1" in by_sender and "bob@example.com 1" in by_sender
    reasons = subprocess.run(["jq", "-r", ".recipients[].delay_reason // empty"], input=out,
                             capture_output=True, text=True, check=True).stdout
    assert reasons.count("Connection refused") == 2
    # and the ids back into ternctl, from standard input
    p = ctl(world, "delete", "-", input="\n".join(ids) + "\n")
    assert p.stdout.count(": 1 message") == 2, p.stdout
    assert queue_json(world) == []


def test_show_history_and_headers(world):
    qid = send(world, "alice@example.com", ["u1@unreach.test"], subject="show me")
    wait_deferred(world, qid)
    ctl(world, "flush", qid)
    wait_for("a second attempt", lambda: queue_json(world)[0]["recipients"][0]["attempts"] >= 2)
    o = jlines(ctl(world, "show", qid, json_out=True))[-1]
    assert o["ok"] and o["queue_id"] == qid and o["sender"] == "alice@example.com"
    assert o["node"] == "mx.test.example"
    assert o["client"] == "127.0.0.1" and o["helo"] == "client.example"
    assert [r["address"] for r in o["recipients"]] == ["u1@unreach.test"]
    tries = [h for h in o["attempts"] if h["recipient"] == 0]
    assert len(tries) >= 2 and all("Connection refused" in h["reply"] for h in tries)
    assert "Subject: show me\r\n" in o["headers"] and "hello" not in o["headers"]
    human = ctl(world, "show", qid).stdout
    assert "recipient: <u1@unreach.test> pending, " in human
    assert human.count("Connection refused") >= 2 and "Subject: show me" in human
    p = ctl(world, "show", "0123456789ABCDEF", check=False)
    assert p.returncode == 1 and "not in the queue" in p.stderr
    p = ctl(world, "show", "nonsense", check=False)
    assert p.returncode == 1 and "queue id" in p.stderr


# --------------------------------------------------------------------------
# acting: hold, release, flush, delete, bounce


def test_hold_release_flush(world):
    qid = send(world, "alice@example.com", ["bob@example.com"], subject="held local")
    world.wait_messages("bob@example.com", 1)
    ctl(world, "hold", "example.com")
    qid = send(world, "alice@example.com", ["bob@example.com"], subject="held local 2")
    # the engine marks it held as it takes it (then the spool says so)
    wait_for("the new message held", lambda: [m["queue_id"] for m in
                                              queue_json(world, "--state", "held")] == [qid])
    assert len(world.messages("bob@example.com")) == 1
    p = ctl(world, "release", "example.com")
    assert p.stdout == "release example.com: 1 recipient\n", p.stdout
    world.wait_messages("bob@example.com", 2)
    # a message hold, then flush of one that is waiting for its retry
    d = send(world, "alice@example.com", ["u1@unreach.test"])
    wait_deferred(world, d)
    ctl(world, "hold", d)
    assert queue_json(world)[0]["queue_name"] == "hold"
    attempts = lambda: queue_json(world)[0]["recipients"][0]["attempts"]
    ctl(world, "release", d)   # released: due now
    wait_for("retried at once after the release", lambda: attempts() == 2)
    ctl(world, "flush", "unreach.test")   # its next retry is an hour away: now
    wait_for("retried at once after the flush", lambda: attempts() == 3)
    log = world.log()
    assert re.search(r"control: uid 0 \(pid \d+\): hold example\.com", log), log
    assert "control: uid 0" in log and ": flush unreach.test" in log
    p = ctl(world, "hold", "no/such", check=False)
    assert p.returncode == 1 and "neither a queue id nor a domain" in p.stderr
    p = ctl(world, "delete", "all", check=False)
    assert p.returncode == 1 and "not a queue id" in p.stderr


def test_delete_is_silent_bounce_reports(world):
    d = send(world, "alice@example.com", ["u1@unreach.test"], subject="to delete")
    b = send(world, "alice@example.com", ["u2@unreach.test"], subject="to bounce")
    wait_deferred(world, d)
    wait_deferred(world, b)
    ctl(world, "delete", d)
    ctl(world, "bounce", b)
    report = world.wait_message_with("alice@example.com", "to bounce")
    msg = parse_bytes(report)
    human, per_msg, per_rcpt, returned = report_parts(msg)
    assert per_rcpt[0]["Action"] == "failed"
    assert per_rcpt[0]["Final-Recipient"].endswith("u2@unreach.test")
    wait_for("the queue empty", lambda: queue_json(world) == [])
    assert all(b"to delete" not in f.read_bytes() for f in world.messages("alice@example.com"))
    assert len(world.messages("alice@example.com")) == 1


# --------------------------------------------------------------------------
# pause, resume, stats, status


def test_pause_smtp_lets_running_sessions_finish(world):
    running = world.session()
    ctl(world, "pause", "smtp")
    c = world.connect(greeting=False)
    c.expect(None, "421 4.3.2 mx.test.example Service paused for maintenance; try again later")
    c.wait_closed()
    qid = running.send_mail("alice@example.com", ["bob@example.com"], message("during pause"))
    running.expect("QUIT", "221 ...")
    world.wait_message_with("bob@example.com", "during pause")
    st = jlines(ctl(world, "status", json_out=True))[-1]
    assert st["paused"] == {"smtp": True, "delivery": False}
    ctl(world, "resume", "smtp")
    world.session().expect("QUIT", "221 ...")
    assert qid


def test_pause_delivery(world):
    ctl(world, "pause", "delivery")
    qid = send(world, "alice@example.com", ["bob@example.com"], subject="paused")
    st = jlines(ctl(world, "status", json_out=True))[-1]
    assert st["paused"]["delivery"] is True and st["queued"] == 1
    assert [m["queue_id"] for m in queue_json(world)] == [qid]
    assert world.messages("bob@example.com") == []
    ctl(world, "resume")
    world.wait_message_with("bob@example.com", "paused")


def test_stats_and_status(ternd, cert):  # noqa: F811
    crt, key = cert
    s = ternd(tls_cert=str(crt), tls_key=str(key), mailboxes=("bob@example.com",))
    send(s, "a@example.net", ["bob@example.com"])
    import ssl
    import smtplib
    ctx = ssl.create_default_context(cafile=str(crt))
    ctx.check_hostname = False   # the certificate names mx.test.example
    with smtplib.SMTP("127.0.0.1", s.port, local_hostname="client.example") as sm:
        sm.starttls(context=ctx)
        sm.ehlo("client.example")
        version = sm.sock.version()
    c = ehlo(s)
    c.expect("MAIL FROM:<a@example.net>", "250 ...")
    c.expect("RCPT TO:<nobody@example.com>", "550 5.1.1 User unknown")
    c.expect("RCPT TO:<x@elsewhere.test>", "550 5.7.1 Unable to relay")
    c.expect("QUIT", "221 ...")
    s.wait_messages("bob@example.com", 1)
    def delivered_and_removed():
        o = jlines(ctl(s, "stats", json_out=True))[-1]
        return o if o["delivered"] == 1 and o["queued"] == 0 else None
    o = wait_for("the delivery counted, the message removed", delivered_and_removed)
    assert o["accepted"] == 1 and o["rejected"] == 2 and o["connections"] >= 2
    assert o["rejected_by_reason"] == {"no such mailbox": 1, "relaying denied": 1}
    assert o["queued_bytes"] == 0
    assert o["tls_sessions"] == 1 and o["tls_by_version"] == {version: 1}
    human = ctl(s, "stats").stdout
    assert re.search(r"^accepted\s+1$", human, re.M), human
    st = jlines(ctl(s, "status", json_out=True))[-1]
    assert st["version"] and st["pid"] == s.proc.pid and st["uptime"] >= 0
    assert st["listeners"] == ["127.0.0.1:%d" % s.port]
    assert st["tls_certificate"]["days_left"] in (1, 2)
    assert "CN=mx.test.example" in st["tls_certificate"]["subject"]
    assert "expires in" in ctl(s, "status").stdout


# --------------------------------------------------------------------------
# monitor and trace


def stream(server, *args):
    argv = [TERNCTL, "-s", str(server.spool_dir / "control")] + list(args)
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def read_lines(p, n, timeout=DEADLINE):
    """n lines of p's stdout within timeout. It reads the descriptor itself,
    keeping the rest of a chunk on p: a buffered readline() would take every
    line a write brought, and select() would then wait for data already read."""
    import selectors
    sel = selectors.DefaultSelector()
    sel.register(p.stdout.fileno(), selectors.EVENT_READ)
    pending = getattr(p, "pending", b"")
    out = []
    deadline = time.monotonic() + timeout
    try:
        while len(out) < n:
            if b"\n" in pending:
                line, _, pending = pending.partition(b"\n")
                out.append(line.decode() + "\n")
                continue
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(left):
                raise AssertionError("%d of %d lines within %.0f s: %r" % (len(out), n, timeout, out))
            chunk = os.read(p.stdout.fileno(), 65536)
            if not chunk:
                raise AssertionError("stream ended after %r: %s" % (out, p.stderr.read()))
            pending += chunk
    finally:
        p.pending = pending
        sel.close()
    return out


def test_monitor_deltas(world):
    p = stream(world, "--json", "monitor")
    try:
        first = json.loads(read_lines(p, 2)[0])
        assert first == {"ok": True, "monitoring": True}
        send(world, "alice@example.com", ["bob@example.com"])
        world.wait_messages("bob@example.com", 1)
        seen = {"accepted": 0, "delivered": 0}
        for _ in range(5):
            o = json.loads(read_lines(p, 1)[0])
            for k in seen:
                seen[k] += o[k]
            if seen == {"accepted": 1, "delivered": 1}:
                break
        assert seen == {"accepted": 1, "delivered": 1}
    finally:
        p.kill()
        p.wait()


def test_trace_transcript_masks_credentials(ternd, cert, users_file):  # noqa: F811
    crt, key = cert
    s = ternd(tls_cert=str(crt), tls_key=str(key), users_file=str(users_file),
              auth_allow_plaintext="yes", mailboxes=("bob@example.com",))
    p = stream(s, "--json", "trace", "--client", "127.0.0.1", "--transcript")
    try:
        assert json.loads(read_lines(p, 1)[0]) == {"ok": True, "tracing": True}
        c = ehlo(s)
        cred = base64.b64encode(b"\0kate@example.com\0" + PASSWORD.encode()).decode()
        c.expect("AUTH PLAIN " + cred, "235 ...")
        qid = c.send_mail("kate@example.com", ["bob@example.com"], message("traced"))
        c.expect("QUIT", "221 ...")
        recs = []
        while not any(r["kind"] == "disconnect" for r in recs):
            recs += [json.loads(l) for l in read_lines(p, 1)]
        text = json.dumps(recs)
        assert cred not in text and PASSWORD not in text
        lines = [r["line"] for r in recs if r["kind"] == "in"]
        assert "EHLO client.example" in lines
        assert "AUTH PLAIN (initial response hidden)" in lines
        assert "> 235" not in lines
        outs = [r["line"] for r in recs if r["kind"] == "out"]
        assert any(l.startswith("235 2.7.0") for l in outs)
        queued = [r for r in recs if r["kind"] == "queued"]
        assert queued and queued[0]["queue_id"] == qid
        assert all(r["session"] == recs[0]["session"] for r in recs if "session" in r)
    finally:
        p.kill()
        p.wait()


def test_trace_by_queue_id_follows_delivery(world):
    qid = send(world, "alice@example.com", ["u1@unreach.test"])
    wait_deferred(world, qid)
    other = send(world, "alice@example.com", ["u2@unreach.test"])
    wait_deferred(world, other)
    p = stream(world, "trace", "--queue", qid)
    try:
        # subscribed once it says so: the flush's records cannot be missed
        assert p.stderr.readline() == "ternctl: tracing; interrupt to stop\n"
        ctl(world, "flush", "all")
        line = read_lines(p, 1)[0]
        assert qid in line and " delivery:" in line and "status=deferred" in line, line
        assert other not in line
    finally:
        p.kill()
        p.wait()


# --------------------------------------------------------------------------
# who may connect, and bad input


def test_only_root_run_user_and_group(ternd):
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv")
    s = ternd(control_group="adm")
    assert oct(s.spool_dir.stat().st_mode & 0o777) == "0o711"
    assert all(f.stat().st_mode & 0o077 == 0 for f in s.spool_dir.glob("queue.db*"))
    p = ctl(s, "status", user=("nobody", "nogroup"), check=False)
    assert p.returncode == 77, (p.returncode, p.stderr)
    assert "Permission denied" in p.stderr
    p = ctl(s, "status", user=("nobody", "nogroup", "adm"))
    assert "ternd" in p.stdout
    p = ctl(s, "pause", "smtp", user=("nobody", "nogroup", "adm"))
    uid = int(subprocess.run(["id", "-u", "nobody"], capture_output=True, text=True).stdout)
    assert re.search(r"control: uid %d \(pid \d+\): pause smtp" % uid, s.log()), s.log()
    ctl(s, "resume")


def test_no_daemon(tmp_path):
    p = subprocess.run([TERNCTL, "-s", str(tmp_path / "control"), "status"],
                       capture_output=True, text=True, timeout=DEADLINE)
    assert p.returncode == 69 and "is ternd running?" in p.stderr
    p = subprocess.run([TERNCTL, "frobnicate"], capture_output=True, text=True,
                       timeout=DEADLINE)
    assert p.returncode == 64 and "usage:" in p.stderr


def raw_request(server, data, lines=1):
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(DEADLINE)
        s.connect(str(server.spool_dir / "control"))
        s.sendall(data)
        out = b""
        while out.count(b"\n") < lines:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
        return [json.loads(l) for l in out.splitlines()]


def test_malformed_requests(server):
    cases = [
        (b'{"cmd":\n', "not a JSON object"),
        (b'[1, 2]\n', "not a JSON object"),
        (b'{"cmd": 7}\n', 'no "cmd" string'),
        (b'{"cmd": "explode"}\n', "unknown command 'explode'"),
        (b'\xff\xfe\x00{}\n', "not a JSON object"),
        (b'{"cmd": "show", "id": "../../etc/passwd"}\n', "a queue id, please"),
        (b'{"cmd": "queue", "state": "lost"}\n', "is not deferred, held or active"),
        (b'{"cmd": "pause", "what": "everything"}\n', "smtp or delivery"),
        (b'{"cmd": "bounce"}\n', "bounce: what?"),
    ]
    for data, why in cases:
        r = raw_request(server, data)
        assert len(r) == 1 and r[0]["ok"] is False and why in r[0]["error"], (data, r)
    r = raw_request(server, b"x" * 200000)
    assert r[0]["ok"] is False and "longer than" in r[0]["error"]
    # pipelined requests are answered in order
    r = raw_request(server, b'{"cmd":"status"}\n{"cmd":"nope"}\n{"cmd":"stats"}\n', lines=3)
    assert [x["ok"] for x in r] == [True, False, True] and "version" in r[0]
    server.session().expect("QUIT", "221 ...")


@pytest.fixture
def small_quarantine(monkeypatch):
    """Under AddressSanitizer, freed memory waits in a quarantine (256 MB by
    default) that would count as growth."""
    asan = os.environ.get("ASAN_OPTIONS", "")
    monkeypatch.setenv("ASAN_OPTIONS", (asan + ":" if asan else "") + "quarantine_size_mb=4")


def test_a_client_that_never_reads(small_quarantine, world):
    """A trace nobody reads costs the daemon a bounded buffer: records are
    dropped (and counted), mail flows, other operators are served."""
    lazy = socket.socket(socket.AF_UNIX)
    lazy.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    lazy.connect(str(world.spool_dir / "control"))
    lazy.sendall(b'{"cmd":"trace","transcript":true}\n')
    try:
        rss0 = proc_rss(world.proc.pid)
        c = world.session()
        for _ in range(60):   # 60 x 100 RCPT lines and their replies, pipelined
            c.send("MAIL FROM:<alice@example.com>")
            for i in range(100):
                c.send("RCPT TO:<r%d@unreach.test>" % i)
            c.send("RSET")
            for _ in range(102):
                c.reply()
        c.expect("QUIT", "221 ...")
        assert ctl(world, "status").returncode == 0
        send(world, "alice@example.com", ["bob@example.com"], subject="still flowing")
        world.wait_message_with("bob@example.com", "still flowing")
        assert proc_rss(world.proc.pid) - rss0 < 64 * 1024 * 1024
        # now read: the records stop at the bound, and the gap is told
        # (the count comes with the next record the client has room for)
        lazy.settimeout(0.5)
        got = b""
        for _ in range(200):
            try:
                chunk = lazy.recv(1 << 20)
                assert chunk, "stream closed before it told of dropped records"
                got += chunk
            except socket.timeout:
                world.session().expect("QUIT", "221 ...")
            if b'"dropped"' in got:
                break
        n = int(re.search(rb'"dropped":\s*(\d+)', got).group(1))
        assert n > 0
    finally:
        lazy.close()


def proc_rss(pid):
    from conftest import proc_status
    return proc_status(pid, "VmRSS")


# --------------------------------------------------------------------------
# drain: the queue handed to another node


def test_drain_hands_the_queue_to_another_node(world, ternd, tmp_path):
    """Deferred and held mail moves to another ternd over SMTP with its
    envelope and DSN parameters, and leaves here only after that node's
    250; the node taking it keeps it (queue_only) for the test to read."""
    other = ternd(tmp=tmp_path / "other", queue_only="yes", relay_networks="127.0.0.0/8")
    c = ehlo(world)
    c.expect("MAIL FROM:<alice@example.com> RET=HDRS ENVID=env-42", "250 ...")
    c.expect("RCPT TO:<u1@unreach.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;orig@unreach.test",
             "250 ...")
    c.expect("RCPT TO:<u2@unreach.test>", "250 ...")
    c.expect("DATA", "354 ...")
    c.raw(message("to drain") + b".\r\n")
    qid = c.expect_reply("250 ...").text.split("<")[1].split("@")[0]
    c.expect("QUIT", "221 ...")
    wait_deferred(world, qid)
    held = send(world, "alice@example.com", ["h@unreach.test"], subject="held, drained too")
    ctl(world, "hold", held)
    p = ctl(world, "drain", "--to", "127.0.0.1:%d" % other.port)
    assert p.stdout == ("drain --to 127.0.0.1:%d: 3 recipients: 3 delivered, 0 deferred, "
                        "0 failed\n" % other.port), p.stdout
    wait_for("the queue empty here", lambda: queue_json(world) == [])
    there = queue_json(other)
    assert sorted(r["address"] for m in there for r in m["recipients"]) == [
        "h@unreach.test", "u1@unreach.test", "u2@unreach.test"]
    [m] = [m for m in there if len(m["recipients"]) == 2]
    shown = jlines(ctl(other, "show", m["queue_id"], json_out=True))[-1]
    assert shown["sender"] == "alice@example.com", shown
    assert shown["envid"] == "env-42" and shown["ret"] == "HDRS", shown
    r1 = [r for r in shown["recipients"] if r["address"] == "u1@unreach.test"][0]
    assert r1["notify_words"] == "SUCCESS,FAILURE", r1
    assert r1["orcpt"] == "rfc822;orig@unreach.test", r1
    assert re.search(r"control: uid 0 \(pid \d+\): drain 127\.0\.0\.1:%d" % other.port,
                     world.log())
    # nothing left: a second drain has nothing to do
    p = ctl(world, "drain", "--to", "127.0.0.1:%d" % other.port)
    assert ": 0 recipients: 0 delivered" in p.stdout


def test_drain_to_a_node_that_is_down_keeps_the_mail(world):
    d = send(world, "alice@example.com", ["u1@unreach.test"], subject="stays")
    wait_deferred(world, d)
    p = ctl(world, "drain", "--to", "127.0.0.1:%d" % free_port(), check=False)
    assert p.returncode == 75, p.stdout + p.stderr
    assert "1 recipients: 0 delivered, 1 deferred, 0 failed" in p.stdout
    assert [m["queue_id"] for m in queue_json(world)] == [d]
    p = ctl(world, "drain", check=False)
    assert p.returncode == 64 and "--to HOST:PORT" in p.stderr


def test_queue_json_stays_json_when_a_hop_replies_in_bytes(ternd, tmp_path):
    """A next hop whose 451 holds a byte that is not UTF-8, a control
    character and a quote: the reply is recorded with each such byte as
    '?' and UTF-8 kept, and the listing and `show` carry it (before, both
    dropped the recipient: jansson refuses text that is not UTF-8)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    srv.settimeout(DEADLINE)

    def hop():
        try:
            c, _ = srv.accept()
        except OSError:
            return
        with c:
            f = c.makefile("rb")
            c.sendall(b"220 hop ready\r\n")
            for line in f:
                verb = line[:4].upper()
                if verb in (b"EHLO", b"HELO"):
                    c.sendall(b"250 hop\r\n")
                elif verb == b"MAIL":
                    c.sendall(b"451 4.3.0 caf\xe9 \x01 \"busy\" \xc3\xa9\r\n")
                elif verb == b"QUIT":
                    c.sendall(b"221 bye\r\n")
                    return
                else:
                    c.sendall(b"503 5.5.1 no\r\n")
    t = threading.Thread(target=hop, daemon=True)
    t.start()
    tmap = tmp_path / "transport"
    tmap.write_text("bytes.test 127.0.0.1:%d\n" % srv.getsockname()[1])
    s = ternd(transport_map=str(tmap), relay_networks="127.0.0.0/8", retry_min="1h",
              retry_max="2h", smtp_tls="none", mailboxes=("alice@example.com",))
    qid = send(s, "alice@example.com", ["x@bytes.test"])
    m = wait_deferred(s, qid)
    t.join(DEADLINE)
    srv.close()
    reason = m["recipients"][0]["delay_reason"]
    assert "said: 451 4.3.0 caf? ? \"busy\" \u00e9 (in reply to MAIL FROM)" in reason, reason
    shown = jlines(ctl(s, "show", qid, json_out=True))
    assert [a["reply"] for a in shown[0]["attempts"]] == [reason], shown
