//! The reason vocabulary: every code spoofguard raises, with its default weight and one line of
//! description. Detectors emit codes; [`Weights`](super::Weights) maps them to weights, with
//! `[weights]` overrides. `docs/detection.md` and `docs/scoring.md` explain each code. Imports
//! nothing: lookalike ranks its findings by these default weights.

/// A reason code with its default weight.
#[derive(Clone, Copy, Debug)]
pub struct ReasonInfo {
    /// Stable upper-case code, e.g. `LOOKALIKE_BRAND_TOKEN`.
    pub code: &'static str,
    /// Default weight; `[weights]` in milter.toml overrides it.
    pub weight: f64,
    /// One line for docs and `--help`.
    pub description: &'static str,
}

/// Reason codes raised by `evaluate` itself (authentication and message shape), with
/// default weights. Lookalike codes are in [`LOOKALIKE_REASONS`]; `[[rule]]` codes are
/// `RULE:<name>` with the rule's own weight.
pub const AUTH_REASONS: &[ReasonInfo] = &[
    ReasonInfo {
        code: "DMARC_FAIL",
        weight: 4.0,
        description: "DMARC failed for the From domain (its policy is applied separately)",
    },
    ReasonInfo {
        code: "DMARC_TRUSTED_ARC",
        weight: 0.0,
        description: "a DMARC failure overridden: a trusted ARC sealer ([auth] trusted_arc_sealers) recorded a pass for the From domain",
    },
    ReasonInfo {
        code: "DMARC_INDIRECT",
        weight: 0.0,
        description: "a p=reject failure of mailing-list or forwarded mail: quarantined, not rejected (RFC 9989, section 8)",
    },
    ReasonInfo {
        code: "DMARC_LOCAL_POLICY",
        weight: 0.0,
        description: "[policy] local_dmarc_policy decided what a DMARC failure leads to",
    },
    ReasonInfo {
        code: "SPF_FAIL",
        weight: 1.0,
        description: "SPF failed for the envelope sender",
    },
    ReasonInfo {
        code: "SPF_SOFTFAIL",
        weight: 0.5,
        description: "SPF soft-failed for the envelope sender",
    },
    ReasonInfo {
        code: "DKIM_FAIL",
        weight: 1.0,
        description: "a DKIM signature failed and none passed",
    },
    ReasonInfo {
        code: "NO_AUTH",
        weight: 1.0,
        description: "no SPF pass, no DKIM pass and no DMARC record",
    },
    ReasonInfo {
        code: "FROM_MISSING",
        weight: 3.0,
        description: "the message has no usable From address",
    },
    ReasonInfo {
        code: "FROM_MULTIPLE",
        weight: 5.0,
        description: "the message has more than one From header or address",
    },
    ReasonInfo {
        code: "MALFORMED",
        weight: 3.0,
        description: "the message could not be parsed as RFC 5322",
    },
    ReasonInfo {
        code: "MIME_LIMIT",
        weight: 2.0,
        description: "MIME structure past max_mime_depth or max_mime_parts: the rest was not scanned",
    },
    ReasonInfo {
        code: "OVERSIZE",
        weight: 0.0,
        description: "larger than max_message_bytes: not verified",
    },
];

/// Codes raised by `lookalike` (brand impersonation), with default weights.
pub const LOOKALIKE_REASONS: &[ReasonInfo] = &[
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

/// Default weight of `code`; 0 for a code not in [`AUTH_REASONS`] or [`LOOKALIKE_REASONS`].
pub fn default_weight(code: &str) -> f64 {
    // Lookalike codes first: lookalike ranks its findings with this.
    LOOKALIKE_REASONS
        .iter()
        .chain(AUTH_REASONS)
        .find(|r| r.code == code)
        .map_or(0.0, |r| r.weight)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_codes_are_unique_across_tables() {
        let mut seen = std::collections::HashSet::new();
        for r in AUTH_REASONS.iter().chain(LOOKALIKE_REASONS) {
            assert!(seen.insert(r.code), "duplicate {}", r.code);
            assert_eq!(default_weight(r.code), r.weight, "{}", r.code);
        }
        assert_eq!(default_weight("RULE:anything"), 0.0);
    }
}
