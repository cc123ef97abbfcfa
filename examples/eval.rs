//! Lookalike evaluation: detection rate per lookalike kind and false-positive rate per group of
//! legitimate domains, on the files in `tests/eval/`.
//!
//!     cargo run --release --example eval [-- --misses]
//!
//! A domain is "flagged" when `check_domain` returns a finding whose default weight is at least
//! the default tag threshold, 5.0 (`spoofguard::lookalike::FLAG_WEIGHT`). Lookalike candidates
//! that are in fact a brand's own domain (dnstwist's tld-swap makes `amazon.de`) are skipped and
//! counted apart.

use spoofguard::config::LookalikeSettings;
use spoofguard::lookalike::{Catalogue, check_domain, is_flagged};
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
    for (g, list) in groups {
        let mut fps = Vec::new();
        for d in &list {
            checked += 1;
            let f = check_domain(d, &cat);
            if is_flagged(&f) {
                fps.push(format!("{d}[{}]", f[0].code));
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
    let el = started.elapsed();
    println!(
        "\n{checked} domains in {:.2?} ({:.1} us per domain)",
        el,
        el.as_secs_f64() * 1e6 / checked.max(1) as f64
    );
}
