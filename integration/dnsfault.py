"""A DNS proxy on 127.0.0.1 that injects faults on command (used by integration/soak.py).

Queries over UDP and TCP go to an upstream server (NSD) unless a fault mode is set:

  pass       forward (the default)
  drop       never answer (the resolver times out)
  servfail   answer SERVFAIL at once
  delay      forward after `delay` seconds (below the resolver's time-out: slow, not failed)
  late       forward after `late` seconds (past the time-out: the answer comes too late)
  truncate   answer UDP with the TC bit and no records, so the resolver retries over TCP
             (TCP is forwarded)
  garbage    answer with the query's id followed by bytes that are not a DNS message

Use: p = FaultProxy(upstream_port); p.start(); p.port; p.set_mode("drop"); p.stats().
Runs in a daemon thread; only loopback addresses are used.
"""

import heapq
import os
import select
import socket
import struct
import threading
import time

MODES = ("pass", "drop", "servfail", "delay", "late", "truncate", "garbage")


def _question_end(q):
    """Offset just past the question section of query q (12-byte header, one question)."""
    i = 12
    while i < len(q):
        n = q[i]
        if n == 0:
            return i + 1 + 4
        if n & 0xC0:
            return i + 2 + 4
        i += 1 + n
    return len(q)


def servfail(q):
    """A SERVFAIL answer to query q: same id, opcode and RD, the question echoed."""
    if len(q) < 12:
        return None
    flags = struct.unpack("!H", q[2:4])[0]
    out_flags = 0x8000 | (flags & 0x7900) | 0x0080 | 2  # QR, opcode, RD; RA; rcode 2
    return q[:2] + struct.pack("!HHHHH", out_flags, 1, 0, 0, 0) + q[12:_question_end(q)]


def truncated(q):
    """An empty answer with TC set: the resolver must ask again over TCP."""
    if len(q) < 12:
        return None
    flags = struct.unpack("!H", q[2:4])[0]
    out_flags = 0x8000 | (flags & 0x7900) | 0x0200 | 0x0080
    return q[:2] + struct.pack("!HHHHH", out_flags, 1, 0, 0, 0) + q[12:_question_end(q)]


def garbage(q):
    return q[:2] + b"\xff" * 3 + os.urandom(13)


class FaultProxy(threading.Thread):
    def __init__(self, upstream_port, delay=1.0, late=3.0):
        super().__init__(daemon=True)
        self.upstream = ("127.0.0.1", upstream_port)
        self.delay, self.late = delay, late
        self.mode = "pass"
        self.lock = threading.Lock()
        self.counts = {}  # (mode, "udp"|"tcp") -> queries
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        for _ in range(100):
            self.udp.bind(("127.0.0.1", 0))
            self.port = self.udp.getsockname()[1]
            try:
                self.tcp.bind(("127.0.0.1", self.port))
                break
            except OSError:
                self.udp.close()
                self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.tcp.listen(64)
        self.up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.up.connect(self.upstream)
        self.pending = {}  # our id -> (client address, its id, time)
        self.next_id = 0
        self.timers = []  # heap of (due, seq, query, client address)
        self.seq = 0

    def set_mode(self, mode):
        if mode not in MODES:
            raise ValueError(mode)
        with self.lock:
            self.mode = mode

    def stats(self):
        with self.lock:
            return dict(self.counts)

    def _count(self, mode, proto):
        with self.lock:
            self.counts[(mode, proto)] = self.counts.get((mode, proto), 0) + 1

    def _forward(self, q, addr):
        self.next_id = (self.next_id + 1) & 0xFFFF
        self.pending[self.next_id] = (addr, q[:2], time.monotonic())
        self.up.send(struct.pack("!H", self.next_id) + q[2:])

    def run(self):
        while True:
            now = time.monotonic()
            wait = max(0.0, self.timers[0][0] - now) if self.timers else 1.0
            ready, _, _ = select.select([self.udp, self.tcp, self.up], [], [], min(wait, 1.0))
            for s in ready:
                if s is self.udp:
                    q, addr = self.udp.recvfrom(65535)
                    self._udp_query(q, addr)
                elif s is self.up:
                    try:
                        a = self.up.recv(65535)
                    except OSError:
                        continue
                    if len(a) < 2:
                        continue
                    entry = self.pending.pop(struct.unpack("!H", a[:2])[0], None)
                    if entry:
                        self.udp.sendto(entry[1] + a[2:], entry[0])
                else:
                    conn, _ = self.tcp.accept()
                    threading.Thread(target=self._tcp_client, args=(conn,), daemon=True).start()
            now = time.monotonic()
            while self.timers and self.timers[0][0] <= now:
                _, _, q, addr = heapq.heappop(self.timers)
                self._forward(q, addr)
            for k in [k for k, v in self.pending.items() if now - v[2] > 10]:
                del self.pending[k]

    def _udp_query(self, q, addr):
        mode = self.mode
        self._count(mode, "udp")
        if len(q) < 12 or mode == "drop":
            return
        if mode == "pass":
            self._forward(q, addr)
        elif mode in ("delay", "late"):
            self.seq += 1
            due = time.monotonic() + (self.delay if mode == "delay" else self.late)
            heapq.heappush(self.timers, (due, self.seq, q, addr))
        else:
            answer = {"servfail": servfail, "truncate": truncated, "garbage": garbage}[mode](q)
            if answer:
                self.udp.sendto(answer, addr)

    def _tcp_client(self, conn):
        """One TCP client: each query gets the fault of the moment; idle 5 s closes it."""
        up = None
        conn.settimeout(5)
        try:
            while True:
                head = self._recv_exact(conn, 2)
                if head is None:
                    return
                q = self._recv_exact(conn, struct.unpack("!H", head)[0])
                if q is None or len(q) < 12:
                    return
                mode = self.mode
                self._count(mode, "tcp")
                if mode == "drop":
                    continue
                if mode == "servfail":
                    a = servfail(q)
                elif mode == "garbage":
                    a = garbage(q)
                else:
                    if mode in ("delay", "late"):
                        time.sleep(self.delay if mode == "delay" else self.late)
                    if up is None:
                        up = socket.create_connection(self.upstream, 5)
                    up.sendall(head + q)
                    h = self._recv_exact(up, 2)
                    a = self._recv_exact(up, struct.unpack("!H", h)[0]) if h else None
                    if a is None:
                        return
                conn.sendall(struct.pack("!H", len(a)) + a)
        except OSError:
            return
        finally:
            conn.close()
            if up is not None:
                up.close()

    @staticmethod
    def _recv_exact(s, n):
        buf = b""
        while len(buf) < n:
            chunk = s.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return buf
