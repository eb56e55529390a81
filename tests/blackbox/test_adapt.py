"""destination_concurrency_adaptive: the connections to a next hop follow
what they get through. ternd opens destination_concurrency of them as
before; a next hop that takes one message at a time (the bottleneck) then
keeps only a few, while one whose connections each add their share
(latency) keeps them all. Every message is delivered once either way."""

import asyncio
import json
import os
import re
import smtplib
import subprocess
import threading
import time

import pytest

from conftest import DEADLINE, REPO, free_port, wait_for

TERNCTL = os.environ.get("TERNCTL") or str(REPO / "build" / "ternctl")


def destinations(server, json_out=True):
    argv = [TERNCTL, "-s", str(server.spool_dir / "control")] + (["--json"] if json_out else [])
    p = subprocess.run(argv + ["destinations"], capture_output=True, text=True, timeout=DEADLINE)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)["destinations"] if json_out else p.stdout


class HopSink:
    """An SMTP next hop on 127.0.0.1 (asyncio, on its own thread) that
    notes the connections open at each reply to a final dot, and counts
    the copies of each Message-ID. serial: seconds each final dot holds the one lock (a
    next hop that serves one message at a time); delay: seconds each dot
    waits on its own (latency, connections in parallel)."""

    def __init__(self, serial=0.0, delay=0.0):
        self.port = free_port()
        self.serial, self.delay = serial, delay
        self.open = 0
        self.samples = []
        self.got = {}
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self.ready.wait(10), "the sink did not start"

    def _run(self):
        asyncio.set_event_loop(self.loop)
        self.lock = asyncio.Lock()
        self.server = self.loop.run_until_complete(
            asyncio.start_server(self._client, "127.0.0.1", self.port))
        self.ready.set()
        self.loop.run_forever()

    async def _client(self, reader, writer):
        self.open += 1
        try:
            writer.write(b"220 hop ESMTP\r\n")
            while True:
                line = await asyncio.wait_for(reader.readline(), 30)
                verb = line[:4].upper()
                if not line or verb == b"QUIT":
                    writer.write(b"221 bye\r\n")
                    break
                if verb == b"EHLO":
                    writer.write(b"250-hop\r\n250 PIPELINING\r\n")
                elif verb == b"DATA":
                    writer.write(b"354 go\r\n")
                    await writer.drain()
                    mid = None
                    while (body := await asyncio.wait_for(reader.readline(), 30)) != b".\r\n":
                        if not body:
                            return
                        m = re.match(rb"Message-ID: *(<[^>]+>)", body, re.I)
                        mid = mid or (m and m.group(1).decode())
                    if self.serial:
                        async with self.lock:
                            await asyncio.sleep(self.serial)
                    if self.delay:
                        await asyncio.sleep(self.delay)
                    self.got[mid] = self.got.get(mid, 0) + 1
                    self.samples.append(self.open)
                    writer.write(b"250 2.0.0 taken\r\n")
                else:
                    writer.write(b"250 ok\r\n")
                await writer.drain()
        except (asyncio.TimeoutError, ConnectionError):
            pass
        finally:
            self.open -= 1
            writer.close()

    def open_later(self):
        """The connections open at the median reply of the second half:
        after ternd has had time to adapt."""
        later = sorted(self.samples[len(self.samples) // 2:])
        return later[len(later) // 2]

    async def _down(self):
        self.server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def stop(self):
        asyncio.run_coroutine_threadsafe(self._down(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def hop_sink():
    sinks = []

    def start(**kw):
        sinks.append(HopSink(**kw))
        return sinks[-1]
    yield start
    for s in sinks:
        s.stop()


def relay_queued(ternd, tmp_path, sink, n, **overrides):
    """n messages queued for user@hop.test (routed to the sink) while
    delivery is off, then a ternd on the same spool that delivers them:
    they all wait for the destination at once."""
    tmap = tmp_path / "transport"
    tmap.write_text("hop.test 127.0.0.1:%d\n" % sink.port)
    tmap.chmod(0o644)
    opts = dict(relay_networks="127.0.0.0/8", transport_map=str(tmap),
                destination_concurrency="10", **overrides)
    s = ternd(tmp=tmp_path / "relay", queue_only="yes", **opts)
    with smtplib.SMTP("127.0.0.1", s.port, timeout=DEADLINE) as c:
        for i in range(n):
            c.sendmail("app@example.com", ["user@hop.test"],
                       "Message-ID: <m%d@adapt.test>\r\nSubject: %d\r\n\r\nbody\r\n" % (i, i))
    s.stop_checked()
    return ternd(tmp=tmp_path / "relay", **opts)


def wait_delivered(sink, n, timeout):
    wait_for("%d messages at the next hop" % n, lambda: len(sink.got) >= n, timeout=timeout)
    time.sleep(0.3)   # a copy sent twice would come in by now
    assert len(sink.got) == n and set(sink.got.values()) == {1}, \
        "copies: %r" % {k: v for k, v in sink.got.items() if v != 1}


@pytest.mark.parametrize("adaptive", ["yes", "no"])
def test_bottleneck_keeps_few_connections(ternd, tmp_path, hop_sink, adaptive):
    """One message at a time, 10 ms each: a second connection brings
    nothing. Adaptive, ternd sheds the connections that only wait (a
    level an epoch, then probes of one more or one fewer); without it,
    all ten wait at the next hop with a message each."""
    sink = hop_sink(serial=0.01)
    s = relay_queued(ternd, tmp_path, sink, 800, destination_concurrency_adaptive=adaptive)
    # what an operator sees meanwhile: ternctl destinations
    wait_for("half of them delivered", lambda: len(sink.got) >= 400, timeout=60)
    [d] = destinations(s)
    assert (d["destination"], d["kind"], d["max"]) == ("127.0.0.1", "host", 10), d
    assert d["adaptive"] == (adaptive == "yes") and d["waiting"] > 0, d
    assert d["connections"] <= d["limit"] + 1, d
    wait_delivered(sink, 800, timeout=60)
    if adaptive == "yes":
        assert sink.open_later() <= 3, sink.samples
        assert d["limit"] <= 3 and len(d["rates"]) >= 3, d   # it measured its way down
        text = destinations(s, json_out=False)
        assert text.startswith("DESTINATION") and "msg/s by connections:" in text, text
    else:
        assert sink.open_later() == 10, sink.samples
        assert (d["limit"], d["rates"]) == (10, {}), d
    s.stop_checked()


def test_latency_bound_hop_keeps_them_all(ternd, tmp_path, hop_sink):
    """0.1 s per message, connections in parallel: each one brings its
    share, so ternd keeps destination_concurrency of them (probing one
    fewer now and then)."""
    sink = hop_sink(delay=0.1)
    s = relay_queued(ternd, tmp_path, sink, 600)
    wait_delivered(sink, 600, timeout=90)
    assert sink.open_later() >= 9, sink.samples
    s.stop_checked()


def test_destinations_without_delivery(ternd, tmp_path):
    """Nothing delivered yet: an empty list, said so in words; with
    queue_only there is no engine to ask, and ternctl says why."""
    s = ternd()
    assert destinations(s) == []
    assert destinations(s, json_out=False).startswith("no destinations")
    s.stop_checked()
    q = ternd(tmp=tmp_path / "q", queue_only="yes")
    p = subprocess.run([TERNCTL, "-s", str(q.spool_dir / "control"), "destinations"],
                       capture_output=True, text=True, timeout=DEADLINE)
    assert p.returncode == 1 and "delivery is off here" in p.stderr, (p.returncode, p.stderr)
