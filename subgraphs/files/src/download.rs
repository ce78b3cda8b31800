//! `GET /files/{id}/content`: the owner's bearer token or a valid signed URL
//! streams the blob; anything else is 404, so existence never leaks.

use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use chrono::Utc;
use kit::TokenVerifier;
use kit::identity::TokenError;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;
use uuid::Uuid;

use crate::repository::{FileRow, Repository};
use crate::signing::UrlSigner;

#[derive(Clone)]
pub struct DownloadState {
    pub repository: Repository,
    pub verifier: TokenVerifier,
    pub signer: UrlSigner,
}

#[derive(Debug, Deserialize)]
pub struct Signature {
    expires: Option<i64>,
    sig: Option<String>,
}

/// A path or query that does not parse (a signature or expiry that is no
/// number, a repeated parameter, bytes that are not UTF-8) is one more way of
/// not naming a file: 404, never the extractor's own 400 and its text.
pub async fn content(
    State(state): State<DownloadState>,
    id: Result<Path<String>, PathRejection>,
    signature: Result<Query<Signature>, QueryRejection>,
    headers: HeaderMap,
) -> Response {
    let response = match (id, signature) {
        (Ok(Path(id)), Ok(Query(signature))) => serve(&state, &id, &signature, &headers).await,
        _ => not_found(),
    };
    metrics::counter!("files_downloads_total", "status" => response.status().as_str().to_owned()).increment(1);
    response
}

async fn serve(state: &DownloadState, id: &str, signature: &Signature, headers: &HeaderMap) -> Response {
    let Ok(id) = Uuid::parse_str(id) else { return not_found() };
    let file = match state.repository.find(id).await {
        Ok(Some(file)) => file,
        Ok(None) => return not_found(),
        Err(e) => return internal(e),
    };
    match authorized(state, &file, signature, headers).await {
        Access::Granted => {}
        Access::Denied => return not_found(),
        Access::CannotCheck => return token_unverifiable(state.verifier.retry_after_secs()),
    }
    let etag = format!("\"{}\"", file.sha256);
    if if_none_match(headers, &etag) {
        return with_file_headers(Response::builder().status(StatusCode::NOT_MODIFIED), &etag)
            .body(Body::empty())
            .expect("valid response");
    }
    let size = file.size as u64;
    let range = match requested_range(headers, &etag, size) {
        RangeRequest::Unsatisfiable => {
            return Response::builder()
                .status(StatusCode::RANGE_NOT_SATISFIABLE)
                .header(header::CONTENT_RANGE, format!("bytes */{size}"))
                .body(Body::empty())
                .expect("valid response");
        }
        RangeRequest::Whole => None,
        RangeRequest::Part(start, end) => Some((start, end)),
    };
    let stream = match state.repository.storage().read(&file.storage_key, range.map(|(s, e)| s..e + 1)).await {
        Ok(stream) => stream,
        Err(e) => return internal(e),
    };
    let builder = with_file_headers(Response::builder(), &etag)
        .header(header::CONTENT_TYPE, &file.content_type)
        .header(header::CONTENT_DISPOSITION, content_disposition(&file.filename));
    let builder = match range {
        Some((start, end)) => builder
            .status(StatusCode::PARTIAL_CONTENT)
            .header(header::CONTENT_RANGE, format!("bytes {start}-{end}/{size}"))
            .header(header::CONTENT_LENGTH, end - start + 1),
        None => builder.status(StatusCode::OK).header(header::CONTENT_LENGTH, size),
    };
    builder.body(Body::from_stream(stream)).expect("valid response")
}

enum Access {
    Granted,
    Denied,
    /// Only a bearer token was offered, and the keys or the revocation log
    /// needed to judge it cannot be read right now: the client should retry,
    /// not conclude that the file is gone.
    CannotCheck,
}

/// The owner's bearer token, or a signature of this file for its owner that has not expired.
async fn authorized(state: &DownloadState, file: &FileRow, signature: &Signature, headers: &HeaderMap) -> Access {
    let bearer = state.verifier.viewer_from_headers(headers).await;
    if let Ok(Some(viewer)) = &bearer
        && viewer.user_id == file.owner_id
    {
        return Access::Granted;
    }
    let signed = match (signature.expires, &signature.sig) {
        (Some(expires), Some(sig)) => state.signer.verify(file.id, file.owner_id, expires, sig, Utc::now().timestamp()),
        _ => false,
    };
    match bearer {
        _ if signed => Access::Granted,
        Err(TokenError::Unavailable) => Access::CannotCheck,
        _ => Access::Denied,
    }
}

fn with_file_headers(builder: axum::http::response::Builder, etag: &str) -> axum::http::response::Builder {
    builder
        .header(header::ETAG, etag)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CACHE_CONTROL, "private, no-cache")
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(header::CONTENT_SECURITY_POLICY, "default-src 'none'; sandbox")
}

/// `If-None-Match` naming our ETag (weak comparison) or `*`.
fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    let Some(value) = headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) else { return false };
    value.split(',').map(str::trim).any(|tag| tag == "*" || tag.trim_start_matches("W/") == etag)
}

#[derive(Debug, PartialEq, Eq)]
enum RangeRequest {
    Whole,
    /// Inclusive byte positions.
    Part(u64, u64),
    Unsatisfiable,
}

/// A single `bytes=` range. Several ranges, other units, a malformed header or an
/// `If-Range` that is not our ETag get the whole content (as RFC 9110 allows).
fn requested_range(headers: &HeaderMap, etag: &str, size: u64) -> RangeRequest {
    let Some(value) = headers.get(header::RANGE).and_then(|v| v.to_str().ok()) else { return RangeRequest::Whole };
    if let Some(if_range) = headers.get(header::IF_RANGE)
        && if_range.to_str().ok().map(str::trim) != Some(etag)
    {
        return RangeRequest::Whole;
    }
    parse_range(value, size)
}

fn parse_range(value: &str, size: u64) -> RangeRequest {
    let Some(spec) = value.trim().strip_prefix("bytes=") else { return RangeRequest::Whole };
    if spec.contains(',') {
        return RangeRequest::Whole;
    }
    let Some((start, end)) = spec.trim().split_once('-') else { return RangeRequest::Whole };
    let (start, end) = (start.trim(), end.trim());
    let parsed = match (start.is_empty(), end.is_empty()) {
        // bytes=-N: the last N bytes.
        (true, false) => match end.parse::<u64>() {
            Ok(0) => return RangeRequest::Unsatisfiable,
            Ok(n) if size > 0 => Some((size.saturating_sub(n), size - 1)),
            Ok(_) => return RangeRequest::Unsatisfiable,
            Err(_) => None,
        },
        (false, true) => start.parse::<u64>().ok().map(|s| (s, size.saturating_sub(1))),
        (false, false) => match (start.parse::<u64>(), end.parse::<u64>()) {
            (Ok(s), Ok(e)) if s <= e => Some((s, e.min(size.saturating_sub(1)))),
            _ => None,
        },
        (true, true) => None,
    };
    match parsed {
        None => RangeRequest::Whole,
        Some((start, _)) if start >= size => RangeRequest::Unsatisfiable,
        Some((start, end)) => RangeRequest::Part(start, end),
    }
}

/// Characters kept as they are in an RFC 8187 `filename*` value (attr-char).
const ATTR_CHAR_ESCAPES: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

/// `attachment` with an ASCII fallback `filename` and the exact UTF-8 `filename*` (RFC 6266).
pub fn content_disposition(filename: &str) -> HeaderValue {
    let fallback: String = filename
        .chars()
        .map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' { c } else { '_' })
        .collect();
    let encoded = utf8_percent_encode(filename, ATTR_CHAR_ESCAPES);
    HeaderValue::from_str(&format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"))
        .expect("only visible ASCII")
}

fn token_unverifiable(retry_after_secs: u64) -> Response {
    let mut response = kit::http::json_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "the access token cannot be checked right now; retry shortly",
    );
    response.headers_mut().insert(header::RETRY_AFTER, retry_after_secs.into());
    response
}

fn not_found() -> Response {
    kit::http::json_error(StatusCode::NOT_FOUND, "not found")
}

fn internal(error: anyhow::Error) -> Response {
    tracing::error!(error.cause_chain = ?error, error.message = %error, "download failed");
    kit::http::json_error(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), RangeRequest::Part(0, 9));
        assert_eq!(parse_range("bytes=90-", 100), RangeRequest::Part(90, 99));
        assert_eq!(parse_range("bytes=-10", 100), RangeRequest::Part(90, 99));
        assert_eq!(parse_range("bytes=-200", 100), RangeRequest::Part(0, 99));
        assert_eq!(parse_range("bytes=50-500", 100), RangeRequest::Part(50, 99));
        assert_eq!(parse_range("bytes=100-", 100), RangeRequest::Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 100), RangeRequest::Unsatisfiable);
        assert_eq!(parse_range("bytes=0-", 0), RangeRequest::Unsatisfiable);
        assert_eq!(parse_range("bytes=0-1,5-6", 100), RangeRequest::Whole);
        assert_eq!(parse_range("items=0-1", 100), RangeRequest::Whole);
        assert_eq!(parse_range("bytes=9-1", 100), RangeRequest::Whole);
    }

    #[test]
    fn dispositions_keep_the_exact_name_in_filename_star() {
        let value = content_disposition("rapport d'été \"final\".pdf");
        assert_eq!(
            value.to_str().unwrap(),
            "attachment; filename=\"rapport d'_t_ _final_.pdf\"; filename*=UTF-8''rapport%20d%27%C3%A9t%C3%A9%20%22final%22.pdf"
        );
    }
}
