//! What a DMARC failure leads to (RFC 9989, section 8): the domain's policy as discovered,
//! changed by a local policy, overridden by a trusted ARC sealer's recorded pass, and never a
//! reject "solely on the basis of a p=reject policy" for mail that shows it came through a
//! mailing list or forwarder: such mail is quarantined instead. A direct spoof with none of
//! those signs keeps its reject: the absence of every indirect-flow sign is the "other
//! knowledge and analysis" section 8 asks for. `[policy] reject_dmarc_reject = false` is the
//! strict reading (no DMARC reject at all).

use crate::auth::{AuthResult, AuthVerdicts, DmarcPolicy};
use crate::config::{Config, LocalPolicy};
use serde::Serialize;

/// Why the applied disposition differs from the published policy (RFC 9990's
/// PolicyOverrideType), as logged and reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyOverride {
    /// A trusted ARC sealer recorded a DMARC pass (`[auth] trusted_arc_sealers`).
    TrustedForwarder,
    /// Mailing-list signs (List-*, Sender): a reject became quarantine.
    MailingList,
    /// Other forwarding signs (Resent-*, an ARC chain, an SRS envelope): a reject became
    /// quarantine.
    Forwarded,
    /// `[policy] local_dmarc_policy` decided.
    LocalPolicy,
    /// The record has `t=y`: its policy was applied one level lower.
    PolicyTestMode,
}

impl PolicyOverride {
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyOverride::TrustedForwarder => "trusted_forwarder",
            PolicyOverride::MailingList => "mailing_list",
            PolicyOverride::Forwarded => "forwarded",
            PolicyOverride::LocalPolicy => "local_policy",
            PolicyOverride::PolicyTestMode => "policy_test_mode",
        }
    }
}

/// The DMARC part of a decision.
#[derive(Clone, Debug, PartialEq)]
pub struct DmarcOutcome {
    /// What is done about the failure: none, quarantine or reject.
    pub disposition: DmarcPolicy,
    pub policy_override: Option<PolicyOverride>,
    /// A reason code that explains the override, with its detail.
    pub note: Option<(&'static str, String)>,
    /// A trusted sealer vouched for the message: DMARC_FAIL is not scored.
    pub vouched: bool,
}

impl DmarcOutcome {
    fn none() -> DmarcOutcome {
        DmarcOutcome {
            disposition: DmarcPolicy::None,
            policy_override: None,
            note: None,
            vouched: false,
        }
    }
}

/// The message facts besides authentication that section 8's analysis looks at.
#[derive(Clone, Debug, Default)]
pub struct FlowSigns {
    /// Names of header fields present (lowercase).
    pub header_names: Vec<String>,
    /// The Sender address's domain, if any.
    pub sender_domain: Option<String>,
    /// MAIL FROM.
    pub mail_from: String,
}

/// Header fields that mailing-list managers add (RFC 2369, RFC 2919, Mailman, ezmlm).
const LIST_HEADERS: [&str; 10] = [
    "list-id",
    "list-post",
    "list-unsubscribe",
    "list-subscribe",
    "list-help",
    "list-owner",
    "list-archive",
    "mailing-list",
    "x-mailman-version",
    "x-beenthere",
];

/// Resent fields a forwarder adds (RFC 5322, section 3.6.6).
const RESENT_HEADERS: [&str; 3] = ["resent-from", "resent-sender", "resent-date"];

/// Decides what a DMARC failure leads to.
pub fn decide(config: &Config, v: &AuthVerdicts, signs: &FlowSigns) -> DmarcOutcome {
    let d = &v.dmarc;
    if d.result != AuthResult::Fail {
        return DmarcOutcome::none();
    }
    let from = d.from_domain.as_str();
    let mut policy = d.policy.unwrap_or(DmarcPolicy::None);
    let mut out = DmarcOutcome::none();
    if d.testing {
        out.policy_override = Some(PolicyOverride::PolicyTestMode);
    }

    // A local policy for the From domain, else one that relaxes mail a named host
    // authenticated (a partner's or list's SPF or DKIM pass).
    let local = config.policy.local_dmarc_policy(from).or_else(|| {
        authenticated_hosts(v)
            .filter_map(|host| config.policy.local_dmarc_policy(&host))
            .find(|(_, p)| as_dmarc(*p) < policy)
    });
    if let Some((domain, local)) = local {
        policy = as_dmarc(local);
        out.policy_override = Some(PolicyOverride::LocalPolicy);
        out.note = Some((
            "DMARC_LOCAL_POLICY",
            format!("local policy for {domain}: {}", local.as_str()),
        ));
    }

    // A trusted sealer whose chain validated and who recorded a pass for this author.
    if policy > DmarcPolicy::None && v.arc.result == AuthResult::Pass {
        for set in v
            .arc
            .chain
            .iter()
            .take_while(|s| config.auth.is_trusted_sealer(&s.sealer))
        {
            let passed = if set.dmarc_pass.iter().any(|f| f == from) {
                Some("dmarc=pass")
            } else if set.dkim_pass.iter().any(|h| aligned(h, from)) {
                Some("an aligned dkim=pass")
            } else if set.spf_pass.iter().any(|h| aligned(h, from)) {
                Some("an aligned spf=pass")
            } else {
                None
            };
            if let Some(what) = passed {
                return DmarcOutcome {
                    disposition: DmarcPolicy::None,
                    policy_override: Some(PolicyOverride::TrustedForwarder),
                    note: Some((
                        "DMARC_TRUSTED_ARC",
                        format!(
                            "ARC sealer {} i={} recorded {what} for {from}",
                            set.sealer, set.instance
                        ),
                    )),
                    vouched: true,
                };
            }
        }
    }

    out.disposition = match policy {
        DmarcPolicy::Reject if config.policy.reject_dmarc_reject => DmarcPolicy::Reject,
        DmarcPolicy::Reject | DmarcPolicy::Quarantine
            if config.policy.quarantine_dmarc_quarantine =>
        {
            DmarcPolicy::Quarantine
        }
        _ => DmarcPolicy::None,
    };
    // RFC 9989, section 8: never reject list or forwarded mail on the policy alone. A local
    // policy of reject is the admin's own choice and stands.
    if out.disposition == DmarcPolicy::Reject
        && out.policy_override != Some(PolicyOverride::LocalPolicy)
        && let Some((kind, sign)) = indirect_sign(v, signs, from)
    {
        out.disposition = if config.policy.quarantine_dmarc_quarantine {
            DmarcPolicy::Quarantine
        } else {
            DmarcPolicy::None
        };
        out.policy_override = Some(kind);
        out.note = Some((
            "DMARC_INDIRECT",
            format!("{sign}: p=reject applied as {}", out.disposition.as_str()),
        ));
    }
    out
}

/// The first sign that the message reached us through a list or forwarder.
fn indirect_sign(
    v: &AuthVerdicts,
    signs: &FlowSigns,
    from: &str,
) -> Option<(PolicyOverride, String)> {
    let has = |name: &str| signs.header_names.iter().any(|h| h == name);
    if let Some(h) = LIST_HEADERS.iter().find(|h| has(h)) {
        return Some((
            PolicyOverride::MailingList,
            format!("mailing list header {h}"),
        ));
    }
    if let Some(s) = signs.sender_domain.as_deref().filter(|s| !aligned(s, from)) {
        return Some((
            PolicyOverride::MailingList,
            format!("Sender from {}", crate::header::sanitize(s, 100)),
        ));
    }
    if let Some(h) = RESENT_HEADERS.iter().find(|h| has(h)) {
        return Some((PolicyOverride::Forwarded, format!("forwarded, {h} header")));
    }
    if v.arc.sets > 0 {
        return Some((
            PolicyOverride::Forwarded,
            format!("forwarded, ARC chain with arc={}", v.arc.result),
        ));
    }
    let local = signs.mail_from.split('@').next().unwrap_or_default();
    if local.len() > 5
        && (local[..5].eq_ignore_ascii_case("srs0=") || local[..5].eq_ignore_ascii_case("srs1="))
    {
        return Some((PolicyOverride::Forwarded, "forwarded, SRS envelope".into()));
    }
    None
}

/// The domains that authenticated the message: SPF's on pass, each passing DKIM `d=`.
fn authenticated_hosts(v: &AuthVerdicts) -> impl Iterator<Item = String> + '_ {
    let spf = (v.spf.result == AuthResult::Pass).then(|| v.spf.domain.to_ascii_lowercase());
    spf.into_iter().chain(
        v.dkim
            .iter()
            .filter(|d| d.result == AuthResult::Pass)
            .map(|d| d.domain.to_ascii_lowercase()),
    )
}

/// Relaxed alignment (RFC 9989, section 4.4): the same organisational domain.
fn aligned(a: &str, b: &str) -> bool {
    a == b || (psl::domain_str(a).is_some() && psl::domain_str(a) == psl::domain_str(b))
}

fn as_dmarc(p: LocalPolicy) -> DmarcPolicy {
    match p {
        LocalPolicy::None => DmarcPolicy::None,
        LocalPolicy::Quarantine => DmarcPolicy::Quarantine,
        LocalPolicy::Reject => DmarcPolicy::Reject,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{ArcSet, ArcVerdict, DmarcVerdict, SpfIdentity, SpfVerdict};
    use std::path::Path;

    fn config(toml: &str) -> Config {
        Config::from_toml(toml, Path::new("t.toml")).expect("config")
    }

    /// A p=reject author's DMARC failure, as a list's copy arrives (SPF passes for the list).
    fn failing(policy: DmarcPolicy) -> AuthVerdicts {
        AuthVerdicts {
            spf: SpfVerdict {
                result: AuthResult::Pass,
                identity: SpfIdentity::MailFrom("bounces@lists.example.org".into()),
                domain: "lists.example.org".into(),
                comment: None,
            },
            dkim: Vec::new(),
            arc: ArcVerdict {
                result: AuthResult::None,
                sets: 0,
                chain: Vec::new(),
            },
            dmarc: DmarcVerdict {
                result: AuthResult::Fail,
                from_domain: "author.example".into(),
                policy: Some(policy),
                testing: false,
                record: None,
                other_authors: Vec::new(),
            },
        }
    }

    fn sealed(v: &mut AuthVerdicts, result: AuthResult, sealer: &str, dmarc_pass: &[&str]) {
        v.arc = ArcVerdict {
            result,
            sets: 1,
            chain: vec![ArcSet {
                instance: 1,
                sealer: sealer.into(),
                dmarc_pass: dmarc_pass.iter().map(|s| (*s).to_owned()).collect(),
                ..Default::default()
            }],
        };
    }

    fn list_signs() -> FlowSigns {
        FlowSigns {
            header_names: vec!["from".into(), "list-id".into()],
            ..Default::default()
        }
    }

    #[test]
    fn a_direct_spoof_keeps_its_reject() {
        let out = decide(
            &config(""),
            &failing(DmarcPolicy::Reject),
            &FlowSigns::default(),
        );
        assert_eq!(out.disposition, DmarcPolicy::Reject);
        assert_eq!(out.policy_override, None);
        assert!(!out.vouched);
    }

    #[test]
    fn list_mail_is_quarantined_not_rejected() {
        let out = decide(&config(""), &failing(DmarcPolicy::Reject), &list_signs());
        assert_eq!(out.disposition, DmarcPolicy::Quarantine);
        assert_eq!(out.policy_override, Some(PolicyOverride::MailingList));
        assert_eq!(
            out.note,
            Some((
                "DMARC_INDIRECT",
                "mailing list header list-id: p=reject applied as quarantine".into()
            ))
        );
    }

    #[test]
    fn forwarding_signs_are_recognised() {
        let v = failing(DmarcPolicy::Reject);
        let cases = [
            (
                FlowSigns {
                    header_names: vec!["resent-from".into()],
                    ..Default::default()
                },
                "forwarded, resent-from header",
            ),
            (
                FlowSigns {
                    mail_from: "SRS0=abcd=XY=author.example=bob@fwd.example".into(),
                    ..Default::default()
                },
                "forwarded, SRS envelope",
            ),
            (
                FlowSigns {
                    sender_domain: Some("lists.example.org".into()),
                    ..Default::default()
                },
                "Sender from lists.example.org",
            ),
        ];
        for (signs, want) in cases {
            let out = decide(&config(""), &v, &signs);
            assert_eq!(out.disposition, DmarcPolicy::Quarantine, "{want}");
            let note = out.note.map(|(_, d)| d).unwrap_or_default();
            assert!(note.starts_with(want), "{note}");
        }
        // Any ARC chain, even one that does not validate, is a forwarding sign.
        let mut v = failing(DmarcPolicy::Reject);
        sealed(&mut v, AuthResult::Fail, "lists.example.org", &[]);
        let out = decide(&config(""), &v, &FlowSigns::default());
        assert_eq!(out.policy_override, Some(PolicyOverride::Forwarded));
    }

    #[test]
    fn a_trusted_sealer_recording_a_pass_overrides_the_failure() {
        let cfg = config("[auth]\ntrusted_arc_sealers = [\"Lists.Example.org\"]\n");
        let mut v = failing(DmarcPolicy::Reject);
        sealed(
            &mut v,
            AuthResult::Pass,
            "lists.example.org",
            &["author.example"],
        );
        let out = decide(&cfg, &v, &list_signs());
        assert_eq!(out.disposition, DmarcPolicy::None);
        assert_eq!(out.policy_override, Some(PolicyOverride::TrustedForwarder));
        assert!(out.vouched);
        assert_eq!(
            out.note,
            Some((
                "DMARC_TRUSTED_ARC",
                "ARC sealer lists.example.org i=1 recorded dmarc=pass for author.example".into()
            ))
        );
    }

    #[test]
    fn untrusted_failing_or_silent_seals_earn_nothing() {
        let cfg = config("[auth]\ntrusted_arc_sealers = [\"lists.example.org\"]\n");
        // A seal that does not verify.
        let mut v = failing(DmarcPolicy::Reject);
        sealed(
            &mut v,
            AuthResult::Fail,
            "lists.example.org",
            &["author.example"],
        );
        assert!(!decide(&cfg, &v, &list_signs()).vouched);
        // A valid seal by someone not trusted.
        sealed(
            &mut v,
            AuthResult::Pass,
            "other.example",
            &["author.example"],
        );
        assert!(!decide(&cfg, &v, &list_signs()).vouched);
        // A trusted sealer that recorded no pass for this author.
        sealed(
            &mut v,
            AuthResult::Pass,
            "lists.example.org",
            &["someone.example"],
        );
        let out = decide(&cfg, &v, &list_signs());
        assert!(!out.vouched);
        assert_eq!(out.disposition, DmarcPolicy::Quarantine);
    }

    #[test]
    fn local_policy_forces_and_relaxes() {
        let cfg = config(
            "[policy.local_dmarc_policy]\n\"brand.example\" = \"reject\"\n\
             \"lists.example.org\" = \"none\"\n",
        );
        // A p=none brand forced to reject, even with list signs (the admin's choice).
        let mut v = failing(DmarcPolicy::None);
        v.dmarc.from_domain = "mail.brand.example".into();
        let out = decide(&cfg, &v, &list_signs());
        assert_eq!(out.disposition, DmarcPolicy::Reject);
        assert_eq!(out.policy_override, Some(PolicyOverride::LocalPolicy));
        // Mail that lists.example.org authenticated (SPF pass) is relaxed to none.
        let out = decide(&cfg, &failing(DmarcPolicy::Reject), &FlowSigns::default());
        assert_eq!(out.disposition, DmarcPolicy::None);
        assert_eq!(
            out.note,
            Some((
                "DMARC_LOCAL_POLICY",
                "local policy for lists.example.org: none".into()
            ))
        );
    }

    #[test]
    fn strict_reading_quarantines_every_policy_failure() {
        let cfg = config("[policy]\nreject_dmarc_reject = false\n");
        let out = decide(&cfg, &failing(DmarcPolicy::Reject), &FlowSigns::default());
        assert_eq!(out.disposition, DmarcPolicy::Quarantine);
    }

    #[test]
    fn test_mode_is_named_as_the_override() {
        let mut v = failing(DmarcPolicy::Quarantine);
        v.dmarc.testing = true;
        let out = decide(&config(""), &v, &FlowSigns::default());
        assert_eq!(out.disposition, DmarcPolicy::Quarantine);
        assert_eq!(out.policy_override, Some(PolicyOverride::PolicyTestMode));
    }
}
