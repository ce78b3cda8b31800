//! The GraphQL response of one operation.

use serde_json::{Map, Value};

use super::error::RequestError;

pub struct GraphqlResponse {
    /// `None` for request errors: the response then has no `data` key at all.
    pub data: Option<Value>,
    pub errors: Vec<Value>,
    pub request_error: bool,
}

impl GraphqlResponse {
    pub fn request_error(error: RequestError) -> Self {
        if matches!(error, RequestError::Plan) {
            tracing::error!("planning failed");
        }
        Self { data: None, errors: vec![error.to_json()], request_error: true }
    }

    pub fn executed(data: Value, errors: Vec<Value>) -> Self {
        Self { data: Some(data), errors, request_error: false }
    }

    /// The first error's `extensions.code`.
    pub fn code(&self) -> Option<&str> {
        self.errors.first()?.pointer("/extensions/code")?.as_str()
    }

    pub fn outcome(&self) -> &'static str {
        match (self.request_error, self.errors.is_empty()) {
            (true, _) => "request_error",
            (false, true) => "success",
            (false, false) => "partial",
        }
    }

    pub fn into_json(self) -> Value {
        let mut body = Map::new();
        if !self.errors.is_empty() {
            body.insert("errors".into(), Value::Array(self.errors));
        }
        if let Some(data) = self.data {
            body.insert("data".into(), data);
        }
        Value::Object(body)
    }
}
