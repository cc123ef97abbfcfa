//! Runs SPF, DKIM, ARC and DMARC with mail-auth and maps its outputs to our verdict types.
//! Only this module imports mail-auth's verifier types; everything else sees `AuthVerdicts`.
//! A DNS failure is a verdict (`TempError`), never an `Err`.

pub mod dns;
pub mod void;

use mail_auth::dmarc::Policy;
use mail_auth::dmarc::verify::DmarcParameters;
use mail_auth::spf::verify::SpfParameters;
use mail_auth::{
    AuthenticatedMessage, DkimResult, DmarcResult, Error as MaError, MessageAuthenticator,
    Parameters, SpfResult,
};
use serde::Serialize;
use std::fmt;
use std::net::IpAddr;

pub use dns::{Caches, build_authenticator};

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

/// The SMTP envelope facts SPF needs.
#[derive(Clone, Debug, Default)]
pub struct SmtpIdentity<'a> {
    pub client_ip: Option<IpAddr>,
    pub helo: &'a str,
    /// MAIL FROM address without angle brackets; empty for the null reverse-path.
    pub mail_from: &'a str,
    /// Our host name, for SPF macros (`%{r}`).
    pub host_domain: &'a str,
}

/// Runs all verifiers for a message; `max_signatures` bounds DKIM work.
pub async fn verify(
    auth: &MessageAuthenticator,
    caches: &Caches,
    message: &AuthenticatedMessage<'_>,
    smtp: &SmtpIdentity<'_>,
    arc_enabled: bool,
) -> AuthVerdicts {
    let dkim_out = auth
        .verify_dkim(Parameters::new(message).with_cache(caches))
        .await;
    let dkim: Vec<DkimVerdict> = dkim_out.iter().map(map_dkim).collect();

    let arc = if arc_enabled && !message.arc_seals().is_empty() {
        let out = auth
            .verify_arc(Parameters::new(message).with_cache(caches))
            .await;
        ArcVerdict {
            result: map_dkim_result(out.result()).0,
            sets: out.chain().len(),
        }
    } else {
        ArcVerdict {
            result: AuthResult::None,
            sets: message.arc_seals().len(),
        }
    };

    let helo = if smtp.helo.is_empty() {
        "unknown"
    } else {
        smtp.helo
    };
    let (spf_params, identity) = if smtp.mail_from.is_empty() {
        (
            smtp.client_ip
                .map(|ip| SpfParameters::helo(ip, helo, smtp.host_domain)),
            SpfIdentity::Helo(helo.to_owned()),
        )
    } else {
        (
            smtp.client_ip
                .map(|ip| SpfParameters::mail_from(ip, helo, smtp.host_domain, smtp.mail_from)),
            SpfIdentity::MailFrom(smtp.mail_from.to_owned()),
        )
    };
    let spf_domain = match &identity {
        SpfIdentity::MailFrom(addr) => addr.rsplit_once('@').map_or(helo, |(_, d)| d),
        SpfIdentity::Helo(h) => h.as_str(),
    }
    .to_ascii_lowercase();
    let mut spf_comment = None;
    let spf_out = match (spf_params, smtp.client_ip) {
        (Some(params), Some(ip)) => {
            let voids = void::VoidLookups::new();
            let out = auth
                .verify_spf(Parameters::new(params).with_cache(&voids.caches(caches)))
                .await;
            // RFC 7208, section 4.6.4: over two void lookups is a permerror. DMARC gets the
            // changed output too, so SPF no longer counts towards its alignment.
            if voids.exceeded(auth, ip, out.result()).await {
                spf_comment = Some("too many void lookups".to_owned());
                Some(out.with_result(SpfResult::PermError))
            } else {
                Some(out)
            }
        }
        _ => None,
    };
    let spf = SpfVerdict {
        result: spf_out
            .as_ref()
            .map_or(AuthResult::None, |o| map_spf(o.result())),
        identity,
        domain: spf_domain.clone(),
        comment: spf_comment,
    };

    // DMARC needs an SPF output; without a client IP there is none, so SPF contributes nothing.
    let none_spf = mail_auth::SpfOutput::new(spf_domain.clone());
    let spf_for_dmarc = spf_out.as_ref().unwrap_or(&none_spf);
    let dmarc_out = auth
        .verify_dmarc(
            Parameters::new(DmarcParameters::new(
                message,
                &dkim_out,
                &spf_domain,
                spf_for_dmarc,
            ))
            .with_cache(caches),
        )
        .await;
    let result = map_dmarc(&dmarc_out.result());
    let policy = dmarc_out.record().map(|_| match dmarc_out.policy() {
        Policy::Reject => DmarcPolicy::Reject,
        Policy::Quarantine => DmarcPolicy::Quarantine,
        Policy::None | Policy::Unspecified => DmarcPolicy::None,
    });
    let mut dmarc = DmarcVerdict {
        result,
        from_domain: dmarc_out.domain().to_ascii_lowercase(),
        policy,
        pct: 100,
        sampled: true,
    };
    if dmarc.result == AuthResult::Fail && matches!(dmarc.policy, Some(p) if p != DmarcPolicy::None)
    {
        // mail-auth follows DMARCbis, which dropped `pct`; RFC 7489 section 6.3 still has it
        // and many records carry it, so read it from the record text.
        if let Some(pct) = lookup_pct(auth, &dmarc.from_domain).await {
            dmarc.pct = pct;
            dmarc.sampled = pct >= 100 || (fastrand::u8(0..100) < pct);
        }
    }
    AuthVerdicts {
        spf,
        dkim,
        arc,
        dmarc,
    }
}

/// `pct=` of the DMARC record for `domain` or its organizational domain, if present.
async fn lookup_pct(auth: &MessageAuthenticator, domain: &str) -> Option<u8> {
    let mut names = vec![format!("_dmarc.{domain}.")];
    if let Some(org) = psl::domain_str(domain)
        && org != domain
    {
        names.push(format!("_dmarc.{org}."));
    }
    for name in names {
        let Ok(lookup) = auth.resolver().txt_lookup(name).await else {
            continue;
        };
        for txt in lookup.answers().iter().filter_map(|r| match &r.data {
            mail_auth::hickory_resolver::proto::rr::RData::TXT(t) => Some(t),
            _ => None,
        }) {
            let text: String = txt
                .txt_data
                .iter()
                .map(|part| String::from_utf8_lossy(part).into_owned())
                .collect();
            if !text.trim_start().starts_with("v=DMARC1") {
                continue;
            }
            return Some(parse_pct(&text).unwrap_or(100));
        }
    }
    None
}

/// `pct=N` from a DMARC record text; out-of-range values are clamped (RFC 7489, section 6.3).
pub fn parse_pct(record: &str) -> Option<u8> {
    record.split(';').find_map(|tag| {
        let (k, v) = tag.split_once('=')?;
        (k.trim().eq_ignore_ascii_case("pct"))
            .then(|| v.trim().parse::<u32>().ok().map(|n| n.min(100) as u8))
            .flatten()
    })
}

fn map_spf(r: SpfResult) -> AuthResult {
    match r {
        SpfResult::Pass => AuthResult::Pass,
        SpfResult::Fail => AuthResult::Fail,
        SpfResult::SoftFail => AuthResult::SoftFail,
        SpfResult::Neutral => AuthResult::Neutral,
        SpfResult::TempError => AuthResult::TempError,
        SpfResult::PermError => AuthResult::PermError,
        SpfResult::None => AuthResult::None,
    }
}

fn map_dmarc(r: &DmarcResult) -> AuthResult {
    match r {
        DmarcResult::Pass => AuthResult::Pass,
        DmarcResult::Fail(_) => AuthResult::Fail,
        DmarcResult::TempError(_) => AuthResult::TempError,
        DmarcResult::PermError(_) => AuthResult::PermError,
        DmarcResult::None => AuthResult::None,
    }
}

fn map_dkim_result(r: &DkimResult) -> (AuthResult, Option<String>) {
    match r {
        DkimResult::Pass => (AuthResult::Pass, None),
        // RFC 6376, section 3.7: a body hash that does not verify is a PERMFAIL, i.e. fail.
        DkimResult::Neutral(e @ MaError::Dkim(mail_auth::dkim::DkimError::BodyHashMismatch)) => {
            (AuthResult::Fail, Some(describe(e)))
        }
        DkimResult::Neutral(e) => (AuthResult::Neutral, Some(describe(e))),
        DkimResult::Fail(e) => (AuthResult::Fail, Some(describe(e))),
        DkimResult::PermError(e) => (AuthResult::PermError, Some(describe(e))),
        DkimResult::TempError(e) => (AuthResult::TempError, Some(describe(e))),
        DkimResult::None => (AuthResult::None, None),
    }
}

fn map_dkim(out: &mail_auth::DkimOutput<'_>) -> DkimVerdict {
    let (result, comment) = map_dkim_result(out.result());
    let sig = out.signature();
    DkimVerdict {
        result,
        domain: sig.map(|s| s.d.to_ascii_lowercase()).unwrap_or_default(),
        selector: sig.map(|s| s.s.clone()).unwrap_or_default(),
        algorithm: sig
            .map(|s| {
                match s.a {
                    mail_auth::crypto::Algorithm::RsaSha1 => "rsa-sha1",
                    mail_auth::crypto::Algorithm::RsaSha256 => "rsa-sha256",
                    mail_auth::crypto::Algorithm::Ed25519Sha256 => "ed25519-sha256",
                    mail_auth::crypto::Algorithm::MlDsa44 => "mldsa44",
                }
                .to_owned()
            })
            .unwrap_or_default(),
        b: sig.map(|s| base64_prefix(&s.b, 8)).unwrap_or_default(),
        comment,
    }
}

/// Short, fixed comment text for a verifier error (shown in Authentication-Results).
fn describe(e: &MaError) -> String {
    use mail_auth::dkim::DkimError;
    use mail_auth::{DnsError, crypto::CryptoError};
    match e {
        MaError::Dkim(DkimError::BodyHashMismatch) => "body hash mismatch",
        MaError::Dkim(DkimError::SignatureExpired) => "signature expired",
        MaError::Dkim(DkimError::PublicKeyRevoked) => "key revoked",
        MaError::Dkim(DkimError::BodyLengthTag) => "l= tag not accepted",
        MaError::Dkim(DkimError::AuidMismatch) => "i= not within d=",
        MaError::Dkim(_) => "unsupported signature",
        MaError::Crypto(CryptoError::FailedVerification) => "signature verification failed",
        MaError::Crypto(_) => "bad key or algorithm",
        MaError::Dns(DnsError::RecordNotFound(_)) => "no key for signature",
        MaError::Dns(DnsError::InvalidRecordType) => "invalid key record",
        MaError::Dns(DnsError::Resolver(_)) => "dns error",
        MaError::NotAligned => "not aligned",
        MaError::Parse | MaError::MissingParameters | MaError::Base64 => "malformed signature",
        _ => "verification error",
    }
    .to_owned()
}

/// Standard base64 (RFC 4648, section 4) with padding: DKIM's `b=` and `p=` encoding.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let v = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((v >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The first `n` characters of the base64 encoding of `bytes`, without padding.
fn base64_prefix(bytes: &[u8], n: usize) -> String {
    let mut s = base64(&bytes[..bytes.len().min(n.div_ceil(4) * 3)]);
    s.truncate(s.trim_end_matches('=').len().min(n));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_prefix_matches_standard_encoding() {
        assert_eq!(base64_prefix(b"hello world!", 8), "aGVsbG8g");
        assert_eq!(base64_prefix(b"hi", 8), "aGk");
        assert_eq!(base64_prefix(&[0xff, 0xfe, 0xfd, 0xfc], 8), "//79/A");
        assert_eq!(base64(b"hi"), "aGk=");
        assert_eq!(base64(b"hello world!"), "aGVsbG8gd29ybGQh");
        assert_eq!(base64(b"a"), "YQ==");
    }

    #[test]
    fn parse_pct_reads_and_clamps() {
        assert_eq!(parse_pct("v=DMARC1; p=reject; pct=20"), Some(20));
        assert_eq!(parse_pct("v=DMARC1; p=reject; PCT = 250"), Some(100));
        assert_eq!(parse_pct("v=DMARC1; p=reject"), None);
        assert_eq!(parse_pct("v=DMARC1; pct=abc"), None);
    }

    #[test]
    fn lowered_policy_steps_down() {
        assert_eq!(DmarcPolicy::Reject.lowered(), DmarcPolicy::Quarantine);
        assert_eq!(DmarcPolicy::Quarantine.lowered(), DmarcPolicy::None);
    }
}
