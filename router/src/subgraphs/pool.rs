//! Each subgraph's connections: HTTP/1.1 or HTTP/2, over TCP or TLS, opened
//! within a connect timeout and capped in number; hyper frames and parses
//! every message.
//!
//! A GraphQL fetch over HTTP/1.1 takes an idle connection from its
//! subgraph's stack and drives it in the request's own task, polling hyper's
//! connection future beside the exchange: no task per connection and no
//! cross-task wake-up per request, which is where a pooled client spends its
//! time on a loopback subgraph. HTTP/2 connections (ALPN `h2`, or prior
//! knowledge with `SUBGRAPH_HTTP=http2`) are shared by concurrent fetches, so
//! their connection futures run as tasks. Streamed bodies (uploads, file
//! downloads) get a connection of their own, closed when the body ends.
//!
//! Every connection open or being opened holds one slot of the subgraph's cap
//! ([`ConnectionLimits`]), idle ones included.

use std::collections::VecDeque;
use std::error::Error as StdError;
use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, Uri, header};
use bytes::Bytes;
use futures::Stream;
use futures::task::AtomicWaker;
use http_body_util::BodyExt;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::connector::{Connector, Stream as Io};
pub use crate::config::ConnectionLimits;
use crate::config::Protocol;

/// An idle connection older than this is closed rather than reused: servers
/// close theirs after a while (Node's default is 5 s, nginx's 75 s), and a
/// connection closed on the far side is only noticed when it is read.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// A response head (status line and headers) larger than this is refused.
const MAX_HEAD: usize = 64 * 1024;

pub type BoxError = Box<dyn StdError + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("could not connect: {0}")]
    Connect(BoxError),
    #[error("connection failed: {0}")]
    Http(#[from] hyper::Error),
    #[error("connection closed before a complete response")]
    Closed,
    #[error("not an HTTP response: {0}")]
    Malformed(&'static str),
    #[error("the response body is over the {0} bytes allowed")]
    TooLarge(usize),
}

/// Every connection the cap allows is in use, and none came free in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Saturated;

/// A complete answer: status and the whole body.
#[derive(Debug)]
pub struct Response {
    pub status: StatusCode,
    pub body: Bytes,
}

/// What a request sends: bytes known up front (a GraphQL POST, or nothing),
/// or a stream (an upload, read as the connection writes it).
pub enum OutBody {
    Full(Option<Bytes>),
    Stream(Pin<Box<dyn Stream<Item = Result<Bytes, BoxError>> + Send>>),
}

impl hyper::body::Body for OutBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            OutBody::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            OutBody::Stream(stream) => stream.as_mut().poll_next(cx).map(|next| next.map(|r| r.map(Frame::data))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, OutBody::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            OutBody::Full(bytes) => SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64)),
            OutBody::Stream(_) => SizeHint::default(),
        }
    }
}

/// One subgraph's address and TLS name, the headers common to all its
/// requests, its idle HTTP/1.1 connections (most recently used last, so the
/// warmest is reused), its shared HTTP/2 connection, and the slots that cap them.
pub struct Pool {
    connector: Arc<Connector>,
    host: String,
    port: u16,
    tls: bool,
    connect_timeout: Duration,
    /// Origin form (`/graphql?x`) for HTTP/1.1; absolute form for HTTP/2.
    target: Uri,
    absolute: Uri,
    /// `host` for HTTP/1.1 (HTTP/2 carries the authority in the URI).
    authority: HeaderValue,
    /// The router's secret, on every request.
    secret: Option<(HeaderName, HeaderValue)>,
    /// The headers every GraphQL fetch starts from (content type, accept, the
    /// secret; `host` too over HTTP/1.1), built once: cloning a map costs a
    /// fraction of hashing each header into a fresh one per fetch.
    graphql_headers: [HeaderMap; 2],
    /// Largest response body read (`SUBGRAPH_MAX_RESPONSE_BYTES`).
    max_body: usize,
    idle: Mutex<VecDeque<Idle>>,
    shared: Mutex<Option<http2::SendRequest<OutBody>>>,
    /// One permit per connection to the subgraph, however it is used.
    slots: Arc<Semaphore>,
    /// Requests waiting for a slot. While any wait, a connection that finishes
    /// is closed rather than kept idle, so that its slot goes to them.
    waiting: AtomicUsize,
    wait: Duration,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool").field("host", &self.host).field("port", &self.port).field("tls", &self.tls).finish()
    }
}

/// What a GraphQL fetch goes out on: an idle or shared connection, or a slot to open one.
pub struct Lease(Leased);

enum Leased {
    Reuse(Box<Connection>),
    Shared(http2::SendRequest<OutBody>),
    Open(OwnedSemaphorePermit),
}

/// The room for one connection used elsewhere: hold it as long as that connection is open.
#[derive(Debug)]
pub struct Slot {
    _held: OwnedSemaphorePermit,
}

struct Idle {
    connection: Box<Connection>,
    since: Instant,
}

/// An HTTP/1.1 connection: hyper's sender, and the future that does its IO,
/// polled by whichever request holds the connection.
struct Connection {
    sender: http1::SendRequest<OutBody>,
    driver: http1::Connection<TokioIo<Io>, OutBody>,
    /// The driver finished (the connection is closed): it must not be polled again.
    ended: bool,
    /// What the exchange and the driver are polled with (see [`drive`]).
    wakes: Arc<LocalWakes>,
    /// Its place under the cap, given back when the connection is dropped.
    _slot: OwnedSemaphorePermit,
}

/// A fresh connection: HTTP/1.1 to drive in-task, or HTTP/2 whose driver runs as a task.
enum Opened {
    Http1(Box<Connection>),
    Http2(http2::SendRequest<OutBody>),
}

/// A failed exchange, and whether the server can have seen the request at all.
struct Failure {
    error: TransportError,
    /// Nothing came back: on a reused connection this is most often one the
    /// server closed while it sat idle, and a fresh connection will do.
    nothing_read: bool,
    /// The request was never written: any request may go again.
    unsent: bool,
}

impl From<TransportError> for Failure {
    fn from(error: TransportError) -> Self {
        Failure { error, nothing_read: false, unsent: false }
    }
}

/// Whether a client header may be passed on: never one that frames the
/// message or concerns only this hop, which would let a client's header
/// smuggle or split requests on the router's connection to the subgraph.
pub fn forwardable(name: &HeaderName) -> bool {
    !matches!(
        name.as_str(),
        "host"
            | "content-length"
            | "transfer-encoding"
            | "connection"
            | "keep-alive"
            | "te"
            | "trailer"
            | "upgrade"
            | "expect"
            | "proxy-connection"
            | "proxy-authorization"
            | "content-type"
            | "accept"
            // The router's own: a client's must never stand in for it.
            | "x-taskgraph-router-secret"
    )
}

impl Pool {
    /// A pool for an `http://` or `https://` URL, reading response bodies up to
    /// `max_body` bytes, over at most `limits.max` connections, each opened
    /// (TCP and TLS) within `connect_timeout`.
    pub fn new(
        uri: &Uri,
        accept: &str,
        max_body: usize,
        limits: ConnectionLimits,
        connector: Arc<Connector>,
        connect_timeout: Duration,
    ) -> anyhow::Result<Self> {
        let tls = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => anyhow::bail!("only http:// and https:// URLs are supported"),
        };
        let authority = uri.authority().ok_or_else(|| anyhow::anyhow!("the URL has no host"))?;
        let host = authority.host().trim_start_matches('[').trim_end_matches(']').to_owned();
        let port = authority.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let target: Uri = uri.path_and_query().map_or("/", |p| p.as_str()).parse()?;
        let accept = HeaderValue::from_str(accept)?;
        Ok(Self {
            connector,
            host,
            port,
            tls,
            connect_timeout,
            target,
            absolute: uri.clone(),
            authority: HeaderValue::from_str(authority.as_str())?,
            secret: None,
            graphql_headers: Default::default(),
            max_body,
            idle: Mutex::new(VecDeque::new()),
            shared: Mutex::new(None),
            slots: Arc::new(Semaphore::new(limits.max.clamp(1, Semaphore::MAX_PERMITS))),
            waiting: AtomicUsize::new(0),
            wait: limits.wait,
        }
        .with_graphql_headers(accept))
    }

    /// Sends `name: value` on every request too (the router's secret).
    pub fn with_header(mut self, name: &HeaderName, value: &HeaderValue) -> Self {
        self.secret = Some((name.clone(), value.clone()));
        let accept = self.graphql_headers[0][header::ACCEPT].clone();
        self.with_graphql_headers(accept)
    }

    fn with_graphql_headers(mut self, accept: HeaderValue) -> Self {
        self.graphql_headers = [false, true].map(|http2| {
            let mut map = HeaderMap::with_capacity(8);
            map.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            map.insert(header::ACCEPT, accept.clone());
            self.add_own_headers(&mut map, http2);
            map
        });
        self
    }

    /// Largest response body read.
    pub fn max_body(&self) -> usize {
        self.max_body
    }

    /// The subgraph's host (a name or an IP address).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The URL's path and query (`/graphql`), where GraphQL requests go.
    pub fn path_and_query(&self) -> &str {
        self.target.path_and_query().map_or("/", |p| p.as_str())
    }

    /// A shared HTTP/2 connection, else an idle one, else a free slot, else the
    /// first slot to come free within the wait. The wait is not the
    /// subgraph's time: it is the router's own traffic that fills the slots.
    pub async fn lease(&self) -> Result<Lease, Saturated> {
        if let Some(lease) = self.checkout() {
            return Ok(lease);
        }
        if let Ok(slot) = self.slots.clone().try_acquire_owned() {
            return Ok(Lease(Leased::Open(slot)));
        }
        let _waiting = Waiting::new(&self.waiting);
        // One checked in before this request counted as waiting is idle now.
        if let Some(lease) = self.checkout() {
            return Ok(lease);
        }
        self.wait_for_slot().await.map(|slot| Lease(Leased::Open(slot)))
    }

    /// A slot for a connection used elsewhere; an idle connection is closed to
    /// make room if need be.
    pub async fn slot(&self) -> Result<Slot, Saturated> {
        if let Ok(slot) = self.slots.clone().try_acquire_owned() {
            return Ok(Slot { _held: slot });
        }
        let _waiting = Waiting::new(&self.waiting);
        // The least recently used goes: the likeliest to be closed anyway.
        drop(self.idle.lock().expect("pool lock").pop_front());
        self.wait_for_slot().await.map(|slot| Slot { _held: slot })
    }

    async fn wait_for_slot(&self) -> Result<OwnedSemaphorePermit, Saturated> {
        match tokio::time::timeout(self.wait, self.slots.clone().acquire_owned()).await {
            Ok(Ok(slot)) => Ok(slot),
            // The semaphore is never closed: only the timeout ends the wait.
            Ok(Err(_)) | Err(_) => Err(Saturated),
        }
    }

    /// Posts a GraphQL `body` with the allow-listed `headers` (already checked
    /// with [`forwardable`]) on what `lease` holds. A reused connection that
    /// fails before anything is read is replaced by a fresh one (in its slot)
    /// for the same request when `replay` allows it (for queries: a mutation
    /// the server might have run is not sent twice; one never written is).
    pub async fn post(
        &self,
        lease: Lease,
        headers: &HeaderMap,
        body: &Bytes,
        replay: bool,
    ) -> Result<Response, TransportError> {
        let slot = match lease.0 {
            Leased::Shared(mut sender) => {
                let request = self.graphql_request(headers, body, true);
                return exchange_h2(&mut sender, request, self.max_body).await;
            }
            Leased::Reuse(mut connection) => {
                let request = self.graphql_request(headers, body, false);
                match connection.exchange(request, self.max_body).await {
                    Ok((response, reusable)) => {
                        if reusable {
                            self.checkin(connection);
                        }
                        return Ok(response);
                    }
                    Err(failure) if failure.unsent || (failure.nothing_read && replay) => connection._slot,
                    Err(failure) => return Err(failure.error),
                }
            }
            Leased::Open(slot) => slot,
        };
        // Boxed: opening a connection is rare, and its future (TCP, TLS and HTTP
        // handshakes) would otherwise make every fetch's future, moved several
        // times on its way to the runtime, several times larger.
        match Box::pin(self.connect(slot)).await? {
            Opened::Http2(mut sender) => {
                let request = self.graphql_request(headers, body, true);
                exchange_h2(&mut sender, request, self.max_body).await
            }
            Opened::Http1(mut connection) => {
                let request = self.graphql_request(headers, body, false);
                let (response, reusable) = connection.exchange(request, self.max_body).await.map_err(|f| f.error)?;
                if reusable {
                    self.checkin(connection);
                }
                Ok(response)
            }
        }
    }

    /// A request that is not a GraphQL fetch (a file download, an upload) on a
    /// connection of its own, which closes when the response body has been read
    /// or dropped. `path_and_query` replaces the URL's; the answer's body streams.
    pub async fn stream(
        &self,
        method: Method,
        path_and_query: &str,
        headers: HeaderMap,
        body: OutBody,
    ) -> Result<axum::http::Response<Incoming>, StreamError> {
        let slot = self.slot().await.map_err(|_| StreamError::Saturated)?;
        let opened = self.connect(slot._held).await.map_err(StreamError::Transport)?;
        let http2 = matches!(opened, Opened::Http2(_));
        let uri = if http2 {
            let mut parts = self.absolute.clone().into_parts();
            parts.path_and_query = Some(path_and_query.parse().map_err(|_| StreamError::BadPath)?);
            Uri::from_parts(parts).map_err(|_| StreamError::BadPath)?
        } else {
            path_and_query.parse().map_err(|_| StreamError::BadPath)?
        };
        let mut request = Request::builder().method(method).uri(uri).body(body).map_err(|_| StreamError::BadPath)?;
        *request.headers_mut() = headers;
        self.add_own_headers(request.headers_mut(), http2);
        let answer = match opened {
            Opened::Http2(mut sender) => {
                sender.ready().await.map_err(TransportError::from)?;
                sender.send_request(request).await
            }
            Opened::Http1(connection) => {
                let Connection { mut sender, driver, _slot, .. } = *connection;
                // The body streams after this returns: its connection runs as a task,
                // which ends (freeing the slot) once the body is done and the sender gone.
                tokio::spawn(async move {
                    let _slot = _slot;
                    let _ = driver.await;
                });
                sender.send_request(request).await
            }
        };
        answer.map_err(|e| StreamError::Transport(e.into()))
    }

    fn graphql_request(&self, headers: &HeaderMap, body: &Bytes, http2: bool) -> Request<OutBody> {
        let uri = if http2 { self.absolute.clone() } else { self.target.clone() };
        let mut request = Request::new(OutBody::Full(Some(body.clone())));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = uri;
        let map = request.headers_mut();
        *map = self.graphql_headers[usize::from(http2)].clone();
        // Forwarded headers never include the ones above (see `forwardable`).
        for (name, value) in headers {
            map.append(name, value.clone());
        }
        request
    }

    fn add_own_headers(&self, map: &mut HeaderMap, http2: bool) {
        if !http2 {
            map.insert(header::HOST, self.authority.clone());
        }
        if let Some((name, value)) = &self.secret {
            map.insert(name, value.clone());
        }
    }

    /// The shared HTTP/2 connection if it is open, else the most recently used
    /// idle connection that is still open, if any.
    fn checkout(&self) -> Option<Lease> {
        if let Some(sender) = self.shared_sender() {
            return Some(Lease(Leased::Shared(sender)));
        }
        let mut idle = self.idle.lock().expect("pool lock");
        while let Some(Idle { mut connection, since }) = idle.pop_back() {
            if since.elapsed() < IDLE_TIMEOUT && connection.looks_open() {
                return Some(Lease(Leased::Reuse(connection)));
            }
        }
        None
    }

    fn shared_sender(&self) -> Option<http2::SendRequest<OutBody>> {
        let mut shared = self.shared.lock().expect("pool lock");
        match shared.as_ref() {
            Some(sender) if !sender.is_closed() => Some(sender.clone()),
            Some(_) => {
                *shared = None;
                None
            }
            None => None,
        }
    }

    fn checkin(&self, connection: Box<Connection>) {
        let mut idle = self.idle.lock().expect("pool lock");
        // Read under the lock that `lease` checks out under, so that a request
        // that counted itself as waiting either sees this connection idle or
        // gets its slot.
        if self.waiting.load(Ordering::SeqCst) > 0 {
            return;
        }
        // The least recently used go first: they are the likeliest to be closed.
        while idle.front().is_some_and(|oldest| oldest.since.elapsed() >= IDLE_TIMEOUT) {
            idle.pop_front();
        }
        idle.push_back(Idle { connection, since: Instant::now() });
    }

    /// Opens a connection in `slot`: TCP, then TLS (offering HTTP/2 by ALPN
    /// unless told otherwise), then the HTTP handshake, all within the connect timeout.
    async fn connect(&self, slot: OwnedSemaphorePermit) -> Result<Opened, TransportError> {
        let open = async {
            let tcp = TcpStream::connect((self.host.as_str(), self.port)).await?;
            tcp.set_nodelay(true)?;
            let io = if self.tls { self.connector.tls(&self.host, tcp).await? } else { Io::Plain(tcp) };
            Ok::<_, std::io::Error>(io)
        };
        let io = match tokio::time::timeout(self.connect_timeout, open).await {
            Ok(Ok(io)) => io,
            Ok(Err(e)) => return Err(TransportError::Connect(e.into())),
            Err(_) => return Err(TransportError::Connect("timed out (SUBGRAPH_CONNECT_TIMEOUT)".into())),
        };
        let http2 = match self.connector.protocol() {
            Protocol::Http2 => true,
            Protocol::Http1 => false,
            Protocol::Auto => io.negotiated_h2(),
        };
        if http2 {
            let (sender, driver) = http2::Builder::new(TokioExecutor::new())
                .max_header_list_size(MAX_HEAD as u32)
                .handshake(TokioIo::new(io))
                .await
                .map_err(|e| TransportError::Connect(e.into()))?;
            tokio::spawn(async move {
                let _slot = slot;
                let _ = driver.await;
            });
            *self.shared.lock().expect("pool lock") = Some(sender.clone());
            return Ok(Opened::Http2(sender));
        }
        // Head and body in one buffer, one write: a GraphQL request is small, and
        // two buffers in a `writev` cost the kernel more than the copy costs us
        // (measured: about 8% more system time per request).
        let (sender, driver) =
            http1::Builder::new().writev(false).max_header_size(MAX_HEAD).handshake(TokioIo::new(io)).await?;
        Ok(Opened::Http1(Box::new(Connection { sender, driver, ended: false, wakes: Arc::default(), _slot: slot })))
    }

    #[cfg(test)]
    fn idle_count(&self) -> usize {
        self.idle.lock().unwrap().len()
    }
}

/// Why a streamed request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("every connection to the subgraph is in use")]
    Saturated,
    #[error("not a request path")]
    BadPath,
    #[error(transparent)]
    Transport(#[from] TransportError),
}

/// One GraphQL POST on a shared HTTP/2 connection.
async fn exchange_h2(
    sender: &mut http2::SendRequest<OutBody>,
    request: Request<OutBody>,
    max_body: usize,
) -> Result<Response, TransportError> {
    sender.ready().await?;
    let response = sender.send_request(request).await?;
    read_answer(response, max_body).await
}

/// The status and the whole body, refused past `max_body` bytes.
pub async fn read_answer(
    response: axum::http::Response<Incoming>,
    max_body: usize,
) -> Result<Response, TransportError> {
    let status = response.status();
    if status == StatusCode::SWITCHING_PROTOCOLS {
        return Err(TransportError::Malformed("unasked protocol switch"));
    }
    let declared = response.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|length| length > max_body as u64) {
        return Err(TransportError::TooLarge(max_body));
    }
    collect(response.into_body(), max_body).await.map(|body| Response { status, body })
}

/// The whole body, refused past `max_body` bytes. A body that comes in one
/// frame (the common case: hyper hands on what one read brought) is that
/// frame's bytes, not copied and not queued in a list first.
async fn collect(mut body: Incoming, max_body: usize) -> Result<Bytes, TransportError> {
    let mut first: Option<Bytes> = None;
    let mut joined: Vec<u8> = Vec::new();
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else { continue };
        let length = first.as_ref().map_or(0, Bytes::len) + joined.len() + data.len();
        if length > max_body {
            return Err(TransportError::TooLarge(max_body));
        }
        match first.take() {
            None if joined.is_empty() => first = Some(data),
            None => joined.extend_from_slice(&data),
            Some(head) => {
                joined.reserve(length);
                joined.extend_from_slice(&head);
                joined.extend_from_slice(&data);
            }
        }
    }
    Ok(first.unwrap_or_else(|| Bytes::from(joined)))
}

impl Connection {
    /// An idle connection the server closed is noticed here: its driver,
    /// polled once, reads the end of the stream and finishes. An open one
    /// costs no system call (the runtime knows it is not readable).
    fn looks_open(&mut self) -> bool {
        if self.ended {
            return false;
        }
        if Pin::new(&mut self.driver).poll(&mut Context::from_waker(Waker::noop())).is_ready() {
            self.ended = true;
        }
        !self.ended && !self.sender.is_closed()
    }

    /// Sends the request and reads its whole response, driving the connection
    /// meanwhile; the flag says whether the connection may carry another.
    async fn exchange(&mut self, request: Request<OutBody>, max_body: usize) -> Result<(Response, bool), Failure> {
        let Connection { sender, driver, ended, wakes, .. } = self;
        let mut head_seen = false;
        let answer = async {
            if let Err(error) = sender.ready().await {
                return Err(Failure { error: error.into(), nothing_read: true, unsent: true });
            }
            let response = match sender.try_send_request(request).await {
                Ok(response) => response,
                Err(mut e) => {
                    let unsent = e.take_message().is_some();
                    let error = e.into_error();
                    let nothing_read = error.is_incomplete_message() || error.is_canceled() || unsent;
                    let error = if nothing_read { TransportError::Closed } else { error.into() };
                    return Err(Failure { error, nothing_read, unsent });
                }
            };
            head_seen = true;
            read_answer(response, max_body).await.map_err(Failure::from)
        };
        let result = drive(driver, ended, wakes, answer).await;
        let response = match result {
            Ok(response) => response,
            Err(mut failure) if head_seen => {
                failure.nothing_read = false;
                return Err(failure);
            }
            Err(failure) => return Err(failure),
        };
        // The driver sees the end of the answer and either keeps the connection
        // (`keep-alive`) or finishes (`close`, HTTP/1.0, bytes never asked for).
        let reusable = self.looks_open();
        Ok((response, reusable))
    }
}

/// Runs `work` to completion while polling the connection's `driver` (until it ends).
///
/// Both are polled with a waker of their own, so that the wakes they give each
/// other (the driver has read the head, the body wants data, the data is in)
/// are answered at once, in the same poll, instead of each rescheduling the
/// whole request's task: an exchange takes two polls of the request, not four.
async fn drive<F: Future>(
    driver: &mut http1::Connection<TokioIo<Io>, OutBody>,
    ended: &mut bool,
    wakes: &Arc<LocalWakes>,
    work: F,
) -> F::Output {
    let mut work = pin!(work);
    let waker = Waker::from(wakes.clone());
    std::future::poll_fn(|cx| {
        wakes.outer.register(cx.waker());
        let mut inner = Context::from_waker(&waker);
        loop {
            wakes.polling.store(true, Ordering::SeqCst);
            let mut output = work.as_mut().poll(&mut inner);
            if output.is_pending() && !*ended && Pin::new(&mut *driver).poll(&mut inner).is_ready() {
                *ended = true;
                // The connection is done: what the work was waiting for is settled now.
                output = work.as_mut().poll(&mut inner);
            }
            // Cleared before `again` is read: a wake from now on goes to the task.
            wakes.polling.store(false, Ordering::SeqCst);
            if output.is_ready() || !wakes.again.swap(false, Ordering::SeqCst) {
                return output;
            }
        }
    })
    .await
}

/// A connection's waker: a wake while [`drive`] is polling asks it to poll
/// again; any other (the socket is readable) wakes the request's task.
#[derive(Default)]
struct LocalWakes {
    outer: AtomicWaker,
    polling: AtomicBool,
    again: AtomicBool,
}

impl Wake for LocalWakes {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self.polling.load(Ordering::SeqCst) {
            self.again.store(true, Ordering::SeqCst);
        } else {
            self.outer.wake();
        }
    }
}

/// Counts a request among those waiting for a slot while it lives.
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn new(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Self(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests;
