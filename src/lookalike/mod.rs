//! Brand-impersonation detection: lookalike sender domains, display names that claim a brand,
//! and links. Pure code: no I/O, no async, no logging above debug. The catalogue is compiled once
//! at config load (`Catalogue::build`); every check after that only reads it.
//!
//! INTERFACE STUB: the functions below keep their signatures; their bodies are being written.

use crate::config::{Issue, LookalikeSettings, RawBrand};
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

/// Every reason code this module can emit.
pub const REASONS: &[ReasonInfo] = &[];

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

/// The compiled brand catalogue.
#[derive(Debug, Default)]
pub struct Catalogue {
    _private: (),
}

impl Catalogue {
    /// Compiles the built-in brands (unless disabled) with the `[[brand]]` tables.
    pub fn build(_settings: &LookalikeSettings, _brands: &[RawBrand]) -> Result<Self, Vec<Issue>> {
        Ok(Self::default())
    }

    /// Number of brands in effect.
    pub fn len(&self) -> usize {
        0
    }

    /// Whether no brand is in effect.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
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

/// Extracts [`MessageFacts`] from a parsed message and the envelope sender.
pub fn facts_from_message(_msg: &mail_parser::Message<'_>, _envelope_from: &str) -> MessageFacts {
    MessageFacts::default()
}

/// Signals for one sender domain alone.
pub fn check_domain(_domain: &str, _catalogue: &Catalogue) -> Vec<Finding> {
    Vec::new()
}

/// Signals for a whole message.
pub fn check_message(
    _facts: &MessageFacts,
    _auth: &AuthContext,
    _catalogue: &Catalogue,
) -> Vec<Finding> {
    Vec::new()
}
