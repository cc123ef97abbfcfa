#!/usr/bin/env python3
"""Regenerates tests/eval/positives/*.txt with dnstwist's fuzzers (offline: no DNS, no WHOIS).

    pip install dnstwist==20250130 && python3 tests/eval/generate.py

Each output file holds one A-label domain per line, grouped by dnstwist fuzzer name. The brand's
original domain and the brand's other real domains (tld-swap can produce amazon.de) are dropped
by the evaluator, which knows the catalogue; this script only writes what dnstwist generates.
"""
import os
import random

import dnstwist

BRAND_DOMAINS = [
    "microsoft.com", "outlook.com", "paypal.com", "amazon.com", "amazon.co.jp", "google.com",
    "apple.com", "icloud.com", "netflix.com", "facebook.com", "instagram.com", "linkedin.com",
    "dropbox.com", "docusign.com", "rakuten.co.jp", "mercari.com", "softbank.jp",
    "docomo.ne.jp", "kuronekoyamato.co.jp", "sagawa-exp.co.jp", "japanpost.jp",
    "mizuhobank.co.jp", "smbc-card.com", "mastercard.com", "americanexpress.com",
    "wellsfargo.com", "bankofamerica.com", "fedex.com", "coinbase.com", "nintendo.co.jp",
    "spotify.com", "binance.com",
]
TLDS = ["xyz", "top", "net", "org", "info", "co", "io", "shop", "online", "site", "club", "cn",
        "ru", "vip", "cc", "live", "app", "support", "icu", "buzz"]
FUZZERS = ["addition", "bitsquatting", "cyrillic", "homoglyph", "hyphenation", "insertion",
           "omission", "plural", "repetition", "replacement", "subdomain", "transposition",
           "vowel-swap", "various", "tld-swap"]
# Keep every file well under 1 MiB: at most this many domains per fuzzer and brand domain.
PER_BRAND_CAP = 60

here = os.path.dirname(os.path.abspath(__file__))
out_dir = os.path.join(here, "positives")
os.makedirs(out_dir, exist_ok=True)
rng = random.Random(20250130)
by_kind = {f: set() for f in FUZZERS}
for d in BRAND_DOMAINS:
    fz = dnstwist.Fuzzer(d, tld_dictionary=TLDS)
    fz.generate(fuzzers=FUZZERS)
    per = {}
    for p in fz.permutations():
        per.setdefault(p["fuzzer"], []).append(p["domain"])
    for kind, doms in per.items():
        if kind not in by_kind:
            continue
        doms = sorted(set(doms))
        if len(doms) > PER_BRAND_CAP:
            doms = sorted(rng.sample(doms, PER_BRAND_CAP))
        by_kind[kind].update(doms)
for kind, doms in by_kind.items():
    with open(os.path.join(out_dir, f"dnstwist-{kind}.txt"), "w") as f:
        f.write(f"# dnstwist {dnstwist.__version__} fuzzer '{kind}' on {len(BRAND_DOMAINS)} brand domains (tests/eval/generate.py)\n")
        for d in sorted(doms):
            f.write(d + "\n")
    print(kind, len(doms))

# Hand-made: brand tokens with phishing vocabulary, and Cyrillic/Greek homographs.
TOKENS = ["microsoft", "office365", "outlook", "paypal", "amazon", "apple", "icloud", "google",
          "netflix", "facebook", "instagram", "linkedin", "dropbox", "docusign", "rakuten",
          "mercari", "docomo", "softbank", "paypay", "smbc", "mufg", "aeon", "jcb", "line",
          "dhl", "ups", "fedex", "chase", "visa", "mastercard", "americanexpress", "wellsfargo",
          "japanpost", "kuronekoyamato", "sagawa", "mizuho", "yucho", "coinbase", "binance"]
PATTERNS = ["{t}-security-alert.com", "secure-{t}-login.net", "{t}-account-verify.com",
            "{t}-support.xyz", "login-{t}.com", "{t}-update-info.top", "verify-{t}-id.info",
            "{t}-helpdesk.online", "{t}securelogin.com", "my{t}-account.jp"]
with open(os.path.join(out_dir, "handmade-brand-token.txt"), "w") as f:
    f.write("# brand token + phishing vocabulary (tests/eval/generate.py)\n")
    for t in TOKENS:
        for p in PATTERNS:
            f.write(p.format(t=t) + "\n")
HOMO = {"a": ["\u0430", "\u03b1"], "c": ["\u0441"], "e": ["\u0435"], "i": ["\u0456", "\u03b9"],
        "o": ["\u043e", "\u03bf"], "p": ["\u0440", "\u03c1"], "x": ["\u0445"], "y": ["\u0443"],
        "s": ["\u0455"], "n": ["\u03b7"], "l": ["\u04cf"], "k": ["\u03ba"], "b": ["\u0432"]}
LABELS = ["microsoft", "paypal", "amazon", "apple", "google", "netflix", "facebook",
          "linkedin", "dropbox", "docusign", "rakuten", "mercari", "docomo", "coinbase",
          "binance", "icloud", "outlook", "instagram", "mastercard", "softbank"]
homos = set()
for lab in LABELS:
    for i, ch in enumerate(lab):
        for g in HOMO.get(ch, []):
            u = lab[:i] + g + lab[i + 1:]
            for tld in ("com", "net"):
                try:
                    homos.add(u.encode("idna").decode() + "." + tld)
                except UnicodeError:
                    # Python's IDNA 2003 codec rejects some; use punycode directly.
                    homos.add("xn--" + u.encode("punycode").decode() + "." + tld)
with open(os.path.join(out_dir, "handmade-homograph.txt"), "w") as f:
    f.write("# one Latin letter replaced by a Cyrillic or Greek lookalike (tests/eval/generate.py)\n")
    for d in sorted(homos):
        f.write(d + "\n")
print("handmade", len(TOKENS) * len(PATTERNS), len(homos))

# Per region: visual dnstwist fuzzers on the first domain of every brand in the catalogue, so
# that `examples/eval.rs` can report detection for each region (tests/eval/regions/REGION.tsv,
# "domain<TAB>brand" per line).
import tomllib

VISUAL = ["cyrillic", "homoglyph", "hyphenation", "omission", "repetition", "transposition",
          "subdomain", "tld-swap", "various"]
PER_REGION_CAP = 4  # per fuzzer and brand
with open(os.path.join(here, "..", "..", "src", "lookalike", "brands.toml"), "rb") as f:
    catalogue = tomllib.load(f)["brand"]
reg_dir = os.path.join(here, "regions")
os.makedirs(reg_dir, exist_ok=True)
by_region = {}
for b in catalogue:
    primary = (b["domains"] or b.get("subdomains", []))[0]
    fz = dnstwist.Fuzzer(primary, tld_dictionary=TLDS)
    fz.generate(fuzzers=VISUAL)
    per = {}
    for p in fz.permutations():
        if p["fuzzer"] in VISUAL and p["domain"] != primary:
            per.setdefault(p["fuzzer"], set()).add(p["domain"])
    rows = by_region.setdefault(b["region"], [])
    for kind in sorted(per):
        doms = sorted(per[kind])
        if len(doms) > PER_REGION_CAP:
            doms = sorted(rng.sample(doms, PER_REGION_CAP))
        rows.extend((d, b["name"]) for d in doms)
for region, rows in sorted(by_region.items()):
    with open(os.path.join(reg_dir, f"{region}.tsv"), "w") as f:
        f.write(f"# dnstwist {dnstwist.__version__} visual fuzzers on the first domain of each "
                f"'{region}' brand, at most {PER_REGION_CAP} per fuzzer (tests/eval/generate.py)\n")
        for d, name in sorted(set(rows)):
            f.write(f"{d}\t{name}\n")
    print(region, len(rows))
