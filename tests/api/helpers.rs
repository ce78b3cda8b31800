use std::path::PathBuf;

use kit::testing::{Isolation, amqp_url, redis_url};
use serde_json::{Value, json};
use sqlx::PgPool;
use taskgraph::{CacheMode, EventsMode, Monolith, Ports, Settings};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Which cache and event bus the monolith runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Redis and RabbitMQ on localhost.
    Brokers,
    /// `REDIS_URL=none`, `RABBITMQ_URL=none`: the in-process cache and bus.
    InProcess,
}

pub struct TestMonolith {
    pub ports: Ports,
    /// The process's one admin listener (`/metrics`).
    pub admin_port: Option<u16>,
    /// What the binary prints once started.
    pub banner: String,
    pub cache: CacheMode,
    pub events: EventsMode,
    pub client: reqwest::Client,
    /// A connection of the test's own to the monolith's database, for assertions.
    pub pool: PgPool,
    pub tasks_queue: String,
    pub files_queue: String,
    storage_dir: PathBuf,
    shutdown: CancellationToken,
    /// Dropped after the shutdown signal: removes the database, exchange, queues and keys.
    _isolation: Isolation,
}

/// The monolith with [`kit::testing::ROUTER_SECRET`] as its router's secret,
/// so `client` can call the subgraphs directly too.
pub async fn spawn_monolith(mode: Mode) -> TestMonolith {
    spawn_monolith_with(mode, Some(kit::testing::ROUTER_SECRET)).await
}

/// The monolith with `router_secret`, or without one (it makes its own; `client` then sends none).
pub async fn spawn_monolith_with(mode: Mode, router_secret: Option<&str>) -> TestMonolith {
    kit::telemetry::init_for_tests();
    let isolation = Isolation::new("monolith");
    let storage_dir = std::env::temp_dir().join(format!("taskgraph-monolith-test-{}", Uuid::new_v4().simple()));
    let tasks_queue = isolation.queue("tasks.user-deleted");
    let files_queue = isolation.queue("files.user-deleted");
    let (redis, rabbitmq) = match mode {
        Mode::Brokers => (redis_url(), amqp_url()),
        Mode::InProcess => ("none".to_owned(), "none".to_owned()),
    };
    let supergraph = concat!(env!("CARGO_MANIFEST_DIR"), "/schema/supergraph.graphql");
    let mut vars = vec![
        ("PORT", "0".to_owned()),
        ("AUTH_PORT", "0".to_owned()),
        ("TASKS_PORT", "0".to_owned()),
        ("FILES_PORT", "0".to_owned()),
        ("DATABASE_URL", isolation.database_url()),
        ("DATABASE_MAX_CONNECTIONS", "3".to_owned()),
        ("BCRYPT_COST", "4".to_owned()),
        ("REDIS_URL", redis),
        ("RABBITMQ_URL", rabbitmq),
        ("EVENTS_EXCHANGE", isolation.exchange.clone()),
        ("TASKS_USER_DELETED_QUEUE", tasks_queue.clone()),
        ("FILES_USER_DELETED_QUEUE", files_queue.clone()),
        ("AMQP_MAX_BACKOFF", "200ms".to_owned()),
        ("CACHE_KEY_PREFIX", isolation.cache_prefix.clone()),
        ("STORAGE_DIR", storage_dir.display().to_string()),
        ("SUPERGRAPH_PATH", supergraph.to_owned()),
        ("SHUTDOWN_DELAY", "0s".to_owned()),
    ];
    let client = match router_secret {
        Some(secret) => {
            vars.push(("SUBGRAPH_SHARED_SECRET", secret.to_owned()));
            kit::testing::router_client()
        }
        None => reqwest::Client::new(),
    };
    let settings =
        Settings::from_vars(vars.into_iter().map(|(k, v)| (k.to_owned(), v))).expect("test settings are valid");
    let monolith = Monolith::build(settings).await.expect("the monolith starts");
    let (ports, admin_port, banner) = (monolith.ports(), monolith.admin_port(), monolith.banner());
    let (cache, events) = (monolith.cache().clone(), monolith.events().clone());
    let shutdown = CancellationToken::new();
    tokio::spawn(monolith.run_until_stopped(shutdown.clone()));
    let pool = PgPool::connect(&isolation.database_url()).await.expect("the test connects to its database");
    TestMonolith {
        ports,
        admin_port,
        banner,
        cache,
        events,
        client,
        pool,
        tasks_queue,
        files_queue,
        storage_dir,
        shutdown,
        _isolation: isolation,
    }
}

impl Drop for TestMonolith {
    fn drop(&mut self) {
        self.shutdown.cancel();
        let _ = std::fs::remove_dir_all(&self.storage_dir);
    }
}

impl TestMonolith {
    pub fn api(&self) -> String {
        format!("http://127.0.0.1:{}/graphql", self.ports.router)
    }

    /// A GraphQL request through the router; fails the test on any error.
    pub async fn graphql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let mut request = self.client.post(self.api()).json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("request sent");
        assert!(response.status().is_success(), "HTTP {}", response.status());
        let body: Value = response.json().await.expect("JSON body");
        assert!(body["errors"].is_null(), "{query}: {body}");
        body["data"].clone()
    }

    /// Registers an account through the router: (user id, access token).
    pub async fn register(&self, email: &str, password: &str) -> (Uuid, String) {
        let data = self
            .graphql(
                None,
                "mutation($email: String!, $password: String!) {
                    register(email: $email, password: $password) { accessToken user { id } }
                }",
                json!({ "email": email, "password": password }),
            )
            .await;
        let id = data["register"]["user"]["id"].as_str().expect("an id").parse().expect("a UUID");
        (id, data["register"]["accessToken"].as_str().expect("a token").to_owned())
    }

    /// Uploads one text file through the router (a GraphQL multipart request).
    pub async fn upload(&self, token: &str, filename: &str, content: &[u8]) -> Value {
        let boundary = format!("----taskgraph{}", Uuid::new_v4().simple());
        let operations = json!({
            "query": "mutation($file: Upload!) { uploadFile(file: $file) { id filename } }",
            "variables": { "file": null },
        });
        let mut body = Vec::new();
        for (name, extra, content) in [
            ("operations", "\r\nContent-Type: application/json".to_owned(), operations.to_string().into_bytes()),
            ("map", "\r\nContent-Type: application/json".to_owned(), br#"{"0":["variables.file"]}"#.to_vec()),
            ("0", format!("; filename=\"{filename}\"\r\nContent-Type: text/plain"), content.to_vec()),
        ] {
            body.extend_from_slice(
                format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"{extra}\r\n\r\n").as_bytes(),
            );
            body.extend_from_slice(&content);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        let response = self
            .client
            .post(format!("http://127.0.0.1:{}/graphql", self.ports.router))
            .bearer_auth(token)
            .header("content-type", format!("multipart/form-data; boundary={boundary}"))
            .header("apollo-require-preflight", "true")
            .body(body)
            .send()
            .await
            .expect("upload sent");
        let body: Value = response.json().await.expect("JSON body");
        assert!(body["errors"].is_null(), "upload: {body}");
        body["data"]["uploadFile"].clone()
    }

    pub async fn rows_of(&self, user: Uuid) -> (i64, i64) {
        let tasks: i64 = sqlx::query_scalar("SELECT count(*) FROM tasks.tasks WHERE user_id = $1")
            .bind(user)
            .fetch_one(&self.pool)
            .await
            .expect("count tasks");
        let files: i64 = sqlx::query_scalar("SELECT count(*) FROM files.files WHERE owner_id = $1")
            .bind(user)
            .fetch_one(&self.pool)
            .await
            .expect("count files");
        (tasks, files)
    }
}
