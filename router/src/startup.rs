//! Building and running the router.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Query, RawQuery, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::future::join_all;
use kit::TokenVerifier;
use kit::health::Health;
use tokio_util::sync::CancellationToken;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::edge::ratelimit::RateLimiter;
use crate::edge::{Admission, Edge, Refusal};
use crate::frontend::Frontend;
use crate::pipeline::error::RequestError;
use crate::pipeline::multipart::{self, UploadLimits};
use crate::pipeline::prepare::PlanCache;
use crate::pipeline::request::{self, Incoming, MediaType};
use crate::pipeline::response::GraphqlResponse;
use crate::pipeline::{Router, SharedRouter, Transport};
use crate::readiness::{SubgraphsCheck, SupergraphCheck};
use crate::subgraphs::SubgraphClient;
use crate::supergraph::{self, SharedSupergraph};
use crate::{SERVICE, Settings};

pub struct Application {
    server: kit::http::Server,
    supergraph: SharedSupergraph,
    current_sdl: String,
    settings: Settings,
    edge: Arc<Edge>,
}

/// Shared by every request through one `Arc`: cloning it per request is one increment.
struct AppState {
    router: SharedRouter,
    graphiql: bool,
    csrf_prevention: bool,
    /// Token and rate-limit checks, before a request's body is read.
    edge: Arc<Edge>,
    /// The subgraph serving `/files/{id}/content`.
    files_subgraph: String,
    uploads: Option<UploadLimits>,
    json_body_limit: usize,
    /// The web app at `/`, when `FRONTEND_DIR` is set.
    frontend: Option<Frontend>,
}

/// Headers a browser cannot send cross-site without a CORS preflight, so their
/// presence proves the request is not a forged simple request (as Apollo Router).
const PREFLIGHT_HEADERS: [&str; 3] = ["apollo-require-preflight", "x-apollo-operation-name", "graphql-preflight"];

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        crate::pipeline::describe_metrics();
        let (loaded, current_sdl) = supergraph::load_file(&settings.supergraph.path, &settings.subgraphs, 1)?;
        tracing::info!(
            path = %settings.supergraph.path.display(),
            subgraphs = ?loaded.subgraphs.values().map(|s| (&s.name, &s.url)).collect::<Vec<_>>(),
            "supergraph loaded"
        );
        let shared: SharedSupergraph = Arc::new(ArcSwap::from_pointee(loaded));
        let router = Arc::new(Router {
            supergraph: shared.clone(),
            cache: PlanCache::new(&settings.graphql),
            subgraphs: SubgraphClient::new(
                &settings.subgraphs.forward_headers,
                settings.subgraphs.breaker,
                settings.subgraphs.retry,
            ),
            settings: settings.graphql.clone(),
        });
        let health = Health::new(
            SERVICE,
            vec![Box::new(SupergraphCheck(router.clone())), Box::new(SubgraphsCheck::new(router.clone()))],
        );
        let identity = &settings.edge_auth.identity;
        let verifier = settings.edge_auth.jwks_url.as_ref().map(|url| TokenVerifier::remote(identity, url));
        if verifier.is_none() {
            tracing::warn!("JWKS_URL=none: bearer tokens reach subgraphs unchecked by the router");
        }
        let limiter = settings.rate_limits.clone().map(|limits| Arc::new(RateLimiter::new(limits)));
        if limiter.is_none() {
            tracing::warn!("RATE_LIMIT_ENABLED=false: no rate limits");
        }
        let edge = Arc::new(Edge { verifier, limiter, proxies: settings.trusted_proxies.clone() });
        let frontend = settings.frontend_dir.as_deref().map(Frontend::open).transpose()?;
        let state = AppState {
            router,
            graphiql: settings.graphql.graphiql,
            csrf_prevention: settings.graphql.csrf_prevention,
            edge: edge.clone(),
            files_subgraph: settings.files_subgraph.clone().unwrap_or_default(),
            uploads: settings.uploads,
            json_body_limit: settings.json_body_limit,
            frontend,
        };
        let mut routes = axum::Router::new().route("/graphql", get(get_graphql).post(post_graphql));
        if settings.graphql.graphiql {
            routes = routes
                .route(crate::graphiql::SCRIPT_PATH, get(crate::graphiql::script))
                .route(crate::graphiql::STYLE_PATH, get(crate::graphiql::style));
        }
        if settings.frontend_dir.is_some() {
            // Routes, not a fallback: the platform's 404 fallback replaces any of ours.
            // The API's own paths are more specific, so they still win.
            routes = routes.route("/", get(serve_frontend)).route("/{*path}", get(serve_frontend));
        }
        if settings.files_subgraph.is_some() {
            routes = routes.route("/files/{id}/content", get(get_file_content));
        }
        // tower's response mapper, not axum's: it does not clone the route per request.
        let routes = routes.with_state(Arc::new(state)).layer(
            tower::ServiceBuilder::new()
                .layer(cors(&settings.cors_origins))
                .layer(tower::util::MapResponseLayer::new(security_headers as fn(Response) -> Response)),
        );
        let server = kit::http::Server::bind(SERVICE, routes, health, &settings.http).await?;
        tracing::info!(address = %server.local_addr()?, admin = ?server.admin_addr(), "router listening");
        Ok(Self { server, supergraph: shared, current_sdl, settings, edge })
    }

    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// The admin listener's port (`/metrics`), unless `ADMIN_PORT=none`.
    pub fn admin_port(&self) -> Option<u16> {
        self.server.admin_port()
    }

    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let background = CancellationToken::new();
        let tasks = tokio_util::task::TaskTracker::new();
        tasks.spawn(supergraph::watch(
            self.supergraph,
            self.current_sdl,
            self.settings.supergraph.clone(),
            self.settings.subgraphs.clone(),
            background.clone(),
        ));
        if let Some(verifier) = self.edge.verifier.clone() {
            tasks.spawn(verifier.keep_fresh(background.clone()));
        }
        if let Some(limiter) = self.edge.limiter.clone() {
            let cancel = background.clone();
            tasks.spawn(async move { limiter.housekeeping(cancel).await });
        }
        self.server.serve_then_stop_background(shutdown, background, tasks).await;
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

    /// The router serves the composed supergraph (`schema/supergraph.graphql`), not an SDL of its own.
    fn sdl() -> Option<String> {
        None
    }

    async fn build(settings: Settings) -> anyhow::Result<Self> {
        Application::build(settings).await
    }

    async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        Application::run_until_stopped(self, shutdown).await
    }
}

async fn post_graphql(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let media = MediaType::negotiate(&headers);
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let boundary = multipart::boundary(content_type);
    // A form post is what any page can send cross-site: it must prove a preflight.
    if boundary.is_some() && state.csrf_prevention && !has_preflight_header(&headers) {
        return respond_error(StatusCode::BAD_REQUEST, media, RequestError::CsrfSuspected);
    }
    let admission = match state.edge.admit(&headers, peer.ip()).await {
        Ok(admission) => admission,
        Err((refusal, admission)) => return refuse(media, refusal, &admission),
    };
    let mut response = match boundary {
        Some(boundary) => post_multipart(&state, &headers, body, boundary, media, &admission).await,
        None => post_admitted(&state, &headers, body, media, &admission).await,
    };
    admission.decorate(&mut response);
    response
}

async fn post_admitted(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
    media: MediaType,
    admission: &Admission,
) -> Response {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.trim().to_ascii_lowercase().starts_with("application/json"));
    if !is_json {
        let error = RequestError::BadRequest(
            "Send GraphQL requests as application/json (or multipart/form-data with files)".into(),
        );
        return respond_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, media, error);
    }
    // The HTTP limit makes room for files; a JSON body has the narrower one,
    // refused on its declared length before a byte of it is read.
    let too_large = || {
        let error = RequestError::PayloadTooLarge(format!(
            "The request body is larger than {} bytes, or was cut off",
            state.json_body_limit
        ));
        respond_error(StatusCode::PAYLOAD_TOO_LARGE, media, error)
    };
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|length| length > state.json_body_limit) {
        return too_large();
    }
    let Ok(body) = axum::body::to_bytes(body, state.json_body_limit).await else {
        return too_large();
    };
    match request::decode_post(&body, state.router.settings.limits.max_batch) {
        Err(e) => respond_error(StatusCode::BAD_REQUEST, media, e),
        Ok(Incoming::Single(req)) => {
            let response = state.router.run(req, headers, Transport::Post, admission, None).await;
            respond(media, response)
        }
        Ok(Incoming::Batch(reqs)) => {
            let runs = reqs.into_iter().map(|req| state.router.run(req, headers, Transport::Post, admission, None));
            let responses = join_all(runs).await;
            // Refused as a whole only when every operation in it was.
            let all_limited = responses.iter().all(|r| r.request_error && r.code() == Some("RATE_LIMITED"));
            let mut body = vec![b'['];
            for (i, response) in responses.iter().enumerate() {
                if i > 0 {
                    body.push(b',');
                }
                response.write_json(&mut body);
            }
            body.push(b']');
            let status = if all_limited { StatusCode::TOO_MANY_REQUESTS } else { StatusCode::OK };
            json_response(status, media, body)
        }
    }
}

/// A GraphQL multipart request: its files stream to the subgraph that takes them.
async fn post_multipart(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
    boundary: String,
    media: MediaType,
    admission: &Admission,
) -> Response {
    let Some(limits) = state.uploads else {
        let error = RequestError::BadRequest("File uploads are turned off (UPLOAD_MAX_FILES=0)".into());
        return respond_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, media, error);
    };
    let (request, uploads) = match multipart::begin(body, boundary, limits).await {
        Ok(begun) => begun,
        Err(e) => {
            let status = if matches!(e, RequestError::PayloadTooLarge(_)) {
                StatusCode::PAYLOAD_TOO_LARGE
            } else {
                StatusCode::BAD_REQUEST
            };
            return respond_error(status, media, e);
        }
    };
    let response = state.router.run(request, headers, Transport::Post, admission, Some(&uploads)).await;
    respond(media, response)
}

async fn get_graphql(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    if state.graphiql && !params.contains_key("query") && request::wants_html(&headers) {
        return crate::graphiql::page();
    }
    let media = MediaType::negotiate(&headers);
    if state.csrf_prevention && !has_preflight_header(&headers) {
        return respond_error(StatusCode::BAD_REQUEST, media, RequestError::CsrfSuspected);
    }
    let admission = match state.edge.admit(&headers, peer.ip()).await {
        Ok(admission) => admission,
        Err((refusal, admission)) => return refuse(media, refusal, &admission),
    };
    let mut response = match request::decode_get(&params) {
        Err(e) => respond_error(StatusCode::BAD_REQUEST, media, e),
        Ok(req) => {
            let response = state.router.run(req, &headers, Transport::Get, &admission, None).await;
            respond(media, response)
        }
    };
    admission.decorate(&mut response);
    response
}

async fn get_file_content(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    id: Path<String>,
    query: RawQuery,
) -> Response {
    let admission = match state.edge.admit(&headers, peer.ip()).await {
        Ok(admission) => admission,
        Err((refusal, admission)) => return refuse(MediaType::Json, refusal, &admission),
    };
    let mut response = crate::downloads::content(&state.router, &state.files_subgraph, id, query, &headers).await;
    admission.decorate(&mut response);
    response
}

async fn serve_frontend(State(state): State<Arc<AppState>>, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    match &state.frontend {
        Some(frontend) => frontend.serve(&method, &uri, &headers).await,
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// A request refused on its headers: 401 for a bad token, 503 for one that
/// cannot be checked now, 429 over a limit.
fn refuse(media: MediaType, refusal: Refusal, admission: &Admission) -> Response {
    let status = match refusal {
        Refusal::InvalidToken => StatusCode::UNAUTHORIZED,
        Refusal::TokenUncheckable { .. } => StatusCode::SERVICE_UNAVAILABLE,
        Refusal::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
    };
    let mut response = respond_error(status, media, refusal.error());
    match refusal {
        Refusal::InvalidToken => {
            let challenge = HeaderValue::from_static("Bearer error=\"invalid_token\"");
            response.headers_mut().insert(header::WWW_AUTHENTICATE, challenge);
        }
        Refusal::TokenUncheckable { retry_after } => {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
        }
        Refusal::RateLimited(_) => {}
    }
    admission.decorate(&mut response);
    response
}

/// Only listed origins get CORS headers, credentials included; any other origin
/// gets none, so a browser keeps its pages from reading our responses.
fn cors(origins: &[String]) -> CorsLayer {
    // A predicate over a shared list: the layer is cloned per request, and a list would be copied.
    let allowed: Arc<[HeaderValue]> = origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()).collect();
    let mut headers = vec![header::CONTENT_TYPE, header::AUTHORIZATION, header::ACCEPT];
    headers.extend(PREFLIGHT_HEADERS.iter().map(|h| HeaderName::from_static(h)));
    headers.extend(["x-request-id", "traceparent", "tracestate"].map(HeaderName::from_static));
    CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |origin, _| allowed.contains(origin)))
        .allow_credentials(true)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers(headers)
        .expose_headers(["x-request-id", "ratelimit", "ratelimit-policy", "retry-after"].map(HeaderName::from_static))
        .max_age(Duration::from_secs(600))
}

fn has_preflight_header(headers: &HeaderMap) -> bool {
    PREFLIGHT_HEADERS.iter().any(|name| headers.get(*name).is_some_and(|v| !v.is_empty()))
}

/// On every GraphQL response: no MIME sniffing, no framing, no referrer leaks.
fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.entry(header::CONTENT_SECURITY_POLICY).or_insert(HeaderValue::from_static("frame-ancestors 'none'"));
    response
}

fn respond(media: MediaType, response: GraphqlResponse) -> Response {
    let method_not_allowed = response.request_error && response.code() == Some("METHOD_NOT_ALLOWED");
    let status = if method_not_allowed {
        StatusCode::METHOD_NOT_ALLOWED
    } else if response.request_error && response.code() == Some("RATE_LIMITED") {
        StatusCode::TOO_MANY_REQUESTS
    } else if response.request_error && response.code() == Some("PAYLOAD_TOO_LARGE") {
        StatusCode::PAYLOAD_TOO_LARGE
    } else if response.request_error && media == MediaType::GraphqlResponse {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let mut http = json_response(status, media, response.to_json_bytes());
    if method_not_allowed {
        http.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST"));
    }
    http
}

fn respond_error(status: StatusCode, media: MediaType, error: RequestError) -> Response {
    json_response(status, media, GraphqlResponse::request_error(error).to_json_bytes())
}

fn json_response(status: StatusCode, media: MediaType, body: Vec<u8>) -> Response {
    (status, [(header::CONTENT_TYPE, HeaderValue::from_static(media.content_type()))], body).into_response()
}
