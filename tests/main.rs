//! The hermetic test suite: one binary (linking is slow on 2 cores), a module per area.
//! Nothing here leaves the machine: DNS comes from a zone server on 127.0.0.1.
#![allow(clippy::unwrap_used)]

mod common;

mod agree;
mod arc;
mod cli;
mod dns_faults;
mod header_safety;
mod impersonation;
mod limits;
mod lookalike_eval;
mod man;
mod milter;
mod protocol;
