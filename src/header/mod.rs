//! The header fields we add, and recognising forged copies of them. Pure code.
//!
//! Everything derived from message content is reduced to printable ASCII without `;`, `(`,
//! `)` or line breaks before it reaches a header, so a display name or a domain can never
//! inject a header line or break the RFC 8601 syntax. Values are folded with "\n\t": the MTA
//! turns LF into CRLF (as Postfix and Sendmail do for milter-added headers).

use crate::auth::{AuthResult, AuthVerdicts, DmarcPolicy, SpfIdentity};
use crate::score::Reason;

pub mod reply;

/// RFC 8601
pub const AUTHENTICATION_RESULTS: &str = "Authentication-Results";
/// Total score, one decimal.
pub const X_SCORE: &str = "X-Spoofguard-Score";
/// `accept`, `tag`, `quarantine` or `reject`.
pub const X_VERDICT: &str = "X-Spoofguard-Verdict";
/// Reason codes with weight and detail.
pub const X_REASONS: &str = "X-Spoofguard-Reasons";
/// Our headers that are removed when they arrive from outside.
pub const OWN_X_HEADERS: [&str; 3] = [X_SCORE, X_VERDICT, X_REASONS];

/// The line length we fold at (RFC 5322, section 2.1.1 recommends 78).
const FOLD_AT: usize = 78;
/// Longest detail kept per reason.
const MAX_DETAIL: usize = 160;

/// Printable ASCII only; anything else becomes `?`, and characters that are special in
/// RFC 8601 values become `_`. Bounded to `max` bytes.
pub fn sanitize(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max));
    for c in text.chars() {
        if out.len() >= max {
            break;
        }
        out.push(match c {
            ';' | '(' | ')' | '\\' | '"' => '_',
            ' '..='~' => c,
            '\t' | '\r' | '\n' => ' ',
            _ => '?',
        });
    }
    out
}

/// Printable ASCII on one line, for SMTP reply texts and quarantine reasons: control and
/// non-ASCII characters become `?`, line breaks spaces. Bounded to `max` bytes.
pub fn one_line(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max));
    for c in text.chars() {
        if out.len() >= max {
            break;
        }
        out.push(match c {
            ' '..='~' => c,
            '\t' | '\r' | '\n' => ' ',
            _ => '?',
        });
    }
    out
}

/// A token usable as an RFC 8601 property value (no spaces or specials).
fn token(text: &str) -> String {
    let mut t = sanitize(text, 255).replace(' ', "_");
    if t.is_empty() {
        t.push_str("unknown");
    }
    t
}

/// The value of our Authentication-Results header, folded one method per line:
/// `id;\n\tspf=…;\n\tdkim=…;\n\tarc=…;\n\tdmarc=…`. `disposition` is what we did with a
/// DMARC failure (`dis=` in the DMARC comment); `policy.dmarc` is the domain's policy.
pub fn authentication_results(
    authserv_id: &str,
    v: &AuthVerdicts,
    disposition: DmarcPolicy,
) -> String {
    let mut parts = Vec::with_capacity(3 + v.dkim.len());
    let mut spf = format!("spf={}", v.spf.result);
    if let Some(c) = &v.spf.comment {
        spf.push_str(&format!(" ({})", sanitize(c, 80)));
    }
    parts.push(match &v.spf.identity {
        SpfIdentity::MailFrom(addr) => format!("{spf} smtp.mailfrom={}", token(addr)),
        SpfIdentity::Helo(helo) => format!("{spf} smtp.helo={}", token(helo)),
    });
    if v.dkim.is_empty() {
        parts.push("dkim=none".into());
    }
    for d in &v.dkim {
        let mut s = format!("dkim={}", d.result);
        if let Some(c) = &d.comment {
            s.push_str(&format!(" ({})", sanitize(c, 80)));
        }
        if !d.domain.is_empty() {
            s.push_str(&format!(
                " header.d={} header.s={} header.a={} header.b={}",
                token(&d.domain),
                token(&d.selector),
                token(&d.algorithm),
                token(&d.b)
            ));
        }
        parts.push(s);
    }
    parts.push(format!("arc={}", v.arc.result));
    let mut dmarc = format!("dmarc={}", v.dmarc.result);
    if let Some(p) = v.dmarc.policy {
        let dis = if v.dmarc.result == AuthResult::Fail {
            disposition
        } else {
            DmarcPolicy::None
        };
        dmarc.push_str(&format!(" (p={} dis={})", p.as_str(), dis.as_str()));
    }
    if !v.dmarc.from_domain.is_empty() {
        dmarc.push_str(&format!(" header.from={}", token(&v.dmarc.from_domain)));
    }
    // RFC 9989, section 9.1: the policy evaluated for the domain (after sp, np and t=y).
    if let Some(p) = v.dmarc.policy {
        dmarc.push_str(&format!(" policy.dmarc={}", p.as_str()));
    }
    parts.push(dmarc);
    format!("{};\n\t{}", token(authserv_id), parts.join(";\n\t"))
}

/// Our header value without folding, for JSON and logs.
pub fn unfold(value: &str) -> String {
    value.replace("\n\t", " ").replace("\r\n", "")
}

/// `X-Spoofguard-Score` value.
pub fn score_value(score: f64) -> String {
    format!("{score:.1}")
}

/// `X-Spoofguard-Reasons` value: `none`, or `CODE=+W.W (detail); …` folded at 78 columns
/// between reasons.
pub fn reasons_value(reasons: &[Reason]) -> String {
    if reasons.is_empty() {
        return "none".into();
    }
    let items: Vec<String> = reasons
        .iter()
        .map(|r| {
            let mut s = format!("{}={:+.1}", token(&r.code), r.weight);
            let detail = sanitize(&r.detail, MAX_DETAIL);
            if !detail.trim().is_empty() {
                s.push_str(&format!(" ({})", detail.trim()));
            }
            s
        })
        .collect();
    fold(X_REASONS.len() + 2, &items, ";")
}

/// Joins `items` with `sep` + space, starting a new "\n\t" line when the current one would
/// pass 78 columns. `first_line_used` counts the header name and ": ".
fn fold(first_line_used: usize, items: &[String], sep: &str) -> String {
    let mut out = String::new();
    let mut col = first_line_used;
    for (i, item) in items.iter().enumerate() {
        let last = i + 1 == items.len();
        let piece = if last {
            item.clone()
        } else {
            format!("{item}{sep}")
        };
        if i > 0 {
            if col + 1 + piece.len() > FOLD_AT {
                out.push_str("\n\t");
                col = 8;
            } else {
                out.push(' ');
                col += 1;
            }
        }
        out.push_str(&piece);
        col += piece.len();
    }
    out
}

/// The authserv-id an Authentication-Results value claims (RFC 8601, section 2.2), lowercase.
pub fn authserv_id_of(value: &str) -> Option<String> {
    let mut rest = value.trim_start();
    // Skip leading comments, which CFWS allows.
    while let Some(r) = rest.strip_prefix('(') {
        let end = r.find(')')?;
        rest = r[end + 1..].trim_start();
    }
    let id = if let Some(r) = rest.strip_prefix('"') {
        &r[..r.find('"')?]
    } else {
        let end = rest
            .find(|c: char| c == ';' || c.is_whitespace() || c == '(')
            .unwrap_or(rest.len());
        &rest[..end]
    };
    (!id.is_empty()).then(|| id.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{ArcVerdict, DkimVerdict, DmarcVerdict, SpfVerdict};

    fn verdicts() -> AuthVerdicts {
        AuthVerdicts {
            spf: SpfVerdict {
                result: AuthResult::Pass,
                identity: SpfIdentity::MailFrom("alice@sender.example".into()),
                domain: "sender.example".into(),
                comment: None,
            },
            dkim: vec![DkimVerdict {
                result: AuthResult::Pass,
                domain: "sender.example".into(),
                selector: "sel1".into(),
                algorithm: "ed25519-sha256".into(),
                b: "AbCd+/12".into(),
                comment: None,
            }],
            arc: ArcVerdict {
                result: AuthResult::None,
                sets: 0,
                chain: Vec::new(),
            },
            dmarc: DmarcVerdict {
                result: AuthResult::Pass,
                from_domain: "sender.example".into(),
                policy: Some(DmarcPolicy::Reject),
                testing: false,
                record: None,
                other_authors: Vec::new(),
            },
        }
    }

    #[test]
    fn authentication_results_has_one_method_per_line() {
        assert_eq!(
            authentication_results("mx.test", &verdicts(), DmarcPolicy::None),
            "mx.test;\n\tspf=pass smtp.mailfrom=alice@sender.example;\n\t\
             dkim=pass header.d=sender.example header.s=sel1 header.a=ed25519-sha256 header.b=AbCd+/12;\n\t\
             arc=none;\n\tdmarc=pass (p=reject dis=none) header.from=sender.example policy.dmarc=reject"
        );
    }

    #[test]
    fn authentication_results_puts_the_spf_comment_after_the_result() {
        let mut v = verdicts();
        v.spf.result = AuthResult::PermError;
        v.spf.comment = Some("too many void lookups".into());
        let ar = authentication_results("mx.test", &v, DmarcPolicy::None);
        assert!(
            ar.starts_with(
                "mx.test;\n\tspf=permerror (too many void lookups) smtp.mailfrom=alice@sender.example;\n\t"
            ),
            "{ar}"
        );
        v.spf.identity = SpfIdentity::Helo("mail.sender.example".into());
        let ar = authentication_results("mx.test", &v, DmarcPolicy::None);
        assert!(
            ar.starts_with(
                "mx.test;\n\tspf=permerror (too many void lookups) smtp.helo=mail.sender.example;\n\t"
            ),
            "{ar}"
        );
    }

    #[test]
    fn authentication_results_neutralises_hostile_values() {
        let mut v = verdicts();
        v.spf.identity = SpfIdentity::Helo("evil;\r\nX-Injected: yes (x)".into());
        v.dkim.clear();
        v.dmarc.policy = None;
        v.dmarc.result = AuthResult::None;
        let ar = authentication_results("mx.test", &v, DmarcPolicy::None);
        assert_eq!(
            ar,
            "mx.test;\n\tspf=pass smtp.helo=evil___X-Injected:_yes__x_;\n\tdkim=none;\n\t\
             arc=none;\n\tdmarc=none header.from=sender.example"
        );
    }

    #[test]
    fn reasons_fold_at_78_columns_between_reasons() {
        let r = |code: &str, w: f64, d: &str| Reason {
            code: code.into(),
            weight: w,
            detail: d.into(),
            brand: None,
        };
        let value = reasons_value(&[
            r(
                "LOOKALIKE_BRAND_TOKEN",
                12.0,
                "microsoft-securityprotection-support.xyz ~ Microsoft",
            ),
            r("DISPLAY_NAME_BRAND", 6.0, "display name claims Microsoft"),
            r("SPF_FAIL", 1.0, ""),
        ]);
        assert_eq!(
            value,
            "LOOKALIKE_BRAND_TOKEN=+12.0 (microsoft-securityprotection-support.xyz ~ Microsoft);\n\t\
             DISPLAY_NAME_BRAND=+6.0 (display name claims Microsoft); SPF_FAIL=+1.0"
        );
        for line in format!("{X_REASONS}: {value}").split("\n\t") {
            assert!(line.len() <= 78 || !line.contains("; "), "{line}");
        }
        assert_eq!(reasons_value(&[]), "none");
        let hostile = reasons_value(&[r("X", 1.0, "a\r\nBcc: victim@example.com")]);
        assert_eq!(hostile, "X=+1.0 (a  Bcc: victim@example.com)");
    }

    #[test]
    fn authserv_id_of_reads_token_quoted_and_commented_forms() {
        assert_eq!(authserv_id_of(" MX.Test; spf=pass"), Some("mx.test".into()));
        assert_eq!(authserv_id_of("mx.test 1; none"), Some("mx.test".into()));
        assert_eq!(
            authserv_id_of("(c) \"mx.test\"; none"),
            Some("mx.test".into())
        );
        assert_eq!(authserv_id_of("mx.test;"), Some("mx.test".into()));
        assert_eq!(authserv_id_of("   "), None);
        assert_eq!(authserv_id_of("(unclosed"), None);
    }
}
