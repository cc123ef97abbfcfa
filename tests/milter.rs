//! Whole SMTP transactions against the in-process milter, asserting exact replies and headers.

use crate::common::*;
use indymilter_test::{EomAction, Status};
use std::ffi::CString;

/// The first 8 characters of the b= tag of the first DKIM-Signature (RFC 6008).
fn b_prefix(signed: &str) -> String {
    let sig = signed.split("\r\n\r\n").next().unwrap();
    let start = sig.find("b=").map(|i| {
        // The b= tag, not bh=.
        let mut i = i;
        while sig[..i].ends_with('h') {
            i = sig[i + 2..].find("b=").unwrap() + i + 2;
        }
        i
    });
    let value: String = sig[start.unwrap() + 2..]
        .chars()
        .filter(|c| !c.is_whitespace())
        .take_while(|c| *c != ';')
        .collect();
    value[..8].to_owned()
}

fn deleted(actions: &indymilter_test::EomActions) -> Vec<(String, i32)> {
    actions
        .actions
        .iter()
        .filter_map(|a| match a {
            EomAction::DeleteHeader { name, index } => {
                Some((name.to_string_lossy().into_owned(), *index))
            }
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn pass_gives_exact_authentication_results_ed25519_and_rsa_lf_and_crlf() {
    let milter = Milter::spawn(&config("")).await;
    for (selector, ed, alg) in [("ed", true, "ed25519-sha256"), ("rsa", false, "rsa-sha256")] {
        let signed = sign(&eml("plain.eml"), "sender.example", selector, ed);
        let b = b_prefix(&signed);
        for lf_body in [false, true] {
            let (actions, status) = send(&milter, &Envelope::default(), &signed, lf_body).await;
            assert_eq!(status, Status::Continue);
            let expected = format!(
                "{AUTHSERV_ID};\n\tspf=pass smtp.mailfrom=alice@sender.example;\n\t\
                 dkim=pass header.d=sender.example header.s={selector} header.a={alg} header.b={b};\n\t\
                 arc=none;\n\tdmarc=pass (p=reject dis=none) header.from=sender.example policy.dmarc=reject"
            );
            assert!(
                actions.has_insert_header(
                    0,
                    "Authentication-Results",
                    format!(" {expected}").as_str()
                ),
                "{selector} lf_body={lf_body}: {actions:?}"
            );
            assert!(
                has_header(&actions, "X-Spoofguard-Score", "0.0"),
                "{actions:?}"
            );
            assert!(has_header(&actions, "X-Spoofguard-Verdict", "accept"));
            assert!(has_header(&actions, "X-Spoofguard-Reasons", "none"));
            assert!(deleted(&actions).is_empty());
        }
    }
    milter.shutdown().await;
}

#[tokio::test]
async fn pass_without_leading_space_option_reconstructs_the_headers() {
    // An MTA that does not offer SMFIP_HDR_LEADSPC strips the space after the colon.
    let milter = Milter::spawn(&config("")).await;
    let signed = sign(&eml("plain.eml"), "sender.example", "ed", true);
    let mut conn = indymilter_test::TestConnection::configure()
        .available_opts(indymilter::ProtoOpts::all() - indymilter::ProtoOpts::LEADING_SPACE)
        .open_tcp(milter.addr)
        .await
        .unwrap();
    let env = Envelope::default();
    greet(&mut conn, &env).await;
    use indymilter::MacroStage;
    conn.mail(["<alice@sender.example>"]).await.unwrap();
    conn.rcpt(["<bob@rcpt.example>"]).await.unwrap();
    let (headers, body) = split_message(&signed);
    for (name, value) in headers {
        conn.header(name, value.strip_prefix(' ').unwrap_or(&value).to_owned())
            .await
            .unwrap();
    }
    conn.eoh().await.unwrap();
    conn.body(body.into_bytes()).await.unwrap();
    conn.macros(MacroStage::Eom, [("i", "Q1")]).await.unwrap();
    let (actions, status) = conn.eom().await.unwrap();
    assert_eq!(status, Status::Continue);
    // Without SMFIP_HDR_LEADSPC the MTA adds the space itself: values are sent without one.
    let ar = added_raw(&actions, "Authentication-Results").unwrap();
    assert!(ar.starts_with("mx.spoofguard.test;"), "{ar}");
    assert!(ar.contains("dkim=pass header.d=sender.example"), "{ar}");
    assert!(
        ar.ends_with(
            "dmarc=pass (p=reject dis=none) header.from=sender.example policy.dmarc=reject"
        ),
        "{ar}"
    );
    assert_eq!(
        added_raw(&actions, "X-Spoofguard-Verdict").unwrap(),
        "accept"
    );
    milter.shutdown().await;
}

#[tokio::test]
async fn spoof_of_p_reject_domain_is_rejected_with_550() {
    let milter = Milter::spawn(&config("")).await;
    let env = Envelope {
        ip: "198.51.100.66",
        helo: "attacker.example",
        ..Envelope::default()
    };
    let (actions, status) = send(&milter, &env, &eml("plain.eml"), false).await;
    assert_eq!(
        reply(&status),
        "550 5.7.1 Rejected per DMARC policy for sender.example"
    );
    assert!(added(&actions, "Authentication-Results").is_none());
    milter.shutdown().await;
}

#[tokio::test]
async fn p_quarantine_failure_is_quarantined_with_headers() {
    let milter = Milter::spawn(&config("")).await;
    let env = Envelope {
        ip: "198.51.100.66",
        mail_from: "carol@quarantine.example",
        ..Envelope::default()
    };
    let (actions, status) = send(&milter, &env, &eml("quarantine.eml"), false).await;
    assert_eq!(status, Status::Continue);
    assert!(actions.has_quarantine("DMARC policy of quarantine.example is quarantine"));
    assert_eq!(
        added(&actions, "Authentication-Results").unwrap(),
        format!(
            "{AUTHSERV_ID};\n\tspf=fail smtp.mailfrom=carol@quarantine.example;\n\tdkim=none;\n\t\
             arc=none;\n\tdmarc=fail (p=quarantine dis=quarantine) header.from=quarantine.example policy.dmarc=quarantine"
        )
    );
    assert!(has_header(&actions, "X-Spoofguard-Verdict", "quarantine"));
    assert!(has_header(&actions, "X-Spoofguard-Score", "5.0"));
    assert_eq!(
        added(&actions, "X-Spoofguard-Reasons").unwrap(),
        "DMARC_FAIL=+4.0 (quarantine.example p=quarantine);\n\tSPF_FAIL=+1.0 (quarantine.example)"
    );
    milter.shutdown().await;
}

#[tokio::test]
async fn forwarded_message_with_aligned_dkim_passes_dmarc_despite_spf_fail() {
    let milter = Milter::spawn(&config("")).await;
    let signed = sign(&eml("plain.eml"), "sender.example", "rsa", false);
    let env = Envelope {
        ip: "198.51.100.7",
        helo: "forwarder.example",
        ..Envelope::default()
    };
    let (actions, status) = send(&milter, &env, &signed, false).await;
    assert_eq!(status, Status::Continue);
    let ar = added(&actions, "Authentication-Results").unwrap();
    assert!(
        ar.contains("spf=fail smtp.mailfrom=alice@sender.example"),
        "{ar}"
    );
    assert!(
        ar.contains("dkim=pass header.d=sender.example header.s=rsa"),
        "{ar}"
    );
    assert!(
        ar.ends_with(
            "dmarc=pass (p=reject dis=none) header.from=sender.example policy.dmarc=reject"
        ),
        "{ar}"
    );
    assert!(has_header(&actions, "X-Spoofguard-Verdict", "accept"));
    assert!(has_header(
        &actions,
        "X-Spoofguard-Reasons",
        "SPF_FAIL=+1.0 (sender.example)"
    ));
    milter.shutdown().await;
}

#[tokio::test]
async fn altered_body_fails_dkim() {
    let milter = Milter::spawn(&config("")).await;
    let signed = sign(&eml("plain.eml"), "sender.example", "ed", true);
    let altered = signed.replace("shared drive", "attacker's drive");
    // From an authorized IP: SPF passes, so DMARC still passes via SPF.
    let (actions, status) = send(&milter, &Envelope::default(), &altered, false).await;
    assert_eq!(status, Status::Continue);
    let ar = added(&actions, "Authentication-Results").unwrap();
    assert!(
        ar.contains(&format!(
            "dkim=fail (body hash mismatch) header.d=sender.example header.s=ed header.a=ed25519-sha256 header.b={}",
            b_prefix(&signed)
        )),
        "{ar}"
    );
    assert!(ar.ends_with(
        "dmarc=pass (p=reject dis=none) header.from=sender.example policy.dmarc=reject"
    ));
    assert!(has_header(
        &actions,
        "X-Spoofguard-Reasons",
        "DKIM_FAIL=+1.0 (sender.example)"
    ));
    // From elsewhere, nothing aligned passes: p=reject applies.
    let env = Envelope {
        ip: "198.51.100.66",
        ..Envelope::default()
    };
    let (_, status) = send(&milter, &env, &altered, false).await;
    assert_eq!(
        reply(&status),
        "550 5.7.1 Rejected per DMARC policy for sender.example"
    );
    milter.shutdown().await;
}

#[tokio::test]
async fn forged_results_with_our_authserv_id_are_removed_others_kept() {
    let milter = Milter::spawn(&config("")).await;
    let (actions, status) = send(&milter, &Envelope::default(), &eml("forged-ar.eml"), false).await;
    assert_eq!(status, Status::Continue);
    // First and third Authentication-Results claim our id (any case); the second is kept.
    assert_eq!(
        deleted(&actions),
        vec![
            ("Authentication-Results".to_owned(), 3),
            ("Authentication-Results".to_owned(), 1),
            ("X-Spoofguard-Verdict".to_owned(), 1),
        ]
    );
    // Deletions come before our own insertion, so indices refer to the original headers.
    let first_insert = actions
        .actions
        .iter()
        .position(|a| matches!(a, EomAction::InsertHeader { .. }))
        .unwrap();
    assert_eq!(first_insert, 3);
    assert!(has_header(&actions, "X-Spoofguard-Verdict", "accept"));
    milter.shutdown().await;
}

#[tokio::test]
async fn dns_timeout_gives_temperror_and_the_configured_action() {
    let silence = |z: &mut spoofguard::zone::Zone| z.silence("slow.example.");
    let msg = eml("plain.eml")
        .replace("alice@sender.example", "dave@slow.example")
        .replace("plain-1@sender.example", "slow-1@slow.example");
    let env = Envelope {
        ip: "192.0.2.40",
        mail_from: "dave@slow.example",
        ..Envelope::default()
    };
    // Default: tempfail.
    let milter = Milter::spawn_with(&config(""), silence).await;
    let (_, status) = send(&milter, &env, &msg, false).await;
    assert_eq!(
        reply(&status),
        "451 4.4.3 Temporary DNS failure while verifying the sender, try again later"
    );
    milter.shutdown().await;
    // on_dns_error = "accept": delivered with temperror in the header.
    let milter =
        Milter::spawn_with(&config("[policy]\non_dns_error = \"accept\"\n"), silence).await;
    let (actions, status) = send(&milter, &env, &msg, false).await;
    assert_eq!(status, Status::Continue);
    assert_eq!(
        added(&actions, "Authentication-Results").unwrap(),
        format!(
            "{AUTHSERV_ID};\n\tspf=temperror smtp.mailfrom=dave@slow.example;\n\tdkim=none;\n\t\
             arc=none;\n\tdmarc=temperror header.from=slow.example"
        )
    );
    assert!(has_header(&actions, "X-Spoofguard-Verdict", "accept"));
    milter.shutdown().await;
}

#[tokio::test]
async fn trusted_and_authenticated_senders_are_not_judged() {
    let milter = Milter::spawn(&config("")).await;
    let spoof = eml("forged-ar.eml");
    // 203.0.113.0/24 is trusted in the test config.
    let env = Envelope {
        ip: "203.0.113.5",
        ..Envelope::default()
    };
    let (actions, status) = send(&milter, &env, &spoof, false).await;
    assert_eq!(status, Status::Continue);
    assert!(added(&actions, "Authentication-Results").is_none());
    // Forged copies of our headers are still removed.
    assert_eq!(deleted(&actions).len(), 3);
    let env = Envelope {
        ip: "198.51.100.66",
        auth: Some("alice"),
        ..Envelope::default()
    };
    let (actions, status) = send(&milter, &env, &spoof, false).await;
    assert_eq!(status, Status::Continue);
    assert!(added(&actions, "Authentication-Results").is_none());
    // With skip_authenticated = false the same message is judged (and rejected).
    let milter2 = Milter::spawn(&config("[auth]\nskip_authenticated = false\n").replace(
        "[auth]\ntrusted_networks = [\"203.0.113.0/24\"]\n[auth]\n",
        "[auth]\ntrusted_networks = [\"203.0.113.0/24\"]\n",
    ))
    .await;
    let (_, status) = send(&milter2, &env, &spoof, false).await;
    assert_eq!(
        reply(&status),
        "550 5.7.1 Rejected per DMARC policy for sender.example"
    );
    milter.shutdown().await;
    milter2.shutdown().await;
}

#[tokio::test]
async fn several_messages_on_one_connection_keep_no_state() {
    let milter = Milter::spawn(&config("")).await;
    let mut conn = milter.connect().await;
    let good = Envelope::default();
    greet(&mut conn, &good).await;
    let signed = sign(&eml("plain.eml"), "sender.example", "ed", true);
    // A forged header in the first message must not be deleted again in the second.
    let (a1, s1) = transact(&mut conn, &good, &eml("forged-ar.eml"), false).await;
    assert_eq!(s1, Status::Continue);
    assert_eq!(deleted(&a1).len(), 3);
    conn.abort().await.unwrap();
    let (a2, s2) = transact(&mut conn, &good, &signed, false).await;
    assert_eq!(s2, Status::Continue);
    assert!(deleted(&a2).is_empty());
    assert!(
        added(&a2, "Authentication-Results")
            .unwrap()
            .contains("dkim=pass")
    );
    // A quarantined message, then a clean one: the second is not quarantined.
    let q = Envelope {
        mail_from: "carol@quarantine.example",
        ..Envelope::default()
    };
    let (a3, _) = transact(&mut conn, &q, &eml("quarantine.eml"), false).await;
    assert!(
        a3.actions
            .iter()
            .any(|a| matches!(a, EomAction::Quarantine { .. }))
    );
    conn.abort().await.unwrap();
    let (a4, s4) = transact(&mut conn, &good, &signed, true).await;
    assert_eq!(s4, Status::Continue);
    assert!(
        !a4.actions
            .iter()
            .any(|a| matches!(a, EomAction::Quarantine { .. }))
    );
    assert!(has_header(&a4, "X-Spoofguard-Verdict", "accept"));
    conn.close().await.unwrap();
    milter.shutdown().await;
}

#[tokio::test]
async fn malformed_input_never_panics_and_always_gets_a_reply() {
    let milter = Milter::spawn(&config(
        "[policy]\nreject_dmarc_reject = false\nquarantine_dmarc_quarantine = false\n",
    ))
    .await;
    let env = Envelope::default();
    let huge_line = format!(
        "From: Alice <alice@sender.example>\nSubject: {}\n\nbody\n",
        "x".repeat(1_000_000)
    );
    let mut invalid_utf8 = b"From: \xff\xfe Alice <alice@sender.example>\nSubject: \xc3\x28\n\n\xf0\x28\x8c\xbc body\n".to_vec();
    invalid_utf8.extend_from_slice(&[0x80; 100]);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "no-from",
            eml("no-from.eml").into_bytes(),
            "FROM_MISSING=+3.0 (no From address)",
        ),
        (
            "two-from",
            eml("two-from.eml").into_bytes(),
            "FROM_MULTIPLE=+5.0 (2 From headers, 2 addresses)",
        ),
        ("broken-mime", eml("broken-mime.eml").into_bytes(), "none"),
        (
            "huge-line",
            huge_line.into_bytes(),
            "OVERSIZE=+0.0 (a header field larger than 102400 bytes, not verified)",
        ),
        ("invalid-utf8", invalid_utf8, ""),
        ("empty", Vec::new(), ""),
    ];
    for (name, raw, reasons) in cases {
        for lf_body in [false, true] {
            let mut conn = milter.connect().await;
            greet(&mut conn, &env).await;
            conn.mail(["<alice@sender.example>"]).await.unwrap();
            conn.rcpt(["<bob@rcpt.example>"]).await.unwrap();
            let text = String::from_utf8_lossy(&raw).into_owned();
            let (headers, body) = split_message(&text);
            // Send the raw bytes of each header value (invalid UTF-8 stays invalid).
            for (n, v) in headers {
                let bytes = if name == "invalid-utf8" {
                    raw_header_value(&raw, &n)
                } else {
                    v.into_bytes()
                };
                let value = CString::new(bytes.into_iter().filter(|b| *b != 0).collect::<Vec<_>>())
                    .unwrap();
                conn.header(n, value)
                    .await
                    .unwrap_or_else(|e| panic!("{name}: {e:?}"));
            }
            conn.eoh().await.unwrap_or_else(|e| panic!("{name}: {e:?}"));
            let body = if lf_body {
                body.replace("\r\n", "\n")
            } else {
                body
            };
            // An MTA never sends an empty body chunk.
            if !body.is_empty() {
                conn.body(body.into_bytes())
                    .await
                    .unwrap_or_else(|e| panic!("{name}: {e:?}"));
            }
            let (actions, status) = conn.eom().await.unwrap();
            assert_eq!(status, Status::Continue, "{name}");
            // Verified, except the one over a limit, which is passed on unverified.
            assert_eq!(
                added(&actions, "Authentication-Results").is_some(),
                name != "huge-line",
                "{name}"
            );
            if !reasons.is_empty() {
                let got = added(&actions, "X-Spoofguard-Reasons").unwrap();
                assert!(got.contains(reasons), "{name}: {got}");
            }
            conn.close().await.unwrap();
        }
    }
    milter.shutdown().await;
}

fn raw_header_value(raw: &[u8], name: &str) -> Vec<u8> {
    let prefix = format!("{name}:");
    raw.split(|b| *b == b'\n')
        .find(|line| line.starts_with(prefix.as_bytes()))
        .map(|line| line[prefix.len()..].to_vec())
        .unwrap_or_default()
}

#[tokio::test]
async fn oversize_message_is_not_buffered_and_follows_oversize_action() {
    let body = "y".repeat(4000);
    let msg = format!("{}\n{body}\n", eml("plain.eml"));
    let milter =
        Milter::spawn(&config("").replace("[milter]\n", "[milter]\nmax_message_bytes = 2048\n"))
            .await;
    let (actions, status) = send(&milter, &Envelope::default(), &msg, false).await;
    assert_eq!(status, Status::Continue);
    assert!(added(&actions, "Authentication-Results").is_none());
    assert!(has_header(&actions, "X-Spoofguard-Verdict", "accept"));
    assert!(has_header(
        &actions,
        "X-Spoofguard-Reasons",
        "OVERSIZE=+0.0 (larger than 2048 bytes, not verified)"
    ));
    milter.shutdown().await;
    let milter = Milter::spawn(&config("").replace(
        "[milter]\n",
        "[milter]\nmax_message_bytes = 2048\noversize_action = \"reject\"\n",
    ))
    .await;
    let (_, status) = send(&milter, &Envelope::default(), &msg, false).await;
    assert_eq!(reply(&status), "552 5.3.4 Message too large to verify");
    milter.shutdown().await;
}

#[tokio::test]
async fn dry_run_adds_headers_but_does_not_reject() {
    let milter =
        Milter::spawn(&config("").replace("[milter]\n", "[milter]\ndry_run = true\n")).await;
    let env = Envelope {
        ip: "198.51.100.66",
        ..Envelope::default()
    };
    let (actions, status) = send(&milter, &env, &eml("plain.eml"), false).await;
    assert_eq!(status, Status::Continue);
    assert!(
        added(&actions, "Authentication-Results")
            .unwrap()
            .ends_with(
                "dmarc=fail (p=reject dis=reject) header.from=sender.example policy.dmarc=reject"
            )
    );
    assert!(has_header(&actions, "X-Spoofguard-Verdict", "reject"));
    milter.shutdown().await;
}

// See: #15. RFC 9989, section 11.5: with several authors each domain is evaluated and the
// strictest failing policy applies (mail-auth alone gives dmarc=none).
#[tokio::test]
async fn r15_several_authors_get_the_strictest_policy() {
    let milter = Milter::spawn(&config("")).await;
    let msg = eml("plain.eml").replace(
        "From: Alice Example <alice@sender.example>",
        "From: Mallory <mallory@none.example>, Alice Example <alice@sender.example>",
    );
    assert!(msg.contains("mallory@none.example"), "fixture changed");
    let env = Envelope {
        ip: "198.51.100.66",
        mail_from: "mallory@none.example",
        ..Envelope::default()
    };
    let (_, status) = send(&milter, &env, &msg, false).await;
    assert_eq!(
        reply(&status),
        "550 5.7.1 Rejected per DMARC policy for sender.example"
    );
    // From sender.example's own server with its envelope, sender.example passes and
    // none.example (p=none) fails: the strictest failing policy is none; delivered.
    let env = Envelope::default();
    let (actions, status) = send(&milter, &env, &msg, false).await;
    assert_eq!(status, Status::Continue);
    let ar = added(&actions, "Authentication-Results").unwrap();
    assert!(
        ar.ends_with("dmarc=fail (p=none dis=none) header.from=none.example policy.dmarc=none"),
        "{ar}"
    );
    milter.shutdown().await;
}

// See: #15. `t=y` (RFC 9989 test mode) applies the policy one level lower.
#[tokio::test]
async fn r15_test_mode_lowers_reject_to_quarantine() {
    let milter = Milter::spawn(&config("")).await;
    let msg = eml("plain.eml").replace("alice@sender.example", "tess@testing.example");
    let env = Envelope {
        ip: "198.51.100.66",
        mail_from: "tess@testing.example",
        ..Envelope::default()
    };
    let (actions, status) = send(&milter, &env, &msg, false).await;
    assert_eq!(status, Status::Continue);
    assert!(actions.has_quarantine("DMARC policy of testing.example is quarantine"));
    assert!(
        added(&actions, "Authentication-Results")
            .unwrap()
            .ends_with(
                "dmarc=fail (p=quarantine dis=quarantine) header.from=testing.example \
             policy.dmarc=quarantine"
            )
    );
    milter.shutdown().await;
}

// See: #15. RFC 9989 removed `pct`: a `p=reject; pct=0` record rejects like `p=reject`.
#[tokio::test]
async fn r15_pct_is_ignored() {
    let milter = Milter::spawn(&config("")).await;
    let msg = eml("plain.eml").replace("alice@sender.example", "erin@pct.example");
    let env = Envelope {
        ip: "198.51.100.66",
        mail_from: "erin@pct.example",
        ..Envelope::default()
    };
    let (_, status) = send(&milter, &env, &msg, false).await;
    assert_eq!(
        reply(&status),
        "550 5.7.1 Rejected per DMARC policy for pct.example"
    );
    milter.shutdown().await;
}

#[tokio::test]
async fn reload_swaps_the_runtime_for_new_connections() {
    let milter = Milter::spawn(&config("")).await;
    let env = Envelope {
        ip: "198.51.100.66",
        ..Envelope::default()
    };
    let (_, status) = send(&milter, &env, &eml("plain.eml"), false).await;
    assert!(reply(&status).starts_with("550 5.7.1"));
    let old = spoofguard::milter::current(&milter.shared);
    let mut cfg = old.config.clone();
    cfg.policy.reject_dmarc_reject = false;
    let rt = spoofguard::runtime::Runtime::build(cfg, Some(old.verifier.caches().clone())).unwrap();
    *milter.shared.write().unwrap() = std::sync::Arc::new(rt);
    let (actions, status) = send(&milter, &env, &eml("plain.eml"), false).await;
    assert_eq!(status, Status::Continue);
    assert!(actions.has_quarantine("DMARC policy of sender.example is quarantine"));
    milter.shutdown().await;
}

#[tokio::test]
async fn every_fixture_gives_the_same_result_with_lf_and_crlf() {
    // Dry run, so that every message gets its headers and they can be compared.
    let milter =
        Milter::spawn(&config("").replace("[milter]\n", "[milter]\ndry_run = true\n")).await;
    let mut names: Vec<String> = std::fs::read_dir(fixture("eml"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".eml"))
        .collect();
    names.sort();
    assert!(names.len() >= 6, "{names:?}");
    for name in names {
        let text = eml(&name);
        // Signed over CRLF by sender.example: the signature must verify whichever line
        // endings the body arrives with.
        let signed = sign(&text, "sender.example", "ed", true);
        for (label, msg) in [("unsigned", text.clone()), ("signed", signed)] {
            let (a_crlf, s_crlf) = send(&milter, &Envelope::default(), &msg, false).await;
            let (a_lf, s_lf) = send(&milter, &Envelope::default(), &msg, true).await;
            assert_eq!(s_crlf, s_lf, "{name} {label}");
            assert_eq!(a_crlf, a_lf, "{name} {label}");
            if label == "signed" {
                let ar = added(&a_crlf, "Authentication-Results").unwrap_or_default();
                assert!(
                    ar.contains("dkim=pass header.d=sender.example"),
                    "{name}: {ar}"
                );
            }
        }
    }
    milter.shutdown().await;
}

#[tokio::test]
async fn header_count_and_dkim_signature_limits_apply() {
    // More header fields than max_headers: not verified, passed on with OVERSIZE.
    let milter =
        Milter::spawn(&config("").replace("[milter]\n", "[milter]\nmax_headers = 8\n")).await;
    let mut msg = String::new();
    for i in 0..10 {
        msg.push_str(&format!("X-Filler-{i}: {i}\n"));
    }
    msg.push_str(&eml("plain.eml"));
    let (actions, status) = send(&milter, &Envelope::default(), &msg, false).await;
    assert_eq!(status, Status::Continue);
    assert!(added(&actions, "Authentication-Results").is_none());
    assert!(has_header(
        &actions,
        "X-Spoofguard-Reasons",
        "OVERSIZE=+0.0 (more than 8 header fields, not verified)"
    ));
    milter.shutdown().await;

    // Two signatures, the newer one (on top) without a key: with max_dkim_signatures = 1
    // only that one is verified; by default both are.
    let signed = sign(&eml("plain.eml"), "sender.example", "ed", true);
    let twice = sign(&signed, "sender.example", "nokey", true);
    let count = |ar: &str| ar.matches("dkim=").count();
    let milter = Milter::spawn(&config("")).await;
    let (actions, _) = send(&milter, &Envelope::default(), &twice, false).await;
    let ar = added(&actions, "Authentication-Results").unwrap();
    assert_eq!(count(&ar), 2, "{ar}");
    assert!(
        ar.contains("dkim=pass header.d=sender.example header.s=ed"),
        "{ar}"
    );
    milter.shutdown().await;
    let milter = Milter::spawn(&config("[auth]\nmax_dkim_signatures = 1\n").replace(
        "[auth]\ntrusted_networks = [\"203.0.113.0/24\"]\n[auth]\n",
        "[auth]\ntrusted_networks = [\"203.0.113.0/24\"]\n",
    ))
    .await;
    let (actions, _) = send(&milter, &Envelope::default(), &twice, false).await;
    let ar = added(&actions, "Authentication-Results").unwrap();
    assert_eq!(count(&ar), 1, "{ar}");
    assert!(
        ar.contains("dkim=permerror (no key for signature) header.d=sender.example header.s=nokey"),
        "{ar}"
    );
    milter.shutdown().await;
}

#[tokio::test]
async fn ipv4_mapped_client_address_is_checked_as_ipv4() {
    let milter = Milter::spawn(&config("")).await;
    let env = Envelope {
        ip: "::ffff:192.0.2.10",
        ..Envelope::default()
    };
    let (actions, status) = send(&milter, &env, &eml("plain.eml"), false).await;
    assert_eq!(status, Status::Continue);
    let ar = added(&actions, "Authentication-Results").unwrap();
    assert!(
        ar.contains("spf=pass smtp.mailfrom=alice@sender.example"),
        "{ar}"
    );
    milter.shutdown().await;
}

#[tokio::test]
async fn rules_subject_tag_and_reject_text_apply() {
    let toml = config(
        r#"[policy]
subject_tag = "[SPOOF?]"
reject_text = "Rejected by example.net policy"
[[rule]]
name = "report"
target = "subject"
pattern = "(?i)quarterly"
weight = 6.0
[[rule]]
name = "drive"
target = "body"
pattern = "shared drive"
weight = 0.5
[[rule]]
name = "never"
target = "header:x-mailer"
pattern = "."
weight = 50.0
"#,
    );
    let milter = Milter::spawn(&toml).await;
    let signed = sign(&eml("plain.eml"), "sender.example", "ed", true);
    let (actions, status) = send(&milter, &Envelope::default(), &signed, false).await;
    assert_eq!(status, Status::Continue);
    assert!(has_header(&actions, "X-Spoofguard-Score", "6.5"));
    assert!(has_header(&actions, "X-Spoofguard-Verdict", "tag"));
    assert_eq!(
        added(&actions, "X-Spoofguard-Reasons").unwrap(),
        "RULE:report=+6.0 (subject matched);\n\tRULE:drive=+0.5 (body matched)"
    );
    assert!(actions.has_change_header("Subject", 1, " [SPOOF?] Quarterly report"));
    // A rule heavy enough to reject uses the configured text and names the rule.
    let msg = format!("X-Mailer: bulk\n{}", eml("plain.eml"));
    let (_, status) = send(&milter, &Envelope::default(), &msg, false).await;
    assert_eq!(
        reply(&status),
        "550 5.7.1 Rejected by example.net policy: score 56.5 (RULE:never, RULE:report, RULE:drive)"
    );
    milter.shutdown().await;
}
