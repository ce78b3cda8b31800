//! The auth port refuses what the router refuses: it is no side door.

use serde_json::json;

use crate::helpers::{error_code, spawn_app, spawn_app_with};

#[tokio::test]
async fn abusive_documents_are_refused_directly_on_the_port_and_health_stays_live() {
    let app = spawn_app().await;
    kit::testing::limits::assert_document_limits(&app.client, &app.address).await;
}

#[tokio::test]
async fn repeated_fields_are_refused_before_any_resolver_runs() {
    let app = spawn_app().await;
    let session = app.signed_up().await;
    let query = format!("{{ me {{ {}}} }}", "id ".repeat(5_000));
    let answer = app.graphql(Some(&session.access_token), &query, json!({})).await;
    assert_eq!(error_code(&answer), "BAD_USER_INPUT", "{answer}");
    assert!(answer["data"].is_null(), "{answer}");
}

#[tokio::test]
async fn the_limits_are_read_from_the_environment() {
    let app = spawn_app_with(|env| env.set("MAX_ALIASES", "1")).await;
    let answer = app.graphql(None, "{ a: __typename b: __typename }", json!({})).await;
    let message = answer["errors"][0]["message"].as_str().unwrap_or_default();
    assert_eq!(message, "The operation's aliases is 2, over the limit of 1 (MAX_ALIASES)");
    let answer = app.graphql(None, "{ a: __typename }", json!({})).await;
    assert_eq!(answer["data"]["a"], "Query", "{answer}");
}

#[tokio::test]
async fn a_router_sized_entities_fetch_is_served() {
    let app = spawn_app().await;
    let me = app.signed_up().await;
    // 500 representations: _entities 500 + 500 × (id, email) = 1,500, well within the cost limit.
    let reps = json!({ "reps": vec![json!({ "__typename": "User", "id": me.user_id }); 500] });
    let query = "query($reps: [_Any!]!) { _entities(representations: $reps) { ... on User { id email } } }";
    let answer = app.graphql(Some(&me.access_token), query, reps).await;
    let entities = answer["data"]["_entities"].as_array().unwrap_or_else(|| panic!("{answer}"));
    assert_eq!(entities.len(), 500);
    assert_eq!(entities[499]["id"], me.user_id.as_str(), "{answer}");
}
