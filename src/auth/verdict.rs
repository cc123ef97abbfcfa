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
    /// The sets of a chain that validated, newest first: who sealed each and what its
    /// ARC-Authentication-Results recorded. Empty unless `result` is `pass`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub chain: Vec<ArcSet>,
}

/// One validated ARC set: the sealer (`d=` of its ARC-Seal) and the passes its
/// ARC-Authentication-Results recorded (RFC 8617, section 4.1.1).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ArcSet {
    pub instance: u32,
    /// `d=` of the ARC-Seal, lowercase.
    pub sealer: String,
    /// `header.from` of each `dmarc=pass`.
    pub dmarc_pass: Vec<String>,
    /// `header.d` of each `dkim=pass`.
    pub dkim_pass: Vec<String>,
    /// The domain of `smtp.mailfrom` of each `spf=pass`.
    pub spf_pass: Vec<String>,
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
}

/// The DMARC verdict for the RFC 5322.From domain (RFC 9989). With several author domains
/// (section 11.5) each is evaluated and this is the strictest: a failure with the strongest
/// policy, else a pass.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DmarcVerdict {
    pub result: AuthResult,
    /// The From domain (A-label), empty if there was none.
    pub from_domain: String,
    /// The policy that applies to this domain as discovered (`p`, `sp` or `np` by the DNS
    /// tree walk, lowered one level by `t=y`), if a record was found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<DmarcPolicy>,
    /// The record had `t=y` (test mode): `policy` is already one level lower.
    pub testing: bool,
    /// The record discovered, as published: `p`, `sp`, `np`, `psd`, and where it was found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record: Option<DmarcRecordInfo>,
    /// The other author domains, when the From header named several (evaluated too).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub other_authors: Vec<String>,
}

/// The DMARC record that applied, as published (RFC 9989, section 4.7), for reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DmarcRecordInfo {
    pub p: DmarcPolicy,
    pub sp: DmarcPolicy,
    pub np: DmarcPolicy,
    /// `psd=`: `y`, `n` or `u`.
    pub psd: char,
    pub t: bool,
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
