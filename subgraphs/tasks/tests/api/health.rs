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
