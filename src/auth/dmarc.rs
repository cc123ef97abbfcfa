//! DMARC (RFC 7489 and DMARCbis): the From domain's result and policy, with `pct` read from
//! the record text because mail-auth follows DMARCbis, which dropped it.

use super::dns::Caches;
use super::verdict::{AuthResult, DmarcPolicy, DmarcVerdict};
use mail_auth::dmarc::Policy;
use mail_auth::dmarc::verify::DmarcParameters;
use mail_auth::{
    AuthenticatedMessage, DkimOutput, DmarcResult, MessageAuthenticator, Parameters, SpfOutput,
};

/// Evaluates DMARC for the message's From domain from the DKIM outputs and SPF's output for
/// `spf_domain` (`None` without a client IP: then SPF contributes nothing).
pub(super) async fn verify(
    auth: &MessageAuthenticator,
    caches: &Caches,
    message: &AuthenticatedMessage<'_>,
    dkim_out: &[DkimOutput<'_>],
    spf_domain: &str,
    spf_out: Option<&SpfOutput>,
) -> DmarcVerdict {
    // DMARC needs an SPF output; without a client IP there is none, so SPF contributes nothing.
    let none_spf = SpfOutput::new(spf_domain.to_owned());
    let spf_for_dmarc = spf_out.unwrap_or(&none_spf);
    let dmarc_out = auth
        .verify_dmarc(
            Parameters::new(DmarcParameters::new(
                message,
                dkim_out,
                spf_domain,
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
    dmarc
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

fn map_dmarc(r: &DmarcResult) -> AuthResult {
    match r {
        DmarcResult::Pass => AuthResult::Pass,
        DmarcResult::Fail(_) => AuthResult::Fail,
        DmarcResult::TempError(_) => AuthResult::TempError,
        DmarcResult::PermError(_) => AuthResult::PermError,
        DmarcResult::None => AuthResult::None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_pct_reads_and_clamps() {
        assert_eq!(parse_pct("v=DMARC1; p=reject; pct=20"), Some(20));
        assert_eq!(parse_pct("v=DMARC1; p=reject; PCT = 250"), Some(100));
        assert_eq!(parse_pct("v=DMARC1; p=reject"), None);
        assert_eq!(parse_pct("v=DMARC1; pct=abc"), None);
    }
}
