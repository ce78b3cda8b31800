//! The router's HTTP side: the GraphQL-over-HTTP handlers (POST, GET,
//! multipart), file downloads and the web app, what a refused request is
//! answered, CORS and the security headers every response carries.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Query, RawQuery, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::future::join_all;

use crate::Settings;
use crate::config::UploadLimits;
use crate::cors::Cors;
use crate::edge::{Admission, Edge, Refusal};
use crate::frontend::Frontend;
use crate::pipeline::error::RequestError;
use crate::pipeline::multipart;
use crate::pipeline::request::{self, Incoming, MediaType};
use crate::pipeline::response::GraphqlResponse;
use crate::pipeline::{SharedRouter, Transport};

/// Shared by every request through one `Arc`: cloning it per request is one increment.
pub(crate) struct AppState {
    pub(crate) router: SharedRouter,
    pub(crate) graphiql: bool,
    pub(crate) csrf_prevention: bool,
    /// Token and rate-limit checks, before a request's body is read.
    pub(crate) edge: Arc<Edge>,
    /// The subgraph serving `/files/{id}/content`.
    pub(crate) files_subgraph: String,
    pub(crate) uploads: Option<UploadLimits>,
    pub(crate) json_body_limit: usize,
    /// The web app at `/`, when `FRONTEND_DIR` is set.
    pub(crate) frontend: Option<Frontend>,
}

/// Headers a browser cannot send cross-site without a CORS preflight, so their
/// presence proves the request is not a forged simple request (as Apollo Router).
const PREFLIGHT_HEADERS: [&str; 3] = ["apollo-require-preflight", "x-apollo-operation-name", "graphql-preflight"];

/// The router's public routes: GraphQL (and GraphiQL), the web app and file
/// downloads when configured, behind CORS and the security headers.
pub(crate) fn app(state: AppState, settings: &Settings) -> axum::Router {
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
    routes.with_state(Arc::new(state)).layer(
        tower::ServiceBuilder::new()
            .layer(cors(&settings.cors_origins))
            .layer(tower::util::MapResponseLayer::new(security_headers as fn(Response) -> Response)),
    )
}

async fn post_graphql(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: axum::extract::Request,
) -> Response {
    // Taken apart rather than extracted as `HeaderMap`, which would copy the map.
    let (parts, body) = request.into_parts();
    let headers = parts.headers;
    let media = MediaType::negotiate(&headers);
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let boundary = platform::multipart::boundary(content_type);
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
fn cors(origins: &[String]) -> Cors {
    let mut allowed = vec![header::CONTENT_TYPE, header::AUTHORIZATION, header::ACCEPT];
    allowed.extend(PREFLIGHT_HEADERS.iter().map(|h| HeaderName::from_static(h)));
    allowed.extend(["x-request-id", "traceparent", "tracestate"].map(HeaderName::from_static));
    let exposed = ["x-request-id", "ratelimit", "ratelimit-policy", "retry-after"].map(HeaderName::from_static);
    Cors::new(origins, &[Method::GET, Method::POST], &allowed, &exposed, Duration::from_secs(600))
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
    let mut http = json_response(status, media, response.into_json_bytes());
    if method_not_allowed {
        http.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST"));
    }
    http
}

fn respond_error(status: StatusCode, media: MediaType, error: RequestError) -> Response {
    json_response(status, media, GraphqlResponse::request_error(error).into_json_bytes())
}

fn json_response(status: StatusCode, media: MediaType, body: Vec<u8>) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    // Room, up front, for the headers the layers add on the way out (security,
    // rate limits, request id, CORS): growing the map as they come costs more.
    let headers = response.headers_mut();
    headers.reserve(RESPONSE_HEADERS);
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(media.content_type()));
    response
}

/// About as many headers as a GraphQL response leaves with.
const RESPONSE_HEADERS: usize = 16;
