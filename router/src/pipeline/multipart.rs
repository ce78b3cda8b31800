//! GraphQL multipart requests (file uploads, per the GraphQL multipart request
//! spec). The router reads only `operations` and `map`; the file parts stay in
//! the client's body until the fetch that uses the upload variables runs, and
//! are then streamed, re-encoded as a multipart request of our own, to that
//! subgraph. Nothing is buffered whole; limits are counted as bytes pass. The
//! request's rules (parts, map, paths) are the platform's, shared with the files
//! service; the streaming is the router's own.

use std::collections::HashSet;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use futures::Stream;
use graphql_tools::static_graphql::query::Type;
use platform::multipart::{self as rules, MultipartError, Parts};
use serde_json::{Map, Value};

use super::error::RequestError;
use super::prepare::{Prepared, variable_definitions};
use super::request::GraphqlRequest;
use crate::config::UploadLimits;
use crate::subgraphs::pool::{BoxError, OutBody};

/// Stands in for a file in the variables until the subgraph puts its own there.
const PLACEHOLDER: &str = "<upload>";
/// The scalar a file goes to (the multipart request spec's name).
const UPLOAD_TYPE: &str = "Upload";

/// The files of one multipart request, not read yet.
pub struct Uploads {
    /// Variables (top-level names) that hold files.
    variables: HashSet<String>,
    /// Every path in `map` (`variables.files.1`), checked against the operation.
    paths: Vec<String>,
    map: Bytes,
    pending: Mutex<Option<Pending>>,
    limits: UploadLimits,
    client: Arc<ClientSide>,
}

/// The client's half of the stream, as the pump sees it: so that what the
/// client broke is blamed on the request, not on the subgraph.
#[derive(Default)]
struct ClientSide {
    /// What went wrong on the client's side, if anything.
    failure: Mutex<Option<RequestError>>,
    /// The pump is waiting for the client's next bytes: a subgraph request that
    /// ends now (timed out, or cancelled) ends for want of them.
    awaiting: AtomicBool,
}

struct Pending {
    multipart: multer::Multipart<'static>,
    parts: Parts,
}

impl From<MultipartError> for RequestError {
    fn from(error: MultipartError) -> Self {
        match error {
            MultipartError::TooLarge(message) => RequestError::PayloadTooLarge(message),
            MultipartError::Invalid(message) => RequestError::BadRequest(message),
        }
    }
}

/// Reads `operations` and `map`; the files are left in the body.
pub async fn begin(
    body: Body,
    boundary: String,
    limits: UploadLimits,
) -> Result<(GraphqlRequest, Uploads), RequestError> {
    let paced = Paced { inner: body.into_data_stream(), budget: BURST_BYTES };
    let mut multipart = multer::Multipart::new(paced, boundary);
    let operations = rules::small_part(&mut multipart, "operations", limits.max_field_bytes, malformed).await?;
    let mut operations = rules::operations(&operations)?;
    if operations.is_array() {
        return Err(RequestError::BadRequest(
            "Batched multipart requests are not supported: send one operation".into(),
        ));
    }
    let map_bytes = rules::small_part(&mut multipart, "map", limits.max_field_bytes, malformed).await?;
    let map = rules::map(&map_bytes, limits.max_files)?;
    let mut variables = HashSet::new();
    let mut all_paths = Vec::new();
    for (key, paths) in &map {
        // Keys become part names in our own request: keep them plain.
        let plain = !key.is_empty() && key.len() <= 64 && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !plain || paths.is_empty() {
            return Err(RequestError::BadRequest(format!("`map` key {key:?} is not a plain name with paths")));
        }
        for path in paths {
            variables.insert(place_placeholder(&mut operations, path)?);
            all_paths.push(path.clone());
        }
    }
    let request: GraphqlRequest = serde_json::from_value(operations)
        .map_err(|_| RequestError::BadRequest("`operations` is not a GraphQL request".into()))?;
    let parts = Parts::new(&map);
    let uploads = Uploads {
        variables,
        paths: all_paths,
        map: Bytes::from(map_bytes),
        pending: Mutex::new(Some(Pending { multipart, parts })),
        limits,
        client: Arc::default(),
    };
    Ok((request, uploads))
}

/// Most bytes handed to multer per wake-up.
const BURST_BYTES: usize = 128 * 1024;

/// The client's body, at most [`BURST_BYTES`] per wake-up. multer reads its
/// stream for as long as it is ready and copies all of it into one buffer: on a
/// fast connection that is megabytes held at once (measured: 42 MiB of router
/// RSS for a 100 MiB upload on loopback). Yielding between bursts bounds it.
struct Paced<S> {
    inner: S,
    budget: usize,
}

impl<S, E> Stream for Paced<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    type Item = Result<Bytes, E>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.budget == 0 {
            self.budget = BURST_BYTES;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let polled = Pin::new(&mut self.inner).poll_next(cx);
        match &polled {
            Poll::Ready(Some(Ok(bytes))) => self.budget = self.budget.saturating_sub(bytes.len()),
            Poll::Pending => self.budget = BURST_BYTES,
            _ => {}
        }
        polled
    }
}

/// multer's error in words of our own: its text is not for clients.
fn malformed(e: multer::Error) -> RequestError {
    let why = match e {
        // The client's body stream failed: the client went away, or the HTTP
        // body limit cut it off.
        multer::Error::StreamReadFailed(_) => "The request body was cut off (too large, or the client stopped sending)",
        multer::Error::IncompleteStream | multer::Error::IncompleteFieldData { .. } => {
            "The multipart body ends before its closing boundary"
        }
        _ => "The multipart body is malformed",
    };
    RequestError::BadRequest(why.into())
}

/// Puts the placeholder at `path` (`variables.file`, `variables.files.1`);
/// returns the variable's name.
fn place_placeholder(operations: &mut Value, path: &str) -> Result<String, RequestError> {
    let not_found = || RequestError::Variables(format!("The path {path:?} in `map` is not a variable in `operations`"));
    let mut segments = path.split('.');
    if segments.next() != Some("variables") {
        return Err(not_found());
    }
    let variable = segments.next().ok_or_else(not_found)?.to_owned();
    if !operations.get("variables").is_some_and(Value::is_object) {
        return Err(not_found());
    }
    rules::put(operations, path, Value::String(PLACEHOLDER.to_owned())).ok_or_else(not_found)?;
    Ok(variable)
}

impl Uploads {
    /// Whether a fetch with these variables is the one that carries the files.
    pub fn used_by(&self, variables: &Map<String, Value>) -> bool {
        self.variables.iter().any(|v| variables.contains_key(v))
    }

    /// The multipart body for the subgraph: `operations` (the fetch's own JSON),
    /// the client's `map` (the variables keep their names), then the files as
    /// they arrive. `None` once taken: the files can be sent only once.
    pub fn take_body(&self, operations: Vec<u8>) -> Option<(OutBody, String, std::time::Duration)> {
        let pending = self.pending.lock().expect("uploads lock").take()?;
        let boundary = format!("taskgraph-{}", uuid::Uuid::new_v4().simple());
        let content_type = format!("multipart/form-data; boundary={boundary}");
        let mut head = Vec::with_capacity(operations.len() + self.map.len() + 256);
        head.extend_from_slice(part_header(&boundary, "operations", None, None).as_bytes());
        head.extend_from_slice(&operations);
        head.extend_from_slice(b"\r\n");
        head.extend_from_slice(part_header(&boundary, "map", None, None).as_bytes());
        head.extend_from_slice(&self.map);
        head.extend_from_slice(b"\r\n");
        let pump = Pump {
            multipart: pending.multipart,
            parts: pending.parts,
            field: None,
            head: Some(Bytes::from(head)),
            boundary,
            limits: self.limits,
            client: self.client.clone(),
            done: false,
        };
        // Read by the subgraph connection itself, chunk by chunk as it writes:
        // no task in between, so nothing piles up and buffers are freed where made.
        let stream = futures::stream::unfold(pump, |mut pump| async move {
            if pump.done {
                return None;
            }
            let next = pump.next().await;
            Some((next, pump))
        });
        let stream = futures::StreamExt::map(stream, |piece| piece.map_err(BoxError::from));
        Some((OutBody::Stream(Box::pin(stream)), content_type, self.limits.timeout))
    }

    /// Refuses a file mapped anywhere but to an `Upload` variable the
    /// operation declares (or an item of an `[Upload]` one), before anything is
    /// sent: a subgraph could only refuse it.
    pub fn check_types(&self, prepared: &Prepared) -> Result<(), RequestError> {
        let definitions = variable_definitions(&prepared.operation);
        for path in &self.paths {
            // `begin` has checked the path's shape: `variables.<name>` then segments.
            let mut segments = path.split('.').skip(1);
            let name = segments.next().unwrap_or_default();
            let Some(declared) = definitions.iter().find(|d| d.name == name).map(|d| &d.var_type) else {
                return Err(RequestError::Variables(format!(
                    "The path {path:?} in `map` names no variable of the operation"
                )));
            };
            let mut target = declared;
            for segment in segments {
                target = match nullable(target) {
                    Type::ListType(item) if segment.parse::<usize>().is_ok() => item,
                    _ => return Err(not_an_upload(path, declared)),
                };
            }
            if !matches!(nullable(target), Type::NamedType(named) if named == UPLOAD_TYPE) {
                return Err(not_an_upload(path, declared));
            }
        }
        Ok(())
    }

    /// Whether the client, not the subgraph, is why the subgraph request failed:
    /// its side of the stream went wrong, or the pump was waiting on it.
    pub fn client_at_fault(&self) -> bool {
        self.client.awaiting.load(Ordering::SeqCst) || self.client.failure.lock().expect("uploads lock").is_some()
    }

    /// What went wrong on the client's side of the stream, if anything.
    pub fn failure(&self) -> Option<RequestError> {
        self.client.failure.lock().expect("uploads lock").take()
    }
}

fn nullable(ty: &Type) -> &Type {
    match ty {
        Type::NonNullType(inner) => inner,
        other => other,
    }
}

fn not_an_upload(path: &str, declared: &Type) -> RequestError {
    RequestError::Variables(format!(
        "The file at {path:?} in `map` must go to a variable of type {UPLOAD_TYPE} or [{UPLOAD_TYPE}], not {declared}"
    ))
}

/// The subgraph request's body after `operations` and `map`: the file parts
/// as they come from the client, counted, then the closing boundary.
struct Pump {
    multipart: multer::Multipart<'static>,
    parts: Parts,
    /// The part being copied, its name and its size so far.
    field: Option<(multer::Field<'static>, String, u64)>,
    head: Option<Bytes>,
    boundary: String,
    limits: UploadLimits,
    client: Arc<ClientSide>,
    done: bool,
}

impl Pump {
    async fn next(&mut self) -> Result<Bytes, std::io::Error> {
        if let Some(head) = self.head.take() {
            return Ok(head);
        }
        // Every await in `next_piece` is on the client's body.
        self.client.awaiting.store(true, Ordering::SeqCst);
        let piece = self.next_piece().await;
        self.client.awaiting.store(false, Ordering::SeqCst);
        match piece {
            Ok(Some(bytes)) => Ok(bytes),
            Ok(None) => {
                self.done = true;
                Ok(Bytes::from(format!("--{}--\r\n", self.boundary)))
            }
            Err(e) => {
                self.done = true;
                let message = e.to_string();
                *self.client.failure.lock().expect("uploads lock") = Some(e);
                // Cuts the subgraph request short: it must not store a partial file.
                Err(std::io::Error::other(message))
            }
        }
    }

    async fn next_piece(&mut self) -> Result<Option<Bytes>, RequestError> {
        if let Some((field, name, size)) = &mut self.field {
            return match field.chunk().await.map_err(malformed)? {
                Some(chunk) => {
                    *size += chunk.len() as u64;
                    if *size > self.limits.max_file_bytes {
                        return Err(RequestError::PayloadTooLarge(format!(
                            "The file {name:?} is larger than {} bytes",
                            self.limits.max_file_bytes
                        )));
                    }
                    Ok(Some(chunk))
                }
                None => {
                    self.field = None;
                    Ok(Some(Bytes::from_static(b"\r\n")))
                }
            };
        }
        let Some(field) = self.multipart.next_field().await.map_err(malformed)? else {
            self.parts.finish()?;
            return Ok(None);
        };
        let name = field.name().unwrap_or_default().to_owned();
        self.parts.arrive(&name)?;
        let content_type = field.content_type().map(|m| m.to_string());
        let filename = field.file_name().unwrap_or("upload").to_owned();
        let header = part_header(&self.boundary, &name, Some(&filename), content_type.as_deref());
        self.field = Some((field, name, 0));
        Ok(Some(Bytes::from(header)))
    }
}

fn part_header(boundary: &str, name: &str, filename: Option<&str>, content_type: Option<&str>) -> String {
    let mut header = format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"");
    if let Some(filename) = filename {
        // As browsers do: quotes escaped, line breaks flattened. The subgraph cleans the rest.
        let filename: String = filename
            .chars()
            .map(|c| match c {
                '"' => "%22".to_owned(),
                '\r' | '\n' => " ".to_owned(),
                c => c.to_string(),
            })
            .collect();
        header.push_str(&format!("; filename=\"{filename}\""));
    }
    header.push_str("\r\n");
    if let Some(content_type) = content_type {
        header.push_str(&format!("Content-Type: {content_type}\r\n"));
    }
    header.push_str("\r\n");
    header
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_go_where_the_map_says_and_name_the_variable() {
        let mut operations = serde_json::json!({ "query": "q", "variables": { "file": null, "files": [null, null] } });
        assert_eq!(place_placeholder(&mut operations, "variables.file").unwrap(), "file");
        assert_eq!(place_placeholder(&mut operations, "variables.files.1").unwrap(), "files");
        assert_eq!(operations["variables"], serde_json::json!({ "file": "<upload>", "files": [null, "<upload>"] }));
        for bad in ["variables.nope", "query", "variables.files.7", "0.variables.file", "variables"] {
            assert!(place_placeholder(&mut operations, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn part_headers_cannot_be_broken_out_of() {
        let header = part_header("b", "0", Some("a\"b\r\nX-Evil: 1.png"), None);
        assert_eq!(
            header,
            "--b\r\nContent-Disposition: form-data; name=\"0\"; filename=\"a%22b  X-Evil: 1.png\"\r\n\r\n"
        );
    }
}
