//! What the benchmark subgraph examples share: printing a schema's federation
//! SDL and serving it on a port (JSON POSTs at `/graphql`).

use async_graphql::{EmptyMutation, EmptySubscription, Schema};
use axum::extract::State;
use serde_json::{Value, json};

pub fn sdl<Q: async_graphql::ObjectType + 'static>(schema: &Schema<Q, EmptyMutation, EmptySubscription>) -> String {
    schema.sdl_with_options(async_graphql::SDLExportOptions::new().federation())
}

pub async fn serve<Q: async_graphql::ObjectType + 'static>(
    schema: Schema<Q, EmptyMutation, EmptySubscription>,
    port: u16,
) {
    let app = axum::Router::new()
        .route(
            "/graphql",
            axum::routing::post(
                |State(schema): State<Schema<Q, EmptyMutation, EmptySubscription>>,
                 axum::Json(body): axum::Json<Value>| async move {
                    let request: async_graphql::Request = match serde_json::from_value(body) {
                        Ok(r) => r,
                        Err(e) => return axum::Json(json!({ "errors": [{ "message": e.to_string() }] })),
                    };
                    axum::Json(serde_json::to_value(schema.execute(request).await).unwrap_or(Value::Null))
                },
            ),
        )
        .with_state(schema);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("port free");
    axum::serve(listener, app).await.expect("serve");
}
