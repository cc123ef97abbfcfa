//! Per-connection and per-message state, and what happens at each stage. Callbacks in
//! `callbacks.rs` only unpack arguments and call these methods; the message's bytes are taken
//! in by [`Intake`], judged by `evaluate`, and the outcome carried out by `apply`.

use super::apply::{self, Capabilities};
use crate::config::ErrorAction;
use crate::evaluate::{self, Envelope, Input};
use crate::intake::{Intake, Limits};
use crate::metric;
use crate::runtime::Runtime;
use indymilter::{ContextActions, SetErrorReply, Status};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;
use tracing::{Instrument, Span, error, field, info_span, warn};

/// The metric action of a status answered for an internal failure.
fn counted_as(status: Status) -> metric::Action {
    match status {
        Status::Tempfail => metric::Action::Tempfail,
        Status::Reject => metric::Action::Reject,
        _ => metric::Action::Deliver,
    }
}

/// Recipients remembered per message; later ones are still delivered, only not recorded.
/// Ten times Postfix's default `smtpd_recipient_limit` (1000).
pub const MAX_RECIPIENTS: usize = 10_000;

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
    pub(super) caps: Capabilities,
    pub(super) can_skip: bool,
    client_ip: Option<IpAddr>,
    helo: String,
    authserv_id: Option<String>,
    message: Option<MessageData>,
    /// The `connection` span (field `client_ip`); each message's span is its child.
    span: Span,
    /// Keeps `spoofguard_connections_open` counted while the connection lives.
    _open: metric::ConnectionGauge,
}

/// State of the message in progress.
struct MessageData {
    mail_from: String,
    recipients: Vec<String>,
    authenticated: bool,
    intake: Intake,
    /// When MAIL FROM arrived (for `[milter] message_timeout_secs`).
    started: Instant,
    /// The `message` span (field `queue_id`, recorded once known).
    span: Span,
    queue_id_recorded: bool,
}

impl MessageData {
    /// Records the queue id (macro `i`) in the message span the first time it is known.
    fn note_queue_id(&mut self, queue_id: Option<&str>) {
        if !self.queue_id_recorded
            && let Some(id) = queue_id.filter(|q| !q.is_empty())
        {
            self.span.record("queue_id", id);
            self.queue_id_recorded = true;
        }
    }

    /// The queue id for logs and the envelope: recorded now as `NONE` if still unknown.
    fn queue_id(&mut self, queue_id: Option<&str>) -> String {
        self.note_queue_id(queue_id);
        let id = queue_id.filter(|q| !q.is_empty()).unwrap_or("NONE");
        if !self.queue_id_recorded {
            self.span.record("queue_id", id);
            self.queue_id_recorded = true;
        }
        id.to_owned()
    }
}

impl Session {
    /// A new connection's state, with the runtime current at negotiation.
    pub fn new(rt: Arc<Runtime>) -> Self {
        Self {
            rt,
            caps: Capabilities::default(),
            can_skip: false,
            client_ip: None,
            helo: String::new(),
            authserv_id: None,
            message: None,
            span: Span::none(),
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

    /// The span to log in: the message's while one is in progress, else the connection's.
    pub fn span(&self) -> &Span {
        self.message.as_ref().map_or(&self.span, |m| &m.span)
    }

    pub fn init_connection(&mut self, ip: Option<IpAddr>) {
        // After QUIT_NC the MTA reuses this milter connection for its next SMTP connection
        // (CONNECT again, no new negotiation): nothing of the previous one may carry over,
        // such as its HELO name when the next client sends none.
        self.helo.clear();
        self.authserv_id = None;
        self.message = None;
        let ip = ip.map(evaluate::client_ip);
        self.client_ip = ip;
        let shown = ip.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
        self.span = info_span!("connection", client_ip = shown.as_str());
    }

    pub fn set_helo(&mut self, helo: &str) {
        // A second HELO after STARTTLS replaces the first (RFC 3207, section 4.2).
        self.helo = helo.trim().to_owned();
    }

    /// The authserv-id, resolved once per connection (`evaluate::authserv_id`).
    pub fn authserv_id(&mut self, j_macro: Option<&str>) -> String {
        if let Some(id) = &self.authserv_id {
            return id.clone();
        }
        let id = evaluate::authserv_id(&self.rt.config, j_macro);
        self.authserv_id = Some(id.clone());
        id
    }

    pub fn init_message(&mut self, mail_from: &str, authenticated: bool, queue_id: Option<&str>) {
        let addr = mail_from.trim();
        let addr = addr
            .strip_prefix('<')
            .and_then(|a| a.strip_suffix('>'))
            .unwrap_or(addr);
        let span = info_span!(parent: &self.span, "message", queue_id = field::Empty);
        let mut m = MessageData {
            mail_from: addr.to_owned(),
            recipients: Vec::new(),
            authenticated,
            intake: Intake::new(Limits::of(&self.rt.config)),
            started: Instant::now(),
            span,
            queue_id_recorded: false,
        };
        m.note_queue_id(queue_id);
        self.message = Some(m);
    }

    /// Records the queue id once the MTA has one (Sendmail assigns it after MAIL).
    pub fn note_queue_id(&mut self, queue_id: Option<&str>) {
        if let Some(m) = &mut self.message {
            m.note_queue_id(queue_id);
        }
    }

    pub fn abort_message(&mut self) {
        self.message = None;
    }

    /// Ends the message in progress if it has taken longer than `[milter]
    /// message_timeout_secs` since MAIL FROM: the buffer is freed and the evaluation of the
    /// time-out (a temporary error reply) is applied, so the MTA refuses this message and
    /// the sender retries. Returns `Some(status)` then, `None` while the message is in time.
    pub fn check_message_deadline(
        &mut self,
        reply: &mut impl SetErrorReply,
        queue_id: Option<&str>,
    ) -> Option<Status> {
        let m = self.message.as_ref()?;
        if m.started.elapsed() <= self.rt.config.milter.message_timeout {
            return None;
        }
        let mut m = self.message.take()?;
        let env = self.envelope(&mut m, queue_id, String::new());
        let _in_span = m.span.enter();
        let eval = match evaluate::screen(&self.rt, &env, Input::TransferTimeout) {
            Ok(eval) => eval,
            Err(_) => return Some(Status::Tempfail),
        };
        Some(apply::refuse(&eval, reply))
    }

    pub fn add_recipient(&mut self, rcpt: &str) {
        if let Some(m) = &mut self.message
            && m.recipients.len() < MAX_RECIPIENTS
        {
            m.recipients.push(rcpt.trim_matches(['<', '>']).to_owned());
        }
    }

    /// Takes in one header as received. `authserv_id` matters only for
    /// Authentication-Results (forged copies claim it).
    pub fn add_header(&mut self, name: &[u8], value: &[u8], authserv_id: &str) {
        let leading_space = self.caps.leading_space;
        if let Some(m) = &mut self.message {
            m.intake.add_header(name, value, authserv_id, leading_space);
        }
    }

    pub fn end_of_headers(&mut self) {
        if let Some(m) = &mut self.message {
            m.intake.end_of_headers();
        }
    }

    /// Takes in a body chunk; returns `Skip` once the message is over the size limit and the
    /// MTA lets us skip the rest.
    pub fn add_body(&mut self, chunk: &[u8]) -> Status {
        let Some(m) = &mut self.message else {
            return Status::Continue;
        };
        if m.intake.add_body(chunk) && self.can_skip {
            Status::Skip
        } else {
            Status::Continue
        }
    }

    fn envelope(
        &self,
        m: &mut MessageData,
        queue_id: Option<&str>,
        authserv_id: String,
    ) -> Envelope {
        Envelope {
            client_ip: self.client_ip,
            helo: self.helo.clone(),
            mail_from: m.mail_from.clone(),
            recipients: m.recipients.clone(),
            queue_id: m.queue_id(queue_id),
            authenticated: m.authenticated,
            authserv_id,
        }
    }

    /// Judges the message and applies the outcome. `queue_id` is macro `i`, `mta_host`
    /// macro `j`. A failure of ours is logged and answered by `[milter] on_error`.
    pub async fn finish_message(
        &mut self,
        actions: &impl ContextActions,
        reply: &mut impl SetErrorReply,
        queue_id: Option<&str>,
        mta_host: Option<&str>,
    ) -> Status {
        let Some(mut m) = self.message.take() else {
            // The MTA (or a client on the socket) broke the protocol: not our failure.
            let status = self.error_status();
            let _in_span = self.span.enter();
            warn!(error = %SessionError::NoMessage, ?status, "end of message without a message");
            metric::message("error", counted_as(status));
            return status;
        };
        let authserv_id = self.authserv_id(mta_host);
        let env = Arc::new(self.envelope(&mut m, queue_id, authserv_id));
        let span = m.span.clone();
        let result = self
            .finish(&env, &mut m, actions, reply)
            .instrument(span.clone())
            .await;
        match result {
            Ok(status) => status,
            Err(e) => {
                let status = self.error_status();
                let _in_span = span.enter();
                error!(error = %e, ?status, "cannot finish message");
                metric::message("error", counted_as(status));
                status
            }
        }
    }

    async fn finish(
        &self,
        env: &Arc<Envelope>,
        m: &mut MessageData,
        actions: &impl ContextActions,
        reply: &mut impl SetErrorReply,
    ) -> Result<Status, SessionError> {
        let rt = &self.rt;
        let eval = match evaluate::screen(rt, env, m.intake.input()) {
            Ok(eval) => eval,
            Err(_) => {
                let limit = rt.config.milter.evaluation_timeout;
                let (task_rt, task_env, raw) = (rt.clone(), Arc::clone(env), m.intake.take_raw());
                let judged = async move {
                    evaluate::evaluate(&task_rt, &task_env, Input::Message(&raw)).await
                }
                .instrument(Span::current());
                match run_isolated(judged, limit).await {
                    Ok(eval) => eval,
                    Err(Isolated::TimedOut) => {
                        evaluate::evaluate(rt, env, Input::EvaluationTimeout).await
                    }
                    Err(Isolated::Panicked(what)) => {
                        return Err(SessionError::Evaluation(format!("panicked: {what}")));
                    }
                }
            }
        };
        apply::apply(&eval, &m.intake, self.caps, actions, reply).await
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
        session.init_message("<a@example.org>", false, None);
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
}
