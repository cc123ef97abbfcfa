//! Hermetic integration tests: one binary, one module per area (STYLE.md §2.6).
#![allow(clippy::unwrap_used)]

mod lookalike_eval;
