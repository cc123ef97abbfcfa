//! Whatever arrived in, one `Evaluation` out: for a message, authentication, lookalike checks,
//! rules, score and decision; for a trusted client, an oversize message, a forged-header flood
//! or a time-out, what the MTA is to do without judging. The evaluation carries the headers to
//! add and the SMTP reply, so the milter only applies it and `spoofguard check` only prints
//! it: there is no second decision path. Never returns an error: DNS trouble is a verdict.

use crate::auth::{AuthResult, AuthVerdicts, DmarcPolicy, SmtpIdentity};
use crate::config::{
    Config, DnsErrorAction, ErrorAction, MilterSettings, OversizeAction, RuleTarget,
};
use crate::header;
use crate::header::reply::{Reply, ReplyKind};
use crate::lookalike::{self, AuthContext};
use crate::metric;
use crate::runtime::Rules;
use crate::score::{self, Decision, Reason, Weights};
use mail_parser::{MessageParser, PartFlags};
use serde::Serialize;
use std::net::IpAddr;
use std::time::Instant;

use crate::runtime::Runtime;

mod dmarc;
pub use dmarc::PolicyOverride;
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
    /// The client authenticated with SMTP AUTH (macro `{auth_authen}`).
    pub authenticated: bool,
    /// Our authserv-id (see [`authserv_id`]).
    pub authserv_id: String,
}

/// What arrived for judgement. The milter and `spoofguard check` both build it with
/// [`crate::intake::Intake`], or name a time-out.
#[derive(Clone, Copy, Debug)]
pub enum Input<'a> {
    /// The whole message (CRLF line endings).
    Message(&'a [u8]),
    /// The message was over a `[milter]` limit (why); its bytes were not kept.
    Oversize(&'a str),
    /// More forged copies of our headers than can be removed.
    ForgedOverflow,
    /// The SMTP transaction took longer than `[milter] message_timeout_secs`.
    TransferTimeout,
    /// Verification took longer than `[milter] evaluation_timeout_secs`.
    EvaluationTimeout,
}

/// What kind of outcome an evaluation is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "why")]
pub enum Kind {
    /// The message was verified and scored.
    Judged,
    /// Not judged: a trusted network or an authenticated sender.
    Skipped(&'static str),
    /// Not judged: over a size limit (why).
    Oversize(String),
    /// Refused unjudged: too many forged headers.
    ForgedOverflow,
    /// Refused unjudged: the transaction took longer than `message_timeout_secs`.
    TransferTimeout { limit_secs: u64 },
    /// Verification took longer than `evaluation_timeout_secs`; `[milter] on_error`
    /// answered.
    EvaluationTimeout { limit_secs: u64 },
}

impl Kind {
    /// The `decision` label of the `spoofguard_messages_total` metric for an unjudged
    /// message (a judged one is labelled with its decision).
    pub fn metric_label(&self) -> Option<&'static str> {
        match self {
            Kind::Judged => None,
            Kind::Skipped(_) => Some("skip"),
            Kind::Oversize(_) => Some("oversize"),
            Kind::ForgedOverflow => Some("reject"),
            Kind::TransferTimeout { .. } | Kind::EvaluationTimeout { .. } => Some("timeout"),
        }
    }

    /// Why an unjudged message was not judged (the `reason` log field).
    pub fn reason(&self) -> &'static str {
        match self {
            Kind::Judged => "",
            Kind::Skipped(why) => why,
            Kind::Oversize(_) => "oversize",
            Kind::ForgedOverflow => "forged headers",
            Kind::TransferTimeout { .. } => "message timeout",
            Kind::EvaluationTimeout { .. } => "evaluation timeout",
        }
    }
}

/// What the MTA is told to do with the message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "action", content = "reason")]
pub enum Action {
    /// Deliver, with the headers of the evaluation.
    Continue,
    /// Deliver and stop filtering this message (`[milter] on_error = "accept"`).
    Accept,
    /// Deliver into the MTA's quarantine (hold queue), with this reason.
    Quarantine(String),
    /// Refuse with the evaluation's 5xx reply.
    Reject,
    /// Refuse for now with the evaluation's 4xx reply.
    Tempfail,
}

/// A header field to add: `first` ones go above every other field (Authentication-Results,
/// RFC 8601, section 5), the rest at the end. Values are folded with "\n\t".
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AddedHeader {
    pub name: &'static str,
    pub value: String,
    #[serde(skip)]
    pub first: bool,
}

/// The outcome for one message: the judgement and everything the MTA is to do about it.
#[derive(Clone, Debug, Serialize)]
pub struct Evaluation {
    pub kind: Kind,
    pub authserv_id: String,
    /// Authentication results; `None` for a message that was not judged.
    pub verdicts: Option<AuthVerdicts>,
    pub reasons: Vec<Reason>,
    pub score: f64,
    pub decision: Decision,
    /// What is done about a DMARC failure (RFC 9989, section 8): none, quarantine or reject.
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
    /// What the MTA does with the message.
    pub action: Action,
    /// The SMTP reply for a reject or tempfail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply: Option<Reply>,
    /// Header fields to add, in order.
    pub headers: Vec<AddedHeader>,
    /// The tag to put before the Subject (`[policy] subject_tag`), if the message gets one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject_tag: Option<String>,
    /// Whether forged copies of our headers are to be removed (RFC 8601, section 5).
    pub delete_forged: bool,
    /// `[milter] dry_run`: the decision is reported but not carried out.
    pub dry_run: bool,
    /// Why the DMARC disposition differs from the published policy (RFC 9990), if it does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_override: Option<PolicyOverride>,
    /// The From domain, when its DMARC policy is what rejects the message.
    #[serde(skip)]
    pub dmarc_reject_domain: Option<String>,
}

impl Evaluation {
    /// The Authentication-Results value, folded; `None` when the message was not judged.
    pub fn authentication_results(&self) -> Option<String> {
        self.verdicts
            .as_ref()
            .map(|v| header::authentication_results(&self.authserv_id, v, self.dmarc_disposition))
    }

    /// Refuses the message with a fixed reply: tempfail for a 4xx, reject for a 5xx.
    fn refuse(&mut self, kind: ReplyKind) {
        let reply = Reply::new(kind, None);
        (self.decision, self.action) = if reply.is_temporary() {
            (Decision::Tempfail, Action::Tempfail)
        } else {
            (Decision::Reject, Action::Reject)
        };
        self.reply = Some(reply);
    }

    /// The Subject a tagged message gets, from the Subject it arrived with.
    pub fn tagged_subject(&self, original: Option<&str>) -> Option<String> {
        let tag = self.subject_tag.as_deref()?;
        let subject = original.unwrap_or_default();
        Some(format!("{tag} {}", subject.trim()).trim().to_owned())
    }
}

/// The authserv-id of our Authentication-Results (RFC 8601, section 2.5): `[milter]
/// authserv_id`, else the MTA's host name (macro `j`), else this host's name; lowercase,
/// because it is compared without regard to case.
pub fn authserv_id(config: &Config, mta_host: Option<&str>) -> String {
    config
        .milter
        .authserv_id
        .clone()
        .or_else(|| mta_host.map(str::to_owned).filter(|j| !j.is_empty()))
        .or_else(|| hostname::get().ok().and_then(|h| h.into_string().ok()))
        .unwrap_or_else(|| "localhost".into())
        .to_ascii_lowercase()
}

/// An IPv4 client seen through an IPv6 socket (`::ffff:192.0.2.1`) is IPv4 to SPF's `ip4:`
/// mechanisms and to `trusted_networks` (RFC 7208, section 5.6).
pub fn client_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Decides every outcome: whatever arrived, one [`Evaluation`] with the decision, the
/// headers and the reply. Never returns an error: DNS trouble is a verdict.
pub async fn evaluate(rt: &Runtime, env: &Envelope, input: Input<'_>) -> Evaluation {
    match screen(rt, env, input) {
        Ok(eval) => eval,
        Err(raw) => {
            let judged = judge(rt, &env.authserv_id, env, raw).await;
            plan(rt, judged)
        }
    }
}

/// The outcomes that need no verification, decided at once: `Ok` with the evaluation, or
/// `Err` with the message bytes when the message is to be judged (by [`evaluate`]). The
/// milter calls it first, so that only real verification runs as its own task.
pub fn screen<'a>(rt: &Runtime, env: &Envelope, input: Input<'a>) -> Result<Evaluation, &'a [u8]> {
    let config = &rt.config;
    let kind = match input {
        Input::ForgedOverflow => Kind::ForgedOverflow,
        Input::TransferTimeout => Kind::TransferTimeout {
            limit_secs: config.milter.message_timeout.as_secs(),
        },
        Input::EvaluationTimeout => Kind::EvaluationTimeout {
            limit_secs: config.milter.evaluation_timeout.as_secs(),
        },
        _ if env
            .client_ip
            .is_some_and(|ip| config.auth.is_trusted(client_ip(ip))) =>
        {
            Kind::Skipped("trusted network")
        }
        _ if env.authenticated && config.auth.skip_authenticated => {
            Kind::Skipped("authenticated sender")
        }
        Input::Oversize(why) => Kind::Oversize(why.to_owned()),
        Input::Message(raw) => return Err(raw),
    };
    Ok(unjudged(rt, env, kind))
}

/// What the MTA does with a message that was not judged.
fn unjudged(rt: &Runtime, env: &Envelope, kind: Kind) -> Evaluation {
    let config = &rt.config;
    let mut eval = Evaluation {
        kind: kind.clone(),
        authserv_id: env.authserv_id.clone(),
        verdicts: None,
        reasons: Vec::new(),
        score: 0.0,
        decision: Decision::Accept,
        dmarc_disposition: DmarcPolicy::None,
        why: None,
        from_domain: None,
        brand: None,
        action: Action::Continue,
        reply: None,
        headers: Vec::new(),
        subject_tag: None,
        delete_forged: true,
        dry_run: config.milter.dry_run,
        policy_override: None,
        dmarc_reject_domain: None,
    };
    match kind {
        Kind::Judged => {}
        Kind::Skipped(_) => eval.decision = Decision::Skip,
        Kind::Oversize(why) => match config.milter.oversize_action {
            OversizeAction::Accept => {
                // Delivered unverified, scored like any message: by default OVERSIZE weighs
                // nothing and the message is accepted with the score headers.
                eval.reasons
                    .push(reason(rt, "OVERSIZE", format!("{why}, not verified")));
                eval.score = score::total(&eval.reasons);
                eval.decision = score::decide(eval.score, &config.policy);
                if eval.decision > Decision::Tag {
                    eval.why = Some(score_why(eval.score, &eval.reasons));
                }
                return plan(rt, eval);
            }
            OversizeAction::Tempfail => eval.refuse(ReplyKind::OversizeTempfail),
            OversizeAction::Reject => eval.refuse(ReplyKind::OversizeReject),
        },
        Kind::ForgedOverflow => {
            eval.refuse(ReplyKind::ForgedOverflow);
            eval.delete_forged = false;
        }
        Kind::TransferTimeout { .. } => {
            eval.refuse(ReplyKind::TransferTimeout);
            eval.delete_forged = false;
        }
        Kind::EvaluationTimeout { .. } => match config.milter.on_error {
            ErrorAction::Tempfail => eval.refuse(ReplyKind::EvaluationTimeoutTempfail),
            ErrorAction::Reject => eval.refuse(ReplyKind::EvaluationTimeoutReject),
            ErrorAction::Accept => eval.action = Action::Accept,
        },
    }
    eval
}

/// What the MTA does with a judged message: a reply for reject and tempfail; otherwise
/// Authentication-Results, the score headers, the subject tag and quarantine as configured.
/// In a dry run nothing is refused, tagged or quarantined.
fn plan(rt: &Runtime, mut eval: Evaluation) -> Evaluation {
    let config = &rt.config;
    let dry_run = eval.dry_run;
    if eval.decision == Decision::Tempfail && !dry_run {
        eval.action = Action::Tempfail;
        eval.reply = Some(Reply::new(
            ReplyKind::DnsTempfail,
            Some(&config.policy.tempfail_text),
        ));
        return eval;
    }
    if eval.decision == Decision::Reject && !dry_run {
        eval.action = Action::Reject;
        eval.reply = Some(match &eval.dmarc_reject_domain {
            // RFC 9989, section 7.2: the reply names DMARC and the domain.
            Some(domain) => Reply::new(
                ReplyKind::DmarcReject,
                Some(&format!(
                    "Rejected per DMARC policy for {}",
                    header::sanitize(domain, 255)
                )),
            ),
            None => Reply::new(
                ReplyKind::PolicyReject,
                Some(&format!(
                    "{}: {}",
                    config.policy.reject_text,
                    eval.why.as_deref().unwrap_or("policy")
                )),
            ),
        });
        return eval;
    }
    if let Some(ar) = eval.authentication_results() {
        eval.headers.push(AddedHeader {
            name: header::AUTHENTICATION_RESULTS,
            value: ar,
            first: true,
        });
    }
    if config.headers.add_score_headers {
        let mut added = score_headers(&eval);
        eval.headers.append(&mut added);
    }
    if eval.decision >= Decision::Tag && !config.policy.subject_tag.is_empty() && !dry_run {
        eval.subject_tag = Some(config.policy.subject_tag.clone());
    }
    if eval.decision == Decision::Quarantine && !dry_run {
        let why = eval.why.as_deref().unwrap_or("policy");
        eval.action = Action::Quarantine(header::one_line(why, 900));
    }
    eval
}

/// X-Spoofguard-Score, -Verdict and -Reasons.
fn score_headers(eval: &Evaluation) -> Vec<AddedHeader> {
    [
        (header::X_SCORE, header::score_value(eval.score)),
        (header::X_VERDICT, eval.decision.as_str().to_owned()),
        (header::X_REASONS, header::reasons_value(&eval.reasons)),
    ]
    .into_iter()
    .map(|(name, value)| AddedHeader {
        name,
        value,
        first: false,
    })
    .collect()
}

/// Verifies and scores one message. `raw` is the message as received (CRLF line endings).
async fn judge(rt: &Runtime, authserv_id: &str, env: &Envelope, raw: &[u8]) -> Evaluation {
    let config = &rt.config;
    let started = Instant::now();
    let parsed = MessageParser::new()
        .max_depth(config.milter.max_mime_depth)
        .max_parts(config.milter.max_mime_parts)
        .parse(raw);
    let smtp = SmtpIdentity {
        client_ip: env.client_ip,
        helo: &env.helo,
        mail_from: &env.mail_from,
        host_domain: authserv_id,
    };
    let mut reasons = Vec::new();
    let auth_started = Instant::now();
    if parsed.is_none() {
        reasons.push(reason(
            rt,
            "MALFORMED",
            "no header section could be parsed".into(),
        ));
    }
    let auth = rt.verifier.verify(parsed.as_ref(), raw, &smtp).await;
    let verdicts = auth.verdicts;

    metric::evaluation_step("auth", auth_started.elapsed());

    // Message shape (RFC 5322, section 3.6: exactly one From).
    let from_headers = parsed.as_ref().map_or(0, |p| {
        p.headers()
            .iter()
            .filter(|h| h.raw_name().eq_ignore_ascii_case("from"))
            .count()
    });
    let from_addresses = auth.from_addresses;
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

    // What a DMARC failure leads to (RFC 9989, section 8), decided before scoring: a
    // trusted sealer's vouching also takes DMARC_FAIL out of the score.
    let signs = flow_signs(parsed.as_ref(), env);
    let dmarc = dmarc::decide(config, &verdicts, &signs);
    auth_reasons(rt, &verdicts, dmarc.vouched, &mut reasons);
    if let Some((code, detail)) = &dmarc.note {
        reasons.push(reason(rt, code, detail.clone()));
    }

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
            dmarc_fail: verdicts.dmarc.result == AuthResult::Fail && !dmarc.vouched,
        };
        for f in lookalike::check_message(&facts, &ctx, &rt.catalogue) {
            if brand.is_none() {
                brand.clone_from(&f.brand);
            }
            reasons.push(finding_reason(&rt.weights, f));
        }
    }

    metric::evaluation_step("lookalike", lookalike_started.elapsed());

    // [[rule]]
    if let Some(p) = &parsed {
        apply_rules(config, p, &mut reasons);
    }

    let score = score::total(&reasons);
    let by_score = score::decide(score, &config.policy);

    let dmarc_disposition = dmarc.disposition;
    let by_dmarc = match dmarc_disposition {
        DmarcPolicy::Reject => Decision::Reject,
        DmarcPolicy::Quarantine => Decision::Quarantine,
        DmarcPolicy::None => Decision::Accept,
    };
    let mut decision = by_score.max(by_dmarc);
    let dmarc_rejected = decision == Decision::Reject && by_dmarc >= by_score;
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
    let dmarc_reject_domain = (dmarc_rejected && decision == Decision::Reject)
        .then(|| verdicts.dmarc.from_domain.clone());
    Evaluation {
        kind: Kind::Judged,
        authserv_id: authserv_id.to_owned(),
        from_domain: (!verdicts.dmarc.from_domain.is_empty())
            .then(|| verdicts.dmarc.from_domain.clone()),
        verdicts: Some(verdicts),
        reasons,
        score,
        decision,
        dmarc_disposition,
        why,
        brand,
        action: Action::Continue,
        reply: None,
        headers: Vec::new(),
        subject_tag: None,
        delete_forged: true,
        dry_run: config.milter.dry_run,
        policy_override: dmarc.policy_override,
        dmarc_reject_domain,
    }
}

/// The indirect-flow facts `dmarc::decide` looks at.
fn flow_signs(parsed: Option<&mail_parser::Message<'_>>, env: &Envelope) -> dmarc::FlowSigns {
    let mut signs = dmarc::FlowSigns {
        mail_from: env.mail_from.clone(),
        ..Default::default()
    };
    if let Some(p) = parsed {
        signs.header_names = p
            .headers()
            .iter()
            .map(|h| h.raw_name().to_ascii_lowercase())
            .collect();
        signs.sender_domain = p
            .sender()
            .and_then(|s| s.first())
            .and_then(|a| a.address())
            .and_then(|a| a.rsplit_once('@'))
            .map(|(_, d)| d.trim_end_matches('.').to_ascii_lowercase());
    }
    signs
}

/// A sender domain judged alone (`spoofguard domain`).
#[derive(Clone, Debug, Serialize)]
pub struct DomainEvaluation {
    pub reasons: Vec<Reason>,
    pub score: f64,
    pub decision: Decision,
    /// The brand the domain was matched against, if any.
    pub brand: Option<String>,
}

/// Scores a sender domain by its lookalike findings, with the same weights and `[policy]`
/// thresholds as a message's.
pub fn evaluate_domain(rules: &Rules, domain: &str) -> DomainEvaluation {
    let (weights, config) = (rules.weights(), rules.config());
    let findings = lookalike::check_domain(domain, rules.catalogue());
    let brand = findings.iter().find_map(|f| f.brand.clone());
    let reasons: Vec<Reason> = findings
        .into_iter()
        .map(|f| finding_reason(weights, f))
        .collect();
    let score = score::total(&reasons);
    DomainEvaluation {
        decision: score::decide(score, &config.policy),
        reasons,
        score,
        brand,
    }
}

fn finding_reason(weights: &Weights, f: lookalike::Finding) -> Reason {
    Reason {
        code: f.code.to_owned(),
        weight: weights.of(f.code),
        detail: f.detail,
        brand: f.brand,
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

fn auth_reasons(rt: &Runtime, v: &AuthVerdicts, vouched: bool, reasons: &mut Vec<Reason>) {
    let dkim_pass = v.dkim.iter().any(|d| d.result == AuthResult::Pass);
    if v.dmarc.result == AuthResult::Fail && !vouched {
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
