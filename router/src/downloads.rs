//! `GET /files/{id}/content`, passed through to the subgraph that serves file
//! contents, streaming both ways, so `downloadUrl`s work through the one public
//! origin. Range and conditional requests are the subgraph's to answer: their
//! headers go there and its status and headers come back.

use axum::body::Body;
use axum::extract::{Path, RawQuery};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::pipeline::SharedRouter;
use crate::subgraphs::pool::{OutBody, StreamError};

/// Request headers the file server may use.
const FORWARDED: [HeaderName; 9] = [
    header::RANGE,
    header::IF_RANGE,
    header::IF_NONE_MATCH,
    header::IF_MODIFIED_SINCE,
    header::AUTHORIZATION,
    header::ACCEPT,
    HeaderName::from_static("x-request-id"),
    HeaderName::from_static("traceparent"),
    HeaderName::from_static("tracestate"),
];

/// Response headers the client needs; hop-by-hop ones stay behind.
const RETURNED: [HeaderName; 11] = [
    header::CONTENT_TYPE,
    header::CONTENT_LENGTH,
    header::CONTENT_RANGE,
    header::ACCEPT_RANGES,
    header::ETAG,
    header::LAST_MODIFIED,
    header::CONTENT_DISPOSITION,
    header::CACHE_CONTROL,
    header::VARY,
    header::X_CONTENT_TYPE_OPTIONS,
    header::CONTENT_SECURITY_POLICY,
];

pub async fn content(
    router: &SharedRouter,
    subgraph_name: &str,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: &HeaderMap,
) -> Response {
    let supergraph = router.supergraph.load_full();
    let Some(subgraph) = supergraph.subgraphs.get(subgraph_name) else {
        return platform::http::json_error(StatusCode::NOT_FOUND, "not found");
    };
    // Only a UUID reaches the subgraph: nothing can steer the path elsewhere.
    let Ok(id) = uuid::Uuid::parse_str(&id) else {
        return platform::http::json_error(StatusCode::NOT_FOUND, "not found");
    };
    let path = match query {
        Some(query) => format!("/files/{id}/content?{query}"),
        None => format!("/files/{id}/content"),
    };
    let mut forwarded = HeaderMap::new();
    for name in &FORWARDED {
        for value in headers.get_all(name) {
            forwarded.append(name, value.clone());
        }
    }
    // With traces exported, the file service's span is a child of this request's.
    platform::telemetry::inject(&tracing::Span::current(), &mut forwarded);
    // Waiting for the headers is bounded like any subgraph call; the body then
    // streams for as long as it takes, on a connection (and a slot under the
    // subgraph's cap) that closes when the body ends or the client leaves.
    let request = subgraph.pool.stream(Method::GET, &path, forwarded, OutBody::Full(None));
    let answer = match tokio::time::timeout(subgraph.timeout, request).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(StreamError::Saturated)) => {
            tracing::debug!(subgraph = %subgraph.name, "no connection to the file service came free in time");
            let mut busy = platform::http::json_error(StatusCode::SERVICE_UNAVAILABLE, "the file service is busy");
            busy.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return busy;
        }
        Ok(Err(e)) => {
            tracing::warn!(subgraph = %subgraph.name, error = %e, "file download failed");
            return platform::http::json_error(StatusCode::BAD_GATEWAY, "the file service is unavailable");
        }
        Err(_) => {
            tracing::warn!(subgraph = %subgraph.name, "file download timed out");
            return platform::http::json_error(StatusCode::GATEWAY_TIMEOUT, "the file service did not answer in time");
        }
    };
    let mut response = Response::builder().status(answer.status());
    for name in &RETURNED {
        for value in answer.headers().get_all(name) {
            response = response.header(name, value);
        }
    }
    response.body(Body::new(answer.into_body())).unwrap_or_else(|_| StatusCode::BAD_GATEWAY.into_response())
}
