//! Extraction of [`MessageFacts`] from a parsed message: From, Reply-To, envelope domain and the
//! links of the bodies. Hrefs are taken from the HTML itself, because mail-parser's text
//! conversion drops them (CRATES.md §2.3). Everything is bounded and never panics.

use super::{Link, MessageFacts};
use crate::domain::normalize_domain;
use regex::Regex;
use std::sync::LazyLock;

/// Links kept per message unless `[lookalike] max_links` says otherwise (the rest are ignored).
/// The default is config's, so that config imports nothing from here.
pub const MAX_LINKS: usize = crate::config::raw::DEFAULT_MAX_LINKS;
/// At most this many body parts are scanned.
pub const MAX_BODIES: usize = 8;
/// At most this many bytes of each body are scanned.
pub const MAX_BODY_SCAN_BYTES: usize = 512 * 1024;
/// At most this many Reply-To addresses are kept.
pub const MAX_REPLY_TO: usize = 10;

static ANCHOR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?is)<a\b[^>]*?\bhref\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))[^>]*>(.*?)</a\s*>"#)
        .expect("the anchor pattern is a valid regex")
});
static URL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?i)\bhttps?://[^\s"'<>()\[\]{}]+"#).expect("the URL pattern is a valid regex")
});
static TAG: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?s)<[^>]*>").expect("the tag pattern is a valid regex"));
static BARE_DOMAIN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^(?:www\.)?[\p{L}\p{N}-]+(?:\.[\p{L}\p{N}-]+)+/?$")
        .expect("the bare-domain pattern is a valid regex")
});

/// Domain of an address `local@domain`, normalised.
pub fn address_domain(addr: &str) -> Option<String> {
    let addr = addr.trim().trim_start_matches('<').trim_end_matches('>');
    let (_, d) = addr.rsplit_once('@')?;
    normalize_domain(d)
}

/// Host of an `http(s)://` URL, normalised; userinfo (`https://bank.com@evil.net/`) is skipped.
pub fn url_domain(url: &str) -> Option<String> {
    let url = url.trim();
    let lower_prefix: String = url.chars().take(8).collect::<String>().to_ascii_lowercase();
    let rest = if lower_prefix.starts_with("https://") {
        &url[8..]
    } else if lower_prefix.starts_with("http://") {
        &url[7..]
    } else if lower_prefix.starts_with("//") {
        &url[2..]
    } else {
        return None;
    };
    let authority = rest.split(['/', '?', '#', '\\']).next().unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or("");
    let host = if host.starts_with('[') {
        return None;
    } else {
        host.split(':').next().unwrap_or("")
    };
    if host.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    normalize_domain(&decode_entities(host))
}

/// The few entities that matter for hosts and anchor text.
fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_owned();
    }
    s.replace("&amp;", "&")
        .replace("&#46;", ".")
        .replace("&#x2e;", ".")
        .replace("&period;", ".")
        .replace("&nbsp;", " ")
        .replace("&#47;", "/")
        .replace("&sol;", "/")
        .replace("&colon;", ":")
        .replace("&#58;", ":")
}

/// The domain an anchor text shows, if the text looks like a URL or a bare domain.
pub fn text_domain(text: &str) -> Option<String> {
    let t = decode_entities(&TAG.replace_all(text, " "));
    let t = t.trim();
    if t.is_empty() || t.len() > 2000 {
        return None;
    }
    if let Some(m) = URL.find(t) {
        return url_domain(m.as_str());
    }
    if BARE_DOMAIN.is_match(t) {
        let d = normalize_domain(t.trim_end_matches('/'))?;
        let known = psl::suffix(d.as_bytes()).is_some_and(|s| s.is_known());
        return known.then_some(d);
    }
    None
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Adds the links of one HTML (or converted text) body, up to `max_links` in all.
pub fn scan_body(body: &str, links: &mut Vec<Link>, max_links: usize) {
    let body = truncate(body, MAX_BODY_SCAN_BYTES);
    let push = |link: Link, links: &mut Vec<Link>| {
        if links.len() < max_links && !links.contains(&link) {
            links.push(link);
        }
    };
    let mut covered = Vec::new();
    for c in ANCHOR.captures_iter(body) {
        if links.len() >= max_links {
            return;
        }
        if let Some(m) = c.get(0) {
            covered.push(m.range());
        }
        let href = c
            .get(1)
            .or_else(|| c.get(2))
            .or_else(|| c.get(3))
            .map_or("", |m| m.as_str());
        let Some(href_domain) = url_domain(&decode_entities(href)) else {
            continue;
        };
        let text_domain = c.get(4).and_then(|m| text_domain(m.as_str()));
        push(
            Link {
                href_domain,
                text_domain,
            },
            links,
        );
    }
    for m in URL.find_iter(body) {
        if links.len() >= max_links {
            return;
        }
        if covered.iter().any(|r| r.contains(&m.start())) {
            continue;
        }
        if let Some(href_domain) = url_domain(m.as_str()) {
            push(
                Link {
                    href_domain,
                    text_domain: None,
                },
                links,
            );
        }
    }
}

/// See [`super::facts_from_message`].
pub fn facts(
    msg: &mail_parser::Message<'_>,
    envelope_from: &str,
    max_links: usize,
) -> MessageFacts {
    let mut facts = MessageFacts::default();
    if let Some(from) = msg.from()
        && let Some(mb) = from.first()
    {
        facts.display_name = mb
            .name()
            .map(|n| truncate(n.trim(), 1024).to_owned())
            .filter(|n| !n.is_empty());
        if let Some(a) = mb.address() {
            let a = truncate(a.trim(), 1024);
            facts.from_domain = address_domain(a);
            facts.from_address = Some(a.to_owned());
        }
    }
    if let Some(rt) = msg.reply_to() {
        facts.reply_to = rt
            .mailboxes()
            .filter_map(|m| m.address())
            .take(MAX_REPLY_TO)
            .map(|a| truncate(a.trim(), 1024).to_owned())
            .collect();
    }
    facts.envelope_domain = address_domain(envelope_from);
    let mut links = Vec::new();
    for body in msg.html_bodies().take(MAX_BODIES) {
        scan_body(&body, &mut links, max_links);
    }
    facts.links = links;
    facts
}
