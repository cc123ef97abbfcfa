#!/usr/bin/python3
"""Test data for benches/run-milter-bench.sh (run with Debian's python3 + python3-dkim).

  gen.py WORK   reads WORK/keys/rsa2048.{key,dns} (made by dknewkey) and writes
    WORK/zone/root.zone   the root zone NSD serves: sender.example with SPF, DKIM, DMARC p=reject
    WORK/msg/msg10k.eml   a ~10 kB text+HTML message, DKIM-signed (RSA-2048, relaxed/relaxed)
    WORK/msg/msg3k.eml    a ~3 kB one, same signer
    WORK/msg/big.eml      a ~20 MB unsigned message (for the max_message_bytes check)
Names are under .example: Debian's OpenDKIM (libunbound) answers NXDOMAIN for .test itself.
"""

import os
import sys

import dkim

WORK = sys.argv[1]
SIGNED = [b"From", b"To", b"Subject", b"Date", b"Message-ID", b"MIME-Version", b"Content-Type"]


def read(path):
    with open(path, "rb") as f:
        return f.read()


def txt(text):
    parts = [text[i:i + 250] for i in range(0, len(text), 250)]
    return "( " + " ".join('"%s"' % p for p in parts) + " )"


def zone():
    key = read(os.path.join(WORK, "keys", "rsa2048.dns")).decode().strip()
    return f"""$ORIGIN .
$TTL 3600
.                       IN SOA  ns.example. hostmaster.example. 1 3600 600 86400 300
.                       IN NS   ns.example.
ns.example.             IN A    127.0.0.1
sender.example.                     IN TXT "v=spf1 ip4:192.0.2.10 -all"
sender.example.                     IN MX  10 mail.sender.example.
mail.sender.example.                IN A   192.0.2.10
rsa2048._domainkey.sender.example.  IN TXT {txt(key)}
_dmarc.sender.example.              IN TXT "v=DMARC1; p=reject; rua=mailto:dmarc@sender.example"
rcpt.example.                       IN MX  10 mx.rcpt.example.
mx.rcpt.example.                    IN A   192.0.2.50
"""


def message(size, tag):
    html_line = ("<p>Dear customer, your quarterly statement is ready. Please review the "
                 "attached figures before the meeting.</p>\r\n")
    text_line = ("Dear customer, your quarterly statement is ready. Please review the "
                 "figures before the meeting on Thursday.\r\n")
    head = "\r\n".join([
        "Received: from mail.sender.example (mail.sender.example [192.0.2.10])\r\n"
        "\tby mx.rcpt.example with ESMTPS id 4Xy7Kp2QzRz1ab; Mon, 04 May 2026 10:00:01 +0000",
        "From: Alice Example <alice@sender.example>",
        "To: Bob Example <bob@rcpt.example>",
        "Subject: Your quarterly statement (" + tag + ")",
        "Date: Mon, 04 May 2026 10:00:00 +0000",
        "Message-ID: <" + tag + ".20260504100000@sender.example>",
        "MIME-Version: 1.0",
        'Content-Type: multipart/alternative; boundary="b1_' + tag + '"',
    ]) + "\r\n\r\n"
    text, html = "", ""
    half = max(0, (size - 1400) // 2)
    while len(text) < half:
        text += text_line
    while len(html) < half:
        html += html_line
    body = ("--b1_{t}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}"
            "See https://www.sender.example/statements/2026-q1\r\n\r\n"
            "--b1_{t}\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<html><body>\r\n{html}"
            '<p><a href="https://www.sender.example/statements/2026-q1">Open the statement</a>'
            "</p>\r\n</body></html>\r\n\r\n--b1_{t}--\r\n").format(t=tag, text=text, html=html)
    msg = (head + body).encode()
    sig = dkim.sign(msg, b"rsa2048", b"sender.example",
                    read(os.path.join(WORK, "keys", "rsa2048.key")),
                    canonicalize=(b"relaxed", b"relaxed"), include_headers=SIGNED)
    return sig + msg


def big(size):
    line = b"0123456789 abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789 x\r\n"
    head = (b"From: Alice Example <alice@sender.example>\r\nTo: bob@rcpt.example\r\n"
            b"Subject: big\r\nDate: Mon, 04 May 2026 10:00:00 +0000\r\n"
            b"Message-ID: <big@sender.example>\r\n\r\n")
    return head + line * (size // len(line))


os.makedirs(os.path.join(WORK, "zone"), exist_ok=True)
os.makedirs(os.path.join(WORK, "msg"), exist_ok=True)
with open(os.path.join(WORK, "zone", "root.zone"), "w") as f:
    f.write(zone())
for name, size in (("msg10k", 10240), ("msg3k", 3072)):
    data = message(size, name)
    with open(os.path.join(WORK, "msg", name + ".eml"), "wb") as f:
        f.write(data)
    print(f"{name}.eml: {len(data)} bytes")
with open(os.path.join(WORK, "msg", "big.eml"), "wb") as f:
    f.write(big(20 * 1024 * 1024))
