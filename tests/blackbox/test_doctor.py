"""tern-probe doctor against a real unbound serving test zones and real
ternd servers on loopback: a clean domain where every step passes, and a
broken one where each deliberate mistake is found with its advice.

The MX addresses are 127.0.0.x: with --resolver given, doctor takes
loopback addresses as a lab's and connects to them; a 10.x address (the
"private address" rule) is a warning and is never connected to.
"""

import base64
import json
import re
import subprocess

import pytest

from conftest import DEADLINE, free_port, give_to_run_user
from test_probe import probe



def step(out, name):
    """(status, verdict) of the step called name in the text report."""
    m = re.search(r"^\[(pass|warn|FAIL|skip|info)\] %s +[\d.]+ ms  (.*)$" % re.escape(name),
                  out, re.M)
    assert m, "no step %r in the report:\n%s" % (name, out)
    return m.group(1), m.group(2)


def advice(out, name):
    """The "fix:" lines printed under step name."""
    lines = out.splitlines()
    for i, line in enumerate(lines):
        if re.match(r"^\[\w+ *\] %s +[\d.]+ ms" % re.escape(name), line):
            fixes = []
            for nxt in lines[i + 1:]:
                if nxt.startswith("["):
                    break
                if nxt.strip().startswith("fix: "):
                    fixes.append(nxt.strip()[5:])
            return " ".join(fixes)
    raise AssertionError("no step %r:\n%s" % (name, out))


def dkim_record(tmp, name, bits, extra=""):
    """v=DKIM1 record of a fresh RSA key, as unbound TXT strings of 200."""
    key = tmp / (name + ".pem")
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
                    "rsa_keygen_bits:%d" % bits, "-out", str(key)], check=True,
                   capture_output=True, timeout=DEADLINE * 3)
    der = subprocess.run(["openssl", "pkey", "-in", str(key), "-pubout", "-outform", "DER"],
                         check=True, capture_output=True, timeout=DEADLINE).stdout
    rec = "v=DKIM1; k=rsa; %sp=%s" % (extra, base64.b64encode(der).decode())
    return " ".join('"%s"' % rec[i:i + 200] for i in range(0, len(rec), 200))


def make_cert(d, cn):
    key, crt = d / "key.pem", d / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "90", "-subj", "/CN=" + cn,
                    "-addext", "subjectAltName=DNS:" + cn,
                    "-keyout", str(key), "-out", str(crt)],
                   check=True, capture_output=True, timeout=DEADLINE)
    for f in (key, crt):
        give_to_run_user(f)
    return crt, key


def doctor(*args):
    return probe("doctor", *args, "--timeout", "5")


REV = "in-addr.arpa."


@pytest.fixture
def clean(unbound, ternd, tmp_path):
    crt, key = make_cert(tmp_path, "mx.clean.test")
    s = ternd(hostname="mx.clean.test", local_domains="clean.test",
              tls_cert=str(crt), tls_key=str(key))
    s.make_maildir("postmaster@clean.test", "abuse@clean.test")
    dns = unbound([
        "clean.test. MX 10 mx.clean.test.",
        "mx.clean.test. A 127.0.0.1",
        "1.0.0.127.%s PTR mx.clean.test." % REV,
        'clean.test. TXT "v=spf1 mx -all"',
        "default._domainkey.clean.test. TXT " + dkim_record(tmp_path, "clean", 2048),
        '_dmarc.clean.test. TXT "v=DMARC1; p=reject; rua=mailto:dmarc@clean.test"',
    ], zones=[("127.in-addr.arpa.", "static")])
    return s, dns, crt


def test_clean_domain_passes(clean):
    s, dns, crt = clean
    rc, out = doctor("clean.test", "--resolver", dns.resolver, "-p", s.port,
                     "--cafile", crt, "--dnsbl", "bl.test")
    assert rc == 0, out
    for name in ("mx", "host mx.clean.test", "rdns 127.0.0.1", "dnsbl 127.0.0.1 bl.test",
                 "connect mx.clean.test", "greeting mx.clean.test", "ehlo mx.clean.test",
                 "starttls mx.clean.test", "ehlo-tls mx.clean.test", "relay mx.clean.test",
                 "postmaster mx.clean.test", "abuse mx.clean.test", "spf", "spf all",
                 "spf lookups", "spf 127.0.0.1", "dkim default", "dmarc", "dmarc policy",
                 "dmarc rua"):
        assert step(out, name)[0] == "pass", (name, out)
    assert step(out, "mta-sts") == ("skip", "no MTA-STS record (optional)")
    assert step(out, "tls-rpt") == ("skip", "no TLS-RPT record (optional)")
    # a private resolver and no --trust-anchor: nothing to validate with
    assert step(out, "dane")[0] == "skip" and "--trust-anchor" in step(out, "dane")[1]
    assert "TLSv1.3" in step(out, "starttls mx.clean.test")[1]
    assert "days to expiry" in step(out, "starttls mx.clean.test")[1]
    assert step(out, "spf lookups")[1] == "1 DNS lookups of 10, 0 void of 2"
    assert "rsa-sha256 2048 bits" in step(out, "dkim default")[1]
    assert "alignment: DKIM relaxed, SPF relaxed: sign with d=clean.test" in out
    assert "fix:" not in out
    assert "Summary:" in out and "all checks passed" in out
    # never DATA
    assert "DATA" not in s.log()


def test_clean_domain_json(clean):
    s, dns, crt = clean
    rc, out = doctor("clean.test", "--resolver", dns.resolver, "-p", s.port,
                     "--cafile", crt, "--json")
    assert rc == 0
    doc = json.loads(out)
    assert doc["target"] == "clean.test"
    assert doc["summary"]["exit"] == 0 and doc["summary"]["failed"] == 0
    steps = {st["name"]: st for st in doc["steps"]}
    assert steps["spf"]["status"] == "pass"
    assert steps["dane"]["status"] == "skip"
    for st in doc["steps"]:
        assert set(st) >= {"name", "status", "verdict", "details", "advice", "transcript"}


@pytest.fixture
def broken(unbound, ternd, tmp_path):
    port = free_port()
    relay = ternd(tmp=tmp_path / "relay", listen="127.0.0.2:%d" % port,
                  relay_networks="127.0.0.0/8")
    strict = ternd(tmp=tmp_path / "strict", listen="127.0.0.3:%d" % port)
    spf_chain = ['s%d.broken.test. TXT "v=spf1 include:s%d.broken.test -all"' % (i, i + 1)
                 for i in range(1, 11)] + ['s11.broken.test. TXT "v=spf1 -all"']
    dns = unbound([
        "broken.test. MX 10 mx1.broken.test.",
        "broken.test. MX 20 alias.broken.test.",
        "broken.test. MX 30 lan.broken.test.",
        "broken.test. MX 40 mx3.broken.test.",
        "mx1.broken.test. A 127.0.0.2",
        "alias.broken.test. CNAME mx1.broken.test.",
        "lan.broken.test. A 10.0.0.1",
        "mx3.broken.test. A 127.0.0.3",
        "3.0.0.127.%s PTR wrong.broken.test." % REV,
        "wrong.broken.test. A 127.0.0.9",
        'broken.test. TXT "v=spf1 include:s1.broken.test +all"',
        "weak._domainkey.broken.test. TXT " + dkim_record(tmp_path, "weak", 512),
        "testing._domainkey.broken.test. TXT " + dkim_record(tmp_path, "testing", 2048, "t=y; "),
        '_dmarc.broken.test. TXT "p=reject; v=DMARC1"',
        "2.0.0.127.bl.test. A 127.0.0.2",
        '2.0.0.127.bl.test. TXT "listed for the test"',
        "lax.test. MX 10 mx1.broken.test.",
        '_dmarc.lax.test. TXT "v=DMARC1; p=none"',
    ] + spf_chain, zones=[("127.in-addr.arpa.", "static")])
    return port, dns, relay, strict


def test_broken_domain_findings(broken):
    port, dns, relay, strict = broken
    rc, out = doctor("broken.test", "--resolver", dns.resolver, "-p", port,
                     "--selector", "weak", "--selector", "testing", "--dnsbl", "bl.test")
    assert rc == 2, out
    assert step(out, "host alias.broken.test") == (
        "FAIL", "alias.broken.test is a CNAME for mx1.broken.test")
    assert "broken.test. 3600 IN MX 20 mx1.broken.test." in advice(out, "host alias.broken.test")
    st, verdict = step(out, "host lan.broken.test")
    assert st == "warn" and "not all reachable" in verdict
    assert "10.0.0.1 is a private address" in advice(out, "host lan.broken.test")
    assert step(out, "connect lan.broken.test")[0] == "skip"
    assert step(out, "connect alias.broken.test") == (
        "skip", "its addresses were tested under an earlier MX")
    # reverse DNS: none, and one that does not match
    st, verdict = step(out, "rdns 127.0.0.2")
    assert st == "FAIL" and "no PTR record" in verdict
    assert "2.0.0.127.in-addr.arpa. 3600 IN PTR mx1.broken.test." in advice(out, "rdns 127.0.0.2")
    st, verdict = step(out, "rdns 127.0.0.3")
    assert st == "FAIL" and "PTR wrong.broken.test does not match" in verdict
    # DNSBL
    st, verdict = step(out, "dnsbl 127.0.0.2 bl.test")
    assert st == "FAIL" and "listed" in verdict and "reason: listed for the test" in out
    assert step(out, "dnsbl 127.0.0.3 bl.test")[0] == "pass"
    # the open relay, and postmaster@ refused
    st, verdict = step(out, "relay mx1.broken.test")
    assert st == "FAIL" and "OPEN RELAY" in verdict
    assert "relay_networks" in advice(out, "relay mx1.broken.test")
    assert step(out, "relay mx3.broken.test")[0] == "pass"
    st, verdict = step(out, "postmaster mx3.broken.test")
    assert st == "FAIL" and verdict.startswith("refused: 550")
    assert "RFC 5321 4.5.1" in advice(out, "postmaster mx3.broken.test")
    assert step(out, "starttls mx3.broken.test")[0] == "FAIL"
    assert step(out, "greeting mx3.broken.test")[0] == "warn"
    # SPF: +all, eleven lookups
    st, verdict = step(out, "spf all")
    assert st == "FAIL" and "+all" in verdict
    assert "replace +all with -all" in advice(out, "spf all")
    st, verdict = step(out, "spf lookups")
    assert st == "FAIL" and "too many DNS lookups" in verdict
    assert "at most 10 terms" in advice(out, "spf lookups")
    # DKIM: 512 bits, t=y
    st, verdict = step(out, "dkim weak")
    assert st == "FAIL" and "RSA key of 512 bits" in verdict
    st, verdict = step(out, "dkim testing")
    assert st == "warn" and "t=y" in verdict and "remove t=y" in advice(out, "dkim testing")
    # DMARC without v= first
    st, verdict = step(out, "dmarc")
    assert st == "FAIL" and "v=DMARC1 is not first" in verdict
    assert "must begin with v=DMARC1" in advice(out, "dmarc")
    # never DATA on either server
    assert "DATA" not in relay.log() and "DATA" not in strict.log()


def test_broken_json_and_dmarc_none(broken):
    port, dns, relay, strict = broken
    rc, out = doctor("lax.test", "--resolver", dns.resolver, "-p", port, "--json")
    assert rc == 2
    doc = json.loads(out)
    steps = {st["name"]: st for st in doc["steps"]}
    assert steps["spf"]["status"] == "fail"
    assert 'lax.test. 3600 IN TXT "v=spf1 mx -all"' in steps["spf"]["advice"][0]
    assert steps["dmarc"]["status"] == "pass"
    assert steps["dmarc policy"]["status"] == "warn"
    assert "p=none" in steps["dmarc policy"]["verdict"]
    assert steps["dmarc rua"]["status"] == "warn"
    assert "rua=mailto:dmarc-reports@lax.test" in steps["dmarc rua"]["advice"][0]
    assert steps["dkim"]["status"] == "warn"
    assert doc["summary"]["exit"] == 2 and doc["summary"]["outcome"] == "problems found"


def test_bad_usage_exit_3():
    rc, out = probe("doctor")
    assert rc == 3


def test_no_mx_still_checks_records(unbound):
    dns = unbound(['nomx.test. TXT "v=spf1 ?all"'])
    rc, out = doctor("nomx.test", "--resolver", dns.resolver)
    assert rc == 2
    assert step(out, "mx")[0] == "FAIL"
    assert "nomx.test. 3600 IN MX 10 mail.nomx.test." in advice(out, "mx")
    assert step(out, "spf all")[0] == "warn"
    assert step(out, "dmarc")[0] == "FAIL"


def test_a_list_that_never_answers_is_a_warning_in_time(unbound, silent_dns):
    import time
    dns = unbound(["quiet.test. MX 10 mx.quiet.test.", "mx.quiet.test. A 127.0.0.1",
                   'quiet.test. TXT "v=spf1 mx -all"'],
                  forward=[("hang.test.", silent_dns)])
    t0 = time.monotonic()
    rc, out = probe("doctor", "quiet.test", "--resolver", dns.resolver, "-p", free_port(),
                    "--dnsbl", "hang.test", "--timeout", "2")
    assert time.monotonic() - t0 < 20
    st, verdict = step(out, "dnsbl 127.0.0.1 hang.test")
    assert st == "warn" and "the list did not answer: no answer within 2 s" in verdict
    assert step(out, "connect mx.quiet.test")[0] == "FAIL"
    assert rc == 2


def test_mx_lookup_refused_could_not_run(unbound):
    dns = unbound([], zones=[("refused.test.", "always_refuse")])
    rc, out = doctor("refused.test", "--resolver", dns.resolver)
    assert rc == 3, out
    st, verdict = step(out, "mx")
    assert st == "FAIL" and verdict.startswith("the MX lookup failed: DNS error")
    assert "dig +trace refused.test MX" in advice(out, "mx")
    assert "could not run" in out


def test_an_mx_lookup_that_never_answers_ends_at_the_timeout(unbound, silent_dns):
    """The MX lookup itself (mx.c) is bounded by --timeout: a resolver that
    never answers gives "could not run", not a probe that hangs for the
    minutes libunbound would keep retrying."""
    dns = unbound([], forward=[("hang.test.", silent_dns)])
    rc, out = probe("doctor", "hang.test", "--resolver", dns.resolver, "--timeout", "2")
    st, verdict = step(out, "mx")
    assert st == "FAIL" and "no answer for hang.test within 2 s" in verdict, out
    assert rc == 3
    rc, out = probe("check", "hang.test", "--resolver", dns.resolver, "--timeout", "2")
    assert rc != 0 and "no answer for hang.test within 2 s" in out, out


def test_optional_records_named_in_the_details(clean):
    s, dns, crt = clean
    rc, out = doctor("clean.test", "--resolver", dns.resolver, "-p", s.port, "--cafile", crt,
                     "-v")
    assert '_mta-sts.clean.test. IN TXT \\"v=STSv1; id=20260101\\"' in out, out
    assert '_smtp._tls.clean.test. IN TXT \\"v=TLSRPTv1; rua=mailto:' in out


def test_dmarc_reports_to_another_domain_need_its_consent(unbound):
    """RFC 7489 7.1: rua= outside the organizational domain works only
    when that domain publishes POLICY._report._dmarc.RUADOMAIN."""
    recs = ["rua.test. MX 10 mx.rua.test.", "mx.rua.test. A 127.0.0.1",
            'rua.test. TXT "v=spf1 mx -all"',
            '_dmarc.rua.test. TXT "v=DMARC1; p=reject; rua=mailto:d@rua.test, '
            'mailto:dmarc@reports.example!10m"']
    dns = unbound(recs)
    rc, out = probe("doctor", "rua.test", "--resolver", dns.resolver, "-p", free_port(),
                    "--timeout", "2")
    st, verdict = step(out, "dmarc rua")
    assert st == "warn" and "has not agreed" in verdict, out
    assert 'rua.test._report._dmarc.reports.example. IN TXT \\"v=DMARC1\\"' in advice(out, "dmarc rua")
    dns.stop()
    dns = unbound(recs + ['rua.test._report._dmarc.reports.example. TXT "v=DMARC1"'])
    rc, out = probe("doctor", "rua.test", "--resolver", dns.resolver, "-p", free_port(),
                    "--timeout", "2")
    assert step(out, "dmarc rua") == ("pass", "aggregate reports requested (rua=)"), out


def test_sending_hosts_must_pass_spf(clean):
    s, dns, crt = clean
    rc, out = doctor("clean.test", "--resolver", dns.resolver, "-p", s.port, "--cafile", crt,
                     "--sending-ip", "127.0.0.1", "--sending-ip", "192.0.2.9")
    assert step(out, "spf sender 127.0.0.1") == ("pass", "pass (mx)"), out
    st, verdict = step(out, "spf sender 192.0.2.9")
    assert st == "FAIL" and verdict.startswith("fail: receivers that check SPF refuse"), out
    assert "add ip4:192.0.2.9 to the SPF record of clean.test" in advice(out, "spf sender 192.0.2.9")
    assert rc == 2
    rc, _ = doctor("clean.test", "--sending-ip", "not-an-ip")
    assert rc not in (0, 1, 2)


def expired_cert(d, cn):
    """A certificate whose validity ended yesterday (openssl req cannot
    date one in the past: python3-cryptography can)."""
    import datetime
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=30))
            .not_valid_after(now - datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(cn)]), critical=False)
            .sign(key, hashes.SHA256()))
    crt, k = d / "expired.pem", d / "expired.key"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    k.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()))
    for f in (crt, k):
        give_to_run_user(f)
    return crt, k


def test_an_expired_certificate_fails(unbound, ternd, tmp_path):
    crt, key = expired_cert(tmp_path, "mx.expired.test")
    s = ternd(hostname="mx.expired.test", tls_cert=str(crt), tls_key=str(key))
    dns = unbound(["expired.test. MX 10 mx.expired.test.", "mx.expired.test. A 127.0.0.1"])
    rc, out = doctor("expired.test", "--resolver", dns.resolver, "-p", s.port, "--cafile", crt)
    st, verdict = step(out, "starttls mx.expired.test")
    assert st == "FAIL" and "has problems" in verdict, out
    assert "the certificate has expired: renew it" in advice(out, "starttls mx.expired.test")
