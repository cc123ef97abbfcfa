//! `spoofguard check` and the milter give the same outcome for every kind of input: the same
//! verdict, the same added headers (names, values, order) and the same SMTP reply. The milter
//! runs in-process behind a real socket; `check` is the release-style binary with `--zone`
//! serving the same records.

use crate::common::*;
use indymilter_test::EomAction;
use std::process::Command;

/// What the MTA saw: headers added in order (without the negotiated leading space), the
/// reply of a reject or tempfail, and whether the message was quarantined.
#[derive(Debug, PartialEq)]
struct Outcome {
    headers: Vec<(String, String)>,
    reply: Option<String>,
    quarantined: bool,
}

async fn milter_outcome(toml: &str, env: &Envelope<'_>, raw: &str) -> Outcome {
    let milter = Milter::spawn(toml).await;
    let (actions, status) = send(&milter, env, raw, false).await;
    milter.shutdown().await;
    let mut headers = Vec::new();
    let mut quarantined = false;
    for a in &actions.actions {
        match a {
            EomAction::InsertHeader { name, value, .. } | EomAction::AddHeader { name, value } => {
                let value = value.to_string_lossy();
                headers.push((
                    name.to_string_lossy().into_owned(),
                    value.strip_prefix(' ').unwrap_or(&value).to_owned(),
                ));
            }
            EomAction::Quarantine { .. } => quarantined = true,
            _ => {}
        }
    }
    let reply = match status {
        indymilter_test::Status::Reject { .. } | indymilter_test::Status::Tempfail { .. } => {
            Some(reply(&status))
        }
        _ => None,
    };
    Outcome {
        headers,
        reply,
        quarantined,
    }
}

fn check_outcome(toml: &str, env: &Envelope<'_>, raw: &str) -> (Outcome, serde_json::Value) {
    let dir = std::env::temp_dir().join(format!(
        "sg-agree-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let (cfg, zone, msg) = (
        dir.join("milter.toml"),
        dir.join("test.zone"),
        dir.join("m.eml"),
    );
    std::fs::write(&cfg, toml).unwrap();
    std::fs::write(&zone, zone_text()).unwrap();
    std::fs::write(&msg, raw).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_spoofguard"))
        .args(["check", "--config", cfg.to_str().unwrap()])
        .args([
            "--zone",
            zone.to_str().unwrap(),
            "--ip",
            env.ip,
            "--helo",
            env.helo,
        ])
        .args(["--mail-from", env.mail_from, "--format", "json"])
        .arg(&msg)
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let headers = v["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["name"].as_str().unwrap().to_owned(),
                h["value"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let outcome = Outcome {
        headers,
        reply: v["reply"].as_str().map(str::to_owned),
        quarantined: v["action"]["action"] == "quarantine",
    };
    (outcome, v)
}

/// Runs both and asserts they agree; returns the outcome and check's JSON.
async fn agree(toml: &str, env: &Envelope<'_>, raw: &str) -> (Outcome, serde_json::Value) {
    let milter = milter_outcome(toml, env, raw).await;
    let (check, json) = check_outcome(toml, env, raw);
    assert_eq!(
        milter, check,
        "milter and check disagree; check said {json}"
    );
    (milter, json)
}

fn value<'a>(o: &'a Outcome, name: &str) -> Option<&'a str> {
    o.headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

#[tokio::test]
async fn agree_on_judged_messages() {
    let toml = config("");
    let signed = sign(&eml("plain.eml"), "sender.example", "ed", true);
    let (o, json) = agree(&toml, &Envelope::default(), &signed).await;
    assert_eq!(json["verdict"], "accept");
    assert_eq!(value(&o, "X-Spoofguard-Verdict"), Some("accept"));
    assert!(
        o.headers[0]
            .1
            .starts_with(&format!("{AUTHSERV_ID};\n\tspf=pass")),
        "{o:?}"
    );

    let spoof = Envelope {
        ip: "198.51.100.66",
        helo: "attacker.example",
        ..Envelope::default()
    };
    let (o, _) = agree(&toml, &spoof, &eml("plain.eml")).await;
    assert_eq!(
        o.reply.as_deref(),
        Some("550 5.7.1 Rejected per DMARC policy for sender.example")
    );

    let quarantine = Envelope {
        ip: "198.51.100.66",
        mail_from: "carol@quarantine.example",
        ..Envelope::default()
    };
    let (o, _) = agree(&toml, &quarantine, &eml("quarantine.eml")).await;
    assert!(o.quarantined);
    assert_eq!(value(&o, "X-Spoofguard-Verdict"), Some("quarantine"));
}

#[tokio::test]
async fn agree_on_forged_headers_and_dry_run() {
    let (o, _) = agree(&config(""), &Envelope::default(), &eml("forged-ar.eml")).await;
    assert_eq!(o.headers.len(), 4, "{o:?}");
    let dry = config("").replace("[milter]\n", "[milter]\ndry_run = true\n");
    let spoof = Envelope {
        ip: "198.51.100.66",
        ..Envelope::default()
    };
    let (o, json) = agree(&dry, &spoof, &eml("plain.eml")).await;
    assert_eq!(json["verdict"], "reject");
    assert_eq!(o.reply, None);
    assert_eq!(value(&o, "X-Spoofguard-Verdict"), Some("reject"));
}

#[tokio::test]
async fn agree_on_oversize_messages() {
    let big = format!("{}\n{}\n", eml("plain.eml"), "x".repeat(5000));
    let small = |action: &str| {
        config("").replace(
            "[milter]\n",
            &format!("[milter]\nmax_message_bytes = 2000\noversize_action = \"{action}\"\n"),
        )
    };
    let (o, json) = agree(&small("accept"), &Envelope::default(), &big).await;
    assert_eq!(json["not_judged"], "oversize");
    assert_eq!(
        value(&o, "X-Spoofguard-Reasons"),
        Some("OVERSIZE=+0.0 (larger than 2000 bytes, not verified)")
    );
    let (o, _) = agree(&small("tempfail"), &Envelope::default(), &big).await;
    assert_eq!(
        o.reply.as_deref(),
        Some("452 4.3.4 Message too large to verify, try again later")
    );
    let (o, _) = agree(&small("reject"), &Envelope::default(), &big).await;
    assert_eq!(
        o.reply.as_deref(),
        Some("552 5.3.4 Message too large to verify")
    );
}

#[tokio::test]
async fn agree_on_forged_header_floods_and_trusted_clients() {
    let toml = config("").replace("[milter]\n", "[milter]\nmax_headers = 5000\n");
    let flood = format!(
        "{}{}",
        "X-Spoofguard-Score: 0.0\n".repeat(spoofguard::intake::MAX_FORGED + 1),
        eml("plain.eml")
    );
    let (o, json) = agree(&toml, &Envelope::default(), &flood).await;
    assert_eq!(json["verdict"], "reject");
    assert_eq!(
        o.reply.as_deref(),
        Some("550 5.7.1 Too many forged authentication headers")
    );
    let trusted = Envelope {
        ip: "203.0.113.5",
        ..Envelope::default()
    };
    let (o, json) = agree(&config(""), &trusted, &eml("plain.eml")).await;
    assert_eq!(json["verdict"], "skip");
    assert_eq!(json["not_judged"], "trusted network");
    assert!(o.headers.is_empty());
}

/// See issue 13: the milter lowercased a configured authserv-id, `check` did not.
#[tokio::test]
async fn r13_mixed_case_authserv_id_is_lowercased_by_both() {
    let toml = config("").replace(AUTHSERV_ID, "MX.Spoofguard.TEST");
    let (o, _) = agree(&toml, &Envelope::default(), &eml("plain.eml")).await;
    assert!(
        o.headers[0].1.starts_with("mx.spoofguard.test;"),
        "{:?}",
        o.headers[0]
    );
}
