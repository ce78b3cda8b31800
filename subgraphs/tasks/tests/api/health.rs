//! Probes (seed tests 10–13).

use serde_json::{Value, json};

use crate::helpers::{spawn_app, spawn_app_with};

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
async fn ready_checks_postgres_redis_and_the_event_consumer() {
    let app = spawn_app().await;
    kit::testing::eventually("the consumer to consume", || async {
        let body: Value = app.get("/health/ready").await.json().await.unwrap();
        body["checks"]["events_consumer"]["status"] == "up"
    })
    .await;

    let response = app.get("/health/ready").await;

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ready", "{body}");
    assert_eq!(body["checks"]["postgres"]["status"], "up", "{body}");
    assert_eq!(body["checks"]["redis"]["status"], "up", "{body}");
}

#[tokio::test]
async fn ready_is_degraded_naming_the_event_consumer_while_it_cannot_reach_the_broker() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("amqp://guest:guest@127.0.0.1:{}/%2f", closed.local_addr().unwrap().port());
    drop(closed);
    let app = spawn_app_with(|env| env.set("RABBITMQ_URL", url)).await;

    let response = app.get("/health/ready").await;

    assert_eq!(response.status(), 200, "events wait in the queue meanwhile: still in rotation");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "degraded", "{body}");
    assert_eq!(body["checks"]["events_consumer"]["status"], "down", "{body}");
    assert_eq!(body["checks"]["events_consumer"]["required"], false, "{body}");
    assert_eq!(body["checks"]["postgres"]["status"], "up", "{body}");
}

#[tokio::test]
async fn at_shutdown_ready_turns_503_while_live_and_graphql_still_answer_during_the_delay() {
    let app = spawn_app_with(|env| env.set("SHUTDOWN_DELAY", "60s")).await;
    let user = app.user();
    assert_eq!(app.get("/health/ready").await.status(), 200);

    app.begin_shutdown();

    kit::testing::eventually("readiness to turn 503", || async { app.get("/health/ready").await.status() == 503 })
        .await;
    let body: Value = app.get("/health/ready").await.json().await.unwrap();
    assert_eq!(body["status"], "draining", "{body}");
    assert_eq!(app.get("/health/live").await.status(), 200, "alive: no restart");
    let task = app.create_task(&user, json!({ "title": "written while draining" })).await;
    assert_eq!(task["title"], "written while draining", "requests still served until the delay is over");
}

#[tokio::test]
async fn graphql_answers_only_requests_with_the_routers_secret_and_health_stays_open() {
    let app = spawn_app().await;
    let user = app.user();
    let stranger = reqwest::Client::new();
    let post = |secret: Option<&'static str>| {
        let mut request = stranger
            .post(format!("{}/graphql", app.address))
            .bearer_auth(&user.token)
            .json(&json!({ "query": "{ tasks(first: 1) { totalCount } }" }));
        if let Some(secret) = secret {
            request = request.header("x-taskgraph-router-secret", secret);
        }
        request.send()
    };

    for (what, secret) in
        [("without a secret", None), ("with a wrong one", Some("not-the-router-secret-at-all-0123456789"))]
    {
        let refused = post(secret).await.unwrap();
        assert_eq!(refused.status(), 403, "{what}");
        let body: Value = refused.json().await.unwrap();
        assert_eq!(body["errors"][0]["extensions"]["code"], "FORBIDDEN", "{what}: {body}");
        assert!(body.get("data").is_none(), "{what}: {body}");
    }
    let accepted = post(Some(kit::testing::ROUTER_SECRET)).await.unwrap();
    assert_eq!(accepted.status(), 200);
    let body: Value = accepted.json().await.unwrap();
    assert_eq!(body["data"]["tasks"]["totalCount"], 0, "{body}");
    for probe in ["/health/live", "/health/ready"] {
        let answer = stranger.get(format!("{}{probe}", app.address)).send().await.unwrap();
        assert_eq!(answer.status(), 200, "{probe} is open to probes");
    }
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
