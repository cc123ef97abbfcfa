//! The milter server: binds the configured socket, wires the callbacks, runs until shutdown.
//! Only this module imports indymilter.

mod callbacks;
pub mod session;

use crate::config::ListenSpec;
use crate::evaluate::Runtime;
use indymilter::{EitherListener, Listener};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream, UnixListener};
use tokio::time::Sleep;
use tracing::{debug, error, info};

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

/// How long to wait before accepting again after an error such as EMFILE.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// A listener whose accept errors are waited out instead of returned.
///
/// Implementation note: indymilter's accept loop ends the whole milter, with every open
/// connection, on the first accept error. Such errors are transient: a client gone before it
/// was accepted (ECONNABORTED), or no file descriptor left (EMFILE, ENFILE) until some
/// connection closes. Tested by `running_out_of_file_descriptors_does_not_stop_the_milter`.
struct AcceptRetry<L> {
    inner: L,
    pause: Option<Pin<Box<Sleep>>>,
    failing: bool,
}

impl<L: Listener> Listener for AcceptRetry<L> {
    type Io = L::Io;

    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<L::Io>> {
        loop {
            if let Some(pause) = &mut self.pause {
                ready!(pause.as_mut().poll(cx));
                self.pause = None;
            }
            match ready!(self.inner.poll_accept(cx)) {
                Ok(io) => {
                    if std::mem::take(&mut self.failing) {
                        info!("accepting connections again");
                    }
                    return Poll::Ready(Ok(io));
                }
                // That one connection is gone; the next may be waiting already.
                Err(e) if is_per_connection(&e) => debug!(error = %e, "accept failed"),
                Err(e) => {
                    if !std::mem::replace(&mut self.failing, true) {
                        error!(error = %e, "cannot accept connections, retrying every 100 ms");
                    }
                    self.pause = Some(Box::pin(tokio::time::sleep(ACCEPT_PAUSE)));
                }
            }
        }
    }
}

fn is_per_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    )
}

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
    let listener = AcceptRetry {
        inner: listener,
        pause: None,
        failing: false,
    };
    indymilter::run(
        listener,
        callbacks,
        config,
        Box::pin(shutdown) as Pin<Box<_>>,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;
    use tokio::io::DuplexStream;

    /// Hands out the queued results, then nothing.
    struct Scripted(VecDeque<io::Result<DuplexStream>>);

    impl Listener for Scripted {
        type Io = DuplexStream;

        fn poll_accept(&mut self, _: &mut Context<'_>) -> Poll<io::Result<DuplexStream>> {
            self.0.pop_front().map_or(Poll::Pending, Poll::Ready)
        }
    }

    #[tokio::test]
    async fn accept_errors_are_waited_out() {
        let (stream, _peer) = tokio::io::duplex(8);
        let script = [
            Err(io::Error::from_raw_os_error(24)), // EMFILE
            Err(io::ErrorKind::ConnectionAborted.into()),
            Err(io::Error::from_raw_os_error(23)), // ENFILE
            Ok(stream),
        ];
        let mut listener = AcceptRetry {
            inner: Scripted(script.into_iter().collect()),
            pause: None,
            failing: false,
        };
        let start = tokio::time::Instant::now();
        let accepted = listener.accept().await;
        assert!(accepted.is_ok());
        // Two pauses, none for the aborted connection.
        let took = start.elapsed();
        assert!(took >= ACCEPT_PAUSE * 2, "{took:?}");
        assert!(!listener.failing);
    }
}
