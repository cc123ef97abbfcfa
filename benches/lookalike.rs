//! Scoring one domain against the built-in catalogue: `cargo bench --bench lookalike`.

use criterion::{Criterion, criterion_group, criterion_main};
use spoofguard::config::LookalikeSettings;
use spoofguard::lookalike::{Catalogue, check_domain};
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let settings = LookalikeSettings {
        enabled: true,
        builtin_brands: true,
        allow_domains: vec![],
        max_links: spoofguard::lookalike::MAX_LINKS,
    };
    let cat = Catalogue::build(&settings, &[]).expect("the built-in catalogue compiles");
    for d in [
        "example.com",
        "microsoft-securityprotection-support.xyz",
        "xn--mcrosoft-thh.com",
        "login.microsoft.com.verify-account.net",
    ] {
        c.bench_function(&format!("check_domain {d}"), |b| {
            b.iter(|| check_domain(black_box(d), &cat))
        });
    }
    c.bench_function("Catalogue::build", |b| {
        b.iter(|| Catalogue::build(black_box(&settings), &[]))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
