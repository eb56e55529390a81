"""STARTTLS (RFC 3207) and implicit TLS (RFC 8314): real clients (smtplib,
openssl s_client), TLS 1.2+ only, and no command injection across the
handshake (CVE-2011-0411)."""

import smtplib
import socket
import ssl
import subprocess

import pytest

from conftest import BYE, QUEUED, SENDER_OK, RCPT_OK, START_DATA, free_port, crlf, Delivered
from secfix import cert, client_context, starttls, tls_client  # noqa: F401

EHLO_TLS = "250-STARTTLS"


@pytest.fixture
def tls_server(ternd, cert):
    crt, key = cert
    return ternd(tls_cert=str(crt), tls_key=str(key))


def test_starttls_offered_only_when_configured(server, tls_server):
    c = server.connect()
    r = c.cmd("EHLO client.example")
    assert "STARTTLS" not in r.text
    c.expect("STARTTLS", "502 5.5.1 STARTTLS not offered by this server")
    c = tls_server.connect()
    r = c.cmd("EHLO client.example")
    assert EHLO_TLS in r.lines, r.text


def test_smtplib_starttls_and_delivery(tls_server):
    tls_server.make_maildir("kate@example.com")
    with smtplib.SMTP("127.0.0.1", tls_server.port, timeout=10) as s:
        s.ehlo("client.example")
        assert s.has_extn("starttls")
        code, _ = s.starttls(context=client_context())
        assert code == 220
        assert s.sock.version() in ("TLSv1.2", "TLSv1.3")
        s.ehlo("client.example")
        assert not s.has_extn("starttls"), "STARTTLS offered again inside TLS"
        s.sendmail("a@client.example", ["kate@example.com"],
                   b"Subject: over TLS\r\n\r\nencrypted hello\r\n")
    data = tls_server.wait_message_with("kate@example.com", "encrypted hello")
    Delivered(data).check(sender="a@client.example", rcpt="kate@example.com",
                          helo="client.example", proto="ESMTPS")
    assert "tls: client=[127.0.0.1], established, version=TLSv1." in tls_server.log()


def test_openssl_s_client_starttls(tls_server):
    p = subprocess.run(
        ["openssl", "s_client", "-starttls", "smtp", "-connect", "127.0.0.1:%d" % tls_server.port,
         "-servername", "mx.test.example", "-quiet"],
        input=b"EHLO s-client.example\r\nQUIT\r\n", capture_output=True, timeout=20)
    out = p.stdout.decode("utf-8", "replace")
    assert "250-mx.test.example Hello [127.0.0.1]" in out, out + p.stderr.decode()
    assert "STARTTLS" not in out, "STARTTLS offered after TLS started:\n" + out
    assert "221 2.0.0" in out, out


def test_tls13_one_ticket_that_resumes(tls_server, tmp_path):
    """One TLS 1.3 ticket per handshake (RFC 8446 4.6.1): ternd's tickets
    are keys into its session cache (SSL_OP_NO_TICKET), and a second one
    per handshake only filled it; a client offering the ticket resumes."""
    sess = tmp_path / "session.pem"

    def s_client(*extra):
        p = subprocess.run(
            ["openssl", "s_client", "-starttls", "smtp", "-tls1_3", "-ign_eof", "-msg",
             "-connect", "127.0.0.1:%d" % tls_server.port, *extra],
            input=b"EHLO s-client.example\r\nQUIT\r\n", capture_output=True, timeout=20)
        out = p.stdout.decode("utf-8", "replace")
        assert "221 2.0.0" in out, out + p.stderr.decode()
        return out

    out = s_client("-sess_out", str(sess))
    assert out.count(", NewSessionTicket") == 1, out
    assert "\nNew, TLSv1.3" in out, out
    out = s_client("-sess_in", str(sess))
    assert "\nReused, TLSv1.3" in out, out


@pytest.mark.parametrize("version", ["-tls1", "-tls1_1"])
def test_old_tls_versions_refused(tls_server, version):
    p = subprocess.run(
        ["openssl", "s_client", "-starttls", "smtp", "-connect", "127.0.0.1:%d" % tls_server.port,
         version, "-cipher", "DEFAULT@SECLEVEL=0"],
        input=b"QUIT\r\n", capture_output=True, timeout=20)
    out = (p.stdout + p.stderr).decode("utf-8", "replace")
    assert p.returncode != 0 and "Cipher is (NONE)" in out or "alert" in out.lower(), out


def test_tls12_uses_forward_secret_aead(tls_server):
    ctx = client_context()
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    with smtplib.SMTP("127.0.0.1", tls_server.port, timeout=10) as s:
        s.ehlo("x.example")
        s.starttls(context=ctx)
        name, version, bits = s.sock.cipher()
        assert version == "TLSv1.2"
        assert name.startswith("ECDHE-") and ("GCM" in name or "CHACHA20" in name), name


def test_command_injection_across_starttls_is_discarded(tls_server):
    """CVE-2011-0411: commands sent in the same packet as STARTTLS must not be
    executed inside the TLS session."""
    c = tls_server.connect()
    c.expect("EHLO client.example", "250-...")
    c.raw(b"STARTTLS\r\nMAIL FROM:<injected@evil.example>\r\n")
    c.expect_reply("220 2.0.0 Ready to start TLS")
    c.sock = client_context().wrap_socket(c.sock, server_hostname="mx.test.example")
    # Had the injected MAIL run, this MAIL would get 503 (nested MAIL),
    # and its reply would be waiting before ours.
    c.expect("EHLO client.example", "250-...")
    c.expect("MAIL FROM:<real@client.example>", SENDER_OK)
    c.expect("QUIT", BYE)
    assert "discarding" in tls_server.log() and "injected" not in tls_server.log()


def test_session_resets_after_starttls(tls_server):
    """RFC 3207 4.2: EHLO must come again; a transaction does not survive."""
    c = tls_server.connect()
    c.expect("EHLO client.example", "250-...")
    c.expect("MAIL FROM:<a@client.example>", SENDER_OK)
    starttls(c)
    c.expect("MAIL FROM:<a@client.example>", "503 5.5.1 Send EHLO or HELO first")
    c.expect("EHLO client.example", "250-...")
    c.expect("RCPT TO:<postmaster@example.com>", "503 5.5.1 Need MAIL before RCPT")
    c.expect("STARTTLS", "503 5.5.1 TLS already active")


def test_starttls_with_parameter_refused(tls_server):
    c = tls_server.connect()
    c.expect("EHLO client.example", "250-...")
    c.expect("STARTTLS now", "501 5.5.4 Syntax error (no parameters allowed)")


def test_failed_handshake_keeps_server_alive(tls_server):
    c = tls_server.connect()
    c.expect("EHLO client.example", "250-...")
    c.expect("STARTTLS", "220 2.0.0 Ready to start TLS")
    c.raw(b"this is not a TLS ClientHello\r\n\r\n")
    c.wait_closed()
    d = tls_server.connect()
    d.expect("QUIT", BYE)


@pytest.fixture
def smtps_server(ternd, cert):
    crt, key = cert
    port, sport = free_port(), free_port()
    s = ternd(tls_cert=str(crt), tls_key=str(key),
              listen="127.0.0.1:%d, 127.0.0.1:%d smtps" % (port, sport))
    s.smtps_port = sport
    return s


def test_smtps_implicit_tls(smtps_server):
    smtps_server.make_maildir("kate@example.com")
    with smtplib.SMTP_SSL("127.0.0.1", smtps_server.smtps_port, timeout=10,
                          context=client_context()) as s:
        code, _ = s.ehlo("client.example")
        assert code == 250
        assert not s.has_extn("starttls")
        s.sendmail("a@client.example", ["kate@example.com"], b"Subject: smtps\r\n\r\nimplicit\r\n")
    data = smtps_server.wait_message_with("kate@example.com", "implicit")
    Delivered(data).check(sender="a@client.example", rcpt="kate@example.com",
                          helo="client.example", proto="ESMTPS")


def test_smtps_openssl_s_client(smtps_server):
    p = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % smtps_server.smtps_port,
                        "-quiet"],
                       input=b"EHLO s.example\r\nQUIT\r\n", capture_output=True, timeout=20)
    out = p.stdout.decode("utf-8", "replace")
    assert out.startswith("220 mx.test.example ESMTP"), out + p.stderr.decode()
    assert "221 2.0.0" in out


def test_smtps_plaintext_client_gets_nothing(smtps_server):
    s = socket.create_connection(("127.0.0.1", smtps_server.smtps_port), timeout=10)
    s.sendall(b"EHLO plain.example\r\n")
    got = b""
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
    except (ConnectionResetError, socket.timeout):
        pass
    assert b"250" not in got and b"220 mx" not in got, got


def test_smtps_needs_cert(tmp_path):
    from conftest import run_ternd
    rc, out, err = run_ternd(["-n", "-o", "listen=127.0.0.1:2465 smtps"])
    assert rc == 2 and "smtps listener needs tls_cert" in err, err


def test_bad_key_refused_at_start(tmp_path, cert):
    from conftest import run_ternd
    crt, _ = cert
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key\n")
    rc, out, err = run_ternd(["-o", "listen=127.0.0.1:%d" % free_port(), "-o", "tls_cert=%s" % crt,
                              "-o", "tls_key=%s" % bad, "-o", "spool_dir=%s" % (tmp_path / "s"),
                              "-o", "mail_dir=%s" % (tmp_path / "m"), "-o", "hostname=mx.test.example"])
    assert rc == 2 and "tls:" in err, err


def big_body(seed, size):
    """About size octets of lines from 0 to 998 octets long, some starting
    with a dot (smtplib stuffs them, ternd unstuffs them), so that line
    ends and dots fall across every read's boundary."""
    import random
    rnd = random.Random(seed)
    lines, n = [], 0
    while n < size:
        line = ("." if rnd.random() < 0.05 else "") + "%d " % len(lines) + "x" * rnd.randrange(0, 990)
        lines.append(line)
        n += len(line) + 2
    return ("\r\n".join(lines) + "\r\n").encode()


@pytest.mark.parametrize("tls", [False, True], ids=["clear", "starttls"])
def test_large_messages_arrive_whole(tls_server, tls):
    """Three 3 MiB messages on one session, in clear and over STARTTLS:
    each is in the mailbox octet for octet. (ternd reads a message's
    octets in up to 128 KiB a call; under TLS the layer below then reads
    again while a step drains its input, which once ended a message twice
    and crashed.)"""
    rcpt = "big-%s@example.com" % ("tls" if tls else "clear")
    tls_server.make_maildir(rcpt)
    bodies = [big_body(i, 3 << 20) for i in range(3)]
    with smtplib.SMTP("127.0.0.1", tls_server.port, timeout=30) as s:
        s.ehlo("client.example")
        if tls:
            s.starttls(context=client_context())
            s.ehlo("client.example")
        for i, body in enumerate(bodies):
            s.sendmail("a@client.example", [rcpt],
                       b"Subject: big %d\r\n\r\n" % i + body)
    got = tls_server.wait_messages(rcpt, 3)
    want = {b"Subject: big %d" % i: b.replace(b"\r\n", b"\n") for i, b in enumerate(bodies)}
    for data in got:
        data = data.replace(b"\r\n", b"\n")
        subject = next(k for k in want if k in data)
        assert data.split(b"\n\n", 1)[1] == want.pop(subject), subject
    assert not want
    assert "ERROR" not in tls_server.log()
