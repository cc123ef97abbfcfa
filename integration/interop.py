#!/usr/bin/python3
"""Interoperability of what spoofguard writes (issue 8).

1. Every Authentication-Results value spoofguard produces for a set of messages (pass with
   RSA and Ed25519, fail, body altered, none, temperror, null sender, two DKIM signatures) is
   parsed by an independent RFC 8601 parser (`authres`), unfolded and folded as the milter
   sends it, and the parsed methods, results and properties are compared with what was meant.
   The values come from `spoofguard check --format json` (field `authentication_results`,
   the same code path as the milter's end of message) with DNS answered from a zone file, or,
   for temperror, from a resolver port where nothing answers.
2. The messages, with the headers spoofguard adds, pass integration/mime_check.py (Python's
   `email` with policy.default, and authres on each Authentication-Results).

Usage: /usr/bin/python3 integration/interop.py   (needs target/release/spoofguard, or
SPOOFGUARD_BIN). Prints PASS/FAIL lines and "N passed, N failed"; exit 1 on any failure.
"""

import json
import os
import shutil
import subprocess
import sys

import pydeps

authres = pydeps.need("authres")

import mime_check  # noqa: E402
import opslib as lib  # noqa: E402

WORK = os.path.join(lib.ROOT, "integration/work/ops-interop")
AUTHSERV = "mx.test"

TALLY = lib.Tally()
check = TALLY.check


def run_check(cfg, files, ip, mail_from, helo="mail.sender.example", zone=None):
    args = [lib.spoofguard_bin(), "check", "--config", cfg, "--format", "json",
            "--ip", ip, "--helo", helo, "--mail-from", mail_from]
    if zone:
        args += ["--zone", zone]
    out = subprocess.run(args + files, capture_output=True, text=True, timeout=120)
    if out.returncode not in (0, 2):
        raise RuntimeError("spoofguard check failed (%d): %s" % (out.returncode, out.stderr))
    return {os.path.basename(o["file"])[:-4]: o for o in map(json.loads, out.stdout.splitlines())}


def parse(value):
    return authres.AuthenticationResultsHeader.parse("Authentication-Results: " + value)


def folded(value):
    """The value as the milter sends it: one method per line (docs/headers.md)."""
    return value.replace("; ", ";\r\n\t")


def props(result):
    return {"%s.%s" % (p.type, p.name): p.value for p in result.properties}


def summarize(header):
    """[(method, result, {ptype.property: value})] in header order."""
    return [(r.method, r.result, props(r)) for r in header.results]


def expect_case(name, value, want):
    """want: list of (method, result, {property: value}) that must match exactly (properties
    listed in want must be present with that value; others are allowed)."""
    try:
        unfolded = parse(value)
        fold = parse(folded(value))
    except Exception as e:
        check("authres_parses_" + name, False, "%r: %s" % (e, value))
        return
    check("authres_parses_" + name, unfolded.authserv_id == AUTHSERV
          and summarize(unfolded) == summarize(fold), value)
    got = summarize(unfolded)
    ok = len(got) == len(want)
    for (gm, gr, gp), (wm, wr, wp) in zip(got, want):
        ok = ok and gm == wm and gr == wr and all(gp.get(k) == v for k, v in wp.items())
    check("authres_meaning_" + name, ok, "\n  got  %r\n  want %r\n  header %s" % (got, want, value))


def main():
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    keys = lib.make_keys(WORK)
    zone = os.path.join(WORK, "root.zone")
    with open(zone, "w") as f:
        f.write(lib.zone_text(keys))
    cfg = os.path.join(WORK, "milter.toml")
    with open(cfg, "w") as f:
        f.write('[milter]\nauthserv_id = "%s"\n[policy]\non_dns_error = "accept"\n' % AUTHSERV)
    # A resolver that refuses: a UDP port on loopback with nothing bound to it.
    dead = os.path.join(WORK, "dead-dns.toml")
    with open(dead, "w") as f:
        f.write('[milter]\nauthserv_id = "%s"\n[policy]\non_dns_error = "accept"\n'
                '[dns]\nnameservers = ["127.0.0.1:%d"]\ntimeout_secs = 1.0\nattempts = 1\n'
                % (AUTHSERV, lib.free_port(udp_too=True)))

    m = {}
    plain = lib.message("alice@sender.example", "interop")
    m["pass_ed"] = lib.sign(plain, keys, "sender.example", "ed")
    m["pass_rsa"] = lib.sign(plain, keys, "sender.example", "rsa")
    # An ESP or list adds its own signature on top of the author's.
    m["two_sigs"] = lib.sign(m["pass_rsa"], keys, "esp.example", "ed")
    m["body_altered"] = m["pass_ed"].replace(b"this is a test", b"this is a changed")
    m["spoof"] = plain
    m["norecords"] = lib.message("bob@norecords.example", "no records")
    m["bounce"] = lib.message("alice@sender.example", "null sender")
    for name, raw in m.items():
        with open(os.path.join(WORK, name + ".eml"), "wb") as f:
            f.write(raw)
    path = lambda n: os.path.join(WORK, n + ".eml")  # noqa: E731

    res = {}
    res.update(run_check(cfg, [path(n) for n in ("pass_ed", "pass_rsa", "two_sigs", "body_altered")],
                         lib.IP_SENDER, "alice@sender.example", zone=zone))
    res.update(run_check(cfg, [path("spoof")], lib.IP_FOREIGN, "alice@sender.example", zone=zone))
    res.update(run_check(cfg, [path("norecords")], lib.IP_FOREIGN, "bob@norecords.example",
                         helo="mx.norecords.example", zone=zone))
    res.update(run_check(cfg, [path("bounce")], lib.IP_FOREIGN, "", helo="mail.sender.example",
                         zone=zone))
    temp = run_check(dead, [path("pass_ed")], lib.IP_SENDER, "alice@sender.example")

    mf = {"smtp.mailfrom": "alice@sender.example"}
    hf = {"header.from": "sender.example"}
    b = lambda n: lib.b_prefix(m[n])  # noqa: E731
    dkim_ed = lambda n, r="pass": ("dkim", r, {"header.d": "sender.example", "header.s": "ed",  # noqa: E731
                                               "header.a": "ed25519-sha256", "header.b": b(n)})
    cases = {
        "pass_ed": [("spf", "pass", mf), dkim_ed("pass_ed"), ("arc", "none", {}),
                    ("dmarc", "pass", hf)],
        "pass_rsa": [("spf", "pass", mf),
                     ("dkim", "pass", {"header.d": "sender.example", "header.s": "rsa",
                                       "header.a": "rsa-sha256", "header.b": b("pass_rsa")}),
                     ("arc", "none", {}), ("dmarc", "pass", hf)],
        "two_sigs": [("spf", "pass", mf),
                     ("dkim", "pass", {"header.d": "esp.example", "header.s": "ed",
                                       "header.b": b("two_sigs")}),
                     ("dkim", "pass", {"header.d": "sender.example", "header.s": "rsa",
                                       "header.b": b("pass_rsa")}),
                     ("arc", "none", {}), ("dmarc", "pass", hf)],
        "body_altered": [("spf", "pass", mf), dkim_ed("pass_ed", "fail"), ("arc", "none", {}),
                         ("dmarc", "pass", hf)],
        "spoof": [("spf", "fail", mf), ("dkim", "none", {}), ("arc", "none", {}),
                  ("dmarc", "fail", hf)],
        "norecords": [("spf", "none", {"smtp.mailfrom": "bob@norecords.example"}),
                      ("dkim", "none", {}), ("arc", "none", {}),
                      ("dmarc", "none", {"header.from": "norecords.example"})],
        "bounce": [("spf", "none", {"smtp.helo": "mail.sender.example"}), ("dkim", "none", {}),
                   ("arc", "none", {}), ("dmarc", "fail", hf)],
    }
    for name, want in cases.items():
        if name not in res:
            check("result_for_" + name, False, "no output")
            continue
        expect_case(name, res[name]["authentication_results"], want)
    t = temp.get("pass_ed")
    if t is None:
        check("result_for_temperror", False, "no output")
    else:
        expect_case("temperror", t["authentication_results"],
                    [("spf", "temperror", mf), ("dkim", "temperror", {"header.d": "sender.example"}),
                     ("arc", "none", {}), ("dmarc", "temperror", hf)])

    # The delivered form: our Authentication-Results on top (folded as the milter sends it)
    # and the score headers appended, then the MIME check.
    clean = True
    for name, o in list(res.items()) + [("temperror", t)]:
        if o is None:
            continue
        raw = m.get(name, m["pass_ed"])
        head, body = raw.split(b"\r\n\r\n", 1)
        reasons = "; ".join("%s=%+.1f" % (r["code"], r["weight"]) for r in o["reasons"]) or "none"
        delivered = (b"Authentication-Results: " + folded(o["authentication_results"]).encode()
                     + b"\r\n" + head + b"\r\nX-Spoofguard-Score: %.1f\r\nX-Spoofguard-Verdict: %s"
                     b"\r\nX-Spoofguard-Reasons: %s\r\n\r\n" % (o["score"], o["verdict"].encode(),
                                                                reasons.encode()) + body)
        out = os.path.join(WORK, "delivered-" + name + ".eml")
        with open(out, "wb") as f:
            f.write(delivered)
        problems = mime_check.check_message(delivered)
        if problems:
            clean = False
            print("  %s: %s" % (out, problems))
    check("mime_check_of_delivered_messages", clean)
    # The checker itself must notice a broken message.
    broken = b"From: a@b.example\r\nSubject: =?utf-8?q?broken\r\nContent-Type: multipart/mixed\r\n\r\nx\r\n"
    check("mime_check_detects_defects", mime_check.check_message(broken) != [])

    return TALLY.finish()


if __name__ == "__main__":
    sys.exit(main())
