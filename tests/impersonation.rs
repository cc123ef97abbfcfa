//! The two mails spoofguard exists for, through the whole milter: the Japanese Microsoft
//! phish (authenticated for its own lookalike domain) must be stopped; the genuine Microsoft
//! password-reset mail (DMARC pass for microsoft.com) must get no penalty at all.

use crate::common::*;
use indymilter_test::Status;

#[tokio::test]
async fn japanese_microsoft_phish_is_rejected_with_brand_reasons() {
    let milter = Milter::spawn(&config("")).await;
    let signed = sign(
        &eml("phish-microsoft-ja.eml"),
        "microsoft-securityprotection-support.xyz",
        "ed",
        true,
    );
    let env = Envelope {
        ip: "192.0.2.50",
        helo: "mail.microsoft-securityprotection-support.xyz",
        mail_from: "bounce@microsoft-securityprotection-support.xyz",
        ..Envelope::default()
    };
    let (_, status) = send(&milter, &env, &signed, false).await;
    let Status::Reject {
        message: Some(reply),
    } = status
    else {
        panic!("not rejected: {status:?}");
    };
    assert_eq!(
        reply.to_str().unwrap(),
        "550 5.7.1 Message rejected: score 29.0 (LOOKALIKE_BRAND_TOKEN, DISPLAY_NAME_BRAND, LINK_LOOKALIKE, LINK_TEXT_MISMATCH)"
    );
    milter.shutdown().await;

    // In dry run the same mail is delivered, and the headers show why.
    let milter =
        Milter::spawn(&config("").replace("[milter]\n", "[milter]\ndry_run = true\n")).await;
    let (actions, status) = send(&milter, &env, &signed, true).await;
    assert_eq!(status, Status::Continue);
    let ar = added(&actions, "Authentication-Results").unwrap();
    assert!(
        ar.contains("dkim=pass header.d=microsoft-securityprotection-support.xyz"),
        "{ar}"
    );
    assert!(
        ar.ends_with(
            "dmarc=pass (p=none dis=none) header.from=microsoft-securityprotection-support.xyz policy.dmarc=none"
        ),
        "{ar}"
    );
    assert!(has_header(&actions, "X-Spoofguard-Verdict", "reject"));
    assert!(has_header(&actions, "X-Spoofguard-Score", "29.0"));
    let reasons = added(&actions, "X-Spoofguard-Reasons").unwrap();
    for code in [
        "LOOKALIKE_BRAND_TOKEN=+10.0",
        "DISPLAY_NAME_BRAND=+6.0",
        "LINK_LOOKALIKE=+6.0",
        "LINK_TEXT_MISMATCH=+4.0",
        "BRAND_LINKS_OFFSITE=+3.0",
    ] {
        assert!(reasons.contains(code), "{code} missing from {reasons}");
    }
    // Header safety: the Japanese display name never reaches the header raw.
    assert!(reasons.is_ascii(), "{reasons}");
    milter.shutdown().await;
}

#[tokio::test]
async fn genuine_microsoft_password_reset_mail_is_accepted_with_no_brand_reason() {
    let milter = Milter::spawn(&config("")).await;
    let signed = sign(
        &eml("genuine-microsoft-ja.eml"),
        "accountprotection.microsoft.com",
        "rsa",
        false,
    );
    let env = Envelope {
        ip: "40.107.22.33",
        helo: "mail.protection.outlook.com",
        mail_from: "account-security-noreply@accountprotection.microsoft.com",
        ..Envelope::default()
    };
    for lf_body in [false, true] {
        let (actions, status) = send(&milter, &env, &signed, lf_body).await;
        assert_eq!(status, Status::Continue);
        let ar = added(&actions, "Authentication-Results").unwrap();
        assert!(
            ar.contains(
                "spf=pass smtp.mailfrom=account-security-noreply@accountprotection.microsoft.com"
            ),
            "{ar}"
        );
        assert!(
            ar.contains("dkim=pass header.d=accountprotection.microsoft.com header.s=rsa"),
            "{ar}"
        );
        assert!(
            ar.ends_with(
                "dmarc=pass (p=reject dis=none) header.from=accountprotection.microsoft.com policy.dmarc=reject"
            ),
            "{ar}"
        );
        assert!(has_header(&actions, "X-Spoofguard-Score", "0.0"));
        assert!(has_header(&actions, "X-Spoofguard-Verdict", "accept"));
        assert!(has_header(&actions, "X-Spoofguard-Reasons", "none"));
    }
    milter.shutdown().await;
}

#[tokio::test]
async fn microsoft_domain_failing_dmarc_is_a_strong_signal() {
    // The genuine mail's From, sent from an unauthorized IP with no signature.
    let milter = Milter::spawn(&config(
        "[policy]\nreject_dmarc_reject = false\nquarantine_dmarc_quarantine = false\n",
    ))
    .await;
    let env = Envelope {
        ip: "198.51.100.66",
        helo: "attacker.example",
        mail_from: "account-security-noreply@accountprotection.microsoft.com",
        ..Envelope::default()
    };
    let (actions, status) = send(&milter, &env, &eml("genuine-microsoft-ja.eml"), false).await;
    assert_eq!(status, Status::Continue);
    // 12 + 4 + 1: quarantined by score alone, even with the DMARC policy switched off.
    assert!(actions.has_quarantine("score 17.0 (BRAND_DOMAIN_DMARC_FAIL, DMARC_FAIL, SPF_FAIL)"));
    assert!(has_header(&actions, "X-Spoofguard-Verdict", "quarantine"));
    milter.shutdown().await;
}

#[tokio::test]
async fn tenant_onmicrosoft_address_claiming_microsoft_is_quarantined() {
    // Any Microsoft 365 tenant can send, DMARC-authenticated, from x.onmicrosoft.com: that is
    // not Microsoft's own mail.
    let milter = Milter::spawn(&config("")).await;
    let msg = eml("plain.eml")
        .replace(
            "Alice Example <alice@sender.example>",
            "Microsoft Security <security@contoso-it.onmicrosoft.com>",
        )
        .replace("plain-1@sender.example", "t-1@contoso-it.onmicrosoft.com");
    let signed = sign(&msg, "contoso-it.onmicrosoft.com", "ed", true);
    let env = Envelope {
        ip: "192.0.2.70",
        mail_from: "security@contoso-it.onmicrosoft.com",
        ..Envelope::default()
    };
    let (actions, status) = send(&milter, &env, &signed, false).await;
    assert_eq!(status, Status::Continue);
    let ar = added(&actions, "Authentication-Results").unwrap();
    assert!(
        ar.ends_with(
            "dmarc=pass (p=none dis=none) header.from=contoso-it.onmicrosoft.com policy.dmarc=none"
        ),
        "{ar}"
    );
    assert!(has_header(&actions, "X-Spoofguard-Verdict", "quarantine"));
    let reasons = added(&actions, "X-Spoofguard-Reasons").unwrap();
    assert!(reasons.contains("DISPLAY_NAME_BRAND=+6.0"), "{reasons}");
    assert!(
        reasons.contains("LOOKALIKE_BRAND_EMBEDDED=+6.0"),
        "{reasons}"
    );
    milter.shutdown().await;
}
