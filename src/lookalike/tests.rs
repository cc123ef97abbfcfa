//! Table-driven tests for the lookalike module, and two full messages.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::config::{LookalikeSettings, RawBrand};
use crate::domain::normalize_domain;
use crate::score::reasons::LOOKALIKE_REASONS as REASONS;

fn settings() -> LookalikeSettings {
    LookalikeSettings {
        enabled: true,
        builtin_brands: true,
        allow_domains: vec![],
        max_links: crate::lookalike::MAX_LINKS,
    }
}

fn cat() -> Catalogue {
    Catalogue::build(&settings(), &[]).unwrap()
}

fn codes(f: &[Finding]) -> Vec<&'static str> {
    f.iter().map(|f| f.code).collect()
}

fn raw(name: &str, mode: &str, domains: &[&str], aliases: &[&str]) -> RawBrand {
    RawBrand {
        name: name.into(),
        mode: mode.into(),
        domains: domains.iter().map(|s| s.to_string()).collect(),
        aliases: aliases.iter().map(|s| s.to_string()).collect(),
    }
}

#[test]
fn catalogue_builtin_parses_and_is_large() {
    let c = cat();
    assert!(c.len() >= 60, "{}", c.len());
    for b in c.brands() {
        assert!(b.name.is_ascii() && !b.name.is_empty());
        assert!(!b.domains.is_empty(), "{}", b.name);
        for d in &b.domains {
            assert_eq!(
                normalize_domain(d).as_deref(),
                Some(d.as_str()),
                "{}: {d}",
                b.name
            );
        }
    }
    for n in [
        "Microsoft",
        "Amazon",
        "PayPal",
        "Rakuten",
        "SMBC",
        "Japan Post",
        "PayPay",
        "KDDI",
    ] {
        assert!(c.brands().iter().any(|b| b.name == n), "{n}");
    }
}

#[test]
fn catalogue_builtin_brands_off_leaves_only_configured() {
    let s = LookalikeSettings {
        builtin_brands: false,
        ..settings()
    };
    let c = Catalogue::build(
        &s,
        &[raw("Example Bank", "", &["examplebank.co.jp"], &["例銀行"])],
    )
    .unwrap();
    assert_eq!(c.len(), 1);
    assert_eq!(
        codes(&check_domain("examp1ebank.com", &c)),
        ["LOOKALIKE_SKELETON"]
    );
    assert!(check_domain("examplebank.co.jp", &c).is_empty());
}

#[test]
fn catalogue_modes() {
    let c = Catalogue::build(
        &settings(),
        &[
            raw("microsoft", "extend", &["contoso-mail.com"], &["コントソ"]),
            raw("PayPal", "disable", &[], &[]),
            raw("Acme Pay", "", &["acmepay.example.jp"], &[]),
        ],
    )
    .unwrap();
    assert_eq!(
        c.brand_for_domain("x.contoso-mail.com").unwrap().name,
        "Microsoft"
    );
    assert!(
        check_domain("paypa1.com", &c)
            .iter()
            .all(|f| f.brand.as_deref() != Some("PayPal"))
    );
    assert!(c.brands().iter().any(|b| b.name == "Acme Pay"));
    let r = Catalogue::build(
        &settings(),
        &[raw("Microsoft", "replace", &["microsoft.example"], &[])],
    )
    .unwrap();
    let ms = r.brands().iter().find(|b| b.name == "Microsoft").unwrap();
    assert_eq!(ms.domains, ["microsoft.example"]);
}

#[test]
fn catalogue_reports_issues_by_key() {
    let e = Catalogue::build(
        &settings(),
        &[
            raw("Nope", "disable", &[], &[]),
            raw("X", "sideways", &["x.com"], &[]),
            raw("Y", "", &["not a domain"], &["・ 。"]),
        ],
    )
    .unwrap_err();
    let keys: Vec<&str> = e.iter().map(|i| i.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "brand[0].name",
            "brand[1].mode",
            "brand[2].domains[0]",
            "brand[2].aliases[0]",
            "brand[2].domains"
        ]
    );
    let bad_allow = LookalikeSettings {
        allow_domains: vec!["bad domain".into()],
        ..settings()
    };
    assert_eq!(
        Catalogue::build(&bad_allow, &[]).unwrap_err()[0].key,
        "lookalike.allow_domains[0]"
    );
}

#[test]
fn check_domain_positive_table() {
    let c = cat();
    let table: &[(&str, &str, &str)] = &[
        ("rnicrosoft.com", "LOOKALIKE_SKELETON", "Microsoft"),
        ("micr0soft.com", "LOOKALIKE_SKELETON", "Microsoft"),
        ("mіcrosoft.com", "LOOKALIKE_SKELETON", "Microsoft"),
        ("xn--mcrosoft-thh.com", "LOOKALIKE_SKELETON", "Microsoft"),
        (
            "ＭＩＣＲＯＳＯＦＴ-login.com",
            "LOOKALIKE_BRAND_TOKEN",
            "Microsoft",
        ),
        ("paypa1.com", "LOOKALIKE_SKELETON", "PayPal"),
        ("arnazon.co.jp", "LOOKALIKE_SKELETON", "Amazon"),
        ("gooogle.com", "LOOKALIKE_EDIT_DISTANCE", "Google"),
        ("micosoft.com", "LOOKALIKE_EDIT_DISTANCE", "Microsoft"),
        ("micro-soft.com", "LOOKALIKE_EDIT_DISTANCE", "Microsoft"),
        ("aplpe.com", "LOOKALIKE_EDIT_DISTANCE", "Apple"),
        (
            "microsoft-securityprotection-support.xyz",
            "LOOKALIKE_BRAND_TOKEN",
            "Microsoft",
        ),
        (
            "warning-securityteam-microsoft.com",
            "LOOKALIKE_BRAND_TOKEN",
            "Microsoft",
        ),
        (
            "amazon-account-verify.net",
            "LOOKALIKE_BRAND_TOKEN",
            "Amazon",
        ),
        ("secure-paypal-login.net", "LOOKALIKE_BRAND_TOKEN", "PayPal"),
        ("apple-id-verify.com", "LOOKALIKE_BRAND_TOKEN", "Apple"),
        ("ups-delivery-notice.com", "LOOKALIKE_BRAND_TOKEN", "UPS"),
        ("applesecurelogin.com", "LOOKALIKE_BRAND_TOKEN", "Apple"),
        ("paypalgoods.com", "LOOKALIKE_BRAND_EMBEDDED", "PayPal"),
        ("microsoft.xyz", "LOOKALIKE_OTHER_TLD", "Microsoft"),
        ("paypal.co", "LOOKALIKE_OTHER_TLD", "PayPal"),
        ("rakuten.xyz", "LOOKALIKE_OTHER_TLD", "Rakuten"),
        (
            "microsoft.com.login-verify.net",
            "LOOKALIKE_BRAND_SUBDOMAIN",
            "Microsoft",
        ),
        (
            "paypal.secure-check.com",
            "LOOKALIKE_BRAND_SUBDOMAIN",
            "PayPal",
        ),
        ("microsof.t.com", "LOOKALIKE_EDIT_DISTANCE", "Microsoft"),
        ("smbc-card0.com", "LOOKALIKE_EDIT_DISTANCE", "SMBC"),
        ("xn--aazon-3l1ba.com", "LOOKALIKE_SKELETON", "Amazon"),
    ];
    for (d, code, brand) in table {
        let f = check_domain(d, &c);
        let hit = f.iter().find(|f| f.brand.as_deref() == Some(brand));
        assert!(hit.is_some_and(|h| h.code == *code), "{d}: {f:?}");
        assert!(is_flagged(&f), "{d}");
        for x in &f {
            assert!(
                x.detail.bytes().all(|b| (b' '..=b'~').contains(&b)),
                "{d}: {}",
                x.detail
            );
        }
    }
}

#[test]
fn check_domain_one_finding_per_brand() {
    let c = cat();
    let f = check_domain("microsoft-office365-login.microsoft.com.evil.xyz", &c);
    let ms = f
        .iter()
        .filter(|f| f.brand.as_deref() == Some("Microsoft"))
        .count();
    assert_eq!(ms, 1, "{f:?}");
}

#[test]
fn check_domain_mixed_script() {
    let c = cat();
    let f = check_domain("mіcrosoft.com", &c);
    assert_eq!(codes(&f), ["LOOKALIKE_SKELETON", "IDN_MIXED_SCRIPT"]);
    // Single-script IDN: no mixed-script finding.
    assert!(check_domain("日本語.jp", &c).is_empty());
}

#[test]
fn check_domain_negative_table() {
    let c = cat();
    for d in [
        "paypay.ne.jp",
        "pineapple.com",
        "applebees.com",
        "microsoftonline.com",
        "office.com",
        "paypalobjects.com",
        "linecorp.com",
        "upstart.com",
        "upstream.com",
        "metal.com",
        "metadata.io",
        "online.com",
        "pipeline.com",
        "helpline.com",
        "checkups.com",
        "visadirect.example",
        "chasm.com",
        "MICROSOFT.COM.",
        "accountprotection.microsoft.com",
        "account.live.com",
        "go.microsoft.com",
        "xn--eckwd4c7c.xn--zckzah",
        "google.com.mx",
        "example.com",
        "line.me",
        "sony.tv",
        "",
        ".",
        "a..b",
        "not a domain",
        "xn--zz.com",
        &"a".repeat(300),
    ] {
        let f = check_domain(d, &c);
        assert!(!is_flagged(&f), "{d}: {f:?}");
    }
}

#[test]
fn check_domain_allow_list_exempts_subdomains() {
    let s = LookalikeSettings {
        allow_domains: vec!["microsoft-partner.example".into()],
        ..settings()
    };
    let c = Catalogue::build(&s, &[]).unwrap();
    assert!(check_domain("microsoft-partner.example", &c).is_empty());
    assert!(check_domain("mail.microsoft-partner.example", &c).is_empty());
    assert!(!check_domain("microsoft-partner.xyz", &c).is_empty());
}

#[test]
fn claimed_brands_normalises_names() {
    let c = cat();
    let name_of = |n: &str| -> Vec<String> {
        message::claimed_brands(n, &c)
            .into_iter()
            .map(|b| c.brands()[b].name.clone())
            .collect()
    };
    for (n, b) in [
        ("日本マイクロソフトセキュリティチーム", "Microsoft"),
        ("Microsoft アカウント チーム", "Microsoft"),
        ("ﾏｲｸﾛｿﾌﾄ", "Microsoft"),
        ("PayPal Service", "PayPal"),
        ("Ｐａｙ Ｐａｌ", "PayPal"),
        ("楽天カード株式会社", "Rakuten"),
        ("三井住友カード", "SMBC"),
        ("ヤマト運輸", "Yamato Transport"),
        ("au PAY", "KDDI"),
        ("Apple Support", "Apple"),
        ("えきねっと", "View Card"),
    ] {
        assert!(name_of(n).contains(&b.to_string()), "{n}: {:?}", name_of(n));
    }
    for n in [
        "Pineapple Express",
        "Online Store",
        "Metadata Team",
        "Upstream News",
        "Chaser",
        "John Smith",
    ] {
        assert!(name_of(n).is_empty(), "{n}: {:?}", name_of(n));
    }
}

fn facts(name: &str, from: &str) -> MessageFacts {
    MessageFacts {
        from_domain: from.rsplit_once('@').map(|(_, d)| d.to_string()),
        from_address: Some(from.into()),
        display_name: Some(name.into()),
        ..Default::default()
    }
}

fn link(href: &str, text: Option<&str>) -> Link {
    Link {
        href_domain: href.into(),
        text_domain: text.map(str::to_string),
    }
}

#[test]
fn check_message_signal_table() {
    let c = cat();
    let none = AuthContext::default();
    let pass = AuthContext {
        dmarc_pass: true,
        dmarc_fail: false,
    };
    let fail = AuthContext {
        dmarc_pass: false,
        dmarc_fail: true,
    };
    type Case = (MessageFacts, AuthContext, &'static [&'static str]);
    let cases: Vec<Case> = vec![
        (
            facts("PayPal Service", "service@mail-pp.example"),
            none,
            &["DISPLAY_NAME_BRAND"],
        ),
        (facts("PayPal Service", "service@paypal.com"), none, &[]),
        (facts("PayPal", "service@paypal.jp"), pass, &[]),
        (
            facts("Microsoft", "x@microsoft.com"),
            fail,
            &["BRAND_DOMAIN_DMARC_FAIL"],
        ),
        (facts("Alice", "x@example.com"), fail, &[]),
        (
            facts("support@paypal.com", "x@example.com"),
            none,
            &["DISPLAY_NAME_BRAND", "DISPLAY_NAME_ADDRESS"],
        ),
        (
            facts("noreply@example.net", "x@example.com"),
            none,
            &["DISPLAY_NAME_ADDRESS"],
        ),
        (facts("Booking.com", "noreply@booking.com"), none, &[]),
        (
            facts("Alice via example.org", "alice@example.com"),
            none,
            &["DISPLAY_NAME_ADDRESS"],
        ),
        (
            MessageFacts {
                reply_to: vec!["boss@other.example".into()],
                ..facts("Alice", "alice@example.com")
            },
            none,
            &["REPLY_TO_MISMATCH"],
        ),
        (
            MessageFacts {
                reply_to: vec!["ceo.private@gmail.com".into()],
                ..facts("Alice", "alice@example.com")
            },
            none,
            &["REPLY_TO_FREEMAIL"],
        ),
        (
            MessageFacts {
                reply_to: vec!["friend@yahoo.co.jp".into()],
                ..facts("Alice", "alice@gmail.com")
            },
            none,
            &["REPLY_TO_MISMATCH"],
        ),
        (
            MessageFacts {
                reply_to: vec!["x@mail.example.com".into()],
                envelope_domain: Some("bounce.example.com".into()),
                ..facts("Alice", "alice@example.com")
            },
            none,
            &[],
        ),
        (
            MessageFacts {
                envelope_domain: Some("esp-bounces.example.net".into()),
                ..facts("Alice", "alice@example.com")
            },
            none,
            &["ENVELOPE_MISMATCH"],
        ),
        (
            MessageFacts {
                links: vec![link("paypa1.com", None), link("example.com", None)],
                ..facts("Alice", "alice@example.com")
            },
            none,
            &["LINK_LOOKALIKE"],
        ),
        (
            MessageFacts {
                links: vec![link("evil.example", Some("www.amazon.co.jp"))],
                ..facts("Alice", "alice@example.com")
            },
            none,
            &["LINK_TEXT_MISMATCH"],
        ),
        (
            MessageFacts {
                links: vec![link("account.live.com", Some("account.microsoft.com"))],
                ..facts("Alice", "alice@example.com")
            },
            none,
            &[],
        ),
        (
            MessageFacts {
                links: vec![link("evil.example", None)],
                ..facts("Amazon.co.jp", "info@shop.example")
            },
            none,
            &[
                "DISPLAY_NAME_BRAND",
                "DISPLAY_NAME_ADDRESS",
                "BRAND_LINKS_OFFSITE",
            ],
        ),
        (
            MessageFacts {
                links: vec![link("evil.example", None), link("www.amazon.co.jp", None)],
                ..facts("Amazon", "info@shop.example")
            },
            none,
            &["DISPLAY_NAME_BRAND"],
        ),
        (
            facts("Alice", "alice@rnicrosoft.com"),
            none,
            &["LOOKALIKE_SKELETON"],
        ),
        (MessageFacts::default(), fail, &[]),
    ];
    for (i, (f, a, want)) in cases.iter().enumerate() {
        let got = check_message(f, a, &c);
        assert_eq!(codes(&got), *want, "case {i}: {got:?}");
        for x in &got {
            assert!(
                x.detail.bytes().all(|b| (b' '..=b'~').contains(&b)),
                "{}",
                x.detail
            );
        }
    }
}

#[test]
fn check_message_detail_is_header_safe() {
    let c = cat();
    let f = facts("Microsoft\r\nX-Evil: 1 マイクロソフト", "a@例え.jp");
    for x in check_message(&f, &AuthContext::default(), &c) {
        assert!(
            x.detail.bytes().all(|b| (b' '..=b'~').contains(&b)),
            "{}",
            x.detail
        );
        assert!(x.detail.len() <= 200);
    }
}

fn score(f: &[Finding]) -> f64 {
    f.iter().map(|f| weight(f.code)).sum()
}

const PHISH: &str = "From: =?UTF-8?B?5pel5pys44Oe44Kk44Kv44Ot44K944OV44OI44K744Kt44Ol44Oq44OG44Kj44OB44O844Og?= <security@microsoft-securityprotection-support.xyz>\r
To: user@example.jp\r
Subject: =?UTF-8?B?T2ZmaWNlIOODl+ODreODgOOCr+ODiOOCreODvOOBjOS4jeato+OBq+OCs+ODlOODvOOBleOCjOOBpuOBhOOBvuOBmSDku4rjgZnjgZDoqo3oqLw=?=\r
Date: Mon, 23 Nov 2026 10:00:00 +0900\r
Message-ID: <phish-1@microsoft-securityprotection-support.xyz>\r
MIME-Version: 1.0\r
Content-Type: text/html; charset=UTF-8\r
Content-Transfer-Encoding: 8bit\r
\r
<html><body><p>お客様の Office プロダクトキーが不正にコピーされています。</p>\r
<p><a href=\"https://microsoft-securityprotection-support.xyz/verify\">今すぐ認証</a></p>\r
<p><a href='https://warning-securityteam-microsoft.com/login'>https://account.microsoft.com</a></p>\r
</body></html>\r
";

const GENUINE: &str = "From: =?UTF-8?B?TWljcm9zb2Z0IOOCouOCq+OCpuODs+ODiCDjg4Hjg7zjg6A=?= <account-security-noreply@accountprotection.microsoft.com>\r
To: user@example.jp\r
Subject: =?UTF-8?B?TWljcm9zb2Z0IOOCouOCq+OCpuODs+ODiOOBruODkeOCueODr+ODvOODiSDjg6rjgrvjg4Pjg4gg44Kz44O844OJ?=\r
Date: Mon, 23 Nov 2026 10:00:00 +0900\r
Message-ID: <genuine-1@accountprotection.microsoft.com>\r
MIME-Version: 1.0\r
Content-Type: multipart/alternative; boundary=\"b1\"\r
\r
--b1\r
Content-Type: text/plain; charset=UTF-8\r
\r
セキュリティ コード: 123456\r
https://account.live.com/ResetPassword\r
--b1\r
Content-Type: text/html; charset=UTF-8\r
\r
<html><body><p>セキュリティ コード: <b>123456</b></p>\r
<a href=\"https://account.live.com/ResetPassword?mkt=ja-JP\">パスワードをリセット</a>\r
<a href=\"https://go.microsoft.com/fwlink/?LinkID=254486\">プライバシーに関する声明</a>\r
</body></html>\r
--b1--\r
";

#[test]
fn full_message_phish_is_caught() {
    let c = cat();
    let msg = mail_parser::MessageParser::new()
        .parse(PHISH.as_bytes())
        .unwrap();
    assert_eq!(
        msg.from().unwrap().first().unwrap().name(),
        Some("日本マイクロソフトセキュリティチーム")
    );
    let facts = facts_from_message(&msg, "<bounce@microsoft-securityprotection-support.xyz>");
    assert_eq!(
        facts.from_domain.as_deref(),
        Some("microsoft-securityprotection-support.xyz")
    );
    assert_eq!(
        facts.links,
        vec![
            link("microsoft-securityprotection-support.xyz", None),
            link(
                "warning-securityteam-microsoft.com",
                Some("account.microsoft.com")
            ),
        ]
    );
    let f = check_message(&facts, &AuthContext::default(), &c);
    let got = codes(&f);
    for want in [
        "DISPLAY_NAME_BRAND",
        "LOOKALIKE_BRAND_TOKEN",
        "LINK_LOOKALIKE",
        "LINK_TEXT_MISMATCH",
    ] {
        assert!(got.contains(&want), "{want} missing: {f:?}");
    }
    assert!(score(&f) >= 20.0, "score {} {f:?}", score(&f));
    assert_eq!(score(&f), 29.0, "{f:?}");
}

#[test]
fn full_message_genuine_microsoft_is_clean() {
    let c = cat();
    let msg = mail_parser::MessageParser::new()
        .parse(GENUINE.as_bytes())
        .unwrap();
    let facts = facts_from_message(
        &msg,
        "account-security-noreply@accountprotection.microsoft.com",
    );
    assert_eq!(
        facts.display_name.as_deref(),
        Some("Microsoft アカウント チーム")
    );
    assert!(!facts.links.is_empty());
    let auth = AuthContext {
        dmarc_pass: true,
        ..Default::default()
    };
    assert_eq!(check_message(&facts, &auth, &c), vec![]);
    // Even without a DMARC verdict the genuine mail stays clean.
    assert_eq!(check_message(&facts, &AuthContext::default(), &c), vec![]);
}

#[test]
fn weights_meet_the_policy_targets() {
    // A single mild signal stays under tag_at (5); a lookalike From alone reaches quarantine (10).
    for mild in [
        "ENVELOPE_MISMATCH",
        "REPLY_TO_MISMATCH",
        "REPLY_TO_FREEMAIL",
        "LINK_TEXT_MISMATCH",
    ] {
        assert!(weight(mild) < 5.0, "{mild}");
    }
    for strong in [
        "LOOKALIKE_SKELETON",
        "LOOKALIKE_EDIT_DISTANCE",
        "LOOKALIKE_BRAND_TOKEN",
        "LOOKALIKE_OTHER_TLD",
        "LOOKALIKE_BRAND_SUBDOMAIN",
    ] {
        assert!(weight(strong) >= 10.0, "{strong}");
    }
    let mut seen = std::collections::HashSet::new();
    for r in REASONS {
        assert!(seen.insert(r.code), "duplicate {}", r.code);
        assert!(r.weight > 0.0);
    }
}

#[test]
fn facts_from_hostile_messages_do_not_panic() {
    let c = cat();
    let huge = format!(
        "From: x\r\nContent-Type: text/html\r\n\r\n{}",
        "<a href=\"https://paypa1.com/\">x</a><a href=".repeat(20_000)
    );
    let inputs: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"Subject: no from\r\n\r\nhello https://paypa1.com/x".to_vec(),
        b"From: <>\r\nReply-To: @@@, <a@>\r\n\r\n".to_vec(),
        b"From: \xff\xfe <a@\xff.com>\r\n\r\n<a href=\"http://[::1]/\">http://</a>".to_vec(),
        b"From: a@b.c\r\nContent-Type: text/html\r\n\r\n<a href='https://user@bank.example@evil.example:8080/'>https://www.bank.example</a><a href=".to_vec(),
        huge.into_bytes(),
    ];
    for raw in &inputs {
        if let Some(msg) = mail_parser::MessageParser::new().parse(raw) {
            let f = facts_from_message(&msg, "\u{0}<>@@");
            assert!(f.links.len() <= MAX_LINKS);
            let _ = check_message(&f, &AuthContext::default(), &c);
        }
    }
}

#[test]
fn url_userinfo_is_not_the_host() {
    let msg = mail_parser::MessageParser::new()
        .parse(b"From: a@example.com\r\nContent-Type: text/html\r\n\r\n<a href=\"https://www.paypal.com@evil.example/login\">PayPal</a>" as &[u8])
        .unwrap();
    let f = facts_from_message(&msg, "");
    assert_eq!(f.links, vec![link("evil.example", None)]);
    assert_eq!(f.envelope_domain, None);
}

#[test]
fn osa_distance_matches_strsim() {
    for (a, b) in [
        ("microsoft", "micosoft"),
        ("aplpe", "apple"),
        ("", "abc"),
        ("google", "gooogle"),
        ("ca", "abc"),
    ] {
        assert_eq!(
            domain::osa_distance(a.as_bytes(), b.as_bytes()),
            strsim::osa_distance(a, b),
            "{a} {b}"
        );
    }
}

/// The built-in catalogue's data: every domain registrable under the Public Suffix List (or
/// listed under `subdomains`), no domain twice unless both brands list it under `shared`,
/// aliases that normalise to distinct non-empty strings, tags from the fixed lists.
#[test]
fn catalogue_data_is_valid() {
    use super::brands::{MIN_DISTINCTIVE_TOKEN_LEN, parse_builtin};
    use super::display::compact;
    use super::{CATEGORIES, MIN_ALIAS_LEN, REGIONS};
    use std::collections::{HashMap, HashSet};
    let file = parse_builtin().unwrap();
    let mut bad = Vec::new();
    let mut names = HashSet::new();
    let mut claims: HashMap<&str, Vec<(&str, bool)>> = HashMap::new();
    for b in &file.brand {
        let n = b.name.as_str();
        if n.is_empty() || !n.is_ascii() || !names.insert(n.to_ascii_lowercase()) {
            bad.push(format!("{n}: name empty, not ASCII or repeated"));
        }
        if !REGIONS.contains(&b.region.as_str()) {
            bad.push(format!("{n}: region {:?} not in REGIONS", b.region));
        }
        if !CATEGORIES.contains(&b.category.as_str()) {
            bad.push(format!("{n}: category {:?} not in CATEGORIES", b.category));
        }
        if b.source.trim().is_empty() {
            bad.push(format!("{n}: no source"));
        }
        for c in &b.countries {
            if c.len() != 2 || !c.bytes().all(|x| x.is_ascii_lowercase()) {
                bad.push(format!("{n}: country {c:?} is not ISO 3166-1 alpha-2"));
            }
        }
        if b.domains.is_empty() && b.subdomains.is_empty() {
            bad.push(format!("{n}: no domains"));
        }
        let mut own = HashSet::new();
        for d in &b.domains {
            if normalize_domain(d).as_deref() != Some(d) || psl::domain_str(d) != Some(d) {
                bad.push(format!("{n}: {d} is not a registrable domain"));
            }
        }
        for d in &b.subdomains {
            let reg = psl::domain_str(d);
            if normalize_domain(d).as_deref() != Some(d) || reg.is_none() || reg == Some(d) {
                bad.push(format!(
                    "{n}: {d} is not a subdomain of a registrable domain"
                ));
            }
        }
        for d in &b.suffixes {
            // A public suffix the brand runs, or a registrable domain whose subdomains belong
            // to its customers (onmicrosoft.com tenants) without being on the list.
            if psl::suffix_str(d) != Some(d) && psl::domain_str(d) != Some(d) {
                bad.push(format!(
                    "{n}: {d} is neither a public suffix nor registrable"
                ));
            }
        }
        for d in b.domains.iter().chain(&b.subdomains).chain(&b.suffixes) {
            if !own.insert(d.as_str()) {
                bad.push(format!("{n}: {d} listed twice"));
            }
            claims.entry(d).or_default().push((n, b.shared.contains(d)));
        }
        for d in &b.shared {
            if !own.contains(d.as_str()) {
                bad.push(format!("{n}: shared {d} is not one of its domains"));
            }
        }
        let mut seen = HashSet::new();
        for a in &b.aliases {
            let c = compact(a);
            if c.chars().count() < MIN_ALIAS_LEN {
                bad.push(format!("{n}: alias {a:?} normalises to {c:?}"));
            } else if !seen.insert(c.clone()) {
                bad.push(format!("{n}: alias {a:?} repeats {c:?}"));
            }
        }
        let mut toks = HashSet::new();
        for (t, word) in b
            .tokens
            .iter()
            .map(|t| (t, false))
            .chain(b.word_tokens.iter().map(|t| (t, true)))
        {
            if t.is_empty()
                || !t
                    .bytes()
                    .all(|x| x.is_ascii_lowercase() || x.is_ascii_digit() || x == b'-')
            {
                bad.push(format!("{n}: token {t:?} is not a lowercase LDH label"));
            }
            if !word && t.len() < MIN_DISTINCTIVE_TOKEN_LEN {
                bad.push(format!("{n}: distinctive token {t:?} is too short"));
            }
            if !toks.insert(t.as_str()) {
                bad.push(format!("{n}: token {t:?} repeated"));
            }
        }
    }
    for (d, owners) in &claims {
        if owners.len() > 1 && owners.iter().any(|(_, shared)| !shared) {
            let who: Vec<&str> = owners.iter().map(|(n, _)| *n).collect();
            bad.push(format!(
                "{d} claimed by {who:?} without shared = [...] in each"
            ));
        }
    }
    for a in &file.allow {
        let d = a.domain.as_str();
        if normalize_domain(d).as_deref() != Some(d) || psl::domain_str(d) != Some(d) {
            bad.push(format!("allow: {d} is not a registrable domain"));
        }
        if claims.contains_key(d) || a.why.trim().is_empty() {
            bad.push(format!("allow: {d} is a brand's domain or has no why"));
        }
    }
    bad.sort();
    assert!(
        bad.is_empty(),
        "{} problems:\n{}",
        bad.len(),
        bad.join("\n")
    );
    assert!(file.brand.len() >= 250, "{} brands", file.brand.len());
    for r in REGIONS {
        let n = file.brand.iter().filter(|b| b.region == *r).count();
        assert!(n >= 10, "region {r} has only {n} brands");
    }
}

/// A domain written in milter.toml and the same domain met in a message normalise alike: what
/// `allow_domains` and `[[brand]] domains` accept is exactly what the matcher produces, and
/// what they refuse the matcher never produces.
#[test]
fn config_and_matcher_normalise_domains_alike() {
    for &(input, want) in crate::domain::NORMALIZE_CASES {
        let quoted = toml::Value::String(input.to_owned()).to_string();
        let text = format!(
            "[lookalike]\nbuiltin_brands = false\nallow_domains = [{quoted}]\n\
             [[brand]]\nname = \"Acme Pay\"\ndomains = [{quoted}]\n"
        );
        let config = crate::config::Config::from_toml(&text, std::path::Path::new("milter.toml"));
        // The matcher: the domain of a From/Reply-To/MAIL FROM address, and of a link.
        let address = links::address_domain(&format!("someone@{input}"));
        let link = links::url_domain(&format!("https://{input}/login"));
        assert_eq!(address.as_deref(), want, "address domain of {input:?}");
        assert_eq!(link.as_deref(), want, "link host {input:?}");
        match want {
            Some(d) => {
                let config = config.unwrap_or_else(|e| panic!("{input:?}: {e}"));
                assert_eq!(
                    config.lookalike.allow_domains,
                    vec![d.to_owned()],
                    "{input:?}"
                );
                let cat = Catalogue::build(&config.lookalike, &config.brands).unwrap();
                assert_eq!(cat.brands()[0].domains, vec![d.to_owned()], "{input:?}");
                assert!(cat.is_allowed(d), "{input:?}");
                let sub = format!("www.{d}");
                assert_eq!(
                    cat.brand_for_domain(&sub).map(|b| b.name.as_str()),
                    Some("Acme Pay"),
                    "{input:?}"
                );
            }
            None => {
                let Err(e) = config else {
                    panic!("{input:?} must be refused");
                };
                assert_eq!(
                    e.lines(),
                    vec![
                        format!(
                            "milter.toml: lookalike.allow_domains[0]: \"{input}\" is not a domain name"
                        ),
                        format!(
                            "milter.toml: brand[0].domains[0]: \"{input}\" is not a domain name"
                        ),
                    ],
                    "{input:?}"
                );
            }
        }
    }
}
