//! Tokens at tasks called directly: one that cannot be checked (auth's keys
//! unreachable) is refused as retryable, never served as anonymous.

use std::net::SocketAddr;

use kit::testing::{TcpGate, TestIssuer};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{spawn_app_with, wait_for};

#[tokio::test]
async fn a_token_that_cannot_be_checked_is_503_unavailable_then_served_once_the_keys_are_reachable() {
    let issuer = TestIssuer::start().await;
    let issuer_addr: SocketAddr =
        issuer.jwks_url.trim_start_matches("http://").split('/').next().unwrap().parse().unwrap();
    let gate = TcpGate::start(issuer_addr, false).await;
    let app =
        spawn_app_with(|env| env.set("JWKS_URL", format!("http://127.0.0.1:{}/.well-known/jwks.json", gate.port)))
            .await;
    let token = issuer.token(Uuid::new_v4());
    let query = json!({ "query": "{ tasks(first: 1) { totalCount } }" });

    let response = app.post_graphql(Some(&token), query.clone()).await;

    assert_eq!(response.status(), 503);
    assert!(response.headers().get("retry-after").is_some(), "{:?}", response.headers());
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAVAILABLE", "{body}");
    assert!(body["errors"][0]["extensions"]["retryAfter"].as_u64().is_some_and(|s| s >= 1), "{body}");
    let anonymous: Value = app.post_graphql(None, query.clone()).await.json().await.unwrap();
    assert_eq!(anonymous["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "no token: served, anonymous");

    gate.open();
    wait_for("the token to be served", || async {
        let body: Value = app.post_graphql(Some(&token), query.clone()).await.json().await.ok()?;
        (body["data"]["tasks"]["totalCount"] == 0).then_some(())
    })
    .await;
}
