//! What a failed fetch, or a subgraph's own errors, tell the client: masked
//! unless `SUBGRAPH_ERRORS=pass`, and an entity's error at each place it sits.

use super::*;

/// What the client is told at each path a failed fetch leaves empty: code and message.
pub(super) fn failure_error(error: &SubgraphError, service: &str) -> (&'static str, String) {
    match error {
        SubgraphError::Timeout => ("SUBGRAPH_TIMEOUT", format!("Subgraph '{service}' did not answer in time")),
        SubgraphError::UploadTaken => {
            ("BAD_REQUEST", "The uploaded files can be used by one subgraph fetch only".to_owned())
        }
        SubgraphError::CircuitOpen => (
            "SUBGRAPH_UNAVAILABLE",
            format!("Subgraph '{service}' is unavailable (failing fast after repeated failures)"),
        ),
        SubgraphError::Saturated => (
            "SUBGRAPH_UNAVAILABLE",
            format!("Subgraph '{service}' is unavailable (all its connections are busy): retry shortly"),
        ),
        // The query asked for more than the router reads: the client can ask for less.
        SubgraphError::TooLarge => (
            "PAYLOAD_TOO_LARGE",
            format!(
                "The answer of subgraph '{service}' is larger than the router reads \
                 (SUBGRAPH_MAX_RESPONSE_BYTES): select fewer fields or smaller pages"
            ),
        ),
        _ => ("SUBGRAPH_UNAVAILABLE", format!("Subgraph '{service}' is unavailable")),
    }
}

/// The codes whose errors keep their message when masked: the API's own (see
/// the README), and the request-error codes GraphQL servers commonly share
/// (Apollo Server's, which the router's own request errors use too).
/// `INTERNAL` and `INTERNAL_SERVER_ERROR` are not among them: such a message
/// (a foreign server's exception text) is exactly what masking hides.
pub const PASSED_CODES: [&str; 14] = [
    "BAD_USER_INPUT",
    "UNAUTHENTICATED",
    "FORBIDDEN",
    "NOT_FOUND",
    "CONFLICT",
    "PAYLOAD_TOO_LARGE",
    "RATE_LIMITED",
    "UNAVAILABLE",
    "GRAPHQL_PARSE_FAILED",
    "GRAPHQL_VALIDATION_FAILED",
    "BAD_REQUEST",
    "OPERATION_RESOLUTION_FAILURE",
    "PERSISTED_QUERY_NOT_FOUND",
    "PERSISTED_QUERY_NOT_SUPPORTED",
];

/// A subgraph's error as the client sees it, the subgraph named.
pub(super) fn subgraph_error(error: &Value, service: &str, mode: SubgraphErrors) -> Value {
    let Some(object) = error.as_object() else {
        return graphql_error("A subgraph returned a malformed error", None, Some("SUBGRAPH_ERROR"));
    };
    let mut error = match mode {
        SubgraphErrors::Pass => {
            let mut kept = object.clone();
            kept.remove("locations");
            kept
        }
        SubgraphErrors::Mask => masked(object, service),
    };
    let extensions = error.entry("extensions").or_insert_with(|| Value::Object(Map::new()));
    if let Some(ext) = extensions.as_object_mut() {
        ext.entry("serviceName").or_insert_with(|| Value::String(service.to_owned()));
    }
    Value::Object(error)
}

/// The error with only what may pass: its `path`; for a code of
/// [`PASSED_CODES`], its message and code, and the extensions the API's own
/// errors carry (`field`, `retryAfter`); for any other, a generic message and `INTERNAL`.
pub(super) fn masked(error: &Map<String, Value>, service: &str) -> Map<String, Value> {
    let code = error.get("extensions").and_then(|e| e.get("code")).and_then(Value::as_str);
    let message = error.get("message").and_then(Value::as_str);
    let mut out = Map::new();
    let mut extensions = Map::new();
    match (code.filter(|c| PASSED_CODES.contains(c)), message) {
        (Some(code), Some(message)) => {
            out.insert("message".into(), Value::String(message.to_owned()));
            extensions.insert("code".into(), Value::String(code.to_owned()));
            let ours = error.get("extensions").and_then(Value::as_object);
            if let Some(field) = ours.and_then(|e| e.get("field")).filter(|f| f.is_string()) {
                extensions.insert("field".into(), field.clone());
            }
            if let Some(retry) = ours.and_then(|e| e.get("retryAfter")).filter(|r| r.is_number()) {
                extensions.insert("retryAfter".into(), retry.clone());
            }
        }
        _ => {
            let (code, message) = (code.unwrap_or(""), message.unwrap_or(""));
            tracing::debug!(subgraph = service, code, message, "a subgraph error masked");
            out.insert("message".into(), Value::String(format!("Subgraph '{service}' answered with an error")));
            extensions.insert("code".into(), Value::String("INTERNAL".into()));
        }
    }
    if let Some(path) = error.get("path").filter(|p| p.is_array()) {
        out.insert("path".into(), path.clone());
    }
    out.insert("extensions".into(), Value::Object(extensions));
    out
}

/// An `_entities` error, once for every place in the client's response where
/// the failing (de-duplicated) entity sits, its path rewritten to that place.
/// Without a usable index the error keeps its message and code but no path.
pub(super) fn entity_errors(
    error: &Value,
    service: &str,
    mode: SubgraphErrors,
    locations: &[EntityLocation<'_>],
) -> Vec<Value> {
    let mut base = subgraph_error(error, service, mode);
    let path = base.get("path").and_then(Value::as_array).cloned().unwrap_or_default();
    let index = path.get(1).and_then(Value::as_u64).map(|i| i as usize);
    let places: Vec<&EntityLocation<'_>> = match index {
        Some(i) => locations.iter().filter(|l| l.representation == i).collect(),
        None => Vec::new(),
    };
    if places.is_empty() {
        if let Some(object) = base.as_object_mut() {
            object.remove("path");
        }
        return vec![base];
    }
    places
        .into_iter()
        .map(|place| {
            let mut error = base.clone();
            let rewritten: Vec<Value> =
                path_json(&place.path).into_iter().chain(path.iter().skip(2).cloned()).collect();
            error["path"] = Value::Array(rewritten);
            error
        })
        .collect()
}
