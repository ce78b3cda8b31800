//! Building and running the auth service.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use kit::TokenVerifier;
use kit::events::{InProcessBus, Relay};
use kit::graphql::GraphQLBatchRequest;
use kit::health::Health;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::accounts::{Accounts, OUTBOX, Tokens};
use crate::keys::SigningKey;
use crate::passwords::Passwords;
use crate::revocations::RevocationLog;
use crate::schema::{self, AuthSchema};
use crate::tokens::{AccessTokens, RefreshTokens};
use crate::{SERVICE, Settings};

const PRUNE_INTERVAL: Duration = Duration::from_secs(3600);

pub struct Application {
    server: kit::http::Server,
    pool: PgPool,
    relay: Relay,
    accounts: Accounts,
    verifier: TokenVerifier,
}

#[derive(Clone)]
struct AppState {
    schema: AuthSchema,
    verifier: TokenVerifier,
    jwks: Arc<serde_json::Value>,
    revocations: RevocationLog,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::build_with_bus(settings, None).await
    }

    /// As [`build`](Self::build), its events on `bus` instead of RabbitMQ when
    /// given: only a process hosting every producer and consumer (the monolith) does.
    pub async fn build_with_bus(settings: Settings, bus: Option<&InProcessBus>) -> anyhow::Result<Self> {
        let database = kit::db::connect(&settings.database, SERVICE).await?;
        let pool = database.pool().clone();
        kit::db::migrate(&pool, sqlx::migrate!("../../migrations/auth"), crate::SCHEMA).await?;

        let key = match &settings.jwt.private_key_pem {
            Some(pem) => SigningKey::from_pem(pem.expose()).context("JWT_PRIVATE_KEY")?,
            None => {
                let key = SigningKey::generate()?;
                tracing::warn!(
                    kid = key.kid(),
                    "no JWT_PRIVATE_KEY configured: generated a signing key; tokens will not survive a restart \
                     and replicas will not accept each other's tokens"
                );
                key
            }
        };
        let refresh = RefreshTokens::new(&key);
        let access = AccessTokens::new(key, settings.jwt.previous_public_keys.clone(), &settings.jwt);
        let revocations = RevocationLog::new(database.clone(), settings.jwt.access_ttl);
        let verifier = access.verifier(revocations.clone(), settings.jwt.revocation_poll_interval);
        let jwks = Arc::new(access.jwks());
        let password_settings = &settings.passwords;
        let passwords = Passwords::new(
            password_settings.bcrypt_cost,
            password_settings.max_concurrent_hashes,
            password_settings.max_queued_hashes,
        )
        .await?;
        let tokens = Tokens { access, refresh, revocations: revocations.clone(), verifier: verifier.clone() };
        let accounts =
            Accounts::new(database.clone(), passwords, tokens, &settings.jwt, password_settings.failure_limit);

        let relay = Relay::new(pool.clone(), OUTBOX, settings.amqp.clone(), SERVICE)
            .with_retention(settings.outbox_retention)
            .with_bus(bus)
            .publishing(&[kit::events::USER_DELETED]);
        let health = Health::new(SERVICE, vec![Box::new(database), Box::new(relay.status())]);
        let schema = schema::build(Some(accounts.clone()), settings.limits);
        let state = AppState { schema, verifier: verifier.clone(), jwks, revocations };
        let graphql_routes = Router::new().route("/graphql", post(graphql)).with_state(state.clone());
        // The keys and the revocation log are public: every verifier reads them.
        let routes = kit::http::router_only(SERVICE, graphql_routes, &settings.router_secret).merge(
            Router::new()
                .route("/.well-known/jwks.json", get(jwks_document))
                .route("/.well-known/session-revocations", get(session_revocations))
                .with_state(state),
        );
        let server = kit::http::Server::bind(SERVICE, routes, health, &settings.http).await?;
        tracing::info!(address = %server.local_addr()?, admin = ?server.admin_addr(), "auth listening");
        Ok(Self { server, pool, relay, accounts, verifier })
    }

    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// The admin listener's port (`/metrics`), unless `ADMIN_PORT=none`.
    pub fn admin_port(&self) -> Option<u16> {
        self.server.admin_port()
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Serves until `shutdown`; then drains requests, stops the relay and closes the pool.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let background = CancellationToken::new();
        let tasks = TaskTracker::new();
        tasks.spawn(self.relay.run(background.clone()));
        tasks.spawn(prune(self.accounts, background.clone()));
        tasks.spawn(self.verifier.keep_fresh(background.clone()));
        self.server.serve_then_stop_background(shutdown, background, tasks).await;
        self.pool.close().await;
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

async fn graphql(State(state): State<AppState>, headers: HeaderMap, request: GraphQLBatchRequest) -> Response {
    kit::graphql::execute(&state.schema, &state.verifier, &headers, request).await
}

async fn jwks_document(State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CACHE_CONTROL, "public, max-age=300")], Json(state.jwks.as_ref().clone()))
}

/// `GET /.well-known/session-revocations?since=<cursor>`: the ended sessions
/// after the cursor, for verifiers elsewhere (see `kit::identity::revocations`).
async fn session_revocations(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let since = query.as_deref().unwrap_or("").split('&').find_map(|pair| pair.strip_prefix("since="));
    let Some(since) = since.map_or(Some(0), |since| since.parse::<i64>().ok().filter(|n| *n >= 0)) else {
        let error = serde_json::json!({ "error": "since must be a cursor: a whole number, 0 or more" });
        return (StatusCode::BAD_REQUEST, Json(error)).into_response();
    };
    match state.revocations.page(since).await {
        Ok(page) => ([(header::CACHE_CONTROL, "no-store")], Json(page)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "could not read session revocations");
            (StatusCode::SERVICE_UNAVAILABLE, Json(serde_json::json!({ "error": "unavailable" }))).into_response()
        }
    }
}

/// Removes expired refresh tokens, ended password failure counts and
/// revocations whose tokens have all expired, every [`PRUNE_INTERVAL`].
async fn prune(accounts: Accounts, cancel: CancellationToken) {
    loop {
        match accounts.prune_expired_refresh_tokens().await {
            Ok(n) if n > 0 => tracing::info!(removed = n, "pruned expired refresh tokens"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "could not prune refresh tokens"),
        }
        if let Err(e) = accounts.prune_expired_password_failures().await {
            tracing::warn!(error = %e, "could not prune password failure counts");
        }
        if let Err(e) = accounts.revocations().prune().await {
            tracing::warn!(error = %e, "could not prune session revocations");
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(PRUNE_INTERVAL) => {}
        }
    }
}
