//! A lean HTTP/1.1 client for the router's hottest path: GraphQL POSTs to a
//! plain-http subgraph over pooled keep-alive connections.
//!
//! Why not hyper's pooled client: there, every fetch hashes its authority into
//! a shared pool map, checks a connection out through wrappers, and hands the
//! request over a channel to a separate connection task and the answer back
//! over another. Here the request's own task takes an idle connection from its
//! subgraph's stack, writes the request with one `write` and reads the answer
//! itself. Streamed bodies (uploads, downloads) keep using reqwest.
//!
//! Framing follows RFC 9112: `Content-Length`, `chunked`, or read to close;
//! 1xx answers skipped; `Connection: close` and HTTP/1.0 end the connection.
//! Framing and hop-by-hop headers are never forwarded (see [`forwardable`]).
//!
//! Each pool also caps the connections to its subgraph ([`ConnectionLimits`]):
//! every connection open or being opened holds one slot, idle ones included,
//! and so do the streamed bodies' connections (see [`Pool::slot`]).

use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri};
use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::ConnectionLimits;

/// An idle connection older than this is closed rather than reused: servers
/// close theirs after a while (Node's default is 5 s, nginx's 75 s), and a
/// connection closed on the far side is only noticed when it is read.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// A response head (status line and headers) larger than this is refused.
const MAX_HEAD: usize = 64 * 1024;
const MAX_HEADERS: usize = 100;
/// Bytes asked of the socket per read.
const READ_SIZE: usize = 16 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum Http1Error {
    #[error("could not connect: {0}")]
    Connect(io::Error),
    #[error("connection failed: {0}")]
    Io(#[from] io::Error),
    #[error("connection closed before a complete response")]
    Closed,
    #[error("not an HTTP/1.1 response: {0}")]
    Malformed(&'static str),
    #[error("the response body is over the {0} bytes allowed")]
    TooLarge(usize),
}

/// Every connection the cap allows is in use, and none came free in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Saturated;

/// A complete answer: status and the whole (de-chunked) body.
#[derive(Debug)]
pub struct Response {
    pub status: StatusCode,
    pub body: Bytes,
}

/// One subgraph's address, the request head common to all its requests, its
/// idle connections (most recently used last, so the warmest is reused) and
/// the slots that cap its connections.
#[derive(Debug)]
pub struct Pool {
    host: String,
    port: u16,
    /// `POST <path> HTTP/1.1`, `host`, content type and accept, ready to copy.
    head: Vec<u8>,
    /// Largest response body read (`SUBGRAPH_MAX_RESPONSE_BYTES`).
    max_body: usize,
    idle: Mutex<VecDeque<Idle>>,
    /// One permit per connection to the subgraph, however it is used.
    slots: Arc<Semaphore>,
    /// Requests waiting for a slot. While any wait, a connection that finishes
    /// is closed rather than kept idle, so that its slot goes to them.
    waiting: AtomicUsize,
    wait: Duration,
}

/// What a GraphQL fetch goes out on: an idle connection, or a slot to open one.
#[derive(Debug)]
pub struct Lease(Leased);

#[derive(Debug)]
enum Leased {
    Reuse(Connection),
    Open(OwnedSemaphorePermit),
}

/// The room for one connection opened elsewhere (a streamed upload or
/// download): hold it as long as that connection is open.
#[derive(Debug)]
pub struct Slot {
    _held: OwnedSemaphorePermit,
}

#[derive(Debug)]
struct Idle {
    connection: Connection,
    since: Instant,
}

#[derive(Debug)]
struct Connection {
    stream: TcpStream,
    /// Bytes read and not yet consumed.
    buffer: BytesMut,
    /// Bytes read in the current exchange.
    read: usize,
    /// Its place under the cap, given back when the connection is dropped.
    slot: OwnedSemaphorePermit,
}

/// A failed exchange, and whether the server can have seen the request at all.
struct Failure {
    error: Http1Error,
    /// Nothing came back: on a reused connection this is most often one the
    /// server closed while it sat idle, and a fresh connection will do.
    nothing_read: bool,
}

impl From<io::Error> for Failure {
    fn from(error: io::Error) -> Self {
        Failure { error: Http1Error::Io(error), nothing_read: false }
    }
}

impl From<Http1Error> for Failure {
    fn from(error: Http1Error) -> Self {
        Failure { error, nothing_read: false }
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
    /// A pool for an `http://` URL, reading response bodies up to `max_body`
    /// bytes, over at most `limits.max` connections.
    pub fn new(uri: &Uri, accept: &str, max_body: usize, limits: ConnectionLimits) -> anyhow::Result<Self> {
        anyhow::ensure!(uri.scheme_str() == Some("http"), "only http:// URLs are supported");
        let authority = uri.authority().ok_or_else(|| anyhow::anyhow!("the URL has no host"))?;
        let host = authority.host().trim_start_matches('[').trim_end_matches(']').to_owned();
        let port = authority.port_u16().unwrap_or(80);
        let target = uri.path_and_query().map_or("/", |p| p.as_str());
        let head = format!(
            "POST {target} HTTP/1.1\r\nhost: {authority}\r\ncontent-type: application/json\r\naccept: {accept}\r\n"
        )
        .into_bytes();
        Ok(Self {
            host,
            port,
            head,
            max_body,
            idle: Mutex::new(VecDeque::new()),
            slots: Arc::new(Semaphore::new(limits.max.clamp(1, Semaphore::MAX_PERMITS))),
            waiting: AtomicUsize::new(0),
            wait: limits.wait,
        })
    }

    /// Sends `name: value` on every request too (the router's secret).
    pub fn with_header(mut self, name: &HeaderName, value: &HeaderValue) -> Self {
        let mut head = std::mem::take(&mut self.head);
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
        self.head = head;
        self
    }

    /// Largest response body read.
    pub fn max_body(&self) -> usize {
        self.max_body
    }

    /// An idle connection, else a free slot, else the first slot to come free
    /// within the wait. The wait is not the subgraph's time: it is the
    /// router's own traffic that fills the slots.
    pub async fn lease(&self) -> Result<Lease, Saturated> {
        if let Some(connection) = self.checkout() {
            return Ok(Lease(Leased::Reuse(connection)));
        }
        if let Ok(slot) = self.slots.clone().try_acquire_owned() {
            return Ok(Lease(Leased::Open(slot)));
        }
        let _waiting = Waiting::new(&self.waiting);
        // One checked in before this request counted as waiting is idle now.
        if let Some(connection) = self.checkout() {
            return Ok(Lease(Leased::Reuse(connection)));
        }
        self.wait_for_slot().await.map(|slot| Lease(Leased::Open(slot)))
    }

    /// A slot for a connection opened elsewhere; an idle connection is closed
    /// to make room if need be.
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

    /// Posts `body` with the allow-listed `headers` (already checked with
    /// [`forwardable`]) on what `lease` holds. A reused connection that fails
    /// before anything is read is replaced by a fresh one (in its slot) for the
    /// same request when `replay` allows it (for queries: a mutation the server
    /// might have run is not sent twice).
    pub async fn post(
        &self,
        lease: Lease,
        headers: &HeaderMap,
        body: &[u8],
        replay: bool,
    ) -> Result<Response, Http1Error> {
        let request = self.encode(headers, body);
        let slot = match lease.0 {
            Leased::Reuse(mut connection) => match connection.exchange(&request, self.max_body).await {
                Ok((response, reusable)) => {
                    if reusable {
                        self.checkin(connection);
                    }
                    return Ok(response);
                }
                Err(failure) if failure.nothing_read && replay => connection.slot,
                Err(failure) => return Err(failure.error),
            },
            Leased::Open(slot) => slot,
        };
        let mut connection = self.connect(slot).await?;
        let (response, reusable) = connection.exchange(&request, self.max_body).await.map_err(|f| f.error)?;
        if reusable {
            self.checkin(connection);
        }
        Ok(response)
    }

    fn encode(&self, headers: &HeaderMap, body: &[u8]) -> Vec<u8> {
        let mut request = Vec::with_capacity(self.head.len() + 64 + body.len() + headers.len() * 64);
        request.extend_from_slice(&self.head);
        for (name, value) in headers {
            request.extend_from_slice(name.as_str().as_bytes());
            request.extend_from_slice(b": ");
            request.extend_from_slice(value.as_bytes());
            request.extend_from_slice(b"\r\n");
        }
        // Writing into memory cannot fail.
        let _ = write!(request, "content-length: {}\r\n\r\n", body.len());
        request.extend_from_slice(body);
        request
    }

    /// The most recently used idle connection that is still open, if any.
    fn checkout(&self) -> Option<Connection> {
        let mut idle = self.idle.lock().expect("pool lock");
        while let Some(Idle { connection, since }) = idle.pop_back() {
            if since.elapsed() < IDLE_TIMEOUT && connection.looks_open() {
                return Some(connection);
            }
        }
        None
    }

    fn checkin(&self, connection: Connection) {
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

    async fn connect(&self, slot: OwnedSemaphorePermit) -> Result<Connection, Http1Error> {
        let stream = TcpStream::connect((self.host.as_str(), self.port)).await.map_err(Http1Error::Connect)?;
        stream.set_nodelay(true).map_err(Http1Error::Connect)?;
        Ok(Connection { stream, buffer: BytesMut::with_capacity(READ_SIZE), read: 0, slot })
    }

    #[cfg(test)]
    fn idle_count(&self) -> usize {
        self.idle.lock().unwrap().len()
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

/// A response head read off the front of the buffer.
enum Head {
    /// A 1xx answer, to be skipped: its length.
    Informational(usize),
    Final {
        length: usize,
        status: StatusCode,
        framing: Framing,
        keep_alive: bool,
    },
}

/// Parses the head at the start of `buffer`, if it is all there. Kept out of
/// the async reader so that the header array is never part of its future.
fn parse_head(buffer: &[u8]) -> Result<Option<Head>, Http1Error> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let parsed = response.parse(buffer).map_err(|_| Http1Error::Malformed("bad response head"))?;
    let httparse::Status::Complete(length) = parsed else {
        return Ok(None);
    };
    let code = response.code.unwrap_or_default();
    let status = StatusCode::from_u16(code).map_err(|_| Http1Error::Malformed("bad status"))?;
    if status.is_informational() {
        if code == 101 {
            return Err(Http1Error::Malformed("unasked protocol switch"));
        }
        return Ok(Some(Head::Informational(length)));
    }
    let mut framing = None;
    let mut keep_alive = response.version == Some(1);
    for header in response.headers.iter() {
        if header.name.eq_ignore_ascii_case("transfer-encoding") {
            // Only `chunked` as the last coding frames a response; we ask for no other.
            let last = header.value.rsplit(|b| *b == b',').next().unwrap_or_default();
            if !last.trim_ascii().eq_ignore_ascii_case(b"chunked") {
                return Err(Http1Error::Malformed("unsupported transfer coding"));
            }
            framing = Some(Framing::Chunked);
        } else if header.name.eq_ignore_ascii_case("content-length") {
            let length = std::str::from_utf8(header.value)
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok())
                .ok_or(Http1Error::Malformed("bad content-length"))?;
            match framing {
                Some(Framing::Chunked) => {}
                Some(Framing::Length(seen)) if seen != length => {
                    return Err(Http1Error::Malformed("conflicting content-length"));
                }
                _ => framing = Some(Framing::Length(length)),
            }
        } else if header.name.eq_ignore_ascii_case("connection") {
            let close = header.value.split(|b| *b == b',').any(|t| t.trim_ascii().eq_ignore_ascii_case(b"close"));
            keep_alive &= !close;
        }
    }
    let framing = match framing {
        _ if matches!(code, 204 | 304) => Framing::Length(0),
        Some(framing) => framing,
        None => Framing::UntilClose,
    };
    Ok(Some(Head::Final { length, status, framing, keep_alive }))
}

/// How a response's body ends.
enum Framing {
    Length(usize),
    Chunked,
    UntilClose,
}

impl Connection {
    /// An idle connection with nothing to read is open; one that is readable
    /// was closed by the server (or sent something unasked). Uses the runtime's
    /// readiness, so an open connection costs no system call.
    fn looks_open(&self) -> bool {
        let mut probe = [0u8; 1];
        matches!(self.stream.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    /// Writes the request and reads its whole response (a body of at most
    /// `max_body` bytes); the flag says whether the connection may carry another.
    async fn exchange(&mut self, request: &[u8], max_body: usize) -> Result<(Response, bool), Failure> {
        self.buffer.clear();
        self.read = 0;
        if let Err(error) = self.stream.write_all(request).await {
            return Err(Failure { error: Http1Error::Io(error), nothing_read: true });
        }
        let (status, framing, keep_alive) = self.read_head().await?;
        let (body, reusable) = match framing {
            Framing::Length(length) if length > max_body => return Err(Http1Error::TooLarge(max_body).into()),
            Framing::Length(length) => {
                while self.buffer.len() < length {
                    self.fill().await?;
                }
                // Bytes beyond the body were never asked for: do not reuse.
                (self.buffer.split_to(length).freeze(), keep_alive && self.buffer.is_empty())
            }
            Framing::Chunked => {
                let body = self.read_chunked(max_body).await?;
                (body, keep_alive && self.buffer.is_empty())
            }
            Framing::UntilClose => {
                loop {
                    if self.buffer.len() > max_body {
                        return Err(Http1Error::TooLarge(max_body).into());
                    }
                    if self.read_more().await? == 0 {
                        break;
                    }
                }
                (self.buffer.split().freeze(), false)
            }
        };
        if self.read > 4 * READ_SIZE {
            // The buffer grew with a large answer: an idle connection keeps a small one.
            self.buffer = BytesMut::with_capacity(READ_SIZE);
        }
        Ok((Response { status, body }, reusable))
    }

    /// Reads up to the end of the final (non-1xx) response head and consumes it.
    async fn read_head(&mut self) -> Result<(StatusCode, Framing, bool), Failure> {
        loop {
            match parse_head(&self.buffer)? {
                Some(Head::Informational(length)) => self.buffer.advance(length),
                Some(Head::Final { length, status, framing, keep_alive }) => {
                    self.buffer.advance(length);
                    return Ok((status, framing, keep_alive));
                }
                None if self.buffer.len() > MAX_HEAD => {
                    return Err(Http1Error::Malformed("response head too large").into());
                }
                None => {
                    let nothing_read = self.buffer.is_empty();
                    match self.read_more().await {
                        Ok(0) => return Err(Failure { error: Http1Error::Closed, nothing_read }),
                        Ok(_) => {}
                        Err(error) => return Err(Failure { error: Http1Error::Io(error), nothing_read }),
                    }
                }
            }
        }
    }

    /// Decodes a chunked body, trailers read and dropped.
    async fn read_chunked(&mut self, max_body: usize) -> Result<Bytes, Failure> {
        let mut body = BytesMut::new();
        loop {
            let (line, size) = match httparse::parse_chunk_size(&self.buffer) {
                Ok(httparse::Status::Complete((line, size))) => (line, size),
                Ok(httparse::Status::Partial) if self.buffer.len() > 1024 => {
                    return Err(Http1Error::Malformed("chunk size line too long").into());
                }
                Ok(httparse::Status::Partial) => {
                    self.fill().await?;
                    continue;
                }
                Err(_) => return Err(Http1Error::Malformed("bad chunk size").into()),
            };
            if size == 0 {
                self.buffer.advance(line);
                return self.skip_trailers().await.map(|()| body.freeze());
            }
            let end = usize::try_from(size)
                .ok()
                .and_then(|size| line.checked_add(size)?.checked_add(2))
                .ok_or(Http1Error::Malformed("chunk too large"))?;
            if body.len() + (end - line - 2) > max_body {
                return Err(Http1Error::TooLarge(max_body).into());
            }
            while self.buffer.len() < end {
                self.fill().await?;
            }
            if &self.buffer[end - 2..end] != b"\r\n" {
                return Err(Http1Error::Malformed("chunk not followed by CRLF").into());
            }
            body.extend_from_slice(&self.buffer[line..end - 2]);
            self.buffer.advance(end);
        }
    }

    async fn skip_trailers(&mut self) -> Result<(), Failure> {
        loop {
            match self.buffer.windows(2).position(|w| w == b"\r\n") {
                Some(0) => {
                    self.buffer.advance(2);
                    return Ok(());
                }
                Some(end) => self.buffer.advance(end + 2),
                None if self.buffer.len() > MAX_HEAD => return Err(Http1Error::Malformed("trailers too large").into()),
                None => self.fill().await?,
            }
        }
    }

    /// Reads more, failing if the server closes the connection first.
    async fn fill(&mut self) -> Result<(), Failure> {
        match self.read_more().await? {
            0 => Err(Http1Error::Closed.into()),
            _ => Ok(()),
        }
    }

    async fn read_more(&mut self) -> io::Result<usize> {
        self.buffer.reserve(READ_SIZE);
        let n = self.stream.read_buf(&mut self.buffer).await?;
        self.read += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::http::HeaderValue;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// What a test server does on one connection, in order.
    enum Step {
        /// Reads a request, then writes these parts (one write each).
        Answer(Vec<&'static [u8]>),
        /// Reads a request and closes without answering.
        ReadThenClose,
        /// Closes at once.
        Close,
    }

    const LIMIT: usize = 1 << 20;
    const ROOMY: ConnectionLimits = ConnectionLimits { max: 16, wait: Duration::from_secs(10) };

    struct Server {
        uri: Uri,
        pool: Pool,
        accepted: Arc<AtomicUsize>,
        requests: Arc<Mutex<Vec<String>>>,
        closed: tokio::sync::mpsc::UnboundedReceiver<usize>,
    }

    /// A raw TCP server on port 0: connection `i` follows `script[i]`, then
    /// stays open until the client closes it. Says when it closed one itself.
    async fn server(script: Vec<Vec<Step>>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let uri: Uri = format!("http://{}/graphql?x=1", listener.local_addr().unwrap()).parse().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (tell_closed, closed) = tokio::sync::mpsc::unbounded_channel();
        let (count, seen) = (accepted.clone(), requests.clone());
        tokio::spawn(async move {
            for (i, steps) in script.into_iter().enumerate() {
                let (mut stream, _) = listener.accept().await.unwrap();
                count.fetch_add(1, Ordering::SeqCst);
                let (seen, tell_closed) = (seen.clone(), tell_closed.clone());
                tokio::spawn(async move {
                    for step in steps {
                        if !matches!(step, Step::Close) {
                            let request = read_request(&mut stream).await;
                            seen.lock().unwrap().push(request);
                        }
                        match step {
                            Step::Answer(parts) => {
                                for part in parts {
                                    stream.write_all(part).await.unwrap();
                                    stream.flush().await.unwrap();
                                }
                            }
                            Step::ReadThenClose | Step::Close => {
                                drop(stream);
                                tell_closed.send(i).unwrap();
                                return;
                            }
                        }
                    }
                    let mut rest = Vec::new();
                    let _ = stream.read_to_end(&mut rest).await;
                });
            }
        });
        let pool = Pool::new(&uri, "application/json", LIMIT, ROOMY).unwrap();
        Server { uri, pool, accepted, requests, closed }
    }

    /// One request: its head up to the blank line, then `content-length` bytes.
    async fn read_request(stream: &mut TcpStream) -> String {
        let mut bytes = Vec::new();
        let mut byte = [0u8; 1];
        while !bytes.ends_with(b"\r\n\r\n") {
            stream.read_exact(&mut byte).await.unwrap();
            bytes.push(byte[0]);
        }
        let head = String::from_utf8(bytes.clone()).unwrap();
        let length: usize =
            head.lines().find_map(|l| l.strip_prefix("content-length: ")).map(|v| v.trim().parse().unwrap()).unwrap();
        let mut body = vec![0u8; length];
        stream.read_exact(&mut body).await.unwrap();
        head + std::str::from_utf8(&body).unwrap()
    }

    const OK: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\r\n{\"data\":{}}";

    async fn post(pool: &Pool, replay: bool) -> Result<Response, Http1Error> {
        post_with(pool, &HeaderMap::new(), b"{}", replay).await
    }

    async fn post_with(pool: &Pool, headers: &HeaderMap, body: &[u8], replay: bool) -> Result<Response, Http1Error> {
        let lease = pool.lease().await.expect("a connection within the cap");
        pool.post(lease, headers, body, replay).await
    }

    #[tokio::test]
    async fn a_request_carries_its_target_host_framing_and_forwarded_headers_and_the_connection_is_reused() {
        let server = server(vec![vec![Step::Answer(vec![OK]), Step::Answer(vec![OK])]]).await;
        let mut headers = HeaderMap::new();
        headers.insert("authorization", HeaderValue::from_static("Bearer t"));
        headers.append("x-custom", HeaderValue::from_static("1"));
        headers.append("x-custom", HeaderValue::from_static("2"));
        let first = post_with(&server.pool, &headers, br#"{"query":"{ a }"}"#, false).await.unwrap();
        let second = post(&server.pool, false).await.unwrap();

        assert_eq!((first.status, &first.body[..]), (StatusCode::OK, &b"{\"data\":{}}"[..]));
        assert_eq!(&second.body[..], b"{\"data\":{}}");
        assert_eq!(server.accepted.load(Ordering::SeqCst), 1, "both requests on one connection");
        assert_eq!(server.pool.idle_count(), 1);
        let requests = server.requests.lock().unwrap().clone();
        let addr = format!("{}:{}", server.pool.host, server.pool.port);
        assert_eq!(
            requests[0],
            format!(
                "POST /graphql?x=1 HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\naccept: application/json\r\n\
                 authorization: Bearer t\r\nx-custom: 1\r\nx-custom: 2\r\ncontent-length: 17\r\n\r\n{{\"query\":\"{{ a }}\"}}"
            )
        );
    }

    #[tokio::test]
    async fn a_chunked_body_split_across_writes_is_joined_and_its_trailers_skipped() {
        let chunked: Vec<&'static [u8]> = vec![
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\n{\"dat",
            b"\r\n6;ext\r\na\":{}}\r\n",
            b"0\r\nx-trailer: 1\r\n",
            b"\r\n",
        ];
        let server = server(vec![vec![Step::Answer(chunked), Step::Answer(vec![OK])]]).await;
        let first = post(&server.pool, false).await.unwrap();
        assert_eq!(&first.body[..], b"{\"data\":{}}");
        post(&server.pool, false).await.unwrap();
        assert_eq!(server.accepted.load(Ordering::SeqCst), 1, "the connection outlives a chunked answer");
    }

    #[tokio::test]
    async fn a_large_answer_is_read_whole_and_leaves_its_connection_a_small_buffer() {
        let body: &'static [u8] = format!("{{\"data\":{{\"a\":\"{}\"}}}}", "x".repeat(200_000)).leak().as_bytes();
        let head: &'static [u8] =
            format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", body.len()).leak().as_bytes();
        let server = server(vec![vec![Step::Answer(vec![head, body]), Step::Answer(vec![OK])]]).await;
        let response = post(&server.pool, false).await.unwrap();
        assert_eq!(&response.body[..], body);
        let kept = server.pool.idle.lock().unwrap().back().map(|idle| idle.connection.buffer.capacity());
        assert_eq!(kept, Some(READ_SIZE));
        assert_eq!(&post(&server.pool, false).await.unwrap().body[..], b"{\"data\":{}}");
    }

    #[tokio::test]
    async fn informational_answers_are_skipped() {
        let answer = vec![b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: x\r\n\r\n".as_slice(), OK];
        let server = server(vec![vec![Step::Answer(answer)]]).await;
        let response = post(&server.pool, false).await.unwrap();
        assert_eq!((response.status, &response.body[..]), (StatusCode::OK, &b"{\"data\":{}}"[..]));
    }

    #[tokio::test]
    async fn a_body_without_length_is_read_to_close_and_such_connections_are_not_reused() {
        let until_close = vec![b"HTTP/1.0 502 Bad Gateway\r\n\r\nupstream down".as_slice()];
        let closing =
            vec![b"HTTP/1.1 200 OK\r\nconnection: keep-alive, close\r\ncontent-length: 2\r\n\r\n{}".as_slice()];
        let server = server(vec![vec![Step::Answer(until_close), Step::Close], vec![Step::Answer(closing)]]).await;

        let response = post(&server.pool, false).await.unwrap();
        assert_eq!((response.status, &response.body[..]), (StatusCode::BAD_GATEWAY, &b"upstream down"[..]));
        assert_eq!(server.pool.idle_count(), 0);
        let response = post(&server.pool, false).await.unwrap();
        assert_eq!(&response.body[..], b"{}");
        assert_eq!(server.pool.idle_count(), 0, "`connection: close` ends the connection");
        assert_eq!(server.accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn an_idle_connection_the_server_closed_is_noticed_and_not_used_even_for_a_mutation() {
        let mut server = server(vec![vec![Step::Answer(vec![OK]), Step::Close], vec![Step::Answer(vec![OK])]]).await;
        post(&server.pool, false).await.unwrap();
        assert_eq!(server.closed.recv().await, Some(0));
        // The runtime learns of the close from its poller; wait until it has.
        let noticed = async {
            while server.pool.idle.lock().unwrap().back().is_some_and(|idle| idle.connection.looks_open()) {
                tokio::task::yield_now().await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), noticed).await.expect("the close is noticed");

        let response = post(&server.pool, false).await.unwrap();
        assert_eq!(&response.body[..], b"{\"data\":{}}");
        assert_eq!(server.accepted.load(Ordering::SeqCst), 2);
        assert_eq!(server.requests.lock().unwrap().len(), 2, "the request was sent once");
    }

    #[tokio::test]
    async fn a_reused_connection_that_drops_a_request_unanswered_is_replayed_on_a_new_one_only_if_allowed() {
        let script = vec![
            vec![Step::Answer(vec![OK]), Step::ReadThenClose],
            vec![Step::Answer(vec![OK]), Step::ReadThenClose],
            vec![Step::Answer(vec![OK])],
        ];
        let server = server(script).await;
        post(&server.pool, false).await.unwrap();
        // A mutation the server may have run is not sent again.
        assert!(matches!(post(&server.pool, false).await, Err(Http1Error::Closed | Http1Error::Io(_))));
        assert_eq!(server.requests.lock().unwrap().len(), 2);

        post(&server.pool, false).await.unwrap();
        // A query is.
        let response = post(&server.pool, true).await.unwrap();
        assert_eq!(&response.body[..], b"{\"data\":{}}");
        assert_eq!(server.accepted.load(Ordering::SeqCst), 3);
        assert_eq!(server.requests.lock().unwrap().len(), 5);
    }

    #[tokio::test]
    async fn answers_that_are_not_http_are_errors() {
        let cases: [(&[u8], &str); 5] = [
            (b"hello there\r\n\r\n", "bad response head"),
            (b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\n{}", "conflicting content-length"),
            (b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\n", "unsupported transfer coding"),
            (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\n{}XX0\r\n\r\n", "chunk not followed by CRLF"),
            (b"HTTP/1.1 101 Switching Protocols\r\n\r\n", "unasked protocol switch"),
        ];
        for (answer, expected) in cases {
            let server = server(vec![vec![Step::Answer(vec![answer])]]).await;
            let error = post(&server.pool, false).await.unwrap_err();
            assert!(
                matches!(&error, Http1Error::Malformed(why) if *why == expected),
                "{:?} gave {error:?}",
                String::from_utf8_lossy(answer)
            );
            assert_eq!(server.pool.idle_count(), 0);
        }
    }

    #[tokio::test]
    async fn a_body_cut_short_is_an_error() {
        let short = vec![b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n{\"da".as_slice()];
        let server = server(vec![vec![Step::Answer(short), Step::Close]]).await;
        // The server closes after 4 of the 10 bytes.
        let error = post(&server.pool, false).await.unwrap_err();
        assert!(matches!(error, Http1Error::Closed), "{error:?}");
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_refused_however_it_is_framed() {
        let answers: [&'static [u8]; 3] = [
            b"HTTP/1.1 200 OK\r\ncontent-length: 11\r\n\r\n{\"data\":{}}",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n6\r\n{\"data\r\n5\r\n\":{}}\r\n0\r\n\r\n",
            b"HTTP/1.0 200 OK\r\n\r\n{\"data\":{}}",
        ];
        for answer in answers {
            let server = server(vec![vec![Step::Answer(vec![answer]), Step::Close]]).await;
            let pool = Pool::new(&server.uri, "application/json", 10, ROOMY).unwrap();
            let error = post(&pool, false).await.unwrap_err();
            assert!(matches!(error, Http1Error::TooLarge(10)), "{:?} gave {error:?}", String::from_utf8_lossy(answer));
            assert_eq!(pool.idle_count(), 0);
        }
        // Exactly at the limit is fine.
        let server = server(vec![vec![Step::Answer(vec![OK])]]).await;
        let pool = Pool::new(&server.uri, "application/json", 11, ROOMY).unwrap();
        assert_eq!(&post(&pool, false).await.unwrap().body[..], b"{\"data\":{}}");
    }

    #[tokio::test]
    async fn the_cap_counts_idle_connections_and_streamed_slots_and_the_overflow_is_refused_after_the_wait() {
        let server = server(vec![vec![Step::Answer(vec![OK])], vec![Step::Answer(vec![OK])]]).await;
        let limits = ConnectionLimits { max: 1, wait: Duration::from_millis(50) };
        let pool = Pool::new(&server.uri, "application/json", LIMIT, limits).unwrap();
        post(&pool, false).await.unwrap();
        assert_eq!(pool.idle_count(), 1);

        // A streamed body needs the only slot: the idle connection is closed for it.
        let slot = pool.slot().await.expect("the idle connection makes room");
        assert_eq!(pool.idle_count(), 0);
        assert!(matches!(pool.lease().await, Err(Saturated)), "a fetch waits, then is refused");
        assert!(matches!(pool.slot().await, Err(Saturated)), "so does another streamed body");

        drop(slot);
        post(&pool, false).await.unwrap();
        assert_eq!(server.accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_connection_that_finishes_while_others_wait_gives_them_its_slot() {
        let server = server(vec![vec![Step::Answer(vec![OK])], vec![Step::Answer(vec![OK])]]).await;
        let limits = ConnectionLimits { max: 1, wait: Duration::from_secs(10) };
        let pool = Arc::new(Pool::new(&server.uri, "application/json", LIMIT, limits).unwrap());
        let first = pool.lease().await.unwrap();
        let waiter = tokio::spawn({
            let pool = pool.clone();
            async move { post(&pool, false).await.map(|response| response.status) }
        });
        let counted = async {
            while pool.waiting.load(Ordering::SeqCst) == 0 {
                tokio::task::yield_now().await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), counted).await.expect("the second request waits");

        // Kept idle, the first connection would hold the only slot until the waiter gave up.
        pool.post(first, &HeaderMap::new(), b"{}", false).await.unwrap();
        assert_eq!(waiter.await.unwrap().unwrap(), StatusCode::OK);
        assert_eq!(server.accepted.load(Ordering::SeqCst), 2, "closed for the waiter, which opened its own");
        assert_eq!(pool.idle_count(), 1);
    }

    #[tokio::test]
    async fn nothing_listening_is_a_connect_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let uri: Uri = format!("http://{}/", listener.local_addr().unwrap()).parse().unwrap();
        drop(listener);
        let pool = Pool::new(&uri, "application/json", LIMIT, ROOMY).unwrap();
        assert!(matches!(post(&pool, true).await, Err(Http1Error::Connect(_))));
    }

    #[test]
    fn only_http_urls_make_pools_and_ipv6_hosts_lose_their_brackets() {
        assert!(Pool::new(&"https://a/graphql".parse().unwrap(), "x", LIMIT, ROOMY).is_err());
        let pool = Pool::new(&"http://[::1]:4001".parse().unwrap(), "x", LIMIT, ROOMY).unwrap();
        assert_eq!((pool.host.as_str(), pool.port), ("::1", 4001));
        assert!(String::from_utf8(pool.head.clone()).unwrap().starts_with("POST / HTTP/1.1\r\nhost: [::1]:4001\r\n"));
        let pool = Pool::new(&"http://auth/graphql".parse().unwrap(), "x", LIMIT, ROOMY).unwrap();
        assert_eq!((pool.host.as_str(), pool.port), ("auth", 80));
    }

    #[test]
    fn framing_and_hop_by_hop_headers_are_never_forwarded() {
        let never = ["host", "content-length", "transfer-encoding", "connection", "te", "upgrade", "content-type"];
        for name in never.into_iter().chain(["x-taskgraph-router-secret"]) {
            assert!(!forwardable(&HeaderName::from_static(name)), "{name}");
        }
        for name in ["authorization", "x-request-id", "traceparent", "tracestate", "cookie"] {
            assert!(forwardable(&HeaderName::from_static(name)), "{name}");
        }
    }
}
