//! Helpers for integration tests against the real services (feature `testing`):
//! where they are, a per-test database and exchange that clean up after
//! themselves, awaiting a condition instead of sleeping, a TCP gate that
//! plays an outage of one dependency without touching the shared service,
//! readers of queue depths and of this process's metrics, ([`limits`]) the
//! abusive documents every GraphQL endpoint must refuse, and ([`telemetry`])
//! a collector for the spans a process exports and a store for its log lines.

pub mod limits;
pub mod telemetry;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use uuid::Uuid;

pub fn postgres_base() -> String {
    std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

pub fn amqp_url() -> String {
    std::env::var("TEST_RABBITMQ_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

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

/// Where Postgres listens, for a [`TcpGate`] in front of it.
pub fn postgres_addr() -> SocketAddr {
    socket_address(&postgres_base())
}

/// The `host:port` of a `scheme://[user@]host:port[/...]` URL, resolved.
fn socket_address(url: &str) -> SocketAddr {
    use std::net::ToSocketAddrs;
    let authority = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = authority.split('/').next().unwrap_or(authority);
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    host_port.to_socket_addrs().ok().and_then(|mut found| found.next()).unwrap_or_else(|| panic!("no address in {url}"))
}

/// Names unique to one test: a database, an exchange, queues and a cache key
/// prefix. All of them are removed when this is dropped (the database is
/// created by the service under test).
pub struct Isolation {
    pub database: String,
    pub exchange: String,
    /// Put before every Redis key of the test (`CACHE_KEY_PREFIX`).
    pub cache_prefix: String,
    id: String,
    queues: std::sync::Mutex<Vec<String>>,
}

impl Isolation {
    pub fn new(prefix: &str) -> Self {
        let id = Uuid::new_v4().simple().to_string();
        Self {
            database: format!("test_{prefix}_{id}"),
            exchange: format!("test.events.{id}"),
            cache_prefix: format!("test-{id}:"),
            id,
            queues: Default::default(),
        }
    }

    pub fn database_url(&self) -> String {
        format!("{}/{}", postgres_base(), self.database)
    }

    /// A pool on this isolation's database (created now, dropped with the
    /// isolation), after running `setup` (the test's own tables).
    pub async fn pool(&self, service: &str, setup: &[&str]) -> sqlx::PgPool {
        let settings = crate::config::DatabaseSettings {
            url: crate::config::Secret::new(self.database_url()),
            max_connections: 4,
            acquire_timeout: Duration::from_secs(5),
        };
        let pool = crate::db::connect(&settings, service).await.expect("test database").pool().clone();
        for sql in setup {
            sqlx::query(sqlx::AssertSqlSafe(*sql)).execute(&pool).await.expect("test setup SQL");
        }
        pool
    }

    /// A queue name for `base` (e.g. `tasks.user-deleted`), deleted with its
    /// dead-letter queue and exchange afterwards.
    pub fn queue(&self, base: &str) -> String {
        let name = format!("test.{base}.{}", self.id);
        self.queues.lock().expect("queue list").push(name.clone());
        name
    }
}

impl Drop for Isolation {
    fn drop(&mut self) {
        let database = self.database.clone();
        let exchange = self.exchange.clone();
        let pattern = format!("{}*", self.cache_prefix);
        let queues = std::mem::take(&mut *self.queues.lock().unwrap_or_else(|e| e.into_inner()));
        // Clean-up needs async I/O while the test's runtime winds down: use a runtime of its own.
        let cleanup = std::thread::spawn(move || {
            delete_keys(&pattern);
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            rt.block_on(async move {
                if let Err(e) = crate::db::drop_database(&postgres_base(), &database).await {
                    eprintln!("could not drop test database {database}: {e}");
                }
                if let Ok(conn) = crate::events::connect(&amqp_url(), "test-cleanup").await {
                    if let Ok(channel) = conn.create_channel().await {
                        for queue in queues {
                            delete_queue(&channel, &queue).await;
                        }
                        let _ = crate::events::delete_exchange(&channel, &exchange).await;
                        let _ = channel.close(200, "bye".into()).await;
                    }
                    let _ = conn.close(200, "bye".into()).await;
                }
            });
        });
        let _ = cleanup.join();
    }
}

async fn delete_queue(channel: &lapin::Channel, queue: &str) {
    use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
    let dead = format!("{queue}.dead");
    let _ = channel.queue_delete(queue.to_owned().into(), QueueDeleteOptions::default()).await;
    let _ = channel.queue_delete(dead.clone().into(), QueueDeleteOptions::default()).await;
    let _ = channel.exchange_delete(dead.into(), ExchangeDeleteOptions::default()).await;
}

fn delete_keys(pattern: &str) {
    let Ok(client) = redis::Client::open(redis_url()) else { return };
    let Ok(mut conn) = client.get_connection() else { return };
    let keys: Vec<String> = redis::cmd("KEYS").arg(pattern).query(&mut conn).unwrap_or_default();
    if !keys.is_empty() {
        let _: redis::RedisResult<()> = redis::cmd("DEL").arg(keys).query(&mut conn);
    }
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

/// Waits until `queue` exists with a consumer on it (so it is bound, and an
/// event published now reaches it).
pub async fn wait_for_consumer(queue: &str) {
    wait_for_consumers(queue, |n| n > 0).await
}

/// Waits until `queue` exists and its number of consumers satisfies `wanted`.
pub async fn wait_for_consumers(queue: &str, wanted: impl Fn(u32) -> bool) {
    let conn = crate::events::connect(&amqp_url(), "test-probe").await.expect("RabbitMQ is up");
    wait_for("the queue's consumers", || {
        let conn = &conn;
        let wanted = &wanted;
        async move {
            // A failed passive declare closes its channel: probe on a fresh one.
            let probe = conn.create_channel().await.ok()?;
            let passive = lapin::options::QueueDeclareOptions { passive: true, ..Default::default() };
            let found = probe.queue_declare(queue.to_owned().into(), passive, Default::default()).await.ok();
            let _ = probe.close(200, "probe".into()).await;
            found.filter(|q| wanted(q.consumer_count()))
        }
    })
    .await;
    let _ = conn.close(200, "bye".into()).await;
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

/// Every `table.column` of `schema` that holds `user` in some row, with the
/// count, searching each uuid column of each table (found through
/// information_schema, so a table added later cannot escape the check) except
/// the tombstones, whose one job is to keep the id. Panics if it finds no
/// column to search at all.
pub async fn rows_of_user(pool: &sqlx::PgPool, schema: &str, user: Uuid) -> Vec<String> {
    let columns: Vec<(String, String)> = sqlx::query_as(
        "SELECT c.table_name::text, c.column_name::text
         FROM information_schema.columns c
         JOIN information_schema.tables t USING (table_schema, table_name)
         WHERE c.table_schema = $1 AND c.data_type = 'uuid' AND t.table_type = 'BASE TABLE'
           AND c.table_name <> 'deleted_users'",
    )
    .bind(schema)
    .fetch_all(pool)
    .await
    .expect("list the schema's uuid columns");
    assert!(!columns.is_empty(), "no uuid column in schema {schema}");
    let mut found = Vec::new();
    for (table, column) in columns {
        let sql = format!(
            "SELECT count(*) FROM {}.{} WHERE {} = $1",
            crate::db::quote_ident(schema),
            crate::db::quote_ident(&table),
            crate::db::quote_ident(&column)
        );
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).bind(user).fetch_one(pool).await.expect("count");
        if n > 0 {
            found.push(format!("{table}.{column}: {n}"));
        }
    }
    found
}

/// Messages ready in `queue`, `None` if it does not exist.
pub async fn queue_depth(queue: &str) -> Option<u32> {
    let conn = crate::events::connect(&amqp_url(), "test-probe").await.expect("RabbitMQ is up");
    let probe = conn.create_channel().await.expect("a channel");
    let passive = lapin::options::QueueDeclareOptions { passive: true, ..Default::default() };
    let found = probe.queue_declare(queue.to_owned().into(), passive, Default::default()).await.ok();
    let _ = probe.close(200, "probe".into()).await;
    let _ = conn.close(200, "bye".into()).await;
    found.map(|q| q.message_count())
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
