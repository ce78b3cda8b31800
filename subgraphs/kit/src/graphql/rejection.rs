//! Bodies that are no GraphQL request, answered as GraphQL request errors in
//! our own words: async-graphql-axum's default rejection is plain text quoting
//! serde's or multer's error (and through it, bits of the body).

use async_graphql::ParseRequestError;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::ApiError;

/// A (possibly batched) GraphQL request read from the body; an unreadable body
/// is refused with [`Unreadable`].
pub type GraphQLBatchRequest = async_graphql_axum::GraphQLBatchRequest<Unreadable>;

/// Why a body could not be read as a GraphQL request.
#[derive(Debug)]
pub struct Unreadable(pub ParseRequestError);

impl From<ParseRequestError> for Unreadable {
    fn from(error: ParseRequestError) -> Self {
        Self(error)
    }
}

impl IntoResponse for Unreadable {
    fn into_response(self) -> Response {
        // The library's words go to the debug log only.
        tracing::debug!(error = ?self.0, "unreadable GraphQL request body");
        if matches!(self.0, ParseRequestError::PayloadTooLarge) {
            let error = ApiError::PayloadTooLarge("the request is too large".into());
            return request_error(StatusCode::PAYLOAD_TOO_LARGE, error);
        }
        let message = "the body is not a GraphQL request: a JSON object with `query` (and `variables`, \
                       `operationName`), a list of them, or a GraphQL multipart request with a boundary";
        request_error(StatusCode::BAD_REQUEST, ApiError::BadUserInput { field: None, message: message.into() })
    }
}

/// A GraphQL response with one request error and no data. The connection is
/// closed: the rest of the request body may not have been read.
pub fn request_error(status: StatusCode, error: ApiError) -> Response {
    let headers = [(header::CONNECTION, HeaderValue::from_static("close")), (header::CONTENT_TYPE, JSON)];
    (status, headers, error_body(error)).into_response()
}

const JSON: HeaderValue = HeaderValue::from_static("application/json");

/// `error` as the GraphQL error envelope (the platform's one writer of it):
/// its message, its code, and its `field` or `retryAfter` when it has one.
pub(crate) fn error_body(error: ApiError) -> Vec<u8> {
    let code = error.code();
    let error = async_graphql::Error::from(error);
    let extensions: Vec<(&str, serde_json::Value)> = ["field", "retryAfter"]
        .into_iter()
        .filter_map(|key| Some((key, serde_json::to_value(error.extensions.as_ref()?.get(key)?).ok()?)))
        .collect();
    platform::http::graphql_error_body(&error.message, code.as_str(), &extensions)
}
