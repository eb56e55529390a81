"""A tiny DNS server on 127.0.0.1 (UDP) whose behaviour the test switches
while ternd runs: mode "ok" answers MX and A from its tables (TTL 0,
AAAA empty, other names NXDOMAIN), "timeout" never answers, "servfail"
answers SERVFAIL. Standard library only; ternd reaches it through
dns_resolver = 127.0.0.1@PORT (libunbound's forwarder)."""

import socket
import struct
import threading


class DnsStub:
    def __init__(self, mx, a):
        self.mx = {k.lower().rstrip("."): v for k, v in mx.items()}
        self.a = {k.lower().rstrip("."): v for k, v in a.items()}
        self.mode = "ok"
        self.queries = 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    @staticmethod
    def _name(data, pos):
        labels = []
        while data[pos]:
            n = data[pos]
            labels.append(data[pos + 1:pos + 1 + n].decode("ascii", "replace"))
            pos += 1 + n
        return ".".join(labels), pos + 1

    @staticmethod
    def _encode(name):
        return b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\0"

    def _answer(self, data):
        qid, flags = struct.unpack(">HH", data[:4])
        name, pos = self._name(data, 12)
        qtype, _qclass = struct.unpack(">HH", data[pos:pos + 4])
        question = data[12:pos + 4]
        key = name.lower().rstrip(".")
        rd = flags & 0x0100
        if self.mode == "servfail":
            return struct.pack(">HHHHHH", qid, 0x8000 | rd | 0x80 | 2, 1, 0, 0, 0) + question
        answers = []
        known = key in self.mx or key in self.a
        if qtype == 15 and key in self.mx:
            answers.append((15, struct.pack(">H", 10) + self._encode(self.mx[key])))
        elif qtype == 1 and key in self.a:
            answers.append((1, socket.inet_aton(self.a[key])))
        rcode = 0 if known else 3
        out = struct.pack(">HHHHHH", qid, 0x8000 | 0x0400 | rd | 0x80 | rcode, 1,
                          len(answers), 0, 0) + question
        for typ, rdata in answers:
            out += b"\xc0\x0c" + struct.pack(">HHIH", typ, 1, 0, len(rdata)) + rdata
        return out

    def _run(self):
        while not self.stopping.is_set():
            try:
                data, peer = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            self.queries += 1
            if self.mode == "timeout":
                continue
            try:
                self.sock.sendto(self._answer(data), peer)
            except (OSError, IndexError, struct.error):
                pass

    def stop(self):
        self.stopping.set()
        self.thread.join(5)
        self.sock.close()
