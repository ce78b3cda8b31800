//! The one error type every resolver returns, mapped to GraphQL errors with a
//! stable `extensions.code`. Internal causes are logged here, exactly once, inside
//! the request's span (so with its request id), and never shown to clients.

use async_graphql::ErrorExtensions;

/// Stable error codes, as clients see them in `extensions.code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    BadUserInput,
    Unauthenticated,
    Forbidden,
    NotFound,
    Conflict,
    PayloadTooLarge,
    RateLimited,
    /// Cannot be served right now (e.g. the caller's token cannot be checked); retry.
    Unavailable,
    Internal,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::BadUserInput => "BAD_USER_INPUT",
            Code::Unauthenticated => "UNAUTHENTICATED",
            Code::Forbidden => "FORBIDDEN",
            Code::NotFound => "NOT_FOUND",
            Code::Conflict => "CONFLICT",
            Code::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            Code::RateLimited => "RATE_LIMITED",
            Code::Unavailable => "UNAVAILABLE",
            Code::Internal => "INTERNAL",
        }
    }
}

/// What went wrong, as far as a client may know.
///
/// Deliberately not `Display`: that keeps async-graphql's blanket
/// `From<T: Display>` away, so every conversion goes through the mapping below.
pub enum ApiError {
    /// Input failed a rule; `field` names the argument or input field.
    BadUserInput {
        field: Option<String>,
        message: String,
    },
    Unauthenticated(String),
    Forbidden(String),
    NotFound(String),
    Conflict(String),
    PayloadTooLarge(String),
    /// Over a limit; `retry_after` (seconds, `extensions.retryAfter`) says when to try again.
    RateLimited {
        message: String,
        retry_after: u64,
    },
    /// A dependency this request needs is unreachable; `retry_after` as above.
    Unavailable {
        message: String,
        retry_after: u64,
    },
    /// Anything else. The cause is logged, the client sees only `INTERNAL`.
    Internal(anyhow::Error),
}

impl ApiError {
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        ApiError::BadUserInput { field: Some(field.to_owned()), message: message.into() }
    }

    pub fn unauthenticated() -> Self {
        ApiError::Unauthenticated("Authentication required".into())
    }

    pub fn not_found(what: &str) -> Self {
        ApiError::NotFound(format!("{what} not found"))
    }

    pub fn internal(err: impl Into<anyhow::Error>) -> Self {
        ApiError::Internal(err.into())
    }

    pub fn code(&self) -> Code {
        match self {
            ApiError::BadUserInput { .. } => Code::BadUserInput,
            ApiError::Unauthenticated(_) => Code::Unauthenticated,
            ApiError::Forbidden(_) => Code::Forbidden,
            ApiError::NotFound(_) => Code::NotFound,
            ApiError::Conflict(_) => Code::Conflict,
            ApiError::PayloadTooLarge(_) => Code::PayloadTooLarge,
            ApiError::RateLimited { .. } => Code::RateLimited,
            ApiError::Unavailable { .. } => Code::Unavailable,
            ApiError::Internal(_) => Code::Internal,
        }
    }
}

impl std::fmt::Debug for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiError::BadUserInput { field, message } => {
                write!(f, "BadUserInput({field:?}: {message})")
            }
            ApiError::Internal(e) => write!(f, "Internal({e:#})"),
            other => write!(f, "{}", other.code().as_str()),
        }
    }
}

/// Postgres could not be reached (see [`crate::db::is_unreachable`]): retryable,
/// and said at once while it is known to be down.
fn database_unavailable() -> ApiError {
    ApiError::Unavailable { message: "The database is unreachable; try again shortly".into(), retry_after: 1 }
}

impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        if crate::db::is_unreachable(&err) {
            tracing::debug!(error = %err, "database unreachable");
            return database_unavailable();
        }
        ApiError::Internal(err.into())
    }
}

impl From<anyhow::Error> for ApiError {
    /// A database that could not be reached stays `UNAVAILABLE` under any context.
    fn from(err: anyhow::Error) -> Self {
        let sql = err.chain().find_map(|cause| cause.downcast_ref::<sqlx::Error>());
        if sql.is_some_and(crate::db::is_unreachable) {
            tracing::debug!(error = %format!("{err:#}"), "database unreachable");
            return database_unavailable();
        }
        ApiError::Internal(err)
    }
}

impl From<ApiError> for async_graphql::Error {
    fn from(err: ApiError) -> Self {
        let code = err.code();
        let (message, field, retry_after) = match err {
            ApiError::BadUserInput { field, message } => (message, field, None),
            ApiError::RateLimited { message, retry_after } | ApiError::Unavailable { message, retry_after } => {
                (message, None, Some(retry_after))
            }
            ApiError::Internal(cause) => {
                tracing::error!(error.cause_chain = ?cause, error.message = %cause, "internal error");
                ("Internal server error".to_owned(), None, None)
            }
            ApiError::Unauthenticated(m)
            | ApiError::Forbidden(m)
            | ApiError::NotFound(m)
            | ApiError::Conflict(m)
            | ApiError::PayloadTooLarge(m) => (m, None, None),
        };
        async_graphql::Error::new(message).extend_with(|_, ext| {
            ext.set("code", code.as_str());
            if let Some(field) = field {
                ext.set("field", field);
            }
            if let Some(seconds) = retry_after {
                ext.set("retryAfter", seconds);
            }
        })
    }
}

/// Resolver result type.
pub type ApiResult<T> = Result<T, ApiError>;
