use std::path::{Path, PathBuf};

use files::Application;
use files::repository::Repository;
use kit::Env;
pub use kit::testing::amqp_url;
use kit::testing::{Isolation, TestIssuer};
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The download URL secret every test app uses, so tests can sign as the service does.
pub const URL_SECRET: &str = "test-download-url-secret-0123456789abcdef";

pub const UPLOAD_FILE: &str = "mutation($file: Upload!) {
    uploadFile(file: $file) { id filename contentType size sha256 createdAt downloadUrl owner { id } }
}";
pub const UPLOAD_FILES: &str = "mutation($files: [Upload!]!) {
    uploadFiles(files: $files) { id filename contentType size sha256 }
}";

pub const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";
pub const PDF: &[u8] = b"%PDF-1.7\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n";

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub pool: PgPool,
    pub repository: Repository,
    pub storage_dir: PathBuf,
    pub issuer: TestIssuer,
    pub exchange: String,
    pub queue: String,
    shutdown: CancellationToken,
    /// Dropped after the shutdown signal: removes the database and exchange.
    _isolation: Isolation,
}

pub struct User {
    pub id: Uuid,
    pub token: String,
}

/// One file part of a multipart request.
pub struct Part<'a> {
    pub filename: &'a str,
    pub content: &'a [u8],
    /// What the client claims; the service never believes it.
    pub content_type: &'a str,
}

pub fn part<'a>(filename: &'a str, content: &'a [u8]) -> Part<'a> {
    Part { filename, content, content_type: "application/octet-stream" }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Spawns the app; `configure` may override any variable before settings are read.
pub async fn spawn_app_with(configure: impl FnOnce(&mut Env)) -> TestApp {
    kit::telemetry::init_for_tests();
    let isolation = Isolation::new("files");
    let issuer = TestIssuer::start().await;
    let storage_dir = std::env::temp_dir().join(format!("taskgraph-files-test-{}", Uuid::new_v4().simple()));
    let queue = format!("test.files.{}", Uuid::new_v4().simple());
    let mut env = Env::from_pairs([
        ("HOST".to_owned(), "127.0.0.1".to_owned()),
        ("PORT".to_owned(), "0".to_owned()),
        ("DATABASE_URL".to_owned(), isolation.database_url()),
        ("DATABASE_MAX_CONNECTIONS".to_owned(), "4".to_owned()),
        ("RABBITMQ_URL".to_owned(), amqp_url()),
        ("EVENTS_EXCHANGE".to_owned(), isolation.exchange.clone()),
        ("USER_DELETED_QUEUE".to_owned(), queue.clone()),
        ("AMQP_MAX_BACKOFF".to_owned(), "200ms".to_owned()),
        ("JWKS_URL".to_owned(), issuer.jwks_url.clone()),
        ("STORAGE_DIR".to_owned(), storage_dir.display().to_string()),
        ("DOWNLOAD_URL_SECRET".to_owned(), URL_SECRET.to_owned()),
        ("SUBGRAPH_SHARED_SECRET".to_owned(), kit::testing::ROUTER_SECRET.to_owned()),
        ("SHUTDOWN_DELAY".to_owned(), "0s".to_owned()),
    ]);
    configure(&mut env);
    let settings = kit::cli::load::<Application>(env).expect("test settings are valid");
    let app = Application::build(settings).await.expect("the app starts");
    let address = format!("http://127.0.0.1:{}", app.port());
    let pool = app.pool().clone();
    let repository = app.repository().clone();
    let shutdown = CancellationToken::new();
    tokio::spawn(app.run_until_stopped(shutdown.clone()));
    TestApp {
        address,
        client: kit::testing::router_client(),
        pool,
        repository,
        storage_dir,
        issuer,
        exchange: isolation.exchange.clone(),
        queue,
        shutdown,
        _isolation: isolation,
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
        let _ = std::fs::remove_dir_all(&self.storage_dir);
        let queue = self.queue.clone();
        // The consumer's queues; the exchange goes with the isolation.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            rt.block_on(async move {
                use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
                let Ok(conn) = kit::events::connect(&amqp_url(), "test-cleanup").await else { return };
                if let Ok(channel) = conn.create_channel().await {
                    let dead = format!("{queue}.dead");
                    let _ = channel.queue_delete(queue.into(), QueueDeleteOptions::default()).await;
                    let _ = channel.queue_delete(dead.clone().into(), QueueDeleteOptions::default()).await;
                    let _ = channel.exchange_delete(dead.into(), ExchangeDeleteOptions::default()).await;
                }
                let _ = conn.close(200, "bye".into()).await;
            })
        })
        .join();
    }
}

impl TestApp {
    pub fn user(&self) -> User {
        let id = Uuid::new_v4();
        User { id, token: self.issuer.token(id) }
    }

    pub async fn graphql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let mut request = self
            .client
            .post(format!("{}/graphql", self.address))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("request sent");
        assert!(response.status().is_success(), "HTTP {}", response.status());
        response.json().await.expect("JSON body")
    }

    /// Posts a multipart request with `query` and one variable, `files` (a list
    /// when `list`, else one `file`).
    pub async fn post_files(&self, token: Option<&str>, parts: &[Part<'_>], list: bool) -> reqwest::Response {
        let (query, variables, map) = if list {
            let nulls: Vec<Value> = parts.iter().map(|_| Value::Null).collect();
            let map: serde_json::Map<String, Value> =
                (0..parts.len()).map(|i| (i.to_string(), json!([format!("variables.files.{i}")]))).collect();
            (UPLOAD_FILES, json!({ "files": nulls }), Value::Object(map))
        } else {
            (UPLOAD_FILE, json!({ "file": null }), json!({ "0": ["variables.file"] }))
        };
        let operations = json!({ "query": query, "variables": variables });
        self.post_multipart(token, &operations, &map, parts).await
    }

    pub async fn post_multipart(
        &self,
        token: Option<&str>,
        operations: &Value,
        map: &Value,
        parts: &[Part<'_>],
    ) -> reqwest::Response {
        let (content_type, body) = multipart_body(operations, map, parts);
        let mut request =
            self.client.post(format!("{}/graphql", self.address)).header("content-type", content_type).body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request sent")
    }

    /// Uploads and returns the JSON response.
    pub async fn upload(&self, user: &User, parts: &[Part<'_>]) -> Value {
        let response = self.post_files(Some(&user.token), parts, parts.len() != 1).await;
        response.json().await.expect("JSON body")
    }

    /// Uploads one file that must be accepted; returns it.
    pub async fn uploaded(&self, user: &User, filename: &str, content: &[u8]) -> Value {
        let response = self.upload(user, &[part(filename, content)]).await;
        let file = response["data"]["uploadFile"].clone();
        assert!(file.is_object(), "upload refused: {response}");
        file
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut request = self.client.get(format!("{}{path}", self.address));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request sent")
    }

    /// Blob files in storage (names of the files in the storage directory).
    pub fn blobs(&self) -> Vec<String> {
        list_files(&self.storage_dir)
    }

    pub async fn file_rows(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM files.files").fetch_one(&self.pool).await.unwrap()
    }
}

fn list_files(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut names = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            names.extend(list_files(&path));
        } else {
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    names
}

pub fn multipart_body(operations: &Value, map: &Value, parts: &[Part<'_>]) -> (String, Vec<u8>) {
    let boundary = format!("----taskgraph{}", Uuid::new_v4().simple());
    let mut body = Vec::new();
    let mut field = |name: &str, extra: &str, content: &[u8]| {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"{extra}\r\n").as_bytes(),
        );
        body.extend_from_slice(content);
        body.extend_from_slice(b"\r\n");
    };
    field("operations", "\r\nContent-Type: application/json\r\n", operations.to_string().as_bytes());
    field("map", "\r\nContent-Type: application/json\r\n", map.to_string().as_bytes());
    for (i, p) in parts.iter().enumerate() {
        let extra = format!("; filename=\"{}\"\r\nContent-Type: {}\r\n", p.filename, p.content_type);
        field(&i.to_string(), &extra, p.content);
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// `extensions.code` of the first error.
pub fn error_code(response: &Value) -> &str {
    response["errors"][0]["extensions"]["code"].as_str().unwrap_or_else(|| panic!("no error code in {response}"))
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("{:x}", sha2::Sha256::digest(bytes))
}
