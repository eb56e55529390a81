"""Abuse scenarios: many hostile or careless clients at once (asyncio, one
process), then ternd must still be up and serving, its open descriptors
(/proc/PID/fd) back to their baseline and its RSS back within 20% of its
baseline (after the 5 s trim ternd does after bursts; bounded wait).

  abuse-concurrent  N clients connected at once, each then sends a message
  abuse-slowloris   N clients sending a byte every 2 s; meanwhile a probe
                    transaction must finish in under a second
  abuse-hangup      N clients hanging up mid-DATA (FIN or RST)
  abuse-garbage     N clients sending random bytes, 100 KB lines, NULs,
                    bare CR and LF, invalid UTF-8, smuggling shapes
  abuse-tls         N TLS clients closing at every step of the handshake
                    and after it (see also tests/blackbox/test_tls_abort.py)

Counts: --short 200/50/200/20/25, full 2000/500/2000/200/500. The test
config raises max_connections and max_connections_per_ip above N and turns
max_connection_rate off (every client comes from 127.0.0.1, as an operator
would set it for such a test), and RLIMIT_NOFILE for itself and ternd.
"""

import asyncio
import os
import random
import resource
import socket
import ssl
import struct
import subprocess
import time

from harness import Daemon, Postfix, Sink, wait_for

COUNTS = {"concurrent": (200, 2000), "slowloris": (50, 500), "hangup": (200, 2000),
          "garbage": (20, 200), "tls": (25, 500)}


def raise_nofile(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(max(hard, n), 1048576)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def tls_session(port):
    """One whole SMTPS session: handshake, EHLO, QUIT."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw) as s:
            f = s.makefile("rb")
            f.readline()
            s.sendall(b"EHLO warm.test\r\n")
            while f.readline()[3:4] == b"-":
                pass
            s.sendall(b"QUIT\r\n")
            f.readline()


def make_cert(work):
    crt, key = os.path.join(work, "cert.pem"), os.path.join(work, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj",
                    "/CN=mx.test.example", "-keyout", key, "-out", crt],
                   check=True, capture_output=True, timeout=30)
    os.chmod(key, 0o644)
    return crt, key


async def reply(reader, timeout=30):
    while True:
        line = await asyncio.wait_for(reader.readline(), timeout)
        if not line:
            raise ConnectionError("closed")
        if line[3:4] != b"-":
            return line


async def transaction(port, tag, hold=None, greeted=None):
    """One whole message; hold: an event to wait on after the greeting
    (greeted: a list each greeted client joins)."""
    r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 60)
    try:
        g = await reply(r, 60)
        if not g.startswith(b"220"):
            return g[:3].decode()
        if hold is not None:
            greeted.append(tag)
            await hold.wait()
        w.write(b"EHLO abuse.test\r\nMAIL FROM:<a@abuse.test>\r\nRCPT TO:<r@sink.test>\r\nDATA\r\n")
        for _ in range(4):
            x = await reply(r, 60)
        w.write(b"Message-ID: <%s@abuse.test>\r\nSubject: abuse\r\n\r\nbody\r\n.\r\nQUIT\r\n" % tag.encode())
        x = await reply(r, 60)
        return x[:3].decode()
    finally:
        w.close()


def probe_time(port):
    """One whole transaction on a plain socket: seconds, and the final code."""
    t = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        f = s.makefile("rb")

        def rep():
            while True:
                line = f.readline()
                if not line or line[3:4] != b"-":
                    return line
        rep()
        s.sendall(b"EHLO probe.test\r\n")
        rep()
        s.sendall(b"MAIL FROM:<p@probe.test>\r\n")
        rep()
        s.sendall(b"RCPT TO:<r@sink.test>\r\n")
        rep()
        s.sendall(b"DATA\r\n")
        rep()
        s.sendall(b"Message-ID: <probe-%f@probe.test>\r\n\r\nprobe\r\n.\r\n" % time.time())
        code = rep()[:3]
        s.sendall(b"QUIT\r\n")
        rep()
    return time.monotonic() - t, code.decode()


# --------------------------------------------------------------------------
# the clients

async def concurrent(port, n):
    hold, greeted = asyncio.Event(), []
    tasks = [asyncio.create_task(transaction(port, "conc-%d" % i, hold, greeted))
             for i in range(n)]
    t = time.monotonic()
    # every client connected and greeted at once (bounded), then all send
    while len(greeted) + sum(1 for x in tasks if x.done()) < n and time.monotonic() - t < 60:
        await asyncio.sleep(0.1)
    concurrent.greeted = len(greeted)
    hold.set()
    res = await asyncio.gather(*tasks, return_exceptions=True)
    codes = {}
    for x in res:
        k = x if isinstance(x, str) else type(x).__name__
        codes[k] = codes.get(k, 0) + 1
    return codes


async def slowloris(port, n, seconds):
    async def one(i):
        try:
            r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 30)
        except (OSError, asyncio.TimeoutError):
            return "connect-failed"
        line = b"EHLO slow%d.test\r\nMAIL FROM:<s@slow.test>\r\n" % i
        end = time.monotonic() + seconds
        k = 0
        try:
            while time.monotonic() < end:
                w.write(line[k % len(line):k % len(line) + 1])
                await w.drain()
                k += 1
                await asyncio.sleep(2)
            return "held"
        except (ConnectionError, OSError):
            return "closed-by-server"
        finally:
            w.close()
    return await asyncio.gather(*[one(i) for i in range(n)])


async def hangup(port, n):
    async def one(i):
        try:
            r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 60)
            await reply(r, 60)
            w.write(b"EHLO hang.test\r\nMAIL FROM:<h@hang.test>\r\nRCPT TO:<r@sink.test>\r\nDATA\r\n")
            for _ in range(4):
                await reply(r, 60)
            w.write(b"Message-ID: <hang-%d@abuse.test>\r\n\r\n" % i + b"x" * random.randint(10, 90000))
            await w.drain()
            if i % 2:
                sock = w.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            w.transport.abort() if i % 2 else w.close()
            return "left"
        except (OSError, ConnectionError, asyncio.TimeoutError) as e:
            return type(e).__name__
    return await asyncio.gather(*[one(i) for i in range(n)])


GARBAGE = [
    lambda: os.urandom(random.randint(1, 20000)),
    lambda: b"EHLO " + b"A" * 100000 + b"\r\n",
    lambda: b"HELO x\0y\r\nMAIL FROM:<a\0@b>\r\n" + b"\0" * 5000,
    lambda: b"EHLO bare.test\rMAIL FROM:<a@b>\nRCPT TO:<r@sink.test>\r\n",
    lambda: b"EHLO \xc3\x28\xa0\xa1.test\r\nMAIL FROM:<\xff\xfe@\xed\xa0\x80>\r\n",
    lambda: (b"EHLO smuggle.test\r\nMAIL FROM:<a@abuse.test>\r\nRCPT TO:<r@sink.test>\r\nDATA\r\n"
             b"Subject: s\r\n\r\nbody\n.\nMAIL FROM:<evil@x>\r\nRCPT TO:<r@sink.test>\r\nDATA\r\n"
             b"smuggled\r\n\r.\r\nmore\r\n.\r\n"),
    lambda: b"\r\n" * 5000 + b"\n" * 5000 + b"\r" * 5000,
    lambda: b"BDAT 100000 LAST\r\n" + os.urandom(1000),
    lambda: b"AUTH PLAIN " + b"=" * 60000 + b"\r\n",
    lambda: b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(500),
]


async def garbage(port, n):
    async def one(i):
        try:
            r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 60)
            await reply(r, 60)
            w.write(GARBAGE[i % len(GARBAGE)]())
            await w.drain()
            try:
                await asyncio.wait_for(r.read(1 << 20), 5)
            except asyncio.TimeoutError:
                pass
            w.close()
            return "done"
        except (OSError, ConnectionError, asyncio.TimeoutError) as e:
            return type(e).__name__
    return await asyncio.gather(*[one(i) for i in range(n)])


def client_hello():
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    obj = ctx.wrap_bio(inc, out, server_hostname="mx.test.example")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


TLS_WAYS = ["connect-only", "hello-part", "hello-reset", "hello-then-close", "after-handshake",
            "mid-command"]


async def tls_clients(port, smtps, n):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE

    async def one(i):
        how = TLS_WAYS[i % len(TLS_WAYS)]
        implicit = i % 2 == 0
        try:
            r, w = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", smtps if implicit else port), 60)
            if not implicit:
                await reply(r, 60)
                w.write(b"EHLO tls.test\r\nSTARTTLS\r\n")
                await reply(r, 60)
                await reply(r, 60)
            if how == "connect-only":
                w.close()
                return how
            if how in ("hello-part", "hello-reset", "hello-then-close"):
                h = client_hello()
                w.write(h[:len(h) // 2] if how == "hello-part" else h)
                await w.drain()
                if how == "hello-then-close":
                    await asyncio.sleep(0.05)
                if how == "hello-reset":
                    w.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                                          struct.pack("ii", 1, 0))
                    w.transport.abort()
                else:
                    w.close()
                return how
            await asyncio.wait_for(w.start_tls(ctx, server_hostname="mx.test.example"), 30)
            if how == "mid-command":
                if implicit:
                    await reply(r, 30)
                w.write(b"EHLO tls.test\r\nMAIL FROM:<half@tls.te")
                await w.drain()
            w.close()
            return how
        except (OSError, ConnectionError, asyncio.TimeoutError, ssl.SSLError) as e:
            return type(e).__name__
    return await asyncio.gather(*[one(i) for i in range(n)])


# --------------------------------------------------------------------------

def settle(d, fds0, rss0, longer=False):
    """Bounded wait for the descriptors and RSS to come back (longer: past
    Postfix's max_idle, 100 s, when its idle smtpd processes exit)."""
    wait_for("descriptors back to the baseline", lambda: d.fds() <= fds0,
             150 if longer else 60, quiet=True)
    wait_for("RSS back within 20%", lambda: d.rss() <= rss0 * 1.2, 30, quiet=True)
    return d.fds(), d.rss()


def server_for(kind, work, sink, n, server):
    """The server under abuse: ternd with the limits above raised past n,
    or (--server postfix) a private Postfix with its process limit raised
    as far, the same timeout and error limit, and otherwise shipped
    settings. Returns it and its implicit-TLS port for abuse-tls."""
    smtps = crt = key = None
    if kind == "tls":
        os.makedirs(work, exist_ok=True)
        crt, key = make_cert(work)
        from harness import free_port
        smtps = free_port()
    if server == "postfix":
        main = {"default_process_limit": str(n + 200), "smtpd_timeout": "60s",
                "smtpd_hard_error_limit": "20"}
        if crt:
            main.update(smtpd_tls_cert_file=crt, smtpd_tls_key_file=key)
        return Postfix(work, sink.port, main=main, smtps=smtps), smtps
    opts = {"max_connections": str(n + 200), "max_connections_per_ip": str(n + 200),
            "max_connection_rate": "0", "max_errors": "20", "command_timeout": "60s"}
    if crt:
        opts.update(tls_cert=crt, tls_key=key)
    d = Daemon(work, sink.port, opts=opts)
    if smtps:
        d.argv[d.argv.index("listen=127.0.0.1:%d" % d.port)] = \
            "listen=127.0.0.1:%d, 127.0.0.1:%d smtps" % (d.port, smtps)
    return d, smtps


def abuse(kind):
    def run(work, short, args):
        n = COUNTS[kind][0 if short else 1]
        raise_nofile(4 * n + 1024)
        name = "abuse-" + kind
        server = getattr(args, "server", None) or "ternd"
        if server != "ternd":
            name += "/" + server
        sink = Sink()
        d, smtps = server_for(kind, work, sink, n, server)
        d.start()
        fails = 0
        try:
            # warm up: a few transactions (and TLS sessions: OpenSSL's
            # first handshake sets up tables it keeps for the process's
            # life, which are no memory the burst failed to return), then
            # the baseline
            for _ in range(5):
                probe_time(d.port)
                if smtps:
                    tls_session(smtps)
            time.sleep(2.5 if short else 6)       # past a trim
            fds0, rss0 = d.fds(), d.rss()
            t = time.monotonic()
            extra = ""
            if kind == "concurrent":
                codes = asyncio.run(concurrent(d.port, n))
                ok = codes.get("250", 0)
                extra = "at-once=%d ok=%d results=%s" % (concurrent.greeted, ok, codes)
                fails += ok != n
            elif kind == "slowloris":
                secs = 10 if short else 30

                async def both():
                    task = asyncio.create_task(slowloris(d.port, n, secs))
                    await asyncio.sleep(min(5, secs / 2))
                    took, code = await asyncio.get_running_loop().run_in_executor(
                        None, probe_time, d.port)
                    return took, code, await task
                took, code, res = asyncio.run(both())
                extra = "probe=%.3fs/%s held=%d closed=%d" % (
                    took, code, res.count("held"), res.count("closed-by-server"))
                fails += not (took < 1.0 and code == "250")
            elif kind == "hangup":
                res = asyncio.run(hangup(d.port, n))
                extra = "left=%d" % res.count("left")
                fails += res.count("left") < n * 0.95
            elif kind == "garbage":
                res = asyncio.run(garbage(d.port, n))
                extra = "done=%d" % res.count("done")
            elif kind == "tls":
                res = asyncio.run(tls_clients(d.port, smtps, n))
                extra = "ways=%s" % {k: res.count(k) for k in sorted(set(res))}
            took_all = time.monotonic() - t
            up = d.running()
            after_code = probe_time(d.port)[1] if up else "-"
            t_settle = time.monotonic()
            fds1, rss1 = settle(d, fds0, rss0, server == "postfix") if up else (-1, -1)
            if server == "postfix":
                extra += " processes=%d settled-in=%.0fs" % (d.processes(),
                                                           time.monotonic() - t_settle)
            ok_fds = up and fds1 <= fds0
            ok_rss = up and rss1 <= rss0 * 1.2
            if kind == "hangup":
                # nothing of the hung-up messages was queued
                wait_for("the spool empty", d.queue_empty, 60, quiet=True)
                q = d.queue_count()
                extra += " queued-after=%s" % q
                fails += q != 0
            fails += not up or after_code != "250" or not ok_fds or not ok_rss
            print("%s: clients=%d %s up=%s probe-after=%s fds=%d->%d rss=%.1f->%.1f MiB "
                  "(%.1f s) %s" % (name, n, extra, "yes" if up else "NO", after_code, fds0, fds1,
                                   rss0 / 2**20, rss1 / 2**20, took_all,
                                   "PASS" if not fails else "FAIL"), flush=True)
        finally:
            rc = d.stop()
            sink.stop()
        if rc != 0:
            print("  %s: %s exit status %s on SIGTERM: FAIL" % (name, server, rc))
            fails += 1
        return fails
    return run


SCENARIOS = {"abuse-" + k: abuse(k) for k in COUNTS}
