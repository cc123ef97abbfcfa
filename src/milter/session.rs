//! Per-connection and per-message state, and what happens at each stage. Callbacks in
//! `callbacks.rs` only unpack arguments and call these methods.

use crate::config::{ErrorAction, OversizeAction};
use crate::evaluate::{self, Envelope, Evaluation, Runtime};
use crate::header::{self, AUTHENTICATION_RESULTS, OWN_X_HEADERS, X_REASONS, X_SCORE, X_VERDICT};
use crate::metric::{self, Action};
use crate::score::{Decision, Reason};
use indymilter::{ContextActions, SetErrorReply, Status};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;
use tracing::{debug, info, warn};

/// Recipients remembered per message; later ones are still delivered, only not recorded.
/// Ten times Postfix's default `smtpd_recipient_limit` (1000).
pub const MAX_RECIPIENTS: usize = 10_000;

/// Forged copies of our headers remembered for deletion per message. Past it the message is
/// refused (550 5.7.1): no real message carries a thousand forged results, and leaving some
/// undeleted would let them through.
pub const MAX_FORGED: usize = 1000;

/// Why a step could not be completed.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("milter action failed: {0}")]
    Action(#[from] indymilter::ActionError),
    #[error("invalid SMTP reply: {0}")]
    Reply(#[from] indymilter::SmtpReplyError),
    #[error("no message in progress")]
    NoMessage,
    #[error("evaluation failed: {0}")]
    Evaluation(String),
}

/// Why [`run_isolated`] has no result.
#[derive(Debug, PartialEq)]
pub enum Isolated {
    /// The deadline passed; the task was cancelled.
    TimedOut,
    /// The task panicked (the panic message, if it was a string).
    Panicked(String),
}

/// Runs `fut` as its own task with a deadline: a panic inside it (a bug in a parser, say)
/// becomes an error for this one message instead of dropping the MTA's connection, and a
/// task past its deadline is cancelled, not left running.
pub async fn run_isolated<T: Send + 'static>(
    fut: impl std::future::Future<Output = T> + Send + 'static,
    limit: std::time::Duration,
) -> Result<T, Isolated> {
    let task = tokio::spawn(fut);
    let abort = task.abort_handle();
    match tokio::time::timeout(limit, task).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => {
            let what = match e.try_into_panic() {
                Ok(payload) => payload
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "panic".into()),
                Err(e) => e.to_string(),
            };
            Err(Isolated::Panicked(what))
        }
        Err(_) => {
            abort.abort();
            Err(Isolated::TimedOut)
        }
    }
}

/// State of one MTA connection.
pub struct Session {
    pub(super) rt: Arc<Runtime>,
    pub(super) leading_space: bool,
    pub(super) can_skip: bool,
    pub(super) can_quarantine: bool,
    client_ip: Option<IpAddr>,
    trusted: bool,
    helo: String,
    authserv_id: Option<String>,
    message: Option<MessageData>,
    /// Keeps `spoofguard_connections_open` counted while the connection lives.
    _open: metric::ConnectionGauge,
}

/// State of the message in progress.
#[derive(Default)]
struct MessageData {
    mail_from: String,
    recipients: Vec<String>,
    authenticated: bool,
    raw: Vec<u8>,
    /// Why the message is over a limit and will not be verified, once it is.
    oversize: Option<String>,
    /// Header fields and DKIM-Signature fields seen so far.
    headers: usize,
    dkim_signatures: usize,
    /// The body has started (headers were terminated with an empty line).
    in_body: bool,
    /// The previous body chunk ended in CR (for LF to CRLF across chunks).
    last_cr: bool,
    /// Occurrences seen so far, by lowercase header name: only the names we may delete or
    /// change (Authentication-Results, ours, Subject), so the map stays a few entries long.
    seen: HashMap<String, i32>,
    /// More than [`MAX_FORGED`] forged headers arrived; the message will be refused.
    forged_overflow: bool,
    /// Forged headers to delete: name and 1-based index among headers of that name.
    forged: Vec<(String, i32)>,
    /// The first Subject header's value (for the subject tag).
    subject: Option<String>,
    /// When MAIL FROM arrived (for `[milter] message_timeout_secs`).
    started: Option<Instant>,
}

impl Session {
    /// A new connection's state, with the runtime current at negotiation.
    pub fn new(rt: Arc<Runtime>) -> Self {
        Self {
            rt,
            leading_space: false,
            can_skip: false,
            can_quarantine: false,
            client_ip: None,
            trusted: false,
            helo: String::new(),
            authserv_id: None,
            message: None,
            _open: metric::ConnectionGauge::open(),
        }
    }

    /// The status to answer when we cannot do our job (`[milter] on_error`).
    pub fn error_status(&self) -> Status {
        match self.rt.config.milter.on_error {
            ErrorAction::Tempfail => Status::Tempfail,
            ErrorAction::Accept => Status::Accept,
            ErrorAction::Reject => Status::Reject,
        }
    }

    /// What goes before a header value we add. With SMFIP_HDR_LEADSPC negotiated the MTA
    /// inserts no space after the colon itself (Postfix milter8.c), so we send it.
    fn value_prefix(&self) -> &'static str {
        if self.leading_space { " " } else { "" }
    }

    pub fn init_connection(&mut self, ip: Option<IpAddr>) {
        // After QUIT_NC the MTA reuses this milter connection for its next SMTP connection
        // (CONNECT again, no new negotiation): nothing of the previous one may carry over,
        // such as its HELO name when the next client sends none.
        self.helo.clear();
        self.authserv_id = None;
        self.message = None;
        // An IPv4 client seen through an IPv6 socket (::ffff:192.0.2.1) is IPv4 to SPF's
        // ip4: mechanisms (RFC 7208, section 5.6).
        let ip = ip.map(|ip| match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        });
        self.client_ip = ip;
        self.trusted = ip.is_some_and(|ip| self.rt.config.auth.is_trusted(ip));
    }

    pub fn set_helo(&mut self, helo: &str) {
        // A second HELO after STARTTLS replaces the first (RFC 3207, section 4.2).
        self.helo = helo.trim().to_owned();
    }

    /// The authserv-id: configured, else the MTA's `j` macro, else our host name.
    pub fn authserv_id(&mut self, j_macro: Option<&str>) -> String {
        if let Some(id) = &self.authserv_id {
            return id.clone();
        }
        let id = self
            .rt
            .config
            .milter
            .authserv_id
            .clone()
            .or_else(|| j_macro.map(str::to_owned).filter(|j| !j.is_empty()))
            .or_else(|| hostname::get().ok().and_then(|h| h.into_string().ok()))
            .unwrap_or_else(|| "localhost".into())
            .to_ascii_lowercase();
        self.authserv_id = Some(id.clone());
        id
    }

    pub fn init_message(&mut self, mail_from: &str, authenticated: bool) {
        let addr = mail_from.trim();
        let addr = addr
            .strip_prefix('<')
            .and_then(|a| a.strip_suffix('>'))
            .unwrap_or(addr);
        self.message = Some(MessageData {
            mail_from: addr.to_owned(),
            authenticated,
            started: Some(Instant::now()),
            raw: Vec::with_capacity(8192.min(self.rt.config.milter.max_message_bytes)),
            ..Default::default()
        });
    }

    pub fn abort_message(&mut self) {
        self.message = None;
    }

    /// Ends the message in progress if it has taken longer than `[milter]
    /// message_timeout_secs` since MAIL FROM: the buffer is freed and a temporary error
    /// reply is set, so the MTA refuses this message and the sender retries. Returns
    /// `Some(Status::Tempfail)` then, `None` while the message is in time.
    pub fn check_message_deadline(
        &mut self,
        reply: &mut impl SetErrorReply,
        queue_id: Option<&str>,
    ) -> Option<Status> {
        let limit = self.rt.config.milter.message_timeout;
        let started = self.message.as_ref()?.started?;
        if started.elapsed() <= limit {
            return None;
        }
        self.message = None;
        let queue_id = queue_id.filter(|q| !q.is_empty()).unwrap_or("NONE");
        let client_ip = self
            .client_ip
            .map_or_else(|| "unknown".into(), |ip| ip.to_string());
        let secs = limit.as_secs();
        info!(
            queue_id,
            client_ip,
            decision = "tempfail",
            reason = "message timeout",
            limit_secs = secs,
            "message not judged"
        );
        metric::message("timeout", Action::Tempfail);
        if let Err(e) = reply.set_error_reply(
            "451",
            Some("4.4.2"),
            ["Message transfer took too long, try again later"],
        ) {
            warn!(error = %e, "cannot set the timeout reply");
        }
        Some(Status::Tempfail)
    }

    pub fn add_recipient(&mut self, rcpt: &str) {
        if let Some(m) = &mut self.message
            && m.recipients.len() < MAX_RECIPIENTS
        {
            m.recipients.push(rcpt.trim_matches(['<', '>']).to_owned());
        }
    }

    /// Appends one header as received and notes forged copies of ours.
    pub fn add_header(&mut self, name: &[u8], value: &[u8], authserv_id: &str) {
        let limits = &self.rt.config.milter;
        let (max, max_headers, max_header_bytes) = (
            limits.max_message_bytes,
            limits.max_headers,
            limits.max_header_bytes,
        );
        let max_dkim = self.rt.config.auth.max_dkim_signatures;
        let leading_space = self.leading_space;
        let Some(m) = &mut self.message else { return };
        let lname = String::from_utf8_lossy(name).to_ascii_lowercase();
        let is_ar = lname == "authentication-results";
        let is_ours = OWN_X_HEADERS.iter().any(|h| h.eq_ignore_ascii_case(&lname));
        let is_subject = lname == "subject";
        if is_ar || is_ours || is_subject {
            let index = {
                let n = m.seen.entry(lname.clone()).or_insert(0);
                *n = n.saturating_add(1);
                *n
            };
            let value_text = String::from_utf8_lossy(value);
            // RFC 8601, section 5: remove results that claim our authserv-id.
            let forged = is_ours
                || (is_ar && header::authserv_id_of(&value_text).as_deref() == Some(authserv_id));
            if forged {
                if m.forged.len() < MAX_FORGED {
                    m.forged
                        .push((String::from_utf8_lossy(name).into_owned(), index));
                } else {
                    m.forged_overflow = true;
                }
            } else if is_subject && m.subject.is_none() {
                m.subject = Some(value_text.trim_start().to_owned());
            }
        }
        m.headers += 1;
        if m.oversize.is_some() {
            return;
        }
        if m.headers > max_headers {
            mark_oversize(m, format!("more than {max_headers} header fields"));
            return;
        }
        if name.len() + value.len() > max_header_bytes {
            mark_oversize(
                m,
                format!("a header field larger than {max_header_bytes} bytes"),
            );
            return;
        }
        if lname == "dkim-signature" {
            m.dkim_signatures += 1;
            if m.dkim_signatures > max_dkim {
                // Bounds the crypto and DNS work one message can cause; the field is still
                // delivered, it is only left out of what we verify.
                debug!(
                    signature = m.dkim_signatures,
                    max_dkim, "DKIM signature not verified: over the limit"
                );
                return;
            }
        }
        let mut line = Vec::with_capacity(name.len() + value.len() + 4);
        line.extend_from_slice(name);
        line.push(b':');
        if !leading_space {
            line.push(b' ');
        }
        // The MTA joins folded lines with LF; DKIM hashes them as CRLF.
        push_crlf(&mut line, value, &mut false);
        line.extend_from_slice(b"\r\n");
        if m.raw.len() + line.len() > max {
            mark_oversize(m, format!("larger than {max} bytes"));
        } else {
            reserve_capped(&mut m.raw, line.len(), max);
            m.raw.extend_from_slice(&line);
        }
    }

    pub fn end_of_headers(&mut self) {
        if let Some(m) = &mut self.message
            && m.oversize.is_none()
        {
            m.raw.extend_from_slice(b"\r\n");
            m.in_body = true;
        }
    }

    /// Appends a body chunk; returns `Skip` once the message is over the size limit and the
    /// MTA lets us skip the rest.
    pub fn add_body(&mut self, chunk: &[u8]) -> Status {
        let max = self.rt.config.milter.max_message_bytes;
        let can_skip = self.can_skip;
        let Some(m) = &mut self.message else {
            return Status::Continue;
        };
        if !m.in_body && m.oversize.is_none() {
            m.raw.extend_from_slice(b"\r\n");
            m.in_body = true;
        }
        if m.oversize.is_none() && m.raw.len() + chunk.len() > max {
            mark_oversize(m, format!("larger than {max} bytes"));
        }
        if m.oversize.is_some() {
            return if can_skip {
                Status::Skip
            } else {
                Status::Continue
            };
        }
        let mut last_cr = m.last_cr;
        reserve_capped(&mut m.raw, chunk.len(), max);
        push_crlf(&mut m.raw, chunk, &mut last_cr);
        m.last_cr = last_cr;
        // Bare LFs grow by one byte each: check the limit on what was buffered.
        if m.raw.len() > max {
            mark_oversize(m, format!("larger than {max} bytes"));
            if can_skip {
                return Status::Skip;
            }
        }
        Status::Continue
    }

    /// Judges the message and applies the outcome. `queue_id` is macro `i`.
    pub async fn finish_message(
        &mut self,
        actions: &impl ContextActions,
        reply: &mut impl SetErrorReply,
        queue_id: Option<&str>,
        authserv_id: &str,
    ) -> Result<Status, SessionError> {
        let mut m = self.message.take().ok_or(SessionError::NoMessage)?;
        let queue_id = queue_id.filter(|q| !q.is_empty()).unwrap_or("NONE");
        let client_ip = self
            .client_ip
            .map_or_else(|| "unknown".into(), |ip| ip.to_string());
        let config = &self.rt.config;

        if m.forged_overflow {
            info!(
                queue_id,
                client_ip,
                decision = "reject",
                reason = "forged headers",
                "message not judged"
            );
            reply.set_error_reply(
                "550",
                Some("5.7.1"),
                ["Too many forged authentication headers"],
            )?;
            metric::message("reject", Action::Reject);
            return Ok(Status::Reject);
        }

        // Forged copies of our headers go first, highest index first, so that indices of
        // the others stay valid whatever the MTA's numbering after a deletion.
        delete_forged(actions, &m.forged).await?;

        let skip = if self.trusted {
            Some("trusted network")
        } else if m.authenticated && config.auth.skip_authenticated {
            Some("authenticated sender")
        } else {
            None
        };
        if let Some(why) = skip {
            info!(
                queue_id,
                client_ip,
                decision = "skip",
                reason = why,
                "message not judged"
            );
            metric::message("skip", Action::Deliver);
            return Ok(Status::Continue);
        }

        if let Some(why) = &m.oversize {
            return self
                .finish_oversize(actions, reply, queue_id, &client_ip, why)
                .await;
        }

        let envelope = Envelope {
            client_ip: self.client_ip,
            helo: self.helo.clone(),
            mail_from: m.mail_from.clone(),
            recipients: m.recipients.clone(),
            queue_id: queue_id.to_owned(),
        };
        let limit = config.milter.evaluation_timeout;
        let (rt, id, raw) = (
            self.rt.clone(),
            authserv_id.to_owned(),
            std::mem::take(&mut m.raw),
        );
        let judged = async move { evaluate::evaluate(&rt, &id, &envelope, &raw).await };
        let eval = match run_isolated(judged, limit).await {
            Ok(eval) => eval,
            Err(Isolated::TimedOut) => {
                return self.finish_timed_out(reply, queue_id, &client_ip, limit.as_secs());
            }
            Err(Isolated::Panicked(what)) => {
                return Err(SessionError::Evaluation(format!("panicked: {what}")));
            }
        };
        let dry_run = config.milter.dry_run;
        log_evaluation(&eval, queue_id, &client_ip, dry_run);
        record_evaluation(&eval);
        let decision = eval.decision.as_str();

        if eval.decision == Decision::Tempfail && !dry_run {
            reply.set_error_reply("451", Some("4.4.3"), [config.policy.tempfail_text.as_str()])?;
            metric::message(decision, Action::Tempfail);
            return Ok(Status::Tempfail);
        }
        if eval.decision == Decision::Reject && !dry_run {
            let text = format!(
                "{}: {}",
                config.policy.reject_text,
                eval.why.as_deref().unwrap_or("policy")
            );
            reply.set_error_reply(
                "550",
                Some("5.7.1"),
                [header::one_line(&text, 900).as_str()],
            )?;
            metric::message(decision, Action::Reject);
            return Ok(Status::Reject);
        }

        let sp = self.value_prefix();
        actions
            .insert_header(
                0,
                AUTHENTICATION_RESULTS,
                format!("{sp}{}", eval.authentication_results()),
            )
            .await?;
        debug!(queue_id, "added {AUTHENTICATION_RESULTS} header");
        if config.headers.add_score_headers {
            add_score_headers(actions, sp, eval.score, eval.decision, &eval.reasons).await?;
        }
        if eval.decision >= Decision::Tag && !config.policy.subject_tag.is_empty() && !dry_run {
            let subject = m.subject.unwrap_or_default();
            let tagged = format!(" {} {}", config.policy.subject_tag, subject.trim());
            if m.seen.contains_key("subject") {
                actions
                    .change_header("Subject", 1, Some(tagged.trim_end()))
                    .await?;
            } else {
                actions.add_header("Subject", tagged.trim()).await?;
            }
        }
        let mut action = Action::Deliver;
        if eval.decision == Decision::Quarantine && !dry_run {
            let why = eval.why.as_deref().unwrap_or("policy");
            if self.can_quarantine {
                actions.quarantine(header::one_line(why, 900)).await?;
                action = Action::Quarantine;
            } else {
                warn!(
                    queue_id,
                    "the MTA does not offer quarantine; message delivered with headers"
                );
            }
        }
        metric::message(decision, action);
        Ok(Status::Continue)
    }

    /// Verification did not finish within `[milter] evaluation_timeout_secs` (a very slow DNS
    /// server, usually): `[milter] on_error` answers.
    fn finish_timed_out(
        &self,
        reply: &mut impl SetErrorReply,
        queue_id: &str,
        client_ip: &str,
        secs: u64,
    ) -> Result<Status, SessionError> {
        let status = self.error_status();
        let (decision, action) = match status {
            Status::Tempfail => {
                reply.set_error_reply(
                    "451",
                    Some("4.4.3"),
                    ["Sender verification timed out, try again later"],
                )?;
                ("tempfail", Action::Tempfail)
            }
            Status::Reject => {
                reply.set_error_reply("550", Some("5.7.1"), ["Sender verification timed out"])?;
                ("reject", Action::Reject)
            }
            _ => ("accept", Action::Deliver),
        };
        warn!(
            queue_id,
            client_ip,
            decision,
            reason = "evaluation timeout",
            limit_secs = secs,
            "message not judged"
        );
        metric::message("timeout", action);
        Ok(status)
    }

    async fn finish_oversize(
        &self,
        actions: &impl ContextActions,
        reply: &mut impl SetErrorReply,
        queue_id: &str,
        client_ip: &str,
        why: &str,
    ) -> Result<Status, SessionError> {
        let config = &self.rt.config;
        warn!(queue_id, client_ip, why, "message too large to verify");
        let (decision, action, status) = match config.milter.oversize_action {
            OversizeAction::Accept => {
                let reasons = [Reason {
                    code: "OVERSIZE".into(),
                    detail: format!("{why}, not verified"),
                    weight: self.rt.weights.of("OVERSIZE"),
                    brand: None,
                }];
                if config.headers.add_score_headers {
                    let sp = self.value_prefix();
                    add_score_headers(actions, sp, 0.0, Decision::Accept, &reasons).await?;
                }
                ("accept", Action::Deliver, Status::Continue)
            }
            OversizeAction::Tempfail => {
                reply.set_error_reply(
                    "452",
                    Some("4.3.4"),
                    ["Message too large to verify, try again later"],
                )?;
                ("tempfail", Action::Tempfail, Status::Tempfail)
            }
            OversizeAction::Reject => {
                reply.set_error_reply("552", Some("5.3.4"), ["Message too large to verify"])?;
                ("reject", Action::Reject, Status::Reject)
            }
        };
        info!(
            queue_id,
            client_ip,
            decision,
            reason = "oversize",
            "message not judged"
        );
        metric::message("oversize", action);
        Ok(status)
    }
}

fn mark_oversize(m: &mut MessageData, why: String) {
    m.oversize = Some(why);
    // The bytes so far are useless without the rest: give the memory back now.
    m.raw = Vec::new();
}

/// Appends `data`, turning bare LF into CRLF; `last_cr` carries a trailing CR across calls.
/// Copies whole lines at a time (the MTA normally sends CRLF already).
fn push_crlf(out: &mut Vec<u8>, data: &[u8], last_cr: &mut bool) {
    let Some(&last) = data.last() else { return };
    out.reserve(data.len());
    let mut prev_cr = *last_cr;
    let mut rest = data;
    while let Some(i) = rest.iter().position(|&b| b == b'\n') {
        let cr_before = if i == 0 {
            prev_cr
        } else {
            rest[i - 1] == b'\r'
        };
        out.extend_from_slice(&rest[..i]);
        if !cr_before {
            out.push(b'\r');
        }
        out.push(b'\n');
        prev_cr = false;
        rest = &rest[i + 1..];
    }
    out.extend_from_slice(rest);
    *last_cr = last == b'\r';
}

/// Makes room for `additional` more bytes without letting the capacity grow past `max` plus
/// `additional` (a doubling `Vec` would reach up to twice `max_message_bytes`).
fn reserve_capped(buf: &mut Vec<u8>, additional: usize, max: usize) {
    let needed = buf.len() + additional;
    if needed > buf.capacity() {
        let target = (buf.capacity() * 2).max(needed).min(max.max(needed));
        buf.reserve_exact(target - buf.len());
    }
}

async fn delete_forged(
    actions: &impl ContextActions,
    forged: &[(String, i32)],
) -> Result<(), SessionError> {
    let mut sorted: Vec<&(String, i32)> = forged.iter().collect();
    sorted.sort_by_key(|f| std::cmp::Reverse(f.1));
    for (name, index) in sorted {
        actions
            .change_header(name.as_str(), *index, None::<&str>)
            .await?;
        debug!(header = %name, index, "removed forged header");
    }
    Ok(())
}

async fn add_score_headers(
    actions: &impl ContextActions,
    sp: &str,
    score: f64,
    decision: Decision,
    reasons: &[Reason],
) -> Result<(), SessionError> {
    let score = format!("{sp}{}", header::score_value(score));
    actions.add_header(X_SCORE, score).await?;
    actions
        .add_header(X_VERDICT, format!("{sp}{}", decision.as_str()))
        .await?;
    let reasons = format!("{sp}{}", header::reasons_value(reasons));
    actions.add_header(X_REASONS, reasons).await?;
    Ok(())
}

/// Findings and authentication results of a judged message, for the metrics.
fn record_evaluation(eval: &Evaluation) {
    for r in &eval.reasons {
        metric::finding(&r.code);
    }
    let v = &eval.verdicts;
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

/// The one info line per message (docs/operations: log fields are an interface).
fn log_evaluation(eval: &Evaluation, queue_id: &str, client_ip: &str, dry_run: bool) {
    let codes: Vec<&str> = eval.reasons.iter().map(|r| r.code.as_str()).collect();
    let v = &eval.verdicts;
    info!(
        queue_id,
        client_ip,
        from_domain = eval.from_domain.as_deref().unwrap_or(""),
        spf = %v.spf.result,
        dkim = %v.dkim_summary(),
        arc = %v.arc.result,
        dmarc = %v.dmarc.result,
        score = eval.score,
        decision = %eval.decision,
        dry_run,
        reasons = %codes.join(","),
        "message evaluated"
    );
    if dry_run && eval.decision > Decision::Tag {
        info!(queue_id, decision = %eval.decision, "[dry run, not done]");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn run_isolated_turns_panics_and_deadlines_into_errors() {
        use std::time::Duration;
        let ok = run_isolated(async { 7 }, Duration::from_secs(5)).await;
        assert_eq!(ok, Ok(7));
        let panicked = run_isolated(
            async {
                let v: Vec<u8> = Vec::new();
                #[allow(clippy::indexing_slicing)]
                v[3]
            },
            Duration::from_secs(5),
        )
        .await;
        assert_eq!(
            panicked,
            Err(Isolated::Panicked(
                "index out of bounds: the len is 0 but the index is 3".into()
            ))
        );
        let dropped = std::sync::Arc::new(());
        let held = dropped.clone();
        let slow = run_isolated(
            async move {
                let _held = held;
                tokio::time::sleep(Duration::from_secs(60)).await;
            },
            Duration::from_millis(50),
        )
        .await;
        assert_eq!(slow, Err(Isolated::TimedOut));
        // The cancelled task is gone: it no longer holds its clone.
        for _ in 0..100 {
            if std::sync::Arc::strong_count(&dropped) == 1 {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(std::sync::Arc::strong_count(&dropped), 1);
    }

    #[test]
    fn recipients_past_the_limit_are_not_recorded() {
        let config = crate::config::Config::from_toml("", std::path::Path::new("t.toml"))
            .expect("empty config");
        let rt = Runtime::build(config, None).expect("runtime");
        let mut session = Session::new(Arc::new(rt));
        session.init_message("<a@example.org>", false);
        for i in 0..MAX_RECIPIENTS + 500 {
            session.add_recipient(&format!("<r{i}@example.net>"));
        }
        let m = session.message.as_ref().expect("message");
        assert_eq!(m.recipients.len(), MAX_RECIPIENTS);
        assert_eq!(m.recipients[0], "r0@example.net");
        assert_eq!(
            m.recipients.last().map(String::as_str),
            Some(format!("r{}@example.net", MAX_RECIPIENTS - 1).as_str())
        );
    }

    #[test]
    fn push_crlf_converts_bare_lf_across_chunks() {
        let mut out = Vec::new();
        let mut cr = false;
        push_crlf(&mut out, b"a\nb\r", &mut cr);
        push_crlf(&mut out, b"\nc\r\n", &mut cr);
        assert_eq!(out, b"a\r\nb\r\nc\r\n");
    }

    /// The line-at-a-time copy gives the same bytes as the one-byte-at-a-time rule, for every
    /// way of cutting the input into two chunks.
    #[test]
    fn push_crlf_matches_bytewise_rule() {
        fn bytewise(data: &[u8]) -> Vec<u8> {
            let mut out = Vec::new();
            let mut last_cr = false;
            for &b in data {
                if b == b'\n' && !last_cr {
                    out.push(b'\r');
                }
                out.push(b);
                last_cr = b == b'\r';
            }
            out
        }
        let inputs: [&[u8]; 6] = [
            b"",
            b"\n\n\r\n\r\r\n",
            b"line one\r\nline two\nthree\r",
            b"\rabc\n\r\n\n",
            b"no newline at all",
            b"\r\n\r\n.\r\n",
        ];
        for input in inputs {
            for cut in 0..=input.len() {
                let mut out = Vec::new();
                let mut cr = false;
                push_crlf(&mut out, &input[..cut], &mut cr);
                push_crlf(&mut out, &input[cut..], &mut cr);
                assert_eq!(out, bytewise(input), "input {input:?} cut at {cut}");
            }
        }
    }

    #[test]
    fn reserve_capped_never_exceeds_the_limit() {
        let max = 100_000;
        let mut buf: Vec<u8> = Vec::with_capacity(8192);
        while buf.len() + 1000 <= max {
            reserve_capped(&mut buf, 1000, max);
            buf.extend_from_slice(&[b'x'; 1000]);
            assert!(buf.capacity() <= max, "capacity {} > {max}", buf.capacity());
        }
        // A request past the limit still gets exactly what it asks for.
        reserve_capped(&mut buf, 5000, max);
        assert!(buf.capacity() >= buf.len() + 5000);
    }
}
