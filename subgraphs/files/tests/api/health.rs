//! Readiness names the event consumer's broker connection; GraphQL, uploads
//! and downloads answer only requests that carry the router's secret.

use serde_json::{Value, json};

use crate::helpers::{PDF, spawn_app, spawn_app_with};

#[tokio::test]
async fn ready_is_degraded_naming_the_event_consumer_until_it_reaches_the_broker() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("amqp://guest:guest@127.0.0.1:{}/%2f", closed.local_addr().unwrap().port());
    drop(closed);
    let cut_off = spawn_app_with(|env| env.set("RABBITMQ_URL", url)).await;
    let connected = spawn_app().await;

    let response = cut_off.get("/health/ready", None).await;

    assert_eq!(response.status(), 200, "events wait in the queue meanwhile: still in rotation");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "degraded", "{body}");
    assert_eq!(body["checks"]["events_consumer"]["status"], "down", "{body}");
    kit::testing::eventually("the connected consumer to show up", || async {
        let body: Value = connected.get("/health/ready", None).await.json().await.unwrap();
        body["status"] == "ready" && body["checks"]["events_consumer"]["status"] == "up"
    })
    .await;
}

#[tokio::test]
async fn graphql_and_downloads_need_the_routers_secret_and_health_does_not() {
    let app = spawn_app().await;
    let user = app.user();
    let file = app.uploaded(&user, "report.pdf", PDF).await;
    let signed = format!("{}{}", app.address, file["downloadUrl"].as_str().unwrap());
    let stranger = reqwest::Client::new();
    let wrong = "not-the-router-secret-at-all-0123456789";

    for (what, secret) in [("without a secret", None), ("with a wrong one", Some(wrong))] {
        let with_secret = |request: reqwest::RequestBuilder| match secret {
            Some(secret) => request.header("x-taskgraph-router-secret", secret),
            None => request,
        };
        let download = with_secret(stranger.get(&signed)).send().await.unwrap();
        assert_eq!(download.status(), 403, "a signed URL {what}");
        let body: Value = download.json().await.unwrap();
        assert_eq!(body["errors"][0]["extensions"]["code"], "FORBIDDEN", "{what}: {body}");
        let listing = json!({ "query": "{ files(first: 1) { totalCount } }" });
        let graphql = with_secret(stranger.post(format!("{}/graphql", app.address)))
            .bearer_auth(&user.token)
            .json(&listing)
            .send()
            .await
            .unwrap();
        assert_eq!(graphql.status(), 403, "GraphQL {what}");
    }
    let download = app.client.get(&signed).send().await.unwrap();
    assert_eq!(download.status(), 200, "with the router's secret");
    assert_eq!(download.bytes().await.unwrap().as_ref(), PDF);
    for probe in ["/health/live", "/health/ready"] {
        let answer = stranger.get(format!("{}{probe}", app.address)).send().await.unwrap();
        assert_eq!(answer.status(), 200, "{probe} is open to probes");
    }
}
