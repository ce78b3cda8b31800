//! Building and running the files service.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{FromRequest, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use kit::events::InProcessBus;
use kit::events::consumer::Consumer;
use kit::graphql::{GraphQLBatchRequest, request_error};
use kit::health::{Check, CheckFuture, Health};
use kit::{ApiError, TokenVerifier, Viewer};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::download::{self, DownloadState};
use crate::repository::Repository;
use crate::schema::{self, FilesSchema};
use crate::signing::UrlSigner;
use crate::storage::Storage;
use crate::upload::{self, ReceiveError, UploadPolicy};
use crate::{SERVICE, Settings, cascade};

/// Queued blob deletions retried per maintenance round.
const RETRY_BATCH: i64 = 1_000;

pub struct Application {
    server: kit::http::Server,
    pool: PgPool,
    repository: Repository,
    consumer: Consumer,
    verifier: TokenVerifier,
    orphan_grace: Duration,
    sweep_interval: Duration,
}

#[derive(Clone)]
struct AppState {
    schema: FilesSchema,
    verifier: TokenVerifier,
    repository: Repository,
    policy: Arc<UploadPolicy>,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::build_with_bus(settings, None).await
    }

    /// As [`build`](Self::build), its events on `bus` instead of RabbitMQ when
    /// given: only a process hosting every producer and consumer (the monolith) does.
    pub async fn build_with_bus(settings: Settings, bus: Option<&InProcessBus>) -> anyhow::Result<Self> {
        describe_metrics();
        let database = kit::db::connect(&settings.database, SERVICE).await?;
        let pool = database.pool().clone();
        kit::db::migrate(&pool, sqlx::migrate!("../../migrations/files"), crate::SCHEMA).await?;
        let storage = Storage::from_settings(&settings.storage)?;
        let repository = Repository::new(database.clone(), storage, settings.uploads.quota_bytes);
        let signer = url_signer(&settings);
        let verifier = TokenVerifier::remote(&settings.identity, &settings.jwks_url);
        let policy = UploadPolicy {
            max_file_bytes: settings.uploads.max_file_bytes,
            max_files: settings.uploads.max_files,
            // Uploads raise the HTTP body limit; the non-file parts keep the configured one.
            max_field_bytes: settings
                .http
                .body_limit
                .saturating_sub(settings.uploads.max_files * settings.uploads.max_file_bytes as usize),
            allowed_types: settings.uploads.allowed_types.clone(),
            quota_bytes: settings.uploads.quota_bytes,
        };
        let consumer = cascade::consumer(settings.amqp.clone(), &settings.consumer, repository.clone()).with_bus(bus);

        let health = Health::new(
            SERVICE,
            vec![Box::new(database), Box::new(StorageCheck(repository.storage().clone())), Box::new(consumer.status())],
        );
        let state = AppState {
            schema: schema::build(Some((repository.clone(), signer.clone())), settings.limits),
            verifier: verifier.clone(),
            repository: repository.clone(),
            policy: Arc::new(policy),
        };
        let downloads = DownloadState { repository: repository.clone(), verifier: verifier.clone(), signer };
        let routes = Router::new()
            .route("/graphql", post(graphql))
            .with_state(state)
            .merge(Router::new().route("/files/{id}/content", get(download::content)).with_state(downloads));
        let routes = kit::http::router_only(SERVICE, routes, &settings.router_secret);
        let server = kit::http::Server::bind(SERVICE, routes, health, &settings.http).await?;
        tracing::info!(
            address = %server.local_addr()?, admin = ?server.admin_addr(), storage = ?repository.storage(), "files listening"
        );
        Ok(Self {
            server,
            pool,
            repository,
            consumer,
            verifier,
            orphan_grace: settings.uploads.orphan_grace,
            sweep_interval: settings.uploads.sweep_interval,
        })
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

    pub fn repository(&self) -> &Repository {
        &self.repository
    }

    /// Serves until `shutdown`; then drains requests, stops the consumer and the
    /// maintenance task, and closes the pool.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let background = CancellationToken::new();
        let tasks = TaskTracker::new();
        tasks.spawn(self.consumer.run(background.clone()));
        tasks.spawn(self.verifier.keep_fresh(background.clone()));
        tasks.spawn(maintain(self.repository, self.orphan_grace, self.sweep_interval, background.clone()));
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

    fn events_command(settings: &Settings, args: &[String]) -> Option<std::process::ExitCode> {
        let subscriptions = [cascade::subscription(&settings.consumer)];
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

fn url_signer(settings: &Settings) -> UrlSigner {
    let downloads = &settings.downloads;
    match &downloads.url_secret {
        Some(secret) => UrlSigner::new(secret.expose().as_bytes(), downloads.url_ttl, &downloads.public_url),
        None => {
            tracing::warn!(
                "no DOWNLOAD_URL_SECRET configured: generated one; download URLs will not survive a restart \
                 and replicas will not accept each other's URLs"
            );
            UrlSigner::new(&UrlSigner::random_secret(), downloads.url_ttl, &downloads.public_url)
        }
    }
}

/// `POST /graphql`: JSON as usual; multipart requests stream their files into storage.
async fn graphql(State(state): State<AppState>, request: Request) -> Response {
    let viewer = match kit::graphql::viewer_or_unavailable(&state.verifier, request.headers()).await {
        Ok(viewer) => viewer,
        Err(unavailable) => return unavailable,
    };
    let content_type = request.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    if let Some(boundary) = kit::multipart::boundary(content_type) {
        return multipart(state, viewer, request.into_body(), boundary).await;
    }
    // The HTTP limit makes room for files; a request without files keeps the configured one.
    let limit = state.policy.max_field_bytes;
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, limit).await else {
        let message = format!("a request without files may be at most {limit} bytes");
        return request_error(StatusCode::PAYLOAD_TOO_LARGE, ApiError::PayloadTooLarge(message));
    };
    let request = Request::from_parts(parts, Body::from(bytes));
    let batch = match GraphQLBatchRequest::from_request(request, &()).await {
        Ok(batch) => batch.into_inner(),
        Err(unreadable) => return unreadable.into_response(),
    };
    let per_viewer = |request, viewer: &Viewer| schema::for_viewer(request, viewer, &state.repository);
    kit::graphql::execute_batch(&state.schema, batch, viewer.as_ref(), &per_viewer).await.into_response()
}

async fn multipart(state: AppState, viewer: Option<Viewer>, body: Body, boundary: String) -> Response {
    // Nothing is stored for a caller who could not keep it.
    let Some(viewer) = viewer else {
        return request_error(StatusCode::OK, ApiError::unauthenticated());
    };
    let quota_left = match state.repository.quota_left(viewer.user_id).await {
        Ok(left) => left,
        Err(e) => return failed_request(ApiError::from(e)),
    };
    let received = upload::receive(body, boundary, &state.policy, state.repository.storage(), quota_left).await;
    let outcome = match &received {
        Ok(_) => "received",
        Err(ReceiveError::TooLarge(_)) => "too_large",
        Err(ReceiveError::Invalid(_)) => "invalid",
        Err(ReceiveError::Internal(_)) => "error",
    };
    metrics::counter!("files_upload_requests_total", "outcome" => outcome).increment(1);
    match received {
        Ok((batch, uploads)) => {
            let uploads = Arc::new(uploads);
            let per_viewer =
                |request, viewer: &Viewer| schema::for_viewer(request, viewer, &state.repository).data(uploads.clone());
            let response = kit::graphql::execute_batch(&state.schema, batch, Some(&viewer), &per_viewer).await;
            uploads.discard_unclaimed().await;
            response.into_response()
        }
        Err(ReceiveError::TooLarge(message)) => {
            request_error(StatusCode::PAYLOAD_TOO_LARGE, ApiError::PayloadTooLarge(message))
        }
        Err(ReceiveError::Invalid(message)) => {
            request_error(StatusCode::BAD_REQUEST, ApiError::BadUserInput { field: None, message })
        }
        Err(ReceiveError::Internal(e)) => request_error(StatusCode::INTERNAL_SERVER_ERROR, ApiError::Internal(e)),
    }
}

/// A request that failed before GraphQL ran: 503 when it may succeed if tried
/// again (the database is unreachable), else 500.
fn failed_request(error: ApiError) -> Response {
    let status = match error.code() {
        kit::error::Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    request_error(status, error)
}

/// Retries queued blob deletions and sweeps orphaned blobs, every `interval`.
async fn maintain(repository: Repository, grace: Duration, interval: Duration, cancel: CancellationToken) {
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        match repository.retry_blob_deletions(RETRY_BATCH).await {
            Ok(n) if n > 0 => tracing::info!(deleted = n, "deleted queued blobs"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %format!("{e:#}"), "could not retry blob deletions"),
        }
        match repository.sweep_orphans(grace).await {
            Ok(n) if n > 0 => tracing::info!(removed = n, "swept orphaned blobs"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %format!("{e:#}"), "could not sweep orphaned blobs"),
        }
    }
}

/// The blob store answers a lookup.
struct StorageCheck(Storage);

impl Check for StorageCheck {
    fn name(&self) -> &'static str {
        "storage"
    }

    fn required(&self) -> bool {
        true
    }

    fn check(&self) -> CheckFuture<'_> {
        Box::pin(async move {
            self.0.exists("health-probe").await.map(|_| ()).map_err(|e| {
                tracing::debug!(error = %format!("{e:#}"), "storage check");
                "unreachable".to_owned()
            })
        })
    }
}

/// HELP text of the files service's own metrics, and their known label values
/// registered at 0 (a dashboard shows 0 before the first upload).
fn describe_metrics() {
    use metrics::{Unit, describe_counter};
    kit::metrics::handle();
    describe_counter!(
        "files_upload_requests_total",
        "Multipart upload requests by outcome (received, too_large, invalid, error)."
    );
    describe_counter!("files_upload_bytes_total", Unit::Bytes, "Bytes of files stored by uploads.");
    describe_counter!("files_downloads_total", "File downloads by HTTP status.");
    for outcome in ["received", "too_large", "invalid", "error"] {
        metrics::counter!("files_upload_requests_total", "outcome" => outcome).absolute(0);
    }
    metrics::counter!("files_upload_bytes_total").absolute(0);
    for status in ["200", "206", "304", "404", "416"] {
        metrics::counter!("files_downloads_total", "status" => status).absolute(0);
    }
}
