//! Brand-impersonation detection: lookalike sender domains, display names that claim a brand,
//! and links. Pure code: no I/O, no async, no logging above debug. The catalogue is compiled once
//! at config load (`Catalogue::build`); every check after that only reads it.
//!
//! Submodules: `brands` (catalogue, `brands.toml`), `domain` (sender-domain signals),
//! `skeleton` (UTS #39), `display` (display-name normalisation), `links` (message facts).
//! Reason codes and default weights are in [`REASONS`]; `docs/detection.md` explains each one.

mod brands;
mod display;
mod domain;
mod links;
mod message;
mod skeleton;
#[cfg(test)]
mod tests;

pub use brands::{
    BUILTIN_BRANDS, Brand, CATEGORIES, Catalogue, MIN_ALIAS_LEN, Origin, REGIONS, normalize_domain,
};
pub use links::{MAX_BODIES, MAX_BODY_SCAN_BYTES, MAX_LINKS};

use serde::Serialize;

/// A reason code this module can emit, with its default weight.
#[derive(Clone, Copy, Debug)]
pub struct ReasonInfo {
    /// Stable upper-case code, e.g. `LOOKALIKE_BRAND_TOKEN`.
    pub code: &'static str,
    /// Default weight; `[weights]` in milter.toml overrides it.
    pub weight: f64,
    /// One line for docs and `--help`.
    pub description: &'static str,
}

/// Every reason code this module can emit, with its default weight.
pub const REASONS: &[ReasonInfo] = &[
    ReasonInfo {
        code: "LOOKALIKE_SKELETON",
        weight: 12.0,
        description: "domain label is confusable (UTS #39 skeleton) with a brand token: rnicrosoft, paypa1, Cyrillic i",
    },
    ReasonInfo {
        code: "LOOKALIKE_EDIT_DISTANCE",
        weight: 10.0,
        description: "domain label is one or two edits from a brand token: gooogle, micosoft, amazno",
    },
    ReasonInfo {
        code: "LOOKALIKE_BRAND_TOKEN",
        weight: 10.0,
        description: "brand token with phishing vocabulary in a domain the brand does not own: microsoft-security-alert.com",
    },
    ReasonInfo {
        code: "LOOKALIKE_BRAND_EMBEDDED",
        weight: 6.0,
        description: "distinctive brand token glued into a longer label without phishing vocabulary: paypalhelpers.com",
    },
    ReasonInfo {
        code: "LOOKALIKE_OTHER_TLD",
        weight: 10.0,
        description: "brand name on a suffix the brand does not own: microsoft.xyz, paypal.co",
    },
    ReasonInfo {
        code: "LOOKALIKE_BRAND_SUBDOMAIN",
        weight: 10.0,
        description: "brand domain or token used as a subdomain of an unrelated domain: microsoft.com.login-verify.net",
    },
    ReasonInfo {
        code: "IDN_MIXED_SCRIPT",
        weight: 6.0,
        description: "a domain label mixes scripts (e.g. Latin with Cyrillic)",
    },
    ReasonInfo {
        code: "DISPLAY_NAME_BRAND",
        weight: 6.0,
        description: "From display name claims a brand but the From domain is not one of the brand's",
    },
    ReasonInfo {
        code: "DISPLAY_NAME_ADDRESS",
        weight: 4.0,
        description: "From display name shows an address or domain other than the real From domain",
    },
    ReasonInfo {
        code: "REPLY_TO_MISMATCH",
        weight: 2.0,
        description: "Reply-To on another registrable domain than From",
    },
    ReasonInfo {
        code: "REPLY_TO_FREEMAIL",
        weight: 4.0,
        description: "Reply-To at a free-mail provider while From is not",
    },
    ReasonInfo {
        code: "ENVELOPE_MISMATCH",
        weight: 1.0,
        description: "envelope sender domain unrelated to the From domain (common with ESPs)",
    },
    ReasonInfo {
        code: "LINK_LOOKALIKE",
        weight: 6.0,
        description: "a link goes to a lookalike domain (the worst one is reported)",
    },
    ReasonInfo {
        code: "LINK_TEXT_MISMATCH",
        weight: 4.0,
        description: "anchor text shows one domain, the link goes to another",
    },
    ReasonInfo {
        code: "BRAND_LINKS_OFFSITE",
        weight: 3.0,
        description: "mail claiming a brand by display name whose links all leave the brand's domains",
    },
    ReasonInfo {
        code: "BRAND_DOMAIN_DMARC_FAIL",
        weight: 12.0,
        description: "From uses a catalogue brand's own domain and DMARC failed (even with p=none)",
    },
];

/// The default tag threshold (`[policy] tag_at`); the evaluation counts a domain as flagged when
/// one finding's default weight reaches it.
pub const FLAG_WEIGHT: f64 = 5.0;

/// Whether one of `findings` has a default weight of at least [`FLAG_WEIGHT`].
pub fn is_flagged(findings: &[Finding]) -> bool {
    findings.iter().any(|f| weight(f.code) >= FLAG_WEIGHT)
}

/// Default weight of `code`; 0 for an unknown code.
pub fn weight(code: &str) -> f64 {
    REASONS
        .iter()
        .find(|r| r.code == code)
        .map_or(0.0, |r| r.weight)
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
    /// A code from [`REASONS`].
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
