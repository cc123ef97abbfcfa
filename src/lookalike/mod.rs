//! Brand-impersonation detection: lookalike sender domains, display names that claim a brand,
//! and links. Pure code: no I/O, no async, no logging above debug. The catalogue is compiled once
//! at config load (`Catalogue::build`); every check after that only reads it.
//!
//! Submodules: `brands` (catalogue, `brands.toml`), `domain` (sender-domain signals),
//! `skeleton` (UTS #39), `display` (display-name normalisation), `links` (message facts).
//! Findings carry reason codes; their default weights are in
//! [`score::reasons`](crate::score::reasons), and `docs/detection.md` explains each one.

mod brands;
mod display;
mod domain;
mod links;
mod message;
mod skeleton;
#[cfg(test)]
mod tests;

pub use brands::{BUILTIN_BRANDS, Brand, CATEGORIES, Catalogue, MIN_ALIAS_LEN, Origin, REGIONS};
pub use links::{MAX_BODIES, MAX_BODY_SCAN_BYTES, MAX_LINKS};

use crate::config::raw::DEFAULT_TAG_AT;
// Findings are ranked by default weight; the vocabulary and weights belong to `score`.
use crate::score::reasons::default_weight as weight;
use serde::Serialize;

/// Whether one of `findings` would tag a message on its own: its default weight reaches the
/// default `[policy] tag_at`.
pub fn is_flagged(findings: &[Finding]) -> bool {
    findings.iter().any(|f| weight(f.code) >= DEFAULT_TAG_AT)
}

/// Makes `s` a safe header detail: printable ASCII only (others become `?`), at most 200 bytes.
pub(crate) fn ascii_detail(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| if (' '..='~').contains(&c) { c } else { '?' })
        .take(200)
        .collect();
    out.truncate(out.trim_end().len());
    out
}

/// One signal found in a domain or message.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Finding {
    /// A code from [`LOOKALIKE_REASONS`](crate::score::reasons::LOOKALIKE_REASONS).
    pub code: &'static str,
    /// Short printable-ASCII detail, e.g. `microsoft-support.xyz ~ microsoft.com`.
    pub detail: String,
    /// Canonical name of the brand concerned, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub brand: Option<String>,
}

/// A link found in a body.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Link {
    /// Host of the link target (lowercase, A-label).
    pub href_domain: String,
    /// A domain shown in the anchor text, when the text itself looks like a URL or domain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text_domain: Option<String>,
}

/// What the message-level checks look at, extracted once per message.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct MessageFacts {
    /// Domain of the RFC 5322 From address (lowercase, A-label).
    pub from_domain: Option<String>,
    /// The From address.
    pub from_address: Option<String>,
    /// The decoded From display name.
    pub display_name: Option<String>,
    /// Reply-To addresses.
    pub reply_to: Vec<String>,
    /// Domain of the envelope sender (MAIL FROM), if any.
    pub envelope_domain: Option<String>,
    /// Links in text and HTML bodies (bounded).
    pub links: Vec<Link>,
}

/// Authentication results the brand checks depend on, for the From domain.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct AuthContext {
    /// DMARC passed for the From domain.
    pub dmarc_pass: bool,
    /// DMARC failed for the From domain (whatever its policy).
    pub dmarc_fail: bool,
}

/// Extracts [`MessageFacts`] from a parsed message and the envelope sender (MAIL FROM, with or
/// without angle brackets; empty for the null sender). Bounded by [`MAX_LINKS`], [`MAX_BODIES`]
/// and [`MAX_BODY_SCAN_BYTES`]; never panics.
pub fn facts_from_message(msg: &mail_parser::Message<'_>, envelope_from: &str) -> MessageFacts {
    links::facts(msg, envelope_from, MAX_LINKS)
}

/// As [`facts_from_message`], keeping at most `max_links` links (`[lookalike] max_links`).
pub fn facts_from_message_with_limit(
    msg: &mail_parser::Message<'_>,
    envelope_from: &str,
    max_links: usize,
) -> MessageFacts {
    links::facts(msg, envelope_from, max_links)
}

/// Signals for one sender domain alone (Unicode or punycode, any case, trailing dot allowed).
/// A brand's own domains, their subdomains and allow-listed domains give nothing; otherwise at
/// most one lookalike finding per brand (the strongest), plus `IDN_MIXED_SCRIPT`. Sorted by
/// default weight, strongest first.
pub fn check_domain(domain: &str, catalogue: &Catalogue) -> Vec<Finding> {
    domain::check(domain, catalogue)
}

/// Signals for a whole message; see `docs/detection.md`.
pub fn check_message(
    facts: &MessageFacts,
    auth: &AuthContext,
    catalogue: &Catalogue,
) -> Vec<Finding> {
    message::check(facts, auth, catalogue)
}
