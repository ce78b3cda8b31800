//! Building and running the router.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use arc_swap::ArcSwap;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use futures::future::join_all;
use kit::TokenVerifier;
use kit::health::{Check, CheckFuture, Health};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::pipeline::error::RequestError;
use crate::pipeline::prepare::PlanCache;
use crate::pipeline::request::{self, Incoming, MediaType};
use crate::pipeline::response::GraphqlResponse;
use crate::pipeline::{Router, SharedRouter, Transport};
use crate::subgraphs::SubgraphClient;
use crate::supergraph::{self, SharedSupergraph};
use crate::{SERVICE, Settings};

pub struct Application {
    listener: TcpListener,
    router: axum::Router,
    supergraph: SharedSupergraph,
    current_sdl: String,
    settings: Settings,
}

#[derive(Clone)]
struct AppState {
    router: SharedRouter,
    graphiql: bool,
    csrf_prevention: bool,
    /// Checks bearer tokens before anything runs; `None` passes them through.
    verifier: Option<TokenVerifier>,
}

/// Headers a browser cannot send cross-site without a CORS preflight, so their
/// presence proves the request is not a forged simple request (as Apollo Router).
const PREFLIGHT_HEADERS: [&str; 3] = ["apollo-require-preflight", "x-apollo-operation-name", "graphql-preflight"];

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let (loaded, current_sdl) = supergraph::load_file(&settings.supergraph.path, &settings.subgraphs, 1)?;
        tracing::info!(
            path = %settings.supergraph.path.display(),
            subgraphs = ?loaded.subgraphs.values().map(|s| (&s.name, &s.url)).collect::<Vec<_>>(),
            "supergraph loaded"
        );
        let shared: SharedSupergraph = Arc::new(ArcSwap::from_pointee(loaded));
        let router = Arc::new(Router {
            supergraph: shared.clone(),
            cache: PlanCache::new(settings.graphql.plan_cache_size),
            subgraphs: SubgraphClient::new(&settings.subgraphs.forward_headers),
            settings: settings.graphql.clone(),
        });
        let health = Health::new(SERVICE, vec![Box::new(SubgraphsCheck(router.clone()))]);
        let identity = &settings.edge_auth.identity;
        let verifier = settings
            .edge_auth
            .jwks_url
            .as_ref()
            .map(|url| TokenVerifier::with_jwks(&identity.issuer, &identity.audience, url.clone()));
        if verifier.is_none() {
            tracing::warn!("JWKS_URL=none: bearer tokens reach subgraphs unchecked by the router");
        }
        let state = AppState {
            router,
            graphiql: settings.graphql.graphiql,
            csrf_prevention: settings.graphql.csrf_prevention,
            verifier,
        };
        let routes = axum::Router::new()
            .route("/graphql", get(get_graphql).post(post_graphql))
            .with_state(state)
            .layer(axum::middleware::map_response(security_headers))
            .layer(cors(&settings.cors_origins));
        let app = kit::http::platform_router(SERVICE, routes, health, &settings.http);
        let listener = kit::http::bind(&settings.http)
            .await
            .with_context(|| format!("binding {}:{}", settings.http.host, settings.http.port))?;
        tracing::info!(address = %listener.local_addr()?, "router listening");
        Ok(Self { listener, router: app, supergraph: shared, current_sdl, settings })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let background = CancellationToken::new();
        let watcher = tokio::spawn(supergraph::watch(
            self.supergraph,
            self.current_sdl,
            self.settings.supergraph.clone(),
            self.settings.subgraphs.clone(),
            background.clone(),
        ));
        let served = kit::http::serve(self.listener, self.router, shutdown, self.settings.http.shutdown_grace).await;
        background.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(5), watcher).await;
        served.context("serving HTTP")
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

async fn post_graphql(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let media = MediaType::negotiate(&headers);
    if let Err(refused) = authenticate(&state, &headers, media).await {
        return refused;
    }
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.trim().to_ascii_lowercase().starts_with("application/json"));
    if !is_json {
        let error = RequestError::BadRequest("Send GraphQL requests as application/json".into());
        return respond_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, media, error);
    }
    match request::decode_post(&body, state.router.settings.max_batch) {
        Err(e) => respond_error(StatusCode::BAD_REQUEST, media, e),
        Ok(Incoming::Single(req)) => {
            let response = state.router.run(req, &headers, Transport::Post).await;
            respond(media, response)
        }
        Ok(Incoming::Batch(reqs)) => {
            let runs = reqs.into_iter().map(|req| state.router.run(req, &headers, Transport::Post));
            let responses = join_all(runs).await;
            let body = Value::Array(responses.into_iter().map(GraphqlResponse::into_json).collect());
            json_response(StatusCode::OK, media, &body)
        }
    }
}

async fn get_graphql(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    if state.graphiql && !params.contains_key("query") && request::wants_html(&headers) {
        return Html(crate::graphiql::PAGE).into_response();
    }
    let media = MediaType::negotiate(&headers);
    if state.csrf_prevention && !has_preflight_header(&headers) {
        return respond_error(StatusCode::BAD_REQUEST, media, RequestError::CsrfSuspected);
    }
    if let Err(refused) = authenticate(&state, &headers, media).await {
        return refused;
    }
    match request::decode_get(&params) {
        Err(e) => respond_error(StatusCode::BAD_REQUEST, media, e),
        Ok(req) => {
            let response = state.router.run(req, &headers, Transport::Get).await;
            respond(media, response)
        }
    }
}

/// No token: anonymous, subgraphs decide what that may do. A token that does not
/// verify: 401 before any subgraph is called.
async fn authenticate(state: &AppState, headers: &HeaderMap, media: MediaType) -> Result<(), Response> {
    let Some(verifier) = &state.verifier else { return Ok(()) };
    match verifier.viewer_from_headers(headers).await {
        Ok(Some(viewer)) => {
            tracing::Span::current().record("user_id", tracing::field::display(viewer.user_id));
            Ok(())
        }
        Ok(None) => Ok(()),
        Err(reason) => {
            tracing::debug!(%reason, "refused a bearer token");
            let mut response = respond_error(StatusCode::UNAUTHORIZED, media, RequestError::InvalidToken);
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer error=\"invalid_token\""));
            Err(response)
        }
    }
}

/// Only listed origins get CORS headers, credentials included; any other origin
/// gets none, so a browser keeps its pages from reading our responses.
fn cors(origins: &[String]) -> CorsLayer {
    let allowed: Vec<HeaderValue> = origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()).collect();
    let mut headers = vec![header::CONTENT_TYPE, header::AUTHORIZATION, header::ACCEPT];
    headers.extend(PREFLIGHT_HEADERS.iter().map(|h| HeaderName::from_static(h)));
    headers.extend(["x-request-id", "traceparent", "tracestate"].map(HeaderName::from_static));
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(allowed))
        .allow_credentials(true)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers(headers)
        .expose_headers([HeaderName::from_static("x-request-id")])
        .max_age(Duration::from_secs(600))
}

fn has_preflight_header(headers: &HeaderMap) -> bool {
    PREFLIGHT_HEADERS.iter().any(|name| headers.get(*name).is_some_and(|v| !v.is_empty()))
}

/// On every GraphQL response: no MIME sniffing, no framing, no referrer leaks.
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.entry(header::CONTENT_SECURITY_POLICY).or_insert(HeaderValue::from_static("frame-ancestors 'none'"));
    response
}

fn respond(media: MediaType, response: GraphqlResponse) -> Response {
    let method_not_allowed = response.request_error
        && response.errors.first().and_then(|e| e.pointer("/extensions/code"))
            == Some(&Value::from("METHOD_NOT_ALLOWED"));
    let status = if method_not_allowed {
        StatusCode::METHOD_NOT_ALLOWED
    } else if response.request_error && media == MediaType::GraphqlResponse {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let mut http = json_response(status, media, &response.into_json());
    if method_not_allowed {
        http.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST"));
    }
    http
}

fn respond_error(status: StatusCode, media: MediaType, error: RequestError) -> Response {
    json_response(status, media, &GraphqlResponse::request_error(error).into_json())
}

fn json_response(status: StatusCode, media: MediaType, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    (status, [(header::CONTENT_TYPE, HeaderValue::from_static(media.content_type()))], bytes).into_response()
}

/// Ready once a supergraph is loaded and every subgraph answers `{ __typename }`.
struct SubgraphsCheck(SharedRouter);

impl Check for SubgraphsCheck {
    fn name(&self) -> &'static str {
        "subgraphs"
    }

    fn required(&self) -> bool {
        true
    }

    fn check(&self) -> CheckFuture<'_> {
        Box::pin(async move {
            let supergraph = self.0.supergraph.load_full();
            let probes = supergraph.subgraphs.values().map(|subgraph| async move {
                let body = br#"{"query":"{ __typename }"}"#.to_vec();
                let ok = self.0.subgraphs.send(subgraph, body, &HeaderMap::new()).await.is_ok();
                (subgraph.name.clone(), ok)
            });
            let down: Vec<String> = join_all(probes).await.into_iter().filter(|(_, ok)| !ok).map(|(n, _)| n).collect();
            if down.is_empty() { Ok(()) } else { Err(format!("unreachable: {}", down.join(", "))) }
        })
    }
}
