//! The milter server: binds the configured socket, wires the callbacks, runs until shutdown.
//! Only this module imports indymilter.

mod apply;
mod callbacks;
mod guard;
pub mod session;

use crate::config::ListenSpec;
use crate::runtime::Runtime;
use indymilter::{EitherListener, Listener};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use tokio::net::{TcpListener, TcpStream, UnixListener};

pub use callbacks::make_callbacks;

/// The runtime in force; a reload replaces the inner `Arc`, and each connection keeps the one
/// it negotiated with.
pub type SharedRuntime = Arc<RwLock<Arc<Runtime>>>;

/// The current runtime.
pub fn current(shared: &SharedRuntime) -> Arc<Runtime> {
    match shared.read() {
        Ok(guard) => guard.clone(),
        // A panic while holding the lock cannot leave a half-written Arc: use it.
        Err(poisoned) => poisoned.into_inner().clone(),
    }
}

/// A TCP listener that sets TCP_NODELAY on every accepted socket. Without it, Nagle plus
/// delayed ACK stall each end-of-message reply by about 40 ms (CRATES.md, gotcha 5).
pub struct NoDelayListener(pub TcpListener);

impl Listener for NoDelayListener {
    type Io = TcpStream;

    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<TcpStream>> {
        self.0.poll_accept(cx).map_ok(|(stream, _)| {
            let _ = stream.set_nodelay(true);
            stream
        })
    }
}

/// A bound milter socket.
pub type MilterListener = EitherListener<NoDelayListener, UnixListener>;

/// Binds the socket in `spec`. A stale unix socket file is replaced; `mode` is applied to it.
pub async fn bind(spec: &ListenSpec, mode: u32) -> io::Result<MilterListener> {
    match spec {
        ListenSpec::Inet(addr) => Ok(EitherListener::Tcp(NoDelayListener(
            TcpListener::bind(addr).await?,
        ))),
        ListenSpec::Unix(path) => {
            use std::os::unix::fs::{FileTypeExt, PermissionsExt};
            if let Ok(meta) = std::fs::symlink_metadata(path) {
                if meta.file_type().is_socket() {
                    std::fs::remove_file(path)?;
                } else {
                    return Err(io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        format!("{} exists and is not a socket", path.display()),
                    ));
                }
            }
            let listener = UnixListener::bind(path)?;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
            Ok(EitherListener::Unix(listener))
        }
    }
}

/// Serves milter connections until `shutdown` completes; in-flight commands finish first.
pub async fn serve(
    listener: MilterListener,
    shared: SharedRuntime,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let rt = current(&shared);
    let config = indymilter::Config {
        max_connections: rt.config.milter.max_connections,
        connection_timeout: rt.config.milter.connection_timeout,
        ..Default::default()
    };
    drop(rt);
    let callbacks = make_callbacks(shared);
    let listener = guard::GuardedListener::new(listener, config.connection_timeout);
    indymilter::run(
        listener,
        callbacks,
        config,
        Box::pin(shutdown) as Pin<Box<_>>,
    )
    .await
}

#[cfg(test)]
mod tests;
