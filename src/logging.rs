//! Logging setup and the level policy.
//!
//! - **error**: we cannot provide service (bind, reload, a milter action failed).
//! - **warn**: the MTA or the configuration misbehaves (missing action, oversized message).
//! - **info**: exactly one line per message with all verdicts, score and decision; start,
//!   stop and reload.
//! - **debug**: each step and each header added or removed.
//! - **trace**: protocol detail.
//!
//! Bodies and full header values are never logged at info.

use crate::config::{LogFormat, LogSettings};
use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber on stderr. `RUST_LOG`, when set, overrides `[log] level`.
pub fn init(settings: &LogSettings) {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .or_else(|| EnvFilter::try_new(&settings.level).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour only on a terminal: journald and log files get plain text.
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false);
    let _ = match settings.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
