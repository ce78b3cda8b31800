//! The HTTP wiring every service shares: request ids, request logs, latency
//! metrics, timeouts, health and metrics routes, and graceful shutdown.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::future::BoxFuture;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::Service;
use tower_http::limit::RequestBodyLimit;
use tracing::{Instrument, Span};

use crate::config::HttpSettings;
use crate::health::{self, Health};

pub static REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The id of the request being served, in the request's extensions.
#[derive(Clone, Debug)]
pub struct RequestId(pub HeaderValue);

impl RequestId {
    pub fn as_str(&self) -> &str {
        self.0.to_str().unwrap_or("")
    }
}

/// Keeps a client's `x-request-id` when it is short and printable (it ends up in
/// logs, so no control characters), otherwise makes one.
/// A random (v4) UUID from the thread's RNG: `Uuid::new_v4` asks the kernel
/// (a getrandom syscall) on every request, about 1% of the router's time.
fn new_request_id() -> HeaderValue {
    let id = uuid::Builder::from_random_bytes(rand::random()).into_uuid();
    let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
    HeaderValue::from_str(id.hyphenated().encode_lower(&mut text)).expect("a uuid is a valid header")
}

fn is_acceptable_request_id(bytes: &[u8]) -> bool {
    !bytes.is_empty() && bytes.len() <= 128 && bytes.iter().all(|b| b.is_ascii_alphanumeric() || b"-_.:/+=".contains(b))
}

#[derive(Clone, Copy)]
struct ServiceName(&'static str);

fn request_span(req: &Request) -> Span {
    let request_id = req.extensions().get::<RequestId>().map(|r| r.as_str().to_owned()).unwrap_or_default();
    let route = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned());
    // Only method, route and id: headers (Authorization!) and query strings stay out of logs.
    tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %req.method(),
        route = route.as_deref().unwrap_or("unmatched"),
        // Recorded once a bearer token has been verified.
        user_id = tracing::field::Empty,
    )
}

/// Adds the platform routes and layers around a service's own routes.
///
/// Only the service's own routes are traced and timed: probes would drown both.
pub fn platform_router(service: &'static str, app: Router, health: Health, settings: &HttpSettings) -> Router {
    // Install the recorder now: anything recorded before installation would be lost.
    crate::metrics::handle();
    let probes = Router::new()
        .route("/health/live", get(health::live))
        .route("/health/ready", get(health::ready))
        .with_state(health)
        .route("/metrics", get(|| async { crate::metrics::render() }));
    let routes = app
        .layer(tower::layer::layer_fn(|inner| Observed { inner }))
        .merge(probes)
        .fallback(|| async { json_error(StatusCode::NOT_FOUND, "not found") });
    // Around everything, as one service rather than layers on every route:
    // a route clones its whole stack of boxed layers on every request.
    let platform = Platform {
        inner: RequestBodyLimit::new(routes, settings.body_limit),
        service,
        timeout: settings.request_timeout,
    };
    Router::new().fallback_service(platform)
}

/// The work done for every request: its id, the service's name for the
/// metrics, the body limit, the timeout, and a GraphQL error for a body over
/// the limit.
#[derive(Clone)]
struct Platform {
    inner: RequestBodyLimit<Router>,
    service: &'static str,
    timeout: Duration,
}

impl Service<Request> for Platform {
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Service::<Request>::poll_ready(&mut self.inner, cx)
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        let id = req
            .headers()
            .get(&REQUEST_ID_HEADER)
            .filter(|v| is_acceptable_request_id(v.as_bytes()))
            .cloned()
            .unwrap_or_else(new_request_id);
        req.headers_mut().insert(REQUEST_ID_HEADER.clone(), id.clone());
        req.extensions_mut().insert(RequestId(id.clone()));
        req.extensions_mut().insert(ServiceName(self.service));
        let response = self.inner.call(req);
        let timeout = self.timeout;
        Box::pin(async move {
            let mut response = match tokio::time::timeout(timeout, response).await {
                Ok(Ok(response)) => payload_too_large_as_graphql(response.map(Body::new)),
                Ok(Err(never)) => match never {},
                Err(_) => StatusCode::REQUEST_TIMEOUT.into_response(),
            };
            response.headers_mut().insert(REQUEST_ID_HEADER.clone(), id);
            Ok(response)
        })
    }
}

/// Traces and times a service's own routes: a span per request (id, method,
/// route), a log line per response, and
/// `http_request_duration_seconds{service,method,route,status_code}` where
/// `route` is the matched template (`/files/{id}/content`), never the raw path.
#[derive(Clone)]
struct Observed<S> {
    inner: S,
}

impl<S> Service<Request> for Observed<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let span = request_span(&req);
        let route = req.extensions().get::<MatchedPath>().cloned();
        let service = req.extensions().get::<ServiceName>().map(|s| s.0).unwrap_or("unknown");
        let method = req.method().clone();
        let started = Instant::now();
        let response = span.in_scope(|| self.inner.call(req));
        Box::pin(
            async move {
                let Ok(response) = response.await;
                let latency = started.elapsed();
                let status = response.status();
                tracing::info!(status = status.as_u16(), latency_ms = latency.as_secs_f64() * 1000.0, "served");
                if status.is_server_error() {
                    tracing::error!(status = status.as_u16(), "response failed");
                }
                if let Some(route) = route {
                    metrics::histogram!(
                        crate::metrics::HTTP_REQUEST_DURATION,
                        "service" => service,
                        "method" => method.as_str().to_owned(),
                        "route" => route.as_str().to_owned(),
                        "status_code" => status.as_str().to_owned(),
                    )
                    .record(latency.as_secs_f64());
                }
                Ok(response)
            }
            .instrument(span),
        )
    }
}

/// The body limit layer answers a declared length over the limit in plain text;
/// clients of a GraphQL API expect a GraphQL error with a code.
fn payload_too_large_as_graphql(response: Response) -> Response {
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.contains("json"));
    if response.status() != StatusCode::PAYLOAD_TOO_LARGE || is_json {
        return response;
    }
    let body = serde_json::json!({
        "errors": [{ "message": "The request body is too large", "extensions": { "code": "PAYLOAD_TOO_LARGE" } }]
    });
    (StatusCode::PAYLOAD_TOO_LARGE, axum::Json(body)).into_response()
}

/// Binds the listener (port 0 picks a free port).
pub async fn bind(settings: &HttpSettings) -> std::io::Result<TcpListener> {
    TcpListener::bind(SocketAddr::new(settings.host, settings.port)).await
}

/// Serves until `shutdown` fires, then lets in-flight requests finish for at
/// most `grace` before returning.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
    grace: Duration,
) -> std::io::Result<()> {
    let server = axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown.clone().cancelled_owned());
    tokio::select! {
        result = server => result,
        _ = async { shutdown.cancelled().await; tokio::time::sleep(grace).await } => {
            tracing::warn!(grace_secs = grace.as_secs_f64(), "shutdown grace period over; dropping unfinished requests");
            Ok(())
        }
    }
}

/// Longest wait for a service's background tasks once serving has stopped.
const BACKGROUND_STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// [`serve`], then winds down the service's background work: cancels
/// `background` and waits (at most 10 s) for the `tasks` it runs.
pub async fn serve_then_stop_background(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
    grace: Duration,
    background: CancellationToken,
    tasks: tokio_util::task::TaskTracker,
) -> std::io::Result<()> {
    tasks.close();
    let served = serve(listener, router, shutdown, grace).await;
    background.cancel();
    if tokio::time::timeout(BACKGROUND_STOP_TIMEOUT, tasks.wait()).await.is_err() {
        tracing::warn!("background tasks did not stop in time");
    }
    served
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}

/// A JSON error body for plain HTTP routes.
pub fn json_error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(serde_json::json!({ "error": message }))).into_response()
}
