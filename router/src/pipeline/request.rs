//! GraphQL-over-HTTP: decoding requests and choosing the response media type.

use std::collections::HashMap;

use axum::http::{HeaderMap, header};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::error::RequestError;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GraphqlRequest {
    pub query: Option<String>,
    pub operation_name: Option<String>,
    pub variables: Option<Map<String, Value>>,
    #[allow(dead_code)]
    pub extensions: Option<Map<String, Value>>,
}

/// One request or a batch (a JSON array), answered in order.
pub enum Incoming {
    Single(GraphqlRequest),
    Batch(Vec<GraphqlRequest>),
}

/// `max_batch`: most operations a batch may hold.
pub fn decode_post(body: &[u8], max_batch: usize) -> Result<Incoming, RequestError> {
    // The common case, one request object, is read straight into its struct;
    // a batch, or a body to explain an error about, takes the way below.
    if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
        && let Ok(request) = serde_json::from_slice::<GraphqlRequest>(body)
    {
        return Ok(Incoming::Single(request));
    }
    // Our own words, not serde's: its messages quote the body back.
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        RequestError::BadRequest(format!("The body is not valid JSON (line {}, column {})", e.line(), e.column()))
    })?;
    match value {
        Value::Array(items) => {
            if items.is_empty() || items.len() > max_batch {
                return Err(RequestError::LimitExceeded(format!(
                    "A batch holds 1 to {max_batch} operations (MAX_BATCH); this one holds {}",
                    items.len()
                )));
            }
            items.into_iter().map(decode_one).collect::<Result<_, _>>().map(Incoming::Batch)
        }
        other => decode_one(other).map(Incoming::Single),
    }
}

fn decode_one(value: Value) -> Result<GraphqlRequest, RequestError> {
    if !value.is_object() {
        return Err(RequestError::BadRequest("A GraphQL request is a JSON object".into()));
    }
    serde_json::from_value(value).map_err(|e| {
        tracing::debug!(error = %e, "malformed GraphQL request");
        RequestError::BadRequest(
            "Malformed GraphQL request: `query` and `operationName` are strings, `variables` and `extensions` objects"
                .into(),
        )
    })
}

pub fn decode_get(params: &HashMap<String, String>) -> Result<GraphqlRequest, RequestError> {
    let json_param = |name: &str| -> Result<Option<Map<String, Value>>, RequestError> {
        match params.get(name).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(raw) => serde_json::from_str(raw)
                .map_err(|_| RequestError::BadRequest(format!("The `{name}` parameter must be a JSON object"))),
        }
    };
    Ok(GraphqlRequest {
        query: params.get("query").cloned(),
        operation_name: params.get("operationName").cloned().filter(|n| !n.is_empty()),
        variables: json_param("variables")?,
        extensions: json_param("extensions")?,
    })
}

/// The media type the client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaType {
    /// `application/graphql-response+json`: request errors are HTTP 4xx.
    GraphqlResponse,
    /// `application/json`: always HTTP 200 once the request is understood.
    Json,
}

impl MediaType {
    pub fn negotiate(headers: &HeaderMap) -> MediaType {
        let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
        let mut best = None;
        for item in accept.split(',') {
            let mut parts = item.trim().split(';');
            let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let q: f32 = parts.find_map(|p| p.trim().strip_prefix("q=").and_then(|q| q.parse().ok())).unwrap_or(1.0);
            let kind = match media.as_str() {
                "application/graphql-response+json" => MediaType::GraphqlResponse,
                "application/json" | "application/*" | "*/*" => MediaType::Json,
                _ => continue,
            };
            if q > 0.0 && best.is_none_or(|(bq, _)| q > bq) {
                best = Some((q, kind));
            }
        }
        best.map(|(_, kind)| kind).unwrap_or(MediaType::Json)
    }

    pub fn content_type(self) -> &'static str {
        match self {
            MediaType::GraphqlResponse => "application/graphql-response+json",
            MediaType::Json => "application/json",
        }
    }
}

/// Whether a browser asks for a page (GraphiQL) rather than data.
pub fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.split(',').next().is_some_and(|first| first.trim().starts_with("text/html")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(body: &[u8]) -> String {
        match decode_post(body, 32) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("{} was accepted", String::from_utf8_lossy(body)),
        }
    }

    #[test]
    fn unreadable_bodies_are_refused_in_our_words_not_serdes() {
        assert_eq!(refusal(br#"{"query": "{ me { id } }""#), "The body is not valid JSON (line 1, column 25)");
        for body in [&br#"{"query": 42}"#[..], br#"[{"variables": "x"}]"#, br#"{"operationName": ["a"]}"#] {
            let message = refusal(body);
            assert!(message.starts_with("Malformed GraphQL request: `query` and"), "{message}");
            assert!(!message.contains("invalid type") && !message.contains("expected"), "serde's words: {message}");
        }
        assert_eq!(refusal(b"42"), "A GraphQL request is a JSON object");
    }
}
