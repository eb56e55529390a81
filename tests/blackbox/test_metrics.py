"""metrics_listen: the Prometheus page, read by curl and scraped by a real
Prometheus (Debian's), whose query API must return tern's counters."""

import json
import shutil
import subprocess
import time
import urllib.parse

import pytest

from conftest import DEADLINE, crlf, free_port, wait_for

PROMETHEUS = shutil.which("prometheus")


def curl(url, *args):
    p = subprocess.run(["curl", "-s", "-S", "-i", "--max-time", "10", *args, url],
                       capture_output=True, text=True, timeout=DEADLINE + 5)
    assert p.returncode == 0, p.stderr
    head, _, body = p.stdout.replace("\r\n", "\n").partition("\n\n")
    return int(head.split()[1]), head, body


def samples(body):
    """{'name{labels}': value} of an exposition page."""
    out = {}
    for line in body.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


@pytest.fixture
def metered(ternd):
    port = free_port()
    s = ternd(metrics_listen="127.0.0.1:%d" % port, mailboxes=("bob@example.com",))
    s.metrics_url = "http://127.0.0.1:%d/metrics" % port
    c = s.session()
    c.send_mail("a@example.net", ["bob@example.com"], crlf("Subject: counted", "", "x"))
    c.expect("MAIL FROM:<a@example.net>", "250 ...")
    c.expect("RCPT TO:<nobody@example.com>", "550 5.1.1 User unknown")
    c.expect("QUIT", "221 ...")
    s.wait_messages("bob@example.com", 1)
    return s


def test_page_by_curl(metered):
    def delivered():
        code, head, body = curl(metered.metrics_url)
        m = samples(body)
        # the count comes at the delivery, the queue's gauges once its
        # result is recorded and the message removed, a moment later
        done = m.get('tern_deliveries_total{status="sent"}') == 1 and m.get("tern_queue_bytes") == 0
        return (code, head, body, m) if done else None
    code, head, body, m = wait_for("the delivery counted and the queue empty", delivered)
    assert code == 200
    assert "Content-Type: text/plain; version=0.0.4" in head
    assert "# TYPE tern_messages_accepted_total counter" in body
    assert m["tern_messages_accepted_total"] == 1
    assert m["tern_connections_total"] >= 1
    assert m['tern_rejections_total{reason="no such mailbox"}'] == 1
    assert m['tern_delivery_latency_seconds_bucket{le="+Inf"}'] == 1
    assert m["tern_delivery_latency_seconds_count"] == 1
    assert all(m['tern_queue_messages{queue="%s"}' % q] == 0 for q in ("active", "deferred", "hold"))
    assert m['tern_build_info{version="0.1.0"}'] == 1
    # only /metrics, only GET and HEAD; the daemon goes on serving
    assert curl(metered.metrics_url.replace("/metrics", "/other"))[0] == 404
    assert curl(metered.metrics_url, "-X", "POST")[0] in (405, 501)
    assert curl(metered.metrics_url, "-d", "x" * 100000)[0] in (405, 413, 501)
    metered.session().expect("QUIT", "221 ...")


@pytest.mark.skipif(PROMETHEUS is None, reason="prometheus not installed (scripts/install-deps test)")
def test_prometheus_scrapes_tern(metered, tmp_path):
    web = free_port()
    target = metered.metrics_url.split("/")[2]
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                   "scrape_configs:\n  - job_name: tern\n    static_configs:\n"
                   "      - targets: ['%s']\n" % target)
    log = open(tmp_path / "prometheus.log", "wb")
    p = subprocess.Popen([PROMETHEUS, "--config.file", str(cfg), "--storage.tsdb.path",
                          str(tmp_path / "tsdb"), "--web.listen-address", "127.0.0.1:%d" % web],
                         stdout=log, stderr=log)
    try:
        api = "http://127.0.0.1:%d/api/v1/query?query=" % web

        def query(expr):
            try:
                code, _, body = curl(api + urllib.parse.quote(expr))
            except AssertionError:
                return None   # not listening yet
            if code != 200:
                return None
            res = json.loads(body)["data"]["result"]
            return res or None
        up = wait_for("Prometheus scraped tern", lambda: query('up{job="tern"} == 1'),
                      timeout=40, poll=0.5)
        assert up[0]["metric"]["instance"] == target
        got = wait_for("tern's counters in Prometheus",
                       lambda: query("tern_messages_accepted_total"), timeout=20, poll=0.5)
        assert got[0]["value"][1] == "1"
        sent = query('tern_deliveries_total{status="sent"}')
        assert sent and sent[0]["value"][1] == "1"
        rej = query('tern_rejections_total{reason="no such mailbox"}')
        assert rej and rej[0]["value"][1] == "1"
        hist = query("histogram_quantile(0.5, tern_delivery_latency_seconds_bucket)")
        assert hist and float(hist[0]["value"][1]) <= 1.0
    finally:
        p.terminate()
        p.wait(DEADLINE)
        log.close()
