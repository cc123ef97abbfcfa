//! Message-level signals: display name, Reply-To, envelope, links and the interaction with
//! DMARC. Domain signals of the From domain are included as they are (their own codes).

use super::brands::{Catalogue, parents};
use super::display::{alias_words, compact};
use super::links::address_domain;
use super::{AuthContext, Finding, MessageFacts, ascii_detail, check_domain, weight};
use crate::domain::normalize_domain;
use regex::Regex;
use std::collections::HashSet;
use std::sync::LazyLock;

/// Free-mail providers (registrable domains or mail hosts), for `REPLY_TO_FREEMAIL`.
const FREEMAIL: &[&str] = &[
    "gmail.com",
    "googlemail.com",
    "yahoo.com",
    "yahoo.co.jp",
    "ymail.com",
    "rocketmail.com",
    "yahoo.co.uk",
    "yahoo.fr",
    "yahoo.de",
    "outlook.com",
    "outlook.jp",
    "hotmail.com",
    "hotmail.co.jp",
    "hotmail.co.uk",
    "hotmail.fr",
    "live.com",
    "live.jp",
    "msn.com",
    "aol.com",
    "icloud.com",
    "me.com",
    "mac.com",
    "mail.ru",
    "inbox.ru",
    "list.ru",
    "bk.ru",
    "yandex.ru",
    "yandex.com",
    "rambler.ru",
    "gmx.com",
    "gmx.net",
    "gmx.de",
    "web.de",
    "mail.com",
    "protonmail.com",
    "proton.me",
    "pm.me",
    "tutanota.com",
    "zoho.com",
    "qq.com",
    "163.com",
    "126.com",
    "sina.com",
    "naver.com",
    "hanmail.net",
    "docomo.ne.jp",
    "ezweb.ne.jp",
    "au.com",
    "softbank.ne.jp",
    "i.softbank.jp",
    "excite.co.jp",
    "nifty.com",
    "biglobe.ne.jp",
    "ocn.ne.jp",
    "so-net.ne.jp",
    "goo.jp",
    "infoseek.jp",
    "rediffmail.com",
    "yopmail.com",
];

static EMBEDDED_ADDRESS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[\p{L}\p{N}._%+-]+@([\p{L}\p{N}-]+(?:\.[\p{L}\p{N}-]+)+)")
        .expect("the address pattern is a valid regex")
});
static EMBEDDED_DOMAIN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:[\p{L}\p{N}-]+\.)+\p{L}[\p{L}\p{N}-]+")
        .expect("the domain pattern is a valid regex")
});

fn reg(d: &str) -> &str {
    psl::domain_str(d).unwrap_or(d)
}

fn is_freemail(d: &str) -> bool {
    parents(d).any(|p| FREEMAIL.contains(&p))
}

/// Whether `a` and `b` are the same organisation: same registrable domain or same brand.
fn related(a: &str, b: &str, cat: &Catalogue) -> bool {
    if reg(a) == reg(b) {
        return true;
    }
    matches!((cat.owner_index(a), cat.owner_index(b)), (Some(x), Some(y)) if x == y)
}

/// Brands a display name claims, in catalogue order.
pub(crate) fn claimed_brands(name: &str, cat: &Catalogue) -> Vec<usize> {
    let mut out = Vec::new();
    let c = compact(name);
    if let Some(ac) = &cat.alias_ac {
        for m in ac.find_overlapping_iter(&c) {
            out.push(cat.alias_brand[m.pattern().as_usize()]);
        }
    }
    let words = alias_words(name);
    for wa in &cat.word_aliases {
        let n = wa.words.len();
        if n > 0 && words.windows(n).any(|w| w == wa.words.as_slice()) {
            out.push(wa.brand);
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// See [`super::check_message`].
pub fn check(facts: &MessageFacts, auth: &AuthContext, cat: &Catalogue) -> Vec<Finding> {
    let mut out = Vec::new();
    let from = facts.from_domain.as_deref().and_then(normalize_domain);
    let from = from.as_deref();
    let from_owner = from.and_then(|d| cat.owner_index(d));
    let from_allowed = from.is_some_and(|d| cat.is_allowed(d));
    let from_label = from.unwrap_or("none");

    // Display name.
    let claimed = facts
        .display_name
        .as_deref()
        .map(|n| claimed_brands(n, cat))
        .unwrap_or_default();
    let genuine = from.is_some_and(|d| claimed.iter().any(|&b| cat.belongs_to(d, b)));
    let trusted_sender = from_allowed || (auth.dmarc_pass && from_owner.is_some());
    let mut claimed_brand = None;
    if let Some(&b) = claimed.first()
        && !genuine
        && !trusted_sender
    {
        claimed_brand = Some(b);
        let brand = &cat.brands[b];
        out.push(Finding {
            code: "DISPLAY_NAME_BRAND",
            detail: ascii_detail(&format!(
                "display name claims {} but from={from_label}",
                brand.name
            )),
            brand: Some(brand.name.clone()),
        });
    }
    if let (Some(name), Some(fd)) = (facts.display_name.as_deref(), from)
        && let Some(shown) = shown_domain(name, fd, cat)
    {
        out.push(Finding {
            code: "DISPLAY_NAME_ADDRESS",
            detail: ascii_detail(&format!("display name shows {shown} but from={fd}")),
            brand: cat.owner_index(&shown).map(|b| cat.brands[b].name.clone()),
        });
    }

    // The From domain itself.
    if let Some(fd) = from {
        for mut f in check_domain(fd, cat) {
            f.detail = ascii_detail(&format!("from {}", f.detail));
            out.push(f);
        }
        if auth.dmarc_fail
            && !from_allowed
            && let Some(b) = from_owner
        {
            let brand = &cat.brands[b];
            out.push(Finding {
                code: "BRAND_DOMAIN_DMARC_FAIL",
                detail: ascii_detail(&format!("from={fd} is a {} domain, dmarc=fail", brand.name)),
                brand: Some(brand.name.clone()),
            });
        }
    }

    // Reply-To and envelope.
    if let Some(fd) = from {
        let mut freemail = None;
        let mut mismatch = None;
        for r in &facts.reply_to {
            let Some(rd) = address_domain(r) else {
                continue;
            };
            if related(&rd, fd, cat) {
                continue;
            }
            if is_freemail(&rd) && !is_freemail(fd) {
                freemail.get_or_insert(rd);
            } else {
                mismatch.get_or_insert(rd);
            }
        }
        if let Some(rd) = freemail {
            out.push(Finding {
                code: "REPLY_TO_FREEMAIL",
                detail: ascii_detail(&format!("reply-to {rd} is free mail, from={fd}")),
                brand: None,
            });
        } else if let Some(rd) = mismatch {
            out.push(Finding {
                code: "REPLY_TO_MISMATCH",
                detail: ascii_detail(&format!(
                    "reply-to {} differs from from={}",
                    reg(&rd),
                    reg(fd)
                )),
                brand: None,
            });
        }
        if let Some(ed) = facts.envelope_domain.as_deref().and_then(normalize_domain)
            && !related(&ed, fd, cat)
        {
            out.push(Finding {
                code: "ENVELOPE_MISMATCH",
                detail: ascii_detail(&format!(
                    "envelope {} differs from from={}",
                    reg(&ed),
                    reg(fd)
                )),
                brand: None,
            });
        }
    }

    // Links.
    // Already bounded by `max_links` when the facts were extracted.
    let links = &facts.links;
    let mut seen = HashSet::new();
    let mut worst: Option<Finding> = None;
    let mut lookalikes = 0usize;
    for l in links {
        if !seen.insert(l.href_domain.as_str()) {
            continue;
        }
        let Some(f) = check_domain(&l.href_domain, cat)
            .into_iter()
            .find(|f| f.brand.is_some())
        else {
            continue;
        };
        lookalikes += 1;
        if worst
            .as_ref()
            .is_none_or(|w| weight(f.code) > weight(w.code))
        {
            worst = Some(f);
        }
    }
    if let Some(w) = worst {
        out.push(Finding {
            code: "LINK_LOOKALIKE",
            detail: ascii_detail(&format!(
                "{}, {lookalikes} lookalike link domains",
                w.detail
            )),
            brand: w.brand,
        });
    }
    let mut mismatch: Option<(bool, String, String)> = None;
    for l in links {
        let Some(t) = l.text_domain.as_deref() else {
            continue;
        };
        if related(t, &l.href_domain, cat) {
            continue;
        }
        let branded = cat.owner_index(t).is_some();
        if mismatch.as_ref().is_none_or(|m| branded && !m.0) {
            mismatch = Some((branded, t.to_owned(), l.href_domain.clone()));
        }
    }
    if let Some((_, t, h)) = mismatch {
        out.push(Finding {
            code: "LINK_TEXT_MISMATCH",
            detail: ascii_detail(&format!("link text shows {t} but goes to {h}")),
            brand: cat.owner_index(&t).map(|b| cat.brands[b].name.clone()),
        });
    }
    if let Some(b) = claimed_brand
        && !links.is_empty()
        && links.iter().all(|l| !cat.belongs_to(&l.href_domain, b))
    {
        let brand = &cat.brands[b];
        out.push(Finding {
            code: "BRAND_LINKS_OFFSITE",
            detail: ascii_detail(&format!(
                "claims {} but no link goes to {}",
                brand.name,
                brand.primary_domain()
            )),
            brand: Some(brand.name.clone()),
        });
    }
    out
}

/// A domain shown in the display name (as an address or bare) unrelated to the From domain.
fn shown_domain(name: &str, from: &str, cat: &Catalogue) -> Option<String> {
    let name: String = name.chars().take(512).collect();
    let mut cands: Vec<(String, bool)> = EMBEDDED_ADDRESS
        .captures_iter(&name)
        .filter_map(|c| c.get(1).map(|m| (m.as_str().to_owned(), true)))
        .collect();
    cands.extend(
        EMBEDDED_DOMAIN
            .find_iter(&name)
            .map(|m| (m.as_str().to_owned(), false)),
    );
    for (c, is_addr) in cands {
        let Some(d) = normalize_domain(&c) else {
            continue;
        };
        let known = psl::suffix(d.as_bytes()).is_some_and(|s| s.is_known());
        if !known || (!is_addr && d.split('.').count() < 2) {
            continue;
        }
        if !related(&d, from, cat) {
            return Some(d);
        }
    }
    None
}
