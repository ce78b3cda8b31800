//! The HTTP/1.1 server under every listener: an accept loop over hyper's
//! connection builder (what `axum::serve` does, with the bounds it lacks).
//!
//! - At most `MAX_CONNECTIONS` open connections: beyond them the loop stops
//!   accepting, so new ones wait in the kernel's backlog (bounded by the
//!   listen backlog) until one closes. Closing them at once instead would cost
//!   an accept and a close per attempt and only invite a client to retry at
//!   once; a connection waiting in the backlog is served as soon as there is
//!   room, and the backlog's own bound still refuses the excess.
//! - A connection that has not sent a whole request head within
//!   `HEADER_READ_TIMEOUT` of opening, or of its first byte after a response,
//!   is closed; one idle between requests is closed after `KEEP_ALIVE_TIMEOUT`.
//!   While a request is handled there is no deadline here: `REQUEST_TIMEOUT`
//!   bounds it.
//! - Shutdown stops accepting, lets each connection finish the request it is
//!   serving, closes idle ones at once, and drops whatever is left after the
//!   grace period.
//!
//! HTTP/1.1 only (`axum::serve` also took cleartext HTTP/2 with prior
//! knowledge): every client of ours (the proxy in front, the router's subgraph
//! client, tests, probes) speaks HTTP/1.1 to the services.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// How connections on one listener are bounded.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub header_read_timeout: Duration,
    pub keep_alive_timeout: Duration,
    pub max_connections: usize,
}

/// Pause after an accept error that is not about one connection (out of file
/// descriptors, say): retrying at once would spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_secs(1);

/// Serves `app` on `listener` until `shutdown`, then lets open connections
/// finish for at most `grace`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    service: &'static str,
    shutdown: CancellationToken,
    grace: Duration,
) {
    // Registered now, so the gauge reads 0 rather than nothing before the first client.
    metrics::gauge!(super::OPEN_CONNECTIONS, "service" => service).increment(0.0);
    let connections = TaskTracker::new();
    // Cancelled once the grace period is over: connections still open are dropped.
    let abandon = CancellationToken::new();
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    while let Some((stream, peer, slot)) = accept(&listener, &slots, &shutdown).await {
        let connection = Connection { app: app.clone(), peer, limits, service, _slot: slot };
        connections.spawn(connection.serve(stream, shutdown.clone(), abandon.clone()));
    }
    drop(listener);
    connections.close();
    if tokio::time::timeout(grace, connections.wait()).await.is_err() {
        tracing::warn!(grace_secs = grace.as_secs_f64(), "shutdown grace period over; dropping unfinished requests");
        abandon.cancel();
        connections.wait().await;
    }
}

/// The next connection, once there is room for it; `None` at shutdown.
async fn accept(
    listener: &TcpListener,
    slots: &Arc<Semaphore>,
    shutdown: &CancellationToken,
) -> Option<(TcpStream, SocketAddr, OwnedSemaphorePermit)> {
    let slot = tokio::select! {
        slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
        () = shutdown.cancelled() => return None,
    };
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.cancelled() => return None,
        };
        match accepted {
            Ok((stream, peer)) => return Some((stream, peer, slot)),
            Err(error) if is_connection_error(&error) => {}
            Err(error) => {
                tracing::error!(%error, "accepting connections failed; pausing");
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
            }
        }
    }
}

/// Errors about the one connection being accepted (it went away first).
fn is_connection_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    )
}

struct Connection {
    app: Router,
    peer: SocketAddr,
    limits: ConnectionLimits,
    service: &'static str,
    /// Held while the connection is open: one of `MAX_CONNECTIONS`.
    _slot: OwnedSemaphorePermit,
}

impl Connection {
    async fn serve(self, stream: TcpStream, shutdown: CancellationToken, abandon: CancellationToken) {
        let gauge = metrics::gauge!(super::OPEN_CONNECTIONS, "service" => self.service);
        gauge.increment(1.0);
        let clock = Arc::new(IdleClock::new(self.limits));
        if first_byte(&stream, &clock, &shutdown).await {
            // Boxed: the HTTP connection's state is allocated only once the
            // client has said something.
            Box::pin(self.serve_http(stream, clock, shutdown, abandon)).await;
        }
        gauge.decrement(1.0);
    }

    async fn serve_http(
        self,
        stream: TcpStream,
        clock: Arc<IdleClock>,
        shutdown: CancellationToken,
        abandon: CancellationToken,
    ) {
        let io = TokioIo::new(Watched { stream, clock: clock.clone() });
        let (app, peer, requests) = (self.app, self.peer, clock.clone());
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let busy = requests.request_started();
            let mut request = request.map(Body::new);
            // What axum's `into_make_service_with_connect_info` would add.
            request.extensions_mut().insert(ConnectInfo(peer));
            let response = app.clone().oneshot(request);
            async move {
                let response = response.await?;
                Ok::<_, Infallible>(response.map(|body| Tracked { body, _busy: busy }))
            }
        });
        // No hyper timer: its header timeout also runs while the connection is
        // idle between requests, which the clock here tells apart.
        let mut connection =
            pin!(hyper::server::conn::http1::Builder::new().header_read_timeout(None).serve_connection(io, service));
        let mut expired = pin!(clock.expired());
        let mut draining = false;
        loop {
            tokio::select! {
                served = connection.as_mut() => {
                    if let Err(error) = served {
                        tracing::debug!(%error, "connection ended with an error");
                    }
                    break;
                }
                () = &mut expired => {
                    tracing::debug!("closing a connection that sent no request in time");
                    break;
                }
                () = shutdown.cancelled(), if !draining => {
                    draining = true;
                    connection.as_mut().graceful_shutdown();
                }
                () = abandon.cancelled() => break,
            }
        }
    }
}

/// Waits for a new connection's first byte: `false` if it closed, or sent
/// nothing within `HEADER_READ_TIMEOUT` or before shutdown. Until then it holds
/// no HTTP state (hyper's read and write buffers are 16 KiB), so a socket that
/// sends nothing costs little more than its descriptor.
async fn first_byte(stream: &TcpStream, clock: &IdleClock, shutdown: &CancellationToken) -> bool {
    let mut byte = [0u8; 1];
    tokio::select! {
        // Not `readable()`: a new socket reports itself readable at once.
        peeked = stream.peek(&mut byte) => matches!(peeked, Ok(n) if n > 0),
        () = tokio::time::sleep_until(clock.deadline()) => false,
        () = shutdown.cancelled() => false,
    }
}

/// When a connection that is not serving a request is closed: one waiting for
/// a request head `HEADER_READ_TIMEOUT` after it opened or after the first
/// byte of that head, one idle between requests `KEEP_ALIVE_TIMEOUT` after
/// its last response. A request being served holds the clock (see [`Busy`]).
struct IdleClock {
    limits: ConnectionLimits,
    opened: Instant,
    /// The deadline, in milliseconds after `opened`.
    deadline_ms: AtomicU64,
    /// Requests read and not yet answered to the last byte.
    requests: AtomicUsize,
    /// Idle after a response: the next byte read starts a request head.
    between_requests: AtomicBool,
    /// Woken when the deadline moves: the last request in progress was
    /// answered, or a new head began (an earlier deadline than keep-alive's).
    changed: Notify,
}

impl IdleClock {
    fn new(limits: ConnectionLimits) -> Self {
        let clock = Self {
            limits,
            opened: Instant::now(),
            deadline_ms: AtomicU64::new(0),
            requests: AtomicUsize::new(0),
            between_requests: AtomicBool::new(false),
            changed: Notify::new(),
        };
        clock.set_deadline(limits.header_read_timeout);
        clock
    }

    fn set_deadline(&self, from_now: Duration) {
        let deadline = (self.opened.elapsed() + from_now).as_millis();
        self.deadline_ms.store(u64::try_from(deadline).unwrap_or(u64::MAX), Ordering::Release);
    }

    fn deadline(&self) -> Instant {
        self.opened + Duration::from_millis(self.deadline_ms.load(Ordering::Acquire))
    }

    fn bytes_read(&self) {
        if self.between_requests.load(Ordering::Relaxed) && self.between_requests.swap(false, Ordering::AcqRel) {
            self.set_deadline(self.limits.header_read_timeout);
            self.changed.notify_one();
        }
    }

    fn request_started(self: &Arc<Self>) -> Busy {
        self.requests.fetch_add(1, Ordering::AcqRel);
        self.between_requests.store(false, Ordering::Release);
        Busy(self.clone())
    }

    /// Resolves once the connection's deadline has passed with no request in progress.
    async fn expired(&self) {
        loop {
            // A permit left by an earlier change only makes this loop look again.
            let changed = self.changed.notified();
            if self.requests.load(Ordering::Acquire) > 0 {
                changed.await;
                continue;
            }
            let deadline = self.deadline();
            if Instant::now() >= deadline {
                return;
            }
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => {}
                () = changed => {}
            }
        }
    }
}

/// One request in progress on a connection: from its head read until its
/// response body is sent (or dropped).
struct Busy(Arc<IdleClock>);

impl Drop for Busy {
    fn drop(&mut self) {
        let clock = &self.0;
        if clock.requests.fetch_sub(1, Ordering::AcqRel) == 1 {
            clock.set_deadline(clock.limits.keep_alive_timeout);
            clock.between_requests.store(true, Ordering::Release);
            clock.changed.notify_one();
        }
    }
}

/// A response body that holds its request's [`Busy`] until it is done.
struct Tracked {
    body: Body,
    _busy: Busy,
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The connection's socket, telling its clock when bytes arrive.
struct Watched {
    stream: TcpStream,
    clock: Arc<IdleClock>,
}

impl AsyncRead for Watched {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.clock.bytes_read();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}
