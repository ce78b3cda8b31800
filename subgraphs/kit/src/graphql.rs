//! Serving an async-graphql schema over axum with the caller's identity.

use async_graphql::{BatchRequest, ObjectType, Request, Schema, SubscriptionType};
pub use async_graphql_axum::{GraphQLBatchRequest, GraphQLResponse};
use axum::http::HeaderMap;

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
    let request = match viewer {
        None => request,
        Some(viewer) => {
            let add = |r: Request| per_viewer(r.data(viewer.clone()), &viewer);
            match request {
                BatchRequest::Single(r) => BatchRequest::Single(add(r)),
                BatchRequest::Batch(rs) => BatchRequest::Batch(rs.into_iter().map(add).collect()),
            }
        }
    };
    schema.execute_batch(request).await.into()
}
