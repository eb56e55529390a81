"""The spool as a disk would hold it after a power cut, from powercut.so's
journal (see powercut.c for what is recorded and how).

The model (conservative; LazyFS's "clear the page cache at the cut", with
fsync taken to mean no more than POSIX and Linux promise):

  * A write, truncation or allocation survives only when an fsync or
    fdatasync of the same file (any descriptor on its inode) started after
    the write had returned, and ended (successfully) before the cut. The two
    are the same here: fdatasync covers the data and the size needed to read
    it, which is all the spool asks for.
  * A name (a file created by open(O_CREAT), a mkdir, a rename, an unlink)
    survives only when the directory holding it (both directories, for a
    rename) was fsynced the same way. An fsync of a file does not make its
    name durable (fsync(2): "an explicit fsync() on a file descriptor for
    the directory is also needed"). A file whose name did not survive is
    gone with its data, whatever was synced.
  * Everything else is lost at the cut ("lose" mode). In "some" mode, a
    random subset of the writes not covered by a sync survives as well
    (each write whole or not at all, in any combination), and a random
    prefix of the namespace changes not covered: a disk that flushed part of
    its cache on its own, which a correct program must survive too.
  * SQLite's shared-memory index (queue.db-shm) is written through mmap and
    is not recorded; it is left out of the rebuilt spool: SQLite rebuilds
    it from the WAL when the first connection opens the database (as after
    any crash).

The baseline is the spool as it was when the recording started, read from
disk (a clean stop and sync(2) before). Only ternd's own calls are seen:
the test must not touch the spool while it records.
"""

import os
import random
import stat
import struct

PC_OPEN, PC_CLOSE, PC_WRITE, PC_TRUNC, PC_ALLOC, PC_SYNC_BEGIN, PC_SYNC_END, \
    PC_RENAME, PC_UNLINK, PC_MKDIR = range(1, 11)
REC = struct.Struct("<IIqiiQqq")
O_TRUNC = os.O_TRUNC


class Rec:
    __slots__ = ("seq", "type", "t", "fd", "arg", "ino", "off", "len", "data")


def read_journal(path):
    """Every record of the journal, in order; t in seconds (monotonic)."""
    recs = []
    with open(path, "rb") as f:
        buf = f.read()
    mv = memoryview(buf)
    pos = 0
    while pos + REC.size <= len(buf):
        plen, typ, t, fd, arg, ino, off, ln = REC.unpack_from(buf, pos)
        pos += REC.size
        if pos + plen > len(buf):
            break           # a record cut short by the kill: never complete
        r = Rec()
        r.seq, r.type, r.t, r.fd, r.arg, r.ino, r.off, r.len = \
            len(recs), typ, t / 1e9, fd, arg, ino, off, ln
        r.data = mv[pos:pos + plen]
        pos += plen
        recs.append(r)
    return recs


def snapshot(root):
    """The baseline: {path: (ino, is_dir, bytes or None)} under root, root included."""
    out = {}
    for d, dirs, files in os.walk(root):
        st = os.stat(d)
        out[d] = (st.st_ino, True, None)
        for n in files:
            p = os.path.join(d, n)
            st = os.lstat(p)
            if stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    out[p] = (st.st_ino, False, f.read())
    return out


class Inode:
    def __init__(self, ino, is_dir, data):
        self.ino, self.is_dir = ino, is_dir
        self.durable = None if is_dir else bytearray(data or b"")
        self.pending = []       # (seq, kind, a, b): not yet covered by a sync


def apply_data(buf, kind, a, b):
    if kind == "w":
        end = a + len(b)
        if len(buf) < a:
            buf.extend(b"\0" * (a - len(buf)))
        buf[a:end] = b
    elif kind == "t":
        if len(buf) > a:
            del buf[a:]
        else:
            buf.extend(b"\0" * (a - len(buf)))
    elif kind == "a":
        if len(buf) < a + b:
            buf.extend(b"\0" * (a + b - len(buf)))


class Disk:
    """Replays a journal's prefix over a baseline; rebuild() writes the disk
    as the model says it is at that point."""

    def __init__(self, base):
        self.cur = {}       # path -> Inode, as the process sees it
        self.dur = {}       # path -> Inode, what the disk holds
        for p, (ino, is_dir, data) in base.items():
            n = Inode(ino, is_dir, data)
            self.cur[p] = self.dur[p] = n
        self.fds = {}
        self.syncs = {}     # fd -> [(begin seq, Inode)]
        self.ns = []        # [seq, op, args, set of directory Inodes still to sync]
        self.unknown = []

    def _parent(self, path):
        return self.cur.get(os.path.dirname(path))

    def _ns(self, seq, op, args, paths):
        need = {d for d in (self._parent(p) for p in paths) if d is not None}
        self.ns.append([seq, op, args, need])

    def _ns_apply(self, op, args):
        if op == "link":
            path, node = args
            self.dur[path] = node
        elif op == "rename":
            old, new, node = args
            if self.dur.get(old) is node:
                del self.dur[old]
            self.dur[new] = node
        elif op == "unlink":
            (path,) = args
            self.dur.pop(path, None)

    def replay(self, recs):
        for r in recs:
            self.step(r)

    def step(self, r):
        t = r.type
        if t == PC_OPEN:
            path = bytes(r.data).decode()
            node = self.cur.get(path)
            if node is None or node.ino != r.ino:
                node = Inode(r.ino, bool(r.arg), b"")
                self.cur[path] = node
                self._ns(r.seq, "link", (path, node), [path])
            if r.len & O_TRUNC and not node.is_dir:
                node.pending.append((r.seq, "t", 0, None))
            self.fds[r.fd] = node
        elif t == PC_CLOSE:
            self.fds.pop(r.fd, None)
        elif t in (PC_WRITE, PC_TRUNC, PC_ALLOC):
            node = self.fds.get(r.fd)
            if node is None:
                return
            if t == PC_WRITE:
                node.pending.append((r.seq, "w", r.off, bytes(r.data)))
            elif t == PC_TRUNC:
                node.pending.append((r.seq, "t", r.off, None))
            else:
                node.pending.append((r.seq, "a", r.off, r.len))
        elif t == PC_SYNC_BEGIN:
            node = self.fds.get(r.fd)
            if node is not None:
                self.syncs.setdefault(r.fd, []).append((r.seq, node))
        elif t == PC_SYNC_END:
            waiting = self.syncs.get(r.fd)
            if not waiting:
                return
            begin, node = waiting.pop(0)
            if r.arg != 0:
                return          # a failed fsync promises nothing
            if node.is_dir:
                done = []
                for e in self.ns:
                    if e[0] < begin:
                        e[3].discard(node)
                        if not e[3]:
                            done.append(e)
                for e in done:
                    self.ns.remove(e)
                    self._ns_apply(e[1], e[2])
            else:
                keep = []
                for p in node.pending:
                    if p[0] < begin:
                        apply_data(node.durable, *p[1:])
                    else:
                        keep.append(p)
                node.pending = keep
        elif t == PC_RENAME:
            old, new = bytes(r.data).split(b"\0", 1)
            old, new = old.decode(), new.decode()
            if not old:         # moved in from outside: its bytes are unknown
                self.unknown.append(new)
                node = Inode(0, False, b"")
                self.cur[new] = node
                self._ns(r.seq, "link", (new, node), [new])
            elif not new:
                self.cur.pop(old, None)
                self._ns(r.seq, "unlink", (old,), [old])
            else:
                node = self.cur.pop(old, None)
                if node is not None:
                    self.cur[new] = node
                    self._ns(r.seq, "rename", (old, new, node), [old, new])
        elif t == PC_UNLINK:
            path = bytes(r.data).decode()
            self.cur.pop(path, None)
            self._ns(r.seq, "unlink", (path,), [path])
        elif t == PC_MKDIR:
            path = bytes(r.data).decode()
            node = Inode(r.ino, True, None)
            self.cur[path] = node
            self._ns(r.seq, "link", (path, node), [path])

    def flush_some(self, rng):
        """'some' mode: a random part of what was not synced reaches the disk."""
        k = rng.randint(0, len(self.ns))
        for e in self.ns[:k]:
            self._ns_apply(e[1], e[2])
        seen = set()
        for node in list(self.cur.values()) + list(self.fds.values()):
            if id(node) in seen or node.is_dir:
                continue
            seen.add(id(node))
            for p in node.pending:
                if rng.random() < 0.5:
                    apply_data(node.durable, *p[1:])

    def rebuild(self, old_root, new_root, uid, gid):
        """Write the durable tree (old_root's paths) under new_root; returns
        {relative path: size} of the files written."""
        files = {}
        for path in sorted(self.dur, key=lambda p: (p.count("/"), p)):
            if path != old_root and not path.startswith(old_root + "/"):
                continue
            # a name whose directory did not survive is gone too
            d = os.path.dirname(path)
            if path != old_root and d not in self.dur:
                continue
            rel = os.path.relpath(path, old_root)
            dst = os.path.normpath(os.path.join(new_root, rel))
            node = self.dur[path]
            if node.is_dir:
                os.makedirs(dst, exist_ok=True)
                os.chown(dst, uid, gid)
                continue
            if path.endswith("-shm"):
                continue
            with open(dst, "wb") as f:
                f.write(node.durable)
            os.chown(dst, uid, gid)
            os.chmod(dst, 0o600)
            files[rel] = len(node.durable)
        return files


def cut(base, recs, upto, old_root, new_root, uid, gid, mode="lose", rng=None):
    """The spool after a cut just after record number upto - 1."""
    disk = Disk(base)
    disk.replay(recs[:upto])
    if mode == "some":
        disk.flush_some(rng or random.Random(upto))
    return disk.rebuild(old_root, new_root, uid, gid)
