//! A whole message through `evaluate` (parse, DKIM/ARC/SPF/DMARC against a DNS server that
//! knows no names, lookalike checks, rules, scoring) and the headers we would add: no panic,
//! and what we add is one header value of printable ASCII with only our own folding.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spoofguard::config::Config;
use spoofguard::evaluate::{Envelope, Input, evaluate};
use spoofguard::runtime::Runtime;
use spoofguard::header;
use spoofguard::zone::{Zone, ZoneServer};
use std::path::Path;
use std::sync::LazyLock;
use std::time::Duration;

struct World {
    tokio: tokio::runtime::Runtime,
    rt: Runtime,
    _dns: ZoneServer,
}

static WORLD: LazyLock<World> = LazyLock::new(|| {
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio");
    let dns = tokio
        .block_on(ZoneServer::start(Zone::parse("").expect("empty zone")))
        .expect("zone server");
    let mut config = Config::from_toml(
        "[[rule]]\nname = \"r\"\ntarget = \"body\"\npattern = \"(?i)verify\"\nweight = 1.0\n",
        Path::new("fuzz.toml"),
    )
    .expect("config");
    config.dns.nameservers = vec![dns.addr()];
    config.dns.timeout = Duration::from_millis(200);
    config.dns.attempts = 1;
    let rt = tokio.block_on(async { Runtime::build(config, None) }).expect("runtime");
    World {
        tokio,
        rt,
        _dns: dns,
    }
});

fn printable_folded(value: &str) -> bool {
    value
        .split("\n\t")
        .all(|line| line.bytes().all(|b| (0x20..0x7f).contains(&b)))
}

fuzz_target!(|data: &[u8]| {
    let world = &*WORLD;
    let env = Envelope {
        client_ip: Some("192.0.2.1".parse().expect("ip")),
        helo: "mail.fuzz.example".into(),
        mail_from: "a@fuzz.example".into(),
        recipients: vec!["b@rcpt.example".into()],
        queue_id: "FUZZ".into(),
        authenticated: false,
        authserv_id: "mx.fuzz.example".into(),
    };
    let eval = world
        .tokio
        .block_on(evaluate(&world.rt, &env, Input::Message(data)));
    assert!(printable_folded(
        &eval.authentication_results().expect("judged")
    ));
    assert!(printable_folded(&header::reasons_value(&eval.reasons)));
});
