//! Bodies that are no GraphQL request, answered as GraphQL request errors in
//! our own words: async-graphql-axum's default rejection is plain text quoting
//! serde's or multer's error (and through it, bits of the body).

use async_graphql::ParseRequestError;
use axum::Json;
use axum::http::{StatusCode, header};
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
    let code = error.code();
    let error = async_graphql::Error::from(error);
    let mut body =
        serde_json::json!({ "errors": [{ "message": error.message, "extensions": { "code": code.as_str() } }] });
    if let Some(extensions) = &error.extensions {
        for key in ["field", "retryAfter"] {
            if let Some(value) = extensions.get(key) {
                body["errors"][0]["extensions"][key] = serde_json::to_value(value).unwrap_or_default();
            }
        }
    }
    (status, [(header::CONNECTION, "close")], Json(body)).into_response()
}
