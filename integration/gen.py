#!/usr/bin/python3
"""Generate the per-run test data of integration/run.sh.

Reads the DKIM keys made by dknewkey in WORK/keys, then writes:
  WORK/zone/root.zone   the root zone "." that NSD serves (every test domain under .example)
  WORK/msg/NAME.eml     each test message, signed by dkimpy (independent of spoofguard)
  WORK/msg/NAME.lua     the same message as a Lua table for integration/miltertest/common.lua

Signing: relaxed/relaxed, h=From:To:Subject:Date:Message-ID. Run with Debian's
/usr/bin/python3 so that python3-dkim and python3-nacl are importable.
"""

import base64
import os
import re
import sys

import pydeps

dkim = pydeps.need("dkim")
pydeps.need("nacl")  # dkimpy's Ed25519

SIGNED_HEADERS = [b"From", b"To", b"Subject", b"Date", b"Message-ID"]


def read(path):
    with open(path, "rb") as f:
        return f.read()


def dns_txt(path):
    """The TXT record text dknewkey wrote, as zone-file character-strings (<=255 each)."""
    text = read(path).decode().strip()
    chunks = [text[i:i + 250] for i in range(0, len(text), 250)]
    return "( " + " ".join('"%s"' % c for c in chunks) + " )"


def zone(keys):
    rsa = dns_txt(os.path.join(keys, "rsa2048.dns"))
    ed = dns_txt(os.path.join(keys, "ed.dns"))
    return f"""$ORIGIN .
$TTL 300
.                       IN SOA  ns.example. hostmaster.example. 1 3600 600 86400 60
.                       IN NS   ns.example.
ns.example.             IN A    127.0.0.1

; sender.example: SPF, DKIM (rsa2048 and ed), DMARC p=reject
sender.example.                     IN TXT "v=spf1 ip4:192.0.2.10 -all"
mail.sender.example.                IN A   192.0.2.10
rsa2048._domainkey.sender.example.  IN TXT {rsa}
ed._domainkey.sender.example.       IN TXT {ed}
_dmarc.sender.example.              IN TXT "v=DMARC1; p=reject"

; quarantine.example: only 192.0.2.20 may send, DMARC p=quarantine
quarantine.example.                 IN TXT "v=spf1 ip4:192.0.2.20 -all"
_dmarc.quarantine.example.          IN TXT "v=DMARC1; p=quarantine"

; none.example: DMARC p=none
none.example.                       IN TXT "v=spf1 ip4:192.0.2.30 -all"
_dmarc.none.example.                IN TXT "v=DMARC1; p=none"

; norecords.example: exists, but has no SPF, DKIM or DMARC
norecords.example.                  IN A   192.0.2.99

; a lookalike brand domain with valid authentication of its own
microsoft-securityprotection-support.example.                     IN TXT "v=spf1 ip4:192.0.2.40 -all"
mail.microsoft-securityprotection-support.example.                IN A   192.0.2.40
rsa2048._domainkey.microsoft-securityprotection-support.example.  IN TXT {rsa}
_dmarc.microsoft-securityprotection-support.example.              IN TXT "v=DMARC1; p=reject"
"""


def message(from_, to, subject, msgid, body, extra_headers=(),
            content_type="text/plain; charset=us-ascii"):
    """An RFC 5322 message with CRLF line ends; extra headers go first (above From)."""
    lines = list(extra_headers) + [
        "From: " + from_,
        "To: " + to,
        "Subject: " + subject,
        "Date: Mon, 04 May 2026 10:00:00 +0000",
        "Message-ID: <" + msgid + ">",
        "MIME-Version: 1.0",
        "Content-Type: " + content_type,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


def sign(msg, domain, selector, keyfile, algo):
    sig = dkim.sign(msg, selector.encode(), domain.encode(), read(keyfile),
                    canonicalize=(b"relaxed", b"relaxed"),
                    signature_algorithm=algo.encode(),
                    include_headers=SIGNED_HEADERS)
    return sig + msg


def b_prefix(signed):
    """First 8 characters of the first DKIM-Signature's b= value (folding whitespace removed)."""
    head = signed.split(b"\r\n\r\n", 1)[0].decode()
    m = re.search(r"DKIM-Signature:.*?\bb=([^;]*)", head, re.S | re.I)
    return re.sub(r"\s+", "", m.group(1))[:8] if m else ""


def lua_str(b):
    out = []
    for ch in b:
        c = chr(ch)
        if c == "\\":
            out.append("\\\\")
        elif c == '"':
            out.append('\\"')
        elif c == "\n":
            out.append("\\n")
        elif c == "\r":
            out.append("\\r")
        elif c == "\t":
            out.append("\\t")
        elif 32 <= ch < 127:
            out.append(c)
        else:
            out.append("\\%03d" % ch)
    return '"' + "".join(out) + '"'


def to_lua(raw):
    """Split a CRLF message the way an MTA hands it to a milter.

    Header values: the text after the colon, folded lines joined with LF (as Postfix does),
    minus one leading space, because miltertest itself puts one space back when the filter
    negotiated SMFIP_HDR_LEADSPC. The body is sent as it is, with CRLF line ends.
    """
    head, body = raw.split(b"\r\n\r\n", 1)
    fields = []
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t"):
            name, value = fields[-1]
            fields[-1] = (name, value + b"\n" + line)
        else:
            name, value = line.split(b":", 1)
            fields.append((name, value))
    out = ["return {", "  headers = {"]
    for name, value in fields:
        if value.startswith(b" "):
            value = value[1:]
        out.append("    { %s, %s }," % (lua_str(name), lua_str(value)))
    out.append("  },")
    out.append("  body = %s," % lua_str(body))
    out.append("  b8 = %s," % lua_str(b_prefix(raw).encode()))
    out.append("}")
    return "\n".join(out) + "\n"


def main():
    work = sys.argv[1]
    keys = os.path.join(work, "keys")
    msgdir = os.path.join(work, "msg")
    zonedir = os.path.join(work, "zone")
    os.makedirs(msgdir, exist_ok=True)
    os.makedirs(zonedir, exist_ok=True)
    with open(os.path.join(zonedir, "root.zone"), "w") as f:
        f.write(zone(keys))

    rsa_key = os.path.join(keys, "rsa2048.key")
    ed_key = os.path.join(keys, "ed.key")
    body = "Hello Bob,\r\n\r\nthe quarterly report is attached.\r\n\r\nAlice\r\n"
    alice = "Alice Example <alice@sender.example>"
    msgs = {}

    base = message(alice, "bob@rcpt.example", "Quarterly report", "rsa-pass@sender.example", body)
    msgs["rsa_pass"] = sign(base, "sender.example", "rsa2048", rsa_key, "rsa-sha256")

    base = message(alice, "bob@rcpt.example", "Quarterly report (ed25519)", "ed-pass@sender.example", body)
    msgs["ed_pass"] = sign(base, "sender.example", "ed", ed_key, "ed25519-sha256")

    msgs["spoof_unsigned"] = message("CEO <ceo@sender.example>", "bob@rcpt.example",
                                     "Urgent wire transfer", "spoof@attacker.example",
                                     "Please wire 10,000 EUR today.\r\n")

    msgs["quarantine_fail"] = message("Billing <billing@quarantine.example>", "bob@rcpt.example",
                                      "Your invoice", "q-fail@attacker.example",
                                      "Invoice attached.\r\n")

    # Forged results: ours at Authentication-Results index 1 and 3, a foreign one at 2,
    # and a forged X-Spoofguard-Verdict. None of them is covered by the signature.
    forged = [
        "Authentication-Results: mx.spoofguard.test; dkim=pass header.d=sender.example",
        "Authentication-Results: mx.other.example; spf=pass smtp.mailfrom=alice@sender.example",
        "Authentication-Results: mx.spoofguard.test;\r\n\tspf=pass smtp.mailfrom=alice@sender.example;\r\n\tdmarc=pass header.from=sender.example",
        "X-Spoofguard-Verdict: accept",
    ]
    base = message(alice, "bob@rcpt.example", "Quarterly report (forged results)",
                   "forged-ar@sender.example", body, forged)
    msgs["forged_ar"] = sign(base, "sender.example", "rsa2048", rsa_key, "rsa-sha256")

    base = message(alice, "bob@rcpt.example", "Quarterly report (altered)",
                   "altered@sender.example", body)
    signed = sign(base, "sender.example", "rsa2048", rsa_key, "rsa-sha256")
    msgs["body_altered"] = signed.replace(b"quarterly report", b"new bank account")

    msgs["none_unsigned"] = message("Newsletter <news@none.example>", "bob@rcpt.example",
                                    "News", "news@none.example", "Some news.\r\n")

    msgs["norecords"] = message("Info <info@norecords.example>", "bob@rcpt.example",
                                "Hello", "hello@norecords.example", "Hello.\r\n")

    base = message("Microsoft Account Team <security@microsoft-securityprotection-support.example>",
                   "bob@rcpt.example", "Unusual sign-in activity", "lookalike@msps.example",
                   "Verify your account: https://microsoft-securityprotection-support.example/login\r\n")
    msgs["lookalike"] = sign(base, "microsoft-securityprotection-support.example", "rsa2048",
                             rsa_key, "rsa-sha256")

    # --- messages of the Postfix phase (integration/postfix.sh), sent with swaks ---

    # Brand phish: a Japanese "Microsoft security team" display name (RFC 2047 encoded-word),
    # the lookalike domain with valid SPF, DKIM and DMARC of its own, and HTML links whose
    # anchor text shows https://account.microsoft.com while the href goes elsewhere.
    brand = "日本マイクロソフトセキュリティチーム"
    display = "=?UTF-8?B?" + base64.b64encode(brand.encode()).decode() + "?="
    d = "microsoft-securityprotection-support.example"
    html = ("<html><body>\r\n"
            "<p>Unusual sign-in activity was detected on your Microsoft account.</p>\r\n"
            '<p>Verify your account: <a href="https://%s/verify">'
            "https://account.microsoft.com</a></p>\r\n"
            '<p>Or sign in here: <a href="https://warning-securityteam-microsoft.example/login">'
            "https://account.microsoft.com</a></p>\r\n"
            "</body></html>\r\n") % d
    base = message(display + " <security@" + d + ">", "bob@rcpt.example",
                   "Unusual sign-in activity", "brand-phish@" + d, html,
                   content_type="text/html; charset=us-ascii")
    msgs["brand_phish"] = sign(base, d, "rsa2048", rsa_key, "rsa-sha256")

    # Forged results arriving over SMTP: ours, a forged verdict and score (all to be removed)
    # and a foreign Authentication-Results (to be kept). Not covered by the signature.
    forged = [
        "Authentication-Results: mx.spoofguard.test; dkim=pass header.d=sender.example",
        "X-Spoofguard-Verdict: accept",
        "X-Spoofguard-Score: -5",
        "Authentication-Results: other.example; spf=pass smtp.mailfrom=alice@sender.example",
    ]
    base = message(alice, "bob@rcpt.example", "Quarterly report (forged over SMTP)",
                   "pf-forged@sender.example", body, forged)
    msgs["pf_forged"] = sign(base, "sender.example", "rsa2048", rsa_key, "rsa-sha256")

    # Forged results in other spellings: no space after the colon, another case, the
    # authserv-id on a folded line, lower-case header names. All are ours and must go; an
    # authserv-id that only starts with ours is another one and stays.
    forged = [
        "Authentication-Results:mx.spoofguard.test; dkim=pass header.d=sender.example",
        "Authentication-Results: MX.SpoofGuard.TEST; spf=pass smtp.mailfrom=alice@sender.example",
        "Authentication-Results:\r\n\tmx.spoofguard.test;\r\n\tdmarc=pass header.from=sender.example",
        "x-spoofguard-verdict: accept",
        "X-SPOOFGUARD-REASONS:none",
        "Authentication-Results: mx.spoofguard.test.other.example; dkim=pass header.d=sender.example",
    ]
    base = message(alice, "bob@rcpt.example", "Quarterly report (forged, other spellings)",
                   "pf-forged2@sender.example", body, forged)
    msgs["pf_forged2"] = sign(base, "sender.example", "rsa2048", rsa_key, "rsa-sha256")

    # A large signed message: Postfix hands the body to the milter in several chunks.
    line = "The quarterly numbers, line %06d: 0123456789 abcdefghij ABCDEFGHIJ.\r\n"
    big = "".join(line % i for i in range(5000))
    base = message(alice, "bob@rcpt.example", "Quarterly report (large)",
                   "large@sender.example", big)
    msgs["pf_large"] = sign(base, "sender.example", "rsa2048", rsa_key, "rsa-sha256")

    # A domain whose DNS queries are dropped inside the test namespace (DNS timeout).
    msgs["slowdns"] = message("Slow <info@slowdns.example>", "bob@rcpt.example",
                              "Slow DNS", "slow@slowdns.example", "Hello.\r\n")

    # Self-check: the signer's own verifier must accept every signature, except the altered body.
    txt = {
        b"rsa2048._domainkey.sender.example.": read(os.path.join(keys, "rsa2048.dns")),
        b"ed._domainkey.sender.example.": read(os.path.join(keys, "ed.dns")),
        b"rsa2048._domainkey.microsoft-securityprotection-support.example.":
            read(os.path.join(keys, "rsa2048.dns")),
    }
    signed_names = ("rsa_pass", "ed_pass", "forged_ar", "body_altered", "lookalike",
                    "brand_phish", "pf_forged", "pf_forged2", "pf_large")

    def dnsfunc(name, timeout=5):
        return txt.get(name if name.endswith(b".") else name + b".")

    for name in signed_names:
        ok = dkim.verify(msgs[name], dnsfunc=dnsfunc)
        if ok != (name != "body_altered"):
            sys.exit("gen.py: dkimpy verify of %s gave %s" % (name, ok))

    for name, raw in msgs.items():
        with open(os.path.join(msgdir, name + ".eml"), "wb") as f:
            f.write(raw)
        with open(os.path.join(msgdir, name + ".lua"), "w") as f:
            f.write(to_lua(raw))


if __name__ == "__main__":
    main()
