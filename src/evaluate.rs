//! One message in, one `Evaluation` out: authentication, lookalike checks, rules, score and
//! decision. The milter's end-of-message step and `spoofguard check` both call [`evaluate`];
//! there is no second decision path. Never returns an error: DNS trouble is a verdict.

use crate::auth::{self, AuthResult, AuthVerdicts, DmarcPolicy, SmtpIdentity};
use crate::config::{Config, DnsErrorAction, MilterSettings, RuleTarget};
use crate::header;
use crate::lookalike::{self, AuthContext};
use crate::metric;
use crate::score::{self, Decision, Reason};
use mail_auth::AuthenticatedMessage;
use mail_parser::{MessageParser, PartFlags};
use serde::Serialize;
use std::net::IpAddr;
use std::time::Instant;

/// Kept here so that `evaluate::Runtime` still names it; the type lives in [`crate::runtime`].
pub use crate::runtime::Runtime;

/// Bytes of decoded body text that `[[rule]]` body patterns look at.
const MAX_RULE_BODY_BYTES: usize = 1024 * 1024;

/// The SMTP transaction around a message.
#[derive(Clone, Debug, Default)]
pub struct Envelope {
    pub client_ip: Option<IpAddr>,
    pub helo: String,
    /// MAIL FROM without angle brackets; empty for the null reverse-path.
    pub mail_from: String,
    pub recipients: Vec<String>,
    /// The MTA's queue id, or `NONE`.
    pub queue_id: String,
}

/// The outcome for one message.
#[derive(Clone, Debug, Serialize)]
pub struct Evaluation {
    pub authserv_id: String,
    pub verdicts: AuthVerdicts,
    pub reasons: Vec<Reason>,
    pub score: f64,
    pub decision: Decision,
    /// What the DMARC policy alone asks for (after `pct`), if DMARC failed.
    pub dmarc_disposition: DmarcPolicy,
    /// One line explaining a reject, quarantine or tempfail, for replies and logs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    /// The From domain, for logs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_domain: Option<String>,
    /// The brand the message was matched against, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub brand: Option<String>,
}

impl Evaluation {
    /// The Authentication-Results value, folded.
    pub fn authentication_results(&self) -> String {
        header::authentication_results(&self.authserv_id, &self.verdicts, self.dmarc_disposition)
    }
}

/// Judges one message. `raw` is the message as received (CRLF line endings).
pub async fn evaluate(rt: &Runtime, authserv_id: &str, env: &Envelope, raw: &[u8]) -> Evaluation {
    let config = &rt.config;
    let started = Instant::now();
    let parsed = MessageParser::new()
        .max_depth(config.milter.max_mime_depth)
        .max_parts(config.milter.max_mime_parts)
        .parse(raw);
    let message = parsed
        .as_ref()
        .map(|p| AuthenticatedMessage::from_parsed(p, raw, true));
    let smtp = SmtpIdentity {
        client_ip: env.client_ip,
        helo: &env.helo,
        mail_from: &env.mail_from,
        host_domain: authserv_id,
    };
    let mut reasons = Vec::new();
    let auth_started = Instant::now();
    let verdicts = match &message {
        Some(m) => auth::verify(&rt.authenticator, &rt.caches, m, &smtp, config.auth.arc).await,
        None => {
            reasons.push(reason(
                rt,
                "MALFORMED",
                "no header section could be parsed".into(),
            ));
            verify_spf_only(rt, &smtp).await
        }
    };

    metric::evaluation_step("auth", auth_started.elapsed());

    // Message shape (RFC 5322, section 3.6: exactly one From).
    let from_headers = parsed.as_ref().map_or(0, |p| {
        p.headers()
            .iter()
            .filter(|h| h.raw_name().eq_ignore_ascii_case("from"))
            .count()
    });
    let from_addresses = message.as_ref().map_or(0, |m| m.from_addresses().len());
    if parsed.is_some() && from_headers == 0 || (from_headers == 1 && from_addresses == 0) {
        reasons.push(reason(rt, "FROM_MISSING", "no From address".into()));
    } else if from_headers > 1 || from_addresses > 1 {
        reasons.push(reason(
            rt,
            "FROM_MULTIPLE",
            format!("{from_headers} From headers, {from_addresses} addresses"),
        ));
    }

    if let Some(p) = &parsed
        && let Some(detail) = mime_limit(p, &config.milter)
    {
        reasons.push(reason(rt, "MIME_LIMIT", detail));
    }

    auth_reasons(rt, &verdicts, &mut reasons);

    // Brand impersonation.
    let mut brand = None;
    let lookalike_started = Instant::now();
    if config.lookalike.enabled
        && let Some(p) = &parsed
    {
        let facts =
            lookalike::facts_from_message_with_limit(p, &env.mail_from, config.lookalike.max_links);
        let ctx = AuthContext {
            dmarc_pass: verdicts.dmarc.result == AuthResult::Pass,
            dmarc_fail: verdicts.dmarc.result == AuthResult::Fail,
        };
        for f in lookalike::check_message(&facts, &ctx, &rt.catalogue) {
            if brand.is_none() {
                brand.clone_from(&f.brand);
            }
            reasons.push(Reason {
                code: f.code.to_owned(),
                weight: rt.weights.of(f.code),
                detail: f.detail,
                brand: f.brand,
            });
        }
    }

    metric::evaluation_step("lookalike", lookalike_started.elapsed());

    // [[rule]]
    if let Some(p) = &parsed {
        apply_rules(config, p, &mut reasons);
    }

    let score = score::total(&reasons);
    let by_score = score::decide(score, &config.policy);

    // DMARC policy (RFC 7489, section 6.6.4), as far as [policy] lets it act.
    let mut dmarc_disposition = DmarcPolicy::None;
    let mut by_dmarc = Decision::Accept;
    if verdicts.dmarc.result == AuthResult::Fail {
        match verdicts.dmarc.effective_policy() {
            Some(DmarcPolicy::Reject) if config.policy.reject_dmarc_reject => {
                dmarc_disposition = DmarcPolicy::Reject;
                by_dmarc = Decision::Reject;
            }
            Some(DmarcPolicy::Reject | DmarcPolicy::Quarantine)
                if config.policy.quarantine_dmarc_quarantine =>
            {
                dmarc_disposition = DmarcPolicy::Quarantine;
                by_dmarc = Decision::Quarantine;
            }
            _ => {}
        }
    }
    let mut decision = by_score.max(by_dmarc);
    let mut why = match decision {
        Decision::Accept | Decision::Tag => None,
        _ if by_dmarc >= by_score => Some(format!(
            "DMARC policy of {} is {}",
            header::sanitize(&verdicts.dmarc.from_domain, 255),
            dmarc_disposition.as_str()
        )),
        _ => Some(score_why(score, &reasons)),
    };
    if verdicts.has_temperror()
        && config.policy.on_dns_error == DnsErrorAction::Tempfail
        && decision < Decision::Reject
    {
        decision = Decision::Tempfail;
        why = Some("temporary DNS failure".into());
    }

    metric::evaluation_step("total", started.elapsed());
    Evaluation {
        authserv_id: authserv_id.to_owned(),
        from_domain: (!verdicts.dmarc.from_domain.is_empty())
            .then(|| verdicts.dmarc.from_domain.clone()),
        verdicts,
        reasons,
        score,
        decision,
        dmarc_disposition,
        why,
        brand,
    }
}

/// `score 23.0 (CODE, CODE, …)`, naming the heaviest reasons first.
fn score_why(score: f64, reasons: &[Reason]) -> String {
    let mut sorted: Vec<&Reason> = reasons.iter().filter(|r| r.weight > 0.0).collect();
    sorted.sort_by(|a, b| b.weight.total_cmp(&a.weight));
    let codes: Vec<&str> = sorted.iter().take(4).map(|r| r.code.as_str()).collect();
    format!("score {score:.1} ({})", codes.join(", "))
}

fn reason(rt: &Runtime, code: &'static str, detail: String) -> Reason {
    Reason {
        code: code.to_owned(),
        weight: rt.weights.of(code),
        detail,
        brand: None,
    }
}

/// Why the MIME structure was only partly parsed (`[milter] max_mime_depth` / `max_mime_parts`),
/// if it was: the content past the limit was not scanned for links or rules.
fn mime_limit(msg: &mail_parser::Message<'_>, limits: &MilterSettings) -> Option<String> {
    let cut = msg
        .parts()
        .any(|part| part.flags().contains(PartFlags::LIMIT_REACHED));
    if !cut {
        None
    } else if msg.parts().len() >= limits.max_mime_parts {
        Some(format!("more than {} MIME parts", limits.max_mime_parts))
    } else {
        Some(format!(
            "MIME nesting deeper than {} levels",
            limits.max_mime_depth
        ))
    }
}

fn auth_reasons(rt: &Runtime, v: &AuthVerdicts, reasons: &mut Vec<Reason>) {
    let dkim_pass = v.dkim.iter().any(|d| d.result == AuthResult::Pass);
    if v.dmarc.result == AuthResult::Fail {
        let policy = v.dmarc.policy.map_or("none", DmarcPolicy::as_str);
        reasons.push(reason(
            rt,
            "DMARC_FAIL",
            format!("{} p={policy}", v.dmarc.from_domain),
        ));
    }
    match v.spf.result {
        AuthResult::Fail => reasons.push(reason(rt, "SPF_FAIL", v.spf.domain.clone())),
        AuthResult::SoftFail => reasons.push(reason(rt, "SPF_SOFTFAIL", v.spf.domain.clone())),
        _ => {}
    }
    if !dkim_pass && let Some(d) = v.dkim.iter().find(|d| d.result == AuthResult::Fail) {
        reasons.push(reason(rt, "DKIM_FAIL", d.domain.clone()));
    }
    if !dkim_pass && v.spf.result != AuthResult::Pass && v.dmarc.result == AuthResult::None {
        reasons.push(reason(rt, "NO_AUTH", String::new()));
    }
}

/// SPF alone, for a message whose header section could not be parsed.
async fn verify_spf_only(rt: &Runtime, smtp: &SmtpIdentity<'_>) -> AuthVerdicts {
    // An empty but well-formed message: no From, no signatures; DMARC gives none.
    let empty = b"X-Spoofguard-Placeholder: 1\r\n\r\n";
    let msg = AuthenticatedMessage::parse(empty);
    match msg {
        Some(m) => {
            let mut v = auth::verify(&rt.authenticator, &rt.caches, &m, smtp, false).await;
            v.dmarc.from_domain.clear();
            v
        }
        None => unreachable_verdicts(smtp),
    }
}

/// Verdicts when not even a placeholder parses (never expected; keeps the milter answering).
fn unreachable_verdicts(smtp: &SmtpIdentity<'_>) -> AuthVerdicts {
    use crate::auth::{ArcVerdict, DmarcVerdict, SpfIdentity, SpfVerdict};
    AuthVerdicts {
        spf: SpfVerdict {
            result: AuthResult::None,
            identity: SpfIdentity::Helo(smtp.helo.to_owned()),
            domain: smtp.helo.to_owned(),
            comment: None,
        },
        dkim: Vec::new(),
        arc: ArcVerdict {
            result: AuthResult::None,
            sets: 0,
        },
        dmarc: DmarcVerdict {
            result: AuthResult::None,
            from_domain: String::new(),
            policy: None,
            pct: 100,
            sampled: true,
        },
    }
}

fn apply_rules(config: &Config, msg: &mail_parser::Message<'_>, reasons: &mut Vec<Reason>) {
    if config.rules.is_empty() {
        return;
    }
    let mut body: Option<String> = None;
    for rule in &config.rules {
        let hit = match &rule.target {
            RuleTarget::Subject => msg.subject().is_some_and(|s| rule.regex.is_match(s)),
            RuleTarget::DisplayName => msg
                .from()
                .and_then(|f| {
                    f.first()
                        .and_then(|m| m.name().map(|n| rule.regex.is_match(n)))
                })
                .unwrap_or(false),
            RuleTarget::From => msg
                .from()
                .and_then(|f| {
                    f.first()
                        .and_then(|m| m.address().map(|a| rule.regex.is_match(a)))
                })
                .unwrap_or(false),
            RuleTarget::Header(name) => msg.headers().iter().any(|h| {
                h.raw_name().eq_ignore_ascii_case(name)
                    && rule
                        .regex
                        .is_match(String::from_utf8_lossy(h.raw_value()).trim())
            }),
            RuleTarget::Body => {
                let text = body.get_or_insert_with(|| body_text(msg));
                rule.regex.is_match(text)
            }
        };
        if hit {
            reasons.push(Reason {
                code: format!("RULE:{}", rule.name),
                detail: format!("{} matched", target_name(&rule.target)),
                weight: rule.weight,
                brand: None,
            });
        }
    }
}

fn target_name(t: &RuleTarget) -> String {
    match t {
        RuleTarget::Subject => "subject".into(),
        RuleTarget::DisplayName => "display name".into(),
        RuleTarget::From => "from".into(),
        RuleTarget::Body => "body".into(),
        RuleTarget::Header(h) => format!("header {h}"),
    }
}

fn body_text(msg: &mail_parser::Message<'_>) -> String {
    let mut out = String::new();
    for text in msg.text_bodies().chain(msg.html_bodies()) {
        if out.len() >= MAX_RULE_BODY_BYTES {
            break;
        }
        let room = MAX_RULE_BODY_BYTES - out.len();
        let mut cut = text.len().min(room);
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        out.push_str(&text[..cut]);
        out.push('\n');
    }
    out
}
