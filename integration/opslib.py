"""Shared helpers of the operations checks (integration/metrics.py, integration/interop.py).

Test data is made here, independently of spoofguard: DKIM keys by dknewkey, signatures by
dkimpy, the DNS zone as plain master-file text. Everything goes under a work directory that
the caller creates; processes started here are stopped by PID (see Procs).

Run with Debian's /usr/bin/python3: python3-dkim, python3-nacl, python3-authres and
python3-prometheus-client are Debian packages.
"""

import os
import signal
import socket
import subprocess
import time

import pydeps

dkim = pydeps.need("dkim")
pydeps.need("nacl")  # dkimpy's Ed25519

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIGNED = [b"From", b"To", b"Subject", b"Date", b"Message-ID"]

class Tally:
    """PASS/FAIL lines and the closing "N passed, N failed" count of one script."""

    def __init__(self):
        self.passed = self.failed = 0

    def check(self, name, ok, detail=""):
        if ok:
            self.passed += 1
            print("PASS", name)
        else:
            self.failed += 1
            print("FAIL", name, detail)

    def finish(self):
        print("%d passed, %d failed" % (self.passed, self.failed))
        return 1 if self.failed else 0


# Addresses: documentation ranges only (RFC 5737).
IP_SENDER = "192.0.2.10"
IP_FOREIGN = "198.51.100.66"


def spoofguard_bin():
    return os.environ.get("SPOOFGUARD_BIN") or os.path.join(ROOT, "target/release/spoofguard")


def milter_load_bin():
    return os.environ.get("MILTER_LOAD_BIN") or os.path.join(
        ROOT, "target/release/examples/milter_load")


def free_port(udp_too=False):
    """A port free on 127.0.0.1 for TCP (and UDP when udp_too)."""
    for _ in range(100):
        t = socket.socket()
        t.bind(("127.0.0.1", 0))
        port = t.getsockname()[1]
        try:
            if udp_too:
                u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                try:
                    u.bind(("127.0.0.1", port))
                except OSError:
                    continue
                finally:
                    u.close()
            return port
        finally:
            t.close()
    raise RuntimeError("no free port")


def wait_tcp(port, proc, secs=20):
    """Waits until 127.0.0.1:port accepts; fails early if proc exited."""
    deadline = time.time() + secs
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("process exited with %s before port %d opened" % (proc.returncode, port))
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("port %d not open after %ds" % (port, secs))


class Procs:
    """Processes started by a check; stop_all() ends each one by its PID."""

    def __init__(self):
        self.procs = []

    def start(self, args, log_path):
        log = open(log_path, "wb")
        p = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.procs.append(p)
        return p

    def stop(self, p):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def stop_all(self):
        for p in reversed(self.procs):
            self.stop(p)


def make_keys(work):
    """RSA-2048 and Ed25519 keys with dknewkey; returns {name: (private_pem, dns_text)}."""
    keys = os.path.join(work, "keys")
    os.makedirs(keys, exist_ok=True)
    out = {}
    for name, ktype in (("rsa", "rsa"), ("ed", "ed25519")):
        if not os.path.exists(os.path.join(keys, name + ".key")):
            subprocess.run(["dknewkey", "--ktype", ktype, name], cwd=keys, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with open(os.path.join(keys, name + ".key"), "rb") as f:
            private = f.read()
        with open(os.path.join(keys, name + ".dns")) as f:
            dns = f.read().strip()
        out[name] = (private, dns)
    return out


def _txt(text):
    chunks = [text[i:i + 250] for i in range(0, len(text), 250)]
    return " ".join('"%s"' % c for c in chunks)


def zone_text(keys):
    """The root zone: every test name under .example, authoritative NXDOMAIN for the rest."""
    lines = [
        "$ORIGIN .",
        "$TTL 300",
        ". IN SOA ns.example. hostmaster.example. 1 3600 600 86400 60",
        ". IN NS ns.example.",
        "ns.example. IN A 127.0.0.1",
        'sender.example. IN TXT "v=spf1 ip4:%s -all"' % IP_SENDER,
        'mail.sender.example. IN A %s' % IP_SENDER,
        '_dmarc.sender.example. IN TXT "v=DMARC1; p=reject"',
        'quarantine.example. IN TXT "v=spf1 ip4:192.0.2.20 -all"',
        '_dmarc.quarantine.example. IN TXT "v=DMARC1; p=quarantine"',
        # A third party (an ESP, a mailing list) that adds its own signature.
        'esp.example. IN TXT "v=spf1 -all"',
        "norecords.example. IN A 192.0.2.99",
    ]
    for domain in ("sender.example", "quarantine.example", "esp.example"):
        for sel in ("rsa", "ed"):
            lines.append("%s._domainkey.%s. IN TXT %s" % (sel, domain, _txt(keys[sel][1])))
    return "\n".join(lines) + "\n"


def message(from_addr, subject, body="Hello,\r\nthis is a test message.\r\n", msgid="1"):
    return ("From: Alice <%s>\r\n"
            "To: Bob <bob@rcpt.example>\r\n"
            "Subject: %s\r\n"
            "Date: Mon, 24 Nov 2025 10:00:00 +0000\r\n"
            "Message-ID: <%s@test.example>\r\n"
            "MIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n"
            "\r\n%s" % (from_addr, subject, msgid, body)).encode()


def sign(raw, keys, domain, sel):
    """raw with a DKIM-Signature by dkimpy (relaxed/relaxed) prepended."""
    algo = b"ed25519-sha256" if sel == "ed" else b"rsa-sha256"
    sig = dkim.sign(raw, sel.encode(), domain.encode(), keys[sel][0], include_headers=SIGNED,
                    canonicalize=(b"relaxed", b"relaxed"), signature_algorithm=algo)
    return sig + raw


def b_prefix(signed):
    """The first 8 characters of the b= tag of the first DKIM-Signature (RFC 6008)."""
    head = signed.split(b"\r\n\r\n", 1)[0].decode()
    text = head.replace("\r\n", "").replace("\t", "").replace(" ", "")
    for part in text.split(";"):
        if part.startswith("b="):
            return part[2:10]
    raise ValueError("no b= tag")


def start_nsd(work, zone, procs):
    """An NSD serving `zone` as the root on a free 127.0.0.1 port; returns the port.

    The configuration is integration/lib.sh's (`nsd-exec` writes it and execs NSD, so the
    process in `procs` is NSD itself), the one the shell scripts use too.
    """
    d = os.path.join(work, "nsd")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "root.zone"), "w") as f:
        f.write(zone)
    port = free_port(udp_too=True)
    p = procs.start(["bash", os.path.join(ROOT, "integration/lib.sh"), "nsd-exec", d, d, str(port)],
                    os.path.join(work, "nsd.log"))
    wait_tcp(port, p)
    return port
