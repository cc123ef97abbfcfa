//! Guards around indymilter's connection handling, for two traps that let one misbehaving
//! client (or a flood of them) harm every other connection. Both are tested in
//! `tests/protocol.rs`.
//!
//! 1. indymilter's accept loop ends the whole milter, with every open connection, on the
//!    first accept error. Such errors are transient: a client gone before it was accepted
//!    (ECONNABORTED), or no file descriptor left (EMFILE, ENFILE) until some connection
//!    closes. `GuardedListener` waits them out.
//! 2. When a session ends, indymilter shuts the socket down after flushing what is buffered,
//!    with no time limit. A client that never reads its replies thus keeps the socket, a task
//!    and its buffers forever, outside `max_connections` (the session's slot is already
//!    free). `WriteDeadline` fails a write that makes no progress for the connection
//!    time-out, so the socket is then closed.

use indymilter::Listener;
use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Sleep, sleep};
use tracing::{debug, error, info};

/// How long to wait before accepting again after an error such as EMFILE.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// A listener whose accept errors are waited out instead of returned, and whose connections
/// are wrapped in `WriteDeadline`.
pub struct GuardedListener<L> {
    inner: L,
    write_stall: Duration,
    pause: Option<Pin<Box<Sleep>>>,
    failing: bool,
}

impl<L> GuardedListener<L> {
    /// `write_stall`: how long a write may make no progress (the connection time-out).
    pub fn new(inner: L, write_stall: Duration) -> Self {
        Self {
            inner,
            write_stall,
            pause: None,
            failing: false,
        }
    }
}

impl<L: Listener> Listener for GuardedListener<L> {
    type Io = WriteDeadline<L::Io>;

    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Self::Io>> {
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
                    return Poll::Ready(Ok(WriteDeadline::new(io, self.write_stall)));
                }
                // That one connection is gone; the next may be waiting already.
                Err(e) if is_per_connection(&e) => debug!(error = %e, "accept failed"),
                Err(e) => {
                    if !std::mem::replace(&mut self.failing, true) {
                        error!(error = %e, "cannot accept connections, retrying every 100 ms");
                    }
                    self.pause = Some(Box::pin(sleep(ACCEPT_PAUSE)));
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

/// A stream whose writes fail with `TimedOut` once they have made no progress for `limit`.
/// indymilter already times each whole reply with the same limit, so this only ever fires
/// where it does not: in the final flush.
pub struct WriteDeadline<S> {
    inner: S,
    limit: Duration,
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<S> WriteDeadline<S> {
    fn new(inner: S, limit: Duration) -> Self {
        Self {
            inner,
            limit,
            stalled: None,
        }
    }

    /// Passes `poll` through, starting the clock when it stalls and failing it once the
    /// clock has run out.
    fn guard<T>(&mut self, cx: &mut Context<'_>, poll: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if poll.is_ready() {
            self.stalled = None;
            return poll;
        }
        let limit = self.limit;
        let clock = self.stalled.get_or_insert_with(|| Box::pin(sleep(limit)));
        ready!(clock.as_mut().poll(cx));
        self.stalled = None;
        Poll::Ready(Err(io::ErrorKind::TimedOut.into()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteDeadline<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.guard(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.guard(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        self.guard(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.guard(cx, poll)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

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
        let mut listener =
            GuardedListener::new(Scripted(script.into_iter().collect()), Duration::MAX);
        let start = tokio::time::Instant::now();
        assert!(listener.accept().await.is_ok());
        // Two pauses, none for the aborted connection.
        let took = start.elapsed();
        assert!(took >= ACCEPT_PAUSE * 2, "{took:?}");
        assert!(!listener.failing);
    }

    #[tokio::test]
    async fn a_write_without_progress_fails_after_the_limit() {
        let limit = Duration::from_secs(1);
        let (stream, mut peer) = tokio::io::duplex(4);
        let mut guarded = WriteDeadline::new(stream, limit);
        // Progress resets the clock: the peer reads a little at a time, slower than the limit
        // in total.
        let reader = tokio::spawn(async move {
            let mut buf = [0u8; 4];
            for _ in 0..12 {
                tokio::time::sleep(limit / 10).await;
                peer.read_exact(&mut buf).await.unwrap();
            }
            peer
        });
        let start = tokio::time::Instant::now();
        guarded.write_all(&[1; 52]).await.unwrap();
        let _peer = reader.await.unwrap();
        assert!(start.elapsed() > limit);
        // Nobody reads any more: the write fails once it has stalled for the limit.
        let start = tokio::time::Instant::now();
        let err = guarded.write_all(&[2; 16]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(start.elapsed() >= limit);
    }
}
