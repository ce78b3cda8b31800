//! Helpers for integration tests of any service (feature `testing`): where
//! Redis is, awaiting a condition instead of sleeping, a TCP gate that plays an
//! outage of one dependency without touching the shared service, a stand-in
//! for the auth service's tokens, a reader of this process's metrics,
//! ([`limits`]) the abusive documents every GraphQL endpoint must refuse, and
//! ([`telemetry`]) a collector for the spans a process exports and a store for
//! its log lines. The database, broker and queue helpers are kit's (`kit::testing`).

pub mod limits;
pub mod telemetry;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use uuid::Uuid;

pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// The `SUBGRAPH_SHARED_SECRET` test services are started with.
pub const ROUTER_SECRET: &str = "test-router-secret-0123456789abcdef0123456789abcdef";

/// A client that calls a subgraph as the router does: with [`ROUTER_SECRET`]
/// on every request.
pub fn router_client() -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(crate::http::ROUTER_SECRET_HEADER.clone(), reqwest::header::HeaderValue::from_static(ROUTER_SECRET));
    reqwest::Client::builder().default_headers(headers).build().expect("a plain HTTP client always builds")
}

/// Where Redis listens, for a [`TcpGate`] in front of it (see [`TcpGate::url_for`]).
pub fn redis_addr() -> SocketAddr {
    socket_address(&redis_url())
}

/// The `host:port` of a `scheme://[user@]host:port[/...]` URL, resolved.
pub fn socket_address(url: &str) -> SocketAddr {
    use std::net::ToSocketAddrs;
    let authority = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = authority.split('/').next().unwrap_or(authority);
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    host_port.to_socket_addrs().ok().and_then(|mut found| found.next()).unwrap_or_else(|| panic!("no address in {url}"))
}

/// Waits until `attempt` yields a value, trying every 25 ms for at most 15 s.
pub async fn wait_for<T, F, Fut>(what: &str, mut attempt: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(value) = attempt().await {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Waits until `condition` holds (see [`wait_for`]).
pub async fn eventually<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    wait_for(what, || {
        let check = condition();
        async move { check.await.then_some(()) }
    })
    .await
}

/// A TCP proxy to a real server that refuses connections until opened, and
/// can be closed again, cutting the connections it carries (an outage), or
/// stalled: cutting them too, then taking new ones and never answering (a
/// host that stopped answering: clients wait out their own timeouts).
pub struct TcpGate {
    pub port: u16,
    state: Arc<AtomicU8>,
    connections: Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
    task: tokio::task::JoinHandle<()>,
}

const GATE_OPEN: u8 = 0;
const GATE_CLOSED: u8 = 1;
const GATE_STALLED: u8 = 2;

impl TcpGate {
    pub async fn start(target: SocketAddr, open: bool) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind gate");
        let port = listener.local_addr().expect("addr").port();
        let state = Arc::new(AtomicU8::new(if open { GATE_OPEN } else { GATE_CLOSED }));
        let connections: Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>> = Default::default();
        let (gate_state, carried) = (state.clone(), connections.clone());
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let connection = match gate_state.load(Ordering::SeqCst) {
                    GATE_CLOSED => {
                        drop(inbound);
                        continue;
                    }
                    // Held open, unanswered, until the gate changes.
                    GATE_STALLED => tokio::spawn(async move {
                        let _held = inbound;
                        std::future::pending::<()>().await
                    }),
                    _ => tokio::spawn(async move {
                        if let Ok(mut outbound) = TcpStream::connect(target).await {
                            let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    }),
                };
                carried.lock().expect("gate lock").push(connection.abort_handle());
            }
        });
        Self { port, state, connections, task }
    }

    /// Lets connections through (and cuts the ones held while stalled).
    pub fn open(&self) {
        self.set(GATE_OPEN);
    }

    /// Refuses new connections and cuts the open ones.
    pub fn close(&self) {
        self.set(GATE_CLOSED);
    }

    /// Cuts the open connections, then holds new ones without ever answering.
    pub fn stall(&self) {
        self.set(GATE_STALLED);
    }

    /// `url` (`scheme://[user@]host:port[/rest]`) with its host and port made this gate's.
    pub fn url_for(&self, url: &str) -> String {
        let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
        let (authority, path) = rest.split_once('/').map_or((rest, None), |(a, p)| (a, Some(p)));
        let user = authority.rsplit_once('@').map(|(user, _)| format!("{user}@")).unwrap_or_default();
        let path = path.map(|p| format!("/{p}")).unwrap_or_default();
        format!("{scheme}://{user}127.0.0.1:{}{path}", self.port)
    }

    fn set(&self, state: u8) {
        let before = self.state.swap(state, Ordering::SeqCst);
        if state != before {
            for connection in self.connections.lock().expect("gate lock").drain(..) {
                connection.abort();
            }
        }
    }
}

impl Drop for TcpGate {
    fn drop(&mut self) {
        self.task.abort();
        self.close();
    }
}

/// Plays the auth service for other services' tests: signs access tokens with a
/// key of its own and serves its JWKS (and an empty revocation log) on a port of its own.
pub struct TestIssuer {
    pub jwks_url: String,
    pub issuer: String,
    pub audience: String,
    kid: String,
    encoding: jsonwebtoken::EncodingKey,
    server: tokio::task::JoinHandle<()>,
}

impl TestIssuer {
    pub async fn start() -> Self {
        use base64::Engine;
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use ed25519_dalek::pkcs8::EncodePrivateKey;

        let key = ed25519_dalek::SigningKey::from_bytes(&rand::random::<[u8; 32]>());
        let der = key.to_pkcs8_der().expect("encodes");
        let kid = format!("test-{}", Uuid::new_v4().simple());
        let jwks = serde_json::json!({ "keys": [{
            "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": kid,
            "x": URL_SAFE_NO_PAD.encode(key.verifying_key().to_bytes()),
        }] });
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind issuer");
        let port = listener.local_addr().expect("addr").port();
        let no_revocations = crate::identity::RevocationPage { cursor: 0, revocations: vec![], more: false };
        let routes = axum::Router::new()
            .route("/.well-known/jwks.json", axum::routing::get(move || async move { axum::Json(jwks) }))
            .route(
                "/.well-known/session-revocations",
                axum::routing::get(move || async move { axum::Json(no_revocations) }),
            );
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, routes).await;
        });
        Self {
            jwks_url: format!("http://127.0.0.1:{port}/.well-known/jwks.json"),
            issuer: "taskgraph-auth".into(),
            audience: "taskgraph".into(),
            kid,
            encoding: jsonwebtoken::EncodingKey::from_ed_der(der.as_bytes()),
            server,
        }
    }

    /// A valid access token for `user_id`.
    pub fn token(&self, user_id: Uuid) -> String {
        self.token_with(user_id, 900, crate::identity::ACCESS_TOKEN_TYPE)
    }

    /// A token for `user_id` that expired a minute ago.
    pub fn expired_token(&self, user_id: Uuid) -> String {
        self.token_with(user_id, -60, crate::identity::ACCESS_TOKEN_TYPE)
    }

    pub fn token_with(&self, user_id: Uuid, lifetime_secs: i64, typ: &str) -> String {
        let now = chrono::Utc::now().timestamp();
        let claims = crate::identity::AccessClaims {
            sub: user_id.to_string(),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            exp: now + lifetime_secs,
            iat: now.min(now + lifetime_secs - 1),
            jti: Uuid::new_v4().to_string(),
            typ: typ.to_owned(),
            kid: self.kid.clone(),
            sv: 0,
        };
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.encoding).expect("signs")
    }
}

impl Drop for TestIssuer {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Bodies a GraphQL endpoint cannot read as a request, each with what it is
/// and its content type: malformed JSON, JSON that is no request, a wrong
/// content type, and multipart bodies that multer cannot parse.
pub fn unreadable_graphql_bodies() -> Vec<(&'static str, String, Vec<u8>)> {
    let multipart = "multipart/form-data; boundary=XyZ".to_owned();
    let operations =
        "--XyZ\r\nContent-Disposition: form-data; name=\"operations\"\r\n\r\n{\"query\":\"{ __typename }\"}";
    vec![
        ("malformed JSON", "application/json".into(), b"{\"query\": \"{ __typename }\"".to_vec()),
        ("JSON that is no request", "application/json".into(), b"{\"query\": 42}".to_vec()),
        ("a wrong content type", "text/plain".into(), b"query { __typename }".to_vec()),
        ("multipart without a boundary", "multipart/form-data".into(), b"--XyZ\r\n\r\n--XyZ--\r\n".to_vec()),
        ("a multipart body that breaks off", multipart.clone(), operations.as_bytes().to_vec()),
        (
            "multipart part headers that are not headers",
            multipart,
            b"--XyZ\r\n\x01\x02 nonsense\r\n\r\nx\r\n--XyZ--\r\n".to_vec(),
        ),
    ]
}

/// How serde, multer, axum and async-graphql word what they could not parse;
/// none of it may reach a client.
const LIBRARY_PHRASES: &[&str] = &[
    "line ",
    "column",
    "EOF",
    "Error(",
    "Invalid",
    "invalid type",
    "expected value",
    "incomplete",
    "Incomplete",
    "stream",
    "NoBoundary",
    "Custom {",
    "failed to",
    "Failed to",
    "Cannot parse",
];

/// Asserts that `response` is a request error in the service's own words:
/// `status`, a GraphQL body without `data` whose error has `extensions.code`
/// BAD_USER_INPUT (or BAD_REQUEST), and no library's wording. Returns the body.
pub async fn assert_request_error_in_our_words(
    what: &str,
    response: reqwest::Response,
    status: u16,
) -> serde_json::Value {
    assert_eq!(response.status().as_u16(), status, "{what}: status");
    let text = response.text().await.expect("a body");
    let body: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("{what}: not a GraphQL response: {text:?}"));
    assert!(body.get("data").is_none(), "{what}: a request error has no data: {body}");
    let code = body["errors"][0]["extensions"]["code"].as_str().unwrap_or_default();
    assert!(["BAD_USER_INPUT", "BAD_REQUEST"].contains(&code), "{what}: code {code:?} in {body}");
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(!message.is_empty(), "{what}: no message in {body}");
    if let Some(phrase) = LIBRARY_PHRASES.iter().find(|p| message.contains(*p)) {
        panic!("{what}: the message quotes a library ({phrase:?}): {message:?}");
    }
    body
}

/// The value of the series `name` whose labels include every one of `labels`,
/// as this process's `/metrics` renders it (0 when there is none yet).
pub fn metric(name: &str, labels: &[(&str, &str)]) -> f64 {
    let wanted: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    crate::metrics::render()
        .lines()
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (series_name, series_labels) = series.split_once('{').unwrap_or((series, ""));
            let matches = series_name == name
                && wanted.iter().all(|label| series_labels.trim_end_matches('}').split(',').any(|l| l == label));
            matches.then(|| value.parse::<f64>().ok()).flatten()
        })
        .sum()
}
