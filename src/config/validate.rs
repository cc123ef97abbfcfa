//! `RawConfig` to `Config`: every value checked and typed, every problem collected with its key.

use super::raw::*;
use super::*;
// The matcher's rules, so that a configured domain is one it can produce.
use crate::domain::normalize_domain;

pub(super) fn validate(raw: RawConfig, path: Option<PathBuf>) -> Result<Config, Vec<Issue>> {
    let mut issues = Vec::new();
    let mut bad = |key: &str, message: String| issues.push(Issue::new(key, message));

    // [milter]
    let m = raw.milter;
    let listen = parse_listen(&m.listen).unwrap_or_else(|e| {
        bad("milter.listen", e);
        ListenSpec::Inet(SocketAddr::from(([127, 0, 0, 1], 8891)))
    });
    let socket_mode = u32::from_str_radix(m.socket_mode.trim_start_matches("0o"), 8)
        .ok()
        .filter(|mode| *mode <= 0o777)
        .unwrap_or_else(|| {
            bad(
                "milter.socket_mode",
                format!(
                    "\"{}\" is not an octal file mode such as \"0660\"",
                    m.socket_mode
                ),
            );
            0o660
        });
    if m.max_connections == 0 {
        bad("milter.max_connections", "must be at least 1".into());
    }
    if m.connection_timeout_secs == 0 {
        bad(
            "milter.connection_timeout_secs",
            "must be at least 1".into(),
        );
    }
    let on_error = match m.on_error.as_str() {
        "tempfail" => ErrorAction::Tempfail,
        "accept" => ErrorAction::Accept,
        "reject" => ErrorAction::Reject,
        other => {
            bad(
                "milter.on_error",
                format!("\"{other}\" is not one of \"tempfail\", \"accept\", \"reject\""),
            );
            ErrorAction::Tempfail
        }
    };
    if m.max_message_bytes < 1024 {
        bad(
            "milter.max_message_bytes",
            format!("{} is too small (at least 1024)", m.max_message_bytes),
        );
    }
    if m.max_headers == 0 || m.max_headers > 100_000 {
        bad(
            "milter.max_headers",
            format!("{} is out of range (1 to 100000)", m.max_headers),
        );
    }
    if m.max_header_bytes < 1024 {
        bad(
            "milter.max_header_bytes",
            format!("{} is too small (at least 1024)", m.max_header_bytes),
        );
    }
    if m.max_mime_depth < 2 || m.max_mime_depth > 64 {
        bad(
            "milter.max_mime_depth",
            format!("{} is out of range (2 to 64)", m.max_mime_depth),
        );
    }
    if m.max_mime_parts < 2 || m.max_mime_parts > 100_000 {
        bad(
            "milter.max_mime_parts",
            format!("{} is out of range (2 to 100000)", m.max_mime_parts),
        );
    }
    if m.message_timeout_secs == 0 {
        bad("milter.message_timeout_secs", "must be at least 1".into());
    }
    if m.evaluation_timeout_secs == 0 {
        bad(
            "milter.evaluation_timeout_secs",
            "must be at least 1".into(),
        );
    }
    let oversize_action = match m.oversize_action.as_str() {
        "accept" => OversizeAction::Accept,
        "tempfail" => OversizeAction::Tempfail,
        "reject" => OversizeAction::Reject,
        other => {
            bad(
                "milter.oversize_action",
                format!("\"{other}\" is not one of \"accept\", \"tempfail\", \"reject\""),
            );
            OversizeAction::Accept
        }
    };
    let authserv_id = m.authserv_id.trim().to_owned();
    if !authserv_id.is_empty() && !is_authserv_id(&authserv_id) {
        bad(
            "milter.authserv_id",
            format!(
                "\"{authserv_id}\" is not a valid authserv-id (letters, digits, '.', '-', '_')"
            ),
        );
    }

    // [dns]
    let d = raw.dns;
    let mut nameservers = Vec::new();
    for (i, ns) in d.nameservers.iter().enumerate() {
        match parse_nameserver(ns) {
            Some(addr) => nameservers.push(addr),
            None => bad(
                &format!("dns.nameservers[{i}]"),
                format!("\"{ns}\" is not IP or IP:PORT (IPv6 as [ADDR]:PORT)"),
            ),
        }
    }
    if !(d.timeout_secs.is_finite() && d.timeout_secs > 0.0 && d.timeout_secs <= 60.0) {
        bad(
            "dns.timeout_secs",
            format!(
                "{} is out of range (more than 0, at most 60)",
                d.timeout_secs
            ),
        );
    }
    if d.attempts == 0 || d.attempts > 10 {
        bad(
            "dns.attempts",
            format!("{} is out of range (1 to 10)", d.attempts),
        );
    }
    if d.cache_entries == 0 {
        bad("dns.cache_entries", "must be at least 1".into());
    }

    // [auth]
    let a = raw.auth;
    let mut trusted_networks = Vec::new();
    for (i, net) in a.trusted_networks.iter().enumerate() {
        match parse_network(net) {
            Some(n) => trusted_networks.push(n),
            None => bad(
                &format!("auth.trusted_networks[{i}]"),
                format!("\"{net}\" is not an IP address or CIDR network"),
            ),
        }
    }

    let mut trusted_arc_sealers = Vec::new();
    for (i, d) in a.trusted_arc_sealers.iter().enumerate() {
        match normalize_domain(d) {
            Some(n) => trusted_arc_sealers.push(n),
            None => bad(
                &format!("auth.trusted_arc_sealers[{i}]"),
                format!("\"{d}\" is not a domain name"),
            ),
        }
    }

    if a.max_dkim_signatures == 0 || a.max_dkim_signatures > 100 {
        bad(
            "auth.max_dkim_signatures",
            format!("{} is out of range (1 to 100)", a.max_dkim_signatures),
        );
    }

    // [policy]
    let p = raw.policy;
    let on_dns_error = match p.on_dns_error.as_str() {
        "tempfail" => DnsErrorAction::Tempfail,
        "accept" => DnsErrorAction::Accept,
        other => {
            bad(
                "policy.on_dns_error",
                format!("\"{other}\" is not one of \"tempfail\", \"accept\""),
            );
            DnsErrorAction::Tempfail
        }
    };
    let mut local_dmarc_policy = Vec::new();
    for (domain, policy) in &p.local_dmarc_policy {
        let key = format!("policy.local_dmarc_policy.\"{domain}\"");
        let policy = match policy.as_str() {
            "none" => LocalPolicy::None,
            "quarantine" => LocalPolicy::Quarantine,
            "reject" => LocalPolicy::Reject,
            other => {
                bad(
                    &key,
                    format!("\"{other}\" is not one of \"none\", \"quarantine\", \"reject\""),
                );
                continue;
            }
        };
        match normalize_domain(domain) {
            Some(d) => local_dmarc_policy.push((d, policy)),
            None => bad(&key, format!("\"{domain}\" is not a domain name")),
        }
    }
    // Most specific first, so that a subdomain's entry wins over its parent's.
    local_dmarc_policy.sort_by_key(|(d, _)| std::cmp::Reverse(d.len()));
    for (key, v) in [
        ("policy.tag_at", p.tag_at),
        ("policy.quarantine_at", p.quarantine_at),
        ("policy.reject_at", p.reject_at),
    ] {
        if !v.is_finite() || v <= 0.0 {
            bad(key, format!("{v} must be a positive number"));
        }
    }
    if p.quarantine_at < p.tag_at {
        bad(
            "policy.quarantine_at",
            format!(
                "({}) must not be less than policy.tag_at ({})",
                p.quarantine_at, p.tag_at
            ),
        );
    }
    if p.reject_at < p.quarantine_at {
        bad(
            "policy.reject_at",
            format!(
                "({}) must not be less than policy.quarantine_at ({})",
                p.reject_at, p.quarantine_at
            ),
        );
    }
    for (key, text) in [
        ("policy.reject_text", &p.reject_text),
        ("policy.tempfail_text", &p.tempfail_text),
    ] {
        if text.trim().is_empty() || text.len() > 900 || text.chars().any(|c| c.is_control()) {
            bad(
                key,
                "must be 1 to 900 characters of text on one line, no control characters".into(),
            );
        }
    }
    if p.subject_tag.chars().any(|c| c.is_control()) || p.subject_tag.len() > 64 {
        bad(
            "policy.subject_tag",
            "must be at most 64 characters, no control characters".into(),
        );
    }

    // [lookalike]
    let l = raw.lookalike;
    let mut allow_domains = Vec::new();
    for (i, dom) in l.allow_domains.iter().enumerate() {
        match normalize_domain(dom) {
            Some(d) => allow_domains.push(d),
            None => bad(
                &format!("lookalike.allow_domains[{i}]"),
                format!("\"{dom}\" is not a domain name"),
            ),
        }
    }

    if l.max_links == 0 || l.max_links > 10_000 {
        bad(
            "lookalike.max_links",
            format!("{} is out of range (1 to 10000)", l.max_links),
        );
    }

    // [[brand]]: shape only; the catalogue checks names against the built-in list.
    for (i, b) in raw.brands.iter().enumerate() {
        if b.name.trim().is_empty() {
            bad(&format!("brand[{i}].name"), "must not be empty".into());
        }
        if !matches!(b.mode.as_str(), "" | "extend" | "replace" | "disable") {
            bad(
                &format!("brand[{i}].mode"),
                format!(
                    "\"{}\" is not one of \"extend\", \"replace\", \"disable\"",
                    b.mode
                ),
            );
        }
        for (j, dom) in b.domains.iter().enumerate() {
            if normalize_domain(dom).is_none() {
                bad(
                    &format!("brand[{i}].domains[{j}]"),
                    format!("\"{dom}\" is not a domain name"),
                );
            }
        }
    }

    // [weights]: values here; codes are checked by the scorer, which knows them.
    for (code, w) in &raw.weights {
        if !w.is_finite() || w.abs() > 1000.0 {
            bad(
                &format!("weights.{code}"),
                format!("{w} is out of range (-1000 to 1000)"),
            );
        }
    }

    // [[rule]]
    let mut rules = Vec::new();
    for (i, r) in raw.rules.iter().enumerate() {
        let key = |k: &str| format!("rule[{i}].{k}");
        if r.name.is_empty()
            || !r
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            bad(
                &key("name"),
                format!("\"{}\" must be letters, digits, '_' or '-'", r.name),
            );
        }
        let target = match r.target.as_str() {
            "subject" => Some(RuleTarget::Subject),
            "display_name" => Some(RuleTarget::DisplayName),
            "from" => Some(RuleTarget::From),
            "body" => Some(RuleTarget::Body),
            t if t.starts_with("header:") && t.len() > 7 => {
                Some(RuleTarget::Header(t[7..].to_ascii_lowercase()))
            }
            t => {
                bad(
                    &key("target"),
                    format!(
                        "\"{t}\" is not one of \"subject\", \"display_name\", \"from\", \"body\", \"header:NAME\""
                    ),
                );
                None
            }
        };
        if !r.weight.is_finite() || r.weight.abs() > 1000.0 {
            bad(&key("weight"), format!("{} is out of range", r.weight));
        }
        let regex = match regex::RegexBuilder::new(&r.pattern)
            .size_limit(1 << 20)
            .build()
        {
            Ok(re) => Some(re),
            Err(e) => {
                bad(
                    &key("pattern"),
                    format!("invalid regex \"{}\": {}", r.pattern, regex_reason(&e)),
                );
                None
            }
        };
        if let (Some(target), Some(regex)) = (target, regex) {
            rules.push(Rule {
                name: r.name.clone(),
                target,
                regex,
                weight: r.weight,
            });
        }
    }

    // [log]
    let lg = raw.log;
    if tracing_subscriber::EnvFilter::try_new(&lg.level).is_err() {
        bad(
            "log.level",
            format!(
                "\"{}\" is not a level (error, warn, info, debug, trace) or filter",
                lg.level
            ),
        );
    }
    let format = match lg.format.as_str() {
        "text" => LogFormat::Text,
        "json" => LogFormat::Json,
        other => {
            bad(
                "log.format",
                format!("\"{other}\" is not one of \"text\", \"json\""),
            );
            LogFormat::Text
        }
    };

    // [metrics]
    let metrics_listen = match raw.metrics.listen.trim() {
        "" => None,
        text => text
            .parse::<SocketAddr>()
            .map_err(|_| {
                bad(
                    "metrics.listen",
                    format!("\"{text}\" is not IP:PORT such as \"127.0.0.1:9891\""),
                )
            })
            .ok(),
    };

    if !issues.is_empty() {
        return Err(issues);
    }
    Ok(Config {
        path,
        milter: MilterSettings {
            listen,
            socket_mode,
            max_connections: m.max_connections,
            connection_timeout: Duration::from_secs(m.connection_timeout_secs),
            on_error,
            max_message_bytes: m.max_message_bytes,
            max_headers: m.max_headers,
            max_header_bytes: m.max_header_bytes,
            max_mime_depth: m.max_mime_depth,
            max_mime_parts: m.max_mime_parts,
            message_timeout: Duration::from_secs(m.message_timeout_secs),
            evaluation_timeout: Duration::from_secs(m.evaluation_timeout_secs),
            oversize_action,
            authserv_id: (!authserv_id.is_empty()).then_some(authserv_id),
            dry_run: m.dry_run,
        },
        dns: DnsSettings {
            nameservers,
            timeout: Duration::from_secs_f64(d.timeout_secs),
            attempts: d.attempts,
            cache_entries: d.cache_entries,
        },
        auth: AuthSettings {
            trusted_networks,
            skip_authenticated: a.skip_authenticated,
            arc: a.arc,
            max_dkim_signatures: a.max_dkim_signatures,
            trusted_arc_sealers,
        },
        policy: PolicySettings {
            reject_dmarc_reject: p.reject_dmarc_reject,
            quarantine_dmarc_quarantine: p.quarantine_dmarc_quarantine,
            on_dns_error,
            tag_at: p.tag_at,
            quarantine_at: p.quarantine_at,
            reject_at: p.reject_at,
            reject_text: p.reject_text,
            tempfail_text: p.tempfail_text,
            subject_tag: p.subject_tag,
            local_dmarc_policy,
        },
        headers: HeaderSettings {
            add_score_headers: raw.headers.add_score_headers,
        },
        lookalike: LookalikeSettings {
            enabled: l.enabled,
            builtin_brands: l.builtin_brands,
            allow_domains,
            max_links: l.max_links,
        },
        brands: raw.brands,
        weights: raw.weights,
        rules,
        log: LogSettings {
            level: lg.level,
            format,
        },
        metrics: MetricsSettings {
            listen: metrics_listen,
        },
    })
}

/// The last line of a regex error ("unclosed group"), without the pattern drawing above it.
fn regex_reason(e: &regex::Error) -> String {
    let text = e.to_string();
    let last = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    last.trim().trim_start_matches("error: ").to_owned()
}

/// RFC 8601 authserv-id: a domain-like token.
fn is_authserv_id(s: &str) -> bool {
    s.len() <= 255
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

fn parse_nameserver(s: &str) -> Option<SocketAddr> {
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Some(addr);
    }
    s.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .ok()
        .map(|ip| SocketAddr::new(ip, 53))
}

fn parse_network(s: &str) -> Option<IpNet> {
    s.parse::<IpNet>()
        .ok()
        .or_else(|| s.parse::<IpAddr>().ok().map(IpNet::from))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issues(toml: &str) -> Vec<String> {
        match Config::from_toml(toml, Path::new("milter.toml")) {
            Ok(_) => Vec::new(),
            Err(e) => e.lines(),
        }
    }

    #[test]
    fn validate_metrics_listen_is_off_by_default_and_checked() {
        let c = Config::from_toml("", Path::new("milter.toml")).unwrap();
        assert_eq!(c.metrics.listen, None);
        let c = Config::from_toml(
            "[metrics]\nlisten = \"127.0.0.1:9891\"\n",
            Path::new("milter.toml"),
        )
        .unwrap();
        assert_eq!(c.metrics.listen, Some("127.0.0.1:9891".parse().unwrap()));
        assert_eq!(
            issues("[metrics]\nlisten = \"localhost\"\n"),
            vec![
                "milter.toml: metrics.listen: \"localhost\" is not IP:PORT such as \"127.0.0.1:9891\""
            ]
        );
    }

    #[test]
    fn validate_empty_file_gives_defaults() {
        let c = Config::from_toml("", Path::new("milter.toml")).unwrap();
        assert_eq!(
            c.milter.listen,
            ListenSpec::Inet("127.0.0.1:8891".parse().unwrap())
        );
        assert_eq!(c.milter.on_error, ErrorAction::Tempfail);
        assert_eq!(c.dns.timeout, Duration::from_secs(5));
        assert_eq!(c.policy.on_dns_error, DnsErrorAction::Tempfail);
        assert!(c.lookalike.enabled);
    }

    #[test]
    fn validate_collects_every_issue_with_its_key() {
        let got = issues(
            r#"
[milter]
on_error = "maybe"
socket_mode = "999"
[dns]
nameservers = ["127.0.0.1:5353", "nonsense"]
attempts = 0
[policy]
quarantine_at = 30
reject_at = 25
[[rule]]
name = "bad rule"
target = "nowhere"
pattern = "(("
"#,
        );
        assert_eq!(
            got,
            vec![
                "milter.toml: milter.socket_mode: \"999\" is not an octal file mode such as \"0660\"",
                "milter.toml: milter.on_error: \"maybe\" is not one of \"tempfail\", \"accept\", \"reject\"",
                "milter.toml: dns.nameservers[1]: \"nonsense\" is not IP or IP:PORT (IPv6 as [ADDR]:PORT)",
                "milter.toml: dns.attempts: 0 is out of range (1 to 10)",
                "milter.toml: policy.reject_at: (25) must not be less than policy.quarantine_at (30)",
                "milter.toml: rule[0].name: \"bad rule\" must be letters, digits, '_' or '-'",
                "milter.toml: rule[0].target: \"nowhere\" is not one of \"subject\", \"display_name\", \"from\", \"body\", \"header:NAME\"",
                "milter.toml: rule[0].pattern: invalid regex \"((\": unclosed group",
            ]
        );
    }

    #[test]
    fn validate_reports_unknown_keys_with_location() {
        let got = issues("[policy]\nreject_att = 5\n");
        assert!(
            got[0].starts_with("milter.toml: TOML parse error at line 2, column 1"),
            "{got:?}"
        );
        assert!(
            got.iter().any(|l| l.contains("unknown field `reject_att`")),
            "{got:?}"
        );
    }

    #[test]
    fn normalize_domain_gives_a_labels() {
        assert_eq!(normalize_domain("Example.COM."), Some("example.com".into()));
        assert_eq!(normalize_domain("例え.jp"), Some("xn--r8jz45g.jp".into()));
        assert_eq!(normalize_domain("not a domain"), None);
        assert_eq!(normalize_domain("localhost"), None);
    }
}
