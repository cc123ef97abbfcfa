//! A fixed sample of the lookalike evaluation set (`tests/eval/`), with exact expectations.
//! The full set runs with `cargo run --release --example eval`.

use spoofguard::config::LookalikeSettings;
use spoofguard::lookalike::{Catalogue, check_domain};
use std::path::Path;

fn catalogue() -> Catalogue {
    let s = LookalikeSettings {
        enabled: true,
        builtin_brands: true,
        allow_domains: vec![],
        max_links: spoofguard::lookalike::MAX_LINKS,
    };
    Catalogue::build(&s, &[]).unwrap()
}

/// (file, domain, strongest finding code and brand, or None for a clean domain).
type Case = (
    &'static str,
    &'static str,
    Option<(&'static str, &'static str)>,
);

const SAMPLE: &[Case] = &[
    (
        "positives/dnstwist-addition.txt",
        "amazon2.co.jp",
        Some(("LOOKALIKE_EDIT_DISTANCE", "Amazon")),
    ),
    (
        "positives/dnstwist-addition.txt",
        "americanexpresst.com",
        Some(("LOOKALIKE_EDIT_DISTANCE", "American Express")),
    ),
    (
        "positives/dnstwist-bitsquatting.txt",
        "amqzon.com",
        Some(("LOOKALIKE_EDIT_DISTANCE", "Amazon")),
    ),
    (
        "positives/dnstwist-homoglyph.txt",
        "japamp0st.jp",
        Some(("LOOKALIKE_SKELETON", "Japan Post")),
    ),
    (
        "positives/dnstwist-hyphenation.txt",
        "am-azon.co.jp",
        Some(("LOOKALIKE_EDIT_DISTANCE", "Amazon")),
    ),
    (
        "positives/dnstwist-insertion.txt",
        "amazson.com",
        Some(("LOOKALIKE_EDIT_DISTANCE", "Amazon")),
    ),
    (
        "positives/dnstwist-omission.txt",
        "inance.com",
        Some(("LOOKALIKE_EDIT_DISTANCE", "Binance")),
    ),
    (
        "positives/dnstwist-repetition.txt",
        "rakkuten.co.jp",
        Some(("LOOKALIKE_EDIT_DISTANCE", "Rakuten")),
    ),
    (
        "positives/dnstwist-replacement.txt",
        "2ellsfargo.com",
        Some(("LOOKALIKE_EDIT_DISTANCE", "Wells Fargo")),
    ),
    (
        "positives/dnstwist-subdomain.txt",
        "kuronekoya.mato.co.jp",
        Some(("LOOKALIKE_BRAND_SUBDOMAIN", "Yamato Transport")),
    ),
    (
        "positives/dnstwist-tld-swap.txt",
        "coinbase.buzz",
        Some(("LOOKALIKE_OTHER_TLD", "Coinbase")),
    ),
    (
        "positives/dnstwist-transposition.txt",
        "afcebook.com",
        Some(("LOOKALIKE_EDIT_DISTANCE", "Meta")),
    ),
    // Known miss: a whole-word token glued to a single short word (see docs/detection.md).
    ("positives/dnstwist-various.txt", "applecom.com", None),
    (
        "positives/handmade-brand-token.txt",
        "secure-instagram-login.net",
        Some(("LOOKALIKE_BRAND_TOKEN", "Instagram")),
    ),
    (
        "positives/handmade-homograph.txt",
        "xn--dropbx-0qf.net",
        Some(("LOOKALIKE_SKELETON", "Dropbox")),
    ),
    ("negatives/tranco-top10k.txt", "apple.com", None),
    ("negatives/tranco-top10k.txt", "squareup.com", None),
    ("negatives/tranco-top10k.txt", "lazybumblebee.com", None),
    ("negatives/tranco-top10k.txt", "squarespace-cdn.com", None),
    ("negatives/dictionary-hard.txt", "pineapple.com", None),
    ("negatives/dictionary-hard.txt", "helpline.com", None),
];

#[test]
fn eval_sample_exact() {
    let cat = catalogue();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/eval");
    let mut wrong = Vec::new();
    for (file, domain, want) in SAMPLE {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        assert!(
            text.lines().any(|l| l == *domain),
            "{domain} is not in {file}"
        );
        let got = check_domain(domain, &cat);
        let top = got
            .iter()
            .find(|f| f.brand.is_some())
            .map(|f| (f.code, f.brand.as_deref().unwrap_or("")));
        if top != *want {
            wrong.push(format!("{domain}: got {top:?}, want {want:?}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
