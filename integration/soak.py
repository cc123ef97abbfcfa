#!/usr/bin/python3
"""Bounded soak test of the release binary (issue 7). Run through integration/soak.sh.

Usage: /usr/bin/python3 integration/soak.py [SECONDS]   (default 300, at most 1200)

Everything stays on 127.0.0.1. NSD serves the zone integration/gen.py writes (TTLs cut to 5 s
so that names are asked for again all the time), behind integration/dnsfault.py, a proxy that
injects DNS faults in windows. spoofguard runs with `[metrics] listen` and JSON logs. The load
is examples/milter_load.rs in its soak mode (--mix): good signed mail, p=reject spoofs, the
brand phish, malformed MIME, invalid UTF-8, huge header lines, too many headers, oversize
messages, plus aborts, disconnects and malformed packets part-way through messages.

Phases: warm-up (same load, every fault mode once), settle, baseline (RSS, open fds, alive
tasks); the load with a fault window every 20 s; recovery (good mail passes again); settle;
end figures. Checks: every message sent got exactly one final reply and every message cut
short none; spoofguard logged exactly one per-message line for each replied message and
none for the others, with a decision that matches the reply; the metrics count the same
messages; no panic and no error line; fds and tasks back to the baseline, RSS within the
stated tolerance. Prints PASS/FAIL lines, the figures (also in work/soak/report.json) and a
final "N passed, N failed"; exit status 1 on any failure.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request

import dnsfault
import opslib as lib

WORK = os.path.join(lib.ROOT, "integration/work/soak")
FIXTURES = os.path.join(lib.ROOT, "tests/fixtures/eml")
TALLY = lib.Tally()
check = TALLY.check

CONNECTIONS = 12
MAX_MESSAGE_BYTES = 1024 * 1024
# Fault windows: one every PERIOD seconds, WINDOW seconds long, modes in turn.
PERIOD, WINDOW = 20, 8
FAULTS = ["drop", "servfail", "late", "truncate", "delay", "garbage"]
# RSS may end above its baseline by this much (see docs/security.md, "Soak test"): the
# allocator keeps freed pages of the busiest moment, at most about one message buffer
# (max_message_bytes) per connection.
RSS_TOLERANCE_KB = CONNECTIONS * MAX_MESSAGE_BYTES // 1024

IP_GOOD = "192.0.2.10"
IP_BAD = "198.51.100.66"
IP_BRAND = "192.0.2.40"
HELO_GOOD = "mail.sender.example"
HELO_BAD = "mx.attacker.example"
HELO_BRAND = "mail.microsoft-securityprotection-support.example"


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, flush=True)


# ------------------------------------------------------------------ test data
def hostile_messages(msgdir):
    """Messages built here: invalid UTF-8, huge and many headers, oversize, deep MIME."""
    head = (b"To: Bob <bob@rcpt.example>\r\nDate: Mon, 04 May 2026 10:00:00 +0000\r\n"
            b"MIME-Version: 1.0\r\n")
    out = {}
    out["invalid_utf8"] = (
        b"From: \"J\xe9r\xf4me \xff\xfe\" <jerome@norecords.example>\r\n" + head +
        b"Subject: \xc0\xaf overlong, \xed\xa0\x80 surrogate, \xf8\x88\x80\x80\x80 five bytes\r\n"
        b"Message-ID: <utf8@norecords.example>\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n\r\n"
        b"Bytes: \xff\xfe\x00\x80\x81 and a NUL.\r\nhttps://\xe2\x80\xaeelpmaxe.example/ \xc3\r\n")
    out["huge_header_ok"] = (
        b"From: Alice <alice@norecords.example>\r\n" + head +
        b"Subject: one 60 kB header line\r\nMessage-ID: <h60@norecords.example>\r\n"
        b"X-Long: " + b"a" * 60000 + b"\r\n\r\nbody\r\n")
    out["huge_header_over"] = (
        b"From: Alice <alice@norecords.example>\r\n" + head +
        b"Subject: one 150 kB header line\r\nMessage-ID: <h150@norecords.example>\r\n"
        b"X-Long: " + b"b" * 150000 + b"\r\n\r\nbody\r\n")
    out["folded_header"] = (
        b"From: Alice <alice@norecords.example>\r\n" + head +
        b"Subject: a header folded 3000 times\r\nMessage-ID: <fold@norecords.example>\r\n"
        b"X-Folded: start" + b"\r\n\tx" * 3000 + b"\r\n\r\nbody\r\n")
    out["many_headers"] = (
        b"From: Alice <alice@norecords.example>\r\n" + head +
        b"Subject: 1200 header fields\r\nMessage-ID: <many@norecords.example>\r\n" +
        b"".join(b"X-Filler-%d: v\r\n" % i for i in range(1200)) + b"\r\nbody\r\n")
    line = b"Oversize body line %07d: 0123456789 abcdefghijklmnopqrstuvwxyz.\r\n"
    out["oversize"] = (
        b"From: Alice <alice@norecords.example>\r\n" + head +
        b"Subject: 1.3 MB, over max_message_bytes\r\nMessage-ID: <big@norecords.example>\r\n"
        b"\r\n" + b"".join(line % i for i in range(20000)))
    out["long_line"] = (
        b"From: Alice <alice@norecords.example>\r\n" + head +
        b"Subject: one 500 kB body line\r\nMessage-ID: <line@norecords.example>\r\n\r\n" +
        b"z" * 500000)
    nest = 200
    parts = b"".join(b"--b%d\r\nContent-Type: multipart/mixed; boundary=\"b%d\"\r\n\r\n" % (i, i + 1)
                     for i in range(nest))
    out["deep_mime"] = (
        b"From: Alice <alice@norecords.example>\r\n" + head +
        b"Subject: 200 nested multiparts\r\nMessage-ID: <deep@norecords.example>\r\n"
        b"Content-Type: multipart/mixed; boundary=\"b0\"\r\n\r\n" + parts +
        b"--b%d\r\nContent-Type: text/html\r\n\r\n<a href=\"https://x.example/\">"
        b"https://account.microsoft.com</a>\r\n" % nest)
    for name, raw in out.items():
        with open(os.path.join(msgdir, name + ".eml"), "wb") as f:
            f.write(raw)
    # Eight copies of a valid signature (over auth.max_dkim_signatures).
    with open(os.path.join(msgdir, "rsa_pass.eml"), "rb") as f:
        signed = f.read()
    sig, rest = signed.split(b"\r\nFrom: ", 1)
    with open(os.path.join(msgdir, "many_dkim.eml"), "wb") as f:
        f.write((sig + b"\r\n") * 8 + b"From: " + rest)


def mix(msgdir):
    """The soak mix: (name, file, client IP, HELO, MAIL FROM, weight[, pool])."""
    m = lambda n: os.path.join(msgdir, n + ".eml")
    fx = lambda n: os.path.join(FIXTURES, n + ".eml")
    rows = [
        ("good_rsa", m("rsa_pass"), IP_GOOD, HELO_GOOD, "alice@sender.example", 30),
        ("good_ed25519", m("ed_pass"), IP_GOOD, HELO_GOOD, "alice@sender.example", 15),
        ("forged_results", m("forged_ar"), IP_GOOD, HELO_GOOD, "alice@sender.example", 3),
        ("many_dkim", m("many_dkim"), IP_GOOD, HELO_GOOD, "alice@sender.example", 1),
        ("body_altered_spf_pass", m("body_altered"), IP_GOOD, HELO_GOOD, "alice@sender.example", 2),
        ("spoof_p_reject", m("spoof_unsigned"), IP_BAD, HELO_BAD, "ceo@sender.example", 15),
        ("body_altered", m("body_altered"), IP_BAD, HELO_BAD, "alice@sender.example", 2),
        ("quarantine", m("quarantine_fail"), IP_BAD, HELO_BAD, "billing@quarantine.example", 4),
        ("none_policy", m("none_unsigned"), IP_BAD, HELO_BAD, "news@none.example", 2),
        ("norecords", m("norecords"), IP_BAD, HELO_BAD, "info@norecords.example", 2),
        ("pool_bounce", m("norecords"), IP_BAD, HELO_BAD, "bounce@n{n}.pool.example", 4, 400),
        ("brand_phish", m("brand_phish"), IP_BRAND, HELO_BRAND,
         "security@microsoft-securityprotection-support.example", 8),
        ("lookalike", m("lookalike"), IP_BRAND, HELO_BRAND,
         "security@microsoft-securityprotection-support.example", 2),
        ("fixture_phish_ja", fx("phish-microsoft-ja"), IP_BAD, HELO_BAD,
         "security@microsoft-securityprotection-support.xyz", 2),
        ("fixture_genuine_ja", fx("genuine-microsoft-ja"), IP_BAD, HELO_BAD,
         "account-security-noreply@accountprotection.microsoft.com", 1),
        ("fixture_broken_mime", fx("broken-mime"), IP_BAD, HELO_BAD, "alice@sender.example", 2),
        ("fixture_no_from", fx("no-from"), IP_BAD, HELO_BAD, "x@norecords.example", 1),
        ("fixture_two_from", fx("two-from"), IP_BAD, HELO_BAD, "x@norecords.example", 1),
        ("fixture_forged_ar", fx("forged-ar"), IP_GOOD, HELO_GOOD, "alice@sender.example", 1),
        ("fixture_plain_lf", fx("plain"), IP_GOOD, HELO_GOOD, "alice@sender.example", 1),
        ("invalid_utf8", m("invalid_utf8"), IP_BAD, HELO_BAD, "jerome@norecords.example", 3),
        ("huge_header_ok", m("huge_header_ok"), IP_BAD, HELO_BAD, "alice@norecords.example", 1),
        ("huge_header_over", m("huge_header_over"), IP_BAD, HELO_BAD, "alice@norecords.example", 1),
        ("folded_header", m("folded_header"), IP_BAD, HELO_BAD, "alice@norecords.example", 1),
        ("many_headers", m("many_headers"), IP_BAD, HELO_BAD, "alice@norecords.example", 1),
        ("oversize", m("oversize"), IP_BAD, HELO_BAD, "alice@norecords.example", 1),
        ("long_line", m("long_line"), IP_BAD, HELO_BAD, "alice@norecords.example", 1),
        ("deep_mime", m("deep_mime"), IP_BAD, HELO_BAD, "alice@norecords.example", 1),
    ]
    out = []
    for r in rows:
        e = {"name": r[0], "file": r[1], "ip": r[2], "helo": r[3], "mail_from": r[4],
             "weight": r[5]}
        if len(r) > 6:
            e["pool"] = r[6]
        out.append(e)
    return out


def soak_zone(work):
    """gen.py's root zone with 5 s TTLs (negative answers too) and a wildcard pool."""
    with open(os.path.join(work, "zone/root.zone")) as f:
        zone = f.read()
    zone = zone.replace("$TTL 300", "$TTL 5")
    zone = re.sub(r"(IN SOA\s+\S+\s+\S+\s+\d+ \d+ \d+ \d+) \d+", r"\1 5", zone)
    zone += ('\n; soak: one SPF record for every n<N>.pool.example\n'
             '*.pool.example. IN TXT "v=spf1 ip4:198.51.100.0/24 -all"\n')
    return zone


# ------------------------------------------------------------------ measurements
def proc_status(pid):
    """(RSS kB, open fds) of pid."""
    rss = None
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    return rss, len(os.listdir("/proc/%d/fd" % pid))


def scrape(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
        text = r.read().decode()
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, val = line.rpartition(" ")
            values[key] = float(val)
    return values


def metric_sum(values, name):
    return sum(v for k, v in values.items() if k == name or k.startswith(name + "{"))


class Sampler:
    """RSS and fds every second, alive tasks and open connections from the gauge."""

    def __init__(self, pid, port):
        self.pid, self.port = pid, port
        self.peak_rss = self.peak_fds = self.peak_tasks = 0
        self.rows = []

    def sample(self, phase, with_metrics):
        rss, fds = proc_status(self.pid)
        tasks = conns = None
        if with_metrics:
            v = scrape(self.port)
            tasks = int(v.get("spoofguard_tasks_alive", -1))
            conns = int(v.get("spoofguard_connections_open", -1))
            self.peak_tasks = max(self.peak_tasks, tasks)
        self.peak_rss = max(self.peak_rss, rss)
        self.peak_fds = max(self.peak_fds, fds)
        self.rows.append((round(time.monotonic(), 1), phase, rss, fds, tasks, conns))
        return rss, fds, tasks, conns


def quiet_figures(sampler, tries=30):
    """RSS, fds and tasks once nothing is open: the connection gauge at 0, then two scrapes
    one gauge interval apart that agree (each scrape's own HTTP connection is closed again
    before the next sample). Bounded by `tries` seconds."""
    last = None
    for _ in range(tries):
        time.sleep(1.2)
        rss, fds, tasks, conns = sampler.sample("settle", True)
        now = (fds, tasks)
        if conns == 0 and now == last:
            return rss, fds, tasks
        last = now
    return rss, fds, tasks


def reload_and_quiet(sg, sampler, sg_log, n):
    """Figures at a quiet moment, before and after the n-th SIGHUP.

    The resolver keeps one socket task per connection of its pool, and its pool holds as many
    connections as lookups raced to open one when it was last empty (hickory 0.26), so the
    idle task count after load depends on the timing of the last DNS fault. A reload builds a
    new resolver with an empty pool; measured after one, baseline and end are comparable
    exactly. The figures before the reload are kept for the report."""
    before = quiet_figures(sampler)
    sg.send_signal(signal.SIGHUP)
    for _ in range(100):
        with open(sg_log, errors="replace") as f:
            if f.read().count('"configuration reloaded"') >= n:
                break
        time.sleep(0.1)
    return before, quiet_figures(sampler)


# ------------------------------------------------------------------ the run
def run_load(args, out_json, log_path, secs, prefix, procs, seed):
    cmd = [lib.milter_load_bin(), "--socket", "inet:127.0.0.1:%d" % args["milter_port"],
           "--mix", args["mix"], "--connections", str(CONNECTIONS), "--messages", "100000000",
           "--max-secs", str(int(secs)), "--per-connection", "25", "--reply-timeout-secs", "20",
           "--abort-permille", "15", "--disconnect-permille", "10", "--garbage-permille", "10",
           "--no-skip-permille", "250", "--eom-body-permille", "40", "--seed", str(seed), "--qid-prefix", prefix,
           "--replies-file", out_json + ".replies"]
    if args.get("rate"):
        cmd += ["--rate", str(args["rate"])]
    out = open(out_json, "wb")
    p = subprocess.Popen(cmd, stdout=out, stderr=open(log_path, "wb"), stdin=subprocess.DEVNULL)
    procs.procs.append(p)
    return p, " ".join(cmd)


def read_report(path):
    try:
        with open(path) as f:
            return json.loads(f.read().strip().splitlines()[-1])
    except (OSError, ValueError, IndexError) as e:
        return {"error": str(e)}


def read_replies(path):
    out = {}
    with open(path) as f:
        for line in f:
            qid, kind, outcome = line.split()
            out[qid] = (kind, outcome)
    return out


# A log line's decision -> the final reply it must have produced.
EVALUATED = {"accept": ("continue_modified",), "tag": ("continue_modified",),
             "quarantine": ("quarantine",), "reject": ("reject",), "tempfail": ("tempfail",)}
NOT_JUDGED = {"accept": ("continue_modified",), "tempfail": ("tempfail",),
              "reject": ("reject",), "skip": ("continue", "continue_modified")}


def main():
    secs = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    if not 60 <= secs <= 1200:
        print("SECONDS must be between 60 and 1200")
        print("0 passed, 1 failed")
        return 1
    t0 = time.monotonic()
    # soak.sh's hard time limit sends SIGTERM: stop every process started here first.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("SIGTERM: stopped by the time limit"))
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(os.path.join(WORK, "keys"))
    procs = lib.Procs()
    try:
        run(secs, t0, procs)
    finally:
        procs.stop_all()
    log("done in %.0f s" % (time.monotonic() - t0))
    return TALLY.finish()


def run(secs, t0, procs):
    figures = {"seconds_budget": secs}
    # Test data: gen.py's keys, zone and signed messages, and the hostile ones.
    keys = os.path.join(WORK, "keys")
    for name, ktype in (("rsa2048", "rsa"), ("ed", "ed25519")):
        subprocess.run(["dknewkey", "--ktype", ktype, name], cwd=keys, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    subprocess.run(["/usr/bin/python3", os.path.join(lib.ROOT, "integration/gen.py"), WORK],
                   check=True)
    msgdir = os.path.join(WORK, "msg")
    hostile_messages(msgdir)
    mix_path = os.path.join(WORK, "mix.json")
    with open(mix_path, "w") as f:
        json.dump(mix(msgdir), f, indent=1)

    nsd_port = lib.start_nsd(WORK, soak_zone(WORK), procs)
    proxy = dnsfault.FaultProxy(nsd_port)
    proxy.start()

    milter_port, metrics_port = lib.free_port(), lib.free_port()
    cfg = os.path.join(WORK, "milter.toml")
    with open(cfg, "w") as f:
        f.write("""# generated by integration/soak.py
[milter]
listen = "inet:127.0.0.1:%d"
authserv_id = "mx.spoofguard.test"
max_message_bytes = %d
[dns]
nameservers = ["127.0.0.1:%d"]
timeout_secs = 2
attempts = 1
[auth]
trusted_networks = []
[metrics]
listen = "127.0.0.1:%d"
[log]
format = "json"
""" % (milter_port, MAX_MESSAGE_BYTES, proxy.port, metrics_port))
    sg_log = os.path.join(WORK, "spoofguard.log")
    sg = procs.start([lib.spoofguard_bin(), "serve", "--config", cfg], sg_log)
    lib.wait_tcp(milter_port, sg)
    lib.wait_tcp(metrics_port, sg)
    sampler = Sampler(sg.pid, metrics_port)
    args = {"milter_port": milter_port, "mix": mix_path, "rate": os.environ.get("SOAK_RATE")}
    log("spoofguard pid %d, milter :%d, metrics :%d, DNS proxy :%d -> NSD :%d"
        % (sg.pid, milter_port, metrics_port, proxy.port, nsd_port))

    # Phase plan, all within the budget (the checks at the end take a few seconds).
    warmup = min(60, max(20, secs // 10))
    # Left for the baseline, recovery and end phases (about 30 s) and for reading the log
    # (about 1 s per minute of load), with some slack.
    load_secs = secs - (time.monotonic() - t0) - warmup - 35 - secs // 30
    if load_secs < 20:
        check("budget", False, "SECONDS too small for warm-up and load")
        return
    figures.update(warmup_s=warmup, load_s=int(load_secs), connections=CONNECTIONS)

    # 1. Warm-up: the same load, every fault mode for 2 s.
    log("warm-up %d s" % warmup)
    wjson = os.path.join(WORK, "warmup.json")
    p, _ = run_load(args, wjson, os.path.join(WORK, "warmup.err"), warmup, "W", procs, 7)
    start = time.monotonic()
    modes = list(FAULTS)
    while p.poll() is None:
        el = time.monotonic() - start
        i = int(el // 2) - 2
        proxy.set_mode(modes[i] if 0 <= i < len(modes) else "pass")
        sampler.sample("warmup", False)
        time.sleep(0.5)
    proxy.set_mode("pass")
    warm = read_report(wjson)
    check("warmup_every_message_one_reply", p.returncode == 0 and warm.get("ok") is True,
          json.dumps(warm)[:2000])

    # 2. Baseline.
    time.sleep(6)  # past the 5 s TTLs and the 2 s DNS time-out of anything still in flight
    pre, (base_rss, base_fds, base_tasks) = reload_and_quiet(sg, sampler, sg_log, 1)
    log("baseline: RSS %d kB, %d fds, %d tasks (before the reload: %d fds, %d tasks)"
        % (base_rss, base_fds, base_tasks, pre[1], pre[2]))
    figures["baseline"] = {"rss_kb": base_rss, "fds": base_fds, "tasks": base_tasks,
                           "before_reload": {"fds": pre[1], "tasks": pre[2]}}
    sampler.peak_rss = sampler.peak_fds = sampler.peak_tasks = 0

    # 3. The load, with a fault window every PERIOD s (none in the last 10 s).
    log("load %d s" % load_secs)
    ljson = os.path.join(WORK, "load.json")
    p, cmd = run_load(args, ljson, os.path.join(WORK, "load.err"), load_secs, "S", procs, 1)
    figures["load_command"] = cmd
    start = time.monotonic()
    windows = []
    next_scrape = 0
    while p.poll() is None:
        el = time.monotonic() - start
        n, into = divmod(el, PERIOD)
        mode = "pass"
        if 10 <= into < 10 + WINDOW and el + (10 + WINDOW - into) < load_secs - 10:
            mode = FAULTS[int(n) % len(FAULTS)]
        if mode != proxy.mode:
            proxy.set_mode(mode)
            if mode != "pass":
                windows.append({"mode": mode, "start_s": round(el, 1)})
            log("DNS %s at %.0f s" % (mode, el))
        with_metrics = el >= next_scrape
        if with_metrics:
            next_scrape = el + 5
        sampler.sample("load", with_metrics)
        time.sleep(0.5)
    proxy.set_mode("pass")
    load = read_report(ljson)
    figures["fault_windows"] = windows
    figures["load"] = load
    figures["peak"] = {"rss_kb": sampler.peak_rss, "fds": sampler.peak_fds,
                       "tasks": sampler.peak_tasks}
    figures["dns_proxy_queries"] = {"%s/%s" % k: v for k, v in sorted(proxy.stats().items())}

    # 4. Recovery: after the last window (and its TTLs), good mail passes again.
    time.sleep(6)
    rec = subprocess.run(
        [lib.milter_load_bin(), "--socket", "inet:127.0.0.1:%d" % milter_port, "-c", "2",
         "-m", "10", "--ip", IP_GOOD, "--helo", HELO_GOOD, "--mail-from", "alice@sender.example",
         "--format", "json", os.path.join(msgdir, "rsa_pass.eml")],
        capture_output=True, text=True, timeout=120)
    try:
        recovery = json.loads(rec.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        recovery = {"error": rec.stdout + rec.stderr}
    check("recovery_good_mail_accepted_after_faults",
          rec.returncode == 0 and recovery.get("messages") == 20
          and recovery.get("replies", {}).get("continue") == 20, json.dumps(recovery))

    # 5. End figures.
    pre, (end_rss, end_fds, end_tasks) = reload_and_quiet(sg, sampler, sg_log, 2)
    figures["end"] = {"rss_kb": end_rss, "fds": end_fds, "tasks": end_tasks,
                      "before_reload": {"fds": pre[1], "tasks": pre[2]}}
    log("end: RSS %d kB, %d fds, %d tasks (before the reload: %d fds, %d tasks)"
        % (end_rss, end_fds, end_tasks, pre[1], pre[2]))

    # ---------------------------------------------------------------- checks
    sent = load.get("sent", 0)
    check("load_every_message_exactly_one_final_reply",
          p.returncode == 0 and load.get("ok") is True and sent > 0
          and load.get("replied") == sent and load.get("no_reply") == 0
          and load.get("extra_replies") == 0 and load.get("unexpected") == 0,
          json.dumps({k: load.get(k) for k in ("sent", "replied", "no_reply", "extra_replies",
                                               "unexpected", "io_errors", "problems")}))
    check("load_hostile_connections_happened",
          load.get("aborted", 0) > 0 and load.get("disconnected", 0) > 0
          and sum(load.get("garbage", {}).values()) > 0 and load.get("eom_body", 0) > 0,
          json.dumps({k: load.get(k) for k in ("aborted", "disconnected", "garbage", "eom_body")}))
    replies = load.get("replies", {})
    check("load_reply_kinds_all_present",
          all(replies.get(k, 0) > 0 for k in ("continue_modified", "quarantine", "reject",
                                              "tempfail")), json.dumps(replies))
    stats = proxy.stats()
    hit = {m: stats.get((m, "udp"), 0) + stats.get((m, "tcp"), 0) for m in FAULTS}
    used = sorted({w["mode"] for w in windows})
    check("dns_fault_windows_hit_queries", bool(used) and all(hit[m] > 0 for m in used),
          json.dumps({"windows": used, "queries": hit}))

    # The log: one line per replied message, none for a message cut short.
    evaluated = {}
    dup, other_lines, levels, bad = [], [], {}, []
    with open(sg_log, errors="replace") as f:
        for line in f:
            try:
                o = json.loads(line)
            except ValueError:
                other_lines.append(line.rstrip()[:300])
                continue
            levels[o.get("level")] = levels.get(o.get("level"), 0) + 1
            if o.get("message") in ("message evaluated", "message not judged"):
                q = o.get("queue_id")
                if q in evaluated:
                    dup.append(q)
                evaluated[q] = o
    figures["log_levels"] = levels
    panicked = [l for l in other_lines if "panicked" in l]
    check("no_panic", not panicked, "\n".join(panicked[:5]))
    check("log_every_line_json", not other_lines, "\n".join(other_lines[:5]))
    check("log_no_error_line", levels.get("ERROR", 0) == 0, json.dumps(levels))
    for name, path, prefix in (("warmup", wjson, "W"), ("load", ljson, "S")):
        outcomes = read_replies(path + ".replies")
        replied = {q: v for q, v in outcomes.items() if v[1] not in ("aborted", "disconnected",
                                                                       "garbage")}
        cut = {q for q, v in outcomes.items() if q not in replied}
        logged = {q for q in evaluated if q.startswith(prefix)}
        missing = sorted(set(replied) - logged)[:5]
        extra = sorted(logged - set(replied))[:5]
        check("%s_one_log_line_per_replied_message" % name,
              not dup and not missing and not extra and len(logged) == len(replied),
              "replied %d logged %d, missing %s, extra %s, duplicate %s"
              % (len(replied), len(logged), missing, extra, dup[:5]))
        check("%s_no_log_line_for_cut_messages" % name, not (cut & logged),
              repr(sorted(cut & logged)[:5]))
        wrong = []
        for q, (kind, outcome) in replied.items():
            o = evaluated.get(q)
            if o is None:
                continue
            table = EVALUATED if o["message"] == "message evaluated" else NOT_JUDGED
            if outcome not in table.get(o.get("decision"), ()):
                wrong.append((q, kind, outcome, o.get("decision")))
        check("%s_log_decision_matches_reply" % name, not wrong, repr(wrong[:5]))
    rec_logged = [q for q in evaluated if q.startswith("L")]
    check("recovery_logged", len(rec_logged) == 20, "%d lines" % len(rec_logged))

    # Metrics: the same number of messages as replies and log lines; tasks and fds back.
    v = scrape(metrics_port)
    total_msgs = metric_sum(v, "spoofguard_messages_total")
    all_replied = (warm.get("replied", 0) + load.get("replied", 0)
                   + recovery.get("messages", 0))
    check("metrics_messages_equal_replies_and_log_lines",
          total_msgs == all_replied == len(evaluated),
          "metric %s, replies %s, log lines %s" % (total_msgs, all_replied, len(evaluated)))
    temperr = sum(val for k, val in v.items()
                  if k.startswith("spoofguard_auth_results_total{") and 'result="temperror"' in k)
    check("metrics_dns_temperrors_seen", temperr > 0, "temperror results %s" % temperr)
    reloads = v.get('spoofguard_config_reloads_total{result="ok"}')
    check("metrics_two_reloads_ok", reloads == 2, "reloads ok %s" % reloads)
    figures["temperror_results"] = temperr

    check("fds_back_to_baseline", end_fds == base_fds, "baseline %d end %d" % (base_fds, end_fds))
    check("tasks_back_to_baseline", end_tasks == base_tasks,
          "baseline %d end %d" % (base_tasks, end_tasks))
    check("rss_within_tolerance", end_rss <= base_rss + RSS_TOLERANCE_KB,
          "baseline %d kB end %d kB tolerance %d kB" % (base_rss, end_rss, RSS_TOLERANCE_KB))
    figures["rss_tolerance_kb"] = RSS_TOLERANCE_KB

    procs.stop(sg)
    check("serve_exits_cleanly_on_sigterm", sg.returncode == 0, "exit %s" % sg.returncode)

    with open(os.path.join(WORK, "samples.csv"), "w") as f:
        f.write("t,phase,rss_kb,fds,tasks,connections_open\n")
        for r in sampler.rows:
            f.write(",".join("" if x is None else str(x) for x in r) + "\n")
    with open(os.path.join(WORK, "report.json"), "w") as f:
        json.dump(figures, f, indent=1)
    print_figures(figures)


def print_figures(fg):
    load = fg.get("load", {})
    print("---- figures (also in integration/work/soak/report.json)")
    print("load: %s messages in %s s (%s msg/s) on %s connections; %s aborted, %s disconnected, "
          "%s malformed packets, %s with the body in EOM"
          % (load.get("sent"), load.get("seconds"), load.get("msg_per_s"), fg.get("connections"),
             load.get("aborted"), load.get("disconnected"), sum(load.get("garbage", {}).values()),
             load.get("eom_body")))
    print("replies: %s" % json.dumps(load.get("replies")))
    print("eom latency ms: %s" % json.dumps(load.get("eom_ms")))
    print("DNS fault windows: %s" % ", ".join("%s@%ss" % (w["mode"], w["start_s"])
                                              for w in fg.get("fault_windows", [])))
    for k in ("baseline", "peak", "end"):
        print("%-8s %s" % (k, json.dumps(fg.get(k))))


if __name__ == "__main__":
    sys.exit(main())
