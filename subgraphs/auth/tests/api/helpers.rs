use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use auth::Application;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use kit::Env;
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub fn postgres_base() -> String {
    std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

pub fn amqp_url() -> String {
    std::env::var("TEST_RABBITMQ_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

pub const PASSWORD: &str = "correct horse 1";

/// A fixed signing key, so tests can forge tokens the way an attacker would try to.
pub fn test_key_pem() -> String {
    ed25519_dalek::SigningKey::from_bytes(&[42u8; 32]).to_pkcs8_pem(Default::default()).expect("encodes").to_string()
}

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub pool: PgPool,
    pub exchange: String,
    db_name: String,
    shutdown: CancellationToken,
}

pub struct Session {
    pub access_token: String,
    pub refresh_token: String,
    pub user_id: String,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Spawns the app; `configure` may override any variable before settings are read.
pub async fn spawn_app_with(configure: impl FnOnce(&mut Env)) -> TestApp {
    kit::telemetry::init_for_tests();
    let db_name = format!("test_auth_{}", Uuid::new_v4().simple());
    let exchange = format!("test.events.{}", Uuid::new_v4().simple());
    let mut env = Env::from_pairs([
        ("HOST".to_owned(), "127.0.0.1".to_owned()),
        ("PORT".to_owned(), "0".to_owned()),
        ("DATABASE_URL".to_owned(), format!("{}/{db_name}", postgres_base())),
        ("DATABASE_MAX_CONNECTIONS".to_owned(), "4".to_owned()),
        ("RABBITMQ_URL".to_owned(), amqp_url()),
        ("EVENTS_EXCHANGE".to_owned(), exchange.clone()),
        ("OUTBOX_POLL_INTERVAL".to_owned(), "100ms".to_owned()),
        ("AMQP_MAX_BACKOFF".to_owned(), "200ms".to_owned()),
        ("BCRYPT_COST".to_owned(), "4".to_owned()),
        ("JWT_PRIVATE_KEY".to_owned(), test_key_pem()),
    ]);
    configure(&mut env);
    let settings = kit::cli::load::<Application>(env).expect("test settings are valid");
    let app = Application::build(settings).await.expect("the app starts");
    let address = format!("http://127.0.0.1:{}", app.port());
    let pool = app.pool().clone();
    let shutdown = CancellationToken::new();
    tokio::spawn(app.run_until_stopped(shutdown.clone()));
    TestApp { address, client: reqwest::Client::new(), pool, exchange, db_name, shutdown }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
        let db_name = self.db_name.clone();
        let exchange = self.exchange.clone();
        // Clean-up needs async I/O while the test's runtime is winding down: use a runtime of its own.
        let cleanup = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async move {
                if let Err(e) = kit::db::drop_database(&postgres_base(), &db_name).await {
                    eprintln!("could not drop test database {db_name}: {e}");
                }
                if let Ok(conn) = kit::events::connect(&amqp_url(), "test-cleanup").await {
                    if let Ok(channel) = conn.create_channel().await {
                        let _ = kit::events::delete_exchange(&channel, &exchange).await;
                    }
                    let _ = conn.close(200, "bye".into()).await;
                }
            });
        });
        let _ = cleanup.join();
    }
}

impl TestApp {
    pub async fn post_graphql(&self, token: Option<&str>, body: Value) -> reqwest::Response {
        let mut request = self.client.post(format!("{}/graphql", self.address)).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request sent")
    }

    pub async fn graphql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let response = self.post_graphql(token, json!({ "query": query, "variables": variables })).await;
        assert!(response.status().is_success(), "HTTP {}", response.status());
        response.json().await.expect("JSON body")
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(format!("{}{path}", self.address)).send().await.expect("request sent")
    }

    pub async fn register(&self, email: &str, password: &str) -> Value {
        self.graphql(
            None,
            "mutation($email: String!, $password: String!) {
                register(email: $email, password: $password) {
                    accessToken refreshToken expiresIn user { id email createdAt }
                }
            }",
            json!({ "email": email, "password": password }),
        )
        .await
    }

    pub async fn login(&self, email: &str, password: &str) -> Value {
        self.graphql(
            None,
            "mutation($email: String!, $password: String!) {
                login(email: $email, password: $password) { accessToken refreshToken expiresIn user { id email } }
            }",
            json!({ "email": email, "password": password }),
        )
        .await
    }

    pub async fn refresh(&self, token: &str) -> Value {
        self.graphql(
            None,
            "mutation($token: String!) { refreshToken(token: $token) { accessToken refreshToken user { id } } }",
            json!({ "token": token }),
        )
        .await
    }

    pub async fn me(&self, token: &str) -> Value {
        self.graphql(Some(token), "{ me { id email createdAt } }", json!({})).await
    }

    /// Registers a fresh user and returns its session.
    pub async fn signed_up(&self) -> Session {
        let email = format!("user-{}@example.com", Uuid::new_v4().simple());
        session_of(&self.register(&email, PASSWORD).await, "register")
    }

    /// Waits until `condition` holds, checking every 25 ms for at most 15 s.
    pub async fn eventually<F, Fut>(&self, what: &str, mut condition: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        wait_for(what, || {
            let check = condition();
            async move { check.await.then_some(()) }
        })
        .await
    }
}

/// Waits until `attempt` yields a value, trying every 25 ms for at most 15 s.
pub async fn wait_for<T, F, Fut>(what: &str, mut attempt: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
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

pub fn session_of(response: &Value, field: &str) -> Session {
    let payload = &response["data"][field];
    assert!(payload.is_object(), "no session in {response}");
    Session {
        access_token: payload["accessToken"].as_str().expect("accessToken").to_owned(),
        refresh_token: payload["refreshToken"].as_str().expect("refreshToken").to_owned(),
        user_id: payload["user"]["id"].as_str().expect("user.id").to_owned(),
    }
}

/// `extensions.code` of the first error.
pub fn error_code(response: &Value) -> &str {
    response["errors"][0]["extensions"]["code"].as_str().unwrap_or_else(|| panic!("no error code in {response}"))
}

pub fn error_field(response: &Value) -> &str {
    response["errors"][0]["extensions"]["field"].as_str().unwrap_or_else(|| panic!("no error field in {response}"))
}

/// A TCP proxy to a real server that can refuse connections, to play a broker outage
/// without touching the broker other tests use.
pub struct TcpGate {
    pub port: u16,
    open: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl TcpGate {
    pub async fn start(target: SocketAddr, open: bool) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind gate");
        let port = listener.local_addr().expect("addr").port();
        let flag = Arc::new(AtomicBool::new(open));
        let state = flag.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !state.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Self { port, open: flag, task }
    }

    pub fn open(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}

impl Drop for TcpGate {
    fn drop(&mut self) {
        self.task.abort();
    }
}
