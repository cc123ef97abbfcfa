//! `RawConfig`: milter.toml exactly as serde reads it. Every table and key has a default, so an
//! empty file is a complete configuration. Nothing here is checked beyond its TOML type; see
//! `validate.rs` for the rest.

use serde::Deserialize;
use std::collections::BTreeMap;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawConfig {
    pub milter: RawMilter,
    pub dns: RawDns,
    pub auth: RawAuth,
    pub policy: RawPolicy,
    pub headers: RawHeaders,
    pub lookalike: RawLookalike,
    pub weights: BTreeMap<String, f64>,
    #[serde(rename = "brand")]
    pub brands: Vec<RawBrand>,
    #[serde(rename = "rule")]
    pub rules: Vec<RawRule>,
    pub log: RawLog,
    pub metrics: RawMetrics,
}

pub const DEFAULT_LISTEN: &str = "inet:127.0.0.1:8891";
pub const DEFAULT_SOCKET_MODE: &str = "0660";
pub const DEFAULT_MAX_CONNECTIONS: usize = 500;
pub const DEFAULT_CONNECTION_TIMEOUT_SECS: u64 = 300;
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 10 * 1024 * 1024;
pub const DEFAULT_MAX_HEADERS: usize = 1000;
/// Postfix's `header_size_limit` default.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 102_400;
/// OpenDKIM verifies 3 by default; mail through an ESP and a list can carry a few more.
pub const DEFAULT_MAX_DKIM_SIGNATURES: usize = 5;
/// Containers (multiparts and nested messages) one part may sit in, the root included.
pub const DEFAULT_MAX_MIME_DEPTH: usize = 20;
/// MIME parts parsed per message.
pub const DEFAULT_MAX_MIME_PARTS: usize = 1000;
/// From MAIL FROM to the end of the message.
pub const DEFAULT_MESSAGE_TIMEOUT_SECS: u64 = 1800;
/// Verification and scoring at the end of the message. Below Postfix's
/// `milter_content_timeout` (300 s), so our reply, not the MTA's default action, decides.
pub const DEFAULT_EVALUATION_TIMEOUT_SECS: u64 = 60;
/// Links checked per message (the first ones in document order).
pub const DEFAULT_MAX_LINKS: usize = 100;

/// `[milter]`
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawMilter {
    pub listen: String,
    pub socket_mode: String,
    pub max_connections: usize,
    pub connection_timeout_secs: u64,
    pub on_error: String,
    pub max_message_bytes: usize,
    pub max_headers: usize,
    pub max_header_bytes: usize,
    pub max_mime_depth: usize,
    pub max_mime_parts: usize,
    pub message_timeout_secs: u64,
    pub evaluation_timeout_secs: u64,
    pub oversize_action: String,
    pub authserv_id: String,
    pub dry_run: bool,
}

impl Default for RawMilter {
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN.into(),
            socket_mode: DEFAULT_SOCKET_MODE.into(),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            connection_timeout_secs: DEFAULT_CONNECTION_TIMEOUT_SECS,
            on_error: "tempfail".into(),
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            max_headers: DEFAULT_MAX_HEADERS,
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            max_mime_depth: DEFAULT_MAX_MIME_DEPTH,
            max_mime_parts: DEFAULT_MAX_MIME_PARTS,
            message_timeout_secs: DEFAULT_MESSAGE_TIMEOUT_SECS,
            evaluation_timeout_secs: DEFAULT_EVALUATION_TIMEOUT_SECS,
            oversize_action: "accept".into(),
            authserv_id: String::new(),
            dry_run: false,
        }
    }
}

pub const DEFAULT_DNS_TIMEOUT_SECS: f64 = 5.0;
pub const DEFAULT_DNS_ATTEMPTS: usize = 2;
pub const DEFAULT_DNS_CACHE_ENTRIES: u64 = 50_000;

/// `[dns]`
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawDns {
    pub nameservers: Vec<String>,
    pub timeout_secs: f64,
    pub attempts: usize,
    pub cache_entries: u64,
}

impl Default for RawDns {
    fn default() -> Self {
        Self {
            nameservers: Vec::new(),
            timeout_secs: DEFAULT_DNS_TIMEOUT_SECS,
            attempts: DEFAULT_DNS_ATTEMPTS,
            cache_entries: DEFAULT_DNS_CACHE_ENTRIES,
        }
    }
}

/// `[auth]`
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawAuth {
    pub trusted_networks: Vec<String>,
    pub skip_authenticated: bool,
    pub arc: bool,
    pub max_dkim_signatures: usize,
    pub trusted_arc_sealers: Vec<String>,
}

impl Default for RawAuth {
    fn default() -> Self {
        Self {
            trusted_networks: vec!["127.0.0.0/8".into(), "::1/128".into()],
            skip_authenticated: true,
            arc: true,
            max_dkim_signatures: DEFAULT_MAX_DKIM_SIGNATURES,
            trusted_arc_sealers: Vec::new(),
        }
    }
}

pub const DEFAULT_TAG_AT: f64 = 5.0;
pub const DEFAULT_QUARANTINE_AT: f64 = 10.0;
pub const DEFAULT_REJECT_AT: f64 = 20.0;
pub const DEFAULT_REJECT_TEXT: &str = "Message rejected";
pub const DEFAULT_TEMPFAIL_TEXT: &str =
    "Temporary DNS failure while verifying the sender, try again later";

/// `[policy]`
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawPolicy {
    pub reject_dmarc_reject: bool,
    pub quarantine_dmarc_quarantine: bool,
    pub on_dns_error: String,
    pub tag_at: f64,
    pub quarantine_at: f64,
    pub reject_at: f64,
    pub reject_text: String,
    pub tempfail_text: String,
    pub subject_tag: String,
    pub local_dmarc_policy: BTreeMap<String, String>,
}

impl Default for RawPolicy {
    fn default() -> Self {
        Self {
            reject_dmarc_reject: true,
            quarantine_dmarc_quarantine: true,
            on_dns_error: "tempfail".into(),
            tag_at: DEFAULT_TAG_AT,
            quarantine_at: DEFAULT_QUARANTINE_AT,
            reject_at: DEFAULT_REJECT_AT,
            reject_text: DEFAULT_REJECT_TEXT.into(),
            tempfail_text: DEFAULT_TEMPFAIL_TEXT.into(),
            subject_tag: String::new(),
            local_dmarc_policy: BTreeMap::new(),
        }
    }
}

/// `[headers]`
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawHeaders {
    pub add_score_headers: bool,
}

impl Default for RawHeaders {
    fn default() -> Self {
        Self {
            add_score_headers: true,
        }
    }
}

/// `[lookalike]`
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawLookalike {
    pub enabled: bool,
    pub builtin_brands: bool,
    pub allow_domains: Vec<String>,
    pub max_links: usize,
}

impl Default for RawLookalike {
    fn default() -> Self {
        Self {
            enabled: true,
            builtin_brands: true,
            max_links: DEFAULT_MAX_LINKS,
            allow_domains: Vec::new(),
        }
    }
}

/// One `[[brand]]` table.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RawBrand {
    pub name: String,
    pub mode: String,
    pub domains: Vec<String>,
    pub aliases: Vec<String>,
}

/// One `[[rule]]` table.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawRule {
    pub name: String,
    pub target: String,
    pub pattern: String,
    pub weight: f64,
}

/// `[log]`
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawLog {
    pub level: String,
    pub format: String,
}

impl Default for RawLog {
    fn default() -> Self {
        Self {
            level: "info".into(),
            format: "text".into(),
        }
    }
}

/// `[metrics]`
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawMetrics {
    /// `IP:PORT` of the Prometheus endpoint; empty: off.
    pub listen: String,
}
