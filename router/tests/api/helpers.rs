use std::path::PathBuf;

use kit::Env;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub fn postgres_base() -> String {
    std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

pub fn repo_path(relative: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/..")).join(relative)
}

/// A running service that is stopped when dropped.
pub struct Running {
    pub address: String,
    shutdown: CancellationToken,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// The real auth subgraph on a fresh database (dropped with the guard).
pub struct AuthService {
    pub running: Running,
    db_name: String,
    exchange: String,
}

impl Drop for AuthService {
    fn drop(&mut self) {
        self.running.shutdown.cancel();
        let db = self.db_name.clone();
        let exchange = self.exchange.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async move {
                let _ = kit::db::drop_database(&postgres_base(), &db).await;
                let amqp = "amqp://guest:guest@127.0.0.1:5672/%2f";
                if let Ok(conn) = kit::events::connect(amqp, "test-cleanup").await {
                    if let Ok(channel) = conn.create_channel().await {
                        let _ = kit::events::delete_exchange(&channel, &exchange).await;
                    }
                    let _ = conn.close(200, "bye".into()).await;
                }
            })
        })
        .join();
    }
}

pub async fn spawn_auth() -> AuthService {
    kit::telemetry::init_for_tests();
    let db_name = format!("test_router_auth_{}", Uuid::new_v4().simple());
    let exchange = format!("test.events.{}", Uuid::new_v4().simple());
    let env = Env::from_pairs([
        ("HOST".to_owned(), "127.0.0.1".to_owned()),
        ("PORT".to_owned(), "0".to_owned()),
        ("DATABASE_URL".to_owned(), format!("{}/{db_name}", postgres_base())),
        ("DATABASE_MAX_CONNECTIONS".to_owned(), "4".to_owned()),
        ("EVENTS_EXCHANGE".to_owned(), exchange.clone()),
        ("BCRYPT_COST".to_owned(), "4".to_owned()),
    ]);
    let settings = kit::cli::load::<auth::Application>(env).expect("auth settings");
    let app = auth::Application::build(settings).await.expect("auth starts");
    let address = format!("http://127.0.0.1:{}", app.port());
    let shutdown = CancellationToken::new();
    tokio::spawn(app.run_until_stopped(shutdown.clone()));
    AuthService { running: Running { address, shutdown }, db_name, exchange }
}

/// The router over `supergraph` (a path), with extra variables.
pub async fn spawn_router(supergraph: PathBuf, vars: &[(&str, String)]) -> RouterClient {
    kit::telemetry::init_for_tests();
    let mut env = Env::from_pairs([
        ("HOST".to_owned(), "127.0.0.1".to_owned()),
        ("PORT".to_owned(), "0".to_owned()),
        ("SUPERGRAPH_PATH".to_owned(), supergraph.display().to_string()),
        ("SUPERGRAPH_POLL_INTERVAL".to_owned(), "50ms".to_owned()),
        ("SUBGRAPH_TIMEOUT".to_owned(), "2s".to_owned()),
    ]);
    for (name, value) in vars {
        env.set(name, value.clone());
    }
    let settings = kit::cli::load::<router::Application>(env).expect("router settings");
    let app = router::Application::build(settings).await.expect("router starts");
    let address = format!("http://127.0.0.1:{}", app.port());
    let shutdown = CancellationToken::new();
    tokio::spawn(app.run_until_stopped(shutdown.clone()));
    RouterClient { running: Running { address, shutdown }, http: reqwest::Client::new() }
}

pub struct RouterClient {
    pub running: Running,
    pub http: reqwest::Client,
}

impl RouterClient {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.running.address)
    }

    pub async fn post(&self, token: Option<&str>, body: Value) -> reqwest::Response {
        let mut request = self.http.post(self.url("/graphql")).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request sent")
    }

    pub async fn graphql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let response = self.post(token, json!({ "query": query, "variables": variables })).await;
        response.json().await.expect("JSON body")
    }
}
