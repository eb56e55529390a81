"""The test mode: capture into inboxes, the JSON API (the Mailpit-compatible
subset and tern's own endpoints), retention, release, login and the CSRF
rule, against the real ternd with smtplib, swaks and urllib as the clients
a developer's test code would be."""

import base64
import http.client
import json
import smtplib
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from email.message import EmailMessage

import pytest

from conftest import DEADLINE, free_port, proc_status, wait_for
from secfix import PASSWORD, cert, users_file  # noqa: F401


def api(s, path, method="GET", body=None, headers=None, auth=None, timeout=DEADLINE):
    """(status, parsed JSON or text, headers) of an API call."""
    h = dict(headers or {})
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        h.setdefault("Content-Type", "application/json")
    if auth:
        h["Authorization"] = "Basic " + base64.b64encode(("%s:%s" % auth).encode()).decode()
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (s.http_port, path), data=data,
                                 method=method, headers=h)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            status, raw, hdrs = r.status, r.read(), r.headers
    except urllib.error.HTTPError as e:
        status, raw, hdrs = e.code, e.read(), e.headers
    text = raw.decode("utf-8", "replace")
    try:
        return status, json.loads(text), hdrs
    except ValueError:
        return status, text, hdrs


def catcher(ternd, **kw):
    port = free_port()
    opts = dict(capture="yes", http_listen="127.0.0.1:%d" % port)
    opts.update(kw)
    s = ternd(**opts)
    s.http_port = port
    return s


def send(s, rcpts, subject="hello", body="the body\n", sender="app@sender.test", msg=None):
    if msg is None:
        msg = EmailMessage()
        msg["From"] = sender
        msg["To"] = ", ".join(rcpts)
        msg["Subject"] = subject
        msg.set_content(body)
    with smtplib.SMTP("127.0.0.1", s.port, timeout=DEADLINE) as c:
        c.send_message(msg, from_addr=sender, to_addrs=rcpts)
    return msg


def listed(s, n, path="/api/v1/messages"):
    """Wait until the listing has n messages; returns it."""
    out = {}

    def check():
        st, j, _ = api(s, path)
        out["j"] = j
        return st == 200 and j["messages_count"] == n
    wait_for("%d messages at %s" % (n, path), check)
    return out["j"]


def test_everything_captured_nothing_delivered(ternd):
    s = catcher(ternd)
    s.make_maildir("kate@example.com")
    send(s, ["kate@example.com", "someone@far-away.test"],
         subject="=?utf-8?q?Gr=C3=BC=C3=9Fe?= from the app")
    j = listed(s, 1)
    m = j["messages"][0]
    # Mailpit's list and summary shapes
    for k in ("total", "unread", "count", "messages_count", "messages_unread", "start", "tags"):
        assert k in j, k
    for k in ("ID", "MessageID", "Read", "From", "To", "Cc", "Bcc", "ReplyTo", "Subject",
              "Created", "Tags", "Size", "Attachments", "Snippet"):
        assert k in m, k
    assert m["Subject"] == "Grüße from the app"   # RFC 2047, decoded
    assert m["From"] == {"Name": "", "Address": "app@sender.test"}
    assert {a["Address"] for a in m["To"]} == {"kate@example.com", "someone@far-away.test"}
    assert m["Inbox"] == "default" and not m["Read"]
    assert "<" not in m["MessageID"]
    # nothing delivered, not even to the local mailbox; ternctl shows it kept
    assert s.messages("kate@example.com") == []
    assert queue_ids(s) == [m["QueueID"]]
    assert "capture" in subprocess.run([ternctl_bin(), "-s", str(s.spool_dir / "control"), "--json",
                                        "queue"], capture_output=True, text=True).stdout
    subprocess.run([ternctl_bin(), "-s", str(s.spool_dir / "control"), "flush"],
                   capture_output=True, timeout=DEADLINE)
    assert s.messages("kate@example.com") == []
    assert "delivered" not in s.log().split("queued:", 1)[1]


def ternctl_bin():
    import os
    from conftest import ternd_binary
    from pathlib import Path
    return os.environ.get("TERNCTL") or str(Path(ternd_binary()).parent / "ternctl")


def test_message_raw_headers_parts(ternd):
    s = catcher(ternd)
    msg = EmailMessage()
    msg["From"] = "Ann App <app@sender.test>"
    msg["To"] = "user@x.test"
    msg["Cc"] = "Boss <boss@x.test>"
    msg["Subject"] = "with attachment"
    msg.set_content("plain text part\n")
    msg.add_alternative("<p>html <b>part</b></p>", subtype="html")
    msg.add_attachment(b"%PDF-1.4 fake", maintype="application", subtype="pdf",
                       filename="../../etc/report.pdf")
    send(s, ["user@x.test"], sender="app@sender.test", msg=msg)
    mid = listed(s, 1)["messages"][0]["ID"]
    st, m, _ = api(s, "/api/v1/message/" + mid)
    assert st == 200
    assert m["Text"].strip() == "plain text part"
    assert "<b>part</b>" in m["HTML"]
    assert m["From"] == {"Name": "Ann App", "Address": "app@sender.test"}
    assert m["Cc"] == [{"Name": "Boss", "Address": "boss@x.test"}]
    assert len(m["Attachments"]) == 1
    att = m["Attachments"][0]
    assert att["ContentType"] == "application/pdf" and att["Size"] == len(b"%PDF-1.4 fake")
    # reading it marks it read
    assert api(s, "/api/v1/messages")[1]["messages"][0]["Read"] or wait_for(
        "read", lambda: api(s, "/api/v1/messages")[1]["messages"][0]["Read"])
    st, raw, hdrs = api(s, "/api/v1/message/%s/raw" % mid)
    assert st == 200 and "Subject: with attachment" in raw and "Received: from" in raw
    st, hd, _ = api(s, "/api/v1/message/%s/headers" % mid)
    assert hd["Subject"] == ["with attachment"]
    st, tree, _ = api(s, "/api/v1/message/%s/parts" % mid)
    types = [p["ContentType"] for p in tree["Parts"]]
    assert "multipart/mixed" in types and "application/pdf" in types
    # the attachment is a download, its name without the path
    st, body, hdrs = api(s, "/api/v1/message/%s/part/%s" % (mid, att["PartID"]))
    assert st == 200 and hdrs["Content-Disposition"] == 'attachment; filename="report.pdf"'
    assert api(s, "/api/v1/message/%s/part/9.9" % mid)[0] == 404
    assert api(s, "/api/v1/message/NOSUCH")[0] == 404
    assert api(s, "/api/v1/message/latest")[1]["ID"] == mid


def test_search(ternd):
    s = catcher(ternd)
    send(s, ["a@x.test"], subject="invoice for march", body="pay the amount\n")
    send(s, ["b@x.test"], subject="newsletter", body="nothing to pay here, zebra\n",
         sender="news@letters.test")
    listed(s, 2)

    def found(q):
        st, j, _ = api(s, "/api/v1/search?" + urllib.parse.urlencode({"query": q}))
        assert st == 200, j
        return sorted(m["Subject"] for m in j["messages"])
    assert found("invoice") == ["invoice for march"]
    assert found("zebra") == ["newsletter"]
    assert found("pay") == ["invoice for march", "newsletter"]
    assert found("from:news@letters.test") == ["newsletter"]
    assert found("subject:march") == ["invoice for march"]
    assert found("absent-word") == []
    assert found('"quote"" AND OR NEAR(') == []   # FTS5 syntax is only ever text
    assert api(s, "/api/v1/search")[0] == 400
    # DELETE /api/v1/search deletes what it finds
    assert api(s, "/api/v1/search?query=invoice", method="DELETE")[0] == 200
    listed(s, 1)


def test_delete(ternd):
    s = catcher(ternd)
    for i in range(3):
        send(s, ["a@x.test"], subject="m%d" % i)
    j = listed(s, 3)
    ids = [m["ID"] for m in j["messages"]]
    assert api(s, "/api/v1/messages", "DELETE", {"IDs": ids[:1]})[0] == 200
    listed(s, 2)
    assert api(s, "/api/v1/message/" + ids[1], "DELETE")[0] == 200
    listed(s, 1)
    assert api(s, "/api/v1/messages", "DELETE")[0] == 200
    listed(s, 0)
    # the spool let the messages go too
    wait_for("the queue empty", lambda: queue_ids(s) == [])


def queue_ids(s):
    out = subprocess.run([ternctl_bin(), "-s", str(s.spool_dir / "control"), "--json", "queue"],
                         capture_output=True, text=True, timeout=DEADLINE)
    rows = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    return [r["queue_id"] for r in rows if "queue_id" in r]


def test_capture_rules_inboxes_and_retention(ternd, tmp_path):
    rules = tmp_path / "capture_rules"
    rules.write_text("# test inboxes\n"
                     "signup rcpt=*@signup.test\n"
                     "billing from=billing@*\n"
                     "signup keep=2\n")
    port = free_port()
    s = ternd(capture_rules=str(rules), http_listen="127.0.0.1:%d" % port,
              mailboxes=["kate@example.com"])
    s.http_port = port
    for i in range(3):
        send(s, ["u%d@signup.test" % i], subject="welcome %d" % i)
    send(s, ["kate@example.com"], subject="receipt", sender="billing@shop.test")
    # a recipient no rule names is delivered as usual (capture = no)
    send(s, ["kate@example.com"], subject="for real")
    s.wait_message_with("kate@example.com", "for real")
    listed(s, 1, "/api/v1/messages?inbox=billing")
    # keep=2: the oldest signup message goes within a second or two
    j = listed(s, 2, "/api/v1/messages?inbox=signup")
    assert sorted(m["Subject"] for m in j["messages"]) == ["welcome 1", "welcome 2"]
    st, inboxes, _ = api(s, "/api/v1/inboxes")
    assert {i["Name"]: i["Total"] for i in inboxes} == {"billing": 1, "signup": 2}
    assert "welcome" not in "".join(p.read_text() for p in s.all_delivered())


def test_bad_capture_rules_refused(ternd, tmp_path):
    from conftest import run_ternd
    rules = tmp_path / "rules"
    rules.write_text("ok rcpt=*@a.test\nbad/name rcpt=*\nx colour=blue\n")
    rc, _, err = run_ternd(["-n", "-o", "capture_rules=%s" % rules])
    assert rc == 2
    assert "%s:2:" % rules in err and "%s:3:" % rules in err, err


def test_capture_listener(ternd):
    p1, p2, hp = free_port(), free_port(), free_port()
    s = ternd(listen="127.0.0.1:%d, 127.0.0.1:%d capture" % (p1, p2),
              http_listen="127.0.0.1:%d" % hp, mailboxes=["kate@example.com"])
    s.http_port = hp
    s.port = p2
    send(s, ["kate@example.com"], subject="caught")
    s.port = p1
    send(s, ["kate@example.com"], subject="delivered")
    s.wait_message_with("kate@example.com", "delivered")
    j = listed(s, 1)
    assert j["messages"][0]["Subject"] == "caught"
    assert not any(b"caught" in p.read_bytes() for p in s.all_delivered())


def test_wait_endpoint(ternd):
    s = catcher(ternd)
    result = {}

    def waiter():
        result["r"] = api(s, "/api/v1/wait?count=2&query=order&timeout=20", timeout=30)
    t = threading.Thread(target=waiter)
    t.start()
    send(s, ["a@x.test"], subject="order 1")
    send(s, ["a@x.test"], subject="unrelated")
    send(s, ["a@x.test"], subject="order 2")
    t.join(30)
    assert not t.is_alive()
    st, j, _ = result["r"]
    assert st == 200 and j["messages_count"] == 2
    # a wait that cannot be met answers 408 at its timeout, with what matched
    st, j, _ = api(s, "/api/v1/wait?count=5&query=order&timeout=1")
    assert st == 408 and j["messages_count"] == 2


def test_server_sent_events(ternd):
    s = catcher(ternd)
    c = http.client.HTTPConnection("127.0.0.1", s.http_port, timeout=DEADLINE)
    c.request("GET", "/api/v1/events")
    r = c.getresponse()
    assert r.status == 200 and r.getheader("Content-Type") == "text/event-stream"
    assert r.readline().startswith(b"event: hello")
    send(s, ["a@x.test"], subject="live one")
    deadline = time.monotonic() + DEADLINE
    event = None
    while time.monotonic() < deadline:
        line = r.readline()
        if line.startswith(b"event: message"):
            event = json.loads(r.readline()[len(b"data: "):])
            break
    c.close()
    assert event and event["Subject"] == "live one"


def test_release_to_a_real_mailbox(ternd):
    s = catcher(ternd, mailboxes=["kate@example.com"])
    send(s, ["someone@app.test"], subject="release me")
    mid = listed(s, 1)["messages"][0]["ID"]
    st, j, _ = api(s, "/api/v1/message/%s/release" % mid, "POST", {"To": ["kate@example.com"]})
    assert st == 200 and len(j["QueueID"]) == 16
    got = s.wait_message_with("kate@example.com", "release me")
    assert b"Subject: release me" in got
    # still captured; a bad release changes nothing
    assert api(s, "/api/v1/messages")[1]["messages_count"] == 1
    assert api(s, "/api/v1/message/%s/release" % mid, "POST", {"To": "x"})[0] == 400
    assert api(s, "/api/v1/message/%s/release" % mid, "POST",
               {"To": ["nobody@example.com"]})[0] == 400
    # a body in a file of its own (over one spool chunk) goes out whole
    big = "".join("line %06d of a long message\n" % i for i in range(8000))
    send(s, ["someone@app.test"], subject="release big", body=big)
    j = listed(s, 2)
    mid = next(m["ID"] for m in j["messages"] if m["Subject"] == "release big")
    assert api(s, "/api/v1/message/%s/release" % mid, "POST", {"To": ["kate@example.com"]})[0] == 200
    got = s.wait_message_with("kate@example.com", "release big")
    assert b"line 007999 of a long message" in got and got.count(b"of a long message") == 8000


def test_csrf(ternd):
    s = catcher(ternd)
    send(s, ["a@x.test"])
    listed(s, 1)
    evil = {"Origin": "http://evil.example"}
    assert api(s, "/api/v1/messages", "DELETE", headers=evil)[0] == 403
    assert api(s, "/api/v1/messages", "DELETE",
               headers={"Sec-Fetch-Site": "cross-site"})[0] == 403
    assert api(s, "/api/v1/messages", "DELETE", headers={"Content-Type": "text/plain"})[0] == 403
    assert api(s, "/api/v1/messages")[1]["messages_count"] == 1
    assert "cross-site" in s.log()
    same = {"Origin": "http://127.0.0.1:%d" % s.http_port}
    assert api(s, "/api/v1/messages", "DELETE", headers=same)[0] == 200
    listed(s, 0)


def test_login(ternd, users_file):  # noqa: F811
    s = catcher(ternd, http_login="yes", users_file=str(users_file))
    st, _, hdrs = api(s, "/api/v1/messages")
    assert st == 401 and "Basic" in hdrs["WWW-Authenticate"]
    assert api(s, "/api/v1/messages", auth=("kate@example.com", "wrong"))[0] == 401
    for user in ("kate@example.com", "chris@example.com", "lee@example.com"):
        assert api(s, "/api/v1/messages", auth=(user, PASSWORD))[0] == 200
    assert api(s, "/", auth=("kate@example.com", PASSWORD))[0] == 200


def test_login_needs_users_file():
    from conftest import run_ternd
    rc, _, err = run_ternd(["-o", "http_listen=127.0.0.1:%d" % free_port(), "-o", "http_login=yes"])
    assert rc == 2 and "http_login = yes needs users_file" in err, err


def test_captured_mail_survives_a_restart(ternd):
    s = catcher(ternd)
    send(s, ["a@x.test"], subject="durable")
    listed(s, 1)
    s.kill9()
    s2 = ternd(tmp=s.tmp, capture="yes", http_listen="127.0.0.1:%d" % s.http_port)
    s2.http_port = s.http_port
    assert listed(s2, 1)["messages"][0]["Subject"] == "durable"


def test_hostile_messages(ternd):
    s = catcher(ternd, max_message_size="100M")
    # 10,000 parts: walked up to a bound, never a crash
    parts = "".join("--b\r\nContent-Type: text/plain\r\n\r\npart %d\r\n" % i for i in range(10000))
    many = ("From: a@sender.test\r\nTo: x@x.test\r\nSubject: many parts\r\nMIME-Version: 1.0\r\n"
            "Content-Type: multipart/mixed; boundary=b\r\n\r\n" + parts + "--b--\r\n")
    broken = ("From: a@sender.test\r\nSubject: broken mime\r\nMIME-Version: 1.0\r\n"
              "Content-Type: multipart/mixed; boundary=\"unterminated\r\n\r\n--x\r\n"
              "Content-Transfer-Encoding: base64\r\n\r\n!!!notbase64\r\n")
    html = ("From: <script>alert(1)</script> <a@sender.test>\r\nSubject: <img src=x onerror=alert(1)>"
            "\r\nContent-Type: text/html\r\n\r\n<script>alert(1)</script>\r\n")
    big = EmailMessage()
    big["From"] = "a@sender.test"
    big["Subject"] = "big attachment"
    big.set_content("see attached")
    big.add_attachment(b"\0" * (50 * 1024 * 1024), maintype="application",
                       subtype="octet-stream", filename="big.bin")
    with smtplib.SMTP("127.0.0.1", s.port, timeout=60) as c:
        for raw in (many, broken, html):
            c.sendmail("a@sender.test", ["x@x.test"], raw.encode())
        c.send_message(big, from_addr="a@sender.test", to_addrs=["x@x.test"])
    j = listed(s, 4)
    byid = {m["Subject"]: m["ID"] for m in j["messages"]}
    st, tree, _ = api(s, "/api/v1/message/%s/parts" % byid["many parts"], timeout=60)
    assert st == 200 and tree["Truncated"] and len(tree["Parts"]) <= 2000
    assert api(s, "/api/v1/message/%s" % byid["broken mime"])[0] in (200, 422)
    st, m, hdrs = api(s, "/api/v1/message/%s" % byid["<img src=x onerror=alert(1)>"])
    assert st == 200 and hdrs["Content-Type"] == "application/json"
    before = proc_status(s.proc.pid, "VmRSS")
    st, m, _ = api(s, "/api/v1/message/%s" % byid["big attachment"], timeout=60)
    assert st == 200 and m["Attachments"][0]["Size"] == 50 * 1024 * 1024
    st, raw, _ = api(s, "/api/v1/message/%s/raw" % byid["big attachment"], timeout=60)
    assert st == 200 and len(raw) > 50 * 1024 * 1024
    # the 68 MB message was parsed from its file, its attachment counted,
    # never held whole: the daemon grew by far less than the message
    if not asan_build():
        grown = proc_status(s.proc.pid, "VmHWM") - before
        assert grown < 40 * 1024 * 1024, "peak grew by %d MB" % (grown >> 20)
    # still serving
    send(s, ["x@x.test"], subject="after")
    listed(s, 5)


def asan_build():
    from conftest import ternd_binary
    with open(ternd_binary(), "rb") as f:
        return b"__asan_init" in f.read()


def test_no_http_listener_by_default(server):
    assert "http:" not in server.log()


def test_swaks_to_a_catcher(ternd):
    s = catcher(ternd)
    out = subprocess.run(["swaks", "--server", "127.0.0.1:%d" % s.port, "--to", "x@y.test",
                          "--from", "ci@app.test", "--header", "Subject: from swaks"],
                         capture_output=True, text=True, timeout=DEADLINE)
    assert "250 2.6.0" in out.stdout, out.stdout
    assert listed(s, 1)["messages"][0]["Subject"] == "from swaks"




def test_normal_mode_queue_and_actions(ternd, users_file):  # noqa: F811
    """Without capture the API shows the queue and the counters; hold,
    release and delete need a logged-in user."""
    port = free_port()
    s = ternd(http_listen="127.0.0.1:%d" % port, http_login="yes", users_file=str(users_file),
              relay_networks="127.0.0.1/32", relayhost="127.0.0.1:%d" % free_port(),
              retry_min="1h")
    s.http_port = port
    admin = ("kate@example.com", PASSWORD)
    send(s, ["someone@far.test"], subject="stuck")
    qid = {}

    def queued():
        st, j, _ = api(s, "/api/v1/queue", auth=admin)
        assert st == 200
        if j["count"] == 1:
            qid["id"] = j["messages"][0]["queue_id"]
            qid["held"] = j["messages"][0]["recipients"][0]["held"]
        return j["count"] == 1
    wait_for("the message in the queue", queued)
    st, j, _ = api(s, "/api/v1/stats", auth=admin)
    assert st == 200 and j["queued"] == 1
    assert api(s, "/api/v1/queue/%s/hold" % qid["id"], "POST")[0] == 401
    assert api(s, "/api/v1/queue/%s/hold" % qid["id"], "POST", auth=admin)[0] == 202
    wait_for("held", lambda: queued() and qid["held"])
    assert api(s, "/api/v1/queue/%s/explode" % qid["id"], "POST", auth=admin)[0] == 404
    assert api(s, "/api/v1/queue/not-a-qid!", "DELETE", auth=admin)[0] == 400
    assert api(s, "/api/v1/queue/%s" % qid["id"], "DELETE", auth=admin)[0] == 202
    wait_for("deleted", lambda: api(s, "/api/v1/queue", auth=admin)[1]["count"] == 0)
    assert "http: kate@example.com: delete %s" % qid["id"] in s.log()


def test_queue_actions_need_a_login(ternd):
    s = catcher(ternd, capture="no", relay_networks="127.0.0.1/32",
                relayhost="127.0.0.1:%d" % free_port(), retry_min="1h")
    send(s, ["someone@far.test"])
    wait_for("queued", lambda: api(s, "/api/v1/queue")[1]["count"] == 1)
    q = api(s, "/api/v1/queue")[1]["messages"][0]["queue_id"]
    st, j, _ = api(s, "/api/v1/queue/%s/hold" % q, "POST")
    assert st == 403 and "login" in j["Error"]


def test_transcript_and_lint_of_a_captured_message(ternd):
    s = catcher(ternd)
    with smtplib.SMTP("127.0.0.1", s.port, timeout=DEADLINE) as c:
        c.ehlo("app.client.test")
        # no Message-ID, no Date: the lint says so
        c.sendmail("app@sender.test", ["x@y.test"],
                   b"From: app@sender.test\r\nSubject: lint me\r\n\r\nbody\r\n")
    mid = listed(s, 1)["messages"][0]["ID"]
    st, t, _ = api(s, "/api/v1/message/%s/transcript" % mid)
    assert st == 200, t
    lines = t["session"]["lines"]
    ins = [ln["text"] for ln in lines if ln["dir"] == "in"]
    outs = [ln["text"] for ln in lines if ln["dir"] == "out"]
    assert any(x.lower().startswith("ehlo app.client.test") for x in ins), ins
    assert any(x.startswith("250 2.6.0") and mid in x for x in outs), outs
    st, lint, _ = api(s, "/api/v1/message/%s/lint" % mid)
    codes = {w["code"] for w in lint["Warnings"]}
    assert {"no-message-id", "no-date"} <= codes, lint
    st, ss, _ = api(s, "/api/v1/sessions")
    assert st == 200 and ss["sessions"] and ss["sessions"][0]["helo"] == "app.client.test"
    sid = ss["sessions"][0]["id"]
    assert api(s, "/api/v1/session/%s" % sid)[1]["lines"]
    assert api(s, "/api/v1/session/0")[0] == 404
    assert api(s, "/api/v1/session/abc")[0] == 404


def test_no_transcripts_without_capture(ternd):
    port = free_port()
    s = ternd(http_listen="127.0.0.1:%d" % port)
    s.http_port = port
    assert api(s, "/api/v1/sessions")[0] == 404


def test_https(ternd, cert):  # noqa: F811
    import ssl
    crt, key = cert
    port = free_port()
    s = ternd(capture="yes", http_listen="127.0.0.1:%d" % port, http_tls="yes",
              tls_cert=str(crt), tls_key=str(key))
    send(s, ["a@x.test"], subject="over tls")
    ctx = ssl.create_default_context(cafile=str(crt))
    ctx.check_hostname = False

    def listed_tls():
        with urllib.request.urlopen("https://127.0.0.1:%d/api/v1/messages" % port,
                                    context=ctx, timeout=DEADLINE) as r:
            return json.load(r)["messages_count"] == 1
    wait_for("the message over HTTPS", listed_tls)
    with pytest.raises(Exception):   # plain HTTP on the TLS port gets nothing
        urllib.request.urlopen("http://127.0.0.1:%d/api/v1/messages" % port, timeout=3).read()
    assert s.running()


def test_age_retention(ternd, tmp_path):
    rules = tmp_path / "rules"
    rules.write_text("short age=2s\nshort rcpt=*@short.test\n")
    s = catcher(ternd, capture_rules=str(rules))
    send(s, ["a@short.test"], subject="goes soon")
    send(s, ["a@long.test"], subject="stays")
    listed(s, 2)
    j = listed(s, 1)   # within a few seconds the short inbox's message goes
    assert j["messages"][0]["Subject"] == "stays"


def test_a_catcher_asks_no_dns_about_senders(ternd, silent_dns):
    """SPF, DMARC and DNSBL would wait for a resolver that never answers;
    a catcher asks none of them."""
    s = catcher(ternd, dns_resolver=silent_dns, spf_policy="reject", dmarc_policy="enforce",
                dnsbl="zen.example.test")
    send(s, ["a@x.test"], subject="offline", sender="app@sender.test")
    listed(s, 1)
    log = s.log()
    assert "spf:" not in log and "dmarc:" not in log and "dnsbl" not in log.split("ready:")[1]


def test_fault_rules_at_run_time(ternd):
    s = catcher(ternd)
    rule = "rcpt *@full.test reply 452 4.2.2 Mailbox full"
    st, j, _ = api(s, "/api/v1/faults", "PUT", {"Rules": rule})
    assert st == 200 and rule in j["Rules"], j
    with smtplib.SMTP("127.0.0.1", s.port, timeout=DEADLINE) as c:
        c.ehlo("app.test")
        c.mail("app@sender.test")
        code, msg = c.rcpt("someone@full.test")
        assert (code, msg) == (452, b"4.2.2 Mailbox full")
        assert c.rcpt("someone@other.test")[0] == 250
    st, j, _ = api(s, "/api/v1/faults", "PUT", {"Rules": rule + "\nrcpt * explode now"})
    assert st == 400 and "runtime:2:" in j["Error"], j
    assert rule in api(s, "/api/v1/faults")[1]["Rules"]   # all or nothing
    assert api(s, "/api/v1/faults", "PUT", {"Rules": 5})[0] == 400
    assert api(s, "/api/v1/faults", "DELETE")[0] == 200
    assert rule not in api(s, "/api/v1/faults")[1]["Rules"]
    send(s, ["someone@full.test"], subject="now accepted")
    listed(s, 1)


def test_a_bounce_rule_returns_a_real_report_into_the_inbox(ternd):
    """The application's bounce handling, tested: a fault rule accepts the
    recipient, the engine returns the message with an RFC 3464 report, and
    the report is captured too (nothing leaves a catcher)."""
    s = catcher(ternd)
    api(s, "/api/v1/faults", "PUT", {"Rules": "rcpt *@bounce.test bounce 550 5.1.1 No such user"})
    send(s, ["ghost@bounce.test"], subject="to a ghost", sender="app@sender.test")
    j = listed(s, 1, "/api/v1/search?query=" + urllib.parse.quote("to:app@sender.test"))
    report = j["messages"][0]
    st, raw, _ = api(s, "/api/v1/message/%s/raw" % report["ID"])
    assert "multipart/report" in raw and "report-type=delivery-status" in raw, raw
    assert "Status: 5.1.1" in raw and "No such user" in raw
    assert report["Envelope"]["From"] == ""
