"""DKIM (RFC 6376, RFC 8463): signing at receipt, checked by outside
verifiers, and tern's verifier checked against outside signers.

Keys come from `ternctl dkim-keygen` (RSA and Ed25519 for example.com);
the DNS the verifiers would ask is played by the record keygen printed:
dkimpy's dnsfunc, and for OpenDKIM's opendkim-testmsg a real unbound on
127.0.0.1:53 in a private network and mount namespace with its own
/etc/resolv.conf (root only). Submissions are authenticated (smtplib,
STARTTLS, AUTH) and relayed through a transport_map entry to Postfix's
smtp-sink, or delivered into a Maildir; local submissions go through
tern-sendmail and the pickup. Messages signed by dkimpy and OpenDKIM go
through tern's verifier as a program (build/dkim-verify).
"""

import os
import re
import shutil
import smtplib
import subprocess
import time
from collections import namedtuple
from pathlib import Path

import pytest

from conftest import DEADLINE, REPO, TERND, crlf, free_port, give_to_run_user, wait_for
from peers import SmtpSink, free_port_on
from secfix import PASSWORD, cert, client_context, users_file  # noqa: F401  (fixtures)

dkim = pytest.importorskip("dkim", reason="python3-dkim (dkimpy): scripts/install-deps test")

TERNCTL = os.environ.get("TERNCTL") or str(REPO / "build" / "ternctl")
DKIM_VERIFY = str(Path(TERND).parent / "dkim-verify")
USER = "kate@example.com"

Key = namedtuple("Key", "selector path name record line")


def keygen(directory, selector, *opts, domain="example.com"):
    """ternctl dkim-keygen; the key file, the TXT record's name and text
    (its strings joined, as a resolver gives them) and the dkim_keys line."""
    path = Path(directory) / ("%s.pem" % selector)
    p = subprocess.run([TERNCTL, "dkim-keygen", domain, selector, "--out", str(path)] +
                       list(opts), capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    txt = next(l for l in p.stdout.splitlines() if " IN TXT ( " in l)
    lines = [l for l in p.stdout.splitlines() if l and l[0] not in ";#"]
    return Key(selector, path, txt.split()[0], "".join(re.findall(r'"([^"]*)"', txt)),
               lines[-1])


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("dkim")
    return keygen(d, "rsa"), keygen(d, "ed", "--type", "ed25519")


def dnsfunc_for(*ks):
    """dkimpy's DNS: the records keygen printed."""
    table = {k.name.encode(): k.record.encode() for k in ks}
    return lambda name, timeout=5: table.get(name)


def dkim_keys(ks):
    return ", ".join(k.line for k in ks)


def verify_all(msg, ks):
    """dkimpy's verdict on every DKIM-Signature field, in order (it raises
    on some failures, a body hash mismatch among them)."""
    def one(i):
        try:
            return dkim.DKIM(msg).verify(idx=i, dnsfunc=dnsfunc_for(*ks))
        except dkim.DKIMException:
            return False
    n = len(re.findall(rb"^DKIM-Signature:", msg, re.M | re.I))
    return [one(i) for i in range(n)]


def signatures(msg):
    """The tags of each DKIM-Signature field (folds out)."""
    out = []
    for m in re.finditer(rb"^DKIM-Signature:(.*?)\r\n(?![ \t])", msg, re.M | re.S | re.I):
        v = re.sub(rb"\r\n[ \t]", b" ", m.group(1)).decode()
        out.append(dict((t.split("=", 1)[0].strip(), t.split("=", 1)[1].strip())
                        for t in v.split(";") if "=" in t))
    return out


def to_crlf(data):
    return re.sub(rb"\r?\n", b"\r\n", data)


# --------------------------------------------------------------------------
# ternctl dkim-keygen


def test_keygen_writes_the_key_and_prints_what_to_publish(tmp_path):
    k = keygen(tmp_path, "sel")
    assert k.path.stat().st_mode & 0o777 == 0o600
    assert b"-----BEGIN PRIVATE KEY-----" in k.path.read_bytes()
    assert k.name == "sel._domainkey.example.com."
    assert k.record.startswith("v=DKIM1; k=rsa; p=MIIBIjAN")    # 2048 bits by default
    assert k.line == "example.com sel %s" % k.path.resolve()
    p = subprocess.run([TERNCTL, "dkim-keygen", "example.com", "sel", "--out", str(k.path)],
                       capture_output=True, text=True)
    assert p.returncode == 73 and "not overwritten" in p.stderr       # EX_CANTCREAT
    e = keygen(tmp_path, "ed", "--type", "ed25519")
    assert re.fullmatch(r"v=DKIM1; k=ed25519; p=[A-Za-z0-9+/]{43}=", e.record)
    for bad in (["--type", "dsa"], ["--bits", "512"], ["--type", "ed25519", "--bits", "2048"]):
        p = subprocess.run([TERNCTL, "dkim-keygen", "example.com", "x", "--out",
                            str(tmp_path / "x.pem")] + bad, capture_output=True, text=True)
        assert p.returncode == 64, (bad, p.stderr)
        assert not (tmp_path / "x.pem").exists()


def test_keygen_splits_the_record_into_255_octet_strings(tmp_path):
    k = keygen(tmp_path, "s4096", "--bits", "4096")
    p = subprocess.run([TERNCTL, "dkim-keygen", "example.com", "s", "--out",
                        str(tmp_path / "s.pem"), "--bits", "4096"], capture_output=True, text=True)
    txt = next(l for l in p.stdout.splitlines() if " IN TXT ( " in l)
    strings = re.findall(r'"([^"]*)"', txt)
    assert len(strings) >= 3 and all(len(s) <= 255 for s in strings)
    assert all(len(s) == 255 for s in strings[:-1])
    assert txt.endswith(" )") and k.record.startswith("v=DKIM1; k=rsa; p=MIICIjAN")


# --------------------------------------------------------------------------
# Signing at receipt


@pytest.fixture
def signer(ternd, tmp_path, cert, users_file, keys):  # noqa: F811
    """A ternd with both keys of example.com, a submission listener, and
    far.example relayed to an smtp-sink; 127.0.0.0/8 may relay without
    AUTH on the plain listener."""
    sink = SmtpSink(tmp_path, "127.0.0.1", free_port_on("127.0.0.1"))
    tmap = tmp_path / "transport"
    tmap.write_text("far.example 127.0.0.1:%d\n" % sink.port)
    crt, key = cert
    port, sport = free_port(), free_port()
    s = ternd(tls_cert=str(crt), tls_key=str(key), users_file=str(users_file),
              transport_map=str(tmap), relay_networks="127.0.0.0/8", dkim_keys=dkim_keys(keys),
              listen="127.0.0.1:%d, 127.0.0.1:%d submission" % (port, sport),
              log_level="debug", mailboxes=(USER, "bob@example.com"))
    s.sub_port, s.sink = sport, sink
    yield s
    sink.stop()


def submit(s, msg, rcpts, user=USER):
    """An authenticated submission (STARTTLS, AUTH LOGIN), as a mail client
    sends it: smtplib dot-stuffs the message."""
    with smtplib.SMTP("127.0.0.1", s.sub_port, timeout=DEADLINE) as c:
        c.ehlo("client.example")
        c.starttls(context=client_context())
        c.ehlo("client.example")
        c.login(user, PASSWORD)
        c.sendmail(user, rcpts, msg)


def relay(s, msg, rcpts, sender=USER):
    """The same message from a client of relay_networks, no AUTH."""
    with smtplib.SMTP("127.0.0.1", s.port, timeout=DEADLINE) as c:
        c.ehlo("client.example")
        c.sendmail(sender, rcpts, msg)


def at_sink(s, marker):
    """The message smtp-sink received with marker, CRLF line ends again
    (its dump has LF), its own trace fields above ours."""
    def find():
        for p in s.sink.messages():
            data = p.read_bytes()
            if marker.encode() in data:
                return data
        return None
    return to_crlf(wait_for("%s at the sink" % marker, find))


def message(marker, *body, frm="Kate <kate@example.com>", extra=()):
    head = ["From: %s" % frm, "To: Bob <bob@far.example>", "Subject: %s" % marker,
            "Date: Mon, 1 Jan 2024 10:00:00 +0000", "Message-ID: <%s@example.com>" % marker,
            "MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8"] + list(extra)
    return crlf(*(head + [""] + list(body or ["Hello Bob,", "", "  two  spaces\tand a tab  ",
                                              ".a line that begins with a dot", "..", "",
                                              "-- ", "Kate", "", ""])))


def test_submission_is_signed_twice_and_dkimpy_verifies_both(signer, keys):
    submit(signer, message("dual"), ["bob@far.example"])
    got = at_sink(signer, "dual")
    sigs = signatures(got)
    assert [(g["a"], g["s"], g["d"], g["c"]) for g in sigs] == [
        ("rsa-sha256", "rsa", "example.com", "relaxed/relaxed"),
        ("ed25519-sha256", "ed", "example.com", "relaxed/relaxed")]
    h = sigs[0]["h"].replace(" ", "").split(":")
    assert h[:6] == ["from", "from", "subject", "subject", "date", "date"], h
    assert {"to", "message-id", "mime-version", "content-type"} <= set(h)
    assert verify_all(got, keys) == [True, True]
    # tern's Received comes first (the trace), then the signatures; the
    # Received is not signed
    ours = got.index(b"Received: from client.example")
    assert got.index(b"DKIM-Signature:") > ours
    assert "received" not in sigs[0]["h"]
    for field in re.findall(rb"^DKIM-Signature:.*?\r\n(?![ \t])", got, re.M | re.S):
        for line in field.split(b"\r\n"):
            assert len(line.expandtabs(8)) <= 78, line      # folded at 78 columns
    # tern's own verifier agrees
    p = subprocess.run([DKIM_VERIFY, "%s=%s" % (keys[0].name[:-1], keys[0].record),
                        "%s=%s" % (keys[1].name[:-1], keys[1].record)], input=got,
                       capture_output=True)
    assert p.returncode == 0 and p.stdout.count(b"result=pass") == 2, p.stdout
    assert re.search(r": dkim: signed, d=example\.com, s=rsa, key=", signer.log())
    assert re.search(r": dkim: signed, d=example\.com, s=ed, key=", signer.log())


def test_oversigning_an_added_subject_or_from_breaks_the_signatures(signer, keys):
    submit(signer, message("oversign"), ["bob@far.example"])
    got = at_sink(signer, "oversign")
    assert verify_all(got, keys) == [True, True]
    end = got.index(b"\r\n\r\n")
    for added in (b"Subject: buy now\r\n", b"From: Boss <boss@example.com>\r\n",
                  b"Date: Tue, 2 Jan 2024 10:00:00 +0000\r\n"):
        changed = got[:end + 2] + added + got[end + 2:]     # below the signed ones
        assert verify_all(changed, keys) == [False, False], added
    # a header not signed may be added; a changed body may not
    assert verify_all(got[:end + 2] + b"X-Spam: no\r\n" + got[end + 2:], keys) == [True, True]
    assert verify_all(got.replace(b"Hello Bob", b"Hello Rob"), keys) == [False, False]


def test_large_dotless_body_goes_by_sendfile_after_the_signatures(signer, keys):
    """A body over 64 KiB is a spool body file; without a line that begins
    with a dot it goes out by sendfile: the prefix goes first, stuffed."""
    body = ["line %06d of a long message, nothing to stuff here" % i for i in range(3000)]
    submit(signer, message("bigbody", *body), ["bob@far.example"])
    # the sink writes its file as the data comes: read it once it said 250
    wait_for("delivered", lambda: "status=sent" in signer.log())
    got = at_sink(signer, "bigbody")
    assert len(got) > 150000
    assert verify_all(got, keys) == [True, True]


def test_a_header_block_over_64_kib_is_not_signed(signer, keys):
    filler = ["X-Filler-%03d: %s" % (i, "x" * 700) for i in range(100)]   # about 71 KiB
    submit(signer, message("bighead", extra=filler), ["bob@far.example"])
    got = at_sink(signer, "bighead")
    assert b"DKIM-Signature" not in got
    assert re.search(r": dkim: not signed, reason=header block larger than 64 KiB", signer.log())


def test_unauthenticated_relay_is_not_signed(signer, keys):
    relay(signer, message("relayed"), ["bob@far.example"])
    got = at_sink(signer, "relayed")
    assert b"DKIM-Signature" not in got
    assert "dkim:" not in signer.log()


@pytest.mark.parametrize("mode", ["trusted", "authenticated"])
def test_dkim_sign_trusted_signs_relay_networks_without_auth(ternd, tmp_path, keys, mode):
    """dkim_sign = trusted (OpenDKIM's InternalHosts): a client of
    relay_networks that did not authenticate has its mail signed; a client
    outside them is not signed.
    With authenticated, the same relayed mail goes unsigned."""
    sink = SmtpSink(tmp_path, "127.0.0.1", free_port_on("127.0.0.1"))
    try:
        tmap = tmp_path / "transport"
        tmap.write_text("far.example 127.0.0.1:%d\n" % sink.port)
        s = ternd(transport_map=str(tmap), relay_networks="127.0.0.2/32",
                  dkim_keys=dkim_keys(keys), dkim_sign=mode, log_level="debug",
                  mailboxes=("bob@example.com",))
        s.sink = sink
        with smtplib.SMTP("127.0.0.1", s.port, timeout=DEADLINE,
                          source_address=("127.0.0.2", 0)) as c:
            c.ehlo("app.example")
            c.sendmail(USER, ["bob@far.example"], message("trusted-" + mode))
        got = at_sink(s, "trusted-" + mode)
        assert b"Received: from app.example ([127.0.0.2])" in got
        if mode == "trusted":
            assert [g["s"] for g in signatures(got)] == ["rsa", "ed"]
            assert verify_all(got, keys) == [True, True]
            assert re.search(r": dkim: signed, d=example\.com, s=rsa, key=", s.log())
        else:
            assert b"DKIM-Signature" not in got
            assert "dkim: signed" not in s.log()
        # 127.0.0.1 is not of relay_networks: its mail (local, it may not
        # relay) is not signed either way
        with smtplib.SMTP("127.0.0.1", s.port, timeout=DEADLINE) as c:
            c.ehlo("outside.example")
            c.sendmail(USER, ["bob@example.com"], message("outside-" + mode))
        data = s.wait_message_with("bob@example.com", "outside-" + mode)
        assert b"DKIM-Signature" not in data
    finally:
        sink.stop()


def test_no_key_for_the_from_domain_is_not_signed(signer, keys):
    submit(signer, message("otherdomain", frm="Kate <kate@other.example>"), ["bob@far.example"])
    got = at_sink(signer, "otherdomain")
    assert b"DKIM-Signature" not in got
    assert re.search(r": dkim: not signed, reason=no key for other\.example", signer.log())


def test_local_delivery_carries_the_signatures(signer, keys):
    submit(signer, message("tomaildir"), ["bob@example.com"])
    data = signer.wait_message_with("bob@example.com", "tomaildir")
    lines = data.split(b"\n")
    assert lines[0].startswith(b"Return-Path: ") and lines[1].startswith(b"Delivered-To: ")
    assert lines[2].startswith(b"Received: from client.example"), lines[2]
    first = next(l for l in lines[3:] if not l[:1] in (b"\t", b" "))
    assert first.startswith(b"DKIM-Signature: v=1; a=rsa-sha256;"), first
    assert verify_all(to_crlf(data), keys) == [True, True]


def test_local_submission_through_the_pickup_is_signed(signer, keys):
    from test_sendmail import sendmail, write_conf
    conf = write_conf(signer)
    msg = message("picked", frm="Dev <dev@example.com>")
    p = sendmail(conf, ["-i", "bob@example.com"], msg.replace(b"\r\n", b"\n"))
    assert p.returncode == 0, p.stderr
    data = signer.wait_message_with("bob@example.com", "picked")
    assert b"(tern, from local user" in data and b"DKIM-Signature: v=1; a=rsa-sha256;" in data
    assert verify_all(to_crlf(data), keys) == [True, True]


def test_lmtp_delivery_into_dovecot_carries_the_signatures(ternd, keys):
    """LMTP (the same client engine as SMTP) sends the prefix first too;
    Dovecot stores what it got, and dkimpy verifies it."""
    from peers import Dovecot
    from test_sendmail import sendmail, write_conf
    d = Dovecot(free_port_on("127.0.0.1"), ["bob@lmtp.example"])
    try:
        s = ternd(dkim_keys=dkim_keys(keys), lmtp_domains="lmtp.example",
                  lmtp_host="127.0.0.1:%d" % d.port)
        msg = message("vialmtp", frm="Dev <dev@example.com>").replace(b"bob@far.example",
                                                                       b"bob@lmtp.example")
        p = sendmail(write_conf(s), ["-i", "bob@lmtp.example"], msg.replace(b"\r\n", b"\n"))
        assert p.returncode == 0, p.stderr
        got = to_crlf(d.wait_message_with("bob@lmtp.example", "vialmtp"))
        assert [g["s"] for g in signatures(got)] == ["rsa", "ed"]
        assert verify_all(got, keys) == [True, True]
    finally:
        d.stop()


def test_dkim_sign_no_signs_nothing(ternd, tmp_path, keys):
    s = ternd(dkim_keys=dkim_keys(keys), dkim_sign="no", mailboxes=("bob@example.com",))
    assert "dkim_keys: example.com/rsa (RSA-2048), example.com/ed (Ed25519); dkim_sign = no" \
        in s.log()
    from test_sendmail import sendmail, write_conf
    p = sendmail(write_conf(s), ["-i", "bob@example.com"], message("nosign").replace(b"\r\n", b"\n"))
    assert p.returncode == 0, p.stderr
    assert b"DKIM-Signature" not in s.wait_message_with("bob@example.com", "nosign")


def test_keys_are_read_before_the_privilege_drop(signer, keys):
    """The key files are root's, mode 0600: read at start, as tls_key is."""
    if os.geteuid() != 0:
        pytest.skip("needs root: ternd drops to run_user")
    assert keys[0].path.stat().st_uid == 0 and keys[0].path.stat().st_mode & 0o077 == 0
    assert "dkim_keys: example.com/rsa (RSA-2048), example.com/ed (Ed25519)" in signer.log()
    submit(signer, message("rootkeys"), ["bob@far.example"])
    assert verify_all(at_sink(signer, "rootkeys"), keys) == [True, True]


def test_a_bad_key_is_refused_with_file_and_line(ternd, tmp_path, keys):
    from conftest import run_ternd
    from test_reload import write_conf
    from test_ternctl import ctl
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key\n")
    table = tmp_path / "dkim_keys"
    table.write_text("# keys\n%s\nexample.com broken %s\n" % (keys[1].line, bad))
    rc, out, err = run_ternd(["-n", "-o", "dkim_keys=%s" % table, "-o", "hostname=mx.test.example"])
    assert rc != 0 and "%s:3: %s: not a PEM private key" % (table, bad) in err, err
    # a reload with it is refused, and the keys in force still sign
    mine = tmp_path / "mine"
    mine.mkdir()
    give_to_run_user(mine)
    good = keygen(mine, "fresh", "--type", "ed25519")
    give_to_run_user(good.path)
    table.write_text(good.line + "\n")
    give_to_run_user(table)
    conf = tmp_path / "tern.conf"
    write_conf(conf, dkim_keys=str(table))
    s = ternd(args=("-c", str(conf)), mailboxes=("bob@example.com",))
    assert "dkim_keys: example.com/fresh (Ed25519)" in s.log()
    table.write_text(good.line + "\nexample.com broken %s\n" % bad)
    p = ctl(s, "reload", check=False)
    assert p.returncode == 1 and "%s:2: %s: not a PEM private key" % (table, bad) in p.stderr
    table.write_text(good.line + "\nexample.com other /nonexistent/key.pem\n")
    p = ctl(s, "reload", check=False)
    assert p.returncode == 1 and "%s:2: /nonexistent/key.pem: cannot read it" % table in p.stderr
    from test_sendmail import sendmail, write_conf as sendmail_conf
    msg = message("afterbadreload", frm="dev@example.com").replace(b"\r\n", b"\n")
    assert sendmail(sendmail_conf(s), ["-i", "bob@example.com"], msg).returncode == 0
    data = to_crlf(s.wait_message_with("bob@example.com", "afterbadreload"))
    assert [g["s"] for g in signatures(data)] == ["fresh"]
    assert verify_all(data, [good]) == [True]


# --------------------------------------------------------------------------
# Outside signers, tern's verifier


def dkimpy_key(k):
    """The private key as dkimpy takes it: PEM for RSA, the 32-octet
    Ed25519 seed in base64 (the end of the PKCS#8 DER openssl gives)."""
    if k.selector != "ed":
        return k.path.read_bytes()
    import base64
    der = subprocess.run(["openssl", "pkey", "-in", str(k.path), "-outform", "DER"],
                         capture_output=True, check=True).stdout
    return base64.b64encode(der[-32:])


def tern_verify(msg, records, *args):
    p = subprocess.run([DKIM_VERIFY] + list(args) + ["%s=%s" % r for r in records], input=msg,
                       capture_output=True, timeout=DEADLINE)
    return p.returncode, p.stdout.decode()


def key_records(ks):
    return [(k.name[:-1], k.record) for k in ks]


@pytest.mark.parametrize("canon", [(b"relaxed", b"relaxed"), (b"simple", b"simple"),
                                   (b"relaxed", b"simple"), (b"simple", b"relaxed")])
@pytest.mark.parametrize("length", [False, True])
def test_dkimpy_signatures_verify_in_tern(keys, canon, length):
    rsa, ed = keys
    msg = message("fromdkimpy")
    for k, alg in ((rsa, b"rsa-sha256"), (ed, b"ed25519-sha256")):
        sig = dkim.sign(msg, k.selector.encode(), b"example.com", dkimpy_key(k), canonicalize=canon,
                        length=length, signature_algorithm=alg)
        signed = sig + msg
        rc, out = tern_verify(signed, key_records(keys))
        assert rc == 0 and "result=pass" in out, (canon, length, alg, out)
        rc, out = tern_verify(signed.replace(b"Hello Bob", b"Hello Rob"), key_records(keys))
        assert rc == 1 and "body hash did not verify" in out, out
        rc, out = tern_verify(signed.replace(b"Subject: fromdkimpy", b"Subject: changed"),
                              key_records(keys))
        assert rc == 1 and "signature did not verify" in out, out
        if length:   # l=: what follows the signed length is not covered
            rc, out = tern_verify(signed + b"appended\r\n", key_records(keys))
            assert rc == 0, out


def test_tern_verifier_statuses_of_dkimpy_signatures(keys):
    rsa, ed = keys
    msg = message("statuses")
    sig = dkim.sign(msg, b"rsa", b"example.com", rsa.path.read_bytes())
    signed = sig + msg
    t = int(re.search(rb"t=(\d+)", sig).group(1))
    rc, out = tern_verify(signed, [])
    assert rc == 1 and "result=permerror (no key for signature)" in out
    rc, out = tern_verify(signed, [(rsa.name[:-1], "v=DKIM1; k=rsa; p=")])
    assert "result=permerror (key revoked)" in out
    rc, out = tern_verify(signed, [(rsa.name[:-1], ed.record)])
    assert "result=permerror (inappropriate key type)" in out
    rc, out = tern_verify(signed, key_records(keys), "-t", str(t - 3600))
    assert "result=policy (signature timestamp in the future)" in out
    rc, out = tern_verify(signed, [(rsa.name[:-1], rsa.record + "; h=sha1")])
    assert "result=permerror (inappropriate hash algorithm)" in out
    rc, out = tern_verify(signed.replace(b"DKIM-Signature: v=1;", b"DKIM-Signature: v=1; v=2;"),
                          key_records(keys))
    assert "result=permerror (signature is not a valid tag-list)" in out


def test_opendkim_rsa_sha1_signatures_are_refused(keys, tmp_path):
    """opendkim-testmsg signs only with rsa-sha1 (its default; it has no
    option for another): RFC 8301 3.1 says verifiers MUST NOT accept it,
    and tern's verifier gives permerror, while the same message signed by
    dkimpy with rsa-sha256 under the same key passes."""
    if not shutil.which("opendkim-testmsg"):
        pytest.skip("opendkim-tools missing: scripts/install-deps test")
    rsa = keys[0]
    msg = message("fromopendkim")
    p = subprocess.run(["opendkim-testmsg", "-C", "-d", "example.com", "-s", rsa.selector,
                        "-k", str(rsa.path)], input=msg, capture_output=True, timeout=DEADLINE)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith(b"DKIM-Signature: v=1; a=rsa-sha1;"), p.stdout[:200]
    rc, out = tern_verify(p.stdout, key_records(keys))
    assert rc == 1 and "result=permerror (unknown or refused algorithm)" in out, out
    signed = dkim.sign(msg, b"rsa", b"example.com", dkimpy_key(rsa)) + msg
    assert tern_verify(signed, key_records(keys))[0] == 0


def opendkim_verify(tmp_path, msgs, ks):
    """opendkim-testmsg's verdict on each message, its keys served by a real
    unbound on 127.0.0.1:53 in namespaces of its own (network and mount,
    with a resolv.conf naming it)."""
    d = tmp_path / "ns"
    d.mkdir()
    conf = ["server:", "    interface: 127.0.0.1@53", "    port: 53", "    do-daemonize: no",
            '    username: ""', '    chroot: ""', '    directory: "%s"' % d, '    pidfile: ""',
            "    use-syslog: no", "    do-ip6: no", "    do-not-query-localhost: no",
            '    module-config: "iterator"', '    local-zone: "." static']
    for k in ks:
        strings = " ".join('"%s"' % k.record[i:i + 255] for i in range(0, len(k.record), 255))
        conf.append("    local-data: '%s TXT %s'" % (k.name, strings))
    conf += ["remote-control:", "    control-enable: no", ""]
    (d / "unbound.conf").write_text("\n".join(conf))
    (d / "resolv.conf").write_text("nameserver 127.0.0.1\n")
    for i, m in enumerate(msgs):
        (d / ("%d.eml" % i)).write_bytes(m)
    script = """
ip link set lo up
unbound -d -c {d}/unbound.conf >{d}/unbound.log 2>&1 & UB=$!
mount --bind {d}/resolv.conf /etc/resolv.conf
for i in $(seq 50); do
    python3 -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.connect(("127.0.0.1", 53)); s.send(b"\\0\\0\\1\\0\\0\\1\\0\\0\\0\\0\\0\\0\\0\\0\\1\\0\\1"); s.settimeout(0.1); s.recv(512)' 2>/dev/null && break
done
for f in $(ls {d}/*.eml | sort -V); do opendkim-testmsg < $f >{d}/out 2>&1; echo "rc=$? $(cat {d}/out)"; done
kill $UB
""".format(d=d)
    p = subprocess.run(["unshare", "--net", "--mount", "--propagation", "private", "sh", "-c",
                        script], capture_output=True, text=True, timeout=60)
    return p.stdout.strip().splitlines(), p.stderr


def test_opendkim_verifies_what_tern_signed(signer, keys, tmp_path):
    """libopendkim (opendkim-testmsg) verifies tern's RSA and Ed25519
    signatures, each alone, with the keys from real DNS."""
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("opendkim-testmsg"):
        pytest.skip("needs root, unshare(1) and opendkim-tools")
    submit(signer, message("foropendkim"), ["bob@far.example"])
    got = at_sink(signer, "foropendkim")
    start = got.index(b"DKIM-Signature:")
    second = got.index(b"\r\nDKIM-Signature:", start) + 2
    end = re.search(rb"\r\n(?![ \t])", got[second:]).end() + second
    rsa_only = got[:second] + got[end:]        # opendkim-testmsg reports the first
    ed_only = got[:start] + got[second:]
    bad = ed_only.replace(b"Hello Bob", b"Hello Rob")
    out, err = opendkim_verify(tmp_path, [rsa_only, ed_only, bad], keys)
    assert len(out) == 3, (out, err)
    assert out[0].strip() == "rc=0" and out[1].strip() == "rc=0", (out, err)
    assert out[2].startswith("rc=70") and "Bad signature" in out[2], out


# --------------------------------------------------------------------------
# Verification of received mail, keys from a real unbound


@pytest.fixture(scope="module")
def org_keys(tmp_path_factory):
    """Keys of example.org, a sender elsewhere (dkimpy signs with them)."""
    d = tmp_path_factory.mktemp("dkim-org")
    return (keygen(d, "rsa", domain="example.org"),
            keygen(d, "ed", "--type", "ed25519", domain="example.org"))


def zone_record(k):
    """keygen's record as unbound's local-data: 255-octet strings."""
    return "%s TXT %s" % (k.name, " ".join('"%s"' % k.record[i:i + 255]
                                           for i in range(0, len(k.record), 255)))


@pytest.fixture
def verifying(ternd, tmp_path, org_keys, cert, users_file):  # noqa: F811
    from dnsserver import Unbound
    rsa, ed = org_keys
    dns = Unbound(tmp_path, [zone_record(rsa), zone_record(ed),
                             'revoked._domainkey.example.org. TXT "v=DKIM1; k=rsa; p="',
                             'broken._domainkey.example.org. TXT "v=DKIM1; k=rsa; p=!!"'])
    crt, key = cert
    port, sport = free_port(), free_port()
    s = ternd(dns_resolver=dns.resolver, tls_cert=str(crt), tls_key=str(key),
              users_file=str(users_file), mailboxes=("bob@example.com",),
              listen="127.0.0.1:%d, 127.0.0.1:%d submission" % (port, sport))
    s.sub_port = sport
    yield s
    dns.stop()


def signed_by_org(marker, key, selector=None, body="Hello Bob,"):
    msg = message(marker, body, frm="Ann <ann@example.org>")
    sel = (selector or key.selector).encode()
    alg = b"ed25519-sha256" if key.selector == "ed" else b"rsa-sha256"
    return dkim.sign(msg, sel, b"example.org", dkimpy_key(key), signature_algorithm=alg) + msg


def deliver_plain(s, msg, rcpt="bob@example.com"):
    with smtplib.SMTP("127.0.0.1", s.port, timeout=DEADLINE) as c:
        c.ehlo("client.example")
        c.sendmail("ann@example.org", [rcpt], msg)


def verdicts(s, qid_marker):
    """The dkim verdict lines of the message whose Subject is the marker."""
    data = s.wait_message_with("bob@example.com", qid_marker)
    qid = re.search(rb"with E?SMTPS?A? id ([0-9A-F]{16})", data).group(1).decode()
    wait_for("%s queued" % qid, lambda: "%s: queued" % qid in s.log())
    return [l.split(": dkim: verified, ", 1)[1] for l in s.log().splitlines()
            if "%s: dkim: verified, " % qid in l]


def test_received_signatures_are_verified_with_keys_from_dns(verifying, org_keys):
    rsa, ed = org_keys
    deliver_plain(verifying, signed_by_org("vrsa", rsa))
    assert verdicts(verifying, "vrsa") == [
        "d=example.org, s=rsa, a=rsa-sha256, result=pass, session=2"]
    msg = signed_by_org("vboth", rsa)
    both = dkim.sign(msg, b"ed", b"example.org", dkimpy_key(ed),
                     signature_algorithm=b"ed25519-sha256") + msg
    deliver_plain(verifying, both)
    got = verdicts(verifying, "vboth")
    assert [g.split(", session")[0] for g in got] == [
        "d=example.org, s=ed, a=ed25519-sha256, result=pass",
        "d=example.org, s=rsa, a=rsa-sha256, result=pass"]


def test_failures_are_verdicts_and_the_mail_is_taken(verifying, org_keys):
    """Verification informs (no Authentication-Results, no DMARC yet):
    every failure is a logged verdict with RFC 8601's word, and the
    message is delivered."""
    rsa, ed = org_keys
    cases = [
        ("vbody", signed_by_org("vbody", rsa).replace(b"Hello Bob", b"Hello Rob"),
         "result=fail, reason=body hash did not verify"),
        ("vsubj", signed_by_org("vsubj", ed).replace(b"Subject: vsubj", b"Subject: vsubj!"),
         "result=fail, reason=signature did not verify"),
        ("vnokey", signed_by_org("vnokey", rsa, selector="nosuch"),
         "result=permerror, reason=no key for signature"),
        ("vrevoked", signed_by_org("vrevoked", rsa, selector="revoked"),
         "result=permerror, reason=key revoked"),
        ("vbroken", signed_by_org("vbroken", rsa, selector="broken"),
         "result=permerror, reason=key record p= is not a key"),
        ("vsha1", signed_by_org("vsha1", rsa).replace(b"a=rsa-sha256", b"a=rsa-sha1"),
         "result=permerror, reason=unknown or refused algorithm"),
    ]
    for marker, msg, want in cases:
        deliver_plain(verifying, msg)
        got = verdicts(verifying, marker)
        assert len(got) == 1 and want in got[0], (marker, got)


def test_unsigned_and_submitted_mail_is_not_verified(verifying, org_keys):
    deliver_plain(verifying, message("vunsigned", frm="ann@example.org"))
    assert verdicts(verifying, "vunsigned") == []
    # a session that authenticated submits its own mail: tern would sign it
    submit(verifying, signed_by_org("vsubmitted", org_keys[0]), ["bob@example.com"])
    assert verdicts(verifying, "vsubmitted") == []


def test_a_silent_resolver_gives_temperror_within_the_timeout(ternd, tmp_path, org_keys):
    """A resolver that never answers: after dkim_verify_timeout the
    signature is a temperror, and the client gets its 250."""
    import socket
    hole = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    hole.bind(("127.0.0.1", 0))
    try:
        s = ternd(dns_resolver="127.0.0.1@%d" % hole.getsockname()[1], dkim_verify_timeout="1s",
                  mailboxes=("bob@example.com",))
        t0 = time.monotonic()
        deliver_plain(s, signed_by_org("vsilent", org_keys[0]))
        took = time.monotonic() - t0
        got = verdicts(s, "vsilent")
        assert len(got) == 1 and "result=temperror, reason=key unavailable" in got[0], got
        assert 0.9 < took < 5, took
    finally:
        hole.close()


def test_dkim_verify_no(ternd, tmp_path, org_keys):
    s = ternd(dkim_verify="no", dns_resolver="127.0.0.1@9", mailboxes=("bob@example.com",))
    deliver_plain(s, signed_by_org("vnever", org_keys[0]))
    assert verdicts(s, "vnever") == []


def test_a_client_gone_while_keys_are_fetched(ternd, tmp_path, org_keys):
    """The client leaves after its final dot, while the key lookup is out:
    the lookup is cancelled with the transaction, nothing is queued, and
    ternd serves on (its exit is checked for leaks under ASan)."""
    import socket
    hole = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    hole.bind(("127.0.0.1", 0))
    try:
        s = ternd(dns_resolver="127.0.0.1@%d" % hole.getsockname()[1], dkim_verify_timeout="5s",
                  mailboxes=("bob@example.com",))
        c = s.session()
        c.expect("MAIL FROM:<ann@example.org>", "250 ...")
        c.expect("RCPT TO:<bob@example.com>", "250 ...")
        c.expect("DATA", "354 ...")
        c.raw(signed_by_org("vgone", org_keys[0]) + b".\r\n")
        c.close()
        wait_for("the session closed", lambda: re.search(r"session 2: disconnect: .*reason=", s.log()))
        assert ": queued:" not in s.log() and "dkim: verified" not in s.log()
        s.barrier("bob@example.com")    # still serving
        time.sleep(5.5)                 # past dkim_verify_timeout: nothing comes back
        assert "dkim: verified" not in s.log()
    finally:
        hole.close()
