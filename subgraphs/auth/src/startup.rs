//! Building and running the auth service.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use kit::TokenVerifier;
use kit::events::Relay;
use kit::graphql::{GraphQLBatchRequest, GraphQLResponse};
use kit::health::{Health, PostgresCheck};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::accounts::{Accounts, OUTBOX};
use crate::passwords::Passwords;
use crate::schema::{self, AuthSchema};
use crate::tokens::{AccessTokens, SigningKey};
use crate::{SERVICE, Settings};

const PRUNE_INTERVAL: Duration = Duration::from_secs(3600);

pub struct Application {
    server: kit::http::Server,
    pool: PgPool,
    relay: Relay,
    accounts: Accounts,
}

#[derive(Clone)]
struct AppState {
    schema: AuthSchema,
    verifier: TokenVerifier,
    jwks: Arc<serde_json::Value>,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let pool = kit::db::connect(&settings.database, SERVICE).await?;
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
        let tokens = AccessTokens::new(key, &settings.jwt);
        let verifier = tokens.verifier();
        let jwks = Arc::new(tokens.jwks());
        let password_settings = &settings.passwords;
        let passwords = Passwords::new(
            password_settings.bcrypt_cost,
            password_settings.max_concurrent_hashes,
            password_settings.max_queued_hashes,
        )
        .await?;
        let accounts =
            Accounts::new(pool.clone(), passwords, tokens, settings.jwt.refresh_ttl, password_settings.failure_limit);

        let relay = Relay::new(pool.clone(), OUTBOX, settings.amqp.clone(), SERVICE);
        let health = Health::new(SERVICE, vec![Box::new(PostgresCheck(pool.clone())), Box::new(relay.status())]);
        let state = AppState { schema: schema::build(Some(accounts.clone()), settings.limits), verifier, jwks };
        let routes = Router::new()
            .route("/graphql", post(graphql))
            .route("/.well-known/jwks.json", get(jwks_document))
            .with_state(state);
        let server = kit::http::Server::bind(SERVICE, routes, health, &settings.http).await?;
        tracing::info!(address = %server.local_addr()?, admin = ?server.admin_addr(), "auth listening");
        Ok(Self { server, pool, relay, accounts })
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

async fn graphql(State(state): State<AppState>, headers: HeaderMap, request: GraphQLBatchRequest) -> GraphQLResponse {
    kit::graphql::execute(&state.schema, &state.verifier, &headers, request).await
}

async fn jwks_document(State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CACHE_CONTROL, "public, max-age=300")], Json(state.jwks.as_ref().clone()))
}

/// Removes expired refresh tokens and ended password failure counts, every [`PRUNE_INTERVAL`].
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
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(PRUNE_INTERVAL) => {}
        }
    }
}
