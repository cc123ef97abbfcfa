//! spoofguard: a milter that verifies SPF, DKIM, DMARC and ARC and catches brand impersonation.
//!
//! The library exists for the binary and its tests; it has no API stability guarantees.
//! Dependencies point one way: `milter` → `evaluate` → {`auth`, `lookalike`, `score`, `header`}
//! → `config`. The milter and `spoofguard check` share `evaluate`: there is one decision path.

pub mod config;
pub mod auth;
pub mod header;
pub mod lookalike;
pub mod score;
