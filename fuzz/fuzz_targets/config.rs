//! milter.toml text: parsing and validation never panic, and every error names the file.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spoofguard::config::Config;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = Config::from_toml(text, Path::new("fuzz.toml")) {
        // Every error starts with the file; TOML syntax errors then show the line and caret.
        assert!(e.to_string().starts_with("fuzz.toml: "), "{e}");
    }
});
