"""MTA-STS for outbound SMTP (RFC 8461): mta_sts = yes against policies
served over real HTTPS, with real parts on loopback only.

The world:
- certificates made by openssl: a test CA; a certificate it signed for
  every MX host name below and one for every mta-sts.<domain> policy
  host; and one it signed for another name (wrong.example);
- an unbound (dnsserver.py) serving sts.test: for each test domain D an
  MX record naming mx-D.sts.test, the _mta-sts.D TXT record (v=STSv1;
  id=...) and mta-sts.D's address;
- the policy server: Python's http.server with ssl, on port 443 of a
  loopback address of its own (the tests run as root), choosing the
  reply by the Host header: a policy, a redirect, another Content-Type,
  a body over 64 KiB;
- two receiving ternds on port P: 127.0.0.2 with the certificate of
  the MX names, 127.0.0.3 with the one for wrong.example;
- the sending ternd: mta_sts = yes, smtp_tls = may, smtp_port = P,
  smtp_tls_ca_file = the test CA (the WebPKI of this world, for the
  policy host and the MX hosts alike).

Each refused policy (oversized, redirected, wrong type) would, if it were
taken, defer the mail (its mx does not match): delivery shows it was not.
"""

import email
import gzip
import http.server
import json
import os
import random
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
from pathlib import Path

import pytest

from conftest import crlf, make_traversable, wait_for
from dnsserver import Unbound
from peers import free_port_on
from test_mx import send, wait_log

SENDER = "alice@example.com"
MX_GOOD = "127.0.0.2"    # its certificate names every mx-*.sts.test
MX_WRONG = "127.0.0.3"   # its certificate names wrong.example
MX_PLAIN = "127.0.0.4"   # no STARTTLS (started by the test that needs it)
ZONE = "sts.test"
RUA = "tlsrpt@enforce.sts.test"   # every domain's TLS-RPT address
RUA_HTTPS = "https://mta-sts.httpsrpt.sts.test/tlsrpt"   # but httpsrpt's
DOMAINS = ["enforce", "nomatch", "badcert", "testing", "nofetch", "big", "redirect", "ctype",
           "cached", "notls", "httpsrpt"]


def run(*argv, cwd=None):
    return subprocess.run(argv, cwd=cwd, check=True, capture_output=True).stdout


def policy(mode, *mx, max_age=86400):
    lines = ["version: STSv1", "mode: " + mode] + ["mx: " + m for m in mx]
    return ("\r\n".join(lines + ["max_age: %d" % max_age]) + "\r\n").encode()


@pytest.fixture(scope="module")
def pki():
    # outside pytest's base temp dir, which other pytest sessions make 0700
    base = Path(tempfile.gettempdir()) / ("tern-tests-%d" % os.getuid())
    base.mkdir(exist_ok=True)
    d = Path(tempfile.mkdtemp(prefix="sts-pki-", dir=base))
    yield make_pki(d)
    shutil.rmtree(d, ignore_errors=True)


def make_pki(d):
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    run("openssl", "req", "-x509", *ec, "-days", "2", "-subj", "/CN=Test STS CA",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign",
        "-keyout", str(d / "ca.key"), "-out", str(d / "ca.pem"))

    def leaf(name, sans):
        run("openssl", "req", *ec, "-subj", "/CN=%s" % sans[0], "-keyout", str(d / (name + ".key")),
            "-out", str(d / (name + ".req")))
        (d / (name + ".ext")).write_text("subjectAltName=%s\nbasicConstraints=CA:FALSE\n"
                                         % ",".join("DNS:" + s for s in sans))
        run("openssl", "x509", "-req", "-in", str(d / (name + ".req")), "-CA", str(d / "ca.pem"),
            "-CAkey", str(d / "ca.key"), "-CAcreateserial", "-days", "2",
            "-extfile", str(d / (name + ".ext")), "-out", str(d / (name + ".pem")))
        chain = d / (name + ".chain")
        chain.write_bytes((d / (name + ".pem")).read_bytes() + (d / "ca.pem").read_bytes())
        return chain, d / (name + ".key")

    mx = leaf("mx", ["mx-%s.%s" % (x, ZONE) for x in DOMAINS])
    web = leaf("web", ["mta-sts.%s.%s" % (x, ZONE) for x in DOMAINS])
    wrong = leaf("wrong", ["wrong.example"])
    make_traversable(d)
    for p in d.iterdir():
        os.chmod(p, 0o644)
    return dict(ca=d / "ca.pem", mx=mx, web=web, wrong=wrong)


class PolicyServer:
    """HTTPS on addr:443; routes[host] = (status, headers, body). Every
    request is noted in hits as (host, path); each POST in posts as (host,
    path, Content-Type, body)."""

    def __init__(self, addr, cert, key):
        self.routes, self.hits, self.posts = {}, [], []
        srv = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                host = (self.headers.get("Host") or "").split(":")[0]
                srv.hits.append((host, self.path))
                status, headers, body = srv.routes.get(
                    (host, self.path), (404, {"Content-Type": "text/plain"}, b"no\n"))
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                srv.posts.append(((self.headers.get("Host") or "").split(":")[0], self.path,
                                  self.headers.get("Content-Type"), self.rfile.read(n)))
                self.send_response(201)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer((addr, 443), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(cert), str(key))
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def serve(self, domain, body, status=200, ctype="text/plain; charset=utf-8",
              path="/.well-known/mta-sts.txt", headers=None):
        h = {"Content-Type": ctype}
        h.update(headers or {})
        self.routes[("mta-sts.%s.%s" % (domain, ZONE), path)] = (status, h, body)

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(10)


def loopback_with_443_free():
    """A loopback address (127.0.X.Y) whose port 443 is free: tests of other
    checkouts may run beside these."""
    for _ in range(100):
        addr = "127.0.%d.%d" % (random.randrange(100, 250), random.randrange(2, 250))
        with socket.socket() as s:
            try:
                s.bind((addr, 443))
                return addr
            except OSError:
                continue
    raise RuntimeError("no loopback address with port 443 free")


class World:
    def __init__(self, ternd, tmp, pki):
        self.ternd, self.tmp, self.pki = ternd, tmp, pki
        self.port = free_port_on(MX_GOOD, MX_WRONG, MX_PLAIN)
        self.web_addr = loopback_with_443_free()
        self.dead_addr = loopback_with_443_free()   # nothing listens there
        self.web = PolicyServer(self.web_addr, *pki["web"])
        self.dns = self.unbound({})
        domains = ["%s.%s" % (x, ZONE) for x in DOMAINS]
        self.common = common = dict(local_domains=",".join(domains),
                      mailboxes=["bob@" + d for d in domains] + [RUA])
        self.mx = ternd(tmp=tmp / "mx", listen="%s:%d" % (MX_GOOD, self.port),
                        hostname="mx-enforce.%s" % ZONE, tls_cert=str(pki["mx"][0]),
                        tls_key=str(pki["mx"][1]), **common)
        self.mx_wrong = ternd(tmp=tmp / "mxw", listen="%s:%d" % (MX_WRONG, self.port),
                              hostname="wrong.example", tls_cert=str(pki["wrong"][0]),
                              tls_key=str(pki["wrong"][1]), **common)

    def unbound(self, ids):
        """The zone, with _mta-sts ids (default "1") from ids."""
        recs = []
        for x in DOMAINS:
            d = "%s.%s" % (x, ZONE)
            host = (MX_WRONG if x in ("badcert", "testing") else
                    MX_PLAIN if x == "notls" else MX_GOOD)
            web = self.dead_addr if x == "nofetch" else self.web_addr
            recs += ["%s. MX 10 mx-%s.%s." % (d, x, ZONE), "mx-%s.%s. A %s" % (x, ZONE, host),
                     '_mta-sts.%s. TXT "v=STSv1; id=%s;"' % (d, ids.get(x, "1")),
                     "mta-sts.%s. A %s" % (d, web),
                     '_smtp._tls.%s. TXT "v=TLSRPTv1; rua=%s"'
                     % (d, RUA_HTTPS if x == "httpsrpt" else "mailto:" + RUA)]
        return Unbound(self.tmp, recs)

    def sender(self, **opts):
        conf = dict(relay_networks="127.0.0.0/8", dns_resolver=self.dns.resolver,
                    smtp_port=str(self.port), retry_min="1h", smtp_timeout="5s",
                    smtp_connect_timeout="2s", mta_sts="yes", smtp_tls_ca_file=str(self.pki["ca"]))
        conf.update(opts)
        s = self.ternd(tmp=self.tmp / "sender", **conf)
        s.make_maildir(SENDER)
        return s

    def stop(self):
        self.web.stop()
        self.dns.stop()


@pytest.fixture
def world(ternd, tmp_path, pki):
    w = World(ternd, tmp_path, pki)
    yield w
    w.stop()


def mail(s, x, marker):
    return send(s, ["bob@%s.%s" % (x, ZONE)], crlf("Subject: %s" % marker, "", marker))


def line_of(s, qid, status):
    wait_log(s, "%s: delivery:" % qid)
    wait_log(s, "status=" + status)
    lines = [l for l in s.log().splitlines() if "%s: delivery:" % qid in l]
    assert lines and "status=" + status in lines[0], lines
    return lines[0]


def delivered(w, s, x, marker, mx=None):
    qid = mail(s, x, marker)
    (mx or w.mx).wait_message_with("bob@%s.%s" % (x, ZONE), marker)
    return line_of(s, qid, "sent")


def deferred(w, s, x, marker, reason):
    qid = mail(s, x, marker)
    line = line_of(s, qid, "deferred")
    assert reason in line, line
    for r in (w.mx, w.mx_wrong):
        assert not r.messages("bob@%s.%s" % (x, ZONE)), "delivered anyway"
        assert "bob@%s.%s" % (x, ZONE) not in r.log(), "a transaction was begun"
    return line


def test_enforce_matching_mx_delivers_with_verified_tls(world):
    world.web.serve("enforce", policy("enforce", "mx-enforce.sts.test"))
    s = world.sender()
    line = delivered(world, s, "enforce", "sts-enforce")
    assert "tls=TLSv1." in line and "mta-sts=enforce" in line, line
    log = s.log()
    assert "mta-sts: enforce.sts.test: policy id=1 mode=enforce max_age=86400 mx=1 fetched" in log
    assert "mta-sts: enforce.sts.test id=1 mode=enforce: mx-enforce.sts.test matches" in log
    assert ("mta-sts.enforce.sts.test", "/.well-known/mta-sts.txt") in world.web.hits


def test_enforce_wildcard_pattern_matches_one_label(world):
    world.web.serve("enforce", policy("enforce", "*.sts.test"))
    s = world.sender()
    assert "mta-sts=enforce" in delivered(world, s, "enforce", "sts-wild")


def test_enforce_mx_not_matching_is_deferred(world):
    world.web.serve("nomatch", policy("enforce", "mx.elsewhere.test", "*.other.sts.test"))
    s = world.sender()
    line = deferred(world, s, "nomatch", "sts-nomatch",
                    "4.7.5 MX host mx-nomatch.sts.test does not match the MTA-STS policy "
                    "nomatch.sts.test id=1 mode=enforce")
    assert "mx-nomatch.sts.test does not match the policy's mx: not used" in s.log(), line


def test_enforce_certificate_for_another_name_is_deferred(world):
    world.web.serve("badcert", policy("enforce", "mx-badcert.sts.test"))
    s = world.sender()
    deferred(world, s, "badcert", "sts-badcert",
             "4.7.5 MTA-STS policy badcert.sts.test id=1 mode=enforce: certificate of "
             "mx-badcert.sts.test not valid")
    assert "trying again without STARTTLS" not in s.log()


def test_enforce_without_starttls_is_deferred(world):
    plain = world.ternd(tmp=world.tmp / "mxp", listen="%s:%d" % (MX_PLAIN, world.port),
                        hostname="mx-notls.sts.test", **world.common)
    world.web.serve("notls", policy("enforce", "mx-notls.sts.test"))
    s = world.sender()
    deferred(world, s, "notls", "sts-notls",
             "4.7.5 STARTTLS required by policy MTA-STS notls.sts.test id=1 mode=enforce but "
             "not offered")
    assert not plain.messages("bob@notls.sts.test")
    assert "from=<%s>" % SENDER not in plain.log(), "a transaction was begun"


def test_testing_mode_delivers_and_logs_what_would_fail(world):
    world.web.serve("testing", policy("testing", "mx.elsewhere.test"))
    s = world.sender()
    line = delivered(world, s, "testing", "sts-testing", mx=world.mx_wrong)
    assert "tls=TLSv1." in line and "mta-sts=testing" in line, line
    log = s.log()
    assert "mx-testing.sts.test does not match the policy's mx (testing: used)" in log
    assert ("mta-sts: testing.sts.test id=1 mode=testing: mx-testing.sts.test[%s]: would fail "
            "under enforce: certificate not valid: hostname mismatch" % MX_WRONG) in log


def test_fetch_failure_without_cache_is_no_policy(world):
    s = world.sender()
    line = delivered(world, s, "nofetch", "sts-nofetch")
    assert "mta-sts=" not in line, line
    log = s.log()
    assert "mta-sts: nofetch.sts.test: policy fetch failed: " in log
    assert "; no policy applies" in log


@pytest.mark.parametrize("case,why", [
    ("big", "policy fetch failed: the body is over 65536 octets"),
    ("redirect", "policy fetch failed: HTTP 302 (redirects are not followed)"),
    ("ctype", "policy fetch failed: Content-Type text/html; charset=utf-8, not text/plain"),
])
def test_refused_policy_is_no_policy(world, case, why):
    bad = policy("enforce", "mx.elsewhere.test")   # would defer the mail if taken
    if case == "big":
        world.web.serve(case, bad + b"x: " + b"y" * (64 * 1024) + b"\r\n")
    elif case == "redirect":
        world.web.serve(case, b"moved\n", status=302,
                        headers={"Location": "https://mta-sts.redirect.sts.test/p.txt"})
        world.web.serve(case, bad, path="/p.txt")
    else:
        world.web.serve(case, bad, ctype="text/html; charset=utf-8")
    s = world.sender()
    line = delivered(world, s, case, "sts-" + case)
    assert "mta-sts=" not in line, line
    assert "mta-sts: %s.sts.test: %s; no policy applies" % (case, why) in s.log()
    assert ("mta-sts.%s.sts.test" % case, "/p.txt") not in world.web.hits


def test_cached_policy_enforced_when_refetch_fails(world):
    world.web.serve("cached", policy("enforce", "mx.elsewhere.test"))
    s = world.sender()
    deferred(world, s, "cached", "sts-cached-1", "does not match the MTA-STS policy "
             "cached.sts.test id=1 mode=enforce")
    assert "mta-sts: cached.sts.test: policy id=1 mode=enforce" in s.log()
    s.stop_checked()
    # the policy server is gone, the TXT id has changed: a refetch that fails
    world.web.stop()
    world.dns.stop()
    world.dns = world.unbound({"cached": "2"})
    s2 = world.sender()
    deferred(world, s2, "cached", "sts-cached-2", "does not match the MTA-STS policy "
             "cached.sts.test id=1 mode=enforce")
    # the refetch runs beside the delivery that used the cached policy
    wait_log(s2, "; the cached policy id=1 mode=enforce stays in force")
    assert "mta-sts: cached.sts.test: policy fetch failed: " in s2.log(), s2.log()
    world.web = PolicyServer(world.web_addr, *world.pki["web"])   # for stop()


def test_mta_sts_no_asks_nothing(world):
    world.web.serve("nomatch", policy("enforce", "mx.elsewhere.test"))
    s = world.sender(mta_sts="no")
    line = delivered(world, s, "nomatch", "sts-off")
    assert "mta-sts" not in s.log(), line
    assert not world.web.hits


# ---- TLS-RPT (RFC 8460) ----

def reports(w):
    """The TLS-RPT reports in the RUA mailbox: {domain: [report JSON]}."""
    out = {}
    for f in w.mx.messages(RUA):
        m = email.message_from_bytes(f.read_bytes())
        assert m.get_content_type() == "multipart/report", m
        assert m.get_param("report-type") == "tlsrpt", m
        parts = [p for p in m.walk() if p.get_content_type() == "application/tlsrpt+gzip"]
        assert len(parts) == 1, m
        r = json.loads(gzip.decompress(parts[0].get_payload(decode=True)))
        rfc8460_valid(r)
        out.setdefault(m["TLS-Report-Domain"], []).append(r)
    return out


def rfc8460_valid(report):
    """The report against RFC 8460 4.4's structure (tests/blackbox/schema/
    tlsrpt.json, a JSON Schema written from the RFC), by python3-jsonschema."""
    import jsonschema
    schema = json.loads((Path(__file__).parent / "schema" / "tlsrpt.json").read_text())
    jsonschema.validate(report, schema, cls=jsonschema.Draft202012Validator)


def test_tls_rpt_reports_successes_and_failures(world):
    world.web.serve("enforce", policy("enforce", "mx-enforce.sts.test"))
    world.web.serve("badcert", policy("enforce", "mx-badcert.sts.test"))
    world.web.serve("nomatch", policy("enforce", "mx.elsewhere.test"))
    s = world.sender(tls_rpt="yes", tls_rpt_interval="2s", tls_rpt_org="Test Org")
    delivered(world, s, "enforce", "rpt-ok")
    deferred(world, s, "badcert", "rpt-bad", "certificate of mx-badcert.sts.test not valid")
    deferred(world, s, "nomatch", "rpt-nomatch", "does not match the MTA-STS policy")
    want = ["badcert.sts.test", "enforce.sts.test", "nomatch.sts.test"]
    got = wait_for("reports for three domains",
                   lambda: (lambda r: r if all(d in r for d in want) else None)(reports(world)),
                   timeout=20)
    (n,) = got["nomatch.sts.test"][0]["policies"]
    assert [(d["result-type"], d["receiving-mx-hostname"], d["receiving-ip"])
            for d in n["failure-details"]] == [("validation-failure", "mx-nomatch.sts.test",
                                                MX_GOOD)], n
    ok = got["enforce.sts.test"][0]
    assert ok["organization-name"] == "Test Org"
    assert ok["date-range"]["start-datetime"].endswith("Z")
    (p,) = ok["policies"]
    assert p["policy"]["policy-type"] == "sts"
    assert p["policy"]["policy-domain"] == "enforce.sts.test"
    assert "mode: enforce" in p["policy"]["policy-string"]
    assert p["policy"]["mx-host"] == ["mx-enforce.sts.test"]
    assert p["summary"]["total-successful-session-count"] >= 1
    assert p["summary"]["total-failure-session-count"] == 0
    (b,) = got["badcert.sts.test"][0]["policies"]
    assert b["summary"] == {"total-successful-session-count": 0,
                            "total-failure-session-count": 1}, b
    (f,) = b["failure-details"]
    assert f["result-type"] == "certificate-host-mismatch", f
    assert f["receiving-mx-hostname"] == "mx-badcert.sts.test"
    assert f["receiving-ip"] == MX_WRONG
    assert f["failed-session-count"] == 1
    assert "tls-rpt: report queued to <%s>" % RUA in s.log()


def test_tls_rpt_counts_survive_a_restart(world):
    """Counts of a period not yet over are saved (spool_dir/tlsrpt.json)
    at shutdown; the next start, whose period (2 s) has long ended, sends
    them at once. Each failure row names our own address."""
    world.web.serve("enforce", policy("enforce", "mx-enforce.sts.test"))
    world.web.serve("badcert", policy("enforce", "mx-badcert.sts.test"))
    s = world.sender(tls_rpt="yes", tls_rpt_interval="1h")
    delivered(world, s, "enforce", "rpt-before")
    deferred(world, s, "badcert", "rpt-before-bad", "certificate of mx-badcert.sts.test")
    s.stop_checked()
    assert not reports(world), "a report before the hour was over"
    s2 = world.sender(tls_rpt="yes", tls_rpt_interval="2s")
    want = ["badcert.sts.test", "enforce.sts.test"]
    got = wait_for("reports of the counts before the restart",
                   lambda: (lambda r: r if all(d in r for d in want) else None)(reports(world)),
                   timeout=20)
    assert "tls-rpt: counts since" in s2.log()
    # (the reports themselves go out over TLS: counted in the next period)
    assert "delivery: to=<bob@" not in s2.log(), "tried again: the counts would not be exact"
    (p,) = got["enforce.sts.test"][0]["policies"]
    assert p["summary"] == {"total-successful-session-count": 1,
                            "total-failure-session-count": 0}, p
    (b,) = got["badcert.sts.test"][0]["policies"]
    assert b["summary"] == {"total-successful-session-count": 0,
                            "total-failure-session-count": 1}, b
    (f,) = b["failure-details"]
    assert f["result-type"] == "certificate-host-mismatch" and f["receiving-ip"] == MX_WRONG, f
    assert f["sending-mta-ip"] == "127.0.0.1", f   # loopback's source address
    start = got["badcert.sts.test"][0]["date-range"]["start-datetime"]
    assert start.endswith(":00:00Z"), start   # the hour's period, aligned


def test_tls_rpt_reports_a_policy_fetch_error(world):
    s = world.sender(tls_rpt="yes", tls_rpt_interval="2s")
    delivered(world, s, "nofetch", "rpt-nofetch")
    got = wait_for("a report for nofetch", lambda: reports(world).get("nofetch.sts.test"),
                   timeout=20)
    kinds = {(p["policy"]["policy-type"], d["result-type"])
             for p in got[0]["policies"] for d in p["failure-details"]}
    assert ("sts", "sts-policy-fetch-error") in kinds, got


def test_tls_rpt_posts_to_an_https_rua(world):
    s = world.sender(tls_rpt="yes", tls_rpt_interval="2s")
    delivered(world, s, "httpsrpt", "rpt-https")
    post = wait_for("a POST of the report", lambda: next(
        (p for p in list(world.web.posts) if p[1] == "/tlsrpt"), None), timeout=20)
    host, path, ctype, body = post
    assert host == "mta-sts.httpsrpt.sts.test" and ctype == "application/tlsrpt+gzip"
    r = json.loads(gzip.decompress(body))
    rfc8460_valid(r)
    kinds = {(p["policy"]["policy-type"], p["summary"]["total-successful-session-count"] > 0)
             for p in r["policies"]}
    assert ("no-policy-found", True) in kinds, r
    assert all(p["policy"]["policy-domain"] == "httpsrpt.sts.test" for p in r["policies"])
    wait_log(s, "tls-rpt: httpsrpt.sts.test: report posted to %s (HTTP 201)" % RUA_HTTPS)


# ---- tern-probe doctor's MTA-STS and TLS-RPT steps, against the same world ----

def doctor(w, x):
    from test_probe import probe
    return probe("doctor", "%s.%s" % (x, ZONE), "--resolver", w.dns.resolver,
                 "--cafile", str(w.pki["ca"]), "-p", w.port, "--timeout", "5")


def test_check_reports_mta_sts_and_tls_rpt(world):
    """tern-probe check of a domain ends with doctor's MTA-STS and TLS-RPT
    steps (and DANE's, skipped: no trust anchor here)."""
    from test_doctor import step
    from test_probe import probe
    world.web.serve("enforce", policy("enforce", "mx-enforce.sts.test"))
    world.web.serve("nomatch", policy("enforce", "elsewhere.example"))
    rc, out = probe("check", "enforce.%s" % ZONE, "--resolver", world.dns.resolver,
                    "--cafile", str(world.pki["ca"]), "-p", world.port, "--timeout", "5")
    assert step(out, "mta-sts policy") == ("pass", "mode enforce, max_age 86400 s, 1 mx pattern")
    assert step(out, "mta-sts mx") == ("pass", "every MX host matches the policy"), out
    assert step(out, "tls-rpt") == ("pass", "reports go to 1 address"), out
    assert step(out, "dane")[0] == "skip", out
    rc, out = probe("check", "nomatch.%s" % ZONE, "--resolver", world.dns.resolver,
                    "--cafile", str(world.pki["ca"]), "-p", world.port, "--timeout", "5")
    st, verdict = step(out, "mta-sts mx")
    assert st == "FAIL" and "1 MX host outside the policy" in verdict, out


def test_doctor_enforced_policy_passes(world):
    from test_doctor import step
    world.web.serve("enforce", policy("enforce", "mx-enforce.sts.test"))
    rc, out = doctor(world, "enforce")
    assert step(out, "mta-sts") == ("pass", "STSv1, id=1"), out
    assert step(out, "mta-sts policy") == ("pass", "mode enforce, max_age 86400 s, 1 mx pattern")
    assert step(out, "mta-sts mx") == ("pass", "every MX host matches the policy")
    assert step(out, "tls-rpt") == ("pass", "reports go to 1 address")


def test_doctor_mx_outside_the_policy_fails(world):
    from test_doctor import advice, step
    world.web.serve("nomatch", policy("enforce", "elsewhere.example"))
    rc, out = doctor(world, "nomatch")
    st, verdict = step(out, "mta-sts mx")
    assert st == "FAIL" and "1 MX host outside the policy" in verdict, out
    assert "change its id" in advice(out, "mta-sts mx")
    assert rc == 2


def test_doctor_testing_mode_and_fetch_failures(world):
    from test_doctor import step
    world.web.serve("testing", policy("testing", "mx-testing.sts.test"))
    rc, out = doctor(world, "testing")
    assert step(out, "mta-sts policy")[0] == "warn", out
    rc, out = doctor(world, "nofetch")
    st, verdict = step(out, "mta-sts policy")
    assert st == "FAIL" and verdict.startswith("the policy could not be fetched"), out
    world.web.serve("redirect", b"", status=301, headers={"Location": "https://example.com/"})
    rc, out = doctor(world, "redirect")
    st, verdict = step(out, "mta-sts policy")
    assert st == "FAIL" and "301" in verdict, out
    world.web.serve("ctype", policy("enforce", "mx-ctype.sts.test"), ctype="text/html")
    rc, out = doctor(world, "ctype")
    st, verdict = step(out, "mta-sts policy")
    assert st == "FAIL" and "Content-Type" in verdict, out
