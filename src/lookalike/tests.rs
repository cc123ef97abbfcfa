//! Table-driven tests for the lookalike module, and two full messages.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::config::{LookalikeSettings, RawBrand};

fn settings() -> LookalikeSettings {
    LookalikeSettings {
        enabled: true,
        builtin_brands: true,
        allow_domains: vec![],
    }
}

fn cat() -> Catalogue {
    Catalogue::build(&settings(), &[]).unwrap()
}

fn codes(f: &[Finding]) -> Vec<&'static str> {
    f.iter().map(|f| f.code).collect()
}

#[test]
fn probe() {
    let c = cat();
    for d in std::env::var("PROBE")
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
    {
        println!("{d}: {:?}", check_domain(d, &c));
    }
}
