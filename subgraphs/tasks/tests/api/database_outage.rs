//! Postgres cut off behind a TCP gate that stops answering: once the service
//! knows, requests fail at once with a retryable error, and succeed again once
//! Postgres is back, without a restart.

use std::time::{Duration, Instant};

use kit::testing::{TcpGate, eventually, postgres_addr};
use serde_json::{Value, json};

use crate::helpers::{TestApp, User, error_code, spawn_app_with};

const CREATE: &str = "mutation($title: String!) { createTask(input: { title: $title }) { id title } }";

async fn create(app: &TestApp, user: &User, title: &str) -> Value {
    app.graphql(Some(&user.token), CREATE, json!({ "title": title })).await
}

async fn readiness(app: &TestApp) -> (u16, Value) {
    let response = app.get("/health/ready").await;
    (response.status().as_u16(), response.json().await.expect("JSON"))
}

#[tokio::test]
async fn while_postgres_does_not_answer_requests_fail_at_once_and_succeed_again_once_it_does() {
    let gate = TcpGate::start(postgres_addr(), true).await;
    let app = spawn_app_with(|env| {
        let direct = env.optional("DATABASE_URL").expect("the test database");
        env.set("DATABASE_URL", gate.url_for(&direct));
    })
    .await;
    let user = app.user();
    assert!(create(&app, &user, "before").await["errors"].is_null());

    gate.stall();
    // Found by the next readiness check (as a load balancer's), or by a request.
    let (status, body) = readiness(&app).await;
    assert_eq!((status, &body["checks"]["postgres"]["status"]), (503, &json!("down")), "{body}");
    let database = app.service.store().database();
    eventually("a probe to find Postgres down", || async { database.is_down() }).await;
    for n in 0..5 {
        let started = Instant::now();
        let response = create(&app, &user, &format!("during {n}")).await;
        let took = started.elapsed();
        // The pool's acquire timeout (DATABASE_ACQUIRE_TIMEOUT) is 5 s.
        assert!(took < Duration::from_secs(1), "answered in {took:?}: {response}");
        assert_eq!(error_code(&response), "UNAVAILABLE", "{response}");
        assert_eq!(response["errors"][0]["extensions"]["retryAfter"], 1, "{response}");
    }
    let (status, body) = readiness(&app).await;
    assert_eq!((status, &body["checks"]["postgres"]["error"]), (503, &json!("unreachable")), "{body}");

    gate.open();
    eventually("a write to succeed again", || async { create(&app, &user, "after").await["errors"].is_null() }).await;
    for n in 0..10 {
        let response = create(&app, &user, &format!("again {n}")).await;
        assert!(response["errors"].is_null(), "no connection from before the outage is handed out: {response}");
    }
    let (status, body) = readiness(&app).await;
    assert_eq!((status, &body["checks"]["postgres"]["status"]), (200, &json!("up")), "{body}");
}
