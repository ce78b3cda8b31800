//! taskgraph in one process (monolithic mode, like Loki's or Mimir's single
//! binary): the federation router and the auth, tasks and files subgraphs,
//! each built exactly as its own binary builds it, talking over loopback HTTP
//! as they would across machines. Only the cache and the event bus may be
//! in-process (see [`config`]); the subgraphs never import each other.

pub mod config;

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use anyhow::Context;
use kit::config::DatabaseSettings;
use kit::events::InProcessBus;
use sqlx::ConnectOptions;
use sqlx::postgres::PgConnectOptions;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use config::{CacheMode, EventsMode, Settings};
use config::{PROBE_TIMEOUT, without_password};

/// Why the monolith could not start, each a line an operator can act on.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(
        "cannot reach PostgreSQL at {url} ({reason}). Start one, e.g. `sudo pg_ctlcluster <version> main start` \
         or `docker run -d -p 5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust postgres:17`, or set DATABASE_URL"
    )]
    PostgresUnreachable { url: String, reason: String },
    #[error("PostgreSQL at {url} refused the connection: {reason}")]
    PostgresRefused { url: String, reason: String },
    #[error("{0:#}")]
    Service(#[from] anyhow::Error),
}

/// The four services, built (migrations run, ports bound) and ready to run.
pub struct Monolith {
    auth: auth::Application,
    tasks: tasks::Application,
    files: files::Application,
    router: router::Application,
    cache: CacheMode,
    events: EventsMode,
    /// Where the admin listener is reached, for the banner.
    admin_host: IpAddr,
    /// Problems with optional dependencies found at start, for the banner.
    warnings: Vec<String>,
    /// Whether the router serves the web app at `/` (`FRONTEND_DIR`).
    serves_app: bool,
}

/// Where each part listens.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    pub router: u16,
    pub auth: u16,
    pub tasks: u16,
    pub files: u16,
}

impl Monolith {
    pub async fn build(mut settings: Settings) -> Result<Self, StartError> {
        check_postgres(&settings.auth.database).await?;
        let bus = (settings.events == EventsMode::InProcess).then(InProcessBus::new);
        settings.apply_modes();
        let warnings = probe_optional_dependencies(&settings).await;

        let auth = auth::Application::build_with_bus(settings.auth, bus.as_ref()).await.context("starting auth")?;
        let jwks_url = format!("http://127.0.0.1:{}/.well-known/jwks.json", auth.port());
        settings.tasks.jwks_url = jwks_url.clone();
        settings.files.jwks_url = jwks_url.clone();
        // Consumers subscribe to the bus as they are built, before any relay runs.
        let tasks = tasks::Application::build_with_bus(settings.tasks, bus.as_ref()).await.context("starting tasks")?;
        let files = files::Application::build_with_bus(settings.files, bus.as_ref()).await.context("starting files")?;

        let subgraphs = &mut settings.router.subgraphs.url_overrides;
        for (name, port) in [("auth", auth.port()), ("tasks", tasks.port()), ("files", files.port())] {
            subgraphs.insert(name.to_owned(), format!("http://127.0.0.1:{port}/graphql"));
        }
        if settings.router.edge_auth.jwks_url.is_some() {
            settings.router.edge_auth.jwks_url = Some(jwks_url);
        }
        // An admin listener on every address is reached on loopback too.
        let admin_host = match settings.router.http.admin {
            Some(address) if !address.ip().is_unspecified() => address.ip(),
            _ => IpAddr::from([127, 0, 0, 1]),
        };
        let serves_app = settings.router.frontend_dir.is_some();
        let router = router::Application::build(settings.router).await.context("starting the router")?;
        let (cache, events) = (settings.cache, settings.events);
        Ok(Self { auth, tasks, files, router, cache, events, admin_host, warnings, serves_app })
    }

    pub fn ports(&self) -> Ports {
        Ports { router: self.router.port(), auth: self.auth.port(), tasks: self.tasks.port(), files: self.files.port() }
    }

    /// The process's one admin listener (`/metrics` of all four services, the
    /// router's health), unless `ADMIN_PORT=none`.
    pub fn admin_port(&self) -> Option<u16> {
        self.router.admin_port()
    }

    pub fn cache(&self) -> &CacheMode {
        &self.cache
    }

    pub fn events(&self) -> &EventsMode {
        &self.events
    }

    /// What to print once started: the app and GraphiQL first, then the rest.
    pub fn banner(&self) -> String {
        let ports = self.ports();
        let api = format!("http://127.0.0.1:{}", ports.router);
        let mut lines = Vec::new();
        if self.serves_app {
            lines.push(format!("app:      {api}/"));
        }
        lines.extend([
            format!("GraphiQL: {api}/graphql"),
            format!("GraphQL:  {api}/graphql (POST JSON, or multipart with files)"),
            format!("subgraphs (loopback): auth :{}, tasks :{}, files :{}", ports.auth, ports.tasks, ports.files),
            match self.admin_port() {
                Some(port) => {
                    let admin = SocketAddr::new(self.admin_host, port);
                    format!("health:   {api}/health/ready   metrics: http://{admin}/metrics")
                }
                None => format!("health:   {api}/health/ready   metrics: off (ADMIN_PORT=none)"),
            },
        ]);
        lines.push(match &self.cache {
            CacheMode::Redis { shown_url } => format!("cache:    Redis at {shown_url}"),
            CacheMode::InProcess { max_bytes } => {
                format!("cache:    in-process (REDIS_URL=none), at most {} MiB", max_bytes >> 20)
            }
        });
        lines.push(match &self.events {
            EventsMode::RabbitMq { shown_url } => format!("events:   RabbitMQ at {shown_url}"),
            EventsMode::InProcess => {
                "events:   in-process bus (RABBITMQ_URL=none), the outbox keeps them durable".into()
            }
        });
        lines.extend(self.warnings.iter().map(|w| format!("warning:  {w}")));
        lines.join("\n")
    }

    /// Runs until `shutdown`. The router stops first, so requests in flight can
    /// still reach the subgraphs; then the subgraphs drain and stop. If any part
    /// stops on its own, the rest is stopped too.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let Monolith { auth, tasks, files, router, .. } = self;
        let stop_router = shutdown.child_token();
        let stop_subgraphs = CancellationToken::new();
        let mut parts = JoinSet::new();
        let router_stopped = stop_subgraphs.clone();
        let router_token = stop_router.clone();
        parts.spawn(async move {
            let result = router.run_until_stopped(router_token).await;
            router_stopped.cancel();
            ("router", result)
        });
        let token = stop_subgraphs.clone();
        parts.spawn(async move { ("auth", auth.run_until_stopped(token).await) });
        let token = stop_subgraphs.clone();
        parts.spawn(async move { ("tasks", tasks.run_until_stopped(token).await) });
        let token = stop_subgraphs.clone();
        parts.spawn(async move { ("files", files.run_until_stopped(token).await) });

        let mut first_error = None;
        while let Some(joined) = parts.join_next().await {
            let (name, result) = match joined {
                Ok(done) => done,
                Err(e) => ("a service task", Err(anyhow::anyhow!("it panicked or was aborted: {e}"))),
            };
            match result {
                Ok(()) if !stop_router.is_cancelled() => tracing::warn!(service = name, "stopped on its own; stopping"),
                Ok(()) => tracing::debug!(service = name, "stopped"),
                Err(e) => {
                    tracing::error!(service = name, error = %format!("{e:#}"), "stopped with an error; stopping");
                    first_error.get_or_insert(e.context(format!("{name} failed")));
                }
            }
            stop_router.cancel();
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// Fails fast, in one line, when Postgres is not there: every service needs it.
/// A missing database is fine (the services create it).
async fn check_postgres(settings: &DatabaseSettings) -> Result<(), StartError> {
    let url = without_password(settings.url.expose());
    let options = PgConnectOptions::from_str(settings.url.expose())
        .map_err(|e| StartError::PostgresRefused { url: url.clone(), reason: e.to_string() })?;
    match tokio::time::timeout(PROBE_TIMEOUT, options.connect()).await {
        Ok(Ok(conn)) => {
            let _ = sqlx::Connection::close(conn).await;
            Ok(())
        }
        Ok(Err(sqlx::Error::Database(e))) if e.code().as_deref() == Some("3D000") => Ok(()),
        Ok(Err(sqlx::Error::Database(e))) => Err(StartError::PostgresRefused { url, reason: e.message().to_owned() }),
        Ok(Err(e)) => Err(StartError::PostgresUnreachable { url, reason: short_reason(&e) }),
        Err(_) => Err(StartError::PostgresUnreachable { url, reason: "no answer within 3s".into() }),
    }
}

fn short_reason(error: &sqlx::Error) -> String {
    match error {
        sqlx::Error::Io(io) => io.kind().to_string(),
        other => other.to_string(),
    }
}

/// Redis and RabbitMQ are optional at start (reads fall back to Postgres, the
/// outbox keeps events until the broker is back), but a quick start should say
/// when they are missing and how to do without them.
async fn probe_optional_dependencies(settings: &Settings) -> Vec<String> {
    let mut warnings = Vec::new();
    if let CacheMode::Redis { shown_url } = &settings.cache {
        let url = settings.tasks.cache.url.expose().to_owned();
        let reachable = async {
            let client = redis::Client::open(url).ok()?;
            client.get_multiplexed_async_connection().await.ok()
        };
        if !matches!(tokio::time::timeout(PROBE_TIMEOUT, reachable).await, Ok(Some(_))) {
            warnings.push(format!(
                "Redis at {shown_url} does not answer: every read goes to Postgres until it does \
                 (REDIS_URL=none uses an in-process cache)"
            ));
        }
    }
    if let EventsMode::RabbitMq { shown_url } = &settings.events {
        let url = settings.auth.amqp.url.expose();
        let connected = tokio::time::timeout(PROBE_TIMEOUT, kit::events::connect(url, "taskgraph-probe")).await;
        match connected {
            Ok(Ok(conn)) => {
                let _ = conn.close(200, "probe".into()).await;
            }
            _ => warnings.push(format!(
                "RabbitMQ at {shown_url} does not answer: events wait in the outbox until it does \
                 (RABBITMQ_URL=none uses an in-process bus)"
            )),
        }
    }
    warnings
}
