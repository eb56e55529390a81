"""Scale-out behind a real HAProxy (Debian's haproxy): two ternd nodes,
each with a spool of its own, behind one frontend that speaks the PROXY
protocol v2 to them (send-proxy-v2) and checks them with an SMTP health
check over it (option smtpchk, check-send-proxy). Senders talk to the
frontend only; mail spreads over the nodes; one node is killed (kill -9)
mid-load, HAProxy takes it out of the rotation, the other goes on, and
the killed node restarts on its spool. Every acknowledged message must
reach the sink.

    scale-haproxy: sent= acked= delivered= duplicated= lost= kills= nodes=A+B
"""
import os
import random
import socket
import subprocess
import time

from harness import DEADLINE, Daemon, Senders, Sink, free_port, wait_for

HAPROXY = "/usr/sbin/haproxy"

CONFIG = """global
    maxconn 4000
defaults
    mode tcp
    timeout connect 2s
    timeout client 60s
    timeout server 60s
frontend smtp
    bind 127.0.0.1:%(front)d
    default_backend nodes
backend nodes
    balance roundrobin
    option smtpchk EHLO haproxy.test
%(servers)s
"""
SERVER = ("    server %(name)s 127.0.0.1:%(port)d send-proxy-v2 check check-send-proxy"
          " inter 300 fall 2 rise 2")


def node(work, name, sink):
    """A ternd with a plain listener (the harness's readiness probe) and a
    PROXY one for HAProxy."""
    d = Daemon(os.path.join(work, name), sink.port)
    d.proxy_port = free_port()
    d.argv += ["-o", "listen=127.0.0.1:%d, 127.0.0.1:%d proxy" % (d.port, d.proxy_port),
               "-o", "hostname=%s.test.example" % name]
    return d


def haproxy(work, nodes):
    front = free_port()
    cfg = os.path.join(work, "haproxy.cfg")
    servers = "\n".join(SERVER % {"name": n, "port": d.proxy_port} for n, d in nodes.items())
    with open(cfg, "w") as f:
        f.write(CONFIG % {"front": front, "servers": servers})
    log = open(os.path.join(work, "haproxy.log"), "wb")
    p = subprocess.Popen([HAPROXY, "-db", "-f", cfg], stdout=log, stderr=log)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", front), timeout=1) as s:
                if s.recv(512).startswith(b"220"):
                    return p, front
        except OSError:
            time.sleep(0.05)
    p.kill()
    raise RuntimeError("haproxy did not pass a greeting within 10 s; see %s" % cfg)


def queued(d):
    return len(d.log_lines(r": queued: from="))


def run(work, short, args):
    if not os.access(HAPROXY, os.X_OK):
        print("scale-haproxy: FAIL: %s missing (scripts/install-deps test)" % HAPROXY)
        return 1
    os.makedirs(work, exist_ok=True)
    sink = Sink()
    nodes = {n: node(work, n, sink) for n in ("a", "b")}
    for d in nodes.values():
        d.start()
    hp, front = haproxy(work, nodes)
    kills = args.kills or (1 if short else 6)
    s = Senders(lambda: front, 6, "scale")
    try:
        for i in range(kills):
            time.sleep(random.uniform(1.0, 2.0))
            victim = nodes["a" if i % 2 == 0 else "b"]
            victim.kill9()
            time.sleep(random.uniform(0.5, 1.5))   # HAProxy sees it down, the other takes all
            victim.start()
        time.sleep(1.5)
        s.stop()
        acked = set(s.acked)
        drained = wait_for("every acknowledged message at the sink",
                           lambda: acked <= set(sink.copies()), DEADLINE)
        drained = all(wait_for("node %s's spool empty" % n, d.queue_empty)
                      for n, d in nodes.items()) and drained
    finally:
        s.stop()
        hp.terminate()
        hp.wait(10)
        spread = {n: queued(d) for n, d in nodes.items()}
        for d in nodes.values():
            d.stop()
        sink.stop()
    got = sink.copies()
    missing = len(acked - set(got))
    dup = sum(n - 1 for n in got.values() if n > 1)
    lost = missing if drained else 0
    both = all(v > 0 for v in spread.values())
    print("scale-haproxy: sent=%d acked=%d delivered=%d duplicated=%d lost=%d kills=%d "
          "nodes=%s%s" % (s.sent, len(acked), len(acked & set(got)), dup, lost, kills,
                          "+".join("%s:%d" % kv for kv in sorted(spread.items())),
                          "" if drained else " (NOT DRAINED: %d still queued)" % missing),
          flush=True)
    if not both:
        print("  scale-haproxy: FAIL: the mail did not spread over both nodes")
    return (lost if drained else max(missing, 1)) + (0 if both else 1)


SCENARIOS = {"scale-haproxy": run}
