#!/usr/bin/python3
"""Metrics, JSON logs and reloads of a running `spoofguard serve` (issue 8).

Starts NSD with a test zone and the release binary with `[metrics] listen` and
`[log] format = "json"`, drives messages through the milter with examples/milter_load.rs
(the milter protocol as an MTA speaks it), then scrapes the live endpoint and parses it with
prometheus_client's text-format parser, and parses every log line as one JSON object.
Finally sends SIGHUP with a good and a bad file and checks the reload counters.

Usage: /usr/bin/python3 integration/metrics.py   (needs target/release/spoofguard and
target/release/examples/milter_load; SPOOFGUARD_BIN / MILTER_LOAD_BIN override them)
Prints PASS/FAIL lines and ends with "N passed, N failed"; exit status 1 on any failure.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request

import pydeps

pydeps.need("prometheus_client")
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

import opslib as lib  # noqa: E402

WORK = os.path.join(lib.ROOT, "integration/work/ops-metrics")
LOG_FIELDS = ["queue_id", "client_ip", "from_domain", "spf", "dkim", "arc", "dmarc", "score",
              "decision", "dry_run", "reasons", "policy_override"]

TALLY = lib.Tally()
check = TALLY.check


def scrape(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
        text = r.read().decode()
    samples = {}
    types = {}
    for family in text_string_to_metric_families(text):
        types[family.name] = family.type
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples, types, text


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())), 0.0)


def load(socket_port, ip, mail_from, files, messages):
    out = subprocess.run(
        [lib.milter_load_bin(), "--socket", "inet:127.0.0.1:%d" % socket_port, "-c", "1",
         "-m", str(messages), "--ip", ip, "--mail-from", mail_from, "--format", "json"] + files,
        capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        raise RuntimeError("milter_load failed: %s %s" % (out.stdout, out.stderr))
    return out.stdout


def main():
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    procs = lib.Procs()
    try:
        run(procs)
    finally:
        procs.stop_all()
    return TALLY.finish()


def run(procs):
    keys = lib.make_keys(WORK)
    dns_port = lib.start_nsd(WORK, lib.zone_text(keys), procs)
    msg = {}
    msg["pass"] = lib.sign(lib.message("alice@sender.example", "pass"), keys, "sender.example", "ed")
    msg["spoof"] = lib.message("alice@sender.example", "spoof")
    msg["norecords"] = lib.message("bob@norecords.example", "norecords")
    for name, raw in msg.items():
        with open(os.path.join(WORK, name + ".eml"), "wb") as f:
            f.write(raw)

    milter_port = lib.free_port()
    metrics_port = lib.free_port()
    cfg = os.path.join(WORK, "milter.toml")
    good = """[milter]
listen = "inet:127.0.0.1:%d"
authserv_id = "mx.test"
[dns]
nameservers = ["127.0.0.1:%d"]
timeout_secs = 2.0
[metrics]
listen = "127.0.0.1:%d"
[log]
format = "json"
""" % (milter_port, dns_port, metrics_port)
    with open(cfg, "w") as f:
        f.write(good)
    log_path = os.path.join(WORK, "spoofguard.log")
    sg = procs.start([lib.spoofguard_bin(), "serve", "--config", cfg], log_path)
    lib.wait_tcp(milter_port, sg)
    lib.wait_tcp(metrics_port, sg)

    # Before any mail: the endpoint answers and the fixed series read 0 or 1.
    samples, types, _ = scrape(metrics_port)
    check("metrics_endpoint_before_mail",
          value(samples, "spoofguard_connections_open") == 0
          and value(samples, "spoofguard_config_reloads_total", result="ok") == 0
          and any(k[0] == "spoofguard_build_info" and v == 1 for k, v in samples.items()),
          repr(samples))

    load(milter_port, lib.IP_SENDER, "alice@sender.example", [WORK + "/pass.eml"], 3)
    load(milter_port, lib.IP_FOREIGN, "alice@sender.example", [WORK + "/spoof.eml"], 2)
    load(milter_port, lib.IP_FOREIGN, "bob@norecords.example", [WORK + "/norecords.eml"], 1)
    time.sleep(0.3)  # the last connection's close is processed after milter_load exits

    samples, types, text = scrape(metrics_port)
    with open(os.path.join(WORK, "scrape.txt"), "w") as f:
        f.write(text)
    m = "spoofguard_messages_total"
    total = sum(v for k, v in samples.items() if k[0] == m)
    check("messages_total_counts_six", total == 6, "total %s" % total)
    check("messages_reject_action_reject",
          value(samples, m, decision="reject", action="reject") == 2,
          repr({k: v for k, v in samples.items() if k[0] == m}))
    check("messages_accept_action_deliver",
          value(samples, m, decision="accept", action="deliver") >= 3,
          repr({k: v for k, v in samples.items() if k[0] == m}))
    a = "spoofguard_auth_results_total"
    want = {("spf", "pass"): 3, ("spf", "fail"): 2, ("spf", "none"): 1,
            ("dkim", "pass"): 3, ("dkim", "none"): 3,
            ("dmarc", "pass"): 3, ("dmarc", "fail"): 2, ("dmarc", "none"): 1,
            ("arc", "none"): 6}
    got = {(dict(k[1])["method"], dict(k[1])["result"]): v for k, v in samples.items() if k[0] == a}
    check("auth_results_by_method_and_result", got == want, "got %r" % got)
    f = "spoofguard_findings_total"
    check("findings_by_reason",
          value(samples, f, reason="DMARC_FAIL") == 2 and value(samples, f, reason="SPF_FAIL") == 2,
          repr({k: v for k, v in samples.items() if k[0] == f}))
    d = "spoofguard_dns_cache_lookups_total"
    hits = sum(v for k, v in samples.items() if k[0] == d and ("outcome", "hit") in k[1])
    misses = sum(v for k, v in samples.items() if k[0] == d and ("outcome", "miss") in k[1])
    check("dns_cache_hits_and_misses", hits > 0 and misses > 0, "hits %s misses %s" % (hits, misses))
    check("connections_total_and_open",
          value(samples, "spoofguard_connections_total") == 3
          and value(samples, "spoofguard_connections_open") == 0,
          "total %s open %s" % (value(samples, "spoofguard_connections_total"),
                                value(samples, "spoofguard_connections_open")))
    h = "spoofguard_milter_stage_duration_seconds"
    check("stage_histograms",
          types.get(h) == "histogram"
          and value(samples, h + "_count", stage="eom") == 6
          and value(samples, h + "_count", stage="header") >= 6 * 7
          and value(samples, h + "_bucket", stage="eom", le="+Inf") == 6,
          repr({k: v for k, v in samples.items() if k[0].startswith(h + "_count")}))
    e = "spoofguard_evaluation_duration_seconds"
    check("evaluation_histograms",
          all(value(samples, e + "_count", step=s) == 6 for s in ("auth", "lookalike", "total")),
          repr({k: v for k, v in samples.items() if k[0] == e + "_count"}))

    # Reload: a good file, then a broken one (the old configuration stays).
    sg.send_signal(signal.SIGHUP)
    time.sleep(0.5)
    with open(cfg, "w") as f:
        f.write(good.replace('format = "json"', 'format = "json"\nbogus = 1'))
    sg.send_signal(signal.SIGHUP)
    time.sleep(0.5)
    samples, _, _ = scrape(metrics_port)
    r = "spoofguard_config_reloads_total"
    check("config_reloads_ok_and_failed",
          value(samples, r, result="ok") == 1 and value(samples, r, result="failed") == 1,
          repr({k: v for k, v in samples.items() if k[0] == r}))
    load(milter_port, lib.IP_SENDER, "alice@sender.example", [WORK + "/pass.eml"], 1)
    procs.stop(sg)
    check("serve_exits_cleanly_on_sigterm", sg.returncode == 0, "exit %s" % sg.returncode)

    # Logs: every line one JSON object; one "message evaluated" line per judged message with
    # the documented fields at top level.
    bad_lines, evaluated = [], []
    with open(log_path) as fh:
        for line in fh:
            try:
                obj = json.loads(line)
            except ValueError:
                bad_lines.append(line)
                continue
            if not isinstance(obj, dict):
                bad_lines.append(line)
            elif obj.get("message") == "message evaluated":
                evaluated.append(obj)
    check("log_every_line_is_json", not bad_lines and evaluated, "bad: %r" % bad_lines[:3])
    missing = [(i, k) for i, o in enumerate(evaluated) for k in LOG_FIELDS if k not in o]
    check("log_fields_at_top_level", len(evaluated) == 7 and not missing,
          "%d lines, missing %r" % (len(evaluated), missing[:5]))
    types_ok = all(isinstance(o["score"], (int, float)) and isinstance(o["dry_run"], bool)
                   and isinstance(o["reasons"], str) and o["level"] == "INFO" for o in evaluated)
    check("log_field_types", types_ok, repr(evaluated[:1]))
    spoof = [o for o in evaluated if o["decision"] == "reject"]
    check("log_values", len(spoof) == 2 and spoof[0]["dmarc"] == "fail"
          and spoof[0]["from_domain"] == "sender.example"
          and spoof[0]["client_ip"] == lib.IP_FOREIGN
          and "DMARC_FAIL" in spoof[0]["reasons"].split(","), repr(spoof[:1]))


if __name__ == "__main__":
    sys.exit(main())
