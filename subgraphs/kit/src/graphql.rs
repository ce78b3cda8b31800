//! Serving an async-graphql schema over axum with the caller's identity.

use async_graphql::{BatchRequest, ObjectType, Schema, SubscriptionType};
pub use async_graphql_axum::{GraphQLBatchRequest, GraphQLResponse};
use axum::http::HeaderMap;

use crate::identity::TokenVerifier;

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
    let mut request = request.into_inner();
    match verifier.viewer_from_headers(headers).await {
        Ok(Some(viewer)) => request = with_data(request, viewer),
        Ok(None) => {}
        Err(reason) => tracing::debug!(%reason, "request carries an unusable token; serving it as anonymous"),
    }
    schema.execute_batch(request).await.into()
}

fn with_data<D: Clone + Send + Sync + 'static>(request: BatchRequest, data: D) -> BatchRequest {
    match request {
        BatchRequest::Single(r) => BatchRequest::Single(r.data(data)),
        BatchRequest::Batch(rs) => BatchRequest::Batch(rs.into_iter().map(|r| r.data(data.clone())).collect()),
    }
}
