"""tern-probe conform: the dialogue files of conform/ (RFC behaviour as
data) against ternd and against other SMTP servers, all real and on
loopback. ternd must pass every dialogue that applies to it; for each
other server the dialogues it fails are asserted exactly, so that a change
on either side shows (docs/CONFORM.md says who is right in each case).
"""

import json
import os
import re
import subprocess

import pytest

from conftest import REPO, DEADLINE, sanitizer_problems
from probe_peers import AioSmtpd, Postfix, SmtpSink
from secfix import cert  # noqa: F401

PROBE = os.environ.get("TERN_PROBE") or str(REPO / "build" / "tern-probe")
DIALOGUES = sorted(p.stem for p in (REPO / "conform").glob("*.dlg"))


def conform(*args, timeout=DEADLINE * 12):
    """Runs tern-probe conform; returns (exit status, stdout, stderr)."""
    p = subprocess.run([PROBE, "conform"] + [str(a) for a in args], stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=timeout)
    out = p.stdout.decode("utf-8", "replace")
    err = p.stderr.decode("utf-8", "replace")
    assert not sanitizer_problems(out + err), "sanitizer report:\n" + err
    return p.returncode, out, err


def results(out):
    """{dialogue: (result, detail)} from the JSON document."""
    doc = json.loads(out)
    return {d["name"]: (d["result"], d["detail"]) for d in doc["dialogues"]}


def failed(res):
    return sorted(n for n, (r, _) in res.items() if r == "fail")


def skipped(res):
    return sorted(n for n, (r, _) in res.items() if r == "skip")


@pytest.fixture
def conform_ternd(ternd, cert):
    crt, key = cert
    return ternd(tls_cert=str(crt), tls_key=str(key), etrn_networks="127.0.0.1/32",
                 hold_domains="conform.example")



def assert_results(res, fails, skips):
    """Exactly these dialogues failed and skipped; every other passed."""
    assert sorted(res) == DIALOGUES
    assert failed(res) == sorted(fails), "\n".join(
        "%s: %s" % (n, res[n][1]) for n in failed(res))
    assert skipped(res) == sorted(skips), {n: res[n][1] for n in skipped(res)}


# -------------------------------------------------------------- ternd

# ternd advertises DSN, SMTPUTF8, CHUNKING and (with etrn_networks)
# ETRN: the dialogues for servers that do not skip.
TERND_SKIPS = ["chunking-not-offered", "dsn-not-offered", "etrn-not-offered",
               "smtputf8-not-offered"]
# The not-offered twins of what ternd advertises.
TERND_OFFERS = tuple(TERND_SKIPS)


def test_ternd_passes_every_dialogue(conform_ternd):
    rc, out, err = conform("127.0.0.1:%d" % conform_ternd.port)
    assert rc == 0, out + err
    assert "Summary: %d passed, 0 failed, %d skipped" % (
        len(DIALOGUES) - len(TERND_SKIPS), len(TERND_SKIPS)) in out
    for name in DIALOGUES:
        want = "skip: the server does not advertise" if name in TERND_SKIPS else "pass"
        if name in TERND_OFFERS:
            want = "skip: the server advertises"
        assert re.search(r"^%s +%s" % (re.escape(name), want), out, re.M), out


def test_ternd_over_tls(conform_ternd):
    rc, out, err = conform("127.0.0.1:%d" % conform_ternd.port, "--tls", "--json")
    assert rc == 0, out + err
    res = results(out)
    # over TLS STARTTLS is no longer offered: starttls-syntax skips; the
    # dialogues that run STARTTLS themselves start plain
    assert_results(res, [], TERND_SKIPS + ["starttls-syntax"])
    assert res["starttls-state-reset"][0] == "pass"
    assert res["chunking-bdat"][0] == "pass" and res["chunking-sequence"][0] == "pass"
    assert "discarding" in conform_ternd.log()   # the injection was seen and dropped


def test_ternd_without_etrn_and_tls(server):
    """The default ternd: no STARTTLS, no ETRN: their dialogues skip, the
    not-offered ones run."""
    rc, out, err = conform("127.0.0.1:%d" % server.port, "--json")
    assert rc == 0, out + err
    assert_results(results(out), [], [
        "chunking-not-offered", "dsn-not-offered", "etrn", "smtputf8-not-offered",
        "starttls-injection", "starttls-state-reset", "starttls-syntax"])


def test_only_verbose_and_the_failure_line(conform_ternd, tmp_path):
    """--only runs the named dialogues; a failure names the RFC section,
    what was sent, what was expected and what came; exit status 1."""
    (tmp_path / "wrong.dlg").write_text(
        "about: expects the wrong code on purpose\nrfc: RFC 5321 4.1.1.9\n\n"
        "> EHLO ${helo}\n> NOOP\n< 250\n< 251 ~ OK\n")
    (tmp_path / "right.dlg").write_text("> NOOP\n< 250 ~ ^250 2\\.0\\.0\n")
    rc, out, err = conform("127.0.0.1:%d" % conform_ternd.port, "--dir", tmp_path, "-v",
                           "--only", "wrong,right")
    assert rc == 1, out + err
    assert re.search(r"^right +pass$", out, re.M), out
    assert ('wrong                        fail: RFC 5321 4.1.1.9: sent "EHLO conform.example\\r\\n" '
            '"NOOP\\r\\n", expected 251 ~ OK, got 250 2.0.0 OK') in out, out
    assert "    C: NOOP\\r\\n" in out and "    S: 250 2.0.0 OK" in out
    assert "Summary: 1 passed, 1 failed, 0 skipped" in out
    rc, out, err = conform("127.0.0.1:%d" % conform_ternd.port, "--only", "no-such-dialogue")
    assert rc == 2 and "no dialogue no-such-dialogue" in err


def test_bad_dialogue_file_is_refused(conform_ternd, tmp_path):
    (tmp_path / "broken.dlg").write_text("> EHLO x\n< 2x0\n")
    rc, out, err = conform("127.0.0.1:%d" % conform_ternd.port, "--dir", tmp_path)
    assert rc == 2 and "broken.dlg: line 2: bad reply pattern" in err, err


def test_could_not_connect():
    rc, out, err = conform("127.0.0.1", "-p", "1")
    assert rc == 3 and "cannot connect" in err and "Connection refused" in err, err


# -------------------------------------------------------------- other servers
# Each list is what was observed; docs/CONFORM.md says which RFC and who
# is right.


def test_smtp_sink(tmp_path):
    s = SmtpSink(tmp_path)
    try:
        rc, out, err = conform("127.0.0.1:%d" % s.port, "--json")
    finally:
        s.stop()
    assert rc == 1, out + err
    res = results(out)
    assert_results(res, [
        # smtp-sink accepts any syntax and any parameter: it is a sink
        "8bitmime-bad-body", "dsn-bad-values", "dsn-notify-never-alone",
        "pipelining-bad-rcpt", "smtputf8-not-offered", "syntax-ehlo-no-domain",
        "syntax-mail-bad-address", "syntax-unknown-parameter",
        # and hangs up on a long line without a reply
        "line-length-too-long",
    ], ["chunking-bdat", "chunking-sequence", "dsn-not-offered", "etrn", "size-over-limit",
        "size-syntax", "smtputf8", "starttls-injection", "starttls-state-reset",
        "starttls-syntax"])
    assert res["line-length-too-long"][1].endswith("expected 500|501, got the connection closed")


def test_aiosmtpd(tmp_path, cert):
    crt, key = cert
    s = AioSmtpd(tmp_path, crt, key)
    try:
        rc, out, err = conform("127.0.0.1:%d" % s.port, "--json")
    finally:
        s.stop()
    assert rc == 1, out + err
    res = results(out)
    # aiosmtpd takes any text in angle brackets as an address
    assert_results(res, ["syntax-mail-bad-address"], [
        "chunking-bdat", "chunking-sequence", "dsn-bad-values", "dsn-notify-never-alone",
        "dsn-parameters", "etrn", "pipelining-bad-rcpt", "pipelining-group",
        "pipelining-group-end", "pipelining-rset", "size-over-limit", "size-syntax",
        "smtputf8-not-offered"])
    assert res["smtputf8"][0] == "pass" and res["starttls-injection"][0] == "pass"


@pytest.mark.skipif(os.geteuid() != 0, reason="a private Postfix master must start as root")
def test_postfix():
    pf = Postfix({"kate@example.test": "s3cret"})
    try:
        rc, out, err = conform("127.0.0.1:%d" % pf.port, "--json")
    finally:
        pf.stop()
    assert rc == 1, out + err
    res = results(out)
    assert_results(res, [
        # Postfix 3.7 ends lines at a bare LF (smtpd_forbid_bare_newline
        # is off by default before 3.9): three smuggling shapes end DATA
        "smuggling-crlf-dot-lf", "smuggling-lf-dot-crlf", "smuggling-lf-dot-lf",
        # a line over line_length_limit is cut and the head runs
        "line-length-too-long",
    ], ["chunking-not-offered", "dsn-not-offered", "etrn-not-offered",
        "smtputf8-not-offered"])
    assert "got 500 5.5.2 Error: command not recognized" in res["smuggling-lf-dot-lf"][1]
    assert res["chunking-bdat"][0] == "pass" and res["smtputf8"][0] == "pass"
