//! ARC (RFC 8617): a mailing list changes a signed message (breaking DKIM) and seals it; the
//! milter reports the chain as `arc=pass` while DKIM fails.

use crate::common::*;
use indymilter_test::Status;
use mail_auth::arc::ArcSealer;
use mail_auth::crypto::Ed25519Key;
use mail_auth::headers::HeaderWriter;
use mail_auth::{AuthenticatedMessage, AuthenticationResults, Parameters};
use spoofguard::auth::{Caches, build_authenticator};
use spoofguard::config::Config;

/// What the list does: verify the original, add a footer, seal the result.
async fn list_forward(milter: &Milter, signed: &str) -> String {
    list_forward_with(milter, signed, &keys().ed_pkcs8, "").await
}

/// As `list_forward`, sealing with `key` (PKCS#8 Ed25519) and adding `extra` header lines
/// (a list's List-Id, say) before sealing.
async fn list_forward_with(milter: &Milter, signed: &str, key: &[u8], extra: &str) -> String {
    let mut dns = Config::default().dns;
    dns.nameservers = vec![milter.dns_addr()];
    let auth = build_authenticator(&dns).unwrap();
    let caches = Caches::new(100);
    let original = AuthenticatedMessage::parse(signed.as_bytes()).unwrap();
    let dkim = auth
        .verify_dkim(Parameters::new(&original).with_cache(&caches))
        .await;
    assert!(matches!(dkim[0].result(), mail_auth::DkimResult::Pass));
    let results = AuthenticationResults::new("lists.forwarder.example")
        .with_dkim_results(&dkim, original.first_from_address());
    // The list appends a footer: the body hash of the original signature no longer matches.
    let modified =
        format!("{extra}{signed}-- \r\nlist footer: unsubscribe at lists.forwarder.example\r\n");
    let message = AuthenticatedMessage::parse(modified.as_bytes()).unwrap();
    let arc = auth
        .verify_arc(Parameters::new(&message).with_cache(&caches))
        .await;
    let sealer = ArcSealer::from_key(Ed25519Key::from_pkcs8_der(key).unwrap())
        .domain("forwarder.example")
        .selector("ed")
        .headers(["From", "To", "Subject", "DKIM-Signature"]);
    let set = sealer.seal(&message, &results, &arc).unwrap();
    format!("{}{modified}", set.to_header())
}

#[tokio::test]
async fn arc_sealed_forward_reports_arc_pass_and_dkim_fail() {
    let milter = Milter::spawn(&config("")).await;
    let original = eml("plain.eml").replace("alice@sender.example", "alice@none.example");
    let signed = sign(&original, "none.example", "ed", true);
    let forwarded = list_forward(&milter, &signed).await;
    let env = Envelope {
        ip: "198.51.100.7",
        helo: "lists.forwarder.example",
        mail_from: "list-bounces@forwarder.example",
        ..Envelope::default()
    };
    let (actions, status) = send(&milter, &env, &forwarded, false).await;
    assert_eq!(status, Status::Continue);
    let ar = added(&actions, "Authentication-Results").unwrap();
    assert!(
        ar.contains("dkim=fail (body hash mismatch) header.d=none.example"),
        "{ar}"
    );
    assert!(ar.contains(";\n\tarc=pass;\n\t"), "{ar}");
    assert!(
        ar.ends_with("dmarc=fail (p=none dis=none) header.from=none.example policy.dmarc=none"),
        "{ar}"
    );
    // Tampering with the sealed message breaks the chain.
    let tampered = forwarded.replace("Quarterly report", "Quarterly report (edited)");
    let (actions, _) = send(&milter, &env, &tampered, false).await;
    let ar = added(&actions, "Authentication-Results").unwrap();
    assert!(ar.contains(";\n\tarc=fail;\n\t"), "{ar}");
    milter.shutdown().await;
}

/// The list copy of a p=reject author (sender.example), as forwarder.example delivers it.
async fn reject_author_via_list(
    milter: &Milter,
    key: &[u8],
) -> (indymilter_test::EomActions, Status) {
    let signed = sign(&eml("plain.eml"), "sender.example", "ed", true);
    let forwarded = list_forward_with(
        milter,
        &signed,
        key,
        "List-Id: Test list <test.lists.forwarder.example>\r\n",
    )
    .await;
    let env = Envelope {
        ip: "198.51.100.7",
        helo: "lists.forwarder.example",
        mail_from: "list-bounces@forwarder.example",
        ..Envelope::default()
    };
    send(milter, &env, &forwarded, false).await
}

// See: #15. A trusted sealer that recorded an aligned DKIM pass for the author vouches for
// the list copy: delivered, no quarantine; Authentication-Results still says dmarc=fail.
#[tokio::test]
async fn r15_trusted_sealer_overrides_a_p_reject_failure() {
    let milter = Milter::spawn(&config("trusted_arc_sealers = [\"forwarder.example\"]\n")).await;
    let (actions, status) = reject_author_via_list(&milter, &keys().ed_pkcs8).await;
    assert_eq!(status, Status::Continue);
    assert!(
        !actions
            .actions
            .iter()
            .any(|a| matches!(a, indymilter_test::EomAction::Quarantine { .. })),
        "{actions:?}"
    );
    let ar = added(&actions, "Authentication-Results").unwrap();
    assert!(ar.contains(";\n\tarc=pass;\n\t"), "{ar}");
    assert!(
        ar.ends_with(
            "dmarc=fail (p=reject dis=none) header.from=sender.example policy.dmarc=reject"
        ),
        "{ar}"
    );
    assert_eq!(
        added(&actions, "X-Spoofguard-Reasons").unwrap(),
        "DKIM_FAIL=+1.0 (sender.example);\n\tDMARC_TRUSTED_ARC=+0.0 (ARC sealer forwarder.example \
         i=1 recorded an aligned dkim=pass for sender.example);\n\t\
         ENVELOPE_MISMATCH=+1.0 (envelope forwarder.example differs from from=sender.example)"
    );
    milter.shutdown().await;
}

// See: #15. Without a trusted sealer the list copy is quarantined, never rejected on the
// policy alone (RFC 9989, section 8); a seal by the wrong key earns nothing either.
#[tokio::test]
async fn r15_untrusted_or_forged_seals_quarantine_list_mail() {
    let milter = Milter::spawn(&config("trusted_arc_sealers = [\"forwarder.example\"]\n")).await;
    let forged_key = Ed25519Key::generate_pkcs8().unwrap();
    let (actions, status) = reject_author_via_list(&milter, &forged_key).await;
    assert_eq!(status, Status::Continue);
    assert!(actions.has_quarantine("DMARC policy of sender.example is quarantine"));
    let ar = added(&actions, "Authentication-Results").unwrap();
    assert!(ar.contains(";\n\tarc=fail;\n\t"), "{ar}");
    assert!(
        ar.ends_with(
            "dmarc=fail (p=reject dis=quarantine) header.from=sender.example policy.dmarc=reject"
        ),
        "{ar}"
    );
    let reasons = added(&actions, "X-Spoofguard-Reasons").unwrap();
    assert!(
        reasons.contains("DMARC_INDIRECT=+0.0 (mailing list header list-id: p=reject"),
        "{reasons}"
    );
    milter.shutdown().await;

    let milter = Milter::spawn(&config("")).await;
    let (actions, status) = reject_author_via_list(&milter, &keys().ed_pkcs8).await;
    assert_eq!(status, Status::Continue);
    assert!(actions.has_quarantine("DMARC policy of sender.example is quarantine"));
    milter.shutdown().await;
}
