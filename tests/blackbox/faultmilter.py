#!/usr/bin/python3
"""A milter that does what it is told, on python3-milter (libmilter):
the fault peer of test_milter.py.

    faultmilter.py PLAN.json inet:PORT@127.0.0.1 [--quiet]

PLAN.json is read again at every connection, so a test changes the
behaviour without a restart. It maps a stage (connect, helo, envfrom,
envrcpt, data, header, eoh, body, eom, unknown) to an action:

    "continue", "accept", "reject", "tempfail", "discard", "skip",
    "reply:CODE:XCODE:TEXT"   (setreply, then REJECT or TEMPFAIL by code)
    "die"     the whole process exits at once (a milter that crashes)
    "hang"    never answers (sleeps an hour in that connection's thread)
    "progress:N"  sends N progress notes a second apart, then continues

and "mods" to the changes made at eom, each a list:
    ["addheader", name, value], ["insheader", idx, name, value],
    ["chgheader", name, idx, value], ["replacebody", text],
    ["chgfrom", addr], ["addrcpt", addr], ["delrcpt", addr],
    ["quarantine", reason]

Everything it saw is appended, one JSON line per callback, to
PLAN.json.log: the stage, its arguments, the macros it has and which
connection ("conn").
--quiet: the connect and helo steps are not wanted (SMFIP_NOCONNECT,
SMFIP_NOHELO) and headers, end of headers and body get no reply
(SMFIP_NR_HDR, NR_EOH, NR_BODY).
"""

import itertools
import json
import os
import sys
import threading
import time

import Milter

PLAN = sys.argv[1]
LOCK = threading.Lock()
SERIAL = itertools.count(1)     # a connection's number (id() is reused)
MACROS = ("j", "_", "{daemon_name}", "{if_addr}", "i", "{auth_authen}", "{tls_version}",
          "{cipher}", "{mail_addr}", "{rcpt_addr}", "v")


def log(rec):
    with LOCK, open(PLAN + ".log", "a") as f:
        f.write(json.dumps(rec) + "\n")


class Fault(Milter.Base):
    def __init__(self):
        super().__init__()
        with LOCK:
            self.serial = next(SERIAL)
        try:
            with open(PLAN) as f:
                self.plan = json.load(f)
        except (OSError, ValueError):
            self.plan = {}

    def setsymlist(self, stage, *macros):
        # python3-milter 1.0.5's own passes bytes where its C module wants
        # a str (TypeError, and the whole negotiation falls back)
        return self._ctx.setsymlist(stage, " ".join(macros))

    def macros(self):
        out = {}
        for m in MACROS:
            v = self.getsymval(m)
            if v is not None:
                out[m] = v
        return out

    def act(self, stage, *args):
        log({"stage": stage, "args": [a if isinstance(a, (str, int)) else repr(a) for a in args],
             "macros": self.macros(), "conn": self.serial})
        what = self.plan.get(stage, "continue")
        if what == "die":
            os._exit(3)
        if what == "hang":
            time.sleep(3600)
        if what.startswith("progress:"):
            for _ in range(int(what.split(":")[1])):
                time.sleep(1)
                self.progress()
            return Milter.CONTINUE
        if what.startswith("reply:"):
            _, code, xcode, text = what.split(":", 3)
            self.setreply(code, xcode, text)
            return Milter.TEMPFAIL if code.startswith("4") else Milter.REJECT
        return {"continue": Milter.CONTINUE, "accept": Milter.ACCEPT,
                "reject": Milter.REJECT, "tempfail": Milter.TEMPFAIL,
                "discard": Milter.DISCARD, "skip": Milter.SKIP}[what]

    def connect(self, hostname, family, hostaddr):
        return self.act("connect", hostname, str(hostaddr))

    def hello(self, helo):
        return self.act("helo", helo)

    def envfrom(self, f, *params):
        return self.act("envfrom", f, *params)

    def envrcpt(self, to, *params):
        return self.act("envrcpt", to, *params)

    def data(self):
        return self.act("data")

    def header(self, name, value):
        return self.act("header", name, value)

    def eoh(self):
        return self.act("eoh")

    def body(self, chunk):
        return self.act("body", len(chunk), chunk[:200].decode("utf-8", "replace"))

    def unknown(self, cmd):
        return self.act("unknown", cmd if isinstance(cmd, str) else cmd.decode())

    def abort(self):
        log({"stage": "abort", "args": [], "macros": {}, "conn": self.serial})
        return Milter.CONTINUE

    def close(self):
        log({"stage": "close", "args": [], "macros": {}, "conn": self.serial})
        return Milter.CONTINUE

    def eom(self):
        for m in self.plan.get("mods", []):
            op, args = m[0], m[1:]
            if op == "replacebody":
                self.replacebody(args[0].encode())
            elif op == "insheader":     # smfi_insheader: addheader with an index
                self.addheader(args[1], args[2], args[0])
            else:
                getattr(self, op)(*args)
        return self.act("eom")


class Quiet(Fault):
    """The same, asking for fewer steps and replies, and for only
    {mail_addr} at MAIL (SMFIR_SETSYMLIST)."""

    @Milter.symlist("{mail_addr}")
    def envfrom(self, f, *params):
        return self.act("envfrom", f, *params)

    @Milter.nocallback
    def connect(self, hostname, family, hostaddr):
        return Milter.CONTINUE

    @Milter.nocallback
    def hello(self, helo):
        return Milter.CONTINUE

    @Milter.noreply
    def header(self, name, value):
        self.act("header", name, value)
        return Milter.CONTINUE

    @Milter.noreply
    def eoh(self):
        self.act("eoh")
        return Milter.CONTINUE

    @Milter.noreply
    def body(self, chunk):
        self.act("body", len(chunk), chunk[:200].decode("utf-8", "replace"))
        return Milter.CONTINUE


def main():
    Milter.factory = Quiet if "--quiet" in sys.argv else Fault
    Milter.set_flags(Milter.ADDHDRS | Milter.CHGHDRS | Milter.CHGBODY | Milter.ADDRCPT |
                     Milter.DELRCPT | Milter.CHGFROM | Milter.QUARANTINE | Milter.SETSYMLIST)
    sys.stdout.write("faultmilter ready\n")
    sys.stdout.flush()
    Milter.runmilter("faultmilter", sys.argv[2], 600)


if __name__ == "__main__":
    main()
