//! The domain scorer on arbitrary text: no panic, details stay printable ASCII.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spoofguard::config::Config;
use spoofguard::lookalike::{Catalogue, check_domain};
use std::sync::LazyLock;

static CATALOGUE: LazyLock<Catalogue> = LazyLock::new(|| {
    let config = Config::default();
    Catalogue::build(&config.lookalike, &config.brands).expect("built-in catalogue")
});

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for finding in check_domain(&text, &CATALOGUE) {
        assert!(
            finding.detail.bytes().all(|b| (0x20..0x7f).contains(&b)),
            "{:?}",
            finding.detail
        );
    }
});
