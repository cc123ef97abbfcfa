//! Session behaviour through mock actions, without a socket (spf-milter's `MockEomActions`):
//! forged-header deletion, the forged-overflow reply, oversize outcomes, skips, dry run,
//! subject tag and quarantine. DNS, where a message is judged, is an in-process zone server
//! with no records, so every lookup answers NXDOMAIN at once.

use super::apply::Capabilities;
use super::session::Session;
use crate::config::Config;
use crate::runtime::Runtime;
use crate::zone::{Zone, ZoneServer};
use indymilter::{ActionError, ContextActions, IntoCString, SetErrorReply, SmtpReplyError, Status};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Every action, in order, as `verb name[index]: value`.
#[derive(Default)]
struct MockActions(Mutex<Vec<String>>);

impl MockActions {
    fn push(&self, line: String) -> Result<(), ActionError> {
        self.0
            .lock()
            .map_err(|_| ActionError::InvalidParam)?
            .push(line);
        Ok(())
    }

    fn lines(&self) -> Vec<String> {
        self.0.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

fn text(s: impl IntoCString) -> String {
    s.into_c_string().to_string_lossy().into_owned()
}

#[async_trait::async_trait]
impl ContextActions for MockActions {
    async fn add_header<'cx, 'k, 'v>(
        &'cx self,
        name: impl IntoCString + Send + 'k,
        value: impl IntoCString + Send + 'v,
    ) -> Result<(), ActionError> {
        self.push(format!("add {}:{}", text(name), text(value)))
    }

    async fn insert_header<'cx, 'k, 'v>(
        &'cx self,
        index: i32,
        name: impl IntoCString + Send + 'k,
        value: impl IntoCString + Send + 'v,
    ) -> Result<(), ActionError> {
        self.push(format!("insert {index} {}:{}", text(name), text(value)))
    }

    async fn change_header<'cx, 'k, 'v>(
        &'cx self,
        name: impl IntoCString + Send + 'k,
        index: i32,
        value: Option<impl IntoCString + Send + 'v>,
    ) -> Result<(), ActionError> {
        match value {
            Some(v) => self.push(format!("change {}[{index}]:{}", text(name), text(v))),
            None => self.push(format!("delete {}[{index}]", text(name))),
        }
    }

    async fn change_sender<'cx, 'a, 'b>(
        &'cx self,
        _mail: impl IntoCString + Send + 'a,
        _args: Option<impl IntoCString + Send + 'b>,
    ) -> Result<(), ActionError> {
        Err(ActionError::NotAvailable)
    }

    async fn add_recipient<'cx, 'a>(
        &'cx self,
        _rcpt: impl IntoCString + Send + 'a,
    ) -> Result<(), ActionError> {
        Err(ActionError::NotAvailable)
    }

    async fn add_recipient_ext<'cx, 'a, 'b>(
        &'cx self,
        _rcpt: impl IntoCString + Send + 'a,
        _args: Option<impl IntoCString + Send + 'b>,
    ) -> Result<(), ActionError> {
        Err(ActionError::NotAvailable)
    }

    async fn delete_recipient<'cx, 'a>(
        &'cx self,
        _rcpt: impl IntoCString + Send + 'a,
    ) -> Result<(), ActionError> {
        Err(ActionError::NotAvailable)
    }

    async fn replace_body<'cx, 'a>(&'cx self, _chunk: &'a [u8]) -> Result<(), ActionError> {
        Err(ActionError::NotAvailable)
    }

    async fn progress<'cx>(&'cx self) -> Result<(), ActionError> {
        Ok(())
    }

    async fn quarantine<'cx, 'a>(
        &'cx self,
        reason: impl IntoCString + Send + 'a,
    ) -> Result<(), ActionError> {
        self.push(format!("quarantine {}", text(reason)))
    }
}

/// The reply set, as `code status text`.
#[derive(Default)]
struct MockReply(Option<String>);

impl SetErrorReply for MockReply {
    fn set_error_reply<I, T>(
        &mut self,
        rcode: &str,
        xcode: Option<&str>,
        message: I,
    ) -> Result<(), SmtpReplyError>
    where
        I: IntoIterator<Item = T>,
        T: IntoCString,
    {
        let lines: Vec<String> = message.into_iter().map(text).collect();
        self.0 = Some(format!(
            "{rcode} {} {}",
            xcode.unwrap_or(""),
            lines.join("\n")
        ));
        Ok(())
    }
}

struct World {
    _dns: ZoneServer,
    rt: Arc<Runtime>,
}

async fn world(toml: &str) -> World {
    let dns = ZoneServer::start(Zone::parse("").expect("empty zone"))
        .await
        .expect("zone server");
    let mut config = Config::from_toml(toml, std::path::Path::new("t.toml")).expect("config");
    config.milter.authserv_id = Some("mx.test".into());
    config.dns.nameservers = vec![dns.addr()];
    config.dns.timeout = Duration::from_secs(2);
    config.dns.attempts = 1;
    let rt = Runtime::build(config, None).expect("runtime");
    World {
        _dns: dns,
        rt: Arc::new(rt),
    }
}

/// One message through a session as Postfix sends it (leading space negotiated);
/// returns the status, the actions and the reply.
async fn run(
    w: &World,
    caps: Capabilities,
    ip: &str,
    authenticated: bool,
    headers: &[(&str, &str)],
    body: &str,
) -> (Status, Vec<String>, Option<String>) {
    let mut session = Session::new(w.rt.clone());
    session.caps = caps;
    session.init_connection(Some(ip.parse().expect("ip")));
    session.set_helo("mail.sender.example");
    session.init_message("<alice@sender.example>", authenticated, Some("4TEST"));
    session.add_recipient("<bob@rcpt.example>");
    for (name, value) in headers {
        let id = session.authserv_id(None);
        session.add_header(name.as_bytes(), format!(" {value}").as_bytes(), &id);
    }
    session.end_of_headers();
    session.add_body(body.as_bytes());
    let actions = MockActions::default();
    let mut reply = MockReply::default();
    let status = session
        .finish_message(&actions, &mut reply, Some("4TEST"), None)
        .await;
    (status, actions.lines(), reply.0)
}

const POSTFIX: Capabilities = Capabilities {
    leading_space: true,
    can_quarantine: true,
};

const PLAIN: [(&str, &str); 4] = [
    ("From", "Alice <alice@sender.example>"),
    ("To", "bob@rcpt.example"),
    ("Subject", "Hello"),
    ("Message-ID", "<1@sender.example>"),
];

#[tokio::test]
async fn forged_headers_are_deleted_highest_index_first_also_for_trusted_clients() {
    let w = world("").await;
    let headers = [
        ("Authentication-Results", "MX.test; spf=pass"),
        ("X-Spoofguard-Score", "0.0"),
        ("Authentication-Results", "other.test; dkim=pass"),
        ("From", "alice@sender.example"),
        ("Authentication-Results", "mx.test; dmarc=pass"),
    ];
    let (status, actions, reply) = run(&w, POSTFIX, "127.0.0.1", false, &headers, "hi\r\n").await;
    assert_eq!(status, Status::Continue);
    assert_eq!(reply, None);
    // Trusted: nothing added, but the forged copies still go, highest index first.
    assert_eq!(
        actions,
        [
            "delete Authentication-Results[3]",
            "delete Authentication-Results[1]",
            "delete X-Spoofguard-Score[1]",
        ]
    );
}

#[tokio::test]
async fn forged_header_overflow_is_refused_without_deleting() {
    let w = world("[milter]\nmax_headers = 5000\n").await;
    let mut headers = PLAIN.to_vec();
    headers.extend(std::iter::repeat_n(
        ("X-Spoofguard-Verdict", "accept"),
        crate::intake::MAX_FORGED + 1,
    ));
    let (status, actions, reply) = run(&w, POSTFIX, "192.0.2.10", false, &headers, "").await;
    assert_eq!(status, Status::Reject);
    assert!(actions.is_empty(), "{actions:?}");
    assert_eq!(
        reply.as_deref(),
        Some("550 5.7.1 Too many forged authentication headers")
    );
}

#[tokio::test]
async fn oversize_outcomes_follow_oversize_action() {
    let body = "x".repeat(3000);
    let w = world("[milter]\nmax_message_bytes = 2000\n").await;
    let (status, actions, reply) = run(&w, POSTFIX, "192.0.2.10", false, &PLAIN, &body).await;
    assert_eq!(status, Status::Continue);
    assert_eq!(reply, None);
    assert_eq!(
        actions,
        [
            "add X-Spoofguard-Score: 0.0",
            "add X-Spoofguard-Verdict: accept",
            "add X-Spoofguard-Reasons: OVERSIZE=+0.0 (larger than 2000 bytes, not verified)",
        ]
    );
    for (action, want, code) in [
        (
            "tempfail",
            "452 4.3.4 Message too large to verify, try again later",
            Status::Tempfail,
        ),
        (
            "reject",
            "552 5.3.4 Message too large to verify",
            Status::Reject,
        ),
    ] {
        let w = world(&format!(
            "[milter]\nmax_message_bytes = 2000\noversize_action = \"{action}\"\n"
        ))
        .await;
        let (status, actions, reply) = run(&w, POSTFIX, "192.0.2.10", false, &PLAIN, &body).await;
        assert_eq!(status, code);
        assert!(actions.is_empty(), "{actions:?}");
        assert_eq!(reply.as_deref(), Some(want));
    }
}

#[tokio::test]
async fn authenticated_senders_are_skipped_unless_configured() {
    let w = world("").await;
    let (status, actions, reply) = run(&w, POSTFIX, "192.0.2.10", true, &PLAIN, "hi\r\n").await;
    assert_eq!((status, actions.len(), reply), (Status::Continue, 0, None));
    let w = world("[auth]\nskip_authenticated = false\n").await;
    let (status, actions, _) = run(&w, POSTFIX, "192.0.2.10", true, &PLAIN, "hi\r\n").await;
    assert_eq!(status, Status::Continue);
    assert_eq!(
        actions[0],
        "insert 0 Authentication-Results: mx.test;\n\tspf=none smtp.mailfrom=alice@sender.example;\n\t\
         dkim=none;\n\tarc=none;\n\tdmarc=none header.from=sender.example"
    );
}

/// Two From headers score FROM_MULTIPLE; its weight sets the outcome.
fn two_froms() -> Vec<(&'static str, &'static str)> {
    let mut h = PLAIN.to_vec();
    h.push(("From", "mallory@sender.example"));
    h
}

#[tokio::test]
async fn subject_tag_and_quarantine_are_applied() {
    let toml = "[policy]\nsubject_tag = \"[SPOOF?]\"\n[weights]\nFROM_MULTIPLE = 12.0\n";
    let w = world(toml).await;
    let (status, actions, reply) =
        run(&w, POSTFIX, "192.0.2.10", false, &two_froms(), "hi\r\n").await;
    assert_eq!((status, reply), (Status::Continue, None));
    assert_eq!(
        actions[1..],
        [
            "add X-Spoofguard-Score: 13.0",
            "add X-Spoofguard-Verdict: quarantine",
            "add X-Spoofguard-Reasons: FROM_MULTIPLE=+12.0 (2 From headers, 2 addresses);\n\t\
             NO_AUTH=+1.0",
            "change Subject[1]: [SPOOF?] Hello",
            "quarantine score 13.0 (FROM_MULTIPLE, NO_AUTH)",
        ]
    );
    // Without the quarantine action the message is delivered with the headers.
    let no_quarantine = Capabilities {
        can_quarantine: false,
        ..POSTFIX
    };
    let (_, actions, _) = run(&w, no_quarantine, "192.0.2.10", false, &two_froms(), "").await;
    assert_eq!(
        actions.last().map(String::as_str),
        Some("change Subject[1]: [SPOOF?] Hello")
    );
    // A message without Subject gets one.
    let mut no_subject = two_froms();
    no_subject.retain(|(n, _)| *n != "Subject");
    let (_, actions, _) = run(&w, POSTFIX, "192.0.2.10", false, &no_subject, "").await;
    assert!(
        actions.contains(&"add Subject:[SPOOF?]".to_owned()),
        "{actions:?}"
    );
}

#[tokio::test]
async fn reject_by_score_and_dry_run() {
    let toml = "[weights]\nFROM_MULTIPLE = 25.0\n";
    let w = world(toml).await;
    let (status, actions, reply) = run(&w, POSTFIX, "192.0.2.10", false, &two_froms(), "").await;
    assert_eq!(status, Status::Reject);
    assert!(actions.is_empty(), "{actions:?}");
    assert_eq!(
        reply.as_deref(),
        Some("550 5.7.1 Message rejected: score 26.0 (FROM_MULTIPLE, NO_AUTH)")
    );
    // Dry run: delivered, headers tell what would have happened, no tag, no quarantine.
    let w = world(&format!(
        "[milter]\ndry_run = true\n[policy]\nsubject_tag = \"[X]\"\n{toml}"
    ))
    .await;
    let (status, actions, reply) = run(&w, POSTFIX, "192.0.2.10", false, &two_froms(), "").await;
    assert_eq!((status, reply), (Status::Continue, None));
    assert!(actions[0].starts_with("insert 0 Authentication-Results: mx.test;"));
    assert_eq!(actions[2], "add X-Spoofguard-Verdict: reject");
    assert_eq!(actions.len(), 4, "{actions:?}");
}

#[tokio::test]
async fn without_leading_space_values_are_sent_as_is() {
    let w = world("").await;
    let caps = Capabilities {
        leading_space: false,
        can_quarantine: true,
    };
    let (_, actions, _) = run(&w, caps, "192.0.2.10", false, &PLAIN, "hi\r\n").await;
    assert_eq!(actions[1], "add X-Spoofguard-Score:1.0");
}
