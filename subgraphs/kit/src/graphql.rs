//! Serving an async-graphql schema over axum with the caller's identity.

use std::num::NonZeroUsize;
use std::sync::{LazyLock, Mutex};

use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, OperationType};
use async_graphql::{BatchRequest, ObjectType, Request, Schema, SubscriptionType};
pub use async_graphql_axum::{GraphQLBatchRequest, GraphQLResponse};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use lru::LruCache;
use sha2::{Digest, Sha256};

use crate::cache::Cache;
use crate::identity::{TokenVerifier, Viewer};

/// Executes a (possibly batched) GraphQL request, adding the [`crate::Viewer`]
/// to its data when the request carries a valid access token. A token that is
/// present but invalid leaves the request anonymous, so resolvers that need a
/// viewer answer UNAUTHENTICATED.
pub async fn execute<Q, M, S>(
    schema: &Schema<Q, M, S>,
    verifier: &TokenVerifier,
    headers: &HeaderMap,
    request: GraphQLBatchRequest,
) -> GraphQLResponse
where
    Q: ObjectType + 'static,
    M: ObjectType + 'static,
    S: SubscriptionType + 'static,
{
    execute_with(schema, verifier, headers, request, |request, _| request).await
}

/// [`execute`], letting `per_viewer` add request data that depends on the viewer
/// (such as batch loaders scoped to the viewer's rows).
pub async fn execute_with<Q, M, S>(
    schema: &Schema<Q, M, S>,
    verifier: &TokenVerifier,
    headers: &HeaderMap,
    request: GraphQLBatchRequest,
    per_viewer: impl Fn(Request, &Viewer) -> Request,
) -> GraphQLResponse
where
    Q: ObjectType + 'static,
    M: ObjectType + 'static,
    S: SubscriptionType + 'static,
{
    let viewer = viewer_of(verifier, headers).await;
    execute_batch(schema, request.into_inner(), viewer.as_ref(), &per_viewer).await
}

/// The viewer of a valid access token; an unusable token is served as anonymous.
async fn viewer_of(verifier: &TokenVerifier, headers: &HeaderMap) -> Option<Viewer> {
    match verifier.viewer_from_headers(headers).await {
        Ok(viewer) => viewer,
        Err(reason) => {
            tracing::debug!(%reason, "request carries an unusable token; serving it as anonymous");
            None
        }
    }
}

async fn execute_batch<Q, M, S>(
    schema: &Schema<Q, M, S>,
    request: BatchRequest,
    viewer: Option<&Viewer>,
    per_viewer: &impl Fn(Request, &Viewer) -> Request,
) -> GraphQLResponse
where
    Q: ObjectType + 'static,
    M: ObjectType + 'static,
    S: SubscriptionType + 'static,
{
    let prepare = |r: Request| with_viewer(with_cached_parse(r), viewer, per_viewer);
    let request = match request {
        BatchRequest::Single(r) => BatchRequest::Single(prepare(r)),
        BatchRequest::Batch(rs) => BatchRequest::Batch(rs.into_iter().map(prepare).collect()),
    };
    schema.execute_batch(request).await.into()
}

fn with_viewer(
    request: Request,
    viewer: Option<&Viewer>,
    per_viewer: &impl Fn(Request, &Viewer) -> Request,
) -> Request {
    match viewer {
        None => request,
        Some(viewer) => per_viewer(request.data(viewer.clone()), viewer),
    }
}

/// [`execute_with`], answering a viewer's repeated queries from `cache`: whole
/// responses, keyed by the viewer, the document, the operation name and the
/// variables, in the viewer's generation, so the viewer's next write makes them
/// all stale at once (as for any cached read). Only for services whose every
/// answer depends on the viewer's own rows alone. Mutations, batches, anonymous
/// requests and responses with errors are never kept.
pub async fn execute_cached<Q, M, S>(
    schema: &Schema<Q, M, S>,
    verifier: &TokenVerifier,
    headers: &HeaderMap,
    request: GraphQLBatchRequest,
    per_viewer: impl Fn(Request, &Viewer) -> Request,
    cache: &Cache,
) -> Response
where
    Q: ObjectType + 'static,
    M: ObjectType + 'static,
    S: SubscriptionType + 'static,
{
    let viewer = viewer_of(verifier, headers).await;
    let mut single = match request.into_inner() {
        BatchRequest::Single(single) => single,
        batch => return execute_batch(schema, batch, viewer.as_ref(), &per_viewer).await.into_response(),
    };
    let cacheable = viewer.is_some() && cache.enabled() && is_query(&mut single);
    let Some(viewer) = viewer.as_ref().filter(|_| cacheable) else {
        let response = schema.execute(with_viewer(with_cached_parse(single), viewer.as_ref(), &per_viewer)).await;
        return GraphQLResponse::from(response).into_response();
    };
    let key = response_key(&single);
    let loaded = cache
        .get_or_load_raw(&viewer.user_id.to_string(), &key, || async {
            // Parsed (or taken from the parse cache) only when not answered from the cache.
            let request = with_viewer(with_cached_parse(single), Some(viewer), &per_viewer);
            let response = schema.execute(request).await;
            if !response.is_ok() {
                return Err(Uncached(response.into()));
            }
            serde_json::to_vec(&response).map(Bytes::from).map_err(|_| Uncached(response.into()))
        })
        .await;
    match loaded {
        Ok(json) => ([(header::CONTENT_TYPE, HeaderValue::from_static("application/graphql-response+json"))], json)
            .into_response(),
        Err(Uncached(response)) => response.into_response(),
    }
}

/// A response that is answered but not cached.
struct Uncached(GraphQLResponse);

/// Whether the request's operation is a query, read from the parse cache
/// without copying the document (a document not parsed before is parsed and
/// kept). A document that does not parse is no query: execution reports it.
fn is_query(request: &mut Request) -> bool {
    let operation_name = request.operation_name.clone();
    let operation_name = operation_name.as_deref();
    let is_query = |document: &ExecutableDocument| {
        let operation = match (&document.operations, operation_name) {
            (DocumentOperations::Single(operation), _) => Some(operation),
            (DocumentOperations::Multiple(operations), Some(name)) => operations.get(name),
            (DocumentOperations::Multiple(_), None) => None,
        };
        operation.is_some_and(|operation| operation.node.ty == OperationType::Query)
    };
    if request.query.len() > MAX_CACHED_DOCUMENT_LEN {
        // Not kept in the parse cache: parsed into the request, for execution to reuse.
        return request.parsed_query().is_ok_and(is_query);
    }
    if let Some(document) = PARSED.lock().expect("parse cache lock").get(&request.query) {
        return is_query(document);
    }
    let Ok(document) = async_graphql::parser::parse_query(&request.query) else { return false };
    let answer = is_query(&document);
    PARSED.lock().expect("parse cache lock").put(request.query.clone(), document);
    answer
}

fn response_key(request: &Request) -> String {
    let mut hasher = Sha256::new();
    hasher.update(request.query.as_bytes());
    hasher.update([0]);
    hasher.update(request.operation_name.as_deref().unwrap_or("").as_bytes());
    hasher.update([0]);
    hasher.update(serde_json::to_vec(&request.variables).unwrap_or_default());
    let digest = hasher.finalize();
    const HEX: &[u8; 16] = b"0123456789abcdef";
    // `raw-response`: kept as the bytes answered. Before, as a JSON string
    // under `response:`, which this version must not read as a body.
    let mut key = String::with_capacity(13 + 64);
    key.push_str("raw-response:");
    for byte in digest {
        key.push(char::from(HEX[usize::from(byte >> 4)]));
        key.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    key
}

/// Documents parsed before, by their text: clients send the same few queries
/// over and over, and parsing is a large part of answering a cached read.
static PARSED: LazyLock<Mutex<LruCache<String, ExecutableDocument>>> =
    LazyLock::new(|| Mutex::new(LruCache::new(NonZeroUsize::new(PARSED_DOCUMENTS).expect("non-zero"))));
const PARSED_DOCUMENTS: usize = 512;
/// Longer documents are parsed every time rather than held in memory.
const MAX_CACHED_DOCUMENT_LEN: usize = 16 * 1024;

fn with_cached_parse(mut request: Request) -> Request {
    if request.query.len() > MAX_CACHED_DOCUMENT_LEN {
        return request;
    }
    let cached = PARSED.lock().expect("parse cache lock").get(&request.query).cloned();
    match cached {
        Some(document) => request.set_parsed_query(document),
        None => {
            // A document that does not parse is left for execution to report.
            if let Ok(document) = request.parsed_query().cloned() {
                PARSED.lock().expect("parse cache lock").put(request.query.clone(), document);
            }
        }
    }
    request
}
