#!/usr/bin/python3
"""Summary of benches/run-milter-bench.sh: medians over repetitions, and the issue-6 targets.

  summary.py RESULTS_DIR   reads RESULTS_DIR/raw/{runs.jsonl,hold.jsonl,oversize.json}
"""

import json
import os
import statistics
import sys

out = sys.argv[1]
runs = [json.loads(l) for l in open(os.path.join(out, "raw", "runs.jsonl")) if l.strip()]
NAMES = {
    "null-unix": "do-nothing milter (unix)",
    "null-tcp": "do-nothing milter (TCP)",
    "sg-cold": "spoofguard, cold cache (unix)",
    "sg-warm": "spoofguard, warm cache (unix)",
    "sg-warm-tcp": "spoofguard, warm cache (TCP)",
    "peers": "OpenDKIM -> OpenDMARC (unix)",
}


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else float("nan")


groups = {}
for r in runs:
    groups.setdefault((r["size"], r["config"], r["conc"]), []).append(r)

table = {}
print("| message | configuration | conc. | msg/s | EOM p50 ms | EOM p99 ms | txn p99 ms "
      "| milter CPU ms/msg | RSS MB (max HWM) | errors | load avg |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
order = list(NAMES)
for (size, config, conc) in sorted(groups, key=lambda k: (k[0] != "10k", order.index(k[1]) if k[1] in order else 99, k[2])):
    g = groups[(size, config, conc)]
    row = dict(
        rate=med([r.get("msg_per_s") for r in g]),
        p50=med([r.get("eom", {}).get("p50_ms") for r in g]),
        p99=med([r.get("eom", {}).get("p99_ms") for r in g]),
        tp99=med([r.get("transaction", {}).get("p99_ms") for r in g]),
        cpu=med([r.get("cpu_ms_per_msg") for r in g]),
        rss=max(r["rss_kb"] for r in g) / 1024,
        hwm=max(r["hwm_kb"] for r in g) / 1024,
        errors=sum(r.get("errors", 0) for r in g),
        load=med([r.get("loadavg_before") for r in g]),
        n=len(g),
    )
    table[(size, config, conc)] = row
    print(f"| {size} | {NAMES.get(config, config)} | {conc} | {row['rate']:.0f} | {row['p50']:.2f} "
          f"| {row['p99']:.2f} | {row['tp99']:.2f} | {row['cpu']:.3f} | {row['rss']:.1f} ({row['hwm']:.1f}) "
          f"| {row['errors']} | {row['load']:.2f} |")

replies = {}
for r in runs:
    k = (r["size"], r["config"])
    rep = r.get("replies", {})
    acc = replies.setdefault(k, {})
    for kk, v in rep.items():
        acc[kk] = acc.get(kk, 0) + v
print()
print("Final replies over all runs: " + "; ".join(
    f"{s} {c}: " + ", ".join(f"{k} {v}" for k, v in sorted(rep.items()) if v)
    for (s, c), rep in sorted(replies.items())))

print()
print("Targets:")


def t(size, config, conc):
    return table.get((size, config, conc))


for size in ("10k", "3k"):
    sg, peers, null = t(size, "sg-warm", 64), t(size, "peers", 64), t(size, "null-unix", 64)
    if sg and peers:
        ratio = sg["rate"] / peers["rate"]
        print(f"- {size}, concurrency 64, warm: spoofguard {sg['rate']:.0f} msg/s vs OpenDKIM+OpenDMARC "
              f"{peers['rate']:.0f} msg/s = {ratio:.2f}x (target >= 3x): {'MET' if ratio >= 3 else 'MISSED'}")
    if sg and null:
        ratio = sg["rate"] / null["rate"]
        print(f"- {size}, concurrency 64, warm: spoofguard is {100 * ratio:.0f}% of the do-nothing milter "
              f"({null['rate']:.0f} msg/s, unix) (target >= 50%): {'MET' if ratio >= 0.5 else 'MISSED'}")
    nt, st = t(size, "null-tcp", 64), t(size, "sg-warm-tcp", 64)
    if nt and st:
        print(f"  (over TCP: {st['rate']:.0f} vs {nt['rate']:.0f} msg/s = {100 * st['rate'] / nt['rate']:.0f}%)")
p = t("10k", "sg-warm", 8)
if p:
    print(f"- 10k, concurrency 8, warm: EOM p99 {p['p99']:.2f} ms (target < 5 ms): "
          f"{'MET' if p['p99'] < 5 else 'MISSED'}")

hold = os.path.join(out, "raw", "hold.jsonl")
if os.path.exists(hold):
    for l in open(hold):
        h = json.loads(l)
        line = (f"- {h['config']}: {h['held']} idle connections, RSS {h['rss_kb_before'] / 1024:.1f} MB before, "
                f"{h['rss_kb_held'] / 1024:.1f} MB while held")
        if h["config"] == "spoofguard":
            ok = h["held"] >= 500 and h["rss_kb_held"] < 100 * 1024
            line += f" (target < 100 MB with 500: {'MET' if ok else 'MISSED'})"
        print(line)
ov = os.path.join(out, "raw", "oversize.json")
if os.path.exists(ov):
    o = json.load(open(ov))
    load = o.get("load", {})
    print(f"- max_message_bytes {o['max_message_bytes']}: {load.get('messages', 0)} messages of "
          f"{o['message_bytes'] / 1e6:.0f} MB on 8 connections, milter RSS {o['rss_kb_before'] / 1024:.1f} MB "
          f"before, peak (VmHWM) {o['hwm_kb'] / 1024:.1f} MB; replies {load.get('replies')}")
