//! Header safety end to end: hostile display names, domains, links and subjects go through the
//! whole milter, and every header value we add or change stays one valid RFC 5322 field:
//! no CR, every LF is folding (followed by a tab or space), printable ASCII only, lines of at
//! most 998 characters.

use crate::common::*;
use indymilter_test::EomAction;

const HOSTILE: &str = "From: =?utf-8?q?Microsoft_Security=0D=0ABcc:_victim@example.com=0D=0A=0D=0A?=\n <alert@xn--mcrosoft-thh.com>\n\
Reply-To: \"=?utf-8?b?DQpYLUluamVjdGVkOiB5ZXM=?=\" <help@microsoft-securityprotection-support.xyz>\n\
To: Bob <bob@rcpt.example>\n\
Subject: =?utf-8?q?Verify=0D=0AX-Injected:_1?= \u{202e}now\n\
Date: Mon, 23 Nov 2026 09:00:00 +0000\n\
Message-ID: <hostile-1@sender.example>\n\
MIME-Version: 1.0\n\
Content-Type: text/html; charset=utf-8\n\
\n\
<p><a href=\"https://microsoft-securityprotection-support.xyz/a%0D%0AX-Injected:%20yes\">https://login.microsoftonline.com/\r\r\nBcc: x</a>\n\
<a href=\"https://xn--mcrosoft-thh.com/(;)&quot;\\\">support.microsoft.com</a></p>\n";

/// Every value the milter adds, inserts or changes: (name, value as sent).
fn written(actions: &indymilter_test::EomActions) -> Vec<(String, String)> {
    actions
        .actions
        .iter()
        .filter_map(|a| match a {
            EomAction::InsertHeader { name, value, .. }
            | EomAction::AddHeader { name, value }
            | EomAction::ChangeHeader { name, value, .. } => Some((
                name.to_string_lossy().into_owned(),
                value.to_string_lossy().into_owned(),
            )),
            _ => None,
        })
        .collect()
}

fn assert_valid_field(name: &str, value: &str) {
    assert!(!value.contains('\r'), "{name}: CR in {value:?}");
    let lines: Vec<&str> = value.split('\n').collect();
    for (i, line) in lines.iter().enumerate() {
        if i > 0 {
            assert!(
                line.starts_with(['\t', ' ']),
                "{name}: line {i} is not folding: {value:?}"
            );
        }
        assert!(line.len() + name.len() + 2 <= 998, "{name}: line too long");
        assert!(
            line.chars().all(|c| c == '\t' || (' '..='~').contains(&c)),
            "{name}: non-printable or non-ASCII in {line:?}"
        );
    }
}

#[tokio::test]
async fn hostile_content_cannot_break_the_headers_we_add() {
    let toml = config(
        "[policy]\nsubject_tag = \"[SUSPICIOUS]\"\nreject_at = 1000.0\nquarantine_at = 900.0\n",
    );
    let milter = Milter::spawn(&toml).await;
    let env = Envelope {
        mail_from: "bounce@xn--mcrosoft-thh.com",
        ..Envelope::default()
    };
    let (actions, _status) = send(&milter, &env, HOSTILE, false).await;
    let written = written(&actions);
    let names: Vec<&str> = written.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "Authentication-Results",
            "X-Spoofguard-Score",
            "X-Spoofguard-Verdict",
            "X-Spoofguard-Reasons",
            "Subject"
        ]
    );
    assert_eq!(
        added(&actions, "X-Spoofguard-Reasons").unwrap(),
        "NO_AUTH=+1.0;\n\t\
         DISPLAY_NAME_BRAND=+6.0 (display name claims Microsoft but from=xn--mcrosoft-thh.com);\n\t\
         DISPLAY_NAME_ADDRESS=+4.0 (display name shows example.com but from=xn--mcrosoft-thh.com);\n\t\
         LOOKALIKE_SKELETON=+12.0 (from xn--mcrosoft-thh.com ~ microsoft.com);\n\t\
         IDN_MIXED_SCRIPT=+6.0 (from xn--mcrosoft-thh.com mixes scripts in one label);\n\t\
         REPLY_TO_MISMATCH=+2.0 (reply-to microsoft-securityprotection-support.xyz differs from from=xn--mcrosoft-thh.com);\n\t\
         LINK_LOOKALIKE=+6.0 (xn--mcrosoft-thh.com ~ microsoft.com, 2 lookalike link domains);\n\t\
         LINK_TEXT_MISMATCH=+4.0 (link text shows login.microsoftonline.com but goes to microsoft-securityprotection-support.xyz);\n\t\
         BRAND_LINKS_OFFSITE=+3.0 (claims Microsoft but no link goes to microsoft.com)"
    );
    assert_eq!(
        written[4].1,
        " [SUSPICIOUS] =?utf-8?q?Verify=0D=0AX-Injected:_1?= \u{202e}now"
    );
    for (name, value) in &written {
        if name == "Subject" {
            // The subject keeps the sender's own (possibly non-ASCII) text; only check that
            // tagging added no line break that is not folding.
            assert!(!value.contains('\r'), "{value:?}");
            assert!(
                value
                    .split('\n')
                    .skip(1)
                    .all(|l| l.starts_with(['\t', ' ']))
            );
        } else {
            assert_valid_field(name, value);
        }
    }
    milter.shutdown().await;
}
