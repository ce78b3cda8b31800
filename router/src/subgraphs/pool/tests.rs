//! The pool against raw TCP servers (framing, reuse, caps) and against hyper
//! servers over TLS, HTTP/2 and mTLS, with certificates made per test.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::http::HeaderValue;
use http_body_util::Full;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;
use crate::config::TlsFiles;

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
const CONNECT: Duration = Duration::from_secs(10);

fn connector(protocol: Protocol, files: &TlsFiles) -> Arc<Connector> {
    Arc::new(Connector::new(protocol, files).expect("a connector"))
}

fn plain_pool(uri: &Uri, max_body: usize, limits: ConnectionLimits) -> Pool {
    Pool::new(uri, "application/json", max_body, limits, connector(Protocol::Auto, &TlsFiles::default()), CONNECT)
        .unwrap()
}

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
    let pool = plain_pool(&uri, LIMIT, ROOMY);
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

async fn post(pool: &Pool, replay: bool) -> Result<Response, TransportError> {
    post_with(pool, &HeaderMap::new(), b"{}", replay).await
}

async fn post_with(pool: &Pool, headers: &HeaderMap, body: &[u8], replay: bool) -> Result<Response, TransportError> {
    let lease = pool.lease().await.expect("a connection within the cap");
    pool.post(lease, headers, &Bytes::copy_from_slice(body), replay).await
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
    let request = server.requests.lock().unwrap()[0].clone();
    let (head, body) = request.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    assert_eq!(lines.next(), Some("POST /graphql?x=1 HTTP/1.1"));
    let mut fields: Vec<&str> = lines.collect();
    fields.sort_unstable();
    let host = format!("host: {}", server.uri.authority().unwrap());
    let mut expected = vec![
        "accept: application/json",
        "authorization: Bearer t",
        "content-length: 17",
        "content-type: application/json",
        host.as_str(),
        "x-custom: 1",
        "x-custom: 2",
    ];
    expected.sort_unstable();
    assert_eq!(fields, expected);
    assert_eq!(body, r#"{"query":"{ a }"}"#);
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
async fn a_large_answer_is_read_whole_and_its_connection_reused() {
    let body: &'static [u8] = format!("{{\"data\":{{\"a\":\"{}\"}}}}", "x".repeat(200_000)).leak().as_bytes();
    let head: &'static [u8] = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", body.len()).leak().as_bytes();
    let server = server(vec![vec![Step::Answer(vec![head, body]), Step::Answer(vec![OK])]]).await;
    let response = post(&server.pool, false).await.unwrap();
    assert_eq!(&response.body[..], body);
    assert_eq!(&post(&server.pool, false).await.unwrap().body[..], b"{\"data\":{}}");
    assert_eq!(server.accepted.load(Ordering::SeqCst), 1);
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
    let closing = vec![b"HTTP/1.1 200 OK\r\nconnection: keep-alive, close\r\ncontent-length: 2\r\n\r\n{}".as_slice()];
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
        while server.pool.idle.lock().unwrap().back_mut().is_some_and(|idle| idle.connection.looks_open()) {
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
    assert!(matches!(post(&server.pool, false).await, Err(TransportError::Closed | TransportError::Http(_))));
    assert_eq!(server.requests.lock().unwrap().len(), 2);

    post(&server.pool, false).await.unwrap();
    // A query is.
    let response = post(&server.pool, true).await.unwrap();
    assert_eq!(&response.body[..], b"{\"data\":{}}");
    assert_eq!(server.accepted.load(Ordering::SeqCst), 3);
    assert_eq!(server.requests.lock().unwrap().len(), 5);
}

#[tokio::test]
async fn answers_that_are_not_http_are_errors_and_end_their_connection() {
    let cases: [&[u8]; 4] = [
        b"hello there\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\n{}",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\n{}XX0\r\n\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
    ];
    for answer in cases {
        let server = server(vec![vec![Step::Answer(vec![answer])]]).await;
        let result = post(&server.pool, false).await;
        assert!(result.is_err(), "{:?} gave {result:?}", String::from_utf8_lossy(answer));
        assert_eq!(server.pool.idle_count(), 0);
    }
}

#[tokio::test]
async fn a_body_cut_short_is_an_error() {
    let short = vec![b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n{\"da".as_slice()];
    let server = server(vec![vec![Step::Answer(short), Step::Close]]).await;
    // The server closes after 4 of the 10 bytes.
    let error = post(&server.pool, false).await.unwrap_err();
    assert!(matches!(&error, TransportError::Http(e) if e.to_string().contains("error reading a body")), "{error:?}");
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
        let pool = plain_pool(&server.uri, 10, ROOMY);
        let error = post(&pool, false).await.unwrap_err();
        assert!(matches!(error, TransportError::TooLarge(10)), "{:?} gave {error:?}", String::from_utf8_lossy(answer));
        assert_eq!(pool.idle_count(), 0);
    }
    // Exactly at the limit is fine.
    let server = server(vec![vec![Step::Answer(vec![OK])]]).await;
    let pool = plain_pool(&server.uri, 11, ROOMY);
    assert_eq!(&post(&pool, false).await.unwrap().body[..], b"{\"data\":{}}");
}

#[tokio::test]
async fn the_cap_counts_idle_connections_and_streamed_slots_and_the_overflow_is_refused_after_the_wait() {
    let server = server(vec![vec![Step::Answer(vec![OK])], vec![Step::Answer(vec![OK])]]).await;
    let limits = ConnectionLimits { max: 1, wait: Duration::from_millis(50) };
    let pool = plain_pool(&server.uri, LIMIT, limits);
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
    let pool = Arc::new(plain_pool(&server.uri, LIMIT, limits));
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
    pool.post(first, &HeaderMap::new(), &Bytes::from_static(b"{}"), false).await.unwrap();
    assert_eq!(waiter.await.unwrap().unwrap(), StatusCode::OK);
    assert_eq!(server.accepted.load(Ordering::SeqCst), 2, "closed for the waiter, which opened its own");
    assert_eq!(pool.idle_count(), 1);
}

#[tokio::test]
async fn nothing_listening_is_a_connect_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let uri: Uri = format!("http://{}/", listener.local_addr().unwrap()).parse().unwrap();
    drop(listener);
    let pool = plain_pool(&uri, LIMIT, ROOMY);
    assert!(matches!(post(&pool, true).await, Err(TransportError::Connect(_))));
}

#[test]
fn http_and_https_urls_make_pools_and_ipv6_hosts_lose_their_brackets() {
    let none = TlsFiles::default();
    let pool =
        |url: &str| Pool::new(&url.parse().unwrap(), "x", LIMIT, ROOMY, connector(Protocol::Auto, &none), CONNECT);
    assert!(pool("ftp://a/graphql").is_err());
    let v6 = pool("http://[::1]:4001").unwrap();
    assert_eq!((v6.host.as_str(), v6.port, v6.authority.to_str().unwrap()), ("::1", 4001, "[::1]:4001"));
    assert_eq!(v6.path_and_query(), "/");
    let named = pool("http://auth/graphql").unwrap();
    assert_eq!((named.host.as_str(), named.port, named.tls), ("auth", 80, false));
    let secure = pool("https://auth.example/graphql").unwrap();
    assert_eq!((secure.port, secure.tls), (443, true));
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

// ---- TLS, HTTP/2 and mTLS, against hyper servers ----

/// A CA, a server certificate for 127.0.0.1 and localhost, and a client
/// certificate, all made for this test, their PEM files in a directory of its own.
struct Pki {
    dir: std::path::PathBuf,
    server_chain: Vec<rustls::pki_types::CertificateDer<'static>>,
    server_key: rustls::pki_types::PrivateKeyDer<'static>,
    ca: rustls::pki_types::CertificateDer<'static>,
}

impl Pki {
    fn new() -> Self {
        use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let server_key = KeyPair::generate().unwrap();
        let server = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .unwrap()
            .signed_by(&server_key, &ca)
            .unwrap();
        let client_key = KeyPair::generate().unwrap();
        let client = CertificateParams::new(vec!["router".to_owned()]).unwrap().signed_by(&client_key, &ca).unwrap();
        let dir = std::env::temp_dir().join(format!("taskgraph-pki-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
        std::fs::write(dir.join("client.pem"), client.pem()).unwrap();
        std::fs::write(dir.join("client-key.pem"), client_key.serialize_pem()).unwrap();
        let server_key = rustls::pki_types::PrivateKeyDer::Pkcs8(server_key.serialize_der().into());
        Self { dir, server_chain: vec![server.der().clone()], server_key, ca: ca.der().clone() }
    }

    fn trusting(&self) -> TlsFiles {
        TlsFiles { ca: Some(self.dir.join("ca.pem")), client: None }
    }

    fn with_client_certificate(&self) -> TlsFiles {
        TlsFiles { client: Some((self.dir.join("client.pem"), self.dir.join("client-key.pem"))), ..self.trusting() }
    }

    fn server_config(&self, alpn: &[&[u8]], require_client: bool) -> Arc<rustls::ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = if require_client {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(self.ca.clone()).unwrap();
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider).build().unwrap();
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let mut config = builder.with_single_cert(self.server_chain.clone(), self.server_key.clone_key()).unwrap();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A GraphQL-ish server answering `{"data":{"version":"HTTP/…"}}`, over TLS
/// when given a config, speaking whatever ALPN (or, in plain, `plain_h2`) says.
struct HyperServer {
    url: String,
    accepted: Arc<AtomicUsize>,
}

async fn hyper_server(tls: Option<Arc<rustls::ServerConfig>>, plain_h2: bool) -> HyperServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let scheme = if tls.is_some() { "https" } else { "http" };
    let url = format!("{scheme}://{}/graphql", listener.local_addr().unwrap());
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { return };
            count.fetch_add(1, Ordering::SeqCst);
            let tls = tls.clone();
            tokio::spawn(async move {
                match tls {
                    Some(config) => {
                        let Ok(stream) = tokio_rustls::TlsAcceptor::from(config).accept(tcp).await else { return };
                        let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
                        serve(TokioIo::new(stream), h2).await;
                    }
                    None => serve(TokioIo::new(tcp), plain_h2).await,
                }
            });
        }
    });
    HyperServer { url, accepted }
}

async fn serve<I>(io: I, h2: bool)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(|request: Request<Incoming>| async move {
        let version = format!("{:?}", request.version());
        let body = format!(r#"{{"data":{{"version":"{version}"}}}}"#);
        Ok::<_, Infallible>(axum::http::Response::new(Full::new(Bytes::from(body))))
    });
    if h2 {
        let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new()).serve_connection(io, service).await;
    } else {
        let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
    }
}

fn pool_for(url: &str, protocol: Protocol, files: &TlsFiles) -> anyhow::Result<Pool> {
    let connector = Arc::new(Connector::new(protocol, files)?);
    Pool::new(&url.parse().unwrap(), "application/json", LIMIT, ROOMY, connector, CONNECT)
}

async fn version_of(pool: &Pool) -> Result<String, TransportError> {
    let response = post(pool, true).await?;
    let value: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
    Ok(value["data"]["version"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn an_https_subgraph_is_reached_over_tls_with_the_configured_roots_and_its_connection_reused() {
    let pki = Pki::new();
    let server = hyper_server(Some(pki.server_config(&[b"http/1.1"], false)), false).await;
    let pool = pool_for(&server.url, Protocol::Auto, &pki.trusting()).unwrap();
    assert_eq!(version_of(&pool).await.unwrap(), "HTTP/1.1");
    assert_eq!(version_of(&pool).await.unwrap(), "HTTP/1.1");
    assert_eq!(server.accepted.load(Ordering::SeqCst), 1);
    assert_eq!(pool.idle_count(), 1);
}

#[tokio::test]
async fn alpn_picks_http2_when_offered_and_concurrent_fetches_share_one_connection() {
    let pki = Pki::new();
    let server = hyper_server(Some(pki.server_config(&[b"h2", b"http/1.1"], false)), false).await;
    let pool = Arc::new(pool_for(&server.url, Protocol::Auto, &pki.trusting()).unwrap());
    assert_eq!(version_of(&pool).await.unwrap(), "HTTP/2.0");
    let fetches: Vec<_> = (0..8)
        .map(|_| {
            tokio::spawn({
                let pool = pool.clone();
                async move { version_of(&pool).await.unwrap() }
            })
        })
        .collect();
    for fetch in fetches {
        assert_eq!(fetch.await.unwrap(), "HTTP/2.0");
    }
    assert_eq!(server.accepted.load(Ordering::SeqCst), 1, "one multiplexed connection");
}

#[tokio::test]
async fn http1_only_is_kept_even_where_the_subgraph_offers_http2() {
    let pki = Pki::new();
    let server = hyper_server(Some(pki.server_config(&[b"h2", b"http/1.1"], false)), false).await;
    let pool = pool_for(&server.url, Protocol::Http1, &pki.trusting()).unwrap();
    assert_eq!(version_of(&pool).await.unwrap(), "HTTP/1.1");
}

#[tokio::test]
async fn http2_by_prior_knowledge_over_plain_tcp() {
    let server = hyper_server(None, true).await;
    let pool = pool_for(&server.url, Protocol::Http2, &TlsFiles::default()).unwrap();
    assert_eq!(version_of(&pool).await.unwrap(), "HTTP/2.0");
    assert_eq!(version_of(&pool).await.unwrap(), "HTTP/2.0");
    assert_eq!(server.accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_certificate_from_an_authority_not_trusted_is_refused() {
    let pki = Pki::new();
    let server = hyper_server(Some(pki.server_config(&[b"http/1.1"], false)), false).await;
    let pool = pool_for(&server.url, Protocol::Auto, &TlsFiles::default()).unwrap();
    let error = post(&pool, true).await.unwrap_err();
    assert!(matches!(&error, TransportError::Connect(e) if e.to_string().contains("certificate")), "{error}");
}

#[tokio::test]
async fn a_subgraph_that_asks_for_a_client_certificate_gets_the_configured_one() {
    let pki = Pki::new();
    let server = hyper_server(Some(pki.server_config(&[b"http/1.1"], true)), false).await;
    let without = pool_for(&server.url, Protocol::Auto, &pki.trusting()).unwrap();
    assert!(post(&without, true).await.is_err(), "no client certificate, no answer");
    let with = pool_for(&server.url, Protocol::Auto, &pki.with_client_certificate()).unwrap();
    assert_eq!(version_of(&with).await.unwrap(), "HTTP/1.1");
}

#[tokio::test]
async fn a_handshake_that_never_finishes_ends_at_the_connect_timeout_and_frees_its_slot() {
    let pki = Pki::new();
    // Accepts TCP and then says nothing: the TLS handshake waits forever.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}/graphql", listener.local_addr().unwrap());
    let held = Arc::new(Mutex::new(Vec::new()));
    let keep = held.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            keep.lock().unwrap().push(tcp);
        }
    });
    let connector = Arc::new(Connector::new(Protocol::Auto, &pki.trusting()).unwrap());
    let limits = ConnectionLimits { max: 1, wait: Duration::from_millis(10) };
    let pool = Pool::new(&url.parse().unwrap(), "x", LIMIT, limits, connector, Duration::from_millis(100)).unwrap();
    for _ in 0..2 {
        let error = post(&pool, true).await.unwrap_err();
        assert!(matches!(&error, TransportError::Connect(e) if e.to_string().contains("timed out")), "{error}");
    }
}

#[tokio::test]
async fn a_streamed_request_has_a_connection_of_its_own_that_frees_its_slot_when_the_body_ends() {
    let server = hyper_server(None, false).await;
    let limits = ConnectionLimits { max: 1, wait: Duration::from_secs(10) };
    let connector = Arc::new(Connector::new(Protocol::Auto, &TlsFiles::default()).unwrap());
    let pool = Pool::new(&server.url.parse().unwrap(), "x", LIMIT, limits, connector, CONNECT).unwrap();
    let response = pool.stream(Method::GET, "/files/x?y=1", HeaderMap::new(), OutBody::Full(None)).await.unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], br#"{"data":{"version":"HTTP/1.1"}}"#);
    // The only slot comes back once the streamed connection has closed.
    let lease = tokio::time::timeout(Duration::from_secs(10), pool.lease()).await.unwrap().unwrap();
    pool.post(lease, &HeaderMap::new(), &Bytes::from_static(b"{}"), true).await.unwrap();
    assert_eq!(server.accepted.load(Ordering::SeqCst), 2);
}

#[test]
fn unreadable_or_empty_certificate_files_are_reported_by_name() {
    let missing = TlsFiles { ca: Some("/nonexistent/ca.pem".into()), client: None };
    let error = Connector::new(Protocol::Auto, &missing).err().unwrap().to_string();
    assert!(error.contains("SUBGRAPH_CA_FILE /nonexistent/ca.pem"), "{error}");
    let dir = std::env::temp_dir().join(format!("taskgraph-empty-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("empty.pem"), "not a certificate").unwrap();
    let empty = TlsFiles { ca: Some(dir.join("empty.pem")), client: None };
    let error = Connector::new(Protocol::Auto, &empty).err().unwrap().to_string();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(error.contains("holds no PEM certificate"), "{error}");
}
