use std::path::PathBuf;

use kit::Env;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

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

/// A real subgraph on a fresh database (dropped with the guard).
pub struct Subgraph {
    pub running: Running,
    /// The queue the subgraph consumes, if any.
    pub queue: Option<String>,
    /// Removed when dropped (the files subgraph's storage).
    _storage: Option<TempDir>,
    /// Dropped after `running` has signalled shutdown: removes the database and exchange.
    _isolation: kit::testing::Isolation,
}

impl Subgraph {
    /// The subgraph's own database.
    pub fn database_url(&self) -> String {
        self._isolation.database_url()
    }

    /// The files subgraph's local store.
    pub fn storage_dir(&self) -> Option<&std::path::Path> {
        self._storage.as_ref().map(|s| s.0.as_path())
    }
}

pub async fn spawn_auth() -> Subgraph {
    kit::telemetry::init_for_tests();
    let isolation = kit::testing::Isolation::new("router_auth");
    let env = Env::from_pairs([
        ("HOST".to_owned(), "127.0.0.1".to_owned()),
        ("PORT".to_owned(), "0".to_owned()),
        ("DATABASE_URL".to_owned(), isolation.database_url()),
        ("DATABASE_MAX_CONNECTIONS".to_owned(), "4".to_owned()),
        ("SUBGRAPH_SHARED_SECRET".to_owned(), kit::testing::ROUTER_SECRET.to_owned()),
        ("SHUTDOWN_DELAY".to_owned(), "0s".to_owned()),
        ("EVENTS_EXCHANGE".to_owned(), isolation.exchange.clone()),
        ("BCRYPT_COST".to_owned(), "4".to_owned()),
    ]);
    let settings = kit::cli::load::<auth::Application>(env).expect("auth settings");
    let app = auth::Application::build(settings).await.expect("auth starts");
    let address = format!("http://127.0.0.1:{}", app.port());
    let shutdown = CancellationToken::new();
    tokio::spawn(app.run_until_stopped(shutdown.clone()));
    Subgraph { running: Running { address, shutdown }, queue: None, _storage: None, _isolation: isolation }
}

/// The real tasks subgraph on a fresh database, trusting `auth`'s keys and
/// consuming `auth`'s events.
pub async fn spawn_tasks(auth: &Subgraph) -> Subgraph {
    kit::telemetry::init_for_tests();
    let isolation = kit::testing::Isolation::new("router_tasks");
    let queue = isolation.queue("tasks.user-deleted");
    let env = Env::from_pairs([
        ("HOST".to_owned(), "127.0.0.1".to_owned()),
        ("PORT".to_owned(), "0".to_owned()),
        ("DATABASE_URL".to_owned(), isolation.database_url()),
        ("DATABASE_MAX_CONNECTIONS".to_owned(), "4".to_owned()),
        ("SUBGRAPH_SHARED_SECRET".to_owned(), kit::testing::ROUTER_SECRET.to_owned()),
        ("SHUTDOWN_DELAY".to_owned(), "0s".to_owned()),
        ("EVENTS_EXCHANGE".to_owned(), auth._isolation.exchange.clone()),
        ("USER_DELETED_QUEUE".to_owned(), queue.clone()),
        ("CACHE_KEY_PREFIX".to_owned(), isolation.cache_prefix.clone()),
        ("JWKS_URL".to_owned(), format!("{}/.well-known/jwks.json", auth.running.address)),
    ]);
    let settings = kit::cli::load::<tasks::Application>(env).expect("tasks settings");
    let app = tasks::Application::build(settings).await.expect("tasks starts");
    let address = format!("http://127.0.0.1:{}", app.port());
    let shutdown = CancellationToken::new();
    tokio::spawn(app.run_until_stopped(shutdown.clone()));
    Subgraph { running: Running { address, shutdown }, queue: Some(queue), _storage: None, _isolation: isolation }
}

/// A directory that is removed when dropped.
pub struct TempDir(pub PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The real files subgraph on a fresh database and a temporary storage
/// directory, trusting `auth`'s keys and consuming `auth`'s events.
pub async fn spawn_files(auth: &Subgraph) -> Subgraph {
    kit::telemetry::init_for_tests();
    let isolation = kit::testing::Isolation::new("router_files");
    let queue = isolation.queue("files.user-deleted");
    let storage = TempDir(std::env::temp_dir().join(format!("taskgraph-router-files-{}", Uuid::new_v4().simple())));
    let env = Env::from_pairs([
        ("HOST".to_owned(), "127.0.0.1".to_owned()),
        ("PORT".to_owned(), "0".to_owned()),
        ("DATABASE_URL".to_owned(), isolation.database_url()),
        ("DATABASE_MAX_CONNECTIONS".to_owned(), "4".to_owned()),
        ("SUBGRAPH_SHARED_SECRET".to_owned(), kit::testing::ROUTER_SECRET.to_owned()),
        ("SHUTDOWN_DELAY".to_owned(), "0s".to_owned()),
        ("EVENTS_EXCHANGE".to_owned(), auth._isolation.exchange.clone()),
        ("USER_DELETED_QUEUE".to_owned(), queue.clone()),
        ("STORAGE_DIR".to_owned(), storage.0.display().to_string()),
        ("DOWNLOAD_URL_SECRET".to_owned(), "a test secret that is long enough to sign".to_owned()),
        ("JWKS_URL".to_owned(), format!("{}/.well-known/jwks.json", auth.running.address)),
    ]);
    let settings = kit::cli::load::<files::Application>(env).expect("files settings");
    let app = files::Application::build(settings).await.expect("files starts");
    let address = format!("http://127.0.0.1:{}", app.port());
    let shutdown = CancellationToken::new();
    tokio::spawn(app.run_until_stopped(shutdown.clone()));
    Subgraph {
        running: Running { address, shutdown },
        queue: Some(queue),
        _storage: Some(storage),
        _isolation: isolation,
    }
}

/// The real auth, tasks and files subgraphs behind a router over the committed
/// supergraph that calls them and checks tokens with auth's keys; `vars` go to
/// the router too. Bind them in this order: the router is dropped first.
pub async fn spawn_stack(vars: &[(&str, String)]) -> (Subgraph, Subgraph, Subgraph, RouterClient) {
    let auth = spawn_auth().await;
    let tasks = spawn_tasks(&auth).await;
    let files = spawn_files(&auth).await;
    let router = spawn_router_over(&[&auth, &tasks, &files], vars).await;
    (auth, tasks, files, router)
}

/// As [`spawn_stack`], without the files subgraph.
pub async fn spawn_auth_tasks_stack(vars: &[(&str, String)]) -> (Subgraph, Subgraph, RouterClient) {
    let auth = spawn_auth().await;
    let tasks = spawn_tasks(&auth).await;
    let router = spawn_router_over(&[&auth, &tasks], vars).await;
    (auth, tasks, router)
}

/// The router over the committed supergraph, each of `subgraphs` (auth first)
/// at its own address, tokens checked with auth's keys.
async fn spawn_router_over(subgraphs: &[&Subgraph], vars: &[(&str, String)]) -> RouterClient {
    let names = ["SUBGRAPH_AUTH_URL", "SUBGRAPH_TASKS_URL", "SUBGRAPH_FILES_URL"];
    let mut all: Vec<(&str, String)> =
        names.iter().zip(subgraphs).map(|(name, s)| (*name, format!("{}/graphql", s.running.address))).collect();
    all.push(("JWKS_URL", format!("{}/.well-known/jwks.json", subgraphs[0].running.address)));
    all.extend(vars.iter().cloned());
    spawn_router(repo_path("schema/supergraph.graphql"), &all).await
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
        ("SUBGRAPH_SHARED_SECRET".to_owned(), kit::testing::ROUTER_SECRET.to_owned()),
        ("SHUTDOWN_DELAY".to_owned(), "0s".to_owned()),
    ]);
    for (name, value) in vars {
        env.set(name, value.clone());
    }
    let settings = kit::cli::load::<router::Application>(env).expect("router settings");
    let app = router::Application::build(settings).await.expect("router starts");
    let address = format!("http://127.0.0.1:{}", app.port());
    let admin_address = app.admin_port().map(|port| format!("http://127.0.0.1:{port}"));
    let shutdown = CancellationToken::new();
    tokio::spawn(app.run_until_stopped(shutdown.clone()));
    RouterClient { running: Running { address, shutdown }, admin_address, http: reqwest::Client::new() }
}

pub struct RouterClient {
    pub running: Running,
    /// The admin listener (`/metrics`), unless `ADMIN_PORT=none`.
    pub admin_address: Option<String>,
    pub http: reqwest::Client,
}

impl RouterClient {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.running.address)
    }

    /// `path` on the admin listener.
    pub fn admin_url(&self, path: &str) -> String {
        format!("{}{path}", self.admin_address.as_deref().expect("the router has an admin listener"))
    }

    pub async fn post(&self, token: Option<&str>, body: Value) -> reqwest::Response {
        let mut request = self.http.post(self.url("/graphql")).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request sent")
    }

    /// A GraphQL multipart request with one file (`$file`), with the preflight header.
    pub async fn upload(&self, token: &str, query: &str, filename: &str, content: &[u8]) -> reqwest::Response {
        let (content_type, body) = multipart(query, filename, content);
        self.http
            .post(self.url("/graphql"))
            .bearer_auth(token)
            .header("content-type", content_type)
            .header("apollo-require-preflight", "true")
            .body(body)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn graphql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let response = self.post(token, json!({ "query": query, "variables": variables })).await;
        response.json().await.expect("JSON body")
    }
}

/// A GraphQL multipart request body with one file, in `$file`.
pub fn multipart(query: &str, filename: &str, content: &[u8]) -> (String, Vec<u8>) {
    let operations = json!({ "query": query, "variables": { "file": null } });
    multipart_with(&operations, &json!({ "0": ["variables.file"] }), filename, content)
}

/// A GraphQL multipart request body with these `operations` and `map`, and one file part `0`.
pub fn multipart_with(operations: &Value, map: &Value, filename: &str, content: &[u8]) -> (String, Vec<u8>) {
    let boundary = "----taskgraph-router-test";
    let mut body = Vec::new();
    for (name, extra, value) in [
        ("operations", "", operations.to_string().into_bytes()),
        ("map", "", map.to_string().into_bytes()),
        ("0", &*format!("; filename=\"{filename}\"\r\nContent-Type: text/plain"), content.to_vec()),
    ] {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"{extra}\r\n\r\n").as_bytes(),
        );
        body.extend_from_slice(&value);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// Composes subgraphs (name, SDL, URL) into a supergraph with the project's
/// pinned composer (`schema/compose.mjs --stdin`; needs `npm ci` in schema/).
/// Without Node or the composer, the first test to compose ends the whole run
/// with one message saying what to install, instead of a panic in every test.
pub fn compose(subgraphs: &[(&str, String, String)]) -> String {
    use std::io::Write;
    use std::process::{Command, Stdio};
    require_composer();
    let input = json!({
        "subgraphs": subgraphs.iter().map(|(name, sdl, url)| json!({ "name": name, "sdl": sdl, "url": url })).collect::<Vec<_>>()
    });
    let mut child = Command::new("node")
        .arg(repo_path("schema/compose.mjs"))
        .arg("--stdin")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node runs (checked above)");
    child.stdin.take().expect("stdin").write_all(input.to_string().as_bytes()).expect("write");
    let output = child.wait_with_output().expect("composer finishes");
    assert!(output.status.success(), "composition failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).expect("utf-8")
}

/// Whether composition can run here (Node, and `npm ci` done in schema/),
/// found out once per run; if not, says so once and stops the run.
fn require_composer() {
    static CHECKED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    let checked = CHECKED.get_or_init(|| {
        let node = std::process::Command::new("node").arg("--version").output();
        if !node.is_ok_and(|out| out.status.success()) {
            return Err("`node` is not on PATH".to_owned());
        }
        let composer = repo_path("schema/node_modules/@theguild/federation-composition");
        if !composer.is_dir() {
            return Err(format!("{} is missing", composer.display()));
        }
        Ok(())
    });
    if let Err(missing) = checked {
        // Straight to stderr, past the test harness's capture: the run stops here.
        let message = format!(
            "\nrouter API tests: composition needs Node.js 20+ and the pinned composer: {missing}. \
             Install Node, then run `npm ci` in schema/. Stopping the test run.\n"
        );
        let _ = std::io::Write::write_all(&mut std::io::stderr(), message.as_bytes());
        std::process::exit(1);
    }
}

/// Writes a supergraph to a temporary file that lives as long as the guard.
pub struct SupergraphFile {
    pub path: PathBuf,
}

impl SupergraphFile {
    pub fn new(sdl: &str) -> Self {
        let path = std::env::temp_dir().join(format!("supergraph-{}.graphql", Uuid::new_v4().simple()));
        std::fs::write(&path, sdl).expect("write supergraph");
        Self { path }
    }
}

impl Drop for SupergraphFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// An in-process async-graphql subgraph on an ephemeral port that records the
/// GraphQL requests it receives.
pub struct TestSubgraph {
    pub url: String,
    pub sdl: String,
    pub received: std::sync::Arc<std::sync::Mutex<Vec<Value>>>,
    /// The headers of each request, names lower-cased.
    pub received_headers: std::sync::Arc<std::sync::Mutex<Vec<std::collections::HashMap<String, String>>>>,
    _running: Running,
}

impl TestSubgraph {
    pub fn requests(&self) -> Vec<Value> {
        self.received.lock().expect("lock").clone()
    }

    pub fn headers(&self) -> Vec<std::collections::HashMap<String, String>> {
        self.received_headers.lock().expect("lock").clone()
    }
}

pub async fn spawn_subgraph<Q, M, S>(schema: async_graphql::Schema<Q, M, S>) -> TestSubgraph
where
    Q: async_graphql::ObjectType + 'static,
    M: async_graphql::ObjectType + 'static,
    S: async_graphql::SubscriptionType + 'static,
{
    use axum::extract::State;
    let sdl = schema.sdl_with_options(async_graphql::SDLExportOptions::new().federation());
    let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let received_headers = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = received.clone();
    let header_log = received_headers.clone();
    let app = axum::Router::new()
        .route(
            "/graphql",
            axum::routing::post(
                |State(schema): State<async_graphql::Schema<Q, M, S>>,
                 headers: axum::http::HeaderMap,
                 axum::Json(body): axum::Json<Value>| async move {
                    let seen = headers
                        .iter()
                        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
                        .collect();
                    header_log.lock().expect("lock").push(seen);
                    log.lock().expect("lock").push(body.clone());
                    let request: async_graphql::Request = serde_json::from_value(body).expect("GraphQL request");
                    axum::Json(serde_json::to_value(schema.execute(request).await).expect("response"))
                },
            ),
        )
        .with_state(schema);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = format!("http://{}", listener.local_addr().expect("addr"));
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).with_graceful_shutdown(stop.cancelled_owned()).await;
    });
    TestSubgraph {
        url: format!("{address}/graphql"),
        sdl,
        received,
        received_headers,
        _running: Running { address, shutdown },
    }
}
