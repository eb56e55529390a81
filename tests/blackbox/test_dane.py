"""DANE for outbound SMTP (RFC 7672): smtp_tls = dane and dane-only against
a DNSSEC-signed test zone, with real parts on loopback only.

The world:
- certificates made by openssl: a CA, and a server certificate it signed
  (names of every MX host below, as subjectAltName);
- the zone dane.test., signed by ldns-signzone (ldnsutils) with one
  ECDSA P-256 key from ldns-keygen (-k: a key-signing key, which signs the
  whole zone), served authoritatively by a real unbound (`auth-zone:` with
  `zonefile:` and `for-downstream: yes`, dnsserver.py), which also serves
  the unsigned plain.test. as local data;
- the sending ternd forwards its lookups to that unbound (dns_resolver)
  and validates with the zone's DNSKEY as its trust anchor
  (dns_trust_anchor = the key file; libunbound's ub_ctx_add_ta_file): the
  names of dane.test. are secure, or bogus where a record was changed
  after signing; those of plain.test. (no anchor above them) insecure;
- the receiving ternd on 127.0.0.2 (every MX host's address), port P,
  which offers STARTTLS with the server certificate and its CA; TLSA
  records sit at _P._tcp.<mx host> (the sender's smtp_port is P).

What is checked: delivery over DANE-EE (3 1 1, the server key's SHA-256)
and DANE-TA (2 0 1, the CA certificate's SHA-256), with the record named
in the delivery's log line; deferral, with nothing received, when the
record does not match, when the TLSA answer is bogus, when the MX answer
is bogus; a host without TLSA records (secure denial) and an insecure
zone fall back to opportunistic TLS under dane and are deferred under
dane-only; records all unusable (PKIX-EE, RFC 7672 3.1.3) still require
TLS.
"""

import hashlib
import os
import re
import subprocess

import pytest

from conftest import crlf, give_to_run_user
from dnsserver import Unbound
from peers import free_port_on
from test_mx import send, wait_log

SENDER = "alice@example.com"
MX = "127.0.0.2"
ZONE = "dane.test"
HOSTS = ["mx-ok", "mx-ta", "mx-bad", "mx-bogus", "mx-notlsa", "mx-pkix", "mx-bogusmx"]


def run(*argv, cwd=None):
    return subprocess.run(argv, cwd=cwd, check=True, capture_output=True).stdout


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA, a server certificate it signed for every MX name, the chain
    the server presents, and the digests TLSA records name."""
    d = tmp_path_factory.mktemp("dane-pki")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    run("openssl", "req", "-x509", *ec, "-days", "2", "-subj", "/CN=Test DANE CA",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign",
        "-keyout", str(d / "ca.key"), "-out", str(d / "ca.pem"))
    sans = ",".join("DNS:%s.%s" % (h, ZONE) for h in HOSTS) + ",DNS:mx.plain.test"
    run("openssl", "req", *ec, "-subj", "/CN=mx-ok.%s" % ZONE, "-keyout", str(d / "key.pem"),
        "-out", str(d / "req.pem"))
    (d / "ext").write_text("subjectAltName=%s\nbasicConstraints=CA:FALSE\n" % sans)
    run("openssl", "x509", "-req", "-in", str(d / "req.pem"), "-CA", str(d / "ca.pem"),
        "-CAkey", str(d / "ca.key"), "-CAcreateserial", "-days", "2", "-extfile", str(d / "ext"),
        "-out", str(d / "leaf.pem"))
    (d / "chain.pem").write_bytes((d / "leaf.pem").read_bytes() + (d / "ca.pem").read_bytes())
    spki = run("openssl", "x509", "-in", str(d / "leaf.pem"), "-noout", "-pubkey")
    spki_der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=spki,
                              check=True, capture_output=True).stdout
    ca_der = run("openssl", "x509", "-in", str(d / "ca.pem"), "-outform", "DER")
    for p in d.iterdir():
        os.chmod(p, 0o644)
    return dict(dir=d, chain=d / "chain.pem", key=d / "key.pem",
                ee=hashlib.sha256(spki_der).hexdigest(), ta=hashlib.sha256(ca_der).hexdigest())


def signed_zone(tmp, port, pki):
    """dane.test. signed; returns (signed zone file, trust anchor file).
    mx-bogus's TLSA record and bogusmx's MX record are changed after
    signing (their signatures no longer hold)."""
    d = tmp / "zone"
    d.mkdir()
    tl = "_%d._tcp" % port
    wrong = "00" * 32
    recs = ["@ SOA ns admin 1 3600 600 86400 300", "@ NS ns", "ns A 127.0.0.1"]
    for dom in ["ok", "ta", "bad", "bogus", "notlsa", "pkix", "bogusmx"]:
        recs += ["%s MX 10 mx-%s" % (dom, dom), "mx-%s A %s" % (dom, MX)]
    recs += ["%s.mx-ok TLSA 3 1 1 %s" % (tl, pki["ee"]),
             "%s.mx-ta TLSA 2 0 1 %s" % (tl, pki["ta"]),
             "%s.mx-bad TLSA 3 1 1 %s" % (tl, wrong),
             "%s.mx-bogus TLSA 3 1 1 %s" % (tl, wrong),
             "%s.mx-bogusmx TLSA 3 1 1 %s" % (tl, pki["ee"]),
             "%s.mx-pkix TLSA 1 1 1 %s" % (tl, pki["ee"])]
    zone = d / "dane.test.zone"
    zone.write_text("$ORIGIN %s.\n$TTL 300\n%s\n" % (ZONE, "\n".join(recs)))
    key = run("ldns-keygen", "-a", "ECDSAP256SHA256", "-k", ZONE, cwd=d).decode().strip()
    run("ldns-signzone", "-o", ZONE, str(zone), key, cwd=d)
    signed = d / "dane.test.zone.signed"
    text = signed.read_text()
    # bogus: the TLSA record now names the real key, its RRSIG the wrong one
    text, n = re.subn(r"(_%d\._tcp\.mx-bogus\.dane\.test\.\s+\d+\s+IN\s+TLSA\s+3 1 1 )%s"
                      % (port, wrong), r"\g<1>" + pki["ee"], text)
    assert n == 1, text
    text, n = re.subn(r"(bogusmx\.dane\.test\.\s+\d+\s+IN\s+MX\s+)10 ", r"\g<1>20 ", text)
    assert n == 1, text
    signed.write_text(text)
    anchor = d / (key + ".key")
    os.chmod(d, 0o755)
    for p in d.iterdir():
        os.chmod(p, 0o644)
    return signed, anchor


class World:
    def __init__(self, ternd, tmp, pki):
        self.ternd, self.tmp, self.pki = ternd, tmp, pki
        self.port = free_port_on(MX)
        signed, self.anchor = signed_zone(tmp, self.port, pki)
        tl = "_%d._tcp" % self.port
        self.dns = Unbound(tmp, ["plain.test. MX 10 mx.plain.test.", "mx.plain.test. A %s" % MX,
                                 # insecure: ignored, though it does not match
                                 "%s.mx.plain.test. TLSA 3 1 1 %s" % (tl, "00" * 32)],
                           auth_zones=[(ZONE + ".", str(signed))])
        domains = ["%s.%s" % (h, ZONE) for h in
                   ["ok", "ta", "bad", "bogus", "notlsa", "pkix", "bogusmx"]] + ["plain.test"]
        self.mx = ternd(tmp=tmp / "mx", listen="%s:%d" % (MX, self.port),
                        hostname="mx-ok.%s" % ZONE, local_domains=",".join(domains),
                        tls_cert=str(pki["chain"]), tls_key=str(pki["key"]),
                        mailboxes=["bob@" + d for d in domains])

    def sender(self, tls="dane", **opts):
        conf = dict(relay_networks="127.0.0.0/8", dns_resolver=self.dns.resolver,
                    log_level="debug", smtp_port=str(self.port), retry_min="1h",
                    smtp_timeout="5s", smtp_connect_timeout="2s", smtp_tls=tls,
                    dns_trust_anchor=str(self.anchor))
        conf.update(opts)
        s = self.ternd(tmp=self.tmp / "sender", **conf)
        s.make_maildir(SENDER)
        return s

    def stop(self):
        self.dns.stop()


@pytest.fixture
def world(ternd, tmp_path, pki):
    w = World(ternd, tmp_path, pki)
    yield w
    w.stop()


def deliver(w, s, domain, marker):
    qid = send(s, ["bob@%s" % domain], crlf("Subject: %s" % marker, "", marker))
    return qid


def delivered_line(s, qid):
    wait_log(s, "status=sent")
    return [l for l in s.log().splitlines() if "%s: delivery:" % qid in l and "status=sent" in l][0]


def deferred(w, s, domain, marker, reason):
    qid = deliver(w, s, domain, marker)
    wait_log(s, "status=deferred")
    line = [l for l in s.log().splitlines()
            if "%s: delivery:" % qid in l and "status=deferred" in l][0]
    assert reason in line, line
    assert not w.mx.messages("bob@" + domain), "delivered anyway"
    assert "MAIL FROM" not in "".join(l for l in w.mx.log().splitlines() if domain in l)
    return line


def test_dane_ee_record_authenticates(world):
    s = world.sender()
    qid = deliver(world, s, "ok.dane.test", "dane-ee")
    world.mx.wait_message_with("bob@ok.dane.test", "dane-ee")
    line = delivered_line(s, qid)
    assert "dane=3 1 1 %s" % world.pki["ee"][:16] in line, line
    assert "dane: mx-ok.dane.test: TLSA usable" in s.log()


def test_dane_ta_record_authenticates(world):
    s = world.sender(tls="dane-only")
    qid = deliver(world, s, "ta.dane.test", "dane-ta")
    world.mx.wait_message_with("bob@ta.dane.test", "dane-ta")
    assert "dane=2 0 1 %s" % world.pki["ta"][:16] in delivered_line(s, qid)


def test_record_that_does_not_match_defers(world):
    s = world.sender()
    line = deferred(world, s, "bad.dane.test", "no-match", "4.7.5 DANE authentication failed")
    assert "mx-bad.dane.test" in line


def test_bogus_tlsa_answer_defers(world):
    s = world.sender()
    deferred(world, s, "bogus.dane.test", "bogus-tlsa", "4.7.5 TLSA lookup for")
    assert "DNSSEC validation failed (bogus)" in s.log()


def test_bogus_mx_answer_defers(world):
    s = world.sender()
    deferred(world, s, "bogusmx.dane.test", "bogus-mx", "4.7.5 DNSSEC validation failed (bogus)")


def test_secure_host_without_tlsa_falls_back_to_tls(world):
    s = world.sender()
    qid = deliver(world, s, "notlsa.dane.test", "no-tlsa")
    world.mx.wait_message_with("bob@notlsa.dane.test", "no-tlsa")
    line = delivered_line(s, qid)
    assert "tls=TLSv1." in line and "dane=" not in line, line


def test_insecure_zone_falls_back_to_tls(world):
    s = world.sender()
    qid = deliver(world, s, "plain.test", "insecure")
    world.mx.wait_message_with("bob@plain.test", "insecure")
    line = delivered_line(s, qid)
    assert "tls=TLSv1." in line and "dane=" not in line, line
    assert "dane: mx.plain.test: TLSA none: MX records not DNSSEC-signed" in s.log()


@pytest.mark.parametrize("domain", ["plain.test", "notlsa.dane.test", "pkix.dane.test"])
def test_dane_only_defers_without_usable_records(world, domain):
    s = world.sender(tls="dane-only")
    deferred(world, s, domain, "dane-only", "no usable DANE TLSA records")


def test_unusable_records_still_require_tls(world):
    s = world.sender()
    qid = deliver(world, s, "pkix.dane.test", "pkix")
    world.mx.wait_message_with("bob@pkix.dane.test", "pkix")
    assert "tls=TLSv1." in delivered_line(s, qid)
    assert "dane: mx-pkix.dane.test: TLSA unusable" in s.log()


# ---- tern-probe doctor's DANE step, against the same signed zone ----

def doctor(w, domain, *extra, anchor=True):
    from test_probe import probe
    args = ["doctor", domain, "--resolver", w.dns.resolver, "-p", w.port, "--timeout", "5"]
    if anchor:
        args += ["--trust-anchor", str(w.anchor)]
    return probe(*args, *extra)


def test_doctor_dane_ee_matches(world):
    from test_doctor import step
    rc, out = doctor(world, "ok.%s" % ZONE)
    assert step(out, "dane")[0] == "pass", out
    st, verdict = step(out, "dane mx-ok.%s" % ZONE)
    assert st == "pass" and verdict.startswith("TLSA 3 1 1 %s" % world.pki["ee"][:8]), out


def test_doctor_dane_ta_matches(world):
    from test_doctor import step
    rc, out = doctor(world, "ta.%s" % ZONE)
    st, verdict = step(out, "dane mx-ta.%s" % ZONE)
    assert st == "pass" and verdict.startswith("TLSA 2 0 1"), out


def test_doctor_dane_mismatch_fails(world):
    from test_doctor import advice, step
    rc, out = doctor(world, "bad.%s" % ZONE)
    st, verdict = step(out, "dane mx-bad.%s" % ZONE)
    assert st == "FAIL" and "DANE senders defer every message" in verdict, out
    assert "3 1 1" in advice(out, "dane mx-bad.%s" % ZONE)
    assert rc == 2


def test_doctor_dane_bogus_fails(world):
    from test_doctor import step
    rc, out = doctor(world, "bogus.%s" % ZONE)
    st, _ = step(out, "dane")
    assert st == "FAIL" and "bogus" in out, out


def test_doctor_dane_insecure_records_warn(world):
    from test_doctor import advice, step
    rc, out = doctor(world, "plain.test")
    st, _ = step(out, "dane")
    assert st == "warn", out
    assert "sign the zone of mx.plain.test" in advice(out, "dane")


def test_doctor_dane_without_anchor_or_records(world):
    from test_doctor import step
    rc, out = doctor(world, "ok.%s" % ZONE, anchor=False)
    st, verdict = step(out, "dane")
    assert st == "skip" and "--trust-anchor" in verdict, out
    rc, out = doctor(world, "notlsa.%s" % ZONE)
    st, verdict = step(out, "dane")
    assert st == "skip" and "no MX host publishes TLSA records" in verdict, out


# ---- tern-probe check: the same DANE step at the end of a domain's check ----

def check(w, domain):
    from test_probe import probe
    return probe("check", domain, "--resolver", w.dns.resolver, "-p", w.port, "--timeout", "5",
                 "--trust-anchor", str(w.anchor))


def test_check_reports_dane_and_transport(world):
    from test_doctor import step
    rc, out = check(world, "ok.%s" % ZONE)
    st, verdict = step(out, "dane mx-ok.%s" % ZONE)
    assert st == "pass" and verdict.startswith("TLSA 3 1 1 %s" % world.pki["ee"][:8]), out
    # ternd as the MX, after STARTTLS
    assert step(out, "transport") == ("pass", "REQUIRETLS yes, SMTPUTF8 yes, CHUNKING yes"), out
    assert step(out, "mta-sts")[0] == "skip", out


def test_check_dane_mismatch_fails(world):
    from test_doctor import step
    rc, out = check(world, "bad.%s" % ZONE)
    st, verdict = step(out, "dane mx-bad.%s" % ZONE)
    assert st == "FAIL" and "DANE senders defer every message" in verdict, out
    assert rc != 0


def test_check_of_a_host_has_no_domain_steps(world):
    from test_doctor import step
    from test_probe import probe
    rc, out = probe("check", "%s:%d" % (world.mx.host, world.mx.port), "--timeout", "5")
    assert step(out, "transport")[0] in ("pass", "warn"), out
    assert not re.search(r"^\[\w+ *\] (dane|mta-sts|tls-rpt)", out, re.M), out
