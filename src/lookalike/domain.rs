//! Sender-domain signals: is this domain a lookalike of a brand in the catalogue?
//!
//! The registrable domain (PSL) is split into its first label (the "name", e.g. `paypa1` in
//! `paypa1.co.jp`) and the subdomain labels. The name is compared with brand tokens by exact
//! text (other TLD), lowercase UTS #39 skeleton (homoglyphs), token containment (brand plus
//! phishing vocabulary) and Damerau-Levenshtein distance on skeletons (typos); the subdomain
//! labels are searched for brand domains and tokens. Each brand keeps only its strongest finding.

use super::brands::{Catalogue, letter_mask};
use super::skeleton::skel;
use super::{Finding, ascii_detail, weight};
use crate::domain::normalize_domain;
use unicode_security::MixedScript;

/// Tokens shorter than this match an all-ASCII label by skeleton only when equal to it.
const MIN_SKELETON_ASCII_LEN: usize = 4;

/// Whole-word tokens shorter than this give no `LOOKALIKE_OTHER_TLD` (`line.com`, `sony.tv`).
const MIN_OTHER_TLD_WORD_LEN: usize = 5;

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

/// Kinds of domain finding, preferred first within equal weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Skeleton,
    OtherTld,
    BrandToken,
    BrandSubdomain,
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
        // Higher weight wins; on a tie, the kind listed first in `Kind` (more specific).
        let better = slot.is_none_or(|old| {
            let (o, n) = (weight(old.code()), weight(kind.code()));
            n > o || (n == o && (kind as u8) < (old as u8))
        });
        if better {
            *slot = Some(kind);
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

/// The most vocabulary words `s` splits into (`securelogin` → 2, `` → 0), `None` if it does not.
fn vocabulary_words(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut best: Vec<Option<usize>> = vec![None; b.len() + 1];
    best[0] = Some(0);
    for i in 0..b.len() {
        let Some(n) = best[i] else {
            continue;
        };
        for v in VOCABULARY.iter().chain(SHORT_VOCABULARY) {
            if b[i..].starts_with(v.as_bytes()) {
                let slot = &mut best[i + v.len()];
                *slot = Some(slot.map_or(n + 1, |m| m.max(n + 1)));
            }
        }
    }
    best[b.len()]
}

/// The registrable domain's first label against every token.
fn analyze_name(name: &str, cat: &Catalogue, best: &mut Best) {
    // Exactly a token: the brand's name on a TLD it does not own. Nothing fuzzier applies then:
    // `paypay` is PayPay on another TLD, not a typo of PayPal.
    // Short whole-word tokens (`line`, `visa`, `sony`) are too common on other TLDs to count.
    if let Some(tis) = cat.token_by_text.get(name) {
        for &ti in tis {
            let t = &cat.tokens[ti];
            if !t.word || t.text.len() >= MIN_OTHER_TLD_WORD_LEN {
                best.offer(t.brand, Kind::OtherTld);
            }
        }
        return;
    }
    let name_skel = skel(name);
    let mut exact_skel = false;
    if let Some(tis) = cat.token_by_skel.get(&name_skel) {
        for &ti in tis {
            // Short tokens have ASCII skeleton twins that are other names (`1mg` ~ `ing`, `fmb`
            // ~ `fnb`, `curl` ~ `evri`, `imps` ~ `inps`): for three letters only a homoglyph
            // from another script counts, for four a digit (`v1sa`) does too.
            let t = &cat.tokens[ti];
            let short = t.text.len() < MIN_SKELETON_ASCII_LEN
                || (t.text.len() == MIN_SKELETON_ASCII_LEN
                    && !name.bytes().any(|b| b.is_ascii_digit()));
            if short && name.is_ascii() {
                continue;
            }
            exact_skel = true;
            best.offer(t.brand, Kind::Skeleton);
        }
    }
    let parts: Vec<&str> = name.split('-').filter(|p| !p.is_empty()).collect();
    let flat: String = parts.concat();
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

    // Distinctive tokens inside the label (on skeletons, so homoglyphs inside longer labels count),
    // with and without its hyphens (`smbc-card0` holds `smbccard`).
    let joined_skel = if parts.len() > 1 {
        skel(&parts.concat())
    } else {
        String::new()
    };
    if let (Some(ac), Some(raw_ac)) = (&cat.token_ac, &cat.token_raw_ac) {
        let hits = ac
            .find_overlapping_iter(&name_skel)
            .chain(ac.find_overlapping_iter(&joined_skel))
            .chain(raw_ac.find_overlapping_iter(name))
            .chain(raw_ac.find_overlapping_iter(&flat));
        for m in hits {
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
            } else if flat.contains(&tok.text) {
                // Split by hyphens only (`micro-soft`).
                Kind::EditDistance
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

    // Word tokens glued to two or more vocabulary words ("applesecurelogin", "myapple-account")
    // or to digits ("apple0"): whole-word tokens can't match inside arbitrary words
    // ("helpline", "checkups"), but these are safe.
    for t in cat.tokens.iter().filter(|t| t.word && t.text.len() >= 4) {
        let Some(pos) = flat.find(&t.text) else {
            continue;
        };
        let (pre, post) = (&flat[..pos], &flat[pos + t.text.len()..]);
        if pre.is_empty() && post.is_empty() {
            continue;
        }
        let digits_only = pre.bytes().chain(post.bytes()).all(|b| b.is_ascii_digit());
        if digits_only {
            if t.text.len() >= 5 {
                best.offer(t.brand, Kind::Embedded);
            }
            continue;
        }
        if let (Some(a), Some(b)) = (vocabulary_words(pre), vocabulary_words(post))
            && a + b >= 2
        {
            best.offer(t.brand, Kind::BrandToken);
        }
    }

    // Whole-word tokens of 5+ letters: only the visually close edits of `near_word`.
    for t in cat.tokens.iter().filter(|t| t.word && t.text.len() >= 5) {
        if near_word(name, &t.text) || (parts.len() > 1 && near_word(&flat, &t.text)) {
            best.offer(t.brand, Kind::EditDistance);
        }
    }

    // Typos: edit distance between skeletons, for distinctive tokens of 6+ characters (two edits from
    // 12), on the whole label and on each hyphen part.
    let mut candidates: Vec<(String, String, bool)> =
        vec![(name.to_owned(), name_skel.clone(), true)];
    if parts.len() > 1 {
        candidates.push((flat.clone(), joined_skel.clone(), true));
        candidates.extend(parts.iter().map(|p| ((*p).to_owned(), skel(p), false)));
    }
    for (raw, cand, whole) in &candidates {
        let (raw_mask, cand_mask) = (letter_mask(raw), letter_mask(cand));
        if cand.len() < 5 {
            continue;
        }
        if !*whole && cat.token_by_text.contains_key(cand.as_str()) {
            continue;
        }
        for &ti in &cat.distinctive {
            let tok = &cat.tokens[ti];
            let tl = tok.text.len();
            if tl < 5 || tok.text.contains('-') {
                continue;
            }
            if tl == 5 {
                // Five letters: only doubled letters, dropped doubles and swaps; a free edit
                // would turn `gmail` into `email`.
                if *whole && near_word(raw, &tok.text) {
                    best.offer(tok.brand, Kind::EditDistance);
                }
                continue;
            }
            let max = if tl >= 12 { 2 } else { 1 };
            let bits = (2 * max) as u32;
            let near_skel = cand.len().abs_diff(tok.skel.len()) <= max
                && (cand_mask ^ tok.skel_mask).count_ones() <= bits;
            let near_raw =
                raw.len().abs_diff(tl) <= max && (raw_mask ^ tok.text_mask).count_ones() <= bits;
            if !near_skel && !near_raw {
                continue;
            }
            // Raw text too: the skeleton turns `m` into `rn`, so `icrosoft` is two skeleton edits
            // from `microsoft` but one raw edit.
            let ds = if near_skel {
                edit_distance(cand, &tok.skel)
            } else {
                usize::MAX
            };
            let dr = if near_raw {
                edit_distance(raw, &tok.text)
            } else {
                usize::MAX
            };
            let d = ds.min(dr);
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

/// OSA distance on characters: the byte version for ASCII, strsim's for the rest (a non-ASCII
/// letter left by the skeleton is one edit, not two or three bytes).
fn edit_distance(a: &str, b: &str) -> usize {
    if a.is_ascii() && b.is_ascii() {
        osa_distance(a.as_bytes(), b.as_bytes())
    } else {
        strsim::osa_distance(a, b)
    }
}

/// Optimal-string-alignment distance (Levenshtein plus swaps of neighbours) on bytes. Hot path:
/// called for every token; no allocation for labels up to 63 bytes.
pub(crate) fn osa_distance(a: &[u8], b: &[u8]) -> usize {
    const N: usize = 64;
    if a.len() >= N || b.len() >= N {
        return usize::MAX;
    }
    let (n, m) = (a.len(), b.len());
    // Rows of u8 (distances are < 64) rotated by swapping, not copying.
    let mut rows = [[0u8; N]; 3];
    for (j, v) in rows[1].iter_mut().enumerate().take(m + 1) {
        *v = j as u8;
    }
    let (mut p2, mut p1, mut c) = (2usize, 1usize, 0usize);
    for i in 1..=n {
        rows[c][0] = i as u8;
        for j in 1..=m {
            let cost = u8::from(a[i - 1] != b[j - 1]);
            let mut v = (rows[p1][j] + 1)
                .min(rows[c][j - 1] + 1)
                .min(rows[p1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(rows[p2][j - 2] + 1);
            }
            rows[c][j] = v;
        }
        (p2, p1, c) = (p1, c, p2);
    }
    usize::from(rows[p1][m])
}

/// Whether `label` is `token` with one letter doubled (`appple`), one double letter dropped
/// (`aple`), two neighbours swapped (`aplpe`) or a digit or hyphen inserted (`app1le`): the
/// visually close edits, which rarely make another dictionary word.
fn near_word(label: &str, token: &str) -> bool {
    let (l, t) = (label.as_bytes(), token.as_bytes());
    let one_extra = |long: &[u8], short: &[u8], extra_ok: &dyn Fn(&[u8], usize) -> bool| {
        long.len() == short.len() + 1
            && (0..long.len()).any(|i| {
                extra_ok(long, i) && long[..i] == short[..i] && long[i + 1..] == short[i..]
            })
    };
    let doubled =
        |s: &[u8], i: usize| (i > 0 && s[i - 1] == s[i]) || (i + 1 < s.len() && s[i + 1] == s[i]);
    let inserted = |s: &[u8], i: usize| doubled(s, i) || s[i].is_ascii_digit() || s[i] == b'-';
    if one_extra(l, t, &inserted) || one_extra(t, l, &doubled) {
        return true;
    }
    l.len() == t.len()
        && (0..l.len().saturating_sub(1)).any(|i| {
            l[i] != l[i + 1]
                && l[i] == t[i + 1]
                && l[i + 1] == t[i]
                && l[..i] == t[..i]
                && l[i + 2..] == t[i + 2..]
        })
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
