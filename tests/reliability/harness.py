"""tests/reliability's common parts: the recording sink, ternd, the senders,
bounded waits and the figures of the daemon (descriptors, RSS).
Standard library only."""

import asyncio
import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import stat
import subprocess
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BUILD = os.environ.get("TERN_BUILD") or os.path.join(ROOT, "build")
TERND = os.environ.get("TERND") or os.path.join(BUILD, "ternd")
DEADLINE = 300.0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what, pred, timeout=DEADLINE, quiet=False):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.1)
    if not quiet:
        print("  (gave up waiting: %s)" % what, flush=True)
    return False


# --------------------------------------------------------------------------
# The receiving side: an SMTP server that records each Message-ID it takes.

class Sink:
    """asyncio SMTP sink on its own thread; delay: seconds before the reply
    to each final dot. mode (changeable while running) is how it behaves
    toward new connections:

      ok        takes every message
      stall     reads the message, then never answers the final dot
      reset     reads part of the message, then resets the connection
      garbage   answers EHLO with bytes that are no SMTP reply
      tempfail  451 to every MAIL
      tls       offers STARTTLS, says 220 to it, then sends garbage in place
                of a TLS handshake (a broken TLS stack)
    """

    def __init__(self, delay=0.0, mode="ok", host="127.0.0.1"):
        self.host = host
        self.port = free_port()
        self.delay = delay
        self.mode = mode
        self.got = {}          # Message-ID -> copies
        self.first = {}        # Message-ID -> monotonic time first taken
        self.times = {}        # Message-ID -> [(time of a copy's 250, its connection's start)]
        self.qid = {}          # Message-ID -> the sender's queue id (its Received)
        self.lock = threading.Lock()
        self.conns = set()
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        if not self.ready.wait(10):
            raise RuntimeError("the sink did not start")

    def _run(self):
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(
            asyncio.start_server(self._client, self.host, self.port, backlog=1024))
        self.ready.set()
        self.loop.run_forever()

    def set_mode(self, mode):
        """Change the behaviour, as a next hop restarted with a new one would:
        the connections open now are dropped."""
        self.mode = mode

        def drop():
            for w in list(self.conns):
                w.transport.abort()
        self.loop.call_soon_threadsafe(drop)

    async def _client(self, reader, writer):
        mode = self.mode
        opened = time.monotonic()
        self.conns.add(writer)
        try:
            writer.write(b"220 sink ESMTP\r\n")
            while True:
                line = await asyncio.wait_for(reader.readline(), 60)
                if not line:
                    break
                verb = line[:4].upper()
                if verb in (b"EHLO", b"HELO"):
                    if mode == "garbage":
                        writer.write(b"\x00\xffHELLO? \xc3\x28 nonsense\r\n2x0 what\r\n")
                        await writer.drain()
                        await asyncio.sleep(0.2)
                        break
                    tls = b"250-STARTTLS\r\n" if mode == "tls" else b""
                    writer.write(b"250-sink\r\n" + tls + b"250 PIPELINING\r\n")
                elif verb == b"STAR" and mode == "tls":
                    writer.write(b"220 2.0.0 go ahead\r\n\x15\x03\x03\x00\x02\x02\x28garbage")
                    await writer.drain()
                    await asyncio.sleep(0.2)
                    break
                elif verb == b"MAIL" and mode == "tempfail":
                    writer.write(b"451 4.3.0 try later\r\n")
                elif verb == b"DATA":
                    writer.write(b"354 go\r\n")
                    await writer.drain()
                    ids = []
                    qid = None
                    n = 0
                    while True:
                        body = await asyncio.wait_for(reader.readline(), 60)
                        if not body:
                            return
                        n += 1
                        if mode == "reset" and n == 3:
                            sock = writer.get_extra_info("socket")
                            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                            b"\1\0\0\0\0\0\0\0")
                            writer.transport.abort()
                            return
                        if body == b".\r\n":
                            break
                        m = re.match(rb"Message-ID: *(<[^>]+>)", body, re.I)
                        if m:
                            ids.append(m.group(1).decode())
                        elif qid is None:   # the first Received's "id QID" (tern, Postfix)
                            m = re.match(rb"\s.*\bwith E?SMTP id ([0-9A-Za-z]+)", body)
                            if m:
                                qid = m.group(1).decode()
                    if mode == "stall":
                        await asyncio.sleep(3600)
                    if self.delay:
                        await asyncio.sleep(self.delay)
                    now = time.monotonic()
                    with self.lock:   # taken: from here the 250 may be lost
                        for i in ids:
                            self.got[i] = self.got.get(i, 0) + 1
                            self.first.setdefault(i, now)
                            self.times.setdefault(i, []).append((now, opened))
                            if qid:
                                self.qid[i] = qid
                    writer.write(b"250 2.0.0 taken\r\n")
                elif verb == b"QUIT":
                    writer.write(b"221 bye\r\n")
                    await writer.drain()
                    break
                else:   # MAIL, RCPT, RSET, NOOP
                    writer.write(b"250 ok\r\n")
                await writer.drain()
        except (asyncio.TimeoutError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self.conns.discard(writer)
            writer.close()

    def copies(self):
        with self.lock:
            return dict(self.got)

    def first_times(self):
        with self.lock:
            return dict(self.first)

    def copy_times(self):
        with self.lock:
            return {k: list(v) for k, v in self.times.items()}

    def qids(self):
        with self.lock:
            return dict(self.qid)

    def stop(self):
        async def down():
            self.server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            if tasks:
                await asyncio.wait(tasks, timeout=2)
            self.loop.stop()
        asyncio.run_coroutine_threadsafe(down(), self.loop)
        self.thread.join(10)


# --------------------------------------------------------------------------
# ternd

class Daemon:
    """ternd relaying sink.test to the sink. opts: more -o keys; env: more
    environment (LD_PRELOAD for the power-cut recorder)."""

    def __init__(self, work, sink_port, spool=None, opts=None, env=None, route=True):
        self.work = work
        self.port = free_port()
        os.makedirs(work, exist_ok=True)
        os.chmod(work, 0o755)
        self.spool = spool or os.path.join(work, "spool")
        argv = [TERND, "-o", "listen=127.0.0.1:%d" % self.port,
                "-o", "hostname=mx.test.example",
                "-o", "spool_dir=%s" % self.spool, "-o", "mail_dir=%s/mail" % work,
                "-o", "relay_networks=127.0.0.0/8",
                "-o", "retry_min=1s", "-o", "retry_max=2s",
                "-o", "max_connections_per_ip=200", "-o", "max_connection_rate=0"]
        if route:
            tmap = os.path.join(work, "transport")
            with open(tmap, "w") as f:
                f.write("sink.test 127.0.0.1:%d\n" % sink_port)
            os.chmod(tmap, 0o644)
            argv += ["-o", "transport_map=%s" % tmap]
        for k, v in (opts or {}).items():
            argv += ["-o", "%s=%s" % (k, v)]
        self.argv = argv
        self.env = dict(os.environ, **(env or {}))
        self.proc = None
        self.logpath = os.path.join(work, "ternd.log")
        self.log = open(self.logpath, "ab")

    def start(self, env=None):
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=self.log,
                                     env=dict(self.env, **(env or {})))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("ternd exited with %d; see %s"
                                   % (self.proc.returncode, self.logpath))
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    if s.recv(512).startswith(b"220"):
                        return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("ternd did not listen within 20 s")

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self):
        """SIGTERM; returns the exit status (None if it had to be killed)."""
        rc = None
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        elif self.proc:
            rc = self.proc.returncode
        if not self.log.closed:
            self.log.close()
        return rc

    def log_text(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.logpath, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def log_lines(self, pattern):
        return [l for l in self.log_text().splitlines() if re.search(pattern, l)]

    def queue_count(self):
        """Message rows left in the spool (read-only, as ternctl does); None
        when it cannot be read."""
        db = os.path.join(self.spool, "queue.db")
        if not os.path.exists(db):
            return 0
        try:
            c = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=5)
            n = c.execute("SELECT COUNT(*) FROM msg").fetchone()[0]
            c.close()
            return n
        except sqlite3.Error:
            return None

    def queue_empty(self):
        return self.queue_count() == 0

    def journal_qids(self):
        """The queue ids in the delivery journal now (delivered.0 and .1:
        delivered, maybe not recorded yet); read after a kill, before the
        start that applies and empties it."""
        qids = set()
        for n in ("delivered.0", "delivered.1"):
            try:
                with open(os.path.join(self.spool, n)) as f:
                    qids.update(l.split()[0] for l in f if l.endswith("\n") and l.split())
            except OSError:
                pass
        return qids

    # the daemon's figures, from /proc
    def fds(self):
        return len(os.listdir("/proc/%d/fd" % self.proc.pid))

    def rss(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0


# --------------------------------------------------------------------------
# The sending side

class Senders:
    """n threads, each sending messages on connections of a few messages;
    a message counts as acked once its 250 after the final dot is read
    (acked: Message-ID -> monotonic time of that read). big: the share of
    messages of 70-200 KiB (longer than a spool chunk: body files). codes:
    how often each final reply code came. rate: paced to that many
    messages a second over all threads, one message a connection."""

    def __init__(self, port_of, n, tag, big=0.0, rate=0):
        self.port_of, self.tag, self.big = port_of, tag, big
        self.gap = 1.0 / rate if rate else 0.0   # paced: rate messages/s over all threads
        self.slot = time.monotonic()
        self.sent = 0
        self.acked = {}
        self.codes = {}
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True)
                        for i in range(n)]
        for t in self.threads:
            t.start()

    def _body(self, mid):
        if random.random() < self.big:
            line = "%s %s\r\n" % (mid, "b" * 70)
            return line * (random.randint(70, 200) * 1024 // len(line))
        return "".join("line %d of %s\r\n" % (i, mid) for i in range(random.randint(1, 60)))

    def _send_some(self, k):
        # paced: one message a connection, opened when its slot comes (a
        # connection held open until then would mostly die in the next kill)
        self._pace()
        with socket.create_connection(("127.0.0.1", self.port_of()), timeout=10) as s:
            f = s.makefile("rb")

            def reply():
                while True:
                    line = f.readline()
                    if not line:
                        raise ConnectionError("closed")
                    if line[3:4] != b"-":
                        return int(line[:3])

            if reply() != 220:
                return
            s.sendall(b"EHLO sender.test\r\n")
            if reply() != 250:
                return
            for _ in range(1 if self.gap else random.randint(1, 5)):
                if self.stopping.is_set():
                    break
                with self.lock:
                    self.sent += 1
                    mid = "<%s-%d@sender.test>" % (self.tag, self.sent)
                s.sendall(b"MAIL FROM:<s@sender.test>\r\nRCPT TO:<r@sink.test>\r\nDATA\r\n")
                first = reply()
                if first != 250:   # refused at MAIL (452 when the disk is nearly full)
                    with self.lock:
                        self.codes[first] = self.codes.get(first, 0) + 1
                    return
                if reply() != 250 or reply() != 354:
                    return
                s.sendall(("Message-ID: %s\r\nSubject: reliability\r\n\r\n%s.\r\n"
                           % (mid, self._body(mid))).encode())
                code = reply()
                now = time.monotonic()
                with self.lock:
                    self.codes[code] = self.codes.get(code, 0) + 1
                    if code == 250:
                        self.acked[mid] = now
            s.sendall(b"QUIT\r\n")

    def _pace(self):
        """Paced sending: each message takes the next slot of the shared
        schedule (a slot missed while the server was down is not made up)
        and waits for it."""
        if not self.gap:
            return
        with self.lock:
            now = time.monotonic()
            self.slot = max(self.slot + self.gap, now)
            t = self.slot
        if t > now:
            self.stopping.wait(t - now)

    def _run(self, k):
        while not self.stopping.is_set():
            try:
                self._send_some(k)
            except (OSError, ConnectionError, ValueError):
                time.sleep(0.05)   # ternd is down: try again

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(30)


def drain_and_count(name, d, sink, senders, acked, extra="", timeout=DEADLINE):
    """Wait for every acked message at the sink and an empty spool; print
    the standard line; returns the number lost (or 1 when not drained)."""
    drained = wait_for("every acknowledged message at the sink",
                       lambda: set(acked) <= set(sink.copies()), timeout)
    drained = wait_for("the spool empty", d.queue_empty, timeout) and drained
    got = sink.copies()
    missing = len(set(acked) - set(got))
    dup = sum(n - 1 for n in got.values() if n > 1)
    delivered = len(set(acked) & set(got))
    lost = missing if drained else 0
    print("%s: sent=%d acked=%d delivered=%d duplicated=%d lost=%d%s%s"
          % (name, senders.sent if senders else len(acked), len(acked), delivered, dup, lost,
             extra, "" if drained else " (NOT DRAINED: %d still queued)" % missing), flush=True)
    return lost if drained else max(missing, 1)


# --------------------------------------------------------------------------
# Postfix beside ternd (kill9-* --server postfix)

POSTFIX = "/usr/sbin/postfix"
POSTFIX_QUEUES = ("maildrop", "incoming", "active", "deferred", "hold")


class Postfix:
    """A private Postfix instance (Debian's package), set up as bench/run's
    is: its own configuration and queue directory under work, Debian's
    master.cf with smtpd on a port of its own and no chroot, everything
    relayed to the sink (relayhost); retries after 1-2 s as the harness's
    ternd; as many connections to the sink as ternd's destination_concurrency
    default (10). start-fg in a session of its own, so that kill9 reaches
    the master and every child at once (kill -9 of the process group)."""

    def __init__(self, work, sink_port, concurrency=10, main=None, smtps=None):
        if not os.access(POSTFIX, os.X_OK):
            raise RuntimeError("no %s: scripts/install-deps TEST installs Postfix" % POSTFIX)
        self.work = work
        self.port = free_port()
        os.makedirs(work, exist_ok=True)
        os.chmod(work, 0o755)
        self.etc, self.queue, data = (os.path.join(work, d) for d in ("etc", "queue", "data"))
        for d in (self.etc, self.queue, data):
            os.makedirs(d, exist_ok=True)
        shutil.chown(data, "postfix", "postfix")
        with open(os.path.join(self.etc, "main.cf"), "w") as f:
            f.write(f"""# tests/reliability: a private instance
compatibility_level = 3.6
queue_directory = {self.queue}
data_directory = {data}
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
shlib_directory = /usr/lib/postfix
mail_owner = postfix
setgid_group = postdrop
myhostname = postfix.test.example
mydomain = test.example
myorigin = test.example
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relayhost = [127.0.0.1]:{sink_port}
smtputf8_enable = no
smtp_tls_security_level = none
smtpd_tls_security_level = none
default_destination_concurrency_limit = {concurrency}
minimal_backoff_time = 1s
maximal_backoff_time = 2s
queue_run_delay = 1s
maillog_file = /dev/stdout
""")
            for k, v in (main or {}).items():   # more main.cf settings
                f.write("%s = %s\n" % (k, v))
        out = []
        with open("/etc/postfix/master.cf") as f:
            for line in f:
                w = line.split()
                if line[:1].isalnum() and len(w) >= 8:
                    if w[0] == "smtp" and w[1] == "inet":
                        w[0] = "127.0.0.1:%d" % self.port
                    w[4] = "n"   # no chroot
                    line = " ".join(w) + "\n"
                out.append(line)
        if smtps:   # implicit TLS on a port of its own (RFC 8314), as ternd's smtps
            out.append("127.0.0.1:%d inet n - n - - smtpd -o smtpd_tls_wrappermode=yes "
                       "-o smtpd_tls_security_level=encrypt\n" % smtps)
        with open(os.path.join(self.etc, "master.cf"), "w") as f:
            f.writelines(out)
        self.proc = None
        self.master = None
        self.logpath = os.path.join(work, "postfix.log")
        self.log = open(self.logpath, "ab")

    def start(self):
        # the start without postfix-script's permission checks of the whole
        # queue (a find over it), which made each restart take seconds
        if os.path.isdir(os.path.join(self.queue, "pid")):
            open(os.path.join(self.queue, "quick-start"), "w").close()
        self.proc = subprocess.Popen([POSTFIX, "-c", self.etc, "start-fg"],
                                     stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=self.log, start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("postfix exited with %d; see %s"
                                   % (self.proc.returncode, self.logpath))
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    if s.recv(512).startswith(b"220"):
                        self.master = next((p for p, (pp, _) in self._procs().items()
                                            if pp == self.proc.pid), None)
                        return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("postfix did not listen within 30 s")

    @staticmethod
    def _procs():
        """pid -> (parent, session) of every process but zombies."""
        out = {}
        for p in os.listdir("/proc"):
            if not p.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % p) as f:
                    st = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if st[0] != "Z":
                out[int(p)] = (int(st[1]), int(st[3]))
        return out

    def tree(self):
        """Every process of the instance: start-fg's script runs the master
        as its child, which makes a session of its own (setsid) where its
        children stay; both sessions."""
        procs = self._procs()
        sids = {self.proc.pid} | {p for p, (pp, _) in procs.items() if pp == self.proc.pid}
        if self.master:
            sids.add(self.master)
        return [p for p, (_, sid) in procs.items() if sid in sids]

    def kill9(self):
        """kill -9 of the master and every child at once (the master's
        process group), then of the script and anything else left in
        either session; returns when none is left."""
        for g in (self.master, self.proc.pid):
            try:
                if g:
                    os.killpg(g, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            left = self.tree()
            if not left:
                self.proc.wait(10)
                return
            for p in left:
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.02)
        raise RuntimeError("postfix processes survived kill -9: %s" % self.tree())

    def stop(self):
        if self.proc and self.proc.poll() is None:
            subprocess.run([POSTFIX, "-c", self.etc, "stop"], capture_output=True, timeout=60)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                pass
        if self.proc:
            self.kill9()
        if not self.log.closed:
            self.log.close()
        return 0

    def queue_count(self):
        """Queue files, but for those a kill left half-received in incoming
        (no owner x bit: never acknowledged, never delivered)."""
        n = 0
        for q in POSTFIX_QUEUES:
            for top, _, files in os.walk(os.path.join(self.queue, q)):
                for f in files:
                    try:
                        mode = os.stat(os.path.join(top, f)).st_mode
                    except OSError:
                        continue
                    n += q != "incoming" or bool(mode & stat.S_IXUSR)
        return n

    def queue_empty(self):
        return self.queue_count() == 0

    def journal_qids(self):
        return None   # Postfix marks each recipient done in its queue file

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    # the instance's figures, from /proc: the sums over its processes
    # (master, smtpd, cleanup, qmgr, ...)
    def fds(self):
        n = 0
        for p in self.tree():
            try:
                n += len(os.listdir("/proc/%d/fd" % p))
            except OSError:
                pass
        return n

    def rss(self):
        n = 0
        for p in self.tree():
            try:
                with open("/proc/%d/status" % p) as f:
                    n += next((int(l.split()[1]) * 1024 for l in f if l.startswith("VmRSS:")), 0)
            except OSError:
                pass
        return n

    def processes(self):
        return len(self.tree())
