//! Sender-domain signals: is this domain a lookalike of a brand in the catalogue?
//!
//! The registrable domain (PSL) is split into its first label (the "name", e.g. `paypa1` in
//! `paypa1.co.jp`) and the subdomain labels. The name is compared with brand tokens by exact
//! text (other TLD), lowercase UTS #39 skeleton (homoglyphs), token containment (brand plus
//! phishing vocabulary) and Damerau-Levenshtein distance on skeletons (typos); the subdomain
//! labels are searched for brand domains and tokens. Each brand keeps only its strongest finding.

use super::brands::{Catalogue, normalize_domain};
use super::skeleton::skel;
use super::{Finding, ascii_detail, weight};
use unicode_security::MixedScript;

/// Subdomain labels looked at (the rightmost ones); deeper labels are ignored.
const MAX_SUB_LABELS: usize = 10;

/// Words that phishing domains put next to a brand token. Matched as substrings of a label part
/// when at least 4 characters long, as whole hyphen-separated parts when shorter.
const VOCABULARY: &[&str] = &[
    "account",
    "alert",
    "auth",
    "billing",
    "bonus",
    "center",
    "centre",
    "check",
    "claim",
    "client",
    "confirm",
    "customer",
    "delivery",
    "device",
    "document",
    "drive",
    "error",
    "fraud",
    "gift",
    "help",
    "identity",
    "info",
    "invoice",
    "locked",
    "login",
    "logon",
    "mail",
    "member",
    "notice",
    "notif",
    "official",
    "online",
    "order",
    "parcel",
    "password",
    "payment",
    "point",
    "portal",
    "prize",
    "protect",
    "recover",
    "redeliver",
    "refund",
    "renew",
    "reset",
    "reward",
    "safe",
    "secure",
    "security",
    "service",
    "shipping",
    "signin",
    "sign-in",
    "status",
    "support",
    "suspend",
    "team",
    "ticket",
    "track",
    "unlock",
    "update",
    "user",
    "valid",
    "verif",
    "wallet",
    "warning",
    "webmail",
];

/// Short vocabulary, whole hyphen parts only.
const SHORT_VOCABULARY: &[&str] = &[
    "id", "jp", "com", "net", "org", "co", "app", "web", "pay", "sso", "mfa", "2fa", "otp", "my",
    "card", "bank", "cs", "sec", "kyc", "www", "faq",
];

/// Kinds of domain finding, strongest first within equal weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Skeleton,
    OtherTld,
    BrandSubdomain,
    BrandToken,
    EditDistance,
    Embedded,
}

impl Kind {
    fn code(self) -> &'static str {
        match self {
            Kind::Skeleton => "LOOKALIKE_SKELETON",
            Kind::OtherTld => "LOOKALIKE_OTHER_TLD",
            Kind::BrandSubdomain => "LOOKALIKE_BRAND_SUBDOMAIN",
            Kind::BrandToken => "LOOKALIKE_BRAND_TOKEN",
            Kind::EditDistance => "LOOKALIKE_EDIT_DISTANCE",
            Kind::Embedded => "LOOKALIKE_BRAND_EMBEDDED",
        }
    }
}

/// Best finding so far for each brand.
struct Best {
    per_brand: Vec<Option<Kind>>,
}

impl Best {
    fn offer(&mut self, brand: usize, kind: Kind) {
        let slot = &mut self.per_brand[brand];
        match slot {
            Some(old) if weight(old.code()) >= weight(kind.code()) => {}
            _ => *slot = Some(kind),
        }
    }
}

/// Signals for one domain; see [`super::check_domain`].
pub fn check(domain: &str, cat: &Catalogue) -> Vec<Finding> {
    let Some(ascii) = normalize_domain(domain) else {
        return Vec::new();
    };
    if cat.is_allowed(&ascii) || cat.owner_index(&ascii).is_some() {
        return Vec::new();
    }
    let reg = psl::domain_str(&ascii).unwrap_or(&ascii);
    let Some((name_ascii, _suffix)) = reg.split_once('.') else {
        return Vec::new();
    };
    let sub_ascii = ascii.strip_suffix(reg).unwrap_or("").trim_end_matches('.');
    let mut subs: Vec<&str> = if sub_ascii.is_empty() {
        Vec::new()
    } else {
        sub_ascii.split('.').collect()
    };
    if subs.len() > MAX_SUB_LABELS {
        subs.drain(..subs.len() - MAX_SUB_LABELS);
    }

    let mut findings = Vec::new();
    let name = to_unicode(name_ascii);
    let subs_u: Vec<String> = subs.iter().map(|l| to_unicode(l)).collect();
    if std::iter::once(&name)
        .chain(subs_u.iter())
        .any(|l| !l.is_ascii() && !l.as_str().is_single_script())
    {
        findings.push(Finding {
            code: "IDN_MIXED_SCRIPT",
            detail: ascii_detail(&format!("{ascii} mixes scripts in one label")),
            brand: None,
        });
    }

    let mut best = Best {
        per_brand: vec![None; cat.brands.len()],
    };
    analyze_name(&name, cat, &mut best);
    if let Some(last) = subs_u.last() {
        // "microsof.t.com": the name split across a dot.
        let joined = format!("{last}{name}");
        let js = skel(&joined);
        if let Some(tis) = cat.token_by_skel.get(&js) {
            for &ti in tis {
                best.offer(cat.tokens[ti].brand, Kind::EditDistance);
            }
        }
    }
    analyze_subdomains(&subs, &subs_u, cat, &mut best);

    let mut per: Vec<(usize, Kind)> = best
        .per_brand
        .iter()
        .enumerate()
        .filter_map(|(b, k)| k.map(|k| (b, k)))
        .collect();
    per.sort_by(|a, b| weight(b.1.code()).total_cmp(&weight(a.1.code())));
    for (b, k) in per {
        let brand = &cat.brands[b];
        findings.push(Finding {
            code: k.code(),
            detail: ascii_detail(&format!("{ascii} ~ {}", brand.primary_domain())),
            brand: Some(brand.name.clone()),
        });
    }
    findings.sort_by(|a, b| weight(b.code).total_cmp(&weight(a.code)));
    findings
}

fn to_unicode(label: &str) -> String {
    if label.starts_with("xn--") {
        let (u, r) = idna::domain_to_unicode(label);
        if r.is_ok() {
            return u;
        }
    }
    label.to_owned()
}

fn has_vocabulary(part: &str) -> bool {
    SHORT_VOCABULARY.contains(&part) || VOCABULARY.iter().any(|v| part.contains(v))
}

/// The registrable domain's first label against every token.
fn analyze_name(name: &str, cat: &Catalogue, best: &mut Best) {
    // Exactly a token: the brand's name on a TLD it does not own. Nothing fuzzier applies then:
    // `paypay` is PayPay on another TLD, not a typo of PayPal.
    if let Some(tis) = cat.token_by_text.get(name) {
        for &ti in tis {
            best.offer(cat.tokens[ti].brand, Kind::OtherTld);
        }
        return;
    }
    let name_skel = skel(name);
    let mut exact_skel = false;
    if let Some(tis) = cat.token_by_skel.get(&name_skel) {
        exact_skel = true;
        for &ti in tis {
            best.offer(cat.tokens[ti].brand, Kind::Skeleton);
        }
    }
    let parts: Vec<&str> = name.split('-').filter(|p| !p.is_empty()).collect();
    if parts.len() > 1 {
        let joined: String = parts.concat();
        if let Some(tis) = cat.token_by_text.get(&joined) {
            for &ti in tis {
                best.offer(cat.tokens[ti].brand, Kind::EditDistance);
            }
        } else if let Some(tis) = cat.token_by_skel.get(&skel(&joined)) {
            for &ti in tis {
                best.offer(cat.tokens[ti].brand, Kind::Skeleton);
            }
        }
    }
    if exact_skel {
        return;
    }

    // Distinctive tokens inside the label (on skeletons, so homoglyphs inside longer labels count).
    if let Some(ac) = &cat.token_ac {
        for m in ac.find_overlapping_iter(&name_skel) {
            let ti = cat.distinctive[m.pattern().as_usize()];
            let tok = &cat.tokens[ti];
            let kind = if let Some(pos) = name.find(&tok.text) {
                let before = &name[..pos];
                let after = &name[pos + tok.text.len()..];
                let bounded = before.is_empty() || before.ends_with('-');
                let bounded = bounded && (after.is_empty() || after.starts_with('-'));
                let rest = format!("{before}-{after}");
                let vocab = rest
                    .split('-')
                    .filter(|p| !p.is_empty())
                    .any(has_vocabulary);
                if vocab || (bounded && parts.len() > 1) {
                    Kind::BrandToken
                } else {
                    Kind::Embedded
                }
            } else {
                Kind::Skeleton
            };
            best.offer(tok.brand, kind);
        }
    }

    // Word tokens: a whole hyphen part next to phishing vocabulary ("apple-id-verify").
    if parts.len() > 1 {
        for (pi, p) in parts.iter().enumerate() {
            let ps = skel(p);
            let Some(tis) = cat.token_by_skel.get(&ps) else {
                continue;
            };
            let vocab = parts
                .iter()
                .enumerate()
                .any(|(j, q)| j != pi && has_vocabulary(q));
            if !vocab {
                continue;
            }
            for &ti in tis {
                let tok = &cat.tokens[ti];
                let kind = if *p == tok.text {
                    Kind::BrandToken
                } else {
                    Kind::Skeleton
                };
                best.offer(tok.brand, kind);
            }
        }
    }

    // Typos: edit distance between skeletons, for distinctive tokens of 6+ characters, on the
    // whole label and on each hyphen part.
    let mut candidates: Vec<(String, bool)> = vec![(name_skel.clone(), true)];
    if parts.len() > 1 {
        candidates.extend(parts.iter().map(|p| (skel(p), false)));
    }
    for (cand, whole) in &candidates {
        if cand.len() < 5 {
            continue;
        }
        if !*whole && cat.token_by_text.contains_key(cand.as_str()) {
            continue;
        }
        for &ti in &cat.distinctive {
            let tok = &cat.tokens[ti];
            let tl = tok.text.len();
            if tl < 6 || tok.text.contains('-') {
                continue;
            }
            let max = if tl >= 9 { 2 } else { 1 };
            if cand.len().abs_diff(tok.skel.len()) > max {
                continue;
            }
            let d = strsim::damerau_levenshtein(cand, &tok.skel);
            // d == 0 was handled above (exact skeleton, containment or hyphen part).
            if d > 0 && d <= max {
                let kind = if *whole || parts.iter().any(|p| has_vocabulary(p)) {
                    Kind::EditDistance
                } else {
                    Kind::Embedded
                };
                best.offer(tok.brand, kind);
            }
        }
    }
}

/// Brand domains and distinctive tokens in the subdomain labels (`microsoft.com.verify.net`).
fn analyze_subdomains(subs: &[&str], subs_u: &[String], cat: &Catalogue, best: &mut Best) {
    for i in 0..subs.len() {
        for j in i + 1..=subs.len() {
            if j - i < 2 {
                continue;
            }
            let cand = subs[i..j].join(".");
            if let Some(&b) = cat.owner.get(&cand) {
                best.offer(b, Kind::BrandSubdomain);
            }
        }
    }
    let Some(ac) = &cat.token_ac else {
        return;
    };
    for l in subs_u {
        let ls = skel(l);
        for m in ac.find_overlapping_iter(&ls) {
            let tok = &cat.tokens[cat.distinctive[m.pattern().as_usize()]];
            best.offer(tok.brand, Kind::BrandSubdomain);
        }
        if let Some(tis) = cat.token_by_skel.get(&ls) {
            for &ti in tis {
                if !cat.tokens[ti].word {
                    best.offer(cat.tokens[ti].brand, Kind::BrandSubdomain);
                }
            }
        }
    }
}
