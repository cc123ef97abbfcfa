//! null-milter: a do-nothing milter, the protocol ceiling for `milter_load`.
//!
//! Built on indymilter like spoofguard, with TCP_NODELAY on accepted TCP sockets. It registers
//! every callback (so the MTA or load generator sends every event, as to spoofguard) and
//! answers Continue to all of them; it reads and drops body chunks.
//!
//! ```text
//! cargo run --release --example null_milter -- --socket inet:127.0.0.1:8899
//! cargo run --release --example null_milter -- --socket unix:/run/null-milter.sock
//! ```
//! Stops on SIGINT or SIGTERM (a unix socket file is removed).
#![allow(clippy::unwrap_used)]

use clap::Parser;
use indymilter::{Callbacks, EitherListener, Listener, Status};
use std::io;
use std::path::PathBuf;
use std::task::{Context, Poll};
use tokio::net::{TcpListener, TcpStream, UnixListener};

#[derive(Parser)]
#[command(about = "A milter that accepts everything (protocol ceiling for benchmarks)")]
struct Args {
    /// inet:HOST:PORT or unix:/path
    #[arg(long, default_value = "inet:127.0.0.1:8899")]
    socket: String,
    /// Worker threads (default: one per core, as spoofguard)
    #[arg(long)]
    threads: Option<usize>,
    /// Connections served at once
    #[arg(long, default_value_t = 1000)]
    max_connections: usize,
}

struct NoDelay(TcpListener);

impl Listener for NoDelay {
    type Io = TcpStream;
    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<TcpStream>> {
        self.0.poll_accept(cx).map_ok(|(s, _)| {
            let _ = s.set_nodelay(true);
            s
        })
    }
}

fn callbacks() -> Callbacks<()> {
    Callbacks::new()
        .on_negotiate(|_, _, _| Box::pin(async { Status::Continue }))
        .on_connect(|_, _, _| Box::pin(async { Status::Continue }))
        .on_helo(|_, _| Box::pin(async { Status::Continue }))
        .on_mail(|_, _| Box::pin(async { Status::Continue }))
        .on_rcpt(|_, _| Box::pin(async { Status::Continue }))
        .on_data(|_| Box::pin(async { Status::Continue }))
        .on_header(|_, _, _| Box::pin(async { Status::Continue }))
        .on_eoh(|_| Box::pin(async { Status::Continue }))
        .on_body(|_, _| Box::pin(async { Status::Continue }))
        .on_eom(|_| Box::pin(async { Status::Continue }))
        .on_abort(|_| Box::pin(async { Status::Continue }))
        .on_close(|_| Box::pin(async { Status::Continue }))
        .on_unknown(|_, _| Box::pin(async { Status::Continue }))
}

async fn shutdown() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).unwrap();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

fn main() -> io::Result<()> {
    let args = Args::parse();
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = args.threads {
        rt.worker_threads(n);
    }
    let rt = rt.enable_all().build()?;
    rt.block_on(async {
        let config = indymilter::Config {
            max_connections: args.max_connections,
            ..Default::default()
        };
        let mut unix_path: Option<PathBuf> = None;
        let listener = if let Some(path) = args
            .socket
            .strip_prefix("unix:")
            .or_else(|| args.socket.strip_prefix("local:"))
        {
            let _ = std::fs::remove_file(path);
            let l = UnixListener::bind(path)?;
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))?;
            unix_path = Some(path.into());
            EitherListener::Unix(l)
        } else {
            let addr = args
                .socket
                .strip_prefix("inet:")
                .unwrap_or(&args.socket)
                .to_owned();
            EitherListener::Tcp(NoDelay(TcpListener::bind(addr).await?))
        };
        eprintln!("null-milter listening on {}", args.socket);
        let r = indymilter::run(listener, callbacks(), config, shutdown()).await;
        if let Some(p) = unix_path {
            let _ = std::fs::remove_file(p);
        }
        r
    })
}
