//! DMARC (RFC 9989): the From domain's result and the policy discovered by the DNS tree walk
//! (`p`, `sp`, `np`, `psd`, `t=y` lowering the policy one level), as mail-auth evaluates it.
//! `pct` is gone from RFC 9989 and ignored. Several author domains (section 11.5) are each
//! evaluated, up to [`MAX_AUTHORS`], and the strictest verdict is kept.

use super::dns::Caches;
use super::verdict::{AuthResult, DmarcPolicy, DmarcRecordInfo, DmarcVerdict};
use mail_auth::dmarc::verify::DmarcParameters;
use mail_auth::dmarc::{Policy, Psd};
use mail_auth::{
    AuthenticatedMessage, DkimOutput, DmarcOutput, DmarcResult, MessageAuthenticator, Parameters,
    SpfOutput,
};

/// Author domains evaluated per message; later ones are named in the verdict, not looked up.
pub const MAX_AUTHORS: usize = 5;

/// Evaluates DMARC for the message's From domain(s) from the DKIM outputs and SPF's output
/// for `spf_domain` (`None` without a client IP: then SPF contributes nothing).
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
    let authors = author_domains(message.from_addresses());
    if authors.len() <= 1 {
        let out = auth
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
        return verdict(&out);
    }
    // mail-auth exempts a From with several domains; RFC 9989, section 11.5 asks to evaluate
    // each. Each author is judged on a copy of the From field naming only that author, with
    // the real message's DKIM and SPF results.
    let mut verdicts = Vec::new();
    for domain in authors.iter().take(MAX_AUTHORS) {
        let from = format!("From: <author@{domain}>\r\n\r\n");
        let Some(single) = AuthenticatedMessage::parse(from.as_bytes()) else {
            continue;
        };
        let out = auth
            .verify_dmarc(
                Parameters::new(DmarcParameters::new(
                    &single,
                    dkim_out,
                    spf_domain,
                    spf_for_dmarc,
                ))
                .with_cache(caches),
            )
            .await;
        verdicts.push(verdict(&out));
    }
    let mut chosen = strictest(verdicts).unwrap_or_else(|| none(&authors[0]));
    chosen.other_authors = authors
        .into_iter()
        .filter(|d| *d != chosen.from_domain)
        .collect();
    chosen
}

/// The distinct From domains, lowercase, in order of appearance.
fn author_domains(addresses: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for a in addresses {
        if let Some((_, d)) = a.rsplit_once('@') {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            if !d.is_empty() && !out.contains(&d) {
                out.push(d);
            }
        }
    }
    out
}

/// The verdict that decides: a failure with the strongest policy, else a temporary or
/// permanent error, else an author without DMARC, and a pass only when every author passed.
fn strictest(verdicts: Vec<DmarcVerdict>) -> Option<DmarcVerdict> {
    let rank = |v: &DmarcVerdict| match v.result {
        AuthResult::Fail => 10 + v.policy.map_or(0, |p| p as u8),
        AuthResult::TempError => 5,
        AuthResult::PermError => 4,
        AuthResult::Pass => 2,
        _ => 3,
    };
    let mut best: Option<DmarcVerdict> = None;
    for v in verdicts {
        if best.as_ref().is_none_or(|b| rank(&v) > rank(b)) {
            best = Some(v);
        }
    }
    best
}

fn none(domain: &str) -> DmarcVerdict {
    DmarcVerdict {
        result: AuthResult::None,
        from_domain: domain.to_owned(),
        policy: None,
        testing: false,
        record: None,
        other_authors: Vec::new(),
    }
}

fn verdict(out: &DmarcOutput) -> DmarcVerdict {
    let record = out.record().map(|r| DmarcRecordInfo {
        p: policy(&r.p),
        sp: policy(&r.sp),
        np: policy(&r.np),
        psd: match r.psd {
            Psd::Yes => 'y',
            Psd::No => 'n',
            _ => 'u',
        },
        t: r.t,
    });
    DmarcVerdict {
        result: map_dmarc(&out.result()),
        from_domain: out.domain().to_ascii_lowercase(),
        // mail-auth has chosen p, sp or np and applied t=y (RFC 9989, section 4.7).
        policy: record.as_ref().map(|_| policy(&out.policy())),
        testing: record.as_ref().is_some_and(|r| r.t),
        record,
        other_authors: Vec::new(),
    }
}

fn policy(p: &Policy) -> DmarcPolicy {
    match p {
        Policy::Reject => DmarcPolicy::Reject,
        Policy::Quarantine => DmarcPolicy::Quarantine,
        Policy::None | Policy::Unspecified => DmarcPolicy::None,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn author_domains_are_distinct_and_lowercase() {
        let from = [
            "a@Example.COM".to_owned(),
            "b@example.com".to_owned(),
            "c@other.example.".to_owned(),
            "no-at-sign".to_owned(),
        ];
        assert_eq!(author_domains(&from), ["example.com", "other.example"]);
    }

    #[test]
    fn strictest_passes_only_when_every_author_passes() {
        let v = |result, domain: &str| DmarcVerdict {
            result,
            ..none(domain)
        };
        let chosen = strictest(vec![
            v(AuthResult::Pass, "a.example"),
            v(AuthResult::None, "b.example"),
        ]);
        assert_eq!(
            chosen.map(|c| (c.result, c.from_domain)),
            Some((AuthResult::None, "b.example".to_owned()))
        );
    }

    #[test]
    fn strictest_prefers_the_strongest_failing_policy() {
        let v = |result, policy| DmarcVerdict {
            policy,
            result,
            ..none("x.example")
        };
        let chosen = strictest(vec![
            v(AuthResult::Pass, Some(DmarcPolicy::Reject)),
            v(AuthResult::Fail, Some(DmarcPolicy::None)),
            v(AuthResult::Fail, Some(DmarcPolicy::Reject)),
            v(AuthResult::Fail, Some(DmarcPolicy::Quarantine)),
        ]);
        assert_eq!(
            chosen.map(|c| (c.result, c.policy)),
            Some((AuthResult::Fail, Some(DmarcPolicy::Reject)))
        );
    }
}
