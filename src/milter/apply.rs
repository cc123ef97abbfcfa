//! Carries out an [`Evaluation`]: removes forged headers, adds ours, tags the subject,
//! quarantines, sets the SMTP reply, and writes the one log line and the metrics. Decides
//! nothing: every choice was made by `evaluate`.

use super::session::SessionError;
use crate::evaluate::{Action, Evaluation, Kind};
use crate::intake::{Forged, Intake};
use crate::metric;
use crate::score::Decision;
use indymilter::{ContextActions, SetErrorReply, Status};
use tracing::{debug, info, warn};

/// What the MTA agreed to at negotiation.
#[derive(Clone, Copy, Debug, Default)]
pub struct Capabilities {
    /// SMFIP_HDR_LEADSPC: the MTA inserts no space after the colon of a header we add
    /// (Postfix milter8.c), so we send it.
    pub leading_space: bool,
    /// The quarantine action was offered.
    pub can_quarantine: bool,
}

/// Applies an evaluation at end of message and returns the status to answer.
pub async fn apply(
    eval: &Evaluation,
    intake: &Intake,
    caps: Capabilities,
    actions: &impl ContextActions,
    reply: &mut impl SetErrorReply,
) -> Result<Status, SessionError> {
    log(eval);
    if eval.delete_forged {
        // Forged copies of our headers go first, highest index first, so that indices of
        // the others stay valid whatever the MTA's numbering after a deletion.
        delete_forged(actions, intake.forged()).await?;
    }
    if let Some(status) = set_reply(eval, reply)? {
        return Ok(status);
    }
    let sp = if caps.leading_space { " " } else { "" };
    for h in &eval.headers {
        let value = format!("{sp}{}", h.value);
        if h.first {
            actions.insert_header(0, h.name, value).await?;
        } else {
            actions.add_header(h.name, value).await?;
        }
        debug!(header = h.name, "added header");
    }
    if let Some(tag) = &eval.subject_tag {
        let subject = intake.subject().unwrap_or_default();
        let tagged = format!(" {tag} {}", subject.trim());
        if intake.has_subject() {
            actions
                .change_header("Subject", 1, Some(tagged.trim_end()))
                .await?;
        } else {
            actions.add_header("Subject", tagged.trim()).await?;
        }
    }
    let mut done = metric::Action::Deliver;
    if let Action::Quarantine(why) = &eval.action {
        if caps.can_quarantine {
            actions.quarantine(why.as_str()).await?;
            done = metric::Action::Quarantine;
        } else {
            warn!("the MTA does not offer quarantine; message delivered with headers");
        }
    }
    count(eval, done);
    Ok(match eval.action {
        Action::Accept => Status::Accept,
        _ => Status::Continue,
    })
}

/// Applies an evaluation before end of message (a transfer time-out), where only a reply
/// can be given.
pub fn refuse(eval: &Evaluation, reply: &mut impl SetErrorReply) -> Status {
    log(eval);
    match set_reply(eval, reply) {
        Ok(Some(status)) => status,
        Ok(None) => {
            count(eval, metric::Action::Deliver);
            Status::Continue
        }
        Err(e) => {
            warn!(error = %e, "cannot set the reply");
            count(eval, metric::Action::Tempfail);
            Status::Tempfail
        }
    }
}

/// Sets the reply of a reject or tempfail and returns its status; `None` for delivery.
fn set_reply(
    eval: &Evaluation,
    reply: &mut impl SetErrorReply,
) -> Result<Option<Status>, SessionError> {
    let (status, done) = match eval.action {
        Action::Reject => (Status::Reject, metric::Action::Reject),
        Action::Tempfail => (Status::Tempfail, metric::Action::Tempfail),
        _ => return Ok(None),
    };
    if let Some(r) = &eval.reply {
        reply.set_error_reply(r.code, Some(r.status), [r.text.as_str()])?;
    }
    count(eval, done);
    Ok(Some(status))
}

fn count(eval: &Evaluation, done: metric::Action) {
    let label = eval
        .kind
        .metric_label()
        .unwrap_or_else(|| eval.decision.as_str());
    metric::message(label, done);
    if let Some(v) = &eval.verdicts {
        for r in &eval.reasons {
            metric::finding(&r.code);
        }
        metric::auth_result("spf", v.spf.result.as_str());
        if v.dkim.is_empty() {
            metric::auth_result("dkim", "none");
        }
        for d in &v.dkim {
            metric::auth_result("dkim", d.result.as_str());
        }
        metric::auth_result("arc", v.arc.result.as_str());
        metric::auth_result("dmarc", v.dmarc.result.as_str());
    }
}

async fn delete_forged(
    actions: &impl ContextActions,
    forged: &[Forged],
) -> Result<(), SessionError> {
    let mut sorted: Vec<&Forged> = forged.iter().collect();
    sorted.sort_by_key(|f| std::cmp::Reverse(f.index));
    for f in sorted {
        actions
            .change_header(f.name.as_str(), f.index, None::<&str>)
            .await?;
        debug!(header = %f.name, index = f.index, "removed forged header");
    }
    Ok(())
}

/// The one info line per message (docs/operations.md: log fields are an interface). The
/// queue id and client address come from the message and connection spans.
fn log(eval: &Evaluation) {
    let decision = eval.decision.as_str();
    let reason = eval.kind.reason();
    match (&eval.kind, &eval.verdicts) {
        (Kind::Judged, Some(v)) => {
            let codes: Vec<&str> = eval.reasons.iter().map(|r| r.code.as_str()).collect();
            info!(
                from_domain = eval.from_domain.as_deref().unwrap_or(""),
                spf = %v.spf.result,
                dkim = %v.dkim_summary(),
                arc = %v.arc.result,
                dmarc = %v.dmarc.result,
                score = eval.score,
                decision = %eval.decision,
                dry_run = eval.dry_run,
                reasons = %codes.join(","),
                policy_override = eval.policy_override.map_or("", |p| p.as_str()),
                "message evaluated"
            );
            if eval.dry_run && eval.decision > Decision::Tag {
                info!(decision = %eval.decision, "[dry run, not done]");
            }
        }
        (Kind::Oversize(why), _) => {
            warn!(why, "message too large to verify");
            info!(decision, reason, "message not judged");
        }
        (Kind::TransferTimeout { limit_secs }, _) => {
            info!(decision, reason, limit_secs, "message not judged");
        }
        (Kind::EvaluationTimeout { limit_secs }, _) => {
            warn!(decision, reason, limit_secs, "message not judged");
        }
        _ => info!(decision, reason, "message not judged"),
    }
}
