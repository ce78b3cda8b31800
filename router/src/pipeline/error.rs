//! Errors of the request path, as GraphQL errors with stable codes.

use serde_json::{Map, Value, json};

/// A request that cannot be executed at all: the response has no `data`.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RequestError {
    #[error("{0}")]
    BadRequest(String),
    #[error("Syntax Error: {0}")]
    Parse(String),
    #[error("{message}")]
    Validation { message: String, locations: Vec<(usize, usize)> },
    #[error("{0}")]
    UnknownOperation(String),
    #[error("{0}")]
    Variables(String),
    #[error("Mutations cannot be sent with GET; use POST")]
    MutationOverGet,
    #[error("Introspection is disabled")]
    IntrospectionDisabled,
    #[error(
        "This operation has been blocked as a potential cross-site request forgery: send it with a non-empty \
         `apollo-require-preflight`, `x-apollo-operation-name` or `graphql-preflight` header, or as a POST with \
         `content-type: application/json`"
    )]
    CsrfSuspected,
    #[error("The access token is invalid or expired")]
    InvalidToken,
    /// Its key or the session revocations cannot be fetched from auth now.
    #[error("The access token cannot be checked right now; retry in {retry_after} s")]
    TokenUncheckable { retry_after: u64 },
    #[error("Too many requests: retry in {retry_after} s")]
    RateLimited { retry_after: u64 },
    /// An operation limit (depth, aliases, cost...) is exceeded.
    #[error("{0}")]
    LimitExceeded(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    /// Planning failed: a router bug or an unsupported schema shape. Details are logged.
    #[error("The operation could not be planned")]
    Plan,
}

impl RequestError {
    pub fn code(&self) -> &'static str {
        match self {
            RequestError::BadRequest(_) => "BAD_REQUEST",
            RequestError::Parse(_) => "GRAPHQL_PARSE_FAILED",
            RequestError::Validation { .. } => "GRAPHQL_VALIDATION_FAILED",
            RequestError::UnknownOperation(_) => "OPERATION_RESOLUTION_FAILURE",
            RequestError::Variables(_) => "BAD_USER_INPUT",
            RequestError::MutationOverGet => "METHOD_NOT_ALLOWED",
            RequestError::IntrospectionDisabled => "INTROSPECTION_DISABLED",
            RequestError::CsrfSuspected => "CSRF_SUSPECTED",
            RequestError::InvalidToken => "UNAUTHENTICATED",
            RequestError::TokenUncheckable { .. } => "UNAVAILABLE",
            RequestError::RateLimited { .. } => "RATE_LIMITED",
            RequestError::LimitExceeded(_) => "BAD_USER_INPUT",
            RequestError::Unsupported(_) => "BAD_REQUEST",
            RequestError::PayloadTooLarge(_) => "PAYLOAD_TOO_LARGE",
            RequestError::Plan => "INTERNAL",
        }
    }

    pub fn to_json(&self) -> Value {
        let mut error = Map::new();
        error.insert("message".into(), Value::String(self.to_string()));
        if let RequestError::Validation { locations, .. } = self
            && !locations.is_empty()
        {
            let locations = locations.iter().map(|(line, column)| json!({ "line": line, "column": column })).collect();
            error.insert("locations".into(), Value::Array(locations));
        }
        let mut extensions = json!({ "code": self.code() });
        if let RequestError::RateLimited { retry_after } | RequestError::TokenUncheckable { retry_after } = self {
            extensions["retryAfter"] = json!(retry_after);
        }
        error.insert("extensions".into(), extensions);
        Value::Object(error)
    }
}

/// A field error.
pub fn graphql_error(message: &str, path: Option<Vec<Value>>, code: Option<&str>) -> Value {
    let mut error = Map::new();
    error.insert("message".into(), Value::String(message.to_owned()));
    if let Some(path) = path {
        error.insert("path".into(), Value::Array(path));
    }
    if let Some(code) = code {
        error.insert("extensions".into(), json!({ "code": code }));
    }
    Value::Object(error)
}
