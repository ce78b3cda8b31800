//! Building and running the tasks service.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::post;
use kit::TokenVerifier;
use kit::cache::Cache;
use kit::events::InProcessBus;
use kit::events::consumer::Consumer;
use kit::graphql::GraphQLBatchRequest;
use kit::health::Health;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::schema::{self, TasksSchema};
use crate::service::TaskService;
use crate::store::TaskStore;
use crate::{SERVICE, Settings};

pub struct Application {
    server: kit::http::Server,
    service: TaskService,
    consumer: Consumer,
    verifier: TokenVerifier,
}

#[derive(Clone)]
struct AppState {
    schema: TasksSchema,
    verifier: TokenVerifier,
    service: TaskService,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::build_with_bus(settings, None).await
    }

    /// As [`build`](Self::build), its events on `bus` instead of RabbitMQ when
    /// given: only a process hosting every producer and consumer (the monolith) does.
    pub async fn build_with_bus(settings: Settings, bus: Option<&InProcessBus>) -> anyhow::Result<Self> {
        let database = kit::db::connect(&settings.database, SERVICE).await?;
        kit::db::migrate(database.pool(), sqlx::migrate!("../../migrations/tasks"), crate::SCHEMA).await?;

        let cache = Arc::new(Cache::new(SERVICE, settings.cache.clone()));
        let service = TaskService::new(TaskStore::new(database.clone()), cache.clone());
        let verifier = TokenVerifier::remote(&settings.identity, &settings.jwks_url);
        let consumer =
            crate::cascade::consumer(settings.amqp.clone(), &settings.consumer, service.clone()).with_bus(bus);

        let mut checks: Vec<Box<dyn kit::health::Check>> = vec![Box::new(database)];
        if cache.enabled() {
            checks.push(Box::new(cache));
        } else {
            tracing::info!("REDIS_URL=none: caching is off, every read goes to Postgres");
        }
        checks.push(Box::new(consumer.status()));
        let health = Health::new(SERVICE, checks);
        let state = AppState {
            schema: schema::build(Some(service.clone()), settings.limits),
            verifier: verifier.clone(),
            service: service.clone(),
        };
        let routes = Router::new().route("/graphql", post(graphql)).with_state(state);
        let routes = kit::http::router_only(SERVICE, routes, &settings.router_secret);
        let server = kit::http::Server::bind(SERVICE, routes, health, &settings.http).await?;
        tracing::info!(address = %server.local_addr()?, admin = ?server.admin_addr(), "tasks listening");
        Ok(Self { server, service, consumer, verifier })
    }

    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// The admin listener's port (`/metrics`), unless `ADMIN_PORT=none`.
    pub fn admin_port(&self) -> Option<u16> {
        self.server.admin_port()
    }

    /// The service behind the resolvers (tests count its SQL statements).
    pub fn service(&self) -> &TaskService {
        &self.service
    }

    /// Serves until `shutdown`; then drains requests, stops the consumer and closes the pool.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let background = CancellationToken::new();
        let tasks = TaskTracker::new();
        tasks.spawn(self.consumer.run(background.clone()));
        tasks.spawn(self.verifier.keep_fresh(background.clone()));
        self.server.serve_then_stop_background(shutdown, background, tasks).await;
        self.service.store().pool().close().await;
        Ok(())
    }
}

impl kit::cli::Service for Application {
    type Settings = Settings;
    const NAME: &'static str = SERVICE;

    fn settings(env: &mut kit::Env) -> Settings {
        Settings::from_env(env)
    }

    fn telemetry(settings: &Settings) -> &kit::config::TelemetrySettings {
        &settings.telemetry
    }

    fn http(settings: &Settings) -> &kit::config::HttpSettings {
        &settings.http
    }

    fn events_command(settings: &Settings, args: &[String]) -> Option<std::process::ExitCode> {
        let subscriptions = [crate::cascade::subscription(&settings.consumer)];
        Some(kit::events::maintenance::command(SERVICE, args, &settings.amqp, &subscriptions))
    }

    fn sdl() -> Option<String> {
        Some(schema::sdl())
    }

    async fn build(settings: Settings) -> anyhow::Result<Self> {
        Application::build(settings).await
    }

    async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        Application::run_until_stopped(self, shutdown).await
    }
}

/// Every answer here depends only on the viewer's own tasks, so whole responses
/// to repeated queries are cached with the viewer's generation (see `kit::graphql`).
async fn graphql(State(state): State<AppState>, headers: HeaderMap, request: GraphQLBatchRequest) -> Response {
    let cache = state.service.cache();
    kit::graphql::execute_cached(
        &state.schema,
        &state.verifier,
        &headers,
        request,
        |request, viewer| schema::with_loaders(request, viewer, &state.service),
        cache,
    )
    .await
}
