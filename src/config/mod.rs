//! The validated configuration. `load` reads milter.toml into `RawConfig` (serde) and turns it
//! into `Config`, which holds only checked, typed values: nothing is parsed or unwrapped after
//! this point. This module does no network I/O and knows nothing of the milter protocol.

mod error;
pub mod raw;
mod validate;

pub use error::{ConfigError, Issue};
pub use raw::{RawBrand, RawConfig};

use ipnet::IpNet;
use regex::Regex;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the milter listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListenSpec {
    /// `inet:HOST:PORT`, `inet:PORT@HOST` or `inet6:[ADDR]:PORT`.
    Inet(SocketAddr),
    /// `unix:/path` or `local:/path`.
    Unix(PathBuf),
}

impl std::fmt::Display for ListenSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ListenSpec::Inet(addr) if addr.is_ipv6() => write!(f, "inet6:{addr}"),
            ListenSpec::Inet(addr) => write!(f, "inet:{addr}"),
            ListenSpec::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

/// What the milter answers when it cannot do its job (`[milter] on_error`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorAction {
    Tempfail,
    Accept,
    Reject,
}

/// What happens to a message larger than `max_message_bytes`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OversizeAction {
    /// Deliver it unverified, with `X-Spoofguard-Verdict: accept` and reason `OVERSIZE`.
    Accept,
    Tempfail,
    Reject,
}

/// What a DNS temporary error in the DMARC evaluation does (`[policy] on_dns_error`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DnsErrorAction {
    /// Deliver with `temperror` in Authentication-Results.
    Accept,
    /// Answer 451 so the client retries later.
    Tempfail,
}

/// `[log] format`
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// `[milter]`
#[derive(Clone, Debug)]
pub struct MilterSettings {
    pub listen: ListenSpec,
    pub socket_mode: u32,
    pub max_connections: usize,
    pub connection_timeout: Duration,
    pub on_error: ErrorAction,
    pub max_message_bytes: usize,
    /// Header fields buffered at most; more make the message "too large".
    pub max_headers: usize,
    /// Bytes of one header field (name and value) at most.
    pub max_header_bytes: usize,
    /// Containers one MIME part may sit in (root included); deeper structure is not parsed.
    pub max_mime_depth: usize,
    /// MIME parts parsed per message; the rest stays unparsed.
    pub max_mime_parts: usize,
    /// From MAIL FROM to end of message; a slower transaction is refused with a temporary error.
    pub message_timeout: Duration,
    /// Verification and scoring at end of message; past it, `on_error` answers.
    pub evaluation_timeout: Duration,
    pub oversize_action: OversizeAction,
    /// `None`: the MTA's `j` macro, else the host name.
    pub authserv_id: Option<String>,
    pub dry_run: bool,
}

/// `[dns]`
#[derive(Clone, Debug, PartialEq)]
pub struct DnsSettings {
    /// Empty: the system resolver (/etc/resolv.conf).
    pub nameservers: Vec<SocketAddr>,
    pub timeout: Duration,
    pub attempts: usize,
    pub cache_entries: u64,
}

/// `[auth]`
#[derive(Clone, Debug)]
pub struct AuthSettings {
    pub trusted_networks: Vec<IpNet>,
    pub skip_authenticated: bool,
    pub arc: bool,
    /// DKIM-Signature fields verified per message; later ones are ignored.
    pub max_dkim_signatures: usize,
    /// ARC sealers (lowercase A-label domains) whose recorded DMARC pass overrides a DMARC
    /// failure when their seal validates.
    pub trusted_arc_sealers: Vec<String>,
}

impl AuthSettings {
    /// Whether `sealer` (an ARC-Seal `d=`) is one of `trusted_arc_sealers` or below one.
    pub fn is_trusted_sealer(&self, sealer: &str) -> bool {
        self.trusted_arc_sealers
            .iter()
            .any(|t| domain_within(sealer, t))
    }

    /// Whether `ip` is in `trusted_networks`.
    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.trusted_networks.iter().any(|net| net.contains(&ip))
    }
}

/// `[policy]`
#[derive(Clone, Debug)]
pub struct PolicySettings {
    pub reject_dmarc_reject: bool,
    pub quarantine_dmarc_quarantine: bool,
    pub on_dns_error: DnsErrorAction,
    pub tag_at: f64,
    pub quarantine_at: f64,
    pub reject_at: f64,
    pub reject_text: String,
    pub tempfail_text: String,
    pub subject_tag: String,
    /// DMARC policies set locally per domain (lowercase A-labels), most specific first.
    pub local_dmarc_policy: Vec<(String, LocalPolicy)>,
}

impl PolicySettings {
    /// The local DMARC policy for `domain`: the entry for it or its closest parent.
    pub fn local_dmarc_policy(&self, domain: &str) -> Option<(&str, LocalPolicy)> {
        self.local_dmarc_policy
            .iter()
            .find(|(d, _)| domain_within(domain, d))
            .map(|(d, p)| (d.as_str(), *p))
    }
}

/// A DMARC policy set locally for a domain (`[policy] local_dmarc_policy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LocalPolicy {
    None,
    Quarantine,
    Reject,
}

impl LocalPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            LocalPolicy::None => "none",
            LocalPolicy::Quarantine => "quarantine",
            LocalPolicy::Reject => "reject",
        }
    }
}

/// Whether `domain` is `parent` or a subdomain of it (both lowercase).
pub fn domain_within(domain: &str, parent: &str) -> bool {
    domain == parent
        || domain
            .strip_suffix(parent)
            .is_some_and(|rest| rest.ends_with('.'))
}

/// `[headers]`
#[derive(Clone, Debug)]
pub struct HeaderSettings {
    pub add_score_headers: bool,
}

/// `[lookalike]`
#[derive(Clone, Debug)]
pub struct LookalikeSettings {
    pub enabled: bool,
    pub builtin_brands: bool,
    /// Lowercase A-label registrable domains that are never flagged.
    pub allow_domains: Vec<String>,
    /// Links checked per message (the first ones in document order).
    pub max_links: usize,
}

/// Where a `[[rule]]` looks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RuleTarget {
    Subject,
    DisplayName,
    /// The From address (`local@domain`).
    From,
    /// Decoded text and HTML bodies.
    Body,
    /// Every value of the named header (lowercase name).
    Header(String),
}

/// One compiled `[[rule]]`.
#[derive(Clone, Debug)]
pub struct Rule {
    pub name: String,
    pub target: RuleTarget,
    pub regex: Regex,
    pub weight: f64,
}

/// `[log]`
#[derive(Clone, Debug)]
pub struct LogSettings {
    pub level: String,
    pub format: LogFormat,
}

/// `[metrics]`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetricsSettings {
    /// Where the Prometheus endpoint listens; `None`: no endpoint, nothing recorded.
    pub listen: Option<SocketAddr>,
}

/// The validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// The file it came from, if any.
    pub path: Option<PathBuf>,
    pub milter: MilterSettings,
    pub dns: DnsSettings,
    pub auth: AuthSettings,
    pub policy: PolicySettings,
    pub headers: HeaderSettings,
    pub lookalike: LookalikeSettings,
    /// `[[brand]]` tables, checked for shape. `Rules::compile` (src/runtime.rs) compiles them
    /// into the catalogue and takes them out: empty in a compiled runtime.
    pub brands: Vec<RawBrand>,
    /// `[weights]`, code to weight. `Rules::compile` checks the codes, compiles them into the
    /// scorer's weights and takes them out: empty in a compiled runtime.
    pub weights: BTreeMap<String, f64>,
    pub rules: Vec<Rule>,
    pub log: LogSettings,
    pub metrics: MetricsSettings,
}

impl Config {
    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml(&text, path)
    }

    /// Parses and validates TOML text; `path` is used in messages only.
    pub fn from_toml(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        validate::validate(raw, Some(path.to_owned())).map_err(|issues| ConfigError::Invalid {
            path: path.to_owned(),
            issues,
        })
    }

    /// The configuration of an empty file: every default.
    pub fn default_config() -> Config {
        validate::validate(RawConfig::default(), None).expect("the defaults are valid")
    }
}

impl Default for Config {
    fn default() -> Self {
        Self::default_config()
    }
}

/// Parses a listen spec: `inet:HOST:PORT`, `inet:PORT@HOST`, `inet6:[ADDR]:PORT`,
/// `inet6:PORT@ADDR`, `unix:/path` or `local:/path`.
pub fn parse_listen(spec: &str) -> Result<ListenSpec, String> {
    let (kind, rest) = spec
        .split_once(':')
        .ok_or_else(|| format!("\"{spec}\" has no type prefix (inet:, inet6: or unix:)"))?;
    match kind {
        "unix" | "local" => {
            if rest.starts_with('/') {
                Ok(ListenSpec::Unix(PathBuf::from(rest)))
            } else {
                Err(format!("\"{spec}\": a unix socket path must be absolute"))
            }
        }
        "inet" | "inet6" => {
            let bad = || format!("\"{spec}\" is not {kind}:HOST:PORT or {kind}:PORT@HOST");
            let (host, port) = if let Some((port, host)) = rest.split_once('@') {
                (host, port)
            } else {
                rest.rsplit_once(':').ok_or_else(bad)?
            };
            let port: u16 = port.parse().map_err(|_| bad())?;
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let ip: IpAddr = match host {
                "localhost" if kind == "inet6" => IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]),
                "localhost" => IpAddr::from([127, 0, 0, 1]),
                "" | "*" if kind == "inet6" => IpAddr::from([0u16; 8]),
                "" | "*" => IpAddr::from([0, 0, 0, 0]),
                _ => host.parse().map_err(|_| bad())?,
            };
            if kind == "inet6" && ip.is_ipv4() || kind == "inet" && ip.is_ipv6() {
                return Err(format!(
                    "\"{spec}\": address family does not match \"{kind}\""
                ));
            }
            Ok(ListenSpec::Inet(SocketAddr::new(ip, port)))
        }
        _ => Err(format!(
            "\"{spec}\": unknown socket type \"{kind}\" (use inet:, inet6: or unix:)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_listen_accepts_postfix_and_sendmail_forms() {
        let inet = |s: &str| ListenSpec::Inet(s.parse().unwrap());
        assert_eq!(
            parse_listen("inet:127.0.0.1:8891"),
            Ok(inet("127.0.0.1:8891"))
        );
        assert_eq!(
            parse_listen("inet:8891@127.0.0.1"),
            Ok(inet("127.0.0.1:8891"))
        );
        assert_eq!(parse_listen("inet:localhost:25"), Ok(inet("127.0.0.1:25")));
        assert_eq!(parse_listen("inet6:[::1]:8891"), Ok(inet("[::1]:8891")));
        assert_eq!(
            parse_listen("unix:/run/spoofguard/milter.sock"),
            Ok(ListenSpec::Unix("/run/spoofguard/milter.sock".into()))
        );
    }

    #[test]
    fn parse_listen_rejects_bad_specs() {
        assert_eq!(
            parse_listen("127.0.0.1:8891"),
            Err("\"127.0.0.1:8891\": unknown socket type \"127.0.0.1\" (use inet:, inet6: or unix:)".into())
        );
        assert_eq!(
            parse_listen("inet:127.0.0.1"),
            Err("\"inet:127.0.0.1\" is not inet:HOST:PORT or inet:PORT@HOST".into())
        );
        assert_eq!(
            parse_listen("unix:relative.sock"),
            Err("\"unix:relative.sock\": a unix socket path must be absolute".into())
        );
        assert_eq!(
            parse_listen("inet:[::1]:25"),
            Err("\"inet:[::1]:25\": address family does not match \"inet\"".into())
        );
    }

    /// Config is the ground floor: detectors import it, never the reverse. It may use only the
    /// `domain` leaf, which imports nothing of ours.
    #[test]
    fn config_imports_no_other_module_of_ours() {
        for (file, text) in [
            ("mod.rs", include_str!("mod.rs")),
            ("raw.rs", include_str!("raw.rs")),
            ("validate.rs", include_str!("validate.rs")),
            ("error.rs", include_str!("error.rs")),
        ] {
            // Split so that this test does not find itself. `domain` is a leaf below config.
            let needle = concat!("crate", "::");
            for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
                assert!(
                    line.split(needle)
                        .skip(1)
                        .all(|rest| rest.starts_with("domain::")),
                    "src/config/{file} names a module outside config: {line}"
                );
            }
        }
    }

    #[test]
    fn trusted_networks_match_ipv4_mapped_addresses() {
        let config = Config::default();
        assert!(config.auth.is_trusted("127.0.0.1".parse().unwrap()));
        assert!(config.auth.is_trusted("::ffff:127.0.0.5".parse().unwrap()));
        assert!(config.auth.is_trusted("::1".parse().unwrap()));
        assert!(!config.auth.is_trusted("192.0.2.1".parse().unwrap()));
    }
}
