//! Scoring: findings become weighted reasons, the sum becomes a verdict by `[policy]`
//! thresholds. Pure code; the DMARC policy and DNS outcome are combined in `evaluate`.

use crate::config::{Issue, PolicySettings};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

pub mod reasons;

pub use reasons::{AUTH_REASONS, LOOKALIKE_REASONS, ReasonInfo};

/// Effective weight per code: defaults, overridden by `[weights]`.
#[derive(Clone, Debug)]
pub struct Weights {
    map: HashMap<&'static str, f64>,
}

impl Weights {
    /// Merges the defaults with `[weights]`; an unknown code is an issue.
    pub fn build(overrides: &BTreeMap<String, f64>) -> Result<Weights, Vec<Issue>> {
        let mut map: HashMap<&'static str, f64> = AUTH_REASONS
            .iter()
            .chain(LOOKALIKE_REASONS)
            .map(|r| (r.code, r.weight))
            .collect();
        let mut issues = Vec::new();
        for (code, weight) in overrides {
            match map.get_mut(code.as_str()) {
                Some(w) => *w = *weight,
                None => issues.push(Issue::new(
                    format!("weights.{code}"),
                    format!("unknown reason code \"{code}\" (see docs/detection.md)"),
                )),
            }
        }
        if issues.is_empty() {
            Ok(Weights { map })
        } else {
            Err(issues)
        }
    }

    /// Weight of `code`; 0 for a code not known (never the case for our own codes).
    pub fn of(&self, code: &str) -> f64 {
        self.map.get(code).copied().unwrap_or(0.0)
    }
}

/// One scored reason.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Reason {
    pub code: String,
    pub detail: String,
    pub weight: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub brand: Option<String>,
}

/// What happens to the message, in increasing severity (Tempfail is separate).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// Not judged: a trusted network or an authenticated sender.
    Skip,
    Accept,
    Tag,
    Quarantine,
    Reject,
    Tempfail,
}

impl Decision {
    /// As in `X-Spoofguard-Verdict` and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Skip => "skip",
            Decision::Accept => "accept",
            Decision::Tag => "tag",
            Decision::Quarantine => "quarantine",
            Decision::Reject => "reject",
            Decision::Tempfail => "tempfail",
        }
    }
}

impl std::fmt::Display for Decision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Sum of weights, rounded to one decimal so the header and the thresholds agree.
pub fn total(reasons: &[Reason]) -> f64 {
    let sum: f64 = reasons.iter().map(|r| r.weight).sum();
    // `+ 0.0` turns the -0.0 that an empty f64 sum gives into 0.0.
    (sum * 10.0).round() / 10.0 + 0.0
}

/// The verdict a score earns by the `[policy]` thresholds.
pub fn decide(score: f64, policy: &PolicySettings) -> Decision {
    if score >= policy.reject_at {
        Decision::Reject
    } else if score >= policy.quarantine_at {
        Decision::Quarantine
    } else if score >= policy.tag_at {
        Decision::Tag
    } else {
        Decision::Accept
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn reason(code: &str, weight: f64) -> Reason {
        Reason {
            code: code.into(),
            detail: String::new(),
            weight,
            brand: None,
        }
    }

    #[test]
    fn decide_uses_inclusive_thresholds() {
        let p = Config::default().policy;
        assert_eq!(decide(0.0, &p), Decision::Accept);
        assert_eq!(decide(4.9, &p), Decision::Accept);
        assert_eq!(decide(5.0, &p), Decision::Tag);
        assert_eq!(decide(10.0, &p), Decision::Quarantine);
        assert_eq!(decide(20.0, &p), Decision::Reject);
    }

    #[test]
    fn total_rounds_to_one_decimal() {
        let r = [reason("A", 0.1), reason("B", 0.2), reason("C", 4.7)];
        assert_eq!(total(&r), 5.0);
        assert_eq!(total(&[]), 0.0);
    }

    #[test]
    fn weights_override_and_reject_unknown_codes() {
        let mut o = BTreeMap::new();
        o.insert("DMARC_FAIL".to_string(), 7.5);
        let w = Weights::build(&o).unwrap();
        assert_eq!(w.of("DMARC_FAIL"), 7.5);
        assert_eq!(w.of("SPF_FAIL"), 1.0);
        o.insert("NOPE".to_string(), 1.0);
        let issues = Weights::build(&o).unwrap_err();
        assert_eq!(
            issues,
            vec![Issue::new(
                "weights.NOPE",
                "unknown reason code \"NOPE\" (see docs/detection.md)"
            )]
        );
    }
}
