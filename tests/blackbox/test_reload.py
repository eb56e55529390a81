"""Reload (SIGHUP and `ternctl reload`): the configuration file, users,
aliases and the TLS certificate are read again; sessions under way keep
their settings; a bad file is refused with FILE:LINE and nothing changes.

ternd reads its file given with -c; the harness's -o overrides (listen,
spool, mail) win over it, so the keys a test changes live in the file."""

import base64
import os
import re
import signal
import subprocess
import time

import pytest

from conftest import DEADLINE, crlf, give_to_run_user, wait_for
from secfix import PASSWORD
from test_ternctl import ctl, ehlo

SIGHUP_DONE = re.compile(r"reload: configuration generation (\d+) in force")


def write_conf(path, **keys):
    path.write_text("".join("%s = %s\n" % kv for kv in keys.items()))
    os.chmod(path, 0o644)


def generation(server):
    """The generation in force, from the log's last reload line (1 at start)."""
    found = SIGHUP_DONE.findall(server.log())
    return int(found[-1]) if found else 1


def sighup(server):
    before = server.log().count("reload")
    server.proc.send_signal(signal.SIGHUP)
    wait_for("the reload logged", lambda: server.log().count("reload") > before)


def test_reload_changes_a_limit_for_new_sessions_only(ternd, tmp_path):
    conf = tmp_path / "tern.conf"
    write_conf(conf, max_recipients=2, banner="first banner")
    s = ternd(args=("-c", str(conf)), mailboxes=("a@example.com", "b@example.com",
                                                 "c@example.com"))
    old = s.connect(greeting=False)
    old.expect_reply("220 mx.test.example ESMTP first banner", after="connecting")
    old.cmd("EHLO client.example")
    write_conf(conf, max_recipients=1, banner="second banner")
    p = ctl(s, "reload")
    assert re.match(r"reloaded: configuration generation \d+ in force", p.stdout), p.stdout
    # a new session has the new limit
    new = s.connect(greeting=False)
    new.expect_reply("220 mx.test.example ESMTP second banner", after="connecting")
    new.cmd("EHLO client.example")
    new.expect("MAIL FROM:<x@example.net>", "250 ...")
    new.expect("RCPT TO:<a@example.com>", "250 ...")
    new.expect("RCPT TO:<b@example.com>", "452 4.5.3 Too many recipients")
    # the session opened before keeps its own
    old.expect("MAIL FROM:<x@example.net>", "250 ...")
    old.expect("RCPT TO:<a@example.com>", "250 ...")
    old.expect("RCPT TO:<b@example.com>", "250 ...")
    old.expect("RCPT TO:<c@example.com>", "452 4.5.3 Too many recipients")
    assert re.search(r"control: uid 0 \(pid \d+\): reload the configuration", s.log())
    # and SIGHUP does the same
    write_conf(conf, max_recipients=3, banner="third banner")
    sighup(s)
    s.connect(greeting=False).expect_reply("220 mx.test.example ESMTP third banner",
                                           after="connecting")
    st = ctl(s, "status").stdout
    assert "configuration generation %d" % generation(s) in st


def test_bad_configuration_is_refused_and_nothing_changes(ternd, tmp_path):
    conf = tmp_path / "tern.conf"
    write_conf(conf, banner="good banner")
    s = ternd(args=("-c", str(conf)))
    conf.write_text("banner = bad banner\nmax_recipients = lots\nnot a line\n")
    p = ctl(s, "reload", check=False)
    assert p.returncode == 1
    assert "configuration refused; the one in force stays" in p.stderr
    assert "%s:2: bad value 'lots' for max_recipients" % conf in p.stderr, p.stderr
    assert "%s:3: expected 'key = value'" % conf in p.stderr, p.stderr
    s.connect(greeting=False).expect_reply("220 mx.test.example ESMTP good banner",
                                           after="connecting")
    # SIGHUP: the same refusal, in the log; the daemon serves on
    sighup(s)
    wait_for("the refusal logged", lambda: s.log().count("reload refused") >= 2)
    assert "reload: %s:2: bad value 'lots'" % conf in s.log()
    s.connect(greeting=False).expect_reply("220 mx.test.example ESMTP good banner",
                                           after="connecting")
    # a missing file is refused the same way
    conf.unlink()
    p = ctl(s, "reload", check=False)
    assert p.returncode == 1 and str(conf) in p.stderr


def test_reload_reads_aliases_and_users(ternd, tmp_path):
    aliases = tmp_path / "aliases"
    users = tmp_path / "users"
    aliases.write_text("postmaster@example.com: kate@example.com\n")
    users.write_text("kate@example.com:{PLAIN}%s\n" % PASSWORD)
    for f in (aliases, users):
        os.chmod(f, 0o644)
    conf = tmp_path / "tern.conf"
    write_conf(conf, aliases_file=str(aliases), users_file=str(users),
               auth_allow_plaintext="yes")
    s = ternd(args=("-c", str(conf)), mailboxes=("kate@example.com",))
    c = ehlo(s)
    c.expect("MAIL FROM:<x@example.net>", "250 ...")
    c.expect("RCPT TO:<sales@example.com>", "550 5.1.1 User unknown")
    c.expect("RSET", "250 ...")
    cred = base64.b64encode(b"\0lee@example.com\0" + PASSWORD.encode()).decode()
    c.expect("AUTH PLAIN " + cred, "535 5.7.8 Authentication credentials invalid")
    aliases.write_text("postmaster@example.com: kate@example.com\n"
                       "sales@example.com: kate@example.com\n")
    users.write_text("kate@example.com:{PLAIN}%s\nlee@example.com:{PLAIN}%s\n"
                     % (PASSWORD, PASSWORD))
    ctl(s, "reload")
    n = ehlo(s)
    n.expect("MAIL FROM:<x@example.net>", "250 ...")
    n.expect("RCPT TO:<sales@example.com>", "250 2.1.5 Recipient OK")
    n.expect("RSET", "250 ...")
    n.expect("AUTH PLAIN " + cred, "235 2.7.0 Authentication successful")


def serial_seen(port):
    p = subprocess.run(
        "openssl s_client -starttls smtp -connect 127.0.0.1:%d -servername mx.test.example "
        "</dev/null 2>/dev/null | openssl x509 -noout -serial" % port,
        shell=True, capture_output=True, text=True, timeout=DEADLINE)
    return p.stdout.strip().split("=")[-1]


def make_cert(d, serial):
    key, crt = d / "key.pem", d / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj",
                    "/CN=mx.test.example", "-set_serial", str(serial),
                    "-keyout", str(key), "-out", str(crt)], check=True, capture_output=True)
    # run_user reads them on a reload (ternd reads them as root only at start)
    for f in (key, crt):
        give_to_run_user(f)
    return crt, key


def test_reload_takes_a_renewed_certificate(ternd, tmp_path):
    crt, key = make_cert(tmp_path, 0x1111)
    conf = tmp_path / "tern.conf"
    write_conf(conf, tls_cert=str(crt), tls_key=str(key))
    s = ternd(args=("-c", str(conf)))
    assert serial_seen(s.port) == "1111"
    make_cert(tmp_path, 0x2222)   # renewed in place, as certbot does
    p = ctl(s, "reload")
    assert "reloaded" in p.stdout
    assert serial_seen(s.port) == "2222"
    # a key that does not match the certificate: refused, the old one stays
    other = tmp_path / "other"
    other.mkdir()
    _, wrong_key = make_cert(other, 0x3333)
    write_conf(conf, tls_cert=str(crt), tls_key=str(wrong_key))
    p = ctl(s, "reload", check=False)
    assert p.returncode == 1 and "key values mismatch" in p.stderr, p.stderr
    assert serial_seen(s.port) == "2222"
    # a key only root may read: ternd read it at start, a reload cannot
    write_conf(conf, tls_cert=str(crt), tls_key=str(key))
    if os.geteuid() == 0:
        os.chown(key, 0, 0)
        os.chmod(key, 0o600)
        p = ctl(s, "reload", check=False)
        assert p.returncode == 1, p.stdout
        assert "%s: cannot read it: Permission denied (a reload reads it as run_user" % key \
            in p.stderr, p.stderr
        assert serial_seen(s.port) == "2222"


def test_restart_only_keys_wait_for_a_restart(ternd, tmp_path):
    conf = tmp_path / "tern.conf"
    write_conf(conf, max_errors=20)
    s = ternd(args=("-c", str(conf)))
    write_conf(conf, max_errors=20, run_user="nobody", queue_only="yes")
    p = ctl(s, "reload")
    assert "changed, waiting for a restart: queue_only run_user" in p.stdout, p.stdout
    assert "run_user: changed; the running value stays until a restart" in s.log()
    assert "restart_pending" in ctl(s, "status", json_out=True).stdout
    s.session().expect("QUIT", "221 ...")


def test_reload_gives_the_engine_a_new_transport_map(ternd, tmp_path):
    """The delivery engine takes the new settings on its thread: a message
    deferred by a next hop that refused goes to the new one after a reload
    and a flush."""
    from peers import SmtpSink, free_port_on
    from conftest import free_port
    from test_ternctl import queue_json, send, wait_deferred
    closed = free_port()
    sink_port = free_port_on("127.0.0.1")
    tmap = tmp_path / "transport"
    tmap.write_text("far.test 127.0.0.1:%d\n" % closed)
    os.chmod(tmap, 0o644)
    conf = tmp_path / "tern.conf"
    write_conf(conf, transport_map=str(tmap), relay_networks="127.0.0.0/8", retry_min="1h")
    s = ternd(args=("-c", str(conf)))
    qid = send(s, "a@example.com", ["u@far.test"])
    m = wait_deferred(s, qid)
    assert m["recipients"][0]["route"] == "smtp:127.0.0.1:%d" % closed
    sink = SmtpSink(tmp_path, "127.0.0.1", sink_port)
    try:
        tmap.write_text("far.test 127.0.0.1:%d\n" % sink_port)
        ctl(s, "reload")
        wait_for("the engine took the settings", lambda: "queue: settings of generation"
                 in s.log())
        assert queue_json(s)[0]["recipients"][0]["route"] == "smtp:127.0.0.1:%d" % sink_port
        ctl(s, "flush", qid)
        wait_for("delivered to the new next hop", lambda: sink.messages())
        wait_for("the queue empty", lambda: queue_json(s) == [])
    finally:
        sink.stop()
