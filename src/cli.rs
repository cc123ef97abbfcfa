//! The command line: clap definitions of `serve`, `check`, `domain`, `brands` and
//! `config-check`.
//! Kept in the library so that the man page spoofguard(8) is generated from the same
//! definitions as `--help` (tests/man.rs).

use crate::check::Format;
use clap::{Parser, Subcommand, ValueEnum};
use std::net::IpAddr;
use std::path::PathBuf;

/// Where `--config` points when not given.
pub const DEFAULT_CONFIG: &str = "/etc/spoofguard/milter.toml";

#[derive(Parser)]
#[command(
    name = "spoofguard",
    version,
    about = "Mail filter (milter): SPF, DKIM, DMARC, ARC and brand-impersonation checks"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum FormatArg {
    Text,
    Json,
}

impl From<FormatArg> for Format {
    fn from(f: FormatArg) -> Self {
        match f {
            FormatArg::Text => Format::Text,
            FormatArg::Json => Format::Json,
        }
    }
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the milter.
    Serve {
        /// milter.toml (default /etc/spoofguard/milter.toml; built-in defaults if that is absent)
        #[arg(short, long)]
        config: Option<PathBuf>,
        /// Overrides [milter] listen, e.g. inet:127.0.0.1:8891 or unix:/run/spoofguard/milter.sock
        #[arg(long)]
        socket: Option<String>,
        /// Overrides [log] level
        #[arg(long)]
        log_level: Option<String>,
    },
    /// Evaluate .eml files offline with the same checks as the milter.
    Check {
        /// milter.toml (default /etc/spoofguard/milter.toml; built-in defaults if that is absent)
        #[arg(short, long)]
        config: Option<PathBuf>,
        /// Answer DNS from this zone file (RFC 1035 master-file syntax) instead of the network
        #[arg(long)]
        zone: Option<PathBuf>,
        /// SMTP client IP for SPF (no SPF check without it)
        #[arg(long)]
        ip: Option<IpAddr>,
        /// HELO/EHLO name
        #[arg(long)]
        helo: Option<String>,
        /// Envelope sender (default: Return-Path, else the From address)
        #[arg(long)]
        mail_from: Option<String>,
        #[arg(long, value_enum, default_value = "text")]
        format: FormatArg,
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Score sender domains for brand impersonation.
    Domain {
        /// milter.toml (default /etc/spoofguard/milter.toml; built-in defaults if that is absent)
        #[arg(short, long)]
        config: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "text")]
        format: FormatArg,
        #[arg(required = true)]
        domains: Vec<String>,
    },
    /// List the brand catalogue in effect: built-in brands merged with [[brand]] tables.
    Brands {
        /// milter.toml (default /etc/spoofguard/milter.toml; built-in defaults if that is absent)
        #[arg(short, long)]
        config: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "text")]
        format: FormatArg,
    },
    /// Validate milter.toml and print every error with its key.
    ConfigCheck {
        /// The file to check (default /etc/spoofguard/milter.toml)
        #[arg(short, long)]
        config: Option<PathBuf>,
    },
}
