//! The HTTP wiring every service shares: request ids, request logs, latency
//! metrics, timeouts, a cap on requests in flight, health routes, the admin
//! listener for `/metrics`, the router's secret that subgraphs require
//! ([`router_only`]), and the server under both (see [`server`]).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::future::BoxFuture;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower::Service;
use tower_http::limit::RequestBodyLimit;
use tracing::{Instrument, Span};

use crate::config::{HttpSettings, SubgraphSecret};
use crate::health::{self, Health};

mod server;
use server::ConnectionLimits;

pub static REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The header the router sends `SUBGRAPH_SHARED_SECRET` in, on every request
/// to a subgraph (GraphQL, uploads, downloads, readiness probes).
pub static ROUTER_SECRET_HEADER: HeaderName = HeaderName::from_static("x-taskgraph-router-secret");

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

/// The service a request is for, in its extensions.
#[derive(Clone, Copy)]
struct ServiceName {
    name: &'static str,
    /// [`HttpSettings::starts_traces`].
    starts_traces: bool,
}

fn request_span(req: &Request) -> Span {
    let request_id = req.extensions().get::<RequestId>().map(|r| r.as_str().to_owned()).unwrap_or_default();
    let route = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned());
    let service = req.extensions().get::<ServiceName>().copied();
    // Only method, route, ids: headers (Authorization!) and query strings stay out of logs.
    let span = tracing::info_span!(
        "request",
        service = service.map_or("unknown", |s| s.name),
        request_id = %request_id,
        // Recorded below: the trace this request is part of.
        trace_id = tracing::field::Empty,
        method = %req.method(),
        route = route.as_deref().unwrap_or("unmatched"),
        // Recorded once a bearer token has been verified.
        user_id = tracing::field::Empty,
        otel.kind = "server",
        otel.name = tracing::field::Empty,
    );
    let trace_id = if crate::telemetry::tracing_enabled() {
        span.record("otel.name", format!("{} {}", req.method(), route.as_deref().unwrap_or("unmatched")));
        crate::telemetry::join_request(&span, req.headers(), service.is_some_and(|s| s.starts_traces));
        crate::telemetry::trace_id(&span)
    } else {
        req.headers().get("traceparent").and_then(|v| traceparent_trace_id(v.as_bytes())).map(str::to_owned)
    };
    span.record("trace_id", trace_id.as_deref().unwrap_or(""));
    span
}

/// The trace id of a W3C `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`), so
/// that with traces off every log line of a request a client traced still
/// names its trace (the router forwards the header to subgraphs, so theirs
/// name the same one). `None` for anything malformed, and for the all-zero id
/// the spec calls invalid.
pub fn traceparent_trace_id(traceparent: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(traceparent).ok()?;
    let mut parts = text.split('-');
    let (version, trace_id, parent_id, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex =
        |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let well_formed = hex(version, 2) && version != "ff" && hex(trace_id, 32) && hex(parent_id, 16) && hex(flags, 2);
    (well_formed && trace_id.bytes().any(|b| b != b'0')).then_some(trace_id)
}

/// Gauge of open connections per service.
const OPEN_CONNECTIONS: &str = "http_connections_open";
/// Requests answered 503 because `MAX_IN_FLIGHT` were already being handled.
const SHED_REQUESTS: &str = "http_requests_shed_total";

/// Gauge of requests being handled, counted against `MAX_IN_FLIGHT`.
const IN_FLIGHT: &str = "http_requests_in_flight";

/// The health probes: on the public port (where probes look) and on the admin
/// port, and never refused for load, so an overloaded process is not also
/// killed by its liveness probe.
const PROBES: [&str; 2] = ["/health/live", "/health/ready"];

fn probes(health: Health) -> Router {
    Router::new().route(PROBES[0], get(health::live)).route(PROBES[1], get(health::ready)).with_state(health)
}

/// Adds the platform routes and layers around a service's own routes: what the
/// public port serves (`/metrics` is on the admin port, [`admin_router`]).
///
/// Only the service's own routes are traced and timed: probes would drown both.
pub fn platform_router(service: &'static str, app: Router, health: Health, settings: &HttpSettings) -> Router {
    // Install the recorder now: anything recorded before installation would be lost.
    crate::metrics::handle();
    let routes = app
        .layer(tower::layer::layer_fn(|inner| Observed { inner }))
        .merge(probes(health))
        .fallback(|| async { json_error(StatusCode::NOT_FOUND, "not found") });
    // Around everything, as one service rather than layers on every route:
    // a route clones its whole stack of boxed layers on every request.
    let platform = Platform {
        inner: RequestBodyLimit::new(routes, settings.body_limit),
        service,
        starts_traces: settings.starts_traces,
        timeout: settings.request_timeout,
        timed_out: Bytes::from(graphql_error_body(
            &format!(
                "The request took longer than REQUEST_TIMEOUT ({})",
                humantime::format_duration(settings.request_timeout)
            ),
            "REQUEST_TIMEOUT",
            &[],
        )),
        in_flight: Arc::new(Semaphore::new(settings.max_in_flight)),
        in_flight_gauge: metrics::gauge!(IN_FLIGHT, "service" => service),
        shed: metrics::counter!(SHED_REQUESTS, "service" => service),
    };
    metrics::gauge!("http_requests_in_flight_limit", "service" => service).set(settings.max_in_flight as f64);
    Router::new().fallback_service(platform)
}

/// What the admin listener serves: `/metrics` (the process's whole registry)
/// and the health probes.
pub fn admin_router(health: Health) -> Router {
    crate::metrics::handle();
    probes(health)
        .route("/metrics", get(|| async { crate::metrics::render() }))
        .fallback(|| async { json_error(StatusCode::NOT_FOUND, "not found") })
}

/// The work done for every request: its id, the service's name for the
/// metrics, the cap on requests in flight, the body limit, the timeout, and
/// GraphQL errors for a body over the limit and a request over the timeout.
#[derive(Clone)]
struct Platform {
    inner: RequestBodyLimit<Router>,
    service: &'static str,
    starts_traces: bool,
    timeout: Duration,
    /// The body of a request's 504, made once.
    timed_out: Bytes,
    /// `MAX_IN_FLIGHT` permits, shared by every clone.
    in_flight: Arc<Semaphore>,
    in_flight_gauge: metrics::Gauge,
    shed: metrics::Counter,
}

/// A request's place among `MAX_IN_FLIGHT`, counted in `http_requests_in_flight`
/// until it is answered.
struct InFlight {
    _permit: tokio::sync::OwnedSemaphorePermit,
    gauge: metrics::Gauge,
}

impl InFlight {
    fn new(permit: tokio::sync::OwnedSemaphorePermit, gauge: &metrics::Gauge) -> Self {
        gauge.increment(1.0);
        Self { _permit: permit, gauge: gauge.clone() }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.gauge.decrement(1.0);
    }
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
        // Before anything else (the body above all) is read: refusing must stay cheap.
        let slot = if PROBES.contains(&req.uri().path()) {
            None
        } else {
            match self.in_flight.clone().try_acquire_owned() {
                Ok(permit) => Some(InFlight::new(permit, &self.in_flight_gauge)),
                Err(_) => return Box::pin(std::future::ready(Ok(self.overloaded(id)))),
            }
        };
        req.headers_mut().insert(REQUEST_ID_HEADER.clone(), id.clone());
        req.extensions_mut().insert(RequestId(id.clone()));
        req.extensions_mut().insert(ServiceName { name: self.service, starts_traces: self.starts_traces });
        let response = self.inner.call(req);
        let (timeout, timed_out) = (self.timeout, self.timed_out.clone());
        Box::pin(async move {
            let mut response = match tokio::time::timeout(timeout, response).await {
                Ok(Ok(response)) => payload_too_large_as_graphql(response.map(Body::new)),
                Ok(Err(never)) => match never {},
                Err(_) => {
                    tracing::warn!(request_id = %id.to_str().unwrap_or(""), "request timed out (REQUEST_TIMEOUT)");
                    graphql_error_response(StatusCode::GATEWAY_TIMEOUT, timed_out)
                }
            };
            drop(slot);
            response.headers_mut().insert(REQUEST_ID_HEADER.clone(), id);
            Ok(response)
        })
    }
}

impl Platform {
    /// 503 with `Retry-After`: `MAX_IN_FLIGHT` requests are being handled.
    fn overloaded(&self, id: HeaderValue) -> Response {
        self.shed.increment(1);
        let body = graphql_error_body(
            "The service is at its limit of requests in flight (MAX_IN_FLIGHT); retry shortly",
            "SERVICE_UNAVAILABLE",
            &[],
        );
        let mut response = graphql_error_response(StatusCode::SERVICE_UNAVAILABLE, Bytes::from(body));
        let headers = response.headers_mut();
        headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        headers.insert(REQUEST_ID_HEADER.clone(), id);
        response
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
        let service = req.extensions().get::<ServiceName>().map_or("unknown", |s| s.name);
        let method = req.method().clone();
        let started = Instant::now();
        let response = span.in_scope(|| self.inner.call(req));
        Box::pin(
            async move {
                let Ok(response) = response.await;
                let latency = started.elapsed();
                let status = response.status();
                tracing::info!(status = status.as_u16(), latency_ms = latency.as_secs_f64() * 1000.0, "served");
                crate::telemetry::record_http_status(status.as_u16());
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

/// Requests refused for lacking the router's secret, per service.
const FORBIDDEN_REQUESTS: &str = "http_requests_without_router_secret_total";

/// `routes` answered only for requests that carry the router's secret in
/// [`ROUTER_SECRET_HEADER`]; any other gets 403 with a GraphQL error
/// `FORBIDDEN` before its handler runs (before its body is read). Wrap the
/// routes that serve data (GraphQL, downloads), not the health probes or
/// `/metrics` (added by [`Server::bind`] outside of them) or auth's public
/// `/.well-known/*` documents. `Disabled`: `routes` as they are.
pub fn router_only(service: &'static str, routes: Router, secret: &SubgraphSecret) -> Router {
    let Some(secret) = secret.secret() else { return routes };
    let expected = Arc::new(secret_digest(secret.expose().as_bytes()));
    let forbidden = Bytes::from(graphql_error_body("Only the router may call this service", "FORBIDDEN", &[]));
    routes.layer(tower::layer::layer_fn(move |inner| RouterOnly {
        inner,
        service,
        expected: expected.clone(),
        forbidden: forbidden.clone(),
    }))
}

/// Compared as SHA-256 digests, byte by byte without stopping early: the time
/// taken says nothing about how much of a guess was right, nor its length.
fn secret_digest(secret: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(secret).into()
}

fn same_digest(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let difference = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(difference) == 0
}

#[derive(Clone)]
struct RouterOnly<S> {
    inner: S,
    service: &'static str,
    expected: Arc<[u8; 32]>,
    forbidden: Bytes,
}

impl<S> Service<Request> for RouterOnly<S>
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
        let presented = req.headers().get(&ROUTER_SECRET_HEADER).map(|v| secret_digest(v.as_bytes()));
        if presented.is_some_and(|digest| same_digest(&digest, &self.expected)) {
            return Box::pin(self.inner.call(req));
        }
        metrics::counter!(FORBIDDEN_REQUESTS, "service" => self.service).increment(1);
        // The header's value is never logged: a wrong one may be a near miss.
        tracing::debug!(secret_sent = presented.is_some(), "refused a request without the router's secret");
        let response = graphql_error_response(StatusCode::FORBIDDEN, self.forbidden.clone());
        Box::pin(std::future::ready(Ok(response)))
    }
}

/// The body limit layer answers a declared length over the limit in plain text;
/// clients of a GraphQL API expect a GraphQL error with a code.
fn payload_too_large_as_graphql(response: Response) -> Response {
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.contains("json"));
    if response.status() != StatusCode::PAYLOAD_TOO_LARGE || is_json {
        return response;
    }
    let body = graphql_error_body("The request body is too large", "PAYLOAD_TOO_LARGE", &[]);
    graphql_error_response(StatusCode::PAYLOAD_TOO_LARGE, Bytes::from(body))
}

/// The one way a GraphQL response that is a single error, without data, is
/// written: `{"errors":[{"message":…,"extensions":{"code":…, …}}]}`, the code
/// first, then `extensions` in their order.
pub fn graphql_error_body(message: &str, code: &str, extensions: &[(&str, serde_json::Value)]) -> Vec<u8> {
    let mut all = serde_json::Map::new();
    all.insert("code".to_owned(), code.into());
    all.extend(extensions.iter().map(|(key, value)| ((*key).to_owned(), value.clone())));
    let body = serde_json::json!({ "errors": [{ "message": message, "extensions": all }] });
    serde_json::to_vec(&body).expect("a JSON value always encodes")
}

fn graphql_error_response(status: StatusCode, body: Bytes) -> Response {
    (status, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response()
}

/// Longest wait for a service's background tasks once serving has stopped.
const BACKGROUND_STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Open connections the admin listener takes: Prometheus and probes, not clients.
const ADMIN_MAX_CONNECTIONS: usize = 64;

/// A service's HTTP side, bound: its public listener and, unless
/// `ADMIN_PORT=none`, its admin listener, and what each serves.
pub struct Server {
    service: &'static str,
    public: TcpListener,
    admin: Option<TcpListener>,
    app: Router,
    admin_app: Router,
    settings: HttpSettings,
    /// Told when shutdown begins, so readiness turns 503 first.
    health: Health,
}

impl Server {
    /// Wraps `app` in the platform routes and layers ([`platform_router`]) and
    /// binds both listeners (port 0 picks a free one).
    pub async fn bind(
        service: &'static str,
        app: Router,
        health: Health,
        settings: &HttpSettings,
    ) -> anyhow::Result<Self> {
        let public = TcpListener::bind(SocketAddr::new(settings.host, settings.port))
            .await
            .with_context(|| format!("binding {}:{}", settings.host, settings.port))?;
        let admin = match settings.admin {
            Some(address) => Some(
                TcpListener::bind(address).await.with_context(|| format!("binding the admin listener {address}"))?,
            ),
            None => None,
        };
        Ok(Self {
            service,
            public,
            admin,
            app: platform_router(service, app, health.clone(), settings),
            admin_app: admin_router(health.clone()),
            settings: settings.clone(),
            health,
        })
    }

    /// The public listener's address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.public.local_addr()
    }

    pub fn port(&self) -> u16 {
        self.public.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// The admin listener's address (`None` with `ADMIN_PORT=none`).
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().and_then(|admin| admin.local_addr().ok())
    }

    pub fn admin_port(&self) -> Option<u16> {
        self.admin_addr().map(|a| a.port())
    }

    /// Serves both listeners until `shutdown` fires; then answers
    /// `/health/ready` with 503 while still serving for `SHUTDOWN_DELAY` (load
    /// balancers stop sending new requests meanwhile), then stops accepting and
    /// lets in-flight requests finish for at most `SHUTDOWN_GRACE`.
    pub async fn serve(self, shutdown: CancellationToken) {
        let settings = &self.settings;
        let limits = ConnectionLimits {
            header_read_timeout: settings.header_read_timeout,
            keep_alive_timeout: settings.keep_alive_timeout,
            max_connections: settings.max_connections,
        };
        let (grace, delay) = (settings.shutdown_grace, settings.shutdown_delay);
        let stop_accepting = CancellationToken::new();
        let drain = async {
            shutdown.cancelled().await;
            self.health.start_draining();
            if !delay.is_zero() {
                tracing::info!(
                    delay_secs = delay.as_secs_f64(),
                    "readiness now answers 503 (draining); serving on until SHUTDOWN_DELAY is over"
                );
                tokio::time::sleep(delay).await;
            }
            stop_accepting.cancel();
        };
        let public = server::serve(self.public, self.app, limits, self.service, stop_accepting.clone(), grace);
        let admin = async {
            if let Some(listener) = self.admin {
                let limits = ConnectionLimits { max_connections: ADMIN_MAX_CONNECTIONS, ..limits };
                server::serve(listener, self.admin_app, limits, "admin", stop_accepting.clone(), grace).await;
            }
        };
        tokio::join!(public, admin, drain);
    }

    /// [`Server::serve`], then winds down the service's background work:
    /// cancels `background` and waits (at most 10 s) for the `tasks` it runs.
    pub async fn serve_then_stop_background(
        self,
        shutdown: CancellationToken,
        background: CancellationToken,
        tasks: tokio_util::task::TaskTracker,
    ) {
        tasks.close();
        self.serve(shutdown).await;
        background.cancel();
        if tokio::time::timeout(BACKGROUND_STOP_TIMEOUT, tasks.wait()).await.is_err() {
            tracing::warn!("background tasks did not stop in time");
        }
    }
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

#[cfg(test)]
mod tests {
    use super::traceparent_trace_id as trace_id;

    #[test]
    fn the_trace_id_of_a_well_formed_traceparent_only() {
        let id = "4bf92f3577b34da6a3ce929d0e0e4736";
        assert_eq!(trace_id(format!("00-{id}-00f067aa0ba902b7-01").as_bytes()), Some(id));
        for refused in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01".to_owned(),
            format!("00-{}-00f067aa0ba902b7-01", id.to_uppercase()),
            format!("ff-{id}-00f067aa0ba902b7-01"),
            format!("00-{id}-00f067aa0ba902b7"),
            format!("00-{id}x-00f067aa0ba902b7-01"),
            "garbage".to_owned(),
        ] {
            assert_eq!(trace_id(refused.as_bytes()), None, "{refused}");
        }
    }
}
