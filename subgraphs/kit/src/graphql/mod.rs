//! Serving an async-graphql schema over axum with the caller's identity, every
//! request held to the schema's document limits first (see [`limited`]).

mod limits;
mod rejection;
mod shape;

use std::num::NonZeroUsize;
use std::sync::{LazyLock, Mutex};

use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, OperationType};
use async_graphql::{
    BatchRequest, BatchResponse, ObjectType, Request, Response, Schema, SchemaBuilder, ServerError, SubscriptionType,
};
pub use async_graphql_axum::GraphQLResponse;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::IntoResponse;
use bytes::Bytes;
use limits::{DocumentLimits, MAX_NESTING, Refused};
use lru::LruCache;
pub use rejection::{GraphQLBatchRequest, Unreadable, request_error};
use sha2::{Digest, Sha256};

use crate::ApiError;
use crate::cache::Cache;
use crate::config::QueryLimits;
use crate::identity::{TokenError, TokenVerifier, Viewer};
use crate::metrics::{GraphqlMetrics, Outcome};

/// `builder` with the document limits: `limits` in the schema's data, where
/// this module's `execute*` functions check every request against them before
/// async-graphql parses (beyond the parse cache) or validates it; and
/// async-graphql's own depth, complexity (its count of fields), recursion and
/// directive limits, counted the same way and set no lower, as a second line
/// that never refuses a document the first let through.
///
/// Every operation is also counted, for `service`, in `graphql_operations_total`
/// and its errors in `graphql_errors_total` (see [`crate::metrics::GraphqlMetrics`]).
pub fn limited<Q, M, S>(
    service: &'static str,
    builder: SchemaBuilder<Q, M, S>,
    limits: QueryLimits,
) -> SchemaBuilder<Q, M, S> {
    builder
        .data(GraphqlMetrics::new(service))
        .limit_depth(limits.max_depth)
        .limit_complexity(usize::try_from(limits.max_fields).unwrap_or(usize::MAX))
        .limit_recursive_depth(MAX_NESTING)
        .limit_directives(limits.max_directives_per_field)
        .data(DocumentLimits::new(limits))
}

/// Executes a (possibly batched) GraphQL request, adding the [`crate::Viewer`]
/// to its data when the request carries a valid access token. A token that is
/// present but invalid leaves the request anonymous, so resolvers that need a
/// viewer answer UNAUTHENTICATED; one that cannot be checked now is refused
/// (see [`viewer_or_unavailable`]).
pub async fn execute<Q, M, S>(
    schema: &Schema<Q, M, S>,
    verifier: &TokenVerifier,
    headers: &HeaderMap,
    request: GraphQLBatchRequest,
) -> axum::response::Response
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
) -> axum::response::Response
where
    Q: ObjectType + 'static,
    M: ObjectType + 'static,
    S: SubscriptionType + 'static,
{
    let viewer = match viewer_or_unavailable(verifier, headers).await {
        Ok(viewer) => viewer,
        Err(unavailable) => return unavailable,
    };
    execute_batch(schema, request.into_inner(), viewer.as_ref(), &per_viewer).await.into_response()
}

/// The viewer of a valid access token; an unusable token is served as
/// anonymous. A token that cannot be checked now (auth's keys or revocations
/// unreachable) is not served at all: `Err` holds the answer, HTTP 503 with
/// `Retry-After` and UNAVAILABLE, so a signed-in client retries rather than
/// being treated as signed out.
pub async fn viewer_or_unavailable(
    verifier: &TokenVerifier,
    headers: &HeaderMap,
) -> Result<Option<Viewer>, axum::response::Response> {
    match verifier.viewer_from_headers(headers).await {
        Ok(viewer) => Ok(viewer),
        Err(TokenError::Unavailable) => Err(unavailable(verifier.retry_after_secs())),
        Err(reason) => {
            tracing::debug!(%reason, "request carries an unusable token; serving it as anonymous");
            Ok(None)
        }
    }
}

fn unavailable(retry_after: u64) -> axum::response::Response {
    let message = "The access token cannot be checked right now; retry shortly".to_owned();
    let body = rejection::error_body(ApiError::Unavailable { message, retry_after });
    let headers = [
        (header::RETRY_AFTER, HeaderValue::from(retry_after)),
        (header::CONTENT_TYPE, HeaderValue::from_static("application/json")),
    ];
    (axum::http::StatusCode::SERVICE_UNAVAILABLE, headers, body).into_response()
}

/// Executes `request` (held to the schema's limits, see [`execute_checked`])
/// for `viewer`, already known: the viewer and what `per_viewer` adds go into
/// each request's data. [`execute_with`] once the viewer is read from the headers.
pub async fn execute_batch<Q, M, S>(
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
    let prepare = |r: Request| with_viewer(r, viewer, per_viewer);
    let request = match request {
        BatchRequest::Single(r) => BatchRequest::Single(prepare(r)),
        BatchRequest::Batch(rs) => BatchRequest::Batch(rs.into_iter().map(prepare).collect()),
    };
    execute_checked(schema, request).await.into()
}

/// Executes `batch` on `schema`, a schema built [`limited`]: a batch over
/// `MAX_BATCH`, or a request over any document limit, is answered with
/// BAD_USER_INPUT naming the limit, without being validated or executed.
pub async fn execute_checked<Q, M, S>(schema: &Schema<Q, M, S>, batch: BatchRequest) -> BatchResponse
where
    Q: ObjectType + 'static,
    M: ObjectType + 'static,
    S: SubscriptionType + 'static,
{
    let Some(limits) = schema.data::<DocumentLimits>() else { return BatchResponse::Single(unlimited()) };
    match batch {
        BatchRequest::Single(request) => BatchResponse::Single(execute_one(schema, limits, request).await),
        BatchRequest::Batch(requests) => match limits.check_batch(requests.len()) {
            Ok(()) => {
                let responses = requests.into_iter().map(|request| execute_one(schema, limits, request));
                BatchResponse::Batch(futures::future::join_all(responses).await)
            }
            Err(refused) => BatchResponse::Single(refusal(refused)),
        },
    }
}

async fn execute_one<Q, M, S>(schema: &Schema<Q, M, S>, limits: &DocumentLimits, mut request: Request) -> Response
where
    Q: ObjectType + 'static,
    M: ObjectType + 'static,
    S: SubscriptionType + 'static,
{
    let (operation_type, response) = match check(schema, limits, &mut request) {
        Ok(operation_type) => (operation_type, schema.execute(with_cached_parse(request)).await),
        Err(refused) => (None, refusal(refused)),
    };
    if let Some(metrics) = schema.data::<GraphqlMetrics>() {
        count(metrics, operation_type, &response);
    }
    response
}

/// `graphql_operations_total` and `graphql_errors_total` for one response.
fn count(metrics: &GraphqlMetrics, operation_type: Option<OperationType>, response: &Response) {
    let outcome = match (response.errors.is_empty(), &response.data) {
        (true, _) => Outcome::Success,
        (false, async_graphql::Value::Null) => Outcome::RequestError,
        (false, _) => Outcome::Partial,
    };
    // A request error has no operation to speak of, even if its document named one.
    let mutation = match outcome {
        Outcome::RequestError => None,
        _ => operation_type.map(|t| t == OperationType::Mutation),
    };
    metrics.operation(mutation, outcome);
    for error in &response.errors {
        let code = error.extensions.as_ref().and_then(|e| e.get("code"));
        metrics.error(match code {
            Some(async_graphql::Value::String(code)) => Some(code.as_str()),
            _ => None,
        });
    }
}

/// A schema built without [`limited`] answers every request INTERNAL rather than unguarded.
fn unlimited() -> Response {
    let error = ApiError::internal(anyhow::anyhow!("the schema was built without kit::graphql::limited"));
    Response::from_errors(vec![server_error(error)])
}

/// Checks the request's text, then its document (from the parse cache, or
/// parsed now and kept) against `limits`. `Ok` carries the type of the
/// operation the request selects, if its document parses and names one; a
/// document that does not parse is left for execution to report.
fn check<Q, M, S>(
    schema: &Schema<Q, M, S>,
    limits: &DocumentLimits,
    request: &mut Request,
) -> Result<Option<OperationType>, Refused>
where
    Q: ObjectType + 'static,
    M: ObjectType + 'static,
    S: SubscriptionType + 'static,
{
    limits.check_text(&request.query)?;
    // Taken out while the document is borrowed from the request, put back after.
    let operation_name = request.operation_name.take();
    let variables = std::mem::take(&mut request.variables);
    let checked = with_document(request, |document| {
        limits.check_document(document, &variables, || schema.sdl())?;
        Ok(operation_type(document, operation_name.as_deref()))
    });
    request.operation_name = operation_name;
    request.variables = variables;
    checked.unwrap_or(Ok(None))
}

fn operation_type(document: &ExecutableDocument, operation_name: Option<&str>) -> Option<OperationType> {
    let operation = match (&document.operations, operation_name) {
        (DocumentOperations::Single(operation), _) => Some(operation),
        (DocumentOperations::Multiple(operations), Some(name)) => operations.get(name),
        (DocumentOperations::Multiple(_), None) => None,
    };
    operation.map(|operation| operation.node.ty)
}

/// A request refused for a document limit, logged at debug only: clients cause it.
fn refusal(refused: Refused) -> Response {
    tracing::debug!(reason = %refused.0, "document refused");
    Response::from_errors(vec![server_error(ApiError::BadUserInput { field: None, message: refused.0 })])
}

fn server_error(error: ApiError) -> ServerError {
    let error = async_graphql::Error::from(error);
    ServerError { extensions: error.extensions, ..ServerError::new(error.message, None) }
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
) -> axum::response::Response
where
    Q: ObjectType + 'static,
    M: ObjectType + 'static,
    S: SubscriptionType + 'static,
{
    let viewer = match viewer_or_unavailable(verifier, headers).await {
        Ok(viewer) => viewer,
        Err(unavailable) => return unavailable,
    };
    let mut single = match request.into_inner() {
        BatchRequest::Single(single) => single,
        batch => return execute_batch(schema, batch, viewer.as_ref(), &per_viewer).await.into_response(),
    };
    let Some(limits) = schema.data::<DocumentLimits>() else {
        return GraphQLResponse::from(unlimited()).into_response();
    };
    let operation = match check(schema, limits, &mut single) {
        Ok(operation) => operation,
        Err(refused) => return GraphQLResponse::from(refusal(refused)).into_response(),
    };
    let cacheable = viewer.is_some() && cache.enabled() && operation == Some(OperationType::Query);
    let Some(viewer) = viewer.as_ref().filter(|_| cacheable) else {
        let response = schema.execute(with_viewer(with_cached_parse(single), viewer.as_ref(), &per_viewer)).await;
        return GraphQLResponse::from(response).into_response();
    };
    let key = response_key(&single);
    let loaded = cache
        .get_or_load_raw(&viewer.user_id.to_string(), &key, || async {
            // Taken from the parse cache only when not answered from the cache.
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

/// Runs `inspect` on the request's document without copying it: from the
/// parse cache, or parsed now and kept there if `inspect` accepts it (a refused
/// document must not push others out). A document too long for the cache is
/// parsed into the request, for execution to reuse. `None`: it does not parse.
fn with_document<T>(
    request: &mut Request,
    inspect: impl FnOnce(&ExecutableDocument) -> Result<T, Refused>,
) -> Option<Result<T, Refused>> {
    if request.query.len() > MAX_CACHED_DOCUMENT_LEN {
        return request.parsed_query().ok().map(inspect);
    }
    if let Some(document) = PARSED.lock().expect("parse cache lock").get(&request.query) {
        return Some(inspect(document));
    }
    let document = async_graphql::parser::parse_query(&request.query).ok()?;
    let answer = inspect(&document);
    if answer.is_ok() {
        PARSED.lock().expect("parse cache lock").put(request.query.clone(), document);
    }
    Some(answer)
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

/// The request with its document taken from the parse cache (every request
/// was checked, and so parsed and cached, before it is executed).
fn with_cached_parse(mut request: Request) -> Request {
    if request.query.len() > MAX_CACHED_DOCUMENT_LEN {
        return request;
    }
    let cached = PARSED.lock().expect("parse cache lock").get(&request.query).cloned();
    if let Some(document) = cached {
        request.set_parsed_query(document);
    }
    request
}
