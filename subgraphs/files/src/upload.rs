//! GraphQL multipart requests (the graphql-multipart-request-spec), streamed
//! straight into storage.
//!
//! async-graphql's own multipart support holds each file in memory (or a temp
//! file) before resolvers run. Here every file part is hashed, counted, sniffed
//! and written to storage while it is read, so memory use does not grow with a
//! file's size and the size limit stops reading at the limit. Resolvers then
//! claim the stored blobs through the `Upload` scalar; whatever no committed row
//! claimed is deleted before the response goes out. The request's rules (parts,
//! map, paths) are the platform's, shared with the router; the streaming into
//! storage is this service's own.

use std::sync::{Arc, Mutex};

use async_graphql::{BatchRequest, InputValueError, InputValueResult, Scalar, ScalarType, Value};
use axum::body::{Body, Bytes};
use kit::multipart::{self as rules, MultipartError, Parts};
use sha2::{Digest, Sha256};

use crate::naming::clean_filename;
use crate::sniff::{self, SNIFF_BYTES};
use crate::storage::Storage;

/// What a file variable holds once its part has been received.
const TOKEN_PREFIX: &str = "#files-upload:";

/// The index of a file part of the request being served.
pub struct Upload(pub usize);

/// A file sent as a part of a GraphQL multipart request.
#[Scalar(name = "Upload", specified_by_url = "https://github.com/jaydenseric/graphql-multipart-request-spec")]
impl ScalarType for Upload {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(s) => s
                .strip_prefix(TOKEN_PREFIX)
                .and_then(|n| n.parse().ok())
                .map(Upload)
                .ok_or_else(|| InputValueError::custom("an Upload must be a file part of a multipart request")),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::Null
    }
}

/// Limits and policy for receiving files.
#[derive(Debug, Clone)]
pub struct UploadPolicy {
    pub max_file_bytes: u64,
    pub max_files: usize,
    /// Largest `operations` or `map` part.
    pub max_field_bytes: usize,
    pub allowed_types: Vec<String>,
    /// Bytes each user may store in all.
    pub quota_bytes: u64,
}

/// A file that is in storage and waits for its row.
#[derive(Debug)]
pub struct StoredBlob {
    pub key: String,
    pub filename: String,
    pub content_type: String,
    pub size: u64,
    pub sha256: String,
}

/// What became of one file part.
#[derive(Debug)]
pub enum Received {
    Stored(StoredBlob),
    /// Refused (type or name); nothing was stored. The message is for the client.
    Refused(String),
}

/// The files of one request, for its resolvers to claim.
pub struct Uploads {
    storage: Storage,
    files: Mutex<Vec<Option<Received>>>,
}

impl Uploads {
    /// Takes file `index`; each file can be taken once.
    pub fn take(&self, index: usize) -> Option<Received> {
        self.files.lock().expect("never poisoned").get_mut(index).and_then(Option::take)
    }

    /// Deletes the blobs nobody claimed.
    pub async fn discard_unclaimed(&self) {
        let left: Vec<Received> =
            self.files.lock().expect("never poisoned").iter_mut().filter_map(Option::take).collect();
        let keys: Vec<String> = left
            .into_iter()
            .filter_map(|r| match r {
                Received::Stored(blob) => Some(blob.key),
                Received::Refused(_) => None,
            })
            .collect();
        discard(&self.storage, &keys).await;
    }
}

impl Drop for Uploads {
    /// A request that was cancelled (client gone, timeout) still leaves nothing behind.
    fn drop(&mut self) {
        let keys: Vec<String> = self
            .files
            .get_mut()
            .map(|files| {
                files
                    .iter_mut()
                    .filter_map(|f| match f.take() {
                        Some(Received::Stored(blob)) => Some(blob.key),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        if !keys.is_empty() {
            let storage = self.storage.clone();
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move { discard(&storage, &keys).await });
            }
        }
    }
}

/// Deletes blobs that will have no row; one that cannot be deleted is left to the sweep.
pub async fn discard(storage: &Storage, keys: &[String]) {
    for key in keys {
        if let Err(e) = storage.delete(key).await {
            tracing::warn!(storage_key = %key, error = %format!("{e:#}"), "could not delete an unclaimed blob; the sweep will");
        }
    }
}

/// Why a multipart request was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum ReceiveError {
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// Our words for what multer found wrong; its own text stays in the debug log.
impl From<multer::Error> for ReceiveError {
    fn from(e: multer::Error) -> Self {
        tracing::debug!(error = %e, "unreadable multipart body");
        let message = match &e {
            multer::Error::StreamReadFailed(cause) if is_length_limit(cause.as_ref()) => {
                return ReceiveError::TooLarge("the request body is too large".into());
            }
            multer::Error::StreamReadFailed(_) => "the request body could not be read to its end",
            multer::Error::IncompleteStream
            | multer::Error::IncompleteFieldData { .. }
            | multer::Error::IncompleteHeaders => "the multipart body ends before its closing boundary",
            multer::Error::ReadHeaderFailed(_)
            | multer::Error::DecodeHeaderName { .. }
            | multer::Error::DecodeHeaderValue { .. } => "a part of the multipart body has malformed headers",
            _ => "the body is not a well-formed multipart/form-data body",
        };
        ReceiveError::Invalid(message.into())
    }
}

/// The shared rules' words, in this service's case: its messages start in lower case.
impl From<MultipartError> for ReceiveError {
    fn from(error: MultipartError) -> Self {
        let lower_first = |message: String| {
            let mut chars = message.chars();
            chars.next().map_or_else(String::new, |first| first.to_lowercase().chain(chars).collect())
        };
        match error {
            MultipartError::TooLarge(message) => ReceiveError::TooLarge(lower_first(message)),
            MultipartError::Invalid(message) => ReceiveError::Invalid(lower_first(message)),
        }
    }
}

/// Whether the body stream failed because it passed the HTTP body limit.
fn is_length_limit(error: &(dyn std::error::Error + 'static)) -> bool {
    std::iter::successors(Some(error), |e| e.source()).any(|e| e.is::<http_body_util::LengthLimitError>())
}

/// The message of an upload refused by the storage quota.
pub fn over_quota(quota_bytes: u64) -> String {
    format!("the upload would exceed your storage quota of {quota_bytes} bytes")
}

/// Reads a multipart request: `operations`, then `map`, then the files, each
/// streamed into storage, stopping as soon as they pass `quota_left` bytes in
/// all (the owner's quota; the insert checks it again, under a lock). On any
/// error nothing stays in storage.
pub async fn receive(
    body: Body,
    boundary: String,
    policy: &UploadPolicy,
    storage: &Storage,
    quota_left: u64,
) -> Result<(BatchRequest, Uploads), ReceiveError> {
    let uploads = Uploads { storage: storage.clone(), files: Mutex::new(Vec::new()) };
    let mut multipart = multer::Multipart::new(body.into_data_stream(), boundary);

    let operations =
        rules::small_part(&mut multipart, "operations", policy.max_field_bytes, ReceiveError::from).await?;
    let mut operations = rules::operations(&operations)?;
    let map = rules::small_part(&mut multipart, "map", policy.max_field_bytes, ReceiveError::from).await?;
    let map = rules::map(&map, policy.max_files)?;
    let mut parts = Parts::new(&map);
    for (key, paths) in &map {
        let index = parts.index(key).expect("every key of the map is a part");
        for path in paths {
            place_token(&mut operations, path, index)?;
        }
    }
    *uploads.files.lock().expect("never poisoned") = (0..parts.len()).map(|_| None).collect();
    let batch = serde_json::from_value::<BatchRequest>(operations).map_err(|_| {
        ReceiveError::Invalid("`operations` is not a GraphQL request (`query`, `variables`, or a list of them)".into())
    })?;

    let files = async {
        let mut quota_left = quota_left;
        while let Some(field) = multipart.next_field().await? {
            let index = parts.arrive(field.name().unwrap_or_default())?;
            let received = receive_file(field, policy, storage, quota_left).await?;
            if let Received::Stored(blob) = &received {
                quota_left -= blob.size;
            }
            uploads.files.lock().expect("never poisoned")[index] = Some(received);
        }
        Ok(parts.finish()?)
    }
    .await;
    if let Err(e) = files {
        // Deterministically, before the error response: the client may look right after.
        uploads.discard_unclaimed().await;
        return Err(e);
    }
    Ok((batch, uploads))
}

/// Puts the file token at `path` (`variables.file`, or `0.variables.files.1` in a batch).
fn place_token(operations: &mut serde_json::Value, path: &str, index: usize) -> Result<(), ReceiveError> {
    let token = serde_json::Value::String(format!("{TOKEN_PREFIX}{index}"));
    rules::put(operations, path, token)
        .ok_or_else(|| ReceiveError::Invalid(format!("the path {path:?} in `map` is not in `operations`")))
}

/// The first bytes of a file part, kept as the chunks they came in.
struct Head {
    bytes: Vec<u8>,
    chunks: Vec<Bytes>,
    /// The part ended within the head.
    complete: bool,
    size: u64,
}

async fn read_head(field: &mut multer::Field<'_>) -> Result<Head, ReceiveError> {
    let mut head = Head { bytes: Vec::with_capacity(SNIFF_BYTES), chunks: Vec::new(), complete: false, size: 0 };
    while head.bytes.len() < SNIFF_BYTES {
        let Some(chunk) = field.chunk().await? else {
            head.complete = true;
            break;
        };
        let wanted = chunk.len().min(SNIFF_BYTES - head.bytes.len());
        head.bytes.extend_from_slice(&chunk[..wanted]);
        head.size += chunk.len() as u64;
        head.chunks.push(chunk);
    }
    Ok(head)
}

/// The stored name and the sniffed type, or why the file is refused.
fn accept(raw_name: &str, head: &Head, policy: &UploadPolicy) -> Result<(String, String), String> {
    let filename = clean_filename(raw_name).map_err(str::to_owned)?;
    let content_type = sniff::content_type(&head.bytes, &filename, head.complete);
    if !sniff::allowed(&content_type, &policy.allowed_types) {
        return Err(format!("files of type {content_type} are not accepted"));
    }
    Ok((filename, content_type))
}

/// The error for a file part that has reached `size` bytes, if that is over
/// the size limit or over the `quota_left` it may take.
fn over_limit(size: u64, policy: &UploadPolicy, quota_left: u64) -> Option<ReceiveError> {
    if size > policy.max_file_bytes {
        return Some(ReceiveError::TooLarge(format!("a file may be at most {} bytes", policy.max_file_bytes)));
    }
    (size > quota_left).then(|| ReceiveError::TooLarge(over_quota(policy.quota_bytes)))
}

/// Receives one file part: sniffs its head, then streams it into storage while
/// hashing and counting. Over the size limit or the quota, the write is abandoned.
async fn receive_file(
    mut field: multer::Field<'_>,
    policy: &UploadPolicy,
    storage: &Storage,
    quota_left: u64,
) -> Result<Received, ReceiveError> {
    let raw_name = field.file_name().unwrap_or_default().to_owned();
    let head = read_head(&mut field).await?;
    let mut size = head.size;
    if let Some(error) = over_limit(size, policy, u64::MAX) {
        return Err(error);
    }
    let (filename, content_type) = match accept(&raw_name, &head, policy) {
        Ok(accepted) => accepted,
        Err(message) => {
            // Read past the refused file (still within the size limit; it takes
            // no quota) to reach the next part.
            while let Some(chunk) = field.chunk().await? {
                size += chunk.len() as u64;
                if let Some(error) = over_limit(size, policy, u64::MAX) {
                    return Err(error);
                }
            }
            return Ok(Received::Refused(message));
        }
    };
    // A refused file takes no quota; from here on the file counts.
    if let Some(error) = over_limit(size, policy, quota_left) {
        return Err(error);
    }

    let key = Storage::new_key();
    let mut writer = storage.writer(&key).await?;
    let mut hasher = Sha256::new();
    let streamed = async {
        for chunk in head.chunks {
            hasher.update(&chunk);
            writer.write(chunk).await?;
        }
        while let Some(chunk) = field.chunk().await? {
            size += chunk.len() as u64;
            if let Some(error) = over_limit(size, policy, quota_left) {
                return Err(error);
            }
            hasher.update(&chunk);
            writer.write(chunk).await?;
        }
        Ok::<(), ReceiveError>(())
    }
    .await;
    if let Err(e) = streamed {
        writer.abort().await;
        return Err(e);
    }
    writer.finish().await?;
    metrics::counter!("files_upload_bytes_total").increment(size);
    tracing::debug!(size, content_type = %content_type, "received a file");
    Ok(Received::Stored(StoredBlob { key, filename, content_type, size, sha256: format!("{:x}", hasher.finalize()) }))
}

/// The request's uploads, shared between the handler and the resolvers.
pub type SharedUploads = Arc<Uploads>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_go_where_the_map_says() {
        let mut ops = serde_json::json!({ "query": "q", "variables": { "file": null, "files": [null, null] } });
        place_token(&mut ops, "variables.file", 0).unwrap();
        place_token(&mut ops, "variables.files.1", 2).unwrap();
        assert_eq!(ops["variables"]["file"], "#files-upload:0");
        assert_eq!(ops["variables"]["files"][1], "#files-upload:2");
        assert!(place_token(&mut ops, "variables.nope", 1).is_err());
        let mut batch = serde_json::json!([{ "query": "q", "variables": { "f": null } }]);
        place_token(&mut batch, "0.variables.f", 0).unwrap();
        assert_eq!(batch[0]["variables"]["f"], "#files-upload:0");
    }

    #[test]
    fn the_scalar_takes_only_tokens() {
        assert_eq!(Upload::parse(Value::String("#files-upload:3".into())).map(|u| u.0).ok(), Some(3));
        assert!(Upload::parse(Value::String("/etc/passwd".into())).is_err());
        assert!(Upload::parse(Value::Null).is_err());
    }
}
