use kit::testing::{eventually, wait_for_consumer};
use serde_json::json;
use taskgraph::{CacheMode, EventsMode};

use crate::helpers::{Mode, TestMonolith, spawn_monolith};

/// register → createTask → upload → `me` through the router → deleteAccount →
/// the user's tasks and files are gone.
async fn the_account_cascade_runs_in_one_process(app: &TestMonolith) {
    let (user, token) = app.register("ada@example.com", "analytical1").await;
    let me = "{ me { email tasks(first: 10) { totalCount edges { node { title } } } files(first: 10) { totalCount edges { node { filename } } } } }";
    // Read (and cache) the empty list first: the write below must make it stale.
    let before = app.graphql(Some(&token), me, json!({})).await;
    assert_eq!(before["me"]["tasks"]["totalCount"], 0, "{before}");

    app.graphql(Some(&token), "mutation { createTask(input: { title: \"Write the report\" }) { id } }", json!({}))
        .await;
    let uploaded = app.upload(&token, "notes.txt", b"taskgraph in one process\n").await;
    assert_eq!(uploaded["filename"], "notes.txt", "{uploaded}");

    let after = app.graphql(Some(&token), me, json!({})).await;
    assert_eq!(after["me"]["email"], "ada@example.com", "{after}");
    assert_eq!(after["me"]["tasks"]["totalCount"], 1, "{after}");
    assert_eq!(after["me"]["tasks"]["edges"][0]["node"]["title"], "Write the report", "{after}");
    assert_eq!(after["me"]["files"]["edges"][0]["node"]["filename"], "notes.txt", "{after}");
    assert_eq!(app.rows_of(user).await, (1, 1));

    let deleted = app.graphql(Some(&token), "mutation { deleteAccount(password: \"analytical1\") }", json!({})).await;
    assert_eq!(deleted["deleteAccount"], true);

    eventually("the user's tasks and files to be deleted", || async { app.rows_of(user).await == (0, 0) }).await;
    eventually("the outbox row to be marked published", || async {
        let pending: i64 = sqlx::query_scalar("SELECT count(*) FROM auth.outbox WHERE published_at IS NULL")
            .fetch_one(&app.pool)
            .await
            .expect("count pending");
        pending == 0
    })
    .await;
}

#[tokio::test]
async fn with_redis_and_rabbitmq_the_cascade_deletes_tasks_and_files() {
    let app = spawn_monolith(Mode::Brokers).await;
    // An event published before the queues exist would not reach them.
    wait_for_consumer(&app.tasks_queue).await;
    wait_for_consumer(&app.files_queue).await;

    the_account_cascade_runs_in_one_process(&app).await;
}

#[tokio::test]
async fn with_the_in_process_cache_and_bus_the_cascade_deletes_tasks_and_files() {
    let app = spawn_monolith(Mode::InProcess).await;

    the_account_cascade_runs_in_one_process(&app).await;
}

#[tokio::test]
async fn in_process_mode_says_so_and_touches_no_broker() {
    let app = spawn_monolith(Mode::InProcess).await;
    assert_eq!(app.events, EventsMode::InProcess);
    assert!(matches!(app.cache, CacheMode::InProcess { .. }), "{:?}", app.cache);
    let ready = |port: u16| {
        let request = app.client.get(format!("http://127.0.0.1:{port}/health/ready"));
        async move { request.send().await.expect("health answered").json::<serde_json::Value>().await.expect("JSON") }
    };
    let health = ready(app.ports.tasks).await;
    assert_eq!(health["status"], "ready", "{health}");
    assert_eq!(health["checks"]["memory_cache"]["status"], "up", "{health}");
    assert!(health["checks"]["redis"].is_null(), "{health}");
    let auth_health = ready(app.ports.auth).await;
    assert_eq!(auth_health["checks"]["event_bus"]["status"], "up", "{auth_health}");
    assert!(auth_health["checks"]["rabbitmq"].is_null(), "{auth_health}");
}
