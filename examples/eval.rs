//! Lookalike evaluation: detection rate per lookalike kind and false-positive rate per group of
//! legitimate domains, on the files in `tests/eval/`.
//!
//!     cargo run --release --example eval [-- --misses]
//!
//! Then, per catalogue region: detection on `tests/eval/regions/REGION.tsv` (visual dnstwist
//! lookalikes of each brand's first domain) and the false positives on the legitimate groups
//! caused by that region's brands.
//!
//! A domain is "flagged" when `check_domain` returns a finding whose default weight is at least
//! the default tag threshold, 5.0 (`spoofguard::config::raw::DEFAULT_TAG_AT`). Lookalike candidates
//! that are in fact a brand's own domain (dnstwist's tld-swap makes `amazon.de`) are skipped and
//! counted apart.

use spoofguard::config::LookalikeSettings;
use spoofguard::lookalike::{Catalogue, REGIONS, check_domain, is_flagged};
use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

/// dnstwist kinds left out of the headline rate: keyboard and bit-flip typos, which are not
/// visual lookalikes (see docs/detection.md). They are still measured and printed.
const NOT_VISUAL: &[&str] = &[
    "dnstwist-bitsquatting",
    "dnstwist-replacement",
    "dnstwist-insertion",
    "dnstwist-vowel-swap",
    "dnstwist-addition",
    "dnstwist-plural",
];

fn read_list(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    v.sort();
    v
}

fn main() {
    let show_misses = std::env::args().any(|a| a == "--misses");
    let settings = LookalikeSettings {
        enabled: true,
        builtin_brands: true,
        allow_domains: vec![],
        max_links: spoofguard::lookalike::MAX_LINKS,
    };
    let cat = Catalogue::build(&settings, &[]).expect("the built-in catalogue compiles");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/eval");
    let started = Instant::now();
    let mut checked = 0usize;

    println!("lookalikes (flagged = a finding with default weight >= 5.0)");
    println!(
        "{:<34} {:>6} {:>7} {:>8} {:>6}",
        "kind", "total", "flagged", "rate", "own"
    );
    let (mut pt, mut pf) = (0usize, 0usize);
    let (mut vt, mut vf) = (0usize, 0usize);
    for f in files(&root.join("positives")) {
        let kind = f
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let (mut total, mut flagged, mut own) = (0usize, 0usize, 0usize);
        let mut misses = Vec::new();
        for d in read_list(&f) {
            if cat.brand_for_domain(&d).is_some() {
                own += 1;
                continue;
            }
            checked += 1;
            total += 1;
            if is_flagged(&check_domain(&d, &cat)) {
                flagged += 1;
            } else {
                misses.push(d);
            }
        }
        pt += total;
        pf += flagged;
        if !NOT_VISUAL.contains(&kind.as_str()) {
            vt += total;
            vf += flagged;
        }
        println!(
            "{kind:<34} {total:>6} {flagged:>7} {:>7.2}% {own:>6}",
            100.0 * flagged as f64 / total.max(1) as f64
        );
        if show_misses && !misses.is_empty() {
            println!("    missed: {}", misses.join(" "));
        }
    }
    println!(
        "{:<34} {pt:>6} {pf:>7} {:>7.2}%",
        "ALL",
        100.0 * pf as f64 / pt.max(1) as f64
    );

    println!(
        "{:<34} {vt:>6} {vf:>7} {:>7.2}%",
        "HEADLINE (visual + brand-token)",
        100.0 * vf as f64 / vt.max(1) as f64
    );

    println!("\nlegitimate domains");
    println!(
        "{:<34} {:>6} {:>7} {:>8}",
        "group", "total", "flagged", "FP rate"
    );
    let mut groups: Vec<(String, Vec<String>)> = files(&root.join("negatives"))
        .into_iter()
        .map(|f| {
            let g = f
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            (g, read_list(&f))
        })
        .collect();
    let own: Vec<String> = cat
        .brands()
        .iter()
        .flat_map(|b| b.domains.iter().cloned())
        .collect();
    groups.insert(0, ("brand-own-domains".to_owned(), own));
    let region_of: HashMap<&str, &str> = cat
        .brands()
        .iter()
        .map(|b| (b.name.as_str(), b.region.as_str()))
        .collect();
    // Region → (false positives, legitimate domains checked), over the Tranco and dictionary groups.
    let mut fp_by_region: HashMap<String, usize> = HashMap::new();
    let mut legit_total = 0usize;
    let mut fp_lines = Vec::new();
    for (g, list) in groups {
        let mut fps = Vec::new();
        let counted = g != "brand-own-domains";
        if counted {
            legit_total += list.len();
        }
        for d in &list {
            checked += 1;
            let f = check_domain(d, &cat);
            if is_flagged(&f) {
                let brand = f[0].brand.as_deref().unwrap_or("-");
                let region = region_of.get(brand).copied().unwrap_or("-");
                fps.push(format!("{d}[{} {brand}/{region}]", f[0].code));
                if counted {
                    *fp_by_region.entry(region.to_owned()).or_default() += 1;
                    fp_lines.push(format!("{region:<20} {brand:<24} {d} {}", f[0].code));
                }
            }
        }
        println!(
            "{g:<34} {:>6} {:>7} {:>7.3}%",
            list.len(),
            fps.len(),
            100.0 * fps.len() as f64 / list.len().max(1) as f64
        );
        if show_misses && !fps.is_empty() {
            println!("    flagged: {}", fps.join(" "));
        }
    }
    println!(
        "\nper region (lookalikes: tests/eval/regions/REGION.tsv; FP: Tranco + dictionary groups, {legit_total} domains)"
    );
    println!(
        "{:<20} {:>6} {:>6} {:>7} {:>8} {:>4} {:>8}",
        "region", "brands", "total", "flagged", "rate", "FP", "FP rate"
    );
    let (mut rt, mut rf) = (0usize, 0usize);
    for region in REGIONS {
        let brands = cat.brands().iter().filter(|b| b.region == *region).count();
        let path = root.join("regions").join(format!("{region}.tsv"));
        let (mut total, mut flagged) = (0usize, 0usize);
        let mut misses = Vec::new();
        if path.exists() {
            for line in read_list(&path) {
                let d = line.split('\t').next().unwrap_or_default();
                if cat.brand_for_domain(d).is_some() {
                    continue;
                }
                checked += 1;
                total += 1;
                if is_flagged(&check_domain(d, &cat)) {
                    flagged += 1;
                } else {
                    misses.push(line.replace('\t', "/"));
                }
            }
        }
        rt += total;
        rf += flagged;
        let fp = fp_by_region.get(*region).copied().unwrap_or(0);
        println!(
            "{region:<20} {brands:>6} {total:>6} {flagged:>7} {:>7.2}% {fp:>4} {:>7.3}%",
            100.0 * flagged as f64 / total.max(1) as f64,
            100.0 * fp as f64 / legit_total.max(1) as f64
        );
        if show_misses && !misses.is_empty() {
            println!("    missed: {}", misses.join(" "));
        }
    }
    let fp_all: usize = fp_by_region.values().sum();
    println!(
        "{:<20} {:>6} {rt:>6} {rf:>7} {:>7.2}% {fp_all:>4} {:>7.3}%",
        "ALL",
        cat.len(),
        100.0 * rf as f64 / rt.max(1) as f64,
        100.0 * fp_all as f64 / legit_total.max(1) as f64
    );
    if show_misses && !fp_lines.is_empty() {
        fp_lines.sort();
        println!("\nfalse positives by region and brand:");
        for l in fp_lines {
            println!("    {l}");
        }
    }
    let el = started.elapsed();
    println!(
        "\n{checked} domains in {:.2?} ({:.1} us per domain)",
        el,
        el.as_secs_f64() * 1e6 / checked.max(1) as f64
    );
}
