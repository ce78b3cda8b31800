//! Serving an async-graphql schema over axum with the caller's identity.

use std::num::NonZeroUsize;
use std::sync::{LazyLock, Mutex};

use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{BatchRequest, ObjectType, Request, Schema, SubscriptionType};
pub use async_graphql_axum::{GraphQLBatchRequest, GraphQLResponse};
use axum::http::HeaderMap;
use lru::LruCache;

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
    let request = request.into_inner();
    let viewer = match verifier.viewer_from_headers(headers).await {
        Ok(viewer) => viewer,
        Err(reason) => {
            tracing::debug!(%reason, "request carries an unusable token; serving it as anonymous");
            None
        }
    };
    let prepare = |r: Request| {
        let r = with_cached_parse(r);
        match &viewer {
            None => r,
            Some(viewer) => per_viewer(r.data(viewer.clone()), viewer),
        }
    };
    let request = match request {
        BatchRequest::Single(r) => BatchRequest::Single(prepare(r)),
        BatchRequest::Batch(rs) => BatchRequest::Batch(rs.into_iter().map(prepare).collect()),
    };
    schema.execute_batch(request).await.into()
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
