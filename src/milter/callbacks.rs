//! One `handle_<stage>` per milter stage: unpack the arguments, call the session, map a
//! failure to `[milter] on_error`. Missing session data means tempfail (dkim-milter's rule).

use super::SharedRuntime;
use super::session::Session;
use crate::metric;
use indymilter::{
    Actions, Callbacks, Context, EomContext, MacroStage, NegotiateContext, ProtoOpts, SocketInfo,
    Status,
};
use std::ffi::{CStr, CString};
use std::time::Instant;
use tracing::{error, warn};

macro_rules! session {
    ($cx:expr) => {
        match $cx.data.as_mut() {
            Some(session) => session,
            None => return Status::Tempfail,
        }
    };
}

/// The callbacks for every stage, so any MTA or miltertest script works (an unregistered
/// stage would be negotiated away, and miltertest scripts that use it then fail).
pub fn make_callbacks(shared: SharedRuntime) -> Callbacks<Session> {
    Callbacks::new()
        .on_negotiate(move |cx, actions, opts| {
            let rt = super::current(&shared);
            Box::pin(async move { handle_negotiate(cx, rt, actions, opts) })
        })
        .on_connect(|cx, host, info| {
            Box::pin(async move { timed("connect", || handle_connect(cx, host, info)) })
        })
        .on_helo(|cx, helo| Box::pin(async move { timed("helo", || handle_helo(cx, helo)) }))
        .on_mail(|cx, args| Box::pin(async move { timed("mail", || handle_mail(cx, args)) }))
        .on_rcpt(|cx, args| Box::pin(async move { timed("rcpt", || handle_rcpt(cx, args)) }))
        .on_data(|_| Box::pin(async { Status::Continue }))
        .on_header(|cx, name, value| {
            Box::pin(async move { timed("header", || handle_header(cx, name, value)) })
        })
        .on_eoh(|cx| Box::pin(async move { timed("eoh", || handle_eoh(cx)) }))
        .on_body(|cx, chunk| Box::pin(async move { timed("body", || handle_body(cx, &chunk)) }))
        .on_eom(|cx| {
            Box::pin(async move {
                let start = Instant::now();
                let status = handle_eom(cx).await;
                metric::stage("eom", start.elapsed());
                status
            })
        })
        .on_abort(|cx| Box::pin(async move { handle_abort(cx) }))
        .on_close(|_| Box::pin(async { Status::Continue }))
        .on_unknown(|_, _| Box::pin(async { Status::Continue }))
}

/// Runs one synchronous stage and records its duration.
fn timed(stage: &'static str, f: impl FnOnce() -> Status) -> Status {
    let start = Instant::now();
    let status = f();
    metric::stage(stage, start.elapsed());
    status
}

fn macro_str<'a>(cx: &'a indymilter::Macros, name: &CStr) -> Option<&'a str> {
    cx.get(name).and_then(|v| v.to_str().ok())
}

fn handle_negotiate(
    cx: &mut NegotiateContext<Session>,
    rt: std::sync::Arc<crate::runtime::Runtime>,
    actions: Actions,
    opts: ProtoOpts,
) -> Status {
    let mut session = Session::new(rt);
    let needed = Actions::ADD_HEADER | Actions::CHANGE_HEADER;
    if !actions.contains(needed) {
        error!(
            "the MTA does not offer the add-header and change-header actions; refusing the connection"
        );
        return Status::Reject;
    }
    // Implementation note: indymilter starts `requested_actions` as everything the MTA offers
    // (body replacement, recipient and sender changes, ...), whatever its docs suggest. Ask
    // for what we use and nothing more.
    cx.requested_actions = needed;
    if actions.contains(Actions::QUARANTINE) {
        cx.requested_actions |= Actions::QUARANTINE;
        session.caps.can_quarantine = true;
    }
    // Exact header bytes matter to DKIM: ask for the space after the colon as received.
    if opts.contains(ProtoOpts::LEADING_SPACE) {
        cx.requested_opts |= ProtoOpts::LEADING_SPACE;
        session.caps.leading_space = true;
    }
    if opts.contains(ProtoOpts::SKIP) {
        cx.requested_opts |= ProtoOpts::SKIP;
        session.can_skip = true;
    }
    let macros = [
        (
            MacroStage::Connect,
            "j {daemon_name} {client_addr} {client_name}",
        ),
        (MacroStage::Mail, "i {auth_authen} {auth_type} {mail_addr}"),
        (MacroStage::Data, "i"),
        (MacroStage::Eoh, "i"),
        (MacroStage::Eom, "i"),
    ];
    for (stage, list) in macros {
        if let Ok(list) = CString::new(list) {
            cx.requested_macros.insert(stage, list);
        }
    }
    cx.data = Some(session);
    Status::Continue
}

fn handle_connect(cx: &mut Context<Session>, _host: CString, info: SocketInfo) -> Status {
    let from_macro = macro_str(&cx.macros, c"{client_addr}").and_then(|a| a.parse().ok());
    let session = session!(cx);
    let ip = match info {
        SocketInfo::Inet(addr) => Some(addr.ip()),
        _ => from_macro,
    };
    session.init_connection(ip);
    Status::Continue
}

fn handle_helo(cx: &mut Context<Session>, helo: CString) -> Status {
    let session = session!(cx);
    session.set_helo(&helo.to_string_lossy());
    Status::Continue
}

fn handle_mail(cx: &mut Context<Session>, args: Vec<CString>) -> Status {
    let authenticated = macro_str(&cx.macros, c"{auth_authen}").is_some_and(|a| !a.is_empty());
    let queue_id = macro_str(&cx.macros, c"i");
    let Some(session) = cx.data.as_mut() else {
        return Status::Tempfail;
    };
    let sender = args
        .first()
        .map(|a| a.to_string_lossy())
        .unwrap_or_default();
    session.init_message(&sender, authenticated, queue_id);
    Status::Continue
}

/// The message's deadline (`[milter] message_timeout_secs`), checked at every stage after MAIL.
macro_rules! deadline {
    ($cx:expr, $session:expr) => {
        if let Some(status) =
            $session.check_message_deadline(&mut $cx.reply, macro_str(&$cx.macros, c"i"))
        {
            return status;
        }
    };
}

fn handle_rcpt(cx: &mut Context<Session>, args: Vec<CString>) -> Status {
    let session = session!(cx);
    deadline!(cx, session);
    if let Some(rcpt) = args.first() {
        session.add_recipient(&rcpt.to_string_lossy());
    }
    Status::Continue
}

fn handle_header(cx: &mut Context<Session>, name: CString, value: CString) -> Status {
    // Only Authentication-Results headers are compared with our authserv-id: skip the macro
    // lookup and the copy of the id for every other header.
    let is_ar = name
        .as_bytes()
        .eq_ignore_ascii_case(crate::header::AUTHENTICATION_RESULTS.as_bytes());
    let j = if is_ar {
        macro_str(&cx.macros, c"j")
    } else {
        None
    };
    let session = session!(cx);
    deadline!(cx, session);
    let id = if is_ar {
        session.authserv_id(j)
    } else {
        String::new()
    };
    // Only a debug line can be logged while a header is taken in: enter the message span
    // just when debug is on (entering costs on every one of a message's headers).
    if tracing::enabled!(tracing::Level::DEBUG) {
        let span = session.span().clone();
        let _in_span = span.enter();
        session.add_header(name.as_bytes(), value.as_bytes(), &id);
    } else {
        session.add_header(name.as_bytes(), value.as_bytes(), &id);
    }
    Status::Continue
}

fn handle_eoh(cx: &mut Context<Session>) -> Status {
    let queue_id = macro_str(&cx.macros, c"i");
    let Some(session) = cx.data.as_mut() else {
        return Status::Tempfail;
    };
    session.note_queue_id(queue_id);
    deadline!(cx, session);
    session.end_of_headers();
    Status::Continue
}

fn handle_body(cx: &mut Context<Session>, chunk: &[u8]) -> Status {
    let session = session!(cx);
    deadline!(cx, session);
    session.add_body(chunk)
}

async fn handle_eom(cx: &mut EomContext<Session>) -> Status {
    let queue_id = macro_str(&cx.macros, c"i").map(str::to_owned);
    let j = macro_str(&cx.macros, c"j").map(str::to_owned);
    let session = session!(cx);
    deadline!(cx, session);
    session
        .finish_message(
            &cx.actions,
            &mut cx.reply,
            queue_id.as_deref(),
            j.as_deref(),
        )
        .await
}

fn handle_abort(cx: &mut Context<Session>) -> Status {
    // Postfix sends ABORT after every message, then MAIL for the next one.
    if let Some(session) = cx.data.as_mut() {
        session.abort_message();
    } else {
        warn!("abort without a session");
    }
    Status::Continue
}
