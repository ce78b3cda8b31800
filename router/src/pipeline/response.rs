//! The GraphQL response of one operation.

use serde_json::Value;

use super::error::RequestError;

#[derive(Clone)]
pub struct GraphqlResponse {
    /// `data` as JSON, written by projection; `None` for request errors: the
    /// response then has no `data` key at all.
    pub data: Option<Vec<u8>>,
    pub errors: Vec<Value>,
    pub request_error: bool,
}

impl GraphqlResponse {
    pub fn request_error(error: RequestError) -> Self {
        Self { data: None, errors: vec![error.to_json()], request_error: true }
    }

    pub fn executed(data: Vec<u8>, errors: Vec<Value>) -> Self {
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

    /// The response as JSON: `{"errors":[…],"data":…}`, errors first when there are any.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        out.push(b'{');
        if !self.errors.is_empty() {
            out.extend_from_slice(b"\"errors\":");
            // Writing JSON values into memory cannot fail.
            let _ = serde_json::to_writer(&mut *out, &self.errors);
        }
        if let Some(data) = &self.data {
            if !self.errors.is_empty() {
                out.push(b',');
            }
            out.extend_from_slice(b"\"data\":");
            out.extend_from_slice(data);
        }
        out.push(b'}');
    }

    pub fn to_json_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.data.as_ref().map_or(0, Vec::len) + 16);
        self.write_json(&mut out);
        out
    }
}
