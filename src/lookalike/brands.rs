//! The brand catalogue: the built-in `brands.toml` merged with `[[brand]]` tables from
//! milter.toml, compiled once into lookup tables (skeletons, token automata, alias matchers).
//! Nothing here runs per message except the lookups.

use super::display::{alias_words, compact};
use super::skeleton::skel;
use crate::config::{Issue, LookalikeSettings, RawBrand};
use crate::domain::normalize_domain;
use aho_corasick::{AhoCorasick, MatchKind};
use serde::Deserialize;
use std::collections::{HashMap, HashSet};

/// The built-in catalogue, compiled into the binary.
pub const BUILTIN_BRANDS: &str = include_str!("brands.toml");

/// Tokens shorter than this are matched only as whole words, whatever the catalogue says.
pub const MIN_DISTINCTIVE_TOKEN_LEN: usize = 5;

/// ASCII aliases whose compact form is shorter than this are matched as whole words only.
pub const MIN_SUBSTRING_ALIAS_LEN: usize = 6;

/// Aliases whose compact form (NFKC, lowercase, letters and digits) is shorter than this are
/// refused: one letter or one ideograph claims nothing.
pub const MIN_ALIAS_LEN: usize = 2;

/// Region tags of the built-in catalogue (`region = ...` in brands.toml).
pub const REGIONS: &[&str] = &[
    "global",
    "north-america",
    "south-america",
    "europe",
    "japan",
    "asia-pacific",
    "middle-east-africa",
];

/// Category tags of the built-in catalogue (`category = ...` in brands.toml).
pub const CATEGORIES: &[&str] = &[
    "bank",
    "card",
    "payment",
    "crypto",
    "government",
    "logistics",
    "telecom",
    "retail",
    "tech",
    "social",
    "security",
    "streaming",
    "gaming",
    "travel",
    "utility",
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BuiltinFile {
    /// Legitimate domains of other organisations that contain a brand token (`correos.cl`).
    #[serde(default)]
    pub allow: Vec<BuiltinAllow>,
    pub brand: Vec<BuiltinBrand>,
}

/// `[[allow]]` in brands.toml: a domain that is nobody's brand but looks like one.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BuiltinAllow {
    pub domain: String,
    #[cfg_attr(not(test), allow(dead_code))]
    pub why: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BuiltinBrand {
    pub name: String,
    /// Registrable domains (`psl::domain_str(d) == Some(d)`).
    pub domains: Vec<String>,
    /// Hosts below a public suffix the brand does not own as a whole (`receita.fazenda.gov.br`).
    #[serde(default)]
    pub subdomains: Vec<String>,
    /// Domains of `domains` that another brand lists too, on purpose (`linkedin.com`).
    #[serde(default)]
    #[cfg_attr(not(test), allow(dead_code))]
    pub shared: Vec<String>,
    /// Names on the Public Suffix List that the brand runs for its customers' sites
    /// (`googleapis.com`): the name itself is the brand's, the names under it are not.
    #[serde(default)]
    pub suffixes: Vec<String>,
    pub aliases: Vec<String>,
    pub tokens: Vec<String>,
    pub word_tokens: Vec<String>,
    pub category: String,
    pub region: String,
    /// ISO 3166-1 alpha-2 codes, lowercase, of the markets the brand serves (empty: worldwide).
    #[serde(default)]
    pub countries: Vec<String>,
    pub source: String,
    /// The brand owns its first token on every country-code TLD (`google.com.mx`, `google.li`).
    #[serde(default)]
    pub all_country_tlds: bool,
}

/// Where a brand in effect comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The built-in catalogue, unchanged.
    Builtin,
    /// The built-in catalogue, extended by `[[brand]]` tables.
    Extended,
    /// A `[[brand]]` table alone (a new brand or `mode = "replace"`).
    Config,
}

impl Origin {
    /// `built-in`, `built-in+config` or `config`.
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Builtin => "built-in",
            Origin::Extended => "built-in+config",
            Origin::Config => "config",
        }
    }
}

/// One brand in effect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Brand {
    /// Canonical ASCII name, e.g. `Microsoft`.
    pub name: String,
    /// Registrable domains (lowercase A-labels) the brand really uses; subdomains are implied.
    pub domains: Vec<String>,
    /// Names the brand runs whose subdomains belong to its customers: public suffixes
    /// (`googleapis.com`) or registrable domains (`onmicrosoft.com`). Owned exactly, not with
    /// subdomains.
    pub suffixes: Vec<String>,
    /// Names as users see them, in any script.
    pub aliases: Vec<String>,
    /// Distinctive ASCII label tokens (matched inside labels, by skeleton and edit distance).
    pub tokens: Vec<String>,
    /// Short or dictionary-word tokens (matched only as whole labels or hyphen parts).
    pub word_tokens: Vec<String>,
    /// Category tag, e.g. `bank`; empty for brands from milter.toml.
    pub category: String,
    /// Region tag, e.g. `jp`; empty for brands from milter.toml.
    pub region: String,
    /// Markets (ISO 3166-1 alpha-2, lowercase); empty for worldwide brands and config brands.
    pub countries: Vec<String>,
    /// Where the domains come from; empty for brands from milter.toml.
    pub source: String,
    /// The brand owns `<first token>.<ccTLD>` and `<first token>.<2nd level>.<ccTLD>`.
    pub all_country_tlds: bool,
    /// Built-in, extended by milter.toml, or from milter.toml alone.
    pub origin: Origin,
}

impl Brand {
    /// The domain named in finding details: the first one listed.
    pub fn primary_domain(&self) -> &str {
        self.domains.first().map_or("", String::as_str)
    }
}

/// A compiled label token.
#[derive(Debug)]
pub(crate) struct Token {
    pub brand: usize,
    pub text: String,
    /// Lowercase UTS #39 skeleton of `text`.
    pub skel: String,
    /// Whole-word token: no substring or edit-distance matching.
    pub word: bool,
    /// [`letter_mask`] of `text` and of `skel`, to skip hopeless edit-distance computations.
    pub text_mask: u64,
    pub skel_mask: u64,
}

/// Set of the bytes of `s` (letters and digits each a bit, anything else one shared bit). One
/// edit changes at most two bits, so `popcount(a ^ b) > 2 * k` proves a distance above `k`.
pub(crate) fn letter_mask(s: &str) -> u64 {
    s.bytes().fold(0, |m, b| {
        m | 1u64
            << match b {
                b'a'..=b'z' => b - b'a',
                b'0'..=b'9' => 26 + b - b'0',
                b'-' => 36,
                _ => 37,
            }
    })
}

/// A compiled display-name alias that is matched as a sequence of whole words.
#[derive(Debug)]
pub(crate) struct WordAlias {
    pub brand: usize,
    pub words: Vec<String>,
}

/// The compiled brand catalogue.
#[derive(Debug, Default)]
pub struct Catalogue {
    pub(crate) brands: Vec<Brand>,
    /// Brand domain → brand index.
    pub(crate) owner: HashMap<String, usize>,
    /// Public suffix run by a brand → brand index (the name only, not its subdomains).
    pub(crate) exact: HashMap<String, usize>,
    pub(crate) allow: HashSet<String>,
    pub(crate) tokens: Vec<Token>,
    /// Raw token text → token indexes.
    pub(crate) token_by_text: HashMap<String, Vec<usize>>,
    /// Token skeleton → token indexes.
    pub(crate) token_by_skel: HashMap<String, Vec<usize>>,
    /// Automaton over the skeletons of distinctive tokens; pattern i is `distinctive[i]`.
    pub(crate) token_ac: Option<AhoCorasick>,
    /// The same tokens as written (skeleton folds of letter pairs can hide a token: `lh` → `h`).
    pub(crate) token_raw_ac: Option<AhoCorasick>,
    pub(crate) distinctive: Vec<usize>,
    /// Automaton over compact substring aliases; pattern i is brand `alias_brand[i]`.
    pub(crate) alias_ac: Option<AhoCorasick>,
    pub(crate) alias_brand: Vec<usize>,
    pub(crate) word_aliases: Vec<WordAlias>,
    /// First token → brand, for brands with `all_country_tlds`.
    pub(crate) country: HashMap<String, usize>,
}

/// Working copy of a brand while merging.
struct Draft {
    brand: Brand,
}

impl Catalogue {
    /// Compiles the built-in brands (unless disabled) with the `[[brand]]` tables.
    pub fn build(settings: &LookalikeSettings, raw: &[RawBrand]) -> Result<Self, Vec<Issue>> {
        let mut issues = Vec::new();
        let mut drafts: Vec<Option<Draft>> = Vec::new();
        let mut builtin_allow: Vec<String> = Vec::new();
        if settings.builtin_brands {
            let file = parse_builtin().map_err(|e| vec![e])?;
            for b in file.brand {
                let mut domains = b.domains;
                domains.extend(b.subdomains);
                drafts.push(Some(Draft {
                    brand: Brand {
                        name: b.name,
                        domains,
                        suffixes: b.suffixes,
                        aliases: b.aliases,
                        tokens: b.tokens,
                        word_tokens: b.word_tokens,
                        category: b.category,
                        region: b.region,
                        countries: b.countries,
                        source: b.source,
                        all_country_tlds: b.all_country_tlds,
                        origin: Origin::Builtin,
                    },
                }));
            }
            builtin_allow = file.allow.into_iter().map(|a| a.domain).collect();
        }
        for (i, rb) in raw.iter().enumerate() {
            merge_raw(&mut drafts, i, rb, &mut issues);
        }
        domain_conflicts(&drafts, raw, &mut issues);
        let mut allow: HashSet<String> = builtin_allow.into_iter().collect();
        for (i, d) in settings.allow_domains.iter().enumerate() {
            match normalize_domain(d) {
                Some(d) => {
                    allow.insert(d);
                }
                None => issues.push(Issue::new(
                    format!("lookalike.allow_domains[{i}]"),
                    format!("\"{d}\" is not a domain name"),
                )),
            }
        }
        if !issues.is_empty() {
            return Err(issues);
        }
        let brands: Vec<Brand> = drafts.into_iter().flatten().map(|d| d.brand).collect();
        Ok(compile(brands, allow))
    }

    /// Number of brands in effect.
    pub fn len(&self) -> usize {
        self.brands.len()
    }

    /// Whether no brand is in effect.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The brands in effect, in catalogue order.
    pub fn brands(&self) -> &[Brand] {
        &self.brands
    }

    /// The brand that owns `domain` (equal to or a subdomain of one of its domains).
    pub fn brand_for_domain(&self, domain: &str) -> Option<&Brand> {
        let d = normalize_domain(domain)?;
        self.owner_index(&d).map(|i| &self.brands[i])
    }

    /// Index of the brand owning the normalised domain `d`.
    pub(crate) fn owner_index(&self, d: &str) -> Option<usize> {
        self.exact
            .get(d)
            .copied()
            .or_else(|| parents(d).find_map(|p| self.owner.get(p).copied()))
            .or_else(|| self.country_owner(d))
    }

    /// `google.com.mx` for a brand with `all_country_tlds`.
    fn country_owner(&self, d: &str) -> Option<usize> {
        if self.country.is_empty() {
            return None;
        }
        let reg = psl::domain_str(d)?;
        let (label, suffix) = reg.split_once('.')?;
        let tld = suffix.rsplit('.').next()?;
        let cc = tld.len() == 2 && suffix.split('.').count() <= 2;
        if !cc {
            return None;
        }
        self.country.get(label).copied()
    }

    /// Whether the normalised domain `d` is allow-listed (itself or a parent).
    pub(crate) fn is_allowed(&self, d: &str) -> bool {
        parents(d).any(|p| self.allow.contains(p))
    }

    /// Whether the normalised domain `d` belongs to brand `b`.
    pub(crate) fn belongs_to(&self, d: &str, b: usize) -> bool {
        let brand = &self.brands[b];
        parents(d).any(|p| brand.domains.iter().any(|x| x == p))
            || self.exact.get(d) == Some(&b)
            || self.country_owner(d) == Some(b)
    }
}

/// `a.b.c`, `b.c`, `c`.
/// A domain of a `[[brand]]` table that another brand in effect also claims: ownership would
/// depend on catalogue order, so it is refused (disable or extend the other brand instead).
fn domain_conflicts(drafts: &[Option<Draft>], raw: &[RawBrand], issues: &mut Vec<Issue>) {
    let mut claims: HashMap<&str, Vec<usize>> = HashMap::new();
    for (p, d) in drafts.iter().enumerate() {
        if let Some(d) = d {
            for dom in &d.brand.domains {
                let v = claims.entry(dom.as_str()).or_default();
                if !v.contains(&p) {
                    v.push(p);
                }
            }
        }
    }
    for (i, rb) in raw.iter().enumerate() {
        if rb.mode == "disable" {
            continue;
        }
        let Some(p) = drafts.iter().position(|d| {
            d.as_ref()
                .is_some_and(|d| d.brand.name.eq_ignore_ascii_case(rb.name.trim()))
        }) else {
            continue;
        };
        for (j, dom) in rb.domains.iter().enumerate() {
            let Some(dom) = normalize_domain(dom) else {
                continue;
            };
            let others = claims.get(dom.as_str()).into_iter().flatten();
            if let Some(&q) = others.into_iter().find(|&&q| q != p) {
                let other = drafts[q].as_ref().map_or("", |d| d.brand.name.as_str());
                issues.push(Issue::new(
                    format!("brand[{i}].domains[{j}]"),
                    format!("\"{dom}\" is already a domain of brand \"{other}\""),
                ));
            }
        }
    }
}

pub(crate) fn parents(d: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(d);
    std::iter::from_fn(move || {
        let cur = rest?;
        rest = cur.split_once('.').map(|(_, r)| r);
        Some(cur)
    })
}

pub(crate) fn parse_builtin() -> Result<BuiltinFile, Issue> {
    toml::from_str(BUILTIN_BRANDS).map_err(|e| {
        Issue::new(
            "lookalike.builtin_brands",
            format!("the built-in brand catalogue does not parse (a bug): {e}"),
        )
    })
}

fn merge_raw(drafts: &mut Vec<Option<Draft>>, i: usize, rb: &RawBrand, issues: &mut Vec<Issue>) {
    let key = format!("brand[{i}]");
    let name = rb.name.trim();
    if name.is_empty() || !name.is_ascii() || name.chars().any(|c| c.is_ascii_control()) {
        issues.push(Issue::new(
            format!("{key}.name"),
            format!("\"{}\" must be a non-empty printable ASCII name", rb.name),
        ));
        return;
    }
    let mut domains = Vec::new();
    for (j, d) in rb.domains.iter().enumerate() {
        match normalize_domain(d) {
            Some(d) => domains.push(d),
            None => issues.push(Issue::new(
                format!("{key}.domains[{j}]"),
                format!("\"{d}\" is not a domain name"),
            )),
        }
    }
    let mut aliases = Vec::new();
    for (j, a) in rb.aliases.iter().enumerate() {
        let len = compact(a).chars().count();
        if len == 0 {
            issues.push(Issue::new(
                format!("{key}.aliases[{j}]"),
                format!(
                    "\"{}\" has no letters or digits left after normalisation",
                    a.escape_default()
                ),
            ));
        } else if len < MIN_ALIAS_LEN {
            issues.push(Issue::new(
                format!("{key}.aliases[{j}]"),
                format!(
                    "\"{}\" is shorter than {MIN_ALIAS_LEN} letters or digits after normalisation",
                    a.escape_default()
                ),
            ));
        } else {
            aliases.push(a.clone());
        }
    }
    let existing = drafts.iter().position(|d| {
        d.as_ref()
            .is_some_and(|d| d.brand.name.eq_ignore_ascii_case(name))
    });
    match rb.mode.as_str() {
        "" | "extend" => match existing {
            Some(p) => {
                if let Some(d) = drafts[p].as_mut() {
                    d.brand.domains.extend(domains);
                    d.brand.aliases.extend(aliases);
                    if d.brand.origin == Origin::Builtin {
                        d.brand.origin = Origin::Extended;
                    }
                }
            }
            None => {
                if domains.is_empty() {
                    issues.push(Issue::new(
                        format!("{key}.domains"),
                        format!("new brand \"{name}\" needs at least one domain"),
                    ));
                    return;
                }
                drafts.push(Some(Draft {
                    brand: new_brand(name, domains, aliases),
                }));
            }
        },
        "replace" => {
            if domains.is_empty() {
                issues.push(Issue::new(
                    format!("{key}.domains"),
                    format!("replacing brand \"{name}\" needs at least one domain"),
                ));
                return;
            }
            let b = new_brand(name, domains, aliases);
            match existing {
                Some(p) => drafts[p] = Some(Draft { brand: b }),
                None => drafts.push(Some(Draft { brand: b })),
            }
        }
        "disable" => match existing {
            Some(p) => drafts[p] = None,
            None => issues.push(Issue::new(
                format!("{key}.name"),
                format!("cannot disable \"{name}\": no such brand in effect"),
            )),
        },
        other => issues.push(Issue::new(
            format!("{key}.mode"),
            format!("\"{other}\" must be one of \"\", \"extend\", \"replace\", \"disable\""),
        )),
    }
}

/// A brand from milter.toml: its tokens are the first labels of its domains.
fn new_brand(name: &str, domains: Vec<String>, mut aliases: Vec<String>) -> Brand {
    let mut tokens = Vec::new();
    let mut word_tokens = Vec::new();
    for d in &domains {
        let reg = psl::domain_str(d).unwrap_or(d);
        let label = reg.split('.').next().unwrap_or(reg).to_owned();
        if label.len() >= 6 {
            tokens.push(label);
        } else {
            word_tokens.push(label);
        }
    }
    if !aliases.iter().any(|a| a.eq_ignore_ascii_case(name)) && !compact(name).is_empty() {
        aliases.push(name.to_owned());
    }
    Brand {
        name: name.to_owned(),
        domains,
        suffixes: Vec::new(),
        aliases,
        tokens,
        word_tokens,
        category: String::new(),
        region: String::new(),
        countries: Vec::new(),
        source: String::new(),
        all_country_tlds: false,
        origin: Origin::Config,
    }
}

fn compile(mut brands: Vec<Brand>, allow: HashSet<String>) -> Catalogue {
    let mut owner = HashMap::new();
    let mut exact = HashMap::new();
    for (bi, b) in brands.iter_mut().enumerate() {
        b.domains.dedup();
        for d in &b.domains {
            owner.entry(d.clone()).or_insert(bi);
        }
        for d in &b.suffixes {
            exact.entry(d.clone()).or_insert(bi);
        }
    }
    let mut tokens = Vec::new();
    let mut seen = HashSet::new();
    for (bi, b) in brands.iter().enumerate() {
        let all = b
            .tokens
            .iter()
            .map(|t| (t, false))
            .chain(b.word_tokens.iter().map(|t| (t, true)));
        for (t, word) in all {
            let t = t.trim().to_ascii_lowercase();
            if t.is_empty() || !seen.insert((bi, t.clone())) {
                continue;
            }
            let word = word || t.len() < MIN_DISTINCTIVE_TOKEN_LEN;
            let sk = skel(&t);
            tokens.push(Token {
                brand: bi,
                text_mask: letter_mask(&t),
                skel_mask: letter_mask(&sk),
                skel: sk,
                text: t,
                word,
            });
        }
    }
    let mut token_by_text: HashMap<String, Vec<usize>> = HashMap::new();
    let mut token_by_skel: HashMap<String, Vec<usize>> = HashMap::new();
    let mut distinctive = Vec::new();
    for (ti, t) in tokens.iter().enumerate() {
        token_by_text.entry(t.text.clone()).or_default().push(ti);
        token_by_skel.entry(t.skel.clone()).or_default().push(ti);
        if !t.word {
            distinctive.push(ti);
        }
    }
    let token_ac = AhoCorasick::builder()
        .match_kind(MatchKind::Standard)
        .build(distinctive.iter().map(|&ti| tokens[ti].skel.as_str()))
        .ok();

    let token_raw_ac = AhoCorasick::builder()
        .match_kind(MatchKind::Standard)
        .build(distinctive.iter().map(|&ti| tokens[ti].text.as_str()))
        .ok();

    let mut alias_patterns = Vec::new();
    let mut alias_brand = Vec::new();
    let mut word_aliases = Vec::new();
    for (bi, b) in brands.iter().enumerate() {
        for a in &b.aliases {
            let c = compact(a);
            if c.is_empty() {
                continue;
            }
            if c.is_ascii() && c.chars().count() < MIN_SUBSTRING_ALIAS_LEN {
                word_aliases.push(WordAlias {
                    brand: bi,
                    words: alias_words(a),
                });
            } else {
                alias_patterns.push(c);
                alias_brand.push(bi);
            }
        }
    }
    let alias_ac = AhoCorasick::builder()
        .match_kind(MatchKind::Standard)
        .build(&alias_patterns)
        .ok();
    let mut country = HashMap::new();
    for (bi, b) in brands.iter().enumerate() {
        if let (true, Some(t)) = (
            b.all_country_tlds,
            b.tokens.first().or(b.word_tokens.first()),
        ) {
            country.insert(t.to_ascii_lowercase(), bi);
        }
    }
    Catalogue {
        country,
        brands,
        owner,
        exact,
        allow,
        tokens,
        token_by_text,
        token_by_skel,
        token_ac,
        token_raw_ac,
        distinctive,
        alias_ac,
        alias_brand,
        word_aliases,
    }
}
