//! DNS faults, answered by the zone server on 127.0.0.1 through the real resolver path:
//! each gives the RFC result and the configured action, and a slow DNS server never holds up
//! other connections.

use crate::common::*;
use indymilter_test::Status;
use spoofguard::zone::Zone;
use std::time::{Duration, Instant};

fn msg_from(domain: &str) -> String {
    eml("plain.eml").replace("alice@sender.example", &format!("alice@{domain}"))
}

/// An Authentication-Results value without the `header.b=` tokens (signatures differ per run).
fn without_b(ar: &str) -> String {
    let mut out = ar.to_owned();
    while let Some(start) = out.find(" header.b=") {
        let rest = &out[start + 1..];
        let len = rest.find([';', ' ', '\n']).unwrap_or(rest.len());
        out.replace_range(start..start + 1 + len, "");
    }
    out
}

fn env_for<'a>(ip: &'a str, mail_from: &'a str) -> Envelope<'a> {
    Envelope {
        ip,
        mail_from,
        ..Envelope::default()
    }
}

#[tokio::test]
async fn servfail_is_temperror_and_follows_on_dns_error() {
    let sf = |z: &mut Zone| z.servfail("_dmarc.servfail.example.");
    let env = env_for("192.0.2.60", "alice@servfail.example");
    let milter = Milter::spawn_with(&config(""), sf).await;
    let (_, status) = send(&milter, &env, &msg_from("servfail.example"), false).await;
    assert_eq!(
        reply(&status),
        "451 4.4.3 Temporary DNS failure while verifying the sender, try again later"
    );
    milter.shutdown().await;
    let milter = Milter::spawn_with(&config("[policy]\non_dns_error = \"accept\"\n"), sf).await;
    let (actions, status) = send(&milter, &env, &msg_from("servfail.example"), false).await;
    assert_eq!(status, Status::Continue);
    let ar = added(&actions, "Authentication-Results").unwrap();
    assert!(
        ar.contains("spf=pass smtp.mailfrom=alice@servfail.example"),
        "{ar}"
    );
    assert!(
        ar.ends_with("dmarc=temperror header.from=servfail.example"),
        "{ar}"
    );
    milter.shutdown().await;
}

#[tokio::test]
async fn truncated_udp_answers_fall_back_to_tcp() {
    // Every answer under tcp.example comes over UDP with TC set: keys, SPF and DMARC all have
    // to be fetched again over TCP.
    let milter = Milter::spawn_with(&config(""), |z| z.tcp_only("tcp.example.")).await;
    let signed = sign(&msg_from("tcp.example"), "tcp.example", "rsa", false);
    let env = env_for("192.0.2.61", "alice@tcp.example");
    let (actions, status) = send(&milter, &env, &signed, false).await;
    assert_eq!(status, Status::Continue);
    let ar = added(&actions, "Authentication-Results").unwrap();
    assert!(
        ar.contains("spf=pass smtp.mailfrom=alice@tcp.example"),
        "{ar}"
    );
    assert!(
        ar.contains("dkim=pass header.d=tcp.example header.s=rsa"),
        "{ar}"
    );
    assert!(
        ar.ends_with("dmarc=pass (p=reject dis=none) header.from=tcp.example policy.dmarc=reject"),
        "{ar}"
    );
    milter.shutdown().await;
}

#[tokio::test]
async fn malformed_key_record_is_a_permanent_dkim_error() {
    let milter = Milter::spawn(&config("")).await;
    let signed = sign(&msg_from("badkey.example"), "badkey.example", "ed", true);
    let env = env_for("192.0.2.62", "alice@badkey.example");
    let (actions, status) = send(&milter, &env, &signed, false).await;
    assert_eq!(status, Status::Continue);
    let ar = added(&actions, "Authentication-Results").unwrap();
    assert!(
        ar.contains("dkim=permerror (invalid key record) header.d=badkey.example header.s=ed"),
        "{ar}"
    );
    // SPF still passes and aligns, so DMARC passes.
    assert!(
        ar.ends_with("dmarc=pass (p=none dis=none) header.from=badkey.example policy.dmarc=none"),
        "{ar}"
    );
    milter.shutdown().await;
}

#[tokio::test]
async fn cname_loop_and_oversized_txt_answers_end_without_hanging() {
    let milter = Milter::spawn(&config("[policy]\non_dns_error = \"accept\"\n")).await;
    let started = Instant::now();
    let env = env_for("192.0.2.63", "alice@loop.example");
    let (actions, status) = send(&milter, &env, &msg_from("loop.example"), false).await;
    assert_eq!(status, Status::Continue);
    let ar = added(&actions, "Authentication-Results").unwrap();
    assert!(ar.contains("spf=pass"), "{ar}");
    // A CNAME loop is a broken zone: no usable DMARC record.
    let dmarc = ar.rsplit(";\n\t").next().unwrap();
    assert!(
        dmarc == "dmarc=none header.from=loop.example"
            || dmarc == "dmarc=temperror header.from=loop.example",
        "{ar}"
    );
    // A 6 kB TXT answer (over UDP's limit, so fetched over TCP) still parses: the record is
    // p=reject, and the message from an authorized IP passes through SPF.
    let env = env_for("192.0.2.66", "alice@bigtxt.example");
    let (actions, _) = send(&milter, &env, &msg_from("bigtxt.example"), false).await;
    let ar = added(&actions, "Authentication-Results").unwrap();
    assert!(
        ar.ends_with("header.from=bigtxt.example policy.dmarc=reject"),
        "{ar}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    milter.shutdown().await;
}

#[tokio::test]
async fn spf_over_ten_lookups_is_permerror() {
    let milter = Milter::spawn(&config("")).await;
    // RFC 7208, section 4.6.4: more than 10 DNS-querying terms is a permerror.
    let env = env_for("192.0.2.64", "alice@spf11.example");
    let (actions, _) = send(&milter, &env, &msg_from("spf11.example"), false).await;
    let ar = added(&actions, "Authentication-Results").unwrap();
    assert!(
        ar.contains("spf=permerror smtp.mailfrom=alice@spf11.example"),
        "{ar}"
    );
    milter.shutdown().await;
}

/// The SPF part of the Authentication-Results header (its first method).
fn spf_part(actions: &indymilter_test::EomActions) -> String {
    let ar = added(actions, "Authentication-Results").unwrap();
    ar.split(";\n\t").nth(1).unwrap().to_owned()
}

fn over_void_limit(domain: &str) -> String {
    format!("spf=permerror (too many void lookups) smtp.mailfrom=alice@{domain}")
}

// RFC 7208, section 4.6.4: more than two void lookups (NXDOMAIN or NODATA) is a permerror.
// Each record ends in an ip4: that matches, so without the limit every one would pass.

#[tokio::test]
async fn spf_over_two_void_lookups_is_permerror_and_fails_dmarc() {
    let milter = Milter::spawn(&config("")).await;
    // a:, exists:, a: on names that do not exist, then the matching ip4:.
    let env = env_for("192.0.2.80", "alice@void3.example");
    let (actions, status) = send(&milter, &env, &msg_from("void3.example"), false).await;
    assert_eq!(status, Status::Continue);
    assert!(actions.has_quarantine("DMARC policy of void3.example is quarantine"));
    assert_eq!(
        added(&actions, "Authentication-Results").unwrap(),
        format!(
            "{AUTHSERV_ID};\n\tspf=permerror (too many void lookups) smtp.mailfrom=alice@void3.example;\n\t\
             dkim=none;\n\tarc=none;\n\tdmarc=fail (p=quarantine dis=quarantine) header.from=void3.example policy.dmarc=quarantine"
        )
    );
    milter.shutdown().await;
}

#[tokio::test]
async fn spf_with_two_void_lookups_passes() {
    let milter = Milter::spawn(&config("")).await;
    let env = env_for("192.0.2.80", "alice@void2.example");
    let (actions, status) = send(&milter, &env, &msg_from("void2.example"), false).await;
    assert_eq!(status, Status::Continue);
    assert_eq!(
        added(&actions, "Authentication-Results").unwrap(),
        format!(
            "{AUTHSERV_ID};\n\tspf=pass smtp.mailfrom=alice@void2.example;\n\t\
             dkim=none;\n\tarc=none;\n\tdmarc=pass (p=quarantine dis=none) header.from=void2.example policy.dmarc=quarantine"
        )
    );
    milter.shutdown().await;
}

#[tokio::test]
async fn spf_nodata_answer_is_a_void_lookup() {
    let milter = Milter::spawn(&config("")).await;
    // Two NXDOMAIN names, then host.voidnodata.example, which has an AAAA record but no A.
    let env = env_for("192.0.2.80", "alice@voidnodata.example");
    let (actions, _) = send(&milter, &env, &msg_from("voidnodata.example"), false).await;
    assert_eq!(spf_part(&actions), over_void_limit("voidnodata.example"));
    milter.shutdown().await;
}

#[tokio::test]
async fn spf_void_lookups_answered_from_the_cache_count() {
    use mail_auth::ResolverCache;
    let milter = Milter::spawn(&config("")).await;
    let env = env_for("192.0.2.80", "alice@voidcache.example");
    let (actions, _) = send(&milter, &env, &msg_from("voidcache.example"), false).await;
    assert_eq!(spf_part(&actions), over_void_limit("voidcache.example"));
    // The three negative answers are cached now, so the second message's a: lookups are all
    // cache hits.
    let caches = milter.shared.read().unwrap().verifier.caches().clone();
    for name in [
        "nx1.voidcache.example.",
        "nx2.voidcache.example.",
        "nx3.voidcache.example.",
    ] {
        assert!(
            matches!(caches.ipv4.get::<str>(name), Some(Err(_))),
            "{name} not cached as negative"
        );
    }
    let (actions, _) = send(&milter, &env, &msg_from("voidcache.example"), false).await;
    assert_eq!(spf_part(&actions), over_void_limit("voidcache.example"));
    milter.shutdown().await;
}

#[tokio::test]
async fn spf_explanation_lookup_is_not_a_void_lookup() {
    use mail_auth::ResolverCache;
    let milter = Milter::spawn(&config("")).await;
    // Two void lookups, then -all: a fail, whose exp= explanation name does not exist either.
    // That lookup comes after evaluation (RFC 7208, section 6.2), so the result stays fail.
    let env = env_for("192.0.2.81", "alice@voidexp.example");
    let (actions, _) = send(&milter, &env, &msg_from("voidexp.example"), false).await;
    assert_eq!(
        spf_part(&actions),
        "spf=fail smtp.mailfrom=alice@voidexp.example"
    );
    // The explanation was looked up, through the caches SPF was given.
    let caches = milter.shared.read().unwrap().verifier.caches().clone();
    assert!(caches.txt.get::<str>("nx3.voidexp.example.").is_some());
    milter.shutdown().await;
}

#[tokio::test]
async fn spf_void_lookups_inside_an_include_count() {
    let milter = Milter::spawn(&config("")).await;
    // One void lookup in the record, two in the included one (which ends in -all, so the
    // include does not match and evaluation goes on to ip4:).
    let env = env_for("192.0.2.80", "alice@voidinc.example");
    let (actions, _) = send(&milter, &env, &msg_from("voidinc.example"), false).await;
    assert_eq!(spf_part(&actions), over_void_limit("voidinc.example"));
    milter.shutdown().await;
}

#[tokio::test]
async fn spf_void_lookups_without_a_negative_ttl_count() {
    use mail_auth::ResolverCache;
    // Negative answers without an SOA are not cached by mail-auth, so they never reach our
    // cache: they are asked again.
    let milter = Milter::spawn_with(&config(""), |z| z.no_soa("voidnosoa.example.")).await;
    let env = env_for("192.0.2.80", "alice@voidnosoa.example");
    for _ in 0..2 {
        let (actions, _) = send(&milter, &env, &msg_from("voidnosoa.example"), false).await;
        assert_eq!(spf_part(&actions), over_void_limit("voidnosoa.example"));
    }
    let caches = milter.shared.read().unwrap().verifier.caches().clone();
    assert!(caches.ipv4.get::<str>("nx1.voidnosoa.example.").is_none());
    milter.shutdown().await;
}

#[tokio::test]
async fn a_slow_dns_server_does_not_hold_up_other_connections() {
    // slow.example is never answered (timeout 1 s, one attempt); meanwhile another
    // connection's fully cached-or-fast message must finish well before that.
    let milter = std::sync::Arc::new(
        Milter::spawn_with(&config("[policy]\non_dns_error = \"accept\"\n"), |z| {
            z.silence("slow.example.")
        })
        .await,
    );
    let slow_env_from = "dave@slow.example";
    let slow = {
        let milter = milter.clone();
        tokio::spawn(async move {
            let env = env_for("192.0.2.40", slow_env_from);
            let started = Instant::now();
            let _ = send(&milter, &env, &msg_from("slow.example"), false).await;
            started.elapsed()
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let signed = sign(&eml("plain.eml"), "sender.example", "ed", true);
    let started = Instant::now();
    let (actions, status) = send(&milter, &Envelope::default(), &signed, false).await;
    let fast = started.elapsed();
    assert_eq!(status, Status::Continue);
    assert!(
        added(&actions, "Authentication-Results")
            .unwrap()
            .contains("dmarc=pass")
    );
    let slow = slow.await.unwrap();
    assert!(
        slow >= Duration::from_millis(900),
        "slow path took {slow:?}"
    );
    assert!(fast < slow, "fast {fast:?} waited for slow {slow:?}");
}

#[tokio::test]
async fn nxdomain_everywhere_is_none_not_an_error() {
    // nowhere.example does not exist: no SPF record, no DMARC record, no DKIM key. These are
    // answers, not failures: spf=none, dmarc=none, dkim=permerror for the keyless signature,
    // and the message is delivered (NO_AUTH), never tempfailed.
    let milter = Milter::spawn(&config("")).await;
    let msg = sign(&msg_from("nowhere.example"), "nowhere.example", "s1", true);
    let env = env_for("192.0.2.10", "alice@nowhere.example");
    let (actions, status) = send(&milter, &env, &msg, false).await;
    assert_eq!(status, Status::Continue);
    assert_eq!(
        without_b(&added(&actions, "Authentication-Results").unwrap()),
        "mx.spoofguard.test;\n\tspf=none smtp.mailfrom=alice@nowhere.example;\n\t\
         dkim=permerror (no key for signature) header.d=nowhere.example header.s=s1 header.a=ed25519-sha256;\n\t\
         arc=none;\n\tdmarc=none header.from=nowhere.example"
    );
    assert_eq!(
        added(&actions, "X-Spoofguard-Reasons").unwrap(),
        "NO_AUTH=+1.0"
    );
    milter.shutdown().await;
}

#[tokio::test]
async fn forty_dkim_signatures_cost_five_verifications() {
    let mut msg = eml("plain.eml");
    for i in 0..40 {
        msg = sign(
            &msg,
            "sender.example",
            if i == 39 { "ed" } else { "nokey" },
            true,
        );
    }
    let milter = Milter::spawn(&config("")).await;
    let (actions, status) = send(&milter, &Envelope::default(), &msg, false).await;
    assert_eq!(status, Status::Continue);
    // The newest five (on top) are verified, the valid one among them; the other 35 are not.
    let ar = without_b(&added(&actions, "Authentication-Results").unwrap());
    let nokey = "\n\tdkim=permerror (no key for signature) header.d=sender.example header.s=nokey \
                 header.a=ed25519-sha256;";
    assert_eq!(
        ar,
        format!(
            "mx.spoofguard.test;\n\tspf=pass smtp.mailfrom=alice@sender.example;\n\t\
             dkim=pass header.d=sender.example header.s=ed header.a=ed25519-sha256;{}\n\t\
             arc=none;\n\tdmarc=pass (p=reject dis=none) header.from=sender.example policy.dmarc=reject",
            nokey.repeat(4)
        )
    );
    milter.shutdown().await;
}
