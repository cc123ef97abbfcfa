//! Resource limits that bound one message's work: MIME depth and parts, links, the message
//! deadline and the evaluation deadline. (Message bytes, header count and size, and DKIM
//! signatures are in milter.rs; connections and idle time-out in protocol.rs.)

use crate::common::*;
use indymilter_test::Status;
use std::time::{Duration, Instant};

const PHISH_LINK: &str =
    "<a href=\"https://microsoft-securityprotection-support.xyz/login\">Sign in</a>";

/// plain.eml's headers over `content_type` and `body`.
fn with_body(content_type: &str, body: &str) -> String {
    let plain = eml("plain.eml");
    let head = plain
        .split("\n\n")
        .next()
        .unwrap()
        .replace("Content-Type: text/plain; charset=utf-8", content_type);
    format!("{head}\n\n{body}")
}

/// `levels` multiparts, one inside the other, around one HTML part holding the phish link.
fn nested(levels: usize) -> String {
    let mut body = String::new();
    for i in 1..levels {
        body.push_str(&format!(
            "--b{}\nContent-Type: multipart/mixed; boundary=\"b{i}\"\n\n",
            i - 1
        ));
    }
    body.push_str(&format!(
        "--b{}\nContent-Type: text/html; charset=utf-8\n\n<p>{PHISH_LINK}</p>\n",
        levels - 1
    ));
    for i in (0..levels).rev() {
        body.push_str(&format!("--b{i}--\n"));
    }
    with_body("Content-Type: multipart/mixed; boundary=\"b0\"", &body)
}

fn reasons(actions: &indymilter_test::EomActions) -> String {
    added(actions, "X-Spoofguard-Reasons").expect("reasons header")
}

#[tokio::test]
async fn mime_depth_limit_stops_parsing_and_is_a_reason() {
    let msg = nested(30);
    // Default depth 20: the HTML part 30 levels down is not parsed, so its link is not seen.
    let milter = Milter::spawn(&config("")).await;
    let (actions, status) = send(&milter, &Envelope::default(), &msg, false).await;
    assert_eq!(status, Status::Continue);
    let r = reasons(&actions);
    assert_eq!(
        r, "MIME_LIMIT=+2.0 (MIME nesting deeper than 20 levels)",
        "{r}"
    );
    milter.shutdown().await;

    // The key raised to 64: parsed to the bottom, the lookalike link is found, no MIME_LIMIT.
    let milter =
        Milter::spawn(&config("").replace("[milter]\n", "[milter]\nmax_mime_depth = 64\n")).await;
    let (actions, _) = send(&milter, &Envelope::default(), &msg, false).await;
    let r = reasons(&actions);
    assert!(r.contains("LINK_LOOKALIKE=+6.0"), "{r}");
    assert!(!r.contains("MIME_LIMIT"), "{r}");
    milter.shutdown().await;
}

#[tokio::test]
async fn mime_parts_limit_is_a_reason() {
    let mut body = String::new();
    for i in 0..40 {
        body.push_str(&format!("--p\nContent-Type: text/plain\n\npart {i}\n"));
    }
    body.push_str("--p--\n");
    let msg = with_body("Content-Type: multipart/mixed; boundary=\"p\"", &body);
    let milter =
        Milter::spawn(&config("").replace("[milter]\n", "[milter]\nmax_mime_parts = 30\n")).await;
    let (actions, status) = send(&milter, &Envelope::default(), &msg, false).await;
    assert_eq!(status, Status::Continue);
    let r = reasons(&actions);
    assert_eq!(r, "MIME_LIMIT=+2.0 (more than 30 MIME parts)", "{r}");
    milter.shutdown().await;

    // The default (1000 parts) parses all 41.
    let milter = Milter::spawn(&config("")).await;
    let (actions, _) = send(&milter, &Envelope::default(), &msg, false).await;
    assert_eq!(reasons(&actions), "none");
    milter.shutdown().await;
}

#[tokio::test]
async fn links_past_max_links_are_not_checked() {
    let mut html = String::from("<p>");
    for i in 1..=5 {
        html.push_str(&format!(
            "<a href=\"https://site{i}.example.org/\">site {i}</a> "
        ));
    }
    html.push_str(PHISH_LINK);
    html.push_str("</p>\n");
    let msg = with_body("Content-Type: text/html; charset=utf-8", &html);

    let five = config("[lookalike]\nmax_links = 5\n");
    let milter = Milter::spawn(&five).await;
    let (actions, _) = send(&milter, &Envelope::default(), &msg, false).await;
    assert_eq!(reasons(&actions), "none");
    milter.shutdown().await;

    let six = config("[lookalike]\nmax_links = 6\n");
    let milter = Milter::spawn(&six).await;
    let (actions, _) = send(&milter, &Envelope::default(), &msg, false).await;
    let r = reasons(&actions);
    assert!(r.contains("LINK_LOOKALIKE=+6.0"), "{r}");
    milter.shutdown().await;
}

#[tokio::test]
async fn links_past_the_scanned_body_bytes_are_not_checked() {
    // 512 KiB of each body are scanned for links: a link after 600 kB of text is not seen,
    // the same link before it is.
    let filler = "<p>quarterly figures follow</p>\n".repeat(600 * 1024 / 32);
    let milter = Milter::spawn(&config("")).await;
    let late = with_body(
        "Content-Type: text/html; charset=utf-8",
        &format!("{filler}<p>{PHISH_LINK}</p>\n"),
    );
    let (actions, _) = send(&milter, &Envelope::default(), &late, false).await;
    assert_eq!(reasons(&actions), "none");
    let early = with_body(
        "Content-Type: text/html; charset=utf-8",
        &format!("<p>{PHISH_LINK}</p>\n{filler}"),
    );
    let (actions, _) = send(&milter, &Envelope::default(), &early, false).await;
    let r = reasons(&actions);
    assert!(r.contains("LINK_LOOKALIKE=+6.0"), "{r}");
    milter.shutdown().await;
}

#[tokio::test]
async fn evaluation_timeout_answers_on_error() {
    // slow.example is never answered and each DNS query may take 10 s, but the whole
    // verification may take only 1 s: the message gets on_error's reply (tempfail by
    // default) after about a second, not after the DNS time-outs.
    let toml = config("")
        .replace("[milter]\n", "[milter]\nevaluation_timeout_secs = 1\n")
        .replace("[dns]\ntimeout_secs = 1\n", "[dns]\ntimeout_secs = 10\n");
    let silence = |z: &mut spoofguard::zone::Zone| z.silence("slow.example.");
    let milter = Milter::spawn_with(&toml, silence).await;
    let env = Envelope {
        mail_from: "dave@slow.example",
        ..Envelope::default()
    };
    let msg = eml("plain.eml").replace("alice@sender.example", "dave@slow.example");
    let started = Instant::now();
    let (_, status) = send(&milter, &env, &msg, false).await;
    let took = started.elapsed();
    assert_eq!(
        reply(&status),
        "451 4.4.3 Sender verification timed out, try again later"
    );
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(9),
        "{took:?}"
    );
    milter.shutdown().await;

    // on_error = "accept": delivered as is (nothing added).
    let accept = toml.replace("[milter]\n", "[milter]\non_error = \"accept\"\n");
    let milter = Milter::spawn_with(&accept, silence).await;
    let (actions, status) = send(&milter, &env, &msg, false).await;
    assert_eq!(status, Status::Accept);
    assert!(added(&actions, "Authentication-Results").is_none());
    milter.shutdown().await;
}

#[tokio::test]
async fn message_timeout_tempfails_a_slow_transaction_and_the_connection_goes_on() {
    let toml = config("").replace("[milter]\n", "[milter]\nmessage_timeout_secs = 1\n");
    let milter = Milter::spawn(&toml).await;
    let env = Envelope::default();
    let mut conn = milter.connect().await;
    greet(&mut conn, &env).await;
    assert_eq!(
        conn.mail(["<alice@sender.example>"]).await.unwrap(),
        Status::Continue
    );
    conn.rcpt(["<bob@rcpt.example>"]).await.unwrap();
    assert_eq!(
        conn.header("From", " Alice <alice@sender.example>")
            .await
            .unwrap(),
        Status::Continue
    );
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let status = conn.header("Subject", " late").await.unwrap();
    assert_eq!(
        reply(&status),
        "451 4.4.2 Message transfer took too long, try again later"
    );
    // The MTA aborts the refused message and sends the next one on the same connection:
    // it is judged normally.
    conn.abort().await.unwrap();
    let (actions, status) = transact(&mut conn, &env, &eml("plain.eml"), false).await;
    assert_eq!(status, Status::Continue);
    let ar = added(&actions, "Authentication-Results").unwrap();
    assert!(
        ar.contains("spf=pass smtp.mailfrom=alice@sender.example"),
        "{ar}"
    );
    conn.close().await.unwrap();
    milter.shutdown().await;
}

#[test]
fn limit_keys_are_checked() {
    use spoofguard::config::Config;
    use std::path::Path;
    let cases = [
        (
            "[milter]\nmax_mime_depth = 1\n",
            "milter.max_mime_depth: 1 is out of range (2 to 64)",
        ),
        (
            "[milter]\nmax_mime_depth = 65\n",
            "milter.max_mime_depth: 65 is out of range (2 to 64)",
        ),
        (
            "[milter]\nmax_mime_parts = 0\n",
            "milter.max_mime_parts: 0 is out of range (2 to 100000)",
        ),
        (
            "[milter]\nmessage_timeout_secs = 0\n",
            "milter.message_timeout_secs: must be at least 1",
        ),
        (
            "[milter]\nevaluation_timeout_secs = 0\n",
            "milter.evaluation_timeout_secs: must be at least 1",
        ),
        (
            "[lookalike]\nmax_links = 0\n",
            "lookalike.max_links: 0 is out of range (1 to 10000)",
        ),
    ];
    for (toml, expected) in cases {
        let err = Config::from_toml(toml, Path::new("t.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains(expected), "{toml}: {err}");
    }
}

#[tokio::test]
async fn more_forged_headers_than_can_be_deleted_are_refused() {
    // Up to MAX_FORGED (1000) forged copies are deleted; past that some would reach the
    // mailbox, so the message is refused instead.
    let milter = Milter::spawn(&config("")).await;
    let mut msg = String::new();
    for _ in 0..=spoofguard::intake::MAX_FORGED {
        msg.push_str("X-Spoofguard-Verdict: accept\n");
    }
    msg.push_str(&eml("plain.eml"));
    let (actions, status) = send(&milter, &Envelope::default(), &msg, false).await;
    assert_eq!(
        reply(&status),
        "550 5.7.1 Too many forged authentication headers"
    );
    assert!(actions.actions.is_empty());
    milter.shutdown().await;
}
