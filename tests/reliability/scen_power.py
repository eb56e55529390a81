"""The power-cut scenario: ternd runs under powercut.so while senders get
their 250s; then, for each cut point, the spool is rebuilt as the disk
would hold it had the power gone then (powercut.py's model), a new ternd
starts on it, and every message acknowledged before the cut (and not
already taken by the sink before it) must reach a fresh sink."""

import bisect
import os
import random
import shutil
import sqlite3
import time

import powercut
from harness import BUILD, Daemon, Senders, Sink, wait_for

PRELOAD = os.path.join(BUILD, "powercut.so")


def integrity(spool, scratch):
    """PRAGMA integrity_check on a copy of the rebuilt database."""
    os.makedirs(scratch, exist_ok=True)
    for n in ("queue.db", "queue.db-wal"):
        if os.path.exists(os.path.join(spool, n)):
            shutil.copy(os.path.join(spool, n), scratch)
    try:
        c = sqlite3.connect(os.path.join(scratch, "queue.db"), timeout=5)
        r = c.execute("PRAGMA integrity_check").fetchone()[0]
        n = c.execute("SELECT COUNT(*) FROM msg").fetchone()[0]
        c.close()
        return r, n
    except sqlite3.Error as e:
        return "error: %s" % e, -1
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def cut_points(recs, t0, t1, n, rng):
    """n cut points (record indexes, inclusive) while senders got 250s:
    half at random moments, half just after a completed fsync or just
    before one ends (the edges a sync makes)."""
    times = [r.t for r in recs]
    lo, hi = bisect.bisect_left(times, t0), bisect.bisect_right(times, t1) - 1
    if hi <= lo:
        return []
    ends = [r.seq for r in recs[lo:hi] if r.type == powercut.PC_SYNC_END]
    pts = []
    for i in range(n):
        if i % 2 == 0 or not ends:
            pts.append(("moment", bisect.bisect_right(times, rng.uniform(recs[lo].t, recs[hi].t)) - 1))
        else:
            e = rng.choice(ends)
            pts.append(("after-sync", e) if i % 4 == 1 else ("before-sync-end", e - 1))
    return sorted(pts, key=lambda p: p[1])


def record(work, tag, seconds, senders):
    """A recorded run: returns (journal records, baseline, sends, acked,
    taken by the sink, t0, t1, spool path, uid, gid, sent)."""
    sink = Sink()
    spool = os.path.join(work, "spool")
    d = Daemon(work, sink.port, spool=spool)
    d.start()          # the spool as installed: made by an earlier clean run
    d.stop()
    os.sync()
    base = powercut.snapshot(spool)
    st = os.stat(spool)
    journal = os.path.join(work, "journal")
    d = Daemon(work, sink.port, spool=spool,
               env={"LD_PRELOAD": PRELOAD, "POWERCUT_DIR": spool, "POWERCUT_LOG": journal})
    d.start()
    t0 = time.monotonic()
    s = Senders(lambda: d.port, senders, tag, big=0.1)
    time.sleep(seconds)
    t1 = time.monotonic()
    d.kill9()          # the process ends where the power went
    s.stop()
    d.stop()
    sink.stop()
    recs = powercut.read_journal(journal)
    return dict(recs=recs, base=base, acked=dict(s.acked), taken=sink.first_times(),
                t0=t0, t1=t1, spool=spool, uid=st.st_uid, gid=st.st_gid, sent=s.sent,
                journal=os.path.getsize(journal))


def restart_on(work, rec, kind, k, mode, rng, tally):
    cutt = rec["recs"][k].t
    must = {m for m, t in rec["acked"].items() if t < cutt} - \
        {m for m, t in rec["taken"].items() if t < cutt}
    before = {m for m, t in rec["taken"].items() if t < cutt}
    spool = os.path.join(work, "spool")
    files = powercut.cut(rec["base"], rec["recs"], k + 1, rec["spool"], spool,
                         rec["uid"], rec["gid"], mode, rng)
    ok, queued = integrity(spool, os.path.join(work, "check"))
    sink = Sink()
    d = Daemon(work, sink.port, spool=spool)
    started = True
    try:
        d.start()
    except RuntimeError as e:
        started = False
        print("  cut at record %d: ternd did not start: %s" % (k, e), flush=True)
    try:
        drained = started and wait_for("the cut's acknowledged messages at the sink",
                                       lambda: must <= set(sink.copies()), 90)
        drained = started and wait_for("the spool empty", d.queue_empty, 90) and drained
    finally:
        rc = d.stop()
        sink.stop()
    got = sink.copies()
    lost = len(must - set(got))
    dup = sum(n - 1 for n in got.values()) + len(set(got) & before)
    errors = [l for l in d.log_text().splitlines()
              if "corrupt" in l.lower() or "malformed" in l.lower() or "panic" in l.lower()]
    bad = lost or not started or ok != "ok" or errors or rc != 0 or not drained
    print("  cut %-15s at record %d/%d (+%.3f s, %s): files=%d rows=%d integrity=%s "
          "must=%d delivered=%d duplicated=%d lost=%d%s%s"
          % (kind, k, len(rec["recs"]), cutt - rec["t0"], mode, len(files), queued, ok,
             len(must), len(must & set(got)), dup, lost,
             "" if drained else " NOT DRAINED", " BAD (work kept in %s)" % work if bad else ""),
          flush=True)
    for l in errors[:5]:
        print("    " + l)
    tally["acked"] += len(must)
    tally["delivered"] += len(must & set(got))
    tally["dup"] += dup
    tally["lost"] += lost
    tally["bad"] += 1 if bad else 0
    if not bad:
        shutil.rmtree(work, ignore_errors=True)


def run(work, short, args):
    if not os.path.exists(PRELOAD):
        print("powercut: FAIL: %s is not built (make)" % PRELOAD)
        return 1
    recordings, cuts, seconds = (1, 4, 2.0) if short else (4, 12, 5.0)
    if args.cuts:
        cuts = args.cuts
    rng = random.Random(args.seed)
    tally = dict(sent=0, acked=0, delivered=0, dup=0, lost=0, bad=0, cuts=0)
    for i in range(recordings):
        rw = os.path.join(work, "rec%d" % i)
        rec = record(rw, "power%d" % i, seconds, 8)
        tally["sent"] += rec["sent"]
        print("  recording %d: %d records (%.1f MB journal), %d sent, %d acked"
              % (i, len(rec["recs"]), rec["journal"] / 1e6, rec["sent"], len(rec["acked"])),
              flush=True)
        for j, (kind, k) in enumerate(cut_points(rec["recs"], rec["t0"] + 0.2, rec["t1"], cuts, rng)):
            mode = "lose" if j % 3 != 2 else "some"
            restart_on(os.path.join(rw, "cut%02d" % j), rec, kind, k, mode, rng, tally)
            tally["cuts"] += 1
        if not tally["bad"]:
            os.unlink(os.path.join(rw, "journal"))
    print("powercut: sent=%d acked=%d delivered=%d duplicated=%d lost=%d cuts=%d%s"
          % (tally["sent"], tally["acked"], tally["delivered"], tally["dup"], tally["lost"],
             tally["cuts"], "" if not tally["bad"] else " (%d cut(s) failed)" % tally["bad"]),
          flush=True)
    return tally["lost"] + tally["bad"]
