//! The GraphQL response of one operation.

use serde_json::Value;

use super::error::RequestError;

/// What a response's body begins with when it has data and no errors.
const DATA_PREFIX: &[u8] = b"{\"data\":";

#[derive(Clone)]
pub struct GraphqlResponse {
    /// `{"data":` and then `data` as JSON, written there by projection (see
    /// [`GraphqlResponse::data_buffer`]): a response without errors becomes
    /// its body by closing the brace, its data not copied. `None` for request
    /// errors: the response then has no `data` key at all.
    body: Option<Vec<u8>>,
    pub errors: Vec<Value>,
    pub request_error: bool,
}

impl GraphqlResponse {
    pub fn request_error(error: RequestError) -> Self {
        Self { body: None, errors: vec![error.to_json()], request_error: true }
    }

    /// Where projection writes `data`, with room for `capacity` bytes of it.
    pub fn data_buffer(capacity: usize) -> Vec<u8> {
        let mut body = Vec::with_capacity(DATA_PREFIX.len() + capacity.max(256) + 1);
        body.extend_from_slice(DATA_PREFIX);
        body
    }

    /// An executed operation's response: `body` is a [`data_buffer`](Self::data_buffer) with `data` written.
    pub fn executed(body: Vec<u8>, errors: Vec<Value>) -> Self {
        debug_assert!(body.starts_with(DATA_PREFIX), "a body not begun by data_buffer");
        Self { body: Some(body), errors, request_error: false }
    }

    /// `data` as JSON.
    fn data(&self) -> Option<&[u8]> {
        self.body.as_deref().map(|body| &body[DATA_PREFIX.len()..])
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
        if let Some(data) = self.data() {
            if !self.errors.is_empty() {
                out.push(b',');
            }
            out.extend_from_slice(b"\"data\":");
            out.extend_from_slice(data);
        }
        out.push(b'}');
    }

    pub fn into_json_bytes(self) -> Vec<u8> {
        match self.body {
            Some(mut body) if self.errors.is_empty() => {
                body.push(b'}');
                body
            }
            _ => {
                let mut out = Vec::with_capacity(self.body.as_ref().map_or(0, Vec::len) + 256);
                self.write_json(&mut out);
                out
            }
        }
    }
}
