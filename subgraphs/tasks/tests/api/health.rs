//! Probes (seed tests 10–13).

use serde_json::Value;

use crate::helpers::spawn_app;

#[tokio::test]
async fn live_names_the_service() {
    let app = spawn_app().await;
    let response = app.get("/health/live").await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "live");
    assert_eq!(body["service"], "tasks");
}

#[tokio::test]
async fn ready_checks_postgres_and_redis() {
    let app = spawn_app().await;
    let response = app.get("/health/ready").await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ready", "{body}");
    assert_eq!(body["checks"]["postgres"]["status"], "up", "{body}");
    assert_eq!(body["checks"]["redis"]["status"], "up", "{body}");
}

#[tokio::test]
async fn unreadable_bodies_are_request_errors_in_our_words() {
    let app = spawn_app().await;
    for (what, content_type, body) in kit::testing::unreadable_graphql_bodies() {
        let response = app
            .client
            .post(format!("{}/graphql", app.address))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        kit::testing::assert_request_error_in_our_words(what, response, 400).await;
    }
}
