//! Our verdict types: what each verifier concluded, in RFC 8601 terms, with no mail-auth type
//! in them. `header` writes Authentication-Results from these, `evaluate` scores them.

use serde::Serialize;
use std::fmt;

/// An RFC 8601 result keyword.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthResult {
    Pass,
    Fail,
    SoftFail,
    Neutral,
    None,
    TempError,
    PermError,
}

impl AuthResult {
    /// The keyword as written in Authentication-Results.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthResult::Pass => "pass",
            AuthResult::Fail => "fail",
            AuthResult::SoftFail => "softfail",
            AuthResult::Neutral => "neutral",
            AuthResult::None => "none",
            AuthResult::TempError => "temperror",
            AuthResult::PermError => "permerror",
        }
    }
}

impl fmt::Display for AuthResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which identity SPF checked (RFC 7208, section 2.3 and 2.4).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SpfIdentity {
    /// `smtp.mailfrom`
    MailFrom(String),
    /// `smtp.helo` (null reverse-path)
    Helo(String),
}

/// The SPF verdict.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SpfVerdict {
    pub result: AuthResult,
    pub identity: SpfIdentity,
    /// Domain that was checked.
    pub domain: String,
    /// Why, when we know more than the result says (shown in Authentication-Results).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// One DKIM signature's verdict.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DkimVerdict {
    pub result: AuthResult,
    /// `d=`
    pub domain: String,
    /// `s=`
    pub selector: String,
    /// `a=`
    pub algorithm: String,
    /// The first 8 characters of `b=` in base64 (RFC 6008).
    pub b: String,
    /// Why it did not pass.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// The ARC chain verdict.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ArcVerdict {
    pub result: AuthResult,
    /// Number of ARC sets seen.
    pub sets: usize,
}

/// DMARC's requested policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DmarcPolicy {
    None,
    Quarantine,
    Reject,
}

impl DmarcPolicy {
    /// As in a DMARC record.
    pub fn as_str(self) -> &'static str {
        match self {
            DmarcPolicy::None => "none",
            DmarcPolicy::Quarantine => "quarantine",
            DmarcPolicy::Reject => "reject",
        }
    }

    /// One step down (RFC 7489, section 6.6.4, for messages outside `pct`).
    pub fn lowered(self) -> DmarcPolicy {
        match self {
            DmarcPolicy::Reject => DmarcPolicy::Quarantine,
            _ => DmarcPolicy::None,
        }
    }
}

/// The DMARC verdict for the RFC 5322.From domain.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DmarcVerdict {
    pub result: AuthResult,
    /// The From domain (A-label), empty if there was none.
    pub from_domain: String,
    /// The policy to apply to a failing message (`p`, `sp` or `np`, after `t=y`), if a record
    /// was found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<DmarcPolicy>,
    /// `pct` from the record (100 when absent).
    pub pct: u8,
    /// Whether this message fell inside `pct` (always true at 100).
    pub sampled: bool,
}

impl DmarcVerdict {
    /// The policy this message is subject to: `policy`, lowered one step when outside `pct`.
    pub fn effective_policy(&self) -> Option<DmarcPolicy> {
        let p = self.policy?;
        Some(if self.sampled { p } else { p.lowered() })
    }
}

/// Every verdict for one message.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AuthVerdicts {
    pub spf: SpfVerdict,
    pub dkim: Vec<DkimVerdict>,
    pub arc: ArcVerdict,
    pub dmarc: DmarcVerdict,
}

impl AuthVerdicts {
    /// Whether any verifier hit a temporary DNS failure that decides the DMARC outcome.
    pub fn has_temperror(&self) -> bool {
        self.dmarc.result == AuthResult::TempError
    }

    /// The DKIM results joined for logs: `pass`, `none`, or `pass,fail`.
    pub fn dkim_summary(&self) -> String {
        if self.dkim.is_empty() {
            return "none".into();
        }
        self.dkim
            .iter()
            .map(|d| d.result.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowered_policy_steps_down() {
        assert_eq!(DmarcPolicy::Reject.lowered(), DmarcPolicy::Quarantine);
        assert_eq!(DmarcPolicy::Quarantine.lowered(), DmarcPolicy::None);
    }
}
