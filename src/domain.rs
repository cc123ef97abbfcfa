//! Domain names as spoofguard compares them. One rule set serves milter.toml's domain lists
//! (`[lookalike] allow_domains`, `[[brand]] domains`) and every domain the lookalike matcher
//! reads from a message (From, Reply-To, MAIL FROM, link hosts), so a configured name is one
//! the matcher can produce. A leaf: it imports nothing of ours, so config (the ground floor)
//! and the detectors can both use it.

/// Longer input is not looked at: it cannot be a domain name, and IDNA work on hostile input
/// stays bounded.
const MAX_INPUT_BYTES: usize = 1024;

/// Longest domain name in A-labels, without the trailing dot (RFC 1035, section 2.3.4).
const MAX_NAME_BYTES: usize = 253;

/// Longest label (RFC 1035, section 2.3.4).
const MAX_LABEL_BYTES: usize = 63;

/// The lowercase A-label form of a domain name (UTS #46 via `idna`), without the trailing dot;
/// `None` if `s` is not a name of at least two labels: whitespace or `@` in it, an IDNA error,
/// an empty label, a label longer than 63 bytes or with other than letters, digits, `-` and
/// `_`, or more than 253 bytes in all. Surrounding whitespace is ignored.
pub fn normalize_domain(s: &str) -> Option<String> {
    let s = s.trim().trim_end_matches('.');
    if s.is_empty()
        || s.len() > MAX_INPUT_BYTES
        || s.contains(|c: char| c.is_whitespace() || c == '@')
    {
        return None;
    }
    let ascii = idna::domain_to_ascii(s).ok()?;
    let ascii = ascii.trim_end_matches('.');
    let valid = !ascii.is_empty()
        && ascii.len() <= MAX_NAME_BYTES
        && ascii.contains('.')
        && ascii.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= MAX_LABEL_BYTES
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    valid.then(|| ascii.to_owned())
}

/// Inputs and their normal form, shared with the test that config and the matcher agree
/// (`lookalike/tests.rs`). None of them contains `@` or `/`, so each can also be written as the
/// domain of an address or the host of a link.
#[cfg(test)]
pub(crate) const NORMALIZE_CASES: &[(&str, Option<&str>)] = &[
    ("example.com", Some("example.com")),
    ("Example.COM", Some("example.com")),
    ("example.com.", Some("example.com")),
    ("EXAMPLE.com.", Some("example.com")),
    ("  example.com  ", Some("example.com")),
    ("Bücher.DE", Some("xn--bcher-kva.de")),
    ("xn--bcher-kva.de", Some("xn--bcher-kva.de")),
    ("例え.jp", Some("xn--r8jz45g.jp")),
    ("ＥＸＡＭＰＬＥ.com", Some("example.com")),
    ("_dmarc.example.com", Some("_dmarc.example.com")),
    ("mail-1.example.co.uk", Some("mail-1.example.co.uk")),
    // Not domain names. The first five were accepted by config before it shared these rules
    // with the matcher, so an allow-listed name could never match.
    (".example.com", None),
    ("a..example.com", None),
    ("exa!mple.com", None),
    ("*.example.com", None),
    (
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.com",
        None,
    ),
    ("localhost", None),
    ("not a domain", None),
    ("", None),
    (".", None),
    ("xn--.com", None),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_domain_table() {
        for &(input, want) in NORMALIZE_CASES {
            assert_eq!(normalize_domain(input).as_deref(), want, "{input:?}");
        }
        assert_eq!(normalize_domain("user@example.com"), None);
        let long = format!("{}.com", ["abcdefghij"; 25].join("."));
        assert_eq!(long.len(), 278);
        assert_eq!(normalize_domain(&long), None);
    }
}
