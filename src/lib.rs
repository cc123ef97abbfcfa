//! spoofguard: a milter that verifies SPF, DKIM, DMARC and ARC and catches brand impersonation.
//!
//! The library exists for the binary and its tests; it has no API stability guarantees.
//! Dependencies point one way: `milter` → `intake`, `evaluate` → `runtime`, {`auth`,
//! `lookalike`, `score`, `header`} → `config` → `domain` (docs/architecture.md lists what each
//! module imports and must not). `evaluate` decides every outcome; the milter and `spoofguard
//! check` only apply or print it: there is one decision path.

pub mod auth;
pub mod check;
pub mod cli;
pub mod config;
pub mod domain;
pub mod evaluate;
pub mod header;
pub mod intake;
pub mod logging;
pub mod lookalike;
pub mod metric;
pub mod milter;
pub mod runtime;
pub mod score;
pub mod zone;
