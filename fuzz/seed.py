#!/usr/bin/env python3
"""Seeds the fuzz corpora from the test fixtures: .eml files for `message`, milter.toml files
for `config`, evaluation domains for `domain`, and whole milter sessions (as an MTA would send
them) built from the .eml files for `milter`. Writes fuzz/corpus/<target>/."""
import os, struct, sys

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
out = os.path.join(root, "fuzz", "corpus")
fx = os.path.join(root, "tests", "fixtures")

def put(target, name, data):
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)

def pkt(cmd, payload=b""):
    body = cmd + payload
    return struct.pack(">I", len(body)) + body

def session(raw):
    """OPTNEG, connect, HELO, one message split into milter commands, QUIT."""
    raw = raw.replace(b"\r\n", b"\n")
    head, _, body = raw.partition(b"\n\n")
    s = pkt(b"O", struct.pack(">III", 6, 0x1FF, 0x1FFFFF))
    s += pkt(b"D", b"C" + b"j\0mx.fuzz.example\0")
    s += pkt(b"C", b"client.example\0" + b"4" + struct.pack(">H", 25) + b"192.0.2.10\0")
    s += pkt(b"H", b"mail.sender.example\0")
    s += pkt(b"D", b"M" + b"i\0FUZZ1\0")
    s += pkt(b"M", b"<alice@sender.example>\0")
    s += pkt(b"R", b"<bob@rcpt.example>\0")
    s += pkt(b"T")
    fields = []
    for line in head.split(b"\n"):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] = (fields[-1][0], fields[-1][1] + b"\n" + line)
        elif b":" in line:
            n, v = line.split(b":", 1)
            fields.append((n, v))
    for n, v in fields:
        s += pkt(b"L", n.replace(b"\0", b"") + b"\0" + v.replace(b"\0", b"") + b"\0")
    s += pkt(b"N")
    body = body.replace(b"\n", b"\r\n")
    for i in range(0, len(body), 65535):
        s += pkt(b"B", body[i:i + 65535])
    s += pkt(b"E")
    s += pkt(b"A")
    s += pkt(b"Q")
    return s

emls = sorted(f for f in os.listdir(os.path.join(fx, "eml")) if f.endswith(".eml"))
for f in emls:
    data = open(os.path.join(fx, "eml", f), "rb").read()
    put("message", f, data)
    put("milter", f + ".session", session(data))
for sub in ("valid", "invalid"):
    for f in sorted(os.listdir(os.path.join(fx, "config", sub))):
        put("config", sub + "-" + f, open(os.path.join(fx, "config", sub, f), "rb").read())
put("config", "milter.toml", open(os.path.join(root, "milter.toml"), "rb").read())
n = 0
for d in ("positives", "negatives"):
    base = os.path.join(root, "tests", "eval", d)
    if not os.path.isdir(base):
        continue
    for f in sorted(os.listdir(base)):
        for line in open(os.path.join(base, f), encoding="utf-8", errors="replace").read().split("\n")[:40]:
            line = line.strip()
            if line and not line.startswith("#"):
                put("domain", "%05d" % n, line.split()[0].encode())
                n += 1
print("seeded", out, file=sys.stderr)
