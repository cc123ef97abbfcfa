//! SPF (RFC 7208): which identity is checked (MAIL FROM, or HELO for the null reverse-path),
//! the void-lookup limit (`void.rs`) on top of mail-auth, and the mapping of its result.

use super::SmtpIdentity;
use super::dns::Caches;
use super::verdict::{AuthResult, SpfIdentity, SpfVerdict};
use super::void;
use mail_auth::spf::verify::SpfParameters;
use mail_auth::{MessageAuthenticator, Parameters, SpfOutput, SpfResult};

/// Checks SPF for the SMTP identity. mail-auth's output comes back too (DMARC needs it); there
/// is none without a client IP. The verdict's `domain` is the domain DMARC aligns with.
pub(super) async fn verify(
    auth: &MessageAuthenticator,
    caches: &Caches,
    smtp: &SmtpIdentity<'_>,
) -> (Option<SpfOutput>, SpfVerdict) {
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
    (spf_out, spf)
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
