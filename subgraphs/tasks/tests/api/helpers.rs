use kit::Env;
use kit::testing::{Isolation, TestIssuer};
pub use kit::testing::{amqp_url, redis_url, wait_for};
use serde_json::{Value, json};
use sqlx::PgPool;
use tasks::Application;
use tasks::service::TaskService;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub const TASK_FIELDS: &str = "id title description status dueAt createdAt updatedAt";

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub issuer: TestIssuer,
    pub service: TaskService,
    pub exchange: String,
    pub queue: String,
    shutdown: CancellationToken,
    /// Dropped after the shutdown signal: removes the database and exchange.
    _isolation: Isolation,
}

/// A user of the app: an id and a token for it.
pub struct User {
    pub id: Uuid,
    pub token: String,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Spawns the app; `configure` may override any variable before settings are read.
pub async fn spawn_app_with(configure: impl FnOnce(&mut Env)) -> TestApp {
    kit::telemetry::init_for_tests();
    let isolation = Isolation::new("tasks");
    let issuer = TestIssuer::start().await;
    let exchange = isolation.exchange.clone();
    let queue = isolation.queue("tasks.user-deleted");
    let mut env = Env::from_pairs([
        ("HOST".to_owned(), "127.0.0.1".to_owned()),
        ("PORT".to_owned(), "0".to_owned()),
        ("DATABASE_URL".to_owned(), isolation.database_url()),
        ("DATABASE_MAX_CONNECTIONS".to_owned(), "4".to_owned()),
        ("RABBITMQ_URL".to_owned(), amqp_url()),
        ("EVENTS_EXCHANGE".to_owned(), exchange.clone()),
        ("USER_DELETED_QUEUE".to_owned(), queue.clone()),
        ("AMQP_MAX_BACKOFF".to_owned(), "200ms".to_owned()),
        ("REDIS_URL".to_owned(), redis_url()),
        ("CACHE_KEY_PREFIX".to_owned(), isolation.cache_prefix.clone()),
        ("JWKS_URL".to_owned(), issuer.jwks_url.clone()),
        ("SUBGRAPH_SHARED_SECRET".to_owned(), kit::testing::ROUTER_SECRET.to_owned()),
        ("SHUTDOWN_DELAY".to_owned(), "0s".to_owned()),
    ]);
    configure(&mut env);
    let settings = kit::cli::load::<Application>(env).expect("test settings are valid");
    let app = Application::build(settings).await.expect("the app starts");
    let address = format!("http://127.0.0.1:{}", app.port());
    let service = app.service().clone();
    let shutdown = CancellationToken::new();
    tokio::spawn(app.run_until_stopped(shutdown.clone()));
    TestApp {
        address,
        client: kit::testing::router_client(),
        issuer,
        service,
        exchange,
        queue,
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
    /// Sends the shutdown signal (SIGTERM's work), as the app's drop does.
    pub fn begin_shutdown(&self) {
        self.shutdown.cancel();
    }

    pub fn pool(&self) -> &PgPool {
        self.service.store().pool()
    }

    pub fn user(&self) -> User {
        let id = Uuid::new_v4();
        User { id, token: self.issuer.token(id) }
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

    /// Creates a task and returns it; fails the test on any error.
    pub async fn create_task(&self, user: &User, input: Value) -> Value {
        let response = self
            .graphql(
                Some(&user.token),
                &format!("mutation($input: CreateTaskInput!) {{ createTask(input: $input) {{ {TASK_FIELDS} }} }}"),
                json!({ "input": input }),
            )
            .await;
        let task = response["data"]["createTask"].clone();
        assert!(task.is_object(), "createTask failed: {response}");
        task
    }

    pub async fn tasks_page(&self, user: &User, arguments: Value) -> Value {
        let response = self
            .graphql(
                Some(&user.token),
                "query($first: Int, $after: String, $status: TaskStatus, $orderBy: TaskOrder) {
                    tasks(first: $first, after: $after, status: $status, orderBy: $orderBy) {
                        totalCount
                        pageInfo { hasNextPage endCursor }
                        edges { cursor node { id title status dueAt } }
                    }
                }",
                arguments,
            )
            .await;
        assert!(response["errors"].is_null(), "tasks failed: {response}");
        response["data"]["tasks"].clone()
    }

    /// Whole responses kept in Redis for `user`.
    pub fn cached_responses(&self, user: &User) -> usize {
        let client = redis::Client::open(kit::testing::redis_url()).expect("redis url");
        let mut conn = client.get_connection().expect("redis connection");
        let pattern = format!("{}tasks:{}:g*:raw-response:*", self._isolation.cache_prefix, user.id);
        let keys: Vec<String> = redis::cmd("KEYS").arg(pattern).query(&mut conn).expect("KEYS");
        keys.len()
    }

    pub fn statements(&self) -> u64 {
        self.service.store().statements_executed()
    }
}

/// `extensions.code` of the first error.
pub fn error_code(response: &Value) -> &str {
    response["errors"][0]["extensions"]["code"].as_str().unwrap_or_else(|| panic!("no error code in {response}"))
}

pub fn error_field(response: &Value) -> &str {
    response["errors"][0]["extensions"]["field"].as_str().unwrap_or_else(|| panic!("no error field in {response}"))
}

/// The titles of a page's nodes, in order.
pub fn titles(page: &Value) -> Vec<String> {
    page["edges"].as_array().expect("edges").iter().map(|e| e["node"]["title"].as_str().unwrap().to_owned()).collect()
}
