//! The tasks port refuses what the router refuses: it is no side door.

use serde_json::json;

use crate::helpers::{error_code, spawn_app, spawn_app_with};

#[tokio::test]
async fn abusive_documents_are_refused_directly_on_the_port_and_health_stays_live() {
    let app = spawn_app().await;
    kit::testing::limits::assert_document_limits(&app.client, &app.address).await;
}

#[tokio::test]
async fn a_list_without_first_costs_the_schemas_default_page() {
    // tasks 1 + 20 (the schema's default `first`) × (edges 1 + node 1 + id 1).
    let query = "{ tasks { edges { node { id } } } }";
    let nested =
        "query($reps: [_Any!]!) { _entities(representations: $reps) { ... on User { tasks { totalCount } } } }";
    let refused = spawn_app_with(|env| env.set("MAX_QUERY_COST", "60")).await;
    let user = refused.user();
    let answer = refused.graphql(Some(&user.token), query, json!({})).await;
    assert_eq!(error_code(&answer), "BAD_USER_INPUT", "{answer}");
    let message = answer["errors"][0]["message"].as_str().unwrap_or_default();
    assert_eq!(message, "The operation's estimated cost is 61, over the limit of 60 (MAX_QUERY_COST)");
    // _entities 3 (one per representation) + 3 × (tasks 1 + 20 × totalCount 1) = 66.
    let reps = json!({ "reps": vec![json!({ "__typename": "User", "id": user.id }); 3] });
    let answer = refused.graphql(Some(&user.token), nested, reps.clone()).await;
    assert!(answer["errors"][0]["message"].as_str().unwrap_or_default().contains("cost is 66,"), "{answer}");

    let allowed = spawn_app_with(|env| env.set("MAX_QUERY_COST", "66")).await;
    let user = allowed.user();
    let answer = allowed.graphql(Some(&user.token), query, json!({})).await;
    assert!(answer.get("errors").is_none(), "{answer}");
    let reps = json!({ "reps": vec![json!({ "__typename": "User", "id": user.id }); 3] });
    let answer = allowed.graphql(Some(&user.token), nested, reps).await;
    assert_eq!(answer["data"]["_entities"][2]["tasks"]["totalCount"], 0, "{answer}");
}
