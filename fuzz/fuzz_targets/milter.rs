//! Milter protocol bytes from a hostile or broken MTA into a real session: the milter runs
//! in-process on a unix socket, the input is written to one connection, and a second
//! connection must still be served afterwards.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spoofguard::config::Config;
use spoofguard::runtime::Runtime;
use spoofguard::milter::{self, SharedRuntime};
use spoofguard::zone::{Zone, ZoneServer};
use std::path::PathBuf;
use std::sync::{Arc, LazyLock, RwLock};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

struct World {
    tokio: tokio::runtime::Runtime,
    socket: PathBuf,
    _dns: ZoneServer,
}

static WORLD: LazyLock<World> = LazyLock::new(|| {
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio");
    let socket = std::env::temp_dir().join(format!("sg-fuzz-{}.sock", std::process::id()));
    let dns = tokio
        .block_on(ZoneServer::start(Zone::parse("").expect("empty zone")))
        .expect("zone server");
    let mut config = Config::default();
    config.dns.nameservers = vec![dns.addr()];
    config.dns.timeout = Duration::from_millis(200);
    config.dns.attempts = 1;
    config.milter.connection_timeout = Duration::from_secs(2);
    config.auth.trusted_networks.clear();
    let spec = spoofguard::config::ListenSpec::Unix(socket.clone());
    let listener = tokio
        .block_on(milter::bind(&spec, 0o600))
        .expect("bind");
    let rt = tokio.block_on(async { Runtime::build(config, None) }).expect("runtime");
    let shared: SharedRuntime = Arc::new(RwLock::new(Arc::new(rt)));
    tokio.spawn(milter::serve(listener, shared, std::future::pending()));
    World {
        tokio,
        socket,
        _dns: dns,
    }
});

/// Writes `data`, then reads whatever comes back until EOF or a short pause.
async fn exchange(socket: &PathBuf, data: &[u8]) -> std::io::Result<()> {
    let mut s = UnixStream::connect(socket).await?;
    s.write_all(data).await?;
    s.shutdown().await?;
    let mut buf = vec![0u8; 65536];
    loop {
        match tokio::time::timeout(Duration::from_millis(300), s.read(&mut buf)).await {
            Ok(Ok(0)) | Err(_) => return Ok(()),
            Ok(Ok(_)) => continue,
            Ok(Err(e)) => return Err(e),
        }
    }
}

/// A well-formed negotiation: the milter must still answer it.
async fn still_serving(socket: &PathBuf) -> bool {
    let Ok(mut s) = UnixStream::connect(socket).await else {
        return false;
    };
    // OPTNEG: version 6, all actions, all protocol options.
    let mut pkt = vec![b'O'];
    pkt.extend_from_slice(&6u32.to_be_bytes());
    pkt.extend_from_slice(&0x1ffu32.to_be_bytes());
    pkt.extend_from_slice(&0x1f_ffffu32.to_be_bytes());
    let mut msg = (pkt.len() as u32).to_be_bytes().to_vec();
    msg.extend_from_slice(&pkt);
    if s.write_all(&msg).await.is_err() {
        return false;
    }
    let mut len = [0u8; 4];
    matches!(
        tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut len)).await,
        Ok(Ok(_))
    )
}

fuzz_target!(|data: &[u8]| {
    let world = &*WORLD;
    world.tokio.block_on(async {
        let _ = exchange(&world.socket, data).await;
        assert!(still_serving(&world.socket).await, "milter stopped serving");
    });
});
