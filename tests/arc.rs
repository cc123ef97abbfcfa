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
        format!("{signed}-- \r\nlist footer: unsubscribe at lists.forwarder.example\r\n");
    let message = AuthenticatedMessage::parse(modified.as_bytes()).unwrap();
    let arc = auth
        .verify_arc(Parameters::new(&message).with_cache(&caches))
        .await;
    let sealer = ArcSealer::from_key(Ed25519Key::from_pkcs8_der(&keys().ed_pkcs8).unwrap())
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
        ar.ends_with("dmarc=fail (p=none dis=none) header.from=none.example"),
        "{ar}"
    );
    // Tampering with the sealed message breaks the chain.
    let tampered = forwarded.replace("Quarterly report", "Quarterly report (edited)");
    let (actions, _) = send(&milter, &env, &tampered, false).await;
    let ar = added(&actions, "Authentication-Results").unwrap();
    assert!(ar.contains(";\n\tarc=fail;\n\t"), "{ar}");
    milter.shutdown().await;
}
