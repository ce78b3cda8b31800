use auth::Application;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use kit::Env;
use kit::testing::Isolation;
pub use kit::testing::{TcpGate, amqp_url, postgres_base, wait_for};
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub const PASSWORD: &str = "correct horse 1";

/// A fixed signing key, so tests can forge tokens the way an attacker would try to.
pub fn test_key_pem() -> String {
    ed25519_dalek::SigningKey::from_bytes(&[42u8; 32]).to_pkcs8_pem(Default::default()).expect("encodes").to_string()
}

pub struct TestApp {
    pub address: String,
    /// The admin listener (`/metrics`), unless `ADMIN_PORT=none`.
    pub admin_address: Option<String>,
    pub client: reqwest::Client,
    pub pool: PgPool,
    pub exchange: String,
    shutdown: CancellationToken,
    /// Dropped after the shutdown signal: removes the database and exchange.
    _isolation: Isolation,
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
    let isolation = Isolation::new("auth");
    let exchange = isolation.exchange.clone();
    let mut env = Env::from_pairs([
        ("HOST".to_owned(), "127.0.0.1".to_owned()),
        ("PORT".to_owned(), "0".to_owned()),
        ("DATABASE_URL".to_owned(), isolation.database_url()),
        ("DATABASE_MAX_CONNECTIONS".to_owned(), "4".to_owned()),
        ("RABBITMQ_URL".to_owned(), amqp_url()),
        ("EVENTS_EXCHANGE".to_owned(), exchange.clone()),
        ("OUTBOX_POLL_INTERVAL".to_owned(), "100ms".to_owned()),
        ("AMQP_MAX_BACKOFF".to_owned(), "200ms".to_owned()),
        ("BCRYPT_COST".to_owned(), "4".to_owned()),
        ("JWT_PRIVATE_KEY".to_owned(), test_key_pem()),
        ("SUBGRAPH_SHARED_SECRET".to_owned(), kit::testing::ROUTER_SECRET.to_owned()),
        ("SHUTDOWN_DELAY".to_owned(), "0s".to_owned()),
    ]);
    configure(&mut env);
    let settings = kit::cli::load::<Application>(env).expect("test settings are valid");
    let app = Application::build(settings).await.expect("the app starts");
    let address = format!("http://127.0.0.1:{}", app.port());
    let admin_address = app.admin_port().map(|port| format!("http://127.0.0.1:{port}"));
    let pool = app.pool().clone();
    let shutdown = CancellationToken::new();
    tokio::spawn(app.run_until_stopped(shutdown.clone()));
    TestApp {
        address,
        admin_address,
        client: kit::testing::router_client(),
        pool,
        exchange,
        shutdown,
        _isolation: isolation,
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl TestApp {
    /// The app's database (another app may share it, as a replica).
    pub fn database_url(&self) -> String {
        self._isolation.database_url()
    }

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

    /// `GET path` on the admin listener.
    pub async fn get_admin(&self, path: &str) -> reqwest::Response {
        let admin = self.admin_address.as_deref().expect("the app has an admin listener");
        self.client.get(format!("{admin}{path}")).send().await.expect("request sent")
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
    pub async fn eventually<F, Fut>(&self, what: &str, condition: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        kit::testing::eventually(what, condition).await
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
